"""SPMTokenizer, the tokenizer resolver and build_vocab --type spm, against independent references.

References: ``sentencepiece`` itself (the ids of single texts, with the original's lowercasing and
punctuation splitting rebuilt here with the ``regex`` module), and transformers' ``AutoTokenizer`` on a
folder holding the real DeBERTa-v3 ``spm.model`` and a tokenizer config (transformers converts it to its
own ``tokenizers`` pipeline). Texts: every text of ../shared's GLUE, SQuAD and CoNLL-2003 samples and
hand-picked hard cases: those tests skip when ../shared is absent. The resolver, the files, the errors and
build_vocab --type spm run on a small model trained here from a generated corpus.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
from pathlib import Path

import pytest
import shared_texts

from DeBERTa import deberta
from DeBERTa.apps import build_vocab as build_vocab_app
from DeBERTa.apps import models as app_models
from DeBERTa.deberta.tokenizer import Encoding, GPT2Tokenizer, TokenizerError

sentencepiece = pytest.importorskip("sentencepiece")

from DeBERTa.deberta.spm_tokenizer import SPMTokenizer, build_spm_vocab  # noqa: E402

SPACE_PIECE = "\u2581"
# The README's worked example of ../shared/spm-deberta-v3.
README_TEXT = "Hello world, DeBERTa-v3!"
README_IDS = [5365, 447, 261, 2060, 67943, 452, 271, 2179, 508, 300]


PROSE = """The quick brown fox jumps over the lazy dog while the committee reviews its annual report on
transport, housing and public health. Researchers in Paris, Tokyo and Nairobi published 42 papers about
tokenizers, language models and the history of printing; critics said: "it's fine, but we'd rather wait!"
Straße, café, naïve, İstanbul, ΟΔΟΣ and 漢字 appear too, with numbers like 3.14, 2024-02-29 and 1,000,000."""


def _folder(root: Path, model: Path, *, do_lower_case: bool = False, split_by_punct: bool = False) -> Path:
    """A model folder as released: spm.model and a tokenizer config (with the class transformers needs)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, root / "spm.model")
    config = {"do_lower_case": do_lower_case, "split_by_punct": split_by_punct, "vocab_type": "spm",
              "tokenizer_class": "DebertaV2Tokenizer"}
    (root / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def real_model() -> Path:
    """The released DeBERTa-v3 spm.model in ../shared."""
    if not shared_texts.SPM_MODEL.is_file():
        pytest.skip("../shared/spm-deberta-v3/spm.model is absent")
    return shared_texts.SPM_MODEL


@pytest.fixture(scope="module")
def texts(real_model: Path) -> list[str]:
    by_source = shared_texts.shared_texts()
    return sorted({text for group in by_source.values() for text in group})


@pytest.fixture(scope="module")
def sample(texts: list[str]) -> list[str]:
    """All hard cases and 2000 other texts: for the slower references."""
    return shared_texts.HARD_CASES + random.Random(0).sample(texts, 2000)


@pytest.fixture(scope="module")
def processor(real_model: Path):
    return sentencepiece.SentencePieceProcessor(model_file=str(real_model))


@pytest.fixture(scope="module")
def v3_folder(real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("v3"), real_model)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2000 lines of words drawn from PROSE and the hard cases (seeded): a corpus without ../shared."""
    # No literal [CLS], <0x41>, … (transformers' Unigram matches such piece names in text), and no run of 3000
    # x's: on such a run a small model has equally good segmentations, which tokenizers' Unigram and
    # sentencepiece break differently.
    words = [word for word in " ".join([PROSE, *shared_texts.HARD_CASES]).split()
             if not {"[", "<"} & set(word) and len(word) < 100]
    rng = random.Random(3)
    lines = [" ".join(rng.choices(words, k=rng.randint(3, 25))) for _ in range(2000)]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join([PROSE.replace("\n", " "), *lines]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_model(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """spm.model of a 500-piece model with DeBERTa's layout, trained on ``corpus``."""
    folder = build_spm_vocab([corpus], 500).save_pretrained(tmp_path_factory.mktemp("tiny"))
    return folder / "spm.model"


@pytest.fixture(scope="module")
def tiny_folder(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _folder(tmp_path_factory.mktemp("tiny_folder"), tiny_model)


@pytest.fixture(scope="module")
def tokenizer(v3_folder: Path) -> SPMTokenizer:
    return SPMTokenizer(v3_folder)


@pytest.fixture(scope="module")
def reference(v3_folder: Path):
    """transformers' tokenizer for the released layout (it converts spm.model itself: no tokenizer.json)."""
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(v3_folder))


def _reference_ids(processor, text: str, *, do_lower_case: bool, split_by_punct: bool) -> list[int]:
    """The original DeBERTa tokenizer's ids by hand: lowercase, cut at punctuation (BERT's definition: Unicode
    P* and ASCII symbols), each part through sentencepiece."""
    regex = pytest.importorskip("regex")
    if do_lower_case:
        text = text.lower()
    if not split_by_punct:
        return processor.encode(text)
    parts = regex.findall(r"[\p{P}!-/:-@\[-`{-~]|[^\p{P}!-/:-@\[-`{-~]+", text)
    return [i for part in parts for i in processor.encode(part)]


def _byte_or_literal_special(tokenizer: SPMTokenizer, text: str, ids: list[int]) -> bool:
    """The known differences of transformers: it builds the Unigram without byte fallback (characters outside
    the vocabulary become [UNK]), and it matches [CLS], [MASK], … and byte-piece names (<0x41>) in text."""
    return any(tokenizer._processor.is_byte(i) for i in ids) or any(
        token in text for token in ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<0x")
    )


# --- ids -----------------------------------------------------------------------------------------------------


def test_readme_worked_example_and_special_ids(tokenizer: SPMTokenizer) -> None:
    assert tokenizer.encode(README_TEXT) == Encoding([1, *README_IDS, 2], [0] * 12, [1] * 12)
    assert tokenizer.tokenize(README_TEXT) == ["▁Hello", "▁world", ",", "▁De", "BERT", "a", "-", "v", "3", "!"]
    assert (tokenizer.pad_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.unk_id) == (0, 1, 2, 3)
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]
    assert tokenizer.mask_id == tokenizer.mask_token_id == tokenizer.piece_count == 128000
    assert tokenizer.convert_tokens_to_ids(["[MASK]", "never-a-piece"]) == [128000, 3]
    assert tokenizer.vocab_size == 128001 and tokenizer.vocab_type == "spm"
    assert tokenizer.encode("", "") == Encoding([1, 2, 2], [0, 0, 1], [1, 1, 1])


