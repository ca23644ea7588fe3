"""Tokenize text into a pre-training corpus: memory-mapped token shards, an index, and the tokenizer.

::

    python -m DeBERTa.apps.prepare_corpus wiki-*.txt.xz --tokenizer v3-base --output corpus/
    python -m DeBERTa.apps.pretrain --corpus corpus/ ...

Inputs are UTF-8 text (``.gz``/``.bz2``/``.xz`` read directly), one document per blank-line-separated block.
``--tokenizer`` is a folder with a tokenizer's files, a vocabulary file, or a model name (its vocabulary is
fetched); default: the official GPT-2 BPE vocabulary of DeBERTa v1. Memory stays bounded whatever the
corpus size; run it again after an interruption and it continues after the last finished shard. See
:mod:`DeBERTa.training.data.corpus` for the folder's layout.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from DeBERTa.training.data.corpus import prepare_corpus

from . import cli
from .models import load_tokenizer


def tokenizer_of(name_or_path: str | None, vocab_type: str = "auto") -> Any:
    """The tokenizer named on the command line: a folder or file, or a model name (its folder's vocabulary)."""
    kind = None if vocab_type == "auto" else vocab_type
    return load_tokenizer(name_or_path, None, option="--tokenizer", vocab_type=kind)


def build_parser() -> cli.OneLineErrorParser:
    parser = cli.OneLineErrorParser(prog="python -m DeBERTa.apps.prepare_corpus",
                                    description="Tokenize text files into a pre-training corpus folder.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="UTF-8 text files (.gz, .bz2, .xz too)")
    parser.add_argument("--tokenizer", metavar="NAME_OR_FOLDER",
                        help="tokenizer folder, vocabulary file or model name (default: the official GPT-2 BPE)")
    parser.add_argument("--vocab_type", choices=("auto", "gpt2", "spm"), default="auto",
                        help="the tokenizer's kind where a folder could hold several (default: auto)")
    parser.add_argument("--output", required=True, metavar="DIR", help="the corpus folder to write (or continue)")
    parser.add_argument("--shard_tokens", type=int, default=50_000_000, metavar="N",
                        help="tokens per shard (default: 50000000)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry; returns the exit status (2 after a one-line error)."""

    def body(args: list[str]) -> None:
        cli.configure_logging()
        opts = build_parser().parse_args(args)
        if opts.shard_tokens < 1:
            raise cli.UsageError(f"--shard_tokens must be at least 1 (got {opts.shard_tokens})")
        output = Path(opts.output)
        if output.exists() and not output.is_dir():
            raise cli.UsageError(f"--output {output}: not a folder")
        tokenizer = tokenizer_of(opts.tokenizer, opts.vocab_type)
        prepare_corpus([Path(p) for p in opts.inputs], tokenizer, output, shard_tokens=opts.shard_tokens)
        print(f"corpus: {output}")

    return cli.run(body, argv)


if __name__ == "__main__":
    sys.exit(main())
