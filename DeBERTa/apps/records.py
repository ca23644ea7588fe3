"""The run folder, as the apps see it: the engine's records and checkpoints under one name.

The code lives in :mod:`DeBERTa.training.records` (config.yaml, run.json, metrics.jsonl,
eval_results.json, TensorBoard, atomic writes) and :mod:`DeBERTa.training.checkpoints`
(``checkpoints/step-N``, ``best.json``); this module re-exports it for the apps that read run folders
(export, report, demo).
"""

from __future__ import annotations

from DeBERTa.training.checkpoints import (
    MODEL_FILE,
    check_training_state,
    checkpoints_dir,
    holds_training_run,
    list_checkpoints,
    load_checkpoint_weights,
    newest_intact_checkpoint,
    prune_checkpoints,
    read_training_state,
    remove_checkpoints,
    run_checkpoint,
    write_best,
    write_checkpoint,
)
from DeBERTa.training.records import (
    BEST_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    EVAL_LOG_FILE,
    EVAL_MANIFEST_FILE,
    EVAL_RESULTS_FILE,
    LOG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    PREDICTIONS_DIR,
    TENSORBOARD_DIR,
    TRAINING_STATE_FILE,
    RunFolderError,
    RunLock,
    RunRecords,
    atomic_write,
    check_run_folder,
    git_commit,
    gpu_inventory,
    read_recorded_options,
    run_manifest,
    write_json,
    write_text,
)

__all__ = [
    "BEST_FILE", "CHECKPOINTS_DIR", "CONFIG_FILE", "EVAL_LOG_FILE", "EVAL_MANIFEST_FILE", "EVAL_RESULTS_FILE",
    "LOG_FILE", "MANIFEST_FILE", "METRICS_FILE", "MODEL_FILE", "PREDICTIONS_DIR", "TENSORBOARD_DIR",
    "TRAINING_STATE_FILE", "RunFolderError", "RunLock", "RunRecords", "atomic_write", "check_run_folder",
    "check_training_state",
    "checkpoints_dir", "git_commit", "gpu_inventory", "holds_training_run", "list_checkpoints",
    "load_checkpoint_weights", "newest_intact_checkpoint", "prune_checkpoints", "read_recorded_options",
    "read_training_state", "remove_checkpoints", "run_checkpoint", "run_manifest", "write_best",
    "write_checkpoint", "write_json", "write_text",
]
