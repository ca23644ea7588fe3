#!/usr/bin/env bash
# WikiText-103 (raw, public) tokenized with DeBERTa v3's SentencePiece vocabulary into $CACHE/wikitext-103.
# Usage: ./prepare_wikitext.sh [TOKENIZER]   (default: v3-base, fetched by the package's model cache)
# Any other text works the same way: python -m DeBERTa.apps.prepare_corpus FILES... --tokenizer NAME --output DIR
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
cache=${CACHE:-/tmp/DeBERTa/language_model}
tokenizer=${1:-v3-base}
mkdir -p "$cache/download"
archive=$cache/download/wikitext-103-raw-v1.zip
if [[ ! -s $archive ]]; then
  curl -fL --retry 3 -o "$archive.part" https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip
  mv "$archive.part" "$archive"
fi
unzip -n -j -q "$archive" -d "$cache/download/wikitext-103-raw"
# WikiText marks articles with " = Title = " lines; the corpus reader takes blank-line blocks as documents,
# which WikiText's paragraphs already are.
python -m DeBERTa.apps.prepare_corpus "$cache/download/wikitext-103-raw/wiki.train.raw" \
  --tokenizer "$tokenizer" --output "$cache/wikitext-103"
