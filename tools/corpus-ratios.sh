#!/bin/sh
# Encodes each corpus tensor with `qatq encode-chunked` (v2 and v3, 65536
# values per chunk), checks it decodes back bit for bit, and prints the
# ratio (output bytes / input bytes) beside the existing QATQ tool's v2
# ratio. Also prints v2 encode and decode throughput (single run, wall time).
#
# usage: tools/corpus-ratios.sh [QATQ_BINARY] [CORPUS_DIR] [THREADS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
qatq=${1:-$here/../build/tools/qatq}
corpus=${2:-$here/../../shared/corpus}
threads=${3:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Reference v2 ratios of the existing tool (65536 values per chunk).
ref() {
  case "$1" in
    llm-stories260k-kv.bf16le) echo 0.719 ;;
    cnn-ppocrv4-weights.bf16le) echo 0.752 ;;
    tts-kokoro-voices.bf16le) echo 0.309 ;;
    llm-stories260k-weights.bf16le) echo 0.716 ;;
    llm-stories260k-kv.f16le) echo 0.905 ;;
    llm-stories260k-kv.f32le) echo 0.837 ;;
    cnn-ppocrv4-weights.f32le) echo 0.869 ;;
    *) echo - ;;
  esac
}

now() { date +%s.%N; }

printf '%-32s %10s %8s %8s %8s %9s %9s %s\n' file bytes ref v2 v3 "v2enc" "v2dec" verdict
worse=0
for f in "$corpus"/*.bf16le "$corpus"/*.f16le "$corpus"/*.f32le; do
  [ -e "$f" ] || continue
  name=$(basename "$f")
  size=$(stat -c %s "$f")
  t0=$(now)
  "$qatq" encode-chunked --quiet --format v2 --max-values-per-chunk 65536 --threads "$threads" \
    "$f" "$tmp/v2"
  t1=$(now)
  "$qatq" decode --quiet --threads "$threads" "$tmp/v2" "$tmp/raw"
  t2=$(now)
  cmp -s "$tmp/raw" "$f" || { echo "$name: v2 round trip differs" >&2; exit 1; }
  "$qatq" encode-chunked --quiet --format v3 --max-values-per-chunk 65536 --threads "$threads" \
    "$f" "$tmp/v3"
  "$qatq" decode --quiet "$tmp/v3" "$tmp/raw"
  cmp -s "$tmp/raw" "$f" || { echo "$name: v3 round trip differs" >&2; exit 1; }
  r=$(ref "$name")
  out=$(awk -v s="$size" -v a="$(stat -c %s "$tmp/v2")" -v b="$(stat -c %s "$tmp/v3")" \
    -v r="$r" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
      v2 = a / s; v3 = b / s
      verdict = (r == "-") ? "" : (sprintf("%.3f", v2) + 0 <= r + 0 ? "ok" : "WORSE")
      printf "%8s %8.4f %8.4f %7.1f MB/s %7.1f MB/s %s", r, v2, v3,
        s / (t1 - t0) / 1e6, s / (t2 - t1) / 1e6, verdict }')
  printf '%-32s %10d %s\n' "$name" "$size" "$out"
  case "$out" in *WORSE*) worse=1 ;; esac
done
[ "$worse" -eq 0 ] || { echo "some v2 ratios are worse than the reference" >&2; exit 1; }
