/* test_forward.c — the ragged-batch forward pass: a batch mixing 8 sequences of different
 * lengths (prefill chunks and decode tokens together, dense or paged KV) must give the same
 * logits as running each sequence alone; invalid batches are refused with a clear message.
 * With an F16 KV cache the same holds (batched = alone, same F16 maths), and F16 logits stay
 * within a stated tolerance of the F32-cache logits. With a Q8_0 KV cache and Q8_0 weights,
 * batched logits are bit-identical to alone ones (dense and paged: K/V are quantized per token
 * and head, and the quantized matmuls are batch-invariant); Q8_0-cache logits stay within a
 * stated tolerance of F32-cache logits. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/forward.h"
#include "weft/model.h"

#define NSEQ 8
#define NDEC 4
static const int prompt_len[NSEQ] = {1, 3, 5, 8, 13, 2, 21, 7};

typedef struct fixture {
    weft_model *m;
    tp_pool *pool;
    int32_t tokens[NSEQ][64]; /* prompt then decode tokens */
    float *solo;              /* [NSEQ][NDEC+1][V] logits from running alone */
} fixture;

static weft_model *make_model(const char *preset, weft_dtype type, const char *tag) {
    return tu_synth_model(tag, preset, type, 11);
}

static double max_rel_err(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Runs sequence s alone: one prefill call, then NDEC decode calls; block table of one block. */
static void run_solo_store(fixture *fx, int s, float *out, kv_dtype dt, bool row_major) {
    weft_err err = {{0}};
    const weft_config *c = &fx->m->cfg;
    const int V = c->vocab_size, n = prompt_len[s];
    kv_store *kv = row_major
                       ? kv_store_new(c->n_layers, c->n_kv_heads * c->head_dim, 64, 1, &err)
                       : kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, 64, 1, dt, &err);
    weft_forward *f = fwd_new(fx->m, fx->pool, 64, 64, &err);
    assert_non_null(kv);
    assert_non_null(f);
    int32_t blk = 0, pos[64], seq[64] = {0};
    uint8_t want[64] = {0};
    kv_seq sv = {&blk, 1};
    for (int i = 0; i < n; i++) pos[i] = i;
    want[n - 1] = 1;
    weft_batch b = {n, fx->tokens[s], pos, seq, want, 1, &sv};
    assert_int_equal(fwd_run(f, kv, &b, out, &err), 0);
    for (int d = 0; d < NDEC; d++) {
        int32_t p = n + d;
        uint8_t w = 1;
        weft_batch db = {1, &fx->tokens[s][n + d], &p, seq, &w, 1, &sv};
        assert_int_equal(fwd_run(f, kv, &db, out + (size_t)(d + 1) * V, &err), 0);
    }
    fwd_free(f);
    kv_store_free(kv);
}

static void run_solo(fixture *fx, int s, float *out, kv_dtype dt) {
    run_solo_store(fx, s, out, dt, false);
}

static int setup_common(void **state, const char *preset, weft_dtype type, const char *tag) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->m = make_model(preset, type, tag);
    fx->pool = tp_new(2);
    if (!fx->m || !fx->pool) return -1;
    unsigned r = 12345;
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < 64; i++) {
            r = r * 1103515245u + 12345u;
            fx->tokens[s][i] = 3 + (int)((r >> 8) % (unsigned)(fx->m->cfg.vocab_size - 3));
        }
    int V = fx->m->cfg.vocab_size;
    fx->solo = malloc(sizeof(float) * NSEQ * (NDEC + 1) * (size_t)V);
    if (!fx->solo) return -1;
    *state = fx;
    return 0;
}
static int setup_f32(void **state) { return setup_common(state, "test-gqa", WEFT_F32, "fwd-f32.gguf"); }
static int setup_q8(void **state) { return setup_common(state, "test-gqa", WEFT_Q8_0, "fwd-q8.gguf"); }
/* head size 64: the SIMD attention path */
static int setup_hd64(void **state) { return setup_common(state, "test-hd64", WEFT_F32, "fwd-hd64.gguf"); }

