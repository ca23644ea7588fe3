#!/usr/bin/env bash
# RTE (textual entailment, 2.5k), started from the MNLI model: accuracy.
# The published DeBERTa recipe; ./rte.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=RTE
FROM_MNLI=1
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  320 6 2e-5 32 100  0.2"
  "large 320 6 1e-5 32 50   0.2"
  "v2-xlarge  320 6 4e-6 48 50 0.2"
  "v2-xxlarge 320 6 3e-6 48 50 0.2"
)
glue_main "$@"
