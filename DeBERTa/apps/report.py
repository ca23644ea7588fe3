"""Results report: dev metrics of several runs, set against the DeBERTa paper, as Markdown and PNG.

Usage::

    python -m DeBERTa.apps.report RUN_DIR... [--output DIR] [--title TEXT]

Each ``RUN_DIR`` is a run folder written by the training app (it holds ``config.yaml`` and
``metrics.jsonl``) or any folder above run folders; all run folders below it are read. The report
groups runs by task and model, and writes into ``--output``:

* ``report.md``: per task the dev metric as mean ± sample standard deviation over the runs (seeds),
  the number of runs, the paper's numbers for DeBERTa base and large, and the difference to the paper
  for the model size the runs started from;
* ``curves_<task>.png``: training loss and dev metric by step, one line per run;
* ``tasks_vs_paper.png``: a bar chart of every task, ours against the paper.

:func:`make_report` does the same from Python (``make demo`` calls it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import yaml

from DeBERTa.apps import cli
from DeBERTa.apps.tasks import get_task, is_kind_task
from DeBERTa.deberta import extras
from DeBERTa.deberta.errors import DeBERTaError

if TYPE_CHECKING:  # matplotlib is imported where the figures are drawn: without it, one line says what to install
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


logger = logging.getLogger(__name__)


class ReportError(DeBERTaError):
    """Run folders that cannot be read or reported on; the message names the file."""


@dataclass(frozen=True)
class PaperResult:
    """The paper's dev result of one GLUE task, in percent, one value per evaluation split."""

    metric: str
    """The metric's name in metrics.jsonl (see :data:`DeBERTa.apps.metrics.METRICS`)."""
    splits: tuple[str, ...]
    """Evaluation splits the values belong to, in the paper's order (MNLI: matched, mismatched)."""
    base: tuple[float, ...] | None
    """DeBERTa base, or ``None`` where no published source gives the number."""
    large: tuple[float, ...]
    """DeBERTa large."""


# DeBERTa v1 GLUE dev-set results in percent, keyed by the task registry's names. Sources:
# * large, every task: He, Liu, Gao, Chen, "DeBERTa: Decoding-enhanced BERT with Disentangled
#   Attention", ICLR 2021, arXiv:2006.03654, Table 1 "Comparison results on the GLUE development set"
#   (CoLA Mcc, QQP Acc, MNLI-m/mm Acc, SST-2 Acc, STS-B Corr, QNLI Acc, RTE Acc, MRPC Acc). The STS-B
#   "Corr" is Pearson's r: github.com/microsoft/DeBERTa README.md lists the same 92.8 as the Pearson half
#   of "92.8/92.5 (P/S)".
# * base, MNLI only: the same paper, Table 3, and the "results from the Base model" table of
#   github.com/microsoft/DeBERTa README.md (88.8/88.5). Neither the paper nor that repository
#   (README.md, experiments/glue/README.md) publishes base dev results for the other GLUE tasks, so
#   they are left out (None) rather than taken from elsewhere.
PAPER_RESULTS: dict[str, PaperResult] = {
    "MNLI": PaperResult("accuracy", ("dev_matched", "dev_mismatched"), (88.8, 88.5), (91.1, 91.1)),
    "QQP": PaperResult("accuracy", ("dev",), None, (92.3,)),
    "QNLI": PaperResult("accuracy", ("dev",), None, (95.3,)),
    "SST-2": PaperResult("accuracy", ("dev",), None, (96.8,)),
    "CoLA": PaperResult("mcc", ("dev",), None, (70.5,)),
    "RTE": PaperResult("accuracy", ("dev",), None, (88.3,)),
    "MRPC": PaperResult("accuracy", ("dev",), None, (91.9,)),
    "STS-B": PaperResult("pearson", ("dev",), None, (92.8,)),
}

