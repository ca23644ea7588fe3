#!/usr/bin/env bash
# MNLI (multi-genre NLI, 393k pairs): accuracy on dev matched / mismatched.
# The published DeBERTa recipe; ./mnli.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TASK=MNLI
FROM_MNLI=0
DUMP_INTERVAL=1000
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  256 3 3e-5 64 1000 0.1"
  "large 256 3 1e-5 64 1000 0.2"
  "v3-xsmall  256 3 4.5e-5 64 1000 0.1"
  "v3-small   256 3 4.5e-5 64 1500 0.2"
  "v3-base    256 3 1.5e-5 64 1000 0.1"
  "v3-large   256 2 7e-6   64 500  0.3"
  "v2-xlarge  256 3 4e-6   64 1000 0.25"
  "v2-xxlarge 256 3 3e-6   64 1000 0.3"
)
glue_main "$@"
