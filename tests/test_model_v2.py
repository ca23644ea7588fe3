"""DeBERTa v2/v3 against transformers' DebertaV2 classes at tiny sizes with random weights.

Every parameter (LayerNorms, biases, the convolution) is drawn at random before ``save_pretrained``, and
the checkpoint is loaded here by path, so a term computed wrongly anywhere — or a key loaded into the
wrong place — shows. Outputs are compared on real tokens only. The configs together cover: buckets
small enough that 37 tokens reach the logarithmic scale and pass its end, no buckets with a clamp,
shared keys on and off, the convolution on and off (with groups), the normalised table on and off, the
three term sets, absolute positions in the input, token types 0 and 2, padding, and a length that is
no multiple of any block.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from test_model_parity import randomize
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta

transformers = pytest.importorskip("transformers")

BASE = dict(
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
    hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, vocab_size=97, relative_attention=True,
    position_biased_input=False, pooler_hidden_size=32, layer_norm_eps=1e-7,
)
CONFIGS = {
    # v3's shape: buckets (mid 4, log scale to 23: 37 tokens pass its end), shared keys, normalised table.
    "v3": dict(position_buckets=8, max_relative_positions=24, share_att_key=True, norm_rel_ebd="layer_norm",
               pos_att_type="p2c|c2p"),
    # v2-xlarge's shape: the convolution after the first layer, an explicit head width, token types.
    "v2-conv": dict(position_buckets=8, max_relative_positions=24, share_att_key=True, norm_rel_ebd="layer_norm",
                    pos_att_type=["p2c", "c2p"], conv_kernel_size=3, conv_act="gelu", attention_head_size=8,
                    type_vocab_size=2),
    "own-keys+conv-groups": dict(position_buckets=16, max_relative_positions=32, share_att_key=False,
                                 pos_att_type=["c2p", "p2c"], conv_kernel_size=5, conv_groups=4, conv_act="tanh"),
    "c2p": dict(position_buckets=6, max_relative_positions=12, share_att_key=True, norm_rel_ebd="layer_norm",
                pos_att_type=["c2p"]),
    "p2c+abs": dict(position_buckets=8, max_relative_positions=24, share_att_key=False, pos_att_type=["p2c"],
                    position_biased_input=True, type_vocab_size=2),
    "no-buckets": dict(max_relative_positions=5, share_att_key=False, norm_rel_ebd="layer_norm",
                       pos_att_type=["c2p", "p2c"]),
    # Head width 16: float32 inference can take the compiled CPU kernel.
    "v3-kernel": dict(num_attention_heads=2, position_buckets=8, max_relative_positions=24, share_att_key=True,
                      norm_rel_ebd="layer_norm", pos_att_type=["p2c", "c2p"]),
}
LENGTH = 37


def hf_config(name: str, **extra) -> transformers.DebertaV2Config:
    return transformers.DebertaV2Config(**{**BASE, **CONFIGS[name], **extra})


def batch(type_vocab_size: int, length: int = LENGTH, seed: int = 0, size: int = 3):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, BASE["vocab_size"], (size, length), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 29:] = 0
    mask[2, 6:] = 0
    ids = ids * mask
    types = (torch.arange(length)[None] >= 9).long().expand_as(ids) * mask if type_vocab_size else None
    return ids, mask, types


def saved(theirs: torch.nn.Module, tmp_path, seed: int) -> str:
    randomize(theirs, seed=seed)
    theirs.save_pretrained(tmp_path)
    return str(tmp_path)


def their_and_our_encoders(name: str, tmp_path, **extra):
    torch.manual_seed(0)
    theirs = transformers.DebertaV2Model(hf_config(name, **extra)).eval()
    folder = saved(theirs, tmp_path, seed=1)
    return theirs, deberta.DeBERTa(pre_trained=folder).eval()


def assert_grads_close(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    """Same gradients, within 1e-5 of each gradient's largest magnitude (float32 accumulation order differs)."""
    their_grads = {n: p.grad for n, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        ref = their_grads[name]
        assert (p.grad is None) == (ref is None), name
        if ref is not None:
            torch.testing.assert_close(p.grad, ref, rtol=1e-4, atol=1e-5 * max(1.0, ref.abs().max().item()), msg=name)


def assert_layers_close(got, ref, real) -> None:
    assert len(got) == len(ref)
    for layer, (a, b) in enumerate(zip(got, ref, strict=True)):
        torch.testing.assert_close(a[real], b[real], rtol=1e-5, atol=1e-5, msg=f"layer {layer}")


def test_configs_cover_what_the_issue_lists():
    configs = [deberta.ModelConfig.from_dict(hf_config(n).to_dict()) for n in CONFIGS]
    assert all(c.is_v2 for c in configs)
    assert {c.share_att_key for c in configs} == {True, False}
    assert {c.conv_kernel_size > 0 for c in configs} == {True, False}
    assert {c.norm_rel_ebd for c in configs} == {"layer_norm", "none"}
    assert {c.pos_att_type for c in configs} == {("c2p", "p2c"), ("c2p",), ("p2c",)}
    assert {c.type_vocab_size for c in configs} == {0, 2} and any(c.position_biased_input for c in configs)
    # 37 tokens pass the end of the log scale (|δ| up to 36 ≥ max_relative_positions) where there are buckets.
    assert all(LENGTH > c.relative_span for c in configs if c.position_buckets > 0)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_encoder_layers_and_gradients_match(name, tmp_path):
    theirs, ours = their_and_our_encoders(name, tmp_path)
    ids, mask, types = batch(ours.config.type_vocab_size)
    real = mask.bool()
    with torch.no_grad():  # inference: pieces, reused projections, the CPU kernel where it applies
        ref = theirs(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True).hidden_states[1:]
        assert_layers_close(ours(ids, mask, types), ref, real)
        assert_layers_close(ours(ids, mask, types), ref, real)  # the second call reuses the projections

    ref = theirs(ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True).hidden_states[1:]
    got = ours(ids, mask, types)
    assert_layers_close(got, ref, real)
    weights = torch.randn(got[-1].shape, generator=torch.Generator().manual_seed(3))
    (got[-1][real] * weights[real]).sum().backward()
    (ref[-1][real] * weights[real]).sum().backward()
    assert_grads_close(ours, theirs)


def test_long_sequences_in_blocks_match(tmp_path):
    """96 tokens: the relative products in blocks of 16, with and without gradients."""
    theirs, ours = their_and_our_encoders("v3", tmp_path, max_position_embeddings=128)
    ids, mask, _ = batch(0, length=96, seed=5)
    real = mask.bool()
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            ref = theirs(ids, attention_mask=mask, output_hidden_states=True).hidden_states[1:]
            assert_layers_close(ours(ids, mask), ref, real)


def three_d_mask(mask: torch.Tensor, seed: int = 7) -> torch.Tensor:
    """Real tokens attend to a random subset of the real tokens (always themselves)."""
    length = mask.shape[1]
    allowed = torch.rand(mask.shape[0], length, length, generator=torch.Generator().manual_seed(seed)) < 0.6
    allowed |= torch.eye(length, dtype=torch.bool)
    return (allowed & mask[:, :, None].bool() & mask[:, None, :].bool()).long()


@pytest.mark.parametrize("name", ["v3", "c2p", "no-buckets"])
def test_three_d_mask_matches_their_encoder(name, tmp_path):
    """The original API's (B, L, L) mask: as transformers' encoder given it after the embeddings of the real tokens."""
    theirs, ours = their_and_our_encoders(name, tmp_path)
    ids, mask, types = batch(ours.config.type_vocab_size)
    mask3 = three_d_mask(mask)
    real = mask.bool()
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            embedded = theirs.embeddings(input_ids=ids, token_type_ids=types, mask=mask)
            ref = theirs.encoder(embedded, mask3, output_hidden_states=True).hidden_states[1:]
            assert_layers_close(ours(ids, mask3, types), ref, real)


def test_three_d_mask_row_with_no_key_gives_a_zero_context():
    torch.manual_seed(0)
    model = deberta.DeBERTa(deberta.ModelConfig.preset("v3-tiny", vocab_size=97)).eval()
    ids, mask, _ = batch(0)
    mask3 = three_d_mask(mask)
    mask3[0, 4] = 0  # token 4 may attend to nothing
    attention = model.encoder.layer[0].attention.self
    hidden = model.embeddings(ids, None, torch.arange(LENGTH)[None], mask)
    for grad in (True, False):
        with torch.set_grad_enabled(grad):
            context = attention(hidden, mask3, model.encoder.get_rel_embedding())
            assert torch.isfinite(context).all()
            assert (context[0, 4] == 0).all() and (context[0, 3] != 0).any()
            assert all(torch.isfinite(layer).all() for layer in model(ids, mask3))


@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 0.03), (torch.float16, 0.005)])
def test_autocast_close_to_their_float32(dtype, tolerance, tmp_path):
    """Under autocast, forward and backward finite, and within ``tolerance`` of float32 (relative to its largest)."""
    theirs, ours = their_and_our_encoders("v2-conv", tmp_path)
    ids, mask, types = batch(2)
    real = mask.bool()
    ref = theirs(ids, attention_mask=mask, token_type_ids=types).last_hidden_state[real]
    for grad in (True, False):
        with torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=dtype):
            got = ours(ids, mask, types)[-1][real]
        assert got.dtype == torch.float32
        assert (got - ref).abs().max().item() < tolerance * ref.abs().max().item()
        if grad:
            got.sum().backward()
            assert all(torch.isfinite(p.grad).all() for p in ours.parameters() if p.grad is not None)


