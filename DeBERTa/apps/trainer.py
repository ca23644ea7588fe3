"""GLUE fine-tuning, evaluation and prediction of one process of a (possibly distributed) job.

:class:`Trainer` does everything that may fail on bad input (task, files, rows, labels, model, tokenizer,
the run folder) in its constructor, before anything is written; :meth:`Trainer.run` then trains
(:meth:`Trainer.train`, the loop), evaluates and predicts, writing through :mod:`.records` on rank 0
only. Under ``torchrun`` the model is wrapped in DistributedDataParallel; each rank gets its share of
every global batch from :class:`~DeBERTa.apps.data.TrainBatchSampler`, and evaluation is sharded over
the ranks and gathered back into the original order (each example exactly once).

A run is reproducible and resumable: the data order depends only on the seed and the step, and a
checkpoint holds the model, optimizer, scheduler, loss scaler and RNG states, so a run resumed from
step k ends exactly as an uninterrupted one (same world size; on another world size it resumes with
the same data and weights, only dropout noise differs). A checkpoint also records the options that
decide what training computes (:data:`~DeBERTa.apps.options.TRAINING_OPTIONS`): ``--resume auto``
continues only a run of the same options, and a run that already finished is not trained again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from DeBERTa import deberta
from DeBERTa.deberta import pretrained
from DeBERTa.deberta.config import PRESETS
from DeBERTa.deberta.model import init_weights

from . import data, records
from .distributed import DistEnv, all_gather_objects, device_for, init_process_group, local_main_first
from .models import load_tokenizer, resolve_source
from .options import OptionsError, TrainOptions, batch_split
from .records import RunFolderError
from .tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)


class EvalResult(NamedTuple):
    """One evaluated split: mean loss, the task's metrics, and the model outputs in example order."""

    loss: float
    metrics: dict[str, float]
    outputs: np.ndarray  # (N, num_labels) logits, or (N, 1) scores for regression


# ------------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------------
def read_model_config(name_or_file: str) -> deberta.ModelConfig:
    """--model_config: a preset name (tiny, small, base, large) or a JSON file in either layout."""
    if name_or_file in PRESETS:
        return deberta.ModelConfig.preset(name_or_file)
    if not Path(name_or_file).is_file():
        known = ", ".join(PRESETS)
        raise OptionsError(f"--model_config {name_or_file}: neither a JSON file nor a preset ({known})")
    return deberta.ModelConfig.from_json_file(name_or_file)


