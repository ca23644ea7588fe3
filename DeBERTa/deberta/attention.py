"""How the disentangled attention is computed fast, for DeBERTa v1 and v2/v3 alike.

:mod:`DeBERTa.deberta.model` writes the formula: content scores plus the relative terms
c2p[i, j] = q_i · kr[row(i − j)] and p2c[i, j] = k_j · qr[row(i − j)], where ``row`` maps a distance δ
to a row of the projected relative-position table. In v1 ``row`` clamps δ to the span; in v2/v3 it is
the log-bucket position (identity inside ±position_buckets/2, logarithmic beyond, clamped), clamped
the same way. This module computes that formula without what the released code builds: an index
tensor of the scores' size and a product of every query with every table row.

* Banded products. The terms depend on (i, j) only through δ = i − j, so they are constant along
  diagonals. Each block of n queries (keys) is multiplied by the n + Lk (n + Lq) table rows its band
  uses — one row per diagonal, looked up in a (Lq + Lk,) δ → row table — and the band is read out of
  the products as a strided view (:func:`banded_products`). Inside ±position_buckets/2 consecutive
  diagonals are consecutive rows; beyond it several diagonals share a row, which the small δ → row
  table serves the same way. No index tensor of the scores' size, for either family.
* Backward. Training takes the terms' gradients straight from the scores' gradient, skewed once into the
  products' layout (:class:`DisentangledBias`), not back through the band's views; the scores are not
  changed in place under autograd, and dropout's scale multiplies the (B, H, L, d) context, not the
  probabilities (:class:`SoftmaxDropoutContext`). Passes over score-sized tensors that change nothing
  (an all-zero padding bias, an all-ones query mask) are left out on the CPU. q and k in blocks are made
  once and kept for backward; v1's fused Q/K/V gradients are stacked straight into the projection's
  layout (:func:`fused_heads`).
* Dropout. On the CPU the masks take 16 random bits per element, four lanes of a 64-bit draw
  (:func:`dropout_mask`), and are applied with their scale in one pass (:func:`kept`).
* Pieces. Inference goes through the batch a few sequences (or heads) at a time, so that no
  score-sized temporary leaves the cache (:func:`piece_shape`).
* The compiled CPU kernel (:mod:`.cpu_kernel`) for float32 inference on AVX2 or AVX-512, which takes kr and qr
  with one column per diagonal, whatever ``row`` is, and computes a score's three products as one
  (:meth:`FastDisentangledAttention.kernel_tables`).
* Reuse. The projected position tables depend on the weights alone: inference projects them once.
* Export. The above choose blocks, pieces and the span with Python integers from the batch's shape,
  which ``torch.export`` / ``torch.onnx.export`` would bake into the graph (right at the traced length
  only). While a graph is exported (:func:`exporting`) the attention is written from runtime shapes
  instead (:meth:`FastDisentangledAttention.attend_for_export`), so that one graph serves every length.

:class:`FastDisentangledAttention` holds all of it; the model's attention classes inherit it and
define the projections. tests/test_fast_attention.py and tests/test_attention_v2.py check it against
the formula written out with explicit indices.

Shape legend as in :mod:`DeBERTa.deberta.model`; P is half the rows of the relative-position table
(k, or ``position_buckets``), S ≤ P the half-span a call uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import cpu_kernel


# --------------------------------------------------------------------------------------------------
# Switches
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AttentionOptions:
    """How the fast paths of this module may compute; the results are the same either way (within rounding).

    Read with :func:`current_options`, changed for a block with :func:`options`.
    """

    reuse_position_projections: bool = True
    """Reuse the position projections (and v2/v3's normalised table) across inference calls while the
    weights stay the same."""
    cpu_kernel: bool = True
    """Let CPU inference in float32 use the compiled kernel of :mod:`.cpu_kernel` when it builds."""
    onednn_linear: bool = True
    """Let CPU float32 compute the layers' linear maps with oneDNN (:mod:`.cpu_linear`): in inference, and in
    training the forward product and the input's gradient."""
    fused_cpu_bias: bool = False
    """Let PyTorch's CPU attention kernel take a bias of the scores' size too (see
    :meth:`FastDisentangledAttention.attend`)."""
    piece_bytes: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({"cpu": 2 * 2**20, "cuda": 256 * 2**20}))
    """Inference attends in pieces whose bias fits in this many bytes, per device type; a device type not
    named (other devices) in one piece. A new mapping replaces the whole default."""


_current = AttentionOptions()
_options_lock = threading.Lock()


def current_options() -> AttentionOptions:
    """The options in force (:func:`options`)."""
    return _current


@contextlib.contextmanager
def options(**changes: object) -> Iterator[AttentionOptions]:
    """Change the :class:`AttentionOptions` fields named for the duration of the block; the previous ones come back
    after, also on an exception. Blocks nest.

    The options are process-wide, not per thread (a model called from several threads sees the same ones): a
    block is meant to wrap a measurement or a test, as in ``with attention.options(cpu_kernel=False): …``.
    Under ``torch.compile`` the options are guarded like any global, so changing them compiles again.
    An unknown name is a TypeError, one line.
    """
    global _current
    unknown = set(changes) - {field.name for field in dataclasses.fields(AttentionOptions)}
    if unknown:
        raise TypeError(f"unknown attention option {', '.join(sorted(unknown))}; known: "
                        + ", ".join(field.name for field in dataclasses.fields(AttentionOptions)))
    if "piece_bytes" in changes:
        changes["piece_bytes"] = types.MappingProxyType(dict(changes["piece_bytes"]))  # type: ignore[call-overload]
    with _options_lock:
        previous = _current
        _current = dataclasses.replace(previous, **changes)
        chosen = _current
    try:
        yield chosen
    finally:
        with _options_lock:
            _current = previous


