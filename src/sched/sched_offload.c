/* sched_offload.c — strategic offloading (after RT-LM, which sends work to the CPU while the GPU
 * is saturated): a request goes to a secondary worker only when the primary's predicted queueing
 * delay plus its own predicted service time would miss the request's deadline and the secondary
 * can still meet it. Without a deadline, or when nobody can meet it, the primary keeps it: a
 * slower worker is only worth using when it changes the outcome. The predictions are deliberately
 * simple (work in front / slots, one token per slot per step) so the decision costs nanoseconds
 * and is easy to reason about; docs/scheduling.md discusses the error this admits. */
#include "weft/sched.h"

static double step_of(const sched_worker_load *w) {
    if (w->step_s > 0) return w->step_s;
    return w->step_s_guess > 0 ? w->step_s_guess : 0.05;
}

double sched_offload_delay(const sched_worker_load *w) {
    int slots = w->max_running > 0 ? w->max_running : 1;
    if (w->running < slots && w->waiting == 0) return 0;
    /* The running batch drains its remaining tokens in parallel over the slots, and the queue in
     * front is served by the same slots; a new request starts once that work is through. */
    double front = w->waiting_tokens + (w->running >= slots ? w->running_left_tokens : 0);
    if (front < 0) front = 0;
    return front / slots * step_of(w);
}

double sched_offload_completion(const sched_worker_load *w, double pred_tokens) {
    if (pred_tokens < 1) pred_tokens = 1;
    return sched_offload_delay(w) + pred_tokens * step_of(w);
}

int sched_offload_pick(const sched_worker_load *w, int n, double deadline_rel_s,
                       double pred_tokens) {
    if (n <= 1 || deadline_rel_s <= 0) return 0;
    if (sched_offload_completion(&w[0], pred_tokens) <= deadline_rel_s) return 0;
    for (int i = 1; i < n; i++)
        if (sched_offload_completion(&w[i], pred_tokens) <= deadline_rel_s) return i;
    return 0;
}
