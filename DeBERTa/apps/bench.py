"""Speed and memory of this DeBERTa against ``transformers``' DeBERTa and BERT, and ONNX Runtime running this
DeBERTa's own ONNX export: ``python -m DeBERTa.apps.bench``.

All models live in one process and share weights where they have the same tensors: ``transformers``'
``DebertaModel`` (``DebertaV2Model`` for a v2/v3 preset such as ``--model v3-base``) gets this model's
state dict as it is; BERT (``BertModel`` with PyTorch's SDPA attention) gets the embeddings, LayerNorms,
feed-forward and output projections, and Q/K/V (cut out of v1's fused ``in_proj``). BERT has no
relative attention at all: its time is the floor to approach. ONNX Runtime (``--compare …,onnx``, included
by default on the CPU where ``pip install "deberta[onnx]"`` installed it) runs this model's encoder exported by
:func:`DeBERTa.apps.onnx_export.export_onnx` into a temporary folder (checked against PyTorch there), in
float32 on the CPU with the same number of threads; it is timed in the forward cases only.

For a v2/v3 preset two outside implementations can be timed too, where their packages are installed
(``pip install "deberta[flash]"``; both are written for GPUs in Triton): ``flashdeberta``'s
``FlashDebertaV2Model``, and ``transformers``' ``DebertaV2Model`` with the encoder swapped by
``disentangled-flash`` (its Triton kernels on a GPU, its own PyTorch path on the CPU; in inference its
position tables prepared for the case's length, as its documentation asks). Both get this model's
state dict. They are timed, not measured for memory; one that does not import or cannot take the model
is reported as a failure of that case, in one line, and the rest runs.

Every case is timed in rounds: each round runs every model once, in a rotating order, after warm-up
runs, so that a change in the machine's load falls on all of them alike (all dtypes of a case share
the rounds too). The table gives the median, the interquartile range and the extremes; a speed-up is
the median over rounds of the ratio of the two models' times in the same round, shown beside the
ratio of their fastest runs, which other processes on a shared machine disturb least. The goals of
the issue that asked for this benchmark are judged on the median, and each also counts the rounds
whose own ratio meets it: how close a verdict is.

In inference this model projects the relative positions once and reuses them while the weights stay
the same (see ``DisentangledSelfAttention.position_projections``). The timed forward passes follow
warm-ups, so they reuse them; the row "projections recomputed" times the same model with the reuse
switched off, i.e. what a single call costs.

Peak memory of a training step is the largest amount of tensor memory alive at any moment of the
step: the parameters and optimizer state held before it, plus the largest increase during it
(activations, gradients, temporaries). On GPU the increase comes from ``torch.cuda.max_memory_allocated``;
on CPU, where PyTorch keeps no such counter, from the allocation events of ``torch.profiler``
(``profile_memory=True``), which carry the running total of bytes the CPU allocator handed out.
Allocator caching and the process's own memory are not counted, so the figure compares models, not
processes.

Errors print one line, ``error: ...``, and exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Hashable, Sequence
from contextlib import nullcontext
from functools import partial
from operator import ge, le
from pathlib import Path
from typing import Any, TypeVar, cast

import torch
from torch import nn

from DeBERTa import deberta
from DeBERTa.apps.options import OneLineErrorParser
from DeBERTa.apps.records import write_json
from DeBERTa.deberta import attention
from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.extras import require
from DeBERTa.deberta.pretrained import ENCODER_PREFIX
from DeBERTa.training.optim import fused_adamw

REFERENCES = ("deberta", "bert", "onnx", "flashdeberta", "disentangled-flash")
OUTSIDE_REFERENCES = {"flashdeberta": "flashdeberta", "disentangled-flash": "disentangled_flash"}
"""References from other packages (name → module), DeBERTa v2/v3 only: the ``flash`` extra."""
ONNX_PACKAGES = ("onnx", "onnxruntime", "onnxscript")
"""What ``--compare onnx`` needs: the ``onnx`` extra."""
LABELS = {
    "ours": "this DeBERTa",
    "ours-recomputed": "this DeBERTa, projections recomputed",
    "ours-compiled": "this DeBERTa, torch.compile",
    "deberta": "transformers DeBERTa",
    "bert": "transformers BERT (SDPA)",
    "onnx": "ONNX Runtime (this DeBERTa's export)",
    "flashdeberta": "flashdeberta",
    "disentangled-flash": "disentangled-flash",
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# The targets of the issues that asked for this benchmark (fp32, 2 CPU threads), per preset they apply to:
# (case, baseline, bound, whether ours must be `bound` times faster (True) or may be `bound` times slower, issue).
SPEED_GOALS = {
    "base": (  # DeBERTa v1: issue 8, and issue 21 (this machine class, AVX2 or AVX-512), which asks more
        ("forward 8x128", "deberta", 1.15, True, 8),
        ("forward 1x512", "deberta", 1.5, True, 8),
        ("train 8x128", "deberta", 1.12, True, 8),
        ("forward 8x128", "bert", 1.05, False, 8),
        ("forward 1x512", "bert", 1.2, False, 8),
        ("forward 8x128", "deberta", 1.3, True, 21),
        ("forward 1x512", "deberta", 1.6, True, 21),
        ("train 8x128", "deberta", 1.2, True, 21),
        ("train 8x128", "bert", 1.05, False, 21),
    ),
    "v3-base": (  # issue 16, DeBERTa v3
        ("forward 8x128", "deberta", 1.25, True, 16),
        ("forward 1x512", "deberta", 1.6, True, 16),
        ("train 8x128", "deberta", 1.15, True, 16),
        ("forward 8x128", "bert", 1.1, False, 16),
        ("train 8x128", "bert", 1.1, False, 16),
    ),
}
MEMORY_GOALS = {"base": ("train 8x512", "deberta", 0.8), "v3-base": ("train 8x512", "deberta", 0.6)}
"""Per preset: ours at most bound × the baseline's peak training memory."""
ISSUES = {preset: ", ".join(str(number) for number in sorted({goal[4] for goal in goals}))
          for preset, goals in SPEED_GOALS.items()}
