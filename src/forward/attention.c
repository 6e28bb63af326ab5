/* attention.c — causal GQA attention over the block-structured KV cache (see attention.h).
 * Work is split into items handed out through an atomic counter, because a batch mixes decode
 * tokens (long history) and prefill tokens (short history): static splits would leave a core
 * idle. An item is one token against all its KV heads (a few heads when the batch has too few
 * tokens to keep every thread busy), so it walks each cache block's layer — [heads][head run],
 * contiguous — in address order, asking for the rows ~8 KB ahead of its reads: decode attention
 * is bound by how many cache misses are in flight, not by arithmetic (docs/kernels.md, "The
 * fused Q8_0 step"). Each item loads a K/V row once for all query heads of its group. */
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
    w->scores = malloc(sizeof(float) * (size_t)n_threads * (size_t)c->n_heads * (size_t)max_ctx);
    /* 3 bytes per element: the 16-bit query's hi, lo and sign bytes (kn_quantize_q16) */
    w->qi = malloc((size_t)n_threads * (size_t)c->n_heads * (size_t)c->head_dim * 3);
    w->qscale = malloc(sizeof(float) * (size_t)n_threads * (size_t)c->n_heads);
    const char *qk = getenv("WEFT_ATTN_Q8_QK");
    w->q8_int_qk = qk && strcmp(qk, "int") == 0;
    w->q8_f32 = !(qk && strcmp(qk, "int16") == 0);
    const char *items = getenv("WEFT_ATTN_ITEMS");
    w->heads_per_item = items && strcmp(items, "head") == 0 ? 1 : 0;
    const char *pf = getenv("WEFT_ATTN_PF");
    w->prefetch_runs = pf ? atoi(pf) : -1;
    const char *pn = getenv("WEFT_ATTN_PF_NEXT");
    w->prefetch_next = !(pn && strcmp(pn, "0") == 0);
    if (w->prefetch_runs < -1) w->prefetch_runs = -1;
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
    int heads_per_item; /* KV heads of one item: all of them unless the batch is small */
    int splits;         /* items per token = ceil(n_kv_heads / heads_per_item) */
} attn_job;

/* Asks for rows ahead of use: paged blocks sit anywhere in memory, and the hardware prefetcher
 * stops at page boundaries and only learns a run after its first misses (measured: fused
 * decode with 16-token blocks ran 11% slower than with whole-sequence slots before this). */
#define ATTN_INLINE static inline __attribute__((always_inline))
/* Always inlined, as are its callers below: GCC 12 found an out-of-line function whose only
 * effect is __builtin_prefetch "const" and deleted every call to it (twice during this work;
 * `objdump -d` of attention.c.o then shows no prefetcht0), silently undoing the prefetch. */
ATTN_INLINE void prefetch_rows(const void *p, size_t bytes) {
    const char *c = p;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}
/* How far ahead of its reads an item asks for rows by default: in bench_attn (32 sequences x
 * 160 tokens, Q8_0, 16-token blocks) 8 runs (~8.5 KB) ahead ran 2.1 ms per step, 4 runs 2.5,
 * 2 runs 3.3, 1 run 4.5, none 5.8; 8 to 24 runs were alike (docs/kernels.md). */
#define ATTN_PREFETCH_BYTES 8192

/* An item's walk over the cache: its K runs block by block (each block's heads kh0..kh1 in
 * address order), then its V runs in the same order. */
typedef struct attn_walk {
    const kv_seq *sq;
    int n_pos, n_blk, kh0, nh, n_runs;
} attn_walk;

static attn_walk item_walk(const attn_job *j, int item) {
    const int nkv = j->w->cfg->n_kv_heads, bt = j->kv->block_tokens;
    const int t = item / j->splits, kh0 = item % j->splits * j->heads_per_item;
    attn_walk w = {.sq = &j->b->seqs[j->b->seq[t]], .kh0 = kh0};
    w.nh = kh0 + j->heads_per_item < nkv ? j->heads_per_item : nkv - kh0;
    w.n_pos = j->b->pos[t] + 1;
    w.n_blk = (w.n_pos + bt - 1) / bt;
    w.n_runs = 2 * w.n_blk * w.nh;
    return w;
}

/* Asks for the rows run r of a walk reads (r < n_runs): the rows the item uses (a sequence's
 * last block is partly empty, a dense slot mostly), and for Q8_0 their scales. */
ATTN_INLINE void prefetch_run(const kv_store *kv, const attn_walk *w, int layer, int r) {
    const int per = w->n_blk * w->nh, pass = r / per, rb = r % per, bi = rb / w->nh;
    const int blk = w->sq->blocks[bi];
    const int bt = kv->block_tokens, n = w->n_pos - bi * bt < bt ? w->n_pos - bi * bt : bt;
    const char *base = pass ? (const char *)kv_v_ptr(kv, blk, layer)
                            : (const char *)kv_k_ptr(kv, blk, layer);
    const char *run = base + (size_t)(w->kh0 + rb % w->nh) * kv->head_bytes;
    prefetch_rows(run, kv_byte_off(kv, n, 0));
    if (kv->dtype == KV_Q8_0) prefetch_rows(run + kv_scale_off(kv, 0), sizeof(float) * (size_t)n);
}