# The kinds beyond classification (already 0–100), keyed by their registry names. SQuAD dev F1: large from
# Table 2 of the same paper (1.1: 95.5/90.1, 2.0: 90.7/88.0 F1/EM), base from Table 3 (1.1: 93.1/87.2,
# 2.0: 86.2/83.1). The paper's RACE and SWAG results are not compared here: RACE's is on its test set.
KIND_PAPER_RESULTS: dict[str, PaperResult] = {
    "SQuAD": PaperResult("f1", ("dev",), (93.1,), (95.5,)),
    "SQuAD2": PaperResult("f1", ("dev",), (86.2,), (90.7,)),
}

# Metrics whose value is an error or a loss rather than a fraction in [-1, 1]: shown as they are,
# not as percentages.
_NON_FRACTION_WORDS = ("loss", "mse", "mae", "error", "perplexity")

# Short split names as the paper writes them ("MNLI-m/mm").
_SPLIT_ABBREVIATIONS = {"dev_matched": "m", "dev_mismatched": "mm"}


def _split_abbreviation(split: str) -> str:
    return _SPLIT_ABBREVIATIONS.get(split, split)


def is_percent(metric: str) -> bool:
    """Whether values of ``metric`` are fractions reported as percentages (accuracy, F1, correlations)."""
    return not any(word in metric.lower() for word in _NON_FRACTION_WORDS)


def model_size(init_model: str | None) -> str | None:
    """``'base'`` or ``'large'`` when ``init_model`` names a DeBERTa v1 base or large model, else ``None``.

    Accepts the names the training app accepts (``'large'``, ``'base-mnli'``,
    ``'microsoft/deberta-large'``) and local folders named after the model; only the last path
    component counts so that a parent folder called ``base`` does not decide. ``xlarge`` and the
    v2/v3 models are not the paper's base/large models.
    """
    if not init_model:
        return None
    words = set(re.split(r"[^a-z0-9]+", Path(str(init_model).rstrip("/\\")).name.lower()))
    if words & {"v2", "v3", "xlarge", "xxlarge"}:
        return None
    if "large" in words:
        return "large"
    if "base" in words:
        return "base"
    return None


@dataclass(frozen=True)
class TaskInfo:
    """What the report needs to know of a task."""

    name: str
    """Display name: the registry's canonical name, else the name in config.yaml."""
    main_metric: str | None
    """The task's main metric; ``None`` for a task the registry does not know (first metric is used)."""
    eval_splits: tuple[str, ...]
    """The splits the task evaluates on, in order; empty when unknown."""
    fractions: bool = True
    """Whether its metrics are recorded as fractions (GLUE, custom tasks) to be shown in percent; the kinds
    beyond classification (NER, SQuAD, RACE, SWAG) record the official 0–100 numbers, shown as they are."""

    def scale(self, metric: str) -> float:
        """The factor that shows ``metric`` of this task in percent (1 for losses and for 0–100 metrics)."""
        return 100.0 if self.fractions and is_percent(metric) else 1.0


def task_info(task_name: str, data_dir: str | None = None) -> TaskInfo:
    """Look ``task_name`` up in the task registry (with the run's ``data_dir``, where a custom task's
    task.yaml lives); a task it does not know is reported all the same, under its own name."""
    try:
        spec = get_task(task_name, data_dir)
    except DeBERTaError:  # unknown here, e.g. a custom task whose data dir is on another machine
        return TaskInfo(task_name, None, ())
    return TaskInfo(spec.name, spec.main_metric, tuple(spec.eval_splits), fractions=not is_kind_task(spec))


def model_label(init_model: str | None, model_config: str | None) -> str:
    """How the report names the model a run started from: ``'base'``/``'large'`` for the paper's
    models, else the last component of ``init_model``, else ``'<model_config> (scratch)'``."""
    size = model_size(init_model)
    if size is not None:
        return size
    if init_model:
        return Path(init_model.rstrip("/\\")).name
    return f"{Path(model_config).stem} (scratch)" if model_config else "scratch"


