/* engine_trace.c — the scheduling trace (engine_config.sched_trace): one text line per
 * scheduling event and per step, written by the stepping thread, so a run's timeline can be
 * reconstructed (which request ran when, how often and how long it was paused, whether a resumed
 * request recomputed, the forward time of each step by batch shape). It exists to debug and
 * explain policies on real runs (docs/scheduling.md "Scheduling trace"); nothing reads it back.
 * Lines (times on the engine clock, seconds):
 *   step T N_SEQS N_TOKENS N_WAITING FORWARD_MS N_PREFILL KV_TOKENS STEP_MS
 *        (written after the step's events; N_PREFILL: prefill-chunk tokens of N_TOKENS;
 *        KV_TOKENS: sum over the tokens of the positions they attend to; STEP_MS: the whole
 *        step, scheduling to the last event, what `weft bench stepfit` fits)
 *   admit T ID N_PROMPT N_GENERATED P50 P90   (first admission, or a recompute after preemption)
 *   pause T ID N_GENERATED                    (kept its cache; overdue: paused for an overdue one)
 *   resume T ID N_GENERATED                   (back from a pause, nothing recomputed)
 *   preempt T ID N_GENERATED                  (lost its cache: it will recompute)
 *   finish T ID N_GENERATED ARRIVAL_T
 * Write errors are sticky in the stream (ferror); the caller checks when it closes it. */
#include <stdarg.h>
#include <stdio.h>

#include "engine/engine_internal.h"

void engine_trace(const engine *e, const char *fmt, ...) {
    FILE *f = e->cfg.sched_trace;
    if (!f) return;
    va_list ap;
    va_start(ap, fmt);
    (void)vfprintf(f, fmt, ap); /* errors stay in the stream (ferror), checked by the caller */
    va_end(ap);
}
