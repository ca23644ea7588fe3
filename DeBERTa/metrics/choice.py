"""Multiple-choice accuracy (SWAG, RACE), on a 0–100 scale, unrounded.

RACE reports accuracy over the whole set and over its two parts, *middle* (middle-school exams) and
*high* (high-school exams); the overall figure is over questions, not the mean of the parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["RACE_PARTS", "choice_accuracy", "race_accuracy"]

RACE_PARTS = ("middle", "high")


def choice_accuracy(predictions: Sequence[int], labels: Sequence[int]) -> dict[str, Any]:
    """``accuracy`` (percentage of questions whose chosen option is the gold one) and ``total``."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} questions")
    if not labels:
        raise ValueError("accuracy needs at least one question")
    correct = sum(int(p) == int(g) for p, g in zip(predictions, labels, strict=True))
    return {"accuracy": 100.0 * correct / len(labels), "total": len(labels)}


def race_accuracy(predictions: Sequence[int], labels: Sequence[int], parts: Sequence[str]) -> dict[str, Any]:
    """:func:`choice_accuracy` overall, and nested under each part present (``middle``, ``high``)."""
    if len(parts) != len(labels):
        raise ValueError(f"{len(parts)} parts for {len(labels)} questions")
    unknown = sorted(set(parts) - set(RACE_PARTS))
    if unknown:
        raise ValueError(f"unknown RACE part(s) {unknown}; the parts are {', '.join(RACE_PARTS)}")
    result = choice_accuracy(predictions, labels)
    for part in RACE_PARTS:
        chosen = [i for i, p in enumerate(parts) if p == part]
        if chosen:
            result[part] = choice_accuracy([predictions[i] for i in chosen], [labels[i] for i in chosen])
    return result
