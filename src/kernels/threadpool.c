/* threadpool.c — a fixed set of persistent worker threads that run one function on every
 * worker at once (fork/join per call), for the kernels' data-parallel loops.
 *
 * Dispatch is a generation counter: tp_run publishes fn/ctx and bumps `gen`; workers spin on
 * it briefly (a decode step issues hundreds of short matmuls, so sleeping between them would
 * cost a wake-up each time) and then sleep on a condition variable. Completion is a countdown
 * with the same spin-then-sleep pattern for the caller. Sleep/wake races are closed Dekker
 * style: each side publishes "I am (about to) sleep" and re-checks the other side's counter,
 * all with sequentially consistent atomics, and the waker takes the mutex before signalling.
 * One tp_run at a time per pool (the engine thread owns its pool). */
#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "weft/kernels.h"

/* Waiting is in three stages: TP_SPIN_PAUSE pause-spins (a few µs: back-to-back kernels in
 * one decode step), then up to TP_SPIN_YIELD sched_yield()s (hands the core to a runnable
 * thread when the machine is oversubscribed, e.g. more workers than free cores, instead of
 * burning the time slice that thread needs), then a condition-variable sleep. */
#define TP_SPIN_PAUSE 2000
#define TP_SPIN_YIELD 200

struct tp_pool {
    int n;              /* workers including the caller */
    pthread_t *threads; /* n-1 worker threads */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;   /* workers sleep here for a new generation */
    pthread_cond_t cv_done;   /* the caller sleeps here for the countdown */
    _Atomic unsigned gen;     /* bumped once per tp_run (and once at shutdown) */
    _Atomic unsigned pending; /* workers still running the current generation */
    _Atomic int sleepers;     /* workers sleeping (or about to) on cv_work */
    _Atomic int caller_waiting;
    _Atomic int stop;
    tp_fn fn; /* published before gen is bumped */
    void *ctx;
};

typedef struct {
    tp_pool *p;
    int ith;
} tp_worker_arg;

static void tp_check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "weft: %s failed: %s\n", what, strerror(rc));
        abort(); /* a failing lock/cond op means corrupted state; nothing sane to do */
    }
}

static void tp_lock(tp_pool *p) {
    tp_check(pthread_mutex_lock(&p->mu), "pthread_mutex_lock");
}
static void tp_unlock(tp_pool *p) {
    tp_check(pthread_mutex_unlock(&p->mu), "pthread_mutex_unlock");
}

/* Spins until *v != old or the spin budget is used up; returns the last value seen. */
static unsigned tp_spin_until_changed(_Atomic unsigned *v, unsigned old) {
    unsigned cur;
    for (int i = 0; i < TP_SPIN_PAUSE; i++) {
        if ((cur = atomic_load(v)) != old) return cur;
        _mm_pause();
    }
    for (int i = 0; i < TP_SPIN_YIELD; i++) {
        if ((cur = atomic_load(v)) != old) return cur;
        sched_yield(); /* cannot fail on Linux */
    }
    return atomic_load(v);
}

static unsigned tp_wait_gen(tp_pool *p, unsigned seen) {
    unsigned g0 = tp_spin_until_changed(&p->gen, seen);
    if (g0 != seen) return g0;
    tp_lock(p);
    atomic_fetch_add(&p->sleepers, 1);
    unsigned g;
    while ((g = atomic_load(&p->gen)) == seen)
        tp_check(pthread_cond_wait(&p->cv_work, &p->mu), "pthread_cond_wait");
    atomic_fetch_sub(&p->sleepers, 1);
    tp_unlock(p);
    return g;
}

static void *tp_worker(void *arg) {
    tp_worker_arg a = *(tp_worker_arg *)arg;
    free(arg);
    tp_pool *p = a.p;
    unsigned seen = 0;
    for (;;) {
        seen = tp_wait_gen(p, seen);
        if (atomic_load(&p->stop)) break;
        p->fn(p->ctx, a.ith, p->n);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) {
            tp_lock(p);
            tp_check(pthread_cond_signal(&p->cv_done), "pthread_cond_signal");
            tp_unlock(p);
        }
    }
    return NULL;
}

static void tp_wake_workers(tp_pool *p) {
    if (atomic_load(&p->sleepers) > 0) {
        tp_lock(p);
        tp_check(pthread_cond_broadcast(&p->cv_work), "pthread_cond_broadcast");
        tp_unlock(p);
    }
}

static void tp_shutdown(tp_pool *p, int started) {
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    tp_lock(p);
    tp_check(pthread_cond_broadcast(&p->cv_work), "pthread_cond_broadcast");
    tp_unlock(p);
    for (int i = 0; i < started; i++)
        tp_check(pthread_join(p->threads[i], NULL), "pthread_join");
}

tp_pool *tp_new(int n_threads) {
    if (n_threads <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = c > 0 ? (int)c : 1;
    }
    tp_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) goto err_pool;
    if (pthread_mutex_init(&p->mu, NULL) != 0) goto err_threads;
    if (pthread_cond_init(&p->cv_work, NULL) != 0) goto err_mu;
    if (pthread_cond_init(&p->cv_done, NULL) != 0) goto err_cv_work;
    int started = 0;
    for (; started < n_threads - 1; started++) {
        tp_worker_arg *a = malloc(sizeof *a);
        if (!a) goto err_workers;
        a->p = p;
        a->ith = started + 1;
        if (pthread_create(&p->threads[started], NULL, tp_worker, a) != 0) {
            free(a);
            goto err_workers;
        }
    }
    /* OpenBLAS keeps its own threads; size them like the pool. The pool's workers are idle
     * (spinning briefly, then asleep) while an sgemm runs, so the two never compete for long. */
    openblas_set_num_threads(n_threads);
    return p;

err_workers:
    tp_shutdown(p, started);
    pthread_cond_destroy(&p->cv_done);
err_cv_work:
    pthread_cond_destroy(&p->cv_work);
err_mu:
    pthread_mutex_destroy(&p->mu);
err_threads:
    free(p->threads);
err_pool:
    free(p);
    return NULL;
}

void tp_free(tp_pool *p) {
    if (!p) return;
    tp_shutdown(p, p->n - 1);
    tp_check(pthread_cond_destroy(&p->cv_done), "pthread_cond_destroy");
    tp_check(pthread_cond_destroy(&p->cv_work), "pthread_cond_destroy");
    tp_check(pthread_mutex_destroy(&p->mu), "pthread_mutex_destroy");
    free(p->threads);
    free(p);
}

int tp_size(const tp_pool *p) {
    return p ? p->n : 1;
}

void tp_run(tp_pool *p, tp_fn fn, void *ctx) {
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, (unsigned)(p->n - 1));
    atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn/ctx/pending */
    tp_wake_workers(p);
    fn(ctx, 0, p->n);
    /* Wait for the countdown, spinning afresh whenever a worker finishes; sleep only when
     * no worker made progress within a whole spin budget. */
    unsigned left;
    while ((left = atomic_load(&p->pending)) != 0) {
        unsigned now = tp_spin_until_changed(&p->pending, left);
        if (now == left) break; /* no progress within the spin budget: sleep */
    }
    if (atomic_load(&p->pending) == 0) return;
    tp_lock(p);
    atomic_store(&p->caller_waiting, 1);
    while (atomic_load(&p->pending) != 0)
        tp_check(pthread_cond_wait(&p->cv_done, &p->mu), "pthread_cond_wait");
    atomic_store(&p->caller_waiting, 0);
    tp_unlock(p);
}
