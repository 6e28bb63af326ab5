#!/usr/bin/env bash
# quiet.sh — runs one benchmark command on a quiet machine: takes a machine-wide lock (one
# benchmark at a time; WEFT_BENCH_LOCK, default /tmp/weft-bench.lock), then waits until the
# machine is >= 90% idle over 2 s (at most 4 minutes; it says how idle it was), then runs the
# command and releases the lock. Timings on a 2-core machine shared with builds or other
# benchmarks are otherwise off by 2-3x.
# Usage: bash bench/quiet.sh bash bench/tp.sh
set -u
[ $# -ge 1 ] || { echo "usage: bash bench/quiet.sh COMMAND [ARGS...]" >&2; exit 2; }
lock=${WEFT_BENCH_LOCK:-/tmp/weft-bench.lock}
until mkdir "$lock" 2>/dev/null; do sleep 10; done
echo "$$ $(date +%T) $*" >"$lock/owner"
trap 'rm -rf "$lock"' EXIT INT TERM
idle_pct() {
    local u n s i w x y z t1 i1 t2 i2
    read -r _ u n s i w x y z _ </proc/stat; t1=$((u + n + s + i + w + x + y + z)); i1=$((i + w))
    sleep 2
    read -r _ u n s i w x y z _ </proc/stat; t2=$((u + n + s + i + w + x + y + z)); i2=$((i + w))
    echo $((100 * (i2 - i1) / (t2 - t1 + 1)))
}
f=0
for _ in $(seq 1 120); do
    f=$(idle_pct)
    [ "$f" -ge 90 ] && break
done
echo "quiet.sh: machine ${f}% idle at start ($(date +%T))" >&2
"$@"
