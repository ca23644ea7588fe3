"""Data, from a task's files to model batches and back to prediction files.

* :func:`read_examples` reads one split of a task as its :class:`~DeBERTa.apps.tasks.TaskSpec` says.
  TSV is split on tabs only — no quote processing, because GLUE text holds unbalanced ``"`` — and a
  UTF-8 BOM is dropped. Bad input is a :class:`DataError` whose message is one line naming the file
  (and line): a missing data dir or file, a malformed row, an unknown label, an empty file. Rows with
  the wrong number of fields are skipped, counted and logged only where the spec allows it (QQP's
  train and dev files; see :mod:`DeBERTa.apps.tasks.glue`). Blank lines carry no example and are
  ignored everywhere.
* :func:`build_features` tokenizes examples into a compact :class:`Features` set, cached on disk (in
  :func:`feature_cache_dir`) under a key made of the tokenizer's fingerprint, ``max_seq_len`` and a
  SHA-256 of the examples as read (texts and labels — so a changed file, or a changed task definition
  reading other columns of the same file, both invalidate it). A cache that cannot be written (a
  read-only image) costs the reuse only. :func:`collate` pads a batch to its longest sequence.
* The training order and evaluation shards (:class:`TrainBatchSampler`, :func:`shard_indices`,
  :func:`merge_shards`) are the engine's, :mod:`DeBERTa.training.data.samplers`, re-exported here.
* :func:`write_predictions` writes ``index<TAB>prediction`` files, named as the GLUE server expects.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from DeBERTa.deberta import hub
from DeBERTa.training.data.samplers import TrainBatchSampler, merge_shards, shard_indices
from DeBERTa.training.errors import DataError
from DeBERTa.training.records import atomic_write

from .tasks import Column, SplitSpec, TaskSpec, get_task_spec
from .tasks.kinds import check_json_escapes

__all__ = ["DataError", "Example", "ExampleList", "Features", "TrainBatchSampler", "build_features", "collate",
           "merge_shards", "read_examples", "shard_indices", "write_predictions"]

logger = logging.getLogger(__name__)

FEATURE_CACHE_VERSION = 1
"""Part of every feature-cache key; bump it when the cached arrays change meaning or layout."""

FEATURE_CACHE_ENV = "DEBERTA_FEATURE_CACHE"
"""Environment variable naming the feature cache folder (default ``$DEBERTA_CACHE/features``)."""

_ENCODE_CHUNK = 8192  # examples per encode_batch call: bounds the memory held by Encoding objects


# --------------------------------------------------------------------------------------------------
# Reading examples


@dataclass(frozen=True, slots=True)
class Example:
    """One row of a split."""

    guid: str
    """Identifier written in prediction files: the split's id column, or the 0-based position."""
    text_a: str
    """First (or only) segment, verbatim from the file."""
    text_b: str | None
    """Second segment of a pair task, else ``None``."""
    label: int | float | None
    """Label id (row of the classifier), score (regression), or ``None`` in an unlabeled split."""
    line: int
    """1-based line of the row in its file, for messages."""


class ExampleList(list[Example]):
    """The examples of one split, plus where they came from and which rows were skipped."""

    def __init__(self, examples: Sequence[Example], *, path: Path, skipped_lines: Sequence[int] = ()) -> None:
        super().__init__(examples)
        self.path = path
        """The file that was read."""
        self.skipped_lines = tuple(skipped_lines)
        """1-based line numbers of malformed rows that were skipped (see ``SplitSpec.skip_malformed``)."""


def locate_file(spec: TaskSpec, data_dir: str | Path, split: str) -> Path:
    """The file holding ``split`` of ``spec`` in ``data_dir``; a :class:`DataError` listing what was
    expected and what is there when it is missing."""
    candidates = spec.split(split).files
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        expected = ", ".join(dict.fromkeys(" or ".join(s.files) for s in spec.splits))
        state = "is not a directory" if data_dir.exists() else "does not exist"
        raise DataError(f"data dir {data_dir} {state}; task {spec.name} expects {expected} there")
    for name in candidates:
        if (data_dir / name).is_file():
            # Symlinks included: a task's files are read from inside --data_dir only.
            if not (data_dir / name).resolve().is_relative_to(data_dir.resolve()):
                raise DataError(f"task {spec.name} split {split}: {data_dir / name} leads outside the data dir "
                                f"{data_dir}; data files must be inside it")
            return data_dir / name
    present = sorted(p.name for p in data_dir.iterdir() if p.is_file())
    holds = ", ".join(present[:12]) + (", ..." if len(present) > 12 else "") if present else "no files"
    raise DataError(f"task {spec.name} split {split}: no {' or '.join(candidates)} in {data_dir} "
                    f"(it holds: {holds})")


