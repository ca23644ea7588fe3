"""DeBERTa v1: embeddings → relative positions → disentangled attention → layer → encoder → model.

Read top to bottom. Parameter names are those of the released checkpoints, so official weights load
with no renaming (see :mod:`DeBERTa.deberta.pretrained`).

How the attention is computed, and why. The relative terms c2p[i, j] = q_i · kr[δ] and
p2c[i, j] = k_j · qr[δ] depend on δ = i − j only through a table row. Rather than multiplying every
query (key) by all 2S table rows and gathering the (Lq, Lk) entries with an index tensor, as the
released code does, each block of n queries (keys) is multiplied by the n + Lk (n + Lq) rows its
band actually uses, and the band is read out of the products as a strided view
(:func:`banded_products`). The two bands and the padding are summed into one (B, H, Lq, Lk) bias,
which PyTorch's fused attention kernel takes as its mask on GPU; the CPU spells the softmax out (its
fused kernel has no dropout and no gradient for a mask, and was slower in inference). Inference goes
through the batch in pieces of a few sequences or heads, so that no score-sized temporary is made;
on a CPU with AVX-512 it takes a compiled kernel instead (:mod:`.cpu_kernel`) that does all of it in
one pass per block of queries, each relative product only for the pairs (i, j) that exist.
The formula these compute is the one written in :class:`DisentangledSelfAttention`;
tests/test_fast_attention.py checks them against it.

Shape legend
    B   batch size
    L   sequence length (Lq queries, Lk keys; equal except in the enhanced mask decoder's tests)
    D   hidden size;  E  word-embedding size (= D unless ``embedding_size`` is set)
    H   attention heads;  d = D / H, the width of one head
    I   intermediate_size, the width of the feed-forward layer
    k   ``max_relative_positions`` (-1 → ``max_position_embeddings``): rel_embeddings has 2k rows
    S   attention span = min(max(Lq, Lk), k): the rows of rel_embeddings a forward pass uses are 2S
    n   rows per block of the relative products (m for the query blocks when both appear)
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from . import cpu_kernel
from .config import ModelConfig


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
    """Dropout that keeps a one-byte mask for backward, and draws it fast on CPU.

    PyTorch's CPU dropout multiplies by a float noise tensor and keeps that for backward: four bytes
    per element, 4·B·H·L² per layer for the attention probabilities. ``native_dropout`` (what the GPU
    runs, one fused kernel) keeps a bool mask. On CPU both draw the noise with ``bernoulli_``, which is
    twice as slow as drawing uniform numbers (``rand``) and comparing them with p: that is done here,
    and the product with the bool mask keeps the mask, not the noise. Same distribution (to 2⁻²⁴),
    same scaling, same module as far as state dicts go.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        if x.is_cuda:
            return torch.native_dropout(x, self.p, True)[0]
        keep = torch.rand(x.shape, device=x.device) >= self.p  # bool
        return (x * keep).mul_(1 / (1 - self.p))


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
# Relative positions
# --------------------------------------------------------------------------------------------------
def attention_span(query_size: int, key_size: int, max_relative_positions: int) -> int:
    """S: distances are clamped to [−S, S), and rows k−S … k+S−1 of rel_embeddings are used."""
    return min(max(query_size, key_size), max_relative_positions)


def position_rows(distances: torch.Tensor, span: int) -> torch.Tensor:
    """Rows of the 2S position projections for relative distances δ: clamp(δ + S, 0, 2S − 1)."""
    return torch.clamp(distances + span, 0, 2 * span - 1)


def diagonal_band(products: torch.Tensor, width: int) -> torch.Tensor:
    """The band of a matrix of products with one column per diagonal, as an (R, width) view.

    ``products`` (..., R, W), rows contiguous, W ≥ width + 1, holds in column u the product of row r
    with table entry u. The result's element [r, c] is products[r, R − 1 − r + c]: moving right along
    a row of the result walks the diagonals in order, moving down shifts them by one. No copy, no
    index tensor: the view steps W − 1 elements per row through the flattened rows.
    """
    rows, columns = products.shape[-2:]
    flat = products.flatten(-2)[..., rows - 1 : rows - 1 + rows * (columns - 1)]  # (..., R·(W − 1))
    return flat.unflatten(-1, (rows, columns - 1))[..., :width]  # (..., R, width)