def override_config(checkpoint: deberta.ModelConfig, name_or_file: str) -> deberta.ModelConfig:
    """The checkpoint's config with the keys that --model_config sets (the original scripts pass partial
    files such as ``{"pooling": {"dropout": 0}}``). Architecture keys must agree (checked on loading)."""
    if name_or_file in PRESETS or not Path(name_or_file).is_file():
        return read_model_config(name_or_file)
    try:
        overrides = json.loads(Path(name_or_file).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise OptionsError(f"--model_config {name_or_file}: not valid JSON ({err})") from None
    if not isinstance(overrides, dict):
        raise OptionsError(f"--model_config {name_or_file}: expected a JSON object")
    if isinstance(overrides.get("pooling"), dict):  # the original layout nests the pooler
        merged = checkpoint.to_original_dict()
        merged["pooling"] = {**merged["pooling"], **overrides.pop("pooling")}
    else:
        merged = checkpoint.to_hf_dict()
    merged.update(overrides)
    return deberta.ModelConfig.from_dict(merged)


def _checkpoint_labels(config_file: Path | None) -> tuple[list[str] | None, bool]:
    """(label names of a fine-tuned checkpoint's config.json in classifier-row order, or None for none or
    HF's LABEL_i placeholders; whether it is this app's own checkpoint, whose config names its task)."""
    if config_file is None:
        return None, False
    config = json.loads(config_file.read_text(encoding="utf-8"))
    own = bool(config.get("finetuning_task"))
    id2label = config.get("id2label")
    if not isinstance(id2label, dict):
        return None, own
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    return (None if all(re.fullmatch(r"LABEL_\d+", n) for n in names) else names), own


def classifier_rows(theirs: Sequence[str], ours: Sequence[str], *, exact: bool) -> list[int] | None:
    """For each of our labels, the row of a checkpoint's classifier (labelled ``theirs``) that scores it;
    None when the two label sets differ.

    ``exact``: this app's checkpoints name labels as their task does, so names compare exactly; other
    checkpoints (the hub's MNLI models say CONTRADICTION, ...) compare without case, on both sides.
    """
    key = (lambda name: name) if exact else str.lower
    row_of = {key(name): row for row, name in enumerate(theirs)}
    if len(row_of) != len(theirs) or len(theirs) != len(ours):
        return None
    rows: list[int] = []
    for name in ours:
        row = row_of.get(key(name))
        if row is None or row in rows:
            return None
        rows.append(row)
    return rows


def build_model(opts: TrainOptions, task: TaskSpec, model_source: Path | None, vocab_size: int) -> nn.Module:
    """The sequence classification model of ``task``: from --init_model, or new from --model_config."""
    if model_source is None:
        assert opts.model_config is not None  # check_options guarantees one of the two
        config = read_model_config(opts.model_config)
        if config.vocab_size != vocab_size:
            logger.info("model from scratch: embedding table sized to the tokenizer, %d ids (config: %d)",
                        vocab_size, config.vocab_size)
            config = dataclasses.replace(config, vocab_size=vocab_size)
        return deberta.SequenceClassificationModel(config, task.num_labels, opts.cls_drop_out)

    _, config_file = pretrained.find_files(model_source)
    config = None
    if opts.model_config is not None:
        config = (override_config(deberta.ModelConfig.from_json_file(config_file), opts.model_config)
                  if config_file is not None else read_model_config(opts.model_config))
    model = deberta.SequenceClassificationModel(config, task.num_labels, opts.cls_drop_out,
                                                pre_trained=str(model_source))
    if model.config.vocab_size < vocab_size:
        raise OptionsError(f"the tokenizer has {vocab_size} ids but {opts.init_model} embeds only "
                           f"{model.config.vocab_size}; give the model's own vocabulary (--vocab_path)")
    fresh = set(model.fresh_heads)
    theirs, own = _checkpoint_labels(config_file)
    ours = list(task.labels or [])
    if "classifier" not in fresh and theirs is not None and ours:
        rows = classifier_rows(theirs, ours, exact=own)
        if rows is None:
            init_weights(model.classifier, model.config.initializer_range)
            fresh.add("classifier")
            logger.info("classifier re-initialised: %s was fine-tuned for labels %s, %s has %s",
                        opts.init_model, theirs, task.name, ours)
        elif rows != list(range(len(rows))):
            with torch.no_grad():  # the same labels in another order: move each row to its label's place
                model.classifier.weight.copy_(model.classifier.weight[rows])
                model.classifier.bias.copy_(model.classifier.bias[rows])
            logger.info("classifier rows reordered: %s was fine-tuned for labels %s, %s orders them %s",
                        opts.init_model, theirs, task.name, ours)
    loaded = "encoder" + "".join(f", {h}" for h in ("pooler", "classifier") if h not in fresh and "all" not in fresh)
    logger.info("model %s: loaded %s; new: %s", opts.init_model, loaded,
                ", ".join(sorted(fresh)) or "nothing")
    return model


def checkpoint_config(model: nn.Module, task: TaskSpec, cls_drop_out: float | None) -> dict[str, Any]:
    """``config.json`` of a checkpoint: the model config (HF layout) plus the label set and task."""
    labels = list(task.labels) if task.labels is not None else ["LABEL_0"]
    return {
        **model.config.to_hf_dict(),
        "architectures": ["DebertaForSequenceClassification"],
        "num_labels": task.num_labels,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "regression" if task.is_regression else "single_label_classification",
        "finetuning_task": task.name,
        "cls_dropout": cls_drop_out,
    }


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on weights, none on biases and LayerNorm parameters."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            (no_decay if isinstance(module, nn.LayerNorm) or name.endswith("bias") else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def update_counts(max_steps: int | None, num_train_epochs: float, batches_per_epoch: int,
                  warmup: float) -> tuple[int, int]:
    """(total updates, warm-up updates) of a run.

    The total is ``max_steps`` when given, else ``num_train_epochs`` passes of ``batches_per_epoch``
    updates, rounded up (at least 1). ``warmup`` is a number of updates when >= 1, else a proportion
    of the total (rounded down).
    """
    total = max_steps or max(1, math.ceil(num_train_epochs * batches_per_epoch))
    return total, int(warmup) if warmup >= 1 else int(warmup * total)


