"""The CPU dropout draw (attention.dropout_mask), its application (MaskedScale) and the fused Q/K/V split.

The draw reads 64-bit random words as four 16-bit lanes: each lane position must be uniform on its own
(the sign bit included), the drop probability is p rounded to 2⁻¹⁶ and the scale exactly its inverse keep
probability, and the draws repeat under torch.manual_seed.
"""

from __future__ import annotations

import pytest
import torch

from DeBERTa.deberta.attention import (
    DROPOUT_LEVELS,
    MaskedScale,
    SoftmaxDropoutContext,
    apply_dropout,
    dropout_mask,
    fused_heads,
    kept,
)
from DeBERTa.deberta.model import Dropout

CPU = torch.device("cpu")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1e-4])
def test_every_lane_keeps_one_minus_p(p):
    torch.manual_seed(0)
    words = 200_000
    keep, _ = dropout_mask((words, 4), p, CPU)  # column i: lane i of each 64-bit word
    effective = round(p * DROPOUT_LEVELS) / DROPOUT_LEVELS
    tolerance = 5 * (effective * (1 - effective) / words) ** 0.5  # 5 σ of a binomial fraction
    for lane in range(4):
        assert abs(keep[:, lane].float().mean().item() - (1 - effective)) < tolerance, lane


def test_lanes_are_uniform_over_sixteen_bits():
    """Thresholds in every sixteenth of the range: each lane's kept fraction follows, so no bit is stuck."""
    words = 100_000
    for drop in range(0, DROPOUT_LEVELS, DROPOUT_LEVELS // 16):
        torch.manual_seed(drop)
        keep, _ = dropout_mask((words, 4), drop / DROPOUT_LEVELS, CPU)
        fractions = keep.float().mean(0)
        expected = 1 - drop / DROPOUT_LEVELS
        assert (fractions - expected).abs().max().item() < 5 * (0.25 / words) ** 0.5, (drop, fractions)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.3, 1e-7, 1 - 1e-7])
def test_the_scale_is_the_inverse_of_the_rounded_keep_probability(p):
    dropped = min(round(p * DROPOUT_LEVELS), DROPOUT_LEVELS - 1)
    _, scale = dropout_mask((3,), p, CPU)
    assert scale == DROPOUT_LEVELS / (DROPOUT_LEVELS - dropped)
    assert abs(dropped / DROPOUT_LEVELS - p) <= (2**-16 if p > 1 - 2**-17 else 2**-17)  # p' within half a step
    assert dropout_mask((2,), 0.25, CPU)[1] == 4 / 3  # p a multiple of 2⁻¹⁶: exact


def test_expectation_is_exact():
    torch.manual_seed(1)
    keep, scale = dropout_mask((1_000_000,), 0.1, CPU)
    kept_scaled = keep.double() * scale
    assert abs(kept_scaled.mean().item() - 1) < 5 * (0.1 / 0.9 / 1_000_000) ** 0.5


def test_edges_sizes_and_dtype():
    assert dropout_mask((5, 3), 0.0, CPU)[0].all() and dropout_mask((5, 3), 0.0, CPU)[1] == 1.0
    assert not dropout_mask((5, 3), 1.0, CPU)[0].any() and dropout_mask((5, 3), 1.0, CPU)[1] == 0.0
    assert dropout_mask((5, 3), 1e-7, CPU)[0].all()  # rounds to no drop: scale 1
    for shape in [(0,), (1,), (7,), (2, 3, 5), (4, 4)]:  # sizes not a multiple of four lanes too
        keep, _ = dropout_mask(shape, 0.5, CPU)
        assert keep.shape == shape and keep.dtype == torch.bool and keep.is_contiguous()


def test_draws_repeat_under_manual_seed():
    torch.manual_seed(7)
    first = dropout_mask((1000,), 0.3, CPU)[0]
    torch.manual_seed(7)
    again = dropout_mask((1000,), 0.3, CPU)[0]
    other = dropout_mask((1000,), 0.3, CPU)[0]
    assert torch.equal(first, again) and not torch.equal(first, other)
    x = torch.randn(50, 40)
    torch.manual_seed(3)
    y = Dropout(0.2).train()(x)
    torch.manual_seed(3)
    assert torch.equal(Dropout(0.2).train()(x), y)


