/* attention.c — causal GQA attention over the block-structured KV cache (see attention.h).
 * Work is split into (token, KV head) items handed out through an atomic counter, because a
 * batch mixes decode tokens (long history) and prefill tokens (short history): static splits
 * would leave a core idle. Each item loads a K/V row once for all query heads of its group. */
#include "forward/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int attn_ws_init(attn_ws *w, const weft_config *c, int n_threads, int max_ctx) {
    w->cfg = c;
    w->n_threads = n_threads;
    w->max_ctx = max_ctx;
    w->group = c->n_heads / c->n_kv_heads;
    int half = c->rope_dim / 2;
    w->rope_cos = malloc(sizeof(float) * (size_t)max_ctx * (size_t)(half > 0 ? half : 1));
    w->rope_sin = malloc(sizeof(float) * (size_t)max_ctx * (size_t)(half > 0 ? half : 1));
    w->scores = malloc(sizeof(float) * (size_t)n_threads * (size_t)w->group * (size_t)max_ctx);
    /* 3 bytes per element: the 16-bit query's hi, lo and sign bytes (kn_quantize_q16) */
    w->qi = malloc((size_t)n_threads * (size_t)w->group * (size_t)c->head_dim * 3);
    w->qscale = malloc(sizeof(float) * (size_t)n_threads * (size_t)w->group);
    const char *qk = getenv("WEFT_ATTN_Q8_QK");
    w->q8_int_qk = qk && strcmp(qk, "int") == 0;
    w->q8_f32 = !(qk && strcmp(qk, "int16") == 0);
    if (!w->rope_cos || !w->rope_sin || !w->scores || !w->qi || !w->qscale) return -1;
    for (int p = 0; p < max_ctx; p++) {
        for (int i = 0; i < half; i++) {
            /* theta_i = scale * pos * base^(-2i/rope_dim), computed in double then rounded */
            double freq = pow((double)c->rope_theta, -2.0 * i / (double)c->rope_dim);
            double ang = (double)c->rope_freq_scale * (double)p * freq;
            w->rope_cos[(size_t)p * half + i] = (float)cos(ang);
            w->rope_sin[(size_t)p * half + i] = (float)sin(ang);
        }
    }
    return 0;
}

void attn_ws_free(attn_ws *w) {
    free(w->rope_cos);
    free(w->rope_sin);
    free(w->scores);
    free(w->qi);
    free(w->qscale);
    w->rope_cos = w->rope_sin = w->scores = w->qscale = NULL;
    w->qi = NULL;
}

typedef struct attn_job {
    attn_ws *w;
    const kv_store *kv;
    int layer;
    const weft_batch *b;
    const float *q;
    float *out;
    atomic_int next;
    int n_items;
} attn_job;

/* Asks for one head's rows of a block ahead of use: paged blocks sit anywhere in memory, and
 * the hardware prefetcher only learns a run after its first misses (measured: fused decode
 * with 16-token blocks ran 11% slower than with whole-sequence slots before this). */
