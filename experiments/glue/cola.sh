#!/usr/bin/env bash
# CoLA (linguistic acceptability, 8.5k): Matthews correlation.
# The published DeBERTa recipe; ./cola.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=CoLA
FROM_MNLI=0
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  64  6 2e-5 32 100  0.15"
  "large 64  6 7e-6 32 100  0.15"
  "v3-large   64 10 5.5e-6 32 50  0.1"
  "v2-xlarge  64 8  3e-6   32 100 0.2"
  "v2-xxlarge 64 10 2.5e-6 32 100 0.2"
)
glue_main "$@"
