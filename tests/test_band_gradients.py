"""The hand-written backward of the relative terms (attention.DisentangledBias) against autograd of the same forward.

tests/test_fast_attention.py and tests/test_attention_v2.py check the whole attention, gradients included,
against the formula with explicit indices; here each piece of the backward is checked on its own, over
the block layouts (one block, several, Lq ≠ Lk) and each term alone.
"""

from __future__ import annotations

import pytest
import torch

from DeBERTa.deberta.attention import (
    DisentangledBias,
    band_bias,
    band_block,
    band_window_rows,
    diagonal_band,
    gather_windows,
    padding_bias,
    skew,
)


@pytest.mark.parametrize("rows,width,columns", [(1, 1, 2), (4, 6, 10), (32, 128, 160), (5, 3, 9)])
def test_skew_puts_the_band_back_and_zeros_elsewhere(rows, width, columns):
    band = torch.randn(2, 3, rows, width, generator=torch.Generator().manual_seed(rows))
    products = skew(band, columns)
    assert products.shape == (2, 3, rows, columns)
    assert torch.equal(diagonal_band(products, width), band)
    outside = products.clone()
    diagonal_band(outside, width).zero_()
    assert not outside.any()  # every entry outside the band written as zero (torch.empty leaves garbage)


def random_inputs(query_size: int, key_size: int, terms: tuple[str, ...], dtype: torch.dtype = torch.float32):
    gen = torch.Generator().manual_seed(query_size * 7 + key_size)
    batch, heads, size, table = 2, 2, 16, 40
    q = torch.randn(batch, heads, query_size, size, generator=gen)
    k = torch.randn(batch, heads, key_size, size, generator=gen)
    diagonals = torch.arange(query_size + key_size)
    windows = []
    for term, (own, other) in (("c2p", (query_size, key_size)), ("p2c", (key_size, query_size))):
        if term not in terms:
            windows.append(None)
            continue
        positions = torch.randn(heads, table, size, generator=gen)
        rows = torch.randint(0, table, diagonals.shape, generator=gen)  # any δ → row table
        block = band_block(own, other, batch, size)
        windows.append(gather_windows(positions, band_window_rows(rows, own, other, block)))
    mask = torch.ones(batch, key_size, dtype=torch.long)
    mask[1, key_size // 2 :] = 0
    padding = padding_bias(mask, dtype)
    return [t.to(dtype).requires_grad_() for t in (q, k)], [None if w is None else w.to(dtype).requires_grad_()
                                                           for w in windows], padding


@pytest.mark.parametrize("query_size,key_size", [(5, 5), (64, 64), (96, 32), (20, 48), (48, 20)])
@pytest.mark.parametrize("terms", [("c2p", "p2c"), ("c2p",), ("p2c",)])
def test_disentangled_bias_backward_equals_autograd_of_its_forward(query_size, key_size, terms):
    (q, k), (kr, qr), padding = random_inputs(query_size, key_size, terms)
    if (query_size, key_size) in ((64, 64), (96, 32)):  # these take several blocks
        assert (kr is None or kr.shape[1] > 1) and (qr is None or qr.shape[1] > 1 or key_size < 64)
    weights = torch.randn(2, 2, query_size, key_size, generator=torch.Generator().manual_seed(9))
    inputs = [t for t in (q, k, kr, qr) if t is not None]
    fast = DisentangledBias.apply(q, k, kr, qr, padding)
    plain = band_bias(q, k, kr, qr, padding)  # the same operations, differentiated by autograd through the views
    torch.testing.assert_close(fast, plain, rtol=0, atol=0)
    got = torch.autograd.grad((fast * weights).sum(), inputs, allow_unused=True)
    expected = torch.autograd.grad((plain * weights).sum(), inputs, allow_unused=True)
    for a, b in zip(got, expected, strict=True):
        if b is None:  # the term's input is unused (q with p2c alone, k with c2p alone)
            assert a is None or not a.any()
            continue
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_disentangled_bias_backward_under_bf16_autocast():
    (q, k), (kr, qr), padding = random_inputs(64, 64, ("c2p", "p2c"))
    weights = torch.randn(2, 2, 64, 64, generator=torch.Generator().manual_seed(9))
    inputs = [q, k, kr, qr]
    expected = torch.autograd.grad((band_bias(q, k, kr, qr, padding) * weights).sum(), inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bias = DisentangledBias.apply(q, k, kr, qr, padding.bfloat16())
    assert bias.dtype == torch.bfloat16
    got = torch.autograd.grad((bias.float() * weights).sum(), inputs)
    for a, b in zip(got, expected, strict=True):
        assert a.dtype == b.dtype == torch.float32 and torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-2 * b.abs().max().item())
