"""The fast disentangled attention against the formula: band views, blocks, SDPA, the CPU kernel, reuse, compile.

The reference here is the definition itself, written with explicit clamped indices:
c2p[i, j] = q_i · kr[clamp(i − j + S)], p2c[i, j] = k_j · qr[clamp(i − j + S)], scaled, for any Lq, Lk.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from attention_helpers import random_attention as randomized_attention

from DeBERTa import deberta
from DeBERTa.deberta import cpu_kernel
from DeBERTa.deberta.attention import current_options, options
from DeBERTa.deberta.model import (
    DisentangledSelfAttention,
    attention_span,
    band_block,
    band_window_rows,
    banded_products,
    diagonal_band,
    gather_windows,
    padding_bias,
    piece_shape,
)

TINY = deberta.ModelConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, vocab_size=120)


def random_attention(config: deberta.ModelConfig = TINY, seed: int = 0) -> DisentangledSelfAttention:
    return randomized_attention(DisentangledSelfAttention, config, seed)


def formula_bias(attention: DisentangledSelfAttention, q: torch.Tensor, k: torch.Tensor,
                 rel_embeddings: torch.Tensor) -> torch.Tensor:
    """c2p + p2c (B, H, Lq, Lk) by the definition, gathering a projected row for every (i, j)."""
    query_size, key_size = q.shape[-2], k.shape[-2]
    top = attention.max_relative_positions
    span = attention_span(query_size, key_size, top)
    rel = rel_embeddings[top - span : top + span]  # (2S, D)
    heads = attention.num_heads
    delta = torch.arange(query_size)[:, None] - torch.arange(key_size)[None, :]  # (Lq, Lk)
    index = torch.clamp(delta + span, 0, 2 * span - 1)
    kr = attention.pos_proj(rel).view(2 * span, heads, -1).transpose(0, 1) * attention.scale  # (H, 2S, d)
    qr = attention.pos_q_proj(rel).view(2 * span, heads, -1).transpose(0, 1) * attention.scale
    c2p = torch.einsum("bhid,hijd->bhij", q, kr[:, index])
    p2c = torch.einsum("bhjd,hijd->bhij", k, qr[:, index])
    return c2p + p2c


def fast_bias(attention: DisentangledSelfAttention, q: torch.Tensor, k: torch.Tensor, rel_embeddings: torch.Tensor,
              padding: torch.Tensor, heads: slice = slice(None), batch: int | None = None) -> torch.Tensor:
    """The model's bias for queries q and keys k of some ``heads`` (q and k have only those) of a ``batch``."""
    (_, _, query_size, _), key_size = q.shape, k.shape[-2]
    batch = batch or q.shape[0]
    span = attention_span(query_size, key_size, attention.max_relative_positions)
    tables = attention.position_projections(rel_embeddings, span)
    rows = attention.window_rows(span, query_size, key_size, batch, q.device)
    windows = tuple(gather_windows(t[heads], r) for t, r in zip(tables, rows, strict=True))
    return attention.disentangled_bias(q, k, windows, padding)


@pytest.mark.parametrize("rows,width,batch", [(1, 1, 1), (2, 2, 3), (21, 21, 3), (64, 64, 2), (48, 20, 2), (20, 48, 5),
                                             (96, 32, 1)])
