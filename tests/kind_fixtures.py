"""Helpers for the task-kind tests: a small tokenizer with real character offsets, and RACE / SWAG data
written in their official layouts (neither is in ../shared)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_PIECES = re.compile(r"\w{1,3}|[^\w\s]")


@dataclass
class Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int]


@dataclass
class PieceTokenizer:
    """Splits words into pieces of up to three word characters, punctuation alone — so that most words
    have several sub-tokens — and gives each piece its character span. ``space_in_offsets``: a word's
    first piece spans the space before it too, as byte-level BPE pieces (" word") can."""

    space_in_offsets: bool = False
    cls_id: int = 1
    sep_id: int = 2
    pad_id: int = 0
    vocab: dict[str, int] = field(default_factory=dict)

    def encode_with_offsets(self, text: str) -> Encoded:
        word_of = {}
        for word, match in enumerate(re.finditer(r"\S+", text)):
            word_of.update(dict.fromkeys(range(*match.span()), word))
        ids, offsets, word_ids = [], [], []
        for match in _PIECES.finditer(text):
            start, end = match.span()
            word_ids.append(word_of[start])
            if self.space_in_offsets and start > 0 and text[start - 1] == " ":
                start -= 1
            ids.append(self.vocab.setdefault(match.group(), len(self.vocab) + 3))
            offsets.append((start, end))
        return Encoded(ids, offsets, word_ids)


def write_race(root: Path, split: str = "dev") -> Path:
    """A RACE split folder with two middle-school files and one high-school file; returns it."""
    articles = {
        "middle": [
            ("middle1.txt", "Tom has a red kite. He flies it in the park every Sunday with his sister Anna.",
             [("What colour is Tom's kite?", ["blue", "red", "green", "black"], "B"),
              ("Tom flies his kite with _ .", ["his father", "his dog", "Anna", "nobody"], "C")]),
            ("middle2.txt", "The library opens at nine and closes at five. Children can borrow three books.",
             [("How many books can children borrow?", ["one", "two", "three", "four"], "C")]),
        ],
        "high": [
            ("high1.txt", "Glaciers form where snow accumulates faster than it melts, compressing into ice.",
             [("Glaciers form when snow _ .", ["melts quickly", "accumulates faster than it melts",
                                               "turns into rain", "blows away"], "B")]),
        ],
    }
    folder = root / split
    for part, files in articles.items():
        (folder / part).mkdir(parents=True, exist_ok=True)
        for name, article, questions in files:
            (folder / part / name).write_text(json.dumps({
                "answers": [q[2] for q in questions], "options": [q[1] for q in questions],
                "questions": [q[0] for q in questions], "article": article, "id": name}), encoding="utf-8")
    return folder


SWAG_HEADER = ["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
               "ending0", "ending1", "ending2", "ending3", "label"]


def write_swag(path: Path, labeled: bool = True) -> Path:
    """A SWAG CSV file of three rows (test layout without ``label`` when ``labeled`` is false)."""
    rows = [
        ["0", "lsmdc1", "17", "Someone opens the door. He", "Someone opens the door.", "He", "gold",
         "walks inside.", "eats the door.", "flies to the moon.", "sings a door.", "0"],
        ["1", "anetv_2", "3", "A man, holding a rope, climbs. He", "A man, holding a rope, climbs.", "He", "gen",
         "sleeps on air.", "reaches the top.", "becomes a rope.", "drinks the wall.", "1"],
        ["2", "lsmdc3", "5", "She pours tea. She", "She pours tea.", "She", "gold",
         "drinks the cup.", "eats the teapot.", "sips the tea.", "pours the table.", "2"],
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(SWAG_HEADER if labeled else SWAG_HEADER[:-1])
        for row in rows:
            writer.writerow(row if labeled else row[:-1])
    return path
