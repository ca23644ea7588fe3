"""A tiny DeBERTa-v3 through the training app on real GLUE rows, then exported and run by transformers.

The v3 SentencePiece model of ../shared/spm-deberta-v3 tokenizes ../shared/glue-samples/RTE; the run's
best checkpoint is exported as a Hugging Face folder, and transformers' DebertaV2ForSequenceClassification
and AutoTokenizer give the logits and ids this package gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import export, records
from DeBERTa.apps.train import main

transformers = pytest.importorskip("transformers")

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES, SPM_MODEL = SHARED / "glue-samples" / "RTE", SHARED / "spm-deberta-v3" / "spm.model"


@pytest.mark.skipif(not (SAMPLES.is_dir() and SPM_MODEL.is_file()), reason="../shared is not there")
def test_tiny_v3_fine_tunes_and_exports(tmp_path: Path) -> None:
    out = tmp_path / "run"
    status = main(["--task_name", "RTE", "--data_dir", str(SAMPLES), "--output_dir", str(out),
                   "--model_config", "v3-tiny", "--vocab_path", str(SPM_MODEL), "--do_train", "--do_eval",
                   "--max_steps", "4", "--max_seq_len", "64", "--train_batch_size", "8", "--eval_batch_size", "32",
                   "--learning_rate", "1e-3", "--warmup", "1", "--seed", "1"])
    assert status == 0
    assert "accuracy" in json.loads((out / "eval_results.json").read_text())["splits"]["dev"]
    checkpoint = records.run_checkpoint(out)
    config = deberta.ModelConfig.from_json_file(checkpoint / "config.json")
    assert config.is_v2 and config.position_buckets == 8
    architectures = json.loads((checkpoint / "config.json").read_text())["architectures"]
    assert architectures == ["DebertaV2ForSequenceClassification"]

    folder = export.export_hf(out, tmp_path / "hf")
    theirs = transformers.DebertaV2ForSequenceClassification.from_pretrained(folder).eval()
    tokens = transformers.AutoTokenizer.from_pretrained(folder)
    ours = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(checkpoint)).eval()
    spm = deberta.SPMTokenizer(SPM_MODEL)
    pairs = [("The cat sat on the mat.", "A cat is sitting."), ("Paris is in France.", "Berlin is in Spain.")]
    batch = tokens([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    for row, (a, b) in zip(batch["input_ids"], pairs, strict=True):
        expected = spm.encode(a, b).input_ids
        assert row[: len(expected)].tolist() == expected
    with torch.no_grad():
        ref = theirs(**batch).logits
        got = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).logits
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
