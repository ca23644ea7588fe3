"""The training app's options: one definition read by both argparse and ``--config FILE.yaml``.

Every option is a field of :class:`TrainOptions` whose metadata carries its help text, the flag
spellings of the original DeBERTa scripts (``--max_seq_length``, ``--bert_config``, ...) and its
group. The command line and the YAML file share the names, the types and the checks; a value on the
command line beats the same key in the YAML file, which beats the default.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from DeBERTa.training.data.samplers import batch_split
from DeBERTa.training.errors import OptionsError
from DeBERTa.training.optim import LR_SCHEDULES
from DeBERTa.training.rng import seed_range_error

from .cli import OneLineErrorParser

__all__ = ["FIELDS", "LR_SCHEDULES", "RESUME_MODES", "TRAINING_OPTIONS", "OneLineErrorParser", "OptionsError",
           "TrainOptions", "batch_split", "build_parser", "check_options", "parse_options"]

RESUME_MODES = ("auto", "never")


def _opt(default: Any, *, group: str, help: str, aliases: tuple[str, ...] = (),
         choices: tuple[str, ...] | None = None, metavar: str | None = None) -> Any:
    """A dataclass field described for the parser: ``aliases`` are extra flag spellings."""
    return field(default=default, metadata={
        "help": help, "aliases": aliases, "choices": choices, "group": group, "metavar": metavar,
    })


GROUPS = {
    "run": "what to run, on which data, where the results go",
    "model": "model and tokenizer",
    "squad": "question answering (SQuAD windows and decoding)",
    "optim": "optimisation",
    "precision": "mixed precision",
    "records": "evaluation, checkpoints and logs",
}


@dataclass
class TrainOptions:
    """The resolved options of one run; ``config.yaml`` in the run folder holds exactly these."""

    # ----- run ------------------------------------------------------------------------------------
    config: str | None = _opt(
        None, group="run", metavar="FILE",
        help="YAML file whose keys are these options (without the dashes); options given on the command "
             "line override it.")
    task_name: str | None = _opt(
        None, group="run",
        help="GLUE task (CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI, AX), NER (CoNLL-2003), SQuAD "
             "(1.1), SQuAD2, RACE, SWAG, or a registered custom task. Required.")
    data_dir: str | None = _opt(
        None, group="run", metavar="DIR",
        help="Folder with the task's files (train.tsv, dev.tsv, test.tsv, ...). Required.")
    output_dir: str | None = _opt(
        None, group="run", metavar="DIR",
        help="Run folder: config.yaml, run.json, metrics.jsonl, eval_results.json, checkpoints/, "
             "predictions/. Required.")
    do_train: bool = _opt(False, group="run", help="Fine-tune on the training set.")
    do_eval: bool = _opt(False, group="run", help="Evaluate on the dev set(s) and write dev predictions.")
    do_predict: bool = _opt(
        False, group="run",
        help="Predict the test set(s) and write the GLUE leaderboard files (NER, RACE, SWAG: their prediction "
             "files; SQuAD: predictions.json of the dev file), with the model at the end of training (without "
             "--do_train: the --init_model; --init_model RUN_DIR takes its best checkpoint).")
    tag: str = _opt("final", group="run", help="A name for this run, recorded in run.json.")
    resume: str = _opt(
        "auto", group="run", metavar="auto|never|DIR",
        help="Where training starts: 'auto' continues from the newest checkpoint in --output_dir when "
             "there is one, if that run has the same training options (learning rate, schedule, batch, seed, "
             "model, precision, ...; else an error), and does not train a finished run again; 'never' starts "
             "from step 0 and replaces that folder's earlier checkpoints and records; a checkpoint folder "
             "continues from it, whatever its options. Bare --resume means 'auto'.")
    accept_changed_data: bool = _opt(
        False, group="run",
        help="Resume even though the training data differ from what the checkpoint was trained on (its "
             "fingerprint is recorded); without it such a resume is refused, as the data order would change.")
    seed: int = _opt(
        1234, group="run", help="Random seed: initialisation, dropout and the order of the training data.")
    workers: int = _opt(
        0, group="run",
        help="Data-loading worker processes per rank (features are tokenized once and cached, so 0, "
             "loading in the training process, is usually fastest).")

    # ----- model ----------------------------------------------------------------------------------
    init_model: str | None = _opt(
        None, group="model", aliases=("pre_trained",), metavar="NAME|DIR",
        help="Starting weights: a model name (base, large, base_mnli, large_mnli, ...), a pre-trained "
             "folder (original or Hugging Face layout), or a checkpoint of this app (e.g. a fine-tuned "
             "MNLI run starting RTE; a classifier for another label set is re-initialised). Omit to train "
             "from scratch with --model_config.")
    model_config: str | None = _opt(
        None, group="model", aliases=("bert_config",), metavar="FILE|PRESET",
        help="Model config: a JSON file in either layout (model_config.json or config.json) or a preset "
             "name (tiny, small, base, large). With --init_model its keys override the checkpoint's "
             "training settings (dropouts, pooler); architecture keys must agree with it.")
    vocab_path: str | None = _opt(
        None, group="model", metavar="PATH",
        help="Tokenizer vocabulary (bpe_encoder.bin, or a folder with vocab.json + merges.txt); default: "
             "the one in the --init_model folder, else the official DeBERTa vocabulary.")
    max_seq_len: int = _opt(
        128, group="model", aliases=("max_seq_length",),
        help="Longest input in tokens, [CLS] and [SEP]s included; longer inputs are truncated, longer "
             "segment first.")
    cls_drop_out: float | None = _opt(
        None, group="model", help="Dropout before the classifier; default: the model's hidden_dropout_prob.")
    compile: bool = _opt(False, group="model", help="Compile the model with torch.compile.")

    # ----- task kinds beyond classification (SQuAD) -----------------------------------------------
    doc_stride: int = _opt(
        128, group="squad",
        help="SQuAD: tokens between the starts of two windows of a long context (capped to the window).")
    max_query_length: int = _opt(
        64, group="squad", help="SQuAD: question tokens kept (capped to half of --max_seq_len).")
    max_answer_length: int = _opt(30, group="squad", help="SQuAD: longest answer, in tokens, that is predicted.")
    n_best_size: int = _opt(
        20, group="squad",
        help="SQuAD: best start and end positions tried per window; answers kept in nbest_predictions.json.")
    null_score_diff_threshold: float = _opt(
        0.0, group="squad",
        help="SQuAD 2.0: predict no answer when the no-answer score exceeds the best span's by more than this.")

    # ----- optimisation ---------------------------------------------------------------------------
    train_batch_size: int = _opt(
        32, group="optim",
        help="Global training batch in examples: split over the processes (torchrun) and "
             "--accumulative_update micro-steps, so it must divide by their product.")
    eval_batch_size: int = _opt(32, group="optim", help="Evaluation batch in examples, over all processes.")
    predict_batch_size: int = _opt(32, group="optim", help="Prediction batch in examples, over all processes.")
    accumulative_update: int = _opt(
        1, group="optim", help="Micro-steps whose gradients are accumulated into one update.")
    learning_rate: float = _opt(5e-5, group="optim", help="Peak learning rate of AdamW.")
    num_train_epochs: float = _opt(
        3.0, group="optim", help="Passes over the training set (a fraction is allowed).")
    max_steps: int | None = _opt(
        None, group="optim",
        help="Total optimizer updates; replaces the count from --num_train_epochs (the schedule spans "
             "these steps).")
    warmup: float = _opt(
        0.1, group="optim", aliases=("warmup_proportion",),
        help="Learning-rate warm-up: a number of updates when >= 1, else a proportion of all updates.")
    lr_schedule: str = _opt(
        "warmup_linear", group="optim", choices=LR_SCHEDULES,
        help="Learning rate after warm-up: linear decay to 0, cosine decay to 0, or constant.")
    max_grad_norm: float = _opt(
        1.0, group="optim", help="Clip the global gradient norm to this (0 disables clipping).")
    weight_decay: float = _opt(
        0.01, group="optim", help="AdamW weight decay (not applied to biases and LayerNorm weights).")
    epsilon: float = _opt(1e-6, group="optim", help="AdamW epsilon, added to the denominator for numerical stability.")
    adam_beta1: float = _opt(0.9, group="optim", help="AdamW beta1, decay of the running mean of gradients.")
    adam_beta2: float = _opt(0.999, group="optim", help="AdamW beta2, decay of the running mean of squared gradients.")
    with_radam: bool = _opt(
        False, group="optim",
        help="Accepted for the original scripts, which pass False; RAdam is not available.")

    # ----- precision ------------------------------------------------------------------------------
    fp16: bool = _opt(
        False, group="precision",
        help="float16 autocast with a dynamic loss scale (also '--fp16 True' as in the original scripts).")
    bf16: bool = _opt(False, group="precision", help="bfloat16 autocast (no loss scaling needed).")
    loss_scale: float = _opt(256.0, group="precision", help="fp16: the initial loss scale.")
    scale_steps: int = _opt(
        1000, group="precision", help="fp16: updates without overflow before the loss scale doubles.")

    # ----- records --------------------------------------------------------------------------------
    dump_interval: int = _opt(
        10000, group="records",
        help="Evaluate and write a checkpoint every this many updates (and at the end of every epoch).")
    keep_checkpoints: int = _opt(
        1, group="records",
        help="Newest checkpoints kept; the best one (by the task's main metric) is kept as well.")
    log_interval: int = _opt(
        50, group="records",
        help="Write the training loss, learning rate and examples/s every this many updates.")

    @property
    def resume_dir(self) -> str | None:
        """The checkpoint folder named by ``--resume DIR``, or None for ``auto``/``never``."""
        return None if self.resume in RESUME_MODES else self.resume

    def to_record(self) -> dict[str, Any]:
        """The options as written to ``config.yaml`` (``--config`` itself left out: it is resolved)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "config"}

    def training_record(self) -> dict[str, Any]:
        """The :data:`TRAINING_OPTIONS` of this run, as a checkpoint stores them to be compared on resuming.

        Paths that exist are made absolute, so that the same file named from another folder compares equal.
        """
        values = {name: getattr(self, name) for name in TRAINING_OPTIONS}
        for name in ("init_model", "model_config"):
            if values[name] is not None and Path(values[name]).exists():
                values[name] = str(Path(values[name]).resolve())
        return values


