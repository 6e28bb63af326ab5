/* metrics.c — per-request measurements, their summary, and the thread-safe event collector (see
 * metrics.h for the definitions). */
#include "workload/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double metrics_percentile(const double *sorted, int n, double p) {
    if (n <= 0) return 0;
    if (p <= 0) return sorted[0];
    if (p >= 100) return sorted[n - 1];
    double h = (n - 1) * p / 100.0;
    int lo = (int)floor(h);
    if (lo >= n - 1) return sorted[n - 1];
    return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void metrics_dist_of(double *vals, int n, metrics_dist *d) {
    memset(d, 0, sizeof *d);
    if (n <= 0) return;
    qsort(vals, (size_t)n, sizeof *vals, cmp_double);
    double s = 0;
    for (int i = 0; i < n; i++)
        s += vals[i];
    d->n = n;
    d->mean = s / n;
    d->p50 = metrics_percentile(vals, n, 50);
    d->p90 = metrics_percentile(vals, n, 90);
    d->p99 = metrics_percentile(vals, n, 99);
    d->max = vals[n - 1];
}

static bool finished_ok(const metrics_request *r) {
    return r->submitted && r->finish_s >= 0 &&
           (r->finish == ENGINE_FINISH_LENGTH || r->finish == ENGINE_FINISH_STOP);
}

int metrics_summarize(const metrics_request *r, int n, metrics_summary *out, weft_err *err) {
    memset(out, 0, sizeof *out);
    out->n_requests = n;
    double *ttft = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double *tpot = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    double *e2e = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    if (!ttft || !tpot || !e2e) {
        free(ttft);
        free(tpot);
        free(e2e);
        return weft_errf(err, "metrics: out of memory");
    }
    int nt = 0, np = 0, ne = 0;
    double first_arrival = INFINITY, last_finish = -INFINITY;
    for (int i = 0; i < n; i++) {
        const metrics_request *q = &r[i];
        out->n_preempted += q->n_preempted;
        if (!finished_ok(q)) {
            out->n_failed++;
            continue;
        }
        out->n_finished++;
        out->prompt_tokens += q->n_prompt;
        out->output_tokens += q->n_generated;
        if (q->arrival_s < first_arrival) first_arrival = q->arrival_s;
        if (q->finish_s > last_finish) last_finish = q->finish_s;
        e2e[ne++] = q->finish_s - q->arrival_s;
        if (q->first_token_s >= 0) {
            ttft[nt++] = q->first_token_s - q->arrival_s;
            if (q->n_generated >= 2)
                tpot[np++] = (q->finish_s - q->first_token_s) / (q->n_generated - 1);
        }
    }
    if (out->n_finished > 0) {
        out->makespan_s = last_finish - first_arrival;
        if (out->makespan_s > 0) {
            out->output_tok_per_s = (double)out->output_tokens / out->makespan_s;
            out->req_per_s = out->n_finished / out->makespan_s;
        }
    }
    metrics_dist_of(ttft, nt, &out->ttft_s);
    metrics_dist_of(tpot, np, &out->tpot_s);
    metrics_dist_of(e2e, ne, &out->e2e_s);
    free(ttft);
    free(tpot);
    free(e2e);
    return 0;
}

/* ---- collector ---- */

int metrics_collector_init(metrics_collector *c, int n, weft_err *err) {
    memset(c, 0, sizeof *c);
    c->req = calloc((size_t)(n > 0 ? n : 1), sizeof *c->req);
    if (!c->req) return weft_errf(err, "metrics: out of memory");
    for (int i = 0; i < n; i++) {
        c->req[i].first_token_s = -1;
        c->req[i].finish_s = -1;
        c->req[i].finish = -1;
        c->req[i].deadline_missed = -1;
    }
    c->n = n;
    int e = pthread_mutex_init(&c->mu, NULL);
    if (e) {
        free(c->req);
        return weft_errf(err, "metrics: mutex: %s", strerror(e));
    }
    pthread_condattr_t ca;
    e = pthread_condattr_init(&ca);
    if (!e) e = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!e) e = pthread_cond_init(&c->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e) {
        pthread_mutex_destroy(&c->mu);
        free(c->req);
        return weft_errf(err, "metrics: condition variable: %s", strerror(e));
    }
    return 0;
}

void metrics_collector_destroy(metrics_collector *c) {
    pthread_cond_destroy(&c->done_cv);
    pthread_mutex_destroy(&c->mu);
    free(c->req);
    c->req = NULL;
}

void metrics_collector_submit(metrics_collector *c, int id, double t_s, int n_prompt,
                              int n_expected) {
    pthread_mutex_lock(&c->mu);
    metrics_request *r = &c->req[id];
    r->arrival_s = t_s;
    r->n_prompt = n_prompt;
    r->n_expected = n_expected;
    r->submitted = true;
    pthread_mutex_unlock(&c->mu);
}

void metrics_collector_refused(metrics_collector *c, int id) {
    pthread_mutex_lock(&c->mu);
    c->req[id].submitted = false;
    c->n_done++;
    pthread_cond_broadcast(&c->done_cv);
    pthread_mutex_unlock(&c->mu);
}

void metrics_collector_set_sched(metrics_collector *c, int id, double deadline_s, int priority) {
    if (id < 0 || id >= c->n) return;
    pthread_mutex_lock(&c->mu);
    c->req[id].deadline_s = deadline_s;
    c->req[id].priority = priority;
    pthread_mutex_unlock(&c->mu);
}

void metrics_collector_on_event(void *ctx, const engine_event *ev) {
    metrics_collector *c = ctx;
    if (ev->id >= (uint64_t)c->n) return; /* not ours */
    pthread_mutex_lock(&c->mu);
    metrics_request *r = &c->req[ev->id];
    switch (ev->type) {
    case ENGINE_EV_TOKEN:
        /* After a preemption the request recomputes; its first token time stays the first one
         * the client saw. */
        if (r->first_token_s < 0) r->first_token_s = ev->t_s;
        if (ev->index + 1 > r->n_generated) r->n_generated = ev->index + 1;
        break;
    case ENGINE_EV_PREEMPTED:
        r->n_preempted++;
        break;
    case ENGINE_EV_CONSUMED: /* split requests only */
        break;
    case ENGINE_EV_FINISHED:
        if (r->finish_s < 0) {
            r->finish_s = ev->t_s;
            r->finish = (int)ev->finish;
            if (ev->n_generated > r->n_generated) r->n_generated = ev->n_generated;
            r->pred_p50 = ev->pred_p50;
            r->pred_p90 = ev->pred_p90;
            r->deadline_missed = ev->deadline_missed;
            r->queue_s = ev->queue_s;
            c->n_done++;
            pthread_cond_broadcast(&c->done_cv);
        }
        break;
    }
    pthread_mutex_unlock(&c->mu);
}

int metrics_collector_wait(metrics_collector *c, int n_target, double timeout_s) {
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    double whole = floor(timeout_s);
    dl.tv_sec += (time_t)whole;
    dl.tv_nsec += (long)((timeout_s - whole) * 1e9);
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (c->n_done < n_target)
        if (pthread_cond_timedwait(&c->done_cv, &c->mu, &dl) == ETIMEDOUT) break;
    int done = c->n_done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

void metrics_collector_snapshot(metrics_collector *c, metrics_request *out) {
    pthread_mutex_lock(&c->mu);
    memcpy(out, c->req, sizeof *out * (size_t)c->n);
    pthread_mutex_unlock(&c->mu);
}
