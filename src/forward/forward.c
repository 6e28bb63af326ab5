/* forward.c — the LLaMA forward pass over a ragged batch (see include/weft/forward.h).
 * Reads like the maths: embed → per layer (RMSNorm, Q/K/V, RoPE, cache write, attention,
 * output projection, residual, RMSNorm, SwiGLU FFN, residual) → final norm → logits for the
 * requested rows. All matrix work goes through kn_matmul over the whole batch at once, so
 * weights are streamed once per step however many sequences share it. */
#include "weft/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward/attention.h"

struct weft_forward {
    const weft_model *m;
    tp_pool *pool;
    int max_tokens, max_ctx;
    /* activations, [max_tokens][width] */
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2;
    int32_t *sel;     /* batch indices whose logits are wanted */
    int32_t *last_pos; /* per-sequence validation scratch */
    void *scratch;    /* kn_matmul activation scratch */
    const fwd_comm *comm; /* tensor parallelism: m->comm, or NULL */
    float *lpart;     /* with comm: this rank's vocabulary slice of the logits */
    attn_ws attn;
};

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static float *alloc_floats(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) + 64) != 0) return NULL;
    return p;
}

void fwd_free(weft_forward *f) {
    if (!f) return;
    free(f->x);
    free(f->xb);
    free(f->xb2);
    free(f->q);
    free(f->k);
    free(f->v);
    free(f->hb);
    free(f->hb2);
    free(f->sel);
    free(f->last_pos);
    free(f->scratch);
    free(f->lpart);
    attn_ws_free(&f->attn);
    free(f);
}

weft_forward *fwd_new(const weft_model *m, tp_pool *pool, int max_tokens, int max_ctx,
                      weft_err *err) {
    const weft_config *c = &m->cfg;
    if (max_tokens <= 0 || max_ctx <= 0 || !pool) {
        weft_errf(err, "forward: max_tokens (%d) and max_ctx (%d) must be positive, pool given",
                  max_tokens, max_ctx);
        return NULL;
    }
    weft_forward *f = calloc(1, sizeof *f);
    if (!f) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    f->m = m;
    f->pool = pool;
    f->max_tokens = max_tokens;
    f->max_ctx = max_ctx;
    size_t T = (size_t)max_tokens;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t wide = max_size((size_t)c->dim, qd);
    f->x = alloc_floats(T * c->dim);
    f->xb = alloc_floats(T * wide);
    f->xb2 = alloc_floats(T * wide);
    f->q = alloc_floats(T * qd);
    f->k = alloc_floats(T * kvd);
    f->v = alloc_floats(T * kvd);
    f->hb = alloc_floats(T * c->hidden_dim);
    f->hb2 = alloc_floats(T * c->hidden_dim);
    f->sel = malloc(T * sizeof *f->sel);
    f->last_pos = malloc(T * sizeof *f->last_pos);
    size_t sb = kn_matmul_scratch_bytes(&m->output, max_tokens);
    sb = max_size(sb, kn_matmul_scratch_bytes(&m->tok_embd, max_tokens));
    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *ly = &m->layers[l];
        const kn_matrix *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up,
                                 &ly->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            sb = max_size(sb, kn_matmul_scratch_bytes(ws[i], max_tokens));
    }
    if (sb > 0 && posix_memalign(&f->scratch, 64, sb) != 0) f->scratch = NULL;
    f->comm = m->comm;
    if (f->comm) f->lpart = alloc_floats(T * (size_t)m->output.rows);
    if (!f->x || !f->xb || !f->xb2 || !f->q || !f->k || !f->v || !f->hb || !f->hb2 || !f->sel ||
        !f->last_pos || (sb > 0 && !f->scratch) || (f->comm && !f->lpart) ||
        attn_ws_init(&f->attn, c, tp_size(pool), max_ctx) != 0) {
        weft_errf(err, "forward: out of memory for a %d-token, %d-context workspace", max_tokens,
                  max_ctx);
        fwd_free(f);
        return NULL;
    }
    return f;
}

