#!/usr/bin/env bash
# sched_gittins.sh — rtlm's Gittins rank (`--rtlm-rank gittins`, docs/scheduling.md "The Gittins
# rank") against its p90 rank, in VIRTUAL time (bench/sched_sim.sh: the real engine and
# scheduler, time from the calibrated step-time model; deterministic, so no quiet machine is
# needed — run it at low priority, e.g. nice -n 19). Two steps, by the tuning rule (docs/scheduling.md):
#   dev    the DEVELOPMENT workload only (dev-150: --seed 101..120, other requests and arrivals
#          than the benchmark's), 80% and 95% load, rtlm's default and the variants in
#          DEV_VARIANTS (sigma scale, preemption comparison and ratio); every choice is made on
#          these rows -> bench/results/sched_gittins_dev.{md,csv}. (Run when rtlm's default was
#          still --rtlm-rank p90: its rtlm rows are the p90 rank.)
#   bench  then the benchmark's workload (bench-150: the benchmark's 150 requests, --seed 7, at
#          arrival seeds 1..20, which include sched.sh's 1-4), 80% and 95% load, rtlm's default
#          (the chosen configuration: --rtlm-rank gittins) and the earlier rules (BENCH_VARIANTS)
#          -> bench/results/sched_gittins_bench.*
# Each md ends with the paired comparison: per seed, each rtlm variant's mean response time
# against rtlm's default (p90) on the same seed and load (median and mean of the change, and on
# how many seeds it was lower).
# Usage: bash bench/sched_gittins.sh dev|bench|report
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
DEV_VARIANTS=${DEV_VARIANTS:-"--rtlm-rank gittins;--rtlm-rank gittins --gittins-sigma-scale 2;--rtlm-rank gittins --gittins-sigma-scale 3;--rtlm-rank gittins --gittins-sigma-scale 2 --preempt-compare benefit;--preempt-compare victim;--rtlm-rank gittins --gittins-sigma-scale 2 --preempt-ratio 1.5"}
BENCH_VARIANTS=${BENCH_VARIANTS:-"--rtlm-rank p90;--rtlm-rank p90 --preempt-compare victim"}

# paired NAME [REF]: appends to NAME.md the paired table of bench/results/NAME.csv: each rtlm
# variant against REF (default rtlm, the default configuration; e.g. rtlm~5) per seed and load
paired() {
    local csv=$results/$1.csv md=$results/$1.md machine=$results/$1.machine ref=${2:-rtlm}
    [ -r "$csv" ] || { echo "no $csv" >&2; exit 1; }
    {
        echo
        if [ "$ref" = rtlm ]; then
            echo "### Paired: each rtlm variant against the rtlm rows (no extra arguments: rtlm's default when the runs were made) on the same seed and load"
        else
            echo "### Paired: each rtlm variant against $ref on the same seed and load"
        fi
        echo
        echo "Change of the mean response time (variant / $ref - 1) over the seeds: median, mean, and"
        echo "on how many seeds the variant's mean was lower; and the variant's median change against fcfs."
        echo
        echo "| load | variant | arguments | vs $ref: median | mean | lower on | vs fcfs: median |"
        echo "|---|---|---|---:|---:|---:|---:|"
        csv_select "$csv" label policy e2e_mean_s | awk -v mf="$machine" -v ref="$ref" '
        function med(v, n,   i, j, t) { for (i = 1; i < n; i++) { t = v[i]; for (j = i - 1; j >= 0 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
                                        return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }
        BEGIN { while ((getline line < mf) > 0) if (line ~ /^variant rtlm~/) { split(line, a, ": "); k = a[1]; sub(/^variant /, "", k); arg[k] = a[2] } }
        { n = split($1, a, "-"); load = a[3]; seed = a[4]; m[load, seed, $2] = $3
          if (!((load, $2) in seen)) { seen[load, $2] = 1; if ($2 ~ /^rtlm(~|$)/) pol[load, ++np[load]] = $2 }
          if (!(load in lseen)) { lseen[load] = 1; lo[++nl] = load }
          if (!((load, seed) in sseen)) { sseen[load, seed] = 1; so[load, ++ns[load]] = seed } }
        END {
          for (i = 1; i <= nl; i++) { l = lo[i]
            for (j = 1; j <= np[l]; j++) { p = pol[l, j]; n = 0; nf = 0; s = 0; w = 0; delete c; delete f
              if (p == ref) continue
              for (k = 1; k <= ns[l]; k++) { sd = so[l, k]
                if (!((l, sd, p) in m) || !((l, sd, ref) in m)) continue
                x = 100 * (m[l, sd, p] / m[l, sd, ref] - 1); c[n++] = x; s += x; if (x < 0) w++
                if ((l, sd, "fcfs") in m) f[nf++] = 100 * (m[l, sd, p] / m[l, sd, "fcfs"] - 1) }
              if (n) printf "| %.0f%% | %s | %s | %+.2f%% | %+.2f%% | %d/%d | %+.1f%% |\n", 100 * l, p, p == "rtlm" ? "(none)" : "`" arg[p] "`", med(c, n), s / n, w, n, med(f, nf) } } }'
        echo
        echo "Reproduce: bash bench/sched_gittins.sh ${1#sched_gittins_} (bench/sched_gittins.sh report: the tables again)"
    } >>"$md"
}

case $part in
dev)
    SIM_NAME=sched_gittins_dev SIM_GROUPS=dev-150 SIM_LOADS="${SIM_LOADS:-0.80 0.95}" \
        SIM_SEEDS=${SIM_SEEDS:-20} RTLM_VARIANTS="$DEV_VARIANTS" bash "$root/bench/sched_sim.sh" run
    paired sched_gittins_dev
    paired sched_gittins_dev rtlm~5 # the p90 rank with the victim comparison: the index alone
    cat "$results/sched_gittins_dev.md"
    ;;
bench)
    SIM_NAME=sched_gittins_bench SIM_GROUPS=bench-150 SIM_LOADS="${SIM_LOADS:-0.80 0.95}" \
        SIM_SEEDS=${SIM_SEEDS:-20} RTLM_VARIANTS="$BENCH_VARIANTS" bash "$root/bench/sched_sim.sh" run
    paired sched_gittins_bench
    paired sched_gittins_bench rtlm~1 # against the earlier rules (--rtlm-rank p90)
    cat "$results/sched_gittins_bench.md"
    ;;
report)
    for n in sched_gittins_dev sched_gittins_bench; do
        [ -r "$results/$n.csv" ] || continue
        SIM_NAME=$n bash "$root/bench/sched_sim.sh" report >/dev/null
        paired $n
        [ $n = sched_gittins_dev ] && paired $n rtlm~5
        [ $n = sched_gittins_bench ] && paired $n rtlm~1
        cat "$results/$n.md"
    done
    ;;
*) echo "usage: bash bench/sched_gittins.sh dev|bench|report" >&2; exit 2 ;;
esac
