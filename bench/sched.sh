#!/usr/bin/env bash
# sched.sh — the scheduling benchmark (issue 5, docs/scheduling.md): fcfs, priority, spf, laxity,
# rtlm and oracle on the same requests. Synthetic ~110M LLaMA (tiny110m F32, Llama-2 vocabulary),
# prompts and their real responses' lengths from ../shared/data/pairs/alpaca_cleaned_1000.jsonl
# (prompt and length from the same record; output lengths forced with ignore_eos), prompts cut to
# 128 and outputs to 256 tokens. The running batch is bounded (max_running 4; MAX_RUNNING=8 in
# the environment for the earlier configuration, whose results are kept as sched_mr8.*) so that
# at these loads a queue forms and the order matters; the KV cache holds all running sequences
# (no recompute preemption; spf, rtlm and oracle pause running requests for much shorter ones,
# keeping their cache, docs/scheduling.md "Preemption") except in the consolidation experiment.
# SCHED_N requests per run (default 150, so that queueing reaches a steady state rather than the
# start-up and drain of a short run). The policies other than oracle see the nominal cap (256) as
# max_tokens, not the forced length (engine_request.sched_max_tokens); over HTTP likewise: the
# request's max_tokens is the cap and the length is forced with the bench-only field
# bench_output_tokens (`weft bench serve --nominal-max-tokens`), which the scheduler never sees.
# Defaults of the policies: --late-policy keep, the hard wait bound --aging-s 20 (every policy
# but fcfs).
# Each part is one bench/quiet.sh hold of at most ~9 minutes:
#   part1:  capacity = max_running / TPOT of a saturated run of the same SCHED_N requests at t=0
#           (fcfs; its mean output turns tok/s into req/s), then Poisson arrivals at 80% of
#           it, all six policies, in-process (`weft bench engine --policy ...`). The calibration
#           is made once (when none exists, or with --recalibrate, which also clears every other
#           part's rows, since their loads were fractions of the old capacity); a later part1
#           reruns only the 80% runs at the same capacity;
#   part1b: the same at 95%;
#   part2:  a replay of the Azure conversation trace's arrival times (first SCHED_N records,
#           time-scaled to 80% of capacity; its token counts belong to another model and it has no
#           text, so prompts and lengths come from the data set as above), in-process;
#   part2b: the 80% Poisson load over HTTP (`weft serve --policy P` + `weft bench serve`, five
#           policies: the server has no oracle). Its capacity is calibrated over HTTP (a
#           saturated run of the same requests at t=0 through `weft serve`, fcfs, client clock):
#           client and server share the 2 cores, so the in-process capacity would make the
#           nominal 80% an effective ~90-100% over HTTP (before this change: fcfs mean 3.36 s
#           over HTTP against 2.25 s in-process at the "same" load);
#   part3:  ablation: spf, rtlm and oracle at 80% with --preempt-ratio 0 (admission order only);
#           and consolidation: rtlm with a 640-token KV cache, with and without --consolidate;
#   seeds S...:      the 80% comparison over several Poisson arrival seeds (`--arrival-seed S`:
#           the same 150 requests, prompts and lengths as part1, other arrival times): fcfs,
#           rtlm and oracle in one invocation per seed (interleaved, so the machine's drift hits
#           the three alike); part1's run is arrival seed 7. Default seeds: 1 2 3 4;
#   seeds-http S...: the same over HTTP, fcfs then rtlm per seed (part2b's run is seed 7),
#           at 80% of the HTTP capacity; the server's /metrics after each run give its queue
#           time (the share of fcfs's response time that is queueing bounds what any order can
#           save, docs/scheduling.md).
#   late:   the late policy at 95%: rtlm and laxity with --late-policy demote (their default,
#           keep, is in part1b), to measure what demoting late requests costs under overload;
#   devtrace: the DEVELOPMENT workload (seed 101: other requests and arrivals than the
#           benchmark's seed 7), rtlm and oracle at 80% (DEV_RATIOS="2 0": also without
#           preemption), each run's scheduling timeline (--sched-trace) summarised by
#           bench/sched_trace.sh into sched_devtrace.txt: how often and how long requests are
#           paused, recompute, idle slots, forward time by batch shape (docs/scheduling.md
#           "Diagnosis"). A diagnostic: without the lock its timings are noisy.
# Deadlines: every request gets 2 s + 3x the measured saturated per-token time per output token
# (a per-request SLO that scales with its length); priorities: 3 seeded random levels.
# Reproduce: make build && for p in part1 part1b part2 part2b part3 late; do
#            bash bench/quiet.sh bash bench/sched.sh $p; done
#            bash bench/quiet.sh bash bench/sched.sh seeds 1 2; bash bench/quiet.sh bash bench/sched.sh seeds 3 4
#            bash bench/quiet.sh bash bench/sched.sh seeds-http 1 2; bash bench/quiet.sh bash bench/sched.sh seeds-http 3 4
#            bash bench/sched.sh report
# (--quick as the second argument: a smoke run with tiny15m and few requests, into
# $TMPDIR/weft-sched-quick).
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
quick=0
recal=0
seeds=() # the arrival seeds of the seeds parts (numbers after the part's name)
for a in "${@:2}"; do
    case $a in
    --quick) quick=1 ;;
    --recalibrate) recal=1 ;;
    *[!0-9]* | '') echo "sched.sh: unknown argument '$a'" >&2; exit 2 ;;
    *) seeds+=("$a") ;;
    esac