"""Per preset: the issues whose goals :data:`SPEED_GOALS` holds, as the report names them."""


class BenchError(DeBERTaError):
    """A benchmark that cannot run as asked (bad flag, missing package, no GPU)."""


@dataclasses.dataclass(frozen=True)
class Shape:
    """A batch of ``batch`` sequences of ``length`` tokens; spelled ``8x128`` on the command line."""

    batch: int
    length: int

    @classmethod
    def parse(cls, text: str) -> Shape:
        try:
            batch, length = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise BenchError(f"shape {text!r} is not BATCHxLENGTH, e.g. 8x128") from None
        if batch < 1 or length < 2:
            raise BenchError(f"shape {text!r}: the batch must be at least 1 and the length at least 2")
        return cls(batch, length)

    def __str__(self) -> str:
        return f"{self.batch}x{self.length}"


@dataclasses.dataclass
class Timing:
    """The times of one model in one case, milliseconds per call."""

    case: str
    dtype: str
    model: str
    tokens: int
    times_ms: list[float]

    def summary(self) -> dict[str, float]:
        q1, median, q3 = statistics.quantiles(self.times_ms, n=4, method="inclusive")
        return {"median_ms": median, "p25_ms": q1, "p75_ms": q3, "min_ms": min(self.times_ms),
                "max_ms": max(self.times_ms), "tokens_per_s": self.tokens / median * 1000.0}


# --------------------------------------------------------------------------------------------------
# The models, with shared weights
# --------------------------------------------------------------------------------------------------
def hf_deberta_config(config: deberta.ModelConfig, num_labels: int):
    """transformers' config of the same model: ``DebertaConfig``, or ``DebertaV2Config`` for v2/v3."""
    import transformers

    cls = transformers.DebertaV2Config if config.is_v2 else transformers.DebertaConfig
    # ignore: transformers' configs take extra keyword arguments, which their dataclass typing does not show
    return cls(**config.to_hf_dict(), num_labels=num_labels)  # type: ignore[call-arg]


def hf_deberta_class(config: deberta.ModelConfig, train: bool) -> type:
    """transformers' encoder class of the same family, or its sequence classifier (``train``)."""
    import transformers

    family = "DebertaV2" if config.is_v2 else "Deberta"
    return getattr(transformers, family + ("ForSequenceClassification" if train else "Model"))


def bert_config(config: deberta.ModelConfig, num_labels: int):
    import transformers

    # ignore: transformers' configs take extra keyword arguments, which their dataclass typing does not show
    return transformers.BertConfig(  # type: ignore[call-arg]
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act=config.hidden_act, hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings, type_vocab_size=max(config.type_vocab_size, 2),
        layer_norm_eps=config.layer_norm_eps, num_labels=num_labels, attn_implementation="sdpa",
    )


