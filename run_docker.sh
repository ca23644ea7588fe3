#!/usr/bin/env bash
# Runs the DeBERTa image with the GPUs, the data and cache folders and the host user's uid, and lands in
# /DeBERTa/experiments/glue. It only assembles a `docker run` (or `podman run`) command: it never
# installs anything and never uses sudo; when something is missing it says what and how to fix it.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<EOF
Usage: ./run_docker.sh [options] [--] [command ...]

Start the DeBERTa container: an interactive shell in /DeBERTa/experiments/glue, or the command given
after the options (e.g. ./run_docker.sh ./mnli.sh base).

Options:
  -i, --image IMAGE   image to run (default: \$DEBERTA_IMAGE or $(default_image))
  --build             build the image from docker/Dockerfile first (instead of pulling it)
  --pull              pull the image even when it is present locally (default: pull only if missing)
  --gpus LIST         GPUs to expose: all (default), or device numbers such as 0,1
  --cpu               run without GPUs
  --data DIR          host folder mounted at /data: GLUE data and run outputs
                      (default: \$DEBERTA_DATA_DIR or ~/deberta/data; created if missing)
  --cache DIR|none    host folder mounted at /cache: downloaded models, Hugging Face and torch caches
                      (default: \$DEBERTA_CACHE_DIR or ~/.cache/deberta; created if missing);
                      'none' keeps the image's own /cache (models pre-downloaded at build time)
  --user UID:GID      run as this user (default: yours, $(id -u):$(id -g), so files on the host stay yours)
  --shm-size SIZE     give the container a private /dev/shm of SIZE (e.g. 16g) instead of --ipc=host
  --host-network      use the host's network (multi-node training: torchrun must reach the other
                      nodes); implied when NNODES > 1
  -e, --env VAR[=VAL] pass an environment variable (repeatable)
  -v, --volume SPEC   add a bind mount HOST:CONTAINER[:ro] (repeatable)
  --name NAME         container name
  --dry-run           print the commands instead of running them
  -h, --help          show this help

Environment:
  DOCKER              container CLI to use (default: docker; podman works: DOCKER=podman)
  DOCKER_GLOBAL_FLAGS extra flags placed before 'run'/'build', e.g. for podman on hosts without
                      systemd: '--runtime runc --cgroup-manager cgroupfs --storage-driver vfs'
  DOCKER_RUN_FLAGS    extra flags for 'run', e.g. '--ulimit nofile=1024:1024'
  DOCKER_BUILD_FLAGS  extra flags for 'build' (with --build)
  DEBERTA_IMAGE, DEBERTA_DATA_DIR, DEBERTA_CACHE_DIR   defaults for --image, --data, --cache
  SEED NUM_GPUS FP16 INIT_MODEL MNLI_MODEL NNODES NODE_RANK MASTER_ADDR MASTER_PORT RDZV_ENDPOINT
  RDZV_BACKEND RDZV_ID
                      passed into the container when set (the experiment scripts read them; a path
                      in INIT_MODEL or MNLI_MODEL must be one inside the container, e.g. under /data)

Examples:
  ./run_docker.sh                                  # shell, all GPUs
  ./run_docker.sh --gpus 0,1 ./mrpc.sh base        # one task on two GPUs
  ./run_docker.sh --cpu python -c 'import DeBERTa'
  NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 ./run_docker.sh ./mnli.sh large   # on each node
EOF
}

die() { echo "run_docker.sh: error: $*" >&2; exit 2; }

# The image tag follows the package version, read from DeBERTa/__init__.py without needing Python.
package_version() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^__version__[[:space:]]*=[[:space:]]*[\"\']([^\"\']+)[\"\'] ]]; then
      echo "${BASH_REMATCH[1]}"; return
    fi
  done <"$repo_root/DeBERTa/__init__.py"
  die "no __version__ in $repo_root/DeBERTa/__init__.py"
}
default_image() { echo "bagai/deberta:$(package_version)"; }

# One line a shell can paste back: every word quoted only when it needs it.
print_command() {
  local out="" word
  for word in "$@"; do
    if [[ $word =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
      out+="$word "
    else
      out+="'${word//\'/\'\\\'\'}' "
    fi
  done
  echo "${out% }"
}

image=${DEBERTA_IMAGE:-}
build=0
pull=missing
gpus=all
data_dir=${DEBERTA_DATA_DIR:-$HOME/deberta/data}
cache_dir=${DEBERTA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deberta}
user="$(id -u):$(id -g)"
shm_size=""
host_network=0
name=""
dry_run=0
extra_env=()
extra_volumes=()
while (($#)); do
  case "$1" in
    -i|--image|--gpus|--data|--cache|--user|--shm-size|-e|--env|-v|--volume|--name)
      (($# >= 2)) || die "$1 needs a value" ;;
  esac
  case "$1" in
    -i|--image) image=$2; shift 2 ;;
    --build) build=1; shift ;;
    --pull) pull=always; shift ;;
    --gpus) gpus=$2; shift 2 ;;
    --cpu) gpus=none; shift ;;
    --data) data_dir=$2; shift 2 ;;
    --cache) cache_dir=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --shm-size) shm_size=$2; shift 2 ;;
    --host-network) host_network=1; shift ;;
    -e|--env) extra_env+=(-e "$2"); shift 2 ;;
    -v|--volume) extra_volumes+=(-v "$2"); shift 2 ;;
    --name) name=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) break ;;
  esac
done
command=("$@")
image=${image:-$(default_image)}

[[ $gpus == all || $gpus == none || $gpus =~ ^[0-9]+(,[0-9]+)*$ ]] \
  || die "--gpus takes 'all' or device numbers such as 0,1 (got '$gpus')"