done
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4)
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
trace=$SHARED/data/traces/AzureLLMInferenceTrace_conv.csv
vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] && [ -r "$trace" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }

policies=fcfs,priority,spf,laxity,rtlm,oracle
http_policies="fcfs priority spf laxity rtlm"
preset=tiny110m; n=${SCHED_N:-150}; n_cal=$n; n_http=$n; n_cons=40; max_run=${MAX_RUNNING:-4}; aging=20
out=$results
if [ $quick = 1 ]; then
    preset=tiny15m; n=16; n_cal=12; n_http=10; n_cons=10; out=${TMPDIR:-/tmp}/weft-sched-quick; mkdir -p "$out"
fi
name=sched
csv=$out/$name.csv          # scheduling rows (report_sched_csv)
cal=$out/$name.calib.csv    # the calibration run (report_csv)
hcal=$out/${name}_http.calib.csv # the calibration run over HTTP (part2b)
tsum=$out/${name}_traces.txt     # the in-process runs' scheduling traces, summarised
md=$out/$name.md
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running $max_run --threads "$(nproc)" --seed 7 --aging-s $aging --priorities 3 -q)
model=$scratch/model.gguf

# Capacity: the steady-state decode rate of a full batch, max_running / TPOT at saturation
# (tokens/s), over the mean output length (requests/s). The saturated run's makespan
# throughput is lower (prefill, and the drain at its end when the batch empties) and is
# reported beside it.
calib() { # [FILE] prints: capacity_req_s makespan_tok_s tpot_ms mean_out capacity_tok_s
    csv_select "${1:-$cal}" out_tok_s output_tokens requests tpot_mean_ms |
        awk -v m=$max_run 'NR == 1 { mo = $2 / $3; ct = m * 1000 / $4
                             printf "%.4f %.2f %.3f %.1f %.1f\n", ct / mo, $1, $4, mo, ct }'
}
deadline_args() { # 2 s + 3 x saturated per-token time per output token
    local tpot
    tpot=$(calib | awk '{ print $3 }')
    echo "--deadline-ms 2000 --deadline-per-token-ms $(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')"
}

# each part appends its rows to $csv; a part run again first removes its own earlier rows
drop_rows() { # drop_rows LABEL... : removes the rows of these scenarios from $csv
    [ -r "$csv" ] || return 0
    awk -F, -v l="$*" 'BEGIN { n = split(l, a, " "); for (i = 1; i <= n; i++) d[a[i]] = 1 }
        NR == 1 || !($1 in d)' "$csv" >"$scratch/keep.csv" && cp "$scratch/keep.csv" "$csv"
}
need_cal() { [ -r "$cal" ] || { echo "run part1 first (calibration)" >&2; exit 1; }; }
poisson() { # poisson LOAD LABEL [extra bench args...]: all policies at LOAD x capacity, in-process
    local load=$1 label=$2 rate
    shift 2
    read -r cap tok tpot mo ctok < <(calib)
    rate=$(awk -v c="$cap" -v l="$load" 'BEGIN { printf "%.4f", c * l }')
    echo "== Poisson at ${load} x capacity = $rate req/s, $n requests, ${POLICIES:-$policies} $*" >&2
    drop_rows "$label"
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$model" -n $n --rate "$rate" "${common[@]}" \
        --policy ${POLICIES:-$policies} $(deadline_args) "$@" --label "$label" --sched-csv "$csv" \
        --sched-trace "$scratch/run.trace" >/dev/null
    # each run's timeline, summarised (pauses, forward time per step by batch shape: the machine's
    # speed in that run on the same step shapes); the trace itself is not kept
    if [ -r "$tsum" ]; then
        awk -v l="$label" 'BEGIN { keep = 1 } /^[^ ]/ { keep = ($1 != l) } keep' "$tsum" >"$scratch/tsum"
        cp "$scratch/tsum" "$tsum"
    fi
    bash "$root/bench/sched_trace.sh" "$scratch/run.trace" $max_run >>"$tsum"
}