static int check_batch(weft_forward *f, const kv_store *kv, const weft_batch *b, weft_err *err) {
    const weft_config *c = &f->m->cfg;
    if (b->n_tokens <= 0 || b->n_tokens > f->max_tokens)
        return weft_errf(err, "forward: batch has %d tokens (limit %d)", b->n_tokens, f->max_tokens);
    if (b->n_seqs <= 0 || b->n_seqs > f->max_tokens)
        return weft_errf(err, "forward: batch has %d sequences (limit %d)", b->n_seqs, f->max_tokens);
    if (kv->n_layers != c->n_layers || kv->kv_dim != c->n_kv_heads * c->head_dim ||
        kv->head_dim % c->head_dim != 0)
        return weft_errf(err, "forward: KV store shape (%d layers, kv_dim %d in heads of %d) does "
                              "not fit the model", kv->n_layers, kv->kv_dim, kv->head_dim);
    for (int s = 0; s < b->n_seqs; s++) {
        f->last_pos[s] = -1;
        for (int i = 0; i < b->seqs[s].n_blocks; i++) {
            int blk = b->seqs[s].blocks[i];
            if (blk < 0 || blk >= kv->n_blocks)
                return weft_errf(err, "forward: sequence %d names KV block %d (store has %d)", s, blk,
                                 kv->n_blocks);
        }
    }
    for (int t = 0; t < b->n_tokens; t++) {
        int tok = b->token[t], s = b->seq[t], p = b->pos[t];
        if (tok < 0 || tok >= c->vocab_size)
            return weft_errf(err, "forward: token %d at batch index %d is outside the vocabulary "
                                  "(%d)", tok, t, c->vocab_size);
        if (s < 0 || s >= b->n_seqs)
            return weft_errf(err, "forward: batch index %d names sequence %d (batch has %d)", t, s,
                             b->n_seqs);
        if (p < 0 || p >= f->max_ctx)
            return weft_errf(err, "forward: position %d at batch index %d is outside the context "
                                  "(%d)", p, t, f->max_ctx);
        if ((int64_t)p >= (int64_t)b->seqs[s].n_blocks * kv->block_tokens)
            return weft_errf(err, "forward: position %d of sequence %d has no KV block (%d blocks "
                                  "of %d)", p, s, b->seqs[s].n_blocks, kv->block_tokens);
        if (p <= f->last_pos[s])
            return weft_errf(err, "forward: sequence %d positions must increase within a batch "
                                  "(%d after %d)", s, p, f->last_pos[s]);
        f->last_pos[s] = p;
    }
    return 0;
}

/* Stores one token's K and V rows into the cache (one head_dim piece per store head), rounding
 * to F16 for an F16 store. */
static void kv_write_row(kv_store *kv, int blk, int layer, int row, const float *k, const float *v) {
    const int hs = kv->head_dim;
    for (int col = 0; col < kv->kv_dim; col += hs) {
        const size_t off = kv_elem_off(kv, row, col);
        if (kv->dtype == KV_F16) {
            kn_f32_to_f16_row((uint16_t *)kv_k_ptr(kv, blk, layer) + off, k + col, hs);
            kn_f32_to_f16_row((uint16_t *)kv_v_ptr(kv, blk, layer) + off, v + col, hs);
        } else {
            memcpy(kv_k_rows(kv, blk, layer) + off, k + col, sizeof(float) * hs);
            memcpy(kv_v_rows(kv, blk, layer) + off, v + col, sizeof(float) * hs);
        }
    }
}

/* Rotates pairs (x[2i], x[2i+1]) of every head by pos * freq_i (GGUF/llama2.c layout). */
static void rope_rotate(float *x, int n_heads, int head_dim, const float *cs, const float *sn,
                        int rope_half) {
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < rope_half; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * cs[i] - b * sn[i];
            v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
    }
}

