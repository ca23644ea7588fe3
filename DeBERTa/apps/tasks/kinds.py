"""What the task kinds beyond classification share: the tokenizer they need, options, feature lists,
padding, file lookup, and the registry of their tasks.

A kind task (:class:`KindTask`) runs the chain the training engine drives, one step per method::

    read(data_dir, split)                                   → examples (official layouts; one-line errors)
    features(examples, tokenizer, max_seq_len, options=, training=) → FeatureList (inputs + what decode needs)
    collate(features of a batch)                            → {name: tensor} for the head's forward()
    build_model(config, pre_trained, drop_out)              → the head of DeBERTa.deberta.heads named ``head``
    decode(examples, features, outputs, options=)           → predictions (answer spans in context characters,
                                                              a tag per word, the chosen option)
    metrics(examples, predictions)                          → {name: value}, the official numbers (0–100)
    write_predictions(folder, split, examples, predictions) → files in the official layouts

This is the engine's ``TaskKind`` (:mod:`DeBERTa.training.engine`) plus the keyword-only extras of the
kinds (``options``, ``training``) and the prediction writer.

``outputs`` is one numpy array per feature, in feature order, as the head produced it for that feature
(padding may be left on; each kind trims it). Kinds: :mod:`.ner` (token), :mod:`.squad` (span),
:mod:`.choice` (multiple choice).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from DeBERTa.training.errors import DataError

__all__ = [
    "DataError",
    "FeatureList",
    "IGNORE_INDEX",
    "KindOptions",
    "KindTask",
    "OffsetTokenizer",
    "SplitFiles",
    "SplitResult",
    "TextEncoding",
    "attention_mask",
    "build_head",
    "check_json_escapes",
    "check_max_seq_len",
    "encode_texts",
    "evaluate_split",
    "find_split_file",
    "get_kind_task",
    "has_gold",
    "kind_task_names",
    "pad_stack",
    "read_json_file",
    "read_text_file",
    "register_kind_task",
    "scalar_metrics",
]

IGNORE_INDEX = -100
"""Label of positions that carry no loss (sub-tokens after a word's first, special tokens, padding)."""


class TextEncoding(Protocol):
    """What ``tokenizer.encode_with_offsets(text)`` returns: no special tokens, no truncation."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    """Character span of each token in ``text``."""
    word_ids: list[int]


class OffsetTokenizer(Protocol):
    """The tokenizer the kinds need (GPT2Tokenizer and SPMTokenizer provide it)."""

    cls_id: int
    sep_id: int
    pad_id: int

    def encode_with_offsets(self, text: str) -> TextEncoding: ...


@dataclass(frozen=True)
class KindOptions:
    """Feature and decoding settings of the kinds beyond ``max_seq_len`` (the training app's options of the
    same names)."""

    doc_stride: int = 128
    """SQuAD: tokens between the starts of two context windows; capped to the window so it always fits."""
    max_query_length: int = 64
    """SQuAD: question tokens kept (its head); capped to half the input so a context window remains."""
    max_answer_length: int = 30
    """SQuAD: longest answer, in tokens, the decoder proposes."""
    n_best_size: int = 20
    """SQuAD: best start and end positions tried per window, and answers kept in nbest_predictions.json."""
    null_score_diff_threshold: float = 0.0
    """SQuAD 2.0: predict "no answer" when the null score exceeds the best span's score by more than this."""

    def __post_init__(self) -> None:
        for name in ("doc_stride", "max_query_length", "max_answer_length", "n_best_size"):
            if getattr(self, name) < 1:
                raise DataError(f"{name} must be positive (got {getattr(self, name)})")


class FeatureList(list[dict[str, Any]]):
    """The features of one split — each a dict of numpy arrays and ints, ``example_index`` always among
    them — plus ``stats``: counts worth a line in the run records (skipped answers, split sentences,
    truncated inputs), zero ones included so that their absence is visible."""

    def __init__(self, features: Sequence[dict[str, Any]] = (), stats: Mapping[str, int] | None = None) -> None:
        super().__init__(features)
        self.stats: dict[str, int] = dict(stats or {})

    def lengths(self) -> np.ndarray:
        """Tokens of each feature (the longest option for multiple choice), for length-grouped batching."""
        def length(ids: Any) -> int:
            return max(len(option) for option in ids) if isinstance(ids, list) else len(ids)

        return np.array([length(f["input_ids"]) for f in self], dtype=np.int64)


def pad_stack(arrays: Sequence[np.ndarray], value: int, length: int | None = None) -> torch.Tensor:
    """1-D int arrays → (B, L) int64 tensor padded on the right with ``value`` to ``length`` or the longest."""
    length = max(len(a) for a in arrays) if length is None else length
    out = torch.full((len(arrays), length), value, dtype=torch.long)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = torch.as_tensor(np.asarray(array, dtype=np.int64))
    return out


MIN_SEQ_LEN = 5
"""The shortest input every kind can use: [CLS], a question token, [SEP], a context token, [SEP]."""


def check_max_seq_len(max_seq_len: int) -> None:
    """A one-line :class:`DataError` for a ``max_seq_len`` no kind can use."""
    if max_seq_len < MIN_SEQ_LEN:
        raise DataError(f"max_seq_len {max_seq_len} is too short: these tasks need at least {MIN_SEQ_LEN} tokens")


_ENCODE_CHUNK = 4096  # texts per batch call: bounds the memory held by encodings


def encode_texts(tokenizer: OffsetTokenizer, texts: Sequence[str]) -> list[TextEncoding]:
    """``tokenizer.encode_with_offsets`` of every text, through ``encode_batch_with_offsets`` (one call per
    chunk, much faster) when the tokenizer has it."""
    batch = getattr(tokenizer, "encode_batch_with_offsets", None)
    if batch is None:
        return [tokenizer.encode_with_offsets(text) for text in texts]
    encodings: list[TextEncoding] = []
    for start in range(0, len(texts), _ENCODE_CHUNK):
        encodings.extend(batch(list(texts[start: start + _ENCODE_CHUNK])))
    return encodings


def build_head(head: str, config: Any, pre_trained: str | None, **kwargs: Any) -> torch.nn.Module:
    """The head class ``head`` of :mod:`DeBERTa.deberta.heads`, built from ``config`` / ``pre_trained``;
    ``drop_out=None`` is left out (the head then uses the model's dropout, and QA has no such argument)."""
    from DeBERTa.deberta import heads  # lazily: reading files and metrics needs no model code

    cls = getattr(heads, head, None)
    if cls is None:
        raise DataError(f"this version of DeBERTa has no {head} head")
    kwargs = {k: v for k, v in kwargs.items() if not (k == "drop_out" and v is None)}
    return cls(config=config, pre_trained=pre_trained, **kwargs)


def attention_mask(features: Sequence[Mapping[str, Any]]) -> torch.Tensor:
    """(B, L) 1 over each feature's ``input_ids``, 0 over the padding :func:`pad_stack` adds."""
    return pad_stack([np.ones(len(f["input_ids"]), dtype=np.int64) for f in features], 0)


def find_split_file(data_dir: str | Path, task: str, split: str, candidates: Sequence[str]) -> Path:
    """The first of ``candidates`` present in ``data_dir``; a one-line :class:`DataError` otherwise."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        state = "is not a directory" if data_dir.exists() else "does not exist"
        raise DataError(f"data dir {data_dir} {state}; task {task} expects {' or '.join(candidates)} there")
    for name in candidates:
        if (data_dir / name).is_file():
            return data_dir / name
    present = sorted(p.name for p in data_dir.iterdir())
    holds = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") if present else "nothing"
    raise DataError(f"task {task} split {split}: no {' or '.join(candidates)} in {data_dir} (it holds: {holds})")


def read_text_file(path: Path) -> str:
    """A data file's text (UTF-8, a BOM dropped); a one-line :class:`DataError` naming ``file:line`` and the
    column of the first byte that is not UTF-8, or why the file cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read it: {err.strerror}") from None
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line, line_start = data.count(b"\n", 0, err.start) + 1, data.rfind(b"\n", 0, err.start) + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (bad byte at column {err.start - line_start + 1})") from None


# A \uXXXX escape of half a surrogate pair without its other half: JSON allows it, a tokenizer cannot take the
# lone surrogate it decodes to. The escape must start with an odd number of backslashes (\\ud800 is text).
_LONE_SURROGATE_ESCAPE = re.compile(
    r"(?<!\\)(?:\\\\)*\\u([dD][89abAB][0-9a-fA-F]{2})(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\)(?:\\\\)*(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})")


def check_json_escapes(text: str, path: Path, first_line: int = 1) -> None:
    """A one-line :class:`DataError` naming ``file:line`` when the JSON ``text`` holds an escaped lone surrogate
    (``"\\ud800"``): it parses, but is not Unicode text a tokenizer can take."""
    if "\\u" not in text:
        return
    match = _LONE_SURROGATE_ESCAPE.search(text)
    if match:
        line = first_line + text.count("\n", 0, match.start())
        column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
        raise DataError(f"{path}:{line}: \\u{(match.group(1) or match.group(2)).upper()} at column {column} is half "
                        f"of a surrogate pair, not valid Unicode text (write the character itself)")


def read_json_file(path: Path) -> Any:
    """A JSON file's content; a one-line :class:`DataError` naming the file and line if it is not UTF-8 JSON
    of valid Unicode text."""
    text = read_text_file(path)
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON: {err.msg} at column {err.colno}") from None
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply") from None
    check_json_escapes(text, path)
    return content


class KindTask(Protocol):
    """A task of a kind beyond classification: its files, head, features, decoding, metrics and outputs.

    The attributes are read-only (the tasks are frozen dataclasses).
    """

    @property
    def name(self) -> str:
        """As the official distribution names it (``NER``, ``SQuAD``, ``SQuAD2``, ``RACE``, ``SWAG``)."""

    @property
    def kind(self) -> str:
        """``token``, ``span`` or ``choice``."""

    @property
    def head(self) -> str:
        """Class name in :mod:`DeBERTa.deberta.heads` (:meth:`build_model` builds it)."""

    @property
    def split_names(self) -> tuple[str, ...]:
        """Every split, the training split first."""

    @property
    def eval_splits(self) -> tuple[str, ...]:
        """Labeled splits scored at every evaluation."""

    @property
    def test_splits(self) -> tuple[str, ...]:
        """Splits written by ``--do_predict`` (scored too when they carry gold labels)."""

    @property
    def main_metric(self) -> str:
        """Key of :meth:`metrics`' result that picks the best checkpoint (larger is better)."""

    @property
    def aliases(self) -> tuple[str, ...]:
        """Other names :func:`get_kind_task` accepts."""

    def read(self, data_dir: str | Path, split: str) -> list[Any]: ...

    def features(self, examples: Sequence[Any], tokenizer: OffsetTokenizer, max_seq_len: int, *,
                 options: KindOptions | None = None, training: bool = False) -> FeatureList: ...

    def collate(self, features: Sequence[Mapping[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]: ...

    def build_model(self, config: Any, pre_trained: str | None, drop_out: float | None = None) -> torch.nn.Module:
        ...

    def decode(self, examples: Sequence[Any], features: FeatureList, outputs: Sequence[np.ndarray],
               options: KindOptions | None = None) -> Any: ...

    def metrics(self, examples: Sequence[Any], predictions: Any) -> dict[str, Any]: ...

    def write_predictions(self, folder: str | Path, split: str, examples: Sequence[Any],
                          predictions: Any) -> list[Path]: ...


@dataclass(frozen=True)
class SplitFiles:
    """What every kind task declares first: its name and, per split, the candidate files (or folders)."""

    name: str
    """As the official distribution names it (``NER``, ``SQuAD``, ``SQuAD2``, ``RACE``, ``SWAG``)."""
    split_files: tuple[tuple[str, tuple[str, ...]], ...]
    """``(split, candidates)`` in order, the training split first; the first candidate present is read."""

    @property
    def split_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.split_files)

    @property
    def train_split(self) -> str | None:
        return "train" if "train" in self.split_names else None

    def files(self, split: str) -> tuple[str, ...]:
        """The candidate names of ``split``; a one-line :class:`DataError` naming the splits there are."""
        for name, files in self.split_files:
            if name == split:
                return files
        raise DataError(f"task {self.name} has no {split!r} split; its splits are: {', '.join(self.split_names)}")


@dataclass
class _Registry:
    tasks: dict[str, KindTask] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)


_REGISTRY = _Registry()


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(".", "")


def register_kind_task(task: KindTask) -> KindTask:
    """Make ``task`` known to :func:`get_kind_task` under its name and aliases (case, ``-``, ``_``, ``.`` ignored)."""
    for key in (_key(task.name), *(_key(a) for a in task.aliases)):
        other = _REGISTRY.tasks.get(key)
        if other is not None and other is not task:
            raise ValueError(f"task name {key!r} is taken by {other.name}")
        _REGISTRY.tasks[key] = task
    if task.name not in _REGISTRY.order:
        _REGISTRY.order.append(task.name)
    return task


def get_kind_task(name: str) -> KindTask | None:
    """The kind task called ``name`` (``NER``, ``squad``, ``SQuAD2``, ``squad_v2``, ``race``, ``swag``), or ``None``."""
    _load_all()
    return _REGISTRY.tasks.get(_key(name))


KINDS = ("token", "span", "choice")


def kind_task_names() -> list[str]:
    """Names of the kind tasks: by kind (token, span, choice), then in registration order."""
    _load_all()
    tasks = [_REGISTRY.tasks[_key(name)] for name in _REGISTRY.order]
    ranked = sorted(enumerate(tasks), key=lambda item: (KINDS.index(item[1].kind) if item[1].kind in KINDS
                                                        else len(KINDS), item[0]))
    return [task.name for _, task in ranked]


def _load_all() -> None:
    # The kind modules register themselves on import; importing them here keeps the registry complete
    # whichever module a caller imported first.
    for module in ("ner", "squad", "choice"):
        importlib.import_module(f"{__package__}.{module}")


@dataclass
class SplitResult:
    """One split evaluated or predicted by :func:`evaluate_split`."""

    predictions: Any
    """What the kind's ``decode`` returned."""
    metrics: dict[str, Any] | None
    """The kind's ``metrics`` (nested, 0–100), or ``None`` for a split without gold labels."""
    files: list[Path]
    """The prediction files written (none without a folder)."""


def has_gold(examples: Sequence[Any]) -> bool:
    """Whether every example carries a gold answer (a choice ``label`` that is not ``None``; CoNLL and
    SQuAD examples always do)."""
    return all(getattr(example, "label", 0) is not None for example in examples)


def evaluate_split(task: KindTask, examples: Sequence[Any], features: FeatureList, outputs: Sequence[np.ndarray],
                   *, options: KindOptions | None = None, folder: str | Path | None = None,
                   split: str = "dev") -> SplitResult:
    """Decode the outputs of every feature (gathered over ranks, in feature order), score them when the
    split has gold labels, and write the prediction files into ``folder`` — what one evaluation of a kind
    task does, in one call."""
    predictions = task.decode(examples, features, outputs, options)
    metrics = task.metrics(examples, predictions) if has_gold(examples) else None
    files = task.write_predictions(folder, split, examples, predictions) if folder is not None else []
    return SplitResult(predictions, metrics, files)


def scalar_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metrics → flat ``{name: number}`` for ``metrics.jsonl`` and TensorBoard: nested keys are joined
    with ``/`` (``per_type/PER/f1``, ``middle/accuracy``); strings (SQuAD's ``version``) are left out."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(scalar_metrics(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat
