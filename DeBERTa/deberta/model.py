"""DeBERTa: embeddings → relative positions → disentangled attention → layer → encoder → model.

Read top to bottom. One model for both families: v1 (``model_type`` ``deberta``) and v2/v3/mDeBERTa
(``deberta-v2``), which differ in the attention's projections (:class:`DisentangledSelfAttention`,
:class:`DisentangledSelfAttentionV2`), in bucketed relative distances, a normalised relative-position
table, and the n-gram convolution after the first layer (:class:`ConvLayer`). Parameter names are
those of the released checkpoints, so official weights load with no renaming (see
:mod:`DeBERTa.deberta.pretrained`).

This file writes the formula; :mod:`DeBERTa.deberta.attention` computes the attention fast (banded
products instead of index tensors of the scores' size, inference in pieces, the compiled CPU kernel,
reused position projections), and tests check it against the formula.

Shape legend
    B   batch size
    L   sequence length (Lq queries, Lk keys; equal except in the enhanced mask decoder's tests)
    D   hidden size;  E  word-embedding size (= D unless ``embedding_size`` is set)
    H   attention heads;  d = D / H, the width of one head
    I   intermediate_size, the width of the feed-forward layer
    k   ``max_relative_positions`` (-1 → ``max_position_embeddings``)
    P   half the rows of rel_embeddings: k, or ``position_buckets`` (v2/v3) when set
    S   attention span ≤ P: the rows of rel_embeddings a forward pass uses are 2S
    n   rows per block of the relative products (m for the query blocks when both appear)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from . import cpu_linear
from .attention import (
    FastDisentangledAttention,
    PositionTables,
    apply_dropout,
    attention_span,
    band_block,
    band_window_rows,
    banded_products,
    current_options,
    diagonal_band,
    fused_heads,
    gather_windows,
    padding_bias,
    piece_shape,
    project_heads,
    reuse_allowed,
    reused,
    token_mask,
)
from .config import ModelConfig
from .recompute import activation_linear, recomputable

__all__ = [  # the attention helpers stay importable from here, where they were before attention.py
    "DeBERTa", "DisentangledSelfAttention", "DisentangledSelfAttentionV2", "Dropout", "LayerNorm", "activation",
    "attention_span", "band_block", "band_window_rows", "banded_products", "diagonal_band", "gather_windows",
    "init_weights", "padding_bias", "piece_shape",
]


def tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


def gelu_in_place(x: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.gelu_(x)


def tanh_gelu_in_place(x: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.gelu_(x, approximate="tanh")


def silu_in_place(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x, inplace=True)


# Named functions, not lambdas or operator objects: modules keep them, and models must pickle.
ACTIVATIONS = {  # name → (out of place, in place)
    "gelu": (F.gelu, gelu_in_place),
    "gelu_new": (tanh_gelu, tanh_gelu_in_place),
    "gelu_fast": (tanh_gelu, tanh_gelu_in_place),
    "relu": (F.relu, torch.relu_),
    "tanh": (torch.tanh, torch.tanh_),
    "swish": (F.silu, silu_in_place),
    "silu": (F.silu, silu_in_place),
}


def activation(name: str, in_place: bool = False):
    """The activation function called ``name`` in configs (``gelu`` is the exact, erf-based one).

    ``in_place``: the variant that overwrites its input and returns it.
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name][in_place]


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype, returned in the input dtype.

    Under fp16/bf16 autocast the variance of a 768-wide hidden state loses too many bits otherwise.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


class Dropout(nn.Dropout):
    """Dropout that keeps a one-byte mask for backward, and draws it fast on CPU (:func:`~.attention.apply_dropout`).

    On the CPU the drop probability is p rounded to a multiple of 2⁻¹⁶, and the kept elements are scaled by
    the inverse of the rounded keep probability, so that the expectation stays exact
    (:func:`~.attention.dropout_mask`). Same module as far as state dicts go.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        return apply_dropout(x, self.p)


# --------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------
class Embeddings(nn.Module):
    """Word (+ token-type, + absolute position when ``position_biased_input``) embeddings, normalised.

    The absolute position table also exists when ``absolute_positions`` is asked for although the
    input does not use it: the enhanced mask decoder adds it to its queries.
    """

    def __init__(self, config: ModelConfig, absolute_positions: bool = False):
        super().__init__()
        self.config = config
        width = config.embedding_size or config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, width, padding_idx=config.padding_idx)
        if config.position_biased_input or absolute_positions:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, width)
        else:
            self.position_embeddings = None
        if config.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width)
        else:
            self.token_type_embeddings = None
        self.embed_proj = nn.Linear(width, config.hidden_size, bias=False) if config.embedding_size else None
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None,
        position_ids: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """ids, types, positions and mask (B, L) → embeddings (B, L, D), zero at padded positions."""
        x = self.word_embeddings(input_ids)  # (B, L, E)
        if self.config.position_biased_input:
            x = x + self.position_embeddings(position_ids)
        if self.token_type_embeddings is not None and token_type_ids is not None:
            x = x + self.token_type_embeddings(token_type_ids)
        if self.embed_proj is not None:
            x = self.embed_proj(x)  # (B, L, D)
        x = self.LayerNorm(x) * mask.unsqueeze(-1).to(x.dtype)
        return self.dropout(x)


# --------------------------------------------------------------------------------------------------
# Disentangled self-attention
# --------------------------------------------------------------------------------------------------
class DisentangledSelfAttention(FastDisentangledAttention):
    """DeBERTa v1 self-attention: content scores plus content→position (c2p) and position→content (p2c) terms.

    score(i, j) = [q_i·k_j + q_i·kr_{δ(i,j)} + k_j·qr_{δ(i,j)}] / sqrt(d · (1 + number of terms)),
    with kr = rel_embeddings · pos_proj and qr = rel_embeddings · pos_q_proj, δ = i − j clamped to
    [−k, k). Q, K and V come from one fused ``in_proj`` whose rows are interleaved per head: the output
    of head h is [q_h, k_h, v_h] (3d rows), as in the released weights; q and v have biases, k none.
    How the scores are computed fast: :mod:`.attention`.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        all_head_size = config.hidden_size
        self.in_proj = nn.Linear(config.hidden_size, 3 * all_head_size, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(all_head_size))
        self.v_bias = nn.Parameter(torch.zeros(all_head_size))
        self.pos_att_type = config.pos_att_type
        self.relative_attention = config.relative_attention
        # The released code divides by sqrt(d · (1 + #terms)) even when relative attention is off.
        self.scale = 1 / math.sqrt(self.head_size * (1 + len(config.pos_att_type)))
        if self.relative_attention:
            self.max_relative_positions = config.relative_span
            self.pos_dropout = Dropout(config.hidden_dropout_prob)
            if "c2p" in self.pos_att_type:
                self.pos_proj = nn.Linear(config.hidden_size, all_head_size, bias=False)
            if "p2c" in self.pos_att_type:
                self.pos_q_proj = nn.Linear(config.hidden_size, all_head_size)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def project_qkv(
        self, hidden_states: torch.Tensor, query_states: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q (B, H, Lq, d) from ``query_states`` (default: the hidden states), K and V (B, H, Lk, d)."""
        if query_states is None:
            # One matrix product for all three, the biases added inside it: [q_bias_h, 0, v_bias_h] per head.
            q_bias, v_bias = self.q_bias.view(self.num_heads, -1), self.v_bias.view(self.num_heads, -1)
            bias = torch.stack([q_bias, torch.zeros_like(q_bias), v_bias], dim=1).flatten()  # (3·D,)
            projected = cpu_linear.linear(hidden_states, self.in_proj.weight, bias)  # (B, L, 3·D)
            q, k, v = fused_heads(projected, self.num_heads, 3)  # (B, H, L, d)
        else:
            # The enhanced mask decoder queries with other states than it attends to: un-fuse the weight.
            weight = self.in_proj.weight.view(self.num_heads, 3, self.head_size, -1)  # (H, 3, d, D)
            w_q, w_k, w_v = (weight[:, i].flatten(0, 1) for i in range(3))  # 3 × (D, D)
            q = self.split_heads(cpu_linear.linear(query_states, w_q, self.q_bias))  # (B, H, Lq, d)
            k = self.split_heads(cpu_linear.linear(hidden_states, w_k))  # (B, H, Lk, d)
            v = self.split_heads(cpu_linear.linear(hidden_states, w_v, self.v_bias))  # (B, H, Lk, d)
        return q, k, v

    def project_positions(self, rel: torch.Tensor) -> PositionTables:
        """Rows of rel_embeddings (R, D) → kr and qr (H, R, d), scaled; None for a term not used."""
        pos_key = project_heads(rel, self.pos_proj, self.num_heads, self.scale) if "c2p" in self.pos_att_type else None
        pos_query = project_heads(rel, self.pos_q_proj, self.num_heads, self.scale) \
            if "p2c" in self.pos_att_type else None
        return pos_key, pos_query

    def position_weights(self) -> list[torch.Tensor]:
        return [p for name, p in self.named_parameters() if name.startswith("pos_")]


class DisentangledSelfAttentionV2(FastDisentangledAttention):
    """DeBERTa v2/v3 self-attention: v1's score with separate projections and bucketed distances.

    score(i, j) = [q_i·k_j + q_i·kr_{b(i−j)} + k_j·qr_{b(i−j)}] / sqrt(d · (1 + number of terms)), where

    * q, k, v = query_proj, key_proj, value_proj of the states, each with its bias;
    * kr = LN(rel_embeddings) · pos_key_proj and qr = LN(rel_embeddings) · pos_query_proj (with biases), or,
      with ``share_att_key``, the content projections key_proj and query_proj of the same table;
      LN is the encoder's normalisation of the table when ``norm_rel_ebd`` is ``layer_norm``;
    * b(δ) is the log bucket of δ (:func:`~.attention.log_bucket_position`) when ``position_buckets`` is
      set, else δ; clamped to the table's [−P, P).

    The released v2 divides the key (not the scores) by the square root, so that fp16 products stay in
    range; here the scale multiplies q·kᵀ inside one fused product, whose float32 accumulation needs
    no such care, and the position tables are scaled once when projected.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.attention_head_size or config.head_size
        all_head_size = self.num_heads * self.head_size
        self.query_proj = nn.Linear(config.hidden_size, all_head_size)
        self.key_proj = nn.Linear(config.hidden_size, all_head_size)
        self.value_proj = nn.Linear(config.hidden_size, all_head_size)
        self.share_att_key = config.share_att_key
        self.pos_att_type = config.pos_att_type
        self.relative_attention = config.relative_attention
        self.scale = 1 / math.sqrt(self.head_size * (1 + len(config.pos_att_type)))
        if self.relative_attention:
            self.max_relative_positions = config.position_table_span
            self.position_buckets = config.position_buckets
            self.bucket_max_position = config.relative_span
            self.pos_dropout = Dropout(config.hidden_dropout_prob)
            if not self.share_att_key:
                if "c2p" in self.pos_att_type:
                    self.pos_key_proj = nn.Linear(config.hidden_size, all_head_size)
                if "p2c" in self.pos_att_type:
                    self.pos_query_proj = nn.Linear(config.hidden_size, all_head_size)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def project_qkv(
        self, hidden_states: torch.Tensor, query_states: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q (B, H, Lq, d) from ``query_states`` (default: the hidden states), K and V (B, H, Lk, d)."""
        queries = hidden_states if query_states is None else query_states
        pairs = ((queries, self.query_proj), (hidden_states, self.key_proj), (hidden_states, self.value_proj))
        q, k, v = (self.split_heads(cpu_linear.linear(x, proj.weight, proj.bias)) for x, proj in pairs)
        return q, k, v

    def position_linears(self) -> tuple[nn.Linear | None, nn.Linear | None]:
        """The projections of kr and qr (None for a term not used)."""
        key, query = (self.key_proj, self.query_proj) if self.share_att_key else \
            (getattr(self, "pos_key_proj", None), getattr(self, "pos_query_proj", None))
        return (key if "c2p" in self.pos_att_type else None), (query if "p2c" in self.pos_att_type else None)

    def project_positions(self, rel: torch.Tensor) -> PositionTables:
        """Rows of the (normalised) rel_embeddings (R, D) → kr and qr (H, R, d), scaled; None for a term not used."""
        return tuple(None if linear is None else project_heads(rel, linear, self.num_heads, self.scale)
                     for linear in self.position_linears())

    def position_weights(self) -> list[torch.Tensor]:
        return [p for linear in self.position_linears() if linear is not None for p in linear.parameters()]

# --------------------------------------------------------------------------------------------------
# Transformer layer
# --------------------------------------------------------------------------------------------------
class SelfOutput(nn.Module):
    """Projection of the attention context, dropout, residual, LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(cpu_linear.linear(context, self.dense.weight, self.dense.bias)) + residual)


class Attention(nn.Module):
    """Disentangled self-attention (v1 or v2/v3) followed by its output projection."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self = DisentangledSelfAttentionV2(config) if config.is_v2 else DisentangledSelfAttention(config)
        self.output = SelfOutput(config)

    def forward(self, hidden_states, attention_mask, rel_embeddings=None, query_states=None):
        context = self.self(hidden_states, attention_mask, rel_embeddings, query_states)
        return self.output(context, hidden_states if query_states is None else query_states)


class Intermediate(nn.Module):
    """The feed-forward expansion: D → intermediate_size, activation."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act_name = config.hidden_act
        self.act = activation(config.hidden_act)
        self.act_in_place = activation(config.hidden_act, in_place=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) → (B, L, intermediate_size)."""
        if self.act_name in cpu_linear.FUSED_ACTIVATIONS and cpu_linear.applies(x, self.dense.weight, self.dense.bias):
            return cpu_linear.linear(x, self.dense.weight, self.dense.bias, self.act_name)  # activation inside
        hidden = self.dense(x)  # (B, L, I)
        if hidden.requires_grad:  # autograd keeps the pre-activation for the backward pass
            return self.act(hidden)
        # Inference: no second (B, L, I) tensor, the largest of a layer. That measured 0–3 % faster for a
        # base forward pass on a CPU (fewer page faults, less memory traffic) and lowers peak memory.
        return self.act_in_place(hidden)


class Output(nn.Module):
    """The feed-forward contraction: intermediate_size → D, dropout, residual, LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor, activation_name: str | None = None) -> torch.Tensor:
        """(B, L, I) → (B, L, D). With ``activation_name``, x is the pre-activation: the activation is applied
        here, and made again in backward rather than kept (:func:`~.recompute.activation_linear`)."""
        if activation_name is None:
            projected = cpu_linear.linear(x, self.dense.weight, self.dense.bias)
        else:
            projected = activation_linear(x, activation_name, self.dense.weight, self.dense.bias)
        return self.LayerNorm(self.dropout(projected) + residual)


class Layer(nn.Module):
    """One transformer layer: attention, then feed-forward, each with residual and LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = Attention(config)
        self.intermediate = Intermediate(config)
        self.output = Output(config)

    def forward(self, hidden_states, attention_mask, rel_embeddings=None, query_states=None):
        """(B, Lk, D) → (B, Lq, D); queries default to the hidden states themselves."""
        attended = self.attention(hidden_states, attention_mask, rel_embeddings, query_states)
        if attended.requires_grad and recomputable(self.intermediate.act_name):
            # Training: autograd would keep both the pre-activation and the activation (B, L, I); keep one.
            dense = self.intermediate.dense
            expanded = cpu_linear.linear(attended, dense.weight, dense.bias)
            return self.output(expanded, attended, self.intermediate.act_name)
        return self.output(self.intermediate(attended), attended)


# --------------------------------------------------------------------------------------------------
# Encoder and model
# --------------------------------------------------------------------------------------------------
class ConvLayer(nn.Module):
    """v2's n-gram convolution: after the first layer, LN(layer output + act(conv(embeddings))), padding zeroed."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        width = config.conv_kernel_size
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, width, padding=(width - 1) // 2,
                              groups=config.conv_groups)
        self.act = activation(config.conv_act)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, L, D), the first layer's output (B, L, D) and the token mask (B, L) → (B, L, D)."""
        keep = mask.unsqueeze(-1).to(residual.dtype)  # (B, L, 1)
        out = self.conv(hidden_states.transpose(1, 2)).transpose(1, 2) * keep  # (B, L, D)
        return self.LayerNorm(residual + self.act(self.dropout(out))) * keep


