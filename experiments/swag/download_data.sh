#!/usr/bin/env bash
# Downloads SWAG's train.csv, val.csv and test.csv from the authors' repository into DIR/SWAG/, each
# checked to have SWAG's columns (test.csv without label).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

SWAG_BASE_URL=${SWAG_BASE_URL:-https://raw.githubusercontent.com/rowanz/swagaf/master/data}

usage() {
  cat <<USAGE
Usage: ./download_data.sh [DIR]

Download SWAG into DIR/SWAG/ (default DIR: \$DATA_DIR, else /data) from \$SWAG_BASE_URL
(default: $SWAG_BASE_URL; http, https or file URLs). Files already there that pass the check are kept.
USAGE
}

check_swag() {
  python3 - "$1" "$2" <<'PY'
import csv, sys
labeled, path = sys.argv[1] == "1", sys.argv[2]
with open(path, encoding="utf-8", newline="") as f:
    reader = csv.reader(f)
    header = next(reader, [])
    wanted = ["sent1", "sent2", "ending0", "ending1", "ending2", "ending3"] + (["label"] if labeled else [])
    missing = [c for c in wanted if c not in header]
    if missing:
        sys.exit(f"not a SWAG file: no column {', '.join(missing)}")
    rows = sum(1 for row in reader if row)
if rows == 0:
    sys.exit("not a SWAG file: no rows")
PY
}

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ ${1:-} == -* ]] && glue_die "unknown option '$1' (see --help)"
root=${1:-${DATA_DIR:-/data}}/SWAG
mkdir -p "$root" || glue_die "cannot create $root"
task_fetch "$SWAG_BASE_URL/train.csv" "$root/train.csv" check_swag 1
task_fetch "$SWAG_BASE_URL/val.csv" "$root/val.csv" check_swag 1
task_fetch "$SWAG_BASE_URL/test.csv" "$root/test.csv" check_swag 0
echo "$(basename "$0"): SWAG ready in $root"
