/* metrics.h — the server's Prometheus registry: counters and latency histograms, updated by
 * the HTTP threads under one mutex, rendered in the text exposition format by /metrics.
 * Gauges (running, waiting, KV usage) are read from the engine at scrape time. */
#ifndef WEFT_SERVER_METRICS_H
#define WEFT_SERVER_METRICS_H

#include <pthread.h>
#include <stdint.h>

#include "weft/engine.h"

#define METRICS_MAX_BUCKETS 16

typedef struct metrics_hist {
    const char *name, *help;
    int n_bounds;
    double bounds[METRICS_MAX_BUCKETS];
    uint64_t counts[METRICS_MAX_BUCKETS]; /* per bucket (not cumulative); +Inf is count */
    uint64_t count;
    double sum;
} metrics_hist;

typedef enum metrics_status {
    METRICS_OK = 0,       /* finished normally (stop or length) */
    METRICS_CANCELLED,    /* client went away */
    METRICS_CLIENT_ERROR, /* 4xx before or during generation */
    METRICS_REJECTED,     /* 429 / 503 load shedding */
    METRICS_TIMEOUT,      /* queue timeout */
    METRICS_ERROR,        /* server-side failure, shutdown cancellation */
    METRICS_N_STATUS
} metrics_status;

typedef struct metrics {
    pthread_mutex_t mu;
    uint64_t prompt_tokens, generation_tokens;
    uint64_t requests[METRICS_N_STATUS];
    metrics_hist queue_time, ttft, tpot, e2e;
} metrics;

int metrics_init(metrics *m);
void metrics_destroy(metrics *m);
void metrics_observe(metrics_hist *h, double v); /* caller holds m->mu */
/* Records one finished generation request. Negative times are not observed. */
void metrics_record(metrics *m, metrics_status st, int n_prompt, int n_generated, double queue_s,
                    double ttft_s, double tpot_s, double e2e_s);
void metrics_count(metrics *m, metrics_status st); /* a request refused before the engine */
/* Renders the text format into a malloc'd string (NULL on allocation failure). */
char *metrics_render(metrics *m, const engine_stats *es);

#endif
