"""``torchrun --nproc_per_node 2`` on the CPU (gloo) against one process, on the tiny model.

Dropout is off so that the two layouts compute the same thing: the same global batches (8 examples:
2 ranks x 4, or 1 process x 2 accumulation steps x 4) must give the same parameters, metrics and
per-example logits, with a dev set of 19 examples (not a multiple of 2) evaluated over the ranks; and
2 ranks x 2 accumulation steps x 2 (gradient sync skipped on the first micro-step) the same parameters
as 1 process x 4 accumulation steps x 2.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_train_helpers import (  # noqa: F401  (the *_fixture: fixtures)
    N_DEV,
    base_args,
    glue_root_fixture,
    one_thread_fixture,
    read_jsonl,
    read_tsv,
    vocab_fixture,
)

from DeBERTa import deberta
from DeBERTa.apps import records
from DeBERTa.apps.train import main
from DeBERTa.deberta.tokenizer import GPT2Tokenizer

pytestmark = pytest.mark.filterwarnings("ignore:Unable to enable fault handler")

TASK = "RTE"
STEPS = 12  # 2 epochs of 6 updates; evaluations and checkpoints at 4, 6, 8, 12


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("distributed")


def run_args(glue_root: Path, vocab: Path, workdir: Path, output_dir: Path, *extra: str) -> list[str]:
    config = workdir / "tiny-no-dropout.json"
    if not config.exists():
        deberta.ModelConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                   vocab_size=GPT2Tokenizer(vocab).vocab_size).save(config, layout="hf")
    return base_args(glue_root, vocab, TASK, output_dir, "--do_train", "--do_eval", "--do_predict",
                     "--model_config", str(config), "--cls_drop_out", "0", "--num_train_epochs", "2",
                     "--dump_interval", "4", "--keep_checkpoints", "10", *extra)


def torchrun(workdir: Path, args: list[str], *, script: Path | None = None, timeout: float = 300,
             ) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2`` of the app (or of ``script``) with one thread per rank."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEBERTA_CACHE": str(workdir / "cache"),
           "DEBERTA_MODEL_HUB": "http://127.0.0.1:9"}
    target = [str(script)] if script is not None else ["-m", "DeBERTa.apps.train"]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--monitor-interval", "0.5", *target, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def two_ranks(glue_root, vocab, workdir) -> Path:
    out = workdir / "two-ranks"
    result = torchrun(workdir, run_args(glue_root, vocab, workdir, out))
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_process(glue_root, vocab, workdir) -> Path:
    out = workdir / "one-process"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEBERTA_CACHE", str(workdir / "cache"))
        assert main(run_args(glue_root, vocab, workdir, out, "--accumulative_update", "2")) == 0
    return out


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert first.keys() == second.keys()
    for key in first:
        torch.testing.assert_close(first[key], second[key], atol=2e-5, rtol=1e-4, msg=key)


def test_two_ranks_train_like_one_process(two_ranks, one_process) -> None:
    steps = [s for s, _ in records.list_checkpoints(two_ranks)]
    assert steps == [s for s, _ in records.list_checkpoints(one_process)] == [4, 6, 8, 12]
    for (_, a), (_, b) in zip(records.list_checkpoints(two_ranks), records.list_checkpoints(one_process),
                              strict=True):
        assert_same_weights(a, b)
    two, one = read_jsonl(two_ranks / "metrics.jsonl"), read_jsonl(one_process / "metrics.jsonl")
    assert [(e["type"], e["step"]) for e in two] == [(e["type"], e["step"]) for e in one]
    for a, b in zip(two, one, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)


def test_two_ranks_evaluate_every_example_once_in_order(two_ranks, one_process) -> None:
    two, one = (json.loads((run / "eval_results.json").read_text()) for run in (two_ranks, one_process))
    assert two["step"] == one["step"] == STEPS
    assert two["splits"]["dev"]["accuracy"] == one["splits"]["dev"]["accuracy"]
    assert two["splits"]["dev"]["loss"] == pytest.approx(one["splits"]["dev"]["loss"], abs=1e-5)
    assert read_tsv(two_ranks / "predictions" / "RTE.tsv") == read_tsv(one_process / "predictions" / "RTE.tsv")

    # Each example's logits, as the 2 ranks gathered them (10 + 9 examples) and as one process computed them.
    (header, two_rows), (_, one_rows) = (read_tsv(run / "predictions" / "dev_predictions.tsv")
                                         for run in (two_ranks, one_process))
    assert header == ["index", "prediction", "label", "logit_not_entailment", "logit_entailment"]
    assert [r[:3] for r in two_rows] == [r[:3] for r in one_rows]
    two_logits, one_logits = (np.array([[float(v) for v in r[3:]] for r in rows]) for rows in (two_rows, one_rows))
    assert one_logits.shape == (N_DEV, 2)
    tolerance = 1e-7  # the two layouts agree to ~1e-9 here (the same weights up to float summation order)
    # Any two examples' logits differ by far more, so an example out of place, missing or twice would show.
    gaps = np.abs(one_logits[:, None] - one_logits[None]).max(-1)[~np.eye(N_DEV, dtype=bool)]
    assert gaps.min() > 10 * tolerance
    np.testing.assert_allclose(two_logits, one_logits, rtol=0, atol=tolerance)


def test_two_ranks_write_one_set_of_outputs(two_ranks, one_process) -> None:
    def files(run: Path) -> list[str]:
        return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())

    assert files(two_ranks) == files(one_process)
    assert json.loads((two_ranks / "run.json").read_text())["world_size"] == 2
    state = torch.load(records.list_checkpoints(two_ranks)[-1][1] / "training_state.pt", weights_only=True)
    assert state["world_size"] == 2 and len(state["rng"]) == 2


def test_a_two_rank_checkpoint_resumes_in_one_process(two_ranks, glue_root, vocab, workdir) -> None:
    resumed = workdir / "resumed"
    shutil.copytree(two_ranks, resumed)
    for step, folder in records.list_checkpoints(resumed):
        if step > 4:
            shutil.rmtree(folder)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEBERTA_CACHE", str(workdir / "cache"))
        assert main(run_args(glue_root, vocab, workdir, resumed)) == 0
    assert [s for s, _ in records.list_checkpoints(resumed)] == [4, 6, 8, 12]
    assert_same_weights(records.list_checkpoints(resumed)[-1][1], records.list_checkpoints(two_ranks)[-1][1])
    steps = [(e["type"], e["step"]) for e in read_jsonl(resumed / "metrics.jsonl")]
    assert steps == [(e["type"], e["step"]) for e in read_jsonl(two_ranks / "metrics.jsonl")]


COUNTING_NO_SYNC = '''
import os, sys
from torch.nn.parallel import DistributedDataParallel
from DeBERTa.apps.train import main

no_sync = DistributedDataParallel.no_sync
calls = 0

def counting_no_sync(self):
    global calls
    calls += 1
    return no_sync(self)

DistributedDataParallel.no_sync = counting_no_sync
status = main()
print(f"NO_SYNC rank {os.environ['RANK']}: {calls}", file=sys.stderr, flush=True)
sys.exit(status)
'''


def test_accumulating_ranks_skip_the_sync_and_train_like_one_process(glue_root, vocab, workdir, tmp_path) -> None:
    # 4 updates of the same global batches of 8: 2 ranks x 2 micro-steps x 2, or 1 process x 4 micro-steps x 2.
    script = tmp_path / "counting_no_sync.py"
    script.write_text(COUNTING_NO_SYNC)
    two = workdir / "two-ranks-accumulating"
    result = torchrun(workdir, run_args(glue_root, vocab, workdir, two, "--accumulative_update", "2",
                                        "--max_steps", "4"), script=script)
    assert result.returncode == 0, result.stderr[-3000:]
    # Each rank skipped the gradient sync on the first of its 2 micro-steps of every update.
    assert sorted(re.findall(r"NO_SYNC rank (\d): (\d+)", result.stderr)) == [("0", "4"), ("1", "4")]
    one = workdir / "one-process-accumulating"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEBERTA_CACHE", str(workdir / "cache"))
        assert main(run_args(glue_root, vocab, workdir, one, "--accumulative_update", "4", "--max_steps", "4")) == 0
    assert [s for s, _ in records.list_checkpoints(two)] == [s for s, _ in records.list_checkpoints(one)] == [4]
    assert_same_weights(records.list_checkpoints(two)[-1][1], records.list_checkpoints(one)[-1][1])


FAILING_RANK = '''
import sys, time
from DeBERTa.apps.train import main
from DeBERTa.training.engine import Engine

update = Engine._optimizer_step

def fail_on_rank_1(self, *args, **kwargs):
    if self.env.rank == 1 and self.step == 2:
        print(f"FAILING AT {time.time()}", file=sys.stderr, flush=True)
        raise RuntimeError("rank 1 failed on purpose")
    return update(self, *args, **kwargs)

Engine._optimizer_step = fail_on_rank_1
sys.exit(main())
'''


def test_a_failing_rank_stops_the_whole_job_within_seconds(glue_root, vocab, workdir, tmp_path) -> None:
    script = tmp_path / "failing_rank.py"
    script.write_text(FAILING_RANK)
    result = torchrun(workdir, run_args(glue_root, vocab, workdir, tmp_path / "out"), script=script, timeout=120)
    ended = time.time()
    assert result.returncode != 0
    assert "rank 1 failed on purpose" in result.stderr
    failed_at = float(result.stderr.split("FAILING AT ")[1].split()[0])
    assert ended - failed_at < 15, f"the job took {ended - failed_at:.1f} s to stop after rank 1 failed"


def test_a_bad_batch_size_fails_before_writing(glue_root, vocab, workdir, tmp_path) -> None:
    out = tmp_path / "out"
    result = torchrun(workdir, run_args(glue_root, vocab, workdir, out, "--train_batch_size", "9"), timeout=120)
    assert result.returncode != 0
    # Both ranks find it; torchrun stops the other as soon as the first one exits.
    assert re.search(r"error: rank [01]: --train_batch_size 9 does not divide over 2 process\(es\) x "
                     r"--accumulative_update 1; use a multiple of 2\n", result.stderr)
    # The workers print no traceback; the one traceback is torchrun's own report of the failed workers.
    assert result.stderr.count("Traceback") == 1 and "ChildFailedError" in result.stderr
    assert "exitcode  : 2" in result.stderr
    assert not out.exists()


PRETRAIN = '''
import sys
from DeBERTa.apps.pretrain import main
sys.exit(main())
'''


def test_two_ranks_pretrain_like_one_process(vocab, workdir, tmp_path) -> None:
    # Replaced token detection (masking and the generator's samples are seeded per window): 4 updates of 8
    # windows, 2 ranks x 4 or 1 process x 2 micro-steps x 4.
    from test_pretrain import CORPUS

    script = tmp_path / "pretrain.py"
    script.write_text(PRETRAIN)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS) + "\n", encoding="utf-8")
    config = tmp_path / "tiny.json"
    deberta.ModelConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                               vocab_size=GPT2Tokenizer(vocab).vocab_size).save(config, layout="hf")

    def args(out: Path, *extra: str) -> list[str]:
        return ["--objective", "rtd", "--corpus", str(corpus), "--vocab_path", str(vocab), "--model_config",
                str(config), "--output_dir", str(out), "--max_seq_len", "16", "--train_batch_size", "8",
                "--max_steps", "4", "--log_interval", "1", "--dump_interval", "2", "--keep_checkpoints", "5", *extra]

    two, one = tmp_path / "two", tmp_path / "one"
    result = torchrun(workdir, args(two), script=script)
    assert result.returncode == 0, result.stderr[-3000:]
    from DeBERTa.apps import pretrain

    assert pretrain.main(args(one, "--accumulative_update", "2")) == 0
    for name in ("discriminator", "generator"):
        assert_same_weights(two / "export" / name, one / "export" / name)
    for a, b in zip(read_jsonl(two / "metrics.jsonl"), read_jsonl(one / "metrics.jsonl"), strict=True):
        assert a["step"] == b["step"] and a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["masked_accuracy"] == b["masked_accuracy"] and a["rtd_accuracy"] == b["rtd_accuracy"]
