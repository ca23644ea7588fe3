"""Pre-training pieces: replaced token detection and its embedding sharing, whole-word masking, corpus shards."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.training.data import corpus as corpora
from DeBERTa.training.pretraining import (
    ReplacedTokenDetection,
    generator_config,
    mask_tokens,
)

VOCAB = 40


def tiny_rtd(sharing: str) -> ReplacedTokenDetection:
    torch.manual_seed(0)
    config = deberta.ModelConfig.preset("tiny", vocab_size=VOCAB, hidden_dropout_prob=0.0,
                                        attention_probs_dropout_prob=0.0)
    generator = deberta.MaskedLanguageModel(generator_config(config))
    return ReplacedTokenDetection(generator, deberta.ReplacedTokenDetectionModel(config), sharing, rtd_lambda=50.0)


def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(5, VOCAB, (4, 12), generator=generator)
    input_ids[:, 0], input_ids[:, -1] = 1, 2
    input_mask = torch.ones_like(input_ids)
    maskable = torch.ones_like(input_ids, dtype=torch.bool)
    maskable[:, [0, -1]] = False
    masked, labels = mask_tokens(input_ids, maskable, 4, torch.arange(5, VOCAB), generator, 0.3)
    return masked, labels, input_ids, input_mask


def test_generator_has_half_the_depth() -> None:
    config = deberta.ModelConfig.preset("base")
    assert generator_config(config).num_hidden_layers == 6
    assert generator_config(config).hidden_size == 768


def test_gdes_keeps_the_rtd_gradient_off_the_generator_embedding() -> None:
    model = tiny_rtd("gdes")
    delta = model.embedding_delta
    assert torch.equal(delta, torch.zeros_like(delta))  # the discriminator starts on the generator's table
    masked, labels, input_ids, input_mask = batch()
    out = model(masked, labels, input_ids, input_mask, sample_seed=1)
    table = model.generator.deberta.embeddings.word_embeddings.weight
    rtd_grad = torch.autograd.grad(out["rtd_loss"], [table, delta], allow_unused=True)
    assert rtd_grad[0] is None or torch.count_nonzero(rtd_grad[0]) == 0
    assert rtd_grad[1] is not None and torch.count_nonzero(rtd_grad[1]) > 0
    mlm_grad = torch.autograd.grad(out["mlm_loss"], [table], allow_unused=True)[0]
    assert mlm_grad is not None and torch.count_nonzero(mlm_grad) > 0
    # The discriminator's own table is not trained under gdes; the exported one is generator + delta.
    assert not model.discriminator.deberta.embeddings.word_embeddings.weight.requires_grad
    with torch.no_grad():
        delta.add_(0.5)
    exported = model.discriminator_state()["deberta.embeddings.word_embeddings.weight"]
    assert torch.equal(exported, table.detach() + delta.detach())


def test_es_shares_one_table_and_nes_keeps_two() -> None:
    shared = tiny_rtd("es")
    assert shared.discriminator.deberta.embeddings.word_embeddings.weight is \
        shared.generator.deberta.embeddings.word_embeddings.weight
    masked, labels, input_ids, input_mask = batch()
    out = shared(masked, labels, input_ids, input_mask, sample_seed=1)
    table = shared.generator.deberta.embeddings.word_embeddings.weight
    assert torch.count_nonzero(torch.autograd.grad(out["rtd_loss"], [table])[0]) > 0  # RTD trains it too
    separate = tiny_rtd("nes")
    gen = separate.generator.deberta.embeddings.word_embeddings.weight
    disc = separate.discriminator.deberta.embeddings.word_embeddings.weight
    assert gen is not disc and disc.requires_grad
    out = separate(masked, labels, input_ids, input_mask, sample_seed=1)
    assert torch.autograd.grad(out["rtd_loss"], [gen], allow_unused=True)[0] is None


def test_replaced_positions_are_where_the_sample_differs() -> None:
    model = tiny_rtd("gdes")
    masked, labels, input_ids, input_mask = batch()
    # A generator that always samples token 7, and targets of which some hold 7: those stay original.
    with torch.no_grad():
        model.generator.lm_predictions.lm_head.bias[7] = 1e4
    targets = labels > 0
    first = targets.nonzero()[::2]
    input_ids[first[:, 0], first[:, 1]] = 7
    labels = torch.where(targets, input_ids, labels)
    for seed in range(5):
        out = model(masked, labels, input_ids, input_mask, sample_seed=seed)
        rtd_input, replaced = out["rtd_input"], out["replaced"]
        targets = labels > 0
        assert torch.equal(rtd_input[~targets], input_ids[~targets])  # only targets are resampled
        assert torch.equal(replaced, rtd_input != input_ids)  # a sample equal to the original is original
        assert (targets & ~replaced).any() and (targets & replaced).any()


def test_different_widths_cannot_share_embeddings() -> None:
    config = deberta.ModelConfig.preset("tiny", vocab_size=VOCAB)
    wide = deberta.MaskedLanguageModel(deberta.ModelConfig.preset("tiny", vocab_size=VOCAB,
                                                                  hidden_size=2 * config.hidden_size,
                                                                  intermediate_size=2 * config.intermediate_size))
    with pytest.raises(ValueError, match="embedding sharing gdes"):
        ReplacedTokenDetection(wide, deberta.ReplacedTokenDetectionModel(config), "gdes")
    ReplacedTokenDetection(wide, deberta.ReplacedTokenDetectionModel(config), "nes")  # separate tables may differ


def test_whole_word_masking_takes_every_piece_of_a_word() -> None:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.arange(10, 110).reshape(2, 50)
    maskable = torch.ones_like(input_ids, dtype=torch.bool)
    maskable[:, 0] = maskable[:, -1] = False
    starts = torch.zeros_like(maskable)
    starts[:, ::3] = True  # words of three pieces
    for _ in range(20):
        _, labels = mask_tokens(input_ids, maskable, 4, torch.tensor([7]), generator, 0.15, starts)
        chosen = labels > 0
        word = torch.cumsum(starts | ~maskable, 1)
        for row in range(2):
            for w in word[row][chosen[row]].unique():
                in_word = (word[row] == w) & maskable[row]
                assert chosen[row][in_word].all()  # all pieces or none
            assert chosen[row].sum() >= round(0.15 * 48)


class FakeTokenizer:
    """Whitespace words → ids (enough for the corpus code: encode_batch, specials, save_pretrained)."""

    vocab_size = 1000
    cls_token_id, sep_token_id = 1, 2
    fingerprint = "fake-1"

    def encode_batch(self, texts: list[str], max_seq_len: int = 512) -> list:
        class E:
            def __init__(self, ids: list[int]) -> None:
                self.input_ids = ids
        return [E([1, *(10 + sum(map(ord, w)) % 900 for w in t.split()), 2]) for t in texts]

    def save_pretrained(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fake.json").write_text("{}")
        return folder


TEXT = "\n\n".join(f"document {d} " + " ".join(f"w{d}x{i}" for i in range(d * 7 % 40 + 1)) for d in range(60))


def window_ids(folder: Path, max_seq_len: int = 16) -> list[list[int]]:
    windows = corpora.CorpusWindows(corpora.Corpus.open(folder), max_seq_len, 1, 2)
    return [windows[i]["input_ids"].tolist() for i in range(len(windows))]


def test_compressed_inputs_give_the_same_corpus(tmp_path: Path) -> None:
    plain = tmp_path / "c.txt"
    plain.write_text(TEXT, encoding="utf-8")
    (tmp_path / "c.txt.gz").write_bytes(gzip.compress(TEXT.encode()))
    (tmp_path / "c.txt.bz2").write_bytes(bz2.compress(TEXT.encode()))
    (tmp_path / "c.txt.xz").write_bytes(lzma.compress(TEXT.encode()))
    reference = window_ids(corpora.prepare_corpus([plain], FakeTokenizer(), tmp_path / "plain", progress=False))
    assert len(reference) > 60 and json.loads((tmp_path / "plain" / "index.json").read_text())["documents"] == 60
    for suffix in ("gz", "bz2", "xz"):
        folder = corpora.prepare_corpus([tmp_path / f"c.txt.{suffix}"], FakeTokenizer(), tmp_path / suffix,
                                        progress=False)
        assert window_ids(folder) == reference, suffix
    assert (tmp_path / "plain" / "tokenizer" / "fake.json").is_file()


def test_an_interrupted_preparation_continues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "c.txt"
    source.write_text(TEXT, encoding="utf-8")
    straight = corpora.prepare_corpus([source], FakeTokenizer(), tmp_path / "straight", shard_tokens=100,
                                      progress=False)
    monkeypatch.setattr(corpora, "DOCUMENTS_PER_BATCH", 8)
    calls = 0
    tokenize = corpora._tokenize

    def dies_on_the_fourth_batch(documents: list[str], tokenizer: object) -> list[np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        return tokenize(documents, tokenizer)

    monkeypatch.setattr(corpora, "_tokenize", dies_on_the_fourth_batch)
    with pytest.raises(KeyboardInterrupt):
        corpora.prepare_corpus([source], FakeTokenizer(), tmp_path / "resumed", shard_tokens=100, progress=False)
    index = json.loads((tmp_path / "resumed" / "index.json").read_text())
    assert not index["complete"] and index["shards"]
    with pytest.raises(corpora.CorpusError, match="did not finish"):
        corpora.Corpus.open(tmp_path / "resumed")
    monkeypatch.setattr(corpora, "_tokenize", tokenize)
    corpora.prepare_corpus([source], FakeTokenizer(), tmp_path / "resumed", shard_tokens=100, progress=False)
    assert window_ids(tmp_path / "resumed") == window_ids(straight)
    assert not list((tmp_path / "resumed").glob(".*tmp"))


@pytest.mark.parametrize("content, message", [
    (b"", "holds no text"),
    (b"\n\n  \n", "holds no text"),
    (b"text\x00\x01\x02binary", "binary data"),
    (b"caf\xe9 latin-1", "not UTF-8 text"),
])
def test_bad_corpus_is_one_error_and_leaves_nothing(content: bytes, message: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.txt"
    source.write_bytes(content)
    with pytest.raises(corpora.CorpusError, match=message) as err:
        corpora.prepare_corpus([source], FakeTokenizer(), tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_corpus_smaller_than_one_window_and_another_vocabulary_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "small.txt"
    source.write_text("three short words\n", encoding="utf-8")
    folder = corpora.prepare_corpus([source], FakeTokenizer(), tmp_path / "out", progress=False)
    with pytest.raises(corpora.CorpusError, match="less than one window"):
        corpora.CorpusWindows(corpora.Corpus.open(folder), 16, 1, 2)
    other = FakeTokenizer()
    other.fingerprint = "fake-2"
    with pytest.raises(corpora.CorpusError, match="does not match the shards"):
        corpora.Corpus.open(folder).check_tokenizer(other)
