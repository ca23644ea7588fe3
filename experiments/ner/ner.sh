#!/usr/bin/env bash
# CoNLL-2003 English NER (14k training sentences): entity-level F1 as conlleval counts it.
# The recipe of the original DeBERTa repository's experiments/ner/ner.sh; ./ner.sh --help explains the
# options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

TASK=NER
RECIPES=(
  # model max_seq_len epochs learning_rate batch warmup cls_drop_out
  "base  512 15 2e-5 16 0.1 0"
  "large 512 15 1e-5 16 0.1 0"
)
RECIPE_NOTE="Source: the original DeBERTa repository's experiments/ner/ner.sh (warmup 0.1 is a proportion)."
DATA_HINT="CoNLL-2003 comes with the Reuters corpus licence: put train.txt, valid.txt and test.txt (or eng.train, \
eng.testa, eng.testb) there, or run ./download_data.sh with CONLL2003_URL pointing at a copy you may use"
task_main "$@"
