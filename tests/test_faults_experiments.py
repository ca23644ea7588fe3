"""Fault suite of the GLUE experiment scripts' environment overrides: a value that would not be the YAML it
looks like in recipe.yaml (DUMP_INTERVAL that is not a number, a newline in a path) is refused with one
line, exit 2, before the run folder or recipe.yaml is written; a good DUMP_INTERVAL is written as a number."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fault_promise import AppResult, assert_refused, snapshot

GLUE = Path(__file__).resolve().parents[1] / "experiments" / "glue"
CLEARED = ("NUM_GPUS", "CUDA_VISIBLE_DEVICES", "SEED", "DATA_DIR", "OUTPUT_DIR", "FP16", "INIT_MODEL", "MNLI_MODEL",
           "NNODES", "NODE_RANK", "DUMP_INTERVAL", "PYTHON", "TORCHRUN")


def run_rte(tmp_path: Path, *args: str, **env: str) -> AppResult:
    environ = {key: value for key, value in os.environ.items() if key not in CLEARED}
    # `false` as the interpreter: a run that got as far as starting the trainer would fail, not train.
    environ.update({"NUM_GPUS": "0", "PYTHON": "false", "DATA_DIR": str(tmp_path / "data"),
                    "OUTPUT_DIR": str(tmp_path / "run"), **env})
    done = subprocess.run([shutil.which("bash"), str(GLUE / "rte.sh"), *args, "base"], env=environ,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    return AppResult(done.returncode, done.stdout, done.stderr, "Traceback" in done.stderr)


@pytest.mark.parametrize(("variable", "value", "mention"), [
    ("DUMP_INTERVAL", "abc", "DUMP_INTERVAL must be a positive integer"),
    ("DUMP_INTERVAL", "100\ntask_name: EVIL", "DUMP_INTERVAL must be a positive integer (got $'100\\ntask_name"),
    ("DUMP_INTERVAL", "1e3", "DUMP_INTERVAL must be a positive integer"),
    ("DUMP_INTERVAL", "0", "DUMP_INTERVAL must be a positive integer"),
    ("DUMP_INTERVAL", "-5", "DUMP_INTERVAL must be a positive integer"),
    ("DUMP_INTERVAL", "99999999999999999999", "DUMP_INTERVAL must be a positive integer"),
    ("OUTPUT_DIR", "{tmp}/run\ninit_model: evil", "OUTPUT_DIR holds a control character"),
    ("INIT_MODEL", "base\r", "INIT_MODEL/MNLI_MODEL holds a control character"),
], ids=["text", "yaml-injection", "float", "zero", "negative", "overflow", "newline-output-dir", "cr-init-model"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "run"])
def test_an_override_that_is_not_what_it_claims_is_refused(tmp_path: Path, variable: str, value: str, mention: str,
                                                           dry_run: bool) -> None:
    (tmp_path / "data" / "glue_tasks" / "RTE").mkdir(parents=True)
    before = snapshot(tmp_path)
    result = run_rte(tmp_path, *(["--dry-run"] if dry_run else []), **{variable: value.format(tmp=tmp_path)})
    assert_refused(result, mention, prefix="rte.sh: error: ", unchanged=(before, lambda: snapshot(tmp_path)))


def test_a_good_dump_interval_is_a_yaml_number(tmp_path: Path) -> None:
    result = run_rte(tmp_path, "--dry-run", DUMP_INTERVAL="0500")
    assert result.status == 0, result.stderr
    recipe = yaml.safe_load("\n".join(result.stdout.splitlines()[1:-2]))
    assert recipe["dump_interval"] == 500
