/* sched_laxity.c — least laxity first. Laxity = deadline - now - predicted remaining time, where
 * remaining time = (predicted output tokens left (p50) + prefill_weight * prompt tokens) * the
 * seconds per token (the engine's measured step time). The request with the least slack runs
 * first. Requests without a deadline are best effort: behind every deadline, first come first
 * served among themselves. A request that can no longer make its deadline (negative laxity) is
 * handled by late_policy (`--late-policy`): keep (default) leaves it in least-laxity order, so
 * the latest runs first; demote makes it best effort; drop finishes a waiting one with
 * ENGINE_FINISH_DEADLINE. Deprioritising and dropping are only configured choices (issue 5), since
 * a late answer may still be worth something to the caller. The victim when the cache is full is
 * the running sequence with the most slack (best effort ones first). No aging in the rank; the
 * engine enforces the hard wait bound (sched_bound.c). */
#include "sched/sched_internal.h"

#define BEST_EFFORT 1e6 /* rank offset of best-effort requests: behind any real laxity */

static double left_tokens(const sched_info *r) {
    double total = r->predicted_p50 > 0      ? r->predicted_p50
                   : r->predicted_tokens > 0 ? r->predicted_tokens
                                             : r->max_tokens;
    if (total > r->max_tokens) total = r->max_tokens;
    double left = total - r->n_generated;
    return left < 1 ? 1 : left;
}

/* Seconds of slack; only meaningful when r has a deadline. */
static double laxity_of(const sched_policy *p, const sched_info *r, double now_s) {
    const sched_config *c = sched_cfg(p);
    double tokens = left_tokens(r) + (r->running ? 0 : c->prefill_weight * r->n_prompt);
    return r->deadline_s - now_s - tokens * sched_tpot(c, r);
}

static double lax_rank(const sched_policy *p, const sched_info *r, double now_s) {
    if (r->deadline_s <= 0) return BEST_EFFORT + r->arrival_s;
    double lax = laxity_of(p, r, now_s);
    if (lax < 0 && sched_cfg(p)->late_policy != SCHED_LATE_KEEP) return BEST_EFFORT + r->arrival_s;
    return lax;
}

static int lax_pick_victim(const sched_policy *p, const sched_info *running, int n, double now_s) {
    return sched_victim_by(p, running, n, now_s, lax_rank);
}

static bool lax_should_drop(const sched_policy *p, const sched_info *r, double now_s) {
    return sched_cfg(p)->late_policy == SCHED_LATE_DROP && !r->running && r->deadline_s > 0 &&
           laxity_of(p, r, now_s) < 0;
}

sched_policy *sched_laxity_new(const sched_config *c) {
    sched_policy *p = sched_alloc("laxity", c);
    if (!p) return NULL;
    p->rank = lax_rank;
    p->pick_victim = lax_pick_victim;
    p->should_drop = lax_should_drop;
    return p;
}
