"""The Hugging Face export of DeBERTa v2/v3 round-trips through ``transformers``: same outputs, same ids.

Tiny v3 models with every parameter random, each head exported and loaded by transformers' DebertaV2
class of that head; a folder laid out as the v3 releases (original keys, masked-LM and RTD heads, the
SentencePiece model of ../shared/spm-deberta-v3) exported and loaded with AutoModel and AutoTokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from test_export import gpt2_cut, padded_batch, randomize, tokenizer  # noqa: F401  (fixtures)
from test_train_helpers import one_thread_fixture  # noqa: F401  (autouse fixture: one torch thread per test)

from DeBERTa import deberta
from DeBERTa.apps import export
from DeBERTa.deberta.tokenizer import GPT2Tokenizer

transformers = pytest.importorskip("transformers")

SPM_MODEL = Path(__file__).resolve().parents[1] / ".." / "shared" / "spm-deberta-v3" / "spm.model"

HEADS = {  # head → (our model class and arguments, transformers' class)
    "classification": (lambda c: deberta.SequenceClassificationModel(c, num_labels=3),
                       "DebertaV2ForSequenceClassification"),
    "token_classification": (lambda c: deberta.TokenClassificationModel(c, num_labels=5),
                             "DebertaV2ForTokenClassification"),
    "question_answering": (lambda c: deberta.QuestionAnsweringModel(c), "DebertaV2ForQuestionAnswering"),
    "masked_lm": (lambda c: deberta.MaskedLanguageModel(c), "DebertaV2ForMaskedLM"),
    "encoder": (lambda c: deberta.DeBERTa(c), "DebertaV2Model"),
}


def v3_config(vocab_size: int, **overrides: object) -> deberta.ModelConfig:
    return deberta.ModelConfig.preset("v3-tiny", vocab_size=vocab_size, hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0, **overrides)


def outputs(model: torch.nn.Module, head: str, ids, mask, types) -> torch.Tensor:
    """Our model's outputs in the shape transformers gives them (logits; start/end stacked; last layer)."""
    if head == "encoder":
        return model(ids, mask, types)[-1]
    if head == "masked_lm":
        return model(ids, types, mask, labels=torch.where(mask.bool(), ids, -100)).logits
    return model(ids, types, mask).logits


def their_outputs(theirs: torch.nn.Module, head: str, ids, mask, types) -> torch.Tensor:
    out = theirs(input_ids=ids, attention_mask=mask, token_type_ids=types)
    if head == "encoder":
        return out.last_hidden_state
    if head == "question_answering":
        return torch.stack([out.start_logits, out.end_logits], dim=-1)
    return out.logits[mask.bool()] if head == "masked_lm" else out.logits


@pytest.mark.parametrize("head", list(HEADS))
def test_each_head_round_trips(head: str, tokenizer: GPT2Tokenizer, tmp_path: Path) -> None:  # noqa: F811
    """A v3 model with a GPT-2 stand-in vocabulary: transformers' DebertaV2 class of the head, same outputs."""
    # transformers' masked LM has no enhanced mask decoder: compare it on a model with positions in the input.
    config = v3_config(tokenizer.vocab_size, type_vocab_size=2, position_biased_input=head == "masked_lm")
    torch.manual_seed(0)
    ours = randomize(HEADS[head][0](config), seed=1)
    source = tokenizer.save_pretrained(tmp_path / "source")
    torch.save(ours.state_dict(), source / "pytorch_model.bin")
    config.save(source / "config.json", layout="hf")
    out = export.export_hf(source, tmp_path / "out")

    written = json.loads((out / "config.json").read_text())
    assert written["model_type"] == "deberta-v2" and written["architectures"] == [HEADS[head][1]]
    theirs, info = getattr(transformers, HEADS[head][1]).from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"], info
    theirs.eval()
    ids, mask, types = padded_batch(tokenizer.vocab_size, typed=True)
    with torch.no_grad():
        got, ref = outputs(ours, head, ids, mask, types), their_outputs(theirs, head, ids, mask, types)
    if head in ("token_classification", "question_answering", "encoder"):
        got, ref = got[mask.bool()], ref[mask.bool()]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_released_v3_layout_with_its_sentencepiece_model(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if not SPM_MODEL.is_file():
        pytest.skip("../shared/spm-deberta-v3 is not here")
    spm = deberta.SPMTokenizer(SPM_MODEL)
    config = v3_config(128100)
    torch.manual_seed(0)
    mlm = randomize(deberta.MaskedLanguageModel(config), seed=2)
    rtd = randomize(deberta.ReplacedTokenDetectionModel(config), seed=3)
    state = {**mlm.state_dict(), **{k: v for k, v in rtd.state_dict().items() if k.startswith("mask_predictions.")}}
    source = tmp_path / "release"
    source.mkdir()
    torch.save(state, source / "pytorch_model.bin")
    config.save(source / "model_config.json", layout="original")
    shutil.copy(SPM_MODEL, source / "spm.model")

    with caplog.at_level("INFO", logger="DeBERTa.apps.export"):
        out = export.export_hf(source, tmp_path / "out")
    assert "replaced-token-detection head" in caplog.text
    assert (out / "spm.model").is_file()

    text = "Hello world, DeBERTa-v3! Café naïve"
    fast = transformers.AutoTokenizer.from_pretrained(out)
    ours_ids = spm.encode(text).input_ids
    assert fast(text)["input_ids"] == ours_ids

    theirs = transformers.AutoModel.from_pretrained(out).eval()
    assert type(theirs).__name__ == "DebertaV2Model"
    ids = torch.tensor([ours_ids])
    with torch.no_grad():
        ref = theirs(input_ids=ids).last_hidden_state
        got = deberta.DeBERTa(pre_trained=str(out)).eval()(ids)[-1]
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
