"""Pre-training: masked LM (``--objective mlm``) or replaced token detection (``--objective rtd``) on a corpus.

::

    python -m DeBERTa.apps.prepare_corpus wiki.txt.xz --tokenizer v3-base --output corpus/
    python -m DeBERTa.apps.pretrain --objective rtd --corpus corpus/ --model_config v3-xsmall \\
        --output_dir runs/rtd --max_steps 10000 --train_batch_size 256 --learning_rate 1e-4 --warmup 10000

``--corpus`` is a folder made by :mod:`DeBERTa.apps.prepare_corpus` (its tokenizer comes with it), or plain
text files, prepared on the fly into ``OUTPUT_DIR/corpus`` with ``--tokenizer`` (a folder, a vocabulary
file or a model name; default: the ``--init_model``'s, else the official GPT-2 BPE vocabulary). Training
reads windows of ``--max_seq_len`` ids and runs through the one training engine
(:mod:`DeBERTa.training.engine`): the fine-tuning app's flags, ``torchrun``, ``--fp16``/``--bf16``,
accumulation, checkpoints every ``--dump_interval`` updates and exact ``--resume``.

Masking is BERT's, drawn afresh for every batch: 15% of the tokens of each window (at least one), whole
words with ``--whole_word_mask``; of those, 80% become ``[MASK]``, 10% a random token, 10% stay.

The run folder is the training app's (``config.yaml``, ``run.json``, ``metrics.jsonl`` with the loss and
the masked-token accuracy, ``checkpoints/step-N``); at the end it holds Hugging Face-layout model folders
with config, weights and tokenizer: ``export/model/`` (MLM: encoder + ``lm_predictions.*``), or
``export/discriminator/`` (RTD head under ``mask_predictions.*``) and ``export/generator/``.
``--export_checkpoint OUTPUT_DIR/checkpoints/step-N`` with the run's options writes them for that checkpoint
into ``export/step-N/`` instead of training.
Errors in the input print one ``error:`` line and exit 2 before anything is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.elastic.multiprocessing.errors import record

from DeBERTa import deberta
from DeBERTa.deberta import DeBERTaError
from DeBERTa.training import checkpoints
from DeBERTa.training.checkpoints import cpu_tensors
from DeBERTa.training.data import corpus as corpora
from DeBERTa.training.data.samplers import TrainBatchSampler, batch_split
from DeBERTa.training.engine import (
    Engine,
    Evaluation,
    LoopOptions,
    StepOutput,
    TrainData,
    TrainingSettings,
    check_data_fingerprint,
)
from DeBERTa.training.models import config_of, read_model_config
from DeBERTa.training.pretraining import (
    EMBEDDING_SHARING,
    IGNORE,
    Masker,
    ReplacedTokenDetection,
    generator_config,
    mask_tokens,
    replacement_ids,
    word_starts,
)
from DeBERTa.training.records import (
    RunFolderError,
    RunRecords,
    atomic_write,
    check_run_folder,
    run_manifest,
    umask,
    write_json,
)
from DeBERTa.training.rng import derived_seed, seed_everything, seed_range_error

from . import cli
from .data import collate
from .distributed import DistEnv, all_gather_objects, device_for, init_process_group, local_main_first, shutdown
from .models import ENCODER, MASKED_LM, hf_config, load_tokenizer, resolve_source
from .options import FIELDS, convert, parse_bool

logger = logging.getLogger(__name__)

__all__ = ["IGNORE", "PretrainError", "PretrainOptions", "main", "mask_tokens", "pretrain", "replacement_ids"]

OBJECTIVES = ("mlm", "rtd")
EXPORT_DIR = "export"
CORPUS_DIR = "corpus"


class PretrainError(DeBERTaError):
    """A bad option, corpus or model/vocabulary combination."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainOptions(TrainingSettings):
    """The options of one run (``config.yaml`` holds exactly these): this app's own, and the
    :class:`~DeBERTa.training.engine.TrainingSettings` it shares with the fine-tuning app (its names,
    spellings and help, see :mod:`DeBERTa.apps.options`)."""

    corpus: list[str]
    """A prepared corpus folder, or plain UTF-8 text files (documents separated by blank lines)."""
    output_dir: str
    """The run folder."""
    objective: str = "mlm"
    """``mlm`` (masked LM with the enhanced mask decoder) or ``rtd`` (replaced token detection, v3)."""
    tokenizer: str | None = None
    """Plain-text corpus only: the tokenizer (folder, vocabulary file or model name)."""
    vocab_path: str | None = None
    """Older spelling of --tokenizer."""
    vocab_type: str = "auto"
    """The tokenizer's kind when a folder could hold several: auto, gpt2 or spm."""
    model_config: str | None = None
    """A preset or a config file (either layout). For RTD: the discriminator."""
    generator_config: str | None = None
    """RTD: the generator's config; default: the discriminator's with half its layers."""
    init_model: str | None = None
    """Continue pre-training from a model folder or name (MLM), or the discriminator (RTD)."""
    init_generator: str | None = None
    """RTD: continue from this generator."""
    max_seq_len: int = 128
    mask_prob: float = 0.15
    """Share of each window's tokens chosen for prediction."""
    whole_word_mask: bool = False
    """Choose whole words (all their pieces) rather than single pieces."""
    rtd_lambda: float = 50.0
    """RTD: weight of the discriminator's loss."""
    embedding_sharing: str = "gdes"
    """RTD: gdes (gradient-disentangled), es (shared), nes (separate)."""
    resume: str = "auto"
    accept_changed_data: bool = False
    tag: str = "pretrain"
    export_checkpoint: str | None = None
    """Write the export folders of this checkpoint of the run (its step-N folder) into export/step-N and stop."""
    # Pre-training's defaults of shared settings (their help is the fine-tuning app's).
    learning_rate: float = 5e-4
    num_train_epochs: float = 1.0
    log_interval: int = 20

    def to_record(self) -> dict[str, Any]:
        """The options as ``config.yaml`` holds them."""
        values = dataclasses.asdict(self)
        return {name: values[name] for name in option_names()}

    def training_record(self) -> dict[str, Any]:
        """What decides what training computes: ``--resume auto`` continues only a run with these unchanged."""
        names = ("objective", "model_config", "generator_config", "init_model", "init_generator", "max_seq_len",
                 "train_batch_size", "accumulative_update", "learning_rate", "lr_schedule", "num_train_epochs",
                 "max_steps", "warmup", "weight_decay", "mask_prob", "whole_word_mask", "rtd_lambda",
                 "embedding_sharing", "seed", "fp16", "bf16")
        return {name: getattr(self, name) for name in names}


