"""Fault census: run every app (and the library API) on a broad set of bad inputs and faults and count what each
did, in the categories of issue 20.

    .venv/bin/python tools/fault_census.py [--only GROUP[,GROUP]] [--match TEXT] [--list] [--json FILE]

Each case is tiny (a two-layer model, a few steps) and has a time limit. What a case may do:

* ``one-line error``: exit status 2, exactly one ``error: …`` line and it is the last on stderr, no traceback,
  nothing written that the case watches (a refused run leaves every watched file byte-identical);
* ``correct``: a valid input (or a fault the app must survive) and the result the case checks for;
* ``traceback``: an exception escaped (``Traceback`` on stderr);
* ``hang``: still running at the case's time limit;
* ``lost/corrupted``: a watched file (another run's folder, a checkpoint, the data) changed or vanished;
* ``escape``: a file outside the places the input names was written, or a file's content the user did not
  name appeared in the output, or a planted pickle ran;
* ``accepted silently``: a bad input that exited 0;
* ``bad error form``: refused, but not as promised (another exit status, several error lines, not last);
* ``wrong``: a valid input refused, or a success whose result is wrong.

The promise comes from ``tests/fault_promise.py`` (the fault suite's); cases run in this process through its
``run_app`` (fast), or as a child process where they need one (permissions without root's override, locks and
signals). Prints a table in the issue's form and every case that is not ``one-line error`` or ``correct``.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import pickle
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import torch  # noqa: E402
from fault_promise import AppResult, run_app, snapshot  # noqa: E402

CATEGORIES = ("one-line error", "correct", "traceback", "hang", "lost/corrupted", "escape", "accepted silently",
              "bad error form", "wrong", "skipped")
PASSING = {"one-line error", "correct"}
CANARY = "CANARY-SECRET-7f3a"
CASE_SECONDS = 90


class CaseTimeout(BaseException):
    """Raised by the alarm in a case that ran past its limit (in this process)."""


@dataclass
class Case:
    name: str
    group: str
    run: Callable[[Ctx], AppResult | Outcome]
    expect: str = "refuse"  # refuse | succeed
    watch: Callable[[Ctx], list[Path]] | None = None
    check: Callable[[Ctx, AppResult], str | None] | None = None
    mention: str | None = None
    timeout: float = CASE_SECONDS
    additions_ok: bool = False
    """New files under the watched folders are fine (a report written into a run folder); changes are not."""


@dataclass
class Outcome:
    """A case that classifies itself (the library API cases: no exit status)."""

    category: str
    detail: str = ""


@dataclass
class Ctx:
    root: Path
    vocab: Path = Path()
    glue: Path = Path()
    rte: Path = Path()
    run0: Path = Path()
    ckpt: Path = Path()
    corpus_text: Path = Path()
    prepared: Path = Path()
    outside: Path = Path()
    hub: Any = None
    env: dict[str, str | None] = field(default_factory=dict)
    counter: int = 0
    guards: list[tuple[list[Path], dict[str, Any]]] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)

    def guard(self, *paths: Path) -> None:
        """Watch ``paths`` from now on (a case's own fixtures, made inside it): they must not change."""
        self.guards.append((list(paths), snapshot(*paths, ignore=_bookkeeping)))

    def fresh(self, name: str = "case") -> Path:
        """A new empty folder for one case."""
        self.counter += 1
        path = self.root / "cases" / f"{self.counter:03d}-{name}"
        path.mkdir(parents=True)
        return path


# ------------------------------------------------------------------------------------------------------------
# Fixtures: a vocabulary, RTE-shaped data, a trained tiny run with a checkpoint, a prepared corpus
# ------------------------------------------------------------------------------------------------------------

def setup(root: Path) -> Ctx:
    from glue_fixtures import write_glue_task

    from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

    ctx = Ctx(root)
    ctx.glue = root / "glue"
    write_glue_task(ctx.glue, "RTE", n_train=16, n_dev=8, n_test=4)
    ctx.rte = ctx.glue / "RTE"
    # Every GPT-2 token (include_unseen): the export cases write a byte-level tokenizer, which needs them all.
    ctx.vocab = root / "vocab"
    GPT2Tokenizer(build_vocab(sorted(ctx.glue.rglob("*.tsv")), *gpt2_bpe_files())).save_pretrained(ctx.vocab)
    ctx.outside = root / "outside"
    ctx.outside.mkdir()
    (ctx.outside / "secret.tsv").write_text(f"{CANARY}\tline\n", encoding="utf-8")
    ctx.env = {"DEBERTA_CACHE": str(root / "cache"), "DEBERTA_MODEL_HUB": "http://127.0.0.1:9",
               "DEBERTA_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "LOCAL_RANK": None, "RANK": None, "WORLD_SIZE": None}
    ctx.run0 = root / "run0"
    result = run_app("DeBERTa.apps.train", base_run_args(ctx, ctx.run0), env=ctx.env)
    if result.status != 0:
        raise SystemExit(f"setup: the base training run failed:\n{result.stderr[-3000:]}")
    ctx.ckpt = sorted((ctx.run0 / "checkpoints").glob("step-*"))[-1]
    ctx.corpus_text = root / "corpus.txt"
    rows = [line.split("\t") for line in (ctx.rte / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    ctx.corpus_text.write_text("\n\n".join(f"{r[1]} {r[2]}" for r in rows) + "\n", encoding="utf-8")
    ctx.prepared = root / "prepared"
    result = run_app("DeBERTa.apps.prepare_corpus", [str(ctx.corpus_text), "--tokenizer", str(ctx.vocab),
                                                     "--output", str(ctx.prepared)], env=ctx.env)
    if result.status != 0:
        raise SystemExit(f"setup: prepare_corpus failed:\n{result.stderr[-3000:]}")
    return ctx


def train_args(ctx: Ctx, out: Path, *extra: str, data: Path | None = None, task: str = "RTE",
               model: tuple[str, ...] = ("--model_config", "tiny")) -> list[str]:
    return ["--task_name", task, "--data_dir", str(data or ctx.rte), "--output_dir", str(out), *model,
            "--vocab_path", str(ctx.vocab), "--max_seq_len", "16", "--train_batch_size", "4", "--eval_batch_size",
            "8", "--predict_batch_size", "8", "--max_steps", "2", "--warmup", "1", "--log_interval", "1",
            "--do_train", *extra]


def base_run_args(ctx: Ctx, out: Path, *extra: str, data: Path | None = None) -> list[str]:
    """The options of the base run (a resume must repeat them)."""
    return train_args(ctx, out, "--do_eval", "--dump_interval", "1", *extra, data=data)


def pretrain_args(ctx: Ctx, out: Path, *extra: str) -> list[str]:
    return ["--corpus", str(ctx.prepared), "--output_dir", str(out), "--model_config", "tiny", "--max_seq_len", "16",
            "--train_batch_size", "4", "--max_steps", "2", "--warmup", "1", "--log_interval", "1", *extra]


def app(module: str, args: Callable[[Ctx], list[str]], *, env: dict[str, str | None] | None = None,
        child: bool = False, no_override: bool = False) -> Callable[[Ctx], AppResult]:
    def run(ctx: Ctx) -> AppResult:
        return run_app(f"DeBERTa.apps.{module}", args(ctx), env={**ctx.env, **(env or {})}, child=child,
                       no_override=no_override)
    return run


# ------------------------------------------------------------------------------------------------------------
# Damaged or odd checkpoints
# ------------------------------------------------------------------------------------------------------------

def checkpoint_variant(ctx: Ctx, kind: str) -> Path:
    """A copy of the base checkpoint (model files only) with one fault."""
    from safetensors.torch import load_file, save_file

    folder = ctx.fresh(f"ckpt-{kind}") / "model"
    shutil.copytree(ctx.ckpt, folder)
    (folder / "training_state.pt").unlink()
    weights = folder / "model.safetensors"
    config = folder / "config.json"
    if kind == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        weights.write_bytes(random.Random(0).randbytes(4096))
    elif kind == "empty":
        weights.write_bytes(b"")
    elif kind in ("int32", "nan", "inf"):
        tensors = load_file(str(weights))
        key = next(k for k in sorted(tensors) if "word_embeddings" in k)
        if kind == "int32":
            tensors[key] = tensors[key].to(torch.int32)
        else:
            tensors[key][3, 2] = float("nan") if kind == "nan" else float("inf")
        save_file(tensors, str(weights), metadata={"format": "pt"})
    elif kind in ("bin-list", "bin-tensor", "bin-pickle", "bin-garbage"):
        weights.unlink()
        target = folder / "pytorch_model.bin"
        if kind == "bin-list":
            torch.save([1, 2, 3], target)
        elif kind == "bin-tensor":
            torch.save(torch.zeros(3), target)
        elif kind == "bin-garbage":
            target.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(2000))
        else:
            target.write_bytes(pickle.dumps(_Planted(str(ctx.outside / "pickle-ran"))))
    elif kind.startswith("config-"):
        document = json.loads(config.read_text())
        if kind == "config-list":
            config.write_text("[1, 2]")
        elif kind == "config-binary":
            config.write_bytes(b"\xff\xfe\x00garbage")
        elif kind == "config-type":
            config.write_text(json.dumps({**document, "hidden_size": "32"}))
        elif kind == "config-null":
            config.write_text(json.dumps({**document, "num_hidden_layers": None}))
        elif kind == "config-id2label":
            config.write_text(json.dumps({**document, "id2label": ["entailment"]}))
        elif kind == "config-id2label-keys":
            config.write_text(json.dumps({**document, "id2label": {"zero": "a", "one": "b"}}))
        elif kind == "config-huge":
            config.write_text(json.dumps({**document, "hidden_size": 1_000_000, "num_attention_heads": 4}))
        elif kind == "config-other-size":
            config.write_text(json.dumps({**document, "hidden_size": 64, "num_attention_heads": 4}))
        elif kind == "config-missing":
            config.unlink()
    else:
        raise ValueError(kind)
    return folder


class _Planted:
    """A pickle that would create a file if unpickled (it must never be)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def planted_ran(ctx: Ctx) -> bool:
    return (ctx.outside / "pickle-ran").exists()


# ------------------------------------------------------------------------------------------------------------
# Running and classifying
# ------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"ran past {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def one_line_refusal(result: AppResult) -> str | None:
    """Why ``result`` is not the promised refusal, or None (fault_promise.assert_refused's checks)."""
    if result.status != 2:
        return f"exit status {result.status}, not 2"
    lines = result.lines
    if not lines or not lines[-1].startswith("error: "):
        return "the last line on stderr is not 'error: …'"
    errors = [line for line in lines if line.startswith("error")]
    if len(errors) != 1:
        return f"{len(errors)} error lines"
    return None


def classify(case: Case, ctx: Ctx) -> tuple[str, str]:
    watched = case.watch(ctx) if case.watch else []
    before = snapshot(*watched, ignore=_bookkeeping)
    outside_before = snapshot(ctx.outside)
    ctx.guards.clear()
    try:
        with alarm(case.timeout):
            result = case.run(ctx)
    except CaseTimeout:
        return "hang", f"killed after {case.timeout:.0f} s"
    except BaseException as err:  # noqa: BLE001 -- a fault of the census's own setup for this case
        if type(err).__name__ == "Skipped":
            return "skipped", str(err)
        return "traceback", "census setup: " + "".join(traceback.format_exception_only(err)).strip()
    if isinstance(result, Outcome):
        return result.category, result.detail
    if "CaseTimeout" in result.stderr:
        return "hang", f"killed after {case.timeout:.0f} s"
    if result.status is None:
        return "hang", f"killed after {case.timeout:.0f} s"
    last = result.lines[-1] if result.lines else ""
    if result.crashed or "Traceback (most recent call last)" in result.stderr:
        return "traceback", _last_exception(result.stderr)
    if planted_ran(ctx):
        (ctx.outside / "pickle-ran").unlink()
        return "escape", "a planted pickle ran"
    if snapshot(ctx.outside) != outside_before:
        return "escape", "wrote outside the folders it was given"
    if CANARY in result.stdout or CANARY in result.stderr:
        return "escape", "echoed the content of a file the user did not name"
    for paths, guarded in ctx.guards:
        now = snapshot(*paths, ignore=_bookkeeping)
        if now != guarded:
            changed = sorted(set(guarded) ^ set(now) | {k for k in set(guarded) & set(now) if guarded[k] != now[k]})
            return "lost/corrupted", f"changed: {', '.join(changed[:3])}"
    after = snapshot(*watched, ignore=_bookkeeping)
    if case.additions_ok:
        after = {k: v for k, v in after.items() if k in before}
    if after != before:
        changed = sorted(set(before) ^ set(after) | {k for k in set(before) & set(after) if before[k] != after[k]})
        return "lost/corrupted", f"changed: {', '.join(changed[:3])}"
    if case.expect == "refuse":
        if result.status == 0:
            return "accepted silently", "exit 0" + (f"; {case.check(ctx, result)}" if case.check else "")
        problem = one_line_refusal(result)
        if problem:
            return "bad error form", f"{problem}: {last[:160]}"
        if case.mention and case.mention not in last:
            return "bad error form", f"{case.mention!r} not in: {last[:160]}"
        return "one-line error", last[:160]
    if result.status != 0:
        return "wrong", f"exit {result.status}: {last[:160]}"
    problem = case.check(ctx, result) if case.check else None
    if problem:
        return "wrong", problem
    return "correct", ""


def _bookkeeping(path: Path) -> bool:
    return path.name == ".lock" or path.suffix == ".lock"


def _last_exception(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# ------------------------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------------------------

CASES: list[Case] = []


def case(name: str, group: str, run: Callable[[Ctx], AppResult | Outcome], **kw: Any) -> None:
    CASES.append(Case(name, group, run, **kw))


def shared(ctx: Ctx) -> list[Path]:
    """What no case may change: the data, the vocabulary, the base run and the outside folder."""
    return [ctx.glue, ctx.vocab, ctx.run0, ctx.prepared]


def refuse_train(name: str, extra: Callable[[Ctx], list[str]] | list[str], *, mention: str | None = None,
                 data: Callable[[Ctx], Path] | None = None, model: Callable[[Ctx], tuple[str, ...]] | None = None,
                 task: str = "RTE", group: str = "train") -> None:
    def args(ctx: Ctx) -> list[str]:
        more = extra(ctx) if callable(extra) else list(extra)
        return train_args(ctx, ctx.fresh(name) / "out", *more, data=data(ctx) if data else None, task=task,
                          **({"model": model(ctx)} if model else {}))
    case(name, group, app("train", args), watch=shared, mention=mention)


# -- train: options -------------------------------------------------------------------------------------------
for _name, _extra in {
    "warmup-nan": ["--warmup", "nan"], "warmup-inf": ["--warmup", "inf"], "warmup-negative": ["--warmup", "-1"],
    "seed-negative": ["--seed", "-1"], "seed-huge": ["--seed", str(2**70)], "lr-nan": ["--learning_rate", "nan"],
    "lr-negative": ["--learning_rate", "-1"], "lr-1e30": ["--learning_rate", "1e30"],
    "weight-decay-nan": ["--weight_decay", "nan"], "max-seq-len-0": ["--max_seq_len", "0"],
    "max-seq-len-negative": ["--max_seq_len", "-5"],
    "batch-0": ["--train_batch_size", "0"], "eval-batch-negative": ["--eval_batch_size", "-8"],
    "epochs-negative": ["--num_train_epochs", "-1", "--max_steps", "-1"], "epochs-nan": ["--num_train_epochs", "nan"],
    "max-steps-negative": ["--max_steps", "-3"], "accumulate-0": ["--accumulative_update", "0"],
    "dump-interval-0": ["--dump_interval", "0"], "keep-checkpoints-negative": ["--keep_checkpoints", "-1"],
    "epsilon-negative": ["--epsilon", "-1"], "beta1-1.5": ["--adam_beta1", "1.5"], "beta2-nan": ["--adam_beta2", "nan"],
    "grad-norm-nan": ["--max_grad_norm", "nan"], "cls-dropout-2": ["--cls_drop_out", "2"],
    "fp16-and-bf16": ["--fp16", "--bf16"], "loss-scale-negative": ["--fp16", "--loss_scale", "-2"],
    "workers-negative": ["--workers", "-2"], "lr-schedule-unknown": ["--lr_schedule", "exponential"],
    "unknown-option": ["--bogus", "1"], "int-given-text": ["--max_steps", "two"],
    "bool-given-text": ["--fp16", "maybe"],
    "resume-missing-dir": lambda ctx: ["--resume", str(ctx.root / "no-such-run")],
    "vocab-missing": lambda ctx: ["--vocab_path", str(ctx.root / "no-vocab")],
    "vocab-garbage": lambda ctx: ["--vocab_path", str(_garbage_file(ctx, "bpe_encoder.bin"))],
    "model-config-unknown": ["--model_config", "gigantic"],
    "model-config-huge": lambda ctx: ["--model_config", str(_json_file(ctx, {"hidden_size": 1_000_000,
                                                                             "num_attention_heads": 4}))],
    "model-config-huge-vocab-layers": lambda ctx: ["--model_config", str(_json_file(
        ctx, {"hidden_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 2000}))],
    "model-config-list": lambda ctx: ["--model_config", str(_json_file(ctx, [1, 2]))],
    "model-config-types": lambda ctx: ["--model_config", str(_json_file(ctx, {"hidden_size": "big"}))],
    "model-config-null": lambda ctx: ["--model_config", str(_json_file(ctx, {"num_attention_heads": None}))],
    "model-config-zero-heads": lambda ctx: ["--model_config", str(_json_file(ctx, {"num_attention_heads": 0}))],
    "model-config-binary": lambda ctx: ["--model_config", str(_garbage_file(ctx, "config.json"))],
    "model-config-dropout-2": lambda ctx: ["--model_config", str(_json_file(ctx, {
        "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64,
        "hidden_dropout_prob": 2.0}))],
    "config-yaml-binary": lambda ctx: ["--config", str(_garbage_file(ctx, "run.yaml"))],
    "config-yaml-list-for-number": lambda ctx: ["--config", str(_text_file(ctx, "run.yaml",
                                                                           "learning_rate: [1, 2]\n"))],
    "config-yaml-unknown-key": lambda ctx: ["--config", str(_text_file(ctx, "run.yaml", "learning_rte: 0.1\n"))],
    "config-yaml-not-mapping": lambda ctx: ["--config", str(_text_file(ctx, "run.yaml", "- a\n- b\n"))],
    "config-yaml-missing": lambda ctx: ["--config", str(ctx.root / "no.yaml")],
    "config-yaml-bad-syntax": lambda ctx: ["--config", str(_text_file(ctx, "run.yaml", "a: [1,\n")),],
}.items():
    refuse_train(_name, _extra)

refuse_train("task-unknown", [], task="NOSUCHTASK")
case("no-task-name", "train", app("train", lambda ctx: ["--data_dir", str(ctx.rte), "--output_dir",
                                                         str(ctx.fresh() / "o"), "--do_train"]), watch=shared)
case("nothing-to-do", "train", app("train", lambda ctx: [a for a in train_args(ctx, ctx.fresh() / "o")
                                                          if a != "--do_train"]), watch=shared)
case("data-dir-missing", "train", app("train", lambda ctx: train_args(ctx, ctx.fresh() / "o",
                                                                      data=ctx.root / "no-data")), watch=shared)
case("data-dir-is-file", "train", app("train", lambda ctx: train_args(ctx, ctx.fresh() / "o",
                                                                      data=ctx.rte / "train.tsv")), watch=shared)


def _garbage_file(ctx: Ctx, name: str) -> Path:
    path = ctx.fresh("garbage") / name
    path.write_bytes(b"\x00\xff\xfe\x80garbage\x00" * 64)
    return path


def _json_file(ctx: Ctx, document: Any, name: str = "config.json") -> Path:
    path = ctx.fresh("json") / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _text_file(ctx: Ctx, name: str, text: str) -> Path:
    path = ctx.fresh("text") / name
    path.write_text(text, encoding="utf-8")
    return path


def _data_copy(ctx: Ctx, edit: Callable[[Path], None]) -> Path:
    folder = ctx.fresh("data") / "RTE"
    shutil.copytree(ctx.rte, folder)
    edit(folder)
    return folder


def _edit_file(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        (folder / name).write_bytes(change((folder / name).read_bytes()))
    return edit


for _name, _edit in {
    "data-bad-bytes": _edit_file("train.tsv", lambda b: b.replace(b"\n", b"\n\xff\xfe", 1)),
    "data-wrong-columns": _edit_file("train.tsv", lambda b: b + b"99\tonly two\n"),
    "data-unknown-label": _edit_file("train.tsv", lambda b: b + b"99\ta\tb\tmaybe\n"),
    "data-empty-train": _edit_file("train.tsv", lambda b: b.split(b"\n", 1)[0] + b"\n"),
    "data-zero-bytes": _edit_file("train.tsv", lambda b: b""),
    "data-dev-missing": lambda folder: (folder / "dev.tsv").unlink(),
    "data-train-is-dir": lambda folder: ((folder / "train.tsv").unlink(), (folder / "train.tsv").mkdir()),
    "data-train-symlink-out": lambda folder: ((folder / "train.tsv").unlink(),
                                              (folder / "train.tsv").symlink_to(folder.parents[2] / "outside"
                                                                                / "secret.tsv")),
}.items():
    refuse_train(_name, ["--do_eval"], data=lambda ctx, e=_edit: _data_copy(ctx, e))

case("data-unreadable", "train", app("train", lambda ctx: train_args(
    ctx, ctx.fresh() / "o", data=_data_copy(ctx, lambda f: (f / "train.tsv").chmod(0o000))), no_override=True),
    watch=shared)

for _kind in ("truncated", "garbage", "empty", "int32", "nan", "inf", "bin-list", "bin-tensor", "bin-garbage",
              "bin-pickle", "config-list", "config-binary", "config-type", "config-null", "config-huge",
              "config-missing"):
    refuse_train(f"init-model-{_kind}", [],
                 model=lambda ctx, k=_kind: ("--init_model", str(checkpoint_variant(ctx, k))))
refuse_train("init-model-missing", [], model=lambda ctx: ("--init_model", str(ctx.root / "nope")))
refuse_train("init-model-unknown-name", [], model=lambda ctx: ("--init_model", "deberta-v9-giant"))


def output_is_file(ctx: Ctx) -> list[str]:
    path = ctx.fresh() / "a-file"
    path.write_text("mine")
    return ["--output_dir", str(path)]


def output_below_file(ctx: Ctx) -> list[str]:
    path = ctx.fresh() / "a-file"
    path.write_text("mine")
    return ["--output_dir", str(path / "run")]


refuse_train("output-is-file", output_is_file)
refuse_train("output-below-file", output_below_file)


def read_only_output(module: str, build: Callable[[Ctx, Path], list[str]]) -> Callable[[Ctx], AppResult]:
    def run(ctx: Ctx) -> AppResult:
        parent = ctx.fresh("read-only")
        parent.chmod(0o555)
        try:
            return run_app(f"DeBERTa.apps.{module}", build(ctx, parent / "out"), env=ctx.env, no_override=True)
        finally:
            parent.chmod(0o755)
    return run


case("output-read-only", "train", read_only_output("train", lambda ctx, out: train_args(ctx, out)), watch=shared)


def resume_other_size(ctx: Ctx) -> AppResult:
    run = ctx.fresh("resume-size") / "run"
    shutil.copytree(ctx.run0, run)
    config = json.dumps({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64,
                         "max_position_embeddings": 128, "max_relative_positions": 16})
    path = run.parent / "bigger.json"
    path.write_text(config)
    return run_app("DeBERTa.apps.train", train_args(ctx, run.parent / "new", "--resume", str(ctx.ckpt),
                                                    "--model_config", str(path)), env=ctx.env)


case("resume-checkpoint-of-other-size", "train", resume_other_size, watch=shared)


# -- the run folder -------------------------------------------------------------------------------------------

def copied_run(ctx: Ctx, name: str) -> Path:
    run = ctx.fresh(name) / "run"
    shutil.copytree(ctx.run0, run)
    return run


def second_run_in_folder(ctx: Ctx) -> AppResult:
    from DeBERTa.training.records import RunLock

    run = copied_run(ctx, "locked")
    lock = RunLock(run)
    lock.acquire()
    ctx.guard(run)
    try:
        return run_app("DeBERTa.apps.train", base_run_args(ctx, run), env=ctx.env)
    finally:
        lock.release()


case("two-runs-one-folder", "run-folder", second_run_in_folder, watch=shared, mention="in use by another run")


def foreign_folder(ctx: Ctx) -> AppResult:
    out = ctx.fresh("foreign") / "mine"
    (out / "predictions").mkdir(parents=True)
    (out / "predictions" / "RTE.tsv").write_text("my own predictions\n")
    (out / "metrics.jsonl").write_text('{"mine": 1}\n')
    (out / "eval_results.json").write_text("{}\n")
    (out / "tensorboard").mkdir()
    ctx.guard(out)
    return run_app("DeBERTa.apps.train", train_args(ctx, out, "--resume", "never"), env=ctx.env)


case("fresh-run-in-foreign-folder", "run-folder", foreign_folder, watch=shared)


def damaged_resume(part: str) -> Callable[[Ctx], AppResult]:
    def run(ctx: Ctx) -> AppResult:
        run_dir = copied_run(ctx, f"damaged-{part}")
        newest = sorted((run_dir / "checkpoints").glob("step-*"))[-1]
        target = newest / part
        target.write_bytes(target.read_bytes()[:100])
        ctx.guard(*sorted((run_dir / "checkpoints").glob("step-*"))[:-1])  # the intact older one survives
        return run_app("DeBERTa.apps.train", base_run_args(ctx, run_dir), env=ctx.env)
    return run


def _fell_back(ctx: Ctx, result: AppResult) -> str | None:
    return None if "skipping damaged checkpoint" in result.stderr or "damaged" in result.stderr else \
        "no word of the damaged checkpoint on stderr"


for _part in ("model.safetensors", "training_state.pt"):
    case(f"resume-damaged-newest-{_part}", "run-folder", damaged_resume(_part), expect="succeed", check=_fell_back,
         watch=shared)


def torn_metrics(ctx: Ctx) -> AppResult:
    run_dir = copied_run(ctx, "torn")
    metrics = run_dir / "metrics.jsonl"
    metrics.write_bytes(metrics.read_bytes() + b'{"type": "train", "st')
    shutil.rmtree(sorted((run_dir / "checkpoints").glob("step-*"))[-1])  # killed before its last checkpoint
    ctx.scratch["history"] = run_dir
    return run_app("DeBERTa.apps.train", base_run_args(ctx, run_dir), env=ctx.env)


def _records_once(ctx: Ctx, result: AppResult) -> str | None:
    run_dir = ctx.scratch["history"]
    keys = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            return f"an unreadable line remains: {line[:60]!r}"
        keys.append((entry.get("type"), entry.get("step"), entry.get("split")))
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    return f"records repeated: {repeated[:3]}" if repeated else None


case("resume-after-torn-metrics-line", "run-folder", torn_metrics, expect="succeed", check=_records_once,
     watch=shared)


def changed_data(accept: bool) -> Callable[[Ctx], AppResult]:
    def run(ctx: Ctx) -> AppResult:
        run_dir = copied_run(ctx, "changed-data")
        shutil.rmtree(sorted((run_dir / "checkpoints").glob("step-*"))[-1])
        data = _data_copy(ctx, _edit_file("train.tsv", lambda b: b + b"99\tnew a\tnew b\tentailment\n"))
        extra = ["--accept_changed_data"] if accept else []
        if not accept:
            ctx.guard(run_dir)
        return run_app("DeBERTa.apps.train", base_run_args(ctx, run_dir, *extra, data=data), env=ctx.env)
    return run


case("resume-after-data-changed", "run-folder", changed_data(False), watch=shared)
case("resume-after-data-changed-accepted", "run-folder", changed_data(True), expect="succeed", watch=shared)


def umask_modes(ctx: Ctx) -> AppResult:
    out = ctx.fresh("umask") / "run"
    ctx.scratch["umask"] = out
    previous = os.umask(0o022)
    try:
        return run_app("DeBERTa.apps.train", train_args(ctx, out, "--dump_interval", "1", "--do_eval"), env=ctx.env)
    finally:
        os.umask(previous)


def _follows_umask(ctx: Ctx, result: AppResult) -> str | None:
    out = ctx.scratch["umask"]
    private = [str(p.relative_to(out)) for p in out.rglob("*")
               if p.name != ".lock" and not p.is_symlink() and not p.stat().st_mode & 0o004]
    return f"not readable by others under umask 022: {private[:4]}" if private else None


case("umask-022-files-readable", "run-folder", umask_modes, expect="succeed", check=_follows_umask, watch=shared)


def killed_and_resumed(ctx: Ctx) -> AppResult:
    """A run killed (SIGKILL) after its first checkpoint, then resumed: it finishes."""
    import subprocess

    out = ctx.fresh("killed") / "run"
    env = {**os.environ, **{k: v for k, v in ctx.env.items() if v is not None}, "PYTHONPATH": str(REPO)}
    for key in (k for k, v in ctx.env.items() if v is None):
        env.pop(key, None)
    command = [sys.executable, "-m", "DeBERTa.apps.train",
               *train_args(ctx, out, "--max_steps", "40", "--dump_interval", "1")]
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((out / "checkpoints").glob("step-*")):
        time.sleep(0.2)
    child.kill()
    child.wait()
    ctx.scratch["history"] = out
    return run_app("DeBERTa.apps.train", train_args(ctx, out, "--max_steps", "40", "--dump_interval", "10"),
                   env=ctx.env)


case("killed-then-resumed", "run-folder", killed_and_resumed, expect="succeed", check=_records_once, watch=shared,
     timeout=180)


# -- custom task.yaml --------------------------------------------------------------------------------------------

def custom_data(ctx: Ctx, task_yaml: str, *, extra_files: dict[str, bytes] | None = None) -> Path:
    folder = ctx.fresh("custom") / "data"
    folder.mkdir()
    rows = "text\tlabel\n" + "".join(f"sentence number {i} is here\t{'ab'[i % 2]}\n" for i in range(12))
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (folder / name).write_text(rows, encoding="utf-8")
    for name, data in (extra_files or {}).items():
        (folder / name).write_bytes(data)
    (folder / "task.yaml").write_text(task_yaml, encoding="utf-8")
    return folder


def _custom_yaml(name: str = "mytask", train: str = "train.tsv", dev: str = "dev.tsv", test: str = "test.tsv",
                 fmt: str = "tsv", extra: str = "") -> str:
    return (f"name: {json.dumps(name)}\nformat: {fmt}\nfiles:\n  train: {json.dumps(train)}\n  dev: {json.dumps(dev)}\n"
            f"  test: {json.dumps(test)}\ntext_columns: [text]\nlabel_column: label\nlabels: [a, b]\n{extra}")


def _one_file_yaml(fmt: str) -> Callable[[Ctx], str]:
    """A task.yaml whose three splits all read the one file ``t.<fmt>`` (the case's bad file)."""
    return lambda ctx: _custom_yaml(train=f"t.{fmt}", dev=f"t.{fmt}", test=f"t.{fmt}", fmt=fmt)


def custom_case(name: str, yaml_text: Callable[[Ctx], str], *, task: str = "mytask",
                files: dict[str, bytes] | None = None, expect: str = "refuse", predict: bool = True,
                mention: str | None = None) -> None:
    def run(ctx: Ctx) -> AppResult:
        data = custom_data(ctx, yaml_text(ctx), extra_files=files)
        extra = ["--do_eval", "--do_predict"] if predict else []
        return run_app("DeBERTa.apps.train", train_args(ctx, data.parent / "out", *extra, data=data, task=task),
                       env=ctx.env)
    case(name, "custom-task", run, expect=expect, watch=shared, mention=mention)


custom_case("custom-ok", lambda ctx: _custom_yaml(), expect="succeed")
custom_case("custom-name-climbs", lambda ctx: _custom_yaml(name="../../../outside/x"), task="../../../outside/x")
custom_case("custom-name-slash", lambda ctx: _custom_yaml(name="a/b"), task="a/b")
custom_case("custom-file-absolute", lambda ctx: _custom_yaml(train=str(ctx.outside / "secret.tsv")))
custom_case("custom-file-climbs", lambda ctx: _custom_yaml(test="../../../outside/secret.tsv"))


def custom_symlink(ctx: Ctx) -> AppResult:
    data = custom_data(ctx, _custom_yaml(test="link.tsv"))
    (data / "link.tsv").symlink_to(ctx.outside / "secret.tsv")
    return run_app("DeBERTa.apps.train", train_args(ctx, data.parent / "out", "--do_predict", data=data,
                                                    task="mytask"), env=ctx.env)


case("custom-file-symlink-out", "custom-task", custom_symlink, watch=shared)
custom_case("custom-etc-passwd-test", lambda ctx: _custom_yaml(test="/etc/passwd"))
custom_case("custom-yaml-binary", lambda ctx: "\x00\x01 binary")
custom_case("custom-yaml-list", lambda ctx: "- a\n- b\n")
custom_case("custom-yaml-bad-format", lambda ctx: _custom_yaml(fmt="xml"))
custom_case("custom-yaml-label-bool", lambda ctx: _custom_yaml().replace("labels: [a, b]", "labels: [yes, no]"))
custom_case("custom-yaml-unknown-key", lambda ctx: _custom_yaml(extra="colour: red\n"))
custom_case("custom-yaml-surrogate-name", lambda ctx: _custom_yaml().replace('name: "mytask"', 'name: "my\\ud800"'))
custom_case("custom-jsonl-lone-surrogate", _one_file_yaml("jsonl"),
            files={"t.jsonl": b'{"text": "ok", "label": "a"}\n{"text": "bad \\ud800 here", "label": "b"}\n'},
            mention="t.jsonl:2")  # the promise of item 4: the file and line of the bad text
custom_case("custom-jsonl-bad-bytes", _one_file_yaml("jsonl"),
            files={"t.jsonl": b'{"text": "ok", "label": "a"}\n{"text": "bad \xff here", "label": "b"}\n'})
custom_case("custom-jsonl-not-object", _one_file_yaml("jsonl"),
            files={"t.jsonl": b'{"text": "ok", "label": "a"}\n[1, 2]\n'})
custom_case("custom-csv-unterminated-quote", _one_file_yaml("csv"),
            files={"t.csv": b'text,label\n"ok,a\nnext,b\n'})
custom_case("custom-label-number-text", _one_file_yaml("jsonl"),
            files={"t.jsonl": b'{"text": 5, "label": "a"}\n'})


# -- task kinds: NER, SQuAD, RACE, SWAG data -------------------------------------------------------------------------

def kind_data(ctx: Ctx, task: str, files: dict[str, bytes]) -> Path:
    folder = ctx.fresh(task) / "data"
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def kind_case(name: str, task: str, files: dict[str, bytes], expect: str = "refuse") -> None:
    def run(ctx: Ctx) -> AppResult:
        data = kind_data(ctx, task, files)
        return run_app("DeBERTa.apps.train", train_args(ctx, data.parent / "out", "--do_eval", data=data, task=task),
                       env=ctx.env)
    case(name, "task-data", run, expect=expect, watch=shared)


_CONLL = b"EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n\n"
_SQUAD_DOC = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Tom has a red kite.", "qas": [
    {"id": "q1", "question": "What colour?", "answers": [{"text": "red", "answer_start": 10}]}]}]}]}
_SQUAD = json.dumps(_SQUAD_DOC).encode()
kind_case("ner-bad-bytes", "NER", {"train.txt": _CONLL + b"Caf\xe9 O\n", "valid.txt": _CONLL})
kind_case("ner-unknown-tag", "NER", {"train.txt": _CONLL + b"x B-THING\n", "valid.txt": _CONLL})
kind_case("ner-ragged-columns", "NER", {"train.txt": _CONLL + b"x y z O\n", "valid.txt": _CONLL})
kind_case("ner-empty", "NER", {"train.txt": b"", "valid.txt": _CONLL})
kind_case("squad-lone-surrogate", "SQuAD", {"train-v1.1.json": _SQUAD.replace(b"Tom has", b"Tom \\ud800 has"),
                                            "dev-v1.1.json": _SQUAD})
kind_case("squad-bad-bytes", "SQuAD", {"train-v1.1.json": _SQUAD.replace(b"Tom", b"T\xffm"), "dev-v1.1.json": _SQUAD})
kind_case("squad-not-json", "SQuAD", {"train-v1.1.json": b"{not json", "dev-v1.1.json": _SQUAD})
kind_case("squad-list", "SQuAD", {"train-v1.1.json": b"[1, 2]", "dev-v1.1.json": _SQUAD})
kind_case("squad-answer-no-start", "SQuAD", {"train-v1.1.json": _SQUAD.replace(b'"answer_start": 10', b'"a": 1'),
                                             "dev-v1.1.json": _SQUAD})
kind_case("squad-deep-nesting", "SQuAD", {"train-v1.1.json": b"[" * 100000 + b"]" * 100000, "dev-v1.1.json": _SQUAD})
_RACE = json.dumps({"article": "Tom has a red kite.", "questions": ["Colour?"], "options": [["red", "b", "c", "d"]],
                    "answers": ["A"], "id": "m1.txt"}).encode()
kind_case("race-lone-surrogate", "RACE", {"train/middle/1.txt": _RACE.replace(b"Tom", b"\\udc00Tom"),
                                          "dev/middle/1.txt": _RACE})
kind_case("race-bad-answer", "RACE", {"train/middle/1.txt": _RACE.replace(b'"A"', b'"E"'), "dev/middle/1.txt": _RACE})
_SWAG = (b",video-id,fold-ind,startphrase,sent1,sent2,gold-source,ending0,ending1,ending2,ending3,label\n"
         b"0,v,1,s,He runs,He,gold,fast,slow,up,down,0\n")
kind_case("swag-bad-bytes", "SWAG", {"train.csv": _SWAG + b"1,v,1,s,\xffHe,He,gold,a,b,c,d,1\n", "val.csv": _SWAG})
kind_case("swag-bad-label", "SWAG", {"train.csv": _SWAG + b"1,v,1,s,He,He,gold,a,b,c,d,7\n", "val.csv": _SWAG})
kind_case("swag-nul-in-text", "SWAG", {"train.csv": _SWAG + b"1,v,1,s,H\x00e,He,gold,a,b,c,d,1\n",
                                       "val.csv": _SWAG}, expect="succeed")


# -- pretrain ------------------------------------------------------------------------------------------------------

def refuse_pretrain(name: str, extra: Callable[[Ctx], list[str]] | list[str], mention: str | None = None) -> None:
    def args(ctx: Ctx) -> list[str]:
        more = extra(ctx) if callable(extra) else list(extra)
        return pretrain_args(ctx, ctx.fresh(name) / "out", *more)
    case(f"pretrain-{name}", "pretrain", app("pretrain", args), watch=shared, mention=mention)


for _name, _extra in {
    "corpus-missing": lambda ctx: ["--corpus", str(ctx.root / "no-corpus")],
    "corpus-garbage-dir": lambda ctx: ["--corpus", str(_garbage_file(ctx, "shard-0.npy").parent)],
    "corpus-raw-text-binary": lambda ctx: ["--corpus", str(_garbage_file(ctx, "text.txt"))],
    "objective-unknown": ["--objective", "clm"], "warmup-nan": ["--warmup", "nan"], "seed-negative": ["--seed", "-1"],
    "seed-huge": ["--seed", str(2**70)], "lr-nan": ["--learning_rate", "nan"], "lr-1e30": ["--learning_rate", "1e30"],
    "weight-decay-nan": ["--weight_decay", "nan"], "max-seq-len-1": ["--max_seq_len", "1"],
    "batch-0": ["--train_batch_size", "0"], "max-steps-0": ["--max_steps", "0"],
    "model-config-huge": lambda ctx: ["--model_config", str(_json_file(ctx, {"hidden_size": 1_000_000,
                                                                             "num_attention_heads": 4}))],
    "model-config-huge-vocab": lambda ctx: ["--model_config", str(_json_file(ctx, {
        "hidden_size": 32, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 10**11}))],
    "model-config-list": lambda ctx: ["--model_config", str(_json_file(ctx, []))],
    "model-config-types": lambda ctx: ["--model_config", str(_json_file(ctx, {"num_hidden_layers": "2"}))],
    "generator-config-missing": ["--objective", "rtd", "--generator_config", "/nonexistent/generator.json"],
    "vocab-missing": lambda ctx: ["--vocab_path", str(ctx.root / "no-vocab")],
    "output-is-file": output_is_file,
    "unknown-option": ["--bogus"],
}.items():
    refuse_pretrain(_name, _extra)
for _kind in ("truncated", "garbage", "int32", "nan", "bin-list", "bin-tensor", "bin-pickle", "config-list",
              "config-huge"):
    refuse_pretrain(f"init-model-{_kind}",
                    lambda ctx, k=_kind: ["--init_model", str(checkpoint_variant(ctx, k)), "--model_config", "tiny"])
case("pretrain-output-read-only", "pretrain", read_only_output("pretrain", lambda ctx, out: pretrain_args(ctx, out)),
     watch=shared)
case("pretrain-ok", "pretrain", app("pretrain", lambda ctx: pretrain_args(ctx, ctx.fresh() / "out")), expect="succeed",
     watch=shared)


# -- prepare_corpus ------------------------------------------------------------------------------------------------

def prep(name: str, inputs: Callable[[Ctx], list[str]], *extra: str, expect: str = "refuse",
         output: Callable[[Ctx], Path] | None = None, mention: str | None = None) -> None:
    def args(ctx: Ctx) -> list[str]:
        out = output(ctx) if output else ctx.fresh(name) / "prepared"
        return [*inputs(ctx), "--tokenizer", str(ctx.vocab), "--output", str(out), *extra]
    case(f"prepare-{name}", "prepare_corpus", app("prepare_corpus", args), expect=expect, watch=shared,
         mention=mention)


def _corpus_file(ctx: Ctx, data: bytes, name: str = "text.txt") -> list[str]:
    path = ctx.fresh("corpus") / name
    path.write_bytes(data)
    return [str(path)]


prep("input-missing", lambda ctx: [str(ctx.root / "missing.txt")])
prep("input-binary", lambda ctx: _corpus_file(ctx, b"\x00\xff\xfe" * 300))
prep("input-bad-byte-line-3", lambda ctx: _corpus_file(ctx, b"one line\ntwo\nthr\xffee\n"), mention="text.txt:3:")
prep("input-empty", lambda ctx: _corpus_file(ctx, b""))
# Text that does not compress to a few bytes, cut in the middle of the deflate stream (a download cut short).
_GZ_TEXT = gzip.compress("".join(f"line {i} of the text, {i * i}\n" for i in range(2000)).encode())
prep("input-gz-corrupt", lambda ctx: _corpus_file(ctx, _GZ_TEXT[: len(_GZ_TEXT) // 2], "t.txt.gz"))
prep("input-dir-empty", lambda ctx: [str(ctx.fresh("empty-dir"))])
prep("shard-tokens-0", lambda ctx: [str(ctx.corpus_text)], "--shard_tokens", "0")
prep("shard-tokens-negative", lambda ctx: [str(ctx.corpus_text)], "--shard_tokens", "-5")
case("prepare-tokenizer-missing", "prepare_corpus", app("prepare_corpus", lambda ctx: [
    str(ctx.corpus_text), "--tokenizer", str(ctx.root / "no-vocab"), "--output", str(ctx.fresh() / "p")]),
    watch=shared)
prep("output-is-file", lambda ctx: [str(ctx.corpus_text)], output=lambda ctx: Path(output_is_file(ctx)[1]))
prep("output-is-the-prepared-corpus", lambda ctx: [str(ctx.corpus_text)], output=lambda ctx: ctx.prepared,
     expect="succeed")
prep("ok", lambda ctx: [str(ctx.corpus_text)], expect="succeed")
case("prepare-input-unreadable", "prepare_corpus", app("prepare_corpus", lambda ctx: [
    *_unreadable(ctx), "--tokenizer", str(ctx.vocab), "--output", str(ctx.fresh() / "p")], no_override=True),
    watch=shared)
case("prepare-output-read-only", "prepare_corpus", read_only_output("prepare_corpus", lambda ctx, out: [
    str(ctx.corpus_text), "--tokenizer", str(ctx.vocab), "--output", str(out)]), watch=shared)


def _unreadable(ctx: Ctx) -> list[str]:
    path = ctx.fresh("unreadable") / "text.txt"
    path.write_text("hello\n")
    path.chmod(0)
    return [str(path)]


# -- evaluate --------------------------------------------------------------------------------------------------------

def evaluate(name: str, kind: str, gold: bytes | None, predictions: bytes | None, *extra: str,
             expect: str = "refuse", gold_name: str = "gold.json") -> None:
    def args(ctx: Ctx) -> list[str]:
        folder = ctx.fresh(f"eval-{name}")
        gold_path, pred_path = folder / gold_name, folder / "pred.json"
        if gold is not None:
            gold_path.parent.mkdir(parents=True, exist_ok=True)
            gold_path.write_bytes(gold)
        if predictions is not None:
            pred_path.write_bytes(predictions)
        return [kind, str(gold_path), str(pred_path), *extra]
    case(f"evaluate-{name}", "evaluate", app("evaluate", args), expect=expect, watch=shared)


_PRED = b'{"q1": "red"}'
evaluate("squad-ok", "squad", _SQUAD, _PRED, expect="succeed")
evaluate("squad-gold-missing", "squad", None, _PRED)
evaluate("squad-pred-missing", "squad", _SQUAD, None)
evaluate("squad-pred-not-json", "squad", _SQUAD, b"{oops")
evaluate("squad-pred-list", "squad", _SQUAD, b'["red"]')
evaluate("squad-pred-number-values", "squad", _SQUAD, b'{"q1": 5}')
evaluate("squad-pred-lone-surrogate", "squad", _SQUAD, b'{"q1": "r\\ud800d"}')
evaluate("squad-gold-lone-surrogate", "squad", _SQUAD.replace(b"red kite", b"red \\udc00kite"), _PRED)
evaluate("squad-gold-bad-bytes", "squad", _SQUAD.replace(b"red kite", b"red \xffkite"), _PRED)
evaluate("squad-na-prob-missing", "squad", _SQUAD, _PRED, "--na-prob", "/nonexistent/na.json")
evaluate("squad-na-thresh-nan", "squad", _SQUAD, _PRED, "--na-prob-thresh", "nan")
evaluate("conll-bad-bytes", "conll", _CONLL + b"\xff O\n", _CONLL, gold_name="gold.txt")
evaluate("conll-length-mismatch", "conll", _CONLL, _CONLL[:20], gold_name="gold.txt")
evaluate("race-gold-not-folder", "race", b"x", b"0\tA\n", gold_name="gold.txt")
evaluate("swag-gold-bad-bytes", "swag", _SWAG + b"1,v,1,s,\xffHe,He,gold,a,b,c,d,1\n", b"0\t0\n", gold_name="g.csv")
evaluate("kind-unknown", "glue", _SQUAD, _PRED)
evaluate("gold-is-dir", "squad", None, _PRED, gold_name="sub/")


# -- export ----------------------------------------------------------------------------------------------------------

def export(name: str, source: Callable[[Ctx], Path | str], *extra: str, expect: str = "refuse",
           output: Callable[[Ctx], Path] | None = None) -> None:
    def args(ctx: Ctx) -> list[str]:
        out = output(ctx) if output else ctx.fresh(f"export-{name}") / "hf"
        return [str(source(ctx)), str(out), *extra]
    case(f"export-{name}", "export", app("export", args), expect=expect, watch=shared)


export("ok", lambda ctx: ctx.ckpt, expect="succeed")
export("run-folder-ok", lambda ctx: ctx.run0, expect="succeed")
for _kind in ("truncated", "garbage", "empty", "int32", "nan", "inf", "bin-list", "bin-tensor", "bin-garbage",
              "bin-pickle", "config-list", "config-binary", "config-type", "config-null", "config-id2label",
              "config-id2label-keys", "config-huge", "config-missing"):
    export(_kind, lambda ctx, k=_kind: checkpoint_variant(ctx, k))
export("source-missing", lambda ctx: ctx.root / "nothing")
export("source-unknown-name", lambda ctx: "deberta-v9-giant")
export("dtype-unknown", lambda ctx: ctx.ckpt, "--dtype", "float8")
export("task-head-unknown", lambda ctx: ctx.ckpt, "--task-head", "magic")
export("opset-negative", lambda ctx: ctx.ckpt, "--format", "onnx", "--opset", "-1")
export("output-is-file", lambda ctx: ctx.ckpt, output=lambda ctx: Path(output_is_file(ctx)[1]))
export("output-is-source", lambda ctx: ctx.ckpt, "--force", output=lambda ctx: ctx.ckpt)
export("output-is-run-folder", lambda ctx: ctx.ckpt, "--force", output=lambda ctx: ctx.run0)
export("output-not-empty", lambda ctx: ctx.ckpt, output=lambda ctx: ctx.run0)
export("vocab-missing", lambda ctx: ctx.ckpt, "--vocab", "/nonexistent/vocab")
case("export-vocab-garbage", "export", app("export", lambda ctx: [
    str(ctx.ckpt), str(ctx.fresh() / "hf"), "--vocab", str(_garbage_file(ctx, "bpe_encoder.bin"))]), watch=shared)
case("export-output-read-only", "export", read_only_output("export", lambda ctx, out: [str(ctx.ckpt), str(out)]),
     watch=shared)


# -- report ----------------------------------------------------------------------------------------------------------

def report(name: str, runs: Callable[[Ctx], list[str]], expect: str = "refuse") -> None:
    case(f"report-{name}", "report", app("report", runs), expect=expect, watch=shared)


def _run_copy_with(ctx: Ctx, edit: Callable[[Path], None]) -> Path:
    run_dir = copied_run(ctx, "report")
    edit(run_dir)
    return run_dir


report("ok", lambda ctx: [str(ctx.run0), "--output", str(ctx.fresh() / "rep")], expect="succeed")
report("run-missing", lambda ctx: [str(ctx.root / "no-run"), "--output", str(ctx.fresh() / "rep")])
report("run-empty", lambda ctx: [str(ctx.fresh("empty")), "--output", str(ctx.fresh() / "rep")])
report("run-is-file", lambda ctx: [str(ctx.corpus_text), "--output", str(ctx.fresh() / "rep")])
report("metrics-garbage", lambda ctx: [str(_run_copy_with(ctx, lambda r: (r / "metrics.jsonl").write_bytes(
    b"\x00\xff garbage\n"))), "--output", str(ctx.fresh() / "rep")])
report("metrics-list-lines", lambda ctx: [str(_run_copy_with(ctx, lambda r: (r / "metrics.jsonl").write_text(
    "[1]\n[2]\n"))), "--output", str(ctx.fresh() / "rep")])
report("unused-run-json-binary", lambda ctx: [str(_run_copy_with(ctx, lambda r: (r / "run.json").write_bytes(
    b"\xff\xfe"))), "--output", str(ctx.fresh() / "rep")], expect="succeed")
report("unused-eval-results-list", lambda ctx: [str(_run_copy_with(ctx, lambda r: (r / "eval_results.json").write_text(
    "[]"))), "--output", str(ctx.fresh() / "rep")], expect="succeed")
report("output-is-file", lambda ctx: [str(ctx.run0), "--output", output_is_file(ctx)[1]])
case("report-output-into-a-run-folder", "report", app("report", lambda ctx: [str(ctx.run0), "--output",
                                                                              str(ctx.run0)]),
     expect="succeed", watch=shared, additions_ok=True)
report("title-control-characters", lambda ctx: [str(ctx.run0), "--output", str(ctx.fresh() / "rep"), "--title",
                                                "a\nb\x00"])
case("report-output-read-only", "report", read_only_output("report", lambda ctx, out: [str(ctx.run0), "--output",
                                                                                       str(out)]), watch=shared)


# -- download (a fault server on 127.0.0.1) ----------------------------------------------------------------------------

def download(name: str, args: list[str], *, setup_hub: Callable[[Any], None] | None = None,
             env: dict[str, str | None] | None = None, expect: str = "refuse", timeout: float = CASE_SECONDS,
             no_override: bool = False, cache_setup: Callable[[Path], None] | None = None,
             plain_mirror: bool = True) -> None:
    def run(ctx: Ctx) -> AppResult:
        from hub_server import HubServer
        from test_hub import CONFIG, WEIGHTS

        cache = ctx.fresh(f"download-{name}") / "cache"
        if cache_setup:
            cache_setup(cache)
        with HubServer() as hub:
            hub.add_file("microsoft/deberta-base", "config.json", CONFIG)
            hub.add_file("microsoft/deberta-base", "pytorch_model.bin", WEIGHTS)
            hub.redirect_lfs = not plain_mirror
            if setup_hub:
                setup_hub(hub)
            environment = {**ctx.env, **hub.environ(cache), "DEBERTA_DOWNLOAD_RETRIES": "2",
                           "DEBERTA_DOWNLOAD_RATE_WINDOW": "0.3", **(env or {})}
            try:
                return run_app("DeBERTa.apps.download", args, env=environment, no_override=no_override,
                               timeout=timeout)
            finally:
                for path in [cache, *cache.rglob("*")] if cache.exists() else []:
                    if path.is_dir():
                        path.chmod(0o755)
    case(f"download-{name}", "download", run, expect=expect, watch=shared, timeout=timeout + 30)


download("ok", ["base", "--quiet"], expect="succeed")
download("nothing", [])
download("unknown-option", ["--bogus"])
download("unknown-model", ["no-such-model"])
download("file-escape", ["base", "--files", "../../etc/passwd"])
download("file-hidden", ["base", "--files", ".hub"])
download("file-newline", ["base", "--files", "a\nb"])
for _value in ("huggingface.co", "file:///mirror", "http://[::1", "http://h:port", "ftp://h", ""):
    download(f"hub-url-{_value[:12] or 'empty'}", ["base"], env={"DEBERTA_MODEL_HUB": _value})
download("retries-text", ["base"], env={"DEBERTA_DOWNLOAD_RETRIES": "many"})
download("retries-negative", ["base"], env={"DEBERTA_DOWNLOAD_RETRIES": "-1"})
download("backoff-negative", ["base"], env={"DEBERTA_DOWNLOAD_BACKOFF": "-1"})
download("offline", ["base"], env={"DEBERTA_OFFLINE": "1"})
download("portal-html", ["base", "--quiet"], setup_hub=lambda hub: hub.html.__setitem__("config.json", 10))
download("portal-redirect", ["base", "--quiet"], setup_hub=lambda hub: hub.redirect.__setitem__("config.json",
                                                                                                  "/portal"))
download("redirect-loop", ["base", "--quiet"], setup_hub=lambda hub: hub.redirect.__setitem__(
    "config.json", "/microsoft/deberta-base/resolve/main/config.json"))
download("not-json", ["base", "--quiet"], setup_hub=lambda hub: hub.add_file("microsoft/deberta-base", "config.json",
                                                                              b"Service Unavailable"))
download("not-zip", ["base", "--quiet"], setup_hub=lambda hub: hub.add_file(
    "microsoft/deberta-base", "pytorch_model.bin", b"Service Unavailable" * 100))
download("trickle", ["base", "--quiet", "--files", "pytorch_model.bin"],
         setup_hub=lambda hub: hub.trickle.__setitem__("pytorch_model.bin", 5))
download("reset", ["base", "--quiet", "--files", "pytorch_model.bin"],
         setup_hub=lambda hub: hub.reset.__setitem__("pytorch_model.bin", 5))
download("503", ["base", "--quiet", "--files", "pytorch_model.bin"],
         setup_hub=lambda hub: hub.statuses.__setitem__("pytorch_model.bin", [503] * 5))
download("404", ["base", "--quiet", "--files", "missing.bin"])
download("truncated-body", ["base", "--quiet", "--files", "pytorch_model.bin"],
         setup_hub=lambda hub: hub.drop_after.__setitem__("pytorch_model.bin", 1000), expect="succeed")
download("wrong-size-advertised", ["base", "--quiet"],
         setup_hub=lambda hub: hub.advertised_size.__setitem__("pytorch_model.bin", 12), plain_mirror=False)


def _read_only_cache(cache: Path) -> None:
    (cache / "models" / "base").mkdir(parents=True)
    (cache / "models" / "base").chmod(0o555)


def _hub_read_only(cache: Path) -> None:
    (cache / "models" / "base" / ".hub").mkdir(parents=True)
    (cache / "models" / "base" / ".hub").chmod(0o555)


def _cache_below_file(cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file")


def _hand_placed_html(cache: Path) -> None:
    (cache / "models" / "base").mkdir(parents=True)
    (cache / "models" / "base" / "config.json").write_bytes(b"<html>portal</html>")


download("cache-read-only", ["base", "--quiet"], cache_setup=_read_only_cache, no_override=True)
download("hub-folder-read-only", ["base", "--quiet"], cache_setup=_hub_read_only, no_override=True)
download("cache-is-file", ["base", "--quiet"], cache_setup=_cache_below_file)
download("cached-html-placed-by-hand", ["base", "--quiet"], cache_setup=_hand_placed_html)


# -- bench, build_vocab, demo (arguments) -----------------------------------------------------------------------------

for _name, _args in {
    "model-unknown": ["--model", "huge-one"], "layers-negative": ["--layers", "-1"],
    "dtype-unknown": ["--dtype", "fp8"],
    "device-unknown": ["--device", "tpu:9"], "repeats-0": ["--repeats", "0"], "threads-0": ["--threads", "0"],
    "forward-garbage": ["--forward", "x:y:z"], "train-garbage": ["--train", "1x"],
    "warmup-negative": ["--warmup", "-1"], "seed-text": ["--seed", "abc"],
    "json-is-dir": ["--json", "/tmp", "--model", "tiny", "--forward", "1x8", "--repeats", "2"],
    "unknown-option": ["--bogus"],
}.items():
    # A valid tiny benchmark whose one option the case spoils (the last value of an option wins).
    case(f"bench-{_name}", "bench", app("bench", lambda ctx, a=_args: [
        "--model", "tiny", "--forward", "1x8", "--train", "", "--memory", "", "--repeats", "2", "--warmup", "0",
        "--quiet", *a]), watch=shared)

for _name, _args in {
    "corpus-missing": lambda ctx: ["--corpus", str(ctx.root / "none.txt"), "--output", str(ctx.fresh() / "v")],
    "output-is-file": lambda ctx: ["--corpus", str(ctx.corpus_text), "--output", output_is_file(ctx)[1]],
    "type-unknown": lambda ctx: ["--type", "wordpiece", "--corpus", str(ctx.corpus_text), "--output",
                                 str(ctx.fresh() / "v")],
    "corpus-binary": lambda ctx: ["--type", "spm", "--vocab_size", "50", "--corpus",
                                  str(_garbage_file(ctx, "c.txt")), "--output", str(ctx.fresh() / "v")],
    "vocab-size-0": lambda ctx: ["--type", "spm", "--vocab_size", "0", "--corpus", str(ctx.corpus_text), "--output",
                                 str(ctx.fresh() / "v")],
    "vocab-size-huge": lambda ctx: ["--type", "spm", "--vocab_size", "10000000", "--corpus", str(ctx.corpus_text),
                                    "--output", str(ctx.fresh() / "v")],
    "pad-multiple-0": lambda ctx: ["--corpus", str(ctx.corpus_text), "--output", str(ctx.fresh() / "v"),
                                   "--pad_to_multiple_of", "0"],
    "encoder-json-missing": lambda ctx: ["--corpus", str(ctx.corpus_text), "--output", str(ctx.fresh() / "v"),
                                         "--encoder_json", "/nonexistent/encoder.json"],
    "coverage-2": lambda ctx: ["--type", "spm", "--vocab_size", "60", "--character_coverage", "2", "--corpus",
                               str(ctx.corpus_text), "--output", str(ctx.fresh() / "v")],
    "output-no-args": lambda ctx: ["--corpus", str(ctx.corpus_text)],
}.items():
    case(f"build-vocab-{_name}", "build_vocab", app("build_vocab", _args), watch=shared)
case("build-vocab-ok", "build_vocab", app("build_vocab", lambda ctx: [
    "--corpus", str(ctx.corpus_text), "--output", str(ctx.fresh() / "v")]), expect="succeed", watch=shared)

# The demo fetches its data (GLUE, pip packages): no network for the census, so a bad argument that is not refused
# first fails on the download (and shows as such) instead of fetching megabytes.
NO_NETWORK: dict[str, str | None] = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                                     "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                                     "PIP_NO_INDEX": "1", "no_proxy": "", "NO_PROXY": ""}
for _name, _args in {
    "model-unknown": ["--model", "gigantic"], "task-unknown": ["--task", "NOPE"], "seeds-negative": ["--seeds", "-1"],
    "pretrain-steps-negative": ["--pretrain_steps", "-1"], "epochs-nan": ["--num_train_epochs", "nan"],
    "epochs-text": ["--num_train_epochs", "many"], "objective-unknown": ["--pretrain_objective", "clm"],
    "unknown-option": ["--bogus"],
}.items():
    case(f"demo-{_name}", "demo", app("demo", lambda ctx, a=_args: [*a, "--output_dir", str(ctx.fresh() / "demo")],
                                      env=NO_NETWORK), watch=shared, timeout=60)
case("demo-output-is-file", "demo", app("demo", lambda ctx: ["--quick", *output_is_file(ctx)], env=NO_NETWORK),
     watch=shared, timeout=60)


# -- the library API (item 9) -----------------------------------------------------------------------------------------

def api(name: str, call: Callable[[Ctx], Any], *, error: type[BaseException] | tuple[type[BaseException], ...] | None,
        seconds: float = 30.0, result_check: Callable[[Any], str | None] | None = None) -> None:
    """``error``: the exception type a one-line refusal must have (None: a correct result is expected)."""
    def run(ctx: Ctx) -> Outcome:
        from DeBERTa.deberta.errors import DeBERTaError

        started = time.perf_counter()
        try:
            value = call(ctx)
        except CaseTimeout:
            raise
        except BaseException as err:  # noqa: BLE001 -- classified below
            message = str(err)
            expected = error or ()
            if isinstance(err, expected) and message and "\n" not in message:
                return Outcome("one-line error", f"{type(err).__name__}: {message[:140]}")
            if isinstance(err, TypeError | ValueError | DeBERTaError) and message and "\n" not in message:
                return Outcome("bad error form", f"{type(err).__name__} (expected {expected}): {message[:140]}")
            return Outcome("traceback", f"{type(err).__name__}: {message.splitlines()[0][:140] if message else ''}")
        seconds_taken = time.perf_counter() - started
        if error is not None:
            return Outcome("accepted silently", f"returned {str(value)[:80]!r}")
        if seconds_taken > seconds:
            return Outcome("hang", f"took {seconds_taken:.0f} s (limit {seconds:.0f} s)")
        problem = result_check(value) if result_check else None
        return Outcome("wrong", problem) if problem else Outcome("correct", "")
    case(f"api-{name}", "library", run, timeout=max(seconds * 3, 60))


def _tokenizer(ctx: Ctx) -> Any:
    """The census's tokenizer, loaded once (outside the time of a case that measures)."""
    from DeBERTa import deberta

    if "tokenizer" not in ctx.scratch:
        ctx.scratch["tokenizer"] = deberta.load_tokenizer(ctx.vocab)
    return ctx.scratch["tokenizer"]


for _name, (_call, _error) in {
    "encode-None": (lambda ctx: _tokenizer(ctx).encode(None), TypeError),
    "encode-bytes": (lambda ctx: _tokenizer(ctx).encode(b"abc"), TypeError),
    "encode-lone-surrogate": (lambda ctx: _tokenizer(ctx).encode("a\ud800b"), ValueError),
    "encode-max-seq-len-0": (lambda ctx: _tokenizer(ctx).encode("hello", max_seq_len=0), ValueError),
    "encode-max-seq-len-float": (lambda ctx: _tokenizer(ctx).encode("hello", max_seq_len=1.5), TypeError),
    "encode-batch-str": (lambda ctx: _tokenizer(ctx).encode_batch("hello"), TypeError),
    "encode-batch-ragged-pairs": (lambda ctx: _tokenizer(ctx).encode_batch(["a", "b"], ["c"]), ValueError),
    "ids-to-tokens-out-of-range": (lambda ctx: _tokenizer(ctx).convert_ids_to_tokens([1, 10**9]), ValueError),
    "ids-to-tokens-negative": (lambda ctx: _tokenizer(ctx).convert_ids_to_tokens([-1]), ValueError),
    "decode-out-of-range": (lambda ctx: _tokenizer(ctx).decode([1, 10**9]), ValueError),
    "decode-None": (lambda ctx: _tokenizer(ctx).decode(None), TypeError),
    "tokens-to-ids-str": (lambda ctx: _tokenizer(ctx).convert_tokens_to_ids("abc"), TypeError),
    "load-tokenizer-missing": (lambda ctx: __import__("DeBERTa.deberta", fromlist=["x"]).load_tokenizer(
        ctx.root / "no-vocab"), ValueError),
    "config-hidden-1e6-check-fits": (lambda ctx: _build_huge(), ValueError),
    "config-from-dict-list": (lambda ctx: __import__("DeBERTa.deberta", fromlist=["x"]).ModelConfig.from_dict([1]),
                              ValueError),
    "config-heads-0": (lambda ctx: __import__("DeBERTa.deberta", fromlist=["x"]).ModelConfig(num_attention_heads=0),
                       ValueError),
    "config-hidden-str": (lambda ctx: __import__("DeBERTa.deberta", fromlist=["x"]).ModelConfig(hidden_size="768"),
                          (ValueError, TypeError)),
    "model-no-config": (lambda ctx: __import__("DeBERTa.deberta", fromlist=["x"]).DeBERTa(), ValueError),
    "load-state-truncated": (lambda ctx: _load_state(checkpoint_variant(ctx, "truncated")), ValueError),
    "load-state-int32": (lambda ctx: _load_state(checkpoint_variant(ctx, "int32")), ValueError),
    "load-state-nan": (lambda ctx: _load_state(checkpoint_variant(ctx, "nan")), ValueError),
    "load-state-bin-list": (lambda ctx: _load_state(checkpoint_variant(ctx, "bin-list")), ValueError),
    "load-state-pickle": (lambda ctx: _load_state(checkpoint_variant(ctx, "bin-pickle")), ValueError),
    "load-state-config-huge": (lambda ctx: _load_state(checkpoint_variant(ctx, "config-huge")), ValueError),
    "load-state-missing": (lambda ctx: _load_state(ctx.root / "none"), ValueError),
}.items():
    api(_name, _call, error=(_error, __import__("DeBERTa.deberta.errors", fromlist=["x"]).DeBERTaError)
        if not isinstance(_error, tuple) else (*_error,))


def _build_huge() -> Any:
    from DeBERTa import deberta

    config = deberta.ModelConfig(hidden_size=1_000_000, num_attention_heads=4)
    config.check_fits_in_memory()
    return deberta.DeBERTa(config)


def _load_state(path: Path) -> Any:
    from DeBERTa import deberta

    return deberta.load_model_state(path)


def _two_million(ctx: Ctx) -> Any:
    text = ("the quick brown fox jumps over the lazy dog, café 漢字 " * 40000)[:2_000_000]
    return _tokenizer(ctx).encode(text, max_seq_len=512)


api("encode-two-million-characters", _two_million, error=None, seconds=20.0,
    result_check=lambda e: None if len(e.input_ids) == 512 else f"{len(e.input_ids)} ids, not 512")
api("encode-empty", lambda ctx: _tokenizer(ctx).encode(""), error=None,
    result_check=lambda e: None if len(e.input_ids) == 2 else "not [CLS] [SEP]")
api("encode-nul", lambda ctx: _tokenizer(ctx).encode("a\x00b"), error=None)
api("encode-emoji", lambda ctx: _tokenizer(ctx).encode("a 😀 b"), error=None)
api("load-state-ok", lambda ctx: _load_state(ctx.ckpt), error=None)


# ------------------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated groups to run")
    parser.add_argument("--match", help="run the cases whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--json", type=Path, help="write every case's category and detail here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if (not args.only or c.group in args.only.split(","))
             and (not args.match or args.match in c.name)]
    if args.list:
        for c in cases:
            print(f"{c.group:15} {c.name}")
        print(f"{len(cases)} cases")
        return 0
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="fault-census-"))
    os.chmod(root, 0o755)  # the permission cases run without capabilities: they must reach their folders
    started = time.perf_counter()
    print(f"setting up in {root} ...", flush=True)
    ctx = setup(root)
    _tokenizer(ctx)
    print(f"setup took {time.perf_counter() - started:.0f} s; {len(cases)} cases", flush=True)
    results: list[tuple[Case, str, str, float]] = []
    for index, c in enumerate(cases, 1):
        case_started = time.perf_counter()
        category, detail = classify(c, ctx)
        seconds = time.perf_counter() - case_started
        results.append((c, category, detail, seconds))
        mark = "  " if category in PASSING else "!!"
        print(f"{mark} [{index:3}/{len(cases)}] {c.group:14} {c.name:42} {category:18} {seconds:5.1f}s  "
              f"{detail[:110]}", flush=True)
    counts = Counter(category for _, category, _, _ in results)
    print(f"\n{len(results)} bad inputs and faults against the apps and the library gave: "
          + ", ".join(f"{counts[c]} {c}" for c in CATEGORIES if counts[c]) + ".")
    by_group: dict[str, Counter] = {}
    for c, category, _, _ in results:
        by_group.setdefault(c.group, Counter())[category] += 1
    print(f"\n{'group':16}" + "".join(f"{c[:12]:>13}" for c in CATEGORIES))
    for group, group_counts in by_group.items():
        print(f"{group:16}" + "".join(f"{group_counts[c]:>13}" for c in CATEGORIES))
    print(f"{'total':16}" + "".join(f"{counts[c]:>13}" for c in CATEGORIES))
    failing = [(c, category, detail) for c, category, detail, _ in results if category not in PASSING]
    if failing:
        print("\nNot passing:")
        for c, category, detail in failing:
            print(f"  {category:18} {c.group}/{c.name}: {detail[:200]}")
    if args.json:
        args.json.write_text(json.dumps([{"group": c.group, "name": c.name, "category": category, "detail": detail,
                                          "seconds": round(seconds, 2)} for c, category, detail, seconds in results],
                                        indent=1) + "\n", encoding="utf-8")
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    if not args.keep:
        for path in [root, *root.rglob("*")]:
            with contextlib.suppress(OSError):
                if path.is_dir() and not path.is_symlink():
                    path.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
