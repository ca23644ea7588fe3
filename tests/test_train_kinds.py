"""End-to-end tests of ``python -m DeBERTa.apps.train`` on the task kinds beyond classification: NER on the
CoNLL-2003 samples, SQuAD 1.1 and 2.0 on the SQuAD samples (prefixes of both, in ../shared), RACE and SWAG
on fixtures written in their official layouts.

Every run is a few updates of the tiny model on one CPU thread; the app's numbers are checked against
``python -m DeBERTa.apps.evaluate`` on the prediction files it wrote, and against counts by hand.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from kind_fixtures import write_race, write_swag
from safetensors.torch import load_file
from test_train_helpers import one_thread_fixture, read_jsonl  # noqa: F401  (the *_fixture: fixtures)

from DeBERTa.apps import records
from DeBERTa.apps.evaluate import evaluate_choice, evaluate_conll, evaluate_squad
from DeBERTa.apps.models import load_tokenizer
from DeBERTa.apps.options import parse_options
from DeBERTa.apps.report import load_run, summarize
from DeBERTa.apps.tasks import get_task, is_kind_task, task_names
from DeBERTa.apps.train import main
from DeBERTa.apps.trainer import build_kind_features, kind_feature_key, kind_options
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files
from DeBERTa.training.engine import Engine

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONLL, SQUAD = SHARED / "conll2003", SHARED / "squad"
needs_conll = pytest.mark.skipif(not CONLL.is_dir(), reason="../shared/conll2003 is not here")
needs_squad = pytest.mark.skipif(not SQUAD.is_dir(), reason="../shared/squad is not here")
SQUAD_FILES = {"SQuAD": ("train-v1.1", "dev-v1.1"), "SQuAD2": ("train-v2.0", "dev-v2.0")}

pytestmark = pytest.mark.filterwarnings("ignore:Unable to enable fault handler")


# ----- data: prefixes of the shared samples under the official names, and RACE / SWAG fixtures -----------
def squad_prefix(source: Path, target: Path, paragraphs: int, questions: int) -> Path:
    """The first ``paragraphs`` paragraphs of the first article, their first ``questions`` questions each."""
    content = json.loads(source.read_text(encoding="utf-8"))
    article = content["data"][0]
    article["paragraphs"] = article["paragraphs"][:paragraphs]
    for paragraph in article["paragraphs"]:
        paragraph["qas"] = paragraph["qas"][:questions]
    target.write_text(json.dumps({"version": content["version"], "data": [article]}), encoding="utf-8")
    return target


def conll_prefix(source: Path, target: Path, sentences: int) -> Path:
    """The ``-DOCSTART-`` line and the first ``sentences`` sentences of a CoNLL file."""
    blocks = source.read_text(encoding="utf-8").split("\n\n")
    target.write_text("\n\n".join(blocks[: sentences + 1]) + "\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def kind_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The data dir of every task whose data is here."""
    root = tmp_path_factory.mktemp("kinds")
    dirs: dict[str, Path] = {}
    if SQUAD.is_dir():
        for task, (train, dev) in SQUAD_FILES.items():
            folder = root / task
            folder.mkdir()
            squad_prefix(SQUAD / f"{train}-sample.json", folder / f"{train}.json", 3, 4)
            squad_prefix(SQUAD / f"{dev}-sample.json", folder / f"{dev}.json", 2, 4)
            dirs[task] = folder
    if CONLL.is_dir():
        folder = root / "NER"
        folder.mkdir()
        for source, name, n in (("train", "train.txt", 24), ("valid", "valid.txt", 12), ("test", "test.txt", 8)):
            conll_prefix(CONLL / f"{source}-sample.txt", folder / name, n)
        dirs["NER"] = folder
    for split in ("train", "dev", "test"):
        write_race(root / "RACE", split)
    dirs["RACE"] = root / "RACE"
    (root / "SWAG").mkdir()
    write_swag(root / "SWAG" / "train.csv")
    write_swag(root / "SWAG" / "val.csv")
    write_swag(root / "SWAG" / "test.csv", labeled=False)
    dirs["SWAG"] = root / "SWAG"
    return dirs