static int teardown(void **state) {
    fixture *fx = *state;
    if (!fx) return 0;
    model_free(fx->m);
    tp_free(fx->pool);
    free(fx->solo);
    free(fx);
    return 0;
}

/* Batched schedule with a paged cache (block_tokens blocks, handed out interleaved across
 * sequences): step 0 prefills sequences 0-3; step 1 decodes 0-3 while prefilling 4-7 in full;
 * later steps decode everyone (sequences 4-7 lag one decode step behind). */
static void check_ragged_dt(fixture *fx, int block_tokens, double tol, kv_dtype dt) {
    weft_err err = {{0}};
    const weft_config *c = &fx->m->cfg;
    const int V = c->vocab_size;
    for (int s = 0; s < NSEQ; s++) run_solo(fx, s, fx->solo + (size_t)s * (NDEC + 1) * V, dt);

    int bps = (64 + block_tokens - 1) / block_tokens;
    kv_store *kv = kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, block_tokens,
                                      bps * NSEQ, dt, &err);
    weft_forward *f = fwd_new(fx->m, fx->pool, 128, 64, &err);
    assert_non_null(kv);
    assert_non_null(f);
    int32_t blocks[NSEQ][64];
    kv_seq seqs[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        for (int i = 0; i < bps; i++) blocks[s][i] = i * NSEQ + (NSEQ - 1 - s);
        seqs[s].blocks = blocks[s];
        seqs[s].n_blocks = bps;
    }
    int done[NSEQ] = {0}; /* tokens already in the cache */
    int outs[NSEQ] = {0}; /* logits rows produced */
    float *logits = malloc(sizeof(float) * 128 * (size_t)V);
    assert_non_null(logits);
    for (int step = 0; step < NDEC + 2; step++) {
        int32_t tok[128], pos[128], seq[128];
        uint8_t want[128];
        int owner[128], n = 0;
        for (int s = 0; s < NSEQ; s++) {
            if (s >= 4 && step == 0) continue;
            if (outs[s] > NDEC) continue;
            int upto = done[s] == 0 ? prompt_len[s] : done[s] + 1;
            for (int p = done[s]; p < upto; p++) {
                tok[n] = fx->tokens[s][p];
                pos[n] = p;
                seq[n] = s;
                want[n] = p == upto - 1;
                owner[n] = s;
                n++;
            }
            done[s] = upto;
        }
        if (n == 0) break;
        weft_batch b = {n, tok, pos, seq, want, NSEQ, seqs};
        assert_int_equal(fwd_run(f, kv, &b, logits, &err), 0);
        int row = 0;
        for (int i = 0; i < n; i++) {
            if (!want[i]) continue;
            int s = owner[i];
            const float *ref = fx->solo + ((size_t)s * (NDEC + 1) + outs[s]) * V;
            double e = max_rel_err(logits + (size_t)row * V, ref, V);
            if (e > tol) fail_msg("sequence %d output %d: rel err %.3g > %.1g", s, outs[s], e, tol);
            outs[s]++;
            row++;
        }
    }
    for (int s = 0; s < NSEQ; s++) assert_int_equal(outs[s], NDEC + 1);
    free(logits);
    fwd_free(f);
    kv_store_free(kv);
}

static void check_ragged(fixture *fx, int block_tokens, double tol) {
    check_ragged_dt(fx, block_tokens, tol, KV_F32);
}

static void test_ragged_f32_paged(void **state) { check_ragged(*state, 16, 1e-4); }
/* Batched and single matmuls round differently in the last F32 bit; when such a difference
 * straddles an F16 rounding boundary the cached element moves by one half-ulp (2^-11), so the
 * F16 comparison allows 2e-3 instead of 1e-4 (a wrong row or position would be off by O(1)). */
static void test_ragged_f16kv_paged(void **state) { check_ragged_dt(*state, 16, 2e-3, KV_F16); }
static void test_ragged_f16kv_dense(void **state) { check_ragged_dt(*state, 64, 2e-3, KV_F16); }

/* The head-major store (what the engine uses) and a row-major one hold the same numbers in a
 * different order; the attention kernels sum in the same order, so logits are bit-identical. */