@dataclass
class Run:
    """One run folder, read."""

    path: Path
    task: TaskInfo
    """The task of config.yaml's ``task_name``, as the registry knows it."""
    seed: int | str | None
    init_model: str | None
    model: str
    """See :func:`model_label`."""
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    """(step, training loss) in file order."""
    evals: dict[str, list[tuple[int, dict[str, float]]]] = field(default_factory=dict)
    """Per split: (step, metrics) of every evaluation, in file order."""
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per split: the metrics of the last evaluation; empty for a run that never evaluated."""

    @property
    def complete(self) -> bool:
        """Whether the run has final dev metrics to report."""
        return bool(self.final)

    @property
    def label(self) -> str:
        """How figures and tables name the run: its seed, else its folder."""
        return f"seed {self.seed}" if self.seed is not None else self.path.name


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric_items(mapping: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, float]:
    """The numeric entries of ``mapping`` as floats, keeping their order, without the keys in ``skip``."""
    skipped = set(skip)
    return {key: float(value) for key, value in mapping.items() if key not in skipped and _is_number(value)}


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ReportError(f"cannot read {path}: {str(err).splitlines()[0]}") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path} is not a mapping of option names to values")
    return data


def _read_json_mapping(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` when the file does not exist."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise ReportError(f"{path} does not hold a JSON object")
    return data


def load_run(run_dir: Path) -> Run:
    """Read a run folder: options from config.yaml, curves and final metrics from metrics.jsonl.

    The final dev metrics are those of the last ``eval`` record of each split; a run whose
    metrics.jsonl has no eval record falls back to eval_results.json, and without that it is
    incomplete (``run.complete`` is false). Raises :class:`ReportError` on unreadable files.
    """
    config = _read_yaml_mapping(run_dir / "config.yaml")
    task = config.get("task_name")
    if not task:
        raise ReportError(f"{run_dir / 'config.yaml'} has no task_name")
    seed = config.get("seed")
    if seed is None:
        seed = (_read_json_mapping(run_dir / "run.json") or {}).get("seed")
    init_model = str(config["init_model"]) if config.get("init_model") else None
    model_config = str(config["model_config"]) if config.get("model_config") else None
    data_dir = str(config["data_dir"]) if config.get("data_dir") else None
    run = Run(run_dir, task_info(str(task), data_dir), seed, init_model, model_label(init_model, model_config))

    metrics_path = run_dir / "metrics.jsonl"
    try:
        text = metrics_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ReportError(f"cannot read {metrics_path}: {err.strerror if isinstance(err, OSError) else err}") from err
    lines = text.splitlines()
    if lines and not text.endswith("\n") and not _is_json(lines[-1]):
        # A run killed (or still running) mid-write leaves a torn last line: the records before it stand.
        logger.warning("%s: the last line is torn (a run stopped while writing it); left out", metrics_path)
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if line.strip():
            _add_record(run, line, f"{metrics_path} line {number}")
    for split, history in run.evals.items():
        run.final[split] = history[-1][1]

    if not run.final:
        results = _read_json_mapping(run_dir / "eval_results.json") or {}
        splits = results.get("splits")
        if isinstance(splits, dict):
            for split, values in splits.items():
                # eval_results.json puts the eval loss next to the metrics; the loss is not a metric.
                metrics = _numeric_items(values, skip=("loss",)) if isinstance(values, dict) else {}
                if metrics:
                    run.final[str(split)] = metrics
    return run


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _add_record(run: Run, line: str, where: str) -> None:
    """Add one metrics.jsonl record to ``run``; ``where`` names the line in error messages."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ReportError(f"{where} is not valid JSON ({err.msg})") from err
    if not isinstance(record, dict):
        raise ReportError(f"{where} is not a JSON object")
    kind = record.get("type")
    if kind not in ("train", "eval"):
        return  # other record types carry nothing the report shows
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise ReportError(f"{where}: the {kind} record has no integer 'step'")
    if kind == "train":
        loss = record.get("loss")
        if not _is_number(loss):
            raise ReportError(f"{where}: the train record has no numeric 'loss'")
        run.train_loss.append((step, float(loss)))
        return
    split, metrics = record.get("split"), record.get("metrics")
    if not isinstance(split, str) or not isinstance(metrics, dict):
        raise ReportError(f"{where}: the eval record needs a 'split' name and a 'metrics' object")
    run.evals.setdefault(split, []).append((step, _numeric_items(metrics)))


