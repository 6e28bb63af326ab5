/* sched_bound.c — the hard wait bound (`--aging-s`): no request waits, queued and paused
 * together, longer than the bound. Aging in the ranks (sched_aged) only brings an old request to
 * the head of the queue; the head still waits for a running slot to free, and with paused
 * requests the wait adds up across several stays in the queue, so aging alone let waits run past
 * the bound at 95% load (docs/scheduling.md). Here a request becomes overdue a guard before the
 * bound; the engine then ranks it first and, if the batch is full, pauses a running request for
 * it, so it is admitted by the bound. */
#include <stdlib.h>

#include "sched/sched_internal.h"

static double guard_s(const sched_policy *p, const sched_info *r) {
    double step = r->step_s > 0 ? r->step_s : 0;
    return 0.05 * p->wait_bound_s + 2 * step;
}

double sched_overdue_at(const sched_policy *p, const sched_info *r) {
    if (!p || !(p->wait_bound_s > 0) || !r) return 0;
    double at = p->wait_bound_s - guard_s(p, r);
    return at > 0 ? at : 0;
}

bool sched_overdue(const sched_policy *p, const sched_info *r) {
    if (!p || !(p->wait_bound_s > 0) || !r || r->running) return false;
    return r->waited_s >= sched_overdue_at(p, r);
}

int sched_pick_overdue_victim(const sched_policy *p, const sched_info *running, int n,
                              double now_s) {
    if (!p || !(p->wait_bound_s > 0) || !p->pick_victim || !running || n <= 0) return -1;
    /* rare (only while someone is overdue and the batch is full): a scratch copy per call */
    sched_info *cand = malloc((size_t)n * sizeof *cand);
    int *idx = malloc((size_t)n * sizeof *idx), m = 0;
    if (!cand || !idx) { /* out of memory: no pause this step; the engine asks again next step */
        free(cand);
        free(idx);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const sched_info *r = &running[i];
        if (!r->pausable || r->steps_run < 1) continue;
        if (r->waited_s + guard_s(p, r) >= sched_overdue_at(p, r)) continue; /* nearly overdue */
        cand[m] = *r;
        idx[m++] = i;
    }
    int v = -1;
    if (m > 0) {
        int k = p->pick_victim(p, cand, m, now_s);
        v = idx[k >= 0 && k < m ? k : m - 1];
    }
    free(cand);
    free(idx);
    return v;
}