# --------------------------------------------------------------------------------------------------
# Relative positions: distance → table row
# --------------------------------------------------------------------------------------------------
def attention_span(query_size: int, key_size: int, max_relative_positions: int) -> int:
    """S without buckets: distances are clamped to [−S, S), and rows k−S … k+S−1 of rel_embeddings are used."""
    return min(max(query_size, key_size), max_relative_positions)


def log_bucket_position(distances: torch.Tensor, buckets: int, max_position: int) -> torch.Tensor:
    """v2/v3's bucket of each relative distance δ: δ itself inside ±buckets/2, logarithmic beyond.

    With mid = buckets/2, |δ| ≤ mid keeps δ; farther distances get sign(δ)·(mid + ⌈log(|δ|/mid) /
    log((max_position − 1)/mid) · (mid − 1)⌉), which reaches ±(buckets − 1) at |δ| = max_position − 1 and
    grows past it (the table lookup clamps). Written as the released code computes it, in float32, so
    that the rounding at each ceiling is the same.
    """
    mid = buckets // 2
    sign = torch.sign(distances)
    magnitude = torch.where((distances < mid) & (distances > -mid), mid - 1, distances.abs())  # no log(0)
    log_position = torch.ceil(
        torch.log(magnitude / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    return torch.where(magnitude <= mid, distances, (log_position * sign).long())


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


def row_blocks(x: torch.Tensor, blocks: int) -> torch.Tensor:
    """x (B, H, R, d) → (H, R/n, B·n, d), a copy: the rows of each block of n, of every sequence, together, as
    :func:`banded_products` multiplies them by the block's window in one matrix product."""
    return x.unflatten(2, (blocks, -1)).permute(1, 2, 0, 3, 4).flatten(2, 3)


def banded_products(x: torch.Tensor, windows: torch.Tensor, width: int) -> torch.Tensor:
    """band[b, h, r, c] = x[b, h, r] · positions[h, rows[R − 1 − r + c]]: (B, H, R/n, n, width), in blocks.

    x (B, H, R, d); windows (H, R/n, n + width, d): the rows :func:`band_window_rows` of a per-head table
    ``positions`` (:func:`gather_windows`). Each block of n rows is multiplied by its own window only,
    and the band read out as a view.
    """
    return banded_products_of_blocks(row_blocks(x, windows.shape[1]), windows, width, x.shape[0])


def banded_products_of_blocks(x_blocks: torch.Tensor, windows: torch.Tensor, width: int, batch: int) -> torch.Tensor:
    """:func:`banded_products` of rows already in blocks, x_blocks (H, R/n, B·n, d) (:func:`row_blocks`)."""
    products = (x_blocks @ windows.transpose(-1, -2)).unflatten(2, (batch, -1))  # (H, R/n, B, n, n + width)
    return diagonal_band(products, width).permute(2, 0, 1, 3, 4)  # (B, H, R/n, n, width) view


def skew(band: torch.Tensor, columns: int) -> torch.Tensor:
    """The inverse of :func:`diagonal_band`: a new (..., R, columns) tensor whose band is ``band`` (..., R, width),
    zero elsewhere.

    One pass to copy the band in and zeros written only outside it (R of the ``columns`` entries of a row),
    where autograd's backward of the band's views fills the products' size with zeros twice and copies twice.
    """
    *lead, rows, width = band.shape
    products = torch.empty(*lead, rows, columns, dtype=band.dtype, device=band.device)
    diagonal_band(products, width).copy_(band)
    flat = products.flatten(-2)  # the band is rows of columns − 1 entries from entry R − 1 on (diagonal_band)
    end = rows - 1 + rows * (columns - 1)
    flat[..., : rows - 1].zero_()
    flat[..., rows - 1 : end].unflatten(-1, (rows, columns - 1))[..., width:].zero_()
    flat[..., end:].zero_()
    return products


def banded_products_backward(x_blocks: torch.Tensor, windows: torch.Tensor,
                             grad_band: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients of :func:`banded_products` for the gradient of its band: (grad of x, grad of the windows).

    x_blocks (H, R/n, B·n, d), x in blocks (:func:`row_blocks`, kept from forward), windows (H, R/n, n + width, d),
    grad_band (B, H, R/n, n, width), any strides; the gradient of x is (B, H, R, d). The band's gradient is
    skewed back into the products' layout (:func:`skew`), which the two products of the backward take as they
    are: no gather, no index tensor. In the gradient's dtype (autocast's, in backward).
    """
    batch, heads, blocks, block, _ = grad_band.shape
    columns = windows.shape[2]
    dtype = grad_band.dtype
    grad = skew(grad_band.permute(1, 2, 0, 3, 4), columns).flatten(2, 3)  # (H, R/n, B·n, n + width)
    grad_windows = grad.transpose(-1, -2) @ x_blocks.to(dtype)  # (H, R/n, n + width, d)
    grad_x = (grad @ windows.to(dtype)).unflatten(2, (batch, -1))  # (H, R/n, B, n, d)
    grad_x = grad_x.permute(2, 0, 1, 3, 4).reshape(batch, heads, blocks * block, -1)  # (B, H, R, d)
    return grad_x.to(x_blocks.dtype), grad_windows.to(windows.dtype)


def band_bias(q: torch.Tensor, k: torch.Tensor, kr: torch.Tensor | None, qr: torch.Tensor | None,
              padding: torch.Tensor, blocks: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None),
              beyond_cache: bool = False) -> torch.Tensor:
    """c2p + p2c (scaled) + padding: (B, H, Lq, Lk), for queries q (B, H, Lq, d) and keys k (B, H, Lk, d).

    kr, qr: the windows (H, blocks, rows, d) of :meth:`FastDisentangledAttention.window_rows`, None for a term
    not used; ``padding`` (B, 1, 1 or Lq, Lk) from :func:`padding_bias`. Each term's products are taken against
    its windows and read back as a band (:func:`banded_products`): no index tensor of the scores' size.
    c2p's rows are queries; p2c's rows are keys, so its band is transposed into place. ``blocks``: q and k in
    blocks (:func:`row_blocks`) where the caller made them already. ``beyond_cache``: the bias is too large
    for the CPU's cache (a training batch, not a piece of inference). No gradient: see :class:`DisentangledBias`.
    """
    batch, heads, query_size, _ = q.shape
    key_size = k.shape[-2]
    q_blocks, k_blocks = blocks
    if kr is not None and q_blocks is None:
        q_blocks = row_blocks(q, kr.shape[1])
    if qr is not None and k_blocks is None:
        k_blocks = row_blocks(k, qr.shape[1])
    query_block = query_size if kr is None else query_size // kr.shape[1]  # m
    key_block = key_size if qr is None else key_size // qr.shape[1]  # n
    # The terms are read as views of one (B, H, Lq/m, m, Lk/n, n) grid — c2p comes in blocks of m
    # queries, p2c in blocks of n keys — and summed into one new tensor in place; only one term's products
    # are alive at a time. Beyond the cache p2c's band is first copied out along its rows (keys) and then
    # added transposed: read straight out of the products with their row stride, the transposing pass
    # measured slower there (though one pass less, it is the faster way for a piece that stays in cache).
    terms = []
    if qr is not None:  # rows are keys: (B, H, Lk/n, n, Lq) → (B, H, Lq/m, m, Lk/n, n) view
        def p2c() -> torch.Tensor:
            band = banded_products_of_blocks(k_blocks, qr, query_size, batch)  # (B, H, Lk/n, n, Lq)
            if beyond_cache:
                band = band.reshape(batch, heads, -1, key_block, query_size)  # a copy, along rows
            return band.permute(0, 1, 4, 2, 3).unflatten(2, (-1, query_block))
        terms.append(p2c)
    if kr is not None:
        terms.append(lambda: banded_products_of_blocks(q_blocks, kr, key_size, batch).unflatten(-1, (-1, key_block)))
    if beyond_cache:
        terms.reverse()  # c2p's band copied first (no transposition), p2c's copy added to it
    bias = terms[0]().clone(memory_format=torch.contiguous_format)
    for term in terms[1:]:
        bias.add_(term())
    if not padding_is_zero(padding):
        padding = padding.unflatten(-1, (-1, key_block))  # (B, 1, 1 or Lq, Lk/n, n)
        padding = padding.unsqueeze(2) if padding.shape[2] == 1 else padding.unflatten(2, (-1, query_block))
        bias.add_(padding)  # (B, 1, 1 or Lq/m, 1 or m, Lk/n, n)
    return bias.view(batch, heads, query_size, key_size)


def may_branch_on(data: torch.Tensor) -> bool:
    """Whether a pass may be left out by looking at ``data``'s values: on the CPU, and not while compiled or
    exported (a branch on data breaks the graph; on a GPU reading a value waits for the device)."""
    return data.device.type == "cpu" and not (torch.compiler.is_compiling() or exporting())


def padding_is_zero(padding: torch.Tensor) -> bool:
    """Whether a padding bias masks nothing, so that adding it (a pass over the scores' size) can be left out.

    Asked only where :func:`may_branch_on` allows: elsewhere the bias is added anyway. (transformers drops an
    all-ones mask likewise.)
    """
    return may_branch_on(padding) and not bool(padding.any())


class DisentangledBias(torch.autograd.Function):
    """:func:`band_bias` with a backward written for it: (B, H, Lq, Lk) from q, k, the windows of kr and qr, padding.

    Autograd would take the bias's gradient back through the views of each band (a zero-filled copy of the
    products per view). Here each term's gradient is the bias's gradient skewed into the products' layout
    once (:func:`banded_products_backward`). The padding has no gradient. It keeps q and k in blocks
    (:func:`row_blocks`), which both passes multiply, instead of q and k: made once, not again in backward.
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, kr: torch.Tensor | None, qr: torch.Tensor | None,
                padding: torch.Tensor) -> torch.Tensor:
        blocks = (None if kr is None else row_blocks(q, kr.shape[1]),
                  None if qr is None else row_blocks(k, qr.shape[1]))
        ctx.save_for_backward(*blocks, kr, qr)
        return band_bias(q, k, kr, qr, padding, blocks, beyond_cache=True)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q_blocks, k_blocks, kr, qr = ctx.saved_tensors
        grad_q = grad_k = grad_kr = grad_qr = None
        if kr is not None and (ctx.needs_input_grad[0] or ctx.needs_input_grad[2]):
            band = grad.unflatten(2, (kr.shape[1], -1))  # (B, H, Lq/m, m, Lk): rows are queries
            grad_q, grad_kr = banded_products_backward(q_blocks, kr, band)
        if qr is not None and (ctx.needs_input_grad[1] or ctx.needs_input_grad[3]):
            band = grad.transpose(-1, -2).unflatten(2, (qr.shape[1], -1))  # (B, H, Lk/n, n, Lq): rows are keys
            grad_k, grad_qr = banded_products_backward(k_blocks, qr, band)
        return grad_q, grad_k, grad_kr, grad_qr, None


# --------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------
def padding_bias(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """mask (B, Lk) → (B, 1, 1, Lk), or (B, Lq, Lk) → (B, 1, Lq, Lk): 0 where attending is allowed, else very negative.

    Added to the scores, it leaves masked keys no weight after the softmax. The number is half the
    lowest value of the scores' own dtype: finite after adding any score, also in bf16/fp16, so rows
    with every key masked give no NaN (float32's lowest rounds to -inf in bf16, and -inf − (-inf) is
    NaN in the softmax).
    """
    padded = (attention_mask[:, None, None, :] if attention_mask.dim() == 2 else attention_mask[:, None]) == 0
    bias = torch.zeros(padded.shape, dtype=dtype, device=padded.device)
    return bias.masked_fill_(padded, torch.finfo(dtype).min / 2)


def token_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """The (B, L) mask of real tokens: the mask itself, or of a (B, L, L) mask the keys some query may attend to.

    As transformers' DeBERTa-v2 encoder reads a 3-D mask for its convolution.
    """
    return attention_mask if attention_mask.dim() == 2 else (attention_mask != 0).any(-2).to(attention_mask.dtype)


def query_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, Lq): 1 for queries that attend to at least one key (all real tokens of a 2-D mask), else 0."""
    return attention_mask if attention_mask.dim() == 2 else (attention_mask != 0).any(-1).to(attention_mask.dtype)


def piece_shape(batch: int, heads: int, head_bytes: int, budget: int) -> tuple[int, int]:
    """Sequences and heads per piece of inference attention, so that its bias (head_bytes per head) fits in budget.

    Whole sequences if one fits, else heads of one sequence; at least one of each.
    """
    head_bytes = max(1, head_bytes)  # empty sequences
    if budget >= heads * head_bytes:
        return min(batch, budget // (heads * head_bytes)), heads
    return 1, max(1, budget // head_bytes)


# --------------------------------------------------------------------------------------------------
# Reusing what depends on the weights alone
# --------------------------------------------------------------------------------------------------
def reused(store: dict, key: object, weights: list[torch.Tensor], compute: Callable[[], object]) -> object:
    """``compute()``, or what it returned before for ``key`` while ``weights`` are the same tensors, unchanged.

    An in-place change (an optimizer step, ``load_state_dict``) bumps a tensor's version, ``.to()``
    makes new tensors; either one computes again. Writes through ``.data`` escape the version. Weak
    references: what is stored does not keep replaced weights alive.
    """
    # An inference tensor (made under torch.inference_mode, e.g. the encoder's normalised table) has no
    # version counter; it cannot change outside inference mode, and the same tensor is the same table.
    state = [(w.data_ptr(), -1 if w.is_inference() else w._version, w.dtype) for w in weights]
    stored = store.get(key)  # (weak references to the weights, their state, the value)
    if stored is None or stored[1] != state or any(r() is not w for r, w in zip(stored[0], weights, strict=True)):
        stored = ([weakref.ref(w) for w in weights], state, compute())
        store[key] = stored
    return stored[2]


def exporting() -> bool:
    """Whether a graph is being exported (``torch.export``, ``torch.onnx.export``), not run."""
    # torch.onnx is imported on first use (~0.1 s): while it is not imported, no ONNX export is running.
    onnx = sys.modules.get("torch.onnx")
    return torch.compiler.is_exporting() or (onnx is not None and onnx.is_in_onnx_export())


def reuse_allowed(module: nn.Module) -> bool:
    """Inference: eval mode, no gradient, not being compiled."""
    return not (module.training or torch.is_grad_enabled() or torch.compiler.is_compiling())


def autocast_key(device: torch.device) -> object:
    """One stored value per autocast dtype (at most three), so that alternating fp32 and bf16 calls both reuse."""
    return torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type)


def project_heads(rows: torch.Tensor, linear: nn.Linear, heads: int, scale: float) -> torch.Tensor:
    """Rows (R, D) through ``linear``, split into heads and scaled: (H, R, d).

    One matrix product with the bias and the scale folded in, then each head's rows made contiguous (not
    left a transposed view of the product): :func:`gather_windows` takes rows of them, 1.5–3× faster so
    (measured at base size).
    """
    if linear.bias is None:
        projected = (rows @ linear.weight.t()).mul_(scale)  # (R, H·d)
    else:  # scale · bias + scale · rows · Wᵀ in one product
        projected = torch.addmm(linear.bias, rows, linear.weight.t(), beta=scale, alpha=scale)  # (R, H·d)
    return projected.unflatten(-1, (heads, -1)).transpose(0, 1).contiguous()  # (H, R, d)


def fused_heads(fused: torch.Tensor, heads: int, parts: int) -> tuple[torch.Tensor, ...]:
    """(B, L, H·parts·w), each head's ``parts`` blocks of w side by side → ``parts`` views (B, H, L, w).

    Split per head first and then into the parts (``unbind``), so that backward stacks the parts' gradients
    straight into the (B, L, H·parts·w) layout of the fused product's gradient, in one pass. (Splitting
    (B, H, L, parts·w) into chunks concatenates them back into that layout, which its linear's
    backward then copies again into (B, L, ...).)
    """
    return tuple(x.transpose(1, 2) for x in fused.unflatten(-1, (heads, parts, -1)).unbind(-2))


def kept(x: torch.Tensor, keep: torch.Tensor, scale: float = 1.0, out: torch.Tensor | None = None) -> torch.Tensor:
    """x · scale where the bool mask ``keep`` is set, else 0 (as x · keep · scale: NaN stays NaN), in one pass;
    ``out`` may be x itself.

    On the CPU the mask is read as bytes by ``addcmul``, which multiplies by it and by the scale in one
    vectorised pass: ``torch.where`` is not vectorised there, and ``x * keep`` first copies the mask into
    x's dtype.
    """
    if torch.compiler.is_compiling():  # the compiler fuses it anyway, and takes no out=
        return torch.where(keep, x * scale, 0.0)
    if x.device.type != "cpu":  # one fused kernel on a GPU either way
        return torch.where(keep, x if scale == 1.0 else x * scale, x.new_zeros(()), out=out)
    return torch.addcmul(x.new_zeros(()), x, keep.view(torch.uint8), value=scale, out=out)


# --------------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------------
DROPOUT_LEVELS = 2**16
"""On the CPU dropout's probability is a multiple of 1/DROPOUT_LEVELS (:func:`dropout_mask`)."""


