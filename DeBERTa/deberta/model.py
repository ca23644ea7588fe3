"""DeBERTa v1: embeddings → relative positions → disentangled attention → layer → encoder → model.

Read top to bottom. Parameter names are those of the released checkpoints, so official weights load
with no renaming (see :mod:`DeBERTa.deberta.pretrained`).

Shape legend
    B   batch size
    L   sequence length (Lq queries, Lk keys; equal except in the enhanced mask decoder's tests)
    D   hidden size;  E  word-embedding size (= D unless ``embedding_size`` is set)
    H   attention heads;  d = D / H, the width of one head
    k   ``max_relative_positions`` (-1 → ``max_position_embeddings``): rel_embeddings has 2k rows
    S   attention span = min(max(Lq, Lk), k): the rows of rel_embeddings a forward pass uses are 2S
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig

ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "tanh": torch.tanh,
    "swish": F.silu,
    "silu": F.silu,
}


def activation(name: str):
    """The activation function called ``name`` in configs (``gelu`` is the exact, erf-based one)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype, returned in the input dtype.

    Under fp16/bf16 autocast the variance of a 768-wide hidden state loses too many bits otherwise.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)


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
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

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
# Relative positions
# --------------------------------------------------------------------------------------------------
def build_relative_position(query_size: int, key_size: int, device: torch.device) -> torch.Tensor:
    """δ(i, j) = i − j for query i and key j: a (Lq, Lk) long tensor."""
    q_ids = torch.arange(query_size, dtype=torch.long, device=device)
    k_ids = torch.arange(key_size, dtype=torch.long, device=device)
    return q_ids[:, None] - k_ids[None, :]  # (Lq, Lk)


def attention_span(query_size: int, key_size: int, max_relative_positions: int) -> int:
    """S: distances are clamped to [−S, S), and rows k−S … k+S−1 of rel_embeddings are used."""
    return min(max(query_size, key_size), max_relative_positions)


# --------------------------------------------------------------------------------------------------
# Disentangled self-attention
# --------------------------------------------------------------------------------------------------
class DisentangledSelfAttention(nn.Module):
    """Self-attention whose scores add content→position (c2p) and position→content (p2c) terms.

    score(i, j) = [q_i·k_j + q_i·kr_{δ(i,j)} + k_j·qr_{δ(i,j)}] / sqrt(d · (1 + number of terms)),
    with kr = rel_embeddings · pos_proj and qr = rel_embeddings · pos_q_proj, δ clamped to the span.
    Q, K and V come from one fused ``in_proj`` whose rows are interleaved per head: the output of
    head h is [q_h, k_h, v_h] (3d rows), as in the released weights.
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
        self.scale_factor = 1 + len(config.pos_att_type)
        if self.relative_attention:
            self.max_relative_positions = config.relative_span
            self.pos_dropout = nn.Dropout(config.hidden_dropout_prob)
            if "c2p" in self.pos_att_type:
                self.pos_proj = nn.Linear(config.hidden_size, all_head_size, bias=False)
            if "p2c" in self.pos_att_type:
                self.pos_q_proj = nn.Linear(config.hidden_size, all_head_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, H·w) → (B, H, L, w)."""
        return x.view(*x.shape[:-1], self.num_heads, -1).transpose(1, 2)  # (B, H, L, w)

    def project_qkv(
        self, hidden_states: torch.Tensor, query_states: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q from ``query_states`` (default: the hidden states), K and V from the hidden states."""
        if query_states is None:
            qkv = self.split_heads(self.in_proj(hidden_states))  # (B, H, L, 3d)
            q, k, v = qkv.chunk(3, dim=-1)  # 3 × (B, H, L, d)
        else:
            # The enhanced mask decoder queries with other states than it attends to: un-fuse the weight.
            w = self.in_proj.weight.view(self.num_heads, 3, self.head_size, -1)  # (H, 3, d, D)
            w_q, w_k, w_v = (w[:, i].reshape(-1, w.shape[-1]) for i in range(3))  # 3 × (D, D)
            q = self.split_heads(F.linear(query_states, w_q))  # (B, H, Lq, d)
            k = self.split_heads(F.linear(hidden_states, w_k))  # (B, H, Lk, d)
            v = self.split_heads(F.linear(hidden_states, w_v))  # (B, H, Lk, d)
        q = q + self.q_bias.view(self.num_heads, 1, self.head_size)
        v = v + self.v_bias.view(self.num_heads, 1, self.head_size)
        return q, k, v

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        rel_embeddings: torch.Tensor | None = None,
        query_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, Lk, D), mask (B, Lk), rel_embeddings (2k, D) → context (B, Lq, D)."""
        q, k, v = self.project_qkv(hidden_states, query_states)
        q = q / math.sqrt(self.head_size * self.scale_factor)
        scores = q @ k.transpose(-1, -2)  # (B, H, Lq, Lk)
        if self.relative_attention:
            scores = scores + self.disentangled_bias(q, k, self.pos_dropout(rel_embeddings))
        # Rows of padded queries are zeroed when queries and keys share positions (always, in practice).
        same_grid = scores.shape[-2] == scores.shape[-1]
        probs = masked_softmax(scores, attention_mask, query_mask=attention_mask if same_grid else None)
        context = self.dropout(probs).to(v.dtype) @ v  # (B, H, Lq, d)
        return context.transpose(1, 2).flatten(2)  # (B, Lq, D)

    def disentangled_bias(self, q: torch.Tensor, k: torch.Tensor, rel_embeddings: torch.Tensor) -> torch.Tensor:
        """The c2p and p2c terms for queries q (B, H, Lq, d) and keys k (B, H, Lk, d): (B, H, Lq, Lk).

        ``q`` is already divided by the attention scale; p2c's position queries get the same scale.
        """
        query_size, key_size = q.shape[-2], k.shape[-2]
        span = attention_span(query_size, key_size, self.max_relative_positions)
        rel = rel_embeddings[self.max_relative_positions - span : self.max_relative_positions + span]  # (2S, D)
        relative_pos = build_relative_position(query_size, key_size, q.device)  # (Lq, Lk)
        bias = torch.zeros((), dtype=q.dtype, device=q.device)
        if "c2p" in self.pos_att_type:
            pos_key = self.split_heads(self.pos_proj(rel)[None])  # (1, H, 2S, d)
            c2p = q @ pos_key.transpose(-1, -2)  # (B, H, Lq, 2S)
            index = torch.clamp(relative_pos + span, 0, 2 * span - 1)  # (Lq, Lk)
            bias = bias + torch.gather(c2p, -1, index.expand(*c2p.shape[:2], query_size, key_size))
        if "p2c" in self.pos_att_type:
            pos_query = self.split_heads(self.pos_q_proj(rel)[None])  # (1, H, 2S, d)
            pos_query = pos_query / math.sqrt(self.head_size * self.scale_factor)
            p2c = k @ pos_query.transpose(-1, -2).to(k.dtype)  # (B, H, Lk, 2S)
            # Key j looks at the position of query i through δ(i, j), taken here over the keys' grid.
            key_pos = build_relative_position(key_size, key_size, q.device)  # (Lk, Lk)
            index = torch.clamp(-key_pos + span, 0, 2 * span - 1)  # (Lk, Lk)
            p2c = torch.gather(p2c, -1, index.expand(*p2c.shape[:2], key_size, key_size))  # (B, H, Lk, Lk)
            p2c = p2c.transpose(-1, -2)  # (B, H, Lk, Lk): row = query position, column = key
            if query_size != key_size:
                p2c = p2c[..., relative_pos[:, 0], :]  # (B, H, Lq, Lk): rows of the actual queries
            bias = bias + p2c
        return bias


def masked_softmax(
    scores: torch.Tensor, key_mask: torch.Tensor, query_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Softmax over keys, in float32, that ignores padded keys; padded query rows become all zeros.

    scores (B, H, Lq, Lk); key_mask (B, Lk) and query_mask (B, Lq), 1 for real tokens. Filling with
    float32's lowest value (not the score dtype's, which overflows to -inf under bf16 autocast) keeps
    fully padded rows finite; they are then zeroed, as the released XSoftmax did.
    """
    keep = key_mask[:, None, None, :].bool()  # (B, 1, 1, Lk)
    probs = torch.softmax(scores.float().masked_fill(~keep, torch.finfo(torch.float32).min), dim=-1)
    if query_mask is not None:
        keep = keep & query_mask[:, None, :, None].bool()  # (B, 1, Lq, Lk)
    return probs.masked_fill(~keep, 0.0)


# --------------------------------------------------------------------------------------------------
# Transformer layer
# --------------------------------------------------------------------------------------------------
class SelfOutput(nn.Module):
    """Projection of the attention context, dropout, residual, LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, context: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(context)) + residual)


