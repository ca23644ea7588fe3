"""The one training loop: fine-tuning of every task kind and pre-training run through :class:`Engine`.

What the engine does, whatever it trains: DistributedDataParallel under ``torchrun``, float16 (with a
dynamic loss scale) or bfloat16 autocast, gradient accumulation, clipping, AdamW with a warm-up schedule,
the training log (``metrics.jsonl``, TensorBoard, a progress bar), evaluation and a checkpoint every
``dump_interval`` updates and at the end of every epoch (the newest ``keep_checkpoints`` plus the best),
and exact resumption. What it trains it knows only through a :class:`TrainingJob`:

* ``job.loss(module, batch, step)``: the loss of one micro-batch (and statistics to log), computed with
  ``module`` — the model as the engine wraps it (DDP, ``torch.compile``), which must be called, not its
  inner modules, so that DDP sees the forward pass;
* ``job.evaluate_and_record(step, epoch)``: evaluate and record, returning the main metric (or None: nothing to
  evaluate); the engine keeps the best one and ``checkpoints/best.json``;
* ``job.checkpoint_config()`` and ``job.tokenizer``: what a checkpoint folder holds besides the weights;
* ``job.training_record()``: the options that decide what training computes, stored in every checkpoint
  (a resumed run compares them); ``job.data_fingerprint()``: a digest of the training data, stored too
  (:func:`check_data_fingerprint`).

The data comes as a :class:`TrainData`: any map-style dataset, its collate function and a
:class:`~DeBERTa.training.data.samplers.TrainBatchSampler`, whose order depends only on the seed and the
step. With the model, optimizer, schedule, loss scale and every rank's RNG states in the checkpoint, a run
resumed from update k ends exactly as an uninterrupted one (on the same world size; on another one with
the same data and weights, only dropout noise differs). Randomness a job draws itself (masking, sampling)
should come from :func:`~DeBERTa.training.rng.derived_seed` of (seed, step, example), which makes it
independent of the world size and of resumption too.

How task kinds plug in (classification today; token classification, span QA and multiple choice next) is
described at :class:`TaskKind`: the engine trains any of them through a job built from the kind.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from DeBERTa.deberta import DeBERTaError

from . import checkpoints
from .data.samplers import TrainBatchSampler, merge_shards, shard_indices
from .distributed import DistEnv, all_gather_objects
from .optim import build_optimizer, update_counts
from .records import RunRecords
from .rng import rng_state, seed_everything, set_rng_state

logger = logging.getLogger(__name__)


class TrainingError(DeBERTaError):
    """Training cannot go on (a loss that is not finite)."""


@dataclass(frozen=True, kw_only=True)
class TrainingSettings:
    """The training settings both apps share, under the fine-tuning app's option names and flags: optimisation,
    schedule, precision, checkpoints and logs. The pre-training app's options inherit them (overriding a few
    defaults); the fine-tuning app's carry the same names, and :meth:`LoopOptions.of` picks them from either."""

    train_batch_size: int = 32
    """Global batch in examples: over ranks and accumulation steps."""
    accumulative_update: int = 1
    """Micro-steps whose gradients make one update."""
    learning_rate: float = 5e-5
    """Peak learning rate of AdamW."""
    lr_schedule: str = "warmup_linear"
    """Rate after warm-up: one of :data:`~DeBERTa.training.optim.LR_SCHEDULES`."""
    num_train_epochs: float = 3.0
    """Passes over the training data."""
    max_steps: int | None = None
    """Total updates; replaces ``num_train_epochs`` when given."""
    warmup: float = 0.1
    """Warm-up updates when >= 1, else a proportion of all updates."""
    weight_decay: float = 0.01
    """AdamW weight decay (not on biases and LayerNorm parameters)."""
    epsilon: float = 1e-6
    """AdamW epsilon."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.999
    """AdamW beta2."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (0: no clipping)."""
    fp16: bool = False
    """float16 autocast with a dynamic loss scale."""
    bf16: bool = False
    """bfloat16 autocast."""
    loss_scale: float = 256.0
    """fp16: the initial loss scale."""
    scale_steps: int = 1000
    """fp16: updates without overflow before the loss scale doubles."""
    seed: int = 1234
    """Seed of initialisation, dropout and data order."""
    workers: int = 0
    """Data-loading worker processes per rank."""
    dump_interval: int = 10000
    """Evaluate and checkpoint every this many updates (and at the end of every epoch when the loop's
    ``dump_every_epoch``)."""
    keep_checkpoints: int = 1
    """Newest checkpoints kept (the best is kept as well)."""
    log_interval: int = 50
    """Log the training loss every this many updates."""


