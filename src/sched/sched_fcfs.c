/* sched_fcfs.c — first come, first served: the waiting queue is ordered by arrival, and when the
 * KV cache cannot hold the next step the latest arrival among the running sequences is evicted
 * (vLLM's rule: the newest request has the least work invested and the most patience left). */
#include <stdlib.h>

#include "weft/sched.h"

static double fcfs_rank(const sched_policy *p, const sched_info *r, double now_s) {
    (void)p;
    (void)now_s;
    return r->arrival_s;
}

static int fcfs_pick_victim(const sched_policy *p, const sched_info *running, int n, double now_s) {
    (void)p;
    (void)now_s;
    int victim = 0;
    for (int i = 1; i < n; i++)
        if (running[i].arrival_s >= running[victim].arrival_s) victim = i;
    return victim;
}

static void fcfs_destroy(sched_policy *p) {
    free(p);
}

sched_policy *sched_fcfs_new(void) {
    sched_policy *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->name = "fcfs";
    p->rank = fcfs_rank;
    p->pick_victim = fcfs_pick_victim;
    p->destroy = fcfs_destroy;
    return p;
}
