#!/usr/bin/env bash
# make docker-smoke: proves that docker/Dockerfile builds and that run_docker.sh runs a real fine-tuning
# in the image, on a machine with no registry and no Docker daemon. The base image is made locally from
# a Debian root filesystem (the only thing substituted); the Dockerfile is built unchanged with podman;
# then `DOCKER=podman ./run_docker.sh --cpu ... ./sst2.sh` trains the tiny model on a small generated
# SST-2 set inside the container, and the results are checked on the host, in the mounted data folder,
# including that the image holds, and the run ran on, requirements.txt's torch.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'EOF'
Usage: docker/smoke.sh [options]

Build the image on a locally made Debian base and run a short fine-tuning of the tiny model in it
through run_docker.sh; check that the run's results land in the mounted data folder on the host.

Options:
  --keep          keep the smoke folder (data, cache, run outputs) even when the smoke passes
  --no-install    do not apt-get install missing tools (debootstrap buildah podman runc); fail instead
  --rebuild-base  rebuild the base image's root filesystem instead of using the cached one
  -h, --help      show this help

Environment:
  PYTHON            host Python with this package installed, used to build the smoke vocabulary
                    (default: .venv/bin/python, else python3)
  SMOKE_IMAGE       tag of the image built (default: localhost/deberta:smoke)
  SMOKE_BASE_IMAGE  tag of the local base image (default: localhost/deberta-base:bookworm)
  SMOKE_CACHE_DIR   where the base root filesystem is cached between runs
                    (default: ${XDG_CACHE_HOME:-~/.cache}/deberta-smoke)
  SMOKE_STORE       container store of the smoke, apart from the machine's default one
                    (default: /var/lib/containers/deberta-smoke)
  SMOKE_STORAGE_DRIVER  overlay (default where the kernel has it: no copy per build step) or vfs
  PIP_CERT, PIP_FIND_LINKS  CA bundle and wheel folder for pip inside the build (default: pip's own
                    configuration on this host); mounted read-only into the build
  PIP_INDEX_URL, PIP_EXTRA_INDEX_URL  package indexes for pip inside the build, when set

Needs root (debootstrap, and the container store shared with buildah). Cold (nothing cached) it takes
a few minutes, mostly installing torch into the image; warm, the cached layers make it quick.
EOF
}

die() { echo "smoke.sh: error: $*" >&2; exit 2; }
step() { echo "smoke.sh: [$((SECONDS - start))s] $*"; }

keep=0
install=1
rebuild_base=0
while (($#)); do
  case "$1" in
    --keep) keep=1; shift ;;
    --no-install) install=0; shift ;;
    --rebuild-base) rebuild_base=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

start=$SECONDS
((EUID == 0)) || die "the smoke needs root (debootstrap and the shared container store); run it with sudo"

image=${SMOKE_IMAGE:-localhost/deberta:smoke}
base_image=${SMOKE_BASE_IMAGE:-localhost/deberta-base:bookworm}
cache_dir=${SMOKE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deberta-smoke}
# A store of its own: the storage driver is fixed per store, and vfs (copy the whole tree at every
# build step) makes a build with torch take minutes longer than overlay does.
driver=${SMOKE_STORAGE_DRIVER:-$(grep -qw overlay /proc/filesystems && echo overlay || echo vfs)}
store=${SMOKE_STORE:-/var/lib/containers/deberta-smoke}
store_flags=(--root "$store/$driver" --runroot "/run/deberta-smoke/$driver" --storage-driver "$driver")
# runc and cgroupfs: podman's defaults (crun, systemd) fail on hosts and CI runners without systemd.
podman_flags=(--runtime runc --cgroup-manager cgroupfs "${store_flags[@]}")
python=${PYTHON:-}
if [[ -z $python ]]; then
  if [[ -x $repo_root/.venv/bin/python ]]; then python=$repo_root/.venv/bin/python; else python=python3; fi
fi

