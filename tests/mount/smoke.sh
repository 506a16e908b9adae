#!/bin/sh
# Manual end-to-end smoke test of a qatqfs build (the ctest mount_*_test
# binaries cover the same ground with teardown guarantees).
#   tests/mount/smoke.sh BUILD_DIR [FILES...]
# Needs root (or fusermount3) and /dev/fuse. Copies FILES (default: the
# shared corpus) in, compares, remounts, compares sha256, prints stats.
set -eu
build=${1:?usage: smoke.sh BUILD_DIR [FILES...]}
shift
qatqfs="$build/tools/qatqfs"
here=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$here"/../../../shared/corpus/*le
work=$(mktemp -d /tmp/qatqfs-smoke-XXXXXX)
cleanup() {
  fusermount3 -u "$work/mnt" 2>/dev/null || fusermount3 -uz "$work/mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir "$work/mnt"
"$qatqfs" mkfs "$work/store"
"$qatqfs" "$work/store" "$work/mnt"
start=$(date +%s.%N)
for f in "$@"; do cp "$f" "$work/mnt/"; done
end=$(date +%s.%N)
for f in "$@"; do cmp "$f" "$work/mnt/$(basename "$f")"; done
echo "copy in: $(echo "$end - $start" | bc) s"
(cd "$work/mnt" && sha256sum -- *) > "$work/before"
fusermount3 -u "$work/mnt"
# The daemon releases the store lock right after the unmount.
for i in 1 2 3 4 5 6 7 8 9 10; do
  "$qatqfs" "$work/store" "$work/mnt" 2>/dev/null && break
  sleep 0.2
done
(cd "$work/mnt" && sha256sum -- *) > "$work/after"
cmp "$work/before" "$work/after"
"$qatqfs" stats "$work/mnt"
df -h "$work/mnt"
echo "smoke test passed"
