#!/usr/bin/env bash
# engine_mixed.sh — fused (iteration-level) vs dynamic vs static batching on a realistic mix:
# prompts and output lengths from a real instruction data set (../shared/data/pairs/
# alpaca_cleaned_1000.jsonl, tokenized with the Llama-2 tokenizer), Poisson arrivals at several
# rates. Reports throughput and p99 end-to-end latency per rate and mode, the highest
# throughput each mode sustains under several p99 bounds (linear interpolation between the
# measured rates), and plots p99 latency against throughput.
# Reproduce: make build && bash bench/engine_mixed.sh        (full; --quick for a smoke test;
#            --report-only recomputes the tables and plot from the existing CSV)
source "$(dirname "$0")/engine_lib.sh"
bench_args "$@"
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): $pairs not found — ../shared is absent"; exit 0; }
if [ $quick = 1 ]; then
    name=engine_mixed.quick; n=8; rates="4 16"; max_out=16; bounds="2 5"
else
    # Budget: ~6 minutes on 2 cores: tiny15m F32 with a 1024-token context, prompts cut to 128
    # and outputs to 512 tokens (so the real long tail of answer lengths is kept), 96 requests
    # per rate. The p99 bounds span the measured p99 range (0.7 s at light load to ~5 s).
    name=engine_mixed; n=96; rates="1 2 4 8 16"; max_out=512; bounds="1 1.25 1.5 2"
fi
csv=$results/$name.csv
[ $runs = 1 ] && rm -f "$csv" && synth_model tiny15m f32 "$scratch/model.gguf" --ctx 1024
for r in $rates; do
    [ $runs = 1 ] || break
    echo "== rate $r req/s" >&2
    "$WEFT" bench engine --model "$scratch/model.gguf" --mode fused,dynamic,static -n $n \
        --rate "$r" --lengths-from "$pairs" --prompts-from "$pairs" --max-output $max_out \
        --max-prompt 128 --max-running 32 --max-batch-size 32 --max-wait-ms 100 --seed 1 \
        --label "$r" --csv-append "$csv" -q >/dev/null
done
md=$results/$name.md
if [ $runs = 1 ]; then machine="$(machine_line)
$(load_line)"; else machine=$(grep -A1 -m1 '^machine:' "$md" || echo "machine: unknown (redrawn)"); fi
{
    echo "# engine_mixed — fused vs dynamic vs static batching on real request lengths"
    echo
    echo "$machine"
    echo
    echo "Workload: tiny15m synth F32 (Llama-2 vocabulary), $n requests per rate, prompts and output lengths from"
    echo "alpaca_cleaned_1000.jsonl (same record for both; 1024-token context, prompts cut to 128 tokens, outputs capped at $max_out), Poisson"
    echo "arrivals, seed 1. Static/dynamic: batches of up to 32, dynamic waits up to 100 ms to fill one; fused: up to 32"
    echo "running sequences, 512-token step budget."
    echo
    echo "| rate req/s | mode | out tok/s | req/s | TTFT p50 ms | e2e p50 s | e2e p99 s | makespan s |"
    echo "|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label mode out_tok_s req_s ttft_p50_ms e2e_p50_s e2e_p99_s makespan_s |
        awk '{ printf "| %s | %s | %.1f | %.2f | %.0f | %.2f | %.2f | %.2f |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
    echo
    echo "Highest throughput (output tok/s) each mode sustains with e2e p99 under a bound, interpolated linearly"
    echo "between measured rates (\"<\" = even the lowest rate misses the bound; \">=\" = still within it at the highest rate measured):"
    echo
    printf "| p99 bound s |"; for m in fused dynamic static; do printf " %s tok/s |" $m; done; echo " fused / dynamic | fused / static |"
    echo "|---|---|---|---|---|---|"
    for b in $bounds; do
        csv_select "$csv" mode out_tok_s e2e_p99_s | awk -v b="$b" '
            { m = $1; k = ++cnt[m]; thr[m, k] = $2; p99[m, k] = $3 }
            function best(m,   k, x, lo) {
                x = -1; flag[m] = ""
                for (k = 1; k <= cnt[m]; k++) {
                    if (p99[m, k] <= b) { if (thr[m, k] > x) x = thr[m, k] }
                    else if (k > 1 && p99[m, k - 1] <= b) {
                        lo = thr[m, k - 1] + (thr[m, k] - thr[m, k - 1]) * (b - p99[m, k - 1]) / (p99[m, k] - p99[m, k - 1])
                        if (lo > x) x = lo
                    }
                }
                if (x < 0) flag[m] = "<"
                else if (p99[m, cnt[m]] <= b) flag[m] = ">="
                return x }
            END { f = best("fused"); d = best("dynamic"); s = best("static")
                  printf "| %s |", b
                  printf " %s |", f < 0 ? "< lowest" : sprintf("%s%.1f", flag["fused"], f)
                  printf " %s |", d < 0 ? "< lowest" : sprintf("%s%.1f", flag["dynamic"], d)
                  printf " %s |", s < 0 ? "< lowest" : sprintf("%s%.1f", flag["static"], s)
                  printf " %s |", (f > 0 && d > 0) ? sprintf("**%.2fx**", f / d) : "n/a"
                  printf " %s |\n", (f > 0 && s > 0) ? sprintf("%.2fx", f / s) : "n/a" }'
    done
    echo
    echo "Reproduce: \`make build && bash bench/engine_mixed.sh$([ $quick = 1 ] && echo ' --quick')\`"
} >"$md"
gnuplot_term
dat=$scratch/mixed.dat
csv_select "$csv" mode out_tok_s e2e_p99_s >"$dat"
plot="$results/$name.$plot_ext"
gnuplot <<GP
set terminal $plot_term noenhanced
set output "$plot"
set title "p99 end-to-end latency against throughput (tiny15m, alpaca lengths)"
set xlabel "throughput (output tokens/s)"
set ylabel "e2e latency p99 (s)"
set logscale y
set grid
set key top left
plot for [m in "fused dynamic static"] "< grep '^".m." ' $dat" using 2:3 with linespoints lw 2 title m
GP
echo "Plot: [$name.$plot_ext]($name.$plot_ext)" >>"$md"
cat "$md"