# ----- heads --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,num_labels", [("v3", 3), ("v2-conv", 2), ("v3", 1)])
def test_sequence_classification_matches(name, num_labels, tmp_path):
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForSequenceClassification(hf_config(name, num_labels=num_labels)).eval()
    ours = deberta.SequenceClassificationModel(num_labels=num_labels, pre_trained=saved(theirs, tmp_path, 2)).eval()
    assert ours.fresh_heads == []
    ids, mask, types = batch(ours.config.type_vocab_size, seed=4)
    labels = torch.tensor([0.5, 2.0, 3.5]) if num_labels == 1 else torch.tensor([1, 0, num_labels - 1])
    ref = theirs(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    got = ours(ids, types, mask, labels=labels)
    torch.testing.assert_close(got.logits.view(ref.logits.shape), ref.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    got.loss.backward()
    ref.loss.backward()
    assert_grads_close(ours, theirs)


def test_soft_labels_match(tmp_path):
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForSequenceClassification(hf_config("v3", num_labels=3)).eval()
    ours = deberta.SequenceClassificationModel(num_labels=3, pre_trained=saved(theirs, tmp_path, 2)).eval()
    ids, mask, _ = batch(0, seed=4)
    soft = torch.softmax(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)), -1)
    ref = theirs(ids, attention_mask=mask, labels=soft)
    torch.testing.assert_close(ours(ids, None, mask, labels=soft).loss, ref.loss, rtol=1e-5, atol=1e-6)


