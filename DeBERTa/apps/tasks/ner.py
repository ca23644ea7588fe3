"""Token classification: named entities in CoNLL files (task ``NER``, CoNLL-2003 English).

Files: ``train.txt``, ``valid.txt`` or ``dev.txt``, ``test.txt`` — or the original names ``eng.train``,
``eng.testa``, ``eng.testb``. One token per line, columns separated by whitespace, the tag last (in
CoNLL-2003: word, POS, chunk, NER tag); a blank line ends a sentence; ``-DOCSTART-`` lines separate
documents and are not tokens. Tags may be IOB2 (``B-`` opens every entity) or IOB1 (``I-`` opens one,
``B-`` only splits two adjacent entities of one type): both use the same nine tags, so a model trains
on either, and conlleval scores either (:mod:`DeBERTa.metrics.conll`).

Features: the words of a sentence joined by single spaces and tokenized once; each word's label sits
on its first sub-token, every other position is ignored (``-100``). A sentence whose tokens do not fit
``max_seq_len`` is split between words into several inputs — never cut — and its predictions are put
back together; only a single word longer than a whole input loses its trailing sub-tokens, which carry
no label (counted in ``stats['cut_words']``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from DeBERTa.metrics.conll import conlleval
from DeBERTa.training.records import write_text

from .kinds import (
    IGNORE_INDEX,
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
    register_kind_task,
)

__all__ = ["CONLL2003_LABELS", "NER", "ConllSentence", "NerTask", "read_conll", "tags_to_words"]

CONLL2003_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
"""The tags of CoNLL-2003 in the classifier's row order (Hugging Face's ``conll2003`` order)."""

DOCSTART = "-DOCSTART-"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConllSentence:
    """One sentence of a CoNLL file."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    """Gold tags (the last column), one per word."""
    line: int
    """1-based line of the sentence's first token, for messages."""
    columns: tuple[tuple[str, ...], ...] = ()
    """The middle columns of each token (POS, chunk), kept so that files can be written back whole."""


def read_conll(path: str | Path, labels: Sequence[str] | None = None, *, min_columns: int = 2) -> list[ConllSentence]:
    """The sentences of a CoNLL file; a one-line :class:`DataError` naming file and line for bad input.

    Every token line must have as many columns as the file's first one (at least ``min_columns``); with
    ``labels`` given, every tag must be one of them.
    """
    path = Path(path)
    sentences: list[ConllSentence] = []
    words: list[str] = []
    tags: list[str] = []
    middles: list[tuple[str, ...]] = []
    start = 0
    width: tuple[int, int] | None = None  # (columns, line where that was seen)
    known = None if labels is None else set(labels)

    def close() -> None:
        nonlocal words, tags, middles
        if words:
            sentences.append(ConllSentence(tuple(words), tuple(tags), start, tuple(middles)))
        words, tags, middles = [], [], []

    try:
        with path.open("rb") as f:
            for line_no, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise DataError(f"{path}:{line_no}: not UTF-8 text (bad byte at column {err.start + 1})") from None
                fields = (line.removeprefix("\ufeff") if line_no == 1 else line).split()
                if not fields:
                    close()
                    continue
                if fields[0] == DOCSTART:
                    close()
                    continue
                if width is None:
                    if len(fields) < min_columns:
                        raise DataError(f"{path}:{line_no}: {len(fields)} column(s); a CoNLL token line has at least "
                                        f"{min_columns} (the word first, the tag last)")
                    width = (len(fields), line_no)
                elif len(fields) != width[0]:
                    raise DataError(f"{path}:{line_no}: {len(fields)} columns, but line {width[1]} has {width[0]} "
                                    f"(word ... tag)")
                tag = fields[-1]
                if known is not None and tag not in known:
                    raise DataError(f"{path}:{line_no}: unknown tag {tag!r}; the tags are {', '.join(labels or ())}")
                if not words:
                    start = line_no
                words.append(fields[0])
                tags.append(tag)
                middles.append(tuple(fields[1:-1]))
    except OSError as err:
        raise DataError(f"{path}: cannot read it: {err.strerror}") from None
    close()
    if not sentences:
        raise DataError(f"{path}: no sentences (a CoNLL file has one token per line, blank lines between sentences)")
    return sentences