@dataclass(frozen=True, kw_only=True)
class LoopOptions(TrainingSettings):
    """The options of the loop: the shared :class:`TrainingSettings` and how this run uses them."""

    dump_every_epoch: bool = True
    """Also evaluate and checkpoint at the end of every epoch (fine-tuning); pre-training on a small corpus
    passes over it many times and checkpoints by ``dump_interval`` only."""

    @classmethod
    def of(cls, opts: Any, **overrides: Any) -> LoopOptions:
        """The loop options among an app's options (an object with the :class:`TrainingSettings` attributes)."""
        names = [f.name for f in dataclasses.fields(TrainingSettings)]
        return cls(**{name: getattr(opts, name) for name in names}, **overrides)


@dataclass
class StepOutput:
    """The loss of one micro-batch and what to log of it."""

    loss: torch.Tensor
    """Scalar mean loss of the micro-batch (the engine divides by the accumulation steps)."""
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    """name → (sum, count) over the micro-batch, e.g. ``masked_accuracy``: (hits, targets); the log shows
    sum/count over all micro-batches and ranks since the last entry."""


@dataclass(frozen=True)
class Evaluation:
    """The main metric of an evaluation: it picks the best checkpoint (higher is better)."""

    metric: str
    value: float


class TrainingJob(Protocol):
    """What the engine trains (see the module docstring)."""

    name: str
    tokenizer: Any

    def loss(self, module: nn.Module, batch: dict[str, Any], step: int) -> StepOutput: ...

    def evaluate_and_record(self, step: int, epoch: float) -> Evaluation | None: ...

    def checkpoint_config(self) -> dict[str, Any]: ...

    def training_record(self) -> dict[str, Any]: ...

    def data_fingerprint(self) -> str: ...


def check_data_fingerprint(state: Mapping[str, Any], fingerprint: str, accept: bool, where: str) -> None:
    """Refuse to resume on training data other than the checkpoint's (the order and the schedule would
    silently change), unless ``accept``; a checkpoint that recorded none is not checked."""
    theirs = state.get("data_fingerprint")
    if theirs is None or theirs == fingerprint:
        return
    if not accept:
        raise TrainingError(f"{where}: the training data changed since this checkpoint was written; restore them, "
                            "start over with --resume never, or continue anyway with --accept_changed_data")
    logger.warning("%s: the training data changed since this checkpoint; continuing as asked", where)


def _weights_difference(own: Mapping[str, tuple[int, ...]], theirs: Mapping[str, tuple[int, ...]]) -> str | None:
    """The first way the checkpoint's tensor shapes ``theirs`` differ from the model's ``own``, or None."""
    for key, shape in own.items():
        if key not in theirs:
            return f"it has no {key}"
        if tuple(theirs[key]) != tuple(shape):
            return f"{key} is {tuple(theirs[key])} there, {tuple(shape)} in this model"
    extra = sorted(set(theirs) - set(own))
    return f"it holds {extra[0]}, which this model has not" if extra else None