TRAINING_OPTIONS = (
    "task_name", "init_model", "model_config", "max_seq_len", "learning_rate", "lr_schedule", "warmup",
    "num_train_epochs", "max_steps", "train_batch_size", "accumulative_update", "seed", "fp16", "bf16",
    "weight_decay", "doc_stride", "max_query_length",
)
"""Options that decide what training computes: ``--resume auto`` continues a run only when they are unchanged."""


# ------------------------------------------------------------------------------------------------------
# Value conversion shared by the command line and YAML
# ------------------------------------------------------------------------------------------------------
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def parse_bool(text: str) -> bool:
    """``True``/``False`` as the original scripts wrote them (also yes/no, 1/0, on/off)."""
    lowered = str(text).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


def _field_types() -> dict[str, tuple[type, bool]]:
    """Option name → (value type, whether None is allowed), from the dataclass annotations."""
    result = {}
    for name, hint in typing.get_type_hints(TrainOptions).items():
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        value_type = next(a for a in args if a is not type(None)) if args else hint
        result[name] = (value_type, type(None) in args)
    return result


FIELDS = {f.name: f for f in dataclasses.fields(TrainOptions)}
TYPES = _field_types()
ALIASES = {alias: f.name for f in FIELDS.values() for alias in f.metadata["aliases"]}


