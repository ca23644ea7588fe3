#!/usr/bin/env bash
# QNLI (question-answering NLI, 105k): accuracy.
# The published DeBERTa recipe; ./qnli.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=QNLI
FROM_MNLI=0
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  512 4 2e-5 32 500  0.15"
  "large 512 4 1e-5 32 500  0.15"
  "v3-large   512 6 7e-6 64 200 0.2"
  "v2-xlarge  512 4 4e-6 64 500 0.2"
  "v2-xxlarge 512 4 3e-6 64 500 0.2"
)
glue_main "$@"
