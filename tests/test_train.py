"""End-to-end tests of ``python -m DeBERTa.apps.train`` on the tiny model and GLUE-format fixtures.

Runs call :func:`DeBERTa.apps.train.main` in-process (one torch import for all of them); one test runs
the real command to check the exit status. Every run is a few updates of a 2-layer model on 48
examples, on one CPU thread.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path
from unittest import mock

import pytest
import torch
import yaml
from glue_fixtures import QQP_BROKEN_ROWS, write_glue_task
from safetensors.torch import load_file
from test_train_helpers import (  # noqa: F401  (the *_fixture: fixtures)
    GLUE_TASKS,
    N_DEV,
    N_TEST,
    N_TRAIN,
    base_args,
    build_test_vocab,
    glue_root_fixture,
    hand_metrics,
    one_thread_fixture,
    read_jsonl,
    read_tsv,
    task_dir,
    vocab_fixture,
)

from DeBERTa import deberta
from DeBERTa.apps import records
from DeBERTa.apps.tasks import get_task
from DeBERTa.apps.train import main
from DeBERTa.apps.trainer import classifier_rows, lr_factor, override_config
from DeBERTa.deberta.tokenizer import GPT2Tokenizer
from DeBERTa.training.engine import Engine

UPDATES_PER_EPOCH = N_TRAIN // 8

# torchrun's error recorder (on main) cannot enable faulthandler on pytest's captured stderr; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Unable to enable fault handler")


class Runs:
    """Full runs (train, evaluate, predict) of each task, made once per module and shared by tests."""

    def __init__(self, root: Path, glue_root: Path, vocab: Path):
        self.root, self.glue_root, self.vocab = root, glue_root, vocab
        self.done: dict[str, Path] = {}

    def __call__(self, task: str) -> Path:
        if task not in self.done:
            out = self.root / task
            with pytest.MonkeyPatch.context() as env:  # the per-test cache isolation of conftest, here per module
                env.setenv("DEBERTA_CACHE", str(self.root / "cache"))
                env.setenv("DEBERTA_MODEL_HUB", "http://127.0.0.1:9")
                assert main(base_args(self.glue_root, self.vocab, task, out, "--do_train", "--do_eval",
                                      "--do_predict")) == 0
            self.done[task] = out
        return self.done[task]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, glue_root, vocab) -> Runs:
    return Runs(tmp_path_factory.mktemp("runs"), glue_root, vocab)


def final_checkpoint(run: Path) -> Path:
    return records.list_checkpoints(run)[-1][1]


# ------------------------------------------------------------------------------------------------------
# Every task, end to end
# ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task_name", GLUE_TASKS)
def test_every_glue_task_end_to_end(task_name, runs) -> None:
    run = runs(task_name)
    task = get_task(task_name)

    options = yaml.safe_load((run / "config.yaml").read_text())
    assert options["task_name"] == task_name and options["train_batch_size"] == 8
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["version"] == deberta_version() and manifest["seed"] == 1234
    assert manifest["torch"] == torch.__version__ and manifest["end_time"] is not None
    # Malformed rows are counted where the task skips them (QQP's train and dev files) and reported.
    assert manifest["skipped_rows"] == ({"train": 2 * QQP_BROKEN_ROWS, "dev": 0} if task_name == "QQP" else {})
    if task_name == "QQP":
        assert f"malformed rows skipped (recorded in run.json): train {2 * QQP_BROKEN_ROWS}, dev 0" in (
            run / "train.log").read_text()

    history = read_jsonl(run / "metrics.jsonl")
    train = [e for e in history if e["type"] == "train"]
    assert [e["step"] for e in train] == [2, 4, 6]
    assert all(e["loss"] > 0 and e["lr"] > 0 and e["examples_per_s"] > 0 for e in train)
    evals = [e for e in history if e["type"] == "eval"]
    assert [(e["step"], e["split"]) for e in evals] == [(UPDATES_PER_EPOCH, s) for s in task.eval_splits]
    assert all(e["epoch"] == 1.0 for e in evals)

    latest = json.loads((run / "eval_results.json").read_text())
    assert latest["step"] == UPDATES_PER_EPOCH and set(latest["splits"]) == set(task.eval_splits)
    for split in task.eval_splits:
        header, rows = read_tsv(run / "predictions" / f"{split}_predictions.tsv")
        logit_columns = [] if task.is_regression else [f"logit_{name}" for name in task.labels]
        assert header == ["index", "prediction", "label", *logit_columns] and len(rows) == N_DEV
        for row in rows if logit_columns else []:  # the predicted label is the one with the highest logit
            logits = [float(v) for v in row[3:]]
            assert row[1] == task.labels[logits.index(max(logits))]
        recorded = latest["splits"][split]
        by_hand = hand_metrics(list(task.metrics), rows)
        assert set(recorded) == {"loss", *task.metrics}
        for name, value in by_hand.items():
            assert recorded[name] == pytest.approx(value, abs=1e-6), (split, name)
        assert [e["metrics"] for e in evals if e["split"] == split] == [{k: recorded[k] for k in task.metrics}]

    for split in task.test_splits:
        header, rows = read_tsv(run / "predictions" / task.prediction_file(split))
        assert header == ["index", "prediction"] and [r[0] for r in rows] == [str(i) for i in range(N_TEST)]
        if task.is_regression:
            assert all(0.0 <= float(r[1]) <= 5.0 for r in rows)
        else:
            assert {r[1] for r in rows} <= set(task.labels)
    if task_name == "MNLI":  # the diagnostic set beside MNLI is predicted by the same model
        _, rows = read_tsv(run / "predictions" / "AX.tsv")
        assert len(rows) == N_TEST and {r[1] for r in rows} <= set(task.labels)

    assert [step for step, _ in records.list_checkpoints(run)] == [UPDATES_PER_EPOCH]
    assert json.loads((run / "checkpoints" / "best.json").read_text())["step"] == UPDATES_PER_EPOCH


def deberta_version() -> str:
    import DeBERTa

    return DeBERTa.__version__


def test_checkpoint_is_a_hugging_face_model_folder(runs) -> None:
    checkpoint = final_checkpoint(runs("RTE"))
    assert {p.name for p in checkpoint.iterdir()} >= {"config.json", "model.safetensors", "training_state.pt",
                                                      "bpe_encoder.bin", "vocab.json", "merges.txt"}
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["num_labels"] == 2 and config["finetuning_task"] == "RTE"
    assert config["id2label"] == {"0": "not_entailment", "1": "entailment"}
    assert config["label2id"] == {"not_entailment": 0, "entailment": 1}
    weights = load_file(checkpoint / "model.safetensors")
    assert {k.split(".")[0] for k in weights} == {"deberta", "pooler", "classifier"}
    assert weights["classifier.weight"].shape == (2, 32)

    state, model_config = deberta.load_model_state(checkpoint)  # the library's loader reads it as it is
    assert model_config == deberta.ModelConfig.from_json_file(checkpoint / "config.json")
    assert all(torch.equal(state[k], weights[k]) for k in weights)
    assert GPT2Tokenizer(checkpoint).vocab_size == model_config.vocab_size

    training = torch.load(checkpoint / "training_state.pt", weights_only=True)
    assert training["step"] == UPDATES_PER_EPOCH and training["world_size"] == 1
    assert {"optimizer", "scheduler", "scaler", "rng", "best"} <= set(training)


def test_checkpoint_loads_in_transformers_with_the_same_logits(runs) -> None:
    from transformers import DebertaForSequenceClassification

    checkpoint = final_checkpoint(runs("RTE"))
    theirs = DebertaForSequenceClassification.from_pretrained(checkpoint).eval()
    ours = deberta.SequenceClassificationModel(None, 2, pre_trained=str(checkpoint)).eval()
    ids = torch.randint(4, ours.config.vocab_size, (3, 17), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        torch.testing.assert_close(theirs(input_ids=ids, attention_mask=mask).logits,
                                   ours(ids, input_mask=mask).logits, atol=1e-6, rtol=1e-5)


def test_mnli_run_starts_rte_with_a_new_classifier(runs, glue_root, tmp_path, caplog) -> None:
    mnli = final_checkpoint(runs("MNLI"))
    out = tmp_path / "rte"
    # The run folder stands for its best checkpoint, as experiments/glue passes an MNLI run.
    args = base_args(glue_root, Path("unused"), "RTE", out, "--do_train", "--init_model", str(runs("MNLI")),
                     "--max_steps", "1", "--learning_rate", "1e-9", "--weight_decay", "0")
    args = [a for a in args if a not in ("--model_config", "tiny", "--vocab_path", "unused")]
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert f"using its best checkpoint, {mnli.name}" in caplog.text
    assert "loaded encoder, pooler; new: classifier" in caplog.text
    before, after = load_file(mnli / "model.safetensors"), load_file(final_checkpoint(out) / "model.safetensors")
    assert after["classifier.weight"].shape == (2, 32) and before["classifier.weight"].shape == (3, 32)
    for key in before:  # one update at lr 1e-9 moves nothing visibly
        if not key.startswith("classifier."):
            torch.testing.assert_close(after[key], before[key], atol=1e-7, rtol=0)
    # The tokenizer came with the checkpoint (no --vocab_path) and was saved with the new one.
    assert (final_checkpoint(out) / "bpe_encoder.bin").read_bytes() == (mnli / "bpe_encoder.bin").read_bytes()


def test_ax_is_predicted_with_the_mnli_model(runs, glue_root, tmp_path) -> None:
    mnli = final_checkpoint(runs("MNLI"))
    out = tmp_path / "ax"
    assert main(["--task_name", "AX", "--do_predict", "--data_dir", str(glue_root / "diagnostic"),
                 "--output_dir", str(out), "--init_model", str(mnli), "--max_seq_len", "32"]) == 0
    _, rows = read_tsv(out / "predictions" / "AX.tsv")
    # The same model on the same file as the MNLI run's own AX.tsv: the same predictions.
    assert rows == read_tsv(runs("MNLI") / "predictions" / "AX.tsv")[1]
    assert not (out / "checkpoints").exists()


def test_pretrained_folder_in_the_original_layout_brings_its_tokenizer(glue_root, vocab, tmp_path) -> None:
    folder = tmp_path / "pretrained"
    folder.mkdir()
    config = deberta.ModelConfig.preset("tiny", vocab_size=GPT2Tokenizer(vocab).vocab_size)
    torch.manual_seed(0)
    encoder = deberta.DeBERTa(config)
    torch.save({f"bert.{k}": v for k, v in encoder.state_dict().items()}, folder / "pytorch.model.bin")
    config.save(folder / "model_config.json", layout="original")
    (folder / "bpe_encoder.bin").write_bytes((vocab / "bpe_encoder.bin").read_bytes())
    out = tmp_path / "sst"
    args = base_args(glue_root, vocab, "SST-2", out, "--do_train", "--init_model", str(folder), "--max_steps", "1",
                     "--learning_rate", "1e-9", "--weight_decay", "0")
    args = [a for a in args if a not in ("--model_config", "tiny", "--vocab_path", str(vocab))]
    assert main(args) == 0
    weights = load_file(final_checkpoint(out) / "model.safetensors")
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(weights[f"deberta.{key}"], value, atol=1e-7, rtol=0)


def test_evaluating_a_checkpoint_reproduces_its_results(runs, glue_root, tmp_path) -> None:
    run = runs("STS-B")
    out = tmp_path / "eval"
    assert main(["--task_name", "STS-B", "--do_eval", "--data_dir", str(task_dir(glue_root, "STS-B")),
                 "--output_dir", str(out), "--init_model", str(final_checkpoint(run)), "--max_seq_len", "32",
                 "--eval_batch_size", "8"]) == 0
    again, trained = (json.loads((r / "eval_results.json").read_text()) for r in (out, run))
    assert again["step"] == 0  # no update in this run
    for name, value in trained["splits"]["dev"].items():
        assert again["splits"]["dev"][name] == pytest.approx(value, abs=1e-6), name
    assert (out / "predictions" / "dev_predictions.tsv").read_text() == (
        run / "predictions" / "dev_predictions.tsv").read_text()
    assert not (out / "checkpoints").exists()


def write_polarity_task(folder: Path, glue_root: Path, labels: list[str]) -> Path:
    """A custom task (task.yaml) on SST-2's fixture sentences labelled NEG / POS, classifier rows in the
    order of ``labels``."""
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text("name: polarity\nfiles: {train: train.tsv, dev: dev.tsv}\n"
                                      f"text_columns: [sentence]\nlabel_column: label\nlabels: {json.dumps(labels)}\n")
    for split in ("train", "dev"):
        _, rows = read_tsv(task_dir(glue_root, "SST-2") / f"{split}.tsv")
        (folder / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(
            f"{sentence}\t{('NEG', 'POS')[int(label)]}\n" for sentence, label in rows), encoding="utf-8")
    return folder


def test_own_checkpoint_with_custom_labels_keeps_its_classifier(glue_root, vocab, tmp_path, caplog) -> None:
    data = write_polarity_task(tmp_path / "polarity", glue_root, ["NEG", "POS"])
    run = tmp_path / "run"
    args = base_args(glue_root, vocab, "SST-2", run, "--do_train")
    args[args.index("--task_name") + 1], args[args.index("--data_dir") + 1] = "polarity", str(data)
    assert main(args) == 0
    trained = json.loads((run / "eval_results.json").read_text())["splits"]["dev"]
    _, trained_rows = read_tsv(run / "predictions" / "dev_predictions.tsv")

    def evaluate(data_dir: Path, out: Path) -> tuple[dict, list[list[str]]]:
        assert main(["--task_name", "polarity", "--do_eval", "--data_dir", str(data_dir), "--output_dir", str(out),
                     "--init_model", str(run), "--max_seq_len", "32", "--eval_batch_size", "8"]) == 0
        return (json.loads((out / "eval_results.json").read_text())["splits"]["dev"],
                read_tsv(out / "predictions" / "dev_predictions.tsv")[1])

    with caplog.at_level("INFO"):
        again, rows = evaluate(data, tmp_path / "eval")
    assert "re-initialised" not in caplog.text and "loaded encoder, pooler, classifier; new: nothing" in caplog.text
    assert again == pytest.approx(trained, abs=1e-6) and rows == trained_rows

    # The same labels in the other order: the classifier's rows follow their labels.
    swapped = write_polarity_task(tmp_path / "swapped", glue_root, ["POS", "NEG"])
    again, rows = evaluate(swapped, tmp_path / "eval-swapped")
    assert again == pytest.approx(trained, abs=1e-6)
    assert [r[:3] for r in rows] == [r[:3] for r in trained_rows]  # the same predictions, by name
    logits = [[float(v) for v in r[3:]] for r in rows]  # logit_POS, logit_NEG
    assert logits == [pytest.approx([float(r[4]), float(r[3])], abs=1e-5) for r in trained_rows]


def test_classifier_rows_follow_label_names() -> None:
    mnli = ["contradiction", "neutral", "entailment"]
    assert classifier_rows(["NEG", "POS"], ["NEG", "POS"], exact=True) == [0, 1]
    assert classifier_rows(["POS", "NEG"], ["NEG", "POS"], exact=True) == [1, 0]
    assert classifier_rows(["neg", "pos"], ["NEG", "POS"], exact=True) is None  # this app's: names as given
    # The hub's MNLI models spell their labels in capitals.
    assert classifier_rows(["CONTRADICTION", "NEUTRAL", "ENTAILMENT"], mnli, exact=False) == [0, 1, 2]
    assert classifier_rows(["ENTAILMENT", "NEUTRAL", "CONTRADICTION"], mnli, exact=False) == [2, 1, 0]
    assert classifier_rows(["Neg", "Pos"], ["NEG", "pos"], exact=False) == [0, 1]
    assert classifier_rows(["a", "b"], ["a", "c"], exact=False) is None
    assert classifier_rows(["a", "A"], ["a", "b"], exact=False) is None  # the same name without case
    assert classifier_rows(["a", "b", "c"], ["a", "b"], exact=True) is None


def test_evaluating_in_a_training_run_folder_leaves_its_records_alone(runs, glue_root, tmp_path) -> None:
    run = tmp_path / "rte"
    shutil.copytree(runs("RTE"), run)
    kept = ("config.yaml", "run.json", "metrics.jsonl", "eval_results.json", "train.log")
    before = {name: (run / name).read_bytes() for name in kept}
    assert main(["--task_name", "RTE", "--do_eval", "--do_predict", "--data_dir", str(task_dir(glue_root, "RTE")),
                 "--output_dir", str(run), "--init_model", str(run), "--max_seq_len", "32",
                 "--eval_batch_size", "8"]) == 0
    assert {name: (run / name).read_bytes() for name in kept} == before
    record = json.loads((run / "eval-run.json").read_text())
    assert record["options"]["do_eval"] and not record["options"]["do_train"] and record["end_time"]
    assert record["model"] == str(final_checkpoint(run)) and record["argv"][:2] == ["--task_name", "RTE"]
    trained = json.loads(before["eval_results.json"])["splits"]["dev"]
    assert record["results"]["splits"]["dev"] == pytest.approx(trained, abs=1e-6)
    assert "predictions of RTE test" in (run / "eval.log").read_text()
    assert len(read_tsv(run / "predictions" / "RTE.tsv")[1]) == N_TEST


SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "glue-samples"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/glue-samples is not there")
@pytest.mark.parametrize("task_name", ["MRPC", "RTE", "SST-2", "STS-B", "WNLI"])
def test_real_glue_samples(task_name, tmp_path) -> None:
    vocab = build_test_vocab(SAMPLES, tmp_path / "vocab")
    out = tmp_path / "run"
    args = base_args(SAMPLES, vocab, task_name, out, "--do_train", "--do_eval", "--do_predict", "--max_steps", "3",
                     "--max_seq_len", "64", "--eval_batch_size", "64", "--predict_batch_size", "64")
    args[args.index("--data_dir") + 1] = str(SAMPLES / task_name)
    assert main(args) == 0
    task = get_task(task_name)
    results = json.loads((out / "eval_results.json").read_text())["splits"]["dev"]
    _, rows = read_tsv(out / "predictions" / "dev_predictions.tsv")
    dev_rows = (SAMPLES / task_name / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == len(dev_rows)
    for name, value in hand_metrics(list(task.metrics), rows).items():
        assert results[name] == pytest.approx(value, abs=1e-6)
    test_rows = (SAMPLES / task_name / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    assert len(read_tsv(out / "predictions" / task.prediction_file("test"))[1]) == len(test_rows)


def test_tensorboard_events_when_installed(glue_root, vocab, tmp_path, monkeypatch) -> None:
    # TensorBoard is optional and not a test dependency: a stand-in SummaryWriter records what the run
    # logs through torch.utils.tensorboard.
    logged: list[tuple[str, float, int]] = []

    class SummaryWriter:
        def __init__(self, log_dir: str, purge_step: int | None = None):
            assert Path(log_dir) == tmp_path / "run" / "tensorboard" and purge_step is None

        def add_scalar(self, tag: str, value: float, step: int) -> None:
            logged.append((tag, value, step))

        def close(self) -> None:
            logged.append(("closed", 0.0, 0))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=SummaryWriter))
    assert main(base_args(glue_root, vocab, "CoLA", tmp_path / "run", "--do_train")) == 0
    tags = [tag for tag, _, _ in logged]
    assert tags.count("train/loss") == 3 and tags.count("train/lr") == 3
    assert ("eval/dev/mcc" in tags and "eval/dev/accuracy" in tags and "eval/dev/loss" in tags)
    assert tags[-1] == "closed"
    history = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert [(v, s) for t, v, s in logged if t == "train/loss"] == [
        (e["loss"], e["step"]) for e in history if e["type"] == "train"]


# ------------------------------------------------------------------------------------------------------
# Training mechanics
# ------------------------------------------------------------------------------------------------------
def no_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "examples_per_s"} for e in history]


def test_resume_after_a_crash_ends_exactly_like_an_uninterrupted_run(glue_root, vocab, tmp_path,
                                                                      monkeypatch) -> None:
    # 2 epochs = 12 updates; evaluation and checkpoint at 4, 6 (epoch end), 8, 12. Dropout is on, so the
    # RNG states must be restored too.
    def args(out: Path) -> list[str]:
        return base_args(glue_root, vocab, "MRPC", out, "--do_train", "--do_predict", "--num_train_epochs", "2",
                         "--dump_interval", "4", "--keep_checkpoints", "2")

    assert main(args(tmp_path / "straight")) == 0

    original_step = Engine._optimizer_step

    def crash_at_update_10(self, *a, **kw):
        if self.step == 9:
            raise RuntimeError("simulated crash")
        return original_step(self, *a, **kw)

    monkeypatch.setattr(Engine, "_optimizer_step", crash_at_update_10)
    with pytest.raises(RuntimeError, match="simulated crash"):
        main(args(tmp_path / "crashed"))
    best = json.loads((tmp_path / "crashed" / "checkpoints" / "best.json").read_text())["checkpoint"]
    kept = [s for s, _ in records.list_checkpoints(tmp_path / "crashed")]
    assert kept == sorted({6, 8, int(best.removeprefix("step-"))})  # the newest two and the best
    monkeypatch.setattr(Engine, "_optimizer_step", original_step)
    assert main(args(tmp_path / "crashed")) == 0  # --resume auto: continues from step-8

    straight, resumed = tmp_path / "straight", tmp_path / "crashed"
    a = load_file(final_checkpoint(straight) / "model.safetensors")
    b = load_file(final_checkpoint(resumed) / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert no_timing(read_jsonl(straight / "metrics.jsonl")) == no_timing(read_jsonl(resumed / "metrics.jsonl"))
    for name in ("eval_results.json", "predictions/dev_predictions.tsv", "predictions/MRPC.tsv",
                 "checkpoints/best.json"):
        assert (straight / name).read_text() == (resumed / name).read_text(), name
    assert [s for s, _ in records.list_checkpoints(resumed)] == [s for s, _ in records.list_checkpoints(straight)]


def test_resume_never_starts_over_in_the_same_folder(glue_root, vocab, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(base_args(glue_root, vocab, "WNLI", out, "--do_train", "--do_predict")) == 0
    assert main(base_args(glue_root, vocab, "WNLI", out, "--do_train", "--max_steps", "2", "--resume", "never")) == 0
    assert [s for s, _ in records.list_checkpoints(out)] == [2]
    assert [(e["type"], e["step"]) for e in read_jsonl(out / "metrics.jsonl")] == [("train", 2), ("eval", 2)]
    assert not (out / "predictions" / "WNLI.tsv").exists()  # the earlier run's predictions are gone


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_auto_resume_refuses_a_run_of_other_options(glue_root, vocab, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(base_args(glue_root, vocab, "WNLI", out, "--do_train")) == 0
    before = snapshot(out)
    capsys.readouterr()  # the first run's log
    assert main(base_args(glue_root, vocab, "WNLI", out, "--do_train", "--learning_rate", "1e-3", "--seed", "7")) == 2
    assert_one_error_line(capsys, f"--output_dir {out} holds a run trained with other options (--learning_rate "
                                  "0.002 -> 0.001, --seed 1234 -> 7): repeat them to continue it, start over with "
                                  "--resume never, or use another --output_dir")
    assert snapshot(out) == before


def test_a_finished_run_is_not_trained_again(glue_root, vocab, tmp_path, caplog) -> None:
    out = tmp_path / "run"
    args = base_args(glue_root, vocab, "WNLI", out, "--do_train")
    assert main(args) == 0
    before = snapshot(out)
    with caplog.at_level("INFO"):
        assert main(args) == 0
    assert "the run is already complete (6 of 6 updates): not training it again" in caplog.text
    assert snapshot(out) == before

    # Evaluation and prediction still run, with the trained model, recorded beside the run's own records.
    assert main([*args, "--do_eval", "--do_predict"]) == 0
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before and not k.startswith("predictions/")} == {
        k: v for k, v in before.items() if not k.startswith("predictions/")}
    record = json.loads(after["eval-run.json"])
    trained = json.loads(before["eval_results.json"])
    assert record["results"]["step"] == trained["step"] == UPDATES_PER_EPOCH
    assert record["results"]["splits"]["dev"] == pytest.approx(trained["splits"]["dev"], abs=1e-6)
    assert record["model"] == str(final_checkpoint(out))
    assert "predictions/WNLI.tsv" in after


def test_resuming_with_another_precision(glue_root, vocab, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(base_args(glue_root, vocab, "SST-2", out, "--do_train", "--bf16", "--max_steps", "2")) == 0
    capsys.readouterr()  # the first run's log
    # --resume auto takes another precision for another run ...
    assert main(base_args(glue_root, vocab, "SST-2", out, "--do_train", "--fp16", "--max_steps", "4")) == 2
    assert_one_error_line(capsys, "(--max_steps 2 -> 4, --fp16 False -> True, --bf16 True -> False)")
    # ... but a checkpoint named with --resume continues, with a new fp16 loss scale (bf16 had none).
    checkpoint = final_checkpoint(out)
    assert main(base_args(glue_root, vocab, "SST-2", out, "--do_train", "--fp16", "--max_steps", "4",
                          "--resume", str(checkpoint))) == 0
    state = torch.load(final_checkpoint(out) / "training_state.pt", weights_only=True)
    assert state["step"] == 4 and state["options"]["fp16"] and state["scaler"]["scale"] == 256.0  # --loss_scale


def test_resume_drops_a_torn_last_line_of_the_history(tmp_path, caplog) -> None:
    entries = [{"type": "train", "step": step, "loss": 1.0} for step in (2, 4, 6)]
    history = tmp_path / "metrics.jsonl"
    history.write_text("".join(json.dumps(e) + "\n" for e in entries) + '{"type": "eval", "step": 6, "spl')
    run = records.RunRecords(tmp_path, enabled=True)
    with caplog.at_level("WARNING"):
        run.start({"task_name": "RTE"}, {"seed": 1}, "resume", resume_step=4)
    run.close()
    assert read_jsonl(history) == entries[:2]
    assert "metrics.jsonl: dropping its unreadable last line" in caplog.text
    # A damaged line before the last is no torn write: it is reported, not dropped.
    history.write_text(json.dumps(entries[0]) + "\ngarbage\n" + json.dumps(entries[1]) + "\n")
    with pytest.raises(records.RunFolderError, match="metrics.jsonl line 2 is not a metrics entry") as err:
        records.RunRecords(tmp_path, enabled=True).start({}, {}, "resume", resume_step=4)
    assert "\n" not in str(err.value)


def tiny_without_dropout(path: Path, vocab: Path) -> Path:
    deberta.ModelConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                               vocab_size=GPT2Tokenizer(vocab).vocab_size).save(path, layout="hf")
    return path


def test_accumulation_gives_the_update_of_the_whole_batch(glue_root, vocab, tmp_path) -> None:
    # 8 examples in one micro-batch, or 4 micro-batches of 2 (loaded by a worker process).
    config = tiny_without_dropout(tmp_path / "config.json", vocab)
    final = []
    for accumulation, workers in (("1", "0"), ("4", "1")):
        out = tmp_path / f"accumulate-{accumulation}"
        args = base_args(glue_root, vocab, "QNLI", out, "--do_train", "--model_config", str(config),
                         "--cls_drop_out", "0", "--accumulative_update", accumulation, "--workers", workers)
        assert main(args) == 0
        final.append(load_file(final_checkpoint(out) / "model.safetensors"))
    for key in final[0]:
        torch.testing.assert_close(final[0][key], final[1][key], atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("precision", ["--fp16", "--bf16"])
def test_mixed_precision_runs_on_cpu(precision, glue_root, vocab, tmp_path) -> None:
    out = tmp_path / "run"
    assert main(base_args(glue_root, vocab, "SST-2", out, "--do_train", "--do_eval", precision,
                          "--loss_scale", "1024", "--scale_steps", "2")) == 0
    losses = [e["loss"] for e in read_jsonl(out / "metrics.jsonl") if e["type"] == "train"]
    assert len(losses) == 3 and all(0 < x < 10 for x in losses)
    checkpoint = final_checkpoint(out)
    assert all(t.dtype == torch.float32 for t in load_file(checkpoint / "model.safetensors").values())
    scaler = torch.load(checkpoint / "training_state.pt", weights_only=True)["scaler"]
    if precision == "--fp16":
        # Dynamic loss scale: started at --loss_scale 1024, doubled every --scale_steps 2 updates without
        # overflow. The tiny model's gradients never overflow at these scales, so after its 6 updates the
        # scale has doubled 3 times and no overflow-free update is pending.
        assert scaler["growth_interval"] == 2 and scaler["growth_factor"] == 2.0
        assert scaler["scale"] == 1024.0 * 2**3 and scaler["_growth_tracker"] == 0
    else:
        assert scaler == {}  # bf16 needs no loss scaling


def test_learning_rate_schedule() -> None:
    # 10 updates, 2 of warm-up: 0.5, 1.0, then linear from 1 down to 1/8 at the last update.
    factors = [lr_factor("warmup_linear", u, 10, 2) for u in range(1, 11)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    assert lr_factor("warmup_constant", 9, 10, 2) == 1.0
    assert lr_factor("warmup_cosine", 3, 10, 2) == 1.0 and lr_factor("warmup_cosine", 7, 10, 2) == pytest.approx(
        0.5 * (1 + __import__("math").cos(__import__("math").pi * 4 / 8)))
    assert lr_factor("warmup_linear", 1, 5, 0) == 1.0


def test_adamw_is_fused_where_the_device_has_it_and_updates_as_the_default() -> None:
    from DeBERTa.training.optim import build_optimizer

    def updated(model: torch.nn.Module, fused: bool | None) -> list[torch.Tensor]:
        optimizer, scheduler = build_optimizer(model, learning_rate=1e-2, weight_decay=0.01, betas=(0.9, 0.999),
                                               epsilon=1e-6, schedule="warmup_linear", total=4, warmup=1)
        assert optimizer.defaults["fused"] is fused
        for step in range(3):
            torch.manual_seed(step)
            model(torch.randn(5, 8)).square().sum().backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        return [p.detach().clone() for p in model.parameters()]

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.LayerNorm(6), torch.nn.Linear(6, 3))
    fused = updated(copy.deepcopy(model), True)
    with mock.patch("DeBERTa.training.optim.FUSED_ADAMW_DEVICES", ()):  # a device without the fused kernel
        default = updated(copy.deepcopy(model), False)
    assert not all(torch.equal(a, b) for a, b in zip(fused, model.parameters(), strict=True))  # it moved
    for a, b in zip(fused, default, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_model_config_overrides_the_checkpoint_settings(tmp_path) -> None:
    large = deberta.ModelConfig.preset("large", pooler_dropout=0.3)
    # The original experiments pass a partial file in the original layout...
    partial = tmp_path / "config.json"
    partial.write_text('{"pooling": {"dropout": 0, "hidden_act": "gelu"}}')
    merged = override_config(large, str(partial))
    assert merged.pooler_dropout == 0 and merged.hidden_size == 1024 and merged.num_hidden_layers == 24
    # ... or flat keys of either layout.
    partial.write_text('{"hidden_dropout_prob": 0.2, "pooler_dropout": 0.1}')
    merged = override_config(large, str(partial))
    assert merged.hidden_dropout_prob == 0.2 and merged.pooler_dropout == 0.1 and merged.hidden_size == 1024


def test_pruning_keeps_the_newest_and_the_best_checkpoints(tmp_path) -> None:
    for step in (2, 4, 6, 8):
        folder = records.checkpoints_dir(tmp_path) / f"step-{step}"
        folder.mkdir(parents=True)
        (folder / records.TRAINING_STATE_FILE).write_bytes(b"")
    (records.checkpoints_dir(tmp_path) / ".step-10-killed").mkdir()  # a write that never finished
    (records.checkpoints_dir(tmp_path) / "step-9").mkdir()  # no training state: not a checkpoint
    assert [s for s, _ in records.list_checkpoints(tmp_path)] == [2, 4, 6, 8]
    records.prune_checkpoints(tmp_path, keep=2, best_step=2)
    assert [s for s, _ in records.list_checkpoints(tmp_path)] == [2, 6, 8]
    assert not (records.checkpoints_dir(tmp_path) / ".step-10-killed").exists()


# ------------------------------------------------------------------------------------------------------
# Bad input: one line on stderr, exit status 2, nothing written
# ------------------------------------------------------------------------------------------------------
def break_file(path: Path, how: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if how == "malformed":
        lines[5] = "just one field\n"
    elif how == "unknown label":
        fields = lines[5].rstrip("\n").split("\t")
        lines[5] = "\t".join(fields[:-1] + ["maybe"]) + "\n"
    elif how == "empty":
        lines = []
    path.write_text("".join(lines), encoding="utf-8")


BAD_INPUTS = {
    "missing data dir": (lambda d: d / "nowhere", "does not exist; task RTE expects train.tsv"),
    "missing file": (lambda d: (d / "dev.tsv").unlink() or d, "no dev.tsv in"),
    "malformed row": (lambda d: break_file(d / "train.tsv", "malformed") or d, "train.tsv:6: malformed row"),
    "unknown label": (lambda d: break_file(d / "dev.tsv", "unknown label") or d, "dev.tsv:6: unknown label 'maybe'"),
    "empty file": (lambda d: break_file(d / "train.tsv", "empty") or d, "train.tsv is empty"),
}


def assert_one_error_line(capsys, message: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_data_is_one_line_and_writes_nothing(case, tmp_path, vocab, capsys) -> None:
    make_data_dir, message = BAD_INPUTS[case]
    data = write_glue_task(tmp_path / "glue", "RTE", n_train=12, n_dev=8, n_test=4)
    data_dir = make_data_dir(data)
    out = tmp_path / "out"
    args = base_args(tmp_path / "glue", vocab, "RTE", out, "--do_train", "--do_eval")
    args[args.index("--data_dir") + 1] = str(data_dir)
    assert main(args) == 2
    assert_one_error_line(capsys, message)
    assert not out.exists()


@pytest.mark.parametrize("extra, message", [
    (["--task_name", "GLUEY"], "unknown task 'GLUEY'"),
    (["--train_batch_size", "10", "--accumulative_update", "4"], "does not divide over 1 process(es)"),
    (["--init_model", "no-such-model"], "neither a local path nor a known model name"),
    (["--model_config", "huge"], "neither a JSON file nor a preset"),
    (["--resume", "/nonexistent/step-3"], "not a checkpoint of this app"),
    (["--task_name", "AX"], "task AX has no 'train' split (it is predicted with a fine-tuned MNLI model)"),
    (["--learning_rate", "-1"], "must be a positive number"),
])
def test_bad_options_are_one_line_and_write_nothing(extra, message, glue_root, vocab, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    assert main(base_args(glue_root, vocab, "RTE", out, "--do_train", *extra)) == 2
    assert_one_error_line(capsys, message)
    assert not out.exists()


def test_output_dir_of_another_task_is_refused(runs, glue_root, vocab, capsys) -> None:
    cola = runs("CoLA")
    capsys.readouterr()  # the CoLA run's own log, when this test is the first to ask for it
    before = sorted(p.relative_to(cola) for p in cola.rglob("*"))
    assert main(base_args(glue_root, vocab, "SST-2", cola, "--do_train")) == 2
    assert_one_error_line(capsys, "holds a run of task CoLA, not SST-2")
    assert sorted(p.relative_to(cola) for p in cola.rglob("*")) == before


def test_the_command_exits_2_without_a_traceback(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "DeBERTa.apps.train", "--task_name", "MNLI", "--do_train",
                             "--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "out"),
                             "--model_config", "tiny"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: data dir") and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # compiling even the tiny model takes 1-2 minutes on two cores
def test_compiled_model_trains_like_the_eager_one(glue_root, vocab, tmp_path) -> None:
    config = tiny_without_dropout(tmp_path / "config.json", vocab)
    final = []
    for mode in ([], ["--compile"]):
        out = tmp_path / ("compiled" if mode else "eager")
        assert main(base_args(glue_root, vocab, "SST-2", out, "--do_train", "--model_config", str(config),
                              "--cls_drop_out", "0", "--max_steps", "2", *mode)) == 0
        final.append(load_file(final_checkpoint(out) / "model.safetensors"))
    for key in final[0]:
        torch.testing.assert_close(final[0][key], final[1][key], atol=1e-5, rtol=1e-4)
