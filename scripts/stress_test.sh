#!/usr/bin/env bash
# stress_test.sh — runs one shell test N times while two busy-loop "hogs" hold both cores, to
# show whether a timing-dependent test is robust on a loaded machine (the test runs at nice 19,
# as scripts/test.sh's parallel runs and other engineers' jobs would leave it). Prints a line per
# run and "pass P fail F"; a failing run's output is kept in LOG.outN.
# usage: scripts/stress_test.sh TEST.sh BUILD_DIR SHARED_DIR N LOG [HOG_NICE]
#        (SAN=1: the build is a sanitizer build, as scripts/test.sh marks it)
# e.g.   scripts/stress_test.sh tests/test_sched_serve.sh build ../shared 10 /tmp/stress.log
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: $0 TEST.sh BUILD_DIR SHARED_DIR N LOG [HOG_NICE]" >&2; exit 2; }
t=$1 b=$2 shared=$3 n=$4 log=$5 hn=${6:-0}
# never disturb a benchmark that holds the machine-wide lock (bench/quiet.sh)
while [ -d /tmp/weft-bench.lock ]; do sleep 10; done
hogs=()
for _ in 1 2; do nice -n "$hn" timeout 3600 sh -c 'while :; do :; done' & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
[ -n "${SAN:-}" ] && export WEFT_SANITIZED=1
pass=0 failc=0
: > "$log"
for i in $(seq 1 "$n"); do
    if out=$(nice -n 19 bash "$t" "$b" "$shared" 2>&1); then pass=$((pass + 1)); r=PASS
    else failc=$((failc + 1)); r=FAIL; echo "$out" > "$log.out$i"; fi
    echo "run $i $r $(grep -E '^attempt|^FAIL|routed|deadline' <<<"$out" | tr '\n' '|' || true)" | tee -a "$log"
done
echo "pass $pass fail $failc" | tee -a "$log"
