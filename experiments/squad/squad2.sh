#!/usr/bin/env bash
# SQuAD 2.0 (130k training questions, a third unanswerable): exact match and F1 of the official
# evaluation script, with the best no-answer threshold. ./squad2.sh --help explains the options.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

TASK=SQuAD2
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  384 3 2e-5 32 0.1 0"
  "large 384 3 1e-5 32 0.1 0"
)
EXTRA_OPTIONS="doc_stride: 128
max_query_length: 64
max_answer_length: 30"
RECIPE_NOTE="Source: no DeBERTa SQuAD script was published (the paper gives search ranges only); these are the
usual SQuAD settings (384 tokens, stride 128) with rates in the paper's ranges. Not checked to reproduce it."
DATA_HINT="get it with ./download_data.sh"
task_main "$@"