class Encoder(nn.Module):
    """The layer stack and the relative-position embeddings all layers share (normalised in v2/v3 when asked)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))
        self.relative_attention = config.relative_attention
        if self.relative_attention:
            self.rel_embeddings = nn.Embedding(2 * config.position_table_span, config.hidden_size)
        if config.norm_rel_ebd == "layer_norm":
            self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.conv = ConvLayer(config) if config.conv_kernel_size > 0 else None
        self._reused_table: dict = {}

    def get_rel_embedding(self) -> torch.Tensor | None:
        """The (2P, D) relative-position table (normalised when ``norm_rel_ebd``), or None without relative attention.

        Inference reuses the normalised table while the weights stay the same: the same tensor every
        call, so that the attention layers reuse their projections of it too.
        """
        if not self.relative_attention:
            return None
        table = self.rel_embeddings.weight
        if not hasattr(self, "LayerNorm"):
            return table
        if not (current_options().reuse_position_projections and reuse_allowed(self)):
            return self.LayerNorm(table)
        weights = [table, self.LayerNorm.weight, self.LayerNorm.bias]
        # One key: this LayerNorm returns float32 under autocast too.
        return reused(self._reused_table, None, weights, lambda: self.LayerNorm(table))

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings (B, L, D) and mask (B, L) or (B, L, L) → the output of every layer, each (B, L, D)."""
        rel_embeddings = self.get_rel_embedding()
        embeddings = hidden_states
        outputs = []
        for index, layer in enumerate(self.layer):
            hidden_states = layer(hidden_states, attention_mask, rel_embeddings)
            if index == 0 and self.conv is not None:
                hidden_states = self.conv(embeddings, hidden_states, token_mask(attention_mask))
            outputs.append(hidden_states)
        return outputs

    def train(self, mode: bool = True) -> Encoder:
        self._reused_table = {}
        return super().train(mode)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # pickle and deepcopy: without the reused table (weak references)
        state["_reused_table"] = {}
        return state