def option_names() -> list[str]:
    """The options in the order of ``--help`` and ``config.yaml``: this app's own (corpus, models, objective)
    first, then the :class:`~DeBERTa.training.engine.TrainingSettings` shared with the fine-tuning app."""
    common = {spec.name for spec in dataclasses.fields(TrainingSettings)}
    names = [spec.name for spec in dataclasses.fields(PretrainOptions)]
    return [n for n in names if n not in common] + [n for n in names if n in common]


_OWN_CHOICES = {"objective": OBJECTIVES, "embedding_sharing": EMBEDDING_SHARING, "vocab_type": ("auto", "gpt2", "spm")}


def _field_docs() -> dict[str, str]:
    """The attribute docstrings of :class:`PretrainOptions` (the help of its own options)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(PretrainOptions))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) and isinstance(following.value,
                                                                                              ast.Constant):
            docs[node.target.id] = " ".join(str(following.value.value).split())  # type: ignore[union-attr]
    return docs


def build_parser() -> cli.OneLineErrorParser:
    """The command line: this app's options, and the fine-tuning app's (same flags, spellings and help)."""
    parser = cli.OneLineErrorParser(prog="python -m DeBERTa.apps.pretrain", error_type=PretrainError,
                                    description="Pre-train DeBERTa: masked LM or replaced token detection.",
                                    argument_default=None)
    docs = _field_docs()
    defaults = PretrainOptions(corpus=[], output_dir="")
    for name in option_names():
        default = getattr(defaults, name)
        if name == "corpus":
            parser.add_argument("--corpus", nargs="+", required=True, metavar="DIR|FILE", help=docs[name])
            continue
        if name == "output_dir":
            parser.add_argument("--output_dir", required=True, metavar="DIR", help=docs[name])
            continue
        shared = FIELDS.get(name)
        flags = [f"--{name}", *(f"--{a}" for a in (shared.metadata["aliases"] if shared else ()))]
        help_text = (docs.get(name) or (shared.metadata["help"] if shared else "")) + f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": name, "help": help_text.replace("%", "%%"), "default": default}
        if isinstance(default, bool):
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif name in _OWN_CHOICES:
            kwargs.update(choices=_OWN_CHOICES[name])
        parser.add_argument(*flags, **kwargs)
    return parser


def parse_args(argv: Sequence[str] | None) -> PretrainOptions:
    """The command line as checked :class:`PretrainOptions`."""
    values = vars(build_parser().parse_args(argv))
    hints = typing.get_type_hints(PretrainOptions)
    for name, value in values.items():
        if not isinstance(value, str) or name == "corpus":
            continue
        if name in FIELDS:  # the fine-tuning app's conversion and messages
            values[name] = convert(name, value)
            continue
        kind = hints[name]
        if kind is bool:
            try:
                values[name] = parse_bool(value)
            except ValueError:
                raise PretrainError(f"--{name}: {value!r} is not true or false") from None
        elif kind is float:
            values[name] = _number(name, value)
    opts = PretrainOptions(**values)
    check_options(opts)
    return opts


def _number(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise PretrainError(f"--{name}: {value!r} is not a valid float") from None


def check_options(opts: PretrainOptions) -> None:
    """Checks that need no files; raises :class:`PretrainError` on the first problem."""
    if opts.objective not in OBJECTIVES:
        raise PretrainError(f"--objective {opts.objective}: expected one of {', '.join(OBJECTIVES)}")
    if opts.embedding_sharing not in EMBEDDING_SHARING:
        raise PretrainError(f"--embedding_sharing {opts.embedding_sharing}: expected one of "
                            f"{', '.join(EMBEDDING_SHARING)}")
    if opts.init_model is None and opts.model_config is None:
        raise PretrainError("give --model_config (a preset such as small, or a JSON file) to start from scratch, "
                            "or --init_model to continue from a model folder")
    if not opts.corpus:
        raise PretrainError("--corpus: give a prepared corpus folder or text files")
    for path in opts.corpus:
        if not Path(path).exists():
            raise PretrainError(f"--corpus {path}: no such file or folder")
    if len(opts.corpus) > 1 and any(Path(p).is_dir() for p in opts.corpus):
        raise PretrainError("--corpus: one prepared corpus folder, or text files, not both")
    if not 0 < opts.mask_prob < 1:
        raise PretrainError(f"--mask_prob must be in (0, 1) (got {opts.mask_prob})")
    if opts.max_seq_len < 3:
        raise PretrainError(f"--max_seq_len {opts.max_seq_len} leaves no room for text between [CLS] and [SEP]")
    for name in ("train_batch_size", "log_interval", "accumulative_update", "dump_interval", "keep_checkpoints",
                 "scale_steps"):
        if getattr(opts, name) < 1:
            raise PretrainError(f"--{name} must be at least 1 (got {getattr(opts, name)})")
    if opts.max_steps is not None and opts.max_steps < 1:
        raise PretrainError(f"--max_steps must be at least 1 (got {opts.max_steps})")
    for name in ("learning_rate", "num_train_epochs", "epsilon", "loss_scale"):
        value = getattr(opts, name)
        if not (math.isfinite(value) and value > 0):
            raise PretrainError(f"--{name} must be a positive number (got {value})")
    for name in ("warmup", "weight_decay", "max_grad_norm", "rtd_lambda"):
        value = getattr(opts, name)
        if not (math.isfinite(value) and value >= 0):
            raise PretrainError(f"--{name} must be a finite number, not negative (got {value})")
    if opts.fp16 and opts.bf16:
        raise PretrainError("--fp16 and --bf16 exclude each other")
    if opts.resume not in ("auto", "never") and not Path(opts.resume).is_dir():
        raise PretrainError(f"--resume {opts.resume}: expected auto, never or a checkpoint folder")
    if (problem := seed_range_error(opts.seed)) is not None:
        raise PretrainError(problem)


# ------------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------------
PADDED_ROWS = 128
"""A preset whose table exceeds the tokenizer by at most this many rows was made for it and keeps its size
(v3: 128,100 rows for 128,001 ids, padded for speed)."""


def _sized_config(name_or_file: str, vocab_size: int, what: str) -> deberta.ModelConfig:
    """The config of a new model for a tokenizer of ``vocab_size`` ids. A config file keeps its vocab_size,
    which may exceed the tokenizer's but not fall short of it; a preset keeps its size when it was made for
    this tokenizer (:data:`PADDED_ROWS`), else its table is sized to the tokenizer."""
    config = read_model_config(name_or_file)
    if name_or_file in deberta.config.PRESETS:
        if 0 <= config.vocab_size - vocab_size <= PADDED_ROWS:
            return config
        logger.info("%s: embedding table sized to the tokenizer, %d ids (preset: %d)", what, vocab_size,
                    config.vocab_size)
        return dataclasses.replace(config, vocab_size=vocab_size)
    if config.vocab_size < vocab_size:
        raise PretrainError(f"{what} {name_or_file}: vocab_size {config.vocab_size} is smaller than the tokenizer's "
                            f"{vocab_size} ids")
    return config


def _check_vocab(model: deberta.MaskedLanguageModel | deberta.ReplacedTokenDetectionModel, vocab_size: int,
                 source: str) -> None:
    if model.config.vocab_size < vocab_size:
        raise PretrainError(f"the tokenizer has {vocab_size} ids but {source} embeds only {model.config.vocab_size}")


def build_models(opts: PretrainOptions, vocab_size: int) -> nn.Module:
    """The model being pre-trained: a :class:`~DeBERTa.deberta.MaskedLanguageModel` (MLM) or a
    :class:`~DeBERTa.training.pretraining.ReplacedTokenDetection` (RTD)."""
    if opts.objective == "mlm":
        if opts.init_model is not None:
            source = str(resolve_source(opts.init_model))
            config = read_model_config(opts.model_config) if opts.model_config is not None else None
            model = deberta.MaskedLanguageModel(config, pre_trained=source)
            _check_vocab(model, vocab_size, opts.init_model)
            return model
        assert opts.model_config is not None
        return deberta.MaskedLanguageModel(_sized_config(opts.model_config, vocab_size, "--model_config"))

    if opts.init_model is not None:
        config = read_model_config(opts.model_config) if opts.model_config is not None else None
        discriminator = deberta.ReplacedTokenDetectionModel(config, pre_trained=str(resolve_source(opts.init_model)))
        if discriminator.fresh_heads:
            logger.info("%s has no RTD head (mask_predictions.*): starting a new one", opts.init_model)
    else:
        assert opts.model_config is not None
        discriminator = deberta.ReplacedTokenDetectionModel(_sized_config(opts.model_config, vocab_size,
                                                                          "--model_config"))
    _check_vocab(discriminator, vocab_size, opts.init_model or str(opts.model_config))
    if opts.init_generator is not None:
        generator = deberta.MaskedLanguageModel(
            read_model_config(opts.generator_config) if opts.generator_config else None,
            pre_trained=str(resolve_source(opts.init_generator)))
    elif opts.generator_config is not None:
        generator = deberta.MaskedLanguageModel(_sized_config(opts.generator_config, discriminator.config.vocab_size,
                                                              "--generator_config"))
    else:
        generator = deberta.MaskedLanguageModel(generator_config(discriminator.config))
    gen, disc = generator.config, discriminator.config
    if opts.embedding_sharing != "nes" and (gen.hidden_size, gen.vocab_size) != (disc.hidden_size, disc.vocab_size):
        raise PretrainError(f"--embedding_sharing {opts.embedding_sharing}: the generator's embedding "
                            f"({gen.vocab_size} x {gen.hidden_size}) differs from the discriminator's "
                            f"({disc.vocab_size} x {disc.hidden_size}); use the same width or --embedding_sharing nes")
    if opts.embedding_sharing == "gdes" and opts.init_model is not None and opts.init_generator is not None:
        # Continuing a released pair: the discriminator's table is generator + delta.
        rtd = ReplacedTokenDetection(generator, discriminator, opts.embedding_sharing, opts.rtd_lambda)
        with torch.no_grad():
            rtd.embedding_delta.copy_(discriminator.deberta.embeddings.word_embeddings.weight
                                      - generator.deberta.embeddings.word_embeddings.weight)
        return rtd
    return ReplacedTokenDetection(generator, discriminator, opts.embedding_sharing, opts.rtd_lambda)


# ------------------------------------------------------------------------------------------------------
# The job
# ------------------------------------------------------------------------------------------------------
class PretrainJob:
    """One process of a pre-training run: corpus, tokenizer, model, and the engine's job methods."""

    def __init__(self, opts: PretrainOptions, env: DistEnv, argv: list[str]) -> None:
        self.opts, self.env, self.argv = opts, env, argv
        self.name = f"pre-train {opts.objective.upper()}"
        self.output_dir = Path(opts.output_dir)
        if self.output_dir.exists() and not self.output_dir.is_dir():
            raise PretrainError(f"--output_dir {self.output_dir}: not a folder")
        batch_split(opts.train_batch_size, env.world_size, opts.accumulative_update)
        self.device = device_for(env)
        check_run_folder(self.output_dir)
        created = not self.output_dir.exists()
        try:
            self._build()
        except BaseException:
            if created and env.is_main:  # a refused run leaves nothing behind (a plain-text corpus prepared)
                shutil.rmtree(self.output_dir, ignore_errors=True)
            raise

    def _build(self) -> None:
        """Everything that may fail on bad input, before the run folder gets its records."""
        opts, env = self.opts, self.env
        self.resume_checkpoint, self.resume_state = self._find_resume_checkpoint()
        init_process_group(env, self.device)
        with local_main_first(env):  # rank 0 prepares a plain-text corpus; the others open it
            self.corpus, self.tokenizer = self._open_corpus()
        self.windows = corpora.CorpusWindows(self.corpus, opts.max_seq_len, self.tokenizer.cls_token_id,
                                             self.tokenizer.sep_token_id)
        seed_everything(opts.seed)  # the same initial weights on every rank
        self.model = build_models(opts, self.tokenizer.vocab_size)
        positions = self._encoder_config().max_position_embeddings
        if positions < opts.max_seq_len and self._encoder_config().position_biased_input:
            raise PretrainError(f"--max_seq_len {opts.max_seq_len} exceeds the model's max_position_embeddings "
                                f"{positions}")
        self.model.to(self.device)
        seed_everything(opts.seed + env.rank)  # dropout noise differs between ranks
        specials = [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id, self.tokenizer.pad_token_id]
        self.masker = Masker(self.tokenizer.mask_token_id, torch.tensor(specials), replacement_ids(self.tokenizer),
                             opts.seed, opts.mask_prob, word_starts(self.tokenizer) if opts.whole_word_mask else None)
        self.records = RunRecords(self.output_dir, enabled=env.is_main)
        loop = LoopOptions.of(opts, dump_every_epoch=False)
        self.engine = Engine(self.model, loop, env, self.device, self.output_dir, self.records)
        self.sampler = TrainBatchSampler(len(self.windows), opts.train_batch_size, seed=opts.seed, rank=env.rank,
                                         world_size=env.world_size, accumulation_steps=opts.accumulative_update)
        self.engine.plan(self.sampler.batches_per_epoch)
        if len({str(p) for p in all_gather_objects(self.resume_checkpoint)}) > 1:
            raise RunFolderError(f"the ranks see different checkpoints in --output_dir {self.output_dir}")
        if self.resume_state is not None:
            check_data_fingerprint(self.resume_state, self.data_fingerprint(), opts.accept_changed_data,
                                   f"--resume {self.resume_checkpoint}")

    def _encoder_config(self) -> deberta.ModelConfig:
        if isinstance(self.model, deberta.MaskedLanguageModel):
            return self.model.config
        assert isinstance(self.model, ReplacedTokenDetection)  # what build_models makes for RTD
        return self.model.discriminator.config

    def _find_resume_checkpoint(self) -> tuple[Path | None, dict[str, Any] | None]:
        opts = self.opts
        if opts.resume == "never":
            return None, None
        if opts.resume != "auto":
            folder = Path(opts.resume)
            return folder, checkpoints.check_training_state(folder)
        found = checkpoints.newest_intact_checkpoint(self.output_dir)
        if found is None:
            if checkpoints.list_checkpoints(self.output_dir):
                raise RunFolderError(f"--output_dir {self.output_dir}: every checkpoint is damaged; start over with "
                                     "--resume never")
            return None, None
        theirs = found[1].get("options") or {}
        ours = opts.training_record()
        changed = [n for n in ours if n in theirs and theirs[n] != ours[n]]
        if changed:
            difference = ", ".join(f"--{n} {theirs[n]} -> {ours[n]}" for n in changed)
            raise RunFolderError(f"--output_dir {self.output_dir} holds a run trained with other options "
                                 f"({difference}): repeat them to continue it, start over with --resume never, "
                                 "or use another --output_dir")
        return found

    def _open_corpus(self) -> tuple[corpora.Corpus, Any]:
        """The prepared corpus and its tokenizer (plain text is prepared into OUTPUT_DIR/corpus first)."""
        opts = self.opts
        paths = [Path(p) for p in opts.corpus]
        if len(paths) == 1 and paths[0].is_dir():
            if not corpora.is_corpus(paths[0]):
                raise PretrainError(f"--corpus {paths[0]}: not a prepared corpus (no {corpora.INDEX_FILE}); "
                                    "prepare it with python -m DeBERTa.apps.prepare_corpus")
            corpus = corpora.Corpus.open(paths[0])
            if opts.tokenizer or opts.vocab_path:
                option = "--tokenizer" if opts.tokenizer else "--vocab_path"
                given = _load_tokenizer(opts.tokenizer or opts.vocab_path, None, opts.vocab_type, option)
                if not corpus.made_with(given):
                    raise PretrainError(f"{option} {opts.tokenizer or opts.vocab_path}: not the tokenizer {paths[0]} "
                                        "was prepared with; leave it out (a prepared corpus brings its own) or "
                                        "prepare the corpus with it")
                logger.info("%s: the tokenizer the corpus was prepared with", option)
        else:
            source = resolve_source(opts.init_model) if opts.init_model is not None else None
            tokenizer = _load_tokenizer(opts.tokenizer or opts.vocab_path, source, opts.vocab_type)
            target = self.output_dir / CORPUS_DIR
            if self.env.is_main:
                corpora.prepare_corpus(paths, tokenizer, target, progress=self.env.is_main)
            corpus = corpora.Corpus.open(target)
        tokenizer = _load_tokenizer(str(corpus.tokenizer_dir), None, opts.vocab_type)
        corpus.check_tokenizer(tokenizer)
        return corpus, tokenizer

    # ----- the engine's job -----------------------------------------------------------------------
    def loss(self, module: nn.Module, batch: dict[str, Any], step: int) -> StepOutput:
        """Mask the windows (seeded by update and window), run the objective, count hits at the targets."""
        indices = batch["indices"].tolist()
        masked, labels = self.masker(batch["input_ids"].cpu(), batch["input_mask"].cpu(), indices, step)
        masked, labels = masked.to(self.device), labels.to(self.device)
        targets = labels[labels > 0]
        if self.opts.objective == "mlm":
            output = module(masked, batch["type_ids"], batch["input_mask"], labels)
            hits = int((output.logits.argmax(-1) == targets).sum())
            return StepOutput(output.loss, {"masked_accuracy": (hits, len(targets))})
        out = module(masked, labels, batch["input_ids"], batch["input_mask"], batch["type_ids"],
                     sample_seed=derived_seed(self.opts.seed, step, indices[0], 1))
        hits = int((out["logits"].argmax(-1) == targets).sum())
        valid = batch["input_mask"].bool()
        predicted = out["rtd_logits"] > 0
        rtd_hits = int((predicted == out["replaced"])[valid].sum())
        return StepOutput(out["loss"], {
            "masked_accuracy": (hits, len(targets)), "rtd_accuracy": (rtd_hits, int(valid.sum())),
            "replaced_share": (int(out["replaced"][valid].sum()), int(valid.sum())),
            "mlm_loss": (out["mlm_loss"].item(), 1), "rtd_loss": (out["rtd_loss"].item(), 1)})

    def evaluate_and_record(self, step: int, epoch: float) -> Evaluation | None:
        """Pre-training has no dev set: checkpoints are kept by age only."""
        return None

    def checkpoint_config(self) -> dict[str, Any]:
        """``config.json`` of a checkpoint: the encoder's config (RTD: the discriminator's; its weights file holds
        ``generator.*``, ``discriminator.*`` and ``embedding_delta``: export it for a model folder)."""
        if self.opts.objective == "mlm":
            return hf_config(self._encoder_config(), MASKED_LM)
        return {**self._encoder_config().to_hf_dict(), "architectures": ["DebertaReplacedTokenDetection"]}

    def training_record(self) -> dict[str, Any]:
        return self.opts.training_record()

    def data_fingerprint(self) -> str:
        """SHA-256 of what the windows are made of: the shards (tokenizer, files, sizes) and --max_seq_len."""
        index = self.corpus.index
        content = json.dumps([index["tokenizer_fingerprint"], index["shards"], index["tokens"], self.opts.max_seq_len])
        return hashlib.sha256(content.encode()).hexdigest()

    # ----- the run --------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train to the end (or continue), then write the export folders; returns the run folder."""
        opts, state = self.opts, self.resume_state
        complete = state is not None and state["step"] >= self.engine.total_updates
        self.records.lock()  # before anything in the folder changes: one run at a time
        if self.env.is_main and opts.resume == "never":
            checkpoints.remove_checkpoints(self.output_dir)
        mode = "resume" if state is not None else "fresh"
        manifest = run_manifest(self.argv, opts.seed, opts.tag, self.env.world_size)
        manifest["corpus"] = {"folder": str(self.corpus.folder), "tokens": self.corpus.index["tokens"],
                              "windows": len(self.windows)}
        self.records.start(opts.to_record(), manifest, mode, resume_step=state["step"] if state else 0)
        try:
            logger.info("pre-training on %d windows of %d tokens (%s): %d updates of %d, warm-up %d, %d parameters",
                        len(self.windows), opts.max_seq_len, self.corpus.folder, self.engine.total_updates,
                        opts.train_batch_size, self.engine.warmup_updates,
                        sum(p.numel() for p in self.model.parameters()))
            if complete:
                assert self.resume_checkpoint is not None
                logger.info("%s: the run is already complete: not training it again", self.output_dir)
                self.engine.load_weights(self.resume_checkpoint)
            else:
                resume = (self.resume_checkpoint, state) if state is not None and self.resume_checkpoint else None
                self.engine.train(self, TrainData(self.windows, collate, self.sampler), resume)
            if self.env.is_main:
                export(self.model, self.tokenizer, self.output_dir / EXPORT_DIR)
            self.records.finish()
        finally:
            self.records.close()
        return self.output_dir


