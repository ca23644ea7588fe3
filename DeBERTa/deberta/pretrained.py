"""Pre-trained checkpoints: from a name or a path to (state dict, config), through one key table.

Checkpoints of DeBERTa v1 and v2/v3 come in three layouts, all read here:

* Microsoft's original release: ``pytorch.model.bin`` (or ``pytorch_model.bin``) + ``model_config.json``,
  encoder keys under ``bert.`` or ``deberta.``, the masked-LM head under ``lm_predictions.lm_head.``,
  and in the v3 releases the replaced-token-detection head under ``mask_predictions.``;
* Hugging Face's: ``config.json`` + ``pytorch_model.bin`` or ``model.safetensors``, encoder keys under
  ``deberta.`` (or bare, for a saved ``DebertaModel``), heads ``pooler.``/``classifier.`` and either
  ``lm_predictions.lm_head.`` or, for its legacy masked-LM class, ``cls.predictions.``;
* this package's own (the training app's checkpoints): Hugging Face's layout and names.

Every key of a checkpoint is renamed into this package's names by :data:`KEY_TABLE`; a key the table
does not know is an error, never silently dropped. Heads a model does not have (a released v3
checkpoint's masked-LM and RTD heads, loaded into an encoder) are dropped by name with a log line.
Loading never unpickles code (``torch.load(weights_only=True)`` or safetensors).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

import torch
from torch import nn

from .config import ConfigError, ModelConfig
from .errors import DeBERTaError

logger = logging.getLogger(__name__)

CONFIG_FILES = ("config.json", "model_config.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "pytorch.model.bin")

# This package's name of every tensor a DeBERTa v1 or v2/v3 checkpoint may hold; {i} is a layer index.
ENCODER_KEYS = (
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.embed_proj.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
    "encoder.rel_embeddings.weight",
    "encoder.layer.{i}.attention.self.in_proj.weight",
    "encoder.layer.{i}.attention.self.q_bias",
    "encoder.layer.{i}.attention.self.v_bias",
    "encoder.layer.{i}.attention.self.pos_proj.weight",
    "encoder.layer.{i}.attention.self.pos_q_proj.weight",
    "encoder.layer.{i}.attention.self.pos_q_proj.bias",
    "encoder.layer.{i}.attention.output.dense.weight",
    "encoder.layer.{i}.attention.output.dense.bias",
    "encoder.layer.{i}.attention.output.LayerNorm.weight",
    "encoder.layer.{i}.attention.output.LayerNorm.bias",
    "encoder.layer.{i}.intermediate.dense.weight",
    "encoder.layer.{i}.intermediate.dense.bias",
    "encoder.layer.{i}.output.dense.weight",
    "encoder.layer.{i}.output.dense.bias",
    "encoder.layer.{i}.output.LayerNorm.weight",
    "encoder.layer.{i}.output.LayerNorm.bias",
    # v2/v3 only
    "encoder.LayerNorm.weight",
    "encoder.LayerNorm.bias",
    "encoder.conv.conv.weight",
    "encoder.conv.conv.bias",
    "encoder.conv.LayerNorm.weight",
    "encoder.conv.LayerNorm.bias",
    *(f"encoder.layer.{{i}}.attention.self.{name}.{kind}"
      for name in ("query_proj", "key_proj", "value_proj", "pos_key_proj", "pos_query_proj")
      for kind in ("weight", "bias")),
)
FAMILY_MARKERS = {"attention.self.in_proj.": "DeBERTa v1", "attention.self.query_proj.": "DeBERTa v2/v3"}
"""A key fragment only one family's checkpoints hold → that family."""
ENCODER_PREFIX = "deberta."
"""Head models hold the encoder as ``self.deberta``; its keys carry this prefix in a full state."""

