"""The task kinds beyond classification (DeBERTa.apps.tasks.ner / squad / choice): readers of the official
layouts and their one-line errors, features, decoding back to words and characters, prediction files.

A small tokenizer with real character offsets (kind_fixtures.PieceTokenizer) stands in for the real
ones; "oracle" logits (high exactly where the gold labels are) must decode to the gold answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from kind_fixtures import PieceTokenizer, write_race, write_swag

from DeBERTa.apps import evaluate
from DeBERTa.apps.tasks.choice import RACE, SWAG, read_prediction_tsv
from DeBERTa.apps.tasks.kinds import (
    IGNORE_INDEX,
    DataError,
    KindOptions,
    evaluate_split,
    get_kind_task,
    kind_task_names,
    scalar_metrics,
)
from DeBERTa.apps.tasks.ner import CONLL2003_LABELS, NER, read_conll
from DeBERTa.apps.tasks.squad import SQUAD_V1, SQUAD_V2, read_squad

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONLL = SHARED / "conll2003"
SQUAD = SHARED / "squad"
needs_conll = pytest.mark.skipif(not CONLL.is_dir(), reason="../shared/conll2003 is not here")
needs_squad = pytest.mark.skipif(not SQUAD.is_dir(), reason="../shared/squad is not here")


def test_registry() -> None:
    assert kind_task_names() == ["NER", "SQuAD", "SQuAD2", "RACE", "SWAG"]
    assert get_kind_task("squad_v2") is SQUAD_V2 and get_kind_task("SQuAD") is SQUAD_V1
    assert get_kind_task("conll2003") is NER and get_kind_task("race") is RACE and get_kind_task("mnli") is None
    assert {t.head for t in (NER, SQUAD_V1, RACE)} == {"TokenClassificationModel", "QuestionAnsweringModel",
                                                       "MultiChoiceModel"}
    assert (NER.main_metric, SQUAD_V2.main_metric, RACE.main_metric) == ("f1", "f1", "accuracy")


# ----- NER --------------------------------------------------------------------------------------------------
def _conll_dir(tmp_path: Path, names: tuple[str, str, str]) -> Path:
    for name, source in zip(names, ("train-sample.txt", "valid-sample.txt", "test-sample.txt"), strict=True):
        shutil.copyfile(CONLL / source, tmp_path / name)
    return tmp_path


@needs_conll
@pytest.mark.parametrize("names", [("train.txt", "valid.txt", "test.txt"), ("train.txt", "dev.txt", "test.txt"),
                                   ("eng.train", "eng.testa", "eng.testb")])
def test_ner_reads_the_official_names(tmp_path: Path, names: tuple[str, str, str]) -> None:
    data_dir = _conll_dir(tmp_path, names)
    train, dev, test = (NER.read(data_dir, split) for split in ("train", "dev", "test"))
    assert (len(train), len(dev), len(test)) == (1000, 300, 300)
    assert sum(len(s.words) for s in train) == 12057 and sum(len(s.words) for s in dev) == 3491
    assert all(w != "-DOCSTART-" for s in train for w in s.words)
    assert {t for s in train for t in s.tags} == set(CONLL2003_LABELS)


@pytest.mark.parametrize(("text", "message"), [
    ("EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", "{path}:2: 3 columns, but line 1 has 4"),
    ("EU NNP B-NP B-ORG\n\nrejects VBZ B-VP B-FOO\n", "{path}:3: unknown tag 'B-FOO'; the tags are O, B-PER"),
    ("EU\n", "{path}:1: 1 column(s); a CoNLL token line has at least 2"),
    ("-DOCSTART- -X- -X- O\n\n", "{path}: no sentences"),
    (b"EU NNP B-NP B-ORG\n\xff NNP B-NP O\n", "{path}:2: not UTF-8 text"),
])
def test_ner_bad_files(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "train.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DataError) as err:
        NER.read(tmp_path, "train")
    assert message.format(path=path) in str(err.value) and "\n" not in str(err.value)


def test_ner_missing_split(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("EU B-ORG\n")
    with pytest.raises(DataError, match=r"task NER split dev: no valid.txt or dev.txt or eng.testa in .* "
                                        r"\(it holds: train.txt\)"):
        NER.read(tmp_path, "dev")


def _oracle_token_logits(features: list[dict], examples: list, labels: tuple[str, ...]) -> list[np.ndarray]:
    """Logits that pick the gold tag at every word's first sub-token (and a wrong one everywhere else)."""
    outputs = []
    for feature in features:
        logits = np.zeros((len(feature["input_ids"]) + 3, len(labels)))  # + padding the decoder must ignore
        logits[:, 1] = 5.0
        for position, word in enumerate(feature["word_index"]):
            if word >= 0:
                logits[position, labels.index(examples[feature["example_index"]].tags[word])] = 10.0
        outputs.append(logits)
    return outputs