def _load_tokenizer(name_or_path: str | None, source: Path | None, vocab_type: str,
                    option: str = "--tokenizer") -> Any:
    """The package's tokenizer resolver: a folder, a vocabulary file or a model name; else ``source``'s."""
    kind = None if vocab_type == "auto" else vocab_type
    return load_tokenizer(name_or_path, source, option=option, vocab_type=kind)


# ------------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------------
def _write_model_folder(folder: Path, tensors: dict[str, torch.Tensor], config: dict[str, Any], tokenizer: Any) -> None:
    """A Hugging Face-layout model folder; ``model.safetensors`` last, so it marks completion."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").unlink(missing_ok=True)
    tokenizer.save_pretrained(folder)
    write_json(folder / "config.json", config)
    contiguous = cpu_tensors(tensors)
    atomic_write(folder / "model.safetensors",
                 lambda f: f.write(_safetensors_bytes(contiguous)))
    for written in folder.iterdir():  # the tokenizer's atomic writes create 0600 files: follow the umask
        if written.is_file():
            os.chmod(written, 0o666 & ~umask())


def _safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata={"format": "pt"})


def export(model: nn.Module, tokenizer: Any, folder: Path) -> list[Path]:
    """``folder/model`` (MLM), or ``folder/discriminator`` and ``folder/generator`` (RTD); returns them."""
    if isinstance(model, ReplacedTokenDetection):
        disc, gen = folder / "discriminator", folder / "generator"
        _write_model_folder(disc, model.discriminator_state(),
                            hf_config(model.discriminator.config, ENCODER), tokenizer)
        _write_model_folder(gen, dict(model.generator.state_dict()),
                            hf_config(model.generator.config, MASKED_LM), tokenizer)
        return [disc, gen]
    target = folder / "model"
    _write_model_folder(target, dict(model.state_dict()), hf_config(config_of(model), MASKED_LM), tokenizer)
    return [target]


def pretrain(opts: PretrainOptions, progress: bool = True, env: DistEnv | None = None,
             argv: list[str] | None = None) -> Path:
    """Run the pre-training that ``opts`` describes; returns the run folder (exports in ``export/``)."""
    check_options(opts)
    env = env or DistEnv()
    job = PretrainJob(opts, env, argv or [])
    job.engine.progress = progress
    if opts.export_checkpoint is not None:
        folder = Path(opts.export_checkpoint)
        job.engine.load_weights(folder)
        target = Path(opts.output_dir) / EXPORT_DIR / folder.name
        if env.is_main:
            export(job.model, job.tokenizer, target)
            logger.info("exported %s to %s", folder, target)
        return Path(opts.output_dir)
    return job.run()


@record
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (2 after a one-line error)."""
    env = DistEnv()

    def body(args: list[str]) -> None:
        nonlocal env
        env = DistEnv.from_environ()
        cli.configure_logging(env.rank, env.world_size)
        output = pretrain(parse_args(args), env=env, argv=args)
        if env.is_main:
            print(f"pre-trained: {output / EXPORT_DIR}")
        shutdown()

    return cli.run(body, argv, where=lambda: f"rank {env.rank}: " if env.is_distributed else "")


if __name__ == "__main__":
    sys.exit(main())