def _is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / "metrics.jsonl").is_file()


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders among ``paths`` and below them, sorted, each once.

    Raises :class:`ReportError` when a path does not exist or no run folder is found.
    """
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path} does not exist")
        if _is_run_dir(path):
            found[path.resolve()] = None
            continue
        for metrics in sorted(path.rglob("metrics.jsonl")):
            if _is_run_dir(metrics.parent):
                found[metrics.parent.resolve()] = None
    if not found:
        names = ", ".join(str(p) for p in paths)
        raise ReportError(f"no run folders (a folder with config.yaml and metrics.jsonl) in or under {names}")
    return sorted(found)


@dataclass(frozen=True)
class Row:
    """One line of the results table: one metric of one task and model, over all its runs."""

    task: str
    model: str
    """The runs' :func:`model_label`."""
    size: str | None
    """``'base'`` or ``'large'`` when the paper has a comparable model, else ``None``."""
    metric: str
    """The metric's name as the runs record it."""
    splits: tuple[str, ...]
    runs: int
    """Number of complete runs."""
    means: tuple[float, ...]
    """Per split, in percent for fraction metrics; ``nan`` where no run has the split."""
    stds: tuple[float | None, ...]
    """Per split, sample standard deviation (n - 1); ``None`` for fewer than two values."""
    paper_base: tuple[float, ...] | None = None
    paper_large: tuple[float, ...] | None = None
    diffs: tuple[float, ...] | None = None
    """``mean - paper`` for the model size of the runs; ``None`` when the size is unknown."""


@dataclass
class _Group:
    """Complete runs of one task started from one model."""

    task: TaskInfo
    model: str
    size: str | None
    runs: list[Run]


def _group_runs(runs: Sequence[Run]) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for run in runs:
        if not run.complete:
            continue
        key = (run.task.name, run.model)
        if key not in groups:
            groups[key] = _Group(run.task, run.model, model_size(run.init_model), [])
        groups[key].runs.append(run)
    return [groups[key] for key in sorted(groups, key=lambda key: (key[0].lower(), key[1]))]


def _ordered_splits(group: _Group) -> tuple[str, ...]:
    """The splits the group's runs evaluated, in the registry's order, then in order of appearance."""
    seen: dict[str, None] = {}
    for run in group.runs:
        seen.update(dict.fromkeys(run.final))
    known = [split for split in group.task.eval_splits if split in seen]
    return tuple(known + [split for split in seen if split not in known])


def _metric_names(group: _Group, splits: Sequence[str]) -> list[str]:
    """Every metric the group's runs report, in order of appearance."""
    names: dict[str, None] = {}
    for run in group.runs:
        for split in splits:
            names.update(dict.fromkeys(run.final.get(split, {})))
    return list(names)


def _row(group: _Group, metric: str, splits: tuple[str, ...], paper: PaperResult | None) -> Row:
    scale = group.task.scale(metric)
    means: list[float] = []
    stds: list[float | None] = []
    for split in splits:
        values = [run.final[split][metric] * scale for run in group.runs
                  if metric in run.final.get(split, {})]
        means.append(statistics.fmean(values) if values else math.nan)
        stds.append(statistics.stdev(values) if len(values) > 1 else None)
    row = Row(group.task.name, group.model, group.size, metric, splits, len(group.runs),
              tuple(means), tuple(stds))
    if paper is None:
        return row
    reference = {"base": paper.base, "large": paper.large}.get(group.size or "")
    diffs = tuple(m - p for m, p in zip(means, reference, strict=True)) if reference else None
    return replace(row, paper_base=paper.base, paper_large=paper.large, diffs=diffs)


