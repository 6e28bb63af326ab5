#!/usr/bin/env bash
# engine_mixed.sh — fused (iteration-level) vs dynamic vs static batching on a realistic mix:
# prompts and output lengths from a real instruction data set (../shared/data/pairs/
# alpaca_cleaned_1000.jsonl, tokenized with the Llama-2 tokenizer), Poisson arrivals at several
# rates. Reports throughput and p99 end-to-end latency per rate and mode, the highest
# throughput each mode sustains under several p99 bounds (linear interpolation between the
# measured rates), and plots p99 latency against throughput.
#
# Method. All three modes run the same requests (same seed: same arrivals, prompts, lengths)
# on the same kernels in one `weft bench engine` call per rate. At a rate a mode keeps up
# with, its throughput is the offered load; "throughput under a p99 bound" is therefore the
# highest load a mode sustains while its p99 end-to-end latency stays within the bound. The
# bounds are not picked by hand: they are 1.25x, 1.5x, 2x and 3x the lowest p99 any mode
# reaches at any rate (the floor: with real lengths, the longest answers' own decode time),
# because a bound below that floor is one no mode can meet, and one far above it is one every
# mode meets at every rate. A mode that misses a bound even at the lowest rate is reported
# as such ("< lowest"); one still within it at the highest rate as ">=" (and its ratio then
# as a lower bound). With n requests per rate, p99 is about the worst request of the run.
#
# Model: tiny110m Q8_0 by default (the ~110M shape of the issue); MIXED_MODEL=PRESET:TYPE
# picks another (the first version of this benchmark used tiny15m:f32 to fit its time).
# Reproduce: make build && bash bench/engine_mixed.sh        (full; --quick for a smoke test;
#            --report-only recomputes the tables and plot from the existing CSV)
source "$(dirname "$0")/engine_lib.sh"
bench_args "$@"
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): $pairs not found — ../shared is absent"; exit 0; }
model=${MIXED_MODEL:-tiny110m:q8_0}
preset=${model%%:*} mtype=${model#*:}
[ "$mtype" = "$model" ] && mtype=f32
if [ $quick = 1 ]; then
    name=engine_mixed.quick; n=8; rates="4 16"; max_out=16; preset=tiny15m mtype=f32
else
    # Budget: ~8 minutes on 2 cores: a 1024-token context, prompts cut to 128 and outputs to
    # 512 tokens (so the real long tail of answer lengths is kept), 64 requests per rate, rates
    # from about a request-level server's capacity (~2 req/s: ~170-token mean answers at ~330
    # tok/s batch-1 Q8_0) to beyond fused's (~10 req/s).
    name=engine_mixed; n=64; rates="1.5 3 4.5 6 9 12"; max_out=512
    [ "$model" = tiny110m:q8_0 ] || name=engine_mixed.${preset}_$mtype
fi
bound_factors="1.25 1.5 2 3"
csv=$results/$name.csv
[ $runs = 1 ] && rm -f "$csv" && synth_model "$preset" "$mtype" "$scratch/model.gguf" --ctx 1024
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
    echo "Workload: $preset synth $mtype (Llama-2 vocabulary), $n requests per rate, prompts and output lengths from"
    echo "alpaca_cleaned_1000.jsonl (same record for both; 1024-token context, prompts cut to 128 tokens, outputs capped at $max_out), Poisson"
    echo "arrivals, seed 1. Static/dynamic: batches of up to 32, dynamic waits up to 100 ms to fill one; fused: up to 32"
    echo "running sequences, 512-token step budget."
    echo
    echo "| rate req/s | mode | out tok/s | req/s | TTFT p50 ms | e2e p50 s | e2e p99 s | makespan s |"
    echo "|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label mode out_tok_s req_s ttft_p50_ms e2e_p50_s e2e_p99_s makespan_s |
        awk '{ printf "| %s | %s | %.1f | %.2f | %.0f | %.2f | %.2f | %.2f |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
    echo
    floor=$(csv_select "$csv" e2e_p99_s | sort -g | head -1)
    bounds=$(for f in $bound_factors; do awk -v f=$f -v m=$floor 'BEGIN { printf "%.2f ", f * m }'; done)
    echo "Highest throughput (output tok/s) each mode sustains with e2e p99 under a bound, interpolated linearly"
    echo "between measured rates (\"< lowest\" = even the lowest rate misses the bound; \">=\" = still within it at the"
    echo "highest rate measured, so the ratio is a lower bound). Bounds = $bound_factors x the lowest p99 measured"
    echo "($(printf %.2f "$floor") s, the floor set by the longest answers' own decode time); p99 of $n requests is about the worst one."
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
            function ratio(x, y, fx, fy) {
                if (x < 0) return "n/a (fused misses it)"
                if (y < 0) return "n/a (misses it at the lowest rate)"
                if (fy == ">=") return fx == ">=" ? "n/a (both within it)" : sprintf("<=%.2fx", x / y)
                return sprintf("%s%.2fx", fx, x / y) }
            END { f = best("fused"); d = best("dynamic"); s = best("static")
                  printf "| %s |", b
                  printf " %s |", f < 0 ? "< lowest" : sprintf("%s%.1f", flag["fused"], f)
                  printf " %s |", d < 0 ? "< lowest" : sprintf("%s%.1f", flag["dynamic"], d)
                  printf " %s |", s < 0 ? "< lowest" : sprintf("%s%.1f", flag["static"], s)
                  printf " **%s** |", ratio(f, d, flag["fused"], flag["dynamic"])
                  printf " %s |\n", ratio(f, s, flag["fused"], flag["static"]) }'
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
set title "p99 end-to-end latency against throughput ($preset $mtype, alpaca lengths)"
set xlabel "throughput (output tokens/s)"
set ylabel "e2e latency p99 (s)"
set logscale y
set grid
set key top left
plot for [m in "fused dynamic static"] "< grep '^".m." ' $dat" using 2:3 with linespoints lw 2 title m
GP
echo "Plot: [$name.$plot_ext]($name.$plot_ext)" >>"$md"
cat "$md"
