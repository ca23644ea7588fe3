#!/usr/bin/env bash
# Downloads SQuAD 1.1 and/or 2.0 from the SQuAD site into DIR/SQuAD/ (train-v1.1.json, dev-v1.1.json)
# and DIR/SQuAD2/ (train-v2.0.json, dev-v2.0.json). Each file is checked: valid JSON of its version with
# the published number of questions. Files already in place that pass are kept.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

SQUAD_BASE_URL=${SQUAD_BASE_URL:-https://rajpurkar.github.io/SQuAD-explorer/dataset}
# Questions in each official file.
declare -A QUESTIONS=([train-v1.1.json]=87599 [dev-v1.1.json]=10570 [train-v2.0.json]=130319 [dev-v2.0.json]=11873)

usage() {
  cat <<USAGE
Usage: ./download_data.sh [DIR] [v1.1|v2.0 ...]

Download SQuAD into DIR/SQuAD/ (1.1) and DIR/SQuAD2/ (2.0); default: both versions.
  DIR   data folder (default: \$DATA_DIR, else /data)
Files come from \$SQUAD_BASE_URL (default: $SQUAD_BASE_URL; http, https or file URLs).
Without network, copy the files into those folders and run this again: files that pass the check are kept.
USAGE
}

check_squad() {
  python3 - "$1" "$2" <<'PY'
import json, sys
expected, path = int(sys.argv[1]), sys.argv[2]
try:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    count = sum(len(p["qas"]) for article in data for p in article["paragraphs"])
except (ValueError, KeyError, TypeError) as err:
    sys.exit(f"not a SQuAD file ({type(err).__name__}: {err})")
if count != expected:
    sys.exit(f"has {count} questions, the official file {expected}")
PY
}

data_dir=${DATA_DIR:-/data}
case "${1:-}" in
  ""|-*|v1.1|1.1|v2.0|2.0) ;;
  *) data_dir=$1; shift ;;
esac
versions=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    v1.1|1.1) versions+=(v1.1) ;;
    v2.0|2.0) versions+=(v2.0) ;;
    -*) glue_die "unknown option '$arg' (see --help)" ;;
    *) glue_die "unknown version '$arg'; choose v1.1 or v2.0" ;;
  esac
done
((${#versions[@]})) || versions=(v1.1 v2.0)
for version in "${versions[@]}"; do
  folder=$data_dir/SQuAD
  [[ $version == v2.0 ]] && folder=$data_dir/SQuAD2
  mkdir -p "$folder" || glue_die "cannot create $folder"
  for split in train dev; do
    name=$split-$version.json
    task_fetch "$SQUAD_BASE_URL/$name" "$folder/$name" check_squad "${QUESTIONS[$name]}"
  done
  echo "$(basename "$0"): SQuAD $version ready in $folder"
done