static void test_layouts_identical(void **state) {
    fixture *fx = *state;
    const int V = fx->m->cfg.vocab_size;
    float *a = malloc(sizeof(float) * (NDEC + 1) * (size_t)V);
    float *b = malloc(sizeof(float) * (NDEC + 1) * (size_t)V);
    assert_non_null(a);
    assert_non_null(b);
    for (int s = 0; s < NSEQ; s++) {
        run_solo_store(fx, s, a, KV_F32, true);
        run_solo_store(fx, s, b, KV_F32, false);
        assert_memory_equal(a, b, sizeof(float) * (NDEC + 1) * (size_t)V);
    }
    free(a);
    free(b);
}

/* The largest relative logit error of a `type` cache against an F32 cache over every fixture
 * sequence and decode step; asserts the caches really differ and stay under tol. */
static void kv_type_close_to_f32(fixture *fx, kv_dtype type, double tol) {
    const int V = fx->m->cfg.vocab_size;
    float *a = malloc(sizeof(float) * (NDEC + 1) * (size_t)V);
    float *b = malloc(sizeof(float) * (NDEC + 1) * (size_t)V);
    assert_non_null(a);
    assert_non_null(b);
    double worst = 0;
    for (int s = 0; s < NSEQ; s++) {
        run_solo(fx, s, a, KV_F32);
        run_solo(fx, s, b, type);
        for (int d = 0; d <= NDEC; d++) {
            double e = max_rel_err(b + (size_t)d * V, a + (size_t)d * V, V);
            if (e > worst) worst = e;
        }
    }
    printf("%s KV vs F32 KV: max relative logit error %.3g (tolerance %.0e)\n",
           kv_dtype_name(type), worst, tol);
    assert_true(worst > 0); /* the caches really differ */
    assert_true(worst < tol);
    free(a);
    free(b);
}

/* An F16 cache rounds each K/V element once (relative 2^-11); through attention and the
 * remaining layers the logits move by far less than 1% of their range. */
static void test_f16kv_close_to_f32(void **state) { kv_type_close_to_f32(*state, KV_F16, 1e-2); }

/* A Q8_0 cache rounds each K/V element to a step of max|row|/127 (up to 0.4% of the row's
 * largest element, vs 2^-11 relative for F16): through softmax and the remaining layers the
 * logits move by a few percent of their range at most (measured, printed: 0.015 F32 weights,
 * 0.017 head size 64, 0.042 Q8_0 weights, whose activation quantization amplifies it). */
static void test_q8kv_close_to_f32(void **state) { kv_type_close_to_f32(*state, KV_Q8_0, 8e-2); }

/* F32 weights: batched and single matmuls may differ in the last F32 bit, and a K/V element
 * next to a rounding boundary then moves by one quantization step; the tolerance allows that
 * (a wrong row, scale or position would be off by O(1)). */
#define Q8KV_RAGGED_TOL 2e-2
static void test_ragged_q8kv_paged_tol(void **state) {
    check_ragged_dt(*state, 16, Q8KV_RAGGED_TOL, KV_Q8_0);
}
/* Q8_0 weights: everything upstream of the cache is bit-identical batched or alone, so the
 * cache is too, and so are the logits (tolerance 0), in the paged and the dense layout. */
static void test_ragged_q8kv_paged_exact(void **state) { check_ragged_dt(*state, 16, 0, KV_Q8_0); }
static void test_ragged_q8kv_dense_exact(void **state) { check_ragged_dt(*state, 64, 0, KV_Q8_0); }
static void test_ragged_q8kv_small_blocks_exact(void **state) {
    check_ragged_dt(*state, 4, 0, KV_Q8_0);
}
static void test_ragged_f32_dense(void **state) { check_ragged(*state, 64, 1e-4); }
/* Quantized weights quantize the activations too; batching must still not change the maths. */
static void test_ragged_q8_paged(void **state) { check_ragged(*state, 4, 1e-4); }