def test_ids_equal_sentencepiece_on_every_text(tokenizer: SPMTokenizer, processor, texts: list[str]) -> None:
    every = texts + shared_texts.HARD_CASES
    assert tokenizer.encode_batch(every, max_seq_len=10**9) == [
        Encoding([1, *ids, 2], [0] * (len(ids) + 2), [1] * (len(ids) + 2)) for ids in processor.encode(every)
    ]
    for text in shared_texts.HARD_CASES:
        assert tokenizer.tokenize(text) == processor.encode(text, out_type=str), repr(text)


@pytest.mark.parametrize(("do_lower_case", "split_by_punct"), [(True, False), (False, True), (True, True)])
def test_lower_case_and_punctuation_split_as_the_original(
    v3_folder: Path, processor, sample: list[str], do_lower_case: bool, split_by_punct: bool
) -> None:
    tokenizer = SPMTokenizer(v3_folder, do_lower_case=do_lower_case, split_by_punct=split_by_punct)
    ours = tokenizer.encode_batch_with_offsets(sample)
    for text, mine in zip(sample, ours, strict=True):
        expected = _reference_ids(processor, text, do_lower_case=do_lower_case, split_by_punct=split_by_punct)
        assert mine.ids == expected, repr(text)
    assert [e.ids for e in ours] == [e.input_ids[1:-1] for e in tokenizer.encode_batch(sample, max_seq_len=10**9)]
    if do_lower_case:
        assert tokenizer.tokenize("HeLLo İstanbul") == processor.encode("hello i̇stanbul", out_type=str)
    if split_by_punct:
        assert tokenizer.tokenize("fights, he's") == ["▁fights", "▁,", "▁he", "▁'", "▁s"]


def test_literal_special_tokens_are_plain_text(tokenizer: SPMTokenizer, processor) -> None:
    text = "[CLS] x [SEP] y [MASK] z [PAD] [UNK]"
    ids = tokenizer.encode(text).input_ids
    assert ids == [1, *processor.encode(text), 2]
    assert not {0, 1, 2, 3, tokenizer.mask_id} & set(ids[1:-1])


