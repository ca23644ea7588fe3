"""Multiple choice: RACE (reading comprehension exams) and SWAG (situation continuations).

RACE, the official folder tree: ``<data_dir>/{train,dev,test}/{middle,high}/*.txt``, each file one JSON
object — ``article``, ``questions``, ``options`` (four per question), ``answers`` (letters), ``id`` (the
file name). A question with a blank ``_`` gets each option in the blank; any other gets the option
after it. Accuracy is reported overall and for the ``middle`` and ``high`` parts.

SWAG, the official CSV files ``train.csv``, ``val.csv``, ``test.csv``: an unnamed index column, then
``video-id, fold-ind, startphrase, sent1, sent2, gold-source, ending0 … ending3, label`` (no ``label``
in the test file). The context is ``sent1``, each option ``sent2 + " " + ending``.

Features: one ``[CLS] context [SEP] question+option [SEP]`` input per option; when the pair does not fit
``max_seq_len`` the context is cut from its end first (the option must stay), and the question+option
keeps its last tokens only where it alone would take more than half the input (``stats['truncated']``).
The head scores each option; the prediction is the best-scored one (softmax over options in training).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from DeBERTa.metrics.choice import RACE_PARTS, choice_accuracy, race_accuracy
from DeBERTa.training.records import write_text

from .kinds import (
    DataError,
    FeatureList,
    KindOptions,
    OffsetTokenizer,
    SplitFiles,
    build_head,
    check_max_seq_len,
    encode_texts,
    find_split_file,
    pad_stack,
    read_json_file,
    read_text_file,
    register_kind_task,
)

__all__ = ["RACE", "SWAG", "ChoiceExample", "ChoiceTask", "read_prediction_tsv", "read_race", "read_swag"]

LETTERS = "ABCD"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChoiceExample:
    """One question and its options."""

    guid: str
    """Written in prediction files: RACE ``<file id>-<question index>``, SWAG the row's index column."""
    context: str
    question: str
    options: tuple[str, ...]
    label: int | None
    """Index of the right option, ``None`` where the split has no labels."""
    part: str = ""
    """RACE: ``middle`` or ``high``."""

    def second_segments(self) -> list[str]:
        """The text paired with the context for each option."""
        if "_" in self.question:
            return [self.question.replace("_", option) for option in self.options]
        return [f"{self.question} {option}".strip() for option in self.options]


def _race_file(path: Path, part: str) -> list[ChoiceExample]:
    content = read_json_file(path)
    if not isinstance(content, dict):
        raise DataError(f"{path}: expected a JSON object with article, questions, options, answers")
    for key in ("article", "questions", "options", "answers"):
        if key not in content:
            raise DataError(f"{path}: no {key!r} (a RACE file has article, questions, options, answers)")
    article, questions, options, answers = (content[k] for k in ("article", "questions", "options", "answers"))
    if not isinstance(article, str) or not all(isinstance(x, list) for x in (questions, options, answers)):
        raise DataError(f"{path}: 'article' must be text and 'questions', 'options', 'answers' lists")
    if not len(questions) == len(options) == len(answers):
        raise DataError(f"{path}: {len(questions)} questions, {len(options)} option lists and {len(answers)} answers")
    file_id = str(content.get("id", path.name))
    examples = []
    for q, (question, choices, answer) in enumerate(zip(questions, options, answers, strict=True)):
        texts = isinstance(choices, list) and all(isinstance(c, str) for c in choices)
        if not texts or len(choices) != len(LETTERS):
            raise DataError(f"{path}: question {q} needs {len(LETTERS)} text options, got {choices!r}"[:300])
        if not isinstance(answer, str) or answer not in LETTERS:
            raise DataError(f"{path}: question {q} has answer {answer!r}; expected one of {', '.join(LETTERS)}")
        examples.append(ChoiceExample(f"{file_id}-{q}", article, str(question), tuple(choices),
                                      LETTERS.index(answer), part))
    return examples


def read_race(split_dir: str | Path) -> list[ChoiceExample]:
    """The questions of one RACE split folder (holding ``middle/`` and/or ``high/``), middle first, files
    in name order; a one-line :class:`DataError` naming the file for a malformed one."""
    split_dir = Path(split_dir)
    parts = [part for part in RACE_PARTS if (split_dir / part).is_dir()]
    if not parts:
        raise DataError(f"{split_dir}: no {' or '.join(RACE_PARTS)} folder (RACE is <split>/{{middle,high}}/*.txt)")
    examples = []
    for part in parts:
        files = sorted((split_dir / part).glob("*.txt"))
        if not files:
            raise DataError(f"{split_dir / part}: no .txt files")
        for path in files:
            examples.extend(_race_file(path, part))
    return examples