def convert(name: str, value: Any) -> Any:
    """``value`` (a string from the command line, or a YAML scalar) as option ``name``'s type."""
    value_type, optional = TYPES[name]
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if optional:
            return None
        raise OptionsError(f"--{name} needs a value")
    converted: bool | int | float | str
    try:
        if isinstance(value, (list, dict)):
            raise TypeError
        if value_type is bool:
            converted = value if isinstance(value, bool) else parse_bool(value)
        elif value_type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            converted = int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        elif value_type is float:
            if isinstance(value, bool):
                raise ValueError
            converted = float(value)
        else:
            converted = str(value)
    except (TypeError, ValueError, OverflowError):  # TypeError: a YAML list or mapping where a scalar belongs
        expected = "true or false" if value_type is bool else f"a valid {value_type.__name__}"
        raise OptionsError(f"--{name}: {value!r} is not {expected}") from None
    choices = FIELDS[name].metadata["choices"]
    if choices and converted not in choices:
        raise OptionsError(f"--{name}: {converted!r} is not one of {', '.join(choices)}")
    return converted


# ------------------------------------------------------------------------------------------------------
# Parsing
# ------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The command line; every default is SUPPRESS so that only the options given show up."""
    parser = OneLineErrorParser(
        prog="python -m DeBERTa.apps.train", error_type=OptionsError,
        description="Fine-tune, evaluate and predict with DeBERTa on GLUE-style tasks. Run it under "
                    "`torchrun --nproc_per_node N` for distributed data-parallel training.",
        argument_default=argparse.SUPPRESS,
    )
    groups = {key: parser.add_argument_group(title) for key, title in GROUPS.items()}
    for name, spec in FIELDS.items():
        meta = spec.metadata
        flags = [f"--{name}", *(f"--{a}" for a in meta["aliases"])]
        value_type, _ = TYPES[name]
        help_text = meta["help"] + (f" (default: {spec.default})" if spec.default is not None else "")
        kwargs: dict[str, Any] = {"dest": name, "help": help_text.replace("%", "%%")}
        if value_type is bool:
            # A bare flag means True; the original scripts' "--fp16 True" / "--with_radam False" also work.
            kwargs.update(nargs="?", const="true", metavar="BOOL")
        elif name == "resume":
            kwargs.update(nargs="?", const="auto", metavar=meta["metavar"])
        else:
            choices = meta["choices"]
            default_metavar = "|".join(choices) if choices else value_type.__name__.upper()
            kwargs.update(metavar=meta["metavar"] or default_metavar)
        groups[meta["group"]].add_argument(*flags, **kwargs)
    return parser


