/* split_real_profile.c — writes a device profile (the JSON of include/weft/split_plan.h's
 * split_profile) for bench/split_real.sh, in CPU-seconds: the forward pass of MODEL truncated to
 * 1 and to L layers (each with the head) is timed with the process CPU clock, and the two
 * depths give the per-layer slope and the head's intercept, for a prefill of PROMPT tokens and
 * for one decode step, alone and with BATCH tokens per step (the "batched" costs: a decode
 * step of BATCH sequences reads the weights once, timed as BATCH tokens at context PROMPT).
 * With --engine (the server's profile) everything is measured through the engine instead, as
 * the server pays it (scheduling, sampling and events included): ordinary requests on the model
 * cut to 1 and to L layers, prefill-only and with 48 generated tokens, one at a time and BATCH
 * at once (a fused decode step of BATCH sequences), the least CPU time of several runs. The planner's own split_profile_measure times wall-clock seconds; on this
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

/* ---- the server's costs as its engine pays them (--engine) ---- */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter;

static void on_ev(void *ctx, const engine_event *ev) {
    waiter *w = ctx;
    if (ev->type != ENGINE_EV_FINISHED) return;
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Least CPU seconds per request (over reps) of `conc` ordinary requests submitted at once (P
 * prompt tokens, N generated, greedy) through an engine of `threads` threads on the first k
 * layers of the model. Fastest, not median: on a shared VM interference only adds time. */
static int engine_cpu(const weft_model *full, int k, int threads, int P, int N, int conc, int reps,
                      double *out, weft_err *err) {
    weft_model m = *full;
    m.cfg.n_layers = k;
    engine_config ec;
    engine_config_defaults(&ec);
    ec.n_threads = threads;
    ec.kv.max_seq_len = P + N + 8;
    ec.kv.capacity_tokens = conc * (P + N + 8) + 64;
    engine *e = engine_new(&m, &ec, err);
    if (!e) return -1;
    if (engine_start(e, err) != 0) {
        engine_free(e);
        return -1;
    }
    int32_t *tok = malloc(sizeof *tok * (size_t)P);
    int rc = -1;
    double best = -1;
    static uint64_t next_id = 1;
    if (!tok) {
        weft_errf(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < P; i++) tok[i] = (i * 7919 + 13) % m.cfg.vocab_size;
    for (int r = 0; r < reps; r++) {
        waiter w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
        double t0 = cpu_s();
        for (int c = 0; c < conc; c++) {
            engine_request q = {0};
            q.id = next_id++;
            q.prompt = tok;
            q.n_prompt = P;
            q.max_tokens = N;
            q.ignore_eos = true;
            sampling_defaults(&q.sampling);
            q.sampling.temperature = 0;
            q.on_event = on_ev;
            q.ctx = &w;
            if (engine_submit(e, &q, err) != 0) goto done;
        }
        pthread_mutex_lock(&w.mu);
        while (w.done < conc) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        double t = (cpu_s() - t0) / conc;
        if (best < 0 || t < best) best = t;
    }
    *out = best;
    rc = 0;
done:
    engine_free(e);
    free(tok);
    return rc;
}

/* Per-layer and head costs from the engine at depths 1 and L, alone and BATCH at once. */
static int engine_profile(const weft_model *m, int threads, int P, int reps, split_device_cost *c1,
                          split_device_cost *cb, weft_err *err) {
    const int L = m->cfg.n_layers, N = 48, ks[2] = {1, L};
    double pre[2][2], full[2][2]; /* [depth][alone, batch] */
    for (int d = 0; d < 2; d++)
        for (int b = 0; b < 2; b++) {
            int conc = b ? BATCH : 1;
            if (engine_cpu(m, ks[d], threads, P, 1, conc, reps, &pre[d][b], err) ||
                engine_cpu(m, ks[d], threads, P, N, conc, reps, &full[d][b], err))
                return -1;
        }
    split_device_cost *out[2] = {c1, cb};
    for (int b = 0; b < 2; b++) {
        double dec1 = (full[0][b] - pre[0][b]) / (N - 1), decL = (full[1][b] - pre[1][b]) / (N - 1);
        double sp = L > 1 ? (pre[1][b] - pre[0][b]) / (L - 1) : pre[0][b];
        double sd = L > 1 ? (decL - dec1) / (L - 1) : dec1;
        if (sp < 0) sp = 0;
        if (sd < 0) sd = 0;
        out[b]->layer_prefill_s = sp / P;
        out[b]->layer_decode_s = sd;
        out[b]->head_prefill_s = pre[0][b] > sp ? pre[0][b] - sp : 0;
        out[b]->head_decode_s = dec1 > sd ? dec1 - sd : 0;
    }
    return 0;
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
    split_device_cost e1 = {0}, eb = {0};
    if (rc == 0 && with_engine) rc = engine_profile(m, threads, P, reps < 7 ? reps : 7, &e1, &eb, &err);
    if (rc == 0) {
        split_profile p;
        memset(&p, 0, sizeof p);
        snprintf(p.device, sizeof p.device, "this VM, %d thread(s), CPU-seconds%s", threads,
                 with_engine ? ", through the engine" : ", the forward alone");
        snprintf(p.model, sizeof p.model, "%s", argv[1]);
        p.n_layers = L;
        p.dim = m->cfg.dim;
        p.kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
        p.threads = threads;
        p.prompt_tokens = P;
        p.decode_batch = 1;
        p.k_lo = 1;
        p.k_hi = L;
        p.batched_n = BATCH;
        if (with_engine) {
            p.cost = e1;
            p.cost_batched = eb;
        } else {
            double sp = L > 1 ? (pL - p1) / (L - 1) : p1, sd = L > 1 ? (dL - d1) / (L - 1) : d1;
            double sb = L > 1 ? (bL - b1) / (L - 1) : b1;
            if (sp < 0) sp = 0;
            if (sd < 0) sd = 0;
            if (sb < 0) sb = 0;
            p.cost.layer_prefill_s = sp / P;
            p.cost.layer_decode_s = sd;
            p.cost.head_prefill_s = p1 > sp ? p1 - sp : 0;
            p.cost.head_decode_s = d1 > sd ? d1 - sd : 0;
            p.cost_batched = p.cost;
            p.cost_batched.layer_decode_s = sb;
            p.cost_batched.head_decode_s = b1 > sb ? b1 - sb : 0;
        }
        rc = split_profile_write_json(&p, argv[5], &err);
        fprintf(stderr, "profile (%s): layer prefill %.3g s/token, decode %.3g s (x%d batch: "
                "%.3g), head %.3g / %.3g s (x%d batch: %.3g)\n",
                with_engine ? "engine" : "forward", p.cost.layer_prefill_s, p.cost.layer_decode_s,
                BATCH, p.cost_batched.layer_decode_s, p.cost.head_prefill_s,
                p.cost.head_decode_s, BATCH, p.cost_batched.head_decode_s);
    }
    if (rc != 0) fprintf(stderr, "split_real_profile: %s\n", err.msg);
    tp_free(pool);
    model_free(m);
    return rc == 0 ? 0 : 1;
}
