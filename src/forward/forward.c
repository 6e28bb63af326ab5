/* forward.c — the LLaMA forward pass over a ragged batch (see include/weft/forward.h).
 * Reads like the maths: embed → per layer (RMSNorm, Q/K/V, RoPE, cache write, attention,
 * output projection, residual, RMSNorm, SwiGLU FFN, residual) → final norm → logits for the
 * requested rows. All matrix work goes through kn_matmul over the whole batch at once, so
 * weights are streamed once per step however many sequences share it.
 * Split inference: a forward may own only layers [lo, hi) (a partial model), and tokens may
 * enter with a hidden state at a later layer; they come first in the batch, so at every layer
 * the tokens that have reached it are the suffix [f0, T) and the layer runs on those rows. */
#include "weft/forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forward/attention.h"

struct weft_forward {
    const weft_model *m;
    tp_pool *pool;
    int max_tokens, max_ctx;
    int lo, hi; /* the layers this forward runs */
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
    return fwd_new_range(m, pool, max_tokens, max_ctx, 0, m->cfg.n_layers, err);
}

weft_forward *fwd_new_range(const weft_model *m, tp_pool *pool, int max_tokens, int max_ctx,
                            int layer_lo, int layer_hi, weft_err *err) {
    const weft_config *c = &m->cfg;
    if (layer_lo < 0 || layer_hi < layer_lo || layer_hi > c->n_layers) {
        weft_errf(err, "forward: layer range [%d, %d) is not inside [0, %d]", layer_lo, layer_hi,
                  c->n_layers);
        return NULL;
    }
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
    f->lo = layer_lo;
    f->hi = layer_hi;
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
    for (int l = layer_lo; l < layer_hi; l++) {
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

static int check_batch(weft_forward *f, const kv_store *kv, const weft_batch *b,
                       const fwd_split *sp, weft_err *err) {
    const weft_config *c = &f->m->cfg;
    if (b->n_tokens <= 0 || b->n_tokens > f->max_tokens)
        return weft_errf(err, "forward: batch has %d tokens (limit %d)", b->n_tokens, f->max_tokens);
    if (b->n_seqs <= 0 || b->n_seqs > f->max_tokens)
        return weft_errf(err, "forward: batch has %d sequences (limit %d)", b->n_seqs, f->max_tokens);
    if (f->hi > f->lo && (!kv || kv->n_layers != f->hi - f->lo ||
                          kv->kv_dim != c->n_kv_heads * c->head_dim))
        return weft_errf(err, "forward: KV store shape (%d layers, kv_dim %d) does not fit layers "
                              "[%d, %d)", kv ? kv->n_layers : 0, kv ? kv->kv_dim : 0, f->lo, f->hi);
    if (sp->n_hidden < 0 || sp->n_hidden > b->n_tokens || (sp->n_hidden > 0 && (!sp->entry ||
                                                                               !sp->hidden_in)))
        return weft_errf(err, "forward: n_hidden %d (of %d tokens) needs entry and hidden_in",
                         sp->n_hidden, b->n_tokens);
    if (sp->n_hidden < b->n_tokens && f->lo != 0)
        return weft_errf(err, "forward: tokens enter at the embedding but this forward starts at "
                              "layer %d", f->lo);
    if (!sp->hidden_out && f->hi != c->n_layers)
        return weft_errf(err, "forward: layers [%d, %d) end before the head; hidden_out needed",
                         f->lo, f->hi);
    for (int t = 0; t < sp->n_hidden; t++)
        if (sp->entry[t] < f->lo || sp->entry[t] > f->hi || (t > 0 && sp->entry[t] > sp->entry[t - 1]))
            return weft_errf(err, "forward: entry layer %d at batch index %d must lie in [%d, %d] "
                                  "and not increase along the batch", sp->entry[t], t, f->lo, f->hi);
    for (int s = 0; s < b->n_seqs; s++) {
        f->last_pos[s] = -1;
        for (int i = 0; kv && i < b->seqs[s].n_blocks; i++) {
            int blk = b->seqs[s].blocks[i];
            if (blk < 0 || blk >= kv->n_blocks)
                return weft_errf(err, "forward: sequence %d names KV block %d (store has %d)", s, blk,
                                 kv->n_blocks);
        }
    }
    for (int t = 0; t < b->n_tokens; t++) {
        int tok = b->token[t], s = b->seq[t], p = b->pos[t];
        if (t >= sp->n_hidden && (tok < 0 || tok >= c->vocab_size))
            return weft_errf(err, "forward: token %d at batch index %d is outside the vocabulary "
                                  "(%d)", tok, t, c->vocab_size);
        if (s < 0 || s >= b->n_seqs)
            return weft_errf(err, "forward: batch index %d names sequence %d (batch has %d)", t, s,
                             b->n_seqs);
        if (p < 0 || p >= f->max_ctx)
            return weft_errf(err, "forward: position %d at batch index %d is outside the context "
                                  "(%d)", p, t, f->max_ctx);
        if (kv && (int64_t)p >= (int64_t)b->seqs[s].n_blocks * kv->block_tokens)
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
 * to F16 for an F16 store, quantizing each piece with its own scale for a Q8_0 store. */
static void kv_write_row(kv_store *kv, int blk, int layer, int row, const float *k, const float *v) {
    const int hs = kv->head_dim;
    for (int col = 0; col < kv->kv_dim; col += hs) {
        const size_t off = kv_elem_off(kv, row, col);
        if (kv->dtype == KV_Q8_0) {
            char *kb = kv_k_ptr(kv, blk, layer), *vb = kv_v_ptr(kv, blk, layer);
            const size_t bo = kv_byte_off(kv, row, col), so = kv_scale_off(kv, col);
            kn_quantize_row_q8kv((int8_t *)(kb + bo), (float *)(kb + so) + row, k + col, hs);
            kn_quantize_row_q8kv((int8_t *)(vb + bo), (float *)(vb + so) + row, v + col, hs);
        } else if (kv->dtype == KV_F16) {
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

/* RoPE and the cache write of the batch's tokens [t0, t1), split over the pool threads by
 * token (each token writes its own cache row): run as the Q/K/V matmul's post step. */
typedef struct rope_kv_job {
    weft_forward *f;
    kv_store *kv;
    const weft_batch *b;
    int l, t0, t1;
} rope_kv_job;

static void rope_kv_rows(void *ctx, int ith, int nth) {
    const rope_kv_job *j = ctx;
    const weft_config *c = &j->f->m->cfg;
    const int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;
    const int half = c->rope_dim / 2, nt = j->t1 - j->t0;
    const int lo = j->t0 + nt * ith / nth, hi = j->t0 + nt * (ith + 1) / nth;
    for (int t = lo; t < hi; t++) {
        const float *cs = j->f->attn.rope_cos + (size_t)j->b->pos[t] * half;
        const float *sn = j->f->attn.rope_sin + (size_t)j->b->pos[t] * half;
        rope_rotate(j->f->q + (size_t)t * QD, c->n_heads, c->head_dim, cs, sn, half);
        rope_rotate(j->f->k + (size_t)t * KVD, c->n_kv_heads, c->head_dim, cs, sn, half);
        const kv_seq *sq = &j->b->seqs[j->b->seq[t]];
        int p = j->b->pos[t], blk = sq->blocks[p / j->kv->block_tokens];
        kv_write_row(j->kv, blk, j->l, p % j->kv->block_tokens, j->f->k + (size_t)t * KVD,
                     j->f->v + (size_t)t * KVD);
    }
}

int fwd_run(weft_forward *f, kv_store *kv, const weft_batch *b, float *logits, weft_err *err) {
    return fwd_run_split(f, kv, b, NULL, logits, err);
}

int fwd_run_split(weft_forward *f, kv_store *kv, const weft_batch *b, const fwd_split *split,
                  float *logits, weft_err *err) {
    const fwd_split none = {0};
    const fwd_split *sp = split ? split : &none;
    if (check_batch(f, kv, b, sp, err) != 0) return -1;
    const weft_model *m = f->m;
    const weft_config *c = &m->cfg;
    if (f->comm && (sp->n_hidden > 0 || f->lo != 0 || f->hi != c->n_layers))
        return weft_errf(err, "forward: split inference and tensor parallelism do not combine");
    if (f->comm) f->comm->begin(f->comm->ctx, kv, f->max_tokens, f->max_ctx, b);
    const int T = b->n_tokens, D = c->dim, H = c->hidden_dim;
    const int QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;

    const int NH = sp->n_hidden;
    if (NH > 0) memcpy(f->x, sp->hidden_in, sizeof(float) * (size_t)NH * D);
    for (int t = NH; t < T; t++) kn_matrix_row_f32(&m->tok_embd, b->token[t], f->x + (size_t)t * D);

    int f0 = NH; /* tokens [f0, T) have reached the current layer */
    for (int gl = f->lo; gl < f->hi; gl++) {
        const int l = gl - f->lo; /* the layer's index in this range's KV store */
        const weft_layer *ly = &m->layers[gl];
        while (f0 > 0 && sp->entry[f0 - 1] <= gl) f0--;
        if (f0 == T) continue;
        const int n = T - f0;
        float *x = f->x + (size_t)f0 * D, *xb = f->xb + (size_t)f0 * D;
        float *xb2 = f->xb2 + (size_t)f0 * QD, *hb = f->hb + (size_t)f0 * H;
        weft_batch sb = *b; /* the active suffix, for attention */
        sb.n_tokens = n;
        sb.token += f0;
        sb.pos += f0;
        sb.seq += f0;
        /* attention block: RMSNorm, Q/K/V, then RoPE and the cache write, all in one
         * kn_matmul_fused dispatch (the same arithmetic as one step after another) */
        const kn_matrix *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
        float *qkv_out[3] = {f->q + (size_t)f0 * QD, f->k + (size_t)f0 * KVD,
                             f->v + (size_t)f0 * KVD};
        rope_kv_job rj = {f, kv, b, l, f0, T};
        kn_mm_fuse fa = {.norm_w = ly->attn_norm, .norm_eps = c->norm_eps, .norm_out = xb,
                         .post = rope_kv_rows, .post_ctx = &rj};
        kn_matmul_fused(f->pool, qkv, 3, x, n, qkv_out, f->scratch, &fa);
        attn_run(&f->attn, f->pool, kv, l, &sb, f->q + (size_t)f0 * QD, xb2);
        /* output projection and residual (with tensor parallelism the add waits for the
         * all-reduce) */
        const kn_matrix *wo = &ly->wo, *wd = &ly->w_down;
        kn_mm_fuse fo = {.residual = f->comm ? NULL : x};
        kn_matmul_fused(f->pool, &wo, 1, xb2, n, &xb, f->scratch, &fo);
        if (f->comm) f->comm->allreduce(f->comm->ctx, xb, (size_t)n * D);
        if (f->comm) kn_add(x, xb, n * D);

        /* feed-forward block: RMSNorm + gate/up + SwiGLU in one dispatch, then down + residual */
        const kn_matrix *gu[2] = {&ly->w_gate, &ly->w_up};
        float *gu_out[2] = {hb, f->hb2 + (size_t)f0 * H};
        kn_mm_fuse fg = {.norm_w = ly->ffn_norm, .norm_eps = c->norm_eps, .norm_out = xb,
                         .swiglu = true};
        kn_matmul_fused(f->pool, gu, 2, x, n, gu_out, f->scratch, &fg);
        kn_matmul_fused(f->pool, &wd, 1, hb, n, &xb, f->scratch, &fo);
        if (f->comm) f->comm->allreduce(f->comm->ctx, xb, (size_t)n * D);
        if (f->comm) kn_add(x, xb, n * D);
    }
    if (sp->hidden_out) { /* the client side of a split: hand the states on */
        memcpy(sp->hidden_out, f->x, sizeof(float) * (size_t)T * D);
        return 0;
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