@needs_conll
@pytest.mark.parametrize("space_in_offsets", [False, True])
def test_ner_features_label_first_sub_tokens_and_decode_back(space_in_offsets: bool) -> None:
    sentences = read_conll(CONLL / "valid-sample.txt", CONLL2003_LABELS)
    tokenizer = PieceTokenizer(space_in_offsets=space_in_offsets)
    features = NER.features(sentences, tokenizer, 128)
    assert features.stats["split_sentences"] == 0 and len(features) == len(sentences)
    first = features[0]
    sentence = sentences[0]
    encoding = tokenizer.encode_with_offsets(" ".join(sentence.words))
    assert list(first["input_ids"]) == [1, *encoding.ids, 2]
    # Labels exactly at each word's first piece, in word order.
    starts = [p for p, word in enumerate(encoding.word_ids) if p == 0 or encoding.word_ids[p - 1] != word]
    assert [p for p, label in enumerate(first["labels"]) if label != IGNORE_INDEX] == [p + 1 for p in starts]
    assert [CONLL2003_LABELS[label] for label in first["labels"] if label != IGNORE_INDEX] == list(sentence.tags)
    assert list(first["word_index"][first["word_index"] >= 0]) == list(range(len(sentence.words)))
    predicted = NER.decode(sentences, features, _oracle_token_logits(features, sentences, CONLL2003_LABELS))
    assert predicted == [list(s.tags) for s in sentences]
    assert NER.metrics(sentences, predicted)["f1"] == 100.0


@needs_conll
def test_ner_long_sentences_are_split_between_words_never_cut() -> None:
    sentences = read_conll(CONLL / "valid-sample.txt", CONLL2003_LABELS)
    tokenizer = PieceTokenizer()
    features = NER.features(sentences, tokenizer, 12)
    assert features.stats["split_sentences"] > 50 and len(features) > len(sentences)
    assert all(len(f["input_ids"]) <= 12 for f in features)
    # Every word is labelled exactly once over the pieces of its sentence.
    seen: dict[int, list[int]] = {}
    for f in features:
        seen.setdefault(f["example_index"], []).extend(int(w) for w in f["word_index"] if w >= 0)
    assert all(seen[i] == list(range(len(s.words))) for i, s in enumerate(sentences))
    predicted = NER.decode(sentences, features, _oracle_token_logits(features, sentences, CONLL2003_LABELS))
    assert predicted == [list(s.tags) for s in sentences]


def test_ner_a_word_longer_than_the_input_keeps_its_label() -> None:
    sentence = read_conll_text("Hello O\nSupercalifragilisticexpialidocious B-MISC\nworld O\n")
    features = NER.features(sentence, PieceTokenizer(), 6)
    assert features.stats["cut_words"] == 1 and features.stats["split_sentences"] == 1
    labelled = [(int(f["word_index"][p]), CONLL2003_LABELS[int(f["labels"][p])])
                for f in features for p in range(len(f["labels"])) if f["labels"][p] != IGNORE_INDEX]
    assert labelled == [(0, "O"), (1, "B-MISC"), (2, "O")]


def read_conll_text(text: str) -> list:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.txt"
        path.write_text(text)
        return read_conll(path, CONLL2003_LABELS)


