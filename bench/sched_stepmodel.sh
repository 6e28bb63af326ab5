#!/usr/bin/env bash
# sched_stepmodel.sh — calibrates the virtual clock's step-time model (docs/scheduling.md
# "Simulator") on the real scheduling benchmark's configuration (bench/sched.sh: synthetic
# tiny110m F32 with the Llama-2 vocabulary, alpaca_cleaned_1000 prompts with forced real output
# lengths cut to 128/256 tokens, SCHED_N=150 requests, max_running 4, seed 7): a saturated run of
# the requests at t=0 (fcfs; it is also the current capacity, written as
# sched_stepmodel.calib.csv in sched.sh's calib format), then Poisson arrivals at 80% and 95% of
# that capacity, fcfs and rtlm, every run with --sched-trace; then `weft bench stepfit` fits the
# step lines of all five runs and writes
#   bench/results/sched_stepmodel.params    the model (for `weft bench engine --virtual-clock`)
#   bench/results/sched_stepmodel.md        the fit: median |error| per step, per step shape, and
#                                           per run the modelled vs measured total step time
#   bench/results/sched_stepmodel.trace.gz  the traces (to refit with other terms: --fit-only)
#   bench/results/sched_stepmodel.real.csv  the loaded runs' scheduling rows (report_sched_csv)
# Usage: bash bench/quiet.sh bash bench/sched_stepmodel.sh     (about 5 minutes on the 2-core VM)
#        bash bench/sched_stepmodel.sh --fit-only [--terms LIST]   (refit the stored traces)
#        bash bench/sched_stepmodel.sh --quick    (a smoke run: tiny15m, 16 requests, into $TMPDIR)
source "$(dirname "$0")/engine_lib.sh"
fit_only=0 quick=0 terms=const,seqs,tokens,prefill,kv
while [ $# -gt 0 ]; do
    case $1 in
    --fit-only) fit_only=1 ;;
    --quick) quick=1 ;;
    --terms) terms=$2; shift ;;
    *) echo "usage: bash bench/sched_stepmodel.sh [--fit-only] [--terms LIST] [--quick]" >&2; exit 2 ;;
    esac
    shift
done
pairs=$SHARED/data/pairs/alpaca_cleaned_1000.jsonl
[ -r "$pairs" ] || { echo "SKIP (loud): ../shared data not found"; exit 0; }
preset=tiny110m n=${SCHED_N:-150} max_run=4 out=$results
if [ $quick = 1 ]; then preset=tiny15m n=16 out=${TMPDIR:-/tmp}/weft-stepmodel-quick; mkdir -p "$out"; fi
name=sched_stepmodel
cal=$out/$name.calib.csv
tgz=$out/$name.trace.gz
common=(--prompts-from "$pairs" --lengths-from "$pairs" --max-prompt 128 --max-output 256
        --max-running $max_run --threads "$(nproc)" --seed 7 --aging-s 20 --priorities 3 -q)
# capacity as in sched.sh: max_running / TPOT of the saturated run over its mean output
calib() {
    csv_select "$cal" out_tok_s output_tokens requests tpot_mean_ms |
        awk -v m=$max_run 'NR == 1 { mo = $2 / $3; ct = m * 1000 / $4
                             printf "%.4f %.2f %.3f %.1f %.1f\n", ct / mo, $1, $4, mo, ct }'
}

if [ $fit_only = 0 ]; then
    model=$scratch/model.gguf
    synth_model $preset f32 "$model"
    echo "== saturated: $n requests at t=0, fcfs" >&2
    "$WEFT" bench engine --model "$model" -n $n "${common[@]}" --label calibration --csv "$cal" \
        --sched-trace "$scratch/sat.trace" >/dev/null
    read -r cap tok tpot mo ctok < <(calib)
    echo "== capacity $cap req/s ($ctok tok/s = $max_run / TPOT $tpot ms; mean output $mo)" >&2
    dl="--deadline-ms 2000 --deadline-per-token-ms $(awk -v t="$tpot" 'BEGIN { printf "%.2f", 3 * t }')"
    rm -f "$out/$name.real.csv"
    for load in 0.80 0.95; do
        rate=$(awk -v c="$cap" -v l=$load 'BEGIN { printf "%.4f", c * l }')
        echo "== Poisson at $load x capacity = $rate req/s, fcfs,rtlm" >&2
        # shellcheck disable=SC2086
        "$WEFT" bench engine --model "$model" -n $n --rate "$rate" "${common[@]}" --policy fcfs,rtlm \
            $dl --label "poisson-$load" --sched-csv "$out/$name.real.csv" \
            --sched-trace "$scratch/p$load.trace" >/dev/null
    done
    cat "$scratch/sat.trace" "$scratch/p0.80.trace" "$scratch/p0.95.trace" | gzip -9 >"$tgz"
    { machine_line; load_line; } >"$out/$name.machine"
fi
[ -r "$tgz" ] || { echo "no $tgz: run without --fit-only first" >&2; exit 1; }
gzip -dc "$tgz" >"$scratch/traces"
"$WEFT" bench stepfit --trace "$scratch/traces" --terms "$terms" --out "$out/$name.params" \
    --report "$scratch/fit.md"
read -r cap tok tpot mo ctok < <(calib)
{
    echo "# Step-time model of the virtual clock (bench/sched_stepmodel.sh)"
    echo
    echo "Real runs of sched.sh's configuration ($preset F32, $n requests, max_running $max_run, seed 7)"
    echo "with --sched-trace: a saturated run at t=0 (fcfs), then Poisson arrivals at 80% and 95% of"
    echo "its capacity (fcfs and rtlm). Capacity now: $cap req/s ($ctok tok/s = $max_run / TPOT $tpot ms;"
    echo "mean output $mo tokens). Fit: \`weft bench stepfit --terms $terms\` over every step line;"
    echo "model: bench/results/$name.params. Times are the whole step (STEP_MS: scheduling to the last"
    echo "event). Reproduce: \`bash bench/quiet.sh bash bench/sched_stepmodel.sh\`."
    echo
    sed 's/^/    /' "$out/$name.machine" 2>/dev/null || true
    echo
    cat "$scratch/fit.md"
} >"$out/$name.md"
cat "$out/$name.md"
