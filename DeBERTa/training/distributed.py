"""Processes launched by ``torchrun``: who am I, the process group, and the few collectives we need.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; a plain ``python -m`` run has none of
them and is rank 0 of 1, with no process group at all. GPUs use NCCL, one device per local rank;
CPUs use gloo. The process group gets a finite timeout so that a peer that dies without closing its
connections cannot hang the others forever; an ordinary failure is faster than that: the failing
rank exits, and torchrun stops the others as soon as it sees one worker fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from DeBERTa.deberta import DeBERTaError

PROCESS_GROUP_TIMEOUT = timedelta(minutes=30)
"""Longest wait in one collective: above the slowest step (a rank-0 download while others wait)."""


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job, read from the environment torchrun sets."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file, shows the progress bars and downloads first."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environ(cls) -> DistEnv:
        """The torchrun variables, or rank 0 of 1 when they are absent."""
        names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
        raw = {name: os.environ.get(name) for name in names}
        if all(v is None for v in raw.values()):
            return cls()
        try:
            rank, world_size, local_rank = (int(v) if (v := raw[n]) is not None else 0 for n in names)
        except ValueError:
            raise DeBERTaError(f"torchrun variables are not integers: {raw}") from None
        if raw["WORLD_SIZE"] is None or not 0 <= rank < world_size:
            raise DeBERTaError(f"inconsistent torchrun variables {raw}: RANK must be in [0, WORLD_SIZE)")
        return cls(rank, world_size, local_rank)


def device_for(env: DistEnv) -> torch.device:
    """The GPU of this local rank, or the CPU when there is no GPU."""
    if torch.cuda.is_available():
        if env.local_rank >= torch.cuda.device_count():
            raise DeBERTaError(
                f"local rank {env.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                "start at most one process per GPU"
            )
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def init_process_group(env: DistEnv, device: torch.device) -> None:
    """Join the job's process group (NCCL on GPU, gloo on CPU); nothing to do for one process."""
    if not env.is_distributed:
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=PROCESS_GROUP_TIMEOUT, device_id=device)
    else:
        dist.init_process_group("gloo", timeout=PROCESS_GROUP_TIMEOUT)


def shutdown() -> None:
    """Leave the process group after a successful run.

    The ranks meet first: rank 0 is often still writing files when the others finish, and a rank that
    tears down gloo while a peer is mid-operation can abort in C++ at exit.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op for one process)."""
    if dist.is_initialized():
        dist.barrier()


@contextmanager
def local_main_first(env: DistEnv) -> Iterator[None]:
    """Run the block on local rank 0 first (e.g. a download), then on the node's other ranks.

    The others then find the files in the cache. Every rank passes exactly one barrier, so the
    counts match; if local rank 0 fails inside the block it exits and torchrun stops the waiting ranks.
    """
    if env.local_rank != 0:
        barrier()
    yield
    if env.local_rank == 0:
        barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` for one process."""
    if not dist.is_initialized():
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered

