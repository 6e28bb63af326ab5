#!/usr/bin/env bash
# static_group.sh — length grouping for static batching (issue 5 item 4, docs/scheduling.md
# "Length grouping"): `weft bench engine --mode static` (a batch runs until its longest member
# ends; arrivals wait for the next batch) with and without --consolidate, which in static mode
# forms each batch from the queue head plus the waiting requests whose predicted length (the
# built-in length model, p50) is closest to the head's. Synthetic tiny15m (F32, Llama-2
# vocabulary), prompts and their real responses' lengths from
# ../shared/data/pairs/alpaca_cleaned_1000.jsonl (same record; outputs forced with ignore_eos),
# prompts cut to 128 and outputs to 256 tokens, batch size 8, fcfs order, Poisson arrivals.
#   capacity: a saturated run (48 requests at t=0, no grouping) gives requests/s;
#   then Poisson arrivals at 90% and 120% of it, seeds 1 2 3, each without and with grouping
#   on the same workload (same seed = same prompts, lengths and arrival times).
# Reproduce: make build && bash bench/quiet.sh bash bench/static_group.sh run; bash
# bench/static_group.sh report   (PRESET=tiny110m N=... in the environment to change them;
# --quick as the second argument: a smoke run into $TMPDIR/weft-static-group-quick).
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
quick=0
[ "${2:-}" = --quick ] && quick=1
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): ../shared data not found ($pairs)"; exit 0; }
preset=${PRESET:-tiny15m}; n=${N:-96}; bs=8; seeds="1 2 3"; loads="0.9 1.2"
out=$results
if [ $quick = 1 ]; then
    n=16; seeds=1; loads=1.2; out=${TMPDIR:-/tmp}/weft-static-group-quick; mkdir -p "$out"
fi
cal=$out/static_group.calib.csv
csv=$out/static_group.csv
scsv=$out/static_group.sched.csv
md=$out/static_group.md
common=(--mode static --prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128
        --max-output 256 --max-running $bs --max-batch-size $bs --threads "$(nproc)"
        --policy fcfs --predictor default -q)

if [ "$part" = run ]; then
    model=$scratch/model.gguf
    synth_model "$preset" f32 "$model"
    machine_line >"$out/static_group.machine"
    "$WEFT" bench engine --model "$model" "${common[@]}" -n 48 --seed 7 --label calib \
        --csv "$cal" >/dev/null
    cap=$(csv_select "$cal" req_s)
    echo "capacity (static, saturated, no grouping): $cap req/s" >>"$out/static_group.machine"
    rm -f "$csv" "$scsv"
    for load in $loads; do
        rate=$(awk -v c="$cap" -v l="$load" 'BEGIN { printf "%.4f", c * l }')
        for seed in $seeds; do
            for g in plain grouped; do
                flag=(); [ $g = grouped ] && flag=(--consolidate)
                "$WEFT" bench engine --model "$model" "${common[@]}" -n $n --rate "$rate" \
                    --seed "$seed" "${flag[@]}" --label "load$load-seed$seed-$g" \
                    --csv-append "$csv" --sched-csv "$scsv" >/dev/null
            done
        done
    done
    load_line >>"$out/static_group.machine"
fi

[ -r "$csv" ] && [ -r "$scsv" ] || { echo "no results yet: run 'bash bench/quiet.sh bash $0 run'"; exit 1; }
{
    echo "# Length grouping in static batching (bench/static_group.sh)"
    echo
    cat "$out/static_group.machine"
    echo
    echo "Per run (fcfs order, batch size $bs; queue max = longest wait before admission):"
    echo
    echo "| run | requests | makespan s | out tok/s | req/s | e2e mean s | e2e p50 s | e2e p99 s | queue mean s | queue max s | steps |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    paste -d' ' <(csv_select "$csv" label finished makespan_s out_tok_s req_s e2e_mean_s e2e_p50_s e2e_p99_s steps) \
                <(csv_select "$scsv" queue_mean_s queue_max_s) |
        awk '{ printf "| %s | %s | %.2f | %.1f | %.3f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $10, $11, $9 }'
    echo
    echo "Mean over seeds, grouped vs plain (change = grouped / plain - 1):"
    echo
    echo "| load | e2e mean s plain | e2e mean s grouped | change | out tok/s plain | out tok/s grouped | change | queue max s plain | grouped |"
    echo "|---|---|---|---|---|---|---|---|---|"
    paste -d' ' <(csv_select "$csv" label e2e_mean_s out_tok_s) <(csv_select "$scsv" queue_max_s) |
        awk '{ split($1, a, "-"); l = a[1]; g = a[3]; k = l SUBSEP g
               e[k] += $2; t[k] += $3; q[k] = ($4 > q[k] ? $4 : q[k]); c[k]++; if (!(l in seen)) { seen[l] = 1; order[++n] = l } }
             END { for (i = 1; i <= n; i++) { l = order[i]; p = l SUBSEP "plain"; g = l SUBSEP "grouped"
                   ep = e[p] / c[p]; eg = e[g] / c[g]; tp = t[p] / c[p]; tg = t[g] / c[g]
                   printf "| %s | %.2f | %.2f | %+.1f%% | %.1f | %.1f | %+.1f%% | %.2f | %.2f |\n", substr(l, 5), ep, eg, 100 * (eg / ep - 1), tp, tg, 100 * (tg / tp - 1), q[p], q[g] } }'
} >"$md"
cat "$md"
