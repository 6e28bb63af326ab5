#!/usr/bin/env bash
# engine_flover.sh — Flover's experiment (temporal fusion vs a request-level server): synthetic
# ~110M LLaMA (tiny110m) in F32 and Q8_0; 32 requests with 32-token prompts, Poisson arrivals of
# mean gap λ from 0 (all at once) to long relative to one request's service time; the speed-up
# of fused over sequential in makespan (= in throughput: same tokens) against λ, as a table
# (bench/results/engine_flover.md, .csv) and a plot (engine_flover.png or .svg).
# A type is WEIGHTS or WEIGHTS/KV: the weight type, and the KV cache element type both modes
# use (--kv-type; f16, the default, when not given): f32, q8_0 and q8_0/q8_0 (Q8_0 weights and
# a Q8_0 KV cache).
# Reproduce: make build && bash bench/engine_flover.sh        (full; --quick for a smoke test;
#            --report-only redraws the table and plot from the existing CSV;
#            --only TYPE[,TYPE] re-runs only those types, replacing their rows in the CSV, so one
#            call holds the bench lock for less than the whole sweep;
#            --lambdas L[,L] re-runs only those mean gaps of the types run (with --only or all),
#            replacing only their rows;
#            --rounds R runs each (type, λ) pair R times, fused then sequential back to back, and
#            reports the median of the R per-round speed-ups with their range: the sequential
#            server's speed alone moved by ~30% between runs on the shared VM, so one pair is
#            not a measurement of the ratio)
only=""
only_lambdas=""
rounds=1
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --only) [ $# -ge 2 ] || { echo "--only needs a value" >&2; exit 2; }; only=${2//,/ }; shift 2 ;;
    --lambdas) [ $# -ge 2 ] || { echo "--lambdas needs a value" >&2; exit 2; }; only_lambdas=${2//,/ }; shift 2 ;;
    --rounds)
        [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "--rounds needs a positive integer" >&2; exit 2; }
        rounds=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
source "$(dirname "$0")/engine_lib.sh"
bench_args "${args[@]+"${args[@]}"}"
if [ $quick = 1 ]; then
    name=engine_flover.quick; n=8; out_len=16; types="q8_0 q8_0/q8_0"; lambdas="0 0.5"
else
    # Flover's setting: 32 requests of 256 output tokens. Sequential F32 alone takes ~100 s per λ
    # on 2 cores, so the λ sweep is short: 0 (the headline), one moderate and one long gap
    # (one 256-token request takes a sequential server ~0.7 s in Q8_0 and ~2.5 s in F32, so at
    # λ = 2 Q8_0 requests rarely overlap while F32 is still near saturation).
    name=engine_flover; n=32; out_len=256; types="f32 q8_0 q8_0/q8_0"; lambdas="0 1 2"
fi
if [ -n "$only_lambdas" ]; then
    [ -n "$only" ] || { echo "--lambdas needs --only TYPE[,TYPE]" >&2; exit 2; }
    for l in $only_lambdas; do
        case " $lambdas " in *" $l "*) ;; *) echo "--lambdas: unknown gap '$l' (one of: $lambdas)" >&2; exit 2 ;; esac
    done
    lambdas=$only_lambdas
fi
csv=$results/$name.csv
run_types=$types
if [ -n "$only" ]; then
    for t in $only; do
        case " $types " in *" $t "*) ;; *) echo "--only: unknown type '$t' (one of: $types)" >&2; exit 2 ;; esac
    done
    run_types=$only
    # keep every other type's rows
    if [ $runs = 1 ] && [ -f "$csv" ]; then
        awk -F, -v drop="$only" -v lams="$only_lambdas" 'BEGIN { n = split(drop, d, " "); for (i = 1; i <= n; i++) gone[d[i]] = 1
                m = split(lams, ls, " "); for (i = 1; i <= m; i++) lam[ls[i]] = 1 }
            NR == 1 { for (i = 1; i <= NF; i++) if ($i == "label") c = i; print; next }
            { split($c, k, ":"); if (!(k[1] in gone) || (m > 0 && !(k[2] in lam))) print }' "$csv" >"$csv.tmp" && mv "$csv.tmp" "$csv"
    fi
