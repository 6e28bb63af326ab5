#!/usr/bin/env bash
# sched.sh — the scheduling benchmark (issue 5, docs/scheduling.md): fcfs, priority, spf, laxity,
# rtlm and oracle on the same requests. Synthetic ~110M LLaMA (tiny110m F32, Llama-2 vocabulary),
# prompts and their real responses' lengths from ../shared/data/pairs/alpaca_cleaned_1000.jsonl
# (prompt and length from the same record; output lengths forced with ignore_eos), prompts cut to
# 128 and outputs to 256 tokens. The running batch is bounded (max_running 4; MAX_RUNNING=8 in
# the environment for the earlier configuration, whose results are kept as sched_mr8.*) so that
# at these loads a queue forms and the order matters; the KV cache holds all running sequences
# (no preemption) except in the consolidation experiment.
#   part 1 (one bench/quiet.sh hold): capacity = output tok/s of a saturated run (48 requests at t=0,
#          fcfs), then Poisson arrivals at 80% and 95% of it, all six policies, in-process
#          (`weft bench engine --policy ...`).  Capacity = max_running / TPOT of that run.
#   part 2 (a second hold): a replay of the Azure conversation trace's arrival times (first
#          records, time-scaled to 80% of capacity; its token counts belong to another model and
#          it has no text, so prompts and lengths come from the data set as above), in-process;
#          the same 80% Poisson load over HTTP (`weft serve --policy P` + `weft bench serve`, five
#          policies: the server has no oracle); consolidation: rtlm with a 640-token KV cache,
#          with and without --consolidate (preemptions).
# Deadlines: every request gets 2 s + 3x the measured saturated per-token time per output token
# (a per-request SLO that scales with its length); priorities: 3 seeded random levels.
#   part 3 (a third, short hold): Poisson at 1.25 x capacity (a transient overload), in-process.
# Reproduce: make build && bash bench/quiet.sh bash bench/sched.sh part1 &&
#            bash bench/quiet.sh bash bench/sched.sh part2 &&
#            bash bench/quiet.sh bash bench/sched.sh part3 ; bash bench/sched.sh report
# (--quick as the second argument: a smoke run with tiny15m and few requests, into
# $TMPDIR/weft-sched-quick).
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
quick=0
[ "${2:-}" = --quick ] && quick=1
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
trace=$SHARED/data/traces/AzureLLMInferenceTrace_conv.csv
vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] && [ -r "$trace" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }

policies=fcfs,priority,spf,laxity,rtlm,oracle
http_policies="fcfs priority spf laxity rtlm"
preset=tiny110m; n=70; n_cal=48; n_http=60; n_cons=40; max_run=${MAX_RUNNING:-4}; aging=20
out=$results
if [ $quick = 1 ]; then
    preset=tiny15m; n=16; n_cal=12; n_http=10; n_cons=10; out=${TMPDIR:-/tmp}/weft-sched-quick; mkdir -p "$out"
fi
name=sched
csv=$out/$name.csv          # scheduling rows (report_sched_csv)
cal=$out/$name.calib.csv    # the calibration run (report_csv)
md=$out/$name.md
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running $max_run --threads "$(nproc)" --seed 7 --aging-s $aging --priorities 3 -q)
model=$scratch/model.gguf

# Capacity: the steady-state decode rate of a full batch, max_running / TPOT at saturation
# (tokens/s), over the mean output length (requests/s). The saturated run's makespan
# throughput is lower (prefill, and the drain at its end when the batch empties) and is
# reported beside it.
calib() { # prints: capacity_req_s makespan_tok_s tpot_ms mean_out capacity_tok_s
    csv_select "$cal" out_tok_s output_tokens requests tpot_mean_ms |
        awk -v m=$max_run 'NR == 1 { mo = $2 / $3; ct = m * 1000 / $4
                             printf "%.4f %.2f %.3f %.1f %.1f\n", ct / mo, $1, $4, mo, ct }'
}
deadline_args() { # 2 s + 3 x saturated per-token time per output token
    local tpot
    tpot=$(calib | awk '{ print $3 }')
    echo "--deadline-ms 2000 --deadline-per-token-ms $(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')"
}

