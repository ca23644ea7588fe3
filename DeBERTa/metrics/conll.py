"""Entity-level precision, recall and F1, counted exactly as ``conlleval`` (CoNLL-2000 … 2003) counts them.

A tag is ``O`` or a chunk prefix and a type joined by the first ``-`` (``B-PER``, ``I-LOC``); the
prefixes conlleval knows are ``B``, ``I``, ``E``, ``[``, ``]`` (and ``.``, which like ``O`` is outside
any chunk). A chunk starts at a ``B``, at an ``I`` after ``O``, or wherever the type changes — so IOB1
(``I-`` opens an entity, ``B-`` only separates two adjacent ones of a type) and IOB2 files are both
read right, with no scheme to choose. A chunk counts as correct when gold and prediction start it at
the same token, end it at the same token and give it the same type. A sentence boundary ends every
chunk (an entity cannot run across it). Precision = correct / predicted chunks, recall = correct /
gold chunks, F1 their harmonic mean, each 0 when its denominator is; per type likewise; accuracy
is the share of tokens whose whole tag is right. All on a 0–100 scale, unrounded.

conlleval reads ``-DOCSTART-`` lines as tokens tagged ``O``, so its *accuracy* counts them; here the
callers skip them (they carry no entity, so precision, recall and F1 are the same either way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConllCounts", "conll_counts", "conlleval", "split_tag"]


def split_tag(tag: str) -> tuple[str, str]:
    """``B-PER`` → (``B``, ``PER``); ``O`` → (``O``, ``""``): split at the first ``-`` as conlleval does."""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash else (tag, "")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        (prev_tag in ("B", "I") and tag in ("B", "O"))
        or (prev_tag == "E" and tag in ("E", "I", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
        or prev_tag in ("[", "]")
    )


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        (prev_tag in ("B", "I", "O") and tag == "B")
        or (prev_tag == "O" and tag in ("I", "E"))
        or (prev_tag == "E" and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
        or tag in ("[", "]")
    )


@dataclass
class ConllCounts:
    """The counts conlleval keeps: chunks found in gold and prediction, correct chunks, tokens."""

    correct: Counter[str] = field(default_factory=Counter)
    """Correct chunks per type."""
    gold: Counter[str] = field(default_factory=Counter)
    """Gold chunks per type."""
    predicted: Counter[str] = field(default_factory=Counter)
    """Predicted chunks per type."""
    tokens: int = 0
    correct_tags: int = 0

    def __iadd__(self, other: ConllCounts) -> ConllCounts:
        self.correct += other.correct
        self.gold += other.gold
        self.predicted += other.predicted
        self.tokens += other.tokens
        self.correct_tags += other.correct_tags
        return self

    def scores(self) -> dict[str, Any]:
        """``precision``, ``recall``, ``f1``, ``accuracy`` and the chunk counts overall, and ``per_type``:
        type → ``precision``, ``recall``, ``f1``, ``gold``, ``predicted``, ``correct`` (every type seen in
        gold or prediction, sorted)."""
        def prf(correct: int, gold: int, predicted: int) -> dict[str, float | int]:
            precision = 100.0 * correct / predicted if predicted else 0.0
            recall = 100.0 * correct / gold if gold else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            return {"precision": precision, "recall": recall, "f1": f1,
                    "gold": gold, "predicted": predicted, "correct": correct}

        overall = prf(sum(self.correct.values()), sum(self.gold.values()), sum(self.predicted.values()))
        types = sorted(set(self.gold) | set(self.predicted))
        return {
            **overall,
            "accuracy": 100.0 * self.correct_tags / self.tokens if self.tokens else 0.0,
            "tokens": self.tokens,
            "per_type": {t: prf(self.correct[t], self.gold[t], self.predicted[t]) for t in types},
        }


def _count(sentences: Sequence[tuple[Sequence[str], Sequence[str]]]) -> ConllCounts:
    counts = ConllCounts()
    in_correct = False
    last_gold, last_pred, last_gold_type, last_pred_type = "O", "O", "", ""
    for index, (gold, predicted) in enumerate(sentences):
        if len(gold) != len(predicted):
            raise ValueError(f"sentence {index} has {len(gold)} gold tags and {len(predicted)} predicted ones")
        # The boundary after a sentence is one more token tagged O on both sides, as conlleval reads it.
        for position, (gold_tag, pred_tag) in enumerate([*zip(gold, predicted, strict=True), ("O", "O")]):
            g, g_type = split_tag(gold_tag)
            p, p_type = split_tag(pred_tag)
            gold_ends = _end_of_chunk(last_gold, g, last_gold_type, g_type)
            pred_ends = _end_of_chunk(last_pred, p, last_pred_type, p_type)
            if in_correct:
                if gold_ends and pred_ends and last_pred_type == last_gold_type:
                    in_correct = False
                    counts.correct[last_gold_type] += 1
                elif gold_ends != pred_ends or p_type != g_type:
                    in_correct = False
            gold_starts = _start_of_chunk(last_gold, g, last_gold_type, g_type)
            pred_starts = _start_of_chunk(last_pred, p, last_pred_type, p_type)
            if gold_starts and pred_starts and p_type == g_type:
                in_correct = True
            if gold_starts:
                counts.gold[g_type] += 1
            if pred_starts:
                counts.predicted[p_type] += 1
            if position < len(gold):
                counts.tokens += 1
                counts.correct_tags += g == p and g_type == p_type
            last_gold, last_pred, last_gold_type, last_pred_type = g, p, g_type, p_type
    if in_correct:  # a chunk still open at the end of the input (conlleval's last step)
        counts.correct[last_gold_type] += 1
    return counts


def conll_counts(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> ConllCounts:
    """conlleval's counts over sentences: ``gold[i]`` and ``predicted[i]`` are the tags of sentence i
    (equal lengths). Counts of parts (documents, ranks) add up with ``+=``."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    return _count(list(zip(gold, predicted, strict=True)))


def conlleval(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """conlleval's scores over sentences (see :func:`conll_counts`; keys in :meth:`ConllCounts.scores`).

    ``precision``/``recall``/``f1`` at the top level are overall (micro) figures.
    """
    return conll_counts(gold, predicted).scores()
