#!/usr/bin/env bash
# sched_sim.sh — the scheduling benchmark in VIRTUAL time (docs/scheduling.md "Simulator"):
# `weft bench engine --virtual-clock` runs the real engine and scheduler on a tiny synthetic
# model with tiny110m's Llama-2 vocabulary (so prompts tokenize identically), its time taken from
# the step-time model calibrated on the real tiny110m runs (bench/sched_stepmodel.sh ->
# bench/results/sched_stepmodel.params). The runs are deterministic: no quiet machine needed
# (no bench/quiet.sh needed; run it at low priority, e.g. nice -n 19, on a shared machine), and the numbers are virtual-time.
# Workload as bench/sched.sh's: alpaca_cleaned_1000 prompts with their real output lengths (cut to
# 128/256, forced), max_running 4, aging bound 20 s, 3 priorities, deadline 2 s + 3 x the
# saturated TPOT per output token. Capacity: sched.sh's definition (max_running / TPOT of a
# saturated fcfs run of the same requests at t=0, over their mean output), in virtual time.
# Groups (each a label prefix of the rows in bench/results/sched_sim.csv):
#   bench-150  the benchmark's 150 requests (--seed 7) at arrival seeds 1..SIM_SEEDS (default 20)
#   bench-600  600 requests (--seed 7) at arrival seeds 1..SIM_SEEDS_600 (default 10)
#   dev-150    DEVELOPMENT workloads: --seed 101..(100+SIM_SEEDS) (other requests and arrivals),
#              each with its own capacity; policy defaults may be tuned on these only
#              (docs/scheduling.md "The tuning rule"), and they are reported apart
#   azure-150  the Azure conversation trace's first 150 arrival times (as sched.sh part2), scaled
#              to the load; prompts and lengths from the data set
# at 50, 80 and 95% of capacity; policies fcfs, priority, spf, laxity, rtlm, oracle. Extra rtlm
# variants: RTLM_VARIANTS="--rtlm-rank p90;--rtlm-rank gittins" runs rtlm once more per
# ';'-separated string, appended to its command line (rows: policy rtlm~1, rtlm~2, ...).
# Usage: bash bench/sched_sim.sh [run] [--quick]   (then the report)
#        bash bench/sched_sim.sh report
#        env: SIM_SEEDS, SIM_SEEDS_600, SIM_GROUPS ("bench-150 bench-600 dev-150 azure-150"),
#             SIM_LOADS ("0.50 0.80 0.95"), SIM_JOBS (parallel runs, default nproc),
#             STEP_PARAMS (default bench/results/sched_stepmodel.params), RTLM_VARIANTS,
#             VARIANT_POLICY (the policy the variants run, default rtlm; e.g. oracle: rows oracle~K),
#             SIM_NAME (result files bench/results/SIM_NAME.*, default sched_sim),
#             SIM_MAX_RUNNING (the running batch's bound, default 4: the benchmark's; other values
#             show how the room for any order grows as the batch shrinks, bench/sched_sim_mr.sh)
source "$(dirname "$0")/engine_lib.sh"
part=run quick=0
for a in "$@"; do
    case $a in
    run | report) part=$a ;;
    --quick) quick=1 ;;
    *) echo "usage: bash bench/sched_sim.sh [run|report] [--quick]" >&2; exit 2 ;;
    esac
done
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
trace=$SHARED/data/traces/AzureLLMInferenceTrace_conv.csv
vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] && [ -r "$trace" ] && [ -r "$vocab" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
params=${STEP_PARAMS:-$results/sched_stepmodel.params}
[ -r "$params" ] || { echo "no step model $params: run bench/sched_stepmodel.sh first" >&2; exit 1; }
seeds=${SIM_SEEDS:-20} seeds600=${SIM_SEEDS_600:-10}
groups=${SIM_GROUPS:-bench-150 bench-600 dev-150 azure-150}
loads=${SIM_LOADS:-0.50 0.80 0.95}
jobs=${SIM_JOBS:-$(nproc)}
policies=fcfs,priority,spf,laxity,rtlm,oracle
max_run=${SIM_MAX_RUNNING:-4} aging=20 out=$results
if [ $quick = 1 ]; then
    seeds=2 seeds600=1 loads="0.80" out=${TMPDIR:-/tmp}/weft-sched-sim-quick; mkdir -p "$out"
fi
name=${SIM_NAME:-sched_sim} # SIM_NAME: other result files (e.g. a development evaluation)
csv=$out/$name.csv md=$out/$name.md
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running $max_run --threads 1 --aging-s $aging --priorities 3 -q
        --virtual-clock "$params")