static inline void prefetch_rows(const void *p, size_t bytes) {
    const char *c = p;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

static void attn_item(attn_job *j, float *scores, int8_t *qi, float *qsc, int item) {
    const weft_config *c = j->w->cfg;
    const kv_store *kv = j->kv;
    const int hd = c->head_dim, g = j->w->group, bt = kv->block_tokens;
    const size_t rs = (size_t)kv->head_dim; /* row stride of one head's slice */
    const int QD = c->n_heads * hd;
    const int t = item / c->n_kv_heads, kh = item % c->n_kv_heads;
    const int n_pos = j->b->pos[t] + 1;
    const kv_seq *sq = &j->b->seqs[j->b->seq[t]];
    const float scale = 1.0f / sqrtf((float)hd);
    const float *qg = j->q + (size_t)t * QD + (size_t)kh * g * hd;
    const int max_ctx = j->w->max_ctx;
    /* this KV head's row 0 within a block, and (Q8_0) the row scales of its store head */
    const size_t hoff_bytes = kv_byte_off(kv, 0, kh * hd);
    const size_t soff_bytes = kv_scale_off(kv, kh * hd);

    /* scores[h][p] = q_h · k_p / sqrt(hd), one block of cached rows at a time */
    const kv_dtype dt = kv->dtype;
    const bool int_qk = dt == KV_Q8_0 && j->w->q8_int_qk;
    const bool q16 = dt == KV_Q8_0 && !j->w->q8_int_qk && !j->w->q8_f32;
    if (int_qk) /* each query head quantized like a cache row: per token, so batch-invariant */
        for (int h = 0; h < g; h++)
            kn_quantize_row_q8kv(qi + (size_t)h * hd, &qsc[h], qg + (size_t)h * hd, hd);
    if (q16) /* 16-bit query magnitudes, per token and head: batch-invariant */
        for (int h = 0; h < g; h++)
            kn_quantize_q16((uint8_t *)qi + (size_t)h * 3 * hd, &qsc[h], qg + (size_t)h * hd, hd);
    /* one head's rows of a block (and their Q8_0 scales) are contiguous only in a head-major
     * store */
    const size_t run_bytes = rs == (size_t)hd ? kv->head_bytes : 0;
    for (int p0 = 0; p0 < n_pos; p0 += bt) {
        const void *kb = kv_k_ptr(kv, sq->blocks[p0 / bt], j->layer);
        int n = n_pos - p0 < bt ? n_pos - p0 : bt;
        if (run_bytes) {
            if (p0 + bt < n_pos)
                prefetch_rows((const char *)kv_k_ptr(kv, sq->blocks[p0 / bt + 1], j->layer) +
                                  hoff_bytes, run_bytes);
            else /* the first value rows are next */
                prefetch_rows((const char *)kv_v_ptr(kv, sq->blocks[0], j->layer) + hoff_bytes,
                              run_bytes);
        }
        const char *kh0 = (const char *)kb + hoff_bytes;
        if (q16)
            kn_attn_scores_q8q16((const uint8_t *)qi, qsc, g, hd, (const int8_t *)kh0, rs,
                                 (const float *)((const char *)kb + soff_bytes), n, scale,
                                 scores + p0, (size_t)max_ctx);
        else if (int_qk)
            kn_attn_scores_q8q8(qi, qsc, g, hd, (const int8_t *)kh0, rs,
                                (const float *)((const char *)kb + soff_bytes), n, scale,
                                scores + p0, (size_t)max_ctx);
        else if (dt == KV_Q8_0)
            kn_attn_scores_q8(qg, g, hd, (const int8_t *)kh0, rs,
                              (const float *)((const char *)kb + soff_bytes), n, scale,
                              scores + p0, (size_t)max_ctx);
        else if (dt == KV_F16)
            kn_attn_scores_f16(qg, g, hd, (const uint16_t *)kh0, rs, n, scale, scores + p0,
                               (size_t)max_ctx);
        else
            kn_attn_scores(qg, g, hd, (const float *)kh0, rs, n, scale, scores + p0,
                           (size_t)max_ctx);
    }
    for (int h = 0; h < g; h++) kn_softmax(scores + (size_t)h * max_ctx, n_pos);

    float *og = j->out + (size_t)t * QD + (size_t)kh * g * hd;
    for (int h = 0; h < g * hd; h++) og[h] = 0.0f;
    for (int p0 = 0; p0 < n_pos; p0 += bt) {
        const void *vb = kv_v_ptr(kv, sq->blocks[p0 / bt], j->layer);
        int n = n_pos - p0 < bt ? n_pos - p0 : bt;
        if (run_bytes && p0 + bt < n_pos)
            prefetch_rows((const char *)kv_v_ptr(kv, sq->blocks[p0 / bt + 1], j->layer) + hoff_bytes,
                          run_bytes);
        const char *vh0 = (const char *)vb + hoff_bytes;
        if (dt == KV_Q8_0 && !j->w->q8_f32)
            kn_attn_values_q8w16(scores + p0, (size_t)max_ctx, g, hd, (const int8_t *)vh0, rs,
                                 (const float *)((const char *)vb + soff_bytes), n, og);
        else if (dt == KV_Q8_0)
            kn_attn_values_q8(scores + p0, (size_t)max_ctx, g, hd, (const int8_t *)vh0, rs,
                              (const float *)((const char *)vb + soff_bytes), n, og);
        else if (dt == KV_F16)
            kn_attn_values_f16(scores + p0, (size_t)max_ctx, g, hd, (const uint16_t *)vh0, rs, n,
                               og);
        else
            kn_attn_values(scores + p0, (size_t)max_ctx, g, hd, (const float *)vh0, rs, n, og);
    }
}

static void attn_worker(void *ctx, int ith, int nth) {
    (void)nth;
    attn_job *j = ctx;
    float *scores = j->w->scores + (size_t)ith * j->w->group * j->w->max_ctx;
    int8_t *qi = j->w->qi + (size_t)ith * j->w->group * j->w->cfg->head_dim;
    float *qsc = j->w->qscale + (size_t)ith * j->w->group;
    for (;;) {
        int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (item >= j->n_items) break;
        attn_item(j, scores, qi, qsc, item);
    }
}

void attn_run(attn_ws *w, tp_pool *pool, const kv_store *kv, int layer, const weft_batch *b,
              const float *q, float *out) {
    attn_job j = {.w = w, .kv = kv, .layer = layer, .b = b, .q = q, .out = out,
                  .n_items = b->n_tokens * w->cfg->n_kv_heads};
    atomic_init(&j.next, 0);
    tp_run(pool, attn_worker, &j);
}