/* Asks for run r of the item's walk; past its end, for the first runs of the item the counter
 * will hand out next (peeked once: whichever thread takes it finds its first rows on the way). */
ATTN_INLINE void prefetch_walk(attn_job *j, const attn_walk *self, attn_walk *peek, int *peek_state,
                               int r) {
    if (r < self->n_runs) {
        prefetch_run(j->kv, self, j->layer, r);
        return;
    }
    if (!j->w->prefetch_next) return;
    if (*peek_state == 0) {
        const int nx = atomic_load_explicit(&j->next, memory_order_relaxed);
        *peek_state = nx < j->n_items ? 1 : -1;
        if (*peek_state == 1) *peek = item_walk(j, nx);
    }
    if (*peek_state == 1 && r - self->n_runs < peek->n_runs)
        prefetch_run(j->kv, peek, j->layer, r - self->n_runs);
}

/* One item: token t against KV heads [kh0, kh1). The cache is walked block by block and, within
 * a block, head by head — in address order, since a block's layer is [n_heads][head run] — so
 * one item streams each block's K (then V) layer as one contiguous piece instead of one
 * head's 1 KB run of it. Per head the kernel calls, their arguments and their order are those
 * of a one-head item, so the result does not depend on how heads are grouped into items. */
static void attn_item(attn_job *j, float *scores, int8_t *qi, float *qsc, int item) {
    const weft_config *c = j->w->cfg;
    const kv_store *kv = j->kv;
    const int hd = c->head_dim, g = j->w->group, bt = kv->block_tokens;
    const size_t rs = (size_t)kv->head_dim; /* row stride of one head's slice */
    const int QD = c->n_heads * hd;
    const int t = item / j->splits;
    const int kh0 = item % j->splits * j->heads_per_item;
    const int kh1 =
        kh0 + j->heads_per_item < c->n_kv_heads ? kh0 + j->heads_per_item : c->n_kv_heads;
    const int n_pos = j->b->pos[t] + 1, n_blk = (n_pos + bt - 1) / bt;
    const kv_seq *sq = &j->b->seqs[j->b->seq[t]];
    const float scale = 1.0f / sqrtf((float)hd);
    const int max_ctx = j->w->max_ctx;
    const kv_dtype dt = kv->dtype;
    const bool int_qk = dt == KV_Q8_0 && j->w->q8_int_qk;
    const bool q16 = dt == KV_Q8_0 && !j->w->q8_int_qk && !j->w->q8_f32;
    /* query head h of KV head kh: row (kh*g + h) of the token's q, of scores and of qi */
    const float *qt = j->q + (size_t)t * QD;
    const size_t qib = q16 ? 3 * (size_t)hd : (size_t)hd;
    for (int kh = kh0; kh < kh1; kh++)
        for (int h = kh * g; h < (kh + 1) * g; h++) {
            if (int_qk) /* quantized like a cache row: per token, so batch-invariant */
                kn_quantize_row_q8kv(qi + (size_t)h * qib, &qsc[h], qt + (size_t)h * hd, hd);
            if (q16) /* 16-bit query magnitudes, per token and head: batch-invariant */
                kn_quantize_q16((uint8_t *)qi + (size_t)h * qib, &qsc[h], qt + (size_t)h * hd, hd);
        }
    /* one head's rows of a block (and their Q8_0 scales) are contiguous only in a head-major
     * store; then run r + pf of the walk is asked for when run r starts */
    const size_t run_bytes = rs == (size_t)hd ? kv->head_bytes : 0;
    int pf = j->w->prefetch_runs;
    if (pf < 0) pf = run_bytes ? (int)((ATTN_PREFETCH_BYTES + run_bytes - 1) / run_bytes) : 0;
    if (!run_bytes) pf = 0;
    int r = 0, peek_state = 0;
    const attn_walk self = item_walk(j, item);
    attn_walk peek;

    /* scores[h][p] = q_h · k_p / sqrt(hd), one block of cached rows at a time */
    for (int bi = 0; bi < n_blk; bi++) {
        const int p0 = bi * bt, n = n_pos - p0 < bt ? n_pos - p0 : bt;
        const char *kb = kv_k_ptr(kv, sq->blocks[bi], j->layer);
        for (int kh = kh0; kh < kh1; kh++, r++) {
            if (pf) prefetch_walk(j, &self, &peek, &peek_state, r + pf);
            const size_t hoff = kv_byte_off(kv, 0, kh * hd), soff = kv_scale_off(kv, kh * hd);
            const char *kh_rows = kb + hoff;
            const float *ksc = (const float *)(kb + soff);
            float *sc = scores + (size_t)kh * g * max_ctx + p0;
            const float *qg = qt + (size_t)kh * g * hd;
            const void *qk = qi + (size_t)kh * g * qib;
            const float *qs = qsc + (size_t)kh * g;
            if (q16)
                kn_attn_scores_q8q16(qk, qs, g, hd, (const int8_t *)kh_rows, rs, ksc, n, scale, sc,
                                     (size_t)max_ctx);
            else if (int_qk)
                kn_attn_scores_q8q8(qk, qs, g, hd, (const int8_t *)kh_rows, rs, ksc, n, scale, sc,
                                    (size_t)max_ctx);
            else if (dt == KV_Q8_0)
                kn_attn_scores_q8(qg, g, hd, (const int8_t *)kh_rows, rs, ksc, n, scale, sc,
                                  (size_t)max_ctx);
            else if (dt == KV_F16)
                kn_attn_scores_f16(qg, g, hd, (const uint16_t *)kh_rows, rs, n, scale, sc,
                                   (size_t)max_ctx);
            else
                kn_attn_scores(qg, g, hd, (const float *)kh_rows, rs, n, scale, sc,
                               (size_t)max_ctx);
        }
    }
    for (int h = kh0 * g; h < kh1 * g; h++) kn_softmax(scores + (size_t)h * max_ctx, n_pos);

    float *ot = j->out + (size_t)t * QD;
    for (int h = kh0 * g * hd; h < kh1 * g * hd; h++) ot[h] = 0.0f;
    for (int bi = 0; bi < n_blk; bi++) {
        const int p0 = bi * bt, n = n_pos - p0 < bt ? n_pos - p0 : bt;
        const char *vb = kv_v_ptr(kv, sq->blocks[bi], j->layer);
        for (int kh = kh0; kh < kh1; kh++, r++) {
            if (pf) prefetch_walk(j, &self, &peek, &peek_state, r + pf);
            const size_t hoff = kv_byte_off(kv, 0, kh * hd), soff = kv_scale_off(kv, kh * hd);
            const char *vh_rows = vb + hoff;
            const float *vsc = (const float *)(vb + soff);
            const float *p = scores + (size_t)kh * g * max_ctx + p0;
            float *og = ot + (size_t)kh * g * hd;
            if (dt == KV_Q8_0 && !j->w->q8_f32)
                kn_attn_values_q8w16(p, (size_t)max_ctx, g, hd, (const int8_t *)vh_rows, rs, vsc,
                                     n, og);
            else if (dt == KV_Q8_0)
                kn_attn_values_q8(p, (size_t)max_ctx, g, hd, (const int8_t *)vh_rows, rs, vsc, n,
                                  og);
            else if (dt == KV_F16)
                kn_attn_values_f16(p, (size_t)max_ctx, g, hd, (const uint16_t *)vh_rows, rs, n, og);
            else
                kn_attn_values(p, (size_t)max_ctx, g, hd, (const float *)vh_rows, rs, n, og);
        }
    }
}

