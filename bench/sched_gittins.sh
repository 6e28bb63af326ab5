#!/usr/bin/env bash
# sched_gittins.sh — rtlm's Gittins rank (`--rtlm-rank gittins`, docs/scheduling.md "The Gittins
# rank") against its p90 rank, in VIRTUAL time (bench/sched_sim.sh: the real engine and
# scheduler, time from the calibrated step-time model; deterministic, so no quiet machine is
# needed — run it under /work/wt/nicewait). Two steps, by the tuning rule (docs/scheduling.md):
#   dev    the DEVELOPMENT workload only (dev-150: --seed 101..120, other requests and arrivals
#          than the benchmark's), 80% and 95% load, rtlm's default and the variants in
#          DEV_VARIANTS (sigma scale, preemption comparison and ratio); every choice is made on
#          these rows -> bench/results/sched_gittins_dev.{md,csv}
#   bench  then the benchmark's workload (bench-150: the benchmark's 150 requests, --seed 7, at
#          arrival seeds 1..20, which include sched.sh's 1-4), 80% and 95% load, rtlm's default
#          and the chosen configuration (BENCH_VARIANTS) -> bench/results/sched_gittins_bench.*
# Each md ends with the paired comparison: per seed, each rtlm variant's mean response time
# against rtlm's default (p90) on the same seed and load (median and mean of the change, and on
# how many seeds it was lower).
# Usage: /work/wt/nicewait bash bench/sched_gittins.sh dev|bench|report
source "$(dirname "$0")/engine_lib.sh"
part=${1:-report}
DEV_VARIANTS=${DEV_VARIANTS:-"--rtlm-rank gittins;--rtlm-rank gittins --gittins-sigma-scale 2;--rtlm-rank gittins --gittins-sigma-scale 3;--rtlm-rank gittins --gittins-sigma-scale 2 --preempt-compare benefit;--preempt-compare victim;--rtlm-rank gittins --gittins-sigma-scale 2 --preempt-ratio 1.5"}
BENCH_VARIANTS=${BENCH_VARIANTS:-"--rtlm-rank gittins --gittins-sigma-scale 2;--preempt-compare victim"}

# paired NAME: appends the paired table of bench/results/NAME.csv to NAME.md
paired() {
    local csv=$results/$1.csv md=$results/$1.md machine=$results/$1.machine
    [ -r "$csv" ] || { echo "no $csv" >&2; exit 1; }
    {
        echo
        echo "### Paired: each rtlm variant against rtlm's default (p90) on the same seed and load"
        echo
        echo "Change of the mean response time (variant / rtlm - 1) over the seeds: median, mean, and"
        echo "on how many seeds the variant's mean was lower; and the variant's median change against fcfs."
        echo
        echo "| load | variant | arguments | vs rtlm: median | mean | lower on | vs fcfs: median |"
        echo "|---|---|---|---:|---:|---:|---:|"
        csv_select "$csv" label policy e2e_mean_s | awk -v mf="$machine" '
        function med(v, n,   i, j, t) { for (i = 1; i < n; i++) { t = v[i]; for (j = i - 1; j >= 0 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
                                        return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }
        BEGIN { while ((getline line < mf) > 0) if (line ~ /^variant rtlm~/) { split(line, a, ": "); k = a[1]; sub(/^variant /, "", k); arg[k] = a[2] } }
        { n = split($1, a, "-"); load = a[3]; seed = a[4]; m[load, seed, $2] = $3
          if (!((load, $2) in seen)) { seen[load, $2] = 1; if ($2 ~ /^rtlm~/) pol[load, ++np[load]] = $2 }
          if (!(load in lseen)) { lseen[load] = 1; lo[++nl] = load }
          if (!((load, seed) in sseen)) { sseen[load, seed] = 1; so[load, ++ns[load]] = seed } }
        END {
          for (i = 1; i <= nl; i++) { l = lo[i]
            for (j = 1; j <= np[l]; j++) { p = pol[l, j]; n = 0; nf = 0; s = 0; w = 0; delete c; delete f
              for (k = 1; k <= ns[l]; k++) { sd = so[l, k]
                if (!((l, sd, p) in m) || !((l, sd, "rtlm") in m)) continue
                x = 100 * (m[l, sd, p] / m[l, sd, "rtlm"] - 1); c[n++] = x; s += x; if (x < 0) w++
                if ((l, sd, "fcfs") in m) f[nf++] = 100 * (m[l, sd, p] / m[l, sd, "fcfs"] - 1) }
              if (n) printf "| %.0f%% | %s | `%s` | %+.2f%% | %+.2f%% | %d/%d | %+.1f%% |\n", 100 * l, p, arg[p], med(c, n), s / n, w, n, med(f, nf) } } }'
    } >>"$md"
}

case $part in
dev)
    SIM_NAME=sched_gittins_dev SIM_GROUPS=dev-150 SIM_LOADS="${SIM_LOADS:-0.80 0.95}" \
        SIM_SEEDS=${SIM_SEEDS:-20} RTLM_VARIANTS="$DEV_VARIANTS" bash "$root/bench/sched_sim.sh" run
    paired sched_gittins_dev
    cat "$results/sched_gittins_dev.md"
    ;;
bench)
    SIM_NAME=sched_gittins_bench SIM_GROUPS=bench-150 SIM_LOADS="${SIM_LOADS:-0.80 0.95}" \
        SIM_SEEDS=${SIM_SEEDS:-20} RTLM_VARIANTS="$BENCH_VARIANTS" bash "$root/bench/sched_sim.sh" run
    paired sched_gittins_bench
    cat "$results/sched_gittins_bench.md"
    ;;
report)
    for n in sched_gittins_dev sched_gittins_bench; do
        [ -r "$results/$n.csv" ] || continue
        SIM_NAME=$n bash "$root/bench/sched_sim.sh" report >/dev/null
        paired $n
        cat "$results/$n.md"
    done
    ;;
*) echo "usage: bash bench/sched_gittins.sh dev|bench|report" >&2; exit 2 ;;
esac
