#!/usr/bin/env bash
# Replaced token detection (DeBERTa v3): ./rtd.sh [--dry-run] SIZE [options]
# The generator has the discriminator's width and half its depth (xsmall 12x384 / 6x384, small 6x768 /
# 3x768, base 12x768 / 6x768, large 24x1024 / 12x1024), embeddings shared with gdes, rtd_lambda 50.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OBJECTIVE=rtd
# From the original rtd.sh: xsmall lr 3e-4 batch 64; base and large lr 1e-4 batch 256; warm-up 10k;
# 1M steps. Continue from released weights with --init_model / --init_generator (and lr 5e-5, 100k steps).
RECIPES=(
  "xsmall   v3-xsmall   3e-4 64  10000 1000000"
  "small    v3-small    1e-4 256 10000 1000000"
  "base     v3-base     1e-4 256 10000 1000000"
  "large    v3-large    1e-4 256 10000 1000000"
)
EXTRA=(--embedding_sharing gdes --rtd_lambda 50)
lm_main "$@"