class Attention(nn.Module):
    """Disentangled self-attention followed by its output projection."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self = DisentangledSelfAttention(config)
        self.output = SelfOutput(config)

    def forward(self, hidden_states, attention_mask, rel_embeddings=None, query_states=None):
        context = self.self(hidden_states, attention_mask, rel_embeddings, query_states)
        return self.output(context, hidden_states if query_states is None else query_states)


class Intermediate(nn.Module):
    """The feed-forward expansion: D → intermediate_size, activation."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class Output(nn.Module):
    """The feed-forward contraction: intermediate_size → D, dropout, residual, LayerNorm."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


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
        return self.output(self.intermediate(attended), attended)


# --------------------------------------------------------------------------------------------------
# Encoder and model
# --------------------------------------------------------------------------------------------------
class Encoder(nn.Module):
    """The layer stack and the relative-position embeddings all layers share."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(Layer(config) for _ in range(config.num_hidden_layers))
        self.relative_attention = config.relative_attention
        if self.relative_attention:
            self.rel_embeddings = nn.Embedding(2 * config.relative_span, config.hidden_size)

    def get_rel_embedding(self) -> torch.Tensor | None:
        """The (2k, D) relative-position table, or None without relative attention."""
        return self.rel_embeddings.weight if self.relative_attention else None

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        """Embeddings (B, L, D) and mask (B, L) → the output of every layer, each (B, L, D)."""
        rel_embeddings = self.get_rel_embedding()
        outputs = []
        for layer in self.layer:
            hidden_states = layer(hidden_states, attention_mask, rel_embeddings)
            outputs.append(hidden_states)
        return outputs


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
        elif isinstance(m, DisentangledSelfAttention):
            nn.init.zeros_(m.q_bias)
            nn.init.zeros_(m.v_bias)


class DeBERTa(nn.Module):
    """The DeBERTa encoder: ``DeBERTa(config=None, pre_trained=None)``.

    ``pre_trained`` is a model name (``base``, ``large``, ``base_mnli``, ...), a local folder in either
    checkpoint layout, or a weights file. Its architecture comes from the checkpoint's config; fields of
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
            from .pretrained import load_model_state, merge_configs

            state, checkpoint_config = load_model_state(pre_trained, config)
            config = merge_configs(checkpoint_config, config)
        if config is None:
            raise ValueError("DeBERTa needs a config or a pre_trained model")
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

        ``attention_mask`` (B, L) is 1 for real tokens, 0 for padding (default all ones);
        ``token_type_ids`` (B, L) default zeros; ``position_ids`` (B, L) default 0 … L−1.
        With ``output_all_encoded_layers=False`` the list holds the last layer only.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1], device=input_ids.device)[None]  # (1, L)
        embedded = self.embeddings(input_ids, token_type_ids, position_ids, attention_mask)
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