@pytest.fixture(scope="module")
def kind_vocab(tmp_path_factory: pytest.TempPathFactory, kind_data: dict[str, Path]) -> Path:
    """A small vocabulary of every fixture's text and the real GPT-2 BPE files (no download)."""
    corpus = [p for folder in kind_data.values() for p in sorted(folder.rglob("*")) if p.is_file()]
    target = tmp_path_factory.mktemp("kind-vocab")
    GPT2Tokenizer(build_vocab(corpus, *gpt2_bpe_files(), include_unseen=False)).save_pretrained(target)
    return target


def kind_args(task: str, data: Path, vocab: Path, output_dir: Path, *extra: str) -> list[str]:
    """A fast run on the tiny model: windows of 64 tokens, batches of 8, one epoch."""
    return ["--task_name", task, "--data_dir", str(data), "--output_dir", str(output_dir), "--model_config", "tiny",
            "--vocab_path", str(vocab), "--max_seq_len", "64", "--doc_stride", "32", "--max_query_length", "16",
            "--train_batch_size", "8", "--eval_batch_size", "8", "--predict_batch_size", "8",
            "--num_train_epochs", "1", "--learning_rate", "2e-3", "--warmup", "2", "--log_interval", "2", *extra]


def full_run(task: str, kind_data: dict[str, Path], vocab: Path, out: Path, *extra: str) -> Path:
    assert main(kind_args(task, kind_data[task], vocab, out, "--do_train", "--do_eval", "--do_predict", *extra)) == 0
    return out


def dev_results(run: Path) -> dict[str, float]:
    return json.loads((run / records.EVAL_RESULTS_FILE).read_text())["splits"]["dev"]


def assert_recorded(run: Path, task: str, main_metric: str) -> None:
    """metrics.jsonl, eval_results.json, run.json and the checkpoint as every GLUE run has them."""
    history = read_jsonl(run / "metrics.jsonl")
    evals = [e for e in history if e["type"] == "eval"]
    assert evals and main_metric in evals[-1]["metrics"]
    assert dev_results(run)[main_metric] == evals[-1]["metrics"][main_metric]
    manifest = json.loads((run / "run.json").read_text())
    assert set(manifest["feature_stats"]) >= {"train", "dev"}
    best = json.loads((run / "checkpoints" / "best.json").read_text())
    assert best["metric"] == main_metric
    config = json.loads((records.list_checkpoints(run)[-1][1] / "config.json").read_text())
    assert config["finetuning_task"] == task


# ----- the registry and the options ---------------------------------------------------------------------
def test_the_kinds_are_tasks_of_the_app() -> None:
    assert task_names()[-5:] == ["NER", "SQuAD", "SQuAD2", "RACE", "SWAG"]
    assert get_task("squad_v2").name == "SQuAD2" and get_task("conll2003").name == "NER"
    assert is_kind_task(get_task("race")) and not is_kind_task(get_task("RTE"))


def test_squad_options_parse_from_the_command_line_and_the_recipes(tmp_path) -> None:
    base = ["--task_name", "SQuAD", "--data_dir", "d", "--output_dir", "o", "--model_config", "tiny", "--do_train"]
    opts = parse_options(base)
    assert (opts.doc_stride, opts.max_query_length, opts.max_answer_length, opts.n_best_size,
            opts.null_score_diff_threshold) == (128, 64, 30, 20, 0.0)
    recipe = tmp_path / "squad.yaml"  # what experiments/squad/squad.sh writes
    recipe.write_text("doc_stride: 96\nmax_query_length: 48\nmax_answer_length: 40\n")
    opts = parse_options([*base, "--config", str(recipe), "--n_best_size", "5", "--null_score_diff_threshold", "-1.5"])
    assert kind_options(opts) == type(kind_options(opts))(96, 48, 40, 5, -1.5)


