"""Small GLUE-format task folders for tests, in the official files' exact layouts.

``write_glue_task(root, "MNLI")`` writes ``root/MNLI/{train,dev_matched,dev_mismatched,test_matched,
test_mismatched}.tsv`` with the real headers and column counts (CoLA's headerless train/dev files,
MRPC's BOM-prefixed test file, STS-B's ten columns, MNLI's 12/16/10 columns, GLUE's
``diagnostic/diagnostic.tsv`` for AX) and returns the folder to pass as ``--data_dir``.

The content is learnable: each example's label is decided by one keyword (:data:`KEYWORDS`) placed
among random filler words — in the sentence for single-sentence tasks, in the second segment for
pair tasks — so a tiny model beats chance in a few steps. STS-B scores are a keyword's band
(``low`` 0.0–1.5, ``high`` 3.5–5.0). Some texts carry an unbalanced ``"`` and a non-ASCII word, as
GLUE's do. QQP's train file also holds :data:`QQP_BROKEN_ROWS` rows split in two by a line break
inside a question — the defect of the public file — on top of ``n_train`` good rows.

Files are deterministic in ``seed``; labels are balanced (round-robin, then shuffled).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from pathlib import Path

from DeBERTa.apps.tasks import get_task

FOLDERS = {"CoLA": "CoLA", "SST-2": "SST-2", "MRPC": "MRPC", "QQP": "QQP", "STS-B": "STS-B", "MNLI": "MNLI",
           "QNLI": "QNLI", "RTE": "RTE", "WNLI": "WNLI", "AX": "diagnostic"}
"""Task name → folder name in GLUE's download."""

KEYWORDS: dict[str, tuple[str, ...]] = {
    "CoLA": ("garbled", "grammatical"),
    "SST-2": ("awful", "wonderful"),
    "MRPC": ("unrelated", "restated"),
    "QQP": ("different", "duplicate"),
    "STS-B": ("low", "high"),
    "MNLI": ("never", "maybe", "certainly"),
    "QNLI": ("elsewhere", "answer"),
    "RTE": ("contrary", "follows"),
    "WNLI": ("wrong", "right"),
    "AX": ("never", "maybe", "certainly"),
}
"""Task → keyword per label id (STS-B: low/high score band) that decides each example's label."""

QQP_BROKEN_ROWS = 2
"""Rows of QQP's train file broken in two by a line break (each gives two malformed lines)."""

_FILLER = ("the", "a", "cat", "dog", "river", "city", "old", "green", "runs", "sees", "near", "under", "quickly",
           "house", "song", "winter", "paper", "bright", "café", "seven", "window", "market", "slowly", "tall")

_MRPC_HEADER = ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
_MNLI_PREFIX = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
_STSB_PREFIX = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1",
                "sentence2"]