HEAD_KEYS = {
    "lm_predictions.lm_head.dense.weight": "masked-LM head",
    "lm_predictions.lm_head.dense.bias": "masked-LM head",
    "lm_predictions.lm_head.LayerNorm.weight": "masked-LM head",
    "lm_predictions.lm_head.LayerNorm.bias": "masked-LM head",
    "lm_predictions.lm_head.bias": "masked-LM head",
    "pooler.dense.weight": "classification head",
    "pooler.dense.bias": "classification head",
    "classifier.weight": "classification head",
    "classifier.bias": "classification head",
    "qa_outputs.weight": "question-answering head",
    "qa_outputs.bias": "question-answering head",
    "mask_predictions.dense.weight": "replaced-token-detection head",
    "mask_predictions.dense.bias": "replaced-token-detection head",
    "mask_predictions.LayerNorm.weight": "replaced-token-detection head",
    "mask_predictions.LayerNorm.bias": "replaced-token-detection head",
    "mask_predictions.classifier.weight": "replaced-token-detection head",
    "mask_predictions.classifier.bias": "replaced-token-detection head",
}

# Foreign names → this package's names; None marks a tensor that is not a parameter of its own
# (a buffer, or a weight tied to another one) and is dropped after a check.
KEY_TABLE: dict[str, str | None] = {
    # The original release saved the encoder as `bert`.
    **{f"bert.{k}": ENCODER_PREFIX + k for k in ENCODER_KEYS},
    # Hugging Face: `deberta.` prefix (head models) or none (a bare DebertaModel).
    **{f"deberta.{k}": ENCODER_PREFIX + k for k in ENCODER_KEYS},
    **{k: ENCODER_PREFIX + k for k in ENCODER_KEYS},
    "deberta.embeddings.position_ids": None,
    "embeddings.position_ids": None,
    # Hugging Face's legacy masked-LM head (`DebertaForMaskedLM`, legacy=True).
    "cls.predictions.transform.dense.weight": "lm_predictions.lm_head.dense.weight",
    "cls.predictions.transform.dense.bias": "lm_predictions.lm_head.dense.bias",
    "cls.predictions.transform.LayerNorm.weight": "lm_predictions.lm_head.LayerNorm.weight",
    "cls.predictions.transform.LayerNorm.bias": "lm_predictions.lm_head.LayerNorm.bias",
    "cls.predictions.bias": "lm_predictions.lm_head.bias",
    "cls.predictions.decoder.weight": None,  # tied to the word embeddings
    "cls.predictions.decoder.bias": None,  # tied to cls.predictions.bias
    **{k: k for k in HEAD_KEYS},
}

_LAYER_INDEX = re.compile(r"\.(\d+)\.")


class CheckpointError(DeBERTaError):
    """A checkpoint that cannot be loaded as it is: unknown keys, missing tensors, wrong shapes."""


def _table_key(key: str) -> str:
    """The table's template for ``key``: the layer index replaced by ``{i}``."""
    return _LAYER_INDEX.sub(".{i}.", key, count=1)


