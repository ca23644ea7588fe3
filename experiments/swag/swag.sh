#!/usr/bin/env bash
# SWAG (73k situations with four candidate endings): accuracy. ./swag.sh --help explains the options.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

TASK=SWAG
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  128 3 2e-5 32 0.1 0.1"
  "large 128 3 1e-5 32 0.1 0.1"
)
RECIPE_NOTE="Source: no DeBERTa SWAG script was published (the paper gives search ranges only); these are the
usual SWAG settings with rates in the paper's ranges. Not checked to reproduce it."
DATA_HINT="get it with ./download_data.sh"
task_main "$@"
