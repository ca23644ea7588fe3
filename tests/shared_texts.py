"""Real texts for tokenizer tests: every text of ../shared's GLUE, SQuAD and CoNLL-2003 samples, and hard cases.

Tests that use them skip cleanly when ../shared is absent.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
SPM_MODEL = SHARED / "spm-deberta-v3" / "spm.model"

HARD_CASES = [
    "",
    " ",
    "   ",
    "\t",
    "\n",
    "\r\n",
    "a",
    "Hello world, DeBERTa-v3!",
    "  leading and trailing spaces  ",
    "runs   of    spaces\tand\t\ttabs\nand\n\nnewlines\r\nand CRLF\r\n",
    "Emoji: 😀🎉👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤗 🏳️‍🌈",
    "日本語のテキストと中文文本，还有한국어 텍스트。",
    "عربي: مرحبا بالعالم، كيف حالك؟ ‏(RTL mark)",
    "Combining: e\u0301 a\u0308 n\u0303 \u0301alone, Z\u0351\u0360a\u0317l\u0328go",
    "zero\u200bwidth\u200cjoiners\u200dand\ufeffBOM, soft\u00adhyphen, nbsp\u00a0here, ideographic\u3000space",
    "NFKC: ﬁne ﬂow １２３ ＡＢＣ ｶﾀｶﾅ ① ² ™ ℌ Ⅻ",
    "Straße İstanbul ΟΔΟΣ ǅemal Ærø",
    "[CLS] and [SEP] and [MASK] and [PAD] [UNK] are plain text, <s></s> <0x41> too",
    "Pneumonoultramicroscopicsilicovolcanoconiosis" * 8,
    "x" * 3000,
    "Control\x00chars\x07and\x1bescapes\x7f",
    "Math ∑ᵢ xᵢ² ≤ ∞, arrows → ⇒, Greek αβγ ΔΣΩ, Cyrillic Привет мир, हिन्दी, ไทย",
    "Rare: 𠀋𡈽𡌛 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🂡",
    "Don't stop, she said: \"it's 3.14!\" (really?) -- yes; #hashtag @user $5 ^_^ `code` ~tilde~",
]


def _glue_texts() -> list[str]:
    texts = []
    for path in sorted((SHARED / "glue-samples").glob("*/*.tsv")):
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
        header, body = rows[0], rows[1:]
        columns = [i for i, name in enumerate(header)
                   if name in ("sentence", "sentence1", "sentence2", "#1 String", "#2 String")]
        texts += [row[i] for row in body for i in columns if i < len(row)]
    return texts


def _squad_texts() -> list[str]:
    texts = []
    for path in sorted((SHARED / "squad").glob("*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                texts.append(paragraph["context"])
                texts += [qa["question"] for qa in paragraph["qas"]]
    return texts


def _conll_texts() -> list[str]:
    texts, words = [], []
    for path in sorted((SHARED / "conll2003").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words.append(line.split(" ")[0])
            elif words:
                texts.append(" ".join(words))
                words = []
    return texts


def shared_texts() -> dict[str, list[str]]:
    """Texts by source (glue, squad, conll2003, hard); raises FileNotFoundError when ../shared is absent."""
    if not SHARED.is_dir():
        raise FileNotFoundError(SHARED)
    return {"glue": _glue_texts(), "squad": _squad_texts(), "conll2003": _conll_texts(), "hard": list(HARD_CASES)}


def glue_pairs() -> list[tuple[str, str]]:
    """The sentence pairs of the GLUE samples (MRPC, RTE, STS-B, WNLI)."""
    pairs = []
    for path in sorted((SHARED / "glue-samples").glob("*/*.tsv")):
        with path.open(encoding="utf-8-sig", newline="") as file:
            rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
        header = rows[0]
        for first, second in (("sentence1", "sentence2"), ("#1 String", "#2 String")):
            if first in header and second in header:
                i, j = header.index(first), header.index(second)
                pairs += [(row[i], row[j]) for row in rows[1:] if max(i, j) < len(row)]
    return pairs


def squad_pairs() -> list[tuple[str, str]]:
    """(question, context) pairs of the SQuAD samples, as a span task feeds them."""
    pairs = []
    for path in sorted((SHARED / "squad").glob("*.json")):
        for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in article["paragraphs"]:
                pairs += [(qa["question"], paragraph["context"]) for qa in paragraph["qas"]]
    return pairs
