/* sched_spf.c — shortest predicted remaining work first, with aging, and its oracle twin.
 * Work = predicted output tokens still to generate (p50) + prefill_weight * prompt tokens; the
 * rank shrinks linearly with the wait and reaches the head of the queue after aging_s, so no
 * request starves behind a stream of shorter ones. The victim when the cache is full is the
 * running sequence with the most predicted work left. `oracle` is the same rule on the true
 * output length (benchmarks only; the upper bound a perfect predictor would reach). */
#include "sched/sched_internal.h"

static double spf_left(const sched_info *r, bool oracle) {
    double total;
    if (oracle && r->true_tokens > 0)
        total = r->true_tokens;
    else if (r->predicted_p50 > 0)
        total = r->predicted_p50;
    else if (r->predicted_tokens > 0)
        total = r->predicted_tokens;
    else
        total = r->max_tokens;
    if (!(oracle && r->true_tokens > 0)) total = sched_past_prediction(r, total);
    if (total > r->max_tokens) total = r->max_tokens;
    double left = total - r->n_generated;
    return left < 1 ? 1 : left;
}

static double work(const sched_policy *p, const sched_info *r, bool oracle) {
    return spf_left(r, oracle) + sched_cfg(p)->prefill_weight * r->n_prompt;
}

static double spf_rank(const sched_policy *p, const sched_info *r, double now_s) {
    return sched_aged(sched_cfg(p), work(p, r, false), r, now_s);
}
static double oracle_rank(const sched_policy *p, const sched_info *r, double now_s) {
    return sched_aged(sched_cfg(p), work(p, r, true), r, now_s);
}

static double spf_key(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    (void)p;
    return spf_left(r, false);
}
static double oracle_key(const sched_policy *p, const sched_info *r, double now_s) {
    (void)p;
    (void)now_s;
    return spf_left(r, true);
}

/* Remaining work for preemption (sched_pick_pause): output still to generate, plus the prompt's
 * prefill when it waits. */
static double spf_remaining(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    return r->running ? spf_left(r, false) : work(p, r, false);
}
static double oracle_remaining(const sched_policy *p, const sched_info *r, double now_s) {
    (void)now_s;
    return r->running ? spf_left(r, true) : work(p, r, true);
}

static int spf_pick_victim(const sched_policy *p, const sched_info *running, int n, double now_s) {
    return sched_victim_by(p, running, n, now_s, spf_key);
}
static int oracle_pick_victim(const sched_policy *p, const sched_info *running, int n,
                              double now_s) {
    return sched_victim_by(p, running, n, now_s, oracle_key);
}

sched_policy *sched_spf_new(const sched_config *c) {
    sched_policy *p = sched_alloc("spf", c);
    if (!p) return NULL;
    p->rank = spf_rank;
    p->pick_victim = spf_pick_victim;
    p->remaining = spf_remaining;
    return p;
}

sched_policy *sched_oracle_new(const sched_config *c) {
    sched_policy *p = sched_alloc("oracle", c);
    if (!p) return NULL;
    p->rank = oracle_rank;
    p->pick_victim = oracle_pick_victim;
    p->remaining = oracle_remaining;
    return p;
}
