/* test_attn_items.c — attn_run (src/forward/attention.c) over a paged block store: work items of
 * all of a token's KV heads (the default), of several heads and of one head (the earlier split),
 * with any prefetch distance and with one or two threads, must give the same bits — per head the
 * kernel calls, their arguments and their order are the same, so grouping heads cannot change a
 * result — and every item split must match a double-precision reference over the same stored
 * (F32 / F16 / Q8_0-dequantized) rows within the F32 arithmetic bound below. Shapes: block sizes
 * 1, 3, 16 and 64 (the whole context in one block), GQA groups 1, 2 and 4, ragged batches that
 * mix decode tokens of long histories with a prefill run of one sequence and a one-token
 * sequence, blocks handed out interleaved across sequences as a fused batch's are, and a
 * one-token batch (its heads split over the threads) against the same token in the batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/attention.h"
#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/kernels.h"
#include "weft/kv.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Element d of stored row (block, layer, row) of KV head h, as the kernels see it (F32). */
static double stored(const kv_store *kv, bool is_v, int blk, int layer, int row, int h, int d) {
    const char *base = is_v ? kv_v_ptr(kv, blk, layer) : kv_k_ptr(kv, blk, layer);
    const size_t off = kv_byte_off(kv, row, h * kv->head_dim + d);
    if (kv->dtype == KV_F32) return *(const float *)(base + off);
    if (kv->dtype == KV_F16) return fp16_to_f32(*(const uint16_t *)(base + off));
    const float sc = ((const float *)(base + kv_scale_off(kv, h * kv->head_dim)))[row];
    return (double)sc * (double)*(const int8_t *)(base + off);
}

typedef struct shape {
    int n_heads, n_kv_heads, hd, bt, n_layers;
    kv_dtype dt;
} shape;