def summarize(runs: Sequence[Run]) -> list[Row]:
    """The results table: per task and model, the main metric and, if different, the paper's metric.

    The main metric is the registry's ``main_metric``; a task the registry does not know (or whose
    main metric the runs lack) uses the first metric its runs report. Paper numbers and differences
    are filled in only on the row whose metric and splits are the ones the paper reports.
    """
    rows: list[Row] = []
    for group in _group_runs(runs):
        splits = _ordered_splits(group)
        names = _metric_names(group, splits)
        if not names:
            continue
        main = group.task.main_metric if group.task.main_metric in names else names[0]
        paper = PAPER_RESULTS.get(group.task.name) or KIND_PAPER_RESULTS.get(group.task.name)
        if paper is None or paper.metric not in names or not set(paper.splits) <= set(splits):
            rows.append(_row(group, main, splits, None))
            continue
        if main != paper.metric:
            rows.append(_row(group, main, splits, None))
        rows.append(_row(group, paper.metric, paper.splits, paper))
    return rows


# -- formatting ---------------------------------------------------------------------------------------


def _format_value(value: float | None, metric: str) -> str:
    """A mean or std as the table shows it: 2 decimals for percentages, ``'—'`` for a missing std."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if is_percent(metric) else f"{value:.4g}"


def _format_splits(values: Sequence[float | None], metric: str) -> str:
    """Values of several splits joined the paper's way, ``'85.10/84.90'``."""
    return "/".join(_format_value(value, metric) for value in values)


def _format_paper(values: Sequence[float] | None) -> str:
    """Paper numbers with the paper's single decimal; ``'n/a'`` where the paper has none."""
    return "n/a" if values is None else "/".join(f"{value:.1f}" for value in values)


def _format_diffs(values: Sequence[float]) -> str:
    return "/".join("n/a" if math.isnan(value) else f"{value:+.2f}" for value in values)


def _metric_label(row: Row) -> str:
    if len(row.splits) == 1 and row.splits[0] == "dev":
        return row.metric
    splits = "/".join(_split_abbreviation(split) for split in row.splits)
    return f"{row.metric} ({splits})"


def markdown_table(rows: Sequence[Row]) -> str:
    """The results table as GitHub Markdown (one line per row, no trailing newline)."""
    lines = [
        "| Task | Model | Metric | Runs | Ours (mean) | ± std | Paper base | Paper large | Ours − paper |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        diff = f"{_format_diffs(row.diffs)} ({row.size})" if row.diffs is not None else "—"
        # A row whose metric is not the paper's has nothing to compare with: "—", not "n/a".
        has_paper = row.paper_large is not None
        lines.append(
            f"| {row.task} | {row.model} | {_metric_label(row)} | {row.runs} "
            f"| {_format_splits(row.means, row.metric)} | {_format_splits(row.stds, row.metric)} "
            f"| {_format_paper(row.paper_base) if has_paper else '—'} "
            f"| {_format_paper(row.paper_large) if has_paper else '—'} | {diff} |"
        )
    return "\n".join(lines)


def _file_slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "task"


# -- figures ------------------------------------------------------------------------------------------

# Enough distinct colours for the seeds of one task; lines cycle through them.
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
           "tab:gray", "tab:olive", "tab:cyan")
_SPLIT_STYLES = ("-", "--", ":", "-.")


def require_matplotlib() -> None:
    """Raise :class:`~DeBERTa.deberta.extras.MissingExtraError` naming ``pip install "deberta[report]"`` when
    matplotlib (the figures) is missing."""
    extras.require("matplotlib", "report", "the report's figures")


def _new_figure(**kwargs: Any) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _save(figure: Figure, path: Path) -> None:
    # The Agg canvas through matplotlib's object API, not pyplot: no global backend to switch, no GUI,
    # nothing left open in the program that called make_report.
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=110)


