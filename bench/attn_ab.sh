#!/usr/bin/env bash
# attn_ab.sh — before/after comparison of decode attention alone: build/bench_attn of
# BASE_COMMIT and of this tree, alternating for ROUNDS rounds (default 3) in one session, on the
# Flover λ = 0 decode shape (32 sequences × 160 tokens of context, the run's mean; tiny110m's
# 12 layers × 12 heads of 64; 16-token blocks; 2 threads), F16 and Q8_0 caches. The new build
# also times its variants in turn (work split × prefetch; WEFT_BENCH_ATTN_VARIANTS, see
# bench/bench_attn.c). Writes bench/results/attn_ab.md.
# Reproduce: make build && bash bench/quiet.sh bash bench/attn_ab.sh BASE_COMMIT [ROUNDS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: bash bench/attn_ab.sh BASE_COMMIT [ROUNDS]" >&2; exit 2; }
[ -x build/bench_attn ] || { echo "build first: make build" >&2; exit 1; }
base=$1 rounds=${2:-3}
source bench/ab_lib.sh
bdir=$(ab_base_build "$base")
[ -x "$bdir/build/bench_attn" ] ||
    cmake --build "$bdir/build" -j "$(nproc)" --target bench_attn >/dev/null
out=bench/results/attn_ab.md
{
    echo "# attn_ab — decode attention, base $base vs $(git rev-parse --short HEAD)"
    echo
    ab_machine
    echo
    echo "Command: \`bash bench/quiet.sh bash bench/attn_ab.sh $base $rounds\`;"
    echo "each row: best (median) of 15 steps."
    for r in $(seq 1 "$rounds"); do
        echo
        echo "## round $r"
        echo
        echo "base:"
        echo
        WEFT_BENCH_ATTN_TYPES=f16,q8 "$bdir/build/bench_attn" 32 160 2 15 | tail -n +2
        echo
        echo "new (variants: one head per item with the next run prefetched = the base's split;"
        echo "all heads, no prefetch; all heads, default prefetch without / with the next"
        echo "item's first runs):"
        echo
        WEFT_BENCH_ATTN_TYPES=f16,q8 WEFT_BENCH_ATTN_VARIANTS=1:1,0:0,0:-1:0,0:-1:1 \
            build/bench_attn 32 160 2 15 | tail -n +2
    done
} | tee "$out"
