"""Evaluation metrics of the non-classification tasks, as pure functions equal to the official scripts.

* :mod:`.squad` — SQuAD 1.1 and 2.0 (``evaluate-v1.1.py``, ``evaluate-v2.0.py``): answer normalisation,
  max over gold answers, no-answer thresholds.
* :mod:`.conll` — entity-level precision, recall and F1 as ``conlleval`` counts them (IOB1 and IOB2).
* :mod:`.choice` — multiple-choice accuracy (RACE also by middle/high part).

Scores are on a 0–100 scale and unrounded, as the official scripts print them. The GLUE metrics are in
:mod:`DeBERTa.apps.metrics` (0–1 floats, the trainer's convention for classification).
"""

from .choice import choice_accuracy, race_accuracy
from .conll import ConllCounts, conll_counts, conlleval
from .squad import normalize_answer, squad_evaluate, squad_v1_evaluate, squad_v2_evaluate

__all__ = [
    "ConllCounts",
    "choice_accuracy",
    "conll_counts",
    "conlleval",
    "normalize_answer",
    "race_accuracy",
    "squad_evaluate",
    "squad_v1_evaluate",
    "squad_v2_evaluate",
]