def plot_curves(task: str, rows: Sequence[Row], runs: Sequence[Run], path: Path) -> None:
    """Training loss and dev metric by step, one line (per split) per run, into a PNG at ``path``."""
    figure = _new_figure(figsize=(11, 4.4), layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    figure.suptitle(f"{task}: learning curves", fontsize=13)
    main = rows[0]
    scale = runs[0].task.scale(main.metric) if runs else 1.0
    several_models = len({run.model for run in runs}) > 1
    for index, run in enumerate(runs):
        color = _COLORS[index % len(_COLORS)]
        label = f"{run.label} · {run.model}" if several_models else run.label
        finite_losses = [(step, loss) for step, loss in run.train_loss if math.isfinite(loss)]
        if finite_losses:
            steps, losses = zip(*finite_losses, strict=True)
            loss_axes.plot(steps, losses, color=color, linewidth=1.4, label=label)
        for split_index, split in enumerate(main.splits):
            points = [(step, values[main.metric] * scale) for step, values in run.evals.get(split, [])
                      if main.metric in values and math.isfinite(values[main.metric] * scale)]
            if not points:
                continue
            steps, values = zip(*points, strict=True)
            split_label = f" · {_split_abbreviation(split)}" if len(main.splits) > 1 else ""
            metric_axes.plot(steps, values, color=color, marker="o", markersize=3.5, linewidth=1.4,
                             linestyle=_SPLIT_STYLES[split_index % len(_SPLIT_STYLES)],
                             label=f"{label}{split_label}")
    unit = " (%)" if is_percent(main.metric) else ""
    _finish_axes(loss_axes, "Training loss", "training loss")
    _finish_axes(metric_axes, f"Dev {main.metric}", f"{main.metric}{unit}")
    _save(figure, path)


def _finish_axes(axes: Axes, title: str, ylabel: str) -> None:
    axes.set_title(title)
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    if axes.lines:
        axes.legend(fontsize=8, loc="best")
    else:
        axes.text(0.5, 0.5, "no records", transform=axes.transAxes, ha="center", va="center", color="gray")


def plot_tasks(rows: Sequence[Row], path: Path) -> None:
    """Bar chart: for every task and split, our mean (± std) against the paper's base and large."""
    names: list[str] = []
    ours: list[float] = []
    ours_std: list[float | None] = []
    base: list[float | None] = []
    large: list[float | None] = []
    for row in _chart_rows(rows):
        several_models = len({other.model for other in rows if other.task == row.task}) > 1
        # Second line of the tick label: what tells this bar apart beyond the task, if anything.
        details = [row.model] if several_models else []
        details += [row.metric] if row.metric != "accuracy" else []
        for index, split in enumerate(row.splits):
            name = row.task if len(row.splits) == 1 else f"{row.task}-{_split_abbreviation(split)}"
            names.append("\n".join([name, " · ".join(details)]) if details else name)
            ours.append(row.means[index])
            ours_std.append(row.stds[index])
            base.append(row.paper_base[index] if row.paper_base else None)
            large.append(row.paper_large[index] if row.paper_large else None)

    width = 0.26
    figure = _new_figure(figsize=(max(5.5, 1.4 * len(names) + 3.0), 4.8), layout="constrained")
    axes = figure.subplots()
    series: tuple[tuple[str, str, Sequence[float | None]], ...] = (
        ("ours (mean ± std)", "tab:blue", ours),
        ("paper, base", "silver", base),
        ("paper, large", "dimgray", large),
    )
    for offset, (_, color, values) in zip((-width, 0.0, width), series, strict=True):
        # Tasks without this value (no paper number, no run with the split) get no bar.
        shown = [i for i, value in enumerate(values) if _present(value)]
        heights = [value for value in values if _present(value)]
        # A NaN error (a single run) draws no error bar; bar_label puts the value above the error bar.
        errors = [math.nan if ours_std[i] is None else ours_std[i] for i in shown] if values is ours else None
        drawn = axes.bar([i + offset for i in shown], heights, width, color=color,
                         yerr=errors, capsize=3)
        axes.bar_label(drawn, fmt="%.1f", fontsize=7, padding=2)
        if values is not ours:
            # Say where the paper has no number, so a missing bar does not look like a zero.
            for i in set(range(len(names))) - set(shown):
                axes.text(i + offset, 1.0, "n/a", ha="center", va="bottom", fontsize=7, color="gray")
    axes.set_xticks(range(len(names)), names)
    axes.set_xlim(-0.6, len(names) - 0.4)
    axes.set_ylabel("dev metric (%)")
    axes.set_title("Dev results against the DeBERTa paper (He et al. 2020)")
    lowest = min([0.0, *(value for values in (ours, base, large) for value in values if _present(value))])
    # Room above 100 for the value labels; below 0 only for a negative correlation.
    axes.set_ylim(lowest - 5 if lowest < 0 else 0, 108)
    axes.grid(True, axis="y", alpha=0.3)
    # Legend entries drawn by hand: a series without any bar (no base numbers) must still show its colour.
    from matplotlib.patches import Patch

    handles = [Patch(color=color, label=label) for label, color, _ in series]
    axes.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(figure, path)


def _present(value: float | None) -> TypeGuard[float]:
    # NaN or infinity (a diverged run) has no bar: matplotlib cannot draw it.
    return value is not None and math.isfinite(value)


def _chart_rows(rows: Sequence[Row]) -> list[Row]:
    """One row per task and model for the bar chart: the one compared with the paper, else the main one."""
    chosen: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.task, row.model)
        if key not in chosen or row.paper_large is not None:
            chosen[key] = row
    return [row for row in chosen.values() if is_percent(row.metric)]