IFS=';' read -r -a variants <<<"${RTLM_VARIANTS:-}"

# the simulator's model: 1 layer of test-gqa's shape (dim 64) with the Llama-2 vocabulary
sim=$scratch/sim.gguf
"$WEFT" model synth --preset test-gqa --layers 1 --ctx 1024 --vocab-from "$vocab" --out "$sim" >/dev/null

calib() { # calib FILE: capacity_req_s tpot_ms (sched.sh's definition)
    csv_select "$1" output_tokens requests tpot_mean_ms |
        awk -v m=$max_run 'NR == 1 { printf "%.6f %.4f\n", m * 1000 / $3 / ($1 / $2), $3 }'
}
# calibrate TAG N SEED: the saturated virtual run (fcfs, t=0) of N requests of --seed SEED
calibrate() {
    "$WEFT" bench engine --model "$sim" -n "$2" --seed "$3" "${common[@]}" --label "calib-$1" \
        --csv "$scratch/cal-$1.csv" >/dev/null || { echo "calibration $1 failed" >&2; exit 1; }
    cp "$scratch/cal-$1.csv" "$out/$name.calib-$1.csv"
}
# job LABEL N SEED WORKLOAD_ARGS...: one line of the job list per policy set (all six, then
# each rtlm variant), run later in parallel
job() {
    local label=$1 n=$2 seed=$3 tpot
    shift 3
    tpot=$(calib "$scratch/cal-$cal_tag.csv" | awk '{ print $2 }')
    local dl="--deadline-ms 2000 --deadline-per-token-ms $(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')"
    echo "$label|-n $n --seed $seed $* $dl --policy $policies"
    local k=0
    for v in "${variants[@]}"; do
        k=$((k + 1))
        [ -n "${v// /}" ] && echo "$label~$k|-n $n --seed $seed $* $dl --policy ${VARIANT_POLICY:-rtlm} $v"
    done
}