def test_other_devices_draw_rand_with_p_itself():
    """Off the CPU (here the meta device stands in for one) the draw is rand ≥ p, scaled by 1/(1 − p) exactly."""
    keep, scale = dropout_mask((4, 5), 0.1, torch.device("meta"))
    assert keep.device.type == "meta" and keep.dtype == torch.bool and scale == 1 / (1 - 0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_keeps_native_dropout():
    x = torch.randn(1000, device="cuda")
    torch.manual_seed(2)
    got = apply_dropout(x, 0.3)
    torch.manual_seed(2)
    assert torch.equal(got, torch.native_dropout(x, 0.3, True)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_masked_scale_equals_the_plain_formula(dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 33, generator=gen).to(dtype).requires_grad_()
    weights = torch.randn(6, 33, generator=gen).to(dtype)
    keep = torch.rand(6, 33, generator=gen) >= 0.3
    got = MaskedScale.apply(x, keep, 1 / 0.7)
    (got_grad,) = torch.autograd.grad((got * weights).sum(), [x])
    expected = x * keep * (1 / 0.7)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), [x])
    assert got.dtype == got_grad.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(got_grad, expected_grad, rtol=0, atol=0)


def test_kept_is_the_product_with_the_mask_and_the_scale():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=gen)
    x[0, 0], x[1, 1] = float("nan"), float("inf")
    keep = torch.rand(5, 7, generator=gen) >= 0.4
    keep[0, 0] = keep[1, 1] = False
    expected = x * keep * 1.25  # NaN · 0 stays NaN, as in PyTorch's dropout
    torch.testing.assert_close(kept(x, keep, 1.25), expected, equal_nan=True, rtol=0, atol=0)
    out = x.clone()
    assert kept(out, keep, 1.25, out=out) is out
    torch.testing.assert_close(out, expected, equal_nan=True, rtol=0, atol=0)
    for dtype in (torch.bfloat16, torch.float64):
        assert kept(x.to(dtype), keep, 2.0).dtype == dtype


def test_masked_scale_gradcheck():
    x = torch.randn(4, 9, dtype=torch.float64, requires_grad=True)
    keep = torch.rand(4, 9) >= 0.5
    assert torch.autograd.gradcheck(lambda t: MaskedScale.apply(t, keep, 2.0), (x,))


def test_dropout_drops_the_rounded_probability_and_keeps_a_byte_mask():
    x = torch.ones(400_000, requires_grad=True)
    torch.manual_seed(4)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        y = Dropout(0.1).train()(x)
    assert [t.dtype for t in saved] == [torch.bool]
    scale = DROPOUT_LEVELS / (DROPOUT_LEVELS - round(0.1 * DROPOUT_LEVELS))
    assert set(y.unique().tolist()) == {0.0, torch.tensor(scale).item()}
    assert abs((y == 0).float().mean().item() - 0.1) < 0.003


def test_softmax_dropout_context_draws_as_dropout():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(4, 8, 8, generator=gen)
    v = torch.randn(4, 8, 3, generator=gen)
    torch.manual_seed(9)
    got = SoftmaxDropoutContext.apply(scores, v, 0.3)
    torch.manual_seed(9)
    keep, scale = dropout_mask(scores.shape, 0.3, CPU)
    torch.testing.assert_close(got, (torch.softmax(scores, -1) * keep * scale) @ v, rtol=1e-6, atol=1e-6)


def test_dropout_compiles_without_graph_breaks():
    x = torch.randn(64, 32, requires_grad=True)
    dropout = Dropout(0.25).train()
    y = torch.compile(dropout, fullgraph=True)(x)
    y.sum().backward()
    kept = y != 0
    assert 0.5 < kept.float().mean().item() < 0.95
    torch.testing.assert_close(y[kept], x[kept] / 0.75)  # the kept ones scaled by 1 / (1 − p)
    assert torch.equal(x.grad != 0, kept)


# ----- the fused projection of v1, split per head --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_heads_equal_chunks_of_the_heads(dtype):
    gen = torch.Generator().manual_seed(0)
    fused = torch.randn(2, 5, 3 * 3 * 4, generator=gen).to(dtype).requires_grad_()  # H = 3, d = 4
    weights = [torch.randn(2, 3, 5, 4, generator=gen).to(dtype) for _ in range(3)]
    got = fused_heads(fused, 3, 3)
    expected = fused.unflatten(-1, (3, -1)).transpose(1, 2).chunk(3, dim=-1)  # (B, H, L, 3d) → q, k, v
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)
    loss = sum((t * w).sum() for t, w in zip(got, weights, strict=True))
    (got_grad,) = torch.autograd.grad(loss, [fused])
    (expected_grad,) = torch.autograd.grad(sum((t * w).sum() for t, w in zip(expected, weights, strict=True)),
                                           [fused])
    assert got_grad.is_contiguous() and torch.equal(got_grad, expected_grad)
    (k_only,) = torch.autograd.grad((got[1] * weights[1]).sum(), [fused])  # parts without a gradient: zeros
    assert torch.equal(k_only.unflatten(-1, (3, 3, 4))[..., [0, 2], :], torch.zeros(2, 5, 3, 2, 4, dtype=dtype))


def test_fused_heads_gradcheck():
    fused = torch.randn(2, 3, 2 * 3 * 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: fused_heads(t, 2, 3), (fused,))