def check_checkpoint_fits(model: nn.Module, folder: Path, where: str,
                          state: Mapping[str, torch.Tensor] | None = None) -> None:
    """A one-line :class:`TrainingError` when the weights of checkpoint ``folder`` are of another model (other
    sizes or layers): from ``state`` when loaded, else from the safetensors header alone (nothing is read)."""
    own = {key: tuple(tensor.shape) for key, tensor in model.state_dict().items()}
    if state is not None:
        theirs = {key: tuple(tensor.shape) for key, tensor in state.items()}
    else:
        from safetensors import SafetensorError, safe_open

        path = folder / checkpoints.MODEL_FILE
        try:
            with safe_open(str(path), framework="pt") as file:
                theirs = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise TrainingError(f"{where}: {path} is not a readable safetensors file ({reason})") from None
    difference = _weights_difference(own, theirs)
    if difference is not None:
        raise TrainingError(f"{where}: a checkpoint of another model ({difference}); give the model options it "
                            "was trained with")


class TaskKind(Protocol):
    """A kind of task (classification, token classification, span QA, multiple choice), as the apps see it.

    The engine never imports a kind; an app builds a :class:`TrainingJob` from one. The data flows
    ``read → features → collate → model → decode → metrics``:

    * ``read(data_dir, split)`` → examples, the rows of a split as the task's files hold them;
    * ``features(examples, tokenizer, max_seq_len)`` → a map-style dataset of feature dicts. A kind may
      make several features of one example (a long SQuAD context in overlapping windows, one per choice
      of RACE is inside one feature); each feature carries ``example_index`` (and whatever ``decode``
      needs, such as token-to-character offsets);
    * ``collate(features)`` → a batch of tensors; keys the model does not take (``indices``,
      ``example_index``) are left to the job;
    * ``build_model(config, pre_trained)`` → an ``nn.Module`` whose forward takes the batch and returns
      ``(logits, loss)`` (:class:`~DeBERTa.deberta.HeadOutput`);
    * ``decode(examples, features, outputs)`` → one prediction per example from the outputs of every
      feature, in feature order (:meth:`Engine.outputs` gathers them over ranks, each feature once):
      spans back to characters with the best window, tags back to words, the arg-max choice;
    * ``metrics(examples, predictions)`` → ``{name: value}``; ``main_metric`` names the one that picks the
      best checkpoint.

    How a kind becomes a job: the app reads the splits, builds the features and the model, and gives the
    engine ``TrainData(features, kind.collate, TrainBatchSampler(len(features), …))`` and a job whose
    ``loss`` calls the model on the batch and whose ``evaluate_and_record`` runs :meth:`Engine.outputs` over
    the dev features, then ``decode`` and ``metrics``, and returns the main metric.

    :class:`~DeBERTa.apps.trainer.KindTrainer` is that job for the kinds of :mod:`DeBERTa.apps.tasks.kinds`
    (NER, SQuAD, SQuAD2, RACE, SWAG). The classification kind (GLUE, custom tasks) is today spread over
    :class:`~DeBERTa.apps.tasks.TaskSpec` (labels, metrics; ``predictions`` is its decode: arg-max or score,
    one feature per example), :mod:`DeBERTa.apps.data` (read, features, collate) and
    :class:`~DeBERTa.apps.trainer.Trainer` (model, job); new kinds implement this protocol in one place.
    """

    name: str
    main_metric: str | None

    def read(self, data_dir: str | Path, split: str) -> Sequence[Any]: ...

    def features(self, examples: Sequence[Any], tokenizer: Any, max_seq_len: int) -> Any: ...

    def collate(self, features: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]: ...

    def build_model(self, config: Any, pre_trained: str | None) -> nn.Module: ...

    def decode(self, examples: Sequence[Any], features: Any, outputs: np.ndarray) -> Sequence[Any]: ...

    def metrics(self, examples: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]: ...


@dataclass
class TrainData:
    """The training data: a map-style dataset, how to batch it, and in which order."""

    dataset: Any
    """``dataset[i]`` is one example's features; ``len(dataset)`` examples."""
    collate: Callable[[list[Any]], dict[str, Any]]
    """Micro-batch of items → dict of tensors (an ``indices`` entry is passed on to the job, not to the model)."""
    sampler: TrainBatchSampler
    """Which examples make each micro-batch of each update."""


