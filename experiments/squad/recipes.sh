# shellcheck shell=bash
# The recipes squad.sh (SQuAD 1.1) and squad2.sh (SQuAD 2.0) share; each sets TASK, sources this file and
# calls task_main.
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

# shellcheck disable=SC2034  # read by task_main
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  384 3 2e-5 32 0.1 0"
  "large 384 3 1e-5 32 0.1 0"
)
# shellcheck disable=SC2034
EXTRA_OPTIONS="doc_stride: 128
max_query_length: 64
max_answer_length: 30"
# shellcheck disable=SC2034
RECIPE_NOTE="Source: no DeBERTa SQuAD script was published (the paper gives search ranges only); these are the
usual SQuAD settings (384 tokens, stride 128) with rates in the paper's ranges. Not checked to reproduce it."
# shellcheck disable=SC2034
DATA_HINT="get it with ./download_data.sh"
