#!/usr/bin/env bash
# The README's setup command: installs dependencies, builds, installs, and
# runs the main job: creates a store, mounts it, copies a tensor in and shows
# what it saved.
#   STORE   store directory   (default /var/lib/qatq/store)
#   MNT     mount point       (default /mnt/tensors)
#   SAMPLE  tensor to copy in (default: a corpus file from ../shared, else a
#           generated bf16 tensor)
set -euo pipefail
cd "$(dirname "$0")/.."
STORE=${STORE:-/var/lib/qatq/store}
MNT=${MNT:-/mnt/tensors}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

bash tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQATQFS_BUILD_TESTS=OFF >/dev/null
ninja -C build
$SUDO cmake --install build >/dev/null
echo "installed: $(command -v qatq) $(command -v qatqfs)"

if [ ! -e "$STORE" ]; then
  $SUDO qatqfs mkfs "$STORE"
fi
$SUDO mkdir -p "$MNT"
if ! mountpoint -q "$MNT"; then
  $SUDO qatqfs "$STORE" "$MNT" -o allow_other,default_permissions
fi

SAMPLE=${SAMPLE:-../shared/corpus/llm-stories260k-kv.bf16le}
if [ ! -f "$SAMPLE" ]; then
  SAMPLE=$(mktemp --suffix=.bf16le)
  /usr/bin/python3 - "$SAMPLE" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(1)
rows = rng.standard_normal((4096, 1)).astype(np.float32) * 0.05
x = (rng.standard_normal((4096, 512)).astype(np.float32) * rows)
(x.view(np.uint32) >> 16).astype(np.uint16).tofile(sys.argv[1])
PY
fi
$SUDO cp "$SAMPLE" "$MNT/"
cmp "$SAMPLE" "$MNT/$(basename "$SAMPLE")" && echo "read back: identical"
$SUDO qatqfs stats "$MNT"
echo "mounted $STORE at $MNT; unmount with: fusermount3 -u $MNT"
