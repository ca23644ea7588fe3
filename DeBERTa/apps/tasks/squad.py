"""Extractive question answering: SQuAD 1.1 (task ``SQuAD``) and 2.0 (task ``SQuAD2``).

Files, as the official distribution names them: ``train-v1.1.json`` / ``dev-v1.1.json`` and
``train-v2.0.json`` / ``dev-v2.0.json``, each ``{"version", "data": [{"title", "paragraphs": [{"context",
"qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``.

Features: ``[CLS] question [SEP] context window [SEP]``. The question keeps its first
``max_query_length`` tokens (capped to half the input, so a window always remains); a context longer
than the room left is cut into overlapping windows whose starts are ``doc_stride`` tokens apart (capped
to the window). A training answer is the token span covering its characters, or [CLS] (position 0)
where the window does not hold it whole, and for unanswerable questions. A training answer whose
``answer_start`` does not locate its ``text`` in the context (the official files have a few) is
skipped and counted (``stats['skipped_answers']``), as the reference scripts do; evaluation keeps
every question, because the metric compares texts.

Decoding: for each question, over all its windows, the ``n_best_size`` best start and end positions
give candidate spans inside the context, no longer than ``max_answer_length`` tokens, starting in the
window where that token has the most context; the answer text is ``context[start:end]`` through the
tokenizer's character offsets (surrounding spaces left out). SQuAD 2.0 also scores "no answer" as the
[CLS] start + end logit (the smallest over the windows); the question is predicted unanswerable when
that score exceeds the best span's by more than ``null_score_diff_threshold``, and that difference is
its entry in ``null_odds.json`` — the no-answer score whose best threshold the 2.0 metric finds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from DeBERTa.metrics.squad import squad_v1_evaluate, squad_v2_evaluate
from DeBERTa.training.records import write_json

from .kinds import (
    DataError,
    FeatureList,
    KindOptions,
    OffsetTokenizer,
    SplitFiles,
    attention_mask,
    build_head,
    check_max_seq_len,
    encode_texts,
    find_split_file,
    pad_stack,
    read_json_file,
    register_kind_task,
)

__all__ = ["SQUAD_V1", "SQUAD_V2", "SpanPrediction", "SquadExample", "SquadTask", "read_squad"]

logger = logging.getLogger(__name__)

NO_CANDIDATE_ODDS = 1e30
"""null_odds.json value of a question with no valid span at all: no threshold admits an answer."""


@dataclass(frozen=True)
class SquadExample:
    """One question with its context."""

    qid: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    """Gold ``(text, answer_start)`` pairs as listed; empty for an unanswerable question."""
    is_impossible: bool = False
    title: str = ""


@dataclass
class SpanPrediction:
    """The decoded answer of one question."""

    text: str
    """The answer, ``""`` for "no answer"."""
    start: int
    """Character span of ``text`` in the context (``context[start:end] == text``); -1 for no answer."""
    end: int
    null_odds: float | None = None
    """SQuAD 2.0: null score − best span score (larger: more likely unanswerable)."""
    nbest: list[dict[str, Any]] = field(default_factory=list)
    """The n best candidates: ``text``, ``probability``, ``start_logit``, ``end_logit``, ``start``, ``end``."""


def read_squad(path: str | Path, *, require_answers: bool = True) -> list[SquadExample]:
    """The questions of a SQuAD JSON file in order; a one-line :class:`DataError` naming file and place
    for a malformed one (a question without ``answers``, an answer without ``text`` or ``answer_start``).

    ``require_answers=False`` reads a file whose questions carry no answers (prediction only).
    """
    path = Path(path)
    content = read_json_file(path)
    articles = content.get("data") if isinstance(content, dict) else None
    if not isinstance(articles, list):
        raise DataError(f"{path}: not a SQuAD file (expected a JSON object with a 'data' list of articles)")
    examples: list[SquadExample] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(articles):
        title = str(article.get("title", "")) if isinstance(article, dict) else ""
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: article {a} ({title!r}) has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            where = f"{path}: article {a} ({title!r}) paragraph {p}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise DataError(f"{where} has no 'context' text")
            if not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{where} has no 'qas' list")
            context = paragraph["context"]
            for q, qa in enumerate(paragraph["qas"]):
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), str) or not isinstance(
                        qa.get("question"), str):
                    raise DataError(f"{where} question {q} has no 'id' or 'question'")
                place = f"{where} question {q} (id {qa['id']})"
                if qa["id"] in seen:
                    raise DataError(f"{place}: the id is used twice (also {seen[qa['id']]})")
                seen[qa["id"]] = f"article {a} paragraph {p} question {q}"
                impossible = bool(qa.get("is_impossible", False))
                raw_answers = qa.get("answers")
                if raw_answers is None and not require_answers:
                    raw_answers = []
                if not isinstance(raw_answers, list):
                    raise DataError(f"{place} has no 'answers' list")
                answers = []
                for k, answer in enumerate(raw_answers):
                    if (not isinstance(answer, dict) or not isinstance(answer.get("text"), str)
                            or not isinstance(answer.get("answer_start"), int)):
                        raise DataError(f"{place} answer {k} needs 'text' and an integer 'answer_start'")
                    answers.append((answer["text"], answer["answer_start"]))
                if require_answers and not answers and not impossible:
                    raise DataError(f"{place} has no answers and is not marked 'is_impossible'")
                if impossible and answers:
                    raise DataError(f"{place} is marked 'is_impossible' but lists answers")
                examples.append(SquadExample(qa["id"], qa["question"], context, tuple(answers), impossible, title))
    if not examples:
        raise DataError(f"{path}: no questions")
    return examples


def _windows(length: int, room: int, stride: int) -> list[tuple[int, int]]:
    """(start, length) of the context windows: ``room`` tokens each, starts ``stride`` apart, the last
    one reaching the end."""
    windows, start = [], 0
    while True:
        size = min(length - start, room)
        windows.append((start, size))
        if start + size >= length:
            return windows
        start += min(size, stride)


def _max_context(windows: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """For each window, whether each of its tokens has its most context there: the window where
    min(tokens left, tokens right) + 0.01·window length is largest (the first such on ties)."""
    if len(windows) == 1:
        return [np.ones(windows[0][1], dtype=bool)]
    length = max(start + size for start, size in windows)
    scores = np.full((len(windows), length), -np.inf)
    for w, (start, size) in enumerate(windows):
        tokens = np.arange(start, start + size)
        scores[w, start: start + size] = np.minimum(tokens - start, start + size - 1 - tokens) + 0.01 * size
    best = scores.argmax(axis=0)  # the first maximum: the earliest window on ties
    return [best[start: start + size] == w for w, (start, size) in enumerate(windows)]


def _answer_tokens(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last token (of (N, 2) character offsets) overlapping the characters [start, end), or ``None``."""
    if len(offsets) == 0:
        return None
    inside = np.nonzero((offsets[:, 1] > start) & (offsets[:, 0] < end) & (offsets[:, 1] > offsets[:, 0]))[0]
    return (int(inside[0]), int(inside[-1])) if len(inside) else None


