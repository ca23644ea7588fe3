#!/usr/bin/env bash
# SST-2 (movie-review sentiment, 67k): accuracy.
# The published DeBERTa recipe; ./sst2.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=SST-2
FROM_MNLI=0
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  128 6 2e-5 32 500  0.15"
  "large 128 6 1e-5 32 500  0.15"
  "v3-large   128 8 6e-6 32 500 0.1"
  "v2-xlarge  128 4 4e-6 32 500 0.2"
  "v2-xxlarge 128 4 3e-6 32 500 0.2"
)
glue_main "$@"