# -- the report ---------------------------------------------------------------------------------------


def make_report(
    run_dirs: Sequence[str | Path], output_dir: str | Path, title: str = "DeBERTa results"
) -> Path:
    """Read the run folders in or under ``run_dirs`` and write report.md and PNGs into ``output_dir``.

    Returns the path of report.md. Raises :class:`ReportError` (a :class:`DeBERTaError`) when no run
    folder is found, a file cannot be read, ``output_dir`` cannot be written, or matplotlib is missing;
    runs without an evaluation are listed as incomplete. All or nothing: the files are drawn in a scratch
    folder inside ``output_dir`` and moved into place at the end; a failure leaves ``output_dir`` as it was.
    """
    return _write_report(run_dirs, Path(output_dir), title)[0]


def _write_report(run_dirs: Sequence[str | Path], output: Path, title: str) -> tuple[Path, list[Path]]:
    """:func:`make_report`, also returning the figures it wrote (the CLI lists them)."""
    runs = [load_run(path) for path in find_run_dirs(run_dirs)]
    require_matplotlib()
    if output.exists() and not output.is_dir():
        raise ReportError(f"the output {output} is a file, not a folder; choose another --output")
    created = _missing_parents(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".report-", dir=output))
    except OSError as err:
        _remove_created(created)
        raise ReportError(f"cannot write the report into {output} ({err.strerror or err}); choose another "
                          "--output") from err
    try:
        report, figures = _draw_report(runs, scratch, title)
        for path in [*figures, report]:
            os.replace(path, output / path.name)
    except OSError as err:
        _remove_created(created)
        raise ReportError(f"cannot write the report into {output} ({err.strerror or err}); choose another "
                          "--output") from err
    except BaseException:
        _remove_created(created)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return output / report.name, [output / figure.name for figure in figures]


