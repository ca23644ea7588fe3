"""A discriminator pre-trained with replaced token detection fine-tunes through the GLUE app.

A v3-tiny pair (generator and discriminator, the v3 SentencePiece vocabulary of ../shared/spm-deberta-v3) is
pre-trained for a few updates on the sentences of ../shared/glue-samples/RTE and exported; the training
app then fine-tunes ``export/discriminator`` on RTE with ``--init_model`` alone (the tokenizer comes from the
folder): every encoder tensor loads, the RTD head is dropped by name, and the run trains and evaluates.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import pretrain, records
from DeBERTa.apps.train import main as train_main

SHARED = Path(__file__).resolve().parents[2] / "shared"
RTE, SPM_MODEL = SHARED / "glue-samples" / "RTE", SHARED / "spm-deberta-v3" / "spm.model"


@pytest.mark.skipif(not (RTE.is_dir() and SPM_MODEL.is_file()), reason="../shared is not there")
def test_exported_discriminator_fine_tunes_through_the_glue_app(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    with (RTE / "train.tsv").open(encoding="utf-8", newline="") as f:
        sentences = [row["sentence1"] for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
    text = tmp_path / "rte.txt"
    text.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    run = tmp_path / "rtd"
    assert pretrain.main(["--objective", "rtd", "--corpus", str(text), "--tokenizer", str(SPM_MODEL),
                          "--model_config", "v3-tiny", "--output_dir", str(run), "--max_seq_len", "64",
                          "--train_batch_size", "8", "--max_steps", "3", "--warmup", "1", "--learning_rate", "1e-3",
                          "--seed", "2"]) == 0
    disc = run / "export" / "discriminator"
    exported = load_file(str(disc / "model.safetensors"))
    assert any(k.startswith("mask_predictions.") for k in exported)

    out = tmp_path / "rte"
    with caplog.at_level(logging.INFO):
        status = train_main(["--task_name", "RTE", "--data_dir", str(RTE), "--output_dir", str(out),
                             "--init_model", str(disc), "--do_train", "--do_eval", "--max_steps", "3",
                             "--max_seq_len", "64", "--train_batch_size", "8", "--eval_batch_size", "64",
                             "--learning_rate", "1e-3", "--warmup", "1", "--seed", "1"])
    assert status == 0
    # The RTD head is left out by name; nothing of the encoder is missing (that would be an error).
    assert any("not part of it: replaced-token-detection head" in r.getMessage() for r in caplog.records)
    dev = json.loads((out / "eval_results.json").read_text())["splits"]["dev"]
    assert 0 <= dev["accuracy"] <= 1
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in m for m in metrics)

    # The fine-tuned encoder started from the exported one: same tensors, moved by three updates.
    checkpoint = records.run_checkpoint(out)
    tuned = load_file(str(checkpoint / "model.safetensors"))
    encoder = {k: v for k, v in exported.items() if k.startswith("deberta.")}
    assert encoder.keys() <= tuned.keys()
    key = "deberta.encoder.layer.0.attention.self.query_proj.weight"
    assert tuned[key].shape == encoder[key].shape and not torch.equal(tuned[key], encoder[key])
    assert deberta.ModelConfig.from_json_file(checkpoint / "config.json").is_v2
