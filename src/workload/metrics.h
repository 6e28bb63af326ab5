/* metrics.h — what a benchmark measures per request (arrival, first token, finish, tokens) and
 * the summary over a run: throughput over the makespan, and the distributions of time to first
 * token (TTFT), time per output token (TPOT) and end-to-end latency.
 *
 * Definitions (all times on the engine clock, seconds):
 *   makespan   = last finish - first arrival
 *   throughput = output tokens / makespan, finished requests / makespan
 *   TTFT       = first token - arrival
 *   TPOT       = (finish - first token) / (n_generated - 1), requests with n_generated >= 2
 *   e2e        = finish - arrival
 *   percentile = linear interpolation between closest ranks: for n sorted values x[0..n-1] and
 *                p in [0, 100], h = (n - 1) p / 100, P = x[floor h] + (h - floor h) (x[floor h + 1]
 *                - x[floor h]) (NumPy's default "linear" method; p50 of an even count is the
 *                mean of the middle two).
 * The collector receives engine events on the engine thread; its mutex makes the records safe to
 * read from the benchmark thread. */
#ifndef WEFT_WORKLOAD_METRICS_H
#define WEFT_WORKLOAD_METRICS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/engine.h"
#include "weft/error.h"

typedef struct metrics_request {
    double arrival_s;     /* submitted */
    double first_token_s; /* < 0 until the first token */
    double finish_s;      /* < 0 until FINISHED */
    int n_prompt;
    int n_expected;  /* max_tokens asked for */
    int n_generated; /* tokens seen */
    int finish;      /* engine_finish, or -1 while running / when refused */
    int n_preempted;
    bool submitted; /* false: engine_submit refused it */
    /* scheduling (report_sched.c): from the FINISHED event, or set by the HTTP client */
    float pred_p50, pred_p90; /* the engine's last prediction (0 = none) */
    double deadline_s;        /* relative to arrival; 0 = none */
    int deadline_missed;      /* -1 no deadline, 0 met, 1 missed (or dropped) */
    double queue_s;           /* submission to first admission (engine runs) */
    int priority;
} metrics_request;

typedef struct metrics_dist {
    int n;
    double mean, p50, p90, p99, max;
} metrics_dist;

typedef struct metrics_summary {
    int n_requests;
    int n_finished; /* FINISHED with LENGTH or STOP */
    int n_failed;   /* refused, cancelled, errored, or never finished */
    int n_preempted;
    double makespan_s;
    int64_t prompt_tokens, output_tokens;
    double output_tok_per_s, req_per_s;
    metrics_dist ttft_s, tpot_s, e2e_s;
} metrics_summary;

/* The percentile p (0..100) of n >= 1 ascending values, by the method above. */
double metrics_percentile(const double *sorted, int n, double p);
/* Sorts vals (n >= 0) in place and fills d (all zero when n == 0). */
void metrics_dist_of(double *vals, int n, metrics_dist *d);
/* Summary of n requests; -1 only when out of memory. */
int metrics_summarize(const metrics_request *r, int n, metrics_summary *out, weft_err *err);

/* ---- event collection ---- */
typedef struct metrics_collector {
    pthread_mutex_t mu;
    pthread_cond_t done_cv;
    metrics_request *req; /* indexed by the engine request id */
    int n;
    int n_done; /* requests that reached FINISHED (or were refused) */
} metrics_collector;

int metrics_collector_init(metrics_collector *c, int n, weft_err *err);
void metrics_collector_destroy(metrics_collector *c);
/* Records a submission (from the submitting thread, before engine_submit). */
void metrics_collector_submit(metrics_collector *c, int id, double t_s, int n_prompt,
                              int n_expected);
/* Records a request's deadline (seconds after arrival, 0 = none) and priority. */
void metrics_collector_set_sched(metrics_collector *c, int id, double deadline_s, int priority);
/* Marks a request the engine refused: it counts as done and failed. */
void metrics_collector_refused(metrics_collector *c, int id);
/* An engine_event_fn: ctx is the collector, ev->id the request's index. */
void metrics_collector_on_event(void *ctx, const engine_event *ev);
/* Waits until n_target requests are done or timeout_s passes; returns the number done. */
int metrics_collector_wait(metrics_collector *c, int n_target, double timeout_s);
/* Copies the records out under the lock. */
void metrics_collector_snapshot(metrics_collector *c, metrics_request *out);

#endif