static void attn_worker(void *ctx, int ith, int nth) {
    (void)nth;
    attn_job *j = ctx;
    const weft_config *c = j->w->cfg;
    float *scores = j->w->scores + (size_t)ith * c->n_heads * j->w->max_ctx;
    int8_t *qi = j->w->qi + (size_t)ith * c->n_heads * c->head_dim * 3;
    float *qsc = j->w->qscale + (size_t)ith * c->n_heads;
    for (;;) {
        int item = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (item >= j->n_items) break;
        attn_item(j, scores, qi, qsc, item);
    }
}

void attn_run(attn_ws *w, tp_pool *pool, const kv_store *kv, int layer, const weft_batch *b,
              const float *q, float *out) {
    const int nkv = w->cfg->n_kv_heads, T = b->n_tokens;
    /* whole tokens when there are enough of them to keep every thread busy (at least 4 items a
     * thread), else each token's heads split into that many items */
    int hpi = w->heads_per_item;
    if (hpi <= 0) {
        const int want = 4 * tp_size(pool);
        int splits = T >= want ? 1 : (want + T - 1) / T;
        if (splits > nkv) splits = nkv;
        hpi = (nkv + splits - 1) / splits;
    }
    if (hpi > nkv) hpi = nkv;
    const int splits = (nkv + hpi - 1) / hpi;
    attn_job j = {.w = w, .kv = kv, .layer = layer, .b = b, .q = q, .out = out,
                  .n_items = T * splits, .heads_per_item = hpi, .splits = splits};
    atomic_init(&j.next, 0);
    tp_run(pool, attn_worker, &j);
}
