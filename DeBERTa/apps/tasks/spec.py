"""The declarative description of a task: which files, which columns, which labels, which metrics.

A :class:`TaskSpec` says everything the data layer, the metrics and the leaderboard writer need to know
about a task; nothing else in the code knows about individual tasks. Each split of a task (``train``,
``dev``, ``dev_matched``, ``test``, ...) has its own :class:`SplitSpec` because the GLUE files lay out
their splits differently (CoLA's train file has no header and its test file has one; SST-2's test file
gains an ``index`` column in front of the sentence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from DeBERTa.deberta.errors import DeBERTaError

from .. import metrics as _metrics

Column = int | str
"""A column by 0-based position (negative counts from the end) or, for files with a header or JSON
lines, by name."""

FILE_FORMATS = ("tsv", "csv", "jsonl")
"""``tsv``: split on tabs only, no quote processing (GLUE); ``csv``: RFC 4180 quoting via the ``csv``
module; ``jsonl``: one JSON object per line, columns are keys."""


class TaskError(DeBERTaError):
    """An unknown task, an unknown split of a task, or an invalid task definition."""


@dataclass(frozen=True)
class SplitSpec:
    """How one split of a task is stored.

    A split with ``label_column=None`` is unlabeled: it is predicted, never scored (GLUE test files).
    """

    name: str
    """Split name used everywhere else: ``train``, ``dev``, ``dev_matched``, ``test``, ..."""
    files: tuple[str, ...]
    """Candidate file names relative to the data dir; the first one that exists is read."""
    header: bool
    """Whether the first line names the columns (it is not an example)."""
    text_columns: tuple[Column, ...]
    """One column (single sentence) or two (sentence pair), in the order they are fed to the model."""
    label_column: Column | None = None
    """The gold label or score; ``None`` for an unlabeled split."""
    num_columns: int | None = None
    """Exact number of fields every row must have (``tsv``/``csv``). ``None``: as many as the header
    has, or, without a header, any row wide enough for the columns used."""
    id_column: Column | None = None
    """Column whose value identifies the example in prediction files; ``None`` uses the 0-based
    position in the split, which is what GLUE's test ``index`` column holds."""
    skip_malformed: bool = False
    """Skip (and count, and warn about) rows with the wrong number of fields instead of failing. Only
    for labeled splits: a skipped test row would leave a hole in the leaderboard file."""
    leaderboard_file: str | None = None
    """File name the GLUE server expects for this split's predictions (test splits only)."""

    def __post_init__(self) -> None:
        if not self.files:
            raise TaskError(f"split {self.name!r} names no file")
        if len(self.text_columns) not in (1, 2):
            raise TaskError(f"split {self.name!r} must have one or two text columns, got {self.text_columns}")
        if self.skip_malformed and self.label_column is None:
            raise TaskError(f"split {self.name!r}: skip_malformed is only allowed on labeled splits")

    @property
    def labeled(self) -> bool:
        """Whether rows carry a gold label (train and dev splits)."""
        return self.label_column is not None


