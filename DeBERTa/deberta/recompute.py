"""Operations that keep less for backward than autograd would, and make the rest again in backward.

The feed-forward block is dense → activation → dense. Autograd keeps both the pre-activation (for the
activation's gradient) and the activation (for the second product's weight gradient): two tensors of
the block's width, B·L·I each, the largest of a layer after the attention probabilities.
:func:`activation_linear` keeps the pre-activation only and computes the activation again in backward,
an elementwise pass. Same results as the three operations (tests/test_attention_v2.py checks them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import cpu_linear

# Activation name → (its gradient from the pre-activation x and the incoming gradient g).
_GRADIENTS = {
    "gelu": lambda x, g: torch.ops.aten.gelu_backward(g, x),
    "gelu_new": lambda x, g: torch.ops.aten.gelu_backward(g, x, approximate="tanh"),
    "gelu_fast": lambda x, g: torch.ops.aten.gelu_backward(g, x, approximate="tanh"),
    "relu": lambda x, g: g * (x > 0),
    "tanh": lambda x, g: g * (1 - torch.tanh(x).square()),
    "swish": lambda x, g: torch.ops.aten.silu_backward(g, x),
    "silu": lambda x, g: torch.ops.aten.silu_backward(g, x),
}
_FORWARD = {
    "gelu": F.gelu, "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"), "relu": F.relu, "tanh": torch.tanh, "swish": F.silu,
    "silu": F.silu,
}


def recomputable(name: str) -> bool:
    """Whether :func:`activation_linear` knows the activation called ``name``."""
    return name in _GRADIENTS


class _ActivationLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, name: str) -> torch.Tensor:
        ctx.name = name
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        # Grad mode is off in here: oneDNN's product where it applies; under autocast F.linear, in autocast's dtype.
        return cpu_linear.linear(_FORWARD[name](x), weight, bias)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        activated = _FORWARD[ctx.name](x)  # made again: (..., I)
        rows = grad.to(activated.dtype).flatten(0, -2).contiguous()  # (N, D)
        grad_weight = (rows.t() @ activated.flatten(0, -2)).to(weight.dtype)
        grad_bias = rows.sum(0, dtype=torch.float32).to(weight.dtype) if ctx.has_bias else None
        del activated
        grad_x = _GRADIENTS[ctx.name](x, cpu_linear.matmul(rows, weight.to(rows.dtype)).view(x.shape))
        return grad_x, grad_weight, grad_bias, None


def activation_linear(x: torch.Tensor, name: str, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(activation(x), weight, bias)`` keeping only x (and the weight) for backward.

    x (..., I) the pre-activation, ``name`` an activation of :func:`recomputable`; weight (D, I).
    """
    return _ActivationLinear.apply(x, weight, bias, name)
