#!/usr/bin/env bash
# sched_sim_validate.sh — the virtual clock against real runs (docs/scheduling.md "Simulator",
# "Validation"): sched.sh's configuration (tiny110m F32, 150 requests of alpaca_cleaned_1000,
# max_running 4, seed 7) at 80% of the CURRENT capacity (bench/sched_stepmodel.sh's saturated
# run, bench/results/sched_stepmodel.calib.csv), arrival seeds 7 and 1, fcfs, rtlm and oracle:
#   real SEED...   real runs, one invocation per seed (about 4 minutes each: run each seed under
#                  its own bench/quiet.sh hold), rows into bench/results/sched_sim_validation.real.csv
#   report         the same workloads in virtual time (seconds, deterministic), three times: at the
#                  real runs' request rate, at 80% of the modelled capacity, and speed-matched (the
#                  real rate, the model scaled to each real run's measured step time); then the comparison
#                  (mean, p50, p99 response, TTFT, fcfs queue share; virtual / real) in
#                  bench/results/sched_sim_validation.md
# Usage: bash bench/quiet.sh bash bench/sched_sim_validate.sh real 7
#        bash bench/quiet.sh bash bench/sched_sim_validate.sh real 1
#        bash bench/sched_sim_validate.sh report
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
vocab=$SHARED/models/tokenizers/tokenizer_llama2_32000.bin
[ -r "$pairs" ] && [ -r "$vocab" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
cal=$results/sched_stepmodel.calib.csv
params=${STEP_PARAMS:-$results/sched_stepmodel.params}
[ -r "$cal" ] && [ -r "$params" ] || { echo "run bench/sched_stepmodel.sh first" >&2; exit 1; }
name=sched_sim_validation
real=$results/$name.real.csv
n=150 max_run=4 load=0.80
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running $max_run --threads "$(nproc)" --seed 7 --aging-s 20 --priorities 3 -q
        --policy fcfs,rtlm,oracle)
calib() { # FILE: capacity_req_s tpot_ms
    csv_select "$1" output_tokens requests tpot_mean_ms |
        awk -v m=$max_run 'NR == 1 { printf "%.6f %.4f\n", m * 1000 / $3 / ($1 / $2), $3 }'
}
dl_args() { echo "--deadline-ms 2000 --deadline-per-token-ms $(awk -v t="$1" 'BEGIN { printf "%.2f", 3 * t }')"; }
read -r cap tpot < <(calib "$cal")
rate=$(awk -v c="$cap" -v l=$load 'BEGIN { printf "%.4f", c * l }')

