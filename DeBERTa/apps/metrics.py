"""Evaluation metrics of the GLUE tasks: pure functions, numpy arrays in, a Python float out.

All functions take ``(predictions, labels)`` as 1-D arrays of equal, non-zero length: label ids for the
classification metrics, real scores for the correlations. Computation is in float64.

Degenerate inputs follow one convention: a correlation that is undefined because one side has no
variance (every prediction the same class, every score equal) is reported as 0.0 — "no measurable
association" — instead of NaN. This is scikit-learn's choice for the Matthews correlation, and the
Matthews correlation is the Pearson correlation of two binary variables, so Pearson and Spearman
follow it too. A NaN would poison best-checkpoint selection (every comparison with NaN is false) and
is not valid JSON in ``metrics.jsonl``. Non-finite *inputs* (a diverged model's NaN scores) are not
masked: they give NaN, so the trainer can see them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = [
    "METRICS",
    "REGRESSION_METRICS",
    "accuracy",
    "compute_metrics",
    "f1",
    "matthews_corrcoef",
    "pearson",
    "spearman",
]


def _check(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim != 1 or predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must be equal-length 1-D")
    if predictions.size == 0:
        raise ValueError("a metric needs at least one example")
    return predictions, labels


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose predicted label id equals the gold one."""
    predictions, labels = _check(predictions, labels)
    return float(np.mean(predictions == labels))


def f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Binary F1 of the positive class (label id 1): ``2·TP / (2·TP + FP + FN)``.

    0.0 when there is no positive among either predictions or labels (nothing to find, nothing found).
    """
    predictions, labels = _check(predictions, labels)
    pred_pos, gold_pos = predictions == 1, labels == 1
    tp = np.sum(pred_pos & gold_pos)
    fp = np.sum(pred_pos & ~gold_pos)
    fn = np.sum(~pred_pos & gold_pos)
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def matthews_corrcoef(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Matthews correlation coefficient, multi-class form (Gorodkin, 2004); binary MCC for 2 classes.

    With ``C`` the confusion matrix, ``n`` examples, ``c`` correct ones, ``t_k`` / ``p_k`` the gold /
    predicted count of class k: ``(c·n − Σ p_k t_k) / sqrt((n² − Σ p_k²)(n² − Σ t_k²))``. 0.0 when
    either side is constant (see module docstring).
    """
    predictions, labels = _check(predictions, labels)
    classes, codes = np.unique(np.concatenate([predictions, labels]), return_inverse=True)
    pred_codes, gold_codes = codes[: predictions.size], codes[predictions.size :]
    pred_counts = np.bincount(pred_codes, minlength=classes.size).astype(np.float64)
    gold_counts = np.bincount(gold_codes, minlength=classes.size).astype(np.float64)
    n = float(predictions.size)
    correct = float(np.sum(pred_codes == gold_codes))
    covariance = correct * n - pred_counts @ gold_counts
    variance = (n * n - pred_counts @ pred_counts) * (n * n - gold_counts @ gold_counts)
    return float(covariance / np.sqrt(variance)) if variance > 0 else 0.0


def pearson(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation of two score vectors; 0.0 if either is constant (see module docstring)."""
    predictions, labels = _check(predictions, labels)
    x = predictions.astype(np.float64) - np.mean(predictions, dtype=np.float64)
    y = labels.astype(np.float64) - np.mean(labels, dtype=np.float64)
    variance = (x @ x) * (y @ y)
    if variance == 0:
        return 0.0
    # Clip: rounding can push a perfect correlation a few ulps past ±1.
    return float(np.clip((x @ y) / np.sqrt(variance), -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of the ranks they span (e.g. 2, 2 → 1.5, 1.5)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    # A group of `count` ties after `before` smaller values spans ranks before+1 … before+count.
    before = np.cumsum(counts) - counts
    return (before + (counts + 1) / 2.0)[inverse.reshape(-1)]


def spearman(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Spearman rank correlation: Pearson correlation of the average ranks (ties share a rank)."""
    predictions, labels = _check(predictions, labels)
    if not (np.all(np.isfinite(predictions)) and np.all(np.isfinite(labels))):
        return float("nan")  # ranks would silently order NaN last and hide the divergence
    return pearson(_average_ranks(predictions), _average_ranks(labels))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": accuracy,
    "f1": f1,
    "mcc": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}
"""Metric name (as written to ``metrics.jsonl`` and task files) → function."""

REGRESSION_METRICS = ("pearson", "spearman")
"""Metrics of real-valued scores; the others compare label ids (and ``f1`` needs exactly two labels)."""


def compute_metrics(names: Sequence[str], predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names``, in that order.

    ``predictions``/``labels``: ``(N,)`` label ids or scores (the task turns logits into these).
    """
    return {name: METRICS[name](predictions, labels) for name in names}
