"""Export a model of this package to ONNX, check it against PyTorch, and run it in ONNX Runtime.

:func:`export_onnx` writes a folder::

    model.onnx          one graph for every batch size and length up to the model's maximum: int64 inputs
                        ``input_ids``, ``attention_mask`` and, where the model has token types,
                        ``token_type_ids`` (B, L) — (B, N, L) for multiple choice; output 0 is
                        ``last_hidden_state`` (B, L, D) for the encoder, ``logits`` for a head
    onnx_export.json    what the graph is: opset, dtype (float32, float16 or int8, ONNX Runtime's dynamic
                        quantization), head, input and output names, the longest length it was checked at
    the tokenizer's files (``tokenizer.save_pretrained``)

The graph is the model's own forward, traced by ``torch.onnx.export`` (torch.export underneath): while it
is exported, the attention computes its formula from runtime shapes
(:meth:`~DeBERTa.deberta.attention.FastDisentangledAttention.attend_for_export`) instead of the fast paths'
blocks and pieces, whose Python integers a trace would bake in. The user's model is not changed (eval mode
for the trace, its previous mode after; float16 exports a half-precision copy).

The masked-LM head scores every position (B, L, V): the graph has no data-dependent shapes.
:func:`check_onnx_parity` compares a written model with PyTorch at several lengths; :func:`ort_forward_fn`
runs it in ONNX Runtime with a given number of threads (the bench uses it). What the export cannot do
(an opset, a dtype, a model it does not know) is refused with :class:`OnnxExportError`, one line.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from DeBERTa import deberta
from DeBERTa.apps.export import (
    ExportError,
    check_not_source,
    check_output,
    choose_head,
    current_umask,
    install_folder,
    write_json,
)
from DeBERTa.apps.models import CLASSIFICATION, ENCODER, MASKED_LM, SPANS, TOKENS, load_tokenizer, resolve_source
from DeBERTa.deberta.extras import require

__all__ = [
    "DTYPES", "HEADS", "MODEL_FILE", "METADATA_FILE", "OPSETS", "OnnxExportError", "check_onnx_parity",
    "export_onnx", "export_onnx_source", "ort_forward_fn", "ort_session",
]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
METADATA_FILE = "onnx_export.json"
MULTIPLE_CHOICE, REPLACED_TOKENS = "multiple_choice", "replaced_token_detection"

HEADS: dict[str, type[nn.Module]] = {
    ENCODER: deberta.DeBERTa,
    CLASSIFICATION: deberta.SequenceClassificationModel,
    TOKENS: deberta.TokenClassificationModel,
    MULTIPLE_CHOICE: deberta.MultiChoiceModel,
    SPANS: deberta.QuestionAnsweringModel,
    MASKED_LM: deberta.MaskedLanguageModel,
    REPLACED_TOKENS: deberta.ReplacedTokenDetectionModel,
}
"""Head name → the model class it exports; the names of :mod:`DeBERTa.apps.export` plus two it has no
transformers class for."""

OPSETS = range(18, 24)
"""ONNX opsets the export writes: torch's exporter builds 18 and later (each checked here with onnxruntime
1.32). The default, 18, is the oldest, for older ONNX Runtimes; one that cannot run the chosen opset fails
the export's own check with one line."""
DEFAULT_OPSET = 18

DTYPES = ("float32", "float16", "int8")
"""``float32``; ``float16`` (the weights and activations in half precision; the normalisations and softmax
compute in float32, as in PyTorch); ``int8``: the float32 graph with ONNX Runtime's dynamic quantization
(int8 weights of the matrix products, activations quantized per call)."""


class OnnxExportError(ExportError):
    """The model cannot be exported to ONNX as asked; one line."""


# --------------------------------------------------------------------------------------------------
# The graph: the model's own forward, traced
# --------------------------------------------------------------------------------------------------
class _Graph(nn.Module):
    """What is exported: (input_ids, attention_mask[, token_type_ids]) → the head's output tensor."""

    def __init__(self, model: nn.Module, head: str):
        super().__init__()
        self.model = model
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self.head == ENCODER:
            return self.model(input_ids, attention_mask, token_type_ids, output_all_encoded_layers=False)[-1]
        if self.head == MASKED_LM:
            # The head's decoder on every position: `...` selects all of them (B, L, V), where training
            # selects the masked ones with a boolean index (a shape that depends on the data).
            # cast: the masked-LM head's model is a MaskedLanguageModel (HEADS); nn.Module types attributes loosely
            model = cast(deberta.MaskedLanguageModel, self.model)
            layers = model.deberta(input_ids, attention_mask, token_type_ids)
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)[None].expand_as(input_ids)
            return model.lm_predictions(model.deberta, layers, positions, attention_mask, ...)
        return self.model(input_ids, token_type_ids, attention_mask).logits


