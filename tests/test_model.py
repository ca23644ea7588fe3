"""The model library beyond parity: configs, checkpoint loading, heads, the decoder, mixed precision."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from DeBERTa import deberta
from DeBERTa.deberta.attention import options
from DeBERTa.deberta.model import ACTIVATIONS, Intermediate, Layer, activation
from DeBERTa.deberta.pretrained import canonical_state

TINY = deberta.ModelConfig.preset("tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, vocab_size=120)


def tiny_batch(length: int = 24, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, TINY.vocab_size, (3, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    return ids * mask, mask


# ----- config -------------------------------------------------------------------------------------
def test_presets_have_the_published_sizes():
    base, large = deberta.ModelConfig.preset("base"), deberta.ModelConfig.preset("large")
    assert (base.hidden_size, base.num_hidden_layers, base.num_attention_heads, base.intermediate_size) == (
        768, 12, 12, 3072)
    assert (large.hidden_size, large.num_hidden_layers, large.num_attention_heads, large.intermediate_size) == (
        1024, 24, 16, 4096)
    for c in (base, large):
        assert c.relative_attention and c.pos_att_type == ("c2p", "p2c")
        assert not c.position_biased_input and c.vocab_size == 50265
    with pytest.raises(deberta.ConfigError, match="known presets"):
        deberta.ModelConfig.preset("huge")


def test_original_layout_round_trip(tmp_path):
    original = {
        "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "max_position_embeddings": 512, "relative_attention": True, "pos_att_type": "c2p|p2c",
        "layer_norm_eps": 1e-7, "max_relative_positions": -1, "position_biased_input": False,
        "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 0, "vocab_size": 50265,
    }
    config = deberta.ModelConfig.from_dict(original)
    assert config == deberta.ModelConfig.preset("base")
    config.save(tmp_path / "model_config.json", layout="original")
    written = json.loads((tmp_path / "model_config.json").read_text())
    assert written["pos_att_type"] == "c2p|p2c"
    assert deberta.ModelConfig.from_json_file(tmp_path / "model_config.json") == config


def test_hf_layout_round_trip_through_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = deberta.ModelConfig.preset("tiny", pooler_dropout=0.2, type_vocab_size=2)
    config.save(tmp_path / "config.json", layout="hf")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["pos_att_type"] == ["c2p", "p2c"] and data["pooler_dropout"] == 0.2
    theirs = transformers.DebertaConfig.from_pretrained(tmp_path)
    assert theirs.pos_att_type == ["c2p", "p2c"] and theirs.max_relative_positions == 16
    theirs.save_pretrained(tmp_path / "again")
    assert deberta.ModelConfig.from_json_file(tmp_path / "again" / "config.json") == config


def test_missing_keys_mean_what_they_meant_to_the_original():
    # A key absent from a config file means no relative attention and absolute positions in the input.
    config = deberta.ModelConfig.from_dict({"hidden_size": 64, "num_attention_heads": 4})
    assert not config.relative_attention and config.position_biased_input and config.pos_att_type == ()


@pytest.mark.parametrize(
    "data,message",
    [
        ({"hidden_sise": 12}, "unknown DeBERTa config keys: hidden_sise"),
        ({"model_type": "bert"}, "'bert' is not a DeBERTa model"),
        ({"model_type": "deberta", "position_buckets": 256}, "sets 'position_buckets', a DeBERTa v2/v3 feature"),
        ({"model_type": "deberta", "share_att_key": True}, "sets 'share_att_key'"),
        ({"pos_att_type": "c2p|p2p"}, "not supported"),
        ({"hidden_size": 30, "num_attention_heads": 4}, "not a multiple"),
        ({"model_type": "deberta-v2", "norm_rel_ebd": "batch_norm"}, "norm_rel_ebd 'batch_norm'"),
        ({"model_type": "deberta-v2", "attention_head_size": 5}, "attention_head_size 5"),
        ({"model_type": "deberta-v2", "conv_kernel_size": 2}, "conv_kernel_size 2 must be odd"),
        ({"model_type": "deberta-v2", "conv_kernel_size": 3, "conv_act": "softsign"}, "conv_act 'softsign'"),
        ({"position_buckets": 256, "talking_head": True}, "'talking_head'"),
    ],
)
def test_bad_configs_are_rejected(data, message):
    with pytest.raises(deberta.ConfigError, match=message):
        deberta.ModelConfig.from_dict(data)


# ----- checkpoints --------------------------------------------------------------------------------
def original_release(tmp_path: Path) -> Path:
    """A folder in the original release's layout: `bert.` keys, LM head, absolute positions."""
    mlm = deberta.MaskedLanguageModel(TINY)
    state = {k.replace("deberta.", "bert.", 1): v for k, v in mlm.state_dict().items()}
    folder = tmp_path / "original"
    folder.mkdir()
    torch.save(state, folder / "pytorch.model.bin")
    TINY.save(folder / "model_config.json", layout="original")
    return folder