def test_banded_products_are_the_band_of_the_table(rows, width, batch):
    gen = torch.Generator().manual_seed(rows * 100 + width)
    heads, size = 3, 8
    x = torch.randn(batch, heads, rows, size, generator=gen)
    positions = torch.randn(heads, 50, size, generator=gen)
    table_rows = torch.randint(0, 50, (rows + width,), generator=gen)
    block = band_block(rows, width, batch, size)
    windows = gather_windows(positions, band_window_rows(table_rows, rows, width, block))  # (H, R/n, n + width, d)
    got = banded_products(x, windows, width)  # (B, H, R/n, n, width)
    assert got.shape[2:] == (rows // block, block, width)
    r = torch.arange(rows)[:, None]
    c = torch.arange(width)[None, :]
    expected = torch.einsum("bhrd,hrcd->bhrc", x, positions[:, table_rows[rows - 1 - r + c]])
    torch.testing.assert_close(got.flatten(2, 3), expected, rtol=1e-5, atol=1e-5)


def test_diagonal_band_is_a_view():
    products = torch.arange(4 * 9.0).view(4, 9)
    band = diagonal_band(products, 5)
    assert band.untyped_storage().data_ptr() == products.untyped_storage().data_ptr()  # no copy
    for r in range(4):
        for c in range(5):
            assert band[r, c] == products[r, 3 - r + c]


def test_band_blocks():
    assert band_block(128, 128, 8, 64) == 32  # the measured best for 8×128 at base size
    assert band_block(512, 512, 1, 64) == 128  # the measured best for 1×512
    assert band_block(21, 21, 3, 8) == 21  # no divisor ≥ 16: one block
    for rows in (1, 7, 64, 96, 100, 128, 384):
        block = band_block(rows, rows, 2, 8)
        assert rows % block == 0 and (block >= 16 or block == rows)


@pytest.mark.parametrize(
    "query_size,key_size",
    [(16, 16), (24, 24), (64, 64), (5, 5), (1, 1), (12, 40), (40, 12), (64, 16), (64, 128), (128, 64)],
    ids=["L=k", "L>k", "blocks", "short", "one", "Lq<Lk", "Lq>Lk", "Lq>Lk>k", "Lq<Lk,blocks", "Lq>Lk,blocks"],
)
def test_bias_follows_the_formula(query_size, key_size):
    """Every path of the bias: spans shorter than the sequence (clamped), Lq ≠ Lk, one or many blocks."""
    if query_size >= 64 and key_size >= 64:  # the "blocks" cases: several blocks for c2p and for p2c
        assert band_block(query_size, key_size, 2, TINY.head_size) < query_size
        assert band_block(key_size, query_size, 2, TINY.head_size) < key_size
    attention = random_attention()
    gen = torch.Generator().manual_seed(1)
    heads, size = TINY.num_attention_heads, TINY.head_size
    q = torch.randn(2, heads, query_size, size, generator=gen)
    k = torch.randn(2, heads, key_size, size, generator=gen)
    rel = torch.randn(2 * TINY.relative_span, TINY.hidden_size, generator=gen)
    padding = torch.randn(2, 1, 1, key_size, generator=gen)
    with torch.no_grad():
        expected = formula_bias(attention, q, k, rel) + padding
        torch.testing.assert_close(fast_bias(attention, q, k, rel, padding), expected, rtol=1e-5, atol=1e-5)
        # A piece of one sequence and some heads (as inference takes them), with the windows of the batch.
        heads = slice(1, 3)
        piece = fast_bias(attention, q[1:, heads], k[1:, heads], rel, padding[1:], heads, batch=2)
        torch.testing.assert_close(piece, expected[1:, heads], rtol=1e-5, atol=1e-5)
        # What an exported graph computes (every distance looked up in the whole table, no blocks).
        v = torch.randn(2, TINY.num_attention_heads, key_size, size, generator=gen)
        attended = torch.softmax(q @ k.transpose(-1, -2) * attention.scale + expected, dim=-1) @ v
        exported = attention.attend_for_export(q, k, v, rel, padding)
        torch.testing.assert_close(exported, attended, rtol=1e-5, atol=1e-5)


def test_bias_gradients_follow_the_formula():
    attention = random_attention()
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(3, 4, 48, 8, generator=gen, requires_grad=True)
    k = torch.randn(3, 4, 40, 8, generator=gen, requires_grad=True)
    rel = torch.randn(32, 32, generator=gen, requires_grad=True)
    weights = torch.randn(3, 4, 48, 40, generator=gen)
    padding = torch.zeros(3, 1, 1, 40)
    grads = []
    for compute in (lambda *a: fast_bias(attention, *a, padding), lambda *a: formula_bias(attention, *a)):
        (compute(q, k, rel) * weights).sum().backward()
        grads.append([t.grad.clone() for t in (q, k, rel, attention.pos_proj.weight, attention.pos_q_proj.bias)])
        for t in (q, k, rel, *attention.parameters()):
            t.grad = None
    for got, expected in zip(*grads, strict=True):  # float32 summation noise, relative to each gradient
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=2e-6 * expected.abs().max().item())


