/* kv_store.c — allocation of the block-structured K/V cache storage (see include/weft/kv.h).
 * Only storage lives here; which sequence owns which block is the engine's business. */
#include "weft/kv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *kv_dtype_name(kv_dtype t) {
    return t == KV_F16 ? "f16" : t == KV_Q8_0 ? "q8_0" : "f32";
}

int kv_dtype_parse(const char *s, kv_dtype *out) {
    if (!s) return -1;
    if (strcasecmp(s, "f32") == 0) *out = KV_F32;
    else if (strcasecmp(s, "f16") == 0) *out = KV_F16;
    else if (strcasecmp(s, "q8_0") == 0) *out = KV_Q8_0;
    else return -1;
    return 0;
}

kv_store *kv_store_new(int n_layers, int kv_dim, int block_tokens, int n_blocks, weft_err *err) {
    return kv_store_new_typed(n_layers, 1, kv_dim, block_tokens, n_blocks, KV_F32, err);
}

kv_store *kv_store_new_typed(int n_layers, int n_heads, int head_dim, int block_tokens,
                             int n_blocks, kv_dtype dtype, weft_err *err) {
    if (!kv_dtype_valid(dtype)) {
        weft_errf(err, "kv: unknown element type %d", (int)dtype);
        return NULL;
    }
    if (n_layers <= 0 || n_heads <= 0 || head_dim <= 0 || block_tokens <= 0 || n_blocks <= 0 ||
        n_heads > INT32_MAX / head_dim) {
        weft_errf(err, "kv: sizes must be positive (layers %d, heads %d x %d, block %d, blocks %d)",
                  n_layers, n_heads, head_dim, block_tokens, n_blocks);
        return NULL;
    }
    if (dtype == KV_Q8_0 && head_dim % 4 != 0) {
        weft_errf(err, "kv: a q8_0 cache needs a head size that is a multiple of 4 (got %d)",
                  head_dim);
        return NULL;
    }
    const int kv_dim = n_heads * head_dim;
    size_t per = (size_t)n_layers * (size_t)block_tokens * (size_t)kv_dim;
    /* bytes per element, the Q8_0 row scale spread over its row (exact: head_dim + 4 per row) */
    size_t row = kv_row_bytes(dtype, head_dim);
    if (per / (size_t)head_dim > SIZE_MAX / row / (size_t)n_blocks / 2) {
        weft_errf(err, "kv: cache size overflows");
        return NULL;
    }
    kv_store *s = calloc(1, sizeof *s);
    if (!s) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    s->n_layers = n_layers;
    s->kv_dim = kv_dim;
    s->head_dim = head_dim;
    s->block_tokens = block_tokens;
    s->n_blocks = n_blocks;
    s->block_floats = per;
    s->dtype = dtype;
    s->head_bytes = (size_t)block_tokens * row;
    s->layer_bytes = (size_t)n_heads * s->head_bytes;
    s->block_bytes = (size_t)n_layers * s->layer_bytes;
    size_t bytes = s->block_bytes * (size_t)n_blocks;
    /* 64-byte alignment keeps K/V rows friendly to AVX-512 loads. */
    if (posix_memalign(&s->k, 64, bytes) != 0) s->k = NULL;
    if (s->k && posix_memalign(&s->v, 64, bytes) != 0) s->v = NULL;
    if (!s->k || !s->v) {
        weft_errf(err, "kv: cannot allocate %zu bytes for the cache", 2 * bytes);
        kv_store_free(s);
        return NULL;
    }
    memset(s->k, 0, bytes);
    memset(s->v, 0, bytes);
    return s;
}

void kv_store_free(kv_store *s) {
    if (!s) return;
    free(s->k);
    free(s->v);
    free(s);
}

size_t kv_store_bytes(const kv_store *s) {
    return 2 * s->block_bytes * (size_t)s->n_blocks;
}

size_t kv_store_copy_rows(kv_store *s, int src, int dst, int rows) {
    /* head-major: each head's first `rows` rows are one run, and for Q8_0 their scales a second
     * run at the end of the head's rows (see kv.h) */
    const size_t hs = (size_t)s->head_dim, n_heads = (size_t)(s->kv_dim / s->head_dim);
    const size_t piece = (size_t)rows * hs * kv_elem_bytes(s);
    const size_t spiece = s->dtype == KV_Q8_0 ? (size_t)rows * sizeof(float) : 0;
    const size_t soff = (size_t)s->block_tokens * hs * kv_elem_bytes(s);
    for (int l = 0; l < s->n_layers; l++)
        for (size_t j = 0; j < n_heads; j++) {
            const size_t o = j * s->head_bytes;
            memcpy((char *)kv_k_ptr(s, dst, l) + o, (const char *)kv_k_ptr(s, src, l) + o, piece);
            memcpy((char *)kv_v_ptr(s, dst, l) + o, (const char *)kv_v_ptr(s, src, l) + o, piece);
            if (spiece) {
                memcpy((char *)kv_k_ptr(s, dst, l) + o + soff,
                       (const char *)kv_k_ptr(s, src, l) + o + soff, spiece);
                memcpy((char *)kv_v_ptr(s, dst, l) + o + soff,
                       (const char *)kv_v_ptr(s, src, l) + o + soff, spiece);
            }
        }
    return 2 * (piece + spiece) * n_heads * (size_t)s->n_layers;
}