if [ "$part" = part1 ]; then
    synth_model $preset f32 "$model"
    if [ ! -r "$cal" ] || [ $recal = 1 ]; then
        # a new capacity makes every other part's rows stale: they go too
        rm -f "$csv" "$cal" "$tsum"
        # the saturated run uses the same n requests as the loaded runs, so that the capacity in
        # requests/s is computed with their mean output length
        echo "== calibration: $n_cal requests at t=0, fcfs" >&2
        "$WEFT" bench engine --model "$model" -n $n_cal "${common[@]}" --label calibration \
            --csv "$cal" >/dev/null
    else
        echo "== keeping the calibration in $cal (--recalibrate: a new one, and every part again)" >&2
    fi
    read -r cap tok tpot mo ctok < <(calib)
    echo "== capacity $cap req/s ($ctok tok/s = $max_run / TPOT $tpot ms; makespan $tok tok/s; mean output $mo tokens)" >&2
    poisson 0.80 poisson-0.80
    { machine_line; load_line; } >"$out/$name.machine1"
    exit 0
fi

if [ "$part" = part1b ]; then
    need_cal; synth_model $preset f32 "$model"
    poisson 0.95 poisson-0.95
    { machine_line; load_line; } >"$out/$name.machine1b"
    exit 0
fi

if [ "$part" = part3 ]; then
    # ablation: the preemptive policies with preemption off (--preempt-ratio 0, admission order
    # only), and consolidation (rtlm, a KV cache of 640 tokens, with and without --consolidate)
    need_cal; synth_model $preset f32 "$model"
    POLICIES=spf,rtlm,oracle poisson 0.80 poisson-0.80-nopreempt --preempt-ratio 0
    # (the second sample of fcfs and rtlm at 80% that was here is now the seeds part)
    drop_rows poisson-0.80-repeat
    read -r cap tok tpot mo ctok < <(calib)
    rate95=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.95 }')
    echo "== consolidation: rtlm, KV cache of 640 tokens (1.7 longest sequences), 95% load" >&2
    drop_rows kv640 kv640-consolidate
    for cons in "" --consolidate; do
        # shellcheck disable=SC2046
        "$WEFT" bench engine --model "$model" -n $n_cons --rate "$rate95" "${common[@]}" \
            --policy rtlm --kv-tokens 640 $cons $(deadline_args) \
            --label "kv640${cons:+-consolidate}" --sched-csv "$csv" >/dev/null
    done
    { machine_line; load_line; } >"$out/$name.machine3"
    exit 0
fi

if [ "$part" = late ]; then
    need_cal; synth_model $preset f32 "$model"
    POLICIES=rtlm,laxity poisson 0.95 poisson-0.95-demote --late-policy demote
    { machine_line; load_line; } >"$out/$name.machine4"
    exit 0
fi

