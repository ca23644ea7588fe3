#!/usr/bin/env bash
# SQuAD 2.0 (130k training questions, a third unanswerable): exact match and F1 of the official
# evaluation script, with the best no-answer threshold. ./squad2.sh --help explains the options.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=recipes.sh
source "$(dirname "${BASH_SOURCE[0]}")/recipes.sh"

TASK=SQuAD2
task_main "$@"
