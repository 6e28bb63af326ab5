/* tp_plan.c — which part of the model each tensor-parallel rank holds (see include/weft/tp.h).
 * Pure arithmetic on the hyper-parameters, so every rank can compute every rank's plan and the
 * start-up handshake can compare them. */
#include "weft/tp.h"

/* [*a, *b) of n units for rank r of size: the first n % size ranks take one more. */
static void split(int n, int r, int size, int *a, int *b) {
    int base = n / size, extra = n % size;
    *a = r * base + (r < extra ? r : extra);
    *b = *a + base + (r < extra ? 1 : 0);
}

int tp_plan_make(const weft_config *c, int ffn_block, int attn_block, int rank, int size,
                 tp_plan *p, weft_err *err) {
    if (size < 1 || rank < 0 || rank >= size)
        return weft_errf(err, "tensor parallel: rank %d of %d is invalid", rank, size);
    if (ffn_block < 1 || attn_block < 1)
        return weft_errf(err, "tensor parallel: block sizes must be positive");
    if (c->n_kv_heads < size)
        return weft_errf(err,
                         "tensor parallel: the model has %d KV heads, fewer than the %d "
                         "ranks (each rank needs at least one KV head with its %d query "
                         "heads); use --tp %d or less",
                         c->n_kv_heads, size, c->n_heads / c->n_kv_heads, c->n_kv_heads);
    if (c->hidden_dim % ffn_block != 0 || c->hidden_dim / ffn_block < size)
        return weft_errf(err,
                         "tensor parallel: feed-forward width %d is %d blocks of %d, fewer "
                         "than the %d ranks (or not whole blocks)",
                         c->hidden_dim, c->hidden_dim / ffn_block, ffn_block, size);
    if (c->vocab_size < size)
        return weft_errf(err, "tensor parallel: vocabulary %d is smaller than %d ranks",
                         c->vocab_size, size);
    int group = c->n_heads / c->n_kv_heads;
    p->rank = rank;
    p->size = size;
    split(c->n_kv_heads, rank, size, &p->kv0, &p->kv1);
    p->h0 = p->kv0 * group;
    p->h1 = p->kv1 * group;
    int u0, u1;
    split(c->hidden_dim / ffn_block, rank, size, &u0, &u1);
    p->f0 = u0 * ffn_block;
    p->f1 = u1 * ffn_block;
    split(c->vocab_size, rank, size, &p->v0, &p->v1);
    if (((long)p->h0 * c->head_dim) % attn_block != 0 ||
        ((long)p->h1 * c->head_dim) % attn_block != 0)
        return weft_errf(err,
                         "tensor parallel: rank %d's query heads [%d, %d) of size %d do not "
                         "start and end on a %d-element quantization block of the output "
                         "projection; use another --tp or an F32/F16/BF16 model",
                         rank, p->h0, p->h1, c->head_dim, attn_block);
    return 0;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t tp_plan_hash(const weft_config *c, int ffn_block, int attn_block, int size) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int r = 0; r < size; r++) {
        tp_plan p = {0};
        int32_t v[10] = {0};
        if (tp_plan_make(c, ffn_block, attn_block, r, size, &p, NULL) == 0) {
            int32_t w[10] = {p.rank, p.size, p.kv0, p.kv1, p.h0, p.h1, p.f0, p.f1, p.v0, p.v1};
            for (int i = 0; i < 10; i++)
                v[i] = w[i];
        } else {
            v[0] = -1;
        }
        h = fnv(h, v, sizeof v);
    }
    return h;
}