class Engine:
    """One process's training loop over one model (see the module docstring)."""

    def __init__(self, model: nn.Module, opts: LoopOptions, env: DistEnv, device: torch.device,
                 output_dir: str | Path, records: RunRecords, *, compile: bool = False) -> None:
        self.model, self.opts, self.env, self.device = model, opts, env, device
        self.output_dir = Path(output_dir)
        self.records = records
        # cast: compiling a module gives an OptimizedModule (a Module); torch.compile's stub says only a callable
        self.forward = cast(nn.Module, torch.compile(model)) if compile else model
        self.step = 0
        self.best: dict[str, Any] | None = None  # {"step", "metric", "value"} of the best evaluation
        self.autocast_dtype = torch.float16 if opts.fp16 else torch.bfloat16 if opts.bf16 else None
        self.total_updates = self.warmup_updates = 0
        self.batches_per_epoch = 1
        self.progress = True  # progress bars on rank 0

    # ----- plan -------------------------------------------------------------------------------------
    def plan(self, batches_per_epoch: int) -> tuple[int, int]:
        """Fix the number of updates from the data's batches per epoch; returns (total, warm-up)."""
        self.batches_per_epoch = batches_per_epoch
        self.total_updates, self.warmup_updates = update_counts(
            self.opts.max_steps, self.opts.num_train_epochs, batches_per_epoch, self.opts.warmup)
        return self.total_updates, self.warmup_updates

    @property
    def epoch(self) -> float:
        """Passes over the training data so far."""
        return self.step / self.batches_per_epoch

    # ----- the loop ---------------------------------------------------------------------------------
    def train(self, job: TrainingJob, data: TrainData, resume: tuple[Path, dict[str, Any]] | None = None) -> None:
        """Train from step 0, or from the checkpoint ``resume`` = (folder, its training state), to the end."""
        opts, env = self.opts, self.env
        if data.sampler.batches_per_epoch != self.batches_per_epoch or not self.total_updates:
            self.plan(data.sampler.batches_per_epoch)
        total = self.total_updates
        optimizer, scheduler = build_optimizer(
            self.model, learning_rate=opts.learning_rate, weight_decay=opts.weight_decay,
            betas=(opts.adam_beta1, opts.adam_beta2), epsilon=opts.epsilon, schedule=opts.lr_schedule,
            total=total, warmup=self.warmup_updates)
        scaler = torch.amp.GradScaler(self.device.type, init_scale=opts.loss_scale,
                                      growth_interval=opts.scale_steps, enabled=opts.fp16)
        if resume is not None:
            self.restore(*resume, optimizer, scheduler, scaler)
        wrapped = DistributedDataParallel(self.forward) if env.is_distributed else self.forward

        self.model.train()
        bar = tqdm(total=total, initial=self.step, desc=job.name, unit="update",
                   disable=True if not (env.is_main and self.progress) else None, dynamic_ncols=True)
        window = _Window()
        for micro_batches in self._update_batches(data):
            loss, stats = self._accumulate(job, wrapped, micro_batches, scaler)
            if not math.isfinite(loss) and not opts.fp16:  # fp16 skips such updates through the loss scale
                newest = checkpoints.list_checkpoints(self.output_dir)
                kept = f"; the last checkpoint, {newest[-1][1]}, is kept" if newest else ""
                raise TrainingError(f"update {self.step + 1}: the training loss is {loss} (lower --learning_rate, "
                                    f"or check --weight_decay and the data){kept}")
            lr = self._optimizer_step(optimizer, scheduler, scaler)
            self.step += 1
            window.add(loss, stats, opts.train_batch_size)
            bar.update()
            if self.step % opts.log_interval == 0 or self.step == total:
                mean_loss, means, speed = window.summary(self.device, env.is_distributed)
                # ignore: tqdm's stub lets **kwargs fill its `ordered_dict` and `refresh` parameters; these keys don't
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", ex_per_s=f"{speed:.1f}",
                                **{k: f"{v:.3f}" for k, v in means.items()})  # type: ignore[arg-type]
                self.records.log_train(self.step, self.epoch, mean_loss, lr, speed, extra=means)
                window = _Window()
            epoch_end = opts.dump_every_epoch and self.step % self.batches_per_epoch == 0
            if self.step % opts.dump_interval == 0 or epoch_end or self.step == total:
                paused = time.perf_counter()
                self.evaluate(job)
                self.save_checkpoint(job, optimizer, scheduler, scaler)
                window.start += time.perf_counter() - paused  # examples/s counts training time only
        bar.close()
        self.model.eval()

    def evaluate(self, job: TrainingJob) -> None:
        """Let the job evaluate; keep the best step and (training) ``checkpoints/best.json``."""
        result = job.evaluate_and_record(self.step, self.epoch)
        if result is None:
            return
        if self.best is None or result.value > self.best["value"]:
            self.best = {"step": self.step, "metric": result.metric, "value": result.value}
            if self.env.is_main:
                checkpoints.write_best(self.output_dir, self.step, result.metric, result.value)

    def _update_batches(self, data: TrainData) -> Iterator[list[dict[str, Any]]]:
        """The micro-batches (collated) of each update from ``self.step`` to the end, epoch after epoch."""
        accumulation = self.opts.accumulative_update
        sampler = data.sampler
        while self.step < self.total_updates:
            epoch, start = sampler.position(self.step)
            sampler.set_position(epoch, start)
            # A private generator: creating loaders must not draw from the global RNG (dropout's), or a
            # resumed run would diverge from an uninterrupted one.
            loader = torch.utils.data.DataLoader(data.dataset, batch_sampler=sampler, collate_fn=data.collate,
                                                 num_workers=self.opts.workers,
                                                 generator=torch.Generator().manual_seed(self.opts.seed))
            pending: list[dict[str, Any]] = []
            for batch in loader:
                pending.append(batch)
                if len(pending) == accumulation:
                    yield pending
                    pending = []
                    if self.step >= self.total_updates:
                        return

    def _accumulate(self, job: TrainingJob, wrapped: nn.Module, micro_batches: list[dict[str, Any]],
                    scaler: torch.amp.GradScaler) -> tuple[float, dict[str, list[float]]]:
        """Forward and backward every micro-batch of one update; returns this rank's mean loss and stats.

        Micro-batches have the same size, so averaging their mean losses (and DDP averaging over
        ranks) gives the gradient of the global batch's mean loss. DDP syncs gradients only on the
        last micro-batch.
        """
        total_loss = 0.0
        stats: dict[str, list[float]] = {}
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            sync = nullcontext() if last or not isinstance(wrapped, DistributedDataParallel) else wrapped.no_sync()
            with sync:
                with self.autocast():
                    output = job.loss(wrapped, self.to_device(batch), self.step)
                loss = output.loss.float() / len(micro_batches)
                scaler.scale(loss).backward()
            total_loss += loss.item()
            for name, (value, count) in output.stats.items():
                acc = stats.setdefault(name, [0.0, 0.0])
                acc[0] += value
                acc[1] += count
        return total_loss, stats

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

    def autocast(self) -> Any:
        """The run's autocast context (nothing in float32)."""
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Tensors of a batch on this rank's device (``indices`` stay where they are)."""
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) and k != "indices" else v
                for k, v in batch.items()}

    # ----- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self, job: TrainingJob, optimizer: torch.optim.Optimizer, scheduler: Any,
                        scaler: torch.amp.GradScaler) -> None:
        """Write ``checkpoints/step-<N>`` (rank 0) with every rank's RNG state; prune old ones."""
        rng_states = all_gather_objects(rng_state())
        if not self.env.is_main:
            return
        state = {
            "step": self.step,
            "epoch": self.epoch,
            "world_size": self.env.world_size,
            "options": job.training_record(),
            "data_fingerprint": job.data_fingerprint(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": rng_states,
            "best": self.best,
        }
        folder = checkpoints.write_checkpoint(self.output_dir, self.step, model_state=self.model.state_dict(),
                                              config=job.checkpoint_config(), tokenizer=job.tokenizer,
                                              training_state=state)
        checkpoints.prune_checkpoints(self.output_dir, self.opts.keep_checkpoints,
                                      self.best["step"] if self.best else None)
        logger.info("checkpoint %s", folder)

    def load_weights(self, folder: Path) -> None:
        """The model weights of a checkpoint (a damaged file, or one of another model, is a one-line error)."""
        state = checkpoints.load_checkpoint_weights(folder, self.device)
        check_checkpoint_fits(self.model, folder, str(folder), state)
        self.model.load_state_dict(state)

    def restore(self, folder: Path, state: dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any,
                scaler: torch.amp.GradScaler) -> None:
        """Continue from a checkpoint: weights, optimizer, schedule, scaler, step, best, RNG."""
        self.load_weights(folder)
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
        logger.info("resumed from %s at update %d", folder, self.step)

    # ----- evaluation -------------------------------------------------------------------------------
    def outputs(self, dataset: Any, collate: Callable[[list[Any]], dict[str, Any]], batch_size: int, desc: str,
                run: Callable[[nn.Module, dict[str, Any]], tuple[np.ndarray, float]],
                empty: tuple[int, ...] = (0,)) -> tuple[np.ndarray, float]:
        """Outputs of every item of ``dataset`` in order, and the summed loss, gathered over the ranks.

        ``run(model, batch)`` returns the batch's outputs (b, ...) and its summed loss. Each rank runs its
        shard (no padding, no duplicates) through the unwrapped model, so ranks with one batch more or less
        never wait on each other; the shards are gathered once. ``empty`` is the shape of a rank's outputs
        when its shard is empty.
        """
        shard = shard_indices(len(dataset), self.env.rank, self.env.world_size)
        per_rank = max(1, math.ceil(batch_size / self.env.world_size))
        batches = [list(shard[i : i + per_rank]) for i in range(0, len(shard), per_rank)]
        outputs, loss_sum = [], 0.0
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for indices in tqdm(batches, desc=desc, disable=True if not self.env.is_main else None, leave=False):
                with self.autocast():
                    values, batch_loss = run(self.forward, self.to_device(collate([dataset[i] for i in indices])))
                outputs.append(values)
                loss_sum += batch_loss
        self.model.train(was_training)
        local = np.concatenate(outputs) if outputs else np.zeros(empty, np.float32)
        gathered = all_gather_objects((list(shard), local, loss_sum))
        return merge_shards([(i, v) for i, v, _ in gathered], len(dataset)), sum(s for *_, s in gathered)


class _Window:
    """Training statistics since the last log entry."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.updates = 0
        self.examples = 0
        self.stats: dict[str, list[float]] = {}
        self.start = time.perf_counter()

    def add(self, loss: float, stats: Mapping[str, list[float]], examples: int) -> None:
        self.loss += loss
        self.updates += 1
        self.examples += examples
        for name, (value, count) in stats.items():
            acc = self.stats.setdefault(name, [0.0, 0.0])
            acc[0] += value
            acc[1] += count

    def summary(self, device: torch.device, distributed: bool) -> tuple[float, dict[str, float], float]:
        """(mean loss over ranks, stat means over ranks, examples/s) of the window."""
        names = sorted(self.stats)
        values = [self.loss, float(self.updates)] + [v for n in names for v in self.stats[n]]
        totals = torch.tensor(values, dtype=torch.float64, device=device)  # NCCL reduces GPU tensors only
        if distributed:
            torch.distributed.all_reduce(totals)
        totals = totals.cpu()
        mean_loss = (totals[0] / totals[1]).item()
        means = {n: (totals[2 + 2 * i] / totals[3 + 2 * i].clamp(min=1)).item() for i, n in enumerate(names)}
        return mean_loss, means, self.examples / max(1e-9, time.perf_counter() - self.start)

