/* sched_priority.c — strict priority: the request's own `priority` field (higher is more
 * urgent), first come first served within a level. The victim is the lowest-priority running
 * sequence, the latest arrival among equals (least work invested). No aging in the rank:
 * priority is the caller's explicit wish; but like every policy except fcfs it is subject to the
 * hard wait bound (`--aging-s`, sched_bound.c): a low level waits at most that long. */
#include "sched/sched_internal.h"

static double prio_rank(const sched_policy *p, const sched_info *r, double now_s) {
    (void)p;
    (void)now_s;
    return -(double)r->priority; /* the engine breaks ties by arrival */
}

static double prio_victim_key(const sched_policy *p, const sched_info *r, double now_s) {
    (void)p;
    (void)now_s;
    return -(double)r->priority;
}

static int prio_pick_victim(const sched_policy *p, const sched_info *running, int n, double now_s) {
    return sched_victim_by(p, running, n, now_s, prio_victim_key);
}

sched_policy *sched_priority_new(const sched_config *c) {
    sched_policy *p = sched_alloc("priority", c);
    if (!p) return NULL;
    p->rank = prio_rank;
    p->pick_victim = prio_pick_victim;
    return p;
}
