#!/usr/bin/env bash
# CoNLL-2003 English is distributed with the Reuters corpus licence, so there is no public address to
# download it from: this script fetches eng.train, eng.testa and eng.testb from CONLL2003_URL, a base URL
# (http, https or file) of a copy you may use, checks them and installs them as DIR/NER/train.txt,
# valid.txt and test.txt.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

usage() {
  cat <<USAGE
Usage: CONLL2003_URL=BASE_URL ./download_data.sh [DIR]

Fetch BASE_URL/eng.train, eng.testa, eng.testb into DIR/NER/ as train.txt, valid.txt, test.txt.
  DIR   data folder (default: \$DATA_DIR, else /data)
Each file must be a CoNLL-2003 file: four columns per token (word, POS, chunk, NER tag), starting with
a -DOCSTART- line. Files already in DIR/NER/ that pass the check are kept.
USAGE
}

check_conll() {
  python3 - "$1" <<'PY'
import sys
tags = {"O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"}
with open(sys.argv[1], encoding="utf-8") as f:
    lines = f.read().splitlines()
if not lines or not lines[0].startswith("-DOCSTART-"):
    sys.exit("not a CoNLL-2003 file (it does not start with -DOCSTART-)")
for number, line in enumerate(lines, 1):
    fields = line.split()
    if fields and (len(fields) != 4 or fields[3] not in tags):
        sys.exit(f"line {number} is not 'word POS chunk tag' with a CoNLL-2003 tag")
PY
}

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ ${1:-} == -* ]] && glue_die "unknown option '$1' (see --help)"
[[ -n ${CONLL2003_URL:-} ]] || glue_die "set CONLL2003_URL to the base URL of a CoNLL-2003 copy you may use (see --help)"
root=${1:-${DATA_DIR:-/data}}/NER
mkdir -p "$root" || glue_die "cannot create $root"
for pair in eng.train:train.txt eng.testa:valid.txt eng.testb:test.txt; do
  task_fetch "${CONLL2003_URL%/}/${pair%%:*}" "$root/${pair#*:}" check_conll
done
echo "$(basename "$0"): NER ready in $root"
