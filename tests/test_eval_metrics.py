"""The official metrics of the non-classification tasks (DeBERTa.metrics) and the evaluate app.

Each metric is checked on hand-worked cases — the awkward ones the official scripts decide in a
particular way — and against a reference: seqeval in its default (conlleval) mode for CoNLL, and for
SQuAD a transcription of the official scripts' rules written out here, run on the real sample files.
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest

from DeBERTa.apps import evaluate
from DeBERTa.metrics import choice_accuracy, conlleval, normalize_answer, race_accuracy
from DeBERTa.metrics.squad import (
    exact_score,
    f1_score_v1,
    f1_score_v2,
    is_squad_v2,
    squad_evaluate,
    squad_v1_evaluate,
    squad_v2_evaluate,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SQUAD = SHARED / "squad"
CONLL = SHARED / "conll2003"


def _squad(*questions: tuple[str, list[str]], version2: bool = False) -> dict:
    qas = []
    for qid, answers in questions:
        qa = {"id": qid, "question": "?", "answers": [{"text": a, "answer_start": 0} for a in answers]}
        if version2:
            qa["is_impossible"] = not answers
        qas.append(qa)
    paragraphs = [{"context": "c", "qas": qas}]
    return {"version": "v2.0" if version2 else "1.1", "data": [{"title": "t", "paragraphs": paragraphs}]}


# ----- SQuAD: answer normalisation and per-answer scores ------------------------------------------------
@pytest.mark.parametrize(("text", "normal"), [
    ("The  Eiffel-Tower!", "eiffeltower"),         # case, punctuation inside a word, article, spaces
    ("an apple a day", "apple day"),
    ("Theatre and Anne", "theatre and anne"),      # articles only as whole words
    ("A.", ""),
    ("“curly” quotes — dash", "“curly” quotes — dash"),  # only ASCII punctuation is removed
    ("  the\tthe\nthe  ", ""),
    ("1,000.5 km", "10005 km"),
])
def test_normalize_answer(text: str, normal: str) -> None:
    assert normalize_answer(text) == normal


def test_token_f1_hand_worked() -> None:
    # gold → "cat sat on mat" (4 tokens), prediction → "cat on mat" (3): P = 1, R = 3/4.
    assert f1_score_v1("the cat sat on the mat", "Cat, on a mat") == pytest.approx(2 * 0.75 / 1.75)
    assert f1_score_v2("the cat sat on the mat", "Cat, on a mat") == pytest.approx(2 * 0.75 / 1.75)
    # Repeated tokens count as often as both sides have them: gold "a b b", prediction "b b b".
    assert f1_score_v1("x b b", "b b b") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert exact_score("The Nile.", "nile") == 1


def test_both_empty_after_normalisation_differs_between_versions() -> None:
    assert exact_score("the", "a") == 1
    assert f1_score_v1("the", "a") == 0.0   # v1.1: no common token
    assert f1_score_v2("the", "a") == 1.0   # v2.0: both empty
    assert f1_score_v2("", "Paris") == 0.0 and f1_score_v2("Paris", "") == 0.0


def test_v1_max_over_gold_answers_and_missing_prediction() -> None:
    data = _squad(("q1", ["Denver Broncos", "the Broncos", "Broncos"]), ("q2", ["1990s"]), ("q3", ["x"]))
    result = squad_v1_evaluate(data, {"q1": "Broncos!", "q2": "the 1990s decade"})
    # q1: exact on "Broncos"; q2: "1990s" vs "1990s decade": P 1/2, R 1 → 2/3; q3 missing: 0.
    assert result == {"exact_match": pytest.approx(100 / 3), "f1": pytest.approx(100 * (1 + 2 / 3) / 3),
                      "total": 3, "missing": 1}


def test_v2_empty_answers_and_gold_answers_that_normalise_to_nothing() -> None:
    data = _squad(("has", ["the", "Paris"]), ("none", []), ("none2", []), version2=True)
    result = squad_v2_evaluate(data, {"has": "", "none": "", "none2": "London"})
    # "has": its gold "the" is dropped, so "" does not match "Paris"; "none": "" is right; "none2" wrong.
    assert result["exact"] == pytest.approx(100 / 3) and result["f1"] == pytest.approx(100 / 3)
    assert result["HasAns_exact"] == 0.0 and result["HasAns_total"] == 1
    assert result["NoAns_exact"] == 50.0 and result["NoAns_total"] == 2
    assert "best_f1" not in result


def test_v2_best_threshold_hand_worked() -> None:
    data = _squad(("q1", ["Paris"]), ("q2", []), ("q3", ["blue sky"]), version2=True)
    predictions = {"q1": "Paris", "q2": "London", "q3": ""}
    na_probs = {"q1": 0.1, "q2": 0.8, "q3": 0.5}
    result = squad_v2_evaluate(data, predictions, na_probs)
    assert result["exact"] == pytest.approx(100 / 3)           # no probability exceeds 1.0
    # Sweep: all "no answer" scores 1 (q2); admitting q1 (0.1) gains 1 → 2; q3 (0.5) gains 0; q2 (0.8) loses 1.
    assert result["best_exact"] == pytest.approx(200 / 3) and result["best_exact_thresh"] == 0.1
    assert result["best_f1"] == pytest.approx(200 / 3) and result["best_f1_thresh"] == 0.1
    # Applying that threshold gives the best score.
    applied = squad_v2_evaluate(data, predictions, na_probs, na_prob_thresh=0.1)
    assert applied["exact"] == pytest.approx(result["best_exact"])
    with pytest.raises(ValueError, match="miss 1 predicted"):
        squad_v2_evaluate(data, predictions, {"q1": 0.1, "q2": 0.8})


def test_version_detection_and_na_probs_on_v1() -> None:
    assert not is_squad_v2(_squad(("q", ["a"])))
    assert is_squad_v2(_squad(("q", ["a"]), version2=True))
    assert squad_evaluate(_squad(("q", ["a"])), {"q": "a"})["version"] == "1.1"
    with pytest.raises(ValueError, match="apply to SQuAD 2.0"):
        squad_evaluate(_squad(("q", ["b"])), {"q": "b"}, {"q": 0.0})


def test_question_without_answers_list_is_an_error() -> None:
    data = _squad(("q", ["a"]))
    del data["data"][0]["paragraphs"][0]["qas"][0]["answers"]
    with pytest.raises(ValueError, match=r"paragraph 0 question 0 \(id q\) has no 'answers'"):
        squad_v1_evaluate(data, {"q": "a"})


# ----- SQuAD: against the official rules, transcribed, on the real samples ------------------------------
def _official_normalize(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def remove_punc(text: str) -> str:
        return "".join(ch for ch in text if ch not in set(string.punctuation))

    return " ".join(remove_articles(remove_punc(s.lower())).split())


def _official_v1(dataset: list, predictions: dict) -> dict:
    def f1(prediction: str, truth: str) -> float:
        p, g = _official_normalize(prediction).split(), _official_normalize(truth).split()
        same = sum((collections.Counter(p) & collections.Counter(g)).values())
        if same == 0:
            return 0
        precision, recall = same / len(p), same / len(g)
        return 2 * precision * recall / (precision + recall)

    em = f = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    continue
                truths = [a["text"] for a in qa["answers"]]
                em += max(_official_normalize(predictions[qa["id"]]) == _official_normalize(t) for t in truths)
                f += max(f1(predictions[qa["id"]], t) for t in truths)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f / total}


def _official_v2(dataset: list, predictions: dict, na_probs: dict) -> dict:
    def tokens(s: str) -> list[str]:
        return _official_normalize(s).split() if s else []

    def f1(gold: str, pred: str) -> float:
        g, p = tokens(gold), tokens(pred)
        same = sum((collections.Counter(g) & collections.Counter(p)).values())
        if len(g) == 0 or len(p) == 0:
            return int(g == p)
        if same == 0:
            return 0
        precision, recall = same / len(p), same / len(g)
        return 2 * precision * recall / (precision + recall)

    has_ans, exact_raw, f1_raw = {}, {}, {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                has_ans[qa["id"]] = bool(qa["answers"])
                golds = [a["text"] for a in qa["answers"] if _official_normalize(a["text"])] or [""]
                pred = predictions[qa["id"]]
                exact_raw[qa["id"]] = max(int(_official_normalize(g) == _official_normalize(pred)) for g in golds)
                f1_raw[qa["id"]] = max(f1(g, pred) for g in golds)

    def best(scores: dict) -> tuple[float, float]:
        cur = best_score = sum(1 for k in has_ans if not has_ans[k])
        thresh = 0.0
        for qid in sorted(na_probs, key=lambda k: na_probs[k]):
            cur += scores[qid] if has_ans[qid] else (-1 if predictions[qid] else 0)
            if cur > best_score:
                best_score, thresh = cur, na_probs[qid]
        return 100.0 * best_score / len(scores), thresh

    out = {"exact": 100.0 * sum(exact_raw.values()) / len(exact_raw), "f1": 100.0 * sum(f1_raw.values()) / len(f1_raw)}
    for name, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in has_ans.items() if v == wanted]
        out[f"{name}_exact"] = 100.0 * sum(exact_raw[k] for k in qids) / len(qids)
        out[f"{name}_f1"] = 100.0 * sum(f1_raw[k] for k in qids) / len(qids)
    out["best_exact"], out["best_exact_thresh"] = best(exact_raw)
    out["best_f1"], out["best_f1_thresh"] = best(f1_raw)
    return out


def _noisy_predictions(dataset: list, seed: int) -> dict[str, str]:
    """Predictions of every kind a model makes: exact, with extra or missing words, another answer, empty."""
    rng = random.Random(seed)
    contexts = [p["context"] for a in dataset for p in a["paragraphs"]]
    predictions = {}
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [a["text"] for a in qa["answers"]] or [""]
                answer = rng.choice(answers)
                words = answer.split()
                pick = rng.random()
                if pick < 0.3:
                    text = answer
                elif pick < 0.5 and words:
                    text = " ".join(words[rng.randrange(len(words)):])
                elif pick < 0.7:
                    context = rng.choice(contexts).split()
                    start = rng.randrange(len(context))
                    text = " ".join(context[start: start + rng.randint(1, 6)])
                elif pick < 0.85:
                    text = f"the {answer}, {rng.choice(['a', 'then', '1990'])}"
                else:
                    text = ""
                predictions[qa["id"]] = text
    return predictions


@pytest.mark.skipif(not SQUAD.is_dir(), reason="../shared/squad is not here")
@pytest.mark.parametrize("seed", [0, 1])
def test_v1_matches_the_official_rules_on_real_data(seed: int) -> None:
    dataset = json.loads((SQUAD / "dev-v1.1-sample.json").read_text(encoding="utf-8"))
    predictions = _noisy_predictions(dataset["data"], seed)
    ours = squad_evaluate(dataset, predictions)
    reference = _official_v1(dataset["data"], predictions)
    assert ours["version"] == "1.1" and ours["missing"] == 0
    assert ours["exact_match"] == pytest.approx(reference["exact_match"], abs=1e-12)
    assert ours["f1"] == pytest.approx(reference["f1"], abs=1e-12)
    assert 5 < ours["f1"] < 95  # the noise gives a score that can tell rules apart


@pytest.mark.skipif(not SQUAD.is_dir(), reason="../shared/squad is not here")
def test_v2_matches_the_official_rules_on_real_data() -> None:
    dataset = json.loads((SQUAD / "dev-v2.0-sample.json").read_text(encoding="utf-8"))
    predictions = _noisy_predictions(dataset["data"], 3)
    rng = random.Random(4)
    na_probs = {qid: rng.random() for qid in predictions}
    ours = squad_evaluate(dataset, predictions, na_probs)
    reference = _official_v2(dataset["data"], predictions, na_probs)
    assert ours["version"] == "2.0"
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-12), key
    assert ours["NoAns_total"] == 702 and ours["total"] == 1407


# ----- CoNLL: conlleval's counting -------------------------------------------------------------------------
def test_conll_hand_worked_iob2() -> None:
    result = conlleval([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]])
    # gold: PER (2 tokens), LOC; predicted: PER (1 token), LOC → only LOC is right.
    assert (result["gold"], result["predicted"], result["correct"]) == (2, 2, 1)
    assert result["precision"] == result["recall"] == result["f1"] == 50.0
    assert result["accuracy"] == 75.0
    assert result["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 1, "predicted": 1,
                                         "correct": 0}
    assert result["per_type"]["LOC"]["f1"] == 100.0


def test_conll_iob1_starts_and_separators() -> None:
    # IOB1: I- opens an entity; it matches the same entities written in IOB2.
    assert conlleval([["I-PER", "I-PER", "O", "I-LOC"]], [["B-PER", "I-PER", "O", "B-LOC"]])["f1"] == 100.0
    # B- between two adjacent entities of one type: two entities in gold, one predicted, none right.
    result = conlleval([["I-PER", "B-PER"]], [["I-PER", "I-PER"]])
    assert (result["gold"], result["predicted"], result["correct"]) == (2, 1, 0)
    # A change of type starts a new entity even without B-.
    assert conlleval([["I-PER", "I-LOC"]], [["I-PER", "I-LOC"]])["gold"] == 2


def test_conll_entity_cut_by_a_sentence_boundary() -> None:
    gold = [["O", "B-ORG", "I-ORG"], ["I-ORG", "O"]]
    split = conlleval(gold, gold)
    assert (split["gold"], split["correct"]) == (2, 2)       # the boundary ends the first ORG
    joined = conlleval([gold[0] + gold[1]], [gold[0] + gold[1]])
    assert joined["gold"] == 1
    # A prediction that runs the entity on differs from gold only at the cut.
    result = conlleval(gold, [["O", "B-ORG", "I-ORG"], ["B-ORG", "O"]])
    assert result["correct"] == 2 and result["f1"] == 100.0


def test_conll_empty_predictions_and_errors() -> None:
    result = conlleval([["B-PER"]], [["O"]])
    assert result["precision"] == 0.0 and result["recall"] == 0.0 and result["f1"] == 0.0
    assert result["per_type"]["PER"]["predicted"] == 0
    with pytest.raises(ValueError, match="sentence 0 has 2 gold tags and 1"):
        conlleval([["O", "O"]], [["O"]])


def _random_tags(rng: random.Random, n: int) -> list[str]:
    tags = ["O"] * 4 + [f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG", "MISC")]
    return [rng.choice(tags) for _ in range(n)]


def _seqeval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    # seqeval is a test dependency (the test extra): these checks skip, and only these, where it is absent.
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    report = seqeval_metrics.classification_report(gold, predicted, output_dict=True, zero_division=0)
    return {
        "precision": 100 * seqeval_metrics.precision_score(gold, predicted, zero_division=0),
        "recall": 100 * seqeval_metrics.recall_score(gold, predicted, zero_division=0),
        "f1": 100 * seqeval_metrics.f1_score(gold, predicted, zero_division=0),
        "per_type": {t: report[t] for t in report if t not in ("micro avg", "macro avg", "weighted avg")},
    }


def _check_against_seqeval(gold: list[list[str]], predicted: list[list[str]]) -> None:
    ours, reference = conlleval(gold, predicted), _seqeval_scores(gold, predicted)
    for key in ("precision", "recall", "f1"):
        assert ours[key] == pytest.approx(reference[key], abs=1e-9), key
    for kind, scores in reference["per_type"].items():
        assert ours["per_type"][kind]["gold"] == scores["support"], kind
        for key, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours["per_type"][kind][key] == pytest.approx(100 * scores[theirs], abs=1e-9), (kind, key)


@pytest.mark.parametrize("seed", range(5))
def test_conll_matches_seqeval_on_random_iob1_and_iob2(seed: int) -> None:
    rng = random.Random(seed)
    gold = [_random_tags(rng, rng.randint(1, 12)) for _ in range(40)]
    predicted = [[tag if rng.random() < 0.6 else _random_tags(rng, 1)[0] for tag in sentence] for sentence in gold]
    _check_against_seqeval(gold, predicted)


@pytest.mark.skipif(not CONLL.is_dir(), reason="../shared/conll2003 is not here")
def test_conll_matches_seqeval_on_real_data() -> None:
    from DeBERTa.apps.tasks.ner import read_conll

    gold = [list(s.tags) for s in read_conll(CONLL / "valid-sample.txt")]
    rng = random.Random(7)
    tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    predicted = [[rng.choice(tags) if rng.random() < 0.1 else t.replace("B-", "I-") if rng.random() < 0.1 else t
                  for t in sentence] for sentence in gold]
    _check_against_seqeval(gold, predicted)
    result = conlleval(gold, predicted)
    assert result["gold"] == 534 and 50 < result["f1"] < 99


# ----- multiple choice -------------------------------------------------------------------------------------
def test_choice_and_race_accuracy() -> None:
    assert choice_accuracy([0, 1, 2, 3], [0, 1, 0, 0]) == {"accuracy": 50.0, "total": 4}
    result = race_accuracy([0, 1, 2, 3, 0], [0, 1, 0, 0, 0], ["middle", "middle", "high", "high", "high"])
    # Overall is over questions (2 of 5 wrong), not the mean of the parts (100 and 33.3).
    assert result["accuracy"] == 60.0
    assert result["middle"] == {"accuracy": 100.0, "total": 2}
    assert result["high"] == {"accuracy": pytest.approx(100 / 3), "total": 3}
    with pytest.raises(ValueError, match="unknown RACE part"):
        race_accuracy([0], [0], ["college"])


# ----- the evaluate app ------------------------------------------------------------------------------------
def _app(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict | None, str]:
    """The app run in this process (a subprocess per case would spend seconds importing torch)."""
    status = evaluate.main([str(a) for a in args])
    captured = capsys.readouterr()
    if status == 0:
        assert captured.out.count("\n") == 1  # one JSON object on one line
    return status, json.loads(captured.out) if status == 0 else None, captured.err


def test_app_squad_v1_and_v2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = tmp_path / "dev.json"
    gold.write_text(json.dumps(_squad(("q1", ["Paris"]), ("q2", []), ("q3", ["blue sky"]), version2=True)))
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps({"q1": "Paris", "q2": "London", "q3": ""}))
    odds = tmp_path / "null_odds.json"
    odds.write_text(json.dumps({"q1": 0.1, "q2": 0.8, "q3": 0.5}))
    status, result, _ = _app(capsys, "squad", gold, predictions, "--na-prob", odds)
    assert status == 0
    assert result["exact"] == pytest.approx(100 / 3) and result["best_f1"] == pytest.approx(200 / 3)
    assert result["best_f1_thresh"] == 0.1 and result["version"] == "2.0"
    assert list(result)[:3] == ["exact", "f1", "total"]
    gold.write_text(json.dumps(_squad(("q1", ["Paris", "the city of Paris"]))))
    # Once as users run it: python -m DeBERTa.apps.evaluate.
    run = subprocess.run([sys.executable, "-m", "DeBERTa.apps.evaluate", "squad", str(gold), str(predictions)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"exact_match": 100.0, "f1": 100.0, "total": 1, "missing": 0, "version": "1.1"}


def test_app_conll_iob1_gold_against_iob2_predictions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gold = tmp_path / "gold.txt"
    gold.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n"
                    "Peter NNP B-NP I-PER\nBlackburn NNP I-NP I-PER\n")
    predictions = tmp_path / "pred.txt"
    predictions.write_text("EU I-ORG B-ORG\nrejects O O\nGerman I-MISC B-LOC\n\nPeter I-PER B-PER\n"
                           "Blackburn I-PER I-PER\n")
    status, result, _ = _app(capsys, "conll", gold, predictions)
    assert status == 0
    assert (result["gold"], result["predicted"], result["correct"]) == (3, 3, 2)
    assert result["f1"] == pytest.approx(200 / 3) and result["per_type"]["MISC"]["recall"] == 0.0
    assert result["per_type"]["LOC"]["gold"] == 0 and result["tokens"] == 5
    predictions.write_text("EU I-ORG B-ORG\nrejected O O\n")
    status, _, stderr = _app(capsys, "conll", gold, predictions)
    assert status == 2 and stderr.startswith("error: ") and len(stderr.splitlines()) == 1
    assert f"{predictions}:2: token 'rejected' where {gold}:4 has 'rejects'" in stderr


def test_app_race_and_swag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for part, name, answers in (("middle", "m1.txt", ["A", "C"]), ("high", "h1.txt", ["B"])):
        (tmp_path / "dev" / part).mkdir(parents=True)
        (tmp_path / "dev" / part / name).write_text(json.dumps({
            "id": name, "article": "text", "answers": answers,
            "questions": ["q?"] * len(answers), "options": [["a", "b", "c", "d"]] * len(answers)}))
    predictions = tmp_path / "RACE.dev.tsv"
    predictions.write_text("id\tprediction\nm1.txt-0\tA\nm1.txt-1\tB\nh1.txt-0\t1\n")
    status, result, _ = _app(capsys, "race", tmp_path / "dev", predictions)
    assert status == 0
    assert result == {"accuracy": pytest.approx(200 / 3), "total": 3, "middle": {"accuracy": 50.0, "total": 2},
                      "high": {"accuracy": 100.0, "total": 1}, "missing": 0}
    swag = tmp_path / "val.csv"
    swag.write_text(",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
                    '0,v,1,"He runs, fast.",He runs,fast.,gold,a,b,c,d,2\n1,v,2,s,s1,s2,gen,a,b,c,d,0\n')
    predictions.write_text("id\tprediction\n0\t2\n")
    status, result, _ = _app(capsys, "swag", swag, predictions)
    assert status == 0 and result == {"accuracy": 50.0, "total": 2, "missing": 1}


@pytest.mark.parametrize(("args", "message"), [
    (["squad", "GOLD", "missing.json"], "predictions file {tmp}/missing.json does not exist"),
    (["squad", "BROKEN", "PRED"], "{tmp}/broken.json:1: not valid JSON"),
    (["conll", "GOLD", "PRED", "--na-prob", "PRED"], "--na-prob applies to squad only"),
    (["ner", "GOLD", "PRED"], "argument kind: invalid choice: 'ner'"),
    (["squad", "GOLD", "NUMBERS"], "the prediction for 'q' is int, not a string"),
    (["squad", "GOLD", "PRED", "--na-prob", "NUMBERS"], "apply to SQuAD 2.0, and this is a SQuAD 1.1 file"),
    (["squad", "GOLD", "PRED", "--na-prob", "BROKEN_ODDS"], "mapping question ids to finite numbers (at 'q')"),
])
def test_app_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                   message: str) -> None:
    files = {name: tmp_path / f"{name.lower()}.json" for name in ("GOLD", "PRED", "BROKEN", "NUMBERS", "BROKEN_ODDS")}
    files["GOLD"].write_text(json.dumps(_squad(("q", ["a"]))))
    files["PRED"].write_text("{}")
    files["BROKEN"].write_text("{not json")
    files["NUMBERS"].write_text('{"q": 1}')
    files["BROKEN_ODDS"].write_text('{"q": "high"}')
    argv = [str(files.get(a, tmp_path / a if a.endswith(".json") else a)) for a in args]
    assert evaluate.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("error: ") and message.format(tmp=tmp_path) in captured.err
