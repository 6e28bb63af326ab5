#!/usr/bin/env bash
# engine_flover_parts.sh — which change buys what in the fused Q8_0 step: the Flover λ = 0
# workload of engine_ab.sh (tiny110m Q8_0 weights, Q8_0 KV cache, 32 requests × 256 output
# tokens, 32-token prompts, all at t = 0), fused engine only, for `weft` built from BASE_COMMIT
# and for this tree's build/weft as it is and with one change switched off at a time
# (WEFT_Q8_PREPACK=off: Q8_0 weights repacked per call instead of once at load;
# WEFT_MM_FUSED_QUANT=off: activation quantization as its own pool dispatch), alternating
# variants in each of ROUNDS rounds (default 2), so machine drift hits all of them. Prints output
# tok/s per run and each variant's median; then the sequential (batch-1) server of base and new,
# alternating, ROUNDS rounds: batch 1 is the baseline of Flover's ratio and must not get slower.
# Further arguments VAR=VALUE replace the two switches above (one variant each; e.g.
# WEFT_Q8_PF=first: the packed kernel's next-chunk prefetch in the first pass only;
# WEFT_MM_FUSE=off: kn_matmul_fused runs its unfused sequence; docs/kernels.md).
# Reproduce: make build && bash bench/quiet.sh bash bench/engine_flover_parts.sh BASE_COMMIT [ROUNDS [VAR=VALUE...]]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: bash bench/engine_flover_parts.sh BASE_COMMIT [ROUNDS]" >&2; exit 2; }
[ -x build/weft ] || { echo "build first: make build" >&2; exit 1; }
base=$1 rounds=${2:-2}
shift $(($# >= 2 ? 2 : 1))
switches=("$@")
[ ${#switches[@]} -gt 0 ] || switches=(WEFT_Q8_PREPACK=off WEFT_MM_FUSED_QUANT=off)
source bench/ab_lib.sh
bdir=$(ab_base_build "$base")
model=$(mktemp --suffix=.gguf)
trap 'rm -f "$model"' EXIT
ab_model "$model"
ab_machine
mode=fused
run() { # run BINARY [ENV...]: output tok/s and the engine's fwd/sample/sched/compact split
    local bin=$1; shift
    env "$@" "$bin" bench engine --model "$model" --mode $mode -n 32 --prompt-len 32 --output-len 256 \
        --gap-mean 0 --seed 1 --kv-type q8_0 -q 2>/dev/null |
        awk -F'|' -v m=$mode '$3 ~ m { gsub(/ /, "", $7); gsub(/ /, "", $18); print $7, $18 }'
}
names=("base $base" "new")
for sw in "${switches[@]}"; do names+=("new, $sw"); done
declare -A res
for r in $(seq 1 "$rounds"); do
    for v in "${!names[@]}"; do
        case $v in
        0) o=$(run "$bdir/build/weft") ;;
        1) o=$(run build/weft) ;;
        *) o=$(run build/weft "${switches[$((v - 2))]}") ;;
        esac
        echo "round $r: ${names[$v]}: ${o% *} tok/s (fwd/sample/sched/compact % ${o#* })"
        res[$v]="${res[$v]:-} ${o% *}"
    done
done
for v in "${!names[@]}"; do
    # shellcheck disable=SC2086
    echo "median: ${names[$v]}: $(ab_median ${res[$v]}) tok/s"
done
mode=sequential
seqb=() seqn=()
for r in $(seq 1 "$rounds"); do
    o=$(run "$bdir/build/weft"); n=$(run build/weft)
    echo "sequential round $r: base ${o% *} tok/s, new ${n% *} tok/s"
    seqb+=("${o% *}"); seqn+=("${n% *}")
done
echo "sequential median: base $(ab_median "${seqb[@]}") tok/s, new $(ab_median "${seqn[@]}") tok/s"
