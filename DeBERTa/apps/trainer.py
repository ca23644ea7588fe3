"""Fine-tuning, evaluation and prediction of one process of a (possibly distributed) job: GLUE and custom
classification tasks (:class:`Trainer`), and the kinds beyond classification — NER, SQuAD 1.1/2.0, RACE,
SWAG (:class:`KindTrainer`, chosen by ``--task_name``; see :mod:`.tasks.kinds`).

:class:`Trainer` does everything that may fail on bad input (task, files, rows, labels, model, tokenizer,
the run folder) in its constructor, before anything is written; :meth:`Trainer.run` then trains,
evaluates and predicts, writing through :mod:`.records` on rank 0 only. Training runs through the one
engine, :class:`~DeBERTa.training.engine.Engine` (DDP, AMP, accumulation, schedules, checkpoints); the
trainer is its job for a classification task (:class:`~DeBERTa.training.engine.TrainingJob`): the loss of
a batch, the evaluation of the dev splits, the checkpoint's ``config.json``. Evaluation is sharded over the
ranks and gathered back into the original order (each example exactly once).

A run is reproducible and resumable: the data order depends only on the seed and the step, and a
checkpoint holds the model, optimizer, scheduler, loss scaler and RNG states, so a run resumed from
step k ends exactly as an uninterrupted one (same world size; on another world size it resumes with
the same data and weights, only dropout noise differs). A checkpoint also records the options that
decide what training computes (:data:`~DeBERTa.apps.options.TRAINING_OPTIONS`) and a fingerprint of the
training data: ``--resume auto`` continues only a run of the same options and data (or, with
``--accept_changed_data``, other data), skips a damaged newest checkpoint for the newest intact one, and
does not train a finished run again. One training run at a time holds the folder's lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from DeBERTa import deberta
from DeBERTa.deberta import pretrained
from DeBERTa.deberta.model import init_weights
from DeBERTa.training.engine import (
    Engine,
    Evaluation,
    LoopOptions,
    StepOutput,
    TrainData,
    check_checkpoint_fits,
    check_data_fingerprint,
)
from DeBERTa.training.models import config_of, override_config, read_model_config
from DeBERTa.training.optim import lr_factor, optimizer_groups, update_counts
from DeBERTa.training.rng import rng_state, seed_everything, set_rng_state

from . import data, records
from .distributed import DistEnv, all_gather_objects, device_for, init_process_group, local_main_first
from .models import CLASSIFICATION, MULTIPLE_CHOICE, SPANS, TOKENS, hf_config, load_tokenizer, resolve_source
from .options import OptionsError, TrainOptions, batch_split
from .records import RunFolderError
from .tasks import TaskSpec, get_task, get_task_spec
from .tasks.kinds import FeatureList, KindOptions, KindTask, evaluate_split, get_kind_task, scalar_metrics

__all__ = ["EvalResult", "KindTrainer", "Trainer", "build_kind_model", "build_model",
           "checkpoint_config", "classifier_rows", "lr_factor",
           "optimizer_groups", "override_config", "read_model_config", "rng_state", "seed_everything",
           "set_rng_state", "update_counts"]

logger = logging.getLogger(__name__)


def _model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """A collated batch as the head's forward takes it (the example positions stay behind)."""
    return {k: v for k, v in batch.items() if k != "indices"}


class EvalResult(NamedTuple):
    """One evaluated split: mean loss, the task's metrics, and the model outputs in example order."""

    loss: float
    metrics: dict[str, float]
    outputs: np.ndarray  # (N, num_labels) logits, or (N, 1) scores for regression


# ------------------------------------------------------------------------------------------------------
# Model
# ------------------------------------------------------------------------------------------------------
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


def _scratch_config(opts: TrainOptions, vocab_size: int) -> deberta.ModelConfig:
    """--model_config of a model from scratch, its embedding table sized to the tokenizer's ``vocab_size``."""
    assert opts.model_config is not None  # check_options guarantees --init_model or --model_config
    config = read_model_config(opts.model_config)
    if config.vocab_size != vocab_size:
        logger.info("model from scratch: embedding table sized to the tokenizer, %d ids (config: %d)",
                    vocab_size, config.vocab_size)
        config = dataclasses.replace(config, vocab_size=vocab_size)
    return config


