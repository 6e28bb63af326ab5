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
 * aging bound once requests could be paused: docs/scheduling.md.)
 *
 * `--rtlm-rank gittins` (sched_config.rtlm_rank) replaces the predicted work in the order, the
 * victim choice and the preemption test by 1/G, G the Gittins index of the request's predicted
 * length distribution (sched_gittins.c: lognormal from p50 and p90, truncated at max_tokens) —
 * the "effective remaining tokens", which falls as a request nears its likely end and rises
 * again once it has run long past it; uncertainty and demotion follow from the distribution.
 * The deadline slack still uses the p90 rule (sched_rtlm_remaining: how long the request may
 * still take, not how soon it is likely to end); aging, the hard wait bound and the late policy
 * are unchanged. The table is built once per policy object and owned by it. */
#include <stdlib.h>

#include "sched/sched_internal.h"

#define HOPELESS 1e4 /* seconds added to the rank of a deadline that cannot be met */

/* The policy's state with the Gittins rank: the configuration first (sched_cfg reads it). */
typedef struct rtlm_gittins_state {
    sched_config cfg;
    sched_gittins *g;
} rtlm_gittins_state;

/* Remaining output tokens the order and preemption use: the p90 rule, or 1/G. */
static double left_tokens(const sched_policy *p, const sched_info *r) {
    const sched_config *c = sched_cfg(p);
    if (c->rtlm_rank != SCHED_RTLM_GITTINS || r->predicted_p50 <= 0)
        return sched_rtlm_remaining(c, r); /* no distribution without a prediction */
    const rtlm_gittins_state *st = p->state;
    double sigma = sched_gittins_sigma(r->predicted_p50, r->predicted_p90, c->gittins_sigma_scale);
    return 1.0 / sched_gittins_index(st->g, r->predicted_p50, sigma, r->max_tokens,
                                     r->n_generated);
}

static double prefill(const sched_policy *p, const sched_info *r) {
    return r->running ? 0 : sched_cfg(p)->prefill_weight * r->n_prompt;
}

/* Seconds the request may still need (deadline slack): the p90 rule under either rank. */
static double work_s(const sched_policy *p, const sched_info *r) {
    const sched_config *c = sched_cfg(p);
    return (sched_rtlm_remaining(c, r) + prefill(p, r)) * sched_tpot(c, r);
}

static double rtlm_rank(const sched_policy *p, const sched_info *r, double now_s) {
    const sched_config *c = sched_cfg(p);
    double w = work_s(p, r);
    double order = c->rtlm_rank == SCHED_RTLM_GITTINS
                       ? (left_tokens(p, r) + prefill(p, r)) * sched_tpot(c, r)
                       : w;
    double base = order;
    if (r->deadline_s > 0) {
        double lax = r->deadline_s - now_s - w;
        if (lax < 0)
            base = c->late_policy == SCHED_LATE_KEEP ? order : order + HOPELESS;
        else if (lax < w)
            base = lax;
    }
    return sched_aged(c, base, r, now_s);
}

static double rtlm_victim_key(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    double left = left_tokens(p, r);
    if (sched_cfg(p)->rtlm_rank == SCHED_RTLM_GITTINS) return left; /* lowest index */
    return sched_demoted(r) ? 1e9 + left : left;
}

/* Remaining work for preemption (sched_pick_pause), in tokens: p90 when wide, max_tokens once
 * demoted, so an uncertain or mispredicted request is the one that gets paused; with the
 * Gittins rank 1/G, so the benefit test compares indices (pause when the newcomer's index is
 * preempt_ratio times every running one's). */
static double rtlm_remaining(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    return left_tokens(p, r) + prefill(p, r);
}

static void rtlm_gittins_destroy(sched_policy *p) {
    rtlm_gittins_state *st = p->state;
    sched_gittins_free(st->g);
    free(st);
    free(p);
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
    if (sched_cfg(p)->rtlm_rank == SCHED_RTLM_GITTINS) {
        rtlm_gittins_state *st = malloc(sizeof *st);
        sched_gittins *g = sched_gittins_new();
        if (!st || !g) {
            free(st);
            sched_gittins_free(g);
            sched_policy_free(p);
            return NULL;
        }
        st->cfg = *sched_cfg(p);
        st->g = g;
        /* Gittins' rule on k slots: the running batch holds the k highest indices */
        if (st->cfg.preempt_compare == SCHED_PREEMPT_AUTO)
            st->cfg.preempt_compare = SCHED_PREEMPT_VICTIM;
        free(p->state);
        p->state = st;
        p->destroy = rtlm_gittins_destroy;
    }
    p->rank = rtlm_rank;
    p->pick_victim = rtlm_pick_victim;
    p->remaining = rtlm_remaining;
    p->should_drop = rtlm_should_drop;
    return p;
}
