/* kv.h — storage for the attention key/value cache, in fixed-size blocks of tokens.
 * A sequence sees its cache through a block table: position p lives in block
 * table[p / block_tokens] at row p % block_tokens. One block of ctx tokens per sequence is the
 * dense layout; small blocks from a free list are the paged layout (engine/ decides which).
 * Within a block, each layer holds block_tokens rows of kv_dim elements for K and for V, laid
 * out head-major: [n_heads][block_tokens][head_dim], so attention for one KV head streams a
 * contiguous run of memory instead of a head_dim slice of every kv_dim-wide row (the strided
 * pattern left decode attention latency-bound). A store of one head of kv_dim is the plain
 * row-major [block_tokens][kv_dim] layout. Elements are F32 or F16 (KV_F16 halves the bytes attention streams per step; values are rounded once,
 * when written, and widened to F32 inside the attention kernels). */
#ifndef WEFT_KV_H
#define WEFT_KV_H

#include <stddef.h>
#include <stdint.h>
#include "weft/error.h"

typedef enum kv_dtype { KV_F32 = 0, KV_F16 = 1 } kv_dtype;

const char *kv_dtype_name(kv_dtype t);            /* "f32" / "f16" */
int kv_dtype_parse(const char *s, kv_dtype *out); /* 0, or -1 for anything else */
static inline size_t kv_dtype_bytes(kv_dtype t) { return t == KV_F16 ? 2 : 4; }

typedef struct kv_store {
    int n_layers;
    int kv_dim;        /* n_kv_heads * head_dim */
    int head_dim;      /* elements of one head's row; kv_dim is a multiple */
    int block_tokens;
    int n_blocks;
    size_t block_floats; /* elements per block for K (same for V) = n_layers*block_tokens*kv_dim */
    kv_dtype dtype;
    void *k;
    void *v;
} kv_store;

/* A sequence's view of the cache: which blocks hold its positions, in order. */
typedef struct kv_seq {
    const int32_t *blocks;
    int n_blocks;
} kv_seq;

/* An F32 store of one row-major head of kv_dim (kv_store_new), or a head-major store of n_heads
 * heads of head_dim in the given element type (kv_store_new_typed; what the engine uses). */
kv_store *kv_store_new(int n_layers, int kv_dim, int block_tokens, int n_blocks, weft_err *err);
kv_store *kv_store_new_typed(int n_layers, int n_heads, int head_dim, int block_tokens,
                             int n_blocks, kv_dtype dtype, weft_err *err);
void kv_store_free(kv_store *s);
size_t kv_store_bytes(const kv_store *s);

/* Copies rows [0, rows) of every head and layer of block src into block dst (K and V); returns
 * the bytes copied. The dense layout's compaction and tensor-parallel followers use it. */
size_t kv_store_copy_rows(kv_store *s, int src, int dst, int rows);

/* Bytes of one stored element: 4 (F32) or 2 (F16). */
static inline size_t kv_elem_bytes(const kv_store *s) { return kv_dtype_bytes(s->dtype); }

/* Element offset of (row, col) inside one block and layer, col in [0, kv_dim). */
static inline size_t kv_elem_off(const kv_store *s, int row, int col) {
    size_t hs = (size_t)s->head_dim;
    return (size_t)col / hs * hs * (size_t)s->block_tokens + (size_t)row * hs + (size_t)col % hs;
}

/* K (or V) of one block and layer, [n_heads][block_tokens][head_dim] in the store's element
 * type; element (row, col) is kv_elem_off(s, row, col) elements further. */
static inline void *kv_k_ptr(const kv_store *s, int block, int layer) {
    size_t e = (size_t)block * s->block_floats + (size_t)layer * s->block_tokens * s->kv_dim;
    return (char *)s->k + e * kv_elem_bytes(s);
}
static inline void *kv_v_ptr(const kv_store *s, int block, int layer) {
    size_t e = (size_t)block * s->block_floats + (size_t)layer * s->block_tokens * s->kv_dim;
    return (char *)s->v + e * kv_elem_bytes(s);
}
/* The same as floats: only for KV_F32 stores (rows r * kv_dim apart only when one head). */
static inline float *kv_k_rows(const kv_store *s, int block, int layer) {
    return (float *)kv_k_ptr(s, block, layer);
}
static inline float *kv_v_rows(const kv_store *s, int block, int layer) {
    return (float *)kv_v_ptr(s, block, layer);
}

#endif