def diagnostic_dir(mnli_data_dir: str | Path) -> Path | None:
    """Where GLUE's diagnostic set (task AX) is, seen from an MNLI data dir, or ``None``.

    Looks in the MNLI dir itself, then beside it in GLUE's ``diagnostic/`` and in ``AX/``, so that an
    MNLI ``--do_predict`` can also write ``AX.tsv`` (the leaderboard wants both from one model).
    """
    base = Path(mnli_data_dir)
    files = get_task_spec("AX").split("test").files
    for candidate in (base, base.parent / "diagnostic", base.parent / "AX"):
        if any((candidate / name).is_file() for name in files):
            return candidate
    return None


Row = Any
"""A parsed line: a list of fields (tsv, csv) or a dict (jsonl); indexed by a resolved column."""


def _decode_line(raw: bytes, path: Path, line_no: int) -> str:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}:{line_no}: not UTF-8 text (bad byte at column {err.start + 1})") from None
    # The BOM only ever starts a file (MRPC's test.tsv has one); line endings may be \n or \r\n.
    return (line.removeprefix("\ufeff") if line_no == 1 else line).rstrip("\r\n")


def _tsv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    # Binary iteration splits on b"\n" only: str.splitlines() would also split inside GLUE text on
    # \x0b, \x1c, \x85 or \u2028 and shift every following column.
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            line = _decode_line(raw, path, line_no)
            if line:
                yield line_no, line.split("\t")


def _csv_rows(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        start = 1  # a quoted field may span lines: report the line where the record starts
        try:
            for fields in reader:
                if fields:
                    yield start, fields
                start = reader.line_num + 1
        except UnicodeDecodeError:
            raise DataError(f"{path}: not UTF-8 text (after line {start})") from None
        except csv.Error as err:
            raise DataError(f"{path}:{start}: malformed CSV: {err}") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Row]]:
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            line = _decode_line(raw, path, line_no)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: not valid JSON: {err.msg} at column {err.colno}") from None
            except RecursionError:
                raise DataError(f"{path}:{line_no}: JSON nested too deeply") from None
            check_json_escapes(line, path, line_no)
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row


_ROW_READERS = {"tsv": _tsv_rows, "csv": _csv_rows, "jsonl": _jsonl_rows}


class _Columns:
    """A split's column references resolved against one file (names → positions via its header)."""

    def __init__(self, split: SplitSpec, file_format: str, header: list[str] | None, path: Path) -> None:
        self.path = path
        self.keyed = file_format == "jsonl"
        self.text = [self._resolve(ref, header) for ref in split.text_columns]
        self.label, self.id = (None if ref is None else self._resolve(ref, header)
                               for ref in (split.label_column, split.id_column))
        resolved = [*self.text, self.label, self.id]
        self.sep = "tab" if file_format == "tsv" else "comma"
        self.width = split.num_columns or (len(header) if header is not None else None)
        used = [c for c in resolved if isinstance(c, int)]
        # Without an exact width, a row must reach every column, and negative (from-the-end) columns
        # must land after the positive ones, not on top of them.
        reach = max((c + 1 for c in used if c >= 0), default=0)
        tail = max((-c for c in used if c < 0), default=0)
        self.min_width = reach + tail

    def _resolve(self, ref: Column, header: list[str] | None) -> Column:
        if self.keyed or isinstance(ref, int):
            return ref
        if header is None or ref not in header:
            raise DataError(f"{self.path}: no column {ref!r} in the header ({', '.join(header or [])})")
        return header.index(ref)

    def problem(self, row: Row) -> str | None:
        """Why ``row`` is malformed, or ``None``."""
        if self.keyed:
            missing = [c for c in (*self.text, self.label, self.id) if c is not None and c not in row]
            return f"missing keys {missing}" if missing else None
        if self.width is not None and len(row) != self.width:
            return f"{len(row)} {self.sep}-separated fields, expected {self.width}"
        if len(row) < self.min_width:
            return f"{len(row)} {self.sep}-separated fields, expected at least {self.min_width}"
        return None