def test_ner_collate() -> None:
    sentences = read_conll_text("EU B-ORG\nrejects O\n\nGerman B-MISC\n")
    features = NER.features(sentences, PieceTokenizer(), 32)
    assert features.lengths().tolist() == [len(f["input_ids"]) for f in features]
    batch = NER.collate(features, pad_id=0)
    assert batch["input_ids"].shape == batch["labels"].shape == batch["input_mask"].shape
    assert batch["input_mask"].sum(1).tolist() == [len(f["input_ids"]) for f in features]
    assert (batch["labels"][batch["input_mask"] == 0] == IGNORE_INDEX).all()
    assert batch["type_ids"].abs().sum() == 0


@needs_conll
def test_ner_prediction_file_scores_with_the_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sentences = read_conll(CONLL / "test-sample.txt", CONLL2003_LABELS)
    predicted = [["O"] * len(s.words) for s in sentences]
    predicted[0] = list(sentences[0].tags)
    [path] = NER.write_predictions(tmp_path, "test", sentences, predicted)
    assert path.name == "NER.test.conll"
    lines = path.read_text().splitlines()
    assert lines[0] == f"{sentences[0].words[0]} {sentences[0].tags[0]} {predicted[0][0]}"
    assert evaluate.main(["conll", str(CONLL / "test-sample.txt"), str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == NER.metrics(sentences, predicted)


# ----- SQuAD ------------------------------------------------------------------------------------------------
@needs_squad
def test_squad_reads_both_versions() -> None:
    dev1 = read_squad(SQUAD / "dev-v1.1-sample.json")
    dev2 = read_squad(SQUAD / "dev-v2.0-sample.json")
    assert len(dev1) == 2145 and max(len(e.answers) for e in dev1) >= 3
    assert len(dev2) == 1407 and sum(e.is_impossible for e in dev2) == 702
    assert all(not e.answers for e in dev2 if e.is_impossible)


def _squad_file(tmp_path: Path, qa: dict, name: str = "train-v1.1.json", context: str = "Paris is big.") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"version": "1.1", "data": [
        {"title": "T", "paragraphs": [{"context": context, "qas": [qa]}]}]}))
    return path


@pytest.mark.parametrize(("qa", "message"), [
    ({"id": "q1", "question": "Where?"}, "article 0 ('T') paragraph 0 question 0 (id q1) has no 'answers' list"),
    ({"id": "q1", "question": "Where?", "answers": []}, "(id q1) has no answers and is not marked 'is_impossible'"),
    ({"id": "q1", "question": "Where?", "answers": [{"text": "Paris"}]},
     "(id q1) answer 0 needs 'text' and an integer 'answer_start'"),
    ({"question": "Where?", "answers": []}, "paragraph 0 question 0 has no 'id' or 'question'"),
])
def test_squad_bad_files(tmp_path: Path, qa: dict, message: str) -> None:
    path = _squad_file(tmp_path, qa)
    with pytest.raises(DataError) as err:
        SQUAD_V1.read(tmp_path, "train")
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_squad_v2_file_under_the_v1_task_and_missing_split(tmp_path: Path) -> None:
    _squad_file(tmp_path, {"id": "q1", "question": "?", "answers": [], "is_impossible": True})
    with pytest.raises(DataError, match="use --task_name SQuAD2"):
        SQUAD_V1.read(tmp_path, "train")
    with pytest.raises(DataError, match=r"task SQuAD2 split dev: no dev-v2.0.json in"):
        SQUAD_V2.read(tmp_path, "dev")


def test_squad_training_answer_that_does_not_sit_at_its_start_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "train-v1.1.json"
    qas = [{"id": "good", "question": "Which is old?", "answers": [{"text": "Rome", "answer_start": 14}]},
           {"id": "bad", "question": "Which is big?", "answers": [{"text": "Paris", "answer_start": 1}]}]
    paragraphs = [{"context": "Paris is big. Rome is old.", "qas": qas}]
    path.write_text(json.dumps({"data": [{"title": "T", "paragraphs": paragraphs}]}))
    examples = SQUAD_V1.read(tmp_path, "train")
    features = SQUAD_V1.features(examples, PieceTokenizer(), 64, training=True)
    assert features.stats["skipped_answers"] == 1
    assert {f["example_index"] for f in features} == {0}
    # Evaluation keeps every question.
    assert len(SQUAD_V1.features(examples, PieceTokenizer(), 64)) == 2


def _oracle_span_logits(features: list, examples: list) -> list[np.ndarray]:
    """Start/end logits peaking at the tokens that cover the first gold answer, where a window holds it
    whole and it has its most context there; at [CLS] otherwise."""
    outputs = []
    for feature in features:
        example = examples[feature["example_index"]]
        logits = np.zeros((len(feature["input_ids"]) + 2, 2))
        logits[0] = 1.0
        if example.answers:
            text, start = example.answers[0]
            end = start + len(text)
            inside = [p for p, (s, e) in enumerate(feature["offsets"]) if s >= 0 and e > start and s < end]
            if inside and feature["offsets"][inside[0], 0] <= start and feature["offsets"][inside[-1], 1] >= end \
                    and feature["max_context"][inside[0]]:
                logits[inside[0], 0] = logits[inside[-1], 1] = 20.0
        outputs.append(logits)
    return outputs


@needs_squad
@pytest.mark.parametrize("space_in_offsets", [False, True])
def test_squad_windows_and_oracle_decoding_on_real_data(space_in_offsets: bool) -> None:
    examples = read_squad(SQUAD / "dev-v1.1-sample.json")[:400]
    options = KindOptions(doc_stride=20, max_query_length=16, max_answer_length=40)
    features = SQUAD_V1.features(examples, PieceTokenizer(space_in_offsets=space_in_offsets), 64, options=options)
    assert all(len(f["input_ids"]) <= 64 for f in features)
    assert len(features) > 3 * len(examples)  # the contexts need several windows at this length
    assert features.stats["truncated_questions"] > 0
    # Each context token has its most context in exactly one window.
    for index in (0, 7):
        covered = [tuple(o) for f in features if f["example_index"] == index
                   for o, best in zip(f["offsets"], f["max_context"], strict=True) if best]
        tokens = PieceTokenizer().encode_with_offsets(examples[index].context).ids
        assert len(covered) == len(set(covered)) == len(tokens)
    predictions = SQUAD_V1.decode(examples, features, _oracle_span_logits(features, examples), options)
    for example in examples:
        prediction = predictions[example.qid]
        assert prediction.text == example.context[prediction.start: prediction.end] != ""
        assert prediction.nbest[0]["text"] == prediction.text
        assert abs(sum(c["probability"] for c in prediction.nbest) - 1) < 1e-9
    scores = SQUAD_V1.metrics(examples, predictions)
    # Not 100: a few gold answers end inside a piece ("8" of "18") or exceed max_answer_length.
    assert scores["exact_match"] > 95 and scores["f1"] >= scores["exact_match"] and scores["missing"] == 0


@needs_squad
def test_squad_training_positions_cover_the_answer() -> None:
    examples = read_squad(SQUAD / "train-v1.1-sample.json")[:300]
    features = SQUAD_V1.features(examples, PieceTokenizer(), 48, options=KindOptions(doc_stride=16),
                                 training=True)
    inside = [f for f in features if f["start_positions"] > 0]
    assert len(inside) >= len(examples) * 0.9
    for f in inside:
        text, start = examples[f["example_index"]].answers[0]
        s, e = f["offsets"][f["start_positions"], 0], f["offsets"][f["end_positions"], 1]
        assert s <= start and e >= start + len(text) and f["end_positions"] >= f["start_positions"]
        assert f["type_ids"][f["start_positions"]] == 1
    batch = SQUAD_V1.collate(features[:5])
    assert batch["input_ids"].shape == batch["type_ids"].shape == batch["input_mask"].shape
    assert batch["start_positions"].tolist() == [int(f["start_positions"]) for f in features[:5]]


