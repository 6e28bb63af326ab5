#!/usr/bin/env bash
# sched_gittins_real.sh — one REAL-clock confirmation of rtlm's Gittins rank against its earlier
# p90 rank (docs/scheduling.md "The Gittins rank"), in bench/sched.sh's configuration: tiny110m
# F32 (Llama-2 vocabulary), alpaca_cleaned_1000 prompts and real lengths (128/256, forced),
# max_running 4, aging 20 s, 3 priorities, sched.sh's calibration (bench/results/sched.calib.csv)
# and deadlines, Poisson arrivals at 80% of capacity for the given arrival seeds (default 1 2).
# Per seed, back to back: fcfs and rtlm (default rank, gittins) in one invocation, then rtlm
# --rtlm-rank p90. Rows: bench/results/sched_gittins_real.csv (labels gittins80-SEED, p90_80-SEED).
# Real time on the shared 2-core machine: run under the bench lock, one hold of ~8 minutes for
# two seeds: bash bench/quiet.sh bash bench/sched_gittins_real.sh 1 2
source "$(dirname "$0")/engine_lib.sh"
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2)
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
cal=$results/sched.calib.csv
[ -r "$cal" ] || { echo "no $cal: run bash bench/sched.sh part1 first" >&2; exit 1; }
csv=$results/sched_gittins_real.csv
model=$scratch/model.gguf
synth_model tiny110m f32 "$model"
read -r cap tpot < <(csv_select "$cal" out_tok_s output_tokens requests tpot_mean_ms |
    awk 'NR == 1 { printf "%.4f %.3f\n", 4 * 1000 / $4 / ($2 / $3), $4 }')
rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.80 }')
dl=(--deadline-ms 2000 --deadline-per-token-ms "$(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')")
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running 4 --threads "$(nproc)" --seed 7 --aging-s 20 --priorities 3 -q)
echo "== capacity $cap req/s (sched.calib.csv), 80%: $rate req/s; seeds ${seeds[*]}" >&2
for s in "${seeds[@]}"; do
    [ -r "$csv" ] && awk -F, -v a="gittins80-$s" -v b="p90_80-$s" 'NR == 1 || ($1 != a && $1 != b)' "$csv" >"$scratch/keep" &&
        cp "$scratch/keep" "$csv"
    "$WEFT" bench engine --model "$model" -n 150 --rate "$rate" --arrival-seed "$s" "${common[@]}" \
        "${dl[@]}" --policy fcfs,rtlm --label "gittins80-$s" --sched-csv "$csv" >/dev/null
    "$WEFT" bench engine --model "$model" -n 150 --rate "$rate" --arrival-seed "$s" "${common[@]}" \
        "${dl[@]}" --policy rtlm --rtlm-rank p90 --label "p90_80-$s" --sched-csv "$csv" >/dev/null
done
{ machine_line; load_line; } >>"$results/sched_gittins_real.machine"
csv_select "$csv" label policy e2e_mean_s e2e_p99_s deadline_missed wait_max_s sched_overhead_pct |
    awk '{ printf "%-14s %-6s mean %.3f s  p99 %.3f s  misses %s  wait max %.2f s  sched %.3f%%\n", $1, $2, $3, $4, $5, $6, $7 }'