static void expect_refusal(fixture *fx, weft_batch *b, kv_store *kv, const char *needle) {
    weft_err err = {{0}};
    weft_forward *f = fwd_new(fx->m, fx->pool, 8, 32, &err);
    assert_non_null(f);
    float *logits = malloc(sizeof(float) * 8 * (size_t)fx->m->cfg.vocab_size);
    assert_non_null(logits);
    assert_int_equal(fwd_run(f, kv, b, logits, &err), -1);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
    free(logits);
    fwd_free(f);
}

static void test_invalid_batches(void **state) {
    fixture *fx = *state;
    const weft_config *c = &fx->m->cfg;
    weft_err err = {{0}};
    kv_store *kv = kv_store_new(c->n_layers, c->n_kv_heads * c->head_dim, 16, 2, &err);
    assert_non_null(kv);
    int32_t blk[2] = {0, 1}, bad_blk = 7;
    kv_seq sv = {blk, 2}, sv_bad = {&bad_blk, 1};
    int32_t tok[3] = {5, 6, 7}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0};
    uint8_t want[3] = {1, 1, 1};
    weft_batch b = {3, tok, pos, seq, want, 1, &sv};

    int32_t big = c->vocab_size;
    b.token = &big;
    b.n_tokens = 1;
    expect_refusal(fx, &b, kv, "outside the vocabulary");
    b.token = tok;
    b.n_tokens = 3;
    int32_t back[3] = {0, 2, 1};
    b.pos = back;
    expect_refusal(fx, &b, kv, "must increase");
    int32_t far[3] = {0, 1, 40};
    b.pos = far;
    expect_refusal(fx, &b, kv, "outside the context");
    int32_t past[3] = {0, 1, 20};
    kv_seq one = {blk, 1};
    b.seqs = &one;
    b.pos = past;
    expect_refusal(fx, &b, kv, "has no KV block");
    b.pos = pos;
    b.seqs = &sv_bad;
    expect_refusal(fx, &b, kv, "names KV block 7");
    b.seqs = &sv;
    int32_t badseq[3] = {0, 0, 3};
    b.seq = badseq;
    expect_refusal(fx, &b, kv, "names sequence 3");
    b.seq = seq;
    b.n_tokens = 9;
    expect_refusal(fx, &b, kv, "limit 8");
    kv_store_free(kv);
}

int main(void) {
    const struct CMUnitTest f32[] = {
        cmocka_unit_test(test_ragged_f32_paged),
        cmocka_unit_test(test_ragged_f32_dense),
        cmocka_unit_test(test_ragged_f16kv_paged),
        cmocka_unit_test(test_ragged_f16kv_dense),
        cmocka_unit_test(test_f16kv_close_to_f32),
        cmocka_unit_test(test_q8kv_close_to_f32),
        cmocka_unit_test(test_ragged_q8kv_paged_tol),
        cmocka_unit_test(test_layouts_identical),
        cmocka_unit_test(test_invalid_batches),
    };
    const struct CMUnitTest q8[] = {
        cmocka_unit_test(test_ragged_q8_paged),
        cmocka_unit_test(test_ragged_q8kv_paged_exact),
        cmocka_unit_test(test_ragged_q8kv_dense_exact),
        cmocka_unit_test(test_ragged_q8kv_small_blocks_exact),
        cmocka_unit_test(test_q8kv_close_to_f32),
    };
    const struct CMUnitTest hd64[] = {
        cmocka_unit_test(test_ragged_f32_paged),
        cmocka_unit_test(test_ragged_f32_dense),
        cmocka_unit_test(test_ragged_f16kv_paged),
        cmocka_unit_test(test_f16kv_close_to_f32),
        cmocka_unit_test(test_q8kv_close_to_f32),
        cmocka_unit_test(test_ragged_q8kv_paged_tol),
        cmocka_unit_test(test_layouts_identical),
    };
    int rc = cmocka_run_group_tests_name("forward_f32", f32, setup_f32, teardown);
    rc |= cmocka_run_group_tests_name("forward_q8_0", q8, setup_q8, teardown);
    rc |= cmocka_run_group_tests_name("forward_hd64_f32", hd64, setup_hd64, teardown);
    return rc;
}