def test_squad_max_answer_length_and_v2_no_answer(tmp_path: Path) -> None:
    context = "The answer is forty two and the rest is silence"
    path = tmp_path / "dev-v2.0.json"
    qas = [{"id": "a", "question": "What?", "answers": [{"text": "forty two", "answer_start": 14}],
            "is_impossible": False},
           {"id": "n", "question": "Who?", "answers": [], "is_impossible": True}]
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "T", "paragraphs": [
        {"context": context, "qas": qas}]}]}))
    examples = SQUAD_V2.read(tmp_path, "dev")
    tokenizer = PieceTokenizer()
    options = KindOptions(max_answer_length=2)
    features = SQUAD_V2.features(examples, tokenizer, 64, options=options)
    outputs = []
    for f in features:
        logits = np.zeros((len(f["input_ids"]), 2))
        starts = {tuple(o): p for p, o in enumerate(f["offsets"])}
        logits[starts[(14, 17)], 0] = 8.0      # "for"
        logits[starts[(20, 23)], 1] = 8.0      # "two": "for|ty two" is 3 pieces, longer than 2
        logits[starts[(17, 19)], 1] = 7.0      # "ty": "forty" is 2 pieces
        logits[0] = [9.0, 9.0] if examples[f["example_index"]].qid == "n" else [1.0, 1.0]
        outputs.append(logits)
    predictions = SQUAD_V2.decode(examples, features, outputs, options)
    assert predictions["a"].text == "forty" and predictions["a"].null_odds == pytest.approx(2.0 - 15.0)
    assert predictions["n"].text == "" and predictions["n"].null_odds == pytest.approx(18.0 - 15.0)
    assert {c["text"] for c in predictions["n"].nbest} >= {"", "forty"}
    scores = SQUAD_V2.metrics(examples, predictions)
    assert scores["NoAns_exact"] == 100.0 and scores["HasAns_f1"] == pytest.approx(100 * 2 / 3)
    assert "best_f1" in scores
    # A threshold above the null odds of "n" answers it instead.
    raised = SQUAD_V2.decode(examples, features, outputs, KindOptions(max_answer_length=2,
                                                                      null_score_diff_threshold=5.0))
    assert raised["n"].text == "forty"


@needs_squad
def test_squad_prediction_files_score_with_the_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = read_squad(SQUAD / "dev-v2.0-sample.json")[:150]
    options = KindOptions(doc_stride=32)
    features = SQUAD_V2.features(examples, PieceTokenizer(), 96, options=options)
    rng = np.random.default_rng(0)
    outputs = [o + rng.normal(0, 3, o.shape) for o in _oracle_span_logits(features, examples)]
    predictions = SQUAD_V2.decode(examples, features, outputs, options)
    paths = SQUAD_V2.write_predictions(tmp_path, "dev", examples, predictions)
    assert [p.name for p in paths] == ["predictions.json", "nbest_predictions.json", "null_odds.json"]
    texts = json.loads(paths[0].read_text())
    assert list(texts) == [e.qid for e in examples]
    for example in examples:
        for candidate in json.loads(paths[1].read_text())[example.qid]:
            if candidate["text"]:
                assert example.context[candidate["start"]: candidate["end"]] == candidate["text"]
    gold = tmp_path / "gold.json"
    data = json.loads((SQUAD / "dev-v2.0-sample.json").read_text())
    keep = {e.qid for e in examples}
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [qa for qa in paragraph["qas"] if qa["id"] in keep]
    gold.write_text(json.dumps(data))
    assert evaluate.main(["squad", str(gold), str(paths[0]), "--na-prob", str(paths[2])]) == 0
    from_app = json.loads(capsys.readouterr().out)
    ours = SQUAD_V2.metrics(examples, predictions)
    for key in ("exact", "f1", "HasAns_f1", "NoAns_exact", "best_f1", "best_f1_thresh"):
        assert from_app[key] == pytest.approx(ours[key]), key
    assert 0 < ours["f1"] < 100


