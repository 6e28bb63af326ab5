#!/usr/bin/env bash
# engine_ab.sh — before/after comparison of the fused engine on one change: `weft` built from
# BASE_COMMIT and this tree's build/weft run the same Flover λ = 0 workload (tiny110m Q8_0
# weights, a Q8_0 KV cache, 32 requests × 256 output tokens, 32-token prompts, all at t = 0),
# alternating base/new for ROUNDS rounds (default 3) in one session, so machine drift hits both.
# Prints output tok/s per run and the medians. Used for the sampling-on-the-pool change
# (base f84e75b; README, "Temporal fusion engine").
# AB_MODE=sequential compares the request-level (batch-1) server instead of the fused one.
# Reproduce: make build && bash bench/quiet.sh bash bench/engine_ab.sh BASE_COMMIT [ROUNDS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: bash bench/engine_ab.sh BASE_COMMIT [ROUNDS]" >&2; exit 2; }
[ -x build/weft ] || { echo "build first: make build" >&2; exit 1; }
base=$1 rounds=${2:-3}
source bench/ab_lib.sh
bdir=$(ab_base_build "$base")
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
ab_model "$model"
ab_machine
mode=${AB_MODE:-fused}
case $mode in fused | sequential) ;; *) echo "AB_MODE: fused or sequential" >&2; exit 2 ;; esac
echo "mode: $mode"
run() { # run BINARY: output tok/s of the $mode run
    "$1" bench engine --model "$model" --mode "$mode" -n 32 --prompt-len 32 --output-len 256 \
        --gap-mean 0 --seed 1 --kv-type q8_0 -q 2>/dev/null |
        awk -F'|' -v m="$mode" '$3 ~ m { gsub(/ /, "", $7); print $7 }'
}
declare -a old=() new=()
for r in $(seq 1 "$rounds"); do
    o=$(run "$bdir/build/weft"); n=$(run build/weft)
    echo "round $r: base $o tok/s, new $n tok/s"
    old+=("$o"); new+=("$n")
done
echo "median: base $(ab_median "${old[@]}") tok/s, new $(ab_median "${new[@]}") tok/s"
