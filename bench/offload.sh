#!/usr/bin/env bash
# offload.sh — strategic offloading (issue 5 item 5, docs/scheduling.md): `weft serve --workers 2`
# with two CPU workers of different speed against the primary alone, at a load that saturates the
# primary, with deadlines. Synthetic tiny110m F32, prompts and real response lengths from
# ../shared/data/pairs/alpaca_cleaned_1000.jsonl (as bench/sched.sh), over HTTP.
#   primary: 1 kernel thread, max_running 4; secondary: 1 kernel thread, max_running 2 (half the
#   primary's batch, so about half its throughput; each worker has a core of this 2-core machine).
#   Calibration: a saturated in-process run of the same requests on the primary's configuration
#   gives its TPOT and capacity; arrivals are Poisson at LOAD (default 1.2) x that capacity.
#   Deadline per request: 2 s + 3 x that TPOT per output token (as bench/sched.sh).
#   Runs, each policy of POLICIES (default "fcfs rtlm"):
#     1worker      the primary alone (--workers 1, 1 thread): it saturates, a queue grows
#     2workers     primary + secondary (--workers 2): requests the primary would finish late go to
#                  the secondary when it can still make the deadline (sched_offload_pick)
#     1worker-2t   reference: the same two cores as ONE worker (2 threads, max_running 4)
# Reproduce: make build && bash bench/quiet.sh bash bench/offload.sh ; bash bench/offload.sh report
# (--quick as the first argument: tiny15m, few requests, into $TMPDIR/weft-offload-quick)
source "$(dirname "$0")/engine_lib.sh"
part=run
quick=0
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    report) part=report ;;
    *) echo "usage: $0 [--quick] [report]" >&2; exit 2 ;;
    esac
done
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
preset=tiny110m; n=${OFFLOAD_N:-70}; load=${LOAD:-1.2}; policies=${POLICIES:-fcfs rtlm}
out=$results
if [ $quick = 1 ]; then
    preset=tiny15m; n=12; out=${TMPDIR:-/tmp}/weft-offload-quick; mkdir -p "$out"
fi
csv=$out/offload.csv
cal=$out/offload.calib.csv
md=$out/offload.md
model=$scratch/model.gguf
wl=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256 --seed 7)

calib() { # prints: capacity_req_s tpot_ms mean_out
    csv_select "$cal" output_tokens requests tpot_mean_ms |
        awk '{ mo = $1 / $2; printf "%.4f %.3f %.1f\n", 4 * 1000 / $3 / mo, $3, mo }'
}

if [ $part = run ]; then
    synth_model $preset f32 "$model"
    rm -f "$csv" "$cal"
    echo "== calibration: the primary's configuration (1 thread, max_running 4), $n requests at t=0" >&2
    "$WEFT" bench engine --model "$model" -n $n "${wl[@]}" --max-running 4 --threads 1 -q \
        --label calibration --csv "$cal" >/dev/null
    read -r cap tpot mo < <(calib)
    rate=$(awk -v c="$cap" -v l="$load" 'BEGIN { printf "%.4f", c * l }')
    dl=(--deadline-ms 2000 --deadline-per-token-ms "$(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')")
    echo "== primary capacity $cap req/s (TPOT $tpot ms, mean output $mo); arrivals $rate req/s" >&2
    srv=
    trap '[ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null; rm -rf "$scratch"' EXIT
    for p in $policies; do
        for conf in 1worker 2workers 1worker-2t; do
            case $conf in
            1worker) flags=(--workers 1 --threads 1) ;;
            2workers) flags=(--workers 2 --threads 1 --secondary-threads 1 --secondary-max-running 2) ;;
            1worker-2t) flags=(--workers 1 --threads 2) ;;
            esac
            echo "== $conf, --policy $p: ${flags[*]}" >&2
            "$WEFT" serve --model "$model" --model-name off --port 0 --kv-layout paged --ctx 512 \
                --max-running 4 --policy "$p" --max-queue 1000 "${flags[@]}" 2>"$scratch/srv.err" &
            srv=$!
            url=$(server_url "$srv" "$scratch/srv.err") || exit 1
            "$WEFT" bench serve --url "$url" -n 2 --output-len 8 -q >/dev/null # warm-up
            "$WEFT" bench serve --url "$url" --model off -n $n --rate "$rate" --tokenizer "$vocab" \
                "${wl[@]}" "${dl[@]}" --policy "$p" --label "$conf" --sched-csv "$csv" \
                --timeout 600 -q >/dev/null || echo "warning: $conf $p had failures" >&2
            curl -s "$url/metrics" >"$out/offload.metrics-$conf-$p.txt" || true
            kill -TERM "$srv"; wait "$srv" || true; srv=
        done
    done
    { machine_line; load_line; } >"$out/offload.machine"
fi

# ---- report ----
[ -r "$csv" ] || { echo "no $csv: run first" >&2; exit 1; }
read -r cap tpot mo < <(calib)
{
    echo "# offload — one worker vs two (strategic offloading)"
    echo
    cat "$out/offload.machine" 2>/dev/null || true
    echo
    echo "Model: $preset synth F32; prompts and real response lengths from alpaca_cleaned_1000.jsonl (prompts cut to 128,"
    echo "outputs to 256 tokens), $n requests over HTTP (\`weft bench serve\`), seed 7. Primary: 1 thread, max_running 4:"
    echo "TPOT $tpot ms when saturated, capacity $cap req/s at the mean output of $mo tokens. Arrivals: Poisson at"
    echo "$load x that capacity. Deadline per request: 2 s + 3 x $tpot ms per output token."
    echo "1worker: the primary alone; 2workers: + a secondary (1 thread, max_running 2), routed by"
    echo "sched_offload_pick; 1worker-2t: both cores in one worker (reference)."
    echo
    echo "| config | policy | done | out tok/s | mean s | p50 s | p99 s | TTFT mean s | deadline miss | routed to worker 1 |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label policy finished requests out_tok_s e2e_mean_s e2e_p50_s e2e_p99_s ttft_mean_s \
        deadline_missed deadline_n | while read -r l p f r t m p50 p99 tt dm dn; do
        mf=$out/offload.metrics-$l-$p.txt
        routed=$(awk -F'[{} ]' '$1 == "weft_worker_requests_routed_total" && $2 ~ /worker="1"/ { v = $NF } END { print v + 0 }' "$mf" 2>/dev/null || echo 0)
        awk -v l="$l" -v p="$p" -v f="$f" -v r="$r" -v t="$t" -v m="$m" -v p50="$p50" -v p99="$p99" -v tt="$tt" \
            -v dm="$dm" -v dn="$dn" -v ro="$routed" 'BEGIN { printf "| %s | %s | %s/%s | %.1f | %.2f | %.2f | %.2f | %.2f | %d/%d (%.1f%%) | %d |\n",
            l, p, f, r, t, m, p50, p99, tt, dm, dn, (dn > 0 ? 100 * dm / dn : 0), ro }'
    done
} >"$md"
cat "$md"
