#!/usr/bin/env bash
# Masked-LM pre-training (DeBERTa v1/v2 style, enhanced mask decoder): ./mlm.sh [--dry-run] SIZE [options]
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
OBJECTIVE=mlm
EXTRA=()
# The original mlm.sh: lr 1e-4, batch 256, warm-up 10k for base-sized models; v2 xlarge/xxlarge used
# batch 32 and warm-up 1k on their hardware (reach the 256 of the paper with ACCUMULATE or more GPUs).
RECIPES=(
  "base     base        1e-4 256 10000 1000000"
  "large    large       1e-4 256 10000 1000000"
  "v3-base  v3-base     1e-4 256 10000 1000000"
)
lm_main "$@"