def test_original_release_loads_into_encoder_and_masked_lm(tmp_path):
    folder = original_release(tmp_path)
    state = torch.load(folder / "pytorch.model.bin", weights_only=True)
    encoder = deberta.DeBERTa(pre_trained=str(folder))
    assert encoder.embeddings.position_embeddings is None  # the encoder does not use them
    torch.testing.assert_close(encoder.encoder.rel_embeddings.weight, state["bert.encoder.rel_embeddings.weight"])
    mlm = deberta.MaskedLanguageModel(pre_trained=str(folder))
    assert mlm.fresh_heads == []
    torch.testing.assert_close(mlm.lm_predictions.lm_head.bias, state["lm_predictions.lm_head.bias"])
    torch.testing.assert_close(mlm.deberta.embeddings.position_embeddings.weight,
                               state["bert.embeddings.position_embeddings.weight"])


def test_apply_state_restores_weights_after_the_callers_init(tmp_path):
    folder = original_release(tmp_path)
    encoder = deberta.DeBERTa(pre_trained=str(folder))
    expected = encoder.encoder.layer[0].attention.self.in_proj.weight.clone()
    torch.nn.init.zeros_(encoder.encoder.layer[0].attention.self.in_proj.weight)
    encoder.apply_state()
    torch.testing.assert_close(encoder.encoder.layer[0].attention.self.in_proj.weight, expected)


def test_loading_reports_unknown_missing_and_misshaped_keys(tmp_path):
    state = deberta.DeBERTa(TINY).state_dict()
    with pytest.raises(deberta.CheckpointError, match="not part of a DeBERTa model: encoder.extra.weight"):
        canonical_state({**state, "encoder.extra.weight": torch.zeros(1)})

    del state["encoder.layer.1.output.dense.bias"]
    weights = tmp_path / "partial.bin"
    torch.save(state, weights)
    with pytest.raises(deberta.CheckpointError, match="missing encoder.layer.1.output.dense.bias"):
        deberta.DeBERTa(TINY, pre_trained=str(weights))

    state = deberta.DeBERTa(TINY).state_dict()
    state["encoder.rel_embeddings.weight"] = torch.zeros(8, TINY.hidden_size)
    torch.save(state, weights)
    with pytest.raises(deberta.CheckpointError, match=r"rel_embeddings.weight: checkpoint shape \(8, 32\)"):
        deberta.DeBERTa(TINY, pre_trained=str(weights))

    with pytest.raises(deberta.CheckpointError, match="no config file beside it"):
        deberta.DeBERTa(pre_trained=str(weights))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_never_executed(tmp_path):
    weights = tmp_path / "pytorch_model.bin"
    with open(weights, "wb") as f:
        pickle.dump({"embeddings.word_embeddings.weight": _Exploit()}, f)
    TINY.save(tmp_path / "config.json", layout="hf")
    with pytest.raises(deberta.CheckpointError, match="not a readable weights file"):
        deberta.DeBERTa(pre_trained=str(tmp_path))


def test_user_config_sets_dropout_but_cannot_change_the_architecture(tmp_path):
    folder = original_release(tmp_path)
    tuned = deberta.DeBERTa(deberta.ModelConfig.preset("tiny", vocab_size=120, hidden_dropout_prob=0.3),
                            pre_trained=str(folder))
    assert tuned.config.hidden_dropout_prob == 0.3
    with pytest.raises(deberta.CheckpointError, match="hidden_size=64"):
        deberta.DeBERTa(deberta.ModelConfig.preset("tiny", vocab_size=120, hidden_size=64), pre_trained=str(folder))


def test_unknown_name_is_a_clear_error():
    with pytest.raises(deberta.CheckpointError, match="neither a local path nor a known model name"):
        deberta.DeBERTa(pre_trained="no-such-model")


# ----- heads --------------------------------------------------------------------------------------
def test_fine_tuned_head_reused_only_when_the_labels_fit(tmp_path):
    mnli = deberta.SequenceClassificationModel(TINY, num_labels=3)
    folder = tmp_path / "mnli"
    folder.mkdir()
    from safetensors.torch import save_file

    save_file(mnli.state_dict(), str(folder / "model.safetensors"))
    TINY.save(folder / "config.json", layout="hf")
    same = deberta.SequenceClassificationModel(num_labels=3, pre_trained=str(folder))
    assert same.fresh_heads == []
    torch.testing.assert_close(same.classifier.weight, mnli.classifier.weight)
    rte = deberta.SequenceClassificationModel(num_labels=2, pre_trained=str(folder))
    assert rte.fresh_heads == ["classifier"]
    torch.testing.assert_close(rte.pooler.dense.weight, mnli.pooler.dense.weight)


