#!/usr/bin/env bash
# QQP (Quora question pairs, 364k): accuracy and F1.
# The published DeBERTa recipe; ./qqp.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=QQP
FROM_MNLI=0
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  320 8 2e-5 64 500  0.15"
  "large 320 8 1e-5 64 500  0.15"
  "v3-large   320 6  1e-5 64 1000 0.2"
  "v2-xlarge  320 10 4e-6 64 1000 0.2"
  "v2-xxlarge 320 10 3e-6 64 1000 0.2"
)
glue_main "$@"