elif [ $runs = 1 ]; then
    rm -f "$csv"
fi
for t in $run_types; do
    [ $runs = 1 ] || break
    wt=${t%%/*} kvt=f16
    case $t in */*) kvt=${t#*/} ;; esac
    synth_model tiny110m "$wt" "$scratch/model.gguf"
    for l in $lambdas; do
        for ((r = 1; r <= rounds; r++)); do
            echo "== tiny110m $wt weights, $kvt KV cache, λ = $l s, round $r of $rounds" >&2
            # label TYPE:λ:ROUND (rows of older runs have no round: round 1)
            "$WEFT" bench engine --model "$scratch/model.gguf" --mode fused,sequential -n $n --prompt-len 32 \
                --output-len $out_len --gap-mean "$l" --seed 1 --kv-type "$kvt" --label "$t:$l:$r" \
                --csv-append "$csv" -q >/dev/null
        done
    done
done
md=$results/$name.md
# Rows: label TYPE:λ[:ROUND] mode makespan tok/s p99. Collects each (TYPE:λ) key's rounds in
# order of first appearance (nr[key] rounds; f_*/s_* indexed by key SUBSEP round number);
# med(key, arr) is the median of arr over the key's rounds, medv(v, m) of v[1..m].
flover_rounds_awk='
    function medv(v, m,    a, i, j, t) { for (i = 1; i <= m; i++) a[i] = v[i]
        for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
    function before(a, b) { return ti[tp[a]] < ti[tp[b]] || (ti[tp[a]] == ti[tp[b]] && lam[a] < lam[b]) }
    function sort_keys(    i, j, t) { for (i = 2; i <= n; i++) { t = order[i]
        for (j = i - 1; j >= 1 && before(t, order[j]); j--) order[j + 1] = order[j]; order[j + 1] = t } }
    function med(key, arr,    v, j) { for (j = 1; j <= nr[key]; j++) v[j] = arr[key, j]; return medv(v, nr[key]) }
    { c = split($1, k, ":"); key = k[1] ":" k[2]; r = (c >= 3) ? k[3] : 1
      if (ntypes == 0) { ntypes = split(types, tl, " "); for (i = 1; i <= ntypes; i++) ti[tl[i]] = i }
      if (!(k[1] in ti)) ti[k[1]] = ++ntypes
      if (!(key in nr)) { order[++n] = key; nr[key] = 0; tp[key] = k[1]; lam[key] = k[2] + 0 }
      if (!((key, r) in rn)) rn[key, r] = ++nr[key]
      j = rn[key, r]
      if ($2 == "fused") { f_ms[key, j] = $3; f_tok[key, j] = $4; f_p99[key, j] = $5 }
      else { s_ms[key, j] = $3; s_tok[key, j] = $4; s_p99[key, j] = $5 } }'
# one line per run of this script (which types it ran, the machine and its load), so a table
# that mixes rows from several --only runs says where each came from
runlog=$results/$name.runs
if [ $runs = 1 ]; then
    if [ -z "$only" ]; then
        rm -f "$runlog"
    elif [ -z "$only_lambdas" ] && [ -f "$runlog" ]; then # drop lines whose types were all re-run now
        awk -v only="$only" 'BEGIN { n = split(only, o, " "); for (i = 1; i <= n; i++) redo[o[i]] = 1 }
            { t = $2; sub(/[:,]$/, "", t); m = split(t, ts, ","); keep = 0
              for (i = 1; i <= m; i++) if (!(ts[i] in redo)) keep = 1
              if (keep) print }' "$runlog" >"$runlog.tmp" && mv "$runlog.tmp" "$runlog"
    fi
    lam_note=""
    [ -z "$only_lambdas" ] || lam_note=" λ $(echo $only_lambdas | tr ' ' ',')"
    echo "- $(echo $run_types | tr ' ' ',')$lam_note, $rounds round(s): $(machine_line); $(load_line)" >>"$runlog"
fi
machine="Runs (types: machine and load):
$(cat "$runlog" 2>/dev/null || echo "- unknown (redrawn without a run log)")"
{
    echo "# engine_flover — temporal fusion vs sequential serving (Flover's experiment)"
    echo
    echo "$machine"
    echo
    echo "Workload: tiny110m synth (llama vocabulary when ../shared has it), $n requests, 32-token synthetic prompts,"
    echo "$out_len output tokens each (ignore_eos), Poisson arrivals with mean gap λ (λ = 0: all at t = 0), seed 1."
    echo "Speed-up = sequential makespan / fused makespan (same tokens, so also the throughput ratio)."
    echo "With several rounds (--rounds R: each a fused run and a sequential run back to back) every"
    echo "column is the median over the rounds, the speed-up is the median of the per-round speed-ups,"
    echo "and its range is the lowest and highest round."
    echo
    echo "| weights | KV cache | λ s | fused makespan s | sequential makespan s | speed-up | rounds (speed-up range) | fused tok/s | sequential tok/s | fused e2e p99 s | sequential e2e p99 s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    csv_select "$csv" label mode makespan_s out_tok_s e2e_p99_s | awk -v types="$types" "$flover_rounds_awk"'
        END { sort_keys(); for (i = 1; i <= n; i++) { key = order[i]; split(key, k, ":");
              w = k[1]; kvt = "f16"; if (index(w, "/")) { kvt = substr(w, index(w, "/") + 1); w = substr(w, 1, index(w, "/") - 1) }
              m = nr[key]; for (j = 1; j <= m; j++) { rid = key SUBSEP j; ratio[j] = s_ms[rid] / f_ms[rid] }
              lo = hi = ratio[1]; for (j = 2; j <= m; j++) { if (ratio[j] < lo) lo = ratio[j]; if (ratio[j] > hi) hi = ratio[j] }
              printf "| %s | %s | %s | %.2f | %.2f | **%.2fx** | %d (%.2f-%.2f) | %.1f | %.1f | %.2f | %.2f |\n", w, kvt, k[2],
                  med(key, f_ms), med(key, s_ms), medv(ratio, m), m, lo, hi, med(key, f_tok), med(key, s_tok), med(key, f_p99), med(key, s_p99) } }'
    echo
    echo "Reproduce: \`make build && bash bench/engine_flover.sh$([ $quick = 1 ] && echo ' --quick')\` (the rows of some types only: \`--only TYPE[,TYPE]\`; medians of R rounds: \`--rounds R\`)"
} >"$md"
gnuplot_term
dat=$(mktemp)
csv_select "$csv" label mode makespan_s out_tok_s e2e_p99_s | awk -v types="$types" "$flover_rounds_awk"'
    END { sort_keys(); for (i = 1; i <= n; i++) { key = order[i]; split(key, k, ":"); m = nr[key]
          for (j = 1; j <= m; j++) { rid = key SUBSEP j; ratio[j] = s_ms[rid] / f_ms[rid] }
          print k[1], k[2], medv(ratio, m) } }' >"$dat"
plot="$results/$name.$plot_ext"
gnuplot <<GP
set terminal $plot_term noenhanced
set output "$plot"
set title "Fused vs sequential: speed-up against mean arrival gap (tiny110m, $n req x $out_len tok)"
set xlabel "mean inter-arrival gap λ (s)"
set ylabel "speed-up (sequential / fused makespan)"
set grid
set key top right
plot for [t in "$types"] "< grep '^".t." ' $dat" using 2:3 with linespoints lw 2 title t
GP
rm -f "$dat"
echo "Plot: [$name.$plot_ext]($name.$plot_ext)" >>"$md"
cat "$md"
