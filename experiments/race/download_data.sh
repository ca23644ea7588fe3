#!/usr/bin/env bash
# Downloads RACE (RACE.tar.gz from its authors' site) and unpacks it as DIR/RACE/{train,dev,test}/{middle,high}/.
# The archive is checked to hold that tree before anything is unpacked into place.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../tasks_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tasks_common.sh"

RACE_URL=${RACE_URL:-http://www.cs.cmu.edu/~glai1/data/race/RACE.tar.gz}

usage() {
  cat <<USAGE
Usage: ./download_data.sh [DIR]

Download RACE into DIR/RACE/ (default DIR: \$DATA_DIR, else /data) from \$RACE_URL
(default: $RACE_URL). RACE's authors ask users to request it through their form first
(https://www.cs.cmu.edu/~glai1/data/race/); RACE_URL may point at any copy (http, https or file).
Without network, copy RACE.tar.gz into DIR/ and run this again.
USAGE
}

check_race() {
  local listing
  listing=$(tar -tzf "$1" 2>/dev/null) || { echo "not a .tar.gz archive"; return 1; }
  local part split
  for split in train dev test; do
    for part in middle high; do
      grep -q "^\(\./\)\?RACE/$split/$part/.*\.txt$" <<<"$listing" || { echo "no RACE/$split/$part/*.txt in it"; return 1; }
    done
  done
}

[[ ${1:-} == -h || ${1:-} == --help ]] && { usage; exit 0; }
[[ ${1:-} == -* ]] && glue_die "unknown option '$1' (see --help)"
data_dir=${1:-${DATA_DIR:-/data}}
mkdir -p "$data_dir" || glue_die "cannot create $data_dir"
if [[ -d $data_dir/RACE/train && -d $data_dir/RACE/dev && -d $data_dir/RACE/test ]]; then
  echo "$(basename "$0"): RACE already in $data_dir/RACE"
  exit 0
fi
task_fetch "$RACE_URL" "$data_dir/RACE.tar.gz" check_race
staging=$(mktemp -d "$data_dir/.staging-RACE.XXXXXX")
trap 'rm -rf "$staging"' EXIT
tar -xzf "$data_dir/RACE.tar.gz" -C "$staging" || glue_die "cannot unpack $data_dir/RACE.tar.gz"
rm -rf "${data_dir:?}/RACE"
mv "$staging/RACE" "$data_dir/RACE"
rm -f "$data_dir/RACE.tar.gz"
echo "$(basename "$0"): RACE ready in $data_dir/RACE"