def padded_batch(length: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY.vocab_size, (3, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    mask[2] = 0  # a sequence with no tokens at all
    return ids * mask, mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("length", [24, 64])
@pytest.mark.parametrize("relative", [True, False])
def test_fused_kernel_and_explicit_path_agree(dtype, length, relative, monkeypatch):
    """Inference (PyTorch's fused kernel, reused projections) = the explicit path that training takes.

    With relative attention the CPU takes the fused kernel only when told to (``fused_cpu_bias``, as
    the GPU always does); without, the bias is the padding alone and inference takes it anyway.
    """
    fused_calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **kw: fused_calls.append(1) or sdpa(*a, **kw))
    torch.manual_seed(0)
    config = TINY if relative else deberta.ModelConfig.preset(
        "tiny", vocab_size=120, relative_attention=False, pos_att_type=(), position_biased_input=True)
    model = deberta.DeBERTa(config).eval()
    ids, mask = padded_batch(length)
    with options(fused_cpu_bias=True), torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        assert current_options().fused_cpu_bias
        explicit = model(ids, mask)  # gradients enabled: the explicit path
        assert not fused_calls
        with torch.no_grad():
            fused = model(ids, mask)
            fused_again = model(ids, mask)  # now with the projections reused
        assert len(fused_calls) == 2 * config.num_hidden_layers
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    for a, b, c in zip(explicit, fused, fused_again, strict=True):
        assert torch.isfinite(a).all() and torch.isfinite(b).all()
        torch.testing.assert_close(b.float(), a.float(), rtol=tolerance, atol=tolerance)
        assert torch.equal(b, c)
    assert (fused[-1][2] == fused[-1][2, 0]).all()  # the empty sequence: every row alike, nothing leaks


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inference_in_pieces_equals_one_piece(monkeypatch, dtype):
    """Pieces of sequences and of heads (remainders, spans shorter than the sequence, empty rows) change nothing."""
    torch.manual_seed(0)
    model = deberta.DeBERTa(TINY).eval()
    ids, mask = padded_batch(40)  # > max_relative_positions = 16: clamped distances
    calls: list[tuple[int, int]] = []
    attend = DisentangledSelfAttention.attend

    def spy(self, q, k, v, bias):
        calls.append(tuple(q.shape[:2]))  # (sequences, heads)
        return attend(self, q, k, v, bias)

    monkeypatch.setattr(DisentangledSelfAttention, "attend", spy)
    head_bytes = 40 * 40 * dtype.itemsize
    results = {}
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32), torch.no_grad():
        for name, budget, expected in [("whole", 3 * 4 * head_bytes, [(3, 4)]),
                                       ("sequences", 2 * 4 * head_bytes, [(2, 4), (1, 4)]),
                                       ("heads", 3 * head_bytes, [(1, 3)] * 3 + [(1, 1)] * 3)]:
            calls.clear()
            with options(piece_bytes={"cpu": budget}):
                results[name] = model(ids, mask)
            assert calls == expected * TINY.num_hidden_layers, name
    for name in ("sequences", "heads"):
        for a, b in zip(results["whole"], results[name], strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5) if dtype == torch.float32 else \
                torch.testing.assert_close(b.float(), a.float(), rtol=1e-2, atol=1e-2)