if [ "$part" = part1 ]; then
    synth_model $preset f32 "$model"
    rm -f "$csv" "$cal"
    echo "== calibration: $n_cal requests at t=0, fcfs" >&2
    "$WEFT" bench engine --model "$model" -n $n_cal "${common[@]}" --label calibration \
        --csv "$cal" >/dev/null
    read -r cap tok tpot mo ctok < <(calib)
    echo "== capacity $cap req/s ($ctok tok/s = $max_run / TPOT $tpot ms; makespan $tok tok/s; mean output $mo tokens)" >&2
    for load in 0.80 0.95; do
        rate=$(awk -v c="$cap" -v l="$load" 'BEGIN { printf "%.4f", c * l }')
        echo "== Poisson at ${load} x capacity = $rate req/s, $policies" >&2
        # shellcheck disable=SC2046
        "$WEFT" bench engine --model "$model" -n $n --rate "$rate" "${common[@]}" \
            --policy $policies $(deadline_args) --label "poisson-$load" --sched-csv "$csv" >/dev/null
    done
    { machine_line; load_line; } >"$out/$name.machine1"
    exit 0
fi

if [ "$part" = diag ]; then
    # diagnostic (docs/scheduling.md "Why ordering alone cannot reach -30%"): a fresh calibration,
    # then fcfs, oracle and rtlm at 80% load with DIAG_N requests (default 150), into sched_diag.*
    synth_model $preset f32 "$model"
    dn=${DIAG_N:-150}; dpol=${DIAG_POLICIES:-fcfs,oracle,rtlm}
    cal=$out/sched_diag.calib.csv; csv=$out/sched_diag.csv
    rm -f "$cal" "$csv"
    "$WEFT" bench engine --model "$model" -n $n_cal "${common[@]}" --label calibration --csv "$cal" >/dev/null
    read -r cap tok tpot mo ctok < <(calib)
    echo "== capacity $cap req/s (TPOT $tpot ms at $max_run running, mean output $mo)" >&2
    rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.80 }')
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$model" -n $dn --rate "$rate" "${common[@]}" ${DIAG_ARGS:-} \
        --policy $dpol $(deadline_args) --label "diag-0.80" --sched-csv "$csv" >/dev/null
    { machine_line; load_line; } >"$out/sched_diag.machine"
    csv_select "$csv" policy e2e_mean_s e2e_p50_s ttft_mean_s queue_max_s actual_mean_tok preempted >&2
    exit 0
fi

if [ "$part" = part3 ]; then
    # a transient overload: arrivals at 1.25 x capacity for n requests, the queue grows over the
    # run, so the order decides most of the response time (added after parts 1-2 showed that at
    # 80-95% the queue is a small share of it)
    [ -r "$cal" ] || { echo "run part1 first" >&2; exit 1; }
    synth_model $preset f32 "$model"
    read -r cap tok tpot mo ctok < <(calib)
    rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 1.25 }')
    echo "== Poisson at 1.25 x capacity = $rate req/s, $policies" >&2
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$model" -n $n --rate "$rate" "${common[@]}" \
        --policy $policies $(deadline_args) --label "poisson-1.25" --sched-csv "$csv" >/dev/null
    { machine_line; load_line; } >"$out/$name.machine3"
    exit 0
fi