def bert_state_from_ours(ours: dict[str, torch.Tensor], config: deberta.ModelConfig, prefix: str) -> dict:
    """The tensors BERT shares with our state (keys of our encoder under ``prefix``), in BERT's names."""
    heads, width = config.num_attention_heads, config.head_size
    state = {}
    for key, value in ours.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.endswith("attention.self.in_proj.weight"):
            # The fused weight is interleaved per head, [q_h, k_h, v_h]; BERT's are separate matrices.
            layer = name[: -len("in_proj.weight")]
            for part, weight in zip(("query", "key", "value"), value.view(heads, 3, width, -1).unbind(1), strict=True):
                state[layer + part + ".weight"] = weight.reshape(heads * width, -1)  # (D, D)
            state[layer + "key.bias"] = torch.zeros(heads * width)
        elif name.endswith("attention.self.q_bias"):
            state[name.replace("q_bias", "query.bias")] = value
        elif name.endswith("attention.self.v_bias"):
            state[name.replace("v_bias", "value.bias")] = value
        elif any(f"attention.self.{part}_proj." in name for part in ("query", "key", "value")):  # v2/v3
            state[name.replace("_proj.", ".")] = value
        elif "attention.self.pos_" not in name and not name.startswith(("encoder.rel_embeddings", "encoder.LayerNorm",
                                                                         "encoder.conv")):
            state[name] = value  # BERT has no relative attention (nor v2's table norm and convolution)
    return state


def build_models(config: deberta.ModelConfig, names: Sequence[str], train: bool, device: torch.device,
                 seed: int) -> dict[str, nn.Module]:
    """Ours and the named references: encoders, or (``train``) sequence classifiers with 2 labels."""
    import transformers

    torch.manual_seed(seed)
    ours = deberta.SequenceClassificationModel(config, num_labels=2) if train else deberta.DeBERTa(config)
    state = ours.state_dict()
    models: dict[str, nn.Module] = {"ours": ours}  # "onnx" is not a PyTorch model: see onnx_forward_fn
    if "deberta" in names:
        models["deberta"] = hf_deberta_class(config, train)(hf_deberta_config(config, 2))
        models["deberta"].load_state_dict(state, strict=True)
    if "bert" in names:
        if train:
            bert: nn.Module = transformers.BertForSequenceClassification(bert_config(config, 2))
            shared = {"bert." + k: v for k, v in bert_state_from_ours(state, config, ENCODER_PREFIX).items()}
            shared.update({k: state[k] for k in ("classifier.weight", "classifier.bias")})
            shared.update({"bert.pooler.dense." + p: state["pooler.dense." + p] for p in ("weight", "bias")})
        else:  # DebertaModel has no pooler either
            bert = transformers.BertModel(bert_config(config, 2), add_pooling_layer=False)
            shared = bert_state_from_ours(state, config, "")
        missing, unexpected = bert.load_state_dict(shared, strict=False)
        if unexpected or any("position_embeddings" not in k and "token_type" not in k for k in missing):
            raise RuntimeError(f"BERT weights do not line up: missing {missing}, unexpected {unexpected}")
        models["bert"] = bert
    for model in models.values():
        model.to(device).train(train)
    return models


def build_outside_reference(name: str, config: deberta.ModelConfig, state: dict[str, torch.Tensor], train: bool,
                            device: torch.device, length: int) -> nn.Module:
    """The reference ``name`` of :data:`OUTSIDE_REFERENCES` holding ``state`` (this model's weights, in
    transformers' layout) on ``device``: an encoder, or (``train``) a sequence classifier; inference
    prepared for sequences of ``length``. A :class:`BenchError` (one line) where it cannot be built."""
    try:
        package = require(OUTSIDE_REFERENCES[name], "flash", f"--compare {name}")
    except DeBERTaError as err:  # not installed, or installed but its import fails: the line says which
        raise BenchError(str(err)) from None
    except Exception as err:  # an import that fails otherwise (against this transformers or torch)
        raise BenchError(f"{name} does not import here: {one_line(err)}") from None
    try:
        if name == "flashdeberta":
            model_class = (package.FlashDebertaV2ForSequenceClassification if train
                           else package.FlashDebertaV2Model)
            model = model_class(hf_deberta_config(config, 2))
            model.load_state_dict(state, strict=True)
            return model.to(device).train(train)
        model = hf_deberta_class(config, train)(hf_deberta_config(config, 2))
        model.load_state_dict(state, strict=True)
        model.to(device).train(train)
        backbone = model.get_submodule("deberta") if train else model
        # "triton" keeps transformers' own encoder where Triton cannot run: checked below, never timed as theirs
        backend = "triton" if device.type == "cuda" else "torch"
        package.optimize_deberta(backbone, backend=backend, inference=not train,
                                 sequence_lengths=None if train else length)
    except Exception as err:  # their code refusing this model (a head size, a transformers version): reported
        raise BenchError(f"{name} cannot take this model: {one_line(err)}") from None
    if not isinstance(backbone.get_submodule("encoder"), package.DebertaV2OptimizedEncoder):
        raise BenchError(f"{name}: its Triton kernels do not run here (no Triton, or a head size it lacks)")
    return model


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def make_batch(shape: Shape, vocab_size: int, device: torch.device, seed: int) -> dict[str, torch.Tensor]:
    """Random token ids (B, L), a full attention mask and labels (B,): no padding, as in the issue's timings."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab_size, (shape.batch, shape.length), generator=gen)
    return {"ids": ids.to(device), "mask": torch.ones_like(ids).to(device),
            "labels": torch.randint(0, 2, (shape.batch,), generator=gen).to(device)}


def autocaster(device: torch.device, dtype: str) -> Callable[[], Any]:
    """A factory of the autocast context for ``dtype`` (fp32: none)."""
    if dtype == "fp32":
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=DTYPES[dtype])


def forward_fn(name: str, model: nn.Module, batch: dict[str, torch.Tensor], autocast) -> Callable[[], Any]:
    """One inference forward pass: the last layer's hidden states (B, L, D)."""
    context = (lambda: attention.options(reuse_position_projections=False)) if name == "ours-recomputed" \
        else nullcontext

    def forward() -> torch.Tensor:
        with torch.inference_mode(), autocast(), context():
            if name.startswith("ours"):
                return model(batch["ids"], batch["mask"], output_all_encoded_layers=False)[-1]
            return model(input_ids=batch["ids"], attention_mask=batch["mask"]).last_hidden_state

    return forward


