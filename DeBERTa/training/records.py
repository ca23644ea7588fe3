"""The run folder's records: what a training run (fine-tuning or pre-training) writes into ``--output_dir``.

::

    config.yaml          the resolved options (usable again as --config)
    run.json             manifest: versions (and the container image's torch), git commit, machine, GPUs,
                         command line, seed, start/end, malformed rows skipped per split
    train.log            the log of rank 0
    metrics.jsonl        one JSON object per training log / evaluation
    eval_results.json    the latest evaluation
    tensorboard/         event files, when TensorBoard is installed
    predictions/         dev predictions and leaderboard files (written by the trainer)
    checkpoints/step-N/  Hugging Face layout model folder + training_state.pt
    .lock                held (flock) by the training run writing the folder: a second one is refused
    eval-run.json        an evaluation / prediction run made later in a training run's folder: its
    eval.log             manifest, options, model and results, and its log (the training run's
                         records above stay as they are)

Only rank 0 writes; :class:`RunRecords` built with ``enabled=False`` does nothing, so the loop calls
it on every rank without conditions. Files are replaced atomically (:func:`atomic_write`), and a
checkpoint folder appears only complete (written under a temporary name, then renamed), so a run killed
at any moment leaves no half-written file that a later run would read — except the last line of
metrics.jsonl, which is appended to; a torn last line is dropped when the run resumes. Files and folders
are created with the permissions the umask gives (a temporary file's private 0600 is widened on rename),
so that others on a shared file system read a run as they read any other file of its owner.

Checkpoints (``checkpoints/step-N``, ``best.json``) are :mod:`DeBERTa.training.checkpoints`'.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import torch
import yaml

import DeBERTa
from DeBERTa.deberta import DeBERTaError
from DeBERTa.deberta.hub import utc_now

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.yaml"
MANIFEST_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
EVAL_RESULTS_FILE = "eval_results.json"
LOG_FILE = "train.log"
CHECKPOINTS_DIR = "checkpoints"
PREDICTIONS_DIR = "predictions"
TENSORBOARD_DIR = "tensorboard"
TRAINING_STATE_FILE = "training_state.pt"
BEST_FILE = "best.json"
EVAL_MANIFEST_FILE = "eval-run.json"
EVAL_LOG_FILE = "eval.log"
# Set by docker/Dockerfile to its TORCH build argument; run.json records it as image_torch.
IMAGE_TORCH_SETTING = "DEBERTA_IMAGE_TORCH"


class RunFolderError(DeBERTaError):
    """The output folder cannot take this run (another task's run, other training options, damaged records)."""


# ------------------------------------------------------------------------------------------------------
# Small file helpers
# ------------------------------------------------------------------------------------------------------
def umask() -> int:
    """The process's file-creation mask (read without changing it for longer than the call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write(file)`` into a temporary file beside ``path``, then rename it over ``path``,
    so a reader (or a later run after a crash) sees the old file or the whole new one, never a part.

    The data reaches the disk before the rename, and a failed write leaves no temporary file behind. The
    file gets the permissions of an ordinary new file (0666 less the umask), not the temporary's 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Replace ``path`` atomically with ``data`` as indented JSON."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` atomically (see :func:`atomic_write`) with UTF-8 ``text``."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def read_recorded_options(output_dir: str | Path) -> dict[str, Any] | None:
    """The options of the run already in ``output_dir`` (its config.yaml), or None if there is none."""
    path = Path(output_dir) / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


RECORD_NAMES = (CONFIG_FILE, MANIFEST_FILE, METRICS_FILE, EVAL_RESULTS_FILE, PREDICTIONS_DIR, TENSORBOARD_DIR,
                CHECKPOINTS_DIR)
"""What a run writes into its folder: a folder holding some of these but no run of this package is not ours."""
LOCK_FILE = ".lock"


def check_run_folder(output_dir: str | Path) -> None:
    """Refuse an output folder that holds records a run would replace but that no run of this package wrote
    (a ``metrics.jsonl`` or ``predictions/`` of something else): nothing of it is deleted or appended to.
    A new folder, a folder of other files only, or a run folder of this package is fine."""
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise RunFolderError(f"--output_dir {root}: not a folder")
    if not root.is_dir() or (root / MANIFEST_FILE).is_file() or (root / CONFIG_FILE).is_file():
        return
    clashing = [name for name in RECORD_NAMES if (root / name).exists()]
    if clashing:
        raise RunFolderError(f"--output_dir {root} holds {', '.join(clashing)} but no run of this package "
                             f"({MANIFEST_FILE}): use a new or empty folder, so that nothing of it is overwritten")


class RunLock:
    """An exclusive lock on a run folder (``.lock``, flock), held while a run writes it: a second run in the
    same folder stops with one line instead of interleaving checkpoints and history. The kernel releases it
    when the process ends, however it ends."""

    def __init__(self, output_dir: str | Path) -> None:
        self.path = Path(output_dir) / LOCK_FILE
        self._file: Any = None

    def acquire(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise RunFolderError(f"--output_dir {self.path.parent} is in use by another run ({holder}); wait for "
                                 "it to finish or use another folder") from None
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._file = file

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None


# ------------------------------------------------------------------------------------------------------
# Manifest
# ------------------------------------------------------------------------------------------------------
def git_commit() -> str | None:
    """The commit of the checkout the package runs from (with ``+dirty`` if changed), or None."""
    source = Path(DeBERTa.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def gpu_inventory() -> list[dict[str, Any]]:
    """Name and memory of each GPU, via nvidia-ml-py when installed; else what torch reports."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            try:
                gpus = []
                for i in range(pynvml.nvmlDeviceGetCount()):
                    handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                    name = pynvml.nvmlDeviceGetName(handle)
                    gpus.append({
                        "name": name.decode() if isinstance(name, bytes) else name,
                        "memory_mib": pynvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20,
                        "driver": _decode(pynvml.nvmlSystemGetDriverVersion()),
                    })
                return gpus
            finally:
                pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass  # no driver on this machine: fall back to torch's view
    return [
        {"name": torch.cuda.get_device_name(i),
         "memory_mib": torch.cuda.get_device_properties(i).total_memory // 2**20}
        for i in range(torch.cuda.device_count())
    ]


def _decode(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def run_manifest(argv: list[str], seed: int, tag: str, world_size: int) -> dict[str, Any]:
    """What ``run.json`` records at the start of a run (``end_time`` is added when it finishes).

    ``command`` is the process's whole command line (interpreter, launcher); ``argv`` the app's options.
    """
    return {
        "package": "DeBERTa",
        "version": DeBERTa.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        # The container's torch choice (docker/Dockerfile's TORCH: the version it installed, or "base" for the
        # base image's own torch); None outside the image.
        "image_torch": os.environ.get(IMAGE_TORCH_SETTING) or None,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gpus": gpu_inventory(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "command": sys.orig_argv,
        "argv": argv,
        "tag": tag,
        "seed": seed,
        "world_size": world_size,
        "start_time": utc_now(),
        "end_time": None,
    }


# ------------------------------------------------------------------------------------------------------
# The run folder
# ------------------------------------------------------------------------------------------------------
class RunRecords:
    """The run folder's logs: config, manifest, metrics history, latest evaluation, TensorBoard."""

    MODES = ("fresh", "resume", "append", "beside")

    def __init__(self, output_dir: str | Path, enabled: bool):
        self.root = Path(output_dir)
        self.enabled = enabled
        self.mode = "fresh"
        self._manifest: dict[str, Any] | None = None
        self._manifest_file = MANIFEST_FILE
        self._tensorboard: Any = None
        self._log_handler: logging.Handler | None = None
        self._lock = RunLock(self.root)

    def lock(self) -> None:
        """Take the run folder's lock (rank 0, before the run changes anything in the folder)."""
        if self.enabled and self._lock._file is None:
            self._lock.acquire()

    def start(self, options: Mapping[str, Any], manifest: dict[str, Any], mode: str, resume_step: int = 0) -> None:
        """Create the folder and write this run's config and manifest.

        ``mode`` says what happens to records already in the folder: ``fresh`` (a training run from
        step 0) removes an earlier run's history, evaluation and predictions, so that nothing of it can
        be read as this run's result; ``resume`` keeps the history up to ``resume_step`` and drops what
        came after it (the resumed run writes it again); ``append`` (evaluation or prediction only, in a
        folder without a training run) keeps everything; ``beside`` (evaluation or prediction only, in a
        training run's folder) leaves that run's config, manifest, history and latest evaluation as they
        are and records this run in ``eval-run.json`` (manifest, options, results) and ``eval.log``.
        """
        if mode not in self.MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(self.MODES)}")
        self.mode = mode
        if not self.enabled:
            return
        if mode == "fresh":  # a resumed folder holds this run's checkpoints
            check_run_folder(self.root)
        self.lock()  # every mode: an evaluation must not write beside a training run still writing the folder
        self.root.mkdir(parents=True, exist_ok=True)
        if mode == "fresh":
            for stale in (METRICS_FILE, EVAL_RESULTS_FILE):
                (self.root / stale).unlink(missing_ok=True)
            for stale_dir in (PREDICTIONS_DIR, TENSORBOARD_DIR):
                shutil.rmtree(self.root / stale_dir, ignore_errors=True)
        elif mode == "resume":
            self._truncate_history(resume_step)
        self._log_handler = logging.FileHandler(self.root / (EVAL_LOG_FILE if mode == "beside" else LOG_FILE),
                                                encoding="utf-8")
        self._log_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self._log_handler)
        if mode == "beside":
            self._manifest_file = EVAL_MANIFEST_FILE
            self._manifest = {**manifest, "options": dict(options), "results": None}
            write_json(self.root / EVAL_MANIFEST_FILE, self._manifest)
            return  # no TensorBoard events either: the folder's curves are the training run's
        write_text(self.root / CONFIG_FILE, yaml.safe_dump(dict(options), sort_keys=False))
        self._manifest = manifest
        write_json(self.root / MANIFEST_FILE, manifest)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # TensorBoard is optional
            return
        self._tensorboard = SummaryWriter(str(self.root / TENSORBOARD_DIR),
                                          purge_step=resume_step if mode == "resume" else None)

    def _truncate_history(self, step: int) -> None:
        """Keep only metrics.jsonl entries up to ``step``: a resumed run writes the rest again.

        A run killed while appending leaves a torn last line: it is dropped with a warning. Any other
        unreadable line is a damaged history, reported rather than silently lost.
        """
        path = self.root / METRICS_FILE
        if not path.is_file():
            return
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        kept = []
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
                entry_step = int(entry["step"])
            except (ValueError, TypeError, KeyError):
                if number == len(lines):
                    logger.warning("%s: dropping its unreadable last line (a run killed while writing it): %.80s",
                                   path, line)
                    continue
                raise RunFolderError(f"{path} line {number} is not a metrics entry; repair or remove the "
                                     "file, or start over with --resume never") from None
            if entry_step <= step:
                kept.append(line)
        write_text(path, "".join(line + "\n" for line in kept))

    def _append(self, entry: dict[str, Any]) -> None:
        with open(self.root / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def log_train(self, step: int, epoch: float, loss: float, lr: float, examples_per_s: float,
                  extra: Mapping[str, float] | None = None) -> None:
        """One training entry: mean loss since the last entry, learning rate, throughput, and ``extra``
        statistics of the objective (e.g. ``masked_accuracy``)."""
        if not self.enabled:
            return
        self._append({"type": "train", "step": step, "epoch": round(epoch, 4), "loss": loss, "lr": lr,
                      "examples_per_s": round(examples_per_s, 2), **(extra or {})})
        if self._tensorboard is not None:
            for name, value in (("loss", loss), ("lr", lr), ("examples_per_s", examples_per_s), *(extra or {}).items()):
                self._tensorboard.add_scalar(f"train/{name}", value, step)

    def log_eval(self, step: int, epoch: float, splits: Mapping[str, Mapping[str, Any]]) -> None:
        """One evaluation: ``splits`` maps split → {"loss": float, "metrics": {name: value}}."""
        if not self.enabled:
            return
        latest = {
            "step": step,
            "epoch": round(epoch, 4),
            "splits": {split: {"loss": r["loss"], **r["metrics"]} for split, r in splits.items()},
        }
        if self.mode == "beside":
            assert self._manifest is not None
            self._manifest["results"] = latest
            write_json(self.root / EVAL_MANIFEST_FILE, self._manifest)
            return
        for split, result in splits.items():
            self._append({"type": "eval", "step": step, "epoch": round(epoch, 4), "split": split,
                          "loss": result["loss"], "metrics": dict(result["metrics"])})
            if self._tensorboard is not None:
                self._tensorboard.add_scalar(f"eval/{split}/loss", result["loss"], step)
                for name, value in result["metrics"].items():
                    self._tensorboard.add_scalar(f"eval/{split}/{name}", value, step)
        write_json(self.root / EVAL_RESULTS_FILE, latest)

    def finish(self) -> None:
        """Record the end time of a run that completed."""
        if self.enabled and self._manifest is not None:
            self._manifest["end_time"] = utc_now()
            write_json(self.root / self._manifest_file, self._manifest)

    def close(self) -> None:
        """Close the log and TensorBoard files and release the lock (also after a failure)."""
        self._lock.release()
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