# ----- multiple choice ----------------------------------------------------------------------------------------
def test_race_reads_the_official_tree(tmp_path: Path) -> None:
    write_race(tmp_path, "dev")
    examples = RACE.read(tmp_path, "dev")
    assert [(e.guid, e.part, e.label) for e in examples] == [
        ("middle1.txt-0", "middle", 1), ("middle1.txt-1", "middle", 2), ("middle2.txt-0", "middle", 2),
        ("high1.txt-0", "high", 1)]
    # A blank takes the option; other questions get the option after them.
    assert examples[1].second_segments()[2] == "Tom flies his kite with Anna ."
    assert examples[0].second_segments()[1] == "What colour is Tom's kite? red"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("options"), "no 'options'"),
    (lambda d: d.update(answers=["E", "A"]), "question 0 has answer 'E'; expected one of A, B, C, D"),
    (lambda d: d.update(options=[["a", "b"], ["a", "b", "c", "d"]]), "question 0 needs 4 text options"),
    (lambda d: d.update(answers=["A"]), "2 questions, 2 option lists and 1 answers"),
])
def test_race_bad_files(tmp_path: Path, change, message: str) -> None:
    folder = write_race(tmp_path, "train")
    path = folder / "middle" / "middle1.txt"
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    with pytest.raises(DataError) as err:
        RACE.read(tmp_path, "train")
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


def test_race_missing_split(tmp_path: Path) -> None:
    write_race(tmp_path, "train")
    with pytest.raises(DataError, match=r"task RACE split test: no folder .*test; RACE is"):
        RACE.read(tmp_path, "test")


def test_swag_reads_the_official_csv(tmp_path: Path) -> None:
    write_swag(tmp_path / "val.csv")
    write_swag(tmp_path / "test.csv", labeled=False)
    dev, test = SWAG.read(tmp_path, "dev"), SWAG.read(tmp_path, "test")
    assert [(e.guid, e.label) for e in dev] == [("0", 0), ("1", 1), ("2", 2)]
    assert dev[1].context == "A man, holding a rope, climbs." and dev[1].second_segments()[1] == "He reaches the top."
    assert all(e.label is None for e in test)
    with pytest.raises(DataError, match=r"task SWAG split train: no train.csv"):
        SWAG.read(tmp_path, "train")