@dataclass(frozen=True)
class SquadTask(SplitFiles):
    """SQuAD 1.1 or 2.0 (see the module docstring)."""

    version2: bool = False
    """SQuAD 2.0: unanswerable questions, the no-answer score and its threshold."""
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    main_metric: str = "f1"
    kind: str = "span"
    head: str = "QuestionAnsweringModel"

    def build_model(self, config: Any, pre_trained: str | None, drop_out: float | None = None) -> torch.nn.Module:
        """A ``QuestionAnsweringModel`` (its ``qa_outputs`` layer has no dropout of its own: ``drop_out`` is unused)."""
        return build_head(self.head, config, pre_trained)

    def read(self, data_dir: str | Path, split: str) -> list[SquadExample]:
        examples = read_squad(find_split_file(data_dir, self.name, split, self.files(split)))
        if not self.version2:
            impossible = next((e for e in examples if e.is_impossible), None)
            if impossible is not None:
                raise DataError(f"task {self.name} (SQuAD 1.1) got an unanswerable question ({impossible.qid}); "
                                f"use --task_name SQuAD2 for SQuAD 2.0 files")
        return examples

    def features(self, examples: Sequence[SquadExample], tokenizer: OffsetTokenizer, max_seq_len: int, *,
                 options: KindOptions | None = None, training: bool = False) -> FeatureList:
        """One feature per context window: ``input_ids``, ``type_ids``, ``offsets`` (L, 2) — the character
        span of each context token, -1 elsewhere —, ``max_context`` (L,) bool, ``start_positions`` and
        ``end_positions`` (the answer's tokens, 0 for [CLS]), ``example_index``.

        ``training``: answers are taken from the first gold answer, and a question whose answer does not
        sit at its ``answer_start`` is skipped (``stats['skipped_answers']``).
        """
        check_max_seq_len(max_seq_len)
        options = options or KindOptions()
        max_query = min(options.max_query_length, (max_seq_len - 3) // 2)
        questions = encode_texts(tokenizer, [e.question for e in examples])
        unique_contexts = list(dict.fromkeys(e.context for e in examples))
        contexts = {text: (encoding.ids, np.asarray(encoding.offsets, dtype=np.int32).reshape(-1, 2))
                    for text, encoding in zip(unique_contexts, encode_texts(tokenizer, unique_contexts), strict=True)}
        features: list[dict[str, Any]] = []
        stats = {"questions": len(examples), "skipped_answers": 0, "truncated_questions": 0, "windows": 0}
        for index, example in enumerate(examples):
            answer_chars = None
            if training and example.answers and not example.is_impossible:
                text, start = example.answers[0]
                if not text.strip() or example.context[start: start + len(text)] != text:
                    stats["skipped_answers"] += 1
                    continue
                answer_chars = (start, start + len(text))
            question = questions[index].ids
            if len(question) > max_query:
                stats["truncated_questions"] += 1
                question = question[:max_query]
            context_ids, context_offsets = contexts[example.context]
            answer_tokens = None
            if answer_chars is not None:
                answer_tokens = _answer_tokens(context_offsets, *answer_chars)
                if answer_tokens is None:
                    stats["skipped_answers"] += 1
                    continue
            room = max_seq_len - len(question) - 3
            windows = _windows(len(context_ids), room, min(options.doc_stride, room))
            for (start, size), max_context in zip(windows, _max_context(windows), strict=True):
                head = [tokenizer.cls_id, *question, tokenizer.sep_id]
                ids = [*head, *context_ids[start: start + size], tokenizer.sep_id]
                offsets = np.full((len(ids), 2), -1, dtype=np.int32)
                offsets[len(head): len(head) + size] = context_offsets[start: start + size]
                in_context = np.zeros(len(ids), dtype=bool)
                in_context[len(head): len(head) + size] = max_context
                start_position = end_position = 0
                if answer_tokens is not None and start <= answer_tokens[0] and answer_tokens[1] < start + size:
                    start_position = len(head) + answer_tokens[0] - start
                    end_position = len(head) + answer_tokens[1] - start
                features.append({
                    "example_index": index,
                    "input_ids": np.asarray(ids, dtype=np.int32),
                    "type_ids": np.asarray([0] * len(head) + [1] * (size + 1), dtype=np.int8),
                    "offsets": offsets,
                    "max_context": in_context,
                    "start_positions": start_position,
                    "end_positions": end_position,
                })
        stats["windows"] = len(features)
        if stats["skipped_answers"]:
            logger.warning("skipped %d training question(s) whose answer_start does not locate the answer text in "
                           "the context (counted as skipped_answers)", stats["skipped_answers"])
        if stats["truncated_questions"]:
            logger.info("%d question(s) longer than %d tokens keep their first %d", stats["truncated_questions"],
                        max_query, max_query)
        return FeatureList(features, stats)

    def collate(self, features: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
        """``input_ids``, ``type_ids``, ``input_mask`` (B, L); ``start_positions``, ``end_positions`` (B,)."""
        return {
            "input_ids": pad_stack([f["input_ids"] for f in features], pad_id),
            "type_ids": pad_stack([f["type_ids"] for f in features], 0),
            "input_mask": attention_mask(features),
            "start_positions": torch.tensor([int(f["start_positions"]) for f in features], dtype=torch.long),
            "end_positions": torch.tensor([int(f["end_positions"]) for f in features], dtype=torch.long),
        }

    def decode(self, examples: Sequence[SquadExample], features: FeatureList, outputs: Sequence[np.ndarray],
               options: KindOptions | None = None) -> dict[str, SpanPrediction]:
        """Per feature (L, 2) logits — start, end — → question id → :class:`SpanPrediction`."""
        options = options or KindOptions()
        if len(outputs) != len(features):
            raise ValueError(f"{len(outputs)} outputs for {len(features)} features")
        by_example: dict[int, list[int]] = {}
        for f, feature in enumerate(features):
            by_example.setdefault(feature["example_index"], []).append(f)
        predictions: dict[str, SpanPrediction] = {}
        for index, example in enumerate(examples):
            predictions[example.qid] = self._decode_one(
                example, [(features[f], np.asarray(outputs[f], dtype=np.float64)) for f in by_example.get(index, [])],
                options)
        return predictions

    def _decode_one(self, example: SquadExample, parts: Sequence[tuple[Mapping[str, Any], np.ndarray]],
                    options: KindOptions) -> SpanPrediction:
        context = example.context
        null_score = math.inf
        null_logits = (0.0, 0.0)
        candidates: dict[tuple[int, int], tuple[float, float, float]] = {}
        for feature, logits in parts:
            length = len(feature["input_ids"])
            starts, ends = logits[:length, 0], logits[:length, 1]
            if starts[0] + ends[0] < null_score:
                null_score, null_logits = float(starts[0] + ends[0]), (float(starts[0]), float(ends[0]))
            offsets, max_context = feature["offsets"], feature["max_context"]
            best_starts = np.argsort(-starts, kind="stable")[: options.n_best_size]
            best_ends = np.argsort(-ends, kind="stable")[: options.n_best_size]
            for s in best_starts:
                if offsets[s, 0] < 0 or not max_context[s]:
                    continue
                for e in best_ends:
                    if offsets[e, 0] < 0 or e < s or e - s + 1 > options.max_answer_length:
                        continue
                    char_start, char_end = int(offsets[s, 0]), int(offsets[e, 1])
                    while char_start < char_end and context[char_start].isspace():
                        char_start += 1
                    while char_end > char_start and context[char_end - 1].isspace():
                        char_end -= 1
                    if char_end <= char_start:
                        continue
                    score = float(starts[s] + ends[e])
                    key = (char_start, char_end)
                    if key not in candidates or score > candidates[key][0]:
                        candidates[key] = (score, float(starts[s]), float(ends[e]))
        ranked = sorted(candidates.items(), key=lambda item: -item[1][0])
        # Equal texts at different places are one answer to the metric: keep the best-scored place.
        nbest: list[dict[str, Any]] = []
        texts: set[str] = set()
        for (char_start, char_end), (score, start_logit, end_logit) in ranked:
            text = context[char_start:char_end]
            if text in texts:
                continue
            texts.add(text)
            nbest.append({"text": text, "score": score, "start_logit": start_logit, "end_logit": end_logit,
                          "start": char_start, "end": char_end})
            if len(nbest) == options.n_best_size:
                break
        best = nbest[0] if nbest else None
        if self.version2 and math.isfinite(null_score):
            nbest.append({"text": "", "score": null_score, "start_logit": null_logits[0],
                          "end_logit": null_logits[1], "start": -1, "end": -1})
            nbest.sort(key=lambda c: -c["score"])
        if nbest:
            scores = np.array([c["score"] for c in nbest])
            probabilities = np.exp(scores - scores.max())
            probabilities /= probabilities.sum()
            for candidate, probability in zip(nbest, probabilities, strict=True):
                candidate["probability"] = float(probability)
                del candidate["score"]
        if not self.version2:
            if best is None:
                return SpanPrediction("", -1, -1, None, nbest)
            return SpanPrediction(best["text"], best["start"], best["end"], None, nbest)
        if best is None:
            return SpanPrediction("", -1, -1, NO_CANDIDATE_ODDS, nbest)
        odds = null_score - (best["start_logit"] + best["end_logit"])
        if odds > options.null_score_diff_threshold:
            return SpanPrediction("", -1, -1, odds, nbest)
        return SpanPrediction(best["text"], best["start"], best["end"], odds, nbest)

    def metrics(self, examples: Sequence[SquadExample], predictions: Mapping[str, SpanPrediction]) -> dict[str, Any]:
        """The official script's numbers (0–100): v1.1 ``exact_match``, ``f1``; v2.0 ``exact``, ``f1``,
        ``HasAns_*``, ``NoAns_*`` and, from the null odds, ``best_exact``/``best_f1`` and thresholds."""
        dataset = [{"paragraphs": [{"qas": [{"id": e.qid, "answers": [{"text": t} for t, _ in e.answers]}
                                            for e in examples]}]}]
        texts = {qid: p.text for qid, p in predictions.items()}
        if not self.version2:
            return squad_v1_evaluate(dataset, texts)
        odds = {qid: float(p.null_odds) for qid, p in predictions.items() if p.null_odds is not None}
        return squad_v2_evaluate(dataset, texts, odds if len(odds) == len(texts) else None)

    def prediction_files(self, split: str) -> tuple[str, ...]:
        """``predictions.json``, ``nbest_predictions.json`` (and ``null_odds.json`` for 2.0) — prefixed
        with the split for splits other than ``dev``."""
        prefix = "" if split == "dev" else f"{split}_"
        names = [f"{prefix}predictions.json", f"{prefix}nbest_predictions.json"]
        if self.version2:
            names.append(f"{prefix}null_odds.json")
        return tuple(names)

    def write_predictions(self, folder: str | Path, split: str, examples: Sequence[SquadExample],
                          predictions: Mapping[str, SpanPrediction]) -> list[Path]:
        """The official files: question id → answer text; id → n-best list; (2.0) id → null odds."""
        paths = [Path(folder) / name for name in self.prediction_files(split)]
        order = [e.qid for e in examples if e.qid in predictions]
        write_json(paths[0], {qid: predictions[qid].text for qid in order})
        write_json(paths[1], {qid: predictions[qid].nbest for qid in order})
        if self.version2:
            write_json(paths[2], {qid: predictions[qid].null_odds for qid in order})
        return paths


SQUAD_V1 = register_kind_task(SquadTask(
    name="SQuAD",
    version2=False,
    split_files=(("train", ("train-v1.1.json",)), ("dev", ("dev-v1.1.json",))),
    aliases=("squad1", "squad11", "squadv1", "squadv11"),
))

SQUAD_V2 = register_kind_task(SquadTask(
    name="SQuAD2",
    version2=True,
    split_files=(("train", ("train-v2.0.json",)), ("dev", ("dev-v2.0.json",))),
    aliases=("squad20", "squadv2", "squadv20"),
))
