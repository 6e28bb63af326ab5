/* sched_pause.c — the preemption decision of the preemptive policies (spf, rtlm, oracle):
 * shortest remaining work first across the running batch and the queue. Admission order alone
 * cannot shorten a request that is already running, and with a bounded running batch most of a
 * request's response time is its own service; pausing a long running request for a much
 * shorter waiting one is what lets short requests finish early (FastServe, SSJF). The engine
 * keeps a paused sequence's KV cache when memory allows, so a pause costs nothing but the
 * paused request's delay. Guards against thrashing and starvation:
 *   - benefit: with a batch of several slots a waiting request only waits until the FIRST running
 *     request ends, while a pause delays the paused one by the newcomer's whole service; so a
 *     pause happens only when the newcomer's remaining work is smaller than every running
 *     request's (by the hysteresis factor preempt_ratio), and the victim is the one with the
 *     most work left. Plain SRPT across the slots (pause whenever the newcomer is shorter than
 *     the longest) measurably lost mean response time to fcfs at 80% load (docs);
 *   - or, with preempt_compare victim (rtlm's Gittins rank by default), the Gittins rule on k
 *     slots: the batch keeps the k best-ranked requests, so the newcomer displaces the worst
 *     running one when its remaining work is smaller by the factor preempt_ratio;
 *   - hysteresis: the factor preempt_ratio, so two requests of similar size never swap back and
 *     forth, and a paused request (which only comes back when it is among the shortest) cannot
 *     pause the one that displaced it;
 *   - a minimum run: preempt_min_steps steps after each (re)admission, so every admission buys
 *     real progress;
 *   - the aging bound: a request older than aging_s (since its arrival), or one that has already
 *     waited half its way to being overdue (sched_bound.c), is never paused, and the policies'
 *     aging ranks it ahead of younger work while it waits; the hard bound itself is enforced by
 *     sched_bound.c. */
#include "sched/sched_internal.h"

int sched_pick_pause(const sched_policy *p, const sched_info *running, int n, const sched_info *w,
                     double now_s) {
    if (!p || !p->remaining || !p->state || !w || n <= 0) return -1;
    const sched_config *c = sched_cfg(p);
    if (!(c->preempt_ratio > 0)) return -1;
    int best = -1;
    double best_left = 0;
    for (int i = 0; i < n; i++) {
        const sched_info *r = &running[i];
        if (!r->pausable || r->steps_run < c->preempt_min_steps) continue;
        if (now_s - r->arrival_s >= c->aging_s) continue; /* old enough: never displaced */
        /* one that has waited so long it would soon be overdue is not displaced either */
        if (r->waited_s > 0 && r->waited_s >= 0.5 * sched_overdue_at(p, r)) continue;
        double left = p->remaining(p, r, now_s);
        if (best < 0 || left > best_left ||
            (left == best_left && r->arrival_s >= running[best].arrival_s)) {
            best = i;
            best_left = left;
        }
    }
    if (best < 0) return -1;
    /* Benefit: without a pause w waits until the first running request ends (the smallest
     * remaining work); with it, w runs at once and the paused request loses about w's service.
     * Worth it only when w is shorter than every running request, by the hysteresis ratio.
     * Victim (Gittins' rule on k slots, the default of rtlm's Gittins rank): the batch holds
     * the k best-ranked requests, so w displaces the worst running one when it is better by the
     * ratio. */
    double bar = best_left;
    bool victim = c->preempt_compare == SCHED_PREEMPT_VICTIM; /* auto: resolved by the policy */
    for (int i = 0; i < n && !victim; i++) {
        double left = p->remaining(p, &running[i], now_s);
        if (left < bar) bar = left;
    }
    double need = p->remaining(p, w, now_s);
    return bar > c->preempt_ratio * need ? best : -1;
}