def test_classification_losses():
    torch.manual_seed(0)
    ids, mask = tiny_batch()
    clf = deberta.SequenceClassificationModel(TINY, num_labels=3).eval()
    logits = clf(ids, input_mask=mask).logits
    hard = clf(ids, input_mask=mask, labels=torch.tensor([2, -1, 0])).loss  # -1: unlabelled
    expected = torch.nn.functional.cross_entropy(logits[[0, 2]], torch.tensor([2, 0]))
    torch.testing.assert_close(hard, expected)
    soft_labels = torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    soft = clf(ids, input_mask=mask, labels=soft_labels).loss
    torch.testing.assert_close(soft, -(logits.log_softmax(-1) * soft_labels).sum(-1).mean())

    reg = deberta.SequenceClassificationModel(TINY, num_labels=1).eval()
    out = reg(ids, input_mask=mask, labels=torch.tensor([0.5, 4.0, 2.5]))
    torch.testing.assert_close(out.loss, ((out.logits.view(-1) - torch.tensor([0.5, 4.0, 2.5])) ** 2).mean())


def test_token_classification_and_multiple_choice_shapes_and_losses():
    torch.manual_seed(0)
    ids, mask = tiny_batch()
    tok = deberta.TokenClassificationModel(TINY, num_labels=5).eval()
    labels = torch.randint(0, 5, ids.shape)
    labels[mask == 0] = -100
    out = tok(ids, input_mask=mask, labels=labels)
    assert out.logits.shape == (3, 24, 5)
    real = mask.bool()
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits[real], labels[real]))

    mc = deberta.MultiChoiceModel(TINY).eval()
    choices = torch.stack([ids, ids.flip(0)], dim=1)  # (B=3, N=2, L)
    out = mc(choices, input_mask=torch.stack([mask, mask.flip(0)], 1), labels=torch.tensor([0, 1, 1]))
    assert out.logits.shape == (3, 2) and torch.isfinite(out.loss)


# ----- enhanced mask decoder ----------------------------------------------------------------------
def test_decoder_query_path_equals_self_attention_when_queries_are_the_states():
    torch.manual_seed(0)
    layer = Layer(TINY).eval()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.3)
    hidden = torch.randn(2, 20, TINY.hidden_size)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 12:] = 0
    rel = torch.randn(2 * TINY.relative_span, TINY.hidden_size)
    fused = layer(hidden, mask, rel)
    split = layer(hidden, mask, rel, query_states=hidden)
    real = mask.bool()
    torch.testing.assert_close(split[real], fused[real], rtol=1e-5, atol=1e-5)


def test_decoder_uses_absolute_positions_and_learns():
    torch.manual_seed(0)
    mlm = deberta.MaskedLanguageModel(TINY)
    ids, mask = tiny_batch(seed=1)
    labels = torch.zeros_like(ids)
    labels[:, 3] = ids[:, 3]
    labels[0, 7] = ids[0, 7]
    masked = ids.clone()
    masked[labels > 0] = 5  # a stand-in [MASK] id
    mlm.eval()
    before = mlm(masked, input_mask=mask, labels=labels)
    assert before.logits.shape == (4, TINY.vocab_size)
    with torch.no_grad():
        mlm.deberta.embeddings.position_embeddings.weight.add_(1.0)
    shifted = mlm(masked, input_mask=mask, labels=labels)
    assert not torch.allclose(before.logits, shifted.logits)  # positions reach the prediction
    mlm.train()
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = mlm(masked, input_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# ----- mixed precision and padding -----------------------------------------------------------------
@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 0.08), (torch.float16, 0.02)])
def test_autocast_forward_backward_close_to_fp32(dtype, tolerance):
    torch.manual_seed(0)
    clf = deberta.SequenceClassificationModel(TINY, num_labels=3).eval()
    ids, mask = tiny_batch()
    labels = torch.tensor([0, 1, 2])
    ref = clf(ids, input_mask=mask, labels=labels)
    ref.loss.backward()
    ref_grad = clf.deberta.encoder.layer[0].attention.self.in_proj.weight.grad.clone()
    clf.zero_grad()
    with torch.autocast("cpu", dtype=dtype):
        out = clf(ids, input_mask=mask, labels=labels)
    out.loss.backward()
    grad = clf.deberta.encoder.layer[0].attention.self.in_proj.weight.grad
    assert torch.isfinite(out.logits).all() and torch.isfinite(grad).all()
    scale = ref.logits.abs().max().item()
    assert (out.logits.float() - ref.logits).abs().max().item() < tolerance * max(scale, 1.0)
    assert (grad - ref_grad).norm() / ref_grad.norm() < 4 * tolerance


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fully_padded_rows_give_no_nan(dtype):
    encoder = deberta.DeBERTa(TINY).eval()
    ids, mask = tiny_batch()
    mask[2] = 0
    with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
        layers = encoder(ids * mask, mask)
    assert all(torch.isfinite(h).all() for h in layers)
    assert (layers[-1][2] == layers[-1][2, 0]).all()  # nothing leaks into an empty row