def canonical_state(raw: dict[str, torch.Tensor], source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Rename a checkpoint's keys into this package's names (encoder under ``deberta.``)."""
    state: dict[str, torch.Tensor] = {}
    unknown = []
    for key, tensor in raw.items():
        template = _table_key(key)
        if template not in KEY_TABLE:
            unknown.append(key)
            continue
        target = KEY_TABLE[template]
        if target is None:
            continue
        index = _LAYER_INDEX.search(key)
        name = target.replace("{i}", index.group(1)) if "{i}" in target else target
        if name in state:
            raise CheckpointError(f"{source}: two keys map to {name!r} (one of them is {key!r})")
        check_values(tensor, key, source)
        state[name] = tensor
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise CheckpointError(f"{source}: keys that are not part of a DeBERTa model: {shown}")
    return state


def check_values(tensor: object, key: str, source: str = "checkpoint") -> None:
    """A :class:`CheckpointError` naming ``key`` unless ``tensor`` is a floating tensor of finite values: every
    tensor the key table keeps is a floating parameter, so an integer one (int32 weights) was written wrong
    and NaN or inf would only surface as a NaN loss many steps later."""
    if not isinstance(tensor, torch.Tensor):
        raise CheckpointError(f"{source}: {key} is a {type(tensor).__name__}, not a tensor")
    if not tensor.is_floating_point():
        raise CheckpointError(f"{source}: {key} holds {str(tensor.dtype).removeprefix('torch.')} values; a DeBERTa "
                              f"parameter is floating point (float32, float16 or bfloat16)")
    if tensor.numel() and not bool(torch.isfinite(tensor).all()):
        bad = int((~torch.isfinite(tensor)).sum())
        raise CheckpointError(f"{source}: {key} holds {bad} NaN or infinite value(s) of {tensor.numel()}")


# --------------------------------------------------------------------------------------------------
# Finding and reading the files
# --------------------------------------------------------------------------------------------------
def resolve(name_or_path: str | os.PathLike) -> Path:
    """A local file or folder as it is, else a model name fetched into the cache (a folder)."""
    path = Path(os.path.expanduser(str(name_or_path)))
    if path.exists():
        return path
    from . import hub

    if hub.canonical_name(str(name_or_path)) is None:
        known = ", ".join(hub.MODELS)
        raise CheckpointError(f"{str(name_or_path)!r} is neither a local path nor a known model name ({known})")
    return hub.fetch_model(str(name_or_path))


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or PyTorch ``.bin`` file, on the CPU, without unpickling code."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 -- SafetensorError (truncated, garbage header), OSError, ...
            raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(err)})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # an unsafe pickle or a broken file: explain, don't dump the unpickler
        raise CheckpointError(f"{path}: not a readable weights file ({type(err).__name__}: {_first_line(err)})") \
            from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a mapping of tensor names to tensors")
    return state


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def find_files(path: Path) -> tuple[Path, Path | None]:
    """(weights file, config file or None) of a checkpoint folder or weights file."""
    folder = path if path.is_dir() else path.parent
    if path.is_dir():
        weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
        if weights is None:
            raise CheckpointError(f"{folder}: no weights file (looked for {', '.join(WEIGHT_FILES)})")
    else:
        weights = path
    config = next((folder / f for f in CONFIG_FILES if (folder / f).is_file()), None)
    return weights, config


def load_model_state(
    name_or_path: str | os.PathLike, config: ModelConfig | None = None
) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state dict in this package's names, the checkpoint's config) of a name, folder or file.

    ``config`` is used when the checkpoint comes without a config file (a bare weights file).
    """
    weights, config_file = find_files(resolve(name_or_path))
    if config_file is not None:
        try:
            checkpoint_config = ModelConfig.from_json_file(config_file)
        except ConfigError as err:  # its message names the file
            raise CheckpointError(str(err)) from None
    elif config is not None:
        checkpoint_config = config
    else:
        raise CheckpointError(f"{weights}: no config file beside it ({' or '.join(CONFIG_FILES)}) and none given")
    # Before reading the weights: a config of a model too large for this machine is one line, not minutes of
    # swapping and the kernel's OOM killer.
    checkpoint_config.check_fits_in_memory(what=str(config_file or weights))
    return canonical_state(read_weights(weights), str(weights)), checkpoint_config


def load_pretrained(
    pre_trained: str | os.PathLike, config: ModelConfig | None
) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state, config to build with): the checkpoint's architecture with the caller's training settings."""
    state, checkpoint_config = load_model_state(pre_trained, config)
    return state, merge_configs(checkpoint_config, config)


# Fields that change the shape or the computation of the network: they come from the checkpoint.
ARCHITECTURE_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "max_position_embeddings", "type_vocab_size", "vocab_size", "relative_attention",
    "max_relative_positions", "pos_att_type", "position_biased_input", "embedding_size",
    "pooler_hidden_size", "layer_norm_eps", "padding_idx", "model_type", "position_buckets", "share_att_key",
    "norm_rel_ebd", "conv_kernel_size", "conv_groups", "conv_act", "attention_head_size",
)


def merge_configs(checkpoint: ModelConfig, user: ModelConfig | None) -> ModelConfig:
    """The checkpoint's architecture with the user's training settings (dropouts, pooler dropout...).

    A user config that contradicts the checkpoint's architecture is an error, not a silent override.
    """
    if user is None:
        return checkpoint
    clashes = [
        f"{f}={getattr(user, f)!r} (checkpoint: {getattr(checkpoint, f)!r})"
        for f in ARCHITECTURE_FIELDS
        if getattr(user, f) != getattr(checkpoint, f)
    ]
    if clashes:
        raise CheckpointError("the model config contradicts the pre-trained checkpoint: " + ", ".join(clashes))
    return dataclasses.replace(user)


# --------------------------------------------------------------------------------------------------
# Loading a state into modules
# --------------------------------------------------------------------------------------------------
def load_backbone_state(encoder: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load the ``deberta.`` part of ``state`` into a :class:`DeBERTa` encoder, strictly.

    Every encoder tensor must be present with the right shape. Two kinds of tensors are left out on
    purpose and logged: heads (loaded by the head models themselves) and the absolute position table
    when this encoder does not use it (the enhanced mask decoder does).
    """
    own = encoder.state_dict()
    theirs = {k[len(ENCODER_PREFIX) :]: v for k, v in state.items() if k.startswith(ENCODER_PREFIX)}
    check_family(own, theirs)
    left_out = sorted({HEAD_KEYS[k] for k in state if k in HEAD_KEYS})
    positions = "embeddings.position_embeddings.weight"
    if positions in theirs and positions not in own:
        del theirs[positions]
        left_out.append("absolute position embeddings (used by the enhanced mask decoder)")
    missing = sorted(own.keys() - theirs.keys())
    unexpected = sorted(theirs.keys() - own.keys())
    if missing or unexpected:
        parts = [f"missing {', '.join(missing[:4])}"] if missing else []
        parts += [f"unexpected {', '.join(unexpected[:4])}"] if unexpected else []
        raise CheckpointError("checkpoint does not match the model config: " + "; ".join(parts))
    check_shapes(own, theirs)
    encoder.load_state_dict(theirs, strict=True)
    if left_out:
        logger.info("loaded the encoder; not part of it: %s", ", ".join(left_out))