def onnx_forward_fn(model: nn.Module, config: deberta.ModelConfig, batch: dict[str, torch.Tensor], folder: Path,
                    threads: int) -> Callable[[], Any]:
    """One forward pass of ``model`` (our encoder) in ONNX Runtime: exported into ``folder`` on the first call
    for this folder, then reused (the same seed builds the same weights in every case)."""
    from DeBERTa.apps import onnx_export

    if not (folder / onnx_export.MODEL_FILE).is_file():
        onnx_export.export_onnx(model, config, None, folder, force=True)
    run = onnx_export.ort_forward_fn(folder, threads=threads)
    inputs = {"input_ids": batch["ids"], "attention_mask": batch["mask"],
              "token_type_ids": torch.zeros_like(batch["ids"])}  # used where the model has token types
    return lambda: run(inputs)


def adamw(model: nn.Module) -> torch.optim.Optimizer:
    """Every model's optimizer: AdamW, fused where the training engine fuses it (its share of a step is then
    the same as in a real run, and the models' own differences show more)."""
    return torch.optim.AdamW(model.parameters(), lr=1e-5, fused=fused_adamw(model.parameters()))


def train_step_fn(name: str, model: nn.Module, batch: dict[str, torch.Tensor], autocast,
                  optimizer: torch.optim.Optimizer) -> Callable[..., None]:
    """Forward with labels, backward, ``optimizer`` step, gradients set to None (so they count in the step's
    memory)."""
    def step(batch: dict[str, torch.Tensor] = batch) -> None:
        with autocast():
            if name.startswith("ours"):
                loss = model(batch["ids"], input_mask=batch["mask"], labels=batch["labels"]).loss
            else:
                loss = model(input_ids=batch["ids"], attention_mask=batch["mask"], labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


# --------------------------------------------------------------------------------------------------
# Timing, accuracy, memory
# --------------------------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_Key = TypeVar("_Key", bound=Hashable)


def time_round_robin(fns: dict[_Key, Callable[[], Any]], warmup: int, repeats: int,
                     device: torch.device) -> tuple[dict[_Key, list[float]], dict[_Key, str]]:
    """Milliseconds per call of each function: warm-ups, then ``repeats`` rounds in rotating order.

    A function that fails in its first call is left out; the second result maps it to its error.
    """
    failures: dict[_Key, str] = {}
    for name, fn in fns.items():
        try:
            for _ in range(max(warmup, 1)):
                fn()
        except Exception as err:  # a reference model that cannot run this case, e.g. under autocast
            failures[name] = one_line(err)
    synchronize(device)
    names = [name for name in fns if name not in failures]
    times: dict[_Key, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            start = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times, failures


def relative_error(got: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    """max |Δ| / max |reference| and ‖Δ‖ / ‖reference‖."""
    delta = got.float() - reference.float()
    return {"max_abs_relative": (delta.abs().max() / reference.abs().max()).item(),
            "norm_relative": (delta.norm() / reference.norm()).item()}


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def held_bytes(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the parameters, buffers and optimizer state: what a training step starts with."""
    state = [t for s in optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    return tensor_bytes(model.parameters()) + tensor_bytes(model.buffers()) + tensor_bytes(state)


def peak_increase_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """The largest increase of allocated tensor memory while ``fn()`` runs, in bytes."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Each allocation event carries the allocator's running total of the bytes allocated since profiling
    # started (frees of older tensors count negative), so the peak increase is the largest total.
    peak = 0
    pending = list(prof.profiler.kineto_results.experimental_event_tree())
    while pending:
        event = pending.pop()
        pending.extend(event.children)
        total = getattr(event.extra_fields, "total_allocated", None)
        if total is not None:
            peak = max(peak, total)
    return peak


def measure_training_memory(config: deberta.ModelConfig, names: Sequence[str], shape: Shape, dtype: str,
                            device: torch.device, seed: int) -> dict[str, dict[str, int]]:
    """Peak tensor memory of one training step of each model, built and measured one at a time."""
    results = {}
    for name in names:
        model = build_models(config, [name], train=True, device=device, seed=seed).pop(name)  # the others go
        optimizer = adamw(model)
        step = train_step_fn(name, model, make_batch(shape, config.vocab_size, device, seed), autocaster(device, dtype),
                             optimizer)
        step(make_batch(Shape(1, 8), config.vocab_size, device, seed))  # creates the optimizer state
        held = held_bytes(model, optimizer)
        increase = peak_increase_bytes(step, device)
        results[name] = {"held_bytes": held, "step_increase_bytes": increase, "peak_bytes": held + increase}
        del model, optimizer, step
        gc.collect()
    return results


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise BenchError(f"--device {args.device}: not a device name (cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"--device {args.device}: the benchmark runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no GPU is visible to PyTorch")
    torch.set_num_threads(args.threads)
    overrides = {"hidden_dropout_prob": args.dropout, "attention_probs_dropout_prob": args.dropout}
    if args.layers is not None:
        overrides["num_hidden_layers"] = args.layers
    try:
        config = deberta.ModelConfig.preset(args.model, **overrides)
    except deberta.ConfigError as err:
        raise BenchError(f"--model: {err}") from None
    outside = [name for name in args.compare if name in OUTSIDE_REFERENCES]
    if outside and not config.is_v2:
        raise BenchError(f"--compare {outside[0]}: it has DeBERTa v2/v3 models only, and --model {args.model} is v1")
    timings: list[Timing] = []
    failures: list[dict[str, str]] = []
    accuracy: list[dict[str, Any]] = []
    torch_names = [name for name in args.compare if name != "onnx"]
    with contextlib.ExitStack() as cleanup:
        onnx_folder = None
        if "onnx" in args.compare and args.forward and "fp32" in args.dtype:
            onnx_folder = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="deberta-bench-onnx-")))
        timings, failures, accuracy = time_cases(args, config, device, torch_names, onnx_folder)
    memory = {}
    for shape in args.memory:
        log(args, f"memory train {shape} {args.dtype[0]} ...")
        names = ["ours", *(n for n in torch_names if n not in OUTSIDE_REFERENCES)]
        memory[f"train {shape} {args.dtype[0]}"] = measure_training_memory(
            config, names, shape, args.dtype[0], device, args.seed)
    return report_data(args, config, timings, failures, accuracy, memory)


def time_cases(args: argparse.Namespace, config: deberta.ModelConfig, device: torch.device, names: list[str],
               onnx_folder: Path | None) -> tuple[list[Timing], list[dict[str, str]], list[dict[str, Any]]]:
    """The timings of every case, the models that failed in one, and the accuracy of lower precisions.

    ``names``: the PyTorch references; ``onnx_folder``: where ONNX Runtime's model is exported (None: not
    timed), float32 forward cases only.
    """
    timings: list[Timing] = []
    failures: list[dict[str, str]] = []
    accuracy: list[dict[str, Any]] = []
    outside = [name for name in names if name in OUTSIDE_REFERENCES]
    inside = [name for name in names if name not in outside]
    for kind, shape in [("forward", s) for s in args.forward] + [("train", s) for s in args.train]:
        case = f"{kind} {shape}"
        log(args, f"{case} ...")
        models = build_models(config, inside, train=kind == "train", device=device, seed=args.seed)
        batch = make_batch(shape, config.vocab_size, device, args.seed)
        for name in outside:
            try:
                models[name] = build_outside_reference(name, config, models["ours"].state_dict(), kind == "train",
                                                       device, shape.length)
            except BenchError as err:
                failures += [{"case": case, "dtype": dtype, "model": name, "error": str(err)} for dtype in args.dtype]
        # Every dtype of every model in the same rounds, so that bf16 and fp32 are compared pairwise too.
        if kind == "forward":
            models["ours-recomputed"] = models["ours"]  # the same model, its reuse switched off
            if args.compile:
                # cast: compiling a module gives an OptimizedModule (a Module); torch.compile's stub says a callable
                models["ours-compiled"] = cast(nn.Module, torch.compile(models["ours"], fullgraph=True))
            fns = {(n, dtype): forward_fn(n, m, batch, autocaster(device, dtype)) for dtype in args.dtype
                   for n, m in models.items()}
            if onnx_folder is not None:
                log(args, f"{case}: ONNX Runtime ..." if any(onnx_folder.iterdir()) else
                    f"{case}: exporting this DeBERTa to ONNX ...")
                try:
                    fns["onnx", "fp32"] = onnx_forward_fn(models["ours"], config, batch, onnx_folder, args.threads)
                except DeBERTaError as err:  # the export refused, or ONNX Runtime cannot load it: reported
                    failures.append({"case": case, "dtype": "fp32", "model": "onnx", "error": str(err)})
            if any(dtype != "fp32" for dtype in args.dtype):  # lower precision against one fp32 reference
                reference = forward_fn("ours", models["ours"], batch, nullcontext)()
                for dtype in args.dtype:
                    if dtype != "fp32":
                        accuracy.append({"case": case, "dtype": dtype,
                                         **relative_error(fns["ours", dtype](), reference)})
                del reference
        else:
            if args.compile:  # the encoder compiled; the loss's data-dependent branches stay eager
                models["ours-compiled"] = copy.deepcopy(models["ours"])
                # cast: as above; get_submodule: nn.Module types an attribute as a tensor or a module
                models["ours-compiled"].deberta = cast(nn.Module, torch.compile(
                    models["ours-compiled"].get_submodule("deberta"), fullgraph=True))
            optimizers = {n: adamw(m) for n, m in models.items()}  # one state
            fns = {(n, dtype): train_step_fn(n, m, batch, autocaster(device, dtype), optimizers[n])
                   for dtype in args.dtype for n, m in models.items()}
        times, errors = time_round_robin(fns, args.warmup, args.repeats, device)
        timings += [Timing(case, dtype, n, shape.batch * shape.length, t) for (n, dtype), t in times.items()]
        failures += [{"case": case, "dtype": dtype, "model": n, "error": e} for (n, dtype), e in errors.items()]
        del models, fns
        gc.collect()
    return timings, failures, accuracy


def paired_speedup(timings: list[Timing], case: str, model: tuple[str, str],
                   baseline: tuple[str, str]) -> dict[str, Any] | None:
    """The baseline's time / the model's (> 1: the model is faster); model and baseline are (name, dtype).

    ``speedup``: the median over rounds of the ratio within a round (``speedup_by_round``).
    ``speedup_of_minima``: the ratio of the fastest runs, which a busy machine disturbs least (other
    processes only ever add time).
    """
    found = {(t.model, t.dtype): t for t in timings if t.case == case}
    if model not in found or baseline not in found:
        return None
    by_round = [b / m for b, m in zip(found[baseline].times_ms, found[model].times_ms, strict=True)]
    return {"speedup": statistics.median(by_round), "speedup_by_round": by_round,
            "speedup_of_minima": min(found[baseline].times_ms) / min(found[model].times_ms)}


def speed_goal(goal: str, speedups: dict[str, Any], meets: Callable[[float], bool],
               as_time: bool = False) -> dict[str, Any]:
    """Judge a speed goal on the median ratio, and count the rounds that meet it on their own.

    ``speedups`` from :func:`paired_speedup`; ``meets`` tells whether a value meets the goal. The value
    is the speed-up, or with ``as_time`` the ratio of the times (its inverse: this model's time / the
    baseline's). The count says how close a verdict is: a median on the line meets in about half the rounds.
    """
    value, of_minima, *by_round = (1 / s if as_time else s for s in (
        speedups["speedup"], speedups["speedup_of_minima"], *speedups["speedup_by_round"]))
    return {"goal": goal, "value": value, "value_of_minima": of_minima, "met": meets(value),
            "rounds_met": sum(map(meets, by_round)), "rounds": len(by_round)}


def report_data(args, config, timings: list[Timing], failures: list[dict], accuracy: list[dict],
                memory: dict) -> dict[str, Any]:
    results = [{"case": t.case, "dtype": t.dtype, "model": t.model, "times_ms": t.times_ms, **t.summary()}
               for t in timings]
    ratios = []
    for t in timings:
        for ours in ("ours", "ours-recomputed", "ours-compiled"):
            speedup = paired_speedup(timings, t.case, (ours, t.dtype), (t.model, t.dtype))
            if t.model in REFERENCES and speedup is not None:
                ratios.append({"case": t.case, "dtype": t.dtype, "model": ours, "baseline": t.model, **speedup})
        if t.model == "ours" and t.dtype != "fp32":
            speedup = paired_speedup(timings, t.case, ("ours", t.dtype), ("ours", "fp32"))
            if speedup is not None:
                ratios.append({"case": t.case, "dtype": t.dtype, "model": "ours", "baseline": "ours fp32",
                               **speedup})
    goals = []
    preset = args.model if args.model in SPEED_GOALS else "base"  # other presets: judged against v1's
    for case, baseline, bound, faster, issue in SPEED_GOALS[preset]:
        found = paired_speedup(timings, case, ("ours", "fp32"), (baseline, "fp32"))
        if found is None:
            continue
        if faster:
            goals.append(speed_goal(f"{case}: ≥ {bound}× the speed of {LABELS[baseline]} (#{issue})", found,
                                    partial(le, bound)))  # met when bound <= value
        else:
            goals.append(speed_goal(f"{case}: within {bound}× the time of {LABELS[baseline]} (#{issue})", found,
                                    partial(ge, bound), as_time=True))  # met when bound >= value
    case, baseline, bound = MEMORY_GOALS[preset]
    found = memory.get(f"{case} fp32", {})
    if "ours" in found and baseline in found:
        value = found["ours"]["peak_bytes"] / found[baseline]["peak_bytes"]
        goals.append({"goal": f"peak memory, {case}: ≤ {bound}× {LABELS[baseline]}", "value": value,
                      "met": value <= bound})
    for r in ratios:
        if r["dtype"] == "bf16" and r["baseline"] == "ours fp32":
            goals.append(speed_goal(f"{r['case']}: bf16 faster than fp32", r, lambda value: value > 1))
    return {
        "settings": {k: (v if not isinstance(v, list) else [str(x) for x in v]) for k, v in vars(args).items()},
        "model_config": dataclasses.asdict(config),
        "environment": environment(),
        "results": results, "failures": failures, "ratios": ratios, "accuracy": accuracy, "memory": memory,
        "goals": goals,
        "goals_apply": args.model in SPEED_GOALS and args.layers is None and args.threads == 2
        and args.device == "cpu",
        "goals_issue": ISSUES[preset],
    }


def environment() -> dict[str, Any]:
    import transformers

    ort = importlib.util.find_spec("onnxruntime") and importlib.import_module("onnxruntime")
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": ort.__version__ if ort else None,
            "python": platform.python_version(), "machine": platform.machine(), "cpu": cpu_name(),
            "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def format_table(data: dict[str, Any]) -> str:
    """The printed report: timings, speed-ups, accuracy, memory, goals."""
    lines = [f"{'case':<14} {'dtype':<5} {'model':<37} {'median ms':>9} {'IQR ms':>15} {'min–max ms':>15} "
             f"{'tokens/s':>8}"]
    for r in data["results"]:
        lines.append(f"{r['case']:<14} {r['dtype']:<5} {LABELS[r['model']]:<37} {r['median_ms']:>9.1f} "
                     f"{r['p25_ms']:>7.1f}–{r['p75_ms']:<7.1f} {r['min_ms']:>7.1f}–{r['max_ms']:<7.1f} "
                     f"{r['tokens_per_s']:>8.0f}")
    for f in data["failures"]:
        lines.append(f"{f['case']:<14} {f['dtype']:<5} {LABELS[f['model']]:<37} failed: {f['error'][:70]}")
    lines += ["", "speed-up: the baseline's time / this model's (> 1: this one is faster); the median over rounds",
              "of the ratio within a round, and the ratio of the fastest runs (what a busy machine disturbs least)"]
    for r in data["ratios"]:
        lines.append(f"  {r['case']:<14} {r['dtype']:<5} {LABELS[r['model']]:<37} vs "
                     f"{LABELS.get(r['baseline'], r['baseline']):<26} {r['speedup']:5.2f}×  "
                     f"(fastest {r['speedup_of_minima']:5.2f}×)")
    if data["accuracy"]:
        lines += ["", "lower precision against float32 (this model, last layer, same batch)"]
        for a in data["accuracy"]:
            lines.append(f"  {a['case']:<14} {a['dtype']:<5} max |Δ| / max |fp32| = {a['max_abs_relative']:.2e}, "
                         f"‖Δ‖ / ‖fp32‖ = {a['norm_relative']:.2e}")
    for case, per_model in data["memory"].items():
        lines += ["", f"peak tensor memory of a training step, {case} (held: parameters and optimizer state)"]
        for name, m in per_model.items():
            mib = {key: value / 2**20 for key, value in m.items()}
            lines.append(f"  {LABELS[name]:<37} peak {mib['peak_bytes']:7.0f} MiB   held {mib['held_bytes']:6.0f} MiB"
                         f"   step increase {mib['step_increase_bytes']:6.0f} MiB")
    if data["goals"]:
        note = "" if data["goals_apply"] else " (set for base size, fp32, 2 CPU threads; not these settings)"
        lines += ["", f"goals of issues {data['goals_issue']} (judged on the median; in brackets the fastest runs' "
                      f"ratio, and the rounds that meet the goal){note}"]
        for g in data["goals"]:
            rounds = f" ({g['value_of_minima']:.3f}; {g['rounds_met']} of {g['rounds']})" if "rounds" in g else ""
            lines.append(f"  {'met    ' if g['met'] else 'NOT met'}  {g['goal']:<70} {g['value']:.3f}{rounds}")
    env = data["environment"]
    lines += ["", f"torch {env['torch']}, transformers {env['transformers']}, {env['cpu']}, "
              f"{data['settings']['threads']} threads, load average {env['load_average'][0]:.2f} at the end"]
    return "\n".join(lines)


def log(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def onnx_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ONNX_PACKAGES)


def parse_shapes(text: str) -> list[Shape]:
    return [Shape.parse(part) for part in text.split(",") if part.strip()]


def parse_names(text: str, allowed: Sequence[str], what: str) -> list[str]:
    items = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise BenchError(f"unknown {what} {', '.join(unknown)} (known: {', '.join(allowed)})")
    return items


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0, or 2 after a one-line error)."""
    parser = OneLineErrorParser(
        prog="python -m DeBERTa.apps.bench", error_type=BenchError,
        description="Time this DeBERTa against transformers' DeBERTa and BERT (SDPA) in one process: "
        "forward passes, training steps (sequence classification, fused AdamW) and the peak memory of a "
        "training step. Shapes are BATCHxLENGTH lists; an empty list skips that part.",
    )
    parser.add_argument("--model", default="base",
                        help="a preset: base, large, small, tiny (v1); v3-base, v3-large, v3-small, v3-xsmall, "
                        "mdeberta-v3-base, v2-xlarge, v2-xxlarge, v3-tiny (v2/v3)")
    parser.add_argument("--layers", type=int, help="override the number of layers of the preset")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", default="fp32,bf16",
                        help="comma-separated: fp32, bf16, fp16 (the last two under autocast); memory is "
                        "measured in the first")
    parser.add_argument("--forward", default="8x128,1x512", help="shapes of forward passes")
    parser.add_argument("--train", default="8x128", help="shapes of training steps")
    parser.add_argument("--memory", default="8x512", help="shapes of training steps whose peak memory is measured")
    parser.add_argument("--compare",
                        help="reference models: deberta (transformers DebertaModel), bert (BertModel, SDPA), onnx "
                        "(ONNX Runtime on this model's export, fp32 forwards), and for v2/v3 flashdeberta and "
                        "disentangled-flash (pip install \"deberta[flash]\"); default deberta,bert and onnx where "
                        "its packages are installed and --device is cpu")
    parser.add_argument("--compile", action="store_true",
                        help="also time this model under torch.compile(fullgraph=True)")
    parser.add_argument("--dropout", type=float, default=0.1, help="hidden and attention dropout of all models")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per case")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs of each model before the rounds (at least one always runs)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    try:
        args = parser.parse_args(argv)
        args.dtype = parse_names(args.dtype, tuple(DTYPES), "dtype")
        if args.compare is None:
            args.compare = "deberta,bert" + (",onnx" if onnx_installed() and args.device == "cpu" else "")
        args.compare = parse_names(args.compare, REFERENCES, "model to compare with")
        if "onnx" in args.compare:
            if not onnx_installed():
                raise BenchError("--compare onnx needs " + ", ".join(ONNX_PACKAGES) + ' (pip install "deberta[onnx]")')
            if args.device != "cpu":
                raise BenchError("--compare onnx times ONNX Runtime on the CPU; use --device cpu")
        args.forward, args.train, args.memory = (parse_shapes(s) for s in (args.forward, args.train, args.memory))
        if not args.dtype:
            raise BenchError("--dtype: name at least one of fp32, bf16, fp16")
        if args.repeats < 2 or args.warmup < 0 or args.threads < 1:
            raise BenchError("--repeats must be at least 2, --warmup at least 0 and --threads at least 1")
        try:
            import transformers  # noqa: F401
        except ImportError:
            raise BenchError("the benchmark compares with transformers, which is not installed "
                             "(pip install -r requirements-test.txt)") from None
        data = run(args)
    except DeBERTaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(data))
    if args.json:
        try:
            write_json(Path(args.json), data)
        except OSError as err:  # a full disk or a folder we may not write
            print(f"error: --json {args.json}: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
