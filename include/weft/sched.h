/* sched.h — the scheduling policy the engine consults every step: in which order waiting
 * requests are admitted and which running sequence to preempt when the KV cache is full.
 * Policies are small objects behind this interface so benchmarks can swap them on the same
 * workload; FCFS is the first (sched_fcfs.c). The engine owns the queues; a policy only ranks.
 * The uncertainty-aware policies (predicted-shortest-first, deadline/laxity) plug in here. */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stdint.h>

/* What a policy may look at for one request (waiting or running). */
typedef struct sched_info {
    uint64_t id;
    double arrival_s;      /* engine clock, seconds */
    int n_prompt;
    int n_generated;
    int max_tokens;
    int priority;          /* request's own priority; higher is more urgent */
    double deadline_s;     /* absolute, engine clock; 0 = none */
    int predicted_tokens;  /* predicted output length; 0 = unknown */
    int n_preempted;       /* times this request was preempted */
} sched_info;

typedef struct sched_policy sched_policy;
struct sched_policy {
    const char *name;
    /* Key ordering the waiting queue: lower runs first (ties by arrival). */
    double (*rank)(const sched_policy *p, const sched_info *r, double now_s);
    /* Index of the running sequence to preempt when the cache cannot hold the next step, among
     * n candidates (n >= 1). */
    int (*pick_victim)(const sched_policy *p, const sched_info *running, int n, double now_s);
    void (*destroy)(sched_policy *p);
    void *state;
};

/* First come, first served: rank by arrival; the victim is the latest arrival (vLLM's rule). */
sched_policy *sched_fcfs_new(void);
void sched_policy_free(sched_policy *p);

#endif
