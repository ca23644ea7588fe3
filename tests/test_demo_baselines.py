"""The demo's baselines: majority class, and TF-IDF + logistic regression with C from cross-validation."""

from __future__ import annotations

import sys

import pytest

from DeBERTa.apps import demo_baselines
from DeBERTa.apps.demo_baselines import BaselineError
from DeBERTa.deberta.errors import DeBERTaError


def test_majority_class_counts_the_training_labels() -> None:
    result = demo_baselines.majority_class([1, 1, 0, 1], [0, 1, 1, 1, 0])
    assert result.name == "majority class" and result.details == {"label": 1}
    assert result.accuracy == pytest.approx(3 / 5)
    assert demo_baselines.majority_class([0, 1], [0, 0, 1]).details == {"label": 0}  # a tie: the smaller label
    with pytest.raises(BaselineError):
        demo_baselines.majority_class([], [1])


def _sentences(n: int, offset: int = 0) -> tuple[list[str], list[int]]:
    good = ["wonderful", "moving", "brilliant", "funny"]
    bad = ["dull", "boring", "awful", "tedious"]
    texts, labels = [], []
    for i in range(offset, offset + n):
        label = i % 2
        word = (good if label else bad)[(i // 2) % 4]
        texts.append(f"the film number {i} was {word} and long")
        labels.append(label)
    return texts, labels


def test_tfidf_learns_words_and_chooses_c_on_training_data_only() -> None:
    pytest.importorskip("sklearn")
    train_texts, train_labels = _sentences(80)
    dev_texts, dev_labels = _sentences(40, offset=1000)
    result = demo_baselines.tfidf_logistic_regression(train_texts, train_labels, dev_texts, dev_labels)
    assert result.name == "TF-IDF + logistic regression"
    assert result.accuracy == 1.0  # the sentiment word decides; the numbers never repeat across splits
    assert result.details["C"] in demo_baselines.C_GRID and result.details["cv_folds"] == 5
    flipped = demo_baselines.tfidf_logistic_regression(train_texts, train_labels, dev_texts,
                                                       [1 - y for y in dev_labels])
    assert flipped.accuracy == 0.0  # the score is computed on the dev labels given


def test_without_scikit_learn_the_baseline_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # what an import of a missing package meets
    with pytest.raises(DeBERTaError, match=r'pip install "deberta\[demo\]"'):
        demo_baselines.tfidf_logistic_regression(["a"], [1], ["b"], [0])