def dropout_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """Dropout's draw: a bool mask of ``shape``, True for the elements kept, and the scale of the kept ones.

    On the CPU (not compiled) each element takes 16 random bits: 64-bit random words drawn over their whole
    range are read as four int16 lanes each, and a lane keeps its element when it is at least a threshold.
    The drop probability is then p' = round(p·2¹⁶)/2¹⁶ (within 2⁻¹⁷ of p; at most 1 − 2⁻¹⁶ for p < 1) and the
    scale 1/(1 − p'), so that the expectation of a kept-and-scaled element is exact. ``rand(shape) >= p``
    (p to 2⁻²⁴) draws a 32-bit word and converts it to a float per element: four times the random words and
    a float pass more; dropout's draws were the largest cost of a CPU training step after the matrix
    products. Elsewhere — GPU, compiled graphs, whose generators work per element — ``rand(shape) >= p``
    and 1/(1 − p). Both draw from the default generator, so ``torch.manual_seed`` repeats them.
    p = 1 drops everything (scale 0).
    """
    if p >= 1.0:
        return torch.zeros(shape, dtype=torch.bool, device=device), 0.0
    if device.type != "cpu" or torch.compiler.is_compiling():
        return torch.rand(shape, device=device) >= p, 1 / (1 - p)
    dropped = min(round(p * DROPOUT_LEVELS), DROPOUT_LEVELS - 1)  # lanes below the threshold: drop
    count = math.prod(shape)
    # random_ from int64's lowest with no upper end draws whole 64-bit words: every 16-bit lane is uniform.
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-(2**63), None)
    lanes = words.view(torch.int16)[:count].view(shape)
    return lanes >= dropped - DROPOUT_LEVELS // 2, DROPOUT_LEVELS / (DROPOUT_LEVELS - dropped)