if [ "$part" = run ]; then
    t_start=$(date +%s)
    : >"$scratch/jobs"
    for g in $groups; do
        case $g in
        bench-150 | bench-600 | azure-150)
            n=${g#*-}; cal_tag=$g; [ $g = azure-150 ] && cal_tag=bench-150
            [ -r "$scratch/cal-$cal_tag.csv" ] || calibrate $cal_tag "$n" 7
            read -r cap tpot < <(calib "$scratch/cal-$cal_tag.csv")
            for l in $loads; do
                rate=$(awk -v c="$cap" -v l="$l" 'BEGIN { printf "%.6f", c * l }')
                if [ $g = azure-150 ]; then
                    tscale=$(awk -F, -v n=$n -v r="$rate" 'NR == 2 { split($1, a, " "); split(a[2], t, ":"); t0 = t[1]*3600 + t[2]*60 + t[3] }
                        NR == n + 1 { split($1, a, " "); split(a[2], t, ":"); t1 = t[1]*3600 + t[2]*60 + t[3] }
                        END { gap = (t1 - t0) / (n - 1); printf "%.6f", (1 / r) / gap }' "$trace")
                    job "$g-$l-0" "$n" 7 --trace "$trace" --trace-scale "$tscale" >>"$scratch/jobs"
                    continue
                fi
                ns=$seeds; [ $g = bench-600 ] && ns=$seeds600
                for s in $(seq 1 "$ns"); do
                    job "$g-$l-$s" "$n" 7 --rate "$rate" --arrival-seed "$s" >>"$scratch/jobs"
                done
            done
            ;;
        dev-150)
            for s in $(seq 101 $((100 + seeds))); do
                cal_tag=dev-150-$s
                calibrate $cal_tag 150 "$s"
                read -r cap tpot < <(calib "$scratch/cal-$cal_tag.csv")
                for l in $loads; do
                    rate=$(awk -v c="$cap" -v l="$l" 'BEGIN { printf "%.6f", c * l }')
                    job "$g-$l-$s" 150 "$s" --rate "$rate" >>"$scratch/jobs"
                done
            done
            ;;
        *) echo "unknown group $g" >&2; exit 2 ;;
        esac
    done
    echo "== $(wc -l <"$scratch/jobs") virtual runs, $jobs at a time" >&2
    mkdir -p "$scratch/rows"
    export WEFT sim scratch
    # shellcheck disable=SC2016
    tr '\n' '\0' <"$scratch/jobs" | xargs -0 -P "$jobs" -I{} bash -c '
        label=${1%%|*}; args=${1#*|}
        # shellcheck disable=SC2086
        "$WEFT" bench engine --model "$sim" $args '"${common[*]@Q}"' --label "$label" \
            --sched-csv "$scratch/rows/$label.csv" >/dev/null 2>"$scratch/rows/$label.err" ||
            { echo "run $label failed: $(cat "$scratch/rows/$label.err")" >&2; exit 255; }' _ {} ||
        { echo "sched_sim.sh: a run failed" >&2; exit 1; }
    # one CSV, rows in a fixed order; a variant's rows get policy rtlm~K
    first=$(find "$scratch/rows" -name '*.csv' | sort | head -1)
    { head -1 "$first"
      for f in $(find "$scratch/rows" -name '*.csv' | sort); do
          awk -F, -v OFS=, 'NR > 1 { if ($1 ~ /~[0-9]+$/) { k = $1; sub(/.*~/, "", k); sub(/~[0-9]+$/, "", $1); $2 = $2 "~" k } print }' "$f"
      done; } >"$csv"
    { machine_line; load_line
      echo "max_running: $max_run"
      echo "virtual runs: $(wc -l <"$scratch/jobs") in $(( $(date +%s) - t_start )) s wall, $jobs at a time"
      echo "step model: $params"
      for k in "${!variants[@]}"; do echo "variant ${VARIANT_POLICY:-rtlm}~$((k + 1)): ${variants[$k]}"; done
    } >"$out/$name.machine"
fi

# ---- report ----
[ -r "$csv" ] || { echo "no $csv: run first" >&2; exit 1; }
# rows: group load seed policy mean p99 ttft_mean misses deadlines wait_max queue_mean
csv_select "$csv" label policy e2e_mean_s e2e_p99_s ttft_mean_s deadline_missed deadline_n wait_max_s queue_mean_s finished requests |
    awk '{ n = split($1, a, "-"); g = a[1] "-" a[2]; print g, a[3], a[4], $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' |
    awk -v order="bench-150 bench-600 dev-150 azure-150" 'BEGIN { n = split(order, o, " "); for (i = 1; i <= n; i++) r[o[i]] = i }
        { print (($1 in r) ? r[$1] : 9), $2, NR, $0 }' | sort -k1,1n -k2,2 -k3,3n | cut -d" " -f4- >"$scratch/rows.txt"
{
    echo "# sched_sim — scheduling policies in VIRTUAL time (bench/sched_sim.sh)"
    echo
    echo "Every time below is virtual: modelled by the step-time model $(basename "$params") (fitted on real tiny110m"
    echo "runs, bench/results/sched_stepmodel.md), not measured; the engine, scheduler, predictor and a real forward pass"
    echo "(of a tiny model with the same vocabulary) ran, so the decisions are the real code's. Deterministic: the"
    echo "same command gives the same numbers on any machine load. Forward passes ran on:"
    echo
    sed 's/^/    /' "$out/$name.machine" 2>/dev/null || true
    echo
    echo "Step model:"
    echo
    grep -v '^#' "$params" | sed 's/^/    /'
    echo
    echo "Capacities (virtual; saturated fcfs run at t=0; req/s and TPOT ms at a full batch):"
    echo
    for f in "$out/$name".calib-bench-*.csv; do
        [ -r "$f" ] || continue
        t=${f##*calib-}; t=${t%.csv}
        echo "    $t: $(calib "$f")"
    done
    dc=$(for f in "$out/$name".calib-dev-*.csv; do if [ -r "$f" ]; then calib "$f"; fi; done | sort -g | awk '{ v[++n] = $1 } END { if (n) printf "%.4f..%.4f req/s over %d seeds", v[1], v[n], n }')
    [ -n "$dc" ] && echo "    dev-150: $dc"
    echo "    (azure-150 uses bench-150's; each development seed has its own requests, hence its own capacity)"
    echo
    echo "Per group, load and policy, over seeds: the change of the mean response time against fcfs on the"
    echo "same seed (median, interquartile range, range), the medians of the mean and p99 response and"
    echo "of the mean TTFT, deadline misses summed over seeds, the longest wait of any request, and fcfs's"
    echo "queue share (mean queue time / mean response time: the most any order could save; median and range)."
    echo
    awk '
    function q(v, n, p,   h, lo) { h = (n - 1) * p; lo = int(h); return lo + 1 < n ? v[lo] + (h - lo) * (v[lo + 1] - v[lo]) : v[lo] }
    function sortv(v, n,   i, j, t) { for (i = 1; i < n; i++) { t = v[i]; for (j = i - 1; j >= 0 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t } }
    { key = $1 SUBSEP $2; if (!(key in seen)) { seen[key] = 1; ko[++nk] = key }
      if (!(($1, $2, $4) in pseen)) { pseen[$1, $2, $4] = 1; po[key, ++np[key]] = $4 }
      m[$1, $2, $3, $4] = $5; p99[$1, $2, $3, $4] = $6; tt[$1, $2, $3, $4] = $7; mi[$1, $2, $3, $4] = $8
      dn[$1, $2, $3, $4] = $9; wm[$1, $2, $3, $4] = $10; qm[$1, $2, $3, $4] = $11; fin[$1, $2, $3, $4] = $12 " / " $13
      if (!(($1, $2, $3) in sseen)) { sseen[$1, $2, $3] = 1; so[key, ++ns[key]] = $3 } }
    END {
      for (k = 1; k <= nk; k++) {
        split(ko[k], gl, SUBSEP); g = gl[1]; l = gl[2]
        printf "### %s at %.0f%% load (%d seeds)\n\n", g, 100 * l, ns[ko[k]]
        print "| policy | change vs fcfs: median | IQR | range | mean s (median) | p99 s (median) | TTFT mean s (median) | deadline misses | longest wait s |"
        print "|---|---:|---|---|---:|---:|---:|---:|---:|"
        for (i = 1; i <= np[ko[k]]; i++) {
          pol = po[ko[k], i]; nc = 0; nm = 0; miss = 0; dl = 0; w = 0
          delete c; delete mv; delete pv; delete tv
          for (j = 1; j <= ns[ko[k]]; j++) {
            s = so[ko[k], j]
            if (!((g, l, s, pol) in m)) continue
            mv[nm] = m[g, l, s, pol]; pv[nm] = p99[g, l, s, pol]; tv[nm] = tt[g, l, s, pol]; nm++
            miss += mi[g, l, s, pol]; dl += dn[g, l, s, pol]; if (wm[g, l, s, pol] > w) w = wm[g, l, s, pol]
            if ((g, l, s, "fcfs") in m && m[g, l, s, "fcfs"] > 0) c[nc++] = 100 * (m[g, l, s, pol] / m[g, l, s, "fcfs"] - 1)
          }
          if (!nm) continue
          sortv(c, nc); sortv(mv, nm); sortv(pv, nm); sortv(tv, nm)
          if (pol == "fcfs") printf "| fcfs | (reference) | | | %.2f | %.2f | %.2f | %d/%d | %.2f |\n", q(mv, nm, 0.5), q(pv, nm, 0.5), q(tv, nm, 0.5), miss, dl, w
          else printf "| %s | %+.1f%% | %+.1f..%+.1f%% | %+.1f..%+.1f%% | %.2f | %.2f | %.2f | %d/%d | %.2f |\n", pol, q(c, nc, 0.5), q(c, nc, 0.25), q(c, nc, 0.75), c[0], c[nc - 1], q(mv, nm, 0.5), q(pv, nm, 0.5), q(tv, nm, 0.5), miss, dl, w
        }
        nq = 0; delete qs
        for (j = 1; j <= ns[ko[k]]; j++) { s = so[ko[k], j]; if ((g, l, s, "fcfs") in m && m[g, l, s, "fcfs"] > 0) qs[nq++] = 100 * qm[g, l, s, "fcfs"] / m[g, l, s, "fcfs"] }
        if (nq) { sortv(qs, nq); printf "\nfcfs queue share: median %.0f%% (range %.0f..%.0f%%)\n", q(qs, nq, 0.5), qs[0], qs[nq - 1] }
        printf "\n"
      }
    }' "$scratch/rows.txt"
    echo "Reproduce: bash bench/sched_sim.sh (SIM_SEEDS=$seeds SIM_SEEDS_600=$seeds600${SIM_GROUPS:+ SIM_GROUPS=\"$SIM_GROUPS\"}${SIM_LOADS:+ SIM_LOADS=\"$SIM_LOADS\"}${SIM_NAME:+ SIM_NAME=$SIM_NAME}${SIM_MAX_RUNNING:+ SIM_MAX_RUNNING=$SIM_MAX_RUNNING}${RTLM_VARIANTS:+ RTLM_VARIANTS=\"$RTLM_VARIANTS\"}${VARIANT_POLICY:+ VARIANT_POLICY=$VARIANT_POLICY});"
    echo "the step model: bash bench/quiet.sh bash bench/sched_stepmodel.sh."
} >"$md"
cat "$md"
