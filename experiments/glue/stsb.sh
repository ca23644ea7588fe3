#!/usr/bin/env bash
# STS-B (sentence similarity, regression, 5.7k), started from the MNLI model: Pearson and Spearman.
# The published DeBERTa recipe; ./stsb.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=STS-B
FROM_MNLI=1
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  128 6 2e-5 32 100  0.15"
  "large 128 4 7e-6 32 100  0.15"
  "v2-xlarge  128 4 4e-6 32 100 0.2"
  "v2-xxlarge 128 4 3e-6 32 100 0.2"
)
glue_main "$@"