def test_piece_shapes():
    assert piece_shape(8, 12, 128 * 128 * 4, 2 * 2**20) == (2, 12)  # 8×128 at base size: 4 pieces of 2 sequences
    assert piece_shape(1, 12, 512 * 512 * 4, 2 * 2**20) == (1, 2)  # 1×512: 6 pieces of 2 heads
    assert piece_shape(3, 12, 2048 * 2048 * 4, 2 * 2**20) == (1, 1)  # beyond the budget: one head at a time
    assert piece_shape(3, 12, 10, 10**6) == (3, 12)
    assert piece_shape(3, 12, 0, 10**6) == (3, 12)  # empty sequences


def test_projections_are_reused_only_while_the_weights_stay_the_same():
    torch.manual_seed(0)
    model = deberta.DeBERTa(TINY).eval()
    attention = model.encoder.layer[0].attention.self
    ids, mask = padded_batch(24)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(ids, mask)[-1]

    def fresh() -> torch.Tensor:
        with options(reuse_position_projections=False):
            return run()

    first = run()
    assert attention._reused_projections
    assert torch.equal(run(), first) and torch.equal(fresh(), first)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = run()
    assert len(attention._reused_projections) == 2  # one set per autocast dtype: alternating calls both reuse
    assert torch.equal(run(), first)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(run(), low)

    model(ids, mask)[-1].sum().backward()  # gradients on: computed afresh, the stored ones untouched
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.step()  # in place: bumps the versions
    stepped = run()
    assert not torch.equal(stepped, first)
    assert torch.equal(stepped, fresh())

    state = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        attention.pos_proj.weight.mul_(2.0)
    assert torch.equal(run(), fresh())
    model.load_state_dict(state)
    assert torch.equal(run(), stepped)

    model.double()  # new tensors: new addresses
    assert run().dtype == torch.float64
    torch.testing.assert_close(run().float(), stepped, rtol=1e-5, atol=1e-5)
    model.float()
    attention.pos_q_proj.weight = torch.nn.Parameter(attention.pos_q_proj.weight * 3)  # another tensor
    assert torch.equal(run(), fresh())

    copied = pickle.loads(pickle.dumps(copy.deepcopy(model)))  # what is reused is not copied
    assert not copied.encoder.layer[0].attention.self._reused_projections
    with torch.no_grad():
        assert torch.equal(copied(ids, mask)[-1], run())

    model.train()
    assert not attention._reused_projections
    with torch.no_grad():
        model(ids, mask)
    assert not attention._reused_projections  # training: dropout on the positions, nothing reused


def test_training_saves_no_index_tensors_and_no_products():
    """What autograd keeps for backward: nothing larger than the probabilities, no index of their size."""
    torch.manual_seed(0)
    config = deberta.ModelConfig.preset("tiny", vocab_size=120, max_relative_positions=64)
    model = deberta.DeBERTa(config).train()
    ids, mask = padded_batch(48)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        model(ids, mask)
    batch, heads, length = 3, config.num_attention_heads, 48
    probabilities = batch * heads * length * length
    assert max(t.numel() for t in saved if t.is_floating_point()) <= probabilities
    assert max(t.numel() for t in saved if not t.is_floating_point() and t.dtype != torch.bool) < length * length


