#!/usr/bin/env bash
# Installs the Debian 12 packages qatqfs needs to build, test and run.
# Idempotent: does nothing when everything is already installed.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git
  libfuse3-dev fuse3 libzstd-dev liblz4-dev libxxhash-dev librocksdb-dev libhtscodecs-dev
  nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  zstd lz4 rsync attr acl fio python3 python3-numpy util-linux kmod
  btrfs-progs btrfs-compsize systemd stress-ng
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
