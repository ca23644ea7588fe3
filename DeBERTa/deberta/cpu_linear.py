"""The layers' linear maps in CPU float32 through oneDNN: in inference with the bias and GELU inside the product.

``torch.nn.functional.linear`` on the CPU calls the BLAS PyTorch was built with (MKL in the official
wheels): it first copies the bias into the output, then adds the product. oneDNN's matrix product (the
operation ``torch.ops.mkldnn._linear_pointwise``, which PyTorch's own compiler uses for CPU inference)
adds the bias and applies a GELU or ReLU as it writes each block of the output; on the AMD EPYC this
project is developed on it was also faster for every shape of a base layer (README, "Speed"). The
results are the same within float32 rounding (another order of the same sums).

:func:`linear` is the one entry: it takes oneDNN where :func:`applies` (float32 on the CPU, no autocast,
not compiled or exported, the option ``onednn_linear`` of :func:`~DeBERTa.deberta.attention.options` on,
the operation present), else ``F.linear``. Where a gradient is wanted the product runs in oneDNN, the
activation after it, and the input's gradient in oneDNN too (:class:`OneDNNLinear`, :func:`matmul`): on
that EPYC, MKL was slower at the product of the gradient with the weight, (N, out)·(out, in). The
weight's gradient, (out, N)·(N, in), stays in MKL: oneDNN first copies a transposed operand into rows,
and was no faster (README, "Speed").
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F

from .attention import current_options, exporting

FUSED_ACTIVATIONS: dict[str, tuple[str, str]] = {
    "gelu": ("gelu", "none"),  # the exact, erf-based GELU
    "gelu_new": ("gelu", "tanh"),
    "gelu_fast": ("gelu", "tanh"),
    "relu": ("relu", ""),
}
"""Activations (config names) oneDNN applies inside the product: name → (oneDNN attribute, algorithm)."""


@functools.cache
def available() -> bool:
    """Whether this PyTorch has oneDNN's linear operation (a CPU build with oneDNN, as the official wheels)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


_failed = False  # set when the operation raised once: the process then stays on F.linear


def _usable(*tensors: torch.Tensor) -> bool:
    """Whether oneDNN takes these float32 CPU tensors here and now (:func:`applies` adds: no autocast)."""
    return (
        current_options().onednn_linear
        and not _failed
        and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.numel() > 0 for t in tensors)
        and not torch.compiler.is_compiling()
        and not exporting()
        and available()
    )


def applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether :func:`linear` takes oneDNN for these tensors here and now."""
    return not torch.is_autocast_enabled("cpu") and _usable(x, weight, *([] if bias is None else [bias]))


def _fail(error: RuntimeError) -> None:
    """Take PyTorch's product from now on, saying once why."""
    global _failed
    _failed = True
    warnings.warn(f"oneDNN's linear operation failed ({str(error).splitlines()[0]}); using PyTorch's product",
                  stacklevel=3)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a·b for matrices a (M, K), b (K, N), in oneDNN where it is usable, else ``a @ b``. Any strides, but
    oneDNN copies an ``a`` whose rows are not contiguous first."""
    if _usable(a, b):
        try:
            return torch.ops.mkldnn._linear_pointwise(a, b.t(), None, "none", [], "")  # a·(bᵀ)ᵀ
        except RuntimeError as error:
            _fail(error)
    return a @ b


def product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, attribute: str,
            algorithm: str) -> torch.Tensor:
    """oneDNN's x·Wᵀ + b with the activation ``attribute`` ("none", "gelu", "relu") applied inside."""
    rows = x.reshape(-1, x.shape[-1])
    out = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, attribute, [], algorithm)
    return out.view(*x.shape[:-1], weight.shape[0])


class OneDNNLinear(torch.autograd.Function):
    """x·Wᵀ + b forward in oneDNN; backward the same two matrix products as ``F.linear``'s, the input's
    gradient by :func:`matmul`, and the bias's sum."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return product(x, weight, bias, "none", "")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        x, weight = ctx.saved_tensors
        rows = grad.reshape(-1, grad.shape[-1]).contiguous()  # (N, out); an expanded gradient made whole
        grad_x = matmul(rows, weight).view(x.shape) if ctx.needs_input_grad[0] else None
        grad_weight = rows.t() @ x.reshape(-1, x.shape[-1]) if ctx.needs_input_grad[1] else None
        grad_bias = rows.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_weight, grad_bias


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           activation: str | None = None) -> torch.Tensor:
    """activation(x·Wᵀ + b): x (..., in), weight (out, in), bias (out,) → (..., out).

    ``activation`` is a config name of :data:`FUSED_ACTIVATIONS` (or None); oneDNN applies it inside the
    product, ``F.linear`` paths apply it after (in place where no gradient is wanted).
    """
    if activation is not None and activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(FUSED_ACTIVATIONS)}")
    wants_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias))
    out = None
    if applies(x, weight, bias):
        try:
            if wants_grad:  # the product in oneDNN, its gradients by PyTorch; the activation after, for autograd
                out = OneDNNLinear.apply(x, weight, bias)
            else:
                return product(x, weight, bias, *(FUSED_ACTIVATIONS[activation] if activation else ("none", "")))
        except RuntimeError as error:  # a build whose operation refuses these tensors: PyTorch's path from now on
            _fail(error)
    if out is None:
        out = F.linear(x, weight, bias)
    if activation is None:
        return out
    in_place = not wants_grad
    if FUSED_ACTIVATIONS[activation][0] == "relu":
        return torch.relu_(out) if in_place else torch.relu(out)
    approximate = FUSED_ACTIVATIONS[activation][1]
    return torch.ops.aten.gelu_(out, approximate=approximate) if in_place else F.gelu(out, approximate=approximate)
