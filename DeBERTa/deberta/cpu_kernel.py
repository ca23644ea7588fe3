"""The disentangled attention's CPU inference kernel (csrc/disentangled_attention.cpp), built on first use.

PyTorch's operations make the relative terms in separate passes over memory: products, band, bias,
softmax, context. The kernel does them in one pass per block of queries, each relative product only
for the (query, key) pairs that exist, and measured 1.7× faster than those passes for a base layer at
8×128 on a 2-core AVX-512 CPU. It needs AVX-512, a C++ compiler and ninja; without them, or with
``DEBERTA_CPU_KERNEL=0``, the model uses its PyTorch formulation, which tests keep equal to it.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("csrc") / "disentangled_attention.cpp"
HEAD_SIZES = (16, 32, 64, 128)
"""Head widths the kernel is compiled for; others take the PyTorch formulation."""

logger = logging.getLogger(__name__)


@functools.cache
def kernel():
    """The compiled module (its ``attend``), or None when this machine cannot build or run it.

    Built once per source version into PyTorch's extension cache (~20 s); later processes load it.
    """
    return _build()


def _build():
    if os.environ.get("DEBERTA_CPU_KERNEL", "1") == "0":
        return None
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return None
    try:
        from torch.utils.cpp_extension import load

        logger.info("loading the CPU attention kernel (compiled on first use, ~20 s)")
        return load(
            name="deberta_cpu_attention",
            sources=[str(SOURCE)],
            extra_cflags=["-O3", "-mavx512f", "-mavx512dq", "-mfma", "-ffast-math", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
        )
    except Exception as error:  # no compiler, no ninja, a failed build: the PyTorch path still works
        warnings.warn(
            f"DeBERTa's CPU attention kernel is not available ({error}); using PyTorch operations", stacklevel=3
        )
        return None
