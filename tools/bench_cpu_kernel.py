"""Time the CPU kernel's builds against the PyTorch formulation in one process: ``python tools/bench_cpu_kernel.py``.

For each shape: a forward pass of a model of ``--layers`` base-width layers, and the attention alone
(``attend_with_positions``: scores, relative terms, softmax, context), with every build this CPU runs
(cpu_kernel.runnable_variants) and with the kernel off, in alternating rounds so that a change in the
machine's load falls on all of them alike. Prints the medians and the median of the per-round ratios
(PyTorch's time / the build's), beside the ratio of the fastest runs. The README's figures come from it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import torch

from DeBERTa import deberta
from DeBERTa.deberta import cpu_kernel


def rounds_of(paths: Sequence[str], work: Callable[[], object], rounds: int) -> dict[str, list[float]]:
    """Seconds of ``work()`` per path (a DEBERTA_CPU_KERNEL setting) per round; the order alternates."""
    times: dict[str, list[float]] = {path: [] for path in paths}
    for path in paths:  # warm-up: builds, caches, first-touch of memory
        os.environ[cpu_kernel.SETTING] = path
        work()
    for index in range(rounds):
        for path in paths if index % 2 == 0 else paths[::-1]:
            os.environ[cpu_kernel.SETTING] = path
            start = time.perf_counter()
            work()
            times[path].append(time.perf_counter() - start)
    return times


def report(what: str, times: dict[str, list[float]]) -> None:
    pytorch = times["0"]
    cells = []
    for path, seconds in times.items():
        cell = f"{'pytorch' if path == '0' else path} {statistics.median(seconds) * 1000:.1f} ms"
        if path != "0":
            ratio = statistics.median(p / s for p, s in zip(pytorch, seconds, strict=True))
            cell += f" ({ratio:.2f}×, fastest {min(pytorch) / min(seconds):.2f}×)"
        cells.append(cell)
    print(f"{what:<24} " + "; ".join(cells), flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="8x128,1x512", help="BATCHxLENGTH list")
    parser.add_argument("--layers", type=int, default=1, help="base-width layers of the model timed")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    variants = cpu_kernel.runnable_variants()
    built = [v for v in variants if cpu_kernel.build(v) is not None]
    if not built:
        print(f"error: no build of the CPU kernel runs here ({torch.backends.cpu.get_cpu_capability()})",
              file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = deberta.ModelConfig.preset("base", num_hidden_layers=args.layers)
    model = deberta.DeBERTa(config).eval()
    attention = next(m for m in model.modules() if hasattr(m, "attend_with_positions"))
    heads, head_size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    rel = torch.randn(2 * attention.max_relative_positions, config.hidden_size)
    paths = [*built, "0"]
    print(f"{torch.backends.cpu.get_cpu_capability()} CPU, {args.threads} threads, {args.rounds} rounds, "
          f"load average {os.getloadavg()[0]:.1f}; (×: PyTorch's time / the build's, median over rounds)")
    with torch.no_grad():
        for shape in args.shapes.split(","):
            batch, length = (int(n) for n in shape.split("x"))
            ids = torch.randint(5, config.vocab_size, (batch, length))
            mask = torch.ones_like(ids)
            report(f"{args.layers}-layer model {shape}",
                   rounds_of(paths, lambda ids=ids, mask=mask: model(ids, mask), args.rounds))
            q, k, v = (torch.randn(batch, heads, length, head_size) for _ in range(3))
            padding = torch.zeros(batch, 1, 1, length)
            report(f"attention alone {shape}", rounds_of(
                paths, lambda q=q, k=k, v=v, padding=padding: attention.attend_with_positions(q, k, v, rel, padding),
                args.rounds))
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