if [ "$part" = part2 ]; then
    [ -r "$cal" ] || { echo "run part1 first" >&2; exit 1; }
    synth_model $preset f32 "$model"
    read -r cap tok tpot mo ctok < <(calib)
    rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.80 }')
    # trace: the first n records' mean gap, scaled so the replay runs at 80% of capacity
    tscale=$(awk -F, -v n=$n -v r="$rate" 'NR == 2 { split($1, a, " "); split(a[2], t, ":"); t0 = t[1]*3600 + t[2]*60 + t[3] }
        NR == n + 1 { split($1, a, " "); split(a[2], t, ":"); t1 = t[1]*3600 + t[2]*60 + t[3] }
        END { gap = (t1 - t0) / (n - 1); printf "%.5f", (1 / r) / gap }' "$trace")
    echo "== Azure conv trace, first $n arrivals x$tscale (80% of capacity), $policies" >&2
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$model" -n $n --trace "$trace" --trace-scale "$tscale" \
        "${common[@]}" --policy $policies $(deadline_args) --label "azure-trace" \
        --sched-csv "$csv" >/dev/null
    echo "== consolidation: rtlm, KV cache of 640 tokens (1.7 longest sequences), 95% load" >&2
    rate95=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.95 }')
    for cons in "" --consolidate; do
        # shellcheck disable=SC2046
        "$WEFT" bench engine --model "$model" -n $n_cons --rate "$rate95" "${common[@]}" \
            --policy rtlm --kv-tokens 640 $cons $(deadline_args) \
            --label "kv640${cons:+-consolidate}" --sched-csv "$csv" >/dev/null
    done
    # HTTP
    srv=
    trap '[ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null; rm -rf "$scratch"' EXIT
    for p in $http_policies; do
        echo "== HTTP: weft serve --policy $p, $n_http requests at $rate req/s" >&2
        "$WEFT" serve --model "$model" --model-name sched --port 0 --kv-layout paged --ctx 512 \
            --threads "$(nproc)" --max-running $max_run --policy $p --aging-s $aging \
            --max-queue 1000 2>"$scratch/srv.err" &
        srv=$!
        url=
        for _ in $(seq 1 600); do
            url=$(grep -o 'listening on http://[^ ]*' "$scratch/srv.err" | head -1 | sed 's/listening on //' || true)
            [ -n "$url" ] && curl -fs "$url/health" >/dev/null 2>&1 && break
            kill -0 "$srv" 2>/dev/null || { cat "$scratch/srv.err" >&2; exit 1; }
            sleep 0.1
        done
        "$WEFT" bench serve --url "$url" -n 2 --output-len 8 -q >/dev/null # warm-up
        # shellcheck disable=SC2046
        "$WEFT" bench serve --url "$url" --model sched -n $n_http --rate "$rate" --tokenizer "$vocab" \
            --prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256 \
            --seed 7 --priorities 3 $(deadline_args) --policy $p --label http-0.80 \
            --sched-csv "$csv" --timeout 300 -q >/dev/null || echo "warning: HTTP $p had failures" >&2
        curl -s "$url/metrics" >"$out/$name.metrics-$p.txt" || true
        kill -TERM "$srv"; wait "$srv" || true; srv=
    done
    { machine_line; load_line; } >"$out/$name.machine2"
    exit 0
fi