if [ "$part" = part2 ]; then
    need_cal; synth_model $preset f32 "$model"
    read -r cap tok tpot mo ctok < <(calib)
    rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.80 }')
    # trace: the first n records' mean gap, scaled so the replay runs at 80% of capacity
    tscale=$(awk -F, -v n=$n -v r="$rate" 'NR == 2 { split($1, a, " "); split(a[2], t, ":"); t0 = t[1]*3600 + t[2]*60 + t[3] }
        NR == n + 1 { split($1, a, " "); split(a[2], t, ":"); t1 = t[1]*3600 + t[2]*60 + t[3] }
        END { gap = (t1 - t0) / (n - 1); printf "%.5f", (1 / r) / gap }' "$trace")
    echo "== Azure conv trace, first $n arrivals x$tscale (80% of capacity), $policies" >&2
    drop_rows azure-trace
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$model" -n $n --trace "$trace" --trace-scale "$tscale" \
        "${common[@]}" --policy $policies $(deadline_args) --label "azure-trace" \
        --sched-csv "$csv" >/dev/null
    { machine_line; load_line; } >"$out/$name.machine2"
    exit 0
fi

# ---- over HTTP: one `weft serve` per run, `weft bench serve` as the client on the same machine ----
srv=
http_start() { # http_start POLICY: starts weft serve; sets srv and url
    "$WEFT" serve --model "$model" --model-name sched --port 0 --kv-layout paged --ctx 512 \
        --threads "$(nproc)" --max-running $max_run --policy "$1" --aging-s $aging \
        --max-queue 1000 2>"$scratch/srv.err" &
    srv=$!
    url=$(server_url "$srv" "$scratch/srv.err") || exit 1
    "$WEFT" bench serve --url "$url" -n 2 --output-len 8 -q >/dev/null # warm-up
}
http_stop() { kill -TERM "$srv"; wait "$srv" || true; srv=; }
http_common=(--model sched --tokenizer "$vocab" --prompts-from "$pairs" --lengths-from "$pairs"
             --max-prompt 128 --max-output 256 --seed 7 --priorities 3 --nominal-max-tokens
             --timeout 300 -q)
http_rate() { # 80% of the capacity measured over HTTP (part2b's calibration)
    [ -r "$hcal" ] || { echo "run part2b first (HTTP calibration)" >&2; exit 1; }
    calib "$hcal" | awk '{ printf "%.4f", $1 * 0.80 }'
}
http_run() { # http_run POLICY LABEL METRICS_FILE [bench serve args...]: one loaded run over HTTP
    local p=$1 label=$2 mfile=$3 rate
    shift 3
    rate=$(http_rate)
    echo "== HTTP: weft serve --policy $p, $n_http requests at $rate req/s $*" >&2
    http_start "$p"
    # shellcheck disable=SC2046
    "$WEFT" bench serve --url "$url" -n $n_http --rate "$rate" "${http_common[@]}" $(deadline_args) \
        --policy "$p" --label "$label" --sched-csv "$csv" "$@" >/dev/null ||
        echo "warning: HTTP $p had failures" >&2
    curl -s "$url/metrics" >"$mfile" || true
    http_stop
}
trap '[ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null; rm -rf "$scratch"' EXIT

if [ "$part" = part2b ]; then
    need_cal; synth_model $preset f32 "$model"
    # capacity over HTTP: the same requests at t=0 through weft serve (fcfs), client clock
    echo "== HTTP calibration: $n_http requests at t=0, fcfs" >&2
    http_start fcfs
    "$WEFT" bench serve --url "$url" -n $n_http "${http_common[@]}" --label http-calibration \
        --csv "$hcal" >/dev/null || echo "warning: HTTP calibration had failures" >&2
    http_stop
    read -r hcap htok htpot hmo hctok < <(calib "$hcal")
    echo "== HTTP capacity $hcap req/s ($hctok tok/s = $max_run / TPOT $htpot ms; makespan $htok tok/s)" >&2
    drop_rows http-0.80
    for p in $http_policies; do
        http_run "$p" http-0.80 "$out/$name.metrics-$p.txt"
    done
    { machine_line; load_line; } >"$out/$name.machine2b"
    exit 0
fi

if [ "$part" = devtrace ]; then
    need_cal; synth_model $preset f32 "$model"
    read -r cap tok tpot mo ctok < <(calib)
    rate=$(awk -v c="$cap" 'BEGIN { printf "%.4f", c * 0.80 }')
    dev=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
         --max-running $max_run --threads "$(nproc)" --seed 101 --aging-s $aging --priorities 3 -q)
    {
        echo "# development workload: seed 101, $n requests at $rate req/s (80% of part1's capacity), $(date -u +%Y-%m-%dT%H:%MZ)"
        machine_line
        for pr in ${DEV_RATIOS:-2}; do
            # shellcheck disable=SC2046
            "$WEFT" bench engine --model "$model" -n $n --rate "$rate" "${dev[@]}" --policy rtlm,oracle \
                --preempt-ratio $pr $(deadline_args) --label "dev-preempt-ratio-$pr" \
                --sched-trace "$scratch/dev.trace" >/dev/null
            bash "$root/bench/sched_trace.sh" "$scratch/dev.trace" $max_run
        done
        load_line
    } >"$out/${name}_devtrace.txt"
    cat "$out/${name}_devtrace.txt"
    exit 0
fi

if [ "$part" = seeds ]; then
    need_cal; synth_model $preset f32 "$model"
    for s in "${seeds[@]}"; do
        # shellcheck disable=SC2086
        POLICIES=fcfs,rtlm,oracle poisson 0.80 seed80-$s --arrival-seed $s
    done
    { machine_line; load_line; } >>"$out/$name.machine5"
    exit 0
fi

if [ "$part" = seeds-http ]; then
    need_cal; synth_model $preset f32 "$model"
    for s in "${seeds[@]}"; do
        drop_rows seed80http-$s
        for p in fcfs rtlm; do
            http_run "$p" seed80http-$s "$out/$name.metrics-seed$s-$p.txt" --arrival-seed $s
        done
    done
    { machine_line; load_line; } >>"$out/$name.machine5b"
    exit 0
fi

# ---- report: tables and plot from the CSVs ----

# metric NAME FILE: the value of a /metrics counter (one worker)
metric() { awk -v k="$1" -F'[{} ]' '$1 == k { v = $NF } END { print v + 0 }' "$2" 2>/dev/null || echo 0; }
# stats: median, min and max of the numbers on stdin (one per line)
stats() { sort -g | awk '{ v[++n] = $1 } END { if (!n) { print "- - -"; exit }
    m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; printf "%+.1f%% %+.1f%% %+.1f%%\n", m, v[1], v[n] }'; }
