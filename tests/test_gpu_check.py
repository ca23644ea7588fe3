"""The GPU check's dry run on the CPU (what ``make gpu-check`` does on a machine without a GPU), so the script
cannot rot: every step runs at tiny size, says that no GPU was there, and passes."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from DeBERTa.apps import gpu_check

pytestmark = pytest.mark.filterwarnings("ignore:Unable to enable fault handler")


@pytest.mark.slow
def test_the_dry_run_runs_every_step_on_the_cpu(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the dry run even on a GPU machine
    status = gpu_check.main(["--output", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "NO GPU" in out.splitlines()[0] and "NO GPU was there" in out.splitlines()[-1]
    report = json.loads((tmp_path / "report.json").read_text())
    assert not report["gpu"]
    steps = {step["name"]: step for step in report["steps"]}
    assert list(steps) == [name for name, _ in gpu_check.STEPS] and all(s["ok"] for s in steps.values())
    families = gpu_check.available_families()
    assert "v1" in families
    for family in families:
        parity = steps["parity"]["figures"][family]
        assert parity["max_abs_output_difference"] <= gpu_check.PARITY_ATOL
        assert steps["mixed precision"]["figures"][f"{family}/fp16"]["finite"]
        assert steps["mixed precision"]["figures"][f"{family}/fp16"]["loss_scale"] > 0  # the GradScaler ran
        assert steps["mixed precision"]["figures"][f"{family}/bf16"]["loss_scale"] is None
        assert isinstance(steps["attention kernel"]["figures"][f"{family}/fp32/training"], list)
        assert steps["bench"]["figures"][family]["ratios"]  # apps.bench ran and compared
    if "v3" in families and importlib.util.find_spec("disentangled_flash") is not None:  # an outside reference
        assert "disentangled-flash" in {r["baseline"] for r in steps["bench"]["figures"]["v3"]["ratios"]}
    assert steps["torchrun"]["figures"]["ddp"]["backend"] == "gloo"
    assert steps["torchrun"]["figures"]["ddp"]["all_reduce_ok"]
    assert (tmp_path / "train_run").is_dir()


def test_a_broken_step_fails_alone_and_the_status_says_so(tmp_path, capsys, monkeypatch):
    def broken(setting: gpu_check.Setting, step: gpu_check.Step) -> None:
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "STEPS", (("parity", broken), *gpu_check.STEPS[1:2]))
    assert gpu_check.main(["--output", str(tmp_path), "--only", "parity,mixed precision"]) == 1
    out = capsys.readouterr().out
    assert "[1/2] parity: FAILED" in out and "FAILED: RuntimeError: something broke" in out
    assert "[2/2] mixed precision: ok" in out and "gpu check: FAILED: parity" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--only", "parity,speed"], "error: --only: unknown step speed (steps: parity, mixed precision,"),
    (["--device", "cuda"], "error: --device cuda: PyTorch sees no CUDA GPU here"),
    (["--device", "tpu"], "error: argument --device: invalid choice"),
])
def test_usage_errors_are_one_line(argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([*argv, "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and "\n" not in err