@needs_squad
def test_the_feature_cache_keys_on_the_window_options(kind_data, kind_vocab, tmp_path, caplog) -> None:
    task = get_task("SQuAD2")
    examples = task.read(kind_data["SQuAD2"], "dev")
    tokenizer = load_tokenizer(str(kind_vocab), None, option="--vocab_path")
    opts = parse_options(kind_args("SQuAD2", kind_data["SQuAD2"], kind_vocab, tmp_path / "o", "--do_eval"))
    wide = build_kind_features(task, examples, tokenizer, 64, kind_options(opts), False, tmp_path)
    again = build_kind_features(task, examples, tokenizer, 64, kind_options(opts), False, tmp_path)
    options = kind_options(opts)
    narrow = build_kind_features(task, examples, tokenizer, 64, type(options)(doc_stride=16), False, tmp_path)
    assert len(list(tmp_path.glob("kind-features-*.pt"))) == 2
    assert "ignoring unreadable feature cache" not in caplog.text  # the second call read the first one's file
    assert again.stats == wide.stats and len(again) == len(wide)
    assert all(a["input_ids"].tolist() == b["input_ids"].tolist() for a, b in zip(again, wide, strict=True))
    assert len(narrow) > len(wide)  # a shorter stride makes more windows


class _Planted:
    """What a hostile user could leave in a shared cache: unpickling it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@needs_squad
def test_a_planted_pickle_in_the_feature_cache_never_runs(kind_data, kind_vocab, tmp_path, caplog) -> None:
    import pickle

    task = get_task("SQuAD")
    examples = task.read(kind_data["SQuAD"], "dev")
    tokenizer = load_tokenizer(str(kind_vocab), None, option="--vocab_path")
    options = kind_options(parse_options(kind_args("SQuAD", kind_data["SQuAD"], kind_vocab, tmp_path / "o",
                                                   "--do_eval")))
    key = kind_feature_key(task, examples, tokenizer, 64, options, False)
    marker = tmp_path / "code-ran"
    (tmp_path / f"kind-features-{key}.pt").write_bytes(pickle.dumps(_Planted(marker)))
    features = build_kind_features(task, examples, tokenizer, 64, options, False, tmp_path)
    assert not marker.exists() and len(features) > 0
    assert "ignoring unreadable feature cache" in caplog.text


# ----- end to end -------------------------------------------------------------------------------------
@needs_squad
@pytest.mark.parametrize("task", ["SQuAD", "SQuAD2"])
def test_squad_end_to_end_answers_are_exact_context_characters(task, kind_data, kind_vocab, tmp_path) -> None:
    run = full_run(task, kind_data, kind_vocab, tmp_path / "run")
    assert_recorded(run, task, "f1")
    gold_file = kind_data[task] / f"{SQUAD_FILES[task][1]}.json"
    contexts = {q["id"]: p["context"] for a in json.loads(gold_file.read_text())["data"]
                for p in a["paragraphs"] for q in p["qas"]}
    predictions = json.loads((run / "predictions" / "predictions.json").read_text())
    nbest = json.loads((run / "predictions" / "nbest_predictions.json").read_text())
    assert list(predictions) == list(contexts)  # every question, in file order
    for qid, text in predictions.items():
        spans = [c for c in nbest[qid] if c["start"] >= 0]
        for candidate in spans:
            assert contexts[qid][candidate["start"]: candidate["end"]] == candidate["text"]
        if text:
            assert any(c["text"] == text for c in spans)
    na_prob = run / "predictions" / "null_odds.json"
    assert na_prob.exists() == (task == "SQuAD2")
    official = evaluate_squad(gold_file, run / "predictions" / "predictions.json",
                              na_prob if na_prob.exists() else None)
    results = dev_results(run)
    for name in ("exact_match", "f1") if task == "SQuAD" else ("exact", "f1", "best_f1", "HasAns_f1", "NoAns_exact"):
        assert results[name] == pytest.approx(official[name], abs=1e-9), name

    # apps.report shows the run beside GLUE: the official 0–100 F1 as it is, against the paper's.
    (row,) = [r for r in summarize([load_run(run)]) if r.metric == "f1"]
    assert row.task == task and row.means == (results["f1"],)
    assert row.paper_large == ((95.5,) if task == "SQuAD" else (90.7,))


@needs_conll
def test_ner_end_to_end_on_the_conll_samples(kind_data, kind_vocab, tmp_path) -> None:
    run = full_run("NER", kind_data, kind_vocab, tmp_path / "run")
    assert_recorded(run, "NER", "f1")
    config = json.loads((records.list_checkpoints(run)[-1][1] / "config.json").read_text())
    assert config["id2label"]["0"] == get_task("NER").labels[0]
    for split, gold in (("dev", "valid.txt"), ("test", "test.txt")):
        predicted = run / "predictions" / f"NER.{split}.conll"
        rows = [line.split() for line in predicted.read_text().splitlines() if line]
        gold_rows = [line.split() for line in (kind_data["NER"] / gold).read_text().splitlines()
                     if line and not line.startswith("-DOCSTART-")]
        assert [(r[0], r[1]) for r in rows] == [(g[0], g[-1]) for g in gold_rows]  # word, gold tag: every token
    official = evaluate_conll(kind_data["NER"] / "valid.txt", run / "predictions" / "NER.dev.conll")
    results = dev_results(run)
    for name in ("precision", "recall", "f1"):
        assert results[name] == pytest.approx(official[name], abs=1e-9)


def race_answer(folder: Path, guid: str) -> str:
    """The answer letter of RACE question ``<file>-<k>``, read from its file."""
    name, k = guid.rsplit("-", 1)
    (path,) = folder.glob(f"*/{name}")
    return json.loads(path.read_text())["answers"][int(k)]


def swag_labels(path: Path) -> list[str]:
    with path.open(newline="") as f:
        return [row["label"] for row in csv.DictReader(f)]


@pytest.mark.parametrize("task", ["RACE", "SWAG"])
def test_multiple_choice_end_to_end_on_official_layouts(task, kind_data, kind_vocab, tmp_path) -> None:
    run = full_run(task, kind_data, kind_vocab, tmp_path / "run", "--train_batch_size", "2")
    assert_recorded(run, task, "accuracy")
    dev = run / "predictions" / f"{task}.dev.tsv"
    lines = dev.read_text().splitlines()
    assert lines[0] == "id\tprediction" and len(lines) == 1 + (4 if task == "RACE" else 3)
    rows = [line.split("\t") for line in lines[1:]]
    predicted = [prediction for _, prediction in rows]
    gold = [race_answer(kind_data[task] / "dev", guid) for guid, _ in rows] if task == "RACE" else swag_labels(
        kind_data[task] / "val.csv")
    hand = 100 * sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    assert dev_results(run)["accuracy"] == pytest.approx(hand)
    gold_path = kind_data[task] / ("dev" if task == "RACE" else "val.csv")
    assert evaluate_choice(task.lower(), gold_path, dev)["accuracy"] == pytest.approx(hand)
    assert (run / "predictions" / f"{task}.test.tsv").is_file()


@needs_squad
def test_a_training_answer_that_its_start_does_not_locate_is_skipped_and_counted(kind_data, kind_vocab,
                                                                                 tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    content = json.loads((kind_data["SQuAD"] / "train-v1.1.json").read_text())
    answer = content["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]
    answer["answer_start"] += 1  # the text is no longer at its start
    (data / "train-v1.1.json").write_text(json.dumps(content))
    (data / "dev-v1.1.json").write_text((kind_data["SQuAD"] / "dev-v1.1.json").read_text())
    run = tmp_path / "run"
    assert main(kind_args("SQuAD", data, kind_vocab, run, "--do_train", "--max_steps", "1")) == 0
    stats = json.loads((run / "run.json").read_text())["feature_stats"]
    assert stats["train"]["skipped_answers"] == 1 and stats["dev"]["skipped_answers"] == 0


# ----- kill and resume ----------------------------------------------------------------------------------
@needs_squad
def test_a_squad_run_killed_and_resumed_ends_like_an_uninterrupted_one(kind_data, kind_vocab, tmp_path,
                                                                        monkeypatch) -> None:
    def args(out: Path) -> list[str]:
        return kind_args("SQuAD2", kind_data["SQuAD2"], kind_vocab, out, "--do_train", "--do_eval", "--do_predict",
                         "--num_train_epochs", "2", "--dump_interval", "4", "--keep_checkpoints", "2")

    assert main(args(tmp_path / "straight")) == 0
    original_step = Engine._optimizer_step

    def crash_at_update_7(self, *a, **kw):
        if self.step == 6:
            raise RuntimeError("simulated crash")
        return original_step(self, *a, **kw)

    monkeypatch.setattr(Engine, "_optimizer_step", crash_at_update_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args(tmp_path / "crashed"))
    monkeypatch.setattr(Engine, "_optimizer_step", original_step)
    assert main(args(tmp_path / "crashed")) == 0  # --resume auto: continues from step-4

    straight, resumed = tmp_path / "straight", tmp_path / "crashed"
    a = load_file(records.list_checkpoints(straight)[-1][1] / "model.safetensors")
    b = load_file(records.list_checkpoints(resumed)[-1][1] / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)

    def no_timing(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "examples_per_s"} for e in history]

    assert no_timing(read_jsonl(straight / "metrics.jsonl")) == no_timing(read_jsonl(resumed / "metrics.jsonl"))
    for name in ("eval_results.json", "predictions/predictions.json", "predictions/nbest_predictions.json",
                 "predictions/null_odds.json", "checkpoints/best.json"):
        assert (straight / name).read_text() == (resumed / name).read_text(), name

    # Evaluation alone from the last checkpoint (which wrote the final predictions) loads the QA head too.
    again = tmp_path / "again"
    last = records.list_checkpoints(straight)[-1][1]
    args_again = kind_args("SQuAD2", kind_data["SQuAD2"], kind_vocab, again, "--init_model", str(last), "--do_eval")
    at = args_again.index("--model_config")
    del args_again[at: at + 2]  # the checkpoint's own config (its vocabulary was sized to the tokenizer)
    assert main(args_again) == 0
    for name in ("predictions.json", "nbest_predictions.json", "null_odds.json"):
        assert (again / "predictions" / name).read_text() == (straight / "predictions" / name).read_text(), name


# ----- bad inputs ---------------------------------------------------------------------------------------
def _squad_without_answers(folder: Path) -> str:
    content = {"version": "1.1", "data": [{"title": "T", "paragraphs": [
        {"context": "Paris is in France.", "qas": [{"id": "q1", "question": "Where is Paris?"}]}]}]}
    for name in ("train-v1.1.json", "dev-v1.1.json"):
        (folder / name).write_text(json.dumps(content))
    return "SQuAD"


def _conll_wrong_columns(folder: Path) -> str:
    for name in ("train.txt", "valid.txt", "test.txt"):
        (folder / name).write_text("EU B-ORG\nrejects\n\n")
    return "NER"


def _conll_unknown_tag(folder: Path) -> str:
    for name in ("train.txt", "valid.txt", "test.txt"):
        (folder / name).write_text("EU B-ORG\nrejects B-VERB\n\n")
    return "NER"


def _race_without_options(folder: Path) -> str:
    for split in ("train", "dev", "test"):
        (folder / split / "high").mkdir(parents=True)
        (folder / split / "high" / "1.txt").write_text(json.dumps(
            {"article": "A.", "questions": ["Q?"], "answers": ["A"], "id": "1.txt"}))
    return "RACE"


def _swag_missing_split(folder: Path) -> str:
    write_swag(folder / "train.csv")
    return "SWAG"


BAD_INPUTS = {
    "squad question without answers": (_squad_without_answers, "q1"),
    "conll line with a missing column": (_conll_wrong_columns, "train.txt:2"),
    "conll unknown tag": (_conll_unknown_tag, "B-VERB"),
    "race file without options": (_race_without_options, "options"),
    "swag missing split": (_swag_missing_split, "val.csv"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_nothing_written(case, kind_vocab, tmp_path, capsys) -> None:
    make, expected = BAD_INPUTS[case]
    data = tmp_path / "data"
    data.mkdir()
    task = make(data)
    out = tmp_path / "run"
    assert main(kind_args(task, data, kind_vocab, out, "--do_train", "--do_eval")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err
    assert not out.exists()
