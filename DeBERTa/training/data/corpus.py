"""Pre-training corpora: text tokenized once into memory-mapped token shards, read as windows.

A prepared corpus folder::

    index.json            what it holds and how it was made: the inputs (path, size, mtime), the
                          tokenizer's fingerprint and size, the shards and their token counts, the
                          documents, the largest id; ``complete`` once every input is in
    tokenizer/            the tokenizer's files (``save_pretrained``): the corpus says how it was made
    shard-00000.bin ...   token ids, uint16 when the vocabulary fits, else uint32, raw (np.memmap)
    shard-00000.idx ...   int64 end of each document in its shard's ids (the index has each shard's SHA-256)

Input files are UTF-8 text, ``.gz``/``.bz2``/``.xz`` read as they are; a document is a block of lines
separated by blank lines. Each document is tokenized without special tokens. Memory stays bounded whatever
the corpus size: documents are tokenized in batches and written straight to the open shard; a document
longer than :data:`PIECE_CHARS` characters is tokenized piece by piece (cut at a line end or space). A shard
ends at a document boundary once it holds ``shard_tokens``; the index is rewritten (atomically) after every
shard, so an interrupted preparation continues after the last finished shard.

:class:`Corpus` reads a prepared folder; :class:`CorpusWindows` is the map-style dataset of training windows
``[CLS] body [SEP]`` of at most ``max_seq_len`` ids: each document is cut into consecutive, non-overlapping
bodies of ``max_seq_len - 2`` ids, its last one shorter (a window never mixes documents, so a short document
is one short window, padded in the batch). The window table costs 6 bytes per window (a uint32 start and a
uint16 length: under 1/40 of the shards at 128 tokens a window), read from the documents' ends at opening.
Each window is one read of its shard file (opened lazily in each process; DataLoader workers share the page
cache): a memory map would also count in the process's RSS the pages around every window it touched (the
kernel maps 64 KB around each fault), which grows with the corpus. Which window each rank reads is the
:class:`~DeBERTa.training.data.samplers.TrainBatchSampler`'s: disjoint slices of the same global batches,
deterministic for a seed.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
from tqdm import tqdm

from ..errors import DataError
from ..records import write_json

logger = logging.getLogger(__name__)

INDEX_FILE = "index.json"
TOKENIZER_DIR = "tokenizer"
CORPUS_VERSION = 1
PIECE_CHARS = 100_000
"""A longer document is tokenized in pieces of about this many characters (bounded memory and time)."""
DOCUMENTS_PER_BATCH = 256
"""Documents tokenized in one call."""


class CorpusError(DataError):
    """An unusable corpus: unreadable, empty, binary, smaller than one window, or of another vocabulary."""


_ByteStream = gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile | io.BufferedReader
"""What :func:`_open_bytes` returns (each one a buffer that ``io.TextIOWrapper`` can wrap)."""


def _open_bytes(path: Path) -> _ByteStream:
    """``path``'s bytes, decompressing ``.gz``, ``.bz2`` and ``.xz`` as it reads."""
    openers: dict[str, Callable[[Path], _ByteStream]] = {
        ".gz": lambda p: gzip.open(p, "rb"), ".bz2": lambda p: bz2.open(p, "rb"), ".xz": lambda p: lzma.open(p, "rb"),
    }
    return openers.get(path.suffix, lambda p: open(p, "rb"))(path)


def open_text(path: Path) -> IO[str]:
    """A UTF-8 text stream of ``path``, decompressing ``.gz``, ``.bz2`` and ``.xz`` as it reads."""
    return io.TextIOWrapper(_open_bytes(path), encoding="utf-8", errors="strict", newline=None)


