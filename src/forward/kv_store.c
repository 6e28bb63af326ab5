/* kv_store.c — allocation of the block-structured K/V cache storage (see include/weft/kv.h).
 * Only storage lives here; which sequence owns which block is the engine's business. */
#include "weft/kv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *kv_dtype_name(kv_dtype t) { return t == KV_F16 ? "f16" : "f32"; }

int kv_dtype_parse(const char *s, kv_dtype *out) {
    if (!s) return -1;
    if (strcasecmp(s, "f32") == 0) *out = KV_F32;
    else if (strcasecmp(s, "f16") == 0) *out = KV_F16;
    else return -1;
    return 0;
}

kv_store *kv_store_new(int n_layers, int kv_dim, int block_tokens, int n_blocks, weft_err *err) {
    return kv_store_new_typed(n_layers, 1, kv_dim, block_tokens, n_blocks, KV_F32, err);
}

kv_store *kv_store_new_typed(int n_layers, int n_heads, int head_dim, int block_tokens,
                             int n_blocks, kv_dtype dtype, weft_err *err) {
    if (dtype != KV_F32 && dtype != KV_F16) {
        weft_errf(err, "kv: unknown element type %d", (int)dtype);
        return NULL;
    }
    if (n_layers <= 0 || n_heads <= 0 || head_dim <= 0 || block_tokens <= 0 || n_blocks <= 0 ||
        n_heads > INT32_MAX / head_dim) {
        weft_errf(err, "kv: sizes must be positive (layers %d, heads %d x %d, block %d, blocks %d)",
                  n_layers, n_heads, head_dim, block_tokens, n_blocks);
        return NULL;
    }
    const int kv_dim = n_heads * head_dim;
    size_t per = (size_t)n_layers * (size_t)block_tokens * (size_t)kv_dim;
    size_t eb = kv_dtype_bytes(dtype);
    if (per > SIZE_MAX / eb / (size_t)n_blocks / 2) {
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
    size_t bytes = per * (size_t)n_blocks * eb;
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
    return 2 * s->block_floats * (size_t)s->n_blocks * kv_elem_bytes(s);
}

size_t kv_store_copy_rows(kv_store *s, int src, int dst, int rows) {
    /* head-major: each head's first `rows` rows are one run (see kv.h) */
    const size_t hs = (size_t)s->head_dim, n_heads = (size_t)(s->kv_dim / s->head_dim);
    const size_t piece = (size_t)rows * hs * kv_elem_bytes(s);
    const size_t head_bytes = (size_t)s->block_tokens * hs * kv_elem_bytes(s);
    for (int l = 0; l < s->n_layers; l++)
        for (size_t j = 0; j < n_heads; j++) {
            memcpy((char *)kv_k_ptr(s, dst, l) + j * head_bytes,
                   (const char *)kv_k_ptr(s, src, l) + j * head_bytes, piece);
            memcpy((char *)kv_v_ptr(s, dst, l) + j * head_bytes,
                   (const char *)kv_v_ptr(s, src, l) + j * head_bytes, piece);
        }
    return 2 * piece * n_heads * (size_t)s->n_layers;
}