@pytest.mark.parametrize(("text", "message"), [
    (",video-id,sent1,sent2,ending0,ending1,ending2,label\n", ":1: no column ending3"),
    (",sent1,sent2,ending0,ending1,ending2,ending3,label\n0,a,b,c,d,e,f\n", ":2: 7 fields, the header has 8"),
    (",sent1,sent2,ending0,ending1,ending2,ending3,label\n0,a,b,c,d,e,f,4\n", ":2: label '4' is not 0, 1, 2 or 3"),
])
def test_swag_bad_files(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "val.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        SWAG.read(tmp_path, "dev")


def test_choice_features_keep_the_option_and_decode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_race(tmp_path, "dev")
    examples = RACE.read(tmp_path, "dev")
    tokenizer = PieceTokenizer()
    features = RACE.features(examples, tokenizer, 20)
    assert features.stats["truncated"] == len(examples)
    first = features[1]
    for ids, types, second in zip(first["input_ids"], first["type_ids"], examples[1].second_segments(), strict=True):
        a = tokenizer.encode_with_offsets(examples[1].context).ids
        b = tokenizer.encode_with_offsets(second).ids
        kept_b = int(types.sum()) - 1
        kept_a = len(ids) - kept_b - 3
        # The context loses its end, the question+option only its start, and only down to half the room.
        assert len(ids) == 20 and kept_b >= min(len(b), 17 // 2) and kept_a < len(a)
        assert list(ids) == [tokenizer.cls_id, *a[:kept_a], tokenizer.sep_id, *b[len(b) - kept_b:], tokenizer.sep_id]
        assert list(types) == [0] * (kept_a + 2) + [1] * (kept_b + 1)
    assert features.lengths().tolist() == [max(len(ids) for ids in f["input_ids"]) for f in features]
    batch = RACE.collate(features, pad_id=0)
    assert batch["input_ids"].shape[:2] == (4, 4) and batch["labels"].tolist() == [1, 2, 2, 1]
    assert batch["input_mask"].sum(-1).tolist() == [[len(ids) for ids in f["input_ids"]] for f in features]
    outputs = [np.eye(4)[label] * 3 for label in (1, 0, 2, 1)]  # the second question answered wrong
    predicted = RACE.decode(examples, features, outputs)
    assert predicted == [1, 0, 2, 1]
    scores = RACE.metrics(examples, predicted)
    assert scores["accuracy"] == 75.0 and scores["middle"]["accuracy"] == pytest.approx(200 / 3)
    [path] = RACE.write_predictions(tmp_path, "dev", examples, predicted)
    assert path.read_text().splitlines()[:2] == ["id\tprediction", "middle1.txt-0\tB"]
    assert read_prediction_tsv(path, letters=True) == {"middle1.txt-0": 1, "middle1.txt-1": 0, "middle2.txt-0": 2,
                                                       "high1.txt-0": 1}
    assert evaluate.main(["race", str(tmp_path / "dev"), str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {**scores, "missing": 0}


def test_swag_predictions_file(tmp_path: Path) -> None:
    write_swag(tmp_path / "test.csv", labeled=False)
    examples = SWAG.read(tmp_path, "test")
    features = SWAG.features(examples, PieceTokenizer(), 64)
    assert features.stats["truncated"] == 0 and all(f["label"] == -1 for f in features)
    predicted = SWAG.decode(examples, features, [np.array([0.1, 0.5, 0.2, 0.0]), np.zeros(4), np.arange(4.0)])
    [path] = SWAG.write_predictions(tmp_path, "test", examples, predicted)
    assert path.name == "SWAG.test.tsv" and path.read_text() == "id\tprediction\n0\t1\n1\t0\n2\t3\n"


def test_evaluate_split_scores_labeled_splits_and_writes_files(tmp_path: Path) -> None:
    write_race(tmp_path, "dev")
    write_swag(tmp_path / "test.csv", labeled=False)
    tokenizer = PieceTokenizer()
    race = RACE.read(tmp_path, "dev")
    features = RACE.features(race, tokenizer, 64)
    result = evaluate_split(RACE, race, features, [np.eye(4)[e.label] for e in race], folder=tmp_path / "out")
    assert result.predictions == [e.label for e in race] and result.metrics["accuracy"] == 100.0
    assert [p.name for p in result.files] == ["RACE.dev.tsv"]
    assert scalar_metrics(result.metrics) == {"accuracy": 100.0, "total": 4.0, "middle/accuracy": 100.0,
                                              "middle/total": 3.0, "high/accuracy": 100.0, "high/total": 1.0}
    swag = SWAG.read(tmp_path, "test")
    features = SWAG.features(swag, tokenizer, 64)
    result = evaluate_split(SWAG, swag, features, [np.arange(4.0)] * 3, split="test")
    assert result.metrics is None and result.files == [] and result.predictions == [3, 3, 3]
    assert scalar_metrics({"f1": 50, "version": "2.0", "per_type": {"PER": {"f1": 1.5}}}) == {
        "f1": 50.0, "per_type/PER/f1": 1.5}


def test_any_max_seq_len_works(tmp_path: Path) -> None:
    qas = [{"id": "q", "question": "Which city is the capital of France, please tell me?",
            "answers": [{"text": "Paris", "answer_start": 0}]}]
    (tmp_path / "dev-v1.1.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [
        {"context": "Paris is the capital of France.", "qas": qas}]}]}))
    examples = SQUAD_V1.read(tmp_path, "dev")
    tokenizer = PieceTokenizer()
    for max_seq_len in (5, 6, 9, 512):
        features = SQUAD_V1.features(examples, tokenizer, max_seq_len, options=KindOptions(doc_stride=128))
        assert all(len(f["input_ids"]) <= max_seq_len for f in features)
        covered = {tuple(o) for f in features for o, best in zip(f["offsets"], f["max_context"], strict=True) if best}
        assert len(covered) == len(tokenizer.encode_with_offsets(examples[0].context).ids)
    with pytest.raises(DataError, match="max_seq_len 4 is too short"):
        SQUAD_V1.features(examples, tokenizer, 4)
