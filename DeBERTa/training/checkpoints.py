"""Checkpoints of a run folder: ``checkpoints/step-N/`` written atomically, the newest K plus the best kept.

A checkpoint is a Hugging Face-layout model folder (``config.json``, ``model.safetensors``, the
tokenizer's files) plus ``training_state.pt`` (optimizer, schedule, loss scale, RNG of every rank, the
step, the best evaluation, the options that decide what training computes). It appears only complete:
it is written under a temporary name and renamed. A checkpoint damaged afterwards (a truncated file, a
disk error) is skipped when resuming: :func:`newest_intact_checkpoint` falls back to the newest one
that reads back whole, and says so.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from DeBERTa.deberta.pretrained import CheckpointError

from .records import (
    BEST_FILE,
    CHECKPOINTS_DIR,
    TRAINING_STATE_FILE,
    read_recorded_options,
    umask,
    write_json,
)

logger = logging.getLogger(__name__)

MODEL_FILE = "model.safetensors"
_CHECKPOINT_NAME = re.compile(r"^step-(\d+)$")


def holds_training_run(output_dir: str | Path) -> bool:
    """Whether ``output_dir`` holds a training run: checkpoints, or a config.yaml of a ``--do_train`` run."""
    recorded = read_recorded_options(output_dir)
    return bool(list_checkpoints(output_dir)) or bool(recorded and recorded.get("do_train"))


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run folder as (step, folder), oldest first."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT_NAME.match(child.name)
        if match and (child / TRAINING_STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint a training run folder stands for: its best (``checkpoints/best.json``), else its newest."""
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise CheckpointError(f"{run_dir}: a training run folder without a complete checkpoint "
                          f"({CHECKPOINTS_DIR}/step-N)")
    best_file = checkpoints_dir(run_dir) / BEST_FILE
    if best_file.is_file():
        try:
            best = json.loads(best_file.read_text(encoding="utf-8")).get("checkpoint")
        except json.JSONDecodeError:
            best = None  # a damaged marker only costs the choice of the best: the newest is exported
        for _, folder in checkpoints:
            if folder.name == best:
                logger.info("run %s: using its best checkpoint, %s", run_dir, folder.name)
                return folder
        logger.warning("run %s: %s names no existing checkpoint; using the newest", run_dir, best_file.name)
    logger.info("run %s: using its newest checkpoint, %s", run_dir, checkpoints[-1][1].name)
    return checkpoints[-1][1]


def cpu_tensors(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors as safetensors stores them: it refuses tensors that share storage, so a
    parameter shared under two names (tied embeddings) is stored as two copies."""
    seen: set[int] = set()
    tensors = {}
    for key, value in state.items():
        tensor = value.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        tensors[key] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    return tensors


def write_checkpoint(
    output_dir: str | Path,
    step: int,
    *,
    model_state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    tokenizer: Any,
    training_state: Mapping[str, Any],
) -> Path:
    """Write ``checkpoints/step-<step>/`` atomically and return it.

    The folder is a Hugging Face-layout model folder (``config.json``, ``model.safetensors``, the
    tokenizer's files) that :func:`DeBERTa.deberta.load_model_state` and ``--init_model`` read, plus
    ``training_state.pt`` for ``--resume``.
    """
    from safetensors.torch import save_file

    root = checkpoints_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step}-", dir=root))
    os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's private 0700 would outlive the rename
    try:
        tensors = cpu_tensors(model_state)
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
        tokenizer.save_pretrained(tmp)
        torch.save(dict(training_state), tmp / TRAINING_STATE_FILE)
        for written in tmp.iterdir():  # safetensors and atomic writers create 0600 files: follow the umask
            if written.is_file():
                os.chmod(written, 0o666 & ~umask())
        if final.exists():  # a run resumed from an older checkpoint (--resume DIR) passes this step again
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_training_state(folder: Path) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint, read without unpickling code."""
    return torch.load(folder / TRAINING_STATE_FILE, map_location="cpu", weights_only=True)


def prune_checkpoints(output_dir: str | Path, keep: int, best_step: int | None) -> None:
    """Delete all but the newest ``keep`` checkpoints and the best one, plus leftovers of killed writes."""
    root = checkpoints_dir(output_dir)
    if not root.is_dir():
        return
    for leftover in root.glob(".step-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    checkpoints = list_checkpoints(output_dir)
    newest = {step for step, _ in checkpoints[-keep:]}
    for step, folder in checkpoints:
        if step not in newest and step != best_step:
            shutil.rmtree(folder)


def write_best(output_dir: str | Path, step: int, metric: str, value: float) -> None:
    """``checkpoints/best.json``: which checkpoint scored best on the main metric."""
    write_json(checkpoints_dir(output_dir) / BEST_FILE,
               {"step": step, "checkpoint": f"step-{step}", "metric": metric, "value": value})


def remove_checkpoints(output_dir: str | Path) -> None:
    """Delete every checkpoint of a run folder (a fresh start with ``--resume never``)."""
    shutil.rmtree(checkpoints_dir(output_dir), ignore_errors=True)



def load_checkpoint_weights(folder: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """``model.safetensors`` of a checkpoint; a :class:`CheckpointError` (one line) when it is damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = folder / MODEL_FILE
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({reason})") from None


def check_training_state(folder: Path) -> dict[str, Any]:
    """``training_state.pt`` of a checkpoint, read without unpickling code; a :class:`CheckpointError` when it
    is damaged (truncated, garbage, not a mapping)."""
    path = folder / TRAINING_STATE_FILE
    try:
        state = read_training_state(folder)
    except Exception as err:  # torch.load raises many types for a damaged file (zip, pickle, EOF)
        raise CheckpointError(f"{path}: damaged ({type(err).__name__})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise CheckpointError(f"{path}: not a training state of this package")
    return state


def newest_intact_checkpoint(output_dir: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose training state and weights read back whole, with its state; None if none.

    Damaged newer ones are skipped with a warning naming them (a kill cannot damage one: they appear
    only complete; a disk error or a hand edit can).
    """
    for _, folder in reversed(list_checkpoints(output_dir)):
        try:
            state = check_training_state(folder)
            load_checkpoint_weights(folder)
        except CheckpointError as err:
            logger.warning("skipping damaged checkpoint %s: %s", folder.name, err)
            continue
        return folder, state
    return None
