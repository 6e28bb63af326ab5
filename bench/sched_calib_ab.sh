#!/usr/bin/env bash
# sched_calib_ab.sh — is a change in bench/sched.sh's capacity the code or the machine? `weft`
# built from BASE_COMMIT and this tree's build/weft run sched.sh's calibration workload (tiny110m
# F32, 150 alpaca_cleaned_1000 requests at t = 0, prompts cut to 128 and outputs forced to their
# real lengths cut to 256, max_running 4, fcfs, all cores, seed 7) alternating base/new for ROUNDS
# rounds (default 2) in one session, so machine drift hits both. Prints the full-batch TPOT (ms)
# and output tok/s of every run and the medians.
# Reproduce: make build && bash bench/quiet.sh bash bench/sched_calib_ab.sh BASE_COMMIT [ROUNDS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: bash bench/sched_calib_ab.sh BASE_COMMIT [ROUNDS]" >&2; exit 2; }
[ -x build/weft ] || { echo "build first: make build" >&2; exit 1; }
base=$1 rounds=${2:-2}
source bench/ab_lib.sh
shared=${SHARED:-$root/../shared}
pairs=$shared/data/pairs/alpaca_cleaned_1000.jsonl
vocab=$shared/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] && [ -r "$vocab" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
bdir=$(ab_base_build "$base")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
build/weft model synth --preset tiny110m --type f32 --vocab-from "$vocab" --out "$tmp/m.gguf" >/dev/null
ab_machine
run() { # run BINARY: "TPOT_MS TOK_S" of the calibration run
    "$1" bench engine --model "$tmp/m.gguf" -n 150 --prompts-from "$pairs" --lengths-from "$pairs" \
        --max-prompt 128 --max-output 256 --max-running 4 --threads "$(nproc)" --seed 7 \
        --policy fcfs -q --csv "$tmp/c.csv" >/dev/null 2>&1
    awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) h[$i] = i }
             NR == 2 { printf "%.3f %.1f\n", $h["tpot_mean_ms"], $h["out_tok_s"] }' "$tmp/c.csv"
}
declare -a ot=() nt=()
for r in $(seq 1 "$rounds"); do
    read -r a b < <(run "$bdir/build/weft"); ot+=("$a"); echo "round $r base $base: TPOT $a ms, $b tok/s"
    read -r a b < <(run build/weft); nt+=("$a"); echo "round $r new $(git rev-parse --short HEAD): TPOT $a ms, $b tok/s"
done
echo "median TPOT ms: base $(ab_median "${ot[@]}"), new $(ab_median "${nt[@]}")"