class _Text:
    """Random filler sentences, one keyword inserted, sometimes with a stray quote."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def sentence(self, keyword: str | None = None) -> str:
        words = self.rng.choices(_FILLER, k=self.rng.randint(4, 9))
        if keyword is not None:
            words.insert(self.rng.randrange(len(words) + 1), keyword)
        if self.rng.random() < 0.2:
            words[0] = '"' + words[0]  # unbalanced, as in GLUE: a quote-aware reader would swallow lines
        return " ".join(words) + "."


def _labels(rng: random.Random, n: int, k: int) -> list[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


def _write(path: Path, rows: list[list[str]], *, header: list[str] | None = None, bom: bool = False) -> None:
    lines = ([header] if header else []) + rows
    text = "".join("\t".join(fields) + "\n" for fields in lines)
    path.write_text(("\ufeff" if bom else "") + text, encoding="utf-8")


def _parse(sentence: str) -> str:
    # Stand-in for MNLI's parse columns: a field of the right kind, never read.
    return "( " + sentence + " )"


def _single(task: str) -> Callable[[_Text, int, int, bool], list[str]]:
    """Row writer for CoLA / SST-2."""
    keywords = KEYWORDS[task]

    def row(text: _Text, i: int, label: int, labeled: bool) -> list[str]:
        sentence = text.sentence(keywords[label])
        if not labeled:
            return [str(i), sentence]
        if task == "CoLA":
            return ["gj04", str(label), "" if label else "*", sentence]
        return [sentence, str(label)]

    return row


def write_glue_task(root: str | Path, task_name: str, *, n_train: int = 64, n_dev: int = 32, n_test: int = 16,
                    seed: int = 0) -> Path:
    """Write a GLUE-format folder for ``task_name`` (any spelling) under ``root``; returns the folder.

    Every dev split (MNLI: both) gets ``n_dev`` rows, every test split ``n_test``; AX has only its
    ``n_test``-row diagnostic file.
    """
    spec = get_task(task_name)
    task = spec.name
    folder = Path(root) / FOLDERS[task]
    folder.mkdir(parents=True, exist_ok=True)
    # crc32, not hash(): str hashes are salted per process and the files must not change between runs.
    rng = random.Random(seed * 1_000_003 + zlib.crc32(task.encode()))
    text = _Text(rng)
    keywords = KEYWORDS[task]
    k = len(keywords)

    def pair_rows(n: int, fields: Callable[[int, str, str, int], list[str]]) -> list[list[str]]:
        labels = _labels(rng, n, k)
        return [fields(i, text.sentence(), text.sentence(keywords[labels[i]]), labels[i]) for i in range(n)]

    if task in ("CoLA", "SST-2"):
        row = _single(task)
        for split, n in (("train", n_train), ("dev", n_dev), ("test", n_test)):
            labels, labeled = _labels(rng, n, k), split != "test"
            header = ["index", "sentence"] if not labeled else ["sentence", "label"] if task == "SST-2" else None
            _write(folder / f"{split}.tsv", [row(text, i, labels[i], labeled) for i in range(n)], header=header)
    elif task == "MRPC":
        for split, n in (("train", n_train), ("dev", n_dev)):
            rows = pair_rows(n, lambda i, a, b, y: [str(y), str(1000 + 2 * i), str(1001 + 2 * i), a, b])
            _write(folder / f"{split}.tsv", rows, header=_MRPC_HEADER)
        rows = pair_rows(n_test, lambda i, a, b, y: [str(i), str(5000 + 2 * i), str(5001 + 2 * i), a, b])
        _write(folder / "test.tsv", rows, header=["index", *_MRPC_HEADER[1:]], bom=True)
    elif task == "QQP":
        header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
        for split, n in (("train", n_train), ("dev", n_dev)):
            rows = pair_rows(n, lambda i, a, b, y: [str(i), str(2 * i + 1), str(2 * i + 2), a, b, str(y)])
            if split == "train":
                for j in range(QQP_BROKEN_ROWS):
                    # One row whose question1 holds a line break: 4 fields, then 3 on the next line.
                    at = rng.randrange(len(rows) + 1)
                    rows[at:at] = [[str(n + j), "900", "901", "What is the"], ["river?", "What is a river?", "0"]]
            _write(folder / f"{split}.tsv", rows, header=header)
        rows = pair_rows(n_test, lambda i, a, b, y: [str(i), a, b])
        _write(folder / "test.tsv", rows, header=["id", "question1", "question2"])
    elif task == "STS-B":
        def stsb(i: int, a: str, b: str, y: int) -> list[str]:
            score = rng.uniform(3.5, 5.0) if y else rng.uniform(0.0, 1.5)
            return [str(i), "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", a, b, f"{score:.3f}"]

        for split, n in (("train", n_train), ("dev", n_dev)):
            _write(folder / f"{split}.tsv", pair_rows(n, stsb), header=[*_STSB_PREFIX, "score"])
        _write(folder / "test.tsv", [r[:9] for r in pair_rows(n_test, stsb)], header=_STSB_PREFIX)
    elif task == "MNLI":
        def mnli(extra_labels: int) -> Callable[[int, str, str, int], list[str]]:
            def fields(i: int, a: str, b: str, y: int) -> list[str]:
                row = [str(i), str(10 * i), f"{10 * i}e", "fiction", _parse(a), _parse(b), f"(ROOT {_parse(a)})",
                       f"(ROOT {_parse(b)})", a, b]
                return row + [spec.labels[y]] * extra_labels if extra_labels else row
            return fields

        _write(folder / "train.tsv", pair_rows(n_train, mnli(2)),
               header=[*_MNLI_PREFIX, "label1", "gold_label"])
        for split in ("dev_matched", "dev_mismatched"):
            _write(folder / f"{split}.tsv", pair_rows(n_dev, mnli(6)),
                   header=[*_MNLI_PREFIX, "label1", "label2", "label3", "label4", "label5", "gold_label"])
        for split in ("test_matched", "test_mismatched"):
            _write(folder / f"{split}.tsv", pair_rows(n_test, mnli(0)), header=_MNLI_PREFIX)
    elif task == "AX":
        rows = pair_rows(n_test, lambda i, a, b, y: [str(i), a, b])
        _write(folder / "diagnostic.tsv", rows, header=["index", "sentence1", "sentence2"])
    else:  # QNLI, RTE, WNLI: index, two texts, label
        names = ["question", "sentence"] if task == "QNLI" else ["sentence1", "sentence2"]
        for split, n in (("train", n_train), ("dev", n_dev)):
            rows = pair_rows(n, lambda i, a, b, y: [str(i), a, b, spec.labels[y]])
            _write(folder / f"{split}.tsv", rows, header=["index", *names, "label"])
        _write(folder / "test.tsv", pair_rows(n_test, lambda i, a, b, y: [str(i), a, b]),
               header=["index", *names])
    return folder
