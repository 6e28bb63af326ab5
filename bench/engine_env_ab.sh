#!/usr/bin/env bash
# engine_env_ab.sh — one build, switches on and off: this tree's build/weft runs the Flover λ = 0
# fused workload of engine_ab.sh (tiny110m Q8_0 weights, Q8_0 KV cache, 32 requests × 256 output
# tokens, 32-token prompts, all at t = 0) as it is and with each VAR=VALUE given, alternating in
# each of ROUNDS rounds, so machine drift hits all variants. Prints output tok/s per run and the
# medians. Used for WEFT_MM_FUSE=off (kn_matmul_fused's unfused sequence; docs/kernels.md).
# Reproduce: make build && bash bench/quiet.sh bash bench/engine_env_ab.sh ROUNDS VAR=VALUE...
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 2 ] || { echo "usage: bash bench/engine_env_ab.sh ROUNDS VAR=VALUE..." >&2; exit 2; }
[ -x build/weft ] || { echo "build first: make build" >&2; exit 1; }
rounds=$1; shift
source bench/ab_lib.sh
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
ab_model "$model"
ab_machine
run() { # run [VAR=VALUE]: output tok/s of the fused run
    env "$@" build/weft bench engine --model "$model" --mode fused -n 32 --prompt-len 32 \
        --output-len 256 --gap-mean 0 --seed 1 --kv-type q8_0 -q 2>/dev/null |
        awk -F'|' '$3 ~ /fused/ { gsub(/ /, "", $7); print $7 }'
}
names=("default" "$@")
declare -A res
for r in $(seq 1 "$rounds"); do
    line="round $r:"
    for v in "${!names[@]}"; do
        if [ "$v" = 0 ]; then o=$(run); else o=$(run "${names[$v]}"); fi
        line="$line ${names[$v]} $o tok/s;"
        res[$v]="${res[$v]:-} $o"
    done
    echo "$line"
done
for v in "${!names[@]}"; do
    # shellcheck disable=SC2086
    echo "median: ${names[$v]}: $(ab_median ${res[$v]}) tok/s"
done