if [ "$part" = real ]; then
    shift
    [ $# -gt 0 ] || { echo "usage: ... real SEED..." >&2; exit 2; }
    model=$scratch/model.gguf
    synth_model tiny110m f32 "$model"
    for s in "$@"; do
        if [ -r "$real" ]; then
            awk -F, -v l="real-$s" 'NR == 1 || $1 != l' "$real" >"$scratch/keep" && cp "$scratch/keep" "$real"
        fi
        echo "== real: arrival seed $s, $rate req/s (80% of $cap), fcfs,rtlm,oracle" >&2
        # shellcheck disable=SC2046
        "$WEFT" bench engine --model "$model" -n $n --rate "$rate" --arrival-seed "$s" "${common[@]}" \
            $(dl_args "$tpot") --label "real-$s" --sched-csv "$real" >/dev/null
        { echo "real-$s: $(machine_line)"; load_line; } >>"$results/$name.machine"
    done
    exit 0
fi

[ -r "$real" ] || { echo "no $real: run the real part first" >&2; exit 1; }
sim=$scratch/sim.gguf
"$WEFT" model synth --preset test-gqa --layers 1 --ctx 1024 --vocab-from "$vocab" --out "$sim" >/dev/null
vc=(--model "$sim" --virtual-clock "$params")
# the modelled capacity: the saturated run in virtual time
"$WEFT" bench engine "${vc[@]}" -n $n --prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 \
    --max-output 256 --max-running $max_run --threads 1 --seed 7 -q --label vcal --csv "$scratch/vcal.csv" >/dev/null
read -r vcap vtpot < <(calib "$scratch/vcal.csv")
vrate=$(awk -v c="$vcap" -v l=$load 'BEGIN { printf "%.4f", c * l }')
vcsv=$scratch/virtual.csv
seeds=$(csv_select "$real" label | sed -n 's/^real-//p' | sort -un)
for s in $seeds; do
    # shellcheck disable=SC2046
    "$WEFT" bench engine "${vc[@]}" -n $n --rate "$rate" --arrival-seed "$s" "${common[@]}" --threads 1 \
        $(dl_args "$tpot") --label "same-rate-$s" --sched-csv "$vcsv" >/dev/null
    # shellcheck disable=SC2046
    "$WEFT" bench engine "${vc[@]}" -n $n --rate "$vrate" --arrival-seed "$s" "${common[@]}" --threads 1 \
        $(dl_args "$vtpot") --label "same-load-$s" --sched-csv "$vcsv" >/dev/null
done
# speed-matched: each real run again in virtual time with the step model scaled by that run's
# forward ms/step over the same-rate virtual run's modelled ms/step (the machine's speed in that
# run; the real figure lacks the ~1% of a step spent sampling and scheduling)
csv_select "$real" label policy steps t_forward_s | sed 's/^real-//' >"$scratch/rspeed"
csv_select "$vcsv" label policy steps t_forward_s | sed -n 's/^same-rate-//p' >"$scratch/vspeed"
while read -r s p f; do
    awk -v f="$f" '$1 == "stepm" || /^#/ { print; next } { printf "%s %.9g\n", $1, $2 * f }' "$params" >"$scratch/speed.params"
    # shellcheck disable=SC2046
    "$WEFT" bench engine --model "$sim" --virtual-clock "$scratch/speed.params" -n $n --rate "$rate" --arrival-seed "$s" \
        "${common[@]}" --threads 1 --policy "$p" $(dl_args "$tpot") --label "speed-matched-$s" --sched-csv "$vcsv" >/dev/null
done < <(awk 'NR == FNR { r[$1, $2] = $4 / $3; next } (($1, $2) in r) { printf "%s %s %.6f\n", $1, $2, r[$1, $2] / ($4 / $3) }' "$scratch/rspeed" "$scratch/vspeed")
cp "$vcsv" "$results/$name.virtual.csv"
cols="label policy e2e_mean_s e2e_p50_s e2e_p99_s ttft_mean_s queue_mean_s deadline_missed wait_max_s steps t_forward_s"
{ csv_select "$real" $cols; csv_select "$vcsv" $cols; } >"$scratch/all"
{
    echo "# The virtual clock against real runs (bench/sched_sim_validate.sh)"
    echo
    echo "sched.sh's configuration (tiny110m F32, $n requests, max_running $max_run, seed 7), Poisson arrivals at"
    echo "80% of the capacity measured now (bench/results/sched_stepmodel.calib.csv: $cap req/s, TPOT $tpot ms"
    echo "at a full batch; rate $rate req/s). Real: wall clock, the shared 2-core VM, one bench/quiet.sh hold per"
    echo "seed. Virtual: \`weft bench engine --virtual-clock $(basename "$params")\` on the simulator's model,"
    echo "(a) same-rate: the real runs' rate $rate req/s; (b) same-load: 80% of the modelled capacity"
    echo "($vcap req/s, TPOT $vtpot ms: rate $vrate req/s); (c) speed-matched: the real rate, the step model"
    echo "scaled by each real run's forward ms/step over (a)'s modelled ms/step, i.e. the machine's speed in that run."
    echo
    sed 's/^/    /' "$results/$name.machine" 2>/dev/null || true
    echo
    echo "| seed | policy | run | mean s | p50 s | p99 s | TTFT mean s | queue share | misses | wait max s | ms/step (fwd) |"
    echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '{ split($1, a, "-"); s = a[length(a)]; kind = $1; sub("-" s "$", "", kind)
           printf "| %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.0f%% | %d | %.2f | %.2f |\n", s, $2, kind, $3, $4, $5, $6,
                  100 * $7 / $3, $8, $9, ($10 > 0 ? 1000 * $11 / $10 : 0) }' "$scratch/all" | sort -t'|' -k2,2n -k3,3 -k4,4
    echo
    echo "Virtual / real per seed and policy (1.00 = the same), and each run's change of the mean against fcfs"
    echo "of the same seed and kind:"
    echo
    echo "| seed | policy | mean same-rate | mean same-load | mean speed-matched | p99 same-rate | p99 same-load | p99 speed-matched | TTFT same-rate | change real | change same-rate | change same-load | change speed-matched |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk '{ split($1, a, "-"); s = a[length(a)]; kind = $1; sub("-" s "$", "", kind)
           m[kind, s, $2] = $3; p[kind, s, $2] = $5; t[kind, s, $2] = $6; if (!((s, $2) in seen)) { seen[s, $2] = 1; o[++n] = s SUBSEP $2 } }
         function r(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "-" }
         function c(k, s, q) { return ((k, s, "fcfs") in m) ? sprintf("%+.1f%%", 100 * (m[k, s, q] / m[k, s, "fcfs"] - 1)) : "-" }
         END { for (i = 1; i <= n; i++) { split(o[i], x, SUBSEP); s = x[1]; q = x[2]
               printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s, q, r(m["same-rate", s, q], m["real", s, q]),
                      r(m["same-load", s, q], m["real", s, q]), r(m["speed-matched", s, q], m["real", s, q]),
                      r(p["same-rate", s, q], p["real", s, q]), r(p["same-load", s, q], p["real", s, q]), r(p["speed-matched", s, q], p["real", s, q]),
                      r(t["same-rate", s, q], t["real", s, q]), c("real", s, q), c("same-rate", s, q), c("same-load", s, q), c("speed-matched", s, q) } }' "$scratch/all"
    echo
    echo "Reproduce: bash bench/quiet.sh bash bench/sched_sim_validate.sh real 7 (and real 1), then"
    echo "bash bench/sched_sim_validate.sh report."
} >"$results/$name.md"
cat "$results/$name.md"