# --- tools ---------------------------------------------------------------------------------------
missing=()
for tool in debootstrap buildah podman runc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  ((install)) || die "missing ${missing[*]}; install with: apt-get install -y ${missing[*]}"
  step "installing ${missing[*]} (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- base image ----------------------------------------------------------------------------------
step "base image $base_image (store $store/$driver)"
base_flags=(--image "$base_image" --cache-dir "$cache_dir")
((rebuild_base)) && base_flags+=(--force)
BUILDAH_FLAGS="${store_flags[*]}" "$repo_root/docker/build_base.sh" "${base_flags[@]}"

# --- the Dockerfile, unchanged, on that base ---------------------------------------------------------
pip_config() { "$python" -m pip config get "$1" 2>/dev/null || true; }
pip_cert=${PIP_CERT:-$(pip_config global.cert)}
find_links=${PIP_FIND_LINKS:-$(pip_config global.find-links)}
# The image installs requirements.txt's torch (the Dockerfile's default TORCH); here from pip's own indexes
# and find-links folder rather than PyTorch's CUDA index, which a machine without a registry cannot reach.
pinned_torch=$(sed -n 's/^torch==\([^[:space:]#]*\).*/\1/p' "$repo_root/requirements.txt")
[[ -n $pinned_torch ]] || die "requirements.txt pins no torch (a line torch==VERSION)"
build_args=(--build-arg "BASE_IMAGE=$base_image" --build-arg "TORCH_INDEX_URL="
  --build-arg "VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$repo_root/DeBERTa/__init__.py")"
  --build-arg "REVISION=$(git -C "$repo_root" rev-parse HEAD 2>/dev/null || echo unknown)")
if [[ -n $pip_cert && -r $pip_cert ]]; then
  build_args+=(-v "$pip_cert:/run/host-ca.pem:ro" --build-arg PIP_CERT=/run/host-ca.pem)
fi
if [[ -n $find_links && -d $find_links ]]; then
  build_args+=(-v "$find_links:$find_links:ro" --build-arg "PIP_FIND_LINKS=$find_links")
fi
# E.g. PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu: the base has no torch, and the CPU wheel
# is a tenth of the CUDA one from PyPI.
for setting in PIP_INDEX_URL PIP_EXTRA_INDEX_URL; do
  [[ -n ${!setting:-} ]] && build_args+=(--build-arg "$setting=${!setting}")
done
step "building $image from docker/Dockerfile"
build_log=$(mktemp)
if ! podman "${podman_flags[@]}" build --isolation chroot --format docker --pull=never "${build_args[@]}" \
    -f "$repo_root/docker/Dockerfile" -t "$image" "$repo_root" >"$build_log" 2>&1; then
  tail -n 40 "$build_log" >&2
  die "building the image failed (full log: $build_log)"
fi
rm -f "$build_log"
image_torch=$(podman "${podman_flags[@]}" image inspect --format '{{ index .Labels "deberta.torch" }}' "$image")
[[ $image_torch == "$pinned_torch" ]] \
  || die "the image's label deberta.torch is '$image_torch', not requirements.txt's torch $pinned_torch"

# --- a small SST-2 task and a vocabulary for it, on the host ----------------------------------------
smoke_dir=$(mktemp -d /tmp/deberta-smoke.XXXXXX)
finish() {
  local status=$?
  if ((status != 0)); then
    echo "smoke.sh: failed after $((SECONDS - start))s; its files are in $smoke_dir" >&2
  elif ((keep)); then
    echo "smoke.sh: kept $smoke_dir"
  else
    rm -rf "$smoke_dir"
  fi
}
trap finish EXIT
data=$smoke_dir/data
task_dir=$data/glue_tasks/SST-2
mkdir -p "$task_dir" "$smoke_dir/cache"
step "smoke data in $data"
# Sentences whose label follows from one word, so a few steps of training can find the signal.
good=(moving brilliant charming delightful superb tender witty gripping)
bad=(dull clumsy tedious lifeless shallow grating muddled bland)
subjects=("the film" "this story" "the cast" "its script")
write_split() {
  local file=$1 count=$2 offset=$3 with_label=$4 i words word subject label
  if ((with_label)); then printf 'sentence\tlabel\n' >"$file"; else printf 'index\tsentence\n' >"$file"; fi
  for ((i = 0; i < count; i++)); do
    label=$(((i + offset) % 2))
    if ((label)); then words=("${good[@]}"); else words=("${bad[@]}"); fi
    word=${words[(i * 3 + offset) % ${#words[@]}]}
    subject=${subjects[(i + offset) % ${#subjects[@]}]}
    if ((with_label)); then
      printf '%s is %s \t%d\n' "$subject" "$word" "$label" >>"$file"
    else
      printf '%d\t%s is %s \n' "$i" "$subject" "$word" >>"$file"
    fi
  done
}
write_split "$task_dir/train.tsv" 96 0 1
write_split "$task_dir/dev.tsv" 32 1 1
write_split "$task_dir/test.tsv" 16 2 0
cut -f1 "$task_dir/train.tsv" | tail -n +2 >"$smoke_dir/corpus.txt"
"$python" -m DeBERTa.apps.build_vocab --corpus "$smoke_dir/corpus.txt" --output "$data/vocab" >/dev/null \
  || die "building the smoke vocabulary with $python failed (is the package installed there?)"

# The container runs as an unprivileged uid that owns the host folders, as a host user would.
uid=4242
chown -R "$uid:$uid" "$data" "$smoke_dir/cache"

# --- a real fine-tuning through run_docker.sh --------------------------------------------------------
run_dir=/data/runs/smoke-sst2
step "training the tiny model in the container (./sst2.sh through run_docker.sh)"
DOCKER=podman \
DOCKER_GLOBAL_FLAGS="${podman_flags[*]}" \
DOCKER_RUN_FLAGS="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024" \
  "$repo_root/run_docker.sh" --cpu --image "$image" --data "$data" --cache "$smoke_dir/cache" \
  --user "$uid:$uid" -e DEBERTA_OFFLINE=1 -e OUTPUT_DIR=$run_dir -e SEED=7 \
  ./sst2.sh base --init_model none --model_config tiny --vocab_path /data/vocab --max_seq_len 32 \
  --num_train_epochs 3 --train_batch_size 16 --eval_batch_size 16 --predict_batch_size 16 \
  --learning_rate 1e-3 --warmup 0.1 --workers 0 \
  || die "the training run in the container failed"

# --- results on the host ------------------------------------------------------------------------------
host_run=$data${run_dir#/data}
step "checking the results in $host_run"
for file in recipe.yaml config.yaml run.json metrics.jsonl eval_results.json predictions/SST-2.tsv; do
  [[ -s $host_run/$file ]] || die "$host_run/$file is missing or empty"
  owner=$(stat -c %u "$host_run/$file")
  [[ $owner == "$uid" ]] || die "$host_run/$file belongs to uid $owner, not the host user $uid"
done
grep -q '"accuracy"' "$host_run/eval_results.json" || die "$host_run/eval_results.json has no accuracy"
# The torch the run ran on (run.json) is the pinned one every test runs on.
run_torch=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["torch"])' "$host_run/run.json")
[[ ${run_torch%%+*} == "$pinned_torch" ]] || die "the run in the image ran on torch $run_torch, not $pinned_torch"
# ... and the image's own account of its torch (DEBERTA_IMAGE_TORCH, from the build argument TORCH) is in run.json.
run_image_torch=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["image_torch"])' "$host_run/run.json")
[[ $run_image_torch == "$image_torch" ]] \
  || die "run.json's image_torch is '$run_image_torch', not the image's label deberta.torch=$image_torch"
echo "smoke.sh: the image's torch: $run_torch (label deberta.torch=$image_torch)"
predictions=$(($(wc -l <"$host_run/predictions/SST-2.tsv") - 1))
((predictions == 16)) || die "predictions/SST-2.tsv has $predictions rows, expected 16"
echo "smoke.sh: eval_results.json: $(tr -d '\n' <"$host_run/eval_results.json")"

step "docker smoke passed"