static void check(const shape *s) {
    weft_config c = {0};
    c.dim = s->n_heads * s->hd;
    c.n_layers = s->n_layers;
    c.n_heads = s->n_heads;
    c.n_kv_heads = s->n_kv_heads;
    c.head_dim = s->hd;
    c.rope_dim = s->hd;
    c.rope_theta = 10000.0f;
    c.rope_freq_scale = 1.0f;
    const int g = s->n_heads / s->n_kv_heads, hd = s->hd, QD = s->n_heads * hd;
    /* sequences: lengths (positions cached) of a ragged batch */
    enum { NS = 5 };
    const int len[NS] = {61, 1, 37, 64, 18};
    int max_len = 0, max_blk = 0;
    for (int i = 0; i < NS; i++) {
        if (len[i] > max_len) max_len = len[i];
        int nb = (len[i] + s->bt - 1) / s->bt;
        if (nb > max_blk) max_blk = nb;
    }
    weft_err err = {{0}};
    kv_store *kv =
        kv_store_new_typed(s->n_layers, s->n_kv_heads, hd, s->bt, NS * max_blk, s->dt, &err);
    assert_non_null(kv);
    int32_t *tables = calloc((size_t)NS * max_blk, sizeof *tables);
    kv_seq seqs[NS];
    assert_non_null(tables);
    for (int i = 0; i < NS; i++) { /* block b of sequence i = b * NS + i: interleaved */
        for (int b = 0; b < max_blk; b++)
            tables[i * max_blk + b] = b * NS + i;
        seqs[i].blocks = tables + (size_t)i * max_blk;
        seqs[i].n_blocks = max_blk;
    }
    unsigned seed = (unsigned)(s->hd * 7 + s->bt * 131 + g * 17 + (int)s->dt);
    float *row = malloc(sizeof(float) * (size_t)hd);
    assert_non_null(row);
    for (int i = 0; i < NS; i++)
        for (int l = 0; l < s->n_layers; l++)
            for (int p = 0; p < len[i]; p++) {
                const int blk = seqs[i].blocks[p / s->bt], r = p % s->bt;
                for (int kvv = 0; kvv < 2; kvv++)
                    for (int h = 0; h < s->n_kv_heads; h++) {
                        for (int d = 0; d < hd; d++)
                            row[d] = frand(&seed);
                        char *base = kvv ? kv_v_ptr(kv, blk, l) : kv_k_ptr(kv, blk, l);
                        const size_t off = kv_byte_off(kv, r, h * hd);
                        if (s->dt == KV_F32)
                            memcpy(base + off, row, sizeof(float) * (size_t)hd);
                        else if (s->dt == KV_F16)
                            kn_f32_to_f16_row((uint16_t *)(base + off), row, hd);
                        else
                            kn_quantize_row_q8kv((int8_t *)(base + off),
                                                 (float *)(base + kv_scale_off(kv, h * hd)) + r,
                                                 row, hd);
                    }
            }
    /* the batch: decode tokens of sequences 0, 1, 3, and a prefill run of sequence 2 (its last
     * 9 positions) and of sequence 4 (all of it) */
    enum { MAXT = 64 };
    int32_t tok[MAXT], pos[MAXT], seq[MAXT];
    int T = 0;
    const int dec[3] = {0, 1, 3};
    for (int i = 0; i < 3; i++)
        pos[T] = len[dec[i]] - 1, seq[T] = dec[i], tok[T++] = 1;
    for (int p = len[2] - 9; p < len[2]; p++)
        pos[T] = p, seq[T] = 2, tok[T++] = 1;
    for (int p = 0; p < len[4]; p++)
        pos[T] = p, seq[T] = 4, tok[T++] = 1;
    assert_true(T <= MAXT);
    float *q = malloc(sizeof(float) * (size_t)T * QD);
    float *out = malloc(sizeof(float) * (size_t)T * QD),
          *ref1 = malloc(sizeof(float) * (size_t)T * QD);
    assert_non_null(q);
    assert_non_null(out);
    assert_non_null(ref1);
    for (int i = 0; i < T * QD; i++)
        q[i] = frand(&seed);

    tp_pool *pools[2] = {tp_new(1), tp_new(2)};
    assert_non_null(pools[0]);
    assert_non_null(pools[1]);
    attn_ws ws;
    assert_int_equal(attn_ws_init(&ws, &c, 2, max_len), 0);
    /* heads per item (0 = the default), prefetch runs (-1 = the default), the next item's first
     * runs prefetched or not; the first is the earlier split (one head, the next run
     * prefetched), the reference for the bits */
    const int var[][3] = {{1, 1, 0}, {0, -1, 1}, {0, -1, 0}, {0, 0, 1},
                          {0, 3, 1}, {2, -1, 1}, {3, 1, 1},  {s->n_kv_heads, 50, 1}};
    const int n_var = (int)(sizeof var / sizeof var[0]);
    double *sc = malloc(sizeof(double) * (size_t)max_len);
    assert_non_null(sc);
    weft_batch b = {T, tok, pos, seq, NULL, NS, seqs};
    weft_batch b1 = {1, tok, pos, seq, NULL, NS, seqs}; /* the first token alone */
    for (int l = 0; l < s->n_layers; l++) {
        for (int pi = 0; pi < 2; pi++)
            for (int vi = 0; vi < n_var; vi++) {
                ws.heads_per_item = var[vi][0];
                ws.prefetch_runs = var[vi][1];
                ws.prefetch_next = var[vi][2] != 0;
                for (int i = 0; i < T * QD; i++)
                    out[i] = NAN;
                attn_run(&ws, pools[pi], kv, l, &b, q, out);
                if (pi == 0 && vi == 0) {
                    memcpy(ref1, out, sizeof(float) * (size_t)T * QD);
                    continue;
                }
                if (memcmp(out, ref1, sizeof(float) * (size_t)T * QD) != 0) {
                    fprintf(stderr,
                            "heads/item %d prefetch %d, %d threads differs from one head "
                            "per item (%s, bt %d, g %d, layer %d)\n",
                            var[vi][0], var[vi][1], pi + 1, kv_dtype_name(s->dt), s->bt, g, l);
                    fail();
                }
                /* a one-token batch splits the token's heads over the threads: same bits */
                for (int i = 0; i < QD; i++)
                    out[i] = NAN;
                attn_run(&ws, pools[pi], kv, l, &b1, q, out);
                if (memcmp(out, ref1, sizeof(float) * (size_t)QD) != 0) {
                    fprintf(stderr, "one-token batch differs (%s, bt %d, g %d, layer %d)\n",
                            kv_dtype_name(s->dt), s->bt, g, l);
                    fail();
                }
            }
        /* the reference: softmax(q·k/sqrt(hd)) · v in double over the same stored rows (F16
         * widened, Q8_0 dequantized: every element <= 1 in magnitude, as are the queries).
         * Bound, first order in u = 2^-24: an F32 score sums hd products of magnitude <= 1, so it
         * is off by <= hd·u·hd/sqrt(hd) (F32 dot, scaled); the softmax moves an output by at most
         * twice the largest score error (Σp = 1, |v| <= 1); the n-term weighted value sums and
         * the exponentials add <= (n + 8)·2u. Hence |out - ref| <= 2·hd^1.5·u + (n + 8)·2u
         * (6.1e-5 + ... for hd = 64): a wrong row, head or block moves outputs by ~1e-2. */
        for (int t = 0; t < T; t++) {
            const int n = pos[t] + 1, sq = seq[t];
            const double u = ldexp(1.0, -24);
            const double tol = 2.0 * pow((double)hd, 1.5) * u + (n + 8) * 2.0 * u;
            for (int h = 0; h < s->n_heads; h++) {
                const int kh = h / g;
                const float *qh = q + (size_t)t * QD + (size_t)h * hd;
                double mx = -INFINITY, sum = 0;
                for (int p = 0; p < n; p++) {
                    const int blk = seqs[sq].blocks[p / s->bt], r = p % s->bt;
                    double d = 0;
                    for (int e = 0; e < hd; e++)
                        d += (double)qh[e] * stored(kv, false, blk, l, r, kh, e);
                    sc[p] = d / sqrt((double)hd);
                    if (sc[p] > mx) mx = sc[p];
                }
                for (int p = 0; p < n; p++)
                    sum += (sc[p] = exp(sc[p] - mx));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int p = 0; p < n; p++) {
                        const int blk = seqs[sq].blocks[p / s->bt], r = p % s->bt;
                        o += sc[p] / sum * stored(kv, true, blk, l, r, kh, e);
                    }
                    const double got = ref1[(size_t)t * QD + (size_t)h * hd + e];
                    if (!(fabs(got - o) <= tol)) {
                        fprintf(stderr,
                                "%s bt %d g %d layer %d token %d head %d elem %d: %.9g vs "
                                "%.9g (tol %.3g)\n",
                                kv_dtype_name(s->dt), s->bt, g, l, t, h, e, got, o, tol);
                        fail();
                    }
                }
            }
        }
    }
    free(sc);
    attn_ws_free(&ws);
    tp_free(pools[0]);
    tp_free(pools[1]);
    free(q);
    free(out);
    free(ref1);
    free(row);
    free(tables);
    kv_store_free(kv);
}

static void test_items_equal_and_match_reference(void **state) {
    (void)state;
    const kv_dtype dts[3] = {KV_F32, KV_F16, KV_Q8_0};
    const int bts[4] = {1, 3, 16, 64};
    const int gqa[3][2] = {{4, 4}, {8, 4}, {8, 2}}; /* n_heads, n_kv_heads: groups 1, 2, 4 */
    for (int di = 0; di < 3; di++)
        for (int bi = 0; bi < 4; bi++)
            for (int gi = 0; gi < 3; gi++) {
                const shape s = {gqa[gi][0], gqa[gi][1], 64, bts[bi], 2, dts[di]};
                check(&s);
            }
    /* a head size the SIMD kernels handle by chunk count only (48), and a wide one */
    const shape s48 = {6, 3, 48, 16, 1, KV_F16}, s128 = {4, 2, 128, 16, 1, KV_Q8_0};
    check(&s48);
    check(&s128);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_items_equal_and_match_reference)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