def _undecodable_line(path: Path) -> str:
    """``LINE: not UTF-8 text (bad byte at column N)`` of the first line of ``path`` that is not UTF-8: the text
    stream decodes ahead of the line it returns, so its error cannot say where (looked up on failure only)."""
    with _open_bytes(path) as raw:
        for line_no, line in enumerate(raw, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return f"{line_no}: not UTF-8 text (bad byte at column {err.start + 1})"
    return " not UTF-8 text"


def read_documents(path: Path) -> Iterator[str]:
    """The documents of one input file: blocks of non-blank lines, joined with spaces; a
    :class:`CorpusError` (one line, naming the file) for a file that is not UTF-8 text."""
    block: list[str] = []
    try:
        with open_text(path) as lines:
            for line_no, line in enumerate(lines, 1):
                if "\x00" in line:
                    raise CorpusError(f"{path}:{line_no}: a NUL byte: binary data, not text")
                text = line.strip()
                if text:
                    block.append(text)
                elif block:
                    yield " ".join(block)
                    block = []
    except UnicodeDecodeError:
        raise CorpusError(f"{path}:{_undecodable_line(path)}") from None
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise CorpusError(f"{path}: cannot read it ({err})") from None
    if block:
        yield " ".join(block)


def pieces(document: str, limit: int = PIECE_CHARS) -> Iterator[str]:
    """``document`` in pieces of at most about ``limit`` characters, cut after a space where there is one."""
    start = 0
    while len(document) - start > limit:
        cut = document.rfind(" ", start + limit // 2, start + limit)
        cut = start + limit if cut < 0 else cut + 1
        yield document[start:cut]
        start = cut
    yield document[start:]


def _input_record(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def fingerprint_of(tokenizer: Any) -> str:
    """The tokenizer's fingerprint (its vocabulary and settings), or a digest of its saved files."""
    value = getattr(tokenizer, "fingerprint", None)
    if isinstance(value, str):
        return value
    return hashlib.sha256(repr((type(tokenizer).__name__, tokenizer.vocab_size)).encode()).hexdigest()


def prepare_corpus(inputs: Sequence[Path], tokenizer: Any, output: Path, *, shard_tokens: int = 50_000_000,
                   progress: bool = True) -> Path:
    """Tokenize ``inputs`` into shards in ``output`` (see the module docstring); returns ``output``.

    A folder holding a preparation of the same inputs with the same tokenizer is continued (or left as
    it is when complete); one of other inputs or another tokenizer is refused. Nothing but the folder
    ``output`` is written; a failure before the first shard leaves no index behind.
    """
    for path in inputs:
        if not path.is_file():
            raise CorpusError(f"{path}: no such file")
    vocab_size = int(tokenizer.vocab_size)
    dtype = np.uint16 if vocab_size <= 2**16 else np.uint32
    plan = {
        "version": CORPUS_VERSION,
        "inputs": [_input_record(p) for p in inputs],
        "tokenizer_fingerprint": fingerprint_of(tokenizer),
        "vocab_size": vocab_size,
        "dtype": np.dtype(dtype).name,
        "shard_tokens": shard_tokens,
    }
    index_path = output / INDEX_FILE
    index = _read_index(index_path) if index_path.is_file() else None
    if index is not None:
        theirs = {k: index.get(k) for k in plan}
        if theirs != plan:
            changed = ", ".join(k for k in plan if theirs[k] != plan[k])
            raise CorpusError(f"{output} holds a corpus prepared from other inputs or settings ({changed}); "
                              "use another --output, or remove it")
        if index.get("complete"):
            logger.info("corpus %s: already prepared (%d tokens)", output, index["tokens"])
            return output
        logger.info("corpus %s: continuing after %d shard(s)", output, len(index["shards"]))
    else:
        index = {**plan, "shards": [], "position": [0, 0], "documents": 0, "tokens": 0, "max_id": -1,
                 "complete": False}
    created = not output.exists()
    output.mkdir(parents=True, exist_ok=True)
    for leftover in output.glob(".shard-*tmp"):
        leftover.unlink()
    if not (output / TOKENIZER_DIR).is_dir():
        tokenizer.save_pretrained(output / TOKENIZER_DIR)
    writer = _ShardWriter(output, index, dtype, shard_tokens)
    try:
        _write_shards(inputs, tokenizer, writer, progress)
        if index["tokens"] == 0:
            raise CorpusError(f"the corpus ({', '.join(map(str, inputs))}) holds no text")
    except BaseException:
        writer.abort()
        if not index_path.is_file():  # nothing finished: leave nothing behind
            shutil.rmtree(output / TOKENIZER_DIR, ignore_errors=True)
            if created:
                shutil.rmtree(output, ignore_errors=True)
        raise
    return output


def _write_shards(inputs: Sequence[Path], tokenizer: Any, writer: _ShardWriter, progress: bool) -> None:
    """Every document of the inputs not yet in a finished shard, into the writer."""
    first_input, skip = writer.position
    # A context manager: the bar's last line is out before an error line (which must be the last on stderr).
    with tqdm(desc="prepare corpus", unit="doc", disable=not progress, dynamic_ncols=True) as bar:
        for number in range(first_input, len(inputs)):
            documents = read_documents(inputs[number])
            consumed = skip if number == first_input else 0
            for _ in range(consumed):  # documents already in finished shards
                next(documents, None)
            batch: list[str] = []
            for document in documents:
                batch.append(document)
                if len(batch) == DOCUMENTS_PER_BATCH:
                    consumed += len(batch)
                    writer.add(_tokenize(batch, tokenizer), (number, consumed))
                    bar.update(len(batch))
                    batch = []
            consumed += len(batch)
            if batch:
                writer.add(_tokenize(batch, tokenizer), (number, consumed))
                bar.update(len(batch))
            writer.position = (number + 1, 0)
    writer.finish()


def _tokenize(documents: list[str], tokenizer: Any) -> list[np.ndarray]:
    """Ids of each document without special tokens (long documents piece by piece)."""
    texts: list[str] = []
    owner: list[int] = []
    for i, document in enumerate(documents):
        for piece in pieces(document):
            texts.append(piece)
            owner.append(i)
    encodings = tokenizer.encode_batch(texts, max_seq_len=2**31 - 1)
    result: list[list[int]] = [[] for _ in documents]
    for i, encoding in zip(owner, encodings, strict=True):
        result[i].extend(encoding.input_ids[1:-1])  # [CLS] … [SEP] off
    return [np.asarray(ids, dtype=np.int64) for ids in result]


class _ShardWriter:
    """Appends documents to the open shard; finishes a shard (rename + index) at a document boundary."""

    def __init__(self, folder: Path, index: dict[str, Any], dtype: type, shard_tokens: int) -> None:
        self.folder, self.index, self.dtype, self.shard_tokens = folder, index, dtype, shard_tokens
        self.position: tuple[int, int] = tuple(index["position"])
        self.file: IO[bytes] | None = None
        self.ends: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.tokens = self.documents = 0
        self.max_id = -1

    def _tmp(self) -> Path:
        return self.folder / f".shard-{len(self.index['shards']):05d}.tmp"

    def _tmp_ends(self) -> Path:
        return self.folder / f".shard-{len(self.index['shards']):05d}.idx.tmp"

    def add(self, documents: list[np.ndarray], position: tuple[int, int]) -> None:
        if self.file is None:
            self.file = open(self._tmp(), "wb")
            self.ends = open(self._tmp_ends(), "wb")
        assert self.ends is not None  # opened with the shard file
        for ids in documents:
            if not len(ids):
                continue
            stored: np.ndarray = ids.astype(self.dtype)
            stored.tofile(self.file)
            self.digest.update(stored.tobytes())
            self.tokens += len(ids)
            self.documents += 1
            np.asarray([self.tokens], dtype=np.int64).tofile(self.ends)
            self.max_id = max(self.max_id, int(ids.max()))
        self.position = position
        if self.tokens >= self.shard_tokens:
            self._close_shard()

    def _close_shard(self) -> None:
        assert self.file is not None and self.ends is not None
        for f in (self.file, self.ends):
            f.flush()
            os.fsync(f.fileno())
            f.close()
        self.file = self.ends = None
        if self.tokens:
            name = f"shard-{len(self.index['shards']):05d}.bin"
            os.replace(self._tmp_ends(), self.folder / name.replace(".bin", ".idx"))
            os.replace(self._tmp(), self.folder / name)
            self.index["shards"].append({"file": name, "tokens": self.tokens, "documents": self.documents,
                                         "sha256": self.digest.hexdigest()})
            self.index["tokens"] += self.tokens
            self.index["documents"] += self.documents
            self.index["max_id"] = max(self.index["max_id"], self.max_id)
        else:
            self._tmp().unlink(missing_ok=True)
            self._tmp_ends().unlink(missing_ok=True)
        self.index["position"] = list(self.position)
        self.tokens = self.documents = 0
        self.max_id = -1
        self.digest = hashlib.sha256()
        if self.index["tokens"]:
            write_json(self.folder / INDEX_FILE, self.index)

    def abort(self) -> None:
        """Drop the unfinished shard (an interrupted preparation continues after the last finished one)."""
        for f in (self.file, self.ends):
            if f is not None:
                f.close()
        self.file = self.ends = None
        self._tmp().unlink(missing_ok=True)
        self._tmp_ends().unlink(missing_ok=True)

    def finish(self) -> None:
        if self.file is not None:
            self._close_shard()
        self.index["position"] = list(self.position)
        self.index["complete"] = True
        if self.index["tokens"]:
            write_json(self.folder / INDEX_FILE, self.index)


def _read_index(path: Path) -> dict[str, Any]:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorpusError(f"{path}: not a corpus index ({err})") from None
    if (not isinstance(index, dict) or index.get("version") != CORPUS_VERSION
            or not isinstance(index.get("shards"), list)):
        raise CorpusError(f"{path}: not a corpus index of this package (version {CORPUS_VERSION})")
    return index


def is_corpus(path: Path) -> bool:
    """Whether ``path`` is a prepared corpus folder."""
    return (path / INDEX_FILE).is_file()


@dataclass
class Corpus:
    """A prepared corpus folder, read-only; shards are memory-mapped on first use in each process."""

    folder: Path
    index: dict[str, Any]

    @classmethod
    def open(cls, folder: str | Path) -> Corpus:
        """The corpus in ``folder``; a :class:`CorpusError` unless its preparation is complete and whole."""
        folder = Path(folder)
        index = _read_index(folder / INDEX_FILE)
        if not index.get("complete"):
            raise CorpusError(f"{folder}: its preparation did not finish; run prepare_corpus again to continue it")
        itemsize = np.dtype(index["dtype"]).itemsize
        for shard in index["shards"]:
            path = folder / shard["file"]
            ends = path.with_suffix(".idx")
            if (not path.is_file() or path.stat().st_size != shard["tokens"] * itemsize
                    or not ends.is_file() or ends.stat().st_size != shard["documents"] * 8):
                raise CorpusError(f"{path}: missing or of the wrong size; prepare the corpus again")
        return cls(folder, index)

    @property
    def tokenizer_dir(self) -> Path:
        return self.folder / TOKENIZER_DIR

    def made_with(self, tokenizer: Any) -> bool:
        """Whether ``tokenizer`` is the one the shards were made with (by its fingerprint)."""
        return fingerprint_of(tokenizer) == self.index["tokenizer_fingerprint"]

    def check_tokenizer(self, tokenizer: Any) -> None:
        """A :class:`CorpusError` unless ``tokenizer`` is the one the shards were made with."""
        if not self.made_with(tokenizer) or self.index["max_id"] >= tokenizer.vocab_size:
            raise CorpusError(f"the vocabulary ({tokenizer.vocab_size} ids) does not match the shards of {self.folder} "
                              f"(made with {self.index['vocab_size']} ids); prepare the corpus with this tokenizer")

    def document_ends(self, number: int) -> np.ndarray:
        """(documents,) int64 end of each document in shard ``number``'s ids."""
        shard = self.index["shards"][number]
        path = self.folder / shard["file"].replace(".bin", ".idx")
        return np.memmap(path, dtype=np.int64, mode="r", shape=(shard["documents"],))

    def open_shard(self, number: int) -> BinaryIO:
        """Shard ``number``'s file, unbuffered: :class:`CorpusWindows` reads each window with one read."""
        return open(self.folder / self.index["shards"][number]["file"], "rb", buffering=0)


class CorpusWindows:
    """Training windows ``[CLS] body [SEP]`` of a corpus: a map-style dataset for the engine."""

    def __init__(self, corpus: Corpus, max_seq_len: int, cls_id: int, sep_id: int) -> None:
        self.corpus, self.cls_id, self.sep_id = corpus, cls_id, sep_id
        self.body = max_seq_len - 2
        if corpus.index["tokens"] < self.body:
            raise CorpusError(f"the corpus {corpus.folder} holds {corpus.index['tokens']} tokens, less than one "
                              f"window of {self.body} (--max_seq_len {max_seq_len} less [CLS] and [SEP])")
        # The table is sized once and filled shard by shard: what grows with the corpus is the table alone
        # (6 bytes a window), the temporaries of one shard's documents are bounded by the shard size.
        shards = range(len(corpus.index["shards"]))
        counts = [int(self._windows_per_document(corpus.document_ends(n)).sum()) for n in shards]
        self.shard_bounds = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        largest_shard = max(shard["tokens"] for shard in corpus.index["shards"])
        self.starts = np.empty(self.shard_bounds[-1], dtype=np.uint32 if largest_shard < 2**32 else np.int64)
        self.lengths = np.empty(self.shard_bounds[-1], dtype=np.uint16 if self.body < 2**16 else np.uint32)
        for number in shards:
            doc_ends = np.asarray(corpus.document_ends(number))
            doc_starts = np.concatenate([[0], doc_ends[:-1]])
            count = self._windows_per_document(doc_ends)
            first = np.repeat(np.cumsum(count) - count, count)
            start = np.repeat(doc_starts, count) + self.body * (np.arange(int(count.sum())) - first)
            window = slice(self.shard_bounds[number], self.shard_bounds[number + 1])
            self.starts[window] = start
            self.lengths[window] = np.minimum(start + self.body, np.repeat(doc_ends, count)) - start
        self.dtype = np.dtype(corpus.index["dtype"])
        self._files: dict[int, BinaryIO] = {}  # opened on first use in each process

    def _windows_per_document(self, doc_ends: np.ndarray) -> np.ndarray:
        """Windows of each document of a shard, from the documents' ends."""
        doc_ends = np.asarray(doc_ends)
        return -(-np.diff(doc_ends, prepend=0) // self.body)

    def __len__(self) -> int:
        return len(self.starts)

    def __getstate__(self) -> dict[str, Any]:  # workers open their own files
        return {**self.__dict__, "_files": {}}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} of {len(self)}")
        number = int(np.searchsorted(self.shard_bounds, index, side="right")) - 1
        file = self._files.get(number)
        if file is None:
            file = self._files[number] = self.corpus.open_shard(number)
        length = int(self.lengths[index])
        file.seek(int(self.starts[index]) * self.dtype.itemsize)
        ids = np.empty(length + 2, dtype=np.int64)
        ids[0], ids[-1] = self.cls_id, self.sep_id
        ids[1:-1] = np.frombuffer(file.read(length * self.dtype.itemsize), dtype=self.dtype)
        return {"index": index, "input_ids": ids, "type_ids": np.zeros(len(ids), dtype=np.int64)}