def _token_words(text: str, word_spans: Sequence[tuple[int, int]], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """The word each token belongs to, from character offsets: the word holding the token's first
    non-space character; a token with none (a lone space marker) goes with the token after it."""
    owner = np.full(len(text) + 1, -1, dtype=np.int64)
    for w, (s, e) in enumerate(word_spans):
        owner[s:e] = w
    words = []
    for s, e in offsets:
        found = -1
        for char in range(max(s, 0), min(e, len(text))):
            if owner[char] >= 0:
                found = int(owner[char])
                break
        words.append(found)
    following = -1
    for t in range(len(words) - 1, -1, -1):  # orphan tokens join the next word (or the last one)
        if words[t] < 0:
            words[t] = following
        else:
            following = words[t]
    preceding = -1
    for t in range(len(words)):
        if words[t] < 0:
            words[t] = preceding
        else:
            preceding = words[t]
    return words


def tags_to_words(num_words: int, word_index: np.ndarray, logits: np.ndarray, labels: Sequence[str],
                  into: list[str]) -> None:
    """Write the arg-max tag of every labelled position (``word_index`` ≥ 0) into ``into[word]``."""
    positions = np.nonzero(word_index >= 0)[0]
    chosen = logits[positions].argmax(axis=-1)
    for position, label in zip(positions, chosen, strict=True):
        word = int(word_index[position])
        if word < num_words:
            into[word] = labels[int(label)]


@dataclass(frozen=True)
class NerTask(SplitFiles):
    """A CoNLL-style tagging task (see the module docstring)."""

    labels: tuple[str, ...] = CONLL2003_LABELS
    """Tags in classifier-row order."""
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    main_metric: str = "f1"
    aliases: tuple[str, ...] = ()
    kind: str = "token"
    head: str = "TokenClassificationModel"

    def build_model(self, config: Any, pre_trained: str | None, drop_out: float | None = None) -> torch.nn.Module:
        """A ``TokenClassificationModel`` with a row per tag."""
        return build_head(self.head, config, pre_trained, num_labels=len(self.labels), drop_out=drop_out)

    def read(self, data_dir: str | Path, split: str) -> list[ConllSentence]:
        return read_conll(find_split_file(data_dir, self.name, split, self.files(split)), self.labels)

    def features(self, examples: Sequence[ConllSentence], tokenizer: OffsetTokenizer, max_seq_len: int, *,
                 options: KindOptions | None = None, training: bool = False) -> FeatureList:
        """One input per sentence, or several for a sentence too long for ``max_seq_len`` (split between
        words). Each feature: ``input_ids``, ``labels`` (-100 but at a word's first sub-token),
        ``word_index`` (that word's index, -1 elsewhere), ``example_index``."""
        check_max_seq_len(max_seq_len)
        label_id = {label: i for i, label in enumerate(self.labels)}
        budget = max_seq_len - 2
        texts = [" ".join(sentence.words) for sentence in examples]
        features: list[dict[str, Any]] = []
        stats = {"sentences": len(examples), "split_sentences": 0, "cut_words": 0, "words_without_tokens": 0}
        for index, (sentence, text, encoding) in enumerate(zip(examples, texts, encode_texts(tokenizer, texts),
                                                               strict=True)):
            spans, position = [], 0
            for word in sentence.words:
                spans.append((position, position + len(word)))
                position += len(word) + 1
            owners = _token_words(text, spans, encoding.offsets)
            per_word: list[list[int]] = [[] for _ in sentence.words]
            for token_id, owner in zip(encoding.ids, owners, strict=True):
                if owner >= 0:
                    per_word[owner].append(token_id)
            stats["words_without_tokens"] += sum(1 for tokens in per_word if not tokens)
            chunks: list[list[int]] = [[]]  # word indices per input
            used = 0
            for w, tokens in enumerate(per_word):
                need = min(len(tokens), budget)
                if used + need > budget and chunks[-1]:
                    chunks.append([])
                    used = 0
                chunks[-1].append(w)
                used += need
                if len(tokens) > budget:
                    stats["cut_words"] += 1
            stats["split_sentences"] += len(chunks) > 1
            for chunk in chunks:
                ids, labels, words = [tokenizer.cls_id], [IGNORE_INDEX], [-1]
                for w in chunk:
                    tokens = per_word[w][:budget]
                    for k, token_id in enumerate(tokens):
                        ids.append(token_id)
                        first = k == 0
                        labels.append(label_id.get(sentence.tags[w], IGNORE_INDEX) if first else IGNORE_INDEX)
                        words.append(w if first else -1)
                ids.append(tokenizer.sep_id)
                labels.append(IGNORE_INDEX)
                words.append(-1)
                features.append({
                    "example_index": index,
                    "input_ids": np.asarray(ids, dtype=np.int32),
                    "labels": np.asarray(labels, dtype=np.int64),
                    "word_index": np.asarray(words, dtype=np.int32),
                })
        stats["features"] = len(features)
        if stats["split_sentences"]:
            logger.info("%d of %d sentences are longer than max_seq_len %d: each is read in several inputs, split "
                        "between words", stats["split_sentences"], len(examples), max_seq_len)
        if stats["cut_words"] or stats["words_without_tokens"]:
            logger.warning("%d words longer than a whole input lose their trailing sub-tokens (their label stays); "
                           "%d words got no token and are predicted O", stats["cut_words"],
                           stats["words_without_tokens"])
        return FeatureList(features, stats)

    def collate(self, features: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
        """``input_ids``, ``input_mask``, ``type_ids`` (all 0), ``labels`` — (B, L), padded to the longest."""
        ids = pad_stack([f["input_ids"] for f in features], pad_id)
        return {"input_ids": ids, "input_mask": attention_mask(features), "type_ids": torch.zeros_like(ids),
                "labels": pad_stack([f["labels"] for f in features], IGNORE_INDEX)}

    def decode(self, examples: Sequence[ConllSentence], features: FeatureList, outputs: Sequence[np.ndarray],
               options: KindOptions | None = None) -> list[list[str]]:
        """Logits (L, C) per feature → one tag per word of every sentence; a word that no token carries
        (the tokenizer dropped it) gets ``O``."""
        if len(outputs) != len(features):
            raise ValueError(f"{len(outputs)} outputs for {len(features)} features")
        tags = [["O"] * len(sentence.words) for sentence in examples]
        for feature, logits in zip(features, outputs, strict=True):
            word_index = np.asarray(feature["word_index"])
            logits = np.asarray(logits)[: len(word_index)]
            sentence = feature["example_index"]
            tags_to_words(len(examples[sentence].words), word_index, logits, self.labels, tags[sentence])
        return tags

    def metrics(self, examples: Sequence[ConllSentence], predictions: Sequence[Sequence[str]]) -> dict[str, Any]:
        """conlleval's precision, recall, F1 (overall and ``per_type``) and accuracy, 0–100."""
        return conlleval([s.tags for s in examples], predictions)

    def prediction_file(self, split: str) -> str:
        return f"{self.name}.{split}.conll"

    def write_predictions(self, folder: str | Path, split: str, examples: Sequence[ConllSentence],
                          predictions: Sequence[Sequence[str]]) -> list[Path]:
        """``<task>.<split>.conll``: ``word gold predicted`` per token, a blank line after each sentence —
        what ``conlleval`` and ``python -m DeBERTa.apps.evaluate conll`` read."""
        lines: list[str] = []
        for sentence, tags in zip(examples, predictions, strict=True):
            lines.extend(f"{w} {g} {p}" for w, g, p in zip(sentence.words, sentence.tags, tags, strict=True))
            lines.append("")
        path = Path(folder) / self.prediction_file(split)
        write_text(path, "\n".join(lines) + "\n")
        return [path]


NER = register_kind_task(NerTask(
    name="NER",
    labels=CONLL2003_LABELS,
    split_files=(
        ("train", ("train.txt", "eng.train")),
        ("dev", ("valid.txt", "dev.txt", "eng.testa")),
        ("test", ("test.txt", "eng.testb")),
    ),
    aliases=("conll2003", "conll"),
))
