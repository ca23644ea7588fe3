#!/usr/bin/env bash
# Downloads the GLUE tasks from the archives the GLUE benchmark's own download script uses, checks
# every file against its published SHA-256, and unpacks them as DIR/glue_tasks/<Task>/. A task already
# in place is skipped, so running it again is cheap; a failed or partial download never leaves a task
# folder behind that looks complete.
set -euo pipefail

GLUE_BASE_URL=${GLUE_BASE_URL:-https://dl.fbaipublicfiles.com/glue/data}
MRPC_BASE_URL=${MRPC_BASE_URL:-https://dl.fbaipublicfiles.com/senteval/senteval_data}
TASKS=(CoLA SST-2 MRPC QQP STS-B MNLI QNLI RTE WNLI AX)

usage() {
  cat <<EOF
Usage: ./download_data.sh [DIR] [TASK ...]

Download GLUE tasks into DIR/glue_tasks/<Task>/ and verify them.
  DIR    data folder (default: \$DATA_DIR, else /data, the container's data volume)
  TASK   any of: ${TASKS[*]} (default: all; case and dashes do not matter, e.g. sst2, stsb)

Archives are fetched from \$GLUE_BASE_URL (default: $GLUE_BASE_URL) and MRPC's
source files from \$MRPC_BASE_URL (default: $MRPC_BASE_URL); both can point at a mirror
(http, https or file URLs). Without network, copy the archives (CoLA.zip, SST-2.zip, QQP-clean.zip,
STS-B.zip, MNLI.zip, QNLIv2.zip, RTE.zip, WNLI.zip, AX.tsv, msr_paraphrase_train.txt,
msr_paraphrase_test.txt, mrpc_dev_ids.tsv) into DIR/glue_tasks/.downloads/ and run this again: files
found there are verified and used.

Every file is checked against its SHA-256; GLUE_SHA256SUMS may name a sha256sum-style file that
replaces the built-in checksums (for a mirror with repacked archives).

Options:
  -h, --help   show this help
EOF
}

die() { echo "download_data.sh: error: $*" >&2; exit 2; }
say() { echo "download_data.sh: $*"; }

# SHA-256 of the files as published (the same files the GLUE download script fetches).
declare -A SHA256=(
  [CoLA.zip]=f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff
  [SST-2.zip]=d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa
  [QQP-clean.zip]=40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0
  [STS-B.zip]=e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85
  [MNLI.zip]=e7c1d896d26ed6caf700110645df426cc2d8ebf02a5ab743d5a5c68ac1c83633
  [QNLIv2.zip]=e634e78627a29adaecd4f955359b22bf5e70f2cbd93b493f2d624138a0c0e5f5
  [RTE.zip]=6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee
  [WNLI.zip]=ae0e8e4d16f4d46d4a0a566ec7ecceccfd3fbfaa4a7a4b4e02848c0f2561ac46
  [AX.tsv]=0e13510b1bb14436ff7e2ee82338f0efb0133ecf2e73507a697dc210db3f05fd
  [msr_paraphrase_train.txt]=60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89
  [msr_paraphrase_test.txt]=a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784
  [mrpc_dev_ids.tsv]=971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7
)
declare -A ARCHIVE=(
  [CoLA]=CoLA.zip [SST-2]=SST-2.zip [QQP]=QQP-clean.zip [STS-B]=STS-B.zip [MNLI]=MNLI.zip
  [QNLI]=QNLIv2.zip [RTE]=RTE.zip [WNLI]=WNLI.zip
)
# The files a task folder must hold to count as present.
declare -A EXPECTED=(
  [CoLA]="train.tsv dev.tsv test.tsv" [SST-2]="train.tsv dev.tsv test.tsv" [MRPC]="train.tsv dev.tsv test.tsv"
  [QQP]="train.tsv dev.tsv test.tsv" [STS-B]="train.tsv dev.tsv test.tsv" [QNLI]="train.tsv dev.tsv test.tsv"
  [RTE]="train.tsv dev.tsv test.tsv" [WNLI]="train.tsv dev.tsv test.tsv" [AX]="AX.tsv"
  [MNLI]="train.tsv dev_matched.tsv dev_mismatched.tsv test_matched.tsv test_mismatched.tsv"
)
MARKER=.glue-download-ok

canonical_task() {
  local wanted=${1,,} task
  wanted=${wanted//[-_]/}
  [[ $wanted == diagnostic ]] && wanted=ax
  for task in "${TASKS[@]}"; do
    local name=${task,,}
    if [[ ${name//-/} == "$wanted" ]]; then echo "$task"; return 0; fi
  done
  return 1
}

load_checksum_override() {
  local file=$1 sum name
  [[ -r $file ]] || die "GLUE_SHA256SUMS=$file is not a readable file"
  while read -r sum name; do
    [[ -z $sum || $sum == \#* ]] && continue
    SHA256[${name#\*}]=$sum
  done <"$file"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
  fi
}

# Fetch URL to FILE (curl when installed, else Python). Fails with the reason in one line.
fetch() {
  local url=$1 file=$2
  if command -v curl >/dev/null 2>&1; then
    local err
    if ! err=$(curl --fail --location --silent --show-error --connect-timeout 20 --retry 2 \
        --output "$file" "$url" 2>&1); then
      echo "${err##*$'\n'}"
      return 1
    fi
  else
    python3 - "$url" "$file" <<'EOF' || return 1
import shutil, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=20) as response, open(sys.argv[2], "wb") as out:
        shutil.copyfileobj(response, out)
except Exception as err:  # one line for the caller's message
    print(f"{type(err).__name__}: {err}")
    sys.exit(1)
EOF
  fi
}

# A verified copy of NAME from BASE_URL in the downloads folder: a file already there (copied by hand
# for an offline machine, or left by an earlier run) is used when its checksum matches.
obtain() {
  local base_url=$1 name=$2 file=$downloads/$2 reason
  local expected=${SHA256[$name]}
  if [[ -f $file ]]; then
    if [[ $(sha256_of "$file") == "$expected" ]]; then return 0; fi
    say "$file does not match its checksum; downloading it again"
    rm -f "$file"
  fi
  say "downloading $base_url/$name"
  if ! reason=$(fetch "$base_url/$name" "$file.partial"); then
    rm -f "$file.partial"
    die "cannot download $base_url/$name (${reason:-unknown error}). No network? Copy $name into \
$downloads/ and run this again, or set GLUE_BASE_URL/MRPC_BASE_URL to a mirror"
  fi
  local actual
  actual=$(sha256_of "$file.partial")
  if [[ $actual != "$expected" ]]; then
    rm -f "$file.partial"
    die "$name from $base_url has SHA-256 $actual, expected $expected; not using it"
  fi
  mv "$file.partial" "$file"
}

unzip_to() {
  if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "$1" -d "$2"
  else
    python3 -m zipfile -e "$1" "$2"
  fi
}

# MRPC is not shipped as a GLUE archive: its train and dev splits come from Microsoft's training file
# (the dev pairs are listed by id), its test split from the test file, with the test labels dropped.
build_mrpc() {
  local out=$1 header=$'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String'
  printf '%s\n' "$header" >"$out/train.tsv"
  printf '%s\n' "$header" >"$out/dev.tsv"
  awk -F'\t' -v OFS='\t' -v train="$out/train.tsv" -v dev="$out/dev.tsv" '
    { sub(/\r$/, "") }
    FNR == NR { dev_pair[$1 FS $2] = 1; next }
    FNR == 1 { next }
    NF == 5 { print >> ((($2 FS $3) in dev_pair) ? dev : train) }
  ' "$downloads/mrpc_dev_ids.tsv" "$downloads/msr_paraphrase_train.txt"
  awk -F'\t' -v OFS='\t' '
    { sub(/\r$/, "") }
    FNR == 1 { print "index", "#1 ID", "#2 ID", "#1 String", "#2 String"; next }
    NF == 5 { print FNR - 2, $2, $3, $4, $5 }
  ' "$downloads/msr_paraphrase_test.txt" >"$out/test.tsv"
}

task_complete() {
  local dir=$root/$1 file
  [[ -f $dir/$MARKER ]] || return 1
  for file in ${EXPECTED[$1]}; do [[ -s $dir/$file ]] || return 1; done
}

install_task() {
  local task=$1 staging
  staging=$(mktemp -d "$root/.staging-$task.XXXXXX")
  case "$task" in
    MRPC)
      obtain "$MRPC_BASE_URL" msr_paraphrase_train.txt
      obtain "$MRPC_BASE_URL" msr_paraphrase_test.txt
      obtain "$GLUE_BASE_URL" mrpc_dev_ids.tsv
      mkdir "$staging/MRPC"
      build_mrpc "$staging/MRPC"
      ;;
    AX)
      obtain "$GLUE_BASE_URL" AX.tsv
      mkdir "$staging/AX"
      cp "$downloads/AX.tsv" "$staging/AX/AX.tsv"
      ;;
    *)
      obtain "$GLUE_BASE_URL" "${ARCHIVE[$task]}"
      unzip_to "$downloads/${ARCHIVE[$task]}" "$staging" || die "cannot unpack ${ARCHIVE[$task]}"
      ;;
  esac
  local file
  for file in ${EXPECTED[$task]}; do
    [[ -s $staging/$task/$file ]] || die "$task: $file is missing from what was downloaded (in $staging)"
  done
  date -u +%Y-%m-%dT%H:%M:%SZ >"$staging/$task/$MARKER"
  # Replace the task folder in one rename, so an interrupted run leaves the old one or none.
  rm -rf "${root:?}/$task"
  mv "$staging/$task" "$root/$task"
  rm -rf "$staging"
  case "$task" in
    MRPC) rm -f "$downloads/msr_paraphrase_train.txt" "$downloads/msr_paraphrase_test.txt" "$downloads/mrpc_dev_ids.tsv" ;;
    AX) rm -f "$downloads/AX.tsv" ;;
    *) rm -f "$downloads/${ARCHIVE[$task]}" ;;
  esac
}

data_dir=${DATA_DIR:-/data}
if (($#)) && [[ $1 == -h || $1 == --help ]]; then usage; exit 0; fi
if (($#)) && ! canonical_task "$1" >/dev/null; then
  [[ $1 == -* ]] && die "unknown option '$1' (see --help)"
  data_dir=$1
  shift
fi
selected=()
for arg in "$@"; do
  [[ $arg == -h || $arg == --help ]] && { usage; exit 0; }
  task=$(canonical_task "$arg") || die "unknown task '$arg'; known tasks: ${TASKS[*]}"
  selected+=("$task")
done
((${#selected[@]})) || selected=("${TASKS[@]}")
[[ -n ${GLUE_SHA256SUMS:-} ]] && load_checksum_override "$GLUE_SHA256SUMS"

root=$data_dir/glue_tasks
downloads=$root/.downloads
mkdir -p "$downloads" || die "cannot create $downloads"
trap 'rm -rf "$root"/.staging-*' EXIT

for task in "${selected[@]}"; do
  if task_complete "$task"; then
    say "$task: already in $root/$task"
    continue
  fi
  install_task "$task"
  say "$task: ready in $root/$task"
done
