"""The demo's honest baselines: what a reader gets without DeBERTa on the same split.

* majority class — always the training set's most frequent label;
* TF-IDF + logistic regression — word uni- and bigrams weighted by TF-IDF, a logistic regression whose
  inverse regularisation C is chosen by 5-fold cross-validation on the training sentences only (the
  vectoriser is refitted inside every fold, so no fold sees its held-out sentences' statistics), then
  refitted on all training sentences and scored once on dev.

scikit-learn is needed only here: ``pip install "deberta[demo]"``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.extras import require

C_GRID = (1.0, 4.0, 16.0, 64.0, 256.0)
"""Values of C the cross-validation chooses from (sklearn's default is 1.0)."""
CV_FOLDS = 5


class BaselineError(DeBERTaError):
    """A baseline cannot run (scikit-learn missing, no data)."""


@dataclass(frozen=True)
class BaselineResult:
    """One baseline's dev accuracy (a fraction) and what it took."""

    name: str
    accuracy: float
    seconds: float
    details: dict[str, Any]


def majority_class(train_labels: Sequence[int], dev_labels: Sequence[int]) -> BaselineResult:
    """Always predict the most frequent training label (ties: the smaller label)."""
    if not train_labels or not dev_labels:
        raise BaselineError("the majority-class baseline needs training and dev labels")
    start = time.perf_counter()
    counts = Counter(train_labels)
    label = min(counts, key=lambda key: (-counts[key], key))
    accuracy = sum(1 for y in dev_labels if y == label) / len(dev_labels)
    return BaselineResult("majority class", accuracy, time.perf_counter() - start, {"label": label})


def tfidf_logistic_regression(train_texts: Sequence[str], train_labels: Sequence[int], dev_texts: Sequence[str],
                              dev_labels: Sequence[int], seed: int = 0) -> BaselineResult:
    """TF-IDF of 1–2-grams + logistic regression, C by cross-validation on the training sentences only."""
    require("sklearn", "demo", "the TF-IDF baseline")
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    if len(train_texts) != len(train_labels) or len(dev_texts) != len(dev_labels) or not train_texts or not dev_texts:
        raise BaselineError("the TF-IDF baseline needs as many labels as texts, for training and dev")
    start = time.perf_counter()
    pipeline = Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
        ("classifier", LogisticRegression(solver="liblinear")),
    ])
    search = GridSearchCV(pipeline, {"classifier__C": list(C_GRID)},
                          cv=StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed), scoring="accuracy")
    search.fit(list(train_texts), list(train_labels))  # refits the best C on all training sentences
    accuracy = float(search.score(list(dev_texts), list(dev_labels)))
    return BaselineResult("TF-IDF + logistic regression", accuracy, time.perf_counter() - start,
                          {"C": search.best_params_["classifier__C"], "cv_accuracy": float(search.best_score_),
                           "cv_folds": CV_FOLDS, "ngram_range": [1, 2]})