def test_compiles_without_graph_breaks():
    """torch.compile(fullgraph=True): same outputs and gradients as eager (training and inference)."""
    torch.manual_seed(0)
    model = deberta.DeBERTa(deberta.ModelConfig.preset("tiny", vocab_size=120, num_hidden_layers=1,
                                                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))
    compiled = torch.compile(model, fullgraph=True)
    ids, mask = padded_batch(96)  # the relative products in blocks
    ids[2], mask[2] = 5, 1  # no empty sequence: its rows are arbitrary, though equal
    weights = torch.randn(3, 96, TINY.hidden_size, generator=torch.Generator().manual_seed(3))
    (compiled(ids, mask)[-1] * weights).sum().backward()  # (a plain sum of a LayerNorm output has no gradient)
    got = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    (model(ids, mask)[-1] * weights).sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(got[name], p.grad, rtol=1e-4, atol=2e-6 * p.grad.abs().max().item(), msg=name)

    model.eval()
    ids, mask = padded_batch(24)
    with torch.no_grad():
        for got, expected in zip(compiled(ids, mask), model(ids, mask), strict=True):
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_dropout_keeps_a_byte_mask_for_backward():
    from DeBERTa.deberta.model import Dropout

    x = torch.ones(100_000, requires_grad=True)
    dropout = Dropout(0.25).train()
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = dropout(x)
    assert [t.dtype for t in saved] == [torch.bool]
    assert set(y.unique().tolist()) == {0.0, torch.tensor(4 / 3).item()}  # kept ones scaled by 1 / (1 − p)
    assert abs((y == 0).float().mean().item() - 0.25) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())
    assert Dropout(1.0).train()(x).abs().sum() == 0 and torch.equal(Dropout(0.0).train()(x), x)
    assert dropout.eval()(x) is x


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_dropout_softmax_backward_from_lower_precision_scores(dtype):
    """Gradients of dropout(softmax(scores))·v with half or bf16 scores (autocast on the CPU, where ATen has no
    half-to-float softmax backward) equal the three operations written out, with the same random draws."""
    from DeBERTa.deberta.attention import SoftmaxDropoutContext, dropout_mask

    gen = torch.Generator().manual_seed(0)
    scores = (torch.randn(3, 5, 7, generator=gen) * 3).to(dtype).requires_grad_()
    v = torch.randn(3, 7, 4, generator=gen).to(dtype).requires_grad_()
    grad = torch.randn(3, 5, 4, generator=gen).to(dtype)
    torch.manual_seed(1)
    SoftmaxDropoutContext.apply(scores, v, 0.2).backward(grad)
    ours = scores.grad, v.grad
    scores.grad = v.grad = None
    torch.manual_seed(1)
    probs = torch.softmax(scores.float(), dim=-1)
    keep, scale = dropout_mask(probs.shape, 0.2, probs.device)  # the same draws
    ((probs * keep * scale).to(dtype) @ v).backward(grad)
    for got, expected in zip(ours, (scores.grad, v.grad), strict=True):
        assert got.dtype == dtype and torch.isfinite(got).all()
        torch.testing.assert_close(got.float(), expected.float(), rtol=1e-2, atol=1e-2)


# ----- the compiled CPU kernel --------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
KERNEL_VARIANTS = cpu_kernel.runnable_variants()  # both on an AVX-512 CPU, avx2 on an AVX2 one, none elsewhere
REQUIRED = os.environ.get("DEBERTA_REQUIRE_CPU_KERNEL", "")  # .ci/run: the variant this machine must run


def skip_or_fail(reason: str) -> None:
    """Skip where the kernel cannot build; CI sets DEBERTA_REQUIRE_CPU_KERNEL where it must (so there: fail)."""
    if REQUIRED:
        pytest.fail(f"{reason}, but CI requires the CPU kernel ({REQUIRED}) on this machine (see the warning above)")
    pytest.skip(reason)