def _init_config(opts: TrainOptions, config_file: Path | None) -> deberta.ModelConfig | None:
    """The config --init_model loads with: its own (None), or with what --model_config overrides."""
    if opts.model_config is None:
        return None
    if config_file is None:
        return read_model_config(opts.model_config)
    return override_config(deberta.ModelConfig.from_json_file(config_file), opts.model_config)


def _check_embeds(opts: TrainOptions, model: nn.Module, vocab_size: int) -> None:
    """A loaded model must embed every id of the tokenizer."""
    embedded = config_of(model).vocab_size
    if embedded < vocab_size:
        raise OptionsError(f"the tokenizer has {vocab_size} ids but {opts.init_model} embeds only "
                           f"{embedded}; give the model's own vocabulary (--vocab_path)")


def build_model(opts: TrainOptions, task: TaskSpec, model_source: Path | None, vocab_size: int) -> nn.Module:
    """The sequence classification model of ``task``: from --init_model, or new from --model_config."""
    if model_source is None:
        return deberta.SequenceClassificationModel(_scratch_config(opts, vocab_size), task.num_labels,
                                                   opts.cls_drop_out)
    _, config_file = pretrained.find_files(model_source)
    model = deberta.SequenceClassificationModel(_init_config(opts, config_file), task.num_labels, opts.cls_drop_out,
                                                pre_trained=str(model_source))
    _check_embeds(opts, model, vocab_size)
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
        **hf_config(config_of(model), CLASSIFICATION),
        "num_labels": task.num_labels,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
        "problem_type": "regression" if task.is_regression else "single_label_classification",
        "finetuning_task": task.name,
        "cls_dropout": cls_drop_out,
    }


