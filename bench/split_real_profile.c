/* split_real_profile.c — writes a device profile (the JSON of include/weft/split_plan.h's
 * split_profile) for bench/split_real.sh, in CPU-seconds: the forward pass of MODEL truncated to
 * 1 and to L layers (each with the head) is timed with the process CPU clock, and the two
 * depths give the per-layer slope and the head's intercept, for a prefill of PROMPT tokens and
 * for one decode step, alone and with BATCH tokens per step (the "batched" costs: a decode
 * step of BATCH sequences reads the weights once, timed as BATCH tokens at context PROMPT).
 * The engine's own per-token cost beyond the forward (scheduling, sampling, events) is then
 * measured by running ordinary requests through an engine, and added to the head's decode
 * cost: the server's cost per token as the engine pays it. The planner's own split_profile_measure times wall-clock seconds; on this
 * shared, loaded VM wall time includes waiting for the core, while the server's work is measured
 * in CPU-seconds, so the real run profiles in the same unit. Median over REPS repetitions.
 * usage: split_real_profile MODEL THREADS PROMPT_TOKENS REPS OUT.json [--engine] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include "weft/engine.h"
#include "weft/forward.h"
#include "weft/model.h"
#include "weft/split_plan.h"

#define BATCH 4

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median CPU seconds of a P-token prefill and of one decode step at depth k. */
static int time_depth(const weft_model *full, tp_pool *pool, int k, int P, int reps, double *pre,
                      double *dec, double *dec_b, weft_err *err) {
    weft_model m = *full;
    m.cfg.n_layers = k; /* the first k layers, then the head */
    const weft_config *c = &m.cfg;
    int ctx = P + reps * (1 + BATCH) + 1;
    weft_forward *f = fwd_new(&m, pool, P, ctx, err);
    kv_store *kv = kv_store_new(k, c->n_kv_heads * c->head_dim, ctx, 1, err);
    int32_t *tok = malloc(sizeof *tok * (size_t)ctx), *pos = malloc(sizeof *pos * (size_t)ctx);
    int32_t *seq = calloc((size_t)ctx, sizeof *seq), blk = 0;
    uint8_t *want = calloc((size_t)ctx, 1);
    float *lg = malloc(sizeof *lg * (size_t)c->vocab_size);
    double *tp = malloc(sizeof *tp * (size_t)reps), *td = malloc(sizeof *td * (size_t)reps);
    double *tb = malloc(sizeof *tb * (size_t)reps);
    float *lgb = malloc(sizeof *lgb * (size_t)c->vocab_size * BATCH);
    int rc = -1;
    if (!f || !kv || !tok || !pos || !seq || !want || !lg || !tp || !td || !tb || !lgb) {
        if (f && kv) weft_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < ctx; i++) {
        tok[i] = (i * 7919 + 13) % c->vocab_size;
        pos[i] = i;
    }
    kv_seq sv = {&blk, 1};
    for (int r = 0; r < reps; r++) {
        want[P - 1] = 1;
        weft_batch b = {P, tok, pos, seq, want, 1, &sv};
        double t0 = cpu_s();
        if (fwd_run(f, kv, &b, lg, err) != 0) goto done;
        tp[r] = cpu_s() - t0;
        want[P - 1] = 0;
        uint8_t w = 1;
        weft_batch d = {1, tok + P + r, pos + P + r, seq, &w, 1, &sv};
        t0 = cpu_s();
        if (fwd_run(f, kv, &d, lg, err) != 0) goto done;
        td[r] = cpu_s() - t0;
    }
    /* BATCH tokens in one step, each with logits: per token, the cost of a decode step of
     * BATCH sequences (the same weights read once; attention at about the same context). */
    int at = P + reps;
    for (int r = 0; r < reps; r++) {
        uint8_t wb[BATCH];
        memset(wb, 1, sizeof wb);
        weft_batch d = {BATCH, tok + at, pos + at, seq, wb, 1, &sv};
        double t0 = cpu_s();
        if (fwd_run(f, kv, &d, lgb, err) != 0) goto done;
        tb[r] = (cpu_s() - t0) / BATCH;
        at += BATCH;
    }
    qsort(tb, (size_t)reps, sizeof *tb, cmp);
    *dec_b = tb[reps / 2];
    qsort(tp, (size_t)reps, sizeof *tp, cmp);
    qsort(td, (size_t)reps, sizeof *td, cmp);
    *pre = tp[reps / 2];
    *dec = td[reps / 2];
    rc = 0;
done:
    fwd_free(f);
    kv_store_free(kv);
    free(tok);
    free(pos);
    free(seq);
    free(want);
    free(lg);
    free(tp);
    free(td);
    free(tb);
    free(lgb);
    return rc;
}

/* ---- the engine's per-token cost beyond the forward ---- */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter;

