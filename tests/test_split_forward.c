/* test_split_forward.c — partial models and entry layers in the forward pass (the foundation of
 * split inference). For EVERY split point p in 0..L: a client forward owning layers [0, p) (its
 * own p-layer KV cache) hands hidden states to a server forward that owns all layers and lets
 * the tokens enter at layer p; greedy generation must give exactly the unsplit tokens with F32
 * hidden states, and (on these models) the same tokens with F16 hidden states, logits within a
 * stated tolerance. A batch mixing sequences that enter at different layers must give each the
 * logits it gets alone. Invalid split batches are refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/forward.h"
#include "weft/model.h"

#define CTX 64
#define NGEN 12
#define CHUNK 3
/* F16 hidden states: the logits' largest deviation, relative to the largest logit */
#define F16_LOGIT_TOL 2e-3

static const int32_t prompt[] = {1, 17, 42, 9, 300, 5, 77, 128};
#define NPROMPT ((int)(sizeof prompt / sizeof prompt[0]))

typedef struct fixture {
    weft_model *m;
    tp_pool *pool;
} fixture;

static weft_model *synth_model(const char *tag) {
    return tu_synth_model(tag, "test-gqa", WEFT_F32, 5);
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Greedy generation. p < 0: unsplit. Otherwise split at p, hidden states rounded through F16
 * when f16. Writes NGEN tokens and the logits of every step ([NGEN][V]). */
static void generate(fixture *fx, int p, int f16, int32_t *out, float *logits) {
    const weft_config *c = &fx->m->cfg;
    const int L = c->n_layers, D = c->dim, V = c->vocab_size, KVD = c->n_kv_heads * c->head_dim;
    weft_err err = {{0}};
    int split = p >= 0;
    weft_forward *srv = fwd_new(fx->m, fx->pool, CTX, CTX, &err);
    kv_store *skv = kv_store_new(L, KVD, CTX, 1, &err);
    weft_forward *cli = split ? fwd_new_range(fx->m, fx->pool, CTX, CTX, 0, p, &err) : NULL;
    kv_store *ckv = split && p > 0 ? kv_store_new(p, KVD, CTX, 1, &err) : NULL;
    assert_non_null(srv);
    assert_non_null(skv);
    if (split) assert_non_null(cli);
    if (split && p > 0) assert_non_null(ckv);
    float *hid = malloc(sizeof(float) * CTX * D);
    int32_t *entry = malloc(sizeof(int32_t) * CTX);
    assert_non_null(hid);
    assert_non_null(entry);
    int32_t toks[CTX], pos[CTX], seq[CTX] = {0}, blk = 0;
    uint8_t want[CTX];
    kv_seq sv = {&blk, 1};
    memcpy(toks, prompt, sizeof prompt);
    int n_tok = NPROMPT, done = 0, gen = 0;
    while (gen < NGEN) {
        int n = n_tok - done;
        if (n > CHUNK) n = CHUNK;
        for (int i = 0; i < n; i++) {
            pos[i] = done + i;
            want[i] = done + i == n_tok - 1;
            entry[i] = p;
        }
        weft_batch b = {n, toks + done, pos, seq, want, 1, &sv};
        fwd_split sp = {0};
        if (split) {
            fwd_split cs = {.hidden_out = hid};
            assert_int_equal(fwd_run_split(cli, ckv, &b, &cs, NULL, &err), 0);
            if (f16)
                for (int i = 0; i < n * D; i++) hid[i] = fp16_to_f32(f32_to_fp16(hid[i]));
            sp = (fwd_split){.n_hidden = n, .entry = entry, .hidden_in = hid};
        }
        float *lg = logits + (size_t)gen * V;
        if (fwd_run_split(srv, skv, &b, &sp, lg, &err) != 0) fail_msg("%s", err.msg);
        done += n;
        if (done < n_tok) continue;
        out[gen] = argmax(lg, V);
        toks[n_tok++] = out[gen++];
    }
    free(hid);
    free(entry);
    fwd_free(srv);
    fwd_free(cli);
    kv_store_free(skv);
    kv_store_free(ckv);
}

static double rel_dev(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > num) num = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

static void every_split_point(fixture *fx) {
    const int L = fx->m->cfg.n_layers, V = fx->m->cfg.vocab_size;
    int32_t ref[NGEN], got[NGEN];
    float *lref = malloc(sizeof(float) * NGEN * V), *lgot = malloc(sizeof(float) * NGEN * V);
    assert_non_null(lref);
    assert_non_null(lgot);
    generate(fx, -1, 0, ref, lref);
    for (int p = 0; p <= L; p++) {
        generate(fx, p, 0, got, lgot);
        for (int i = 0; i < NGEN; i++)
            if (got[i] != ref[i]) fail_msg("F32 split at %d: token %d is %d, unsplit %d", p, i, got[i], ref[i]);
        double d32 = rel_dev(lgot, lref, (size_t)NGEN * V);
        assert_true(d32 < 1e-5);
        generate(fx, p, 1, got, lgot);
        double d16 = rel_dev(lgot, lref, (size_t)NGEN * V);
        printf("split at %d/%d: F32 logits dev %.2e, F16 logits dev %.2e\n", p, L, d32, d16);
        for (int i = 0; i < NGEN; i++)
            if (got[i] != ref[i]) fail_msg("F16 split at %d: token %d is %d, unsplit %d", p, i, got[i], ref[i]);
        assert_true(d16 < F16_LOGIT_TOL);
    }
    free(lref);
    free(lgot);
}

static int setup_synth(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->m = synth_model("split_fwd.gguf");
    fx->pool = tp_new(2);
    *state = fx;
    return fx->m && fx->pool ? 0 : -1;
}

static int teardown(void **state) {
    fixture *fx = *state;
    if (!fx) return 0;
    model_free(fx->m);
    tp_free(fx->pool);
    free(fx);
    return 0;
}

static void test_every_split_synth(void **state) {
    every_split_point(*state);
}

static void test_every_split_stories(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(path, "models/stories260K.gguf");
    weft_err err = {{0}};
    fixture fx = {model_load(path, NULL, &err), tp_new(2)};
    assert_non_null(fx.m);
    assert_non_null(fx.pool);
    every_split_point(&fx);
    model_free(fx.m);
    tp_free(fx.pool);
}

/* One batch: seq 0 enters at L (head only), seq 1 at layer 1, seq 2 at 0 by hidden state
 * (the client ran the embedding), seq 3 from token ids; each must get its solo logits. */
static void test_mixed_entry_batch(void **state) {
    fixture *fx = *state;
    const weft_config *c = &fx->m->cfg;
    const int L = c->n_layers, D = c->dim, V = c->vocab_size, KVD = c->n_kv_heads * c->head_dim;
    const int ent[4] = {L, 1, 0, -1}, len[4] = {3, 5, 2, 4};
    weft_err err = {{0}};
    weft_forward *full = fwd_new(fx->m, fx->pool, CTX, CTX, &err);
    assert_non_null(full);
    float solo[4][512], mixed[4][512];
    assert_true(V <= 512);
    float hid[16 * 64];
    assert_true(D <= 64);
    int32_t toks[16], pos[16], seq[16], entry[16], blocks[4] = {0, 1, 2, 3};
    uint8_t want[16];
    kv_seq views[4];
    kv_store *kv = kv_store_new(L, KVD, CTX, 4, &err);
    assert_non_null(kv);
    /* solo: each sequence alone, unsplit, in its own block */
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < len[s]; i++) {
            toks[i] = prompt[i] + s;
            pos[i] = i;
            seq[i] = 0;
            want[i] = i == len[s] - 1;
        }
        kv_seq v = {&blocks[s], 1};
        weft_batch b = {len[s], toks, pos, seq, want, 1, &v};
        assert_int_equal(fwd_run(full, kv, &b, solo[s], &err), 0);
    }
    /* mixed: hidden-state entrants first, by entry layer descending */
    int T = 0, nh = 0;
    for (int s = 0; s < 4; s++) {
        views[s] = (kv_seq){&blocks[s], 1};
        int p = ent[s];
        float *h = hid + (size_t)T * D;
        if (p >= 0) {
            weft_forward *cli = fwd_new_range(fx->m, fx->pool, CTX, CTX, 0, p, &err);
            kv_store *ckv = p > 0 ? kv_store_new(p, KVD, CTX, 1, &err) : NULL;
            assert_non_null(cli);
            int32_t t0[8], p0[8], s0[8] = {0}, b0 = 0;
            for (int i = 0; i < len[s]; i++) {
                t0[i] = prompt[i] + s;
                p0[i] = i;
            }
            kv_seq cv = {&b0, 1};
            weft_batch cb = {.n_tokens = len[s], .token = t0, .pos = p0, .seq = s0, .n_seqs = 1,
                             .seqs = &cv};
            fwd_split cs = {.hidden_out = h};
            assert_int_equal(fwd_run_split(cli, ckv, &cb, &cs, NULL, &err), 0);
            fwd_free(cli);
            kv_store_free(ckv);
            nh += len[s];
        }
        for (int i = 0; i < len[s]; i++, T++) {
            toks[T] = prompt[i] + s;
            pos[T] = i;
            seq[T] = s;
            want[T] = i == len[s] - 1;
            entry[T] = p;
        }
    }
    weft_batch b = {T, toks, pos, seq, want, 4, views};
    fwd_split sp = {.n_hidden = nh, .entry = entry, .hidden_in = hid};
    assert_int_equal(fwd_run_split(full, kv, &b, &sp, mixed[0], &err), 0);
    for (int s = 0; s < 4; s++) {
        double d = rel_dev(mixed[s], solo[s], (size_t)V);
        printf("entry %d: logits dev %.2e from solo\n", ent[s], d);
        assert_true(d < 1e-5);
    }
    /* refused: entry increasing along the batch */
    entry[0] = 0;
    entry[1] = 2;
    assert_int_equal(fwd_run_split(full, kv, &b, &sp, mixed[0], &err), -1);
    assert_non_null(strstr(err.msg, "not increase"));
    /* refused: a range that ends before the head without hidden_out */
    weft_forward *part = fwd_new_range(fx->m, fx->pool, CTX, CTX, 0, 1, &err);
    kv_store *pkv = kv_store_new(1, KVD, CTX, 4, &err);
    assert_non_null(part);
    weft_batch pb = {1, toks, pos, seq, want, 1, views};
    assert_int_equal(fwd_run(part, pkv, &pb, mixed[0], &err), -1);
    assert_non_null(strstr(err.msg, "hidden_out"));
    /* refused: a KV store whose layer count does not match the range */
    fwd_split ps = {.hidden_out = hid};
    assert_int_equal(fwd_run_split(part, kv, &pb, &ps, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "KV store shape"));
    /* refused: a range outside the model */
    assert_null(fwd_new_range(fx->m, fx->pool, CTX, CTX, 2, L + 1, &err));
    fwd_free(part);
    kv_store_free(pkv);
    fwd_free(full);
    kv_store_free(kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_split_synth, setup_synth, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_entry_batch, setup_synth, teardown),
        cmocka_unit_test(test_every_split_stories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