@dataclass(frozen=True)
class TaskSpec:
    """A task: its splits, its label set (or regression), its metrics and its prediction files."""

    name: str
    """Display name, as GLUE spells it (``SST-2``, ``STS-B``, ``MNLI``)."""
    splits: tuple[SplitSpec, ...]
    """Every split the task has, training split first when there is one."""
    labels: tuple[str, ...] | None
    """Label strings as they appear in the files, in classifier-row order; ``None`` for regression."""
    metrics: tuple[str, ...] = ()
    """Names from :data:`DeBERTa.apps.metrics.METRICS` reported on each evaluation split."""
    main_metric: str | None = None
    """The metric that picks the best checkpoint; ``None`` only for prediction-only tasks."""
    eval_splits: tuple[str, ...] = ("dev",)
    """Labeled splits evaluated during and after training (MNLI: matched and mismatched)."""
    aliases: tuple[str, ...] = ()
    """Other names :func:`DeBERTa.apps.tasks.get_task` accepts, beyond case, ``-`` and ``_`` changes."""
    file_format: str = "tsv"
    """One of :data:`FILE_FORMATS`."""
    regression_range: tuple[float, float] | None = None
    """Predicted scores are clipped to this range in prediction files (STS-B: 0 to 5)."""
    predict_with: str | None = None
    """For a prediction-only task, the task whose fine-tuned model predicts it (AX: MNLI)."""

    def __post_init__(self) -> None:
        names = [s.name for s in self.splits]
        if len(set(names)) != len(names):
            raise TaskError(f"task {self.name}: duplicate split names {names}")
        if self.file_format not in FILE_FORMATS:
            raise TaskError(f"task {self.name}: file format {self.file_format!r} is not one of {FILE_FORMATS}")
        if self.labels is not None and (len(self.labels) < 2 or len(set(self.labels)) != len(self.labels)):
            raise TaskError(f"task {self.name}: labels must be at least two distinct strings, got {self.labels}")
        unknown = [m for m in self.metrics if m not in _metrics.METRICS]
        if unknown:
            raise TaskError(f"task {self.name}: unknown metrics {unknown}; known: {sorted(_metrics.METRICS)}")
        wrong_kind = [m for m in self.metrics if (m in _metrics.REGRESSION_METRICS) != self.is_regression]
        if wrong_kind:
            kind = "regression" if self.is_regression else "classification"
            raise TaskError(f"task {self.name}: metrics {wrong_kind} do not apply to a {kind} task")
        if "f1" in self.metrics and self.num_labels != 2:
            raise TaskError(f"task {self.name}: f1 is the positive class's F1 and needs exactly two labels")
        if self.metrics and self.main_metric not in self.metrics:
            raise TaskError(f"task {self.name}: main metric {self.main_metric!r} is not among {self.metrics}")
        for split in self.eval_splits:
            if split not in names or not self.split(split).labeled:
                raise TaskError(f"task {self.name}: eval split {split!r} is not a labeled split of {names}")
        if self.eval_splits and not self.metrics:
            raise TaskError(f"task {self.name}: eval splits {self.eval_splits} but no metrics")

    @property
    def num_labels(self) -> int:
        """Classifier outputs: the number of labels, or 1 for regression."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_regression(self) -> bool:
        """Whether the task predicts a real-valued score instead of a label."""
        return self.labels is None

    @property
    def split_names(self) -> tuple[str, ...]:
        """Names of all splits, in declaration order."""
        return tuple(s.name for s in self.splits)

    @property
    def train_split(self) -> str | None:
        """The training split's name, or ``None`` for a prediction-only task."""
        return "train" if "train" in self.split_names else None

    @property
    def test_splits(self) -> tuple[str, ...]:
        """Unlabeled splits, predicted for submission (``--do_predict``)."""
        return tuple(s.name for s in self.splits if not s.labeled)

    def split(self, name: str) -> SplitSpec:
        """The split called ``name``; a :class:`TaskError` naming the task's splits if there is none."""
        for split in self.splits:
            if split.name == name:
                return split
        hint = f" (it is predicted with a fine-tuned {self.predict_with} model)" if self.predict_with else ""
        raise TaskError(
            f"task {self.name} has no {name!r} split{hint}; its splits are: {', '.join(self.split_names)}"
        )

    def label_id(self, label: str) -> int | None:
        """Row of ``label`` in the classifier, or ``None`` if it is not one of :attr:`labels`."""
        if self.labels is None:
            raise TaskError(f"task {self.name} is a regression task and has no labels")
        try:
            return self.labels.index(label)
        except ValueError:
            return None

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs → predictions: label ids ``(N,)`` int64 or scores ``(N,)`` float64.

        ``outputs`` may be logits ``(N, num_labels)`` (arg-maxed for classification) or already
        predictions ``(N,)``; regression also accepts ``(N, 1)``.
        """
        outputs = np.asarray(outputs)
        if self.is_regression:
            if outputs.ndim == 2 and outputs.shape[1] == 1:
                outputs = outputs[:, 0]
            if outputs.ndim != 1:
                raise ValueError(f"{self.name}: regression outputs must be (N,) or (N, 1), got {outputs.shape}")
            return outputs.astype(np.float64)
        if outputs.ndim == 2:
            if outputs.shape[1] != self.num_labels:
                raise ValueError(f"{self.name}: logits have {outputs.shape[1]} columns, task has {self.num_labels}")
            return outputs.argmax(axis=1).astype(np.int64)
        if outputs.ndim != 1:
            raise ValueError(f"{self.name}: outputs must be (N,) label ids or (N, C) logits, got {outputs.shape}")
        return outputs.astype(np.int64)

    def compute_metrics(self, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Every metric of the task on one evaluation split, in :attr:`metrics` order.

        ``outputs`` as in :meth:`predictions`; ``labels`` ``(N,)`` gold label ids or scores.
        """
        return _metrics.compute_metrics(self.metrics, self.predictions(outputs), np.asarray(labels))

    def prediction_file(self, split: str) -> str:
        """File name for a split's predictions: the GLUE server's name for test splits
        (``SST-2.tsv``, ``MNLI-m.tsv``), ``<task>.<split>.tsv`` otherwise."""
        return self.split(split).leaderboard_file or f"{self.name}.{split}.tsv"

