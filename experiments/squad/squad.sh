#!/usr/bin/env bash
# SQuAD 1.1 (88k training questions): exact match and F1 of the official evaluation script.
# ./squad.sh --help explains the options and environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=recipes.sh
source "$(dirname "${BASH_SOURCE[0]}")/recipes.sh"

TASK=SQuAD
task_main "$@"
