"""Seeding and the state of every random number generator training draws from (saved per rank)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """Every RNG that training may draw from, in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the legacy form of the global MT19937 generator's state
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


SEED_LIMIT = 2**32
"""Seeds the apps accept are in [0, SEED_LIMIT): the range Python, NumPy's legacy generator and torch all
take as it is (NumPy's is the narrowest), so two different seeds never seed NumPy alike."""


def seed_range_error(seed: int) -> str | None:
    """The one-line complaint about a seed outside [0, :data:`SEED_LIMIT`), or None for a seed in range."""
    return None if 0 <= seed < SEED_LIMIT else f"--seed must be in [0, 2**32) (got {seed})"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % SEED_LIMIT)
    torch.manual_seed(seed)


def derived_seed(*entropy: int) -> int:
    """A 63-bit seed drawn from integers (seed, step, position …): independent streams, no global state."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, np.uint64)[0] >> np.uint64(1))