# ------------------------------------------------------------------------------------------------------
# The job
# ------------------------------------------------------------------------------------------------------
class Trainer:
    """One process of a fine-tuning / evaluation / prediction job (a :class:`KindTrainer` for the kinds beyond
    classification: NER, SQuAD, SQuAD2, RACE, SWAG)."""

    def __new__(cls, opts: TrainOptions, env: DistEnv, argv: list[str]) -> Trainer:
        if cls is Trainer and opts.task_name and get_kind_task(opts.task_name) is not None:
            cls = KindTrainer
        return super().__new__(cls)

    def __init__(self, opts: TrainOptions, env: DistEnv, argv: list[str]):
        self.opts, self.env, self.argv = opts, env, argv
        self.micro_batch = (batch_split(opts.train_batch_size, env.world_size, opts.accumulative_update)
                            if opts.do_train else 0)
        assert opts.task_name is not None and opts.output_dir is not None  # check_options requires them
        self.task = get_task(opts.task_name, opts.data_dir)
        self.device = device_for(env)
        self.output_dir = Path(opts.output_dir)
        if opts.do_train:
            records.check_run_folder(self.output_dir)
        self.resume_checkpoint, self.resume_state = self._find_resume_checkpoint()
        if self.resume_state is not None:
            self._check_training_options(self.resume_state)
        self._read_examples()

        init_process_group(env, self.device)
        if len({str(p) for p in all_gather_objects(self.resume_checkpoint)}) > 1:
            raise RunFolderError(f"the ranks see different checkpoints in --output_dir {self.output_dir}: "
                                 "it must be one folder shared by all nodes")
        seed_everything(opts.seed)  # the same initial weights on every rank
        with local_main_first(env):  # rank 0 downloads and builds the feature cache; the others reuse them
            self.model_source = resolve_source(opts.init_model) if opts.init_model is not None else None
            self.tokenizer = load_tokenizer(opts.vocab_path, self.model_source, option="--vocab_path")
            self.model = self._build_model().to(self.device)
            self._build_features()
        if self.resume_state is not None:
            check_data_fingerprint(self.resume_state, self._data_fingerprint, opts.accept_changed_data,
                                   f"--resume {self.resume_checkpoint}")
        if self.resume_checkpoint is not None:  # before the run folder changes (the engine checks again at loading)
            check_checkpoint_fits(self.model, self.resume_checkpoint, f"--resume {self.resume_checkpoint}")
        seed_everything(opts.seed + env.rank)  # dropout noise differs between ranks
        self.records = records.RunRecords(self.output_dir, enabled=env.is_main)
        self.engine = Engine(self.model, LoopOptions.of(opts), env, self.device, self.output_dir, self.records,
                             compile=opts.compile)
        self.name = f"train {self.task.name}"

        self.sampler: data.TrainBatchSampler | None = None
        self.total_updates = self.warmup_updates = 0
        if opts.do_train:
            self.sampler = data.TrainBatchSampler(
                len(self.features[self.task.name, "train"]), opts.train_batch_size, seed=opts.seed, rank=env.rank,
                world_size=env.world_size, accumulation_steps=opts.accumulative_update)
            self.total_updates, self.warmup_updates = self.engine.plan(self.sampler.batches_per_epoch)
        # A run continued (--resume auto) after its last update has nothing left to train.
        self.complete = self.resume_state is not None and self.resume_state["step"] >= self.total_updates
        # Evaluation or prediction alone in a training run's folder is recorded beside that run's records.
        self.beside_training_run = (not opts.do_train or self.complete) and records.holds_training_run(self.output_dir)

    # ----- what depends on the task's kind (the classification kind here; KindTrainer below) --------
    @property
    def _spec(self) -> TaskSpec:
        """The task as the classification spec this class's own methods read (KindTrainer overrides them)."""
        assert isinstance(self.task, TaskSpec)
        return self.task

    def _read_examples(self) -> None:
        """``examples`` of every split read, ``skipped_rows`` per split, and ``predict_jobs``."""
        opts, spec = self.opts, self._spec
        assert opts.data_dir is not None  # check_options requires --data_dir
        self.examples = {split: data.read_examples(spec, opts.data_dir, split) for split in self._splits()}
        # Rows of malformed lines skipped where the task allows it (QQP), per split: reported in run.json.
        self.skipped_rows = {split: len(ex.skipped_lines) for split, ex in self.examples.items()
                             if spec.split(split).skip_malformed}
        # (task, split, examples) of every leaderboard file --do_predict writes.
        self.predict_jobs = [(spec, split, self.examples[split]) for split in spec.test_splits
                             if opts.do_predict] + self._diagnostic_job()

    def _collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """A training micro-batch of feature items."""
        return data.collate(items)

    def _manifest_extras(self) -> dict[str, Any]:
        """What run.json records about the data besides the manifest: malformed rows skipped."""
        return {"skipped_rows": self.skipped_rows}

    def _build_model(self) -> nn.Module:
        return build_model(self.opts, self._spec, self.model_source, self.tokenizer.vocab_size)

    def _build_features(self) -> None:
        """``features`` of every split (cached) and the training data's fingerprint."""
        opts = self.opts
        cache = data.feature_cache_dir()
        self.features = {(task.name, split): data.build_features(ex, self.tokenizer, opts.max_seq_len, cache_dir=cache)
                         for task, split, ex in self._all_splits()}
        self._data_fingerprint = (data.feature_cache_key(self.examples["train"], self.tokenizer, opts.max_seq_len)
                                  if opts.do_train else "")

    # ----- validation (before anything is written) ------------------------------------------------
    def _splits(self) -> list[str]:
        """The splits this run reads; the task raises a clear error for one it does not have."""
        opts, task = self.opts, self._spec
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
        assert self.opts.data_dir is not None  # check_options requires --data_dir
        folder = data.diagnostic_dir(self.opts.data_dir)
        if folder is None:
            return []
        diagnostic = get_task_spec("AX")
        return [(diagnostic, "test", data.read_examples(diagnostic, folder, "test"))]

    def _all_splits(self) -> list[tuple[TaskSpec, str, data.ExampleList]]:
        """Every split read, as (task, split, examples)."""
        own = [(self._spec, split, ex) for split, ex in self.examples.items()]
        return own + [job for job in self.predict_jobs if job[0] is not self.task]

    def _find_resume_checkpoint(self) -> tuple[Path | None, dict[str, Any] | None]:
        """The checkpoint training continues from and its training state, after checking that the folder
        holds this task's run; ``--resume auto`` skips damaged checkpoints (with a warning)."""
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
            return None, None
        if self.opts.resume_dir is not None:
            folder = Path(self.opts.resume_dir)
            if not (folder / records.TRAINING_STATE_FILE).is_file():
                raise RunFolderError(f"--resume {folder}: not a checkpoint of this app (no "
                                     f"{records.TRAINING_STATE_FILE})")
            return folder, records.check_training_state(folder)
        found = records.newest_intact_checkpoint(self.output_dir)
        if found is None and records.list_checkpoints(self.output_dir):
            raise RunFolderError(f"--output_dir {self.output_dir}: every checkpoint is damaged; start over with "
                                 "--resume never, or use another --output_dir")
        return found if found is not None else (None, None)

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
            self.engine.step, self.engine.best = state["step"], state["best"]
            if not (opts.do_eval or opts.do_predict):
                return
        # Before anything in the folder changes: one run at a time, an evaluation beside a training run included.
        self.records.lock()
        if self.env.is_main and training and opts.resume == "never":
            records.remove_checkpoints(self.output_dir)
        if training:
            mode = "resume" if state is not None else "fresh"
        else:
            mode = "beside" if self.beside_training_run else "append"
        manifest = records.run_manifest(self.argv, opts.seed, opts.tag, self.env.world_size)
        manifest.update(self._manifest_extras())
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
                self.evaluate_and_record(self.step, self.engine.epoch if self.sampler else 0.0)
            if opts.do_predict:
                self.predict()
            self.records.finish()
        finally:
            self.records.close()

    # ----- training: the engine's job -----------------------------------------------------------------
    @property
    def step(self) -> int:
        """Updates done (the engine's count)."""
        return self.engine.step

    @property
    def best(self) -> dict[str, Any] | None:
        """{"step", "metric", "value"} of the best evaluation so far, or None."""
        return self.engine.best

    def train(self, state: dict[str, Any] | None) -> None:
        """Fine-tune through the engine, from step 0 or from the resume checkpoint."""
        opts, env, sampler = self.opts, self.env, self.sampler
        assert sampler is not None  # built for every --do_train run
        features = self.features[self.task.name, "train"]
        logger.info("training %s: %d examples, %d updates (%d per epoch) of %d examples = %d ranks x %d "
                    "micro-steps x %d, warm-up %d, from update %d", self.task.name, len(features),
                    self.total_updates, sampler.batches_per_epoch, opts.train_batch_size, env.world_size,
                    opts.accumulative_update, self.micro_batch, self.warmup_updates,
                    state["step"] if state is not None else 0)
        resume = (self.resume_checkpoint, state) if state is not None and self.resume_checkpoint is not None else None
        self.engine.train(self, TrainData(features, self._collate, sampler), resume)

    def loss(self, module: nn.Module, batch: dict[str, Any], step: int) -> StepOutput:
        """The task's loss of one micro-batch (the head computes it from the labels)."""
        return StepOutput(module(**_model_inputs(batch)).loss)

    def training_record(self) -> dict[str, Any]:
        """The training options a checkpoint records, with the task under its registry name."""
        return self._training_record()

    def data_fingerprint(self) -> str:
        """SHA-256 of the training examples as tokenized (texts, labels, tokenizer, --max_seq_len)."""
        return self._data_fingerprint

    def checkpoint_config(self) -> dict[str, Any]:
        """``config.json`` of this run's checkpoints."""
        return checkpoint_config(self.model, self._spec, self.opts.cls_drop_out)

    def _load_weights(self, checkpoint: Path) -> None:
        """The model weights of one of this app's checkpoints."""
        self.engine.load_weights(checkpoint)

    # ----- evaluation and prediction --------------------------------------------------------------
    def _outputs(self, features: data.Features, batch_size: int, desc: str) -> tuple[np.ndarray, float]:
        """(N, C) float32 model outputs of every example in order, and the summed loss (0 unlabeled)."""

        def run(model: nn.Module, batch: dict[str, Any]) -> tuple[np.ndarray, float]:
            output = model(**_model_inputs(batch))
            loss = output.loss.float().item() * len(batch["indices"]) if output.loss is not None else 0.0
            return output.logits.float().cpu().numpy(), loss

        return self.engine.outputs(features, data.collate, batch_size, desc, run, empty=(0, self._spec.num_labels))

    def evaluate(self, split: str) -> EvalResult:
        """Loss and metrics of ``split`` (every example counted once, whatever the number of ranks)."""
        features = self.features[self.task.name, split]
        assert features.labels is not None
        outputs, loss_sum = self._outputs(features, self.opts.eval_batch_size, f"eval {split}")
        return EvalResult(loss_sum / len(features), self._spec.compute_metrics(outputs, features.labels), outputs)

    def evaluate_and_record(self, step: int, epoch: float) -> Evaluation | None:
        """Evaluate every dev split at update ``step``, record the results and dev predictions; returns the
        main metric (the engine keeps the best)."""
        if not self.task.eval_splits:
            return None
        results = {split: self.evaluate(split) for split in self.task.eval_splits}
        self.records.log_eval(step, epoch, {s: {"loss": r.loss, "metrics": r.metrics} for s, r in results.items()})
        for split, result in results.items():
            self._write_dev_predictions(split, result.outputs)
        metric = self.task.main_metric
        assert metric is not None  # a task with eval splits has metrics
        logger.info("step %d: %s", step, "; ".join(
            f"{s} loss {r.loss:.4f} " + " ".join(f"{k} {v:.4f}" for k, v in r.metrics.items())
            for s, r in results.items()))
        return Evaluation(metric, float(np.mean([r.metrics[metric] for r in results.values()])))

    def _write_dev_predictions(self, split: str, outputs: np.ndarray) -> None:
        """``predictions/<split>_predictions.tsv``: index, prediction and gold label, by name (scores in full),
        and for classification the logit of each label (``logit_<label>``, float32 to 9 digits: exact)."""
        if not self.env.is_main:
            return
        task, examples = self._spec, self.examples[split]
        predictions = task.predictions(outputs)
        labels = task.labels  # None for a regression task

        def cell(value: Any) -> str:
            return repr(float(value)) if labels is None else labels[int(value)]

        def logits(row: np.ndarray) -> str:
            return "" if task.is_regression else "".join(f"\t{float(v):.9g}" for v in row)

        header = "index\tprediction\tlabel" + ("" if labels is None else "".join(
            f"\tlogit_{name}" for name in labels))
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


