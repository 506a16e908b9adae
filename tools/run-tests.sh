#!/usr/bin/env bash
# The test command (README "Tests"; .ci/run calls exactly this).
#   1. installs dependencies (apt-get, only what is missing)
#   2. builds and runs every ctest test (unit + mount tests; mount tests need
#      root and /dev/fuse and skip with a message otherwise)
#   3. builds the unit tests with AddressSanitizer + UndefinedBehaviorSanitizer
#      and runs them (mount tests excluded: they are covered in step 2)
#   4. builds the unit tests of the concurrent modules (filesystem core,
#      metadata index, chunk store) with ThreadSanitizer and runs them
#   5. builds the libFuzzer targets with clang and runs each for a fixed
#      number of executions, seeded from the golden files and
#      tests/fuzz/seeds/ (1M runs each: ~4 minutes for all four on an idle
#      2-core machine; docs/RELIABILITY.md "Fuzzing")
#   6. runs the codec gates (ratio baseline, relative throughput)
# Build trees: build/, build-asan/, build-tsan/, build-fuzz/ (reused when present).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBS:-2}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
SHARED=${QATQ_SHARED_DIR:-$ROOT/../shared}
start=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - start ))s)"; }

stage "dependencies"
bash tools/install-deps.sh

stage "build (RelWithDebInfo)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$JOBS"

stage "tests"
ctest --test-dir build --output-on-failure -j"$JOBS" --timeout 900 | tee build/ctest.log
main_line=$(grep -E "tests passed|tests failed" build/ctest.log | tail -1)

stage "ASan+UBSan build of the unit tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DQATQFS_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS" --timeout 1200 -E 'Mount' \
  | tee build-asan/ctest.log
asan_line=$(grep -E "tests passed|tests failed" build-asan/ctest.log | tail -1)

stage "ThreadSanitizer build of the concurrent modules' unit tests"
TSAN_TESTS=(fs_core_test fs_copy_test metadata_store_test chunk_store_test)
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQATQFS_TSAN=ON >/dev/null
ninja -C build-tsan -j"$JOBS" "${TSAN_TESTS[@]}"
tsan_failed=0
for t in "${TSAN_TESTS[@]}"; do
  if TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp" \
      timeout 900 "build-tsan/tests/$t" \
      >"build-tsan/$t.log" 2>&1; then
    echo "tsan: $t ok ($(grep -o '[0-9]* tests\? from .* ran' "build-tsan/$t.log" | tail -1))"
  else
    echo "tsan: $t FAILED"; tail -60 "build-tsan/$t.log"; tsan_failed=$((tsan_failed + 1))
  fi
done

stage "fuzzers (${FUZZ_RUNS} runs each)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQATQFS_BUILD_FUZZERS=ON -DQATQFS_BUILD_TESTS=OFF >/dev/null
ninja -C build-fuzz -j"$JOBS"
fuzz_n=0
fuzz_failed=0
for f in build-fuzz/tests/fuzz/*_fuzzer; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  seeds=$(mktemp -d)
  for d in "$SHARED/qatc-v2-golden/payloads" "$SHARED/qatc-v2-golden/containers" \
           "$SHARED/qatc-v2-golden/invalid" "$ROOT/tests/golden-v3" "$ROOT/tests/fuzz/seeds/$name"; do
    if [ -d "$d" ]; then
      find "$d" -type f -size -256k -exec cp {} "$seeds/" \; 2>/dev/null || true
    fi
  done
  log=build-fuzz/$name.log
  if "$f" -runs="$FUZZ_RUNS" -max_len=65536 -rss_limit_mb=2048 -print_final_stats=1 \
      "$seeds" >"$log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs)"
  else
    echo "fuzz: $name FAILED"; tail -40 "$log"; fuzz_failed=$((fuzz_failed + 1))
  fi
  rm -rf "$seeds"
  fuzz_n=$((fuzz_n + 1))
done

gates_failed=0
if [ -x tools/codec-gates.sh ]; then
  stage "codec gates"
  bash tools/codec-gates.sh build/tools/qatq || gates_failed=1
fi

stage "summary"
echo "ctest:      $main_line"
echo "asan ctest: $asan_line"
echo "tsan:       ${#TSAN_TESTS[@]} binaries, $tsan_failed failed"
echo "fuzzers:    $fuzz_n run, $fuzz_failed failed"
echo "gates:      $([ $gates_failed = 0 ] && echo ok || echo FAILED)"
count() { echo "$1" | grep -oE "$2" | grep -oE '[0-9]+' | head -1; }
total=$(count "$main_line" 'out of [0-9]+'); failed=$(count "$main_line" '[0-9]+ tests failed')
atotal=$(count "$asan_line" 'out of [0-9]+'); afailed=$(count "$asan_line" '[0-9]+ tests failed')
failed_all=$(( ${failed:-1} + ${afailed:-1} + tsan_failed + fuzz_failed + gates_failed ))
passed_all=$(( ${total:-0} + ${atotal:-0} + ${#TSAN_TESTS[@]} + fuzz_n + 1 - failed_all ))
echo "all: ${passed_all} passed, ${failed_all} failed"
[ "$failed_all" -eq 0 ]