def init_weights(module: nn.Module, initializer_range: float) -> None:
    """The released initialisation: N(0, initializer_range) weights, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=initializer_range)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=initializer_range)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, DisentangledSelfAttention):  # v1's separate biases
            nn.init.zeros_(m.q_bias)
            nn.init.zeros_(m.v_bias)


class DeBERTa(nn.Module):
    """The DeBERTa encoder: ``DeBERTa(config=None, pre_trained=None)``.

    ``pre_trained`` is a model name (``base``, ``large``, ``base_mnli``, ``deberta-v3-base``,
    ``mdeberta-v3-base``, ``deberta-v2-xlarge``, ...), a local folder in either checkpoint layout (v1 or
    v2/v3, told apart by its config), or a weights file. Its architecture comes from the checkpoint's config; fields of
    ``config`` that do not change the architecture (dropouts, pooler settings) override it, so a
    caller can fine-tune with other dropout rates.
    """

    def __init__(
        self,
        config: ModelConfig | None = None,
        pre_trained: str | None = None,
        *,
        absolute_positions: bool = False,
    ):
        super().__init__()
        state = None
        if pre_trained is not None:
            from .pretrained import load_pretrained

            state, config = load_pretrained(pre_trained, config)
        if config is None:
            raise ValueError("DeBERTa needs a config or a pre_trained model")
        if torch.get_default_device().type == "cpu":  # not on meta (shapes only), nor measured against a GPU's
            config.check_fits_in_memory()  # refuse a size that cannot fit before allocating it (microseconds)
        self.config = config
        self.pre_trained = pre_trained
        self.embeddings = Embeddings(config, absolute_positions=absolute_positions)
        self.encoder = Encoder(config)
        init_weights(self, config.initializer_range)
        self.apply_state(state)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_all_encoded_layers: bool = True,
        position_ids: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """ids (B, L) → the hidden states of every layer, each (B, L, D); the last is the output.

        ``attention_mask`` (B, L) is 1 for real tokens, 0 for padding (default all ones); or (B, L, L),
        the original API's form, 1 where token i may attend to token j (the real tokens are then those
        some token attends to, as transformers reads it; a token that may attend to nothing gets a zero
        attention context);
        ``token_type_ids`` (B, L) default zeros; ``position_ids`` (B, L) default 0 … L−1.
        With ``output_all_encoded_layers=False`` the list holds the last layer only.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # (1, L)
        embedded = self.embeddings(input_ids, token_type_ids, position_ids, token_mask(attention_mask))
        layers = self.encoder(embedded, attention_mask)
        return layers if output_all_encoded_layers else layers[-1:]

    def apply_state(self, state: dict[str, torch.Tensor] | None = None) -> None:
        """Load the pre-trained weights again, e.g. after the caller ran its own initialisation.

        ``state`` holds this package's key names (as :func:`load_model_state` returns them); None
        reads the ``pre_trained`` checkpoint this model was built from again (kept on disk, not in memory).
        """
        from .pretrained import load_backbone_state, load_model_state

        if state is None and self.pre_trained is not None:
            state, _ = load_model_state(self.pre_trained, self.config)
        if state is not None:
            load_backbone_state(self, state)
