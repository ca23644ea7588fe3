"""AdamW with weight decay on weights only, warm-up schedules, and the fp16 loss scaler."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

LR_SCHEDULES = ("warmup_linear", "warmup_cosine", "warmup_constant")
FUSED_ADAMW_DEVICES = ("cpu", "cuda")
"""Device types whose parameters :func:`build_optimizer` updates with PyTorch's fused AdamW."""


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weights, none on biases and LayerNorm parameters."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:  # a shared parameter is updated once
                continue
            seen.add(id(param))
            (no_decay if isinstance(module, nn.LayerNorm) or name.endswith("bias") else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def update_counts(max_steps: int | None, num_train_epochs: float, batches_per_epoch: int,
                  warmup: float) -> tuple[int, int]:
    """(total updates, warm-up updates) of a run.

    The total is ``max_steps`` when given, else ``num_train_epochs`` passes of ``batches_per_epoch``
    updates, rounded up (at least 1). ``warmup`` is a number of updates when >= 1, else a proportion
    of the total (rounded down).
    """
    total = max_steps or max(1, math.ceil(num_train_epochs * batches_per_epoch))
    return total, int(warmup) if warmup >= 1 else int(warmup * total)


def lr_factor(schedule: str, update: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate for ``update`` (1-based) of ``total``, ``warmup`` of them rising.

    Warm-up rises linearly to 1 at update ``warmup``; then ``warmup_linear`` falls linearly and
    ``warmup_cosine`` along a half cosine, reaching 1/(total - warmup) at the last update (an update
    at rate 0 would be wasted); ``warmup_constant`` stays at 1.
    """
    if update <= warmup:
        return update / warmup
    progress = (update - warmup - 1) / max(1, total - warmup)  # 0 on the first update after warm-up
    if schedule == "warmup_linear":
        return 1.0 - progress
    if schedule == "warmup_cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


def fused_adamw(params: Iterable[torch.Tensor]) -> bool:
    """Whether PyTorch's fused AdamW takes ``params``: floating-point tensors on :data:`FUSED_ADAMW_DEVICES`."""
    return all(p.device.type in FUSED_ADAMW_DEVICES and p.is_floating_point() for p in params)


def build_optimizer(model: nn.Module, *, learning_rate: float, weight_decay: float, betas: tuple[float, float],
                    epsilon: float, schedule: str, total: int, warmup: int,
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``model``'s trainable parameters and its learning-rate schedule (one step per update).

    PyTorch's fused AdamW (one kernel over all parameters) where every parameter is a floating-point
    tensor on a CPU or a CUDA device: on a CPU several times faster than the default implementation
    (README, "Speed"), the same update within float rounding. Elsewhere the default. (PyTorch checks the
    parameters only at the first step, too late to choose.)
    """
    groups = optimizer_groups(model, weight_decay)
    fused = fused_adamw(p for group in groups for p in group["params"])
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=epsilon, fused=fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(schedule, s + 1, total, warmup))  # s counts past updates
    return optimizer, scheduler
