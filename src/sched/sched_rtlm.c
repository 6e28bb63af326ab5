/* sched_rtlm.c — uncertainty-aware scheduling after RT-LM. A request's work is its predicted
 * remaining output (sched_rtlm_remaining: the upper quantile p90 when the prediction is wide,
 * p50 otherwise — an uncertain request is not trusted to be short) plus prefill_weight * prompt
 * tokens, in seconds (the engine's measured step time per token). Deadlines and aging combine
 * with it:
 *   - a deadline whose slack is already smaller than the work (it must start now) ranks by its
 *     slack, ahead of longer work;
 *   - a deadline that can no longer be met (slack < 0) is handled by late_policy: keep (default)
 *     ranks it by its work as if it had no deadline; demote moves it behind everything that can
 *     still make it; drop finishes it while it waits (should_drop). Keep is the default because
 *     demotion snowballs under overload: at 95% load a demoted request waits until the aging
 *     bound, and meanwhile more requests run late (at 95% rtlm with demote: mean 3.99 s, p99
 *     20.6 s; with keep: 2.35 s, 8.7 s — bench/results/sched.md; docs/scheduling.md);
 *   - aging shrinks the rank linearly with the wait; after aging_s the request is at the head
 *     (sched_aged), and the engine enforces the hard wait bound (sched_bound.c), so no
 *     misprediction or deadline rule can starve anyone.
 * Demotion: a request that generated more than its p90 is expected to run as long again as it
 * has (sched_past_prediction), so when paused or preempted it waits behind shorter, correctly
 * predicted work, and it is the first victim when the cache is full — a misprediction cannot
 * block the queue. (Assuming it runs to max_tokens starved every mispredicted request until the
 * aging bound once requests could be paused: docs/scheduling.md.) */
#include "sched/sched_internal.h"

#define HOPELESS 1e4 /* seconds added to the rank of a deadline that cannot be met */

static double work_s(const sched_policy *p, const sched_info *r) {
    const sched_config *c = sched_cfg(p);
    double tokens = sched_rtlm_remaining(c, r) + (r->running ? 0 : c->prefill_weight * r->n_prompt);
    return tokens * sched_tpot(c, r);
}

static double rtlm_rank(const sched_policy *p, const sched_info *r, double now_s) {
    double w = work_s(p, r), base = w;
    if (r->deadline_s > 0) {
        double lax = r->deadline_s - now_s - w;
        if (lax < 0)
            base = sched_cfg(p)->late_policy == SCHED_LATE_KEEP ? w : w + HOPELESS;
        else if (lax < w)
            base = lax;
    }
    return sched_aged(sched_cfg(p), base, r, now_s);
}

static double rtlm_victim_key(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    double left = sched_rtlm_remaining(sched_cfg(p), r);
    return sched_demoted(r) ? 1e9 + left : left;
}

/* Remaining work for preemption (sched_pick_pause), in tokens: p90 when wide, max_tokens once
 * demoted, so an uncertain or mispredicted request is the one that gets paused. */
static double rtlm_remaining(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    const sched_config *c = sched_cfg(p);
    return sched_rtlm_remaining(c, r) + (r->running ? 0 : c->prefill_weight * r->n_prompt);
}

static int rtlm_pick_victim(const sched_policy *p, const sched_info *running, int n, double now_s) {
    return sched_victim_by(p, running, n, now_s, rtlm_victim_key);
}

static bool rtlm_should_drop(const sched_policy *p, const sched_info *r, double now_s) {
    return sched_cfg(p)->late_policy == SCHED_LATE_DROP && !r->running && r->deadline_s > 0 &&
           r->deadline_s - now_s - work_s(p, r) < 0;
}

sched_policy *sched_rtlm_new(const sched_config *c) {
    sched_policy *p = sched_alloc("rtlm", c);
    if (!p) return NULL;
    p->rank = rtlm_rank;
    p->pick_victim = rtlm_pick_victim;
    p->remaining = rtlm_remaining;
    p->should_drop = rtlm_should_drop;
    return p;
}
