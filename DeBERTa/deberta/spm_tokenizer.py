"""The SentencePiece tokenizer of DeBERTa v2, v3 and mDeBERTa, and the builder of such vocabularies.

The ids are the SentencePiece model's own piece ids, laid out the DeBERTa way:

- ids 0-3: ``[PAD]``, ``[CLS]``, ``[SEP]``, ``[UNK]`` (the model's pad, bos, eos and unk pieces);
- then the model's pieces (byte-fallback pieces ``<0x00>`` … first in the v3 model);
- ``[MASK]`` = the number of pieces (128000 for v3: the released configs then have 100 spare rows);
- then special tokens added later (``add_special_token``).

Text goes through ``sentencepiece`` itself (batched over all cores in C++): its normalisation (NFKC for
v2/v3), its segmentation and its character offsets, so the ids are those of ``SentencePieceProcessor.encode``.
What the original DeBERTa tokenizer adds on top is done here: ``do_lower_case`` lowercases before
SentencePiece (as transformers' DebertaV2Tokenizer does), ``split_by_punct`` cuts the text at every
punctuation character and encodes each part on its own. Literal ``[CLS]``, ``[SEP]``, ``[MASK]`` in text
are plain text (SentencePiece never produces its control pieces from text).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sentencepiece

from .tokenizer import (
    _LEADING_SPECIALS,
    CLS,
    HF_SPECIAL_TOKENS,
    HF_SPECIAL_TOKENS_FILE,
    HF_TOKENIZER_CONFIG_FILE,
    HF_TOKENIZER_FILE,
    MASK,
    PAD,
    SEP,
    UNK,
    PathLike,
    TextEncoding,
    TokenizerBase,
    TokenizerError,
    _corpus_texts,
    read_tokenizer_config,
    word_ids_of,
    write_file_atomic,
    write_json_atomic,
)

__all__ = ["SPM_MODEL_FILE", "SPMTokenizer", "build_spm_vocab"]

SPM_MODEL_FILE = "spm.model"

# Bumped whenever tokenization output could change for the same files (see GPT2Tokenizer.fingerprint).
_FINGERPRINT_VERSION = "deberta-spm/1"
_WORD_START = "\u2581"  # SentencePiece's '▁': the whitespace before a word
# Where save_pretrained lists the special tokens added after [MASK] (transformers' name for them).
_ADDED_SPECIALS_KEY = "additional_special_tokens"


def _is_punctuation(char: str) -> bool:
    """BERT's punctuation: Unicode P* and every ASCII character that is neither letter, digit, space nor control
    (so ``$ ^ ` + < = > | ~`` count), as the original DeBERTa tokenizer splits with ``split_by_punct``."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _punctuation_chunks(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` cut before and after every punctuation character (each one a chunk of its own)."""
    chunks: list[tuple[int, int]] = []
    start = 0
    for index, char in enumerate(text):
        if _is_punctuation(char):
            if start < index:
                chunks.append((start, index))
            chunks.append((index, index + 1))
            start = index + 1
    if start < len(text):
        chunks.append((start, len(text)))
    return chunks


def _lowercase(text: str) -> tuple[str, list[int] | None]:
    """``text.lower()`` and, where lowercasing changed the length ('İ' → 'i̇'), the original index of each
    character of the result (None: the same index)."""
    lowered = text.lower()
    if len(lowered) == len(text):  # lowercasing never shortens a character, so each maps to one
        return lowered, None
    owner = [index for index, char in enumerate(text) for _ in range(len(char.lower()))]
    return lowered, owner


class SPMTokenizer(TokenizerBase):
    """DeBERTa v2/v3's SentencePiece tokenizer; the same interface as :class:`GPT2Tokenizer`.

    Args:
        vocab_file: an ``spm.model`` file, or a folder holding one.
        do_lower_case: lowercase text before SentencePiece. None: as the ``tokenizer_config.json`` beside the
            model says, else False (the released v2/v3 models are cased).
        special_tokens: extra special tokens appended after ``[MASK]`` (see :meth:`add_special_token`).
        split_by_punct: encode the parts of the text between punctuation characters (and each punctuation
            character) separately, as the original with ``split_by_punct``. None: as ``tokenizer_config.json``
            says, else False (the released configs).

    Raises :class:`TokenizerError` (one line) for a missing or unreadable model, or one whose ids 0-3 are not
    ``[PAD] [CLS] [SEP] [UNK]``.
    """

    def __init__(
        self,
        vocab_file: PathLike,
        do_lower_case: bool | None = None,
        special_tokens: Iterable[str] | None = None,
        split_by_punct: bool | None = None,
    ) -> None:
        path = Path(vocab_file)
        model_file = path / SPM_MODEL_FILE if path.is_dir() else path
        if not model_file.is_file():
            where = f"{path} holds no {SPM_MODEL_FILE}" if path.is_dir() else f"{path}: no such file"
            raise TokenizerError(f"SentencePiece model not found: {where}")
        try:
            model_bytes = model_file.read_bytes()
        except OSError as err:
            raise TokenizerError(f"cannot read SentencePiece model {model_file}: {err.strerror}") from None
        config = read_tokenizer_config(model_file.parent)
        saved_specials = config.get(_ADDED_SPECIALS_KEY, [])
        if not (isinstance(saved_specials, list) and all(isinstance(token, str) for token in saved_specials)):
            raise TokenizerError(f"{model_file.parent / HF_TOKENIZER_CONFIG_FILE}: {_ADDED_SPECIALS_KEY} must be a "
                                 "list of strings")
        self._setup(
            model_bytes,
            str(model_file),
            bool(config.get("do_lower_case", False)) if do_lower_case is None else do_lower_case,
            bool(config.get("split_by_punct", False)) if split_by_punct is None else split_by_punct,
            [*saved_specials, *(special_tokens or ())],
        )

    @classmethod
    def from_model_proto(
        cls,
        model_bytes: bytes,
        do_lower_case: bool = False,
        special_tokens: Iterable[str] | None = None,
        split_by_punct: bool = False,
    ) -> SPMTokenizer:
        """A tokenizer for the serialized SentencePiece model ``model_bytes`` (the content of an spm.model)."""
        tokenizer = cls.__new__(cls)
        tokenizer._setup(model_bytes, "the SentencePiece model", do_lower_case, split_by_punct, special_tokens)
        return tokenizer

    def _setup(
        self,
        model_bytes: bytes,
        source: str,
        do_lower_case: bool,
        split_by_punct: bool,
        special_tokens: Iterable[str] | None,
    ) -> None:
        self.do_lower_case = do_lower_case
        self.split_by_punct = split_by_punct
        self._model_bytes = model_bytes
        self._load(source)
        piece_count = self._processor.get_piece_size()
        self.symbols: list[str] = list(self._processor.id_to_piece(list(range(piece_count))))
        if tuple(self.symbols[: len(_LEADING_SPECIALS)]) != _LEADING_SPECIALS:
            raise TokenizerError(
                f"{source} is not a DeBERTa SentencePiece model: ids 0-3 are {self.symbols[:4]}, not "
                f"{list(_LEADING_SPECIALS)} (build one with python -m DeBERTa.apps.build_vocab --type spm)"
            )
        self.piece_count = piece_count
        self.indices: dict[str, int] = {symbol: i for i, symbol in enumerate(self.symbols)}
        self.special_tokens: list[str] = [MASK, SEP, PAD, UNK, CLS]
        self.mask_id = self._add_symbol(MASK)
        for token in special_tokens or ():
            self.add_special_token(token)
        self._name_tables()
        self._blank: dict[str, bool] = {}
        self._fingerprint: str | None = None

    def _load(self, source: str) -> None:
        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(self._model_bytes)
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else "unreadable"
            if "ParseFromArray" in reason:  # sentencepiece names its source line, not the problem
                reason = f"{len(self._model_bytes)} bytes that are no SentencePiece model, or a damaged one"
            raise TokenizerError(f"{source} is not a readable SentencePiece model ({reason})") from None
        self._processor = processor

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_processor"]  # a C++ object: rebuilt from the model bytes
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load("the pickled SentencePiece model")

    # -- vocabulary -----------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of ids: the pieces, ``[MASK]`` and added special tokens (128001 for v3)."""
        return len(self.symbols)

    @property
    def vocab_type(self) -> str:
        """``spm``: the name of this kind of vocabulary in the original release's configs."""
        return "spm"

    @property
    def model_bytes(self) -> bytes:
        """The serialized SentencePiece model (the content of ``spm.model``)."""
        return self._model_bytes

    def _add_symbol(self, token: str) -> int:
        if token not in self.indices:
            self.indices[token] = len(self.symbols)
            self.symbols.append(token)
            self._fingerprint = None
        return self.indices[token]

    def add_special_token(self, token: str) -> int:
        """Append a special token (kept out of :meth:`decode`) to the vocabulary; returns its id."""
        if token not in self.special_tokens:
            self.special_tokens.append(token)
        return self._add_symbol(token)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of everything that decides the ids: the model, the ids after it, the text options."""
        if self._fingerprint is None:
            payload = json.dumps(
                [
                    _FINGERPRINT_VERSION,
                    hashlib.sha256(self._model_bytes).hexdigest(),
                    self.do_lower_case,
                    self.split_by_punct,
                    self.symbols[self.piece_count :],
                ],
                ensure_ascii=False,
                separators=(",", ":"),
            )
            self._fingerprint = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        return self._fingerprint

    # -- the original API (checked in TokenizerBase) -----------------------------------------------------

    def _tokens(self, text: str) -> list[str]:
        """The pieces of ``text``, e.g. 'Hello world' -> ['▁Hello', '▁world'] (unknown text gives '[UNK]')."""
        symbols = self.symbols
        return [symbols[i] for i in self._ids([text])[0]]

    def _decode_tokens(self, tokens: list[str]) -> str:
        """Text of pieces, skipping special tokens (SentencePiece's decoding: '▁' becomes a space)."""
        return self._processor.decode_pieces([t for t in tokens if t not in self.special_tokens])

    def _part_of_whole_word(self, token: str) -> bool:
        """Whether ``token`` continues the word before it, so whole-word masking keeps them together.

        False for a piece that starts with '▁', is one whitespace, control or punctuation character, or
        is a special token; True otherwise.
        """
        if token in self.special_tokens:
            return False
        if len(token) == 1 and (
            token.isspace() or unicodedata.category(token).startswith("C") or _is_punctuation(token)
        ):
            return False
        return not token.startswith(_WORD_START)

    # -- model inputs -----------------------------------------------------------------------------------

    def _prepare(self, text: str) -> tuple[str, list[int] | None, list[tuple[int, int]]]:
        """What SentencePiece reads of ``text``: the (lowercased) text, the map back (see ``_lowercase``), and
        the spans of it that are encoded separately."""
        lowered, owner = _lowercase(text) if self.do_lower_case else (text, None)
        chunks = _punctuation_chunks(lowered) if self.split_by_punct else [(0, len(lowered))]
        return lowered, owner, chunks

    def _ids(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text, without special tokens (SentencePiece in C++ on all cores)."""
        if not (self.do_lower_case or self.split_by_punct):
            return self._processor.encode(texts)
        if not self.split_by_punct:
            return self._processor.encode([text.lower() for text in texts])
        prepared = [self._prepare(text) for text in texts]
        parts = self._encode_chunks([lowered[s:e] for lowered, _, chunks in prepared for s, e in chunks])
        result, index = [], 0
        for _, _, chunks in prepared:
            ids = [i for part in parts[index : index + len(chunks)] for i in part]
            result.append(ids)
            index += len(chunks)
        return result

    def _encode_with_offsets(self, texts: list[str], spans: int | None = None) -> list[TextEncoding]:
        """Ids, spans and words of each text (SentencePiece's offsets, batched in C++)."""
        prepared = [self._prepare(text) for text in texts]
        parts = self._encode_chunks(
            [lowered[s:e] for lowered, _, chunks in prepared for s, e in chunks], out_type="offset_mapping"
        )
        result, index = [], 0
        for text, (_, owner, chunks) in zip(texts, prepared, strict=True):
            ids: list[int] = []
            offsets: list[tuple[int, int]] = []
            for (chunk_start, _), part in zip(chunks, parts[index : index + len(chunks)], strict=True):
                ids += part["ids"]
                if chunk_start:
                    offsets += [(chunk_start + s, chunk_start + e) for s, e in part["offsets"]]
                else:
                    offsets += part["offsets"]
            index += len(chunks)
            offsets = self._tidy_spans(text, ids, offsets, owner, spans)
            result.append(TextEncoding(ids, offsets, word_ids_of(text, offsets)))
        return result

    def _encode_chunks(self, chunks: list[str], **options: Any) -> list[Any]:
        """``SentencePieceProcessor.encode`` of each text, each distinct text once: punctuation splitting makes
        many equal ones (every comma), and a text of two million punctuation characters two million."""
        distinct = list(dict.fromkeys(chunks))
        if len(distinct) == len(chunks):
            return self._processor.encode(chunks, **options)
        encoded = dict(zip(distinct, self._processor.encode(distinct, **options), strict=True))
        return [encoded[chunk] for chunk in chunks]

    def _tidy_spans(
        self,
        text: str,
        ids: list[int],
        offsets: list[tuple[int, int]],
        owner: list[int] | None,
        count: int | None = None,
    ) -> list[tuple[int, int]]:
        """SentencePiece's spans, trimmed to the characters that make the token (see :class:`TextEncoding`).

        SentencePiece gives a word's first piece the whitespace before it (and characters its normalisation
        removes), and when one character becomes several pieces (byte fallback; NFKC: '⅓' → '1⁄3') it gives
        the last of them the character and the others nothing (or the whitespace before). Such pieces get
        the span of the piece after them, so every piece points at the character it came from.

        ``owner``: the map from the lowercased text back to ``text`` (see ``_lowercase``), None for none.
        ``count``: the spans of the first ``count`` tokens only (and of as many after them as they take theirs
        from), so a truncated long text costs what is kept.
        """
        length = len(text)

        def trimmed(index: int) -> tuple[int, int]:
            start, end = offsets[index]
            if owner is not None:
                start, end = _original_span(owner, start, end, length)
            return self._trim_blank(text, start, end)

        def takes_next(index: int, span: tuple[int, int]) -> bool:
            start, end = span
            # A trimmed span that starts with a blank character is blank throughout.
            return (start == end or self._is_blank(text[start])) and self._has_text(ids[index])

        total = len(offsets)
        stop = total if count is None else min(count, total)
        tidy = [trimmed(index) for index in range(stop)]
        while 0 < stop < total and takes_next(stop - 1, tidy[-1]):
            tidy.append(trimmed(stop))
            stop += 1
        for index in range(len(tidy) - 2, -1, -1):
            if takes_next(index, tidy[index]):
                tidy[index] = tidy[index + 1]
        return tidy if count is None else tidy[:count]

    def _has_text(self, piece_id: int) -> bool:
        """Whether a piece stands for more than whitespace (byte pieces do)."""
        return self._processor.is_byte(piece_id) or bool(self.symbols[piece_id].strip(_WORD_START))

    def _is_blank(self, char: str) -> bool:
        """Whether SentencePiece's normalisation turns ``char`` into nothing or whitespace."""
        blank = self._blank.get(char)
        if blank is None:
            blank = self._blank[char] = not self._processor.normalize(char).strip(_WORD_START)
        return blank

    def _trim_blank(self, text: str, start: int, end: int) -> tuple[int, int]:
        """``start:end`` without blank characters at either end, unless it holds nothing else."""
        if start < end and not (self._is_blank(text[start]) or self._is_blank(text[end - 1])):
            return start, end  # the common case: nothing to trim
        first, last = start, end
        while first < last and self._is_blank(text[first]):
            first += 1
        while last > first and self._is_blank(text[last - 1]):
            last -= 1
        return (first, last) if first < last else (start, end)

    # -- files ------------------------------------------------------------------------------------------

    def save_pretrained(self, directory: PathLike, *, model_max_length: int | None = None) -> Path:
        """Write ``spm.model`` and Hugging Face's tokenizer files into ``directory``; returns the directory.

        ``tokenizer.json`` is the tokenizer for the ``tokenizers`` library, built as transformers builds it
        from spm.model but with SentencePiece's byte fallback, ``[MASK]`` and the added special tokens after
        the pieces, and DeBERTa's ``[CLS] A [SEP] B [SEP]`` with type ids; ``tokenizer_config.json`` names the
        generic ``PreTrainedTokenizerFast``, which runs it as written, and keeps the original's
        ``vocab_type: spm``, ``do_lower_case`` and ``split_by_punct``; so
        ``transformers.AutoTokenizer.from_pretrained(directory)`` gives this tokenizer's ids and type ids
        without ``sentencepiece``, except that it matches ``[MASK]`` (and the other special tokens) in
        text, for fill-mask. ``model_max_length``: the longest input of the model the folder is for.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_file_atomic(directory / SPM_MODEL_FILE, self._model_bytes)
        fast = _fast_tokenizer(self)
        write_file_atomic(directory / HF_TOKENIZER_FILE, fast.to_str(pretty=True).encode("utf-8"))
        config: dict[str, Any] = {
            # The generic fast tokenizer runs tokenizer.json as written; transformers' DebertaV2Tokenizer would
            # rebuild the pipeline without SentencePiece's byte fallback ([UNK] for characters outside the
            # vocabulary, where SentencePiece and this tokenizer give their bytes).
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_input_names": ["input_ids", "token_type_ids", "attention_mask"],
            "do_lower_case": self.do_lower_case,
            "split_by_punct": self.split_by_punct,
            "vocab_type": self.vocab_type,
            **HF_SPECIAL_TOKENS,
        }
        added = [token for token in self.symbols[self.piece_count :] if token != MASK]
        if added:
            config[_ADDED_SPECIALS_KEY] = added
        if model_max_length is not None:
            config["model_max_length"] = model_max_length
        write_json_atomic(directory / HF_TOKENIZER_CONFIG_FILE, config)
        write_json_atomic(directory / HF_SPECIAL_TOKENS_FILE, HF_SPECIAL_TOKENS)
        return directory


def _original_span(owner: list[int], start: int, end: int, length: int) -> tuple[int, int]:
    """A span of the lowercased text as a span of the original (``owner``: see ``_lowercase``)."""
    first = owner[start] if start < len(owner) else length
    return (first, owner[end - 1] + 1) if end > start else (first, first)


def _fast_tokenizer(tokenizer: SPMTokenizer) -> Any:
    """The ``tokenizers`` pipeline that transformers' DebertaV2Tokenizer builds from the same spm.model.

    Unigram over the pieces and their scores (with byte fallback as the model has it), the model's
    precompiled normaliser, Metaspace pre-tokenisation, and DeBERTa's [CLS] A [SEP] (B [SEP]) template.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    try:
        from sentencepiece import sentencepiece_model_pb2
    except ImportError as err:  # the protobuf package is missing
        raise TokenizerError(f"writing {HF_TOKENIZER_FILE} needs the protobuf package ({err})") from None
    proto = sentencepiece_model_pb2.ModelProto.FromString(tokenizer.model_bytes)
    vocab = [(piece.piece, piece.score) for piece in proto.pieces]
    fast = Tokenizer(
        models.Unigram(vocab, unk_id=tokenizer.unk_token_id, byte_fallback=proto.trainer_spec.byte_fallback)
    )
    steps = [normalizers.Lowercase()] if tokenizer.do_lower_case else []
    if proto.normalizer_spec.precompiled_charsmap:
        steps.append(normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap))
    steps += [normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), " ")]
    fast.normalizer = normalizers.Sequence(steps)
    splits = [pre_tokenizers.Punctuation(behavior="isolated")] if tokenizer.split_by_punct else []
    splits.append(pre_tokenizers.Metaspace(replacement=_WORD_START, prepend_scheme="always"))
    fast.pre_tokenizer = pre_tokenizers.Sequence(splits)
    # '▁' back to spaces, byte pieces back to characters, then the space before the first word dropped.
    fast.decoder = decoders.Sequence(
        [decoders.Replace(_WORD_START, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    specials = [AddedToken(token, special=True) for token in (PAD, CLS, SEP, UNK)]
    specials += [AddedToken(token, special=True, lstrip=token == MASK) for token in tokenizer.symbols[len(vocab) :]]
    fast.add_special_tokens(specials)
    fast.post_processor = processors.TemplateProcessing(
        single=f"{CLS}:0 $A:0 {SEP}:0",
        pair=f"{CLS}:0 $A:0 {SEP}:0 $B:1 {SEP}:1",
        special_tokens=[(CLS, tokenizer.cls_token_id), (SEP, tokenizer.sep_token_id)],
    )
    return fast


# ---------------------------------------------------------------------------------------------------
# Building a vocabulary from a corpus


def build_spm_vocab(
    corpus: Iterable[str | os.PathLike[str]],
    vocab_size: int,
    *,
    model_type: str = "unigram",
    character_coverage: float = 0.9999,
    do_lower_case: bool = False,
    split_by_punct: bool = False,
    max_sentences: int = 10_000_000,
    seed: int = 0,
) -> SPMTokenizer:
    """Train a SentencePiece model with DeBERTa's layout on a corpus, as DeBERTa v3's was made.

    ``sentencepiece``'s trainer with the v3 model's settings (unigram, NFKC, byte fallback, whitespace,
    script and number splits) and ``[PAD] [CLS] [SEP] [UNK]`` as ids 0-3; ``[MASK]`` follows the
    ``vocab_size`` pieces. A corpus too small for ``vocab_size`` gives fewer pieces (the limit is soft).

    Args:
        corpus: texts (``str``) and/or files (``pathlib.Path`` or other ``os.PathLike``; UTF-8, one text
            per line). A plain ``str`` is always text, never a file name. Blank lines are skipped.
        vocab_size: number of pieces, the four special ones and 256 byte pieces included.
        model_type: ``unigram`` (v3) or ``bpe``.
        character_coverage: share of the corpus's characters that get pieces of their own (rarer ones are
            spelt in bytes).
        do_lower_case: train on lowercased text (use the same setting for the tokenizer; it is returned so).
        split_by_punct: the returned tokenizer's setting (training is not affected, as in the original).
        max_sentences: at most this many lines are used (a random sample when the corpus is larger).
        seed: the sampling seed.

    Returns the tokenizer; ``save_pretrained(folder)`` writes spm.model and its configs. Raises
    :class:`TokenizerError` when training fails (e.g. ``vocab_size`` below what the corpus's characters need).
    """
    if model_type not in ("unigram", "bpe"):
        raise TokenizerError(f"model_type must be unigram or bpe, not {model_type!r}")
    if vocab_size <= len(_LEADING_SPECIALS) + 256:
        raise TokenizerError(f"vocab_size {vocab_size} leaves no room beside the 4 special and 256 byte pieces")
    count = 0

    def sentences() -> Iterable[str]:
        nonlocal count
        for text in _corpus_texts(corpus):
            if text.strip():
                count += 1
                yield text.lower() if do_lower_case else text

    model = io.BytesIO()
    sentencepiece.set_random_generator_seed(seed)  # the sampling of a large corpus
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences()),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            normalization_rule_name="nmt_nfkc",
            byte_fallback=True,
            split_digits=False,
            hard_vocab_limit=False,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=True,
            num_threads=os.cpu_count() or 1,
            pad_id=0,
            pad_piece=PAD,
            bos_id=1,
            bos_piece=CLS,
            eos_id=2,
            eos_piece=SEP,
            unk_id=3,
            unk_piece=UNK,
            minloglevel=2,
        )
    except RuntimeError as err:
        if not count:
            raise TokenizerError("the corpus has no non-blank line") from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "failed"
        raise TokenizerError(f"SentencePiece training failed: {reason}") from None
    return SPMTokenizer.from_model_proto(model.getvalue(), do_lower_case=do_lower_case, split_by_punct=split_by_punct)
