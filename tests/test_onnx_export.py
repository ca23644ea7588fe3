"""The ONNX export (DeBERTa.apps.onnx_export): one graph per model, right at every length, in ONNX Runtime.

Each model is exported once (dynamic batch and length) and compared with the model's own PyTorch forward
(its fast attention paths) at lengths 1, 7, 128, 300 and 512, with padding in every other sequence: v1
(relative span 64, so that long sequences are clamped and short ones are not), v3-shaped (log buckets
that end before 512) and v2-shaped (with the convolution), the encoder and every head.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_export import gpt2_cut, randomize, tokenizer  # noqa: F401  (fixtures)
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import export, onnx_export
from DeBERTa.apps.onnx_export import OnnxExportError, check_onnx_parity, export_onnx, ort_forward_fn
from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.tokenizer import GPT2Tokenizer

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

LENGTHS = (1, 7, 128, 300, 512)
VOCAB = 300


def v1_config(**overrides: object) -> deberta.ModelConfig:
    fields = dict(max_position_embeddings=512, max_relative_positions=64, type_vocab_size=2, vocab_size=VOCAB)
    return deberta.ModelConfig.preset("tiny", **{**fields, **overrides})


def v3_config(**overrides: object) -> deberta.ModelConfig:
    # Buckets of 16 up to distance 256: lengths 300 and 512 pass the end of the log scale.
    fields = dict(max_position_embeddings=512, position_buckets=16, max_relative_positions=256, vocab_size=VOCAB)
    return deberta.ModelConfig.preset("v3-tiny", **{**fields, **overrides})


CONFIGS = {"v1": v1_config, "v3": v3_config, "v2-conv": lambda: v3_config(conv_kernel_size=3, conv_act="gelu")}


def head_model(head: str, config: deberta.ModelConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    kwargs = {"num_labels": 3} if head in ("classification", "token_classification") else {}
    return randomize(onnx_export.HEADS[head](config, **kwargs), seed)


def assert_parity(model: torch.nn.Module, folder: Path, config: deberta.ModelConfig, tolerance: float) -> None:
    differences = check_onnx_parity(model, folder, config, lengths=LENGTHS, threads=1)
    assert list(differences) == list(LENGTHS)
    assert max(differences.values()) < tolerance, differences


@pytest.mark.parametrize(("family", "head"), [
    *[("v1", head) for head in onnx_export.HEADS],
    *[("v3", head) for head in onnx_export.HEADS],
    ("v2-conv", "encoder"),
])
def test_one_graph_matches_pytorch_at_every_length(family: str, head: str, tmp_path: Path) -> None:
    config = CONFIGS[family]()
    model = head_model(head, config)
    export_onnx(model, config, None, tmp_path / "out")
    metadata = onnx_export.read_metadata(tmp_path / "out")
    assert (metadata["dtype"], metadata["head"], metadata["opset"]) == ("float32", head, onnx_export.DEFAULT_OPSET)
    graph = onnx.load(str(tmp_path / "out" / onnx_export.MODEL_FILE))
    inputs = [i.name for i in graph.graph.input]
    assert inputs == (["input_ids", "attention_mask"] + (["token_type_ids"] if family == "v1" else []))
    assert all(i.type.tensor_type.elem_type == onnx.TensorProto.INT64 for i in graph.graph.input)
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert all(isinstance(d, str) for d in dims), dims  # batch (choices) and length symbolic, none fixed
    assert graph.graph.output[0].name == ("last_hidden_state" if head == "encoder" else "logits")
    # Outputs of a few units, not near zero: a relative difference of 1e-4 is a real check.
    sample = onnx_export.torch_output(model, head, onnx_export.example_inputs(config, head, 2, 7))
    assert sample.std() > 0.05
    assert_parity(model, tmp_path / "out", config, 1e-4)
    if head == "masked_lm":  # scores at every position; at the real tokens, the head's own output
        inputs = {k: v for k, v in onnx_export.example_inputs(config, head, 3, 10).items() if k in inputs}
        logits = ort_forward_fn(tmp_path / "out", threads=1)(inputs)
        assert logits.shape == (3, 10, VOCAB)
        with torch.inference_mode():
            targets = model(inputs["input_ids"], inputs.get("token_type_ids"), inputs["attention_mask"]).logits
        torch.testing.assert_close(logits[inputs["attention_mask"].bool()], targets, atol=1e-4, rtol=1e-4)


def test_the_model_is_exported_as_it_is_and_left_unchanged(tmp_path: Path) -> None:
    """No copy with other attention modules: the model's own forward is traced (in eval mode), and a model in
    training mode comes back in training mode with the same weights."""
    config = v3_config()
    model = head_model("encoder", config).train()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    export_onnx(model, config, None, tmp_path / "out", check_lengths=(1,))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    graph = onnx.load(str(tmp_path / "out" / onnx_export.MODEL_FILE))
    assert not any("dropout" in node.op_type.lower() for node in graph.graph.node)  # traced in eval mode
    differences = check_onnx_parity(model, tmp_path / "out", config, lengths=(7, 300), threads=1)
    assert max(differences.values()) < 1e-4, differences
    assert model.training


def test_source_export_writes_tokenizer_and_metadata(tokenizer: GPT2Tokenizer, tmp_path: Path,  # noqa: F811
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = v1_config(vocab_size=tokenizer.vocab_size)
    model = head_model("classification", config)
    source = tmp_path / "source"
    source.mkdir()
    torch.save(model.state_dict(), source / "pytorch_model.bin")
    config.save(source / "model_config.json", layout="original")
    tokenizer.save_pretrained(source)
    out = onnx_export.export_onnx_source(source, tmp_path / "out")
    assert onnx_export.read_metadata(out)["head"] == "classification"
    assert GPT2Tokenizer(out).fingerprint == tokenizer.fingerprint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "source"]  # no staging folder left
    assert_parity(model, out, config, 1e-4)

    # The command line: python -m DeBERTa.apps.export SOURCE OUT --format onnx, with an opset and int8.
    assert export.main([str(source), str(tmp_path / "cli"), "--format", "onnx", "--opset", "19"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli")
    metadata = onnx_export.read_metadata(tmp_path / "cli")
    assert (metadata["opset"], metadata["dtype"], metadata["head"]) == (19, "float32", "classification")
    assert onnx.load(str(tmp_path / "cli" / onnx_export.MODEL_FILE)).opset_import[0].version == 19
    assert_parity(model, tmp_path / "cli", config, 1e-4)
    assert export.main([str(source), str(tmp_path / "int8"), "--format", "onnx", "--quantize", "int8"]) == 0
    assert onnx_export.read_metadata(tmp_path / "int8")["dtype"] == "int8"
    assert export.main([str(source), str(source), "--format", "onnx", "--force"]) == 2  # would delete the source
    assert "holds the source" in capsys.readouterr().err
    assert (source / "pytorch_model.bin").is_file()


def test_float16_export_is_close(tmp_path: Path) -> None:
    config = v3_config()
    model = head_model("encoder", config)
    export_onnx(model, config, None, tmp_path / "out", dtype="float16")
    graph = onnx.load(str(tmp_path / "out" / onnx_export.MODEL_FILE))
    matrices = {w.name: w.data_type for w in graph.graph.initializer if len(w.dims) >= 2}
    half = [name for name, kind in matrices.items() if kind == onnx.TensorProto.FLOAT16]
    assert len(half) >= 0.9 * len(matrices) and "model.embeddings.word_embeddings.weight" in half
    assert onnx_export.read_metadata(tmp_path / "out")["dtype"] == "float16"
    # Half precision: hidden states (LayerNorm outputs, a few units) within 1e-2 of float32 PyTorch
    # (measured: 8e-4 at length 1 to 6e-3 at 512).
    assert_parity(model, tmp_path / "out", config, 1e-2)


def separable_task(count: int, length: int, seed: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Random tokens; the label is whether token 5 or token 6 appears (one of them, somewhere); 10 % flipped,
    so that accuracy is near 90 % and not at a ceiling that hides what quantization changes."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(10, VOCAB, (count, length), generator=generator)
    labels = torch.randint(0, 2, (count,), generator=generator)
    ids[torch.arange(count), torch.randint(1, length, (count,), generator=generator)] = 5 + labels
    flipped = torch.rand(count, generator=generator) < 0.1
    labels = torch.where(flipped, 1 - labels, labels)
    mask = torch.ones_like(ids)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}, labels


def test_int8_quantized_classifier_keeps_its_accuracy(tmp_path: Path) -> None:
    config = v1_config(hidden_size=64, num_attention_heads=4, intermediate_size=128, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    model = deberta.SequenceClassificationModel(config, num_labels=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    train, train_labels = separable_task(2048, 16, seed=1)
    model.train()
    for step in range(120):
        batch = slice(step * 32 % 2048, step * 32 % 2048 + 32)
        loss = model(train["input_ids"][batch], train["token_type_ids"][batch], train["attention_mask"][batch],
                     labels=train_labels[batch]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    export_onnx(model, config, None, tmp_path / "fp32")
    export_onnx(model, config, None, tmp_path / "int8", quantize_int8=True)
    graph = onnx.load(str(tmp_path / "int8" / onnx_export.MODEL_FILE))
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= {node.op_type for node in graph.graph.node}
    assert onnx_export.read_metadata(tmp_path / "int8")["dtype"] == "int8"

    test, test_labels = separable_task(1000, 16, seed=2)
    logits = {name: ort_forward_fn(tmp_path / name, threads=1)(test) for name in ("fp32", "int8")}
    accuracy = {name: (value.argmax(-1) == test_labels).float().mean().item() for name, value in logits.items()}
    assert accuracy["fp32"] > 0.8, accuracy  # it learned (the ceiling is ~0.9)
    assert not torch.equal(logits["fp32"], logits["int8"])  # quantization changed the numbers ...
    assert abs(accuracy["fp32"] - accuracy["int8"]) <= 0.01, accuracy  # ... but not the accuracy (1 point)


@pytest.mark.parametrize(("options", "message"), [
    ({"opset": 13}, "ONNX opset 13 is not supported"),
    ({"dtype": "bfloat16"}, "dtype 'bfloat16' cannot be exported"),
    ({"dtype": "float16", "quantize_int8": True}, "int8 quantization starts from the float32 graph"),
    ({"head": "masked_lm"}, "head 'masked_lm' does not fit a DeBERTa"),
])
def test_refusals_are_one_line(options: dict, message: str, tmp_path: Path) -> None:
    config = v1_config()
    with pytest.raises(OnnxExportError, match=message) as caught:
        export_onnx(deberta.DeBERTa(config), config, None, tmp_path / "out", **options)
    assert isinstance(caught.value, DeBERTaError) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_refuses_unknown_models_and_busy_folders(tmp_path: Path) -> None:
    config = v1_config()
    with pytest.raises(OnnxExportError, match="cannot export a Linear"):
        export_onnx(torch.nn.Linear(2, 2), config, None, tmp_path / "out")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(DeBERTaError, match="not empty"):
        export_onnx(deberta.DeBERTa(config), config, None, tmp_path / "busy")


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if not installed
    config = v1_config()
    with pytest.raises(DeBERTaError, match=r'onnxscript is not installed .*pip install "deberta\[onnx\]"'):
        export_onnx(deberta.DeBERTa(config), config, None, tmp_path / "out")