def band_block(rows: int, width: int, batch: int, head_size: int) -> int:
    """Rows per block of :func:`banded_products`: the largest divisor of R up to √(d·width/B), at least 16.

    A block of n rows multiplies its own window of n + width table entries, so smaller blocks compute
    fewer products (B·R·(n + width)) but copy more windows (d·(R/n)·(n + width) entries); the square root
    balances the two. It gives 32 rows for 8×128 and 128 for 1×512, the best measured on a CPU.
    """
    best = math.sqrt(head_size * width / batch)
    block = rows
    for candidate in range(16, min(rows, int(best)) + 1):  # a plain loop: torch.compile traces it
        if rows % candidate == 0:
            block = candidate
    return block


def band_window_rows(rows: torch.Tensor, size: int, width: int, block: int) -> torch.Tensor:
    """The table entries of the window each block of n rows multiplies in :func:`banded_products`: (R/n, n + width).

    rows (R + width,) the table entry of each diagonal, R = ``size``; ``block`` n divides R
    (:func:`band_block`). Row r needs entries R − 1 − r … R − 2 − r + width of ``rows``, so a block of
    n rows needs n + width − 1 of them: its window has n + width entries (one spare, for
    :func:`diagonal_band`) instead of R + width.
    """
    # Block i starts at entry R − (i + 1)·n: the windows move back by n per block. The windows are
    # gathered from the small table (not unfolded from it: under torch.compile 2.13 the backward of a
    # matrix product with a single full-length unfold window corrupts memory).
    starts = size - block * torch.arange(1, size // block + 1, device=rows.device)  # (R/n,)
    return rows[starts[:, None] + torch.arange(block + width, device=rows.device)]  # (R/n, n + width)


def gather_windows(positions: torch.Tensor, window_rows: torch.Tensor) -> torch.Tensor:
    """Rows (blocks, w) of a per-head table (H, P, d) → windows (H, blocks, w, d)."""
    return positions.index_select(1, window_rows.flatten()).unflatten(1, window_rows.shape)


def banded_products(x: torch.Tensor, windows: torch.Tensor, width: int) -> torch.Tensor:
    """band[b, h, r, c] = x[b, h, r] · positions[h, rows[R − 1 − r + c]]: (B, H, R/n, n, width), in blocks.

    x (B, H, R, d); windows (H, R/n, n + width, d): the rows :func:`band_window_rows` of a per-head table
    ``positions`` (:func:`gather_windows`). Each block of n rows is multiplied by its own window only,
    and the band read out as a view.
    """
    batch, _, size, _ = x.shape
    blocks = windows.shape[1]
    x = x.unflatten(2, (blocks, size // blocks)).permute(1, 2, 0, 3, 4).flatten(2, 3)  # (H, R/n, B·n, d)
    products = (x @ windows.transpose(-1, -2)).unflatten(2, (batch, -1))  # (H, R/n, B, n, n + width)
    return diagonal_band(products, width).permute(2, 0, 1, 3, 4)  # (B, H, R/n, n, width) view


def padding_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """mask (B, Lk) → (B, 1, 1, Lk): 0 for real keys, a large negative number for padded ones.

    Added to the scores, it leaves padded keys no weight after the softmax. The number is half the
    lowest value of the scores' own dtype: finite after adding any score, also in bf16/fp16, so rows
    with every key padded give no NaN (float32's lowest rounds to -inf in bf16, and -inf − (-inf) is
    NaN in the softmax).
    """
    padded = attention_mask[:, None, None, :] == 0  # (B, 1, 1, Lk)
    bias = torch.zeros(padded.shape, dtype=dtype, device=padded.device)
    return bias.masked_fill_(padded, torch.finfo(dtype).min / 2)


def piece_shape(batch: int, heads: int, head_bytes: int, budget: int) -> tuple[int, int]:
    """Sequences and heads per piece of inference attention, so that its bias (head_bytes per head) fits in budget.

    Whole sequences if one fits, else heads of one sequence; at least one of each.
    """
    head_bytes = max(1, head_bytes)  # empty sequences
    if budget >= heads * head_bytes:
        return min(batch, budget // (heads * head_bytes)), heads
    return 1, max(1, budget // head_bytes)


PositionTables = tuple[torch.Tensor | None, torch.Tensor | None]
"""kr and qr of c2p and p2c, None for a term not used: tables (H, 2S, d), or their windows (H, blocks, rows, d)."""


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
        self.scale = 1 / math.sqrt(self.head_size * (1 + len(config.pos_att_type)))
        if self.relative_attention:
            self.max_relative_positions = config.relative_span
            self.pos_dropout = Dropout(config.hidden_dropout_prob)
            if "c2p" in self.pos_att_type:
                self.pos_proj = nn.Linear(config.hidden_size, all_head_size, bias=False)
            if "p2c" in self.pos_att_type:
                self.pos_q_proj = nn.Linear(config.hidden_size, all_head_size)
        self.dropout = Dropout(config.attention_probs_dropout_prob)
        self._reused_projections: dict = {}  # see position_projections

    reuse_position_projections = True
    """Reuse the position projections across inference calls while the weights stay the same."""

    cpu_kernel = True
    """Let CPU inference in float32 use the compiled kernel of :mod:`.cpu_kernel` when it builds."""
    fused_cpu_bias = False
    """Let PyTorch's CPU attention kernel take a bias of the scores' size too (see :meth:`attend`)."""
    piece_bytes = {"cpu": 2 * 2**20, "cuda": 256 * 2**20}
    """Inference attends in pieces whose bias fits in this many bytes, per device type; other devices in one piece."""

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., L, H·w) → (..., H, L, w)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(-2, -3)  # (..., H, L, w)

    def project_qkv(
        self, hidden_states: torch.Tensor, query_states: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q (B, H, Lq, d) from ``query_states`` (default: the hidden states), K and V (B, H, Lk, d)."""
        if query_states is None:
            # One matrix product for all three, the biases added inside it: [q_bias_h, 0, v_bias_h] per head.
            q_bias, v_bias = self.q_bias.view(self.num_heads, -1), self.v_bias.view(self.num_heads, -1)
            bias = torch.stack([q_bias, torch.zeros_like(q_bias), v_bias], dim=1).flatten()  # (3·D,)
            qkv = self.split_heads(F.linear(hidden_states, self.in_proj.weight, bias))  # (B, H, L, 3d)
            q, k, v = qkv.chunk(3, dim=-1)  # 3 × (B, H, L, d), views
        else:
            # The enhanced mask decoder queries with other states than it attends to: un-fuse the weight.
            weight = self.in_proj.weight.view(self.num_heads, 3, self.head_size, -1)  # (H, 3, d, D)
            w_q, w_k, w_v = (weight[:, i].flatten(0, 1) for i in range(3))  # 3 × (D, D)
            q = self.split_heads(F.linear(query_states, w_q, self.q_bias))  # (B, H, Lq, d)
            k = self.split_heads(F.linear(hidden_states, w_k))  # (B, H, Lk, d)
            v = self.split_heads(F.linear(hidden_states, w_v, self.v_bias))  # (B, H, Lk, d)
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
        padding = padding_bias(attention_mask, q.dtype)  # (B, 1, 1, Lk)
        if self.relative_attention and self.pos_att_type:
            context = self.attend_with_positions(q, k, v, rel_embeddings, padding)  # (B, H, Lq, d)
        else:
            context = self.attend(q, k, v, padding)  # (B, H, Lq, d)
        context = context.transpose(1, 2).flatten(2)  # (B, Lq, D)
        if context.shape[1] == attention_mask.shape[1]:
            # Padded queries attend to nothing, as in the released XSoftmax (their rows of probabilities
            # are zero). Only when queries and keys share positions, which is always the case in practice.
            context = context * attention_mask[:, :, None].to(context.dtype)
        return context

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """softmax(q·kᵀ·scale + bias) · v with dropout on the probabilities: (B, H, Lq, d).

        q (B, H, Lq, d), k and v (B, H, Lk, d), bias (B, H or 1, Lq or 1, Lk); a bias of the scores'
        full size is made for the call and becomes the scores (no copy of it). PyTorch's fused kernel
        on GPU (its memory-efficient kernel takes the bias, its gradient and dropout) and on CPU for
        inference with the padding alone as bias (its CPU kernel has neither dropout nor a gradient for
        the bias). Otherwise the same computation spelled out, the softmax in float32: with a bias of
        the scores' size, in pieces that stay in cache, that measured faster than the CPU kernel
        (base size, 2 threads: 2 % at 8×128 in fp32, 4–13 % in bf16), unless ``fused_cpu_bias``.
        """
        dropout = self.dropout.p if self.training else 0.0
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias))
        fused_on_cpu = dropout == 0.0 and not needs_grad and (bias.shape[-2] == 1 or self.fused_cpu_bias)
        if q.is_cuda or fused_on_cpu:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.scale)
        (batch, heads, query_size, _), key_size = q.shape, k.shape[-2]
        q, k_t = q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2)  # (B·H, Lq, d), (B·H, d, Lk)
        if bias.shape == (batch, heads, query_size, key_size):  # a bias made for this call: the scores go into it
            scores = bias.view(batch * heads, query_size, key_size).baddbmm_(q, k_t, alpha=self.scale)
        else:  # (B·H, Lq or 1, Lk): baddbmm broadcasts
            scores = torch.baddbmm(bias.expand(batch, heads, -1, -1).flatten(0, 1), q, k_t, alpha=self.scale)
        # At least float32 (float64 stays: its padding bias is beyond float32's range).
        probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))  # (B·H, Lq, Lk)
        context = self.dropout(probs).to(v.dtype) @ v.flatten(0, 1)  # (B·H, Lq, d)
        return context.unflatten(0, (batch, heads))  # (B, H, Lq, d)

    def attend_with_positions(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_embeddings: torch.Tensor,
                              padding: torch.Tensor) -> torch.Tensor:
        """Attention with the disentangled bias: q (B, H, Lq, d), k and v (B, H, Lk, d) → (B, H, Lq, d).

        With gradients on (training), the bias of the whole batch is built at once (autograd keeps the
        probabilities anyway). Inference goes through pieces of a few sequences, or a few heads of one sequence
        (:func:`piece_shape`), whose bias fits in ``piece_bytes``: on CPU a few MiB, so that a piece's
        products, bias and probabilities stay in cache (a score-sized temporary costs more to bring
        into memory than its products cost to compute); on GPU it bounds the memory of long batches.
        Float32 inference on an AVX-512 CPU goes to the compiled kernel instead (:meth:`kernel_applies`).
        """
        (batch, heads, query_size, _), key_size = q.shape, k.shape[-2]
        if self.kernel_applies(q, k):
            return self.attend_in_kernel(q, k, v, rel_embeddings, padding)
        span = attention_span(query_size, key_size, self.max_relative_positions)
        tables = self.position_projections(rel_embeddings, span)  # (H, 2S, d) each
        rows = self.window_rows(span, query_size, key_size, batch, q.device)  # the same for every piece
        budget = None if torch.is_grad_enabled() else self.piece_bytes.get(q.device.type)
        sequences, head_count = (batch, heads) if budget is None else \
            piece_shape(batch, heads, query_size * key_size * q.element_size(), budget)
        context = None if (sequences, head_count) == (batch, heads) else torch.empty_like(q)
        for first_head in range(0, heads, head_count):
            h = slice(first_head, first_head + head_count)
            # Gathered once for all the sequences: a head's windows are still in cache for its pieces.
            windows = tuple(None if t is None else gather_windows(t[h], r) for t, r in zip(tables, rows, strict=True))
            for first in range(0, batch, sequences):
                b = slice(first, first + sequences)
                bias = self.disentangled_bias(q[b, h], k[b, h], windows, padding[b])  # (b, h, Lq, Lk)
                if context is None:  # one piece: the whole batch
                    return self.attend(q, k, v, bias)
                context[b, h] = self.attend(q[b, h], k[b, h], v[b, h], bias)
        return context

    def kernel_applies(self, q: torch.Tensor, k: torch.Tensor) -> bool:
        """Whether :meth:`attend_in_kernel` computes this call: CPU inference in float32, both terms, Lq = Lk > 0."""
        return (
            self.cpu_kernel
            and not (self.training or torch.is_grad_enabled() or torch.compiler.is_compiling())
            and q.device.type == "cpu"
            and q.dtype == k.dtype == torch.float32
            and q.shape[-2] == k.shape[-2] > 0
            and {"c2p", "p2c"} <= set(self.pos_att_type)
            and self.head_size in cpu_kernel.HEAD_SIZES
            and cpu_kernel.kernel() is not None
        )

    def attend_in_kernel(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_embeddings: torch.Tensor,
                         padding: torch.Tensor) -> torch.Tensor:
        """:meth:`attend_with_positions` in the compiled CPU kernel: q, k, v (B, H, L, d) → (B, H, L, d).

        The kernel takes kr and qr with one column per diagonal: column c holds δ = L − 1 − c, so that
        the entries of consecutive keys of one query are consecutive in memory.
        """
        batch, _, size, _ = q.shape
        span = attention_span(size, size, self.max_relative_positions)
        rows = position_rows(size - 1 - torch.arange(2 * size - 1, device=q.device), span)  # (2L − 1,)
        kr, qr = (t[:, rows].transpose(1, 2).contiguous() for t in self.position_projections(rel_embeddings, span))
        return cpu_kernel.kernel().attend(  # kr, qr (H, d, 2L − 1); kᵀ (B, H, d, L)
            q.contiguous(), k.transpose(-1, -2).contiguous(), v.contiguous(), kr, qr,
            padding.reshape(batch, size), self.scale)

    def window_rows(self, span: int, query_size: int, key_size: int, batch: int,
                    device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The rows of kr and qr (:meth:`position_projections`) in the windows c2p's and p2c's blocks multiply.

        c2p comes in blocks of m queries, p2c in blocks of n keys (:func:`band_block` for a batch of B):
        (Lq/m, m + Lk) and (Lk/n, n + Lq) (:func:`band_window_rows`), None for a term not used. Each
        term's diagonals are the Lq + Lk entries of every distance δ that occurs (clamped to the span)
        and a spare.
        """
        diagonals = torch.arange(query_size + key_size, device=device)  # (Lq + Lk,)
        c2p = p2c = None
        if "c2p" in self.pos_att_type:
            # c2p's rows are queries. Entry u is at δ = Lq − 1 − u (backwards): the band's element [i, j]
            # is then at δ = i − j.
            block = band_block(query_size, key_size, batch, self.head_size)
            c2p = band_window_rows(position_rows(query_size - 1 - diagonals, span), query_size, key_size, block)
        if "p2c" in self.pos_att_type:
            # p2c's rows are keys. Entry u is at δ = u − (Lk − 1): the band's element [j, i] (key j, query i)
            # is then at δ = i − j.
            block = band_block(key_size, query_size, batch, self.head_size)
            p2c = band_window_rows(position_rows(diagonals - (key_size - 1), span), key_size, query_size, block)
        return c2p, p2c

    def disentangled_bias(self, q: torch.Tensor, k: torch.Tensor, windows: PositionTables,
                          padding: torch.Tensor) -> torch.Tensor:
        """c2p + p2c (scaled) + padding, for queries q (B, H, Lq, d) and keys k (B, H, Lk, d): (B, H, Lq, Lk).

        ``windows`` (H, blocks, rows, d) are the rows :meth:`window_rows` of kr and qr; ``padding`` (B, 1, 1, Lk) from
        :func:`padding_bias`. Each term's products are taken against its windows and read back as a
        band (:func:`banded_products`): no index tensor of the scores' size. c2p's rows are
        queries; p2c's rows are keys, so its band is transposed into place.
        """
        batch, heads, query_size, _ = q.shape
        key_size = k.shape[-2]
        kr, qr = windows
        query_block = query_size if kr is None else query_size // kr.shape[1]  # m
        key_block = key_size if qr is None else key_size // qr.shape[1]  # n
        # The terms are read as views of one (B, H, Lq/m, m, Lk/n, n) grid — c2p comes in blocks of m
        # queries, p2c in blocks of n keys — and summed into one new tensor in place: no copy is kept for
        # backward, no in-place change of a view makes autograd copy the gradient, and only one term's
        # products are alive at a time (p2c's are freed before c2p's are made).
        bias = None
        if qr is not None:
            p2c = banded_products(k, qr, query_size)  # (B, H, Lk/n, n, Lq): rows are keys
            bias = p2c.permute(0, 1, 4, 2, 3).unflatten(2, (-1, query_block))  # (B, H, Lq/m, m, Lk/n, n) view
            bias = bias.clone(memory_format=torch.contiguous_format)  # transposed into place
            del p2c
        if kr is not None:
            c2p = banded_products(q, kr, key_size).unflatten(-1, (-1, key_block))  # (B, H, Lq/m, m, Lk/n, n) view
            bias = c2p.clone(memory_format=torch.contiguous_format) if bias is None else bias.add_(c2p)
        bias.add_(padding.unflatten(-1, (-1, key_block)).unsqueeze(2))  # (B, 1, 1, 1, Lk/n, n)
        return bias.view(batch, heads, query_size, key_size)  # (B, H, Lq, Lk)

    def position_projections(self, rel_embeddings: torch.Tensor, span: int) -> PositionTables:
        """kr and qr of the 2S relative positions of the span, split into heads and scaled: (H, 2S, d) each.

        None for a term that ``pos_att_type`` leaves out. They depend on the weights alone, and at base
        size cost a quarter of a layer for one 512-token sequence. So inference (eval mode, no gradient)
        projects the whole table once and reuses it for as long as the weights are the same tensors with
        the same contents: an in-place change (an optimizer step, ``load_state_dict``) bumps a tensor's
        version, ``.to()`` makes new tensors, and either one makes the next call project again. Writes
        through ``.data`` escape the version; ``reuse_position_projections = False`` switches reuse off.
        """
        top = self.max_relative_positions
        reuse = self.reuse_position_projections and not (
            self.training or torch.is_grad_enabled() or torch.compiler.is_compiling())
        if not reuse:
            return self.project_positions(self.pos_dropout(rel_embeddings[top - span : top + span]))
        weights = [rel_embeddings, *(p for name, p in self.named_parameters() if name.startswith("pos_"))]
        device = rel_embeddings.device.type
        # One set per autocast dtype (at most three), so that alternating fp32 and bf16 calls both reuse.
        autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
        state = [(w.data_ptr(), w._version, w.dtype) for w in weights]
        stored = self._reused_projections.get(autocast)  # (weak references to the weights, their state, tables)
        if stored is None or stored[1] != state or any(r() is not w for r, w in zip(stored[0], weights, strict=True)):
            # Weak references: the stored projections must not keep replaced weights alive.
            stored = ([weakref.ref(w) for w in weights], state, self.project_positions(rel_embeddings))
            self._reused_projections[autocast] = stored
        return tuple(t if t is None else t[:, top - span : top + span] for t in stored[2])  # (H, 2S, d) each

    def project_positions(self, rel: torch.Tensor) -> PositionTables:
        """Rows of rel_embeddings (R, D) → kr and qr (H, R, d), scaled; None for a term not used.

        Each head's rows are made contiguous (one matrix product per head, not a transposed view of one
        product): :func:`gather_windows` takes rows of them, 1.5–3× faster so (measured at base size).
        """

        def project(linear: nn.Linear) -> torch.Tensor:
            weight = linear.weight.view(self.num_heads, self.head_size, -1)  # (H, d, D)
            heads = rel @ weight.transpose(1, 2)  # (H, R, d)
            if linear.bias is not None:
                heads = heads + linear.bias.view(self.num_heads, 1, self.head_size)
            return heads * self.scale

        pos_key = project(self.pos_proj) if "c2p" in self.pos_att_type else None
        pos_query = project(self.pos_q_proj) if "p2c" in self.pos_att_type else None
        return pos_key, pos_query

    def train(self, mode: bool = True) -> DisentangledSelfAttention:
        self._reused_projections = {}  # frees them (and training changes the weights anyway)
        return super().train(mode)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # pickle and deepcopy: without the reused projections (weak references)
        state["_reused_projections"] = {}
        return state


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
        self.act_in_place = activation(config.hidden_act, in_place=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, D) → (B, L, intermediate_size)."""
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
            from .pretrained import load_pretrained

            state, config = load_pretrained(pre_trained, config)
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