def lr_factor(schedule: str, update: int, total: int, warmup: int) -> float:
    """Multiplier of the peak learning rate for ``update`` (1-based) of ``total``, ``warmup`` of them rising.

    Warm-up rises linearly to 1 at update ``warmup``; then ``warmup_linear`` falls linearly and
    ``warmup_cosine`` along a half cosine, reaching 1/(total - warmup) at the last update (an update
    at rate 0 would be wasted); ``warmup_constant`` stays at 1.
    """
    if update <= warmup:
        return update / warmup
    progress = (update - warmup - 1) / max(1, total - warmup)  # 0 on the first update after warm-up
    if schedule == "warmup_linear":
        return 1.0 - progress
    if schedule == "warmup_cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


# ------------------------------------------------------------------------------------------------------
# RNG state (saved per rank: dropout noise differs between ranks)
# ------------------------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG that training may draw from, in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(tuple(v if not isinstance(v, list) else tuple(v) for v in state["python"]))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------------
# The job
# ------------------------------------------------------------------------------------------------------
class Trainer:
    """One process of a fine-tuning / evaluation / prediction job."""

    def __init__(self, opts: TrainOptions, env: DistEnv, argv: list[str]):
        self.opts, self.env, self.argv = opts, env, argv
        self.micro_batch = (batch_split(opts.train_batch_size, env.world_size, opts.accumulative_update)
                            if opts.do_train else 0)
        self.task = get_task(opts.task_name, opts.data_dir)
        self.device = device_for(env)
        self.output_dir = Path(opts.output_dir)
        self.resume_checkpoint = self._find_resume_checkpoint()
        self.resume_state = (records.read_training_state(self.resume_checkpoint)
                             if self.resume_checkpoint is not None else None)
        if self.resume_state is not None:
            self._check_training_options(self.resume_state)
        self.examples = {split: data.read_examples(self.task, opts.data_dir, split) for split in self._splits()}
        # Rows of malformed lines skipped where the task allows it (QQP), per split: reported in run.json.
        self.skipped_rows = {split: len(ex.skipped_lines) for split, ex in self.examples.items()
                             if self.task.split(split).skip_malformed}
        # (task, split, examples) of every leaderboard file --do_predict writes.
        self.predict_jobs = [(self.task, split, self.examples[split]) for split in self.task.test_splits
                             if opts.do_predict] + self._diagnostic_job()

        init_process_group(env, self.device)
        if len({str(p) for p in all_gather_objects(self.resume_checkpoint)}) > 1:
            raise RunFolderError(f"the ranks see different checkpoints in --output_dir {self.output_dir}: "
                                 "it must be one folder shared by all nodes")
        seed_everything(opts.seed)  # the same initial weights on every rank
        with local_main_first(env):  # rank 0 downloads and builds the feature cache; the others reuse them
            self.model_source = resolve_source(opts.init_model) if opts.init_model is not None else None
            self.tokenizer = load_tokenizer(opts.vocab_path, self.model_source, option="--vocab_path")
            self.model = build_model(opts, self.task, self.model_source, self.tokenizer.vocab_size).to(self.device)
            cache = data.feature_cache_dir()
            self.features = {(task.name, split): data.build_features(ex, self.tokenizer, opts.max_seq_len,
                                                                      cache_dir=cache)
                             for task, split, ex in self._all_splits()}
        seed_everything(opts.seed + env.rank)  # dropout noise differs between ranks
        self.forward = torch.compile(self.model) if opts.compile else self.model
        self.records = records.RunRecords(self.output_dir, enabled=env.is_main)
        self.step = 0
        self.best: dict[str, Any] | None = None  # {"step", "metric", "value"} of the best evaluation
        self.autocast_dtype = torch.float16 if opts.fp16 else torch.bfloat16 if opts.bf16 else None

        self.sampler: data.TrainBatchSampler | None = None
        self.total_updates = self.warmup_updates = 0
        if opts.do_train:
            self.sampler = data.TrainBatchSampler(
                len(self.features[self.task.name, "train"]), opts.train_batch_size, seed=opts.seed, rank=env.rank,
                world_size=env.world_size, accumulation_steps=opts.accumulative_update)
            self.total_updates, self.warmup_updates = update_counts(
                opts.max_steps, opts.num_train_epochs, self.sampler.batches_per_epoch, opts.warmup)
        # A run continued (--resume auto) after its last update has nothing left to train.
        self.complete = self.resume_state is not None and self.resume_state["step"] >= self.total_updates
        # Evaluation or prediction alone in a training run's folder is recorded beside that run's records.
        self.beside_training_run = (not opts.do_train or self.complete) and records.holds_training_run(self.output_dir)

    # ----- validation (before anything is written) ------------------------------------------------
    def _splits(self) -> list[str]:
        """The splits this run reads; the task raises a clear error for one it does not have."""
        opts, task = self.opts, self.task
        splits = []
        if opts.do_train:
            splits.append(task.split("train").name)
        if opts.do_train or opts.do_eval:
            if not task.eval_splits and opts.do_eval:
                raise OptionsError(f"task {task.name} has no labeled dev split to evaluate; use --do_predict")
            splits += task.eval_splits
        if opts.do_predict:
            splits += task.test_splits
        return splits

    def _diagnostic_job(self) -> list[tuple[TaskSpec, str, data.ExampleList]]:
        """MNLI --do_predict also predicts GLUE's diagnostic set (AX.tsv) when it is found beside the data:
        the leaderboard wants both from the same model."""
        if not (self.opts.do_predict and self.task.name == "MNLI"):
            return []
        folder = data.diagnostic_dir(self.opts.data_dir)
        if folder is None:
            return []
        diagnostic = get_task("AX")
        return [(diagnostic, "test", data.read_examples(diagnostic, folder, "test"))]

    def _all_splits(self) -> list[tuple[TaskSpec, str, data.ExampleList]]:
        """Every split read, as (task, split, examples)."""
        own = [(self.task, split, ex) for split, ex in self.examples.items()]
        return own + [job for job in self.predict_jobs if job[0] is not self.task]

    def _find_resume_checkpoint(self) -> Path | None:
        """The checkpoint training continues from, after checking that the folder holds this task's run."""
        recorded = records.read_recorded_options(self.output_dir)
        if recorded is not None and recorded.get("task_name"):
            try:
                theirs = get_task(str(recorded["task_name"]), recorded.get("data_dir")).name
            except deberta.DeBERTaError:
                theirs = str(recorded["task_name"])
            if theirs != self.task.name:
                raise RunFolderError(f"--output_dir {self.output_dir} holds a run of task {theirs}, not "
                                     f"{self.task.name}; use another output folder")
        if not self.opts.do_train or self.opts.resume == "never":
            return None
        if self.opts.resume_dir is not None:
            folder = Path(self.opts.resume_dir)
            if not (folder / records.TRAINING_STATE_FILE).is_file():
                raise RunFolderError(f"--resume {folder}: not a checkpoint of this app (no "
                                     f"{records.TRAINING_STATE_FILE})")
            return folder
        found = records.list_checkpoints(self.output_dir)
        return found[-1][1] if found else None

    def _training_record(self) -> dict[str, Any]:
        """The training options a checkpoint records, with the task under its registry name."""
        return {**self.opts.training_record(), "task_name": self.task.name}

    def _check_training_options(self, state: dict[str, Any]) -> None:
        """Refuse to continue (``--resume auto``) a run trained with other training options; with an explicit
        ``--resume DIR`` the user chose the checkpoint, and a difference is only a warning."""
        theirs = state.get("options")
        if not isinstance(theirs, dict):
            return
        ours = self._training_record()
        changed = [name for name in ours if name in theirs and theirs[name] != ours[name]]
        if not changed:
            return
        difference = ", ".join(f"--{name} {theirs[name]} -> {ours[name]}" for name in changed)
        if self.opts.resume == "auto":
            raise RunFolderError(f"--output_dir {self.output_dir} holds a run trained with other options "
                                 f"({difference}): repeat them to continue it, start over with --resume never, "
                                 "or use another --output_dir")
        logger.warning("resuming from %s with other options than it was trained with (%s)", self.resume_checkpoint,
                       difference)

    # ----- the job --------------------------------------------------------------------------------
    def run(self) -> None:
        """Train, evaluate and predict as the options ask; rank 0 writes the run folder."""
        opts, state = self.opts, self.resume_state
        training = opts.do_train and not self.complete
        if self.complete:
            assert state is not None and self.resume_checkpoint is not None
            logger.info("%s: the run is already complete (%d of %d updates): not training it again",
                        self.output_dir, state["step"], self.total_updates)
            self._load_weights(self.resume_checkpoint)  # evaluate and predict with the trained model
            self.step, self.best = state["step"], state["best"]
            if not (opts.do_eval or opts.do_predict):
                return
        if self.env.is_main and training and opts.resume == "never":
            records.remove_checkpoints(self.output_dir)
        if training:
            mode = "resume" if state is not None else "fresh"
        else:
            mode = "beside" if self.beside_training_run else "append"
        manifest = records.run_manifest(self.argv, opts.seed, opts.tag, self.env.world_size)
        manifest["skipped_rows"] = self.skipped_rows
        if mode == "beside":
            evaluated = self.resume_checkpoint if self.complete else self.model_source
            manifest["model"] = str(evaluated) if evaluated is not None else None
        self.records.start(opts.to_record(), manifest, mode, resume_step=state["step"] if training and state else 0)
        if any(self.skipped_rows.values()):
            logger.warning("malformed rows skipped (recorded in run.json): %s",
                           ", ".join(f"{split} {n}" for split, n in self.skipped_rows.items()))
        try:
            if training:
                self.train(state)
            elif opts.do_eval:
                self.evaluate_and_record(epoch=self.step / self.sampler.batches_per_epoch if self.sampler else 0.0)
            if opts.do_predict:
                self.predict()
            self.records.finish()
        finally:
            self.records.close()

    # ----- training -------------------------------------------------------------------------------
    def train(self, state: dict[str, Any] | None) -> None:
        """The loop: accumulate micro-batches, update, log, and evaluate + checkpoint on schedule."""
        opts, env, sampler = self.opts, self.env, self.sampler
        assert sampler is not None  # built for every --do_train run
        features = self.features[self.task.name, "train"]
        per_epoch, total, warmup = sampler.batches_per_epoch, self.total_updates, self.warmup_updates
        optimizer = torch.optim.AdamW(optimizer_groups(self.model, opts.weight_decay), lr=opts.learning_rate,
                                      betas=(opts.adam_beta1, opts.adam_beta2), eps=opts.epsilon)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(opts.lr_schedule, s + 1, total, warmup))  # s counts past updates
        scaler = torch.amp.GradScaler(self.device.type, init_scale=opts.loss_scale,
                                      growth_interval=opts.scale_steps, enabled=opts.fp16)
        if state is not None:
            self._restore(state, optimizer, scheduler, scaler)
        engine = DistributedDataParallel(self.forward) if env.is_distributed else self.forward
        logger.info("training %s: %d examples, %d updates (%d per epoch) of %d examples = %d ranks x %d "
                    "micro-steps x %d, warm-up %d, from update %d", self.task.name, len(features), total,
                    per_epoch, opts.train_batch_size, env.world_size, opts.accumulative_update,
                    self.micro_batch, warmup, self.step)

        self.model.train()
        bar = tqdm(total=total, initial=self.step, desc=f"train {self.task.name}", unit="update",
                   disable=True if not env.is_main else None, dynamic_ncols=True)
        window = torch.zeros(2, dtype=torch.float64)  # (loss sum, updates) since the last log entry
        window_start = time.perf_counter()
        for micro_batches in self._update_batches(sampler, total):
            loss = self._accumulate(engine, micro_batches, scaler)
            lr = self._optimizer_step(optimizer, scheduler, scaler)
            self.step += 1
            window += torch.tensor([loss, 1.0], dtype=torch.float64)
            epoch = self.step / per_epoch
            bar.update()
            if self.step % opts.log_interval == 0 or self.step == total:
                mean_loss = self._global_mean(window)
                speed = window[1].item() * opts.train_batch_size / (time.perf_counter() - window_start)
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", ex_per_s=f"{speed:.1f}")
                self.records.log_train(self.step, epoch, mean_loss, lr, speed)
                window.zero_()
                window_start = time.perf_counter()
            if self.step % opts.dump_interval == 0 or self.step % per_epoch == 0 or self.step == total:
                paused = time.perf_counter()
                self.evaluate_and_record(epoch)
                self._save_checkpoint(epoch, optimizer, scheduler, scaler)
                window_start += time.perf_counter() - paused  # examples/s counts training time only
        bar.close()
        self.model.eval()

    def _update_batches(self, sampler: data.TrainBatchSampler, total: int) -> Iterator[list[dict[str, Any]]]:
        """The micro-batches (collated) of each update from ``self.step`` to ``total``, epoch after epoch."""
        accumulation = self.opts.accumulative_update
        while self.step < total:
            epoch, start = sampler.position(self.step)
            sampler.set_position(epoch, start)
            # A private generator: creating loaders must not draw from the global RNG (dropout's), or a
            # resumed run would diverge from an uninterrupted one.
            loader = torch.utils.data.DataLoader(self.features[self.task.name, "train"], batch_sampler=sampler,
                                                 collate_fn=data.collate, num_workers=self.opts.workers,
                                                 generator=torch.Generator().manual_seed(self.opts.seed))
            pending: list[dict[str, Any]] = []
            for batch in loader:
                pending.append(batch)
                if len(pending) == accumulation:
                    yield pending
                    pending = []
                    if self.step >= total:
                        return

    def _accumulate(self, engine: nn.Module, micro_batches: list[dict[str, Any]],
                    scaler: torch.amp.GradScaler) -> float:
        """Forward and backward every micro-batch of one update; returns this rank's mean loss.

        Micro-batches have the same size, so averaging their mean losses (and DDP averaging over
        ranks) gives the gradient of the global batch's mean loss. DDP syncs gradients only on the
        last micro-batch.
        """
        total_loss = 0.0
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = nullcontext() if last or not isinstance(engine, DistributedDataParallel) else engine.no_sync()
            with sync:
                with self._autocast():
                    output = engine(**self._to_device(batch))
                loss = output.loss.float() / len(micro_batches)
                scaler.scale(loss).backward()
            total_loss += loss.item()
        return total_loss

    def _optimizer_step(self, optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler) -> float:
        """Clip (after unscaling), step (skipped by the scaler on fp16 overflow), advance the schedule;
        returns the learning rate of this update."""
        lr = optimizer.param_groups[0]["lr"]
        if self.opts.max_grad_norm > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.opts.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return lr

    def _global_mean(self, window: torch.Tensor) -> float:
        """Mean training loss since the last log entry, over all ranks."""
        totals = window.to(self.device, copy=True)  # NCCL reduces GPU tensors only
        if self.env.is_distributed:
            torch.distributed.all_reduce(totals)
        return (totals[0] / totals[1]).item()

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if k != "indices"}

    # ----- checkpoints ----------------------------------------------------------------------------
    def _save_checkpoint(self, epoch: float, optimizer: torch.optim.Optimizer, scheduler: Any,
                         scaler: torch.amp.GradScaler) -> None:
        """Write ``checkpoints/step-<N>`` (rank 0) with every rank's RNG state; prune old ones."""
        rng_states = all_gather_objects(rng_state())
        if not self.env.is_main:
            return
        state = {
            "step": self.step,
            "epoch": epoch,
            "world_size": self.env.world_size,
            "options": self._training_record(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng_states,
            "best": self.best,
        }
        folder = records.write_checkpoint(self.output_dir, self.step, model_state=self.model.state_dict(),
                                          config=checkpoint_config(self.model, self.task, self.opts.cls_drop_out),
                                          tokenizer=self.tokenizer, training_state=state)
        records.prune_checkpoints(self.output_dir, self.opts.keep_checkpoints,
                                  self.best["step"] if self.best else None)
        logger.info("checkpoint %s", folder)

    def _load_weights(self, checkpoint: Path) -> None:
        """The model weights of one of this app's checkpoints."""
        self.model.load_state_dict(load_file(str(checkpoint / "model.safetensors"), device=str(self.device)))

    def _restore(self, state: dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any,
                 scaler: torch.amp.GradScaler) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, step, best, RNG."""
        assert self.resume_checkpoint is not None
        self._load_weights(self.resume_checkpoint)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler.is_enabled() and not state["scaler"]:
            # A checkpoint trained without --fp16 (an explicit --resume DIR) has no loss scale to continue.
            logger.info("the checkpoint has no fp16 loss scale: starting at --loss_scale %g", self.opts.loss_scale)
        else:
            scaler.load_state_dict(state["scaler"])  # a no-op when this run does not use fp16
        self.step, self.best = state["step"], state["best"]
        if state["world_size"] == self.env.world_size:
            set_rng_state(state["rng"][self.env.rank])
        else:
            entropy = [self.opts.seed, self.step, self.env.rank]
            seed_everything(int(np.random.SeedSequence(entropy).generate_state(1)[0]))
            logger.info("checkpoint saved by %d process(es), resumed by %d: same weights and data order, "
                        "fresh dropout noise", state["world_size"], self.env.world_size)
        logger.info("resumed from %s at update %d", self.resume_checkpoint, self.step)

    # ----- evaluation and prediction --------------------------------------------------------------
    def _outputs(self, features: data.Features, batch_size: int, desc: str) -> tuple[np.ndarray, float]:
        """(N, C) float32 model outputs of every example in order, and the summed loss (0 unlabeled).

        Each rank runs its shard (no padding, no duplicates) through the unwrapped model, so ranks
        with one batch more or less never wait on each other; the shards are gathered once.
        """
        shard = data.shard_indices(len(features), self.env.rank, self.env.world_size)
        per_rank = max(1, math.ceil(batch_size / self.env.world_size))
        batches = [list(shard[i : i + per_rank]) for i in range(0, len(shard), per_rank)]
        outputs, loss_sum = [], 0.0
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for indices in tqdm(batches, desc=desc, disable=True if not self.env.is_main else None, leave=False):
                batch = data.collate([features[i] for i in indices])
                with self._autocast():
                    output = self.forward(**self._to_device(batch))
                outputs.append(output.logits.float().cpu().numpy())
                if output.loss is not None:
                    loss_sum += output.loss.float().item() * len(indices)
        self.model.train(was_training)
        num_labels = self.task.num_labels
        local = np.concatenate(outputs) if outputs else np.zeros((0, num_labels), np.float32)
        gathered = all_gather_objects((list(shard), local, loss_sum))
        return data.merge_shards([(i, v) for i, v, _ in gathered], len(features)), sum(s for *_, s in gathered)

    def evaluate(self, split: str) -> EvalResult:
        """Loss and metrics of ``split`` (every example counted once, whatever the number of ranks)."""
        features = self.features[self.task.name, split]
        assert features.labels is not None
        outputs, loss_sum = self._outputs(features, self.opts.eval_batch_size, f"eval {split}")
        return EvalResult(loss_sum / len(features), self.task.compute_metrics(outputs, features.labels), outputs)

    def evaluate_and_record(self, epoch: float) -> None:
        """Evaluate every dev split, record the results and dev predictions, track the best step."""
        if not self.task.eval_splits:
            return
        results = {split: self.evaluate(split) for split in self.task.eval_splits}
        self.records.log_eval(self.step, epoch, {s: {"loss": r.loss, "metrics": r.metrics} for s, r in results.items()})
        for split, result in results.items():
            self._write_dev_predictions(split, result.outputs)
        metric = self.task.main_metric
        value = float(np.mean([r.metrics[metric] for r in results.values()]))
        logger.info("step %d: %s", self.step, "; ".join(
            f"{s} loss {r.loss:.4f} " + " ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
            for s, r in results.items()))
        if self.best is None or value > self.best["value"]:
            self.best = {"step": self.step, "metric": metric, "value": value}
            if self.env.is_main and self.opts.do_train and not self.complete:  # a training run's own evaluation
                records.write_best(self.output_dir, self.step, metric, value)

    def _write_dev_predictions(self, split: str, outputs: np.ndarray) -> None:
        """``predictions/<split>_predictions.tsv``: index, prediction and gold label, by name (scores in full),
        and for classification the logit of each label (``logit_<label>``, float32 to 9 digits: exact)."""
        if not self.env.is_main:
            return
        task, examples = self.task, self.examples[split]
        predictions = task.predictions(outputs)

        def cell(value: Any) -> str:
            return repr(float(value)) if task.is_regression else task.labels[int(value)]

        def logits(row: np.ndarray) -> str:
            return "" if task.is_regression else "".join(f"\t{float(v):.9g}" for v in row)

        header = "index\tprediction\tlabel" + ("" if task.is_regression else "".join(
            f"\tlogit_{name}" for name in task.labels))
        rows = "".join(f"{ex.guid}\t{cell(p)}\t{cell(ex.label)}{logits(o)}\n"
                       for ex, p, o in zip(examples, predictions, outputs, strict=True))
        records.write_text(self.output_dir / records.PREDICTIONS_DIR / f"{split}_predictions.tsv", header + "\n" + rows)

    def predict(self) -> None:
        """Predict every test split (and AX with MNLI) into the GLUE leaderboard files."""
        for task, split, examples in self.predict_jobs:
            outputs, _ = self._outputs(self.features[task.name, split], self.opts.predict_batch_size,
                                       f"predict {task.name} {split}")
            if self.env.is_main:
                path = data.write_predictions(task, split, [ex.guid for ex in examples], outputs,
                                              self.output_dir / records.PREDICTIONS_DIR)
                logger.info("predictions of %s %s: %s", task.name, split, path)