def read_yaml_config(path: str) -> dict[str, Any]:
    """The options in a ``--config`` YAML file, keys resolved to option names and values converted."""
    file = Path(path)
    if not file.is_file():
        raise OptionsError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise OptionsError(f"--config {path}: not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise OptionsError(f"--config {path}: cannot read it ({err.strerror or err})") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise OptionsError(f"--config {path}:{line} not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OptionsError(f"--config {path}: expected a mapping of option names to values")
    resolved: dict[str, Any] = {}
    unknown = []
    for key, value in data.items():
        name = ALIASES.get(str(key), str(key))
        if name not in FIELDS or name == "config":
            unknown.append(str(key))
            continue
        resolved[name] = convert(name, value)
    if unknown:
        raise OptionsError(f"--config {path}: unknown option(s) {', '.join(sorted(unknown))}")
    return resolved


def parse_options(argv: list[str] | None = None) -> TrainOptions:
    """Command line (and ``--config`` file) → checked :class:`TrainOptions`; raises :class:`OptionsError`."""
    given = vars(build_parser().parse_args(argv))
    cli = {name: convert(name, value) for name, value in given.items()}
    from_file = read_yaml_config(cli["config"]) if cli.get("config") else {}
    opts = TrainOptions(**{**from_file, **cli})
    check_options(opts)
    return opts


def check_options(opts: TrainOptions) -> None:
    """Checks that need no files and no process group; raises :class:`OptionsError` on the first problem."""
    for name in ("task_name", "data_dir", "output_dir"):
        if not getattr(opts, name):
            raise OptionsError(f"--{name} is required (on the command line or in --config)")
    if not (opts.do_train or opts.do_eval or opts.do_predict):
        raise OptionsError("nothing to do: give at least one of --do_train, --do_eval, --do_predict")
    if opts.fp16 and opts.bf16:
        raise OptionsError("--fp16 and --bf16 exclude each other")
    if opts.with_radam:
        raise OptionsError("--with_radam True: RAdam is not available; the optimizer is AdamW")
    if opts.init_model is None and opts.model_config is None:
        raise OptionsError("give --init_model (a name, folder or checkpoint), or --model_config to start "
                           "from scratch")
    positive = ("train_batch_size", "eval_batch_size", "predict_batch_size", "accumulative_update",
                "max_seq_len", "dump_interval", "keep_checkpoints", "log_interval", "doc_stride", "max_query_length",
                "max_answer_length", "n_best_size")
    for name in positive:
        if getattr(opts, name) < 1:
            raise OptionsError(f"--{name} must be at least 1 (got {getattr(opts, name)})")
    if opts.max_seq_len < 4:
        raise OptionsError(f"--max_seq_len {opts.max_seq_len} leaves no room for text after [CLS] and [SEP]s")
    if opts.workers < 0:
        raise OptionsError(f"--workers must be 0 or more (got {opts.workers})")
    if opts.max_steps is not None and opts.max_steps < 1:
        raise OptionsError(f"--max_steps must be at least 1 (got {opts.max_steps})")
    for name in ("learning_rate", "epsilon", "loss_scale"):
        value = getattr(opts, name)
        if not (math.isfinite(value) and value > 0):
            raise OptionsError(f"--{name} must be a positive number (got {value})")
    if not (opts.num_train_epochs > 0 and math.isfinite(opts.num_train_epochs)):
        raise OptionsError(f"--num_train_epochs must be positive (got {opts.num_train_epochs})")
    if opts.scale_steps < 1:
        raise OptionsError(f"--scale_steps must be at least 1 (got {opts.scale_steps})")
    for name in ("warmup", "max_grad_norm", "weight_decay"):
        value = getattr(opts, name)
        if not math.isfinite(value):
            raise OptionsError(f"--{name} must be a finite number (got {value})")
        if value < 0:
            raise OptionsError(f"--{name} must not be negative (got {value})")
    if (problem := seed_range_error(opts.seed)) is not None:
        raise OptionsError(problem)
    for name in ("adam_beta1", "adam_beta2", "cls_drop_out"):
        value = getattr(opts, name)
        if value is not None and not 0 <= value < 1:
            raise OptionsError(f"--{name} must be in [0, 1) (got {value})")