static void on_ev(void *ctx, const engine_event *ev) {
    waiter *w = ctx;
    if (ev->type != ENGINE_EV_FINISHED) return;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Median CPU seconds of one ordinary request (P prompt tokens, N generated, greedy) through an
 * engine of `threads` threads, alone. */
static int time_engine(weft_model *m, int threads, int P, int N, int reps, double *out,
                       weft_err *err) {
    engine_config ec;
    engine_config_defaults(&ec);
    ec.n_threads = threads;
    ec.kv.max_seq_len = P + N + 8;
    ec.kv.capacity_tokens = 4 * (P + N + 8);
    engine *e = engine_new(m, &ec, err);
    if (!e) return -1;
    if (engine_start(e, err) != 0) {
        engine_free(e);
        return -1;
    }
    int32_t *tok = malloc(sizeof *tok * (size_t)P);
    double *t = malloc(sizeof *t * (size_t)reps);
    int rc = -1;
    if (!tok || !t) {
        weft_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < P; i++) tok[i] = (i * 7919 + 13) % m->cfg.vocab_size;
    for (int r = 0; r < reps; r++) {
        waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
        engine_request q = {0};
        q.id = (uint64_t)r + 1;
        q.prompt = tok;
        q.n_prompt = P;
        q.max_tokens = N;
        q.ignore_eos = true;
        sampling_defaults(&q.sampling);
        q.sampling.temperature = 0;
        q.on_event = on_ev;
        q.ctx = &w;
        double t0 = cpu_s();
        if (engine_submit(e, &q, err) != 0) goto done;
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        t[r] = cpu_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    *out = t[reps / 2];
    rc = 0;
done:
    engine_free(e);
    free(tok);
    free(t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 6 && !(argc == 7 && !strcmp(argv[6], "--engine"))) {
        fprintf(stderr, "usage: split_real_profile MODEL THREADS PROMPT_TOKENS REPS OUT.json [--engine]\n");
        return 2;
    }
    int threads = atoi(argv[2]), P = atoi(argv[3]), reps = atoi(argv[4]);
    const int with_engine = argc == 7;
    if (threads < 1 || P < 1 || P > 4096 || reps < 1 || reps > 1000) {
        fprintf(stderr, "split_real_profile: threads >= 1, 1 <= prompt <= 4096, 1 <= reps <= 1000\n");
        return 2;
    }
    weft_err err = {{0}};
    weft_model *m = model_load(argv[1], NULL, &err);
    tp_pool *pool = tp_new(threads);
    if (!m || !pool) {
        fprintf(stderr, "split_real_profile: %s\n", m ? "cannot start threads" : err.msg);
        return 1;
    }
    const int L = m->cfg.n_layers;
    double p1, d1, b1, pL, dL, bL;
    int rc = time_depth(m, pool, 1, P, reps, &p1, &d1, &b1, &err);
    if (rc == 0) rc = time_depth(m, pool, L, P, reps, &pL, &dL, &bL, &err);
    double over = 0; /* the engine's CPU-seconds per generated token beyond the forward */
    const int N = 32;
    if (rc == 0 && with_engine) {
        double te = 0;
        rc = time_engine(m, threads, P, N, reps < 9 ? reps : 9, &te, &err);
        if (rc == 0) {
            over = (te - pL - (N - 1) * dL) / N;
            if (over < 0) over = 0;
        }
    }
    if (rc == 0) {
        split_profile p;
        memset(&p, 0, sizeof p);
        snprintf(p.device, sizeof p.device, "this VM, %d thread(s), CPU-seconds%s", threads,
                 with_engine ? ", engine per-token cost in the head" : "");
        snprintf(p.model, sizeof p.model, "%s", argv[1]);
        p.n_layers = L;
        p.dim = m->cfg.dim;
        p.kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
        p.threads = threads;
        p.prompt_tokens = P;
        p.decode_batch = 1;
        p.k_lo = 1;
        p.k_hi = L;
        double sp = L > 1 ? (pL - p1) / (L - 1) : p1, sd = L > 1 ? (dL - d1) / (L - 1) : d1;
        double sb = L > 1 ? (bL - b1) / (L - 1) : b1;
        if (sp < 0) sp = 0;
        if (sd < 0) sd = 0;
        if (sb < 0) sb = 0;
        p.cost.layer_prefill_s = sp / P;
        p.cost.layer_decode_s = sd;
        p.cost.head_prefill_s = (p1 > sp ? p1 - sp : 0) + over;
        p.cost.head_decode_s = (d1 > sd ? d1 - sd : 0) + over;
        p.batched_n = BATCH;
        p.cost_batched = p.cost;
        p.cost_batched.layer_decode_s = sb;
        p.cost_batched.head_decode_s = (b1 > sb ? b1 - sb : 0) + over;
        rc = split_profile_write_json(&p, argv[5], &err);
        fprintf(stderr, "profile: layer prefill %.3g s/token, decode %.3g s (x%d batch: %.3g), "
                "head %.3g / %.3g s (x%d batch: %.3g), engine per token %.3g s\n",
                p.cost.layer_prefill_s, p.cost.layer_decode_s, BATCH, sb, p.cost.head_prefill_s,
                p.cost.head_decode_s, BATCH, p.cost_batched.head_decode_s, over);
    }
    if (rc != 0) fprintf(stderr, "split_real_profile: %s\n", err.msg);
    tp_free(pool);
    model_free(m);
    return rc == 0 ? 0 : 1;
}
