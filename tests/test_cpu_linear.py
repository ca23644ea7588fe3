"""The layers' linear maps through oneDNN in CPU float32 inference (DeBERTa/deberta/cpu_linear.py).

Against ``F.linear`` and the activations applied after it, and the conditions under which PyTorch's own
product runs instead (gradients, autocast, other dtypes, the option off, an export).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from DeBERTa import deberta
from DeBERTa.deberta import cpu_linear
from DeBERTa.deberta.attention import options
from DeBERTa.deberta.model import activation

needs_onednn = pytest.mark.skipif(not cpu_linear.available(), reason="this PyTorch has no oneDNN linear operation")


@needs_onednn
@pytest.mark.parametrize("shape", [(7, 48), (2, 5, 48), (1, 1, 48)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("name", [None, *cpu_linear.FUSED_ACTIVATIONS])
def test_onednn_linear_equals_pytorch(shape, with_bias, name):
    gen = torch.Generator().manual_seed(0)
    x, weight = torch.randn(*shape, generator=gen), torch.randn(96, 48, generator=gen)
    bias = torch.randn(96, generator=gen) if with_bias else None
    expected = F.linear(x, weight, bias)
    expected = expected if name is None else activation(name)(expected)
    with torch.no_grad():
        assert cpu_linear.applies(x, weight, bias)
        got = cpu_linear.linear(x, weight, bias, name)
        with options(onednn_linear=False):
            assert not cpu_linear.applies(x, weight, bias)
            fallback = cpu_linear.linear(x, weight, bias, name)
    assert got.shape == expected.shape == (*shape[:-1], 96)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fallback, expected, rtol=0, atol=0)


@needs_onednn
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("name", [None, "gelu"])
def test_gradients_through_onednn_equal_pytorch(with_bias, name):
    gen = torch.Generator().manual_seed(0)
    leaves = [torch.randn(3, 5, 48, generator=gen), torch.randn(96, 48, generator=gen)]
    if with_bias:
        leaves.append(torch.randn(96, generator=gen))
    upstream = torch.randn(3, 5, 96, generator=gen)

    def gradients(function) -> tuple[torch.Tensor, list[torch.Tensor]]:
        inputs = [t.clone().requires_grad_() for t in leaves]
        out = function(*inputs)
        return out, list(torch.autograd.grad((out * upstream).sum(), inputs))

    assert cpu_linear.applies(*leaves)
    got, got_grads = gradients(lambda *t: cpu_linear.linear(*t, activation=name))
    expected, expected_grads = gradients(lambda *t: (F.linear(*t) if name is None else F.gelu(F.linear(*t))))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for a, b in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@needs_onednn
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "sliced"])
def test_matmul_equals_pytorch_for_any_strides(layout):
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(40, 24, generator=gen), torch.randn(24, 56, generator=gen)
    if layout == "transposed":  # as the backward passes them: a gradient's and an input's transposes
        a, b = a.t().contiguous().t(), b.t().contiguous().t()
    elif layout == "sliced":
        a, b = torch.randn(40, 50, generator=gen)[:, 3:27], torch.randn(30, 56, generator=gen)[2:26]
    assert cpu_linear._usable(a, b)
    torch.testing.assert_close(cpu_linear.matmul(a, b), a @ b, rtol=1e-5, atol=1e-5)
    with options(onednn_linear=False):
        torch.testing.assert_close(cpu_linear.matmul(a, b), a @ b, rtol=0, atol=0)
    assert cpu_linear.matmul(a.double(), b.double()).dtype == torch.float64  # PyTorch's product


@needs_onednn
def test_the_inputs_gradient_runs_in_onednn(monkeypatch):
    calls = []
    operation = torch.ops.mkldnn._linear_pointwise

    class Recording:
        def __getattr__(self, name):
            return (lambda *args: calls.append(args[0].shape) or operation(*args)) if name == "_linear_pointwise" \
                else getattr(torch.ops.mkldnn, name)

    x = torch.randn(3, 5, 48, requires_grad=True)
    weight, bias = torch.randn(96, 48, requires_grad=True), torch.randn(96, requires_grad=True)
    monkeypatch.setattr(torch.ops, "mkldnn", Recording())
    out = cpu_linear.linear(x, weight, bias)
    assert calls == [(15, 48)]  # forward
    out.backward(torch.randn(3, 5, 96).expand(3, 5, 96))
    assert calls[1:] == [(15, 96)]  # the input's gradient (the weight's is MKL's: no faster in oneDNN)


def test_pytorch_product_where_onednn_does_not_apply(monkeypatch):
    x, weight, bias = torch.randn(4, 8), torch.randn(6, 8), torch.randn(6)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not cpu_linear.applies(x, weight, bias)
            assert cpu_linear.linear(x, weight, bias).dtype == torch.bfloat16  # autocast still decides
        assert not cpu_linear.applies(x.double(), weight.double(), bias.double())
        assert not cpu_linear.applies(x[:0], weight, bias)  # nothing to multiply
        monkeypatch.setattr(cpu_linear, "exporting", lambda: True)
        assert not cpu_linear.applies(x, weight, bias)  # an exported graph holds standard operations


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="tanh"):
        cpu_linear.linear(torch.randn(2, 4), torch.randn(3, 4), activation="tanh")


@needs_onednn
@pytest.mark.parametrize("model_config", ["tiny", "v3-tiny"])
def test_model_takes_onednn_in_inference_and_gives_the_same_outputs(model_config, monkeypatch):
    torch.manual_seed(0)
    model = deberta.DeBERTa(deberta.ModelConfig.preset(model_config)).eval()
    ids = torch.randint(5, 100, (2, 20))
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    taken = []
    applies = cpu_linear.applies
    monkeypatch.setattr(cpu_linear, "applies", lambda *args: taken.append(applies(*args)) or taken[-1])
    with torch.no_grad():
        fast = model(ids, mask)[-1]
        assert taken and all(taken)  # every call in the layers took oneDNN
        with options(onednn_linear=False):
            plain = model(ids, mask)[-1]
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-5)
