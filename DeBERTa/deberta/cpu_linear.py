"""The layers' linear maps in CPU float32 inference through oneDNN, with the bias and GELU inside the product.

``torch.nn.functional.linear`` on the CPU calls the BLAS PyTorch was built with (MKL in the official
wheels): it first copies the bias into the output, then adds the product. oneDNN's matrix product (the
operation ``torch.ops.mkldnn._linear_pointwise``, which PyTorch's own compiler uses for CPU inference)
adds the bias and applies a GELU or ReLU as it writes each block of the output; on the AMD EPYC this
project is developed on it was also faster for every shape of a base layer (README, "Speed"). The
results are the same within float32 rounding (another order of the same sums).

:func:`linear` is the one entry: it takes oneDNN where :func:`applies` (float32 on the CPU, no gradient
wanted, no autocast, not compiled or exported, the option ``onednn_linear`` of
:func:`~DeBERTa.deberta.attention.options` on, the operation present), else ``F.linear``.
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


def applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> bool:
    """Whether :func:`linear` takes oneDNN for these tensors here and now."""
    return (
        current_options().onednn_linear
        and not _failed
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and (bias is None or bias.dtype == torch.float32)
        and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad
                                              or (bias is not None and bias.requires_grad)))
        and not torch.is_autocast_enabled("cpu")
        and not torch.compiler.is_compiling()
        and not exporting()
        and x.numel() > 0
        and available()
    )


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           activation: str | None = None) -> torch.Tensor:
    """activation(x·Wᵀ + b): x (..., in), weight (out, in), bias (out,) → (..., out).

    ``activation`` is a config name of :data:`FUSED_ACTIVATIONS` (or None); oneDNN applies it inside the
    product, ``F.linear`` paths apply it after (in place where no gradient is wanted).
    """
    global _failed
    if activation is not None and activation not in FUSED_ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(FUSED_ACTIVATIONS)}")
    if applies(x, weight, bias):
        attribute, algorithm = FUSED_ACTIVATIONS[activation] if activation else ("none", "")
        try:
            rows = x.reshape(-1, x.shape[-1])
            out = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, attribute, [], algorithm)
            return out.view(*x.shape[:-1], weight.shape[0])
        except RuntimeError as error:  # a build whose operation refuses these tensors: PyTorch's path from now on
            _failed = True
            warnings.warn(f"oneDNN's linear operation failed ({str(error).splitlines()[0]}); using F.linear",
                          stacklevel=2)
    out = F.linear(x, weight, bias)
    if activation is None:
        return out
    in_place = not (torch.is_grad_enabled() and out.requires_grad)
    if FUSED_ACTIVATIONS[activation][0] == "relu":
        return torch.relu_(out) if in_place else torch.relu(out)
    approximate = FUSED_ACTIVATIONS[activation][1]
    return torch.ops.aten.gelu_(out, approximate=approximate) if in_place else F.gelu(out, approximate=approximate)