def family(keys) -> str | None:
    """Which family a set of encoder keys belongs to (:data:`FAMILY_MARKERS`), None when they do not tell."""
    return next((name for marker, name in FAMILY_MARKERS.items() if any(marker in k for k in keys)), None)


def check_family(own: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    """A checkpoint of the other family is one line saying what it is, not a list of missing keys."""
    model, checkpoint = family(own), family(theirs)
    if model and checkpoint and model != checkpoint:
        model_type = "deberta-v2" if checkpoint.endswith("v3") else "deberta"
        raise CheckpointError(
            f"the checkpoint holds a {checkpoint} model but the config describes {model}; "
            f"its config should say model_type {model_type!r}")


def check_shapes(own: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> None:
    """Every tensor of ``theirs`` has the shape of the same-named one in ``own``."""
    for key, tensor in theirs.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"{key}: checkpoint shape {tuple(tensor.shape)} but the model needs {tuple(own[key].shape)}"
            )


def load_head_state(model: nn.Module, state: dict[str, torch.Tensor], prefixes: tuple[str, ...]) -> list[str]:
    """Load the head tensors under ``prefixes`` that fit; returns the prefixes left as initialised.

    A head absent from the checkpoint, or shaped for another number of labels (fine-tuned MNLI with 3
    labels starting a 2-label task), keeps its fresh initialisation — that is how fine-tuning starts.
    """
    own = model.state_dict()
    fresh = []
    for prefix in prefixes:
        names = [k for k in own if k.startswith(prefix)]
        theirs = {k: state[k] for k in names if k in state}
        if len(theirs) != len(names) or any(theirs[k].shape != own[k].shape for k in names):
            if theirs:
                logger.info("%s: checkpoint shapes %s differ from the model's; re-initialised", prefix.rstrip("."),
                            [tuple(t.shape) for t in theirs.values()])
            fresh.append(prefix.rstrip("."))
            continue
        model.load_state_dict(theirs, strict=False)
    return fresh
