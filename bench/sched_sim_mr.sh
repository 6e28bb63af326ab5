#!/usr/bin/env bash
# sched_sim_mr.sh — how much room the order of service has, as a function of the running batch's
# bound (issue 5's 80% target, docs/scheduling.md "How the room for any order depends on the
# batch bound"). For max_running 1, 2, 4 and 8: bench/sched_sim.sh in virtual time (deterministic;
# no quiet machine needed) on the development workloads (dev-150: seeds 101..) and the
# benchmark's requests (bench-150: seed 7 at arrival seeds 1..), at 80% of each configuration's
# own capacity (sched.sh's definition: max_running / full-batch TPOT of a saturated fcfs run),
# every policy with its defaults; then one table: fcfs's queue share (the most any order could
# save) and the median change of the mean response time against fcfs of spf, rtlm and the oracle.
# Usage: bash bench/sched_sim_mr.sh [run] (SIM_SEEDS, default 10; MR_LIST,
#        default "1 2 4 8"; MR_LOADS, default 0.80), then bash bench/sched_sim_mr.sh report
set -eu
here=$(cd "$(dirname "$0")" && pwd)
results=$here/results
mrs=${MR_LIST:-1 2 4 8}
seeds=${SIM_SEEDS:-10}
loads=${MR_LOADS:-0.80}
if [ "${1:-run}" = run ]; then
    for mr in $mrs; do
        SIM_MAX_RUNNING=$mr SIM_NAME=sched_sim_mr$mr SIM_SEEDS=$seeds SIM_GROUPS="dev-150 bench-150" \
            SIM_LOADS="$loads" bash "$here/sched_sim.sh" run >/dev/null
    done
fi
out=$results/sched_sim_mr.md
{
    echo "# The room for any order against the running batch's bound (bench/sched_sim_mr.sh)"
    echo
    echo "Virtual time (bench/sched_sim.sh, step model bench/results/sched_stepmodel.params), $seeds seeds per group,"
    echo "each configuration at the given fraction of its own capacity; policies with their defaults."
    echo "queue share = fcfs's mean queue time / its mean response time (median over seeds): the most any"
    echo "order could save. Changes: median over seeds of the mean response time against fcfs on the same seed."
    echo
    echo "| max_running | group | load | fcfs mean s | fcfs queue share | spf | rtlm | oracle |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|"
    for mr in $mrs; do
        f=$results/sched_sim_mr$mr.md
        [ -r "$f" ] || continue
        awk -v mr=$mr '
        /^### / { g = $2; l = $4; sub(/%/, "", l) }
        /^\| fcfs \| \(reference\)/ { split($0, c, "|"); fm[g, l] = c[6] + 0 }
        /^\| (spf|rtlm|oracle) \|/ { split($0, c, "|"); p = c[2]; gsub(/ /, "", p); v[g, l, p] = c[3]; gsub(/ /, "", v[g, l, p]) }
        /^fcfs queue share/ { q[g, l] = $5; if (!((g, l) in seen)) { seen[g, l] = 1; o[++n] = g SUBSEP l } }
        END { for (i = 1; i <= n; i++) { split(o[i], a, SUBSEP)
                printf "| %d | %s | %s%% | %.2f | %s | %s | %s | %s |\n", mr, a[1], a[2], fm[a[1], a[2]], q[a[1], a[2]], v[a[1], a[2], "spf"], v[a[1], a[2], "rtlm"], v[a[1], a[2], "oracle"] } }' "$f"
    done
    echo
    echo "Reproduce: bash bench/sched_sim_mr.sh (SIM_SEEDS=$seeds MR_LIST=\"$mrs\" MR_LOADS=\"$loads\");"
    echo "per-configuration tables: bench/results/sched_sim_mr{$(echo $mrs | tr ' ' ',')}.md."
} >"$out"
cat "$out"