class MaskedScale(torch.autograd.Function):
    """x · keep · scale for a bool mask ``keep``, keeping the mask (one byte per element) for backward.

    Autograd's ``x * keep * scale`` keeps the same mask but copies it into x's dtype and takes two passes, forward
    and backward; :func:`kept` takes one.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return kept(x, keep, scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (keep,) = ctx.saved_tensors
        return kept(grad, keep, ctx.scale), None, None


def apply_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-mode dropout of x with probability p: zeros where dropped, the rest scaled up (:func:`dropout_mask`).

    On the GPU ``native_dropout``, one fused kernel that keeps a bool mask. Elsewhere the mask of
    :func:`dropout_mask` applied by :class:`MaskedScale`: PyTorch's CPU dropout draws with ``bernoulli_``
    (slower than the draw here) and keeps a float noise tensor for backward, four bytes per element.
    """
    if p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    if x.is_cuda:
        return torch.native_dropout(x, p, True)[0]
    keep, scale = dropout_mask(x.shape, p, x.device)
    return MaskedScale.apply(x, keep, scale)


class SoftmaxDropoutContext(torch.autograd.Function):
    """dropout(softmax(scores)) · v, keeping for backward the probabilities, a one-byte mask and v.

    Written as three operations, autograd keeps the probabilities (for the softmax's gradient) and
    the dropped-out probabilities (for the product's): two float tensors of the scores' size, the
    largest of a training step. Here the dropped-out ones are made again in backward from the
    probabilities and the mask. Same random draws as :func:`apply_dropout` (:func:`dropout_mask`), so the
    same results up to rounding: dropout's scale multiplies the (N, Lq, d) context and its gradient, not
    a tensor of the scores' size, which saves a pass over the scores' size forward and two backward.
    """

    @staticmethod
    def forward(ctx, scores: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
        """scores (N, Lq, Lk), v (N, Lk, d) → (N, Lq, d); softmax in at least float32."""
        probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
        keep, scale = dropout_mask(probs.shape, p, probs.device)  # bool
        ctx.scale, ctx.scores_dtype = scale, scores.dtype
        ctx.save_for_backward(probs, keep, v)
        return (kept(probs, keep).to(v.dtype) @ v).mul_(scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        probs, keep, v = ctx.saved_tensors
        grad = grad.to(v.dtype) * ctx.scale  # (N, Lq, d): the dropout's scale
        dropped = kept(probs, keep).to(v.dtype)  # made again, unscaled: (N, Lq, Lk)
        grad_v = dropped.transpose(-1, -2) @ grad
        del dropped
        grad_probs = (grad @ v.transpose(-1, -2)).to(probs.dtype)
        grad_probs = kept(grad_probs, keep, out=grad_probs)
        if probs.device.type == "cpu" and ctx.scores_dtype != probs.dtype:
            # ATen's CPU kernel has no backward from float32 probabilities to half scores (CUDA's has).
            grad_scores = torch.ops.aten._softmax_backward_data(grad_probs, probs, -1, probs.dtype).to(ctx.scores_dtype)
        else:
            grad_scores = torch.ops.aten._softmax_backward_data(grad_probs, probs, -1, ctx.scores_dtype)
        return grad_scores, grad_v, None


PositionTables = tuple[torch.Tensor | None, torch.Tensor | None]
"""kr and qr of c2p and p2c, None for a term not used: tables (H, 2S, d), or their windows (H, blocks, rows, d)."""


# --------------------------------------------------------------------------------------------------
# The attention computation both families share
# --------------------------------------------------------------------------------------------------
class FastDisentangledAttention(nn.Module):
    """The computation of disentangled self-attention; subclasses define the projections.

    A subclass sets ``num_heads``, ``head_size``, ``pos_att_type``, ``relative_attention``, ``scale``,
    ``dropout`` and, with relative attention, ``max_relative_positions`` (P, half the table),
    ``position_buckets`` and ``bucket_max_position`` (k of the log scale) and ``pos_dropout``; and it
    implements :meth:`project_qkv`, :meth:`project_positions` and :meth:`position_weights`.
    """

    num_heads: int
    head_size: int
    pos_att_type: tuple[str, ...]
    relative_attention: bool
    scale: float
    max_relative_positions: int
    position_buckets: int = -1
    bucket_max_position: int = -1

    def __init__(self) -> None:
        super().__init__()
        self._reused_projections: dict = {}  # see position_projections

    # ----- what a subclass defines --------------------------------------------------------------------
    def project_qkv(self, hidden_states: torch.Tensor, query_states: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Q (B, H, Lq, d) from ``query_states`` (default: the hidden states), K and V (B, H, Lk, d)."""
        raise NotImplementedError

    def project_positions(self, rel: torch.Tensor) -> PositionTables:
        """Rows of rel_embeddings (R, D) → kr and qr (H, R, d), scaled; None for a term not used."""
        raise NotImplementedError

    def position_weights(self) -> list[torch.Tensor]:
        """The parameters :meth:`project_positions` reads (the reuse of the projections watches them)."""
        raise NotImplementedError

    # ----- the computation ----------------------------------------------------------------------------
    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(..., L, H·w) → (..., H, L, w)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(-2, -3)  # (..., H, L, w)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        rel_embeddings: torch.Tensor | None = None,
        query_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, Lk, D), mask (B, Lk) or (B, Lq, Lk), rel_embeddings (2P, D) → context (B, Lq, D)."""
        q, k, v = self.project_qkv(hidden_states, query_states)
        padding = padding_bias(attention_mask, q.dtype)  # (B, 1, 1 or Lq, Lk)
        if exporting():
            context = self.attend_for_export(q, k, v, rel_embeddings, padding)  # (B, H, Lq, d)
        elif self.relative_attention and self.pos_att_type:
            context = self.attend_with_positions(q, k, v, rel_embeddings, padding)  # (B, H, Lq, d)
        else:
            context = self.attend(q, k, v, padding)  # (B, H, Lq, d)
        context = context.transpose(1, 2).flatten(2)  # (B, Lq, D)
        queries = query_mask(attention_mask)
        if context.shape[1] == queries.shape[1] and not self.every_query_attends(queries):
            # Queries that may attend to nothing (padding) get a zero context, as in the released XSoftmax
            # (their rows of probabilities are zero). Only when queries and keys share positions, which is
            # always the case in practice.
            context = context * queries[:, :, None].to(context.dtype)
        return context

    @staticmethod
    def every_query_attends(queries: torch.Tensor) -> bool:
        """Whether the (B, Lq) query mask is all ones, so that multiplying the context by it changes nothing.

        Asked only where :func:`may_branch_on` allows: elsewhere the multiplication runs anyway. Spares a
        pass over the context forward and backward for batches without padding.
        """
        return may_branch_on(queries) and bool(queries.all())

    def span(self, query_size: int, key_size: int) -> int:
        """S: the call uses rows P − S … P + S − 1 of the relative-position table.

        Without buckets, min(max(Lq, Lk), P). With buckets every distance of a sequence no longer than
        position_buckets/2 is its own bucket, so the same; a longer one reaches the logarithmic rows: the
        whole table.
        """
        longest = max(query_size, key_size)
        if self.position_buckets > 0 and longest > self.position_buckets // 2:
            return self.max_relative_positions
        return min(longest, self.max_relative_positions)

    def position_rows(self, distances: torch.Tensor, span: int) -> torch.Tensor:
        """Rows of the 2S projected positions for relative distances δ: clamp(bucket(δ) + S, 0, 2S − 1)."""
        if self.position_buckets > 0:
            distances = log_bucket_position(distances, self.position_buckets, self.bucket_max_position)
        return torch.clamp(distances + span, 0, 2 * span - 1)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """softmax(q·kᵀ·scale + bias) · v with dropout on the probabilities: (B, H, Lq, d).

        q (B, H, Lq, d), k and v (B, H, Lk, d), bias (B, H or 1, Lq or 1, Lk); a bias of the scores'
        full size is made for the call and becomes the scores (no copy of it). PyTorch's fused kernel
        on GPU (its memory-efficient kernel takes the bias, its gradient and dropout) and on CPU for
        inference with the padding alone as bias (its CPU kernel has neither dropout nor a gradient for
        the bias). Otherwise the same computation spelled out, the softmax in float32: with a bias of
        the scores' size, in pieces that stay in cache, that measured faster than the CPU kernel
        (base size, 2 threads: 2 % at 8×128 in fp32, 4–13 % in bf16), unless the option ``fused_cpu_bias``
        (:func:`options`).
        """
        dropout = self.dropout.p if self.training else 0.0
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v, bias))
        fused_on_cpu = dropout == 0.0 and not needs_grad and (bias.shape[-2] == 1 or _current.fused_cpu_bias)
        if q.is_cuda or fused_on_cpu:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout, scale=self.scale)
        (batch, heads, query_size, _), key_size = q.shape, k.shape[-2]
        q, k_t = q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2)  # (B·H, Lq, d), (B·H, d, Lk)
        if bias.shape == (batch, heads, query_size, key_size) and not bias.requires_grad:
            # A bias made for this call: the scores go into it. (With a gradient, not: changing a view of the
            # bias in place makes autograd copy the scores' gradient three times.)
            scores = bias.view(batch * heads, query_size, key_size).baddbmm_(q, k_t, alpha=self.scale)
        else:  # (B·H, Lq or 1, Lk): baddbmm broadcasts
            scores = torch.baddbmm(bias.expand(batch, heads, -1, -1).flatten(0, 1), q, k_t, alpha=self.scale)
        if needs_grad and dropout > 0.0:
            context = SoftmaxDropoutContext.apply(scores, v.flatten(0, 1), dropout)  # (B·H, Lq, d)
        else:
            # At least float32 (float64 stays: its padding bias is beyond float32's range).
            probs = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
            context = self.dropout(probs).to(v.dtype) @ v.flatten(0, 1)  # (B·H, Lq, d)
        return context.unflatten(0, (batch, heads))  # (B, H, Lq, d)

    def attend_with_positions(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_embeddings: torch.Tensor,
                              padding: torch.Tensor) -> torch.Tensor:
        """Attention with the disentangled bias: q (B, H, Lq, d), k and v (B, H, Lk, d) → (B, H, Lq, d).

        With gradients on (training), the bias of the whole batch is built at once (autograd keeps the
        probabilities anyway). Inference goes through pieces of a few sequences, or a few heads of one sequence
        (:func:`piece_shape`), whose bias fits in the option ``piece_bytes`` (:func:`options`): on CPU a few
        MiB, so that a piece's products, bias and probabilities stay in cache (a score-sized temporary costs
        more to bring into memory than its products cost to compute); on GPU it bounds the memory of long batches.
        Float32 inference on an AVX2 or AVX-512 CPU goes to the compiled kernel instead (:meth:`kernel_applies`).
        """
        (batch, heads, query_size, _), key_size = q.shape, k.shape[-2]
        if self.kernel_applies(q, k, padding):
            return self.attend_in_kernel(q, k, v, rel_embeddings, padding)
        span = self.span(query_size, key_size)
        tables = self.position_projections(rel_embeddings, span)  # (H, 2S, d) each
        rows = self.window_rows(span, query_size, key_size, batch, q.device)  # the same for every piece
        budget = None if torch.is_grad_enabled() else _current.piece_bytes.get(q.device.type)
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

    def attend_for_export(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_embeddings: torch.Tensor | None,
                          padding: torch.Tensor) -> torch.Tensor:
        """The attention written for an exported graph: q (B, H, Lq, d), k and v (B, H, Lk, d) → (B, H, Lq, d).

        softmax(q·kᵀ·scale + c2p + p2c + padding)·v with no branch on a shape: kr and qr are projected from
        the whole relative-position table, and each term is read as the band (:func:`diagonal_band`, a
        reshape and a slice in ONNX) of one product (B, H, R, Lq + Lk) whose columns are the distances that
        occur. Every distance is looked up in the whole table (span P): S ≤ P of :meth:`span` selects the same
        rows, since S covers every distance of a call or S = P. Inference only (no dropout).
        """
        query_size, key_size = q.shape[-2], k.shape[-2]
        scores = (q @ k.transpose(-1, -2)) * self.scale + padding  # (B, H, Lq, Lk)
        if self.relative_attention and self.pos_att_type:
            kr, qr = self.project_positions(rel_embeddings)  # (H, 2P, d) each, scaled
            diagonals = torch.arange(query_size + key_size, device=q.device)  # (Lq + Lk,)
            whole = self.max_relative_positions
            if kr is not None:  # c2p: entry u at δ = Lq − 1 − u, so that the band's [i, j] is at δ = i − j
                rows = self.position_rows(query_size - 1 - diagonals, whole)
                scores = scores + diagonal_band(q @ kr[:, rows].transpose(-1, -2), key_size)
            if qr is not None:  # p2c: rows are keys, entry u at δ = u − (Lk − 1)
                rows = self.position_rows(diagonals - (key_size - 1), whole)
                scores = scores + diagonal_band(k @ qr[:, rows].transpose(-1, -2), query_size).transpose(-1, -2)
        probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
        return probs @ v

    def kernel_applies(self, q: torch.Tensor, k: torch.Tensor, padding: torch.Tensor | None = None) -> bool:
        """Whether :meth:`attend_in_kernel` computes this call: CPU inference in float32, both terms, Lq = Lk > 0,
        a padding mask (not a 3-D one)."""
        return (
            _current.cpu_kernel
            and not (self.training or torch.is_grad_enabled() or torch.compiler.is_compiling())
            and q.device.type == "cpu"
            and q.dtype == k.dtype == torch.float32
            and q.shape[-2] == k.shape[-2] > 0
            and (padding is None or padding.shape[-2] == 1)
            and {"c2p", "p2c"} <= set(self.pos_att_type)
            and self.head_size in cpu_kernel.HEAD_SIZES
            and cpu_kernel.kernel() is not None
        )

    def attend_in_kernel(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rel_embeddings: torch.Tensor,
                         padding: torch.Tensor) -> torch.Tensor:
        """:meth:`attend_with_positions` in the compiled CPU kernel: q, k, v (B, H, L, d) → (B, H, L, d).

        The kernel computes each score as (q_i + qu_c)·(k_j·scale + kr_c) − diagonal_c + padding_j: the three
        products in one (:meth:`kernel_tables`). Its context comes back as a view of (B, L, H, d), the
        layout the output projection reads.
        """
        batch, _, size, _ = q.shape
        kr, qu, diagonal = self.kernel_tables(rel_embeddings, size)
        # ksᵀ (B, H, d, L): k·scale, transposed in the one pass. q is read where the projection put it; v is
        # made contiguous, as every block of queries goes through all of its rows (strided: measured slower).
        scaled_keys = torch.mul(k.transpose(-1, -2), self.scale,
                                out=k.new_empty(k.shape[:-2] + (k.shape[-1], size)))
        q = q if q.stride(-1) == 1 else q.contiguous()  # the kernel reads each query's d values in a row
        return cpu_kernel.kernel().attend(q, scaled_keys, v.contiguous(), kr, qu, diagonal,
                                          padding.reshape(batch, size))

    def kernel_tables(self, rel_embeddings: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """kr, qu = qr / scale (H, d, 2L − 1) and diagonal = qu·kr (H, 2L − 1) for sequences of ``size`` tokens.

        One column per diagonal c = L − 1 − i + j (δ = L − 1 − c), so that the entries of consecutive keys
        of one query are consecutive in memory; buckets change only which row each column takes. With
        them the kernel folds the three products of a score into one:
        q·k·scale + q·kr + k·qr = (q + qu)·(k·scale + kr) − qu·kr.
        Laid out again from the projections (:meth:`position_projections`) for each length: at 512 tokens
        two copies of 6 MB per layer, which inference reuses for as long as the length and the weights stay
        the same (as the projections). Only the last length is kept: a server that pads to a fixed length
        lays them out once; one that pads each batch to its own length lays them out per batch, as
        without reuse, and holds no table per length it has seen.
        """
        def lay_out() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            span = self.span(size, size)
            rows = self.position_rows(size - 1 - torch.arange(2 * size - 1, device=rel_embeddings.device), span)
            kr, qr = self.position_projections(rel_embeddings, span)
            assert kr is not None and qr is not None  # kernel_applies: both terms
            kr, qu = kr[:, rows].transpose(1, 2).contiguous(), (qr[:, rows] / self.scale).transpose(1, 2).contiguous()
            return kr, qu, (kr * qu).sum(1)

        if not (_current.reuse_position_projections and reuse_allowed(self)):
            return lay_out()
        store = self._reused_projections
        key = ("kernel tables", size, autocast_key(rel_embeddings.device))
        for other in [k for k in store if isinstance(k, tuple) and k[0] == key[0] and k != key]:
            del store[other]
        tables = reused(store, key, [rel_embeddings, *self.position_weights()], lay_out)
        return tables  # type: ignore[return-value]

    def window_rows(self, span: int, query_size: int, key_size: int, batch: int,
                    device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The rows of kr and qr (:meth:`position_projections`) in the windows c2p's and p2c's blocks multiply.

        c2p comes in blocks of m queries, p2c in blocks of n keys (:func:`band_block` for a batch of B):
        (Lq/m, m + Lk) and (Lk/n, n + Lq) (:func:`band_window_rows`), None for a term not used. Each
        term's diagonals are the Lq + Lk entries of every distance δ that occurs (a row each: clamped to
        the span, bucketed in v2/v3) and a spare.
        """
        diagonals = torch.arange(query_size + key_size, device=device)  # (Lq + Lk,)
        c2p = p2c = None
        if "c2p" in self.pos_att_type:
            # c2p's rows are queries. Entry u is at δ = Lq − 1 − u (backwards): the band's element [i, j]
            # is then at δ = i − j.
            block = band_block(query_size, key_size, batch, self.head_size)
            c2p = band_window_rows(self.position_rows(query_size - 1 - diagonals, span), query_size, key_size, block)
        if "p2c" in self.pos_att_type:
            # p2c's rows are keys. Entry u is at δ = u − (Lk − 1): the band's element [j, i] (key j, query i)
            # is then at δ = i − j.
            block = band_block(key_size, query_size, batch, self.head_size)
            p2c = band_window_rows(self.position_rows(diagonals - (key_size - 1), span), key_size, query_size, block)
        return c2p, p2c

    def disentangled_bias(self, q: torch.Tensor, k: torch.Tensor, windows: PositionTables,
                          padding: torch.Tensor) -> torch.Tensor:
        """c2p + p2c (scaled) + padding, for queries q (B, H, Lq, d) and keys k (B, H, Lk, d): (B, H, Lq, Lk).

        ``windows`` (H, blocks, rows, d) are the rows :meth:`window_rows` of kr and qr; ``padding``
        (B, 1, 1 or Lq, Lk) from :func:`padding_bias`. :func:`band_bias`, through :class:`DisentangledBias`
        where a gradient is wanted.
        """
        kr, qr = windows
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (q, k, kr, qr)):
            return DisentangledBias.apply(q, k, kr, qr, padding)
        return band_bias(q, k, kr, qr, padding)

    def position_projections(self, rel_embeddings: torch.Tensor, span: int) -> PositionTables:
        """kr and qr of the 2S relative positions of the span, split into heads and scaled: (H, 2S, d) each.

        None for a term that ``pos_att_type`` leaves out. They depend on the weights alone, and at base
        size cost a quarter of a layer for one 512-token sequence. So inference (eval mode, no gradient)
        projects the whole table once and reuses it for as long as the weights are the same tensors with
        the same contents (:func:`reused`); the option ``reuse_position_projections`` (:func:`options`)
        switches reuse off.
        """
        top = self.max_relative_positions
        if not (_current.reuse_position_projections and reuse_allowed(self)):
            return self.project_positions(self.pos_dropout(rel_embeddings[top - span : top + span]))
        weights = [rel_embeddings, *self.position_weights()]
        tables = reused(self._reused_projections, autocast_key(rel_embeddings.device), weights,
                        lambda: self.project_positions(rel_embeddings))
        return tuple(t if t is None else t[:, top - span : top + span] for t in tables)  # (H, 2S, d) each

    def train(self, mode: bool = True) -> FastDisentangledAttention:
        self._reused_projections = {}  # frees them (and training changes the weights anyway)
        return super().train(mode)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()  # pickle and deepcopy: without the reused projections (weak references)
        state["_reused_projections"] = {}
        return state
