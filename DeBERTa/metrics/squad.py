"""SQuAD 1.1 and 2.0 scores, by the rules of the official evaluation scripts.

Both versions normalise an answer the same way before comparing it (:func:`normalize_answer`: lower
case, ASCII punctuation removed, the articles *a*, *an*, *the* removed, whitespace collapsed) and take
the maximum over a question's gold answers. They differ in two places, both kept:

* token F1 of two answers that normalise to nothing (say gold "the", predicted "a"): 0 in v1.1 (no
  common token), 1 in v2.0 (both empty — the v2.0 rule that makes an empty prediction right for an
  unanswerable question);
* gold answers: v1.1 uses every listed answer as it is; v2.0 drops those that normalise to nothing and
  scores a question without answers (unanswerable) against the empty string.

v2.0 also applies a no-answer probability file (``null_odds.json``, ``na_probs``): a question whose
value exceeds ``na_prob_thresh`` is predicted unanswerable, and ``best_exact`` / ``best_f1`` are the
scores at the threshold that maximises them, found by the official sweep (the thresholds are reported
with them). Scores are on a 0–100 scale, unrounded.

A question without a prediction scores 0 (the v1.1 script's rule; the v2.0 script stops with a
``KeyError`` on one) and is counted in ``missing``. Whether a file is v1.1 or v2.0 is read from its
content (:func:`is_squad_v2`).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GoldQuestion",
    "exact_score",
    "f1_score_v1",
    "f1_score_v2",
    "gold_questions",
    "is_squad_v2",
    "normalize_answer",
    "squad_evaluate",
    "squad_v1_evaluate",
    "squad_v2_evaluate",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace (the official order)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_score(gold: str, prediction: str) -> int:
    """1 when both answers normalise to the same string, else 0."""
    return int(normalize_answer(gold) == normalize_answer(prediction))


def _token_overlap(gold_tokens: list[str], pred_tokens: list[str]) -> float:
    num_same = sum((Counter(gold_tokens) & Counter(pred_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score_v1(gold: str, prediction: str) -> float:
    """Bag-of-tokens F1 of the normalised answers, v1.1 rule: 0 when they share no token (even both empty)."""
    return _token_overlap(normalize_answer(gold).split(), normalize_answer(prediction).split())


def f1_score_v2(gold: str, prediction: str) -> float:
    """Bag-of-tokens F1, v2.0 rule: when either side normalises to nothing, 1 if both do, else 0."""
    gold_tokens, pred_tokens = normalize_answer(gold).split(), normalize_answer(prediction).split()
    if not gold_tokens or not pred_tokens:
        return float(gold_tokens == pred_tokens)
    return _token_overlap(gold_tokens, pred_tokens)


@dataclass(frozen=True)
class GoldQuestion:
    """One question of a SQuAD file, as the metric sees it."""

    qid: str
    answers: tuple[str, ...]
    """Gold answer texts as listed (possibly repeated); empty for an unanswerable question."""


def _articles(dataset: Mapping[str, Any] | list[Any]) -> list[Any]:
    articles = dataset.get("data") if isinstance(dataset, Mapping) else dataset
    if not isinstance(articles, list):
        raise ValueError("a SQuAD file is a JSON object whose 'data' is a list of articles")
    return articles


def gold_questions(dataset: Mapping[str, Any] | list[Any]) -> Iterator[GoldQuestion]:
    """Every question of a parsed SQuAD file (the whole object or its ``data`` list), in file order.

    A ``ValueError`` naming the place for a question without ``id`` or ``answers``.
    """
    for a, article in enumerate(_articles(dataset)):
        title = article.get("title", a) if isinstance(article, Mapping) else a
        paragraphs = article.get("paragraphs") if isinstance(article, Mapping) else None
        if not isinstance(paragraphs, list):
            raise ValueError(f"article {a} ({title!r}) has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, Mapping) else None
            if not isinstance(qas, list):
                raise ValueError(f"article {a} ({title!r}) paragraph {p} has no 'qas' list")
            for q, qa in enumerate(qas):
                where = f"article {a} ({title!r}) paragraph {p} question {q}"
                if not isinstance(qa, Mapping) or not isinstance(qa.get("id"), str):
                    raise ValueError(f"{where} has no 'id'")
                answers = qa.get("answers")
                if not isinstance(answers, list):
                    raise ValueError(f"{where} (id {qa['id']}) has no 'answers' list")
                texts = []
                for answer in answers:
                    if not isinstance(answer, Mapping) or not isinstance(answer.get("text"), str):
                        raise ValueError(f"{where} (id {qa['id']}): an answer has no 'text'")
                    texts.append(answer["text"])
                yield GoldQuestion(qa["id"], tuple(texts))


def is_squad_v2(dataset: Mapping[str, Any] | list[Any]) -> bool:
    """Whether a SQuAD file follows 2.0: its ``version`` says so, or a question carries ``is_impossible``."""
    if isinstance(dataset, Mapping) and str(dataset.get("version", "")).startswith("v2"):
        return True
    return any(
        "is_impossible" in qa
        for article in _articles(dataset) if isinstance(article, Mapping)
        for paragraph in article.get("paragraphs") or () if isinstance(paragraph, Mapping)
        for qa in paragraph.get("qas") or () if isinstance(qa, Mapping)
    )


def _check_predictions(predictions: Mapping[str, Any]) -> None:
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise ValueError(f"the prediction for {qid!r} is {type(text).__name__}, not a string")


def squad_v1_evaluate(dataset: Mapping[str, Any] | list[Any], predictions: Mapping[str, str]) -> dict[str, Any]:
    """``evaluate-v1.1.py``: ``exact_match`` and ``f1`` (0–100) over every question, plus ``total`` and
    ``missing`` (questions without a prediction, scored 0)."""
    _check_predictions(predictions)
    exact = f1 = 0.0
    total = missing = 0
    for question in gold_questions(dataset):
        total += 1
        if question.qid not in predictions:
            missing += 1
            continue
        if not question.answers:
            raise ValueError(f"question {question.qid} has no gold answer (a SQuAD 1.1 file lists at least one)")
        prediction = predictions[question.qid]
        exact += max(exact_score(gold, prediction) for gold in question.answers)
        f1 += max(f1_score_v1(gold, prediction) for gold in question.answers)
    if total == 0:
        raise ValueError("the SQuAD file has no questions")
    return {"exact_match": 100.0 * exact / total, "f1": 100.0 * f1 / total, "total": total, "missing": missing}


def _best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float], na_probs: Mapping[str, float],
                    has_answer: Mapping[str, bool], total: int) -> tuple[float, float]:
    """The official sweep: start with every question predicted unanswerable, then admit answers in
    increasing no-answer probability; the best running score and the probability where it is reached."""
    score = best = float(sum(1 for qid in scores if not has_answer[qid]))
    threshold = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, threshold = score, na_probs[qid]
    return 100.0 * best / total, float(threshold)


def squad_v2_evaluate(dataset: Mapping[str, Any] | list[Any], predictions: Mapping[str, str],
                      na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict[str, Any]:
    """``evaluate-v2.0.py``: ``exact``, ``f1``, ``total``; ``HasAns_*`` / ``NoAns_*`` over the answerable /
    unanswerable questions (when there are any); with ``na_probs`` also ``best_exact``, ``best_exact_thresh``,
    ``best_f1``, ``best_f1_thresh``; and ``missing``.

    ``na_probs``: question id → no-answer probability (or any score where larger means "no answer",
    such as ``null_odds.json``); a question whose value exceeds ``na_prob_thresh`` counts as predicted
    unanswerable. Without it every probability is 0, as in the official script.
    """
    _check_predictions(predictions)
    questions = list(gold_questions(dataset))
    if not questions:
        raise ValueError("the SQuAD file has no questions")
    has_answer = {q.qid: bool(q.answers) for q in questions}
    exact_raw: dict[str, float] = {}
    f1_raw: dict[str, float] = {}
    for question in questions:
        if question.qid not in predictions:
            continue
        golds = [text for text in question.answers if normalize_answer(text)] or [""]
        prediction = predictions[question.qid]
        exact_raw[question.qid] = max(exact_score(gold, prediction) for gold in golds)
        f1_raw[question.qid] = max(f1_score_v2(gold, prediction) for gold in golds)
    given_probs = na_probs is not None
    if na_probs is None:
        na_probs = {qid: 0.0 for qid in predictions}
    else:
        absent = [qid for qid in exact_raw if qid not in na_probs]
        if absent:
            raise ValueError(f"the no-answer probabilities miss {len(absent)} predicted question(s), e.g. {absent[0]}")
        na_probs = {qid: float(value) for qid, value in na_probs.items()}

    def thresholded(raw: dict[str, float]) -> dict[str, float]:
        return {qid: float(not has_answer[qid]) if na_probs[qid] > na_prob_thresh else value
                for qid, value in raw.items()}

    exact, f1 = thresholded(exact_raw), thresholded(f1_raw)

    def summary(qids: list[str]) -> tuple[float, float, int]:
        return (100.0 * sum(exact.get(q, 0.0) for q in qids) / len(qids),
                100.0 * sum(f1.get(q, 0.0) for q in qids) / len(qids), len(qids))

    result: dict[str, Any] = {}
    result["exact"], result["f1"], result["total"] = summary(list(has_answer))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, answerable in has_answer.items() if answerable == wanted]
        if qids:
            result[f"{prefix}_exact"], result[f"{prefix}_f1"], result[f"{prefix}_total"] = summary(qids)
    if given_probs:
        total = len(has_answer)
        result["best_exact"], result["best_exact_thresh"] = _best_threshold(
            predictions, exact_raw, na_probs, has_answer, total)
        result["best_f1"], result["best_f1_thresh"] = _best_threshold(predictions, f1_raw, na_probs, has_answer, total)
    result["missing"] = len(has_answer) - len(exact_raw)
    return result


def squad_evaluate(dataset: Mapping[str, Any], predictions: Mapping[str, str],
                   na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict[str, Any]:
    """Score with the rules of the file's version (:func:`is_squad_v2`); ``version`` names the rules used.

    ``na_probs`` only applies to 2.0 (a ``ValueError`` with a 1.1 file).
    """
    if is_squad_v2(dataset):
        return {**squad_v2_evaluate(dataset, predictions, na_probs, na_prob_thresh), "version": "2.0"}
    if na_probs is not None:
        raise ValueError("no-answer probabilities apply to SQuAD 2.0, and this is a SQuAD 1.1 file")
    return {**squad_v1_evaluate(dataset, predictions), "version": "1.1"}
