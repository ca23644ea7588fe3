"""Model configuration: one typed dataclass, named presets, and both JSON layouts.

DeBERTa checkpoints come with one of two config files:

* the original release's ``model_config.json``: ``pos_att_type`` is a string such as ``"c2p|p2c"``
  and the pooler is an optional nested ``pooling`` object;
* Hugging Face's ``config.json``: ``pos_att_type`` is a list, the pooler is flattened into
  ``pooler_hidden_size`` / ``pooler_dropout`` / ``pooler_hidden_act``, padding is ``pad_token_id``,
  and many keys that do not describe the network (``architectures``, ``id2label``, ...).

:class:`ModelConfig` reads both and writes both.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DeBERTaError

POSITION_TERMS = ("c2p", "p2c")
"""The relative-position terms of DeBERTa v1 attention: content-to-position, position-to-content."""

# Keys of Hugging Face's config.json that describe training, generation or labels, not the network.
_HF_BOOKKEEPING_KEYS = {
    "architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "id2label",
    "label2id", "num_labels", "problem_type", "return_dict", "output_hidden_states",
    "output_attentions", "tie_word_embeddings", "is_encoder_decoder", "bos_token_id", "eos_token_id",
    "cls_dropout", "legacy", "finetuning_task", "_name_or_path", "use_cache", "chunk_size_feed_forward",
    "tokenizer_class", "prefix", "task_specific_params", "torchscript", "pruned_heads", "z_steps",
    "summary_type", "summary_activation", "summary_proj_to_labels", "summary_use_proj",
    "summary_first_dropout",
}

# Keys that only DeBERTa v2/v3 use; a non-default value means the checkpoint is not a v1 model.
_V2_ONLY_DEFAULTS: dict[str, Any] = {
    "position_buckets": -1, "share_att_key": False, "norm_rel_ebd": "none", "conv_kernel_size": 0,
    "talking_head": False,
}


# What a key absent from either file layout means: both the original code and Hugging Face read a
# missing key as a plain BERT-like model (no relative attention, absolute positions in the input).
# These differ from this dataclass's defaults, which describe DeBERTa-base.
_FILE_DEFAULTS: dict[str, Any] = {
    "relative_attention": False, "position_biased_input": True, "pos_att_type": (),
    "max_relative_positions": -1, "type_vocab_size": 0, "layer_norm_eps": 1e-7, "vocab_size": 50265,
}


class ConfigError(DeBERTaError, ValueError):
    """A config file or value that does not describe a DeBERTa v1 model."""


@dataclass
class ModelConfig:
    """Hyper-parameters of a DeBERTa v1 network (field names as in the original release)."""

    hidden_size: int = 768
    """Width of every hidden state and embedding."""
    num_hidden_layers: int = 12
    """Number of transformer layers in the encoder."""
    num_attention_heads: int = 12
    """Attention heads per layer; must divide ``hidden_size``."""
    intermediate_size: int = 3072
    """Width of the feed-forward layer inside each transformer layer."""
    hidden_act: str = "gelu"
    """Activation of the feed-forward layer and the LM head (``gelu``, ``gelu_new``, ``relu``, ...)."""
    hidden_dropout_prob: float = 0.1
    """Dropout on embeddings, layer outputs and relative-position embeddings."""
    attention_probs_dropout_prob: float = 0.1
    """Dropout on attention probabilities."""
    max_position_embeddings: int = 512
    """Rows of the absolute position table; also the relative span when ``max_relative_positions`` < 1."""
    type_vocab_size: int = 0
    """Number of token types (segments); 0 means no token-type embedding at all."""
    initializer_range: float = 0.02
    """Standard deviation of the normal initialisation of linear and embedding weights."""
    layer_norm_eps: float = 1e-7
    """Epsilon inside every LayerNorm."""
    padding_idx: int = 0
    """Token id of padding; its word embedding gets no gradient."""
    vocab_size: int = 50265
    """Rows of the word-embedding table (and outputs of the masked-LM head)."""
    relative_attention: bool = True
    """Use disentangled attention over relative positions."""
    max_relative_positions: int = -1
    """k: relative distances are clamped to [-k, k); -1 means ``max_position_embeddings``."""
    pos_att_type: tuple[str, ...] = ("c2p", "p2c")
    """Relative-position terms added to content-to-content attention (subset of c2p, p2c)."""
    position_biased_input: bool = False
    """Add absolute position embeddings to the input (BERT-style); DeBERTa's presets do not."""
    embedding_size: int | None = None
    """Width of the word embeddings when it differs from ``hidden_size`` (then projected); None: same."""
    pooler_hidden_size: int | None = None
    """Width of the context pooler used by classification heads; None: ``hidden_size``."""
    pooler_dropout: float = 0.0
    """Dropout applied to the [CLS] state before the pooler's dense layer."""
    pooler_hidden_act: str = "gelu"
    """Activation after the pooler's dense layer."""

    def __post_init__(self) -> None:
        if isinstance(self.pos_att_type, str):
            self.pos_att_type = parse_pos_att_type(self.pos_att_type)
        self.pos_att_type = tuple(self.pos_att_type)
        unknown = [t for t in self.pos_att_type if t not in POSITION_TERMS]
        if unknown:
            raise ConfigError(f"pos_att_type {unknown} is not supported by DeBERTa v1 (known: c2p, p2c)")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.embedding_size == self.hidden_size:
            self.embedding_size = None
        if self.pooler_hidden_size is None:
            self.pooler_hidden_size = self.hidden_size

    # ----- derived values -------------------------------------------------------------------------
    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def relative_span(self) -> int:
        """k, the largest relative distance with its own embedding (``max_relative_positions``)."""
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    # ----- presets --------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named preset (``base``, ``large``, ``tiny``, ``small``) with optional field overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    # ----- JSON layouts ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Read either layout (original ``model_config.json`` or Hugging Face ``config.json``)."""
        data = {**_FILE_DEFAULTS, **data}
        model_type = data.get("model_type")
        if model_type not in (None, "deberta"):
            raise ConfigError(f"model_type {model_type!r} is not DeBERTa v1 ('deberta')")
        for key, default in _V2_ONLY_DEFAULTS.items():
            if key in data and data.pop(key) not in (default, None):
                raise ConfigError(f"config sets {key!r}, a DeBERTa v2/v3 feature this v1 model does not have")
        pooling = data.pop("pooling", None)
        if isinstance(pooling, dict):
            data.setdefault("pooler_hidden_size", pooling.get("hidden_size"))
            data.setdefault("pooler_dropout", pooling.get("dropout", 0.0))
            data.setdefault("pooler_hidden_act", pooling.get("hidden_act", "gelu"))
        if "pad_token_id" in data:
            pad = data.pop("pad_token_id")
            data.setdefault("padding_idx", 0 if pad is None else pad)
        if data.get("pos_att_type") is None:
            data["pos_att_type"] = ()
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in names and k not in _HF_BOOKKEEPING_KEYS)
        if unknown:
            raise ConfigError(f"unknown DeBERTa config keys: {', '.join(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelConfig:
        """Read a ``model_config.json`` or ``config.json`` file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data)

    def to_original_dict(self) -> dict[str, Any]:
        """The original release's ``model_config.json`` layout."""
        data = {k: v for k, v in dataclasses.asdict(self).items() if not k.startswith("pooler_")}
        data["pos_att_type"] = "|".join(self.pos_att_type) if self.pos_att_type else "none"
        if data["embedding_size"] is None:
            del data["embedding_size"]
        data["pooling"] = {
            "hidden_size": self.pooler_hidden_size,
            "dropout": self.pooler_dropout,
            "hidden_act": self.pooler_hidden_act,
        }
        return data

    def to_hf_dict(self) -> dict[str, Any]:
        """Hugging Face's ``config.json`` layout (``model_type`` ``deberta``)."""
        data = dataclasses.asdict(self)
        data["pos_att_type"] = list(self.pos_att_type)
        data["pad_token_id"] = data.pop("padding_idx")
        if data["embedding_size"] is None:
            del data["embedding_size"]
        data["model_type"] = "deberta"
        data["legacy"] = False  # the LM head is the original one (lm_predictions.lm_head.*)
        return data

    def save(self, path: str | Path, layout: str = "original") -> None:
        """Write the config as JSON, ``layout`` ``original`` (model_config.json) or ``hf`` (config.json)."""
        if layout not in ("original", "hf"):
            raise ConfigError(f"unknown config layout {layout!r} (original or hf)")
        data = self.to_original_dict() if layout == "original" else self.to_hf_dict()
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def parse_pos_att_type(text: str) -> tuple[str, ...]:
    """``"c2p|p2c"`` → ``("c2p", "p2c")``; ``"none"`` or ``""`` → ``()``."""
    terms = [t.strip().lower() for t in text.split("|")]
    return tuple(t for t in terms if t and t != "none")


PRESETS: dict[str, ModelConfig] = {
    "base": ModelConfig(),
    "large": ModelConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    # A model small enough for the CPU demo: four layers at width 256.
    "small": ModelConfig(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024),
    # For tests: two layers at width 32, a short span so that sequences exceed it.
    "tiny": ModelConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=128, max_relative_positions=16,
    ),
}