# The 80% comparison over arrival seeds (parts seeds and seeds-http; part1's and part2b's runs are
# arrival seed 7): per seed, rtlm's and oracle's change of the mean response time against fcfs's,
# the same change with each mean first divided by its run's forward time per step (the machine's
# speed in that run), and fcfs's queueing share (queue time / response time: no order can save
# more than that); then the median and range over the seeds.
seed_tables() {
    local rows=$scratch/seedrows fb=$scratch/fullbatch
    # each run's decode-only forward time per step at a full batch (sched_trace.sh's summary): the
    # machine's speed on identical step shapes, unlike fwd ms/step, which mixes batch sizes and
    # prefill steps that differ between policies
    echo "- - 0" >"$fb" # never empty: the join below reads it as its first file
    [ -r "$tsum" ] && awk -v b=$max_run '/^[^ ]/ { l = $1; split($2, a, "/"); p = a[3]; sub(/:$/, "", p); next }
        /forward ms per step/ { for (i = 1; i < NF; i++) if ($i == b ":") print l, p, $(i + 1) }' "$tsum" >>"$fb"
    csv_select "$csv" label policy e2e_mean_s deadline_missed wait_max_s steps t_forward_s queue_mean_s |
        awk 'NR == FNR { full[$1, $2] = $3; next }
             { if ((($1, $2) in full)) fb = full[$1, $2]; else fb = 0 }
             $1 == "poisson-0.80" { $1 = "seed80-7" } $1 ~ /^seed80-[0-9]+$/ {
                 s = substr($1, 8); m[s, $2] = $3; d[s, $2] = $4; w[s, $2] = $5; g[s, $2] = fb
                 f[s, $2] = $6 > 0 ? 1000 * $7 / $6 : 0; q[s, $2] = $8; if (!(s in seen)) { seen[s] = 1; o[++n] = s } }
             END { for (i = 1; i <= n; i++) { s = o[i]; if (!((s, "fcfs") in m) || !((s, "rtlm") in m) || !((s, "oracle") in m)) continue
                   printf "%s %.3f %.3f %.3f %.3f %.3f %.3f %d %d %d %.2f %.3f %.3f %.3f %.3f\n", s, m[s, "fcfs"], m[s, "rtlm"], m[s, "oracle"],
                          f[s, "fcfs"], f[s, "rtlm"], f[s, "oracle"], d[s, "fcfs"], d[s, "rtlm"], d[s, "oracle"], w[s, "rtlm"], q[s, "fcfs"],
                          g[s, "fcfs"], g[s, "rtlm"], g[s, "oracle"] } }' "$fb" - >"$rows"
    if [ -s "$rows" ]; then
        echo "The 80% load over Poisson arrival seeds, in-process (part seeds: fcfs, rtlm and oracle one after the other per"
        echo "seed, the same $n requests; seed 7 is part1's run). full-batch ms: the run's forward time of a decode-only step"
        echo "of $max_run sequences (from its scheduling trace, $name""_traces.txt), the machine's speed on the same step shape; norm.:"
        echo "each mean divided by that first (response time in full-batch steps: it removes the machine's speed from the"
        echo "service time, not its effect on the effective load, so it is a correction, not an exact one); fcfs queue share:"
        echo "fcfs's mean queue time (submission to first admission) over its mean response time, the most that any order"
        echo "could save at this load (docs/scheduling.md \"The ceiling\"):"
        echo
        echo "| arrival seed | mean s fcfs | mean s rtlm | change | norm. change | mean s oracle | change | norm. change | fcfs queue share | full-batch ms fcfs/rtlm/oracle | fwd ms/step fcfs/rtlm/oracle | misses fcfs/rtlm/oracle | rtlm wait max s |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        awk 'function nc(a, ga, b, gb) { return ga > 0 && gb > 0 ? sprintf("%+.1f%%", 100 * ((a / ga) / (b / gb) - 1)) : "-" }
             { printf "| %s | %.2f | %.2f | %+.1f%% | %s | %.2f | %+.1f%% | %s | %.0f%% | %.2f/%.2f/%.2f | %.2f/%.2f/%.2f | %d/%d/%d | %.2f |\n",
               $1, $2, $3, 100 * ($3 / $2 - 1), nc($3, $14, $2, $13), $4, 100 * ($4 / $2 - 1), nc($4, $15, $2, $13),
               100 * $12 / $2, $13, $14, $15, $5, $6, $7, $8, $9, $10, $11 }' "$rows"
        read -r rm rlo rhi < <(awk '{ print 100 * ($3 / $2 - 1) }' "$rows" | stats)
        read -r rnm rnlo rnhi < <(awk '$13 > 0 && $14 > 0 { print 100 * (($3 / $14) / ($2 / $13) - 1) }' "$rows" | stats)
        read -r om olo ohi < <(awk '{ print 100 * ($4 / $2 - 1) }' "$rows" | stats)
        read -r onm onlo onhi < <(awk '$13 > 0 && $15 > 0 { print 100 * (($4 / $15) / ($2 / $13) - 1) }' "$rows" | stats)
        read -r qm qlo qhi < <(awk '{ print -100 * $12 / $2 }' "$rows" | stats)
        awk -v rm="$rm" -v rr="$rlo..$rhi" -v rnm="$rnm" -v rnr="$rnlo..$rnhi" -v om="$om" -v orr="$olo..$ohi" \
            -v onm="$onm" -v onr="$onlo..$onhi" -v qm="$qm" -v qr="$qlo..$qhi" \
            '{ df += $8; dr += $9; do_ += $10; if ($11 > wm) wm = $11; n++ }
             END { printf "| median (range) of %d | | | %s (%s) | %s (%s) | | %s (%s) | %s (%s) | %s (%s) | | | %d/%d/%d in all | %.2f (max) |\n",
                   n, rm, rr, rnm, rnr, om, orr, onm, onr, qm, qr, df, dr, do_, wm }' "$rows"
        echo
        echo "(fcfs queue share in the median row is written as the saving it allows, negative.)"
        echo
    fi
    # over HTTP: client clock for the response time, the server's /metrics for its queue and step time
    csv_select "$csv" label policy e2e_mean_s deadline_missed |
        awk '$1 == "http-0.80" { $1 = "seed80http-7" } $1 ~ /^seed80http-[0-9]+$/ && ($2 == "fcfs" || $2 == "rtlm") {
                 s = substr($1, 12); m[s, $2] = $3; d[s, $2] = $4; if (!(s in seen)) { seen[s] = 1; o[++n] = s } }
             END { for (i = 1; i <= n; i++) { s = o[i]; if (!((s, "fcfs") in m) || !((s, "rtlm") in m)) continue
                   printf "%s %.3f %.3f %d %d\n", s, m[s, "fcfs"], m[s, "rtlm"], d[s, "fcfs"], d[s, "rtlm"] } }' >"$rows"
    if [ -s "$rows" ]; then
        : >"$rows.full"
        while read -r s fm rmn fd rd; do
            local mf mr
            if [ "$s" = 7 ]; then mf=$out/$name.metrics-fcfs.txt mr=$out/$name.metrics-rtlm.txt
            else mf=$out/$name.metrics-seed$s-fcfs.txt mr=$out/$name.metrics-seed$s-rtlm.txt; fi
            echo "$s $fm $rmn $fd $rd $(metric weft_step_time_seconds_total "$mf") $(metric weft_sched_steps_total "$mf") \
$(metric weft_step_time_seconds_total "$mr") $(metric weft_sched_steps_total "$mr") \
$(metric weft_sched_queue_seconds_total "$mf") $(metric weft_sched_queued_requests_total "$mf") \
$(metric weft_sched_wait_seconds_max "$mr")" >>"$rows.full"
        done <"$rows"
        # columns: seed fcfs rtlm miss_f miss_r step_s_f steps_f step_s_r steps_r queue_s_f queued_f wait_max_r
        awk '{ ff = $7 > 0 ? 1000 * $6 / $7 : 0; fr = $9 > 0 ? 1000 * $8 / $9 : 0
               print $1, $2, $3, ff, fr, $4, $5, ($11 > 0 ? $10 / $11 : 0), $12 }' "$rows.full" >"$rows"
        echo "The 80% load over arrival seeds over HTTP (part seeds-http: fcfs, then rtlm per seed, at 80% of the HTTP"
        echo "capacity; seed 7 is part2b's run). Response times on the client's clock; step time (the whole step, per"
        echo "step), queue time and longest wait from the server's /metrics after each run (bench/results/$name.metrics-*.txt):"
        echo
        echo "| arrival seed | mean s fcfs | mean s rtlm | change | norm. change | fcfs queue share | step ms fcfs/rtlm | misses fcfs/rtlm | rtlm wait max s (server) |"
        echo "|---|---|---|---|---|---|---|---|---|"
        awk '{ printf "| %s | %.2f | %.2f | %+.1f%% | %s | %.0f%% | %.2f/%.2f | %d/%d | %.2f |\n", $1, $2, $3, 100 * ($3 / $2 - 1),
               ($4 > 0 && $5 > 0 ? sprintf("%+.1f%%", 100 * (($3 / $5) / ($2 / $4) - 1)) : "-"), 100 * $8 / $2, $4, $5, $6, $7, $9 }' "$rows"
        read -r rm rlo rhi < <(awk '{ print 100 * ($3 / $2 - 1) }' "$rows" | stats)
        read -r rnm rnlo rnhi < <(awk '$4 > 0 && $5 > 0 { print 100 * (($3 / $5) / ($2 / $4) - 1) }' "$rows" | stats)
        read -r qm qlo qhi < <(awk '{ print -100 * $8 / $2 }' "$rows" | stats)
        awk -v rm="$rm" -v rr="$rlo..$rhi" -v rnm="$rnm" -v rnr="$rnlo..$rnhi" -v qm="$qm" -v qr="$qlo..$qhi" \
            '{ df += $6; dr += $7; if ($9 > wm) wm = $9; n++ }
             END { printf "| median (range) of %d | | | %s (%s) | %s (%s) | %s (%s) | | %d/%d in all | %.2f (max) |\n",
                   n, rm, rr, rnm, rnr, qm, qr, df, dr, wm }' "$rows"
        echo
    fi
}
[ -r "$csv" ] || { echo "no $csv: run part1 and part2 first" >&2; exit 1; }
read -r cap tok tpot mo ctok < <(calib)
{
    echo "# sched — scheduling policies on the same requests"
    echo
    cat "$out/$name.machine1" 2>/dev/null || true
    for m in 1b 2 2b 3 4 5 5b; do cat "$out/$name.machine$m" 2>/dev/null || true; done
    echo
    echo "Model: $preset synth F32 (Llama-2 vocabulary). Prompts and real response lengths from alpaca_cleaned_1000.jsonl"
    echo "(prompts cut to 128, outputs to 256 tokens, forced with ignore_eos), max_running $max_run, $(nproc) threads, seed 7."
    echo "Capacity, from a saturated run ($n_cal requests at t=0, fcfs): TPOT $tpot ms at a full batch of $max_run, so"
    echo "$ctok output tok/s = $cap req/s at the mean output of $mo tokens (that run's makespan throughput, with its"
    echo "prefill and drain: $tok tok/s). Loads below are fractions of $cap req/s. Deadline per request: 2 s + 3 x $tpot ms"
    echo "per output token. Aging bound $aging s (the hard wait bound of every policy but fcfs); late policy keep unless"
    echo "the scenario says demote. Over HTTP max_tokens is the cap (256) and the length is forced with bench_output_tokens."
    if [ -r "$hcal" ]; then
        read -r hcap htok htpot hmo hctok < <(calib "$hcal")
        echo "Over HTTP (client and server on the same 2 cores) the capacity is calibrated over HTTP the same way: TPOT"
        echo "$htpot ms at a full batch (client clock), $hctok tok/s = $hcap req/s (makespan: $htok tok/s); the HTTP rows run at"
        echo "80% of that, $(awk -v c="$hcap" 'BEGIN { printf "%.4f", 0.8 * c }') req/s."
    fi
    echo
    echo "| scenario | policy | done | tok/s | mean s | p50 s | p99 s | TTFT mean s | TTFT p99 s | queue max s | wait max s | deadline miss | paused (overdue) | preempt | pred/actual tok | p90 cover | sched us/step | sched % | fwd ms/step |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    # scheduler cost = scheduling phase + prediction work (t_predict_s), over steps and over
    # forward + scheduling time (sampling time is not in this CSV: a slight overstatement)
    csv_select "$csv" label policy finished requests out_tok_s e2e_mean_s e2e_p50_s e2e_p99_s ttft_mean_s \
        ttft_p99_s queue_max_s deadline_missed deadline_n preempted pred_mean_tok actual_mean_tok p90_coverage \
        steps t_schedule_s t_predict_s t_forward_s paused wait_max_s paused_overdue |
        awk '$1 !~ /^seed80/ { c = $19 + $20; us = $18 > 0 ? 1e6 * c / $18 : 0; pc = ($21 + $19) > 0 ? 100 * c / ($21 + $19) : 0
               printf "| %s | %s | %s/%s | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s/%s (%.1f%%) | %s (%s) | %s | %.0f/%.0f | %.0f%% | %.1f | %.3f | %.2f |\n",
               $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $23, $12, $13, ($13 > 0 ? 100 * $12 / $13 : 0), $22, $24, $14, $15, $16, 100 * $17, us, pc, ($18 > 0 ? 1000 * $21 / $18 : 0) }'
    echo
    echo "(queue max: submission to first admission; wait max: all the time a request spent waiting, queued,"
    echo "paused or preempted, in-process only; paused: pauses with the cache kept, for a shorter request or (in"
    echo "brackets) for one about to exceed the wait bound; preempt: recompute preemptions. HTTP rows: client clock,"
    echo "engine columns empty. fwd ms/step: forward time per step of that run — the machine's speed during it, since"
    echo "the same work was done in every run of a scenario; on this shared machine it varies by 10-20%.)"
    echo
    echo "rtlm (and oracle, the upper bound with true lengths) against fcfs per scenario (targets at >= 80% load: mean"
    echo "response time -30% or better, at most half the deadline misses, nobody waiting longer than the aging bound,"
    echo "scheduler < 1% of step time):"
    echo
    echo "| scenario | mean s fcfs | mean s rtlm | change | mean s oracle | change | misses fcfs | misses rtlm | ratio | rtlm wait max s (bound $aging) | rtlm sched % |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label policy e2e_mean_s deadline_missed wait_max_s t_schedule_s t_predict_s t_forward_s |
        awk '$1 ~ /^seed80/ { next } $2 == "fcfs" { fm[$1] = $3; fd[$1] = $4; order[++n] = $1 }
             $2 == "oracle" { om[$1] = $3 }
             $2 == "rtlm" { rm[$1] = $3; rd[$1] = $4; rq[$1] = $5; rs[$1] = ($8 + $6) > 0 ? 100 * ($6 + $7) / ($8 + $6) : 0 }
             END { for (i = 1; i <= n; i++) { s = order[i]; if (!(s in rm)) continue;
                   printf "| %s | %.2f | %.2f | %+.1f%% | %s | %s | %d | %d | %s | %.2f | %.3f |\n", s, fm[s], rm[s],
                          100 * (rm[s] - fm[s]) / fm[s], (s in om ? sprintf("%.2f", om[s]) : "-"),
                          (s in om ? sprintf("%+.1f%%", 100 * (om[s] - fm[s]) / fm[s]) : "-"),
                          fd[s], rd[s], (fd[s] > 0 ? sprintf("%.2f", rd[s] / fd[s]) : "-"), rq[s], rs[s] } }'
    echo
    echo "Preemption on and off (part3: the same 80% load with --preempt-ratio 0, admission order only):"
    echo
    echo "| policy | mean s preemptive | mean s admission only | p50 s preemptive | p50 s admission only | pauses |"
    echo "|---|---|---|---|---|---|"
    csv_select "$csv" label policy e2e_mean_s e2e_p50_s paused |
        awk '$1 == "poisson-0.80" { m[$2] = $3; p[$2] = $4; pz[$2] = $5 }
             $1 == "poisson-0.80-nopreempt" { nm[$2] = $3; np[$2] = $4; o[++n] = $2 }
             END { for (i = 1; i <= n; i++) { q = o[i]; printf "| %s | %.2f | %.2f | %.2f | %.2f | %s |\n", q, m[q], nm[q], p[q], np[q], pz[q] } }'
    echo
    seed_tables
    echo "The late policy at 95% load (part1b: keep, the default; late: --late-policy demote):"
    echo
    echo "| policy | mean s keep | mean s demote | p99 s keep | p99 s demote | misses keep | misses demote | wait max s keep | wait max s demote |"
    echo "|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label policy e2e_mean_s e2e_p99_s deadline_missed wait_max_s |
        awk '$1 == "poisson-0.95" { m[$2] = $3; p[$2] = $4; d[$2] = $5; w[$2] = $6 }
             $1 == "poisson-0.95-demote" { nm[$2] = $3; np[$2] = $4; nd[$2] = $5; nw[$2] = $6; o[++n] = $2 }
             END { for (i = 1; i <= n; i++) { q = o[i]; printf "| %s | %.2f | %.2f | %.2f | %.2f | %d | %d | %.2f | %.2f |\n", q, m[q], nm[q], p[q], np[q], d[q], nd[q], w[q], nw[q] } }'
    echo
    echo "Over HTTP the client cannot see the engine; the server's /metrics after each run (bench/results/$name.metrics-P.txt):"
    echo
    echo "| policy | steps | scheduler us/step | scheduler % of step time | predicted/actual tokens (mean) | p90 covered | deadlines missed (server clock) | longest wait s (server) |"
    echo "|---|---|---|---|---|---|---|---|"
    for p in $http_policies; do
        f=$out/$name.metrics-$p.txt
        [ -r "$f" ] || continue
        awk -v p=$p -F'[{} ]' '$1 == "weft_sched_steps_total" { n = $NF } $1 == "weft_sched_time_seconds_total" { st = $NF }
             $1 == "weft_step_time_seconds_total" { tt = $NF } $1 == "weft_predicted_requests_total" { pn = $NF }
             $1 == "weft_predicted_tokens_total" { pt = $NF } $1 == "weft_actual_tokens_total" { at = $NF }
             $1 == "weft_prediction_p90_covered_total" { cv = $NF } $1 == "weft_deadline_requests_total" { dn = $NF }
             $1 == "weft_deadline_missed_total" { dm = $NF } $1 == "weft_sched_wait_seconds_max" { wm = $NF }
             END { printf "| %s | %d | %.1f | %.3f | %.0f/%.0f | %.0f%% | %d/%d | %.2f |\n", p, n, 1e6 * st / n, 100 * st / tt,
                   pt / pn, at / pn, 100 * cv / pn, dm, dn, wm }' "$f"
    done
} >"$md"
# plot: mean and p99 response time per policy and scenario
gnuplot_term
if command -v gnuplot >/dev/null; then
    csv_select "$csv" label policy e2e_mean_s e2e_p99_s | awk '$1 !~ /^kv/ && $1 !~ /^seed80/' >"$scratch/plot.dat"
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
        echo "set ylabel 'mean end-to-end s'; set key outside right; set yrange [0:*]; set xtics rotate by -25 font ',8'; set bmargin 6"
        echo "plot for [c=2:7] '$scratch/wide.dat' using c:xtic(1) title word('fcfs priority spf laxity rtlm oracle', c-1)"
    } >"$scratch/plot.gp"
    gnuplot "$scratch/plot.gp" && echo "plot: $out/$name.$plot_ext" >&2
fi
cat "$md"
