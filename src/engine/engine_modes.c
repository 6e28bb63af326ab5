/* engine_modes.c — who may join the running batch this step. Every mode shares the same step;
 * only admission differs, so the baselines run on the same kernels and cache as weft:
 *   FUSED       the best-ranked waiting requests join at every step while the running set, the
 *               step's token budget and the cache allow (iteration-level batching).
 *   SEQUENTIAL  one request at a time; the next starts when it finishes.
 *   STATIC      when nothing runs, up to max_batch_size waiting requests form a batch; nobody
 *               else joins until every member finished. Finished members stay in the batch as
 *               padding (see engine_step.c) until its longest member ends.
 *   DYNAMIC     STATIC, but a batch starts only when max_batch_size requests wait or the oldest
 *               has waited max_wait_ms (the engine then sleeps until that moment).
 * Admission never over-commits: a request joins only if the cache can hold its whole prompt now
 * (kv_seq_open); the queue head blocks the queue (strict policy order, no overtaking). With
 * consolidate (FUSED), the head also waits until the batch's predicted final footprint fits;
 * with consolidate in STATIC/DYNAMIC, a new batch is grouped by predicted length: the queue head
 * plus the waiting requests predicted to finish closest to it (sched_group.c). */
#include <stdlib.h>

#include "engine/engine_internal.h"
#include "weft/sched.h"

/* Outcome of trying the waiting request at index i. */
typedef enum admit_result { ADMIT_OK, ADMIT_FULL, ADMIT_DROPPED } admit_result;

static admit_result admit_at(engine *e, int i, int *budget) {
    engine_seq *s = e->waiting.v[i];
    int rc = seq_admit(e, s);
    if (rc == -2) {
        /* Prompt + output so far outgrew the whole cache (possible after preemption): it can
         * never run again, so it ends here rather than waiting forever. */
        seq_list_remove_at(&e->waiting, i);
        seq_finish(e, s, ENGINE_FINISH_CONTEXT);
        seq_free(s);
        return ADMIT_DROPPED;
    }
    if (rc != 0) return ADMIT_FULL;
    seq_list_remove_at(&e->waiting, i);
    /* running has room for max_batch_seqs (reserved at creation), and admission never exceeds
     * it, so this push cannot fail. */
    (void)seq_list_push(&e->running, s);
    int left = seq_ready(s); /* a split request: what its client sent so far */
    s->plan_n = left < *budget ? left : *budget;
    *budget -= s->plan_n;
    return ADMIT_OK;
}

/* Consolidation: would the running batch plus the queue head, each at its predicted final
 * size (prompt + p90 output), still fit the cache? If not, admitting it now would likely force a
 * preemption later, so it waits for room instead. The first request always goes in. */
static bool predicted_fit(const engine *e, const engine_seq *head) {
    if (e->running.n == 0) return true;
    int64_t blocks = engine_predicted_blocks(e, head);
    for (int i = 0; i < e->running.n; i++)
        blocks += engine_predicted_blocks(e, e->running.v[i]);
    return blocks <= e->total_blocks;
}

static void admit_fused(engine *e, int *budget) {
    while (e->waiting.n > 0 && e->running.n < e->cfg.max_running && *budget > 0) {
        if (e->cfg.consolidate && !e->waiting.v[0]->overdue && !predicted_fit(e, e->waiting.v[0]))
            break;
        if (admit_at(e, 0, budget) == ADMIT_FULL) break;
    }
}

static void admit_sequential(engine *e, int *budget) {
    while (e->waiting.n > 0 && e->running.n == 0)
        if (admit_at(e, 0, budget) == ADMIT_FULL) break;
}

static bool has_real_member(const engine *e) {
    for (int i = 0; i < e->running.n; i++)
        if (!e->running.v[i]->padding) return true;
    return false;
}

/* Length grouping (consolidate in static/dynamic modes): the new batch is the queue head plus
 * the waiting requests predicted (p50) to finish closest to it (sched_group_by_length), so the
 * batch carries little padding. Returns false (nothing done) when it cannot allocate; the caller
 * then admits in queue order. */
static bool admit_grouped(engine *e, int *budget, int size) {
    int n = e->waiting.n;
    float *pred = malloc(sizeof *pred * (size_t)n);
    int *chosen = malloc(sizeof *chosen * (size_t)n);
    engine_seq **pick = malloc(sizeof *pick * (size_t)n);
    if (!pred || !chosen || !pick) {
        free(pred);
        free(chosen);
        free(pick);
        return false;
    }
    for (int i = 0; i < n; i++)
        pred[i] = e->waiting.v[i]->p50;
    int k = sched_group_by_length(pred, n, size, chosen);
    for (int j = 0; j < k; j++)
        pick[j] = e->waiting.v[chosen[j]];
    for (int j = 0; j < k && e->running.n < size; j++) { /* head first, then queue order */
        int i = 0;
        while (i < e->waiting.n && e->waiting.v[i] != pick[j])
            i++;
        if (i == e->waiting.n) continue;
        engine_seq *s = pick[j];
        admit_result r = admit_at(e, i, budget);
        if (r == ADMIT_FULL) break;
        if (r == ADMIT_OK) s->batch = e->batch_counter;
    }
    free(pred);
    free(chosen);
    free(pick);
    return true;
}

static void admit_batch(engine *e, int *budget) {
    int size = e->cfg.max_batch_size;
    if (e->running.n > 0) {
        /* A batch is in flight: only its own preempted members may come back. */
        if (!has_real_member(e)) return;
        for (int i = 0; i < e->waiting.n && e->running.n < size;) {
            engine_seq *s = e->waiting.v[i];
            if (s->batch != e->batch_counter) {
                i++;
                continue;
            }
            admit_result r = admit_at(e, i, budget);
            if (r == ADMIT_FULL) break;
            if (r == ADMIT_OK) s->batch = e->batch_counter;
        }
        return;
    }
    if (e->waiting.n == 0) return;
    if (e->cfg.mode == ENGINE_DYNAMIC && e->waiting.n < size) {
        double oldest = e->waiting.v[0]->arrival_s;
        for (int i = 1; i < e->waiting.n; i++)
            if (e->waiting.v[i]->arrival_s < oldest) oldest = e->waiting.v[i]->arrival_s;
        double due = oldest + 1e-3 * e->cfg.max_wait_ms;
        if (engine_clock(e) < due) {
            e->wake_at_s = due;
            return;
        }
    }
    e->batch_counter++;
    if (e->cfg.consolidate && e->waiting.n > size && admit_grouped(e, budget, size)) return;
    while (e->waiting.n > 0 && e->running.n < size) {
        engine_seq *s = e->waiting.v[0];
        admit_result r = admit_at(e, 0, budget);
        if (r == ADMIT_FULL) break;
        if (r == ADMIT_OK) s->batch = e->batch_counter;
    }
}

void engine_admit(engine *e, int *budget) {
    switch (e->cfg.mode) {
    case ENGINE_FUSED:
        admit_fused(e, budget);
        break;
    case ENGINE_SEQUENTIAL:
        admit_sequential(e, budget);
        break;
    case ENGINE_STATIC:
    case ENGINE_DYNAMIC:
        admit_batch(e, budget);
        break;
    }
}
