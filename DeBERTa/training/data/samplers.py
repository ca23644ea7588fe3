"""Training order and evaluation shards: the same global batches whatever the number of ranks.

:class:`TrainBatchSampler` gives the seeded training order, resumable at any step; :func:`shard_indices`
and :func:`merge_shards` split an evaluation over ranks and put the gathered outputs back in order, each
example exactly once. :func:`batch_split` is the one check of the batch layout.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from ..errors import DataError, OptionsError


def batch_split(train_batch_size: int, world_size: int, accumulative_update: int) -> int:
    """Examples per micro-batch on one rank: the global batch over ranks and accumulation steps.

    The one check of the batch layout (the apps call it before reading anything, the training
    sampler again): raises :class:`OptionsError` when ``--train_batch_size`` does not divide evenly, so
    every update sees exactly the global batch whatever the number of processes.
    """
    if train_batch_size < 1 or accumulative_update < 1:
        raise OptionsError(f"--train_batch_size ({train_batch_size}) and --accumulative_update "
                           f"({accumulative_update}) must be at least 1")
    parts = world_size * accumulative_update
    if train_batch_size % parts:
        raise OptionsError(
            f"--train_batch_size {train_batch_size} does not divide over {world_size} process(es) x "
            f"--accumulative_update {accumulative_update}; use a multiple of {parts}"
        )
    return train_batch_size // parts


class TrainBatchSampler:
    """Seeded training order, identical whatever the number of ranks, resumable at any step.

    Epoch ``e`` is a permutation of the examples drawn from ``(seed, e)``, cut into
    ``batches_per_epoch = ceil(N / B)`` global batches of exactly ``B = global_batch_size`` examples;
    the last one is completed with the epoch's first examples, so every step sees a full batch and
    every rank the same share. Global batch ``s`` is cut into ``world_size`` contiguous rank slices,
    and each slice into ``accumulation_steps`` contiguous micro-batches. Micro-batch ``j`` of rank ``r``
    is therefore piece ``r * accumulation_steps + j`` of the global batch in every layout: one process
    with 4 accumulation steps and 2 ranks with 2 each process the same micro-batches.

    Iterating yields this rank's micro-batches (lists of example indices), ``accumulation_steps`` per
    global step, from the position set by :meth:`set_position`; usable as a DataLoader
    ``batch_sampler``.
    """

    def __init__(self, num_examples: int, global_batch_size: int, *, seed: int, rank: int = 0,
                 world_size: int = 1, accumulation_steps: int = 1) -> None:
        if num_examples < 1:
            raise DataError("no training examples")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world size {world_size}")
        self.micro_batch_size = batch_split(global_batch_size, world_size, accumulation_steps)
        self.num_examples = num_examples
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.accumulation_steps = accumulation_steps
        self.batches_per_epoch = math.ceil(num_examples / global_batch_size)
        self.epoch = 0
        self.start_step = 0

    def position(self, global_step: int) -> tuple[int, int]:
        """``(epoch, step within the epoch)`` after ``global_step`` optimizer steps (for resuming)."""
        return divmod(global_step, self.batches_per_epoch)

    def set_position(self, epoch: int, start_step: int = 0) -> None:
        """Iterate epoch ``epoch`` from global batch ``start_step`` (the batches before it were consumed)."""
        if not 0 <= start_step <= self.batches_per_epoch:
            raise ValueError(f"step {start_step} outside an epoch of {self.batches_per_epoch} batches")
        self.epoch, self.start_step = epoch, start_step

    def epoch_order(self, epoch: int) -> np.ndarray:
        """(batches_per_epoch * B,) example indices of the epoch, global batch after global batch."""
        # Shuffling int32 indices gives permutation(num_examples)'s order in half its memory (a large corpus has
        # one index per window).
        dtype = np.int32 if self.num_examples < 2**31 else np.int64
        permutation = np.random.default_rng([self.seed, epoch]).permutation(np.arange(self.num_examples, dtype=dtype))
        # np.resize repeats the permutation from its start to fill the last batch.
        return np.resize(permutation, self.batches_per_epoch * self.global_batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.epoch_order(self.epoch)
        b, m = self.global_batch_size, self.micro_batch_size
        rank_start = self.rank * self.accumulation_steps * m
        for step in range(self.start_step, self.batches_per_epoch):
            mine = order[step * b + rank_start : step * b + rank_start + self.accumulation_steps * m]
            for j in range(self.accumulation_steps):
                yield mine[j * m : (j + 1) * m].tolist()

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.start_step) * self.accumulation_steps


def shard_indices(n: int, rank: int, world_size: int) -> range:
    """This rank's contiguous share of ``n`` evaluation examples, with no padding and no duplicates.

    The first ``n % world_size`` ranks get one example more; the shards of all ranks together are
    ``range(n)`` exactly once.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world size {world_size}")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))


def merge_shards(parts: Sequence[tuple[Sequence[int] | np.ndarray, np.ndarray]], total: int) -> np.ndarray:
    """Gathered ``(indices, values)`` of every rank → ``values`` in example order, ``(total, ...)``.

    ``indices`` ``(n_r,)`` are example positions and ``values`` ``(n_r, ...)`` their predictions or
    logits. Raises ``ValueError`` unless every example in ``range(total)`` appears exactly once —
    metrics must count each example once, whatever padding the gather used.
    """
    if not parts:
        raise ValueError("no shards to merge")
    indices = np.concatenate([np.asarray(i, dtype=np.int64).reshape(-1) for i, _ in parts])
    values = np.concatenate([np.asarray(v) for _, v in parts])
    if len(indices) != len(values):
        raise ValueError(f"{len(indices)} indices for {len(values)} values")
    if len(indices) and (indices.min() < 0 or indices.max() >= total):
        raise ValueError(f"example index outside range({total})")
    counts = np.bincount(indices, minlength=total)
    if np.any(counts != 1):
        missing, repeated = np.flatnonzero(counts == 0), np.flatnonzero(counts > 1)
        raise ValueError(f"each of {total} examples must appear once: {len(missing)} missing "
                         f"(e.g. {missing[:5].tolist()}), {len(repeated)} repeated (e.g. {repeated[:5].tolist()})")
    merged = np.empty((total, *values.shape[1:]), dtype=values.dtype)
    merged[indices] = values
    return merged
