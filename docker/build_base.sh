#!/usr/bin/env bash
# Builds a local stand-in for the CUDA/PyTorch base image: a minimal Debian root filesystem with
# Python, made with debootstrap and imported with buildah. It exists because machines without a
# registry (and CI) cannot pull pytorch/pytorch; the Dockerfile is then built on it unchanged, with
# only its BASE_IMAGE build argument pointing here.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: docker/build_base.sh [options]

Build a local base image from a Debian root filesystem (debootstrap --variant=minbase plus
python3, python3-venv, python3-pip, ca-certificates, passwd), for building docker/Dockerfile
where no registry can be reached:

  docker build -f docker/Dockerfile --build-arg BASE_IMAGE=<this image> .

Options:
  --image NAME      image to create (default: localhost/deberta-base:SUITE)
  --suite SUITE     Debian release (default: bookworm)
  --mirror URL      Debian mirror (default: the first one apt uses on this machine)
  --cache-dir DIR   where the root filesystem tarball is kept between runs
                    (default: ${XDG_CACHE_HOME:-~/.cache}/deberta-smoke)
  --force           rebuild the tarball and the image even when they exist
  -h, --help        show this help

Environment:
  BUILDAH_FLAGS     global flags for buildah (default: --storage-driver vfs, the store podman
                    uses with --storage-driver vfs)

Needs root (debootstrap), debootstrap and buildah: apt-get install debootstrap buildah.
Idempotent: an existing image is kept, and a cached tarball is reused (about 25 s saved).
EOF
}

die() { echo "build_base.sh: error: $*" >&2; exit 2; }

suite=bookworm
image=""
mirror=""
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/deberta-smoke"
force=0
while (($#)); do
  case "$1" in
    --image|--suite|--mirror|--cache-dir) (($# >= 2)) || die "$1 needs a value" ;;
  esac
  case "$1" in
    --image) image=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --cache-dir) cache_dir=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done
image=${image:-localhost/deberta-base:$suite}
read -r -a buildah_flags <<<"${BUILDAH_FLAGS:---storage-driver vfs}"

# The Debian mirror apt already uses here: reachable, and the same packages the host has.
apt_mirror() {
  local file line
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -r $file ]] || continue
    while read -r line; do
      if [[ $line =~ ^URIs:[[:space:]]*([^[:space:]]+) && ${BASH_REMATCH[1]} != *security* ]]; then
        echo "${BASH_REMATCH[1]}"; return
      fi
    done <"$file"
  done
  if [[ -r /etc/apt/sources.list ]]; then
    while read -r line; do
      if [[ $line =~ ^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+) && ${BASH_REMATCH[2]} != *security* ]]; then
        echo "${BASH_REMATCH[2]}"; return
      fi
    done </etc/apt/sources.list
  fi
  echo "http://deb.debian.org/debian"
}

command -v buildah >/dev/null || die "buildah not found; install it with: apt-get install buildah"

if ((!force)) && buildah "${buildah_flags[@]}" inspect --type image "$image" >/dev/null 2>&1; then
  echo "build_base.sh: $image already exists (use --force to rebuild)"
  exit 0
fi

packages=python3,python3-venv,python3-pip,ca-certificates,passwd
tarball="$cache_dir/rootfs-$suite-minbase-python.tar"
mkdir -p "$cache_dir"

if ((force)) || [[ ! -s $tarball ]]; then
  ((EUID == 0)) || die "debootstrap needs root; run as root or with a cached $tarball"
  command -v debootstrap >/dev/null || die "debootstrap not found; install it with: apt-get install debootstrap"
  mirror=${mirror:-$(apt_mirror)}
  rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs" "$tarball.partial"' EXIT
  echo "build_base.sh: debootstrap $suite from $mirror (packages: $packages)"
  debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed (full log: $rootfs.log)"; }
  rm -f "$rootfs.log"
  # Package lists and downloaded .debs are not needed at run time; they would only grow every layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
  mv "$tarball.partial" "$tarball"
  rm -rf "$rootfs"
  trap - EXIT
else
  echo "build_base.sh: reusing cached root filesystem $tarball"
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# A hard link avoids copying 200+ MB into the build context when both are on one file system.
ln "$tarball" "$context/rootfs.tar" 2>/dev/null || cp "$tarball" "$context/rootfs.tar"
cat >"$context/Containerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8
CMD ["bash"]
EOF
buildah "${buildah_flags[@]}" bud --isolation chroot --quiet -t "$image" -f "$context/Containerfile" "$context" >/dev/null
echo "build_base.sh: built $image"