[[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] || die "--user takes UID or UID:GID as numbers (got '$user')"

docker_cli=${DOCKER:-docker}
read -r -a global_flags <<<"${DOCKER_GLOBAL_FLAGS:-}"
read -r -a run_flags <<<"${DOCKER_RUN_FLAGS:-}"
read -r -a build_flags <<<"${DOCKER_BUILD_FLAGS:-}"

command -v "$docker_cli" >/dev/null 2>&1 || die "'$docker_cli' not found on PATH; install Docker \
(https://docs.docker.com/engine/install/) or Podman, or point DOCKER at the container CLI"

# Podman reaches GPUs through CDI device names, Docker through --gpus; a docker command that is really
# podman (the podman-docker shim) says so in its version.
is_podman=0
if [[ $(basename "$docker_cli") == podman* ]] || "$docker_cli" --version 2>/dev/null | grep -qi podman; then
  is_podman=1
fi

# GPU prerequisites are checked before anything runs, so a missing driver or toolkit is one clear line
# instead of a failure deep inside the container runtime.
check_gpu_support() {
  if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    die "no NVIDIA GPU found (nvidia-smi is missing or lists no GPU); install the NVIDIA driver, \
or run on the CPU with --cpu"
  fi
  if ((is_podman)); then
    local spec
    for spec in /etc/cdi/nvidia.yaml /etc/cdi/nvidia.json /var/run/cdi/nvidia.yaml /var/run/cdi/nvidia.json; do
      [[ -e $spec ]] && return 0
    done
    die "podman needs the NVIDIA Container Toolkit's CDI spec (no /etc/cdi/nvidia.yaml): install the \
toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/) and run \
'nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml', or use --cpu"
  fi
  command -v nvidia-container-cli >/dev/null 2>&1 || command -v nvidia-ctk >/dev/null 2>&1 \
    || command -v nvidia-container-runtime-hook >/dev/null 2>&1 \
    || die "the NVIDIA Container Toolkit is not installed, so docker cannot pass GPUs to containers: \
install it (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/) or use --cpu"
}

gpu_flags=()
if [[ $gpus != none ]]; then
  if ((is_podman)); then
    if [[ $gpus == all ]]; then
      gpu_flags=(--device nvidia.com/gpu=all)
    else
      IFS=, read -r -a devices <<<"$gpus"
      for device in "${devices[@]}"; do gpu_flags+=(--device "nvidia.com/gpu=$device"); done
    fi
  elif [[ $gpus == all ]]; then
    gpu_flags=(--gpus all)
  else
    # Docker splits --gpus on commas unless the device list is quoted inside the value.
    gpu_flags=(--gpus "\"device=$gpus\"")
  fi
fi

mount_flags=(-v "$data_dir:/data")
[[ $cache_dir == none ]] || mount_flags+=(-v "$cache_dir:/cache")

env_flags=()
# Settings of the experiment scripts; folder variables are not passed, since host paths mean nothing inside.
for var in SEED NUM_GPUS FP16 INIT_MODEL MNLI_MODEL NNODES NODE_RANK MASTER_ADDR MASTER_PORT RDZV_ENDPOINT \
           RDZV_BACKEND RDZV_ID; do
  [[ -n ${!var:-} ]] && env_flags+=(-e "$var=${!var}")
done
if [[ ${NNODES:-1} =~ ^[0-9]+$ ]] && ((${NNODES:-1} > 1)); then host_network=1; fi

tty_flags=()
[[ -t 0 ]] && tty_flags+=(-i)
[[ -t 0 && -t 1 ]] && tty_flags+=(-t)

ipc_flags=(--ipc=host)
[[ -n $shm_size ]] && ipc_flags=(--shm-size "$shm_size")

# Rootless podman maps container uids to subordinate ones; keep-id maps the host user to itself, so files
# written to /data belong to that user on the host, as with docker.
user_flags=(--user "$user")
if ((is_podman)) && [[ $(id -u) != 0 ]]; then user_flags+=(--userns=keep-id); fi

build_cmd=()
if ((build)); then
  revision=$(git -C "$repo_root" rev-parse HEAD 2>/dev/null || echo unknown)
  build_cmd=("$docker_cli" "${global_flags[@]}" build "${build_flags[@]}" -f "$repo_root/docker/Dockerfile"
    --build-arg "VERSION=$(package_version)" --build-arg "REVISION=$revision"
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t "$image" "$repo_root")
  pull=never
fi

run_cmd=("$docker_cli" "${global_flags[@]}" run --rm "--pull=$pull" "${tty_flags[@]}"
  "${user_flags[@]}" "${ipc_flags[@]}" "${gpu_flags[@]}" "${mount_flags[@]}" "${extra_volumes[@]}"
  "${env_flags[@]}" "${extra_env[@]}" "${run_flags[@]}")
((host_network)) && run_cmd+=(--network host)
[[ -n $name ]] && run_cmd+=(--name "$name")
run_cmd+=("$image" "${command[@]}")

if ((dry_run)); then
  ((build)) && print_command "${build_cmd[@]}"
  print_command "${run_cmd[@]}"
  exit 0
fi

[[ $gpus == none ]] || check_gpu_support
mkdir -p "$data_dir" || die "cannot create the data folder $data_dir"
[[ $cache_dir == none ]] || mkdir -p "$cache_dir" || die "cannot create the cache folder $cache_dir"

if ((build)); then
  "${build_cmd[@]}" || die "building $image failed (command: $(print_command "${build_cmd[@]}"))"
fi

status=0
"${run_cmd[@]}" || status=$?
# 125 is the CLI's own failure (no daemon, image not found, bad flag), not the command's exit status.
if ((status == 125)); then
  echo "run_docker.sh: $docker_cli could not start the container; if the image could not be pulled," \
    "build it with: ./run_docker.sh --build" >&2
fi
exit "$status"