# ------------------------------------------------------------------------------------------------------
# The kinds beyond classification: token classification, extractive QA, multiple choice
# ------------------------------------------------------------------------------------------------------
KIND_FEATURE_CACHE_VERSION = 1
"""Part of the kinds' feature cache key: bump it when a kind's features change for the same inputs."""

_HEADS = {"token": TOKENS, "span": SPANS, "choice": MULTIPLE_CHOICE}
"""The head (:data:`~DeBERTa.apps.models.ARCHITECTURES`) of each task kind's checkpoints."""


def kind_options(opts: TrainOptions) -> KindOptions:
    """The kinds' feature and decoding settings from the app's options of the same names."""
    return KindOptions(doc_stride=opts.doc_stride, max_query_length=opts.max_query_length,
                       max_answer_length=opts.max_answer_length, n_best_size=opts.n_best_size,
                       null_score_diff_threshold=opts.null_score_diff_threshold)


def kind_feature_key(task: KindTask, examples: Sequence[Any], tokenizer: Any, max_seq_len: int,
                     options: KindOptions, training: bool) -> str:
    """SHA-256 hex of everything a kind's features depend on: cache version, task, tokenizer, ``max_seq_len``,
    the window options, whether they are training features, and the examples (their full ``repr``)."""
    head = (f"kind-v{KIND_FEATURE_CACHE_VERSION}\0{task.name}\0{tokenizer.fingerprint}\0{max_seq_len}\0"
            f"{options.doc_stride}\0{options.max_query_length}\0{training}\0")
    digest = hashlib.sha256(head.encode())
    for example in examples:
        digest.update(repr(example).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _arrays_as(value: Any, *, to_numpy: bool) -> Any:
    """``value`` with every numpy array made a tensor (``to_numpy=False``: what a weights-only file holds) or
    every tensor made a numpy array again, inside dicts, lists and tuples; anything else as it is."""
    if isinstance(value, dict):
        return {key: _arrays_as(item, to_numpy=to_numpy) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_arrays_as(item, to_numpy=to_numpy) for item in value)
    if to_numpy and isinstance(value, torch.Tensor):
        return value.numpy()
    if not to_numpy and isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def build_kind_features(task: KindTask, examples: Sequence[Any], tokenizer: Any, max_seq_len: int,
                        options: KindOptions, training: bool, cache_dir: Path | None) -> FeatureList:
    """``task.features`` of ``examples``, stored in ``cache_dir`` as ``kind-features-<key>.pt`` (atomically)
    and reused while :func:`kind_feature_key` is unchanged; an unwritable cache is skipped with a warning.

    The file is read with ``torch.load(weights_only=True)``: plain containers, numbers and strings only, so
    a file planted in a shared cache folder cannot run code (loading never unpickles code)."""
    def build() -> FeatureList:
        return task.features(examples, tokenizer, max_seq_len, options=options, training=training)

    if cache_dir is None:
        return build()
    key = kind_feature_key(task, examples, tokenizer, max_seq_len, options, training)
    path = cache_dir / f"kind-features-{key}.pt"
    try:
        items, stats = torch.load(path, weights_only=True)
        return FeatureList(_arrays_as(items, to_numpy=True), stats)
    except FileNotFoundError:
        pass
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError, RuntimeError) as err:
        logger.warning("ignoring unreadable feature cache %s (%s); rebuilding it", path, err)
    features = build()
    try:
        stored = (_arrays_as(list(features), to_numpy=False), dict(features.stats))
        records.atomic_write(path, lambda f: torch.save(stored, f))
    except OSError as err:
        logger.warning("cannot write the feature cache %s (%s): continuing without it", path, err)
    return features