def test_token_classification_matches(tmp_path):
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForTokenClassification(hf_config("v2-conv", num_labels=5)).eval()
    ours = deberta.TokenClassificationModel(num_labels=5, pre_trained=saved(theirs, tmp_path, 3)).eval()
    assert ours.fresh_heads == []
    ids, mask, types = batch(2, seed=5)
    labels = torch.randint(0, 5, ids.shape, generator=torch.Generator().manual_seed(2)).masked_fill(mask == 0, -100)
    ref = theirs(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    got = ours(ids, types, mask, labels=labels)
    real = mask.bool()
    torch.testing.assert_close(got.logits[real], ref.logits[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    got.loss.backward()
    ref.loss.backward()
    assert_grads_close(ours, theirs)


def test_question_answering_matches(tmp_path):
    """Logits on real tokens and, for unpadded sequences, loss and gradients as transformers'.

    With padding our loss leaves the padded positions out of the softmax (transformers' does not).
    """
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForQuestionAnswering(hf_config("v3")).eval()
    ours = deberta.QuestionAnsweringModel(pre_trained=saved(theirs, tmp_path, 4)).eval()
    assert ours.fresh_heads == []
    ids, mask, _ = batch(0, seed=6)
    start, end = torch.tensor([3, 0, 2]), torch.tensor([7, 0, 99])  # 99: beyond the sequence, ignored
    ref = theirs(ids, attention_mask=mask)
    got = ours(ids, None, mask, start_positions=start, end_positions=end)
    real = mask.bool()
    torch.testing.assert_close(got.logits[..., 0][real], ref.start_logits[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.logits[..., 1][real], ref.end_logits[real], rtol=1e-5, atol=1e-5)
    masked = got.logits.masked_fill(~real[..., None], -1e9)
    expected = (torch.nn.functional.cross_entropy(masked[..., 0], start)
                + torch.nn.functional.cross_entropy(masked[[0, 1], :, 1], end[:2])) / 2
    torch.testing.assert_close(got.loss, expected)

    full = torch.ones_like(mask)
    ref = theirs(ids, attention_mask=full, start_positions=start, end_positions=end)
    got = ours(ids, None, full, start_positions=start, end_positions=end)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    got.loss.backward()
    ref.loss.backward()
    assert_grads_close(ours, theirs)


def test_multiple_choice_matches(tmp_path):
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForMultipleChoice(hf_config("own-keys+conv-groups")).eval()
    ours = deberta.MultiChoiceModel(pre_trained=saved(theirs, tmp_path, 5)).eval()
    assert ours.fresh_heads == []
    ids, mask, _ = batch(0, seed=7, size=4)
    ids, mask = ids.view(2, 2, LENGTH), mask.view(2, 2, LENGTH)
    labels = torch.tensor([1, 0])
    ref = theirs(ids, attention_mask=mask, labels=labels)
    got = ours(ids, None, mask, labels=labels)
    torch.testing.assert_close(got.logits, ref.logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-6)
    got.loss.backward()
    ref.loss.backward()
    assert_grads_close(ours, theirs)


@pytest.mark.parametrize("legacy", [False, True])
def test_masked_lm_head_matches_without_decoder(legacy, tmp_path):
    """With absolute positions in the input there is no enhanced mask decoder: transformers' heads compare."""
    torch.manual_seed(0)
    theirs = transformers.DebertaV2ForMaskedLM(hf_config("p2c+abs", legacy=legacy)).eval()
    randomize(theirs, seed=6)
    theirs.tie_weights()
    theirs.save_pretrained(tmp_path)
    ours = deberta.MaskedLanguageModel(pre_trained=str(tmp_path)).eval()
    assert ours.fresh_heads == []
    ids, mask, types = batch(2, seed=8)
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7], labels[2, 1] = 11, 22, 33
    ref = theirs(ids, attention_mask=mask, token_type_ids=types, labels=labels)
    got = ours(ids, types, mask, labels=labels)
    torch.testing.assert_close(got.logits, ref.logits[labels > 0], rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got.loss, ref.loss, rtol=1e-5, atol=1e-5)


# ----- configs ------------------------------------------------------------------------------------
def test_presets_have_the_published_shapes():
    shapes = {  # hidden, layers, heads, intermediate, vocabulary
        "v3-xsmall": (384, 12, 6, 1536, 128100), "v3-small": (768, 6, 12, 3072, 128100),
        "v3-base": (768, 12, 12, 3072, 128100), "v3-large": (1024, 24, 16, 4096, 128100),
        "mdeberta-v3-base": (768, 12, 12, 3072, 251000), "v2-xlarge": (1536, 24, 24, 6144, 128100),
        "v2-xxlarge": (1536, 48, 24, 6144, 128100),
    }
    for name, shape in shapes.items():
        c = deberta.ModelConfig.preset(name)
        assert (c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size, c.vocab_size) == shape
        assert c.is_v2 and c.position_buckets == 256 and c.share_att_key and c.norm_rel_ebd == "layer_norm"
        assert c.pos_att_type == ("c2p", "p2c") and not c.position_biased_input and c.type_vocab_size == 0
        assert c.layer_norm_eps == 1e-7 and (c.conv_kernel_size == 3) == name.startswith("v2-")


def test_hf_layout_round_trip_through_transformers(tmp_path):
    config = deberta.ModelConfig.preset("v2-xlarge", num_hidden_layers=2, pooler_dropout=0.1)
    config.save(tmp_path / "config.json", layout="hf")
    theirs = transformers.AutoConfig.from_pretrained(tmp_path)
    assert type(theirs).__name__ == "DebertaV2Config"
    assert (theirs.position_buckets, theirs.conv_kernel_size, theirs.conv_act, theirs.norm_rel_ebd) == (
        256, 3, "gelu", "layer_norm")
    theirs.save_pretrained(tmp_path / "again")
    assert deberta.ModelConfig.from_json_file(tmp_path / "again" / "config.json") == config


def test_original_layout_of_v3_without_model_type():
    """The original release's v3 model_config.json: no model_type, pos_att_type a string; v2 keys tell the family."""
    original = {
        "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
        "initializer_range": 0.02, "intermediate_size": 3072, "max_position_embeddings": 512,
        "relative_attention": True, "position_buckets": 256, "norm_rel_ebd": "layer_norm", "share_att_key": True,
        "pos_att_type": "p2c|c2p", "layer_norm_eps": 1e-7, "max_relative_positions": -1,
        "position_biased_input": False, "num_attention_heads": 12, "num_hidden_layers": 12, "type_vocab_size": 0,
        "vocab_size": 128100,
    }
    config = deberta.ModelConfig.from_dict(original)
    assert config == deberta.ModelConfig.preset("v3-base")
    again = deberta.ModelConfig.from_dict(json.loads(json.dumps(config.to_original_dict())))
    assert again == config and config.to_original_dict()["pos_att_type"] == "c2p|p2c"


def test_a_v1_file_stays_v1(tmp_path):
    config = deberta.ModelConfig.preset("tiny")
    for layout in ("hf", "original"):
        config.save(tmp_path / f"{layout}.json", layout=layout)
        written = json.loads((tmp_path / f"{layout}.json").read_text())
        assert not {"position_buckets", "share_att_key", "norm_rel_ebd", "conv_kernel_size"} & written.keys()
        assert written.get("model_type", "deberta") == "deberta"
        assert deberta.ModelConfig.from_json_file(tmp_path / f"{layout}.json") == config


def test_every_activation_a_config_may_name_exists():
    from DeBERTa.deberta.config import KNOWN_ACTIVATIONS
    from DeBERTa.deberta.model import ACTIVATIONS

    assert set(KNOWN_ACTIVATIONS) == set(ACTIVATIONS)


# ----- checkpoints --------------------------------------------------------------------------------
TINY3 = deberta.ModelConfig.preset("v3-tiny", vocab_size=97)


def released_v3(tmp_path) -> tuple[str, dict]:
    """A folder laid out as the v3 releases: encoder, absolute positions, masked-LM and RTD heads."""
    mlm = deberta.MaskedLanguageModel(TINY3)
    rtd = deberta.ReplacedTokenDetectionModel(TINY3)
    state = {**mlm.state_dict(), **{k: v for k, v in rtd.state_dict().items() if k.startswith("mask_predictions.")}}
    torch.save(state, tmp_path / "pytorch_model.bin")
    TINY3.save(tmp_path / "config.json", layout="hf")
    return str(tmp_path), state


def test_released_heads_load_by_name_or_are_dropped_with_a_log_line(tmp_path, caplog):
    folder, state = released_v3(tmp_path)
    with caplog.at_level("INFO", logger="DeBERTa.deberta.pretrained"):
        encoder = deberta.DeBERTa(pre_trained=folder)
    assert "masked-LM head" in caplog.text and "replaced-token-detection head" in caplog.text
    assert "absolute position embeddings" in caplog.text
    torch.testing.assert_close(encoder.encoder.LayerNorm.weight, state["deberta.encoder.LayerNorm.weight"])
    mlm = deberta.MaskedLanguageModel(pre_trained=folder)
    rtd = deberta.ReplacedTokenDetectionModel(pre_trained=folder)
    assert mlm.fresh_heads == [] and rtd.fresh_heads == []
    torch.testing.assert_close(rtd.mask_predictions.classifier.weight, state["mask_predictions.classifier.weight"])
    torch.testing.assert_close(mlm.lm_predictions.lm_head.bias, state["lm_predictions.lm_head.bias"])
    qa = deberta.QuestionAnsweringModel(pre_trained=folder)
    assert qa.fresh_heads == ["qa_outputs"]

    torch.save({**state, "mask_predictions.extra.weight": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(deberta.CheckpointError, match="not part of a DeBERTa model: mask_predictions.extra.weight"):
        deberta.DeBERTa(pre_trained=folder)


def test_a_checkpoint_of_the_other_family_is_one_line(tmp_path):
    folder, _ = released_v3(tmp_path)
    (tmp_path / "config.json").unlink()
    v1 = deberta.ModelConfig.preset("tiny", vocab_size=97)
    v1.save(tmp_path / "config.json", layout="hf")
    with pytest.raises(deberta.CheckpointError, match=r"holds a DeBERTa v2/v3 model but the config describes "
                                                      r"DeBERTa v1; its config should say model_type 'deberta-v2'"):
        deberta.DeBERTa(pre_trained=folder)
    torch.save(deberta.DeBERTa(v1).state_dict(), tmp_path / "pytorch_model.bin")
    TINY3.save(tmp_path / "config.json", layout="hf")
    with pytest.raises(deberta.CheckpointError, match="holds a DeBERTa v1 model but the config describes DeBERTa v2"):
        deberta.DeBERTa(pre_trained=folder)


def test_user_config_cannot_turn_a_v3_checkpoint_into_v1(tmp_path):
    folder, _ = released_v3(tmp_path)
    tuned = deberta.SequenceClassificationModel(dataclasses.replace(TINY3, hidden_dropout_prob=0.3), num_labels=2,
                                                pre_trained=folder)
    assert tuned.config.hidden_dropout_prob == 0.3 and tuned.config.is_v2
    with pytest.raises(deberta.CheckpointError, match="model_type='deberta'"):
        deberta.DeBERTa(deberta.ModelConfig.preset("tiny", vocab_size=97), pre_trained=folder)


# ----- heads and the decoder ----------------------------------------------------------------------
def test_replaced_token_detection_loss_and_learning():
    torch.manual_seed(0)
    rtd = deberta.ReplacedTokenDetectionModel(TINY3)
    ids, mask, _ = batch(0)
    labels = (torch.rand(ids.shape, generator=torch.Generator().manual_seed(1)) < 0.15).long()
    labels[0, 0] = -1  # ignored
    out = rtd(ids, None, mask, labels=labels)
    assert out.logits.shape == ids.shape
    counted = mask.bool() & (labels >= 0)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits[counted], labels[counted].float())
    torch.testing.assert_close(out.loss, expected)
    optimizer = torch.optim.AdamW(rtd.parameters(), lr=3e-3)
    first = out.loss.item()
    for _ in range(8):
        loss = rtd(ids, None, mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < first * 0.9


def test_decoder_query_path_equals_self_attention_in_v2():
    torch.manual_seed(0)
    model = deberta.DeBERTa(TINY3).eval()
    ids, mask, _ = batch(0)
    hidden = model(ids, mask)[0]
    layer = model.encoder.layer[-1]
    rel = model.encoder.get_rel_embedding()
    torch.testing.assert_close(layer(hidden, mask, rel, query_states=hidden), layer(hidden, mask, rel))


def test_masked_lm_with_the_enhanced_mask_decoder_in_v3():
    """v3 has no absolute positions in the input: the decoder adds them; the model learns a token's position."""
    torch.manual_seed(0)
    mlm = deberta.MaskedLanguageModel(dataclasses.replace(TINY3, hidden_dropout_prob=0.0,
                                                          attention_probs_dropout_prob=0.0))
    assert mlm.deberta.embeddings.position_embeddings is not None
    ids = torch.full((4, 12), 5)
    labels = torch.zeros_like(ids)
    labels[:, 3], labels[:, 8] = 7, 9  # the same input everywhere: only the position tells the targets apart
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=1e-2)
    for _ in range(40):
        out = mlm(ids, labels=labels)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    assert out.logits.argmax(-1).tolist() == [7, 9] * 4