def _as_text(value: Any, column: Column, where: str) -> str:
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} holds {type(value).__name__} {value!r}, not text")
    return value


def _parse_label(spec: TaskSpec, value: Any, where: str) -> int | float:
    if spec.labels is None:
        try:
            # float(True) is 1.0, but a JSON true is not a score.
            score = math.nan if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            raise DataError(f"{where}: score {value!r} is not a finite number")
        return score
    text = value.strip() if isinstance(value, str) else json.dumps(value)
    label_id = spec.label_id(text)
    if label_id is None:
        raise DataError(f"{where}: unknown label {text!r}; task {spec.name} labels are {', '.join(spec.labels)}")
    return label_id


def read_examples(spec: TaskSpec, data_dir: str | Path, split: str) -> ExampleList:
    """All examples of ``split`` (e.g. ``train``, ``dev_matched``, ``test``) of ``spec`` in ``data_dir``.

    Unlabeled splits give ``label=None``. Raises :class:`DataError` (one line, with file and line) on
    bad input and :class:`~DeBERTa.apps.tasks.TaskError` for a split the task does not have.
    """
    split_spec = spec.split(split)
    path = locate_file(spec, data_dir, split)
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; task {spec.name} split {split} needs examples")
    rows = _ROW_READERS[spec.file_format](path)
    header: list[str] | None = None
    if split_spec.header and spec.file_format != "jsonl":
        first = next(rows, None)
        header = None if first is None else list(first[1])
    columns = _Columns(split_spec, spec.file_format, header, path)

    examples: list[Example] = []
    skipped: list[int] = []
    for line_no, row in rows:
        where = f"{path}:{line_no}"
        problem = columns.problem(row)
        if problem is not None:
            if split_spec.skip_malformed:
                skipped.append(line_no)
                continue
            raise DataError(f"{where}: malformed row: {problem} (task {spec.name}, split {split})")
        texts = [_as_text(row[c], c, where) for c in columns.text]
        label = None if columns.label is None else _parse_label(spec, row[columns.label], where)
        guid = str(len(examples)) if columns.id is None else str(row[columns.id])
        examples.append(Example(guid, texts[0], texts[1] if len(texts) > 1 else None, label, line_no))

    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (", ..." if len(skipped) > 10 else "")
        logger.warning("%s: skipped %d malformed rows (lines %s)", path, len(skipped), shown)
    if not examples:
        if skipped:
            raise DataError(f"{path}: all {len(skipped)} rows are malformed (task {spec.name}, split {split})")
        what = "has a header but no examples" if header is not None else "holds no examples"
        raise DataError(f"{path} {what}; task {spec.name} split {split} needs examples")
    return ExampleList(examples, path=path, skipped_lines=skipped)


# --------------------------------------------------------------------------------------------------
# Features


class Encoded(Protocol):
    """What :func:`build_features` uses of one tokenizer output (``GPT2Tokenizer``'s ``Encoding``)."""

    # Read-only (properties), so that a NamedTuple such as ``Encoding`` matches.
    @property
    def input_ids(self) -> Sequence[int]: ...

    @property
    def token_type_ids(self) -> Sequence[int]: ...


class Tokenizer(Protocol):
    """What :func:`build_features` uses of a tokenizer (``DeBERTa.deberta.GPT2Tokenizer``)."""

    @property
    def fingerprint(self) -> str: ...

    def encode_batch(self, texts_a: list[str], texts_b: list[str] | None = None, max_seq_len: int = 512,
                     ) -> Sequence[Encoded]: ...