SWAG_COLUMNS = ("sent1", "sent2", "ending0", "ending1", "ending2", "ending3")


def read_swag(path: str | Path) -> list[ChoiceExample]:
    """The rows of a SWAG CSV file (``label`` optional: the test file has none)."""
    path = Path(path)
    examples: list[ChoiceExample] = []
    try:
        # Decoded whole first: a byte that is not UTF-8 is then named by line and column.
        with io.StringIO(read_text_file(path), newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path}: empty file")
            missing = [c for c in SWAG_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{path}:1: no column {', '.join(missing)} (SWAG's header is ,video-id,fold-ind,"
                                f"startphrase,sent1,sent2,gold-source,ending0,...,ending3,label)")
            column = {name: header.index(name) for name in header}
            labeled = "label" in column
            start = 2
            for row in reader:
                if not row:
                    start = reader.line_num + 1
                    continue
                if len(row) != len(header):
                    raise DataError(f"{path}:{start}: {len(row)} fields, the header has {len(header)}")
                label = None
                if labeled:
                    value = row[column["label"]]
                    if value not in ("0", "1", "2", "3"):
                        raise DataError(f"{path}:{start}: label {value!r} is not 0, 1, 2 or 3")
                    label = int(value)
                guid = row[0] if header[0] == "" and row[0] else str(len(examples))
                examples.append(ChoiceExample(guid, row[column["sent1"]], row[column["sent2"]],
                                              tuple(row[column[f"ending{k}"]] for k in range(4)), label))
                start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}: malformed CSV: {err}") from None
    if not examples:
        raise DataError(f"{path}: no rows")
    return examples


def read_prediction_tsv(path: str | Path, letters: bool) -> dict[str, int]:
    """A predictions TSV (``id<TAB>prediction`` under a header) → id → option index; RACE writes letters."""
    path = Path(path)
    predictions: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot read it as text: {err}") from None
    for line_no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(f"{path}:{line_no}: {len(fields)} fields; expected id<TAB>prediction")
        value = fields[1].strip()
        if letters and value in LETTERS:
            predictions[fields[0]] = LETTERS.index(value)
        elif value.isdigit():
            predictions[fields[0]] = int(value)
        else:
            raise DataError(f"{path}:{line_no}: prediction {value!r} is not an option "
                            f"({'a letter A-D or ' if letters else ''}an index)")
    if not predictions:
        raise DataError(f"{path}: no predictions")
    return predictions


