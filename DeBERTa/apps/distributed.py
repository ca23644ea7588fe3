"""Processes launched by ``torchrun``: the engine's :mod:`DeBERTa.training.distributed`, re-exported for the apps."""

from __future__ import annotations

from DeBERTa.training.distributed import (
    PROCESS_GROUP_TIMEOUT,
    DistEnv,
    all_gather_objects,
    barrier,
    device_for,
    init_process_group,
    local_main_first,
    shutdown,
)

__all__ = ["PROCESS_GROUP_TIMEOUT", "DistEnv", "all_gather_objects", "barrier", "device_for", "init_process_group",
           "local_main_first", "shutdown"]
