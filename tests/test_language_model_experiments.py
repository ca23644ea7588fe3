"""experiments/language_model: the recipes' commands parse as the pre-training app's options."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from DeBERTa.apps import pretrain

SCRIPTS = Path(__file__).resolve().parents[1] / "experiments" / "language_model"


def dry_run(script: str, *args: str, corpus: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CORPUS": str(corpus), "PATH": "/usr/bin:/bin"}  # no nvidia-smi: the CPU command
    return subprocess.run(["bash", str(SCRIPTS / script), "--dry-run", *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("script, size, config", [
    ("rtd.sh", "xsmall", "v3-xsmall"), ("rtd.sh", "small", "v3-small"), ("rtd.sh", "base", "v3-base"),
    ("rtd.sh", "large", "v3-large"), ("mlm.sh", "base", "base"), ("mlm.sh", "large", "large"),
])
def test_recipes_are_commands_of_the_app(script: str, size: str, config: str, tmp_path: Path) -> None:
    result = dry_run(script, size, "--seed", "7", corpus=tmp_path)
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout)
    assert command[:3] == ["python", "-m", "DeBERTa.apps.pretrain"]
    opts = pretrain.parse_args(command[3:])
    assert opts.model_config == config and opts.max_seq_len == 512 and opts.seed == 7
    assert opts.objective == script.removesuffix(".sh") and opts.warmup == 10000
    if script == "rtd.sh":
        assert opts.embedding_sharing == "gdes" and opts.rtd_lambda == 50
        assert (opts.learning_rate, opts.train_batch_size) == ((3e-4, 64) if size == "xsmall" else (1e-4, 256))


def test_an_unknown_size_is_one_error_line(tmp_path: Path) -> None:
    result = dry_run("rtd.sh", "huge", corpus=tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == "rtd.sh: error: unknown size 'huge' (see --help)"