def _fit(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Tokens kept of the context and of the question+option so that both fit ``budget``."""
    keep_b = min(len_b, max(budget - len_a, budget // 2))
    return min(len_a, budget - keep_b), keep_b


@dataclass(frozen=True)
class ChoiceTask(SplitFiles):
    """RACE or SWAG (see the module docstring)."""

    layout: str = "swag"
    """``race`` (folder tree) or ``swag`` (CSV files)."""
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    num_choices: int = 4
    aliases: tuple[str, ...] = ()
    main_metric: str = "accuracy"
    kind: str = "choice"
    head: str = "MultiChoiceModel"

    def build_model(self, config: Any, pre_trained: str | None, drop_out: float | None = None) -> torch.nn.Module:
        """A ``MultiChoiceModel``: one score per option from the pooled [CLS]."""
        return build_head(self.head, config, pre_trained, drop_out=drop_out)

    def read(self, data_dir: str | Path, split: str) -> list[ChoiceExample]:
        if self.layout == "swag":
            return read_swag(find_split_file(data_dir, self.name, split, self.files(split)))
        data_dir = Path(data_dir)
        folder = self.files(split)[0]
        if not (data_dir / folder).is_dir():
            state = "" if data_dir.is_dir() else f" ({data_dir} does not exist)"
            raise DataError(f"task {self.name} split {split}: no folder {data_dir / folder}{state}; RACE is "
                            f"<data_dir>/{{train,dev,test}}/{{middle,high}}/*.txt")
        return read_race(data_dir / folder)

    def features(self, examples: Sequence[ChoiceExample], tokenizer: OffsetTokenizer, max_seq_len: int, *,
                 options: KindOptions | None = None, training: bool = False) -> FeatureList:
        """One feature per question: ``input_ids`` and ``type_ids`` — lists of one array per option —,
        ``label`` (-1 when unknown), ``example_index``."""
        check_max_seq_len(max_seq_len)
        budget = max_seq_len - 3
        for example in examples:
            if len(example.options) != self.num_choices:
                raise DataError(f"{self.name} question {example.guid} has {len(example.options)} options, "
                                f"expected {self.num_choices}")
        unique_contexts = list(dict.fromkeys(e.context for e in examples))
        context_ids = {c: e.ids for c, e in zip(unique_contexts, encode_texts(tokenizer, unique_contexts), strict=True)}
        seconds = encode_texts(tokenizer, [text for e in examples for text in e.second_segments()])
        features = []
        stats = {"questions": len(examples), "truncated": 0}
        for index, example in enumerate(examples):
            a = context_ids[example.context]
            ids, types, cut = [], [], False
            for k in range(self.num_choices):
                b = seconds[index * self.num_choices + k].ids
                keep_a, keep_b = _fit(len(a), len(b), budget)
                cut |= keep_a < len(a) or keep_b < len(b)
                ids.append(np.asarray([tokenizer.cls_id, *a[:keep_a], tokenizer.sep_id,
                                       *b[len(b) - keep_b:], tokenizer.sep_id], dtype=np.int32))
                types.append(np.asarray([0] * (keep_a + 2) + [1] * (keep_b + 1), dtype=np.int8))
            stats["truncated"] += cut
            features.append({"example_index": index, "input_ids": ids, "type_ids": types,
                             "label": -1 if example.label is None else example.label})
        if stats["truncated"]:
            logger.info("%d of %d questions do not fit max_seq_len %d whole: their context is cut from its end",
                        stats["truncated"], len(examples), max_seq_len)
        return FeatureList(features, stats)

    def collate(self, features: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
        """``input_ids``, ``type_ids``, ``input_mask`` (B, N, L) padded to the longest option; ``labels`` (B,)."""
        length = max(len(ids) for f in features for ids in f["input_ids"])

        def stacked(key: str, value: int) -> torch.Tensor:
            return torch.stack([pad_stack(f[key], value, length) for f in features])

        masks = [[np.ones(len(ids), dtype=np.int64) for ids in f["input_ids"]] for f in features]
        return {
            "input_ids": stacked("input_ids", pad_id),
            "type_ids": stacked("type_ids", 0),
            "input_mask": torch.stack([pad_stack(m, 0, length) for m in masks]),
            "labels": torch.tensor([int(f["label"]) for f in features], dtype=torch.long),
        }

    def decode(self, examples: Sequence[ChoiceExample], features: FeatureList, outputs: Sequence[np.ndarray],
               options: KindOptions | None = None) -> list[int]:
        """Scores (N,) per question → the index of the best option."""
        if len(outputs) != len(features):
            raise ValueError(f"{len(outputs)} outputs for {len(features)} features")
        chosen = [-1] * len(examples)
        for feature, scores in zip(features, outputs, strict=True):
            chosen[feature["example_index"]] = int(np.asarray(scores).reshape(-1)[: self.num_choices].argmax())
        return chosen

    def metrics(self, examples: Sequence[ChoiceExample], predictions: Sequence[int]) -> dict[str, Any]:
        """``accuracy`` (0–100) and ``total``; RACE also ``middle`` and ``high``."""
        labels = [e.label if e.label is not None else -1 for e in examples]
        if self.layout == "race":
            return race_accuracy(predictions, labels, [e.part for e in examples])
        return choice_accuracy(predictions, labels)

    def prediction_file(self, split: str) -> str:
        return f"{self.name}.{split}.tsv"

    def write_predictions(self, folder: str | Path, split: str, examples: Sequence[ChoiceExample],
                          predictions: Sequence[int]) -> list[Path]:
        """``<task>.<split>.tsv``: a header ``id<TAB>prediction``, then one row per question — RACE's
        answer letter, SWAG's ending index."""
        def shown(choice: int) -> str:
            return LETTERS[choice] if self.layout == "race" else str(choice)

        rows = ["id\tprediction", *(f"{e.guid}\t{shown(p)}" for e, p in zip(examples, predictions, strict=True))]
        path = Path(folder) / self.prediction_file(split)
        write_text(path, "\n".join(rows) + "\n")
        return [path]


RACE = register_kind_task(ChoiceTask(
    name="RACE",
    layout="race",
    split_files=(("train", ("train",)), ("dev", ("dev",)), ("test", ("test",))),
))

SWAG = register_kind_task(ChoiceTask(
    name="SWAG",
    layout="swag",
    split_files=(("train", ("train.csv",)), ("dev", ("val.csv",)), ("test", ("test.csv",))),
))
