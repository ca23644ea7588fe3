#!/usr/bin/env bash
# MRPC (paraphrase, 3.7k), started from the MNLI model: accuracy and F1.
# The published DeBERTa recipe; ./mrpc.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=MRPC
FROM_MNLI=1
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  128 6 2e-5 32 50   0.15"
  "large 128 6 1e-5 32 50   0.15"
  "v2-xlarge  128 6 3.5e-6 32 50 0.2"
  "v2-xxlarge 128 6 2e-6   32 50 0.2"
)
glue_main "$@"
