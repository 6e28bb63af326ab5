#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: unit + integration tests on the release
# build, the same tests on the ASan+UBSan build, then every fuzzer for a bounded time.
# Ends with one line "tests: N passed, M failed" counting every test of every stage.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
SHARED=${SHARED:-$(cd .. && pwd)/shared}
mkdir -p build-logs
pass=0 fail=0

count_ctest() { # $1 = log; adds its summary line to the totals
    local line
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -1)
    if [ -z "$line" ]; then fail=$((fail + 1)); return; fi
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    pass=$((pass + total - failed))
    fail=$((fail + failed))
}

echo "== stage 1/3: release build + tests"
make --no-print-directory check SHARED="$SHARED" JOBS="$JOBS" 2>&1 | tee build-logs/check.log
count_ctest build-logs/check.log

echo "== stage 2/3: ASan+UBSan build + tests"
make --no-print-directory san SHARED="$SHARED" JOBS="$JOBS" 2>&1 | tee build-logs/san.log
count_ctest build-logs/san.log

echo "== stage 3/3: fuzzers, ${FUZZ_SECONDS}s each"
make --no-print-directory fuzz SHARED="$SHARED" JOBS="$JOBS" FUZZ_SECONDS="$FUZZ_SECONDS" 2>&1 | tee build-logs/fuzz.log
fp=$(grep -c '^fuzz: PASS' build-logs/fuzz.log)
ff=$(grep -c '^fuzz: FAIL' build-logs/fuzz.log)
[ "$fp" -eq 0 ] && [ "$ff" -eq 0 ] && ff=1
pass=$((pass + fp)) fail=$((fail + ff))

echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