def test_single_texts_equal_transformers(reference, tokenizer: SPMTokenizer, texts: list[str]) -> None:
    assert len(reference) == tokenizer.vocab_size and reference.mask_token_id == tokenizer.mask_id
    ours = tokenizer.encode_batch(texts)
    theirs = reference(texts, truncation=True, max_length=512)
    known = 0
    for text, mine, input_ids, type_ids in zip(texts, ours, theirs["input_ids"], theirs["token_type_ids"], strict=True):
        if (mine.input_ids, mine.token_type_ids) != (input_ids, type_ids):
            assert _byte_or_literal_special(tokenizer, text, mine.input_ids), repr(text)
            known += 1
    assert known < 20  # a handful of texts with rare CJK characters or control characters


@pytest.mark.parametrize(("do_lower_case", "split_by_punct"), [(True, False), (False, True), (True, True)])
def test_settings_equal_transformers(
    real_model: Path, tmp_path: Path, sample: list[str], do_lower_case: bool, split_by_punct: bool
) -> None:
    transformers = pytest.importorskip("transformers")
    folder = _folder(tmp_path, real_model, do_lower_case=do_lower_case, split_by_punct=split_by_punct)
    reference = transformers.AutoTokenizer.from_pretrained(str(folder))
    tokenizer = deberta.load_tokenizer(folder)  # the settings come from the folder's tokenizer_config.json
    assert (tokenizer.do_lower_case, tokenizer.split_by_punct) == (do_lower_case, split_by_punct)
    space = tokenizer.convert_tokens_to_ids([SPACE_PIECE])[0]
    theirs = reference(sample, add_special_tokens=False)["input_ids"]
    for text, mine, other in zip(sample, tokenizer.encode_batch_with_offsets(sample), theirs, strict=True):
        if _byte_or_literal_special(tokenizer, text, mine.ids):
            continue
        if do_lower_case and text.lower().count("ς") > text.count("ς"):
            continue  # Python's lower() (the original's) writes a word-final Σ as ς; the tokenizers library σ
        if split_by_punct:
            # transformers splits 'fights ,' into '▁fights', '▁', '▁,' where the original (SentencePiece on
            # each part) has no lone '▁': the only difference.
            mine_ids, other = [i for i in mine.ids if i != space], [i for i in other if i != space]
            assert mine_ids == other, repr(text)
        else:
            assert mine.ids == other, repr(text)


