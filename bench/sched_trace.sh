#!/usr/bin/env bash
# sched_trace.sh — summarises a scheduling trace written by `weft bench engine --sched-trace F`
# (line format: src/engine/engine_trace.c), one block per run: pauses (how many requests, the
# most on one request, pause-to-resume time), recompute preemptions, steps where a running slot
# was free while requests waited (with a paused one among them), the mean batch, and the forward
# time per step by batch size, decode-only steps apart from steps that carry prefill tokens (the
# same step shapes in two runs compare the machine's speed, not the policies' batches). Used for
# the preemption diagnosis in docs/scheduling.md.
# Usage: bash bench/sched_trace.sh TRACE [MAX_RUNNING (default 4)]
set -euo pipefail
[ $# -ge 1 ] && [ -r "$1" ] || { echo "usage: bash bench/sched_trace.sh TRACE [MAX_RUNNING]" >&2; exit 2; }
awk -v maxrun="${2:-4}" '
function flush() {
    if (name == "") return
    printf "%s: %d steps, mean batch %.2f; pauses %d on %d requests (at most %d on one), pause to resume mean %.2f s, max %.2f s; recompute preemptions %d; steps with a free slot while requests waited %d (a paused one among them %d); mean response %.2f s (%d finished)\n",
        name, steps, steps ? nsum / steps : 0, np, npr, pmax, nres ? dsum / nres : 0, dmax, npre, idle, idlep,
        nfin ? rsum / nfin : 0, nfin
    printf "  forward ms per step by batch size, decode only (steps) | with prefill (steps):"
    for (b = 1; b <= maxb; b++)
        if (dn[b] + pn[b] > 0)
            printf " %d: %.2f (%d) | %.2f (%d);", b, dn[b] ? ds[b] / dn[b] : 0, dn[b], pn[b] ? ps[b] / pn[b] : 0, pn[b]
    printf "\n"
}
function reset() {
    steps = nsum = np = npr = pmax = nres = dsum = dmax = npre = idle = idlep = rsum = nfin = maxb = 0
    delete pc; delete pt; delete dn; delete ds; delete pn; delete ps
}
$1 == "run" { flush(); reset(); name = $2 " " $3 "/" $4 "/" $5; next }
$1 == "step" { steps++; nsum += $3; if ($3 > maxb) maxb = $3
               if ($4 == $3) { dn[$3]++; ds[$3] += $6 } else { pn[$3]++; ps[$3] += $6 }
               if ($3 < maxrun && $5 > 0) { idle++; if (length(pt) > 0) idlep++ } next }
$1 == "pause" { np++; if (!($3 in pc)) npr++; pc[$3]++; if (pc[$3] > pmax) pmax = pc[$3]; pt[$3] = $2; next }
$1 == "resume" { if ($3 in pt) { d = $2 - pt[$3]; dsum += d; nres++; if (d > dmax) dmax = d; delete pt[$3] } next }
$1 == "preempt" { npre++; delete pt[$3]; next }
$1 == "finish" { nfin++; rsum += $2 - $5; next }
END { flush() }' "$1"
