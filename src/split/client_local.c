/* client_local.c — the client's partial model (split_client.h): embedding + layers [0, p) run
 * by fwd_new_range over a KV cache of p layers in one block of max_ctx positions. Memory: the
 * weights stay mmap'd and only the embedding rows looked up and layers [0, p) are touched
 * (the resident set grows with p, not with the model); the KV cache is p/L of a full one. */
#include <stdlib.h>

#include "weft/forward.h"
#include "weft/split_client.h"

struct split_local {
    const weft_model *m;
    int p, max_ctx, max_chunk, pos;
    tp_pool *pool;
    weft_forward *fwd;
    kv_store *kv; /* NULL when p = 0 */
    int32_t *posv, *seqv;
    int32_t block;
};

void split_local_free(split_local *c) {
    if (!c) return;
    fwd_free(c->fwd);
    kv_store_free(c->kv);
    tp_free(c->pool);
    free(c->posv);
    free(c->seqv);
    free(c);
}

split_local *split_local_new(const weft_model *m, int p, int max_ctx, int max_chunk,
                             int n_threads, weft_err *err) {
    const weft_config *cf = &m->cfg;
    if (p < 0 || p > cf->n_layers || max_ctx < 1 || max_chunk < 1) {
        weft_errf(err, "split: layers [0, %d) of a %d-layer model, context %d, chunk %d", p,
                  cf->n_layers, max_ctx, max_chunk);
        return NULL;
    }
    split_local *c = calloc(1, sizeof *c);
    if (!c) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    c->m = m;
    c->p = p;
    c->max_ctx = max_ctx;
    c->max_chunk = max_chunk;
    c->pool = tp_new(n_threads);
    c->posv = malloc(sizeof *c->posv * (size_t)max_chunk);
    c->seqv = calloc((size_t)max_chunk, sizeof *c->seqv);
    if (!c->pool || !c->posv || !c->seqv) {
        weft_errf(err, "split: out of memory for the client model");
        split_local_free(c);
        return NULL;
    }
    c->fwd = fwd_new_range(m, c->pool, max_chunk, max_ctx, 0, p, err);
    if (!c->fwd) {
        split_local_free(c);
        return NULL;
    }
    if (p > 0) {
        c->kv = kv_store_new(p, cf->n_kv_heads * cf->head_dim, max_ctx, 1, err);
        if (!c->kv) {
            split_local_free(c);
            return NULL;
        }
    }
    return c;
}

int split_local_run(split_local *c, const int32_t *tokens, int n, float *hidden_out,
                    weft_err *err) {
    if (n < 1 || n > c->max_chunk || c->pos + n > c->max_ctx)
        return weft_errf(err, "split: %d tokens at position %d (chunk %d, context %d)", n, c->pos,
                         c->max_chunk, c->max_ctx);
    for (int i = 0; i < n; i++)
        c->posv[i] = c->pos + i;
    kv_seq sv = {&c->block, 1};
    weft_batch b = {.n_tokens = n, .token = tokens, .pos = c->posv, .seq = c->seqv,
                    .n_seqs = 1, .seqs = &sv};
    fwd_split sp = {.hidden_out = hidden_out};
    if (fwd_run_split(c->fwd, c->kv, &b, &sp, NULL, err) != 0) return -1;
    c->pos += n;
    return 0;
}

int split_local_pos(const split_local *c) {
    return c->pos;
}