int fwd_run(weft_forward *f, kv_store *kv, const weft_batch *b, float *logits, weft_err *err) {
    if (check_batch(f, kv, b, err) != 0) return -1;
    if (f->comm) f->comm->begin(f->comm->ctx, kv, f->max_tokens, f->max_ctx, b);
    const weft_model *m = f->m;
    const weft_config *c = &m->cfg;
    const int T = b->n_tokens, D = c->dim, H = c->hidden_dim;
    const int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    const int half = c->rope_dim / 2;

    for (int t = 0; t < T; t++) kn_matrix_row_f32(&m->tok_embd, b->token[t], f->x + (size_t)t * D);

    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *ly = &m->layers[l];
        /* attention block */
        for (int t = 0; t < T; t++)
            kn_rmsnorm(f->xb + (size_t)t * D, f->x + (size_t)t * D, ly->attn_norm, D, c->norm_eps);
        const kn_matrix *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
        float *qkv_out[3] = {f->q, f->k, f->v};
        kn_matmul_multi(f->pool, qkv, 3, f->xb, T, qkv_out, f->scratch);
        for (int t = 0; t < T; t++) {
            const float *cs = f->attn.rope_cos + (size_t)b->pos[t] * half;
            const float *sn = f->attn.rope_sin + (size_t)b->pos[t] * half;
            rope_rotate(f->q + (size_t)t * QD, c->n_heads, c->head_dim, cs, sn, half);
            rope_rotate(f->k + (size_t)t * KVD, c->n_kv_heads, c->head_dim, cs, sn, half);
            const kv_seq *sq = &b->seqs[b->seq[t]];
            int p = b->pos[t], blk = sq->blocks[p / kv->block_tokens], row = p % kv->block_tokens;
            kv_write_row(kv, blk, l, row, f->k + (size_t)t * KVD, f->v + (size_t)t * KVD);
        }
        attn_run(&f->attn, f->pool, kv, l, b, f->q, f->xb2);
        kn_matmul(f->pool, &ly->wo, f->xb2, T, f->xb, f->scratch);
        if (f->comm) f->comm->allreduce(f->comm->ctx, f->xb, (size_t)T * D);
        kn_add(f->x, f->xb, T * D);

        /* feed-forward block */
        for (int t = 0; t < T; t++)
            kn_rmsnorm(f->xb + (size_t)t * D, f->x + (size_t)t * D, ly->ffn_norm, D, c->norm_eps);
        const kn_matrix *gu[2] = {&ly->w_gate, &ly->w_up};
        float *gu_out[2] = {f->hb, f->hb2};
        kn_matmul_multi(f->pool, gu, 2, f->xb, T, gu_out, f->scratch);
        kn_swiglu(f->hb, f->hb2, T * H);
        kn_matmul(f->pool, &ly->w_down, f->hb, T, f->xb, f->scratch);
        if (f->comm) f->comm->allreduce(f->comm->ctx, f->xb, (size_t)T * D);
        kn_add(f->x, f->xb, T * D);
    }

    /* final norm and classifier, only for rows that want logits */
    int n_sel = 0;
    for (int t = 0; t < T; t++) {
        if (!b->want_logits || !b->want_logits[t]) continue;
        kn_rmsnorm(f->xb + (size_t)n_sel * D, f->x + (size_t)t * D, m->out_norm, D, c->norm_eps);
        f->sel[n_sel++] = t;
    }
    if (n_sel > 0 && f->comm) {
        kn_matmul(f->pool, &m->output, f->xb, n_sel, f->lpart, f->scratch);
        f->comm->gather_logits(f->comm->ctx, f->lpart, n_sel, logits);
    } else if (n_sel > 0) {
        kn_matmul(f->pool, &m->output, f->xb, n_sel, logits, f->scratch);
    }
    return 0;
}
