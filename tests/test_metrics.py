"""Metrics on hand-worked examples (arithmetic in the comments), on degenerate inputs, and against
independent textbook formulas (and SciPy when it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from DeBERTa.apps import metrics
from DeBERTa.apps.tasks import get_task

# One binary example used by several metrics:
#   preds  = 1 1 0 1 0 0
#   labels = 1 0 1 1 0 0
#   TP = positions 0, 3 -> 2;  FP = position 1 -> 1;  FN = position 2 -> 1;  TN = positions 4, 5 -> 2.
BINARY_PREDS = np.array([1, 1, 0, 1, 0, 0])
BINARY_LABELS = np.array([1, 0, 1, 1, 0, 0])


def test_accuracy_by_hand() -> None:
    # preds 1 0 1 1 vs labels 1 1 1 0: equal at positions 0 and 2 -> 2 / 4.
    assert metrics.accuracy(np.array([1, 0, 1, 1]), np.array([1, 1, 1, 0])) == 0.5
    # TP + TN = 4 of 6.
    assert metrics.accuracy(BINARY_PREDS, BINARY_LABELS) == pytest.approx(4 / 6)


def test_f1_by_hand() -> None:
    # 2·TP / (2·TP + FP + FN) = 4 / (4 + 1 + 1) = 2/3; precision 2/3 and recall 2/3 agree.
    assert metrics.f1(BINARY_PREDS, BINARY_LABELS) == pytest.approx(2 / 3)
    # Only the positive class counts: TP = 1 (position 0), FP = 0, FN = 1 (position 1) -> 2 / 3.
    assert metrics.f1(np.array([1, 0, 0]), np.array([1, 1, 0])) == pytest.approx(2 / 3)
    # No positive anywhere: nothing to find and nothing found -> 0.0 by convention, not a division error.
    assert metrics.f1(np.array([0, 0]), np.array([0, 0])) == 0.0
    # All wrong on the positive class.
    assert metrics.f1(np.array([1, 0]), np.array([0, 1])) == 0.0


def test_mcc_binary_by_hand() -> None:
    # (TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (2·2 − 1·1) / sqrt(3·3·3·3) = 3 / 9.
    assert metrics.matthews_corrcoef(BINARY_PREDS, BINARY_LABELS) == pytest.approx(1 / 3)
    assert metrics.matthews_corrcoef(BINARY_LABELS, BINARY_LABELS) == pytest.approx(1.0)
    assert metrics.matthews_corrcoef(1 - BINARY_LABELS, BINARY_LABELS) == pytest.approx(-1.0)


def test_mcc_multiclass_by_hand() -> None:
    # preds 0 1 2 0 1 2, labels 0 1 2 1 2 0: n = 6, c = 3 correct, p_k = t_k = 2 for every class.
    # (c·n − Σ p_k t_k) / sqrt((n² − Σ p_k²)(n² − Σ t_k²)) = (18 − 12) / sqrt(24 · 24) = 6 / 24.
    preds, labels = np.array([0, 1, 2, 0, 1, 2]), np.array([0, 1, 2, 1, 2, 0])
    assert metrics.matthews_corrcoef(preds, labels) == pytest.approx(0.25)


def test_mcc_of_constant_predictions_is_zero() -> None:
    # Every prediction 1: the denominator's (n² − Σ p_k²) is 16 − 16 = 0; reported as 0.0, not NaN.
    assert metrics.matthews_corrcoef(np.array([1, 1, 1, 1]), np.array([0, 1, 0, 1])) == 0.0
    assert metrics.matthews_corrcoef(np.array([0, 1, 0, 1]), np.array([1, 1, 1, 1])) == 0.0


def test_pearson_by_hand() -> None:
    # x = 1 2 3 4 (mean 2.5), y = 2 4 5 9 (mean 5): dx = −1.5 −.5 .5 1.5, dy = −3 −1 0 4.
    # Σ dx·dy = 4.5 + .5 + 0 + 6 = 11;  Σ dx² = 5;  Σ dy² = 26;  r = 11 / sqrt(130).
    assert metrics.pearson(np.array([1, 2, 3, 4]), np.array([2, 4, 5, 9])) == pytest.approx(11 / math.sqrt(130))
    assert metrics.pearson(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)


def test_spearman_with_ties_by_hand() -> None:
    # x = 1 2 2 3 -> average ranks 1 2.5 2.5 4 (the tied 2s share ranks 2 and 3); y = 1 3 2 4 -> 1 3 2 4.
    # Both mean 2.5: dx = −1.5 0 0 1.5, dy = −1.5 .5 −.5 1.5; Σ dx·dy = 4.5, Σ dx² = 4.5, Σ dy² = 5.
    # ρ = 4.5 / sqrt(4.5 · 5) = sqrt(0.9).
    assert metrics.spearman(np.array([1, 2, 2, 3]), np.array([1, 3, 2, 4])) == pytest.approx(math.sqrt(0.9))
    # Monotone but not linear: Spearman 1, Pearson below 1.
    x, y = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 8.0, 27.0, 64.0])
    assert metrics.spearman(x, y) == pytest.approx(1.0)
    assert metrics.pearson(x, y) < 0.99


def test_average_ranks_by_hand() -> None:
    # Sorted: 5 (rank 1), 10 (rank 2), 20 20 20 (ranks 3 4 5 -> 4 each).
    ranks = metrics._average_ranks(np.array([10, 20, 20, 20, 5]))
    np.testing.assert_array_equal(ranks, [2, 4, 4, 4, 1])


def test_correlations_of_a_constant_are_zero_and_nan_inputs_show() -> None:
    constant, varying = np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0])
    assert metrics.pearson(constant, varying) == 0.0
    assert metrics.spearman(varying, constant) == 0.0
    # A diverged model's NaN scores must not be hidden.
    assert math.isnan(metrics.pearson(np.array([1.0, np.nan, 3.0]), varying))
    assert math.isnan(metrics.spearman(np.array([1.0, np.nan, 3.0]), varying))


def test_bad_shapes_are_errors() -> None:
    with pytest.raises(ValueError, match="equal-length"):
        metrics.accuracy(np.array([1, 0]), np.array([1]))
    with pytest.raises(ValueError, match="at least one"):
        metrics.f1(np.array([]), np.array([]))


def test_against_textbook_formulas_on_random_data() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        preds, labels = rng.integers(0, 2, n), rng.integers(0, 2, n)
        tp = int(np.sum((preds == 1) & (labels == 1)))
        tn = int(np.sum((preds == 0) & (labels == 0)))
        fp = int(np.sum((preds == 1) & (labels == 0)))
        fn = int(np.sum((preds == 0) & (labels == 1)))
        denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        expected_mcc = (tp * tn - fp * fn) / denominator if denominator else 0.0
        assert metrics.matthews_corrcoef(preds, labels) == pytest.approx(expected_mcc)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        expected_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert metrics.f1(preds, labels) == pytest.approx(expected_f1)

        # Without ties, Spearman's ρ = 1 − 6 Σ d² / (n (n² − 1)), d the rank differences.
        x, y = rng.permutation(n), rng.permutation(n)
        d = x - y
        assert metrics.spearman(x * 1.5, y + 0.25) == pytest.approx(1 - 6 * np.sum(d * d) / (n * (n * n - 1)))

        a, b = rng.normal(size=n), rng.normal(size=n)
        assert metrics.pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_against_scipy_when_installed() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    scores = np.round(rng.uniform(0, 5, 200), 1)  # rounding makes many ties
    predicted = np.round(scores + rng.normal(0, 1, 200), 1)
    assert metrics.pearson(predicted, scores) == pytest.approx(stats.pearsonr(predicted, scores)[0])
    assert metrics.spearman(predicted, scores) == pytest.approx(stats.spearmanr(predicted, scores)[0])


def test_task_metric_dicts() -> None:
    # CoLA: logits are arg-maxed to 1 1 0 1 0 0 (the binary example above).
    logits = np.array([[0, 1], [0, 2], [3, 0], [-1, 1], [1, 0], [2, 1]], dtype=np.float32)
    cola = get_task("CoLA").compute_metrics(logits, BINARY_LABELS)
    assert list(cola) == ["mcc", "accuracy"]
    assert cola["mcc"] == pytest.approx(1 / 3) and cola["accuracy"] == pytest.approx(4 / 6)
    assert get_task("MRPC").compute_metrics(BINARY_PREDS, BINARY_LABELS) == pytest.approx(
        {"accuracy": 4 / 6, "f1": 2 / 3})
    # STS-B takes the regression head's (N, 1) output.
    stsb = get_task("STS-B").compute_metrics(np.array([[1.0], [2.0], [3.0], [4.0]]), np.array([2.0, 4.0, 5.0, 9.0]))
    assert stsb == pytest.approx({"pearson": 11 / math.sqrt(130), "spearman": 1.0})
    with pytest.raises(ValueError, match="columns"):
        get_task("MNLI").compute_metrics(logits, BINARY_LABELS)