def _longest_first(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """transformers' (the tokenizers library's) longest_first, as its source states it: the shorter segment
    n1 stays whole and the longer is cut to max(n1, budget - n1); if that is still too long, n1 = budget // 2
    and the longer gets the rest."""
    if len_a + len_b <= budget:
        return len_a, len_b
    n1, n2 = sorted((len_a, len_b))
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1, n2 = budget // 2, budget // 2 + budget % 2
    return (n2, n1) if len_a > len_b else (n1, n2)


@pytest.mark.parametrize("max_seq_len", [64, 128, 10**9])
def test_pairs_equal_transformers(reference, tokenizer: SPMTokenizer, processor, max_seq_len: int) -> None:
    pairs = shared_texts.glue_pairs() + random.Random(1).sample(shared_texts.squad_pairs(), 300)
    texts_a, texts_b = [a for a, _ in pairs], [b for _, b in pairs]
    ours = tokenizer.encode_batch(texts_a, texts_b, max_seq_len=max_seq_len)
    limit = {} if max_seq_len > 10**6 else {"truncation": "longest_first", "max_length": max_seq_len}
    theirs = reference(texts_a, texts_b, **limit)
    ids_a, ids_b = processor.encode(texts_a), processor.encode(texts_b)
    known = 0
    for i, mine in enumerate(ours):
        len_a, len_b = _longest_first(len(ids_a[i]), len(ids_b[i]), max_seq_len - 3)
        assert mine.input_ids == [1, *ids_a[i][:len_a], 2, *ids_b[i][:len_b], 2]
        assert mine.token_type_ids == [0] * (len_a + 2) + [1] * (len_b + 1)
        if (mine.input_ids, mine.token_type_ids) != (theirs["input_ids"][i], theirs["token_type_ids"][i]):
            assert _byte_or_literal_special(tokenizer, texts_a[i] + texts_b[i], mine.input_ids), pairs[i]
            known += 1
    assert known < 10
    if max_seq_len > 10**6:
        assert all(len(e.input_ids) == len(ids_a[i]) + len(ids_b[i]) + 3 for i, e in enumerate(ours))


def test_decode_and_part_of_whole_word(tokenizer: SPMTokenizer, processor) -> None:
    text = "Hello   world, ﬁne １２３ 漢字 😀"
    assert tokenizer.decode(tokenizer.tokenize(text)) == processor.decode(processor.encode(text))
    assert tokenizer.decode_ids(tokenizer.encode(text).input_ids) == processor.decode(processor.encode(text))
    assert [tokenizer.part_of_whole_word(t) for t in ["▁De", "BERT", ",", "[MASK]", "a"]] == [
        False, True, False, False, True,
    ]  # fmt: skip
    assert tokenizer.part_of_whole_word("▁De", is_bos=True)


def test_add_special_token_and_pickle(tiny_folder: Path) -> None:
    plain = SPMTokenizer(tiny_folder)
    tokenizer = SPMTokenizer(tiny_folder, special_tokens=["[E1]"])
    assert plain.mask_id == plain.piece_count == 500 and tokenizer.convert_tokens_to_ids(["[E1]"]) == [501]
    assert tokenizer.add_special_token("[E2]") == 502 and tokenizer.vocab_size == 503
    assert tokenizer.decode([*tokenizer.tokenize("the"), "[E1]", *tokenizer.tokenize("fox")]) == "the fox"
    copy = pickle.loads(pickle.dumps(tokenizer))
    assert copy.fingerprint == tokenizer.fingerprint
    assert copy.encode_batch([README_TEXT], ["[E1] x"]) == tokenizer.encode_batch([README_TEXT], ["[E1] x"])
    assert plain.fingerprint != tokenizer.fingerprint
    assert pickle.loads(pickle.dumps(plain)).fingerprint == plain.fingerprint
    assert SPMTokenizer(tiny_folder, do_lower_case=True).fingerprint != plain.fingerprint


# --- files ---------------------------------------------------------------------------------------------------


def test_save_pretrained_loads_here_and_in_transformers(
    real_model: Path, tokenizer: SPMTokenizer, sample: list[str], tmp_path: Path
) -> None:
    saved = SPMTokenizer(real_model, special_tokens=["[E1]"]).save_pretrained(
        tmp_path / "saved", model_max_length=512
    )
    assert {p.name for p in saved.iterdir()} == {
        "spm.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    }  # fmt: skip
    assert (saved / "spm.model").read_bytes() == real_model.read_bytes()
    config = json.loads((saved / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["vocab_type"] == "spm" and config["do_lower_case"] is False and config["model_max_length"] == 512
    again = deberta.load_tokenizer(saved)
    assert isinstance(again, SPMTokenizer) and again.symbols[-2:] == ["[MASK]", "[E1]"]
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(saved))
    assert reference.convert_tokens_to_ids(["[MASK]", "[E1]"]) == [128000, 128001]
    plain = [t for t in sample if not _byte_or_literal_special(tokenizer, t, [])]
    half = len(plain) // 2
    theirs = reference(plain[:half], plain[half : 2 * half], truncation="longest_first", max_length=128)
    ours = tokenizer.encode_batch(plain[:half], plain[half : 2 * half], max_seq_len=128)
    assert theirs["input_ids"] == [e.input_ids for e in ours]
    assert theirs["token_type_ids"] == [e.token_type_ids for e in ours]
    # The tokenizer.json written here keeps SentencePiece's byte fallback (transformers' own conversion
    # does not): characters outside the vocabulary get the same byte pieces.
    rare = "Rare: 𠀋𡈽 汶川 \x00"
    assert reference(rare)["input_ids"] == tokenizer.encode(rare).input_ids


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "absent.model", "no such file"),
        (lambda d: d, "holds no spm.model"),
        (lambda d: _write(d / "spm.model", b"not a model"), "not a readable SentencePiece model"),
        (lambda d: _write(d / "spm.model", b""), "not a readable SentencePiece model"),
        (lambda d: _renamed_pieces(d), "not a DeBERTa SentencePiece model"),
    ],
)
def test_bad_model_gives_one_line_error(make, message: str, tmp_path: Path, tiny_model: Path) -> None:
    shutil.copyfile(tiny_model, tmp_path / "tiny.model")
    with pytest.raises(TokenizerError, match=message) as caught:
        SPMTokenizer(make(tmp_path))
    assert "\n" not in str(caught.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _renamed_pieces(folder: Path) -> Path:
    """A SentencePiece model with the usual <unk> <s> </s> layout instead of DeBERTa's."""
    model_pb2 = pytest.importorskip("sentencepiece.sentencepiece_model_pb2")
    proto = model_pb2.ModelProto.FromString((folder / "tiny.model").read_bytes())
    for index, piece in enumerate(["<pad>", "<s>", "</s>", "<unk>"]):
        proto.pieces[index].piece = piece
    proto.trainer_spec.unk_piece, proto.trainer_spec.bos_piece = "<unk>", "<s>"
    proto.trainer_spec.eos_piece, proto.trainer_spec.pad_piece = "</s>", "<pad>"
    return _write(folder / "other.model", proto.SerializeToString())


# --- the resolver ---------------------------------------------------------------------------------------------


def _gpt2_folder(folder: Path) -> Path:
    """A tiny GPT-2 vocabulary folder (no GPT-2 files needed): four bytes and one merge."""
    from DeBERTa.deberta.tokenizer import BPEVocabulary

    vocabulary = BPEVocabulary({"a": 0, "b": 1, "Ġ": 2, "ab": 3}, [("a", "b")], [("0", 1), ("1", 1), ("2", 1)])
    return GPT2Tokenizer(vocabulary).save_pretrained(folder)


def test_resolver_picks_the_tokenizer_of_a_folder(tiny_folder: Path, tiny_model: Path, tmp_path: Path) -> None:
    assert isinstance(deberta.load_tokenizer(tiny_folder), SPMTokenizer)
    assert isinstance(deberta.load_tokenizer(tiny_folder / "spm.model", "spm"), SPMTokenizer)
    assert isinstance(deberta.load_tokenizer(str(tiny_folder), "auto"), SPMTokenizer)
    gpt2 = _gpt2_folder(tmp_path / "gpt2")
    assert isinstance(deberta.load_tokenizer(gpt2), GPT2Tokenizer)
    assert isinstance(deberta.load_tokenizer(gpt2 / "bpe_encoder.bin", "gpt2"), GPT2Tokenizer)
    (gpt2 / "bpe_encoder.bin").unlink()  # vocab.json + merges.txt alone
    assert isinstance(deberta.load_tokenizer(gpt2, "gpt2"), GPT2Tokenizer)
    both = _folder(tmp_path / "both", tiny_model)
    shutil.copyfile(gpt2 / "vocab.json", both / "vocab.json")
    shutil.copyfile(gpt2 / "merges.txt", both / "merges.txt")
    assert isinstance(deberta.load_tokenizer(both), SPMTokenizer)  # its tokenizer_config.json says spm


@pytest.mark.parametrize(
    ("setup", "vocab_type", "message"),
    [
        ("spm", "gpt2", "vocab_type gpt2 does not match .*spm.model"),
        ("gpt2", "spm", "vocab_type spm does not match"),
        ("empty", None, "holds no tokenizer"),
        ("both_unsaid", None, "holds both spm.model and a GPT-2 vocabulary"),
        ("config_lies", None, "says vocab_type gpt2 but .* holds no bpe_encoder.bin"),
        ("spm", "sentencepiece", "vocab_type must be auto, gpt2 or spm"),
        ("absent", None, "no such file or folder, and not a model name"),
    ],
)
def test_resolver_errors_are_one_line(
    setup: str, vocab_type: str | None, message: str, tmp_path: Path, tiny_model: Path
) -> None:
    folder = tmp_path / "model"
    if setup in ("spm", "both_unsaid", "config_lies"):
        _folder(folder, tiny_model)
    if setup == "gpt2":
        _gpt2_folder(folder)
    if setup == "empty":
        folder.mkdir()
    if setup == "both_unsaid":
        (folder / "tokenizer_config.json").unlink()
        _gpt2_folder(tmp_path / "gpt2")
        shutil.copyfile(tmp_path / "gpt2" / "bpe_encoder.bin", folder / "bpe_encoder.bin")
    if setup == "config_lies":
        (folder / "tokenizer_config.json").write_text('{"vocab_type": "gpt2"}', encoding="utf-8")
    with pytest.raises(TokenizerError, match=message) as caught:
        deberta.load_tokenizer(folder, vocab_type)
    assert "\n" not in str(caught.value)


def test_resolver_fetches_only_the_tokenizer_of_a_name(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub_server import HubServer

    with HubServer() as server:
        server.add_file("microsoft/deberta-v3-base", "spm.model", tiny_model.read_bytes())
        server.add_file("microsoft/deberta-v3-base", "tokenizer_config.json", b'{"do_lower_case": true}')
        server.add_file("microsoft/deberta-v3-base", "pytorch_model.bin", b"weights, never asked for")
        for key, value in server.environ(tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        tokenizer = deberta.load_tokenizer("microsoft/deberta-v3-base")
        again = deberta.load_tokenizer("deberta-v3-base", "spm")  # from the cache
        assert server.count("spm.model") == server.count("tokenizer_config.json") == 1
        assert server.count("pytorch_model.bin") == server.count("config.json") == 0
    assert isinstance(tokenizer, SPMTokenizer) and tokenizer.do_lower_case
    assert again.fingerprint == tokenizer.fingerprint
    with pytest.raises(TokenizerError, match="does not match model 'base'"):
        deberta.load_tokenizer("base", "spm")


def test_app_resolver(tiny_folder: Path, tmp_path: Path) -> None:
    weights = tiny_folder / "pytorch_model.bin"  # a source may be a weights file: its folder is looked at
    assert isinstance(app_models.load_tokenizer(None, weights, option="--vocab_path"), SPMTokenizer)
    assert isinstance(app_models.load_tokenizer(tiny_folder, None, option="--vocab_path", vocab_type="spm"),
                      SPMTokenizer)
    with pytest.raises(TokenizerError, match="^--vocab_path: vocab_type gpt2 does not match"):
        app_models.load_tokenizer(tiny_folder, None, option="--vocab_path", vocab_type="gpt2")
    with pytest.raises(TokenizerError, match="vocab_type spm, but .* holds no spm.model"):
        app_models.load_tokenizer(None, tmp_path / "checkpoint", option="--vocab_path", vocab_type="spm")


# --- build_vocab --type spm ---------------------------------------------------------------------------------


def test_build_vocab_spm_cli_loads_here_and_in_transformers(
    corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "vocab"
    status = build_vocab_app.main(["--type", "spm", "--corpus", str(corpus), "--vocab_size", "500",
                                   "--output", str(output)])
    assert status == 0, capsys.readouterr().err
    assert "500 pieces, [MASK]=500, 501 ids" in capsys.readouterr().out
    tokenizer = deberta.load_tokenizer(output)
    assert isinstance(tokenizer, SPMTokenizer) and tokenizer.vocab_size == 501
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 4, 500]) == ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "<0x00>",
                                                                    "[MASK]"]
    processor = sentencepiece.SentencePieceProcessor(model_file=str(output / "spm.model"))
    texts = corpus.read_text(encoding="utf-8").splitlines()[:300] + ["Unseen: 漢字 😀 ﬁne"]
    assert [e.input_ids[1:-1] for e in tokenizer.encode_batch(texts)] == processor.encode(texts)
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoTokenizer.from_pretrained(str(output))
    theirs = reference(texts[:150], texts[150:300], truncation=True, max_length=512)["input_ids"]
    for i, mine in enumerate(tokenizer.encode_batch(texts[:150], texts[150:300])):
        assert mine.input_ids == theirs[i], (texts[i], texts[150 + i])
    assert reference(texts[-1])["input_ids"] == tokenizer.encode(texts[-1]).input_ids  # byte fallback


def test_build_spm_vocab_options_and_errors(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lower = build_spm_vocab([corpus], 800, do_lower_case=True, split_by_punct=True, model_type="bpe")
    assert lower.do_lower_case and lower.split_by_punct and lower.piece_count <= 800
    # Trained on lowercased text, and lowercasing before SentencePiece.
    assert lower.tokenize("The Quick TOKYO Researchers") == lower.tokenize("the quick tokyo researchers")
    assert "▁the" in lower.vocab and "▁The" not in lower.vocab
    with pytest.raises(TokenizerError, match="leaves no room"):
        build_spm_vocab([corpus], 100)
    with pytest.raises(TokenizerError, match="cannot read corpus file"):
        build_spm_vocab([tmp_path / "absent.txt"], 1000)
    with pytest.raises(TokenizerError, match="no non-blank line"):
        build_spm_vocab(["", "  "], 1000)
    for argv, message in [
        (["--type", "spm", "--corpus", str(corpus), "--output", str(tmp_path)], "needs --vocab_size"),
        (["--type", "spm", "--corpus", str(tmp_path / "absent.txt"), "--vocab_size", "1000", "--output",
          str(tmp_path)], "no such file"),
        (["--corpus", str(corpus), "--vocab_size", "1000", "--output", str(tmp_path)], "options of --type spm"),
    ]:
        assert build_vocab_app.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