def build_kind_model(opts: TrainOptions, task: KindTask, model_source: Path | None, vocab_size: int) -> nn.Module:
    """The head of ``task`` (token, span or choice): from --init_model, or new from --model_config."""
    if model_source is None:
        return task.build_model(_scratch_config(opts, vocab_size), None, drop_out=opts.cls_drop_out)
    _, config_file = pretrained.find_files(model_source)
    model = task.build_model(_init_config(opts, config_file), str(model_source), drop_out=opts.cls_drop_out)
    _check_embeds(opts, model, vocab_size)
    return model


class KindTrainer(Trainer):
    """The job of a task kind beyond classification (:mod:`.tasks.kinds`): the same engine, run folder,
    checkpoints and resumption as GLUE; features are the kind's (several per example where a context is cut
    into windows or a sentence split), their outputs are gathered over the ranks and decoded per example,
    scored with the official metrics and written as the official prediction files at every evaluation."""

    task: Any  # a KindTask
    features: dict[tuple[str, str], Any]  # FeatureList values (the classification kind's are data.Features)

    def _splits(self) -> list[str]:
        opts, task = self.opts, self.task
        splits = ["train"] if opts.do_train else []
        if opts.do_train or opts.do_eval:
            splits += task.eval_splits
        if opts.do_predict:
            splits += self._predict_splits()
        return list(dict.fromkeys(splits))

    def _predict_splits(self) -> tuple[str, ...]:
        """What --do_predict writes: the test splits; SQuAD, whose test set is hidden, predicts its dev file."""
        return tuple(self.task.test_splits) or tuple(self.task.eval_splits)

    def _read_examples(self) -> None:
        self.options = kind_options(self.opts)
        self._written_at: dict[str, int] = {}  # split → update whose evaluation wrote its prediction files
        self.examples = {split: self.task.read(self.opts.data_dir, split) for split in self._splits()}
        self.skipped_rows = {}
        self.predict_jobs = []

    def _all_splits(self) -> list[tuple[Any, str, Any]]:
        return [(self.task, split, ex) for split, ex in self.examples.items()]

    def _build_model(self) -> nn.Module:
        return build_kind_model(self.opts, self.task, self.model_source, self.tokenizer.vocab_size)

    def _build_features(self) -> None:
        opts, cache = self.opts, data.feature_cache_dir()
        self.features = {}
        for split, examples in self.examples.items():
            training = split == "train"
            features = build_kind_features(self.task, examples, self.tokenizer, opts.max_seq_len, self.options,
                                           training, cache)
            logger.info("%s %s: %d examples, %d features; %s", self.task.name, split, len(examples), len(features),
                        ", ".join(f"{k} {v}" for k, v in features.stats.items()) or "no counts")
            self.features[self.task.name, split] = features
        self._data_fingerprint = (kind_feature_key(self.task, self.examples["train"], self.tokenizer, opts.max_seq_len,
                                                   self.options, True) if opts.do_train else "")

    def _manifest_extras(self) -> dict[str, Any]:
        """run.json: the counts of each split's features (skipped training answers, split sentences, ...)."""
        return {"feature_stats": {split: dict(self.features[self.task.name, split].stats) for split in self.examples}}

    def _collate(self, items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        return self.task.collate(items, pad_id=self.tokenizer.pad_id)

    def loss(self, module: nn.Module, batch: dict[str, Any], step: int) -> StepOutput:
        return StepOutput(module(**batch).loss)

    def checkpoint_config(self) -> dict[str, Any]:
        """``config.json``: the model config (HF layout), the head's architecture, the tags (NER) and the task."""
        config: dict[str, Any] = {**hf_config(config_of(self.model), _HEADS[self.task.kind]),
                                  "finetuning_task": self.task.name, "cls_dropout": self.opts.cls_drop_out}
        labels = getattr(self.task, "labels", None)
        if labels:
            config.update(num_labels=len(labels), id2label={str(i): name for i, name in enumerate(labels)},
                          label2id={name: i for i, name in enumerate(labels)})
        return config

    # ----- evaluation and prediction --------------------------------------------------------------
    def _output_shape(self) -> tuple[int, ...]:
        """The shape of one feature's outputs as gathered: per token (padded to --max_seq_len) or per option."""
        if self.task.kind == "choice":
            return (self.task.num_choices,)
        return (self.opts.max_seq_len, len(self.task.labels) if self.task.kind == "token" else 2)

    def _kind_outputs(self, split: str, batch_size: int, desc: str) -> tuple[list[np.ndarray], float]:
        """Every feature's outputs of ``split`` in feature order, gathered over the ranks, and the summed loss."""
        shape = self._output_shape()

        def run(model: nn.Module, batch: dict[str, Any]) -> tuple[np.ndarray, float]:
            output = model(**batch)
            logits = output.logits.float()
            if logits.dim() == 3:  # per-token outputs: one width for every batch, so that they concatenate
                logits = nn.functional.pad(logits, (0, 0, 0, shape[0] - logits.shape[1]))
            size = len(batch["input_ids"])
            loss = output.loss.float().item() * size if output.loss is not None else 0.0
            return logits.cpu().numpy(), loss

        features = self.features[self.task.name, split]
        outputs, loss_sum = self.engine.outputs(features, self._collate, batch_size, desc, run, empty=(0, *shape))
        return list(outputs), loss_sum

    def _score(self, split: str, batch_size: int, desc: str) -> tuple[float, dict[str, Any] | None]:
        """Decode ``split``, write its prediction files (rank 0) and return its mean loss and metrics."""
        features = self.features[self.task.name, split]
        outputs, loss_sum = self._kind_outputs(split, batch_size, desc)
        folder = self.output_dir / records.PREDICTIONS_DIR if self.env.is_main else None
        result = evaluate_split(self.task, self.examples[split], features, outputs, options=self.options,
                                folder=folder, split=split)
        if result.files:
            logger.info("predictions of %s %s: %s", self.task.name, split, ", ".join(str(p) for p in result.files))
        return loss_sum / max(1, len(features)), result.metrics

    def evaluate_and_record(self, step: int, epoch: float) -> Evaluation | None:
        task = self.task
        scored = {split: self._score(split, self.opts.eval_batch_size, f"eval {split}") for split in task.eval_splits}
        if not scored:
            return None
        self._written_at.update(dict.fromkeys(scored, step))
        results: dict[str, dict[str, Any]] = {split: {"loss": loss, "metrics": scalar_metrics(metrics or {})}
                                              for split, (loss, metrics) in scored.items()}
        self.records.log_eval(step, epoch, results)
        logger.info("step %d: %s", step, "; ".join(
            f"{s} loss {r['loss']:.4f} {task.main_metric} {r['metrics'].get(task.main_metric, float('nan')):.4f}"
            for s, r in results.items()))
        return Evaluation(task.main_metric,
                          float(np.mean([r["metrics"][task.main_metric] for r in results.values()])))

    def predict(self) -> None:
        for split in self._predict_splits():
            if self._written_at.get(split) == self.step:  # SQuAD's dev file, just evaluated by this model
                logger.info("predictions of %s %s: written by the evaluation at update %d", self.task.name, split,
                            self.step)
                continue
            _, metrics = self._score(split, self.opts.predict_batch_size, f"predict {self.task.name} {split}")
            if metrics is not None:
                logger.info("%s %s: %s %.4f", self.task.name, split, self.task.main_metric,
                            metrics[self.task.main_metric])
