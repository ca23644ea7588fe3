"""Helpers the attention tests of both families share."""

from __future__ import annotations

from typing import TypeVar

import torch
from torch import nn

from DeBERTa import deberta

M = TypeVar("M", bound=nn.Module)


def random_attention(kind: type[M], config: deberta.ModelConfig, seed: int) -> M:
    """An attention module of ``kind`` in eval mode with every parameter drawn from N(0, 0.3²): large enough that
    each term of the scores matters, seeded so a test sees the same module every run."""
    torch.manual_seed(seed)
    attention = kind(config).eval()  # type: ignore[call-arg]
    with torch.no_grad():
        for p in attention.parameters():
            p.normal_(0, 0.3)
    return attention