# --------------------------------------------------------------------------------------------------
# Exporting
# --------------------------------------------------------------------------------------------------
def head_of(model: nn.Module) -> str:
    """The head name of a model object (:data:`HEADS`)."""
    for name, cls in HEADS.items():
        if type(model) is cls:
            return name
    raise OnnxExportError(f"cannot export a {type(model).__name__} to ONNX; known: "
                          + ", ".join(cls.__name__ for cls in HEADS.values()))


def input_names(config: deberta.ModelConfig) -> list[str]:
    """The graph's inputs: token types only where the model embeds them."""
    return ["input_ids", "attention_mask"] + (["token_type_ids"] if config.type_vocab_size > 0 else [])


def output_name(head: str) -> str:
    return "last_hidden_state" if head == ENCODER else "logits"


def example_inputs(config: deberta.ModelConfig, head: str, batch_size: int, length: int, *, choices: int = 2,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Random int64 inputs (B, L) — (B, N, L) for multiple choice — with padding at the end of every other
    sequence, named as the graph's inputs."""
    generator = torch.Generator().manual_seed(seed)
    shape = (batch_size, choices, length) if head == MULTIPLE_CHOICE else (batch_size, length)
    ids = torch.randint(1, config.vocab_size, shape, generator=generator)
    mask = torch.ones(shape, dtype=torch.long)
    if length > 1:
        mask[1::2, ..., (length + 1) // 2 :] = 0  # every other sequence: its second half is padding
    ids = ids.masked_fill(mask == 0, 0)
    inputs = {"input_ids": ids, "attention_mask": mask}
    if config.type_vocab_size > 0:
        types = torch.zeros(shape, dtype=torch.long)
        types[..., length // 3 :] = 1
        inputs["token_type_ids"] = types.clamp(max=config.type_vocab_size - 1) * mask
    return inputs


def _check_request(dtype: str, opset: int) -> None:
    if dtype not in DTYPES:
        raise OnnxExportError(f"dtype {dtype!r} cannot be exported to ONNX; expected one of {', '.join(DTYPES)}")
    if opset not in OPSETS:
        raise OnnxExportError(f"ONNX opset {opset} is not supported; expected {OPSETS.start} to {OPSETS.stop - 1}")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's own notes (optional torchvision ops it skips, constants it does not fold) at ERROR only."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


def _write_graph(model: nn.Module, config: deberta.ModelConfig, head: str, path: Path, dtype: str,
                 opset: int) -> None:
    """Trace ``model`` in eval mode with dynamic batch (and choices) and length, write ``path``."""
    if dtype == "float16":
        model = copy.deepcopy(model).half()
    graph = _Graph(model, head)
    was_training = model.training
    model.eval()
    names = input_names(config)
    inputs = example_inputs(config, head, 2, 17)  # lengths are symbolic; this one is arbitrary
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=config.max_position_embeddings)
    axes = {0: batch, 1: torch.export.Dim("choices"), 2: length} if head == MULTIPLE_CHOICE else {0: batch, 1: length}
    with warnings.catch_warnings(), torch.no_grad(), _quiet_exporter():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        try:
            program = torch.onnx.export(
                graph, tuple(inputs[name] for name in names), input_names=names, output_names=[output_name(head)],
                dynamic_shapes={name: axes for name in names}, opset_version=opset, dynamo=True,
                verbose=False, report=False)
        except Exception as err:  # the exporter raises many kinds; the first line says which step failed
            raise OnnxExportError(f"torch.onnx.export failed: {str(err).strip().splitlines()[0]}") from err
        finally:
            model.train(was_training)
    assert program is not None  # the dynamo exporter returns its program
    program.save(str(path))


def _is_large(folder: Path) -> bool:
    """Whether the graphs in ``folder`` reach protobuf's 2 GiB limit (torch's exporter then writes the weights
    as external data beside the graph, and the quantizer must too)."""
    return sum(file.stat().st_size for file in folder.iterdir()) >= 2**31 - 2**26


def _quantize(source: Path, target: Path, *, large: bool) -> None:
    """ONNX Runtime's dynamic int8 quantization of the matrix products' weights."""
    quantization = require("onnxruntime.quantization", "onnx", "int8 quantization")
    quantization.quantize_dynamic(str(source), str(target), weight_type=quantization.QuantType.QInt8,
                                  use_external_data_format=large)


def export_onnx(
    model: nn.Module,
    config: deberta.ModelConfig,
    tokenizer: Any,
    output_dir: str | os.PathLike[str],
    *,
    head: str | None = None,
    dtype: str = "float32",
    quantize_int8: bool = False,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
    check_lengths: Sequence[int] = (1, 7),
) -> Path:
    """Write ``model`` (a :class:`DeBERTa` or one of its head models) as an ONNX folder; returns ``output_dir``.

    Args:
        model: the model; it is not changed.
        config: its config (the inputs follow ``type_vocab_size``; lengths go up to ``max_position_embeddings``).
        tokenizer: anything with ``save_pretrained(folder)`` (GPT2Tokenizer, SPMTokenizer); None writes none.
        output_dir: the folder to create; a non-empty one only with ``force``.
        head: :data:`HEADS` name; default from the model's class.
        dtype: ``float32``, ``float16`` or ``int8`` (:data:`DTYPES`); ``quantize_int8=True`` is ``int8``.
        opset: ONNX opset (:data:`OPSETS`).
        check_lengths: lengths at which the written model is compared with PyTorch before it is installed
            (fp32 within 1e-4 relative to the output's scale, fp16 within 2e-2, int8 only that it runs).

    Raises :class:`OnnxExportError` (a :class:`DeBERTaError`) with a one-line message.
    """
    if quantize_int8:
        if dtype not in ("float32", "int8"):
            raise OnnxExportError(f"int8 quantization starts from the float32 graph, not {dtype}")
        dtype = "int8"
    _check_request(dtype, opset)
    require("onnx", "onnx", "the ONNX export")
    require("onnxscript", "onnx", "the ONNX export")
    head = head_of(model) if head is None else head
    if head not in HEADS or not isinstance(model, HEADS[head]):
        raise OnnxExportError(f"head {head!r} does not fit a {type(model).__name__}")
    output_dir = Path(output_dir).expanduser().absolute()
    check_output(output_dir, force)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.onnx-", dir=output_dir.parent))
    try:
        traced = staging / ("float32.onnx" if dtype == "int8" else MODEL_FILE)
        _write_graph(model, config, head, traced, "float16" if dtype == "float16" else "float32", opset)
        if dtype == "int8":
            _quantize(traced, staging / MODEL_FILE, large=_is_large(staging))
            for file in staging.glob(traced.name + "*"):  # the graph and its external data, if any
                file.unlink()
        worst = check_onnx_parity(model, staging / MODEL_FILE, config, head=head, lengths=check_lengths)
        tolerance = {"float32": 1e-4, "float16": 2e-2}.get(dtype)
        if tolerance is not None and worst and max(worst.values()) > tolerance:
            raise OnnxExportError(f"the exported graph differs from PyTorch by {max(worst.values()):.2g} "
                                  f"(relative, tolerance {tolerance}) at lengths {list(worst)}")
        metadata = {
            "format": "onnx", "opset": opset, "dtype": dtype, "head": head, "model_type": config.model_type,
            "inputs": input_names(config), "outputs": [output_name(head)],
            "input_shape": ["batch", "choices", "length"] if head == MULTIPLE_CHOICE else ["batch", "length"],
            "max_length": config.max_position_embeddings, "checked_lengths": list(worst),
            "max_relative_difference": {str(k): v for k, v in worst.items()},
        }
        write_json(staging / METADATA_FILE, metadata)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging, model_max_length=config.max_position_embeddings)
        umask = current_umask()  # like the Hugging Face export: a folder for sharing
        staging.chmod(0o777 & ~umask)
        for file in staging.iterdir():
            file.chmod(0o666 & ~umask)
        check_output(output_dir, force)
        install_folder(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("%s: %s %s, opset %d, %s", output_dir, head, dtype, opset, ", ".join(input_names(config)))
    return output_dir


def build_head_model(state: dict[str, torch.Tensor], config: deberta.ModelConfig, head: str) -> nn.Module:
    """The model object of ``head`` with the checkpoint's weights (label count from the classifier)."""
    if head == ENCODER:
        model: nn.Module = deberta.DeBERTa(config)
        deberta.pretrained.load_backbone_state(model, state)
        return model.eval()
    kwargs = {"num_labels": state["classifier.weight"].shape[0]} if head in (CLASSIFICATION, TOKENS) else {}
    model = HEADS[head](config, **kwargs)
    missing, _ = model.load_state_dict(state, strict=False)  # other heads' tensors are not this graph's
    if missing:
        raise OnnxExportError(f"the checkpoint lacks {', '.join(missing[:4])} for the {head} head")
    return model.eval()


def export_onnx_source(
    source: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    task_head: str = "auto",
    vocab: str | os.PathLike[str] | None = None,
    dtype: str = "float32",
    quantize_int8: bool = False,
    opset: int = DEFAULT_OPSET,
    force: bool = False,
) -> Path:
    """:func:`export_onnx` of a SOURCE as ``python -m DeBERTa.apps.export`` reads it (name, folder, checkpoint,
    run); the head is the checkpoint's (``task_head="auto"``) or the encoder (``"none"``)."""
    _check_request("int8" if quantize_int8 and dtype == "float32" else dtype, opset)
    if task_head not in ("auto", "none"):
        raise OnnxExportError(f"task_head {task_head!r}: expected auto or none")
    check_output(Path(output_dir).expanduser().absolute(), force)
    checkpoint = resolve_source(source)
    check_not_source(Path(output_dir).expanduser().absolute(), checkpoint)
    state, config = deberta.load_model_state(checkpoint)
    head = choose_head(state, task_head)
    model = build_head_model(state, config, head)
    tokenizer = load_tokenizer(vocab, checkpoint, option="--vocab")
    if tokenizer.vocab_size > config.vocab_size:
        raise OnnxExportError(f"the vocabulary has {tokenizer.vocab_size} ids but the model embeds only "
                              f"{config.vocab_size}; give the model's own vocabulary with --vocab")
    return export_onnx(model, config, tokenizer, output_dir, head=head, dtype=dtype, quantize_int8=quantize_int8,
                       opset=opset, force=force)


# --------------------------------------------------------------------------------------------------
# Running and checking
# --------------------------------------------------------------------------------------------------
def ort_session(path: str | os.PathLike[str], *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of ``path`` (a model.onnx, or the folder holding one), ``threads`` intra-op
    threads (None: ONNX Runtime's default), full graph optimisation."""
    ort = require("onnxruntime", "onnx", "running the ONNX export")
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise OnnxExportError(f"{path} does not exist")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: not its notes on float16 nodes it cannot fold ahead of time
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # e.g. an opset newer than this ONNX Runtime runs; its messages span lines
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OnnxExportError(f"ONNX Runtime {ort.__version__} cannot load {path}: {first_line}") from err


def ort_forward_fn(path: str | os.PathLike[str], *, threads: int | None = None
                   ) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """A function batch → output 0 as a float32 tensor, running ``path`` in ONNX Runtime.

    The batch is a dict of int tensors named as the graph's inputs (extra keys, e.g. ``token_type_ids``
    of a model without types, are left out); ONNX Runtime gets int64 arrays.
    """
    session = ort_session(path, threads=threads)
    names = [i.name for i in session.get_inputs()]

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: np.ascontiguousarray(batch[name].cpu().numpy().astype(np.int64)) for name in names}
        return torch.from_numpy(session.run(None, feed)[0].astype(np.float32))

    return forward


def torch_output(model: nn.Module, head: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the graph computes, by the model itself (its fast paths), in inference mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            return _Graph(model, head)(**inputs).float()
    finally:
        model.train(was_training)


def check_onnx_parity(
    model: nn.Module,
    path: str | os.PathLike[str],
    config: deberta.ModelConfig,
    *,
    head: str | None = None,
    lengths: Iterable[int] = (1, 7, 128, 300, 512),
    batch_size: int = 2,
    threads: int | None = None,
) -> dict[int, float]:
    """max |ONNX Runtime − PyTorch| / max(1, max |PyTorch|) of output 0 at each length (random ids, padding).

    Lengths beyond the model's maximum are skipped. The scale keeps a tolerance meaningful for logits of
    any size; for outputs within ±1 (normalised hidden states) it is the absolute difference.
    """
    head = head_of(model) if head is None else head
    forward = ort_forward_fn(path, threads=threads)
    differences = {}
    for length in lengths:
        if length > config.max_position_embeddings:
            continue
        inputs = example_inputs(config, head, batch_size, length, seed=length)
        inputs = {k: v for k, v in inputs.items() if k in input_names(config)}
        expected = torch_output(model, head, inputs)
        actual = forward(inputs)
        if actual.shape != expected.shape:
            raise OnnxExportError(f"ONNX output of shape {tuple(actual.shape)} at length {length}, "
                                  f"PyTorch {tuple(expected.shape)}")
        scale = max(1.0, expected.abs().max().item())
        differences[length] = (actual - expected).abs().max().item() / scale
    return differences


def read_metadata(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The export's ``onnx_export.json``."""
    return json.loads((Path(folder) / METADATA_FILE).read_text(encoding="utf-8"))
