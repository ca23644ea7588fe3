"""Model configuration: one typed dataclass for DeBERTa v1 and v2/v3, named presets, both JSON layouts.

``model_type`` tells the two families apart, with the names Hugging Face uses: ``deberta`` (v1) and
``deberta-v2`` (v2, v3 and mDeBERTa). The v2/v3 fields (``position_buckets``, ``share_att_key``,
``norm_rel_ebd``, ``conv_*``, ``attention_head_size``) keep their defaults in a v1 config; a v1 config
that sets one is an error naming it.

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
import math
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

MODEL_TYPES = ("deberta", "deberta-v2")
"""The two families: DeBERTa v1, and v2/v3/mDeBERTa (Hugging Face's ``model_type`` names)."""

# Fields that only DeBERTa v2/v3 use, with the value that means "off": a v1 config must leave them so,
# and a file without ``model_type`` that sets one of them describes a v2/v3 model.
_V2_ONLY_DEFAULTS: dict[str, Any] = {
    "position_buckets": -1, "share_att_key": False, "norm_rel_ebd": "none", "conv_kernel_size": 0,
    "conv_groups": 1, "conv_act": "tanh", "attention_head_size": None,
}
# Keys of the original v2 code that neither family implements: accepted only with the value meaning "off".
_UNSUPPORTED_OFF: dict[str, Any] = {"talking_head": False}


# What a key absent from either file layout means: both the original code and Hugging Face read a
# missing key as a plain BERT-like model (no relative attention, absolute positions in the input).
# These differ from this dataclass's defaults, which describe DeBERTa-base.
_FILE_DEFAULTS: dict[str, Any] = {
    "relative_attention": False, "position_biased_input": True, "pos_att_type": (),
    "max_relative_positions": -1, "type_vocab_size": 0, "layer_norm_eps": 1e-7, "vocab_size": 50265,
}


class ConfigError(DeBERTaError, ValueError):
    """A config file or value that does not describe a DeBERTa model this package implements."""


@dataclass
class ModelConfig:
    """Hyper-parameters of a DeBERTa v1 or v2/v3 network (field names as in the original release)."""

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
    model_type: str = "deberta"
    """The family: ``deberta`` (v1: fused ``in_proj``) or ``deberta-v2`` (v2, v3, mDeBERTa: separate
    query/key/value projections with biases, and the fields below)."""
    position_buckets: int = -1
    """v2/v3: relative distances inside ±position_buckets/2 keep their own row, farther ones share rows on a
    logarithmic scale up to ``max_relative_positions``, beyond it the last row; -1: no buckets (clamp at k)."""
    share_att_key: bool = False
    """v2/v3: the relative-position keys and queries go through the content key/query projections."""
    norm_rel_ebd: str = "none"
    """v2/v3: ``layer_norm`` normalises the relative-position table (the encoder's ``LayerNorm``); ``none``."""
    conv_kernel_size: int = 0
    """v2: width of the n-gram convolution after the first layer (v2-xlarge/xxlarge: 3); 0: none."""
    conv_groups: int = 1
    """v2: groups of that convolution."""
    conv_act: str = "tanh"
    """v2: activation of that convolution."""
    attention_head_size: int | None = None
    """v2/v3: width of one attention head when given explicitly; heads × width must equal ``hidden_size``."""

    def __post_init__(self) -> None:
        self._check_types()
        if isinstance(self.pos_att_type, str):
            self.pos_att_type = parse_pos_att_type(self.pos_att_type)
        unknown = [t for t in self.pos_att_type if t not in POSITION_TERMS]
        if unknown:
            raise ConfigError(f"pos_att_type {unknown} is not supported (known: c2p, p2c)")
        # One order whatever the file says ("p2c|c2p" in the v3 releases): the terms are a set.
        self.pos_att_type = tuple(t for t in POSITION_TERMS if t in self.pos_att_type)
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(
                f"model_type {self.model_type!r} is not a DeBERTa model (known: {', '.join(MODEL_TYPES)})")
        if self.model_type == "deberta":
            for key, off in _V2_ONLY_DEFAULTS.items():
                if getattr(self, key) != off:
                    raise ConfigError(
                        f"config sets {key!r}, a DeBERTa v2/v3 feature, for a v1 model (model_type 'deberta'); "
                        "use model_type 'deberta-v2'")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads "
                f"{self.num_attention_heads}"
            )
        if self.attention_head_size is not None and self.attention_head_size * self.num_attention_heads != \
                self.hidden_size:
            raise ConfigError(
                f"attention_head_size {self.attention_head_size} × num_attention_heads {self.num_attention_heads} "
                f"is not hidden_size {self.hidden_size}")
        norms = {n.strip() for n in self.norm_rel_ebd.lower().split("|")} - {"", "none"}
        if norms - {"layer_norm"}:
            raise ConfigError(f"norm_rel_ebd {self.norm_rel_ebd!r} is not supported (layer_norm or none)")
        self.norm_rel_ebd = "layer_norm" if norms else "none"
        if self.conv_kernel_size and self.conv_kernel_size % 2 == 0:
            raise ConfigError(f"conv_kernel_size {self.conv_kernel_size} must be odd (the output keeps the length)")
        if self.conv_kernel_size and self.hidden_size % self.conv_groups:
            raise ConfigError(f"conv_groups {self.conv_groups} does not divide hidden_size {self.hidden_size}")
        for key in ("hidden_act", "pooler_hidden_act", "conv_act"):
            if getattr(self, key) not in KNOWN_ACTIVATIONS:
                raise ConfigError(f"{key} {getattr(self, key)!r} is not known ({', '.join(KNOWN_ACTIVATIONS)})")
        if self.embedding_size == self.hidden_size:
            self.embedding_size = None
        if self.pooler_hidden_size is None:
            self.pooler_hidden_size = self.hidden_size

    def _check_types(self) -> None:
        """Each field holds its annotated type and a value a network can have: a config file with a string, a
        list or null where a number belongs is one line naming the key, not a TypeError deep inside torch."""
        for field in dataclasses.fields(self):
            value, kind = getattr(self, field.name), str(field.type)
            if kind == "tuple[str, ...]":
                ok = isinstance(value, str) or (isinstance(value, tuple | list) and all(isinstance(v, str)
                                                                                       for v in value))
                expected = "a list of names or a string such as 'c2p|p2c'"
            else:
                optional = kind.endswith(" | None")
                base = kind.removesuffix(" | None")
                ok = (value is None and optional) or _is_type(value, base)
                expected = f"{'an' if base == 'int' else 'a'} {_TYPE_WORDS[base]}" + (" or null" if optional else "")
            if not ok:
                raise ConfigError(f"config key {field.name}: {value!r} is not {expected}"[:300])
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
                    "max_position_embeddings", "conv_groups", "embedding_size", "pooler_hidden_size",
                    "attention_head_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"config key {key}: {getattr(self, key)} must be at least 1")
        for key in ("type_vocab_size", "conv_kernel_size"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config key {key}: {getattr(self, key)} must not be negative")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "pooler_dropout"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"config key {key}: {getattr(self, key)} is not a probability in [0, 1)")
        if not (math.isfinite(self.initializer_range) and self.initializer_range >= 0):
            raise ConfigError(f"config key initializer_range: {self.initializer_range} must be a finite number ≥ 0")
        if not (math.isfinite(self.layer_norm_eps) and self.layer_norm_eps > 0):
            raise ConfigError(f"config key layer_norm_eps: {self.layer_norm_eps} must be a finite number > 0")
        if not -self.vocab_size <= self.padding_idx < self.vocab_size:
            raise ConfigError(f"config key padding_idx: {self.padding_idx} is not an id of the vocabulary of "
                              f"{self.vocab_size}")

    # ----- derived values -------------------------------------------------------------------------
    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    @property
    def is_v2(self) -> bool:
        """Whether this is a DeBERTa v2/v3/mDeBERTa model (``model_type`` ``deberta-v2``)."""
        return self.model_type == "deberta-v2"

    def transformers_class(self, head: str) -> str:
        """The name of transformers' class of this family with ``head`` ("Model", "ForSequenceClassification",
        …): ``Deberta…`` for v1, ``DebertaV2…`` for v2, v3 and mDeBERTa; for ``architectures`` in config.json."""
        return ("DebertaV2" if self.is_v2 else "Deberta") + head

    @property
    def relative_span(self) -> int:
        """k, the largest relative distance told apart (``max_relative_positions``, -1 → ``max_position_embeddings``).

        Without buckets it is also the half-size of the relative-position table; with buckets the
        logarithmic scale reaches its last row at k − 1.
        """
        return self.max_relative_positions if self.max_relative_positions >= 1 else self.max_position_embeddings

    @property
    def position_table_span(self) -> int:
        """P, half the rows of the relative-position table: ``position_buckets`` when set, else k."""
        return self.position_buckets if self.position_buckets > 0 else self.relative_span

    def parameter_count(self) -> int:
        """Parameters of the encoder this config describes (:class:`~DeBERTa.deberta.DeBERTa`), counted from the
        fields alone; a head adds little beside it (a pooler, a classifier, an LM transform of H²)."""
        hidden, inner = self.hidden_size, self.intermediate_size
        width = self.embedding_size or hidden
        linear = hidden * hidden + hidden  # an H → H projection with its bias
        norm = 2 * hidden
        embeddings = self.vocab_size * width + norm
        embeddings += self.max_position_embeddings * width if self.position_biased_input else 0
        embeddings += self.type_vocab_size * width + (width * hidden if self.embedding_size else 0)
        if self.is_v2:
            attention = 3 * linear
            if self.relative_attention and not self.share_att_key:
                attention += linear * len(self.pos_att_type)
        else:  # the fused in_proj (no bias) with separate q and v biases
            attention = 3 * hidden * hidden + 2 * hidden
            if self.relative_attention:
                attention += hidden * hidden * ("c2p" in self.pos_att_type) + linear * ("p2c" in self.pos_att_type)
        layer = attention + linear + norm + (hidden * inner + inner) + (inner * hidden + hidden) + norm
        encoder = self.num_hidden_layers * layer
        encoder += 2 * self.position_table_span * hidden if self.relative_attention else 0
        encoder += norm if self.norm_rel_ebd == "layer_norm" else 0
        if self.conv_kernel_size:
            encoder += hidden * (hidden // self.conv_groups) * self.conv_kernel_size + hidden + norm
        return embeddings + encoder

    def estimated_bytes(self, bytes_per_parameter: int = 4) -> int:
        """Memory the encoder's parameters take (float32 by default); training needs a few times this
        (gradients, the optimizer's moments, activations)."""
        return self.parameter_count() * bytes_per_parameter

    def check_fits_in_memory(self, available: int | None = None, what: str = "the model") -> None:
        """A :class:`ConfigError` (one line, the estimate and the limit) when the parameters alone would not
        fit in ``available`` bytes (default: the memory available now, :func:`available_memory`), before
        anything is allocated; nothing when the available memory cannot be told."""
        available = available_memory() if available is None else available
        needed = self.estimated_bytes()
        if available is not None and needed > available:
            raise ConfigError(
                f"{what} needs about {_gib(needed)} for its float32 parameters alone ({self.parameter_count():,} "
                f"parameters: hidden_size {self.hidden_size}, {self.num_hidden_layers} layers, vocab_size "
                f"{self.vocab_size}) but only {_gib(available)} of memory is available")

    # ----- presets --------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ModelConfig:
        """A named preset (``base``, ``large``, ``v3-base``, ... see :data:`PRESETS`) with optional field overrides."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}; known presets: {', '.join(PRESETS)}")
        return dataclasses.replace(PRESETS[name], **overrides)

    # ----- JSON layouts ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Read either layout (original ``model_config.json`` or Hugging Face ``config.json``), v1 or v2/v3.

        The family is ``model_type`` when the file names it; the original release's files do not, and
        there a v2/v3 key that is set (``position_buckets``, ``share_att_key``, ...) means v2/v3.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"a model config is a JSON object of keys and values, not a {type(data).__name__}")
        model_type = data.get("model_type")
        if model_type is None:
            v2_keys = [k for k, off in _V2_ONLY_DEFAULTS.items() if data.get(k, off) not in (off, None)]
            model_type = "deberta-v2" if v2_keys else "deberta"
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type {model_type!r} is not a DeBERTa model (known: {', '.join(MODEL_TYPES)})")
        data = {**_FILE_DEFAULTS, **(_V2_FILE_DEFAULTS if model_type == "deberta-v2" else {}), **data,
                "model_type": model_type}
        for key, off in _UNSUPPORTED_OFF.items():
            if key in data and data.pop(key) not in (off, None):
                raise ConfigError(f"config sets {key!r}, which this package does not implement")
        for key in _V2_ONLY_DEFAULTS:  # HF writes null for some unset keys
            if key in data and data[key] is None:
                del data[key]
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
        if isinstance(data.get("pos_att_type"), list) and all(isinstance(t, str) for t in data["pos_att_type"]):
            data["pos_att_type"] = tuple(t.strip().lower() for t in data["pos_att_type"])
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json_file(cls, path: str | Path) -> ModelConfig:
        """Read a ``model_config.json`` or ``config.json`` file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text (bad byte at offset {err.start}); a config is a JSON file") \
                from None
        except OSError as err:
            raise ConfigError(f"{path}: cannot read it ({err.strerror or type(err).__name__})") from None
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None

    def _file_fields(self) -> dict[str, Any]:
        """The fields a file holds: a v1 config leaves out the v2/v3 fields (a v1 file stays as it was)."""
        data = dataclasses.asdict(self)
        for key in ("embedding_size", "attention_head_size"):
            if data[key] is None:
                del data[key]
        if not self.is_v2:
            for key in _V2_ONLY_DEFAULTS:
                data.pop(key, None)
        return data

    def to_original_dict(self) -> dict[str, Any]:
        """The original release's ``model_config.json`` layout."""
        data = {k: v for k, v in self._file_fields().items() if not k.startswith("pooler_")}
        data["pos_att_type"] = "|".join(self.pos_att_type) if self.pos_att_type else "none"
        if not self.is_v2:
            del data["model_type"]  # the v1 release's files have none
        data["pooling"] = {
            "hidden_size": self.pooler_hidden_size,
            "dropout": self.pooler_dropout,
            "hidden_act": self.pooler_hidden_act,
        }
        return data

    def to_hf_dict(self) -> dict[str, Any]:
        """Hugging Face's ``config.json`` layout (``model_type`` ``deberta`` or ``deberta-v2``)."""
        data = self._file_fields()
        data["pos_att_type"] = list(self.pos_att_type)
        data["pad_token_id"] = data.pop("padding_idx")
        data["legacy"] = False  # the LM head is the original one (lm_predictions.lm_head.*)
        return data

    def save(self, path: str | Path, layout: str = "original") -> None:
        """Write the config as JSON, ``layout`` ``original`` (model_config.json) or ``hf`` (config.json)."""
        if layout not in ("original", "hf"):
            raise ConfigError(f"unknown config layout {layout!r} (original or hf)")
        data = self.to_original_dict() if layout == "original" else self.to_hf_dict()
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_TYPE_WORDS = {"int": "integer", "float": "number", "bool": "boolean (true or false)", "str": "string"}


def _is_type(value: object, kind: str) -> bool:
    """Whether a config value is of the field type ``kind`` (a bool is no number here, an int is a float)."""
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "float":
        return isinstance(value, int | float)
    return isinstance(value, str)


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``, else psutil's), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # optional: not a dependency
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB" if count >= 2**30 else f"{count / 2**20:,.0f} MiB"


# Defaults of a v2/v3 file where they differ from the v1 ones (Hugging Face's DebertaV2Config).
_V2_FILE_DEFAULTS: dict[str, Any] = {"vocab_size": 128100}

KNOWN_ACTIVATIONS = ("gelu", "gelu_new", "gelu_fast", "relu", "tanh", "swish", "silu")
"""Activation names a config may use (:func:`DeBERTa.deberta.model.activation` implements them)."""


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


def _v3(**fields: Any) -> ModelConfig:
    """The published v3 shape: buckets of 256, shared attention keys, a normalised table, no absolute positions."""
    shape = dict(
        model_type="deberta-v2", vocab_size=128100, position_buckets=256, share_att_key=True,
        norm_rel_ebd="layer_norm", pos_att_type=("p2c", "c2p"), max_relative_positions=-1,
        position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7,
    )
    return ModelConfig(**{**shape, **fields})


PRESETS.update({
    "v3-xsmall": _v3(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536),
    "v3-small": _v3(hidden_size=768, num_hidden_layers=6, num_attention_heads=12, intermediate_size=3072),
    "v3-base": _v3(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
    "v3-large": _v3(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
    "mdeberta-v3-base": _v3(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                            vocab_size=251000),
    # v2-xlarge/xxlarge: v3's attention with the n-gram convolution after the first layer.
    "v2-xlarge": _v3(hidden_size=1536, num_hidden_layers=24, num_attention_heads=24, intermediate_size=6144,
                     attention_head_size=64, conv_kernel_size=3, conv_act="gelu"),
    "v2-xxlarge": _v3(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, intermediate_size=6144,
                      attention_head_size=64, conv_kernel_size=3, conv_act="gelu"),
    # For tests and the demo: two layers at width 32; buckets of 8 up to distance 32, so that short
    # sequences reach the logarithmic scale and pass its end.
    "v3-tiny": _v3(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                   max_position_embeddings=128, position_buckets=8, max_relative_positions=32),
})