@dataclass(frozen=True, eq=False)
class Features:
    """Token ids of a whole split, concatenated: example ``i`` is ``input_ids[offsets[i]:offsets[i+1]]``.

    Items (``features[i]``) are dicts with ``index``, ``input_ids`` and ``type_ids`` (unpadded int
    arrays) and, for labeled splits, ``label``; :func:`collate` batches them.
    """

    input_ids: np.ndarray
    """(T,) int32, T = total tokens."""
    type_ids: np.ndarray
    """(T,) int8 segment ids."""
    offsets: np.ndarray
    """(N + 1,) int64 start of each example in the flat arrays, then T."""
    labels: np.ndarray | None
    """(N,) int64 label ids or float32 scores; ``None`` for an unlabeled split."""

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """(N,) tokens per example, special tokens included."""
        return np.diff(self.offsets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        item: dict[str, Any] = {"index": index, "input_ids": self.input_ids[start:end],
                                "type_ids": self.type_ids[start:end]}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item


def _labels_array(examples: Sequence[Example]) -> np.ndarray | None:
    labels = [ex.label for ex in examples]
    if all(label is None for label in labels):
        return None
    if any(label is None for label in labels):
        raise ValueError("examples mix labeled and unlabeled rows")
    regression = any(isinstance(label, float) for label in labels)
    return np.asarray(labels, dtype=np.float32 if regression else np.int64)


def _encode(examples: Sequence[Example], tokenizer: Tokenizer, max_seq_len: int) -> Features:
    paired = any(ex.text_b is not None for ex in examples)
    if paired and not all(ex.text_b is not None for ex in examples):
        raise ValueError("examples mix single sentences and sentence pairs")
    ids: list[np.ndarray] = []
    types: list[np.ndarray] = []
    for start in range(0, len(examples), _ENCODE_CHUNK):
        chunk = examples[start : start + _ENCODE_CHUNK]
        texts_b = [ex.text_b for ex in chunk if ex.text_b is not None] if paired else None  # paired: all present
        encodings = tokenizer.encode_batch([ex.text_a for ex in chunk], texts_b, max_seq_len=max_seq_len)
        for encoding in encodings:
            ids.append(np.asarray(encoding.input_ids, dtype=np.int32))
            types.append(np.asarray(encoding.token_type_ids, dtype=np.int8))
    lengths = np.array([len(x) for x in ids], dtype=np.int64)
    if len(ids) != len(examples) or lengths.max(initial=0) > max_seq_len:
        raise ValueError(f"tokenizer returned {len(ids)} encodings for {len(examples)} examples or one longer "
                         f"than max_seq_len {max_seq_len}")
    return Features(
        input_ids=np.concatenate(ids) if ids else np.zeros(0, np.int32),
        type_ids=np.concatenate(types) if types else np.zeros(0, np.int8),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        labels=_labels_array(examples),
    )


def feature_cache_key(examples: Sequence[Example], tokenizer: Tokenizer, max_seq_len: int) -> str:
    """SHA-256 hex of everything the features depend on: cache version, tokenizer fingerprint,
    ``max_seq_len`` and the examples' texts and labels in order."""
    digest = hashlib.sha256(f"v{FEATURE_CACHE_VERSION}\0{tokenizer.fingerprint}\0{max_seq_len}\0".encode())
    for ex in examples:
        # repr() keeps fields apart whatever they contain and tells None from "None", 1 from 1.0.
        digest.update(repr((ex.text_a, ex.text_b, ex.label)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def feature_cache_dir() -> Path:
    """Where :func:`build_features` caches: ``$DEBERTA_FEATURE_CACHE``, else ``features/`` in the model cache
    (``$DEBERTA_CACHE``). Point it elsewhere when the model cache is read-only, e.g. baked into an image."""
    configured = os.environ.get(FEATURE_CACHE_ENV, "").strip()
    return Path(configured).expanduser() if configured else hub.cache_dir() / "features"


def _load_cached(path: Path) -> Features | None:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return Features(input_ids=arrays["input_ids"], type_ids=arrays["type_ids"],
                            offsets=arrays["offsets"], labels=arrays["labels"] if "labels" in arrays else None)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        logger.warning("ignoring unreadable feature cache %s (%s); rebuilding it", path, err)
        return None


def build_features(examples: Sequence[Example], tokenizer: Tokenizer, max_seq_len: int, *,
                   cache_dir: str | Path | None = None) -> Features:
    """Tokenize ``examples`` into :class:`Features` (``[CLS] a [SEP] (b [SEP])``, truncated by the
    tokenizer to ``max_seq_len``).

    With ``cache_dir``, the result is stored there as ``features-<key>.npz`` (see
    :func:`feature_cache_key`), written atomically so that several processes may build it at once,
    and reused while the key is unchanged. A cache that cannot be written (read-only, full) is skipped
    with a warning: the features are still returned.
    """
    if cache_dir is None:
        return _encode(examples, tokenizer, max_seq_len)
    path = Path(cache_dir) / f"features-{feature_cache_key(examples, tokenizer, max_seq_len)}.npz"
    cached = _load_cached(path)
    if cached is not None and len(cached) == len(examples):
        return cached
    features = _encode(examples, tokenizer, max_seq_len)
    arrays = {"input_ids": features.input_ids, "type_ids": features.type_ids, "offsets": features.offsets}
    if features.labels is not None:
        arrays["labels"] = features.labels
    try:
        atomic_write(path, lambda f: np.savez(f, allow_pickle=False, **arrays))  # numeric arrays only
    except OSError as err:
        logger.warning("cannot write the feature cache %s (%s): continuing without it; set %s to a writable "
                       "folder to cache features", path, err, FEATURE_CACHE_ENV)
    return features


def collate(items: Sequence[dict[str, Any]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Batch :class:`Features` items, right-padded to the longest one.

    Returns ``input_ids``, ``type_ids``, ``input_mask`` (1 = token, 0 = padding), all ``(B, L)`` long;
    ``indices`` ``(B,)`` long, the items' positions in the split (to gather evaluation results); and,
    when the items have labels, ``labels`` ``(B,)`` — long for classification, float32 for regression.
    """
    if not items:
        raise ValueError("cannot collate an empty batch")
    width = max(len(item["input_ids"]) for item in items)
    input_ids = np.full((len(items), width), pad_id, dtype=np.int64)
    type_ids = np.zeros((len(items), width), dtype=np.int64)
    input_mask = np.zeros((len(items), width), dtype=np.int64)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        input_ids[row, :n] = item["input_ids"]
        type_ids[row, :n] = item["type_ids"]
        input_mask[row, :n] = 1
    batch = {
        "input_ids": torch.from_numpy(input_ids),
        "type_ids": torch.from_numpy(type_ids),
        "input_mask": torch.from_numpy(input_mask),
        "indices": torch.tensor([item["index"] for item in items], dtype=torch.long),
    }
    if "label" in items[0]:
        labels = np.asarray([item["label"] for item in items])
        batch["labels"] = torch.from_numpy(labels.astype(np.float32 if labels.dtype.kind == "f" else np.int64))
    return batch


# --------------------------------------------------------------------------------------------------
# Order: training batches, evaluation shards


# --------------------------------------------------------------------------------------------------
# Prediction files


def write_predictions(spec: TaskSpec, split: str, indices: Sequence[str | int], predictions: np.ndarray,
                      directory: str | Path) -> Path:
    """Write ``index<TAB>prediction`` rows (after an ``index\\tprediction`` header) and return the path.

    ``indices`` are the examples' ``guid`` in order; ``predictions`` are logits ``(N, C)``, label ids
    ``(N,)`` or scores ``(N,)`` / ``(N, 1)``. Labels are written by name; scores are clipped to the
    task's ``regression_range`` and written with 3 decimals (STS-B), or 6 significant digits when the
    task has no range. The file is ``spec.prediction_file(split)`` in ``directory`` — the GLUE server's
    name for test splits — written atomically.
    """
    values = spec.predictions(predictions)
    if len(values) != len(indices):
        raise ValueError(f"{len(indices)} indices for {len(values)} predictions")
    if spec.labels is not None:
        if len(values) and (values.min() < 0 or values.max() >= spec.num_labels):
            raise ValueError(f"label ids must be in [0, {spec.num_labels})")
        cells = [spec.labels[v] for v in values]
    elif spec.regression_range is not None:
        cells = [f"{v:.3f}" for v in np.clip(values, *spec.regression_range)]
    else:
        cells = [f"{v:.6g}" for v in values]
    path = Path(directory) / spec.prediction_file(split)
    text = "index\tprediction\n" + "".join(f"{i}\t{c}\n" for i, c in zip(indices, cells, strict=True))
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path
