#!/usr/bin/env bash
# qkernels.sh — the Q8_0/Q4_0 matmul paths side by side: the row-lane tile kernel alone
# (WEFT_Q_BATCHED_MIN_N=off), the packed batched path for every n (=1) and the default switch,
# GFLOP/s at n = 1..64 (build/bench_kernels, 2 threads, weights cold), then tiny110m decode
# tokens/s at batch 1, 4, 8, 32 (build/bench_core). With BASE_COMMIT, the same binaries built
# from that commit run interleaved with this tree's (same session, alternating, two rounds),
# for before/after comparisons. Output: bench/results/qkernels.md.
# Reproduce: make build && bash bench/quiet.sh bash bench/qkernels.sh [BASE_COMMIT]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -x build/bench_kernels ] && [ -x build/bench_core ] || { echo "build first: make build" >&2; exit 1; }
base=${1:-}
bdir=
if [ -n "$base" ]; then
    bdir=/tmp/weft-qkernels-base-$(git rev-parse --short "$base")
    if [ ! -x "$bdir/build/bench_core" ]; then
        rm -rf "$bdir" && mkdir -p "$bdir"
        git archive "$base" | tar -x -C "$bdir"
        cmake -S "$bdir" -B "$bdir/build" -DCMAKE_BUILD_TYPE=Release -DWEFT_TESTS=OFF >/dev/null
        cmake --build "$bdir/build" -j "$(nproc)" --target bench_kernels bench_core >/dev/null
    fi
fi
out=bench/results/qkernels.md
{
    echo "# qkernels — Q8_0/Q4_0 matmul paths (bench/qkernels.sh${base:+ $base})"
    echo
    echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores online; $(date -u +%F\ %T) UTC"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "bench_kernels 2 TYPE 64: weights cold (cycled over > 128 MB). off = row-lane tile kernel for"
    echo "every n; 1 = packed batched path for every n; default = this tree's switch."
    for round in 1 2; do
        for t in Q8_0 Q4_0; do
            if [ -n "$bdir" ]; then
                echo; echo "## round $round, $t, base $base"; echo '```'
                "$bdir/build/bench_kernels" 2 $t 64 | grep -E '^(Q|type|read)'
                echo '```'
            fi
            for e in off 1 default; do
                echo; echo "## round $round, $t, WEFT_Q_BATCHED_MIN_N=$e"; echo '```'
                if [ $e = default ]; then build/bench_kernels 2 $t 64; else WEFT_Q_BATCHED_MIN_N=$e build/bench_kernels 2 $t 64; fi |
                    grep -E '^(Q|type|read)'
                echo '```'
            done
        done
    done
    echo
    echo "bench_core --presets tiny110m --types q8_0,q4_0 --batches 1,4,8,32 --rounds 1 (decode tok/s):"
    for round in 1 2; do
        for which in base new; do
            [ $which = base ] && [ -z "$bdir" ] && continue
            bin=build/bench_core; [ $which = base ] && bin=$bdir/build/bench_core
            echo; echo "## round $round, $which"; echo '```'
            "$bin" --presets tiny110m --types q8_0,q4_0 --batches 1,4,8,32 --rounds 1 --out /tmp/qkernels_core.md >/dev/null 2>&1
            grep -E '^\| tiny110m' /tmp/qkernels_core.md
            echo '```'
        done
    done
    echo
    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out"
cat "$out"