# ---- report: tables and plot from the CSVs ----
[ -r "$csv" ] || { echo "no $csv: run part1 and part2 first" >&2; exit 1; }
read -r cap tok tpot mo ctok < <(calib)
{
    echo "# sched — scheduling policies on the same requests"
    echo
    cat "$out/$name.machine1" 2>/dev/null || true
    cat "$out/$name.machine2" 2>/dev/null || true
    cat "$out/$name.machine3" 2>/dev/null || true
    echo
    echo "Model: $preset synth F32 (Llama-2 vocabulary). Prompts and real response lengths from alpaca_cleaned_1000.jsonl"
    echo "(prompts cut to 128, outputs to 256 tokens, forced with ignore_eos), max_running $max_run, $(nproc) threads, seed 7."
    echo "Capacity, from a saturated run ($n_cal requests at t=0, fcfs): TPOT $tpot ms at a full batch of $max_run, so"
    echo "$ctok output tok/s = $cap req/s at the mean output of $mo tokens (that run's makespan throughput, with its"
    echo "prefill and drain: $tok tok/s). Loads below are fractions of $cap req/s. Deadline per request: 2 s + 3 x $tpot ms"
    echo "per output token. Aging bound $aging s."
    echo
    echo "| scenario | policy | done | tok/s | mean s | p50 s | p99 s | TTFT mean s | TTFT p99 s | queue max s | deadline miss | preempt | pred/actual tok | p90 cover | sched us/step | sched % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    # scheduler cost = scheduling phase + prediction work (t_predict_s), over steps and over
    # forward + scheduling time (sampling time is not in this CSV: a slight overstatement)
    csv_select "$csv" label policy finished requests out_tok_s e2e_mean_s e2e_p50_s e2e_p99_s ttft_mean_s \
        ttft_p99_s queue_max_s deadline_missed deadline_n preempted pred_mean_tok actual_mean_tok p90_coverage \
        steps t_schedule_s t_predict_s t_forward_s |
        awk '{ c = $19 + $20; us = $18 > 0 ? 1e6 * c / $18 : 0; pc = ($21 + $19) > 0 ? 100 * c / ($21 + $19) : 0
               printf "| %s | %s | %s/%s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s/%s (%.1f%%) | %s | %.0f/%.0f | %.0f%% | %.1f | %.3f |\n",
               $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, ($13 > 0 ? 100 * $12 / $13 : 0), $14, $15, $16, 100 * $17, us, pc }'
    echo
    echo "rtlm against fcfs per scenario (targets at >= 80% load: mean response time -30% or better, at most half the"
    echo "deadline misses, nobody waiting longer than the aging bound, scheduler < 1% of step time):"
    echo
    echo "| scenario | mean s fcfs | mean s rtlm | change | misses fcfs | misses rtlm | ratio | rtlm queue max s (bound $aging) | rtlm sched % |"
    echo "|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label policy e2e_mean_s deadline_missed queue_max_s t_schedule_s t_predict_s t_forward_s |
        awk '$2 == "fcfs" { fm[$1] = $3; fd[$1] = $4; order[++n] = $1 }
             $2 == "rtlm" { rm[$1] = $3; rd[$1] = $4; rq[$1] = $5; rs[$1] = ($8 + $6) > 0 ? 100 * ($6 + $7) / ($8 + $6) : 0 }
             END { for (i = 1; i <= n; i++) { s = order[i]; if (!(s in rm)) continue;
                   printf "| %s | %.2f | %.2f | %+.1f%% | %d | %d | %s | %.2f | %.3f |\n", s, fm[s], rm[s],
                          100 * (rm[s] - fm[s]) / fm[s], fd[s], rd[s], (fd[s] > 0 ? sprintf("%.2f", rd[s] / fd[s]) : "-"), rq[s], rs[s] } }'
    echo
    echo "Over HTTP the client cannot see the engine; the server's /metrics after each run (bench/results/$name.metrics-P.txt):"
    echo
    echo "| policy | steps | scheduler us/step | scheduler % of step time | predicted/actual tokens (mean) | p90 covered | deadlines missed (server clock) |"
    echo "|---|---|---|---|---|---|---|"
    for p in $http_policies; do
        f=$out/$name.metrics-$p.txt
        [ -r "$f" ] || continue
        awk -v p=$p -F'[{} ]' '$1 == "weft_sched_steps_total" { n = $NF } $1 == "weft_sched_time_seconds_total" { st = $NF }
             $1 == "weft_step_time_seconds_total" { tt = $NF } $1 == "weft_predicted_requests_total" { pn = $NF }
             $1 == "weft_predicted_tokens_total" { pt = $NF } $1 == "weft_actual_tokens_total" { at = $NF }
             $1 == "weft_prediction_p90_covered_total" { cv = $NF } $1 == "weft_deadline_requests_total" { dn = $NF }
             $1 == "weft_deadline_missed_total" { dm = $NF }
             END { printf "| %s | %d | %.1f | %.3f | %.0f/%.0f | %.0f%% | %d/%d |\n", p, n, 1e6 * st / n, 100 * st / tt,
                   pt / pn, at / pn, 100 * cv / pn, dm, dn }' "$f"
    done
} >"$md"
# plot: mean and p99 response time per policy and scenario
gnuplot_term
if command -v gnuplot >/dev/null; then
    csv_select "$csv" label policy e2e_mean_s e2e_p99_s | awk '$1 !~ /^kv/' >"$scratch/plot.dat"
    # one row per scenario, one column per policy
    awk '{ v[$1, $2] = $3; if (!($1 in s)) { s[$1] = 1; o[++n] = $1 } }
         END { for (i = 1; i <= n; i++) { printf "%s", o[i]; split("fcfs priority spf laxity rtlm oracle", P, " ");
               for (j = 1; j <= 6; j++) printf " %s", ((o[i], P[j]) in v ? v[o[i], P[j]] : "NaN"); print "" } }' \
        "$scratch/plot.dat" >"$scratch/wide.dat"
    {
        echo "set terminal $plot_term"
        echo "set output '$out/$name.$plot_ext'"
        echo "set title 'Mean response time per policy — $preset, max-running $max_run (lower is better)'"
        echo "set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1"
        echo "set ylabel 'mean end-to-end s'; set key outside right; set yrange [0:*]"
        echo "plot for [c=2:7] '$scratch/wide.dat' using c:xtic(1) title word('fcfs priority spf laxity rtlm oracle', c-1)"
    } >"$scratch/plot.gp"
    gnuplot "$scratch/plot.gp" && echo "plot: $out/$name.$plot_ext" >&2
fi
cat "$md"
