"""Shared pieces of the training-app tests: a vocabulary built offline, GLUE fixtures, common options,
and metrics worked out by hand from prediction files (independent of :mod:`DeBERTa.apps.metrics`) —
plus a check of those hand-worked metrics.

The fixtures ``glue_root``, ``vocab`` and ``one_thread`` are used by importing their functions into a
test module (``from test_train_helpers import glue_root_fixture, ...``): pytest finds them there under
their fixture names, and makes the module-scoped ones once per importing module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from glue_fixtures import FOLDERS, write_glue_task

from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

GLUE_TASKS = ("CoLA", "SST-2", "MRPC", "QQP", "STS-B", "MNLI", "QNLI", "RTE", "WNLI")
N_TRAIN, N_DEV, N_TEST = 48, 19, 7  # odd dev/test sizes: shards over 2 ranks differ in length


def write_all_tasks(root: Path) -> Path:
    """Every GLUE task (and AX's diagnostic folder) under ``root``."""
    for task in (*GLUE_TASKS, "AX"):
        write_glue_task(root, task, n_train=N_TRAIN, n_dev=N_DEV, n_test=N_TEST)
    return root


def build_test_vocab(glue_root: Path, target: Path) -> Path:
    """A small DeBERTa vocabulary from the fixtures' text and the real GPT-2 BPE files (no download)."""
    corpus = sorted(glue_root.rglob("*.tsv"))
    tokenizer = GPT2Tokenizer(build_vocab(corpus, *gpt2_bpe_files(), include_unseen=False))
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="module", name="glue_root")
def glue_root_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every GLUE task's fixture files (see :func:`write_all_tasks`)."""
    return write_all_tasks(tmp_path_factory.mktemp("glue"))


@pytest.fixture(scope="module", name="vocab")
def vocab_fixture(tmp_path_factory: pytest.TempPathFactory, glue_root: Path) -> Path:
    """A folder with the vocabulary of the fixtures' text (see :func:`build_test_vocab`)."""
    return build_test_vocab(glue_root, tmp_path_factory.mktemp("vocab"))


@pytest.fixture(autouse=True, name="one_thread")
def one_thread_fixture() -> Iterator[None]:
    """The machine's cores are shared: one thread per test process (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def task_dir(glue_root: Path, task: str) -> Path:
    return glue_root / FOLDERS[task]


def base_args(glue_root: Path, vocab: Path, task: str, output_dir: Path, *extra: str) -> list[str]:
    """A fast run on the tiny model: one epoch of 48 examples in 6 updates of 8."""
    return ["--task_name", task, "--data_dir", str(task_dir(glue_root, task)), "--output_dir", str(output_dir),
            "--model_config", "tiny", "--vocab_path", str(vocab), "--max_seq_len", "32",
            "--train_batch_size", "8", "--eval_batch_size", "8", "--predict_batch_size", "8",
            "--num_train_epochs", "1", "--learning_rate", "2e-3", "--warmup", "2", "--log_interval", "2", *extra]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


# ----- metrics by hand -------------------------------------------------------------------------------
def hand_accuracy(pred: list, gold: list) -> float:
    return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)


def _confusion(pred: list[str], gold: list[str], positive: str) -> tuple[int, int, int, int]:
    tp = sum(p == positive and g == positive for p, g in zip(pred, gold, strict=True))
    fp = sum(p == positive and g != positive for p, g in zip(pred, gold, strict=True))
    fn = sum(p != positive and g == positive for p, g in zip(pred, gold, strict=True))
    return tp, fp, fn, len(gold) - tp - fp - fn


def hand_f1(pred: list[str], gold: list[str], positive: str = "1") -> float:
    tp, fp, fn, _ = _confusion(pred, gold, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def hand_mcc(pred: list[str], gold: list[str], positive: str = "1") -> float:
    tp, fp, fn, tn = _confusion(pred, gold, positive)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def hand_pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    vx, vy = sum((a - mx) ** 2 for a in x), sum((b - my) ** 2 for b in y)
    return cov / math.sqrt(vx * vy) if vx and vy else 0.0


def _ranks(values: list[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share the mean of the ranks i+1 .. j+1
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def hand_spearman(x: list[float], y: list[float]) -> float:
    return hand_pearson(_ranks(x), _ranks(y))


def hand_metrics(metric_names: list[str], rows: list[list[str]]) -> dict[str, float]:
    """The task's metrics from ``index, prediction, label`` rows of a dev prediction file."""
    pred, gold = [r[1] for r in rows], [r[2] for r in rows]
    by_name = {
        "accuracy": lambda: hand_accuracy(pred, gold),
        "f1": lambda: hand_f1(pred, gold),
        "mcc": lambda: hand_mcc(pred, gold),
        "pearson": lambda: hand_pearson([float(p) for p in pred], [float(g) for g in gold]),
        "spearman": lambda: hand_spearman([float(p) for p in pred], [float(g) for g in gold]),
    }
    return {name: by_name[name]() for name in metric_names}


# ----- the hand-worked metrics above, on examples worked out in the comments -------------------------
def test_hand_metrics_on_worked_examples() -> None:
    # pred 1 1 0 1 0 0 / gold 1 0 1 1 0 0: TP 2, FP 1, FN 1, TN 2.
    pred, gold = list("110100"), list("101100")
    assert hand_accuracy(pred, gold) == 4 / 6
    assert hand_f1(pred, gold) == 4 / 6  # 2·2 / (2·2 + 1 + 1)
    assert hand_mcc(pred, gold) == (2 * 2 - 1 * 1) / 9  # sqrt(3·3·3·3) = 9
    assert hand_mcc(list("000"), list("010")) == 0.0  # constant prediction


def test_hand_correlations_on_worked_examples() -> None:
    assert hand_pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == 1.0
    # Ranks of 10, 20, 20, 40 are 1, 2.5, 2.5, 4.
    assert _ranks([10.0, 20.0, 20.0, 40.0]) == [1.0, 2.5, 2.5, 4.0]
    # x ranks 1 2 3, y ranks 3 2 1 → −1.
    assert hand_spearman([1.0, 5.0, 9.0], [3.0, 2.0, 1.0]) == -1.0
