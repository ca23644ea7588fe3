"""The fast attention of DeBERTa v2/v3 (log buckets) against the formula written with explicit indices.

c2p[i, j] = q_i · kr[row(i − j)], p2c[i, j] = k_j · qr[row(i − j)], row(δ) = clamp(bucket(δ) + P, 0, 2P − 1)
over the whole table, as transformers computes it (an index of the scores' size, built here only).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from attention_helpers import random_attention as randomized_attention
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.deberta import cpu_kernel
from DeBERTa.deberta.attention import log_bucket_position, options, padding_bias
from DeBERTa.deberta.model import DisentangledSelfAttentionV2

TINY = deberta.ModelConfig.preset("v3-tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                  vocab_size=120)


def random_attention(config: deberta.ModelConfig = TINY, seed: int = 0) -> DisentangledSelfAttentionV2:
    return randomized_attention(DisentangledSelfAttentionV2, config, seed)


def formula_scores(attention: DisentangledSelfAttentionV2, q: torch.Tensor, k: torch.Tensor,
                   rel_embeddings: torch.Tensor) -> torch.Tensor:
    """Content + c2p + p2c scores (B, H, Lq, Lk), every (i, j) looking its row up in the whole table."""
    table = attention.max_relative_positions
    delta = torch.arange(q.shape[-2])[:, None] - torch.arange(k.shape[-2])[None, :]
    if attention.position_buckets > 0:
        delta = log_bucket_position(delta, attention.position_buckets, attention.bucket_max_position)
    index = torch.clamp(delta + table, 0, 2 * table - 1)  # (Lq, Lk)
    key_linear, query_linear = attention.position_linears()
    heads = attention.num_heads
    scores = q @ k.transpose(-1, -2)
    if key_linear is not None:
        kr = key_linear(rel_embeddings).view(2 * table, heads, -1).transpose(0, 1)  # (H, 2P, d)
        scores = scores + torch.einsum("bhid,hijd->bhij", q, kr[:, index])
    if query_linear is not None:
        qr = query_linear(rel_embeddings).view(2 * table, heads, -1).transpose(0, 1)
        scores = scores + torch.einsum("bhjd,hijd->bhij", k, qr[:, index])
    return scores * attention.scale


def inputs(query_size: int, key_size: int, heads: int, head_size: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(3, heads, query_size, head_size, generator=gen)
    k, v = (torch.randn(3, heads, key_size, head_size, generator=gen) for _ in range(2))
    mask = torch.ones(3, key_size, dtype=torch.long)
    mask[1, key_size // 2 + 1 :] = 0
    return q, k, v, mask


def test_buckets_are_the_identity_inside_half_the_buckets_and_transformers_beyond():
    transformers = pytest.importorskip("transformers")
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    delta = torch.arange(-600, 601)
    for buckets, top in [(256, 512), (8, 24), (6, 12), (16, 32)]:
        ours = log_bucket_position(delta, buckets, top)
        assert torch.equal(ours, make_log_bucket_position(delta, buckets, top).long())
        inside = delta.abs() <= buckets // 2
        assert torch.equal(ours[inside], delta[inside])
        assert ours[delta == top - 1].item() == buckets - 1  # the last row at k − 1, beyond: clamped by the lookup
        assert (ours.diff() >= 0).all()  # monotone: a row serves consecutive diagonals
    del transformers


@pytest.mark.parametrize("query_size,key_size", [(1, 1), (5, 5), (37, 37), (96, 96), (20, 48), (48, 20)])
@pytest.mark.parametrize("terms", [("c2p", "p2c"), ("c2p",), ("p2c",)])
def test_attention_follows_the_formula(query_size, key_size, terms):
    """Gradients on (the whole batch at once) and off (pieces), against softmax(formula + padding) · v."""
    share = len(terms) == 2  # the position keys of the content projections, or their own
    attention = random_attention(dataclasses.replace(TINY, pos_att_type=terms, share_att_key=share))
    rel = torch.randn(2 * attention.max_relative_positions, TINY.hidden_size)
    q, k, v, mask = inputs(query_size, key_size, attention.num_heads, attention.head_size)
    padding = padding_bias(mask, torch.float32)
    expected = torch.softmax(formula_scores(attention, q, k, rel) + padding, dim=-1) @ v
    got = attention.attend_with_positions(q, k, v, rel, padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)
    with torch.no_grad():
        got = attention.attend_with_positions(q, k, v, rel, padding)
        exported = attention.attend_for_export(q, k, v, rel, padding)  # what an exported graph computes
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(exported, expected, rtol=1e-5, atol=2e-5)


def test_attention_in_small_pieces_and_with_a_three_d_mask():
    attention = random_attention()
    rel = torch.randn(2 * attention.max_relative_positions, TINY.hidden_size)
    q, k, v, mask = inputs(40, 40, attention.num_heads, attention.head_size, seed=2)
    mask3 = (torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(3)) < 0.5) | torch.eye(40, dtype=torch.bool)
    padding = padding_bias(mask3.long(), torch.float32)  # (B, 1, Lq, Lk)
    assert padding.shape == (3, 1, 40, 40)
    expected = torch.softmax(formula_scores(attention, q, k, rel) + padding, dim=-1) @ v
    with torch.no_grad(), options(piece_bytes={"cpu": 1}):  # one head of one sequence at a time
        assert not attention.kernel_applies(q, k, padding)  # the kernel takes a padding mask only
        got = attention.attend_with_positions(q, k, v, rel, padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


def test_gradients_follow_the_formula():
    attention = random_attention(dataclasses.replace(TINY, share_att_key=False))
    rel = torch.randn(2 * attention.max_relative_positions, TINY.hidden_size, requires_grad=True)
    q, k, v, mask = (t.requires_grad_() if t.is_floating_point() else t
                     for t in inputs(37, 37, attention.num_heads, attention.head_size))
    padding = padding_bias(mask, torch.float32)
    weights = torch.randn(3, attention.num_heads, 37, attention.head_size)
    tensors = [q, k, v, rel, *attention.position_weights()]
    got = torch.autograd.grad((attention.attend_with_positions(q, k, v, rel, padding) * weights).sum(), tensors)
    expected = torch.autograd.grad(
        ((torch.softmax(formula_scores(attention, q, k, rel) + padding, -1) @ v) * weights).sum(), tensors)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_training_saves_no_index_tensors_of_the_scores_size():
    torch.manual_seed(0)
    model = deberta.DeBERTa(dataclasses.replace(TINY, max_position_embeddings=64)).train()
    ids = torch.randint(1, 120, (3, 48))
    mask = torch.ones_like(ids)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        model(ids, mask)
    probabilities = 3 * TINY.num_attention_heads * 48 * 48
    assert max(t.numel() for t in saved if t.is_floating_point()) <= probabilities
    assert max(t.numel() for t in saved if not t.is_floating_point() and t.dtype != torch.bool) < 48 * 48


def test_compiles_without_graph_breaks():
    torch.manual_seed(0)
    model = deberta.DeBERTa(dataclasses.replace(TINY, num_hidden_layers=1, conv_kernel_size=3))
    compiled = torch.compile(model, fullgraph=True)
    ids = torch.randint(1, 120, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 30:] = 0
    torch.testing.assert_close(compiled(ids, mask)[-1], model(ids, mask)[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [1, 5, 37, 130])  # 130: past the log scale's end (32)
def test_cpu_kernel_follows_the_formula_with_buckets(length):
    if cpu_kernel.kernel() is None:
        pytest.skip("the CPU kernel does not build here")
    attention = random_attention(dataclasses.replace(TINY, hidden_size=32, num_attention_heads=2,
                                                     max_position_embeddings=256))
    rel = torch.randn(2 * attention.max_relative_positions, 32)
    q, k, v, mask = inputs(length, length, attention.num_heads, attention.head_size)
    mask[2] = 0  # every key padded: no NaN
    padding = padding_bias(mask, torch.float32)
    expected = torch.softmax(formula_scores(attention, q, k, rel) + padding, dim=-1) @ v
    with torch.no_grad():
        assert attention.kernel_applies(q, k, padding)
        got = attention.attend_with_positions(q, k, v, rel, padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=2e-5)


def test_reused_projections_follow_the_shared_keys_and_the_table_norm():
    """Inference reuses the normalised table and its projections until a weight they come from changes."""
    torch.manual_seed(0)
    model = deberta.DeBERTa(TINY).eval()
    ids = torch.randint(1, 120, (2, 40))
    mask = torch.ones_like(ids)

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(ids, mask)[-1]

    def fresh() -> torch.Tensor:
        with options(reuse_position_projections=False):
            return run()

    first = run()
    with torch.no_grad():
        table = model.encoder.get_rel_embedding()
        assert model.encoder.get_rel_embedding() is table  # the same tensor: the layers' projections are reused
    assert model.encoder.layer[0].attention.self._reused_projections
    assert torch.equal(run(), first) and torch.equal(fresh(), first)
    for weight in (model.encoder.layer[0].attention.self.key_proj.weight, model.encoder.LayerNorm.weight):
        with torch.no_grad():
            weight.mul_(1.5)  # in place: a new version
        changed = run()
        assert not torch.equal(changed, first) and torch.equal(changed, fresh())
        first = changed
    with torch.inference_mode():  # the table made in inference mode has no version counter: reused all the same
        assert torch.equal(model(ids, mask)[-1], first) and torch.equal(model(ids, mask)[-1], first)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_softmax_dropout_context_equals_its_three_operations_and_keeps_one_score_sized_tensor(dtype):
    from DeBERTa.deberta.attention import SoftmaxDropoutContext
    from DeBERTa.deberta.model import Dropout

    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(6, 20, 30, generator=gen).to(dtype).requires_grad_()
    v = torch.randn(6, 30, 8, generator=gen).to(dtype).requires_grad_()
    weights = torch.randn(6, 20, 8, generator=gen).to(dtype)
    torch.manual_seed(5)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        got = SoftmaxDropoutContext.apply(scores, v, 0.2)
    score_sized = sorted(str(t.dtype) for t in saved if t.numel() == scores.numel())
    assert score_sized == ["torch.bool", "torch.float32"]  # the probabilities and the mask
    got_grads = torch.autograd.grad((got * weights).sum(), [scores, v])
    torch.manual_seed(5)  # the same draws
    expected = Dropout(0.2).train()(torch.softmax(scores, -1, dtype=torch.float32)).to(dtype) @ v
    expected_grads = torch.autograd.grad((expected * weights).sum(), [scores, v])
    # The same draws; dropout's scale multiplies the context instead of the probabilities: equal up to rounding.
    tolerance = {"rtol": 1e-6, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-2, "atol": 2e-2}
    torch.testing.assert_close(got, expected, **tolerance)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, **tolerance)


def test_training_with_dropout_keeps_one_score_sized_float_tensor_per_layer():
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, attention_probs_dropout_prob=0.1)
    model = deberta.DeBERTa(config).train()
    ids = torch.randint(1, 120, (3, 40))
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        model(ids, torch.ones_like(ids))
    score_sized = 3 * config.num_attention_heads * 40 * 40
    floats = {t.data_ptr() for t in saved if t.is_floating_point() and t.numel() == score_sized}
    assert len(floats) == config.num_hidden_layers


@pytest.mark.parametrize("name", ["gelu", "gelu_new", "relu", "tanh", "silu"])
def test_activation_linear_equals_activation_then_linear_and_keeps_the_pre_activation_only(name):
    from DeBERTa.deberta.model import activation
    from DeBERTa.deberta.recompute import activation_linear

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 16, generator=gen, requires_grad=True)
    weight = torch.randn(5, 16, generator=gen, requires_grad=True)
    bias = torch.randn(5, generator=gen, requires_grad=True)
    weights = torch.randn(3, 7, 5, generator=gen)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        got = activation_linear(x, name, weight, bias)
    assert [t.shape for t in saved] == [x.shape, weight.shape]
    expected = torch.nn.functional.linear(activation(name)(x), weight, bias)
    with options(onednn_linear=False):  # PyTorch's products: the very same operations
        plain = activation_linear(x, name, weight, bias)
        plain_grads = torch.autograd.grad((plain * weights).sum(), [x, weight, bias])
    torch.testing.assert_close(plain, expected, rtol=0, atol=0)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # oneDNN's products: float32 rounding
    got_grads = torch.autograd.grad((got * weights).sum(), [x, weight, bias])
    expected_grads = torch.autograd.grad((expected * weights).sum(), [x, weight, bias])
    for a, p, b in zip(got_grads, plain_grads, expected_grads, strict=True):
        torch.testing.assert_close(p, b, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
