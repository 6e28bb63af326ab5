/* metrics.c — see metrics.h. Bucket bounds follow the latencies a CPU server sees: queueing and
 * time to first token from milliseconds to a minute, per-token time from 1 ms to 2 s. */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hist_init(metrics_hist *h, const char *name, const char *help, const double *b,
                      int n) {
    memset(h, 0, sizeof *h);
    h->name = name;
    h->help = help;
    h->n_bounds = n;
    memcpy(h->bounds, b, (size_t)n * sizeof *b);
}

int metrics_init(metrics *m) {
    memset(m, 0, sizeof *m);
    if (pthread_mutex_init(&m->mu, NULL) != 0) return -1;
    static const double lat[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                 1,     2.5,  5,     10,   20,  40,   60};
    static const double tok[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                 0.1,   0.15,   0.2,   0.3,  0.5,   1,    2};
    static const double e2e[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60, 120, 300};
    int nl = (int)(sizeof lat / sizeof lat[0]), nt = (int)(sizeof tok / sizeof tok[0]);
    hist_init(&m->queue_time, "weft_queue_time_seconds",
              "Time from submission until the engine first admitted the request.", lat, nl);
    hist_init(&m->ttft, "weft_time_to_first_token_seconds",
              "Time from submission until the first generated token.", lat, nl);
    hist_init(&m->tpot, "weft_time_per_output_token_seconds",
              "Mean time between generated tokens of one request.", tok, nt);
    hist_init(&m->e2e, "weft_e2e_latency_seconds", "Time from submission until the last event.",
              e2e, (int)(sizeof e2e / sizeof e2e[0]));
    return 0;
}

void metrics_destroy(metrics *m) { pthread_mutex_destroy(&m->mu); }

void metrics_observe(metrics_hist *h, double v) {
    if (v < 0) return;
    for (int i = 0; i < h->n_bounds; i++)
        if (v <= h->bounds[i]) {
            h->counts[i]++;
            break;
        }
    h->count++;
    h->sum += v;
}

void metrics_record(metrics *m, metrics_status st, int n_prompt, int n_generated, double queue_s,
                    double ttft_s, double tpot_s, double e2e_s) {
    pthread_mutex_lock(&m->mu);
    m->requests[st]++;
    if (n_prompt > 0) m->prompt_tokens += (uint64_t)n_prompt;
    if (n_generated > 0) m->generation_tokens += (uint64_t)n_generated;
    metrics_observe(&m->queue_time, queue_s);
    metrics_observe(&m->ttft, ttft_s);
    metrics_observe(&m->tpot, tpot_s);
    metrics_observe(&m->e2e, e2e_s);
    pthread_mutex_unlock(&m->mu);
}

void metrics_count(metrics *m, metrics_status st) {
    pthread_mutex_lock(&m->mu);
    m->requests[st]++;
    pthread_mutex_unlock(&m->mu);
}

/* A growing string; on allocation failure it stops growing and remembers that. */
typedef struct mbuf {
    char *s;
    size_t n, cap;
    int failed;
} mbuf;

static void mb_printf(mbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) {
            b->failed = 1;
            return;
        }
        if (b->s && b->n + (size_t)need < b->cap) {
            b->n += (size_t)need;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->n + (size_t)need + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void render_hist(mbuf *b, const metrics_hist *h) {
    mb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        mb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->bounds[i], (unsigned long long)cum);
    }
    mb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", h->name,
              (unsigned long long)h->count, h->name, h->sum, h->name,
              (unsigned long long)h->count);
}

char *metrics_render(metrics *m, const engine_stats *es) {
    static const char *const status_names[METRICS_N_STATUS] = {
        "ok", "cancelled", "client_error", "rejected", "timeout", "error"};
    mbuf b = {0};
    double usage = es->kv.capacity_tokens > 0
                       ? (double)es->kv.reserved_tokens / (double)es->kv.capacity_tokens
                       : 0;
    mb_printf(&b,
              "# HELP weft_requests_running Requests in the engine's running batch.\n"
              "# TYPE weft_requests_running gauge\nweft_requests_running %d\n"
              "# HELP weft_requests_waiting Requests waiting for admission.\n"
              "# TYPE weft_requests_waiting gauge\nweft_requests_waiting %d\n"
              "# HELP weft_kv_cache_usage_ratio Reserved share of the KV cache (0..1).\n"
              "# TYPE weft_kv_cache_usage_ratio gauge\nweft_kv_cache_usage_ratio %.6f\n",
              es->running, es->waiting, usage);
    pthread_mutex_lock(&m->mu);
    mb_printf(&b,
              "# HELP weft_prompt_tokens_total Prompt tokens of finished requests.\n"
              "# TYPE weft_prompt_tokens_total counter\nweft_prompt_tokens_total %llu\n"
              "# HELP weft_generation_tokens_total Generated tokens of finished requests.\n"
              "# TYPE weft_generation_tokens_total counter\nweft_generation_tokens_total %llu\n"
              "# HELP weft_requests_total Generation requests by outcome.\n"
              "# TYPE weft_requests_total counter\n",
              (unsigned long long)m->prompt_tokens, (unsigned long long)m->generation_tokens);
    for (int i = 0; i < METRICS_N_STATUS; i++)
        mb_printf(&b, "weft_requests_total{status=\"%s\"} %llu\n", status_names[i],
                  (unsigned long long)m->requests[i]);
    render_hist(&b, &m->queue_time);
    render_hist(&b, &m->ttft);
    render_hist(&b, &m->tpot);
    render_hist(&b, &m->e2e);
    pthread_mutex_unlock(&m->mu);
    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
