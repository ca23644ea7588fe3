"""Fault suite of the training options, ``--config`` YAML, ``build_vocab --type spm``, JSONL task data and a model
built from a config: a number that is not finite, a seed no generator takes, YAML that is not text or gives a list
where a number belongs, a vocabulary the corpus cannot give, a lone surrogate in JSONL, a model that cannot fit.
Each is one line naming what and where, exit 2 and nothing written, never a traceback or a silent success.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from fault_promise import assert_refused, assert_succeeded, run_app, snapshot

from DeBERTa import deberta
from DeBERTa.apps.data import read_examples
from DeBERTa.apps.options import OptionsError, parse_options, read_yaml_config
from DeBERTa.apps.tasks import custom_task
from DeBERTa.deberta.config import ConfigError, ModelConfig
from DeBERTa.training.errors import DataError


def _train_args(output: Path, *extra: str) -> list[str]:
    return ["--task_name", "RTE", "--data_dir", str(output.parent / "absent-data"), "--output_dir", str(output),
            "--model_config", "tiny", "--do_train", *extra]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("warmup", "nan", "must be a finite number"), ("warmup", "inf", "must be a finite number"),
    ("max_grad_norm", "nan", "must be a finite number"), ("max_grad_norm", "-1", "must not be negative"),
    ("weight_decay", "nan", "must be a finite number"), ("weight_decay", "-inf", "must be a finite number"),
])
def test_a_non_finite_or_negative_optimizer_number_is_refused(tmp_path: Path, option: str, value: str,
                                                              message: str) -> None:
    with pytest.raises(OptionsError, match=rf"^--{option} {message} \(got "):
        parse_options(_train_args(tmp_path / "run", f"--{option}={value}"))


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**70)])
def test_a_seed_no_generator_takes_is_one_line_and_writes_nothing(tmp_path: Path, seed: str) -> None:
    before = snapshot(tmp_path)
    result = run_app("DeBERTa.apps.train", _train_args(tmp_path / "run", "--seed", seed))
    assert_refused(result, f"--seed must be in [0, 2**32) (got {seed})", unchanged=(before, lambda: snapshot(tmp_path)))


@pytest.mark.parametrize("seed", [str(2**32), str(2**63 - 1)])
def test_pretraining_takes_the_seeds_training_takes(tmp_path: Path, seed: str) -> None:
    # One range for both apps: a seed fine-tuning refuses is refused by pre-training too, before anything runs.
    (tmp_path / "text.txt").write_text("a line of text\n", encoding="utf-8")
    before = snapshot(tmp_path)
    result = run_app("DeBERTa.apps.pretrain", ["--corpus", str(tmp_path / "text.txt"), "--model_config", "tiny",
                                               "--output_dir", str(tmp_path / "out"), "--seed", seed])
    assert_refused(result, f"--seed must be in [0, 2**32) (got {seed})", unchanged=(before, lambda: snapshot(tmp_path)))


def test_the_seed_range_ends_are_accepted(tmp_path: Path) -> None:
    assert parse_options(_train_args(tmp_path / "run", "--seed", "0")).seed == 0
    assert parse_options(_train_args(tmp_path / "run", "--seed", str(2**32 - 1))).seed == 2**32 - 1


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\xff\xfe binary", r"not UTF-8 text \(byte 1\)"),
    (b"warmup: [1, 2]\n", r"--warmup: \[1, 2\] is not a valid float"),
    (b"seed: {a: 1}\n", r"--seed: \{'a': 1\} is not a valid int"),
    (b"task_name: [RTE]\n", r"--task_name: \['RTE'\] is not a valid str"),
    (b"seed: 1e400\n", r"--seed: '1e400' is not a valid int"),
], ids=["binary", "list-for-number", "mapping-for-number", "list-for-text", "overflow"])
def test_a_config_file_that_is_not_text_or_not_a_scalar_is_one_line(tmp_path: Path, content: bytes,
                                                                    message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(OptionsError, match=message):
        read_yaml_config(str(path))


def test_build_vocab_refuses_more_pieces_than_the_corpus_gives_and_names_the_most(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"sentence {i} about the quick brown fox number {i * 7}\n" for i in range(40)),
                      encoding="utf-8")
    output = tmp_path / "vocab"
    argv = ["--type", "spm", "--corpus", str(corpus), "--output", str(output), "--vocab_size"]
    before = snapshot(tmp_path)
    refused = run_app("DeBERTa.apps.build_vocab", [*argv, "10000000"])
    line = assert_refused(refused, "--vocab_size 10000000: this corpus gives at most ", stdout_empty=False,
                          unchanged=(before, lambda: snapshot(tmp_path)))
    most = int(re.search(r"at most (\d+) pieces", line).group(1))
    assert 260 < most < 10_000_000
    built = run_app("DeBERTa.apps.build_vocab", [*argv, str(most)])  # the maximum named is one that works
    assert_succeeded(built)
    assert f"{most} pieces, [MASK]={most}" in built.stdout and deberta.load_tokenizer(output).vocab_size == most + 1


def test_a_lone_surrogate_in_jsonl_task_data_names_file_and_line(tmp_path: Path) -> None:
    task = custom_task("j", files={"train": "t.jsonl"}, file_format="jsonl", text_columns=["text"],
                       label_column="y", labels=["a", "b"])
    (tmp_path / "t.jsonl").write_bytes(b'{"text": "fine", "y": "a"}\n\n{"text": "x \\ud800", "y": "b"}\n')
    with pytest.raises(DataError, match=r"t.jsonl:3: \\uD800 at column 13 is half of a surrogate pair"):
        read_examples(task, tmp_path, "train")
    (tmp_path / "t.jsonl").write_bytes(b'{"text": "x \\ud83d\\ude00 \\\\ud800", "y": "b"}\n')  # a pair, an escaped \
    assert [e.text_a for e in read_examples(task, tmp_path, "train")] == ["x \U0001f600 \\ud800"]


def test_a_model_built_from_a_config_that_cannot_fit_is_refused_before_allocating() -> None:
    huge = ModelConfig(hidden_size=65_536, num_attention_heads=4, intermediate_size=65_536)
    with pytest.raises(ConfigError, match=r"^the model needs about [\d,.]+ GiB .* of memory is available$"):
        deberta.DeBERTa(huge)
    with torch.device("meta"):  # shapes only: nothing is allocated, so nothing to refuse
        assert deberta.DeBERTa(huge).embeddings.word_embeddings.weight.shape == (huge.vocab_size, 65_536)