@pytest.fixture(params=KERNEL_VARIANTS or [None])
def kernel_variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each variant this CPU runs, selected by DEBERTA_CPU_KERNEL as a user would select it."""
    variant = request.param
    if variant is None:
        skip_or_fail("this CPU runs no variant of the CPU attention kernel (it needs AVX2 or AVX-512)")
    monkeypatch.setenv(cpu_kernel.SETTING, variant)
    if cpu_kernel.kernel() is None:
        skip_or_fail(f"the CPU attention kernel ({variant}) does not build here (needs a C++ compiler and ninja)")
    assert cpu_kernel.variant() == variant
    return variant


def with_heads(head_size: int, heads: int = 2) -> deberta.ModelConfig:
    return dataclasses.replace(TINY, hidden_size=head_size * heads, num_attention_heads=heads, intermediate_size=64)


@pytest.mark.parametrize("head_size", cpu_kernel.HEAD_SIZES)
# > 16 = max_relative_positions: clamped; 24, 70, 130: full blocks of keys (24 for avx2, 64 for avx512), part ones
@pytest.mark.parametrize("length", [1, 5, 24, 70, 130])
def test_cpu_kernel_follows_the_formula(kernel_variant, head_size, length):
    attention = random_attention(with_heads(head_size))
    rel = torch.randn(2 * attention.max_relative_positions, attention.in_proj.in_features)
    gen = torch.Generator().manual_seed(1)
    # Views of (B, L, H, d), as the projection gives them: q and v are read in place, with their strides.
    q, k, v = (torch.randn(4, length, 2, head_size, generator=gen).transpose(1, 2) for _ in range(3))
    mask = torch.ones(4, length, dtype=torch.long)
    mask[1, length // 2 + 1 :] = 0  # right padding: the kernel stops at the last real key
    mask[2] = 0  # every key padded: uniform weights, no NaN
    mask[3, : length // 2] = 0  # left padding: nothing to skip at the end
    padding = padding_bias(mask, torch.float32)
    scores = q @ k.transpose(-1, -2) * attention.scale + formula_bias(attention, q, k, rel) + padding
    expected = torch.softmax(scores, dim=-1) @ v
    with torch.no_grad():
        assert attention.kernel_applies(q, k)
        got = attention.attend_with_positions(q, k, v, rel, padding)
        # Any other layout of q, k and v too (here each head's d values strided, not in a row).
        q_t, k_t, v_t = (x.transpose(-1, -2).contiguous().transpose(-1, -2) for x in (q, k, v))
        assert torch.equal(attention.attend_with_positions(q_t, k_t, v_t, rel, padding), got)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


@pytest.mark.parametrize("size", [0.1, 1.0, 3.0, 10.0])  # scores from nearly uniform to nearly one-hot
def test_cpu_kernel_keeps_float32_accuracy_at_any_size_of_scores(kernel_variant, size):
    # The kernel computes a score as (q + qu)·(k·scale + kr) − qu·kr: the last term is subtracted, so its
    # rounding must stay small next to the float64 formula at any size of q, k and the positions.
    attention = random_attention(with_heads(64))
    rel = torch.randn(2 * attention.max_relative_positions, attention.in_proj.in_features) * size
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 100, 64, generator=gen) * size for _ in range(3))
    padding = padding_bias(torch.ones(2, 100, dtype=torch.long), torch.float32)
    with torch.no_grad():
        assert attention.kernel_applies(q, k)
        got = attention.attend_with_positions(q, k, v, rel, padding).double()

        def formula(attention: DisentangledSelfAttention, q, k, v, rel) -> torch.Tensor:
            scores = q @ k.transpose(-1, -2) * attention.scale + formula_bias(attention, q, k, rel)
            return torch.softmax(scores, dim=-1) @ v

        in_float32 = formula(attention, q, k, v, rel).double()
        expected = formula(copy.deepcopy(attention).double(), q.double(), k.double(), v.double(), rel.double())
    # Within a few times the float32 formula's own distance from float64 (measured: 0.9–3× over sizes 0.1–10
    # and three seeds; PyTorch's path in float32 1–1.7×): the sums come in another order and, in the
    # kernel, with the positions' own product taken out again.
    assert (got - expected).abs().max() <= 4 * (in_float32 - expected).abs().max()


def test_cpu_kernel_equals_the_pytorch_path_in_the_model(kernel_variant, monkeypatch):
    torch.manual_seed(0)
    model = deberta.DeBERTa(with_heads(16)).eval()
    ids, mask = padded_batch(40)
    calls = []
    attend = DisentangledSelfAttention.attend_in_kernel
    monkeypatch.setattr(DisentangledSelfAttention, "attend_in_kernel",
                        lambda self, *args: calls.append(1) or attend(self, *args))
    with torch.no_grad():
        in_kernel = model(ids, mask)
        assert len(calls) == TINY.num_hidden_layers
        monkeypatch.setenv(cpu_kernel.SETTING, "0")
        in_pytorch = model(ids, mask)
    assert len(calls) == TINY.num_hidden_layers
    for got, expected in zip(in_kernel, in_pytorch, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_cpu_kernel_tables_are_reused_for_the_last_length_and_weights_only(kernel_variant):
    torch.manual_seed(0)
    model = deberta.DeBERTa(with_heads(16)).eval()
    attention = model.encoder.layer[0].attention.self

    def run(length: int) -> torch.Tensor:
        with torch.no_grad():
            return model(*padded_batch(length))[-1]

    def stored() -> dict[int, object]:  # length → the tables held for it
        return {key[1]: value[2] for key, value in attention._reused_projections.items()
                if isinstance(key, tuple) and key[0] == "kernel tables"}

    first = run(24)
    held = stored()
    assert list(held) == [24]
    assert torch.equal(run(24), first) and stored()[24] is held[24]  # reused, not laid out again
    with options(reuse_position_projections=False):
        assert torch.equal(run(24), first)  # laid out afresh: the same tables, the held ones untouched
    assert stored()[24] is held[24]
    run(40)
    assert list(stored()) == [40]  # only the last length is held
    held = stored()
    with torch.no_grad():
        attention.pos_proj.weight.mul_(2.0)  # in place: the held tables are stale
    changed = run(40)
    assert stored()[40] is not held[40]
    with options(reuse_position_projections=False):
        assert torch.equal(run(40), changed)
    with torch.no_grad():
        attention.pos_proj.weight.div_(2.0)
    assert not torch.equal(changed, run(40))


def test_cpu_kernel_only_for_float32_inference_with_both_terms(kernel_variant):
    attention = random_attention(with_heads(16))
    q = k = torch.randn(2, 2, 8, 16)
    with torch.no_grad():
        assert attention.kernel_applies(q, k)
        assert not attention.kernel_applies(q.bfloat16(), k.bfloat16())
        assert not attention.kernel_applies(q, k[:, :, :5])  # queries and keys of other lengths
        assert not attention.kernel_applies(q[:, :, :0], k[:, :, :0])  # empty sequences
        assert not attention.train().kernel_applies(q, k)  # dropout
    assert not attention.eval().kernel_applies(q, k)  # gradients on
    with torch.no_grad():
        assert not random_attention(TINY).kernel_applies(q[..., :8], k[..., :8])  # a head width not compiled
        assert not random_attention(dataclasses.replace(with_heads(16), pos_att_type=["c2p"])).kernel_applies(q, k)


def test_the_fastest_variant_the_cpu_runs_is_the_default(monkeypatch):
    monkeypatch.delenv(cpu_kernel.SETTING, raising=False)
    if not KERNEL_VARIANTS or cpu_kernel.kernel() is None:
        skip_or_fail("the CPU attention kernel does not run here")
    assert cpu_kernel.variant() == KERNEL_VARIANTS[0]
    assert REQUIRED in ("", "1", cpu_kernel.variant())  # CI expected the variant that runs
    monkeypatch.setenv(cpu_kernel.SETTING, "0")
    assert cpu_kernel.kernel() is None and cpu_kernel.variant() is None


@pytest.mark.parametrize(("capability", "variants"), [
    ("AVX512", ("avx512", "avx2")), ("AVX512_BF16", ("avx512", "avx2")), ("AVX2", ("avx2",)),
    ("DEFAULT", ()), ("NEON", ()), ("SVE256", ()), ("ZVECTOR", ()), ("VSX", ()),
])
def test_the_variants_and_ci_requirement_follow_the_cpu(capability, variants):
    assert cpu_kernel.runnable_variants(capability) == variants
    assert cpu_kernel.ci_requirement(capability, "/usr/bin/c++") == (variants[0] if variants else None)
    assert cpu_kernel.ci_requirement(capability, None) is None  # no compiler: nothing can build


def ci_kernel_requirement_lines() -> str:
    """The lines of .ci/run between its "# --- kernel requirement" mark and the next "# ---"."""
    script = (ROOT / ".ci" / "run").read_text()
    start = script.index("# --- kernel requirement\n")
    return script[start : script.index("# ---\n", start + 1)]


@pytest.mark.parametrize("aten_capability", [None, "avx2", "default"])  # this CPU, then lowered by PyTorch's switch
def test_ci_requires_the_kernel_exactly_where_the_cpu_runs_it(aten_capability):
    here = torch.backends.cpu.get_cpu_capability()
    if aten_capability is None:
        capability = here
    elif aten_capability == "avx2":
        if not here.startswith(("AVX2", "AVX512")):
            pytest.skip(f"PyTorch lowers the CPU capability, never raises it: {here} here")
        capability = "AVX2"
    else:  # torch names the lowest capability "DEFAULT" (2.13) or "NO AVX" (2.7): ask it
        probe = [sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"]
        capability = subprocess.run(probe, env={**os.environ, "ATEN_CPU_CAPABILITY": aten_capability},
                                    capture_output=True, text=True, check=True, timeout=120).stdout.strip()
    env = {**os.environ, "python": sys.executable}
    env.pop("DEBERTA_REQUIRE_CPU_KERNEL", None)
    if aten_capability is not None:
        env["ATEN_CPU_CAPABILITY"] = aten_capability
    report = 'echo "required=${DEBERTA_REQUIRE_CPU_KERNEL:-no}"'
    script = f"set -euo pipefail\n{ci_kernel_requirement_lines()}\n{report}"
    result = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    expected = cpu_kernel.ci_requirement(capability)
    assert result.stdout.strip().splitlines()[-1] == f"required={expected or 'no'}"
    assert f"this CPU ({capability})" in result.stderr
    assert ("is required" if expected else "tests skip") in result.stderr


def test_the_choice_is_explained_once(monkeypatch):
    cpu_kernel._select.cache_clear()  # each (setting, capability) decides and warns once per process
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NEON")
    monkeypatch.delenv(cpu_kernel.SETTING, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu_kernel.kernel() is None and cpu_kernel.kernel() is None
        monkeypatch.setenv(cpu_kernel.SETTING, "avx512")  # forced, but this CPU cannot run it
        assert cpu_kernel.kernel() is None and cpu_kernel.kernel() is None
    assert [str(w.message).split(";")[0] for w in caught] == [
        "DeBERTa's compiled CPU attention kernel needs AVX2 or AVX-512 (this CPU: NEON)",
        "DEBERTA_CPU_KERNEL=avx512, but this CPU (NEON) runs no variant of the kernel",
    ]
    monkeypatch.setenv(cpu_kernel.SETTING, "avx")
    with pytest.raises(ValueError, match="DEBERTA_CPU_KERNEL=avx: expected 0, 1 or one of avx512, avx2"):
        cpu_kernel.kernel()
    cpu_kernel._select.cache_clear()


def test_a_failed_build_warns_once_and_the_pytorch_path_runs(monkeypatch):
    from torch.utils import cpp_extension

    def no_compiler(**kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    monkeypatch.setattr(cpu_kernel, "build", functools.cache(cpu_kernel.build.__wrapped__))  # an empty cache
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.delenv(cpu_kernel.SETTING, raising=False)
    torch.manual_seed(0)
    model = deberta.DeBERTa(with_heads(16)).eval()
    ids, mask = padded_batch(12)
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = model(ids, mask)[0], model(ids, mask)[0]
    assert [str(w.message) for w in caught] == [
        "DeBERTa's CPU attention kernel (avx2) is not available (no C++ compiler); using PyTorch operations"]
    monkeypatch.setenv(cpu_kernel.SETTING, "0")
    with torch.no_grad():
        torch.testing.assert_close(first, model(ids, mask)[0], rtol=0, atol=0)
    assert torch.equal(first, second)