def _missing_parents(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, innermost first: what a failure must remove."""
    missing = []
    for path in (folder, *folder.absolute().parents):
        if path.exists():
            break
        missing.append(path)
    return missing


def _remove_created(folders: list[Path]) -> None:
    if folders:
        shutil.rmtree(folders[-1], ignore_errors=True)


def _draw_report(runs: Sequence[Run], output: Path, title: str) -> tuple[Path, list[Path]]:
    """report.md and the figures of ``runs``, written into ``output``."""
    rows = summarize(runs)
    complete = [run for run in runs if run.complete]
    incomplete = [run for run in runs if not run.complete]

    lines = [
        f"# {title}",
        "",
        f"{len(runs)} run folder{'s' if len(runs) != 1 else ''}: {len(complete)} complete, "
        f"{len(incomplete)} incomplete. Final dev metrics (the last evaluation of each run), in percent "
        "except losses and errors; mean and sample standard deviation (n − 1) over the runs, "
        "\"—\" for a single run.",
        "",
        markdown_table(rows) if rows else "No run has evaluated yet.",
        "",
        "Paper: He et al., *DeBERTa: Decoding-enhanced BERT with Disentangled Attention*, ICLR 2021 "
        "(arXiv:2006.03654), GLUE dev sets: large from Table 1, base from Table 3 and the "
        "repository's README, which give base numbers only for MNLI (n/a elsewhere); SQuAD 1.1 and 2.0 dev "
        "F1: large from Table 2, base from Table 3. NER, SQuAD, RACE and SWAG show the official 0–100 numbers. "
        "\"Ours − paper\" compares with the model size the runs started from, when that is DeBERTa "
        "base or large.",
        "",
    ]

    figures: list[Path] = []
    if _chart_rows(rows):
        figures.append(output / "tasks_vs_paper.png")
        plot_tasks(rows, figures[-1])
        lines += ["## Against the paper", "", f"![Dev results against the paper]({figures[-1].name})", ""]

    tasks = sorted({row.task for row in rows}, key=str.lower)
    if tasks:
        lines += ["## Learning curves", ""]
    for task in tasks:
        task_runs = [run for run in complete if run.task.name == task]
        figures.append(output / f"curves_{_file_slug(task)}.png")
        plot_curves(task, [row for row in rows if row.task == task], task_runs, figures[-1])
        lines += [f"![{task} learning curves]({figures[-1].name})", ""]

    lines += ["## Runs", "", "| Run | Task | Seed | Model | Last step | Final dev metrics |",
              "|---|---|---:|---|---:|---|"]
    lines += [_run_line(run) for run in runs]
    lines.append("")
    if incomplete:
        lines += ["## Incomplete runs", "",
                  "No evaluation record in metrics.jsonl or eval_results.json; left out of the table:", ""]
        lines += [f"- `{_display_path(run.path)}` ({run.task.name}, {run.label})" for run in incomplete]
        lines.append("")

    report = output / "report.md"
    # surrogateescape: a run folder's name that is not UTF-8 is written back as the bytes it was.
    report.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
    return report, figures


def _run_line(run: Run) -> str:
    """One line of the run list: where, what, how far, and the final metrics."""
    steps = [step for step, _ in run.train_loss]
    steps += [step for history in run.evals.values() for step, _ in history]
    finals = "; ".join(
        f"{split}: " + ", ".join(
            f"{name} {_format_value(value * run.task.scale(name), name)}"
            for name, value in metrics.items()
        )
        for split, metrics in run.final.items()
    )
    return (f"| `{_display_path(run.path)}` | {run.task.name} | {run.seed if run.seed is not None else '—'} "
            f"| {run.init_model or run.model} | {max(steps) if steps else '—'} "
            f"| {finals or '**incomplete**: no evaluation yet'} |")


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build_parser() -> cli.OneLineErrorParser:
    parser = cli.OneLineErrorParser(
        prog="python -m DeBERTa.apps.report",
        description="Report dev results of training runs (mean ± std over seeds) against the DeBERTa paper, "
        "as report.md and PNG figures.",
    )
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run folder (config.yaml + metrics.jsonl) or a folder above run folders")
    parser.add_argument("--output", metavar="DIR",
                        help="where to write report.md and the PNGs (default: report/ in the common "
                        "parent of the RUN_DIRs)")
    parser.add_argument("--title", default="DeBERTa results", help="the report's heading")
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    cli.configure_logging()
    require_matplotlib()  # before looking at any run: a missing extra is the first thing to say
    # The title is the report's first line: a control character or a byte that is not UTF-8 would break it.
    if any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in args.title):
        raise ReportError(f"--title {args.title!r} holds a control character or is not valid UTF-8 text")
    common_parent = os.path.commonpath([os.path.abspath(path) for path in args.run_dirs])
    output = args.output or os.path.join(common_parent, "report")
    report, figures = _write_report(args.run_dirs, Path(output), args.title)
    print(f"report: {report}")
    for figure in figures:
        print(f"figure: {figure}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (2 for a user-facing error)."""
    return cli.run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
