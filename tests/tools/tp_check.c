/* tp_check.c — test driver for tensor parallelism (tests/test_tp.sh runs it with --tp 1 and,
 * under mpirun, --tp 2, and compares the outputs).
 *   tp_check logits MODEL TP OUT.f32   prefill 40 fixed tokens in two chunks (logits for every
 *                                      token) then 8 greedy decode steps; rank 0 writes every
 *                                      logits row (float32) to OUT and the tokens to stdout
 *   tp_check engine MODEL TP dense|paged
 *                                      the fusion engine, driven step by step: 7 greedy requests
 *                                      with different prompt and output lengths join at
 *                                      different steps and leave when done (dense: compaction
 *                                      moves cache slots); prints each request's tokens and, on
 *                                      stderr, the slot moves */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/engine.h"
#include "weft/forward.h"
#include "weft/kv.h"
#include "weft/tp.h"

static weft_model *load(void *ctx, weft_err *err) {
    return model_load(ctx, NULL, err);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int run_logits(weft_model *m, const char *out_path) {
    const int V = m->cfg.vocab_size, P = 40, G = 8, N = P + G;
    weft_err err = {{0}};
    tp_pool *pool = tp_new(1);
    kv_store *kv = kv_store_new(m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 64, 1, &err);
    weft_forward *f = pool && kv ? fwd_new(m, pool, 32, 64, &err) : NULL;
    float *lg = malloc(sizeof(float) * (size_t)N * (size_t)V);
    int32_t tok[48], pos[48], seq[48] = {0};
    uint8_t want[48];
    FILE *out = fopen(out_path, "wb");
    int rc = 1;
    if (!pool || !kv || !f || !lg || !out) {
        fprintf(stderr, "tp_check: setup failed: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < P; i++)
        tok[i] = 1 + (i * 37 + 11) % (V - 1);
    for (int i = 0; i < N; i++)
        pos[i] = i, want[i] = 1;
    int32_t blk = 0;
    kv_seq sv = {&blk, 1};
    int at = 0;
    for (int c = 0; c < 2; c++) { /* prefill in chunks of 24 and 16 */
        int n = c == 0 ? 24 : P - 24;
        weft_batch b = {n, tok + at, pos + at, seq, want, 1, &sv};
        if (fwd_run(f, kv, &b, lg + (size_t)at * V, &err) != 0) goto fail;
        at += n;
    }
    for (int g = 0; g < G; g++) {
        tok[at] = argmax(lg + (size_t)(at - 1) * V, V);
        printf("%d ", tok[at]);
        weft_batch b = {1, tok + at, pos + at, seq, want, 1, &sv};
        if (fwd_run(f, kv, &b, lg + (size_t)at * V, &err) != 0) goto fail;
        at++;
    }
    printf("\n");
    if (fwrite(lg, sizeof(float) * (size_t)V, (size_t)N, out) != (size_t)N) {
        fprintf(stderr, "tp_check: write failed\n");
        goto done;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "tp_check: %s\n", err.msg);
done:
    if (out && fclose(out) != 0) rc = 1;
    free(lg);
    fwd_free(f);
    kv_store_free(kv);
    if (pool) tp_free(pool);
    return rc;
}

#define NREQ 7
typedef struct req_out {
    int tokens[64];
    int n, done;
} req_out;

static void on_event(void *ctx, const engine_event *ev) {
    req_out *r = ctx;
    if (ev->type == ENGINE_EV_TOKEN && r->n < 64) r->tokens[r->n++] = ev->token;
    if (ev->type == ENGINE_EV_FINISHED) r->done = 1;
}

static int run_engine(weft_model *m, const char *layout) {
    engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.mode = ENGINE_FUSED;
    cfg.n_threads = 1;
    cfg.max_running = 8;
    cfg.max_batch_tokens = 24; /* long prompts prefill in chunks beside running decodes */
    cfg.kv.layout = strcmp(layout, "dense") ? KV_LAYOUT_PAGED : KV_LAYOUT_DENSE;
    cfg.kv.max_seq_len = 96;
    cfg.kv.capacity_tokens = 5 * 96;
    weft_err err = {{0}};
    engine *e = engine_new(m, &cfg, &err);
    if (!e) {
        fprintf(stderr, "tp_check: %s\n", err.msg);
        return 1;
    }
    static const int plen[NREQ] = {5, 31, 12, 3, 40, 9, 17};
    static const int olen[NREQ] = {20, 6, 30, 12, 8, 25, 4};
    static const int join[NREQ] = {0, 0, 3, 5, 9, 14, 20};
    req_out outs[NREQ];
    memset(outs, 0, sizeof outs);
    int32_t prompt[64];
    int submitted = 0, rc = 0;
    for (int step = 0; step < 1000; step++) {
        while (submitted < NREQ && join[submitted] <= step) {
            int i = submitted++;
            for (int k = 0; k < plen[i]; k++)
                prompt[k] = 1 + (k * 13 + i * 101) % (m->cfg.vocab_size - 1);
            engine_request r = {.id = (uint64_t)i + 1,
                                .prompt = prompt,
                                .n_prompt = plen[i],
                                .max_tokens = olen[i],
                                .ignore_eos = true,
                                .on_event = on_event,
                                .ctx = &outs[i]};
            sampling_defaults(&r.sampling);
            r.sampling.temperature = 0;
            if (engine_submit(e, &r, &err) != 0) {
                fprintf(stderr, "tp_check: submit: %s\n", err.msg);
                rc = 1;
            }
        }
        if (engine_step(e, &err) < 0) {
            fprintf(stderr, "tp_check: step: %s\n", err.msg);
            rc = 1;
            break;
        }
        int all = submitted == NREQ;
        for (int i = 0; i < NREQ; i++)
            all &= outs[i].done;
        if (all) break;
    }
    for (int i = 0; i < NREQ; i++) {
        printf("req %d (%s):", i, outs[i].done ? "done" : "UNFINISHED");
        for (int k = 0; k < outs[i].n; k++)
            printf(" %d", outs[i].tokens[k]);
        printf("\n");
        if (!outs[i].done) rc = 1;
    }
    engine_stats st;
    engine_get_stats(e, &st);
    fprintf(stderr, "tp_check: %llu steps, %lld slot moves\n", (unsigned long long)st.steps,
            (long long)st.kv.slot_moves);
    engine_free(e);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr,
                "usage: tp_check logits MODEL TP OUT | tp_check engine MODEL TP dense|paged\n");
        return 2;
    }
    int n = atoi(argv[3]);
    tp_session *s = NULL;
    weft_model *m = NULL;
    int exit_code = 0;
    weft_err err = {{0}};
    int jr = tp_job_begin(n, load, argv[2], 1, &s, &m, &exit_code, &err);
    if (jr == 1) return exit_code;
    if (jr != 0) {
        fprintf(stderr, "tp_check: %s\n", err.msg);
        return 1;
    }
    int rc = !strcmp(argv[1], "logits") ? run_logits(m, argv[4]) : run_engine(m, argv[4]);
    tp_job_end(s);
    model_free(m);
    return rc;
}
