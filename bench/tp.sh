#!/usr/bin/env bash
# tp.sh — tensor parallelism: decode throughput of `--tp 1` against `mpirun -np 2 ... --tp 2`,
# each rank one kernel thread, at batch 1 and 16, on tiny110m synth F32 (~440 MB of layer
# weights + a 98 MB tied embedding/output head: far beyond the CPU caches, so decode streams
# the weights from memory every step, and each of 2 ranks streams half). --tp 1 with 2 threads
# is listed too, as the one-process way to use both cores.
# Decode tokens/s = batch / mean time per output token (TPOT, from `weft bench engine`: all
# requests arrive at once with 16-token prompts and generate 64 tokens, so after one prefill
# step every step decodes the whole batch). Rounds alternate the configurations; the table
# reports the median over rounds. The all-reduce share comes from rank 0's "tp:" line
# (time inside MPI all-reduce — transfer plus waiting for the other rank — over the time of
# the forward passes, prefill included).
# Reproduce: make build && bash bench/quiet.sh bash bench/tp.sh     (--quick: 1 round, 8 layers)
source "$(dirname "$0")/engine_lib.sh"
bench_args "$@"
command -v mpirun >/dev/null || { echo "mpirun not found (scripts/setup.sh installs openmpi-bin)"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
if [ $quick = 1 ]; then
    name=tp.quick rounds=1 layers=(--layers 8) out=16
else
    name=tp rounds=${ROUNDS:-5} layers=() out=64
fi
csv=$results/$name.csv
md=$results/$name.md
model=$scratch/tiny110m-f32.gguf
if [ $runs = 1 ]; then
    synth_model tiny110m f32 "$model" "${layers[@]}"
    echo "round,config,batch,tpot_mean_ms,decode_tok_s,allreduce_s,forward_s,allreduce_pct" >"$csv"
    bw=$root/build/tp_bandwidth
    [ -x "$bw" ] || { echo "build first: make build (no $bw)"; exit 1; }
    for round in $(seq "$rounds"); do
        "$bw" | sed "s/^/# round $round: /" >>"$csv"
        for cfg in tp1 tp1x2 tp2; do
            for batch in 1 16; do
                case $cfg in
                tp1) cmd=("$WEFT" bench engine -t 1) ;;
                tp1x2) cmd=("$WEFT" bench engine -t 2) ;;
                tp2) cmd=(mpirun -np 2 "$WEFT" bench engine --tp 2 -t 1) ;;
                esac
                "${cmd[@]}" --model "$model" -n $batch --prompt-len 16 --output-len $out \
                    --gap-mean 0 --max-running 16 --kv dense --csv "$scratch/run.csv" -q \
                    >/dev/null 2>"$scratch/err" || { cat "$scratch/err"; exit 1; }
                tpot=$(csv_select "$scratch/run.csv" tpot_mean_ms)
                ar=$(sed -n 's/.*forward \([0-9.]*\) s, all-reduce \([0-9.]*\) s.*/\2 \1/p' "$scratch/err")
                [ -n "$ar" ] || ar="0 0"
                read -r ar_s fw_s <<<"$ar"
                awk -v r="$round" -v c=$cfg -v b=$batch -v t="$tpot" -v a="$ar_s" -v f="$fw_s" 'BEGIN {
                    printf "%s,%s,%d,%.3f,%.2f,%.4f,%.4f,%.2f\n", r, c, b, t, b * 1000 / t, a, f,
                        (f > 0 ? 100 * a / f : 0) }' >>"$csv"
                tail -1 "$csv"
            done
        done
    done
fi
[ -r "$csv" ] || { echo "no $csv: run without --report-only first"; exit 1; }
# median per (config, batch) of decode tok/s and all-reduce %
med() { # CONFIG BATCH COLUMN
    grep -v '^#' "$csv" | awk -F, -v c="$1" -v b="$2" -v col="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) k = i; next }
        $2 == c && $3 == b { print $k }' | sort -g |
        awk '{ v[n++] = $1 } END { printf "%.2f", n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }'
}
{
    echo "# tp — tensor parallelism over MPI: decode throughput, --tp 1 vs --tp 2"
    echo
    machine_line
    load_line
    echo
    echo "Model: tiny110m synth F32 (dim 768, 12 layers, 12 heads, FFN 2048, vocab 32000 tied;"
    echo "~440 MB layer weights + 98 MB embedding/output). Each request: 16-token prompt, $out output"
    echo "tokens, all at t=0, dense KV. Decode tok/s = batch / mean TPOT; median of $rounds rounds."
    echo "Command: \`bash bench/quiet.sh bash bench/tp.sh\` (raw rows: bench/results/$name.csv)."
    echo
    echo "| configuration | processes × threads | batch | decode tok/s (median) | vs --tp 1 | all-reduce % of forward |"
    echo "|---|---|---|---|---|---|"
    for b in 1 16; do
        base=$(med tp1 $b decode_tok_s)
        for cfg in tp1 tp1x2 tp2; do
            v=$(med $cfg $b decode_tok_s)
            case $cfg in tp1) d="--tp 1"; pt="1 × 1" ;; tp1x2) d="--tp 1 -t 2"; pt="1 × 2" ;; tp2) d="mpirun -np 2 --tp 2"; pt="2 × 1" ;; esac
            ar="—"; [ $cfg = tp2 ] && ar="$(med tp2 $b allreduce_pct) %"
            echo "| \`$d\` | $pt | $b | $v | $(awk -v a="$v" -v b="$base" 'BEGIN { printf "%.2f×", a / b }') | $ar |"
        done
    done
    echo
    echo "Memory read bandwidth measured in each round (\`build/tp_bandwidth\`, all rounds):"
    echo
    grep '^# round' "$csv" | sed 's/^# /- /'
} >"$md"
cat "$md"
