"""The disentangled attention's CPU inference kernel (csrc/disentangled_attention.cpp), built on first use.

PyTorch's operations make the relative terms in separate passes over memory: products, band, bias,
softmax, context. The kernel does them in one pass per block of queries, each relative product only
for the (query, key) pairs that exist. One source builds two variants, chosen when first used from the
CPU's capability as PyTorch reports it: AVX-512 (16 lanes) and AVX2 with FMA (8 lanes; any x86-64
CPU of the last decade). Each is compiled into PyTorch's extension cache under its own name, so both
coexist. Without either instruction set (ARM, old x86), without a C++ compiler and ninja, or with
``DEBERTA_CPU_KERNEL=0``, the model uses its PyTorch formulation, which tests keep equal to it;
``DEBERTA_CPU_KERNEL=avx2`` runs the AVX2 variant on an AVX-512 CPU.

:func:`main` says which variant runs here; with ``--ci-requirement`` it prints the variant CI must see
run on this machine (or ``none``), for ``.ci/run``. (A ``python -c`` call: ``-m`` would run this module a
second time, as the package imports it.)
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch

SOURCE = Path(__file__).with_name("csrc") / "disentangled_attention.cpp"
HEAD_SIZES = (16, 32, 64, 128)
"""Head widths the kernel is compiled for; others take the PyTorch formulation."""
VARIANTS: dict[str, tuple[str, ...]] = {
    "avx512": ("-mavx512f", "-mavx512dq", "-mfma"),
    "avx2": ("-mavx2", "-mfma"),
}
"""The kernel's builds, fastest first, and the instruction-set flags each is compiled with."""
SETTING = "DEBERTA_CPU_KERNEL"
"""Environment variable: unset or 1 the fastest variant the CPU runs, 0 none, or a name of :data:`VARIANTS`."""

logger = logging.getLogger(__name__)


def runnable_variants(capability: str | None = None) -> tuple[str, ...]:
    """The variants a CPU of this capability runs, fastest first: () where it has neither AVX2 nor AVX-512.

    capability is ``torch.backends.cpu.get_cpu_capability()`` by default ("AVX512", "AVX2", "DEFAULT",
    "NEON", …). PyTorch reports AVX512 only with F, DQ, BW and VL, and AVX2 only with FMA: what the
    variants are compiled for. ``ATEN_CPU_CAPABILITY=avx2`` lowers it, for this kernel too.
    """
    capability = torch.backends.cpu.get_cpu_capability() if capability is None else capability
    if capability.startswith("AVX512"):
        return ("avx512", "avx2")
    if capability.startswith("AVX2"):
        return ("avx2",)
    return ()


def compiler() -> str | None:
    """The C++ compiler PyTorch's extension builder would call ($CXX, else c++), or None where there is none."""
    return shutil.which(os.environ.get("CXX", "c++"))


def ci_requirement(capability: str | None = None, compiler_path: str | None = "") -> str | None:
    """The variant CI must see built and running on this machine: the fastest the CPU runs, where a compiler is.

    None where the CPU runs neither variant or no C++ compiler exists: there the PyTorch path is what
    runs, and the kernel's tests skip. compiler_path "" means look it up (:func:`compiler`).
    """
    variants = runnable_variants(capability)
    has_compiler = (compiler() if compiler_path == "" else compiler_path) is not None
    return variants[0] if variants and has_compiler else None


def selected_variant() -> str | None:
    """The variant :func:`kernel` loads: the setting of ``DEBERTA_CPU_KERNEL`` against what the CPU runs."""
    return _select(os.environ.get(SETTING, "1").strip().lower(), torch.backends.cpu.get_cpu_capability())


@functools.cache
def _select(setting: str, capability: str) -> str | None:
    # Cached per (setting, capability): each case decides, and warns, once per process.
    if setting == "0":
        return None
    if setting not in ("", "1", *VARIANTS):
        raise ValueError(f"{SETTING}={setting}: expected 0, 1 or one of {', '.join(VARIANTS)}")
    runnable = runnable_variants(capability)
    if setting in VARIANTS and setting not in runnable:
        runs = f"only {', '.join(runnable)}" if runnable else "no variant of the kernel"
        warnings.warn(f"{SETTING}={setting}, but this CPU ({capability}) runs {runs}; using PyTorch operations",
                      stacklevel=4)
        return None
    if not runnable:
        warnings.warn(f"DeBERTa's compiled CPU attention kernel needs AVX2 or AVX-512 (this CPU: {capability}); "
                      "using PyTorch operations", stacklevel=4)
        return None
    return setting if setting in VARIANTS else runnable[0]


def kernel() -> ModuleType | None:
    """The compiled module of the selected variant (its ``attend``), or None when it cannot build or run here.

    Each variant is built once per source version into PyTorch's extension cache (~20 s); later
    processes load it. Reads ``DEBERTA_CPU_KERNEL`` on every call, so a test can switch variants.
    """
    name = selected_variant()
    return None if name is None else build(name)


def variant() -> str | None:
    """The variant that runs here ("avx512", "avx2"), building it if needed; None where the PyTorch path runs."""
    module = kernel()
    return None if module is None else module.variant


@functools.cache
def build(name: str) -> ModuleType | None:
    """The variant ``name`` of :data:`VARIANTS`, compiled on first use; None (and one warning) where it fails.

    Call it only for a variant of :func:`runnable_variants`: another one would stop the process on its
    first instruction the CPU lacks.
    """
    try:
        from torch.utils.cpp_extension import load

        logger.info("loading the CPU attention kernel, %s (compiled on first use, ~20 s)", name)
        return load(
            name=f"deberta_cpu_attention_{name}",  # its own cache folder per variant
            sources=[str(SOURCE)],
            extra_cflags=["-O3", *VARIANTS[name], "-ffast-math", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
        )
    except Exception as error:  # no compiler, no ninja, a failed build: the PyTorch path still works
        warnings.warn(f"DeBERTa's CPU attention kernel ({name}) is not available ({error}); using PyTorch operations",
                      stacklevel=3)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpu_kernel",
                                     description="Which variant of the compiled CPU attention kernel runs here.")
    parser.add_argument("--ci-requirement", action="store_true",
                        help="print the variant CI must see run on this machine, or none, and explain on stderr")
    args = parser.parse_args(argv)
    capability = torch.backends.cpu.get_cpu_capability()
    runs = ", ".join(runnable_variants(capability)) or "neither variant"
    if args.ci_requirement:
        required = ci_requirement(capability)
        print(required or "none")
        if required:
            print(f"ci: this CPU ({capability}) runs {runs} and a C++ compiler is here: the compiled attention "
                  f"kernel ({required}) is required", file=sys.stderr)
        else:
            print(f"ci: this CPU ({capability}) runs {runs}, compiler: {compiler() or 'none'}: the kernel's tests "
                  "skip, the PyTorch attention path runs", file=sys.stderr)
        return 0
    try:
        running = variant()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"cpu kernel: {running or 'none (the PyTorch attention path runs)'}; this CPU ({capability}) runs {runs}")
    return 0
