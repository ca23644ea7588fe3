#!/usr/bin/env bash
# RACE (88k reading-comprehension exam questions, middle and high school): accuracy, overall and per part.
# ./race.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

TASK=RACE
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  320 6 2e-5 32 100 0.2"
  "large 320 6 8e-6 32 100 0.2"
)
INIT_SUFFIX=_mnli
RECIPE_NOTE="Source: the original DeBERTa repository's RACE example (experiments/my_exp/run.sh), which starts
from the MNLI-fine-tuned models. The paper's RACE recipe was not published."
DATA_HINT="get it with ./download_data.sh"
task_main "$@"