@pytest.mark.parametrize("grad", [True, False], ids=["explicit", "in pieces"])
def test_padded_queries_attend_to_nothing(grad):
    """As the released XSoftmax: the context of a padded position is zero, a real one's is not."""
    torch.manual_seed(0)
    encoder = deberta.DeBERTa(TINY).eval()
    _, mask = tiny_batch()
    hidden = torch.randn(*mask.shape, TINY.hidden_size)
    with torch.set_grad_enabled(grad):
        context = encoder.encoder.layer[0].attention.self(hidden, mask, encoder.encoder.get_rel_embedding())
    assert (context[mask == 0] == 0).all() and (context[mask == 1].abs().sum(-1) > 0).all()


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_activation_in_place_equals_its_out_of_place_form(name):
    x = torch.linspace(-4, 4, 33)
    overwritten = x.clone()
    result = activation(name, in_place=True)(overwritten)
    assert result.data_ptr() == overwritten.data_ptr()
    torch.testing.assert_close(result, activation(name)(x), rtol=0, atol=0)
    assert pickle.loads(pickle.dumps(activation(name, in_place=True))) is activation(name, in_place=True)


@pytest.mark.parametrize("name", ["gelu", "gelu_new"])
def test_feed_forward_activates_in_place_only_without_autograd(name):
    """Inference overwrites the expansion's output; with gradients on, backward still gets the pre-activation."""
    torch.manual_seed(0)
    layer = Intermediate(dataclasses.replace(TINY, hidden_act=name))
    expanded = []
    layer.dense.register_forward_hook(lambda module, inputs, output: expanded.append(output))
    x = torch.randn(2, 5, TINY.hidden_size)
    with options(onednn_linear=False):  # PyTorch's product (oneDNN applies the activation inside its own)
        check_in_place_activation(layer, x, expanded, name)


def check_in_place_activation(layer: Intermediate, x: torch.Tensor, expanded: list, name: str) -> None:
    with torch.no_grad():
        inferred = layer(x)
    assert inferred.data_ptr() == expanded[-1].data_ptr()
    trained = layer(x)
    assert trained.data_ptr() != expanded[-1].data_ptr()
    torch.testing.assert_close(inferred, trained, rtol=0, atol=0)
    trained.sum().backward()
    reference = torch.autograd.grad(activation(name)(layer.dense(x)).sum(), layer.dense.weight)[0]
    torch.testing.assert_close(layer.dense.weight.grad, reference)


# ----- the real checkpoint (opt-in) ---------------------------------------------------------------
def real_base_folder() -> Path | None:
    """The real microsoft/deberta-base, from DEBERTA_BASE_DIR or the user's default cache."""
    for candidate in (os.environ.get("DEBERTA_BASE_DIR"), Path.home() / ".~DeBERTa" / "models" / "base"):
        if candidate and (Path(candidate) / "pytorch_model.bin").is_file():
            return Path(candidate)
    return None


@pytest.mark.skipif(real_base_folder() is None, reason="microsoft/deberta-base not on disk (set DEBERTA_BASE_DIR)")
def test_real_deberta_base_golden_values():
    model = deberta.DeBERTa(pre_trained=str(real_base_folder())).eval()
    ids = torch.tensor([[0, 31414, 232, 328, 740, 1140, 12695, 69, 46078, 1588, 2]])
    mask = torch.ones_like(ids)
    mask[0, 0] = 0
    with torch.no_grad():
        output = model(ids, mask)[-1]
    expected = torch.tensor([[[-0.5986, -0.8055, -0.8462], [1.4484, -0.9348, -0.8059], [0.3123, 0.0032, -1.4131]]])
    torch.testing.assert_close(output[:, 1:4, 1:4], expected, atol=1e-4, rtol=1e-4)
