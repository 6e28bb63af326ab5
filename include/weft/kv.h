/* kv.h — storage for the attention key/value cache, in fixed-size blocks of tokens.
 * A sequence sees its cache through a block table: position p lives in block
 * table[p / block_tokens] at row p % block_tokens. One block of ctx tokens per sequence is the
 * dense layout; small blocks from a free list are the paged layout (engine/ decides which).
 * Within a block, each layer holds block_tokens rows of kv_dim elements for K and for V, laid
 * out head-major: [n_heads][block_tokens][head_dim], so attention for one KV head streams a
 * contiguous run of memory instead of a head_dim slice of every kv_dim-wide row (the strided
 * pattern left decode attention latency-bound). A store of one head of kv_dim is the plain
 * row-major [block_tokens][kv_dim] layout. Elements are F32 or F16 (KV_F16 halves the bytes attention streams per step; values are rounded once,
 * when written, and widened to F32 inside the attention kernels), or Q8_0 (KV_Q8_0: each head
 * row — head_dim values of one token and one store head — is int8 with one F32 scale,
 * x ≈ scale * q, scale = max|x|/127, quantized once when the token is written; head_dim + 4
 * bytes per row instead of 2 * head_dim). A head's run in a Q8_0 block is its block_tokens
 * int8 rows followed by their block_tokens scales, so copying a head's first rows means copying
 * two pieces (kv_store_copy_rows does; nothing else moves rows). Scales are 4-byte aligned
 * because Q8_0 needs head_dim % 4 == 0. */
#ifndef WEFT_KV_H
#define WEFT_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "weft/error.h"

typedef enum kv_dtype { KV_F32 = 0, KV_F16 = 1, KV_Q8_0 = 2 } kv_dtype;

const char *kv_dtype_name(kv_dtype t);            /* "f32" / "f16" / "q8_0" */
int kv_dtype_parse(const char *s, kv_dtype *out); /* 0, or -1 for anything else */
static inline bool kv_dtype_valid(int t) { return t == KV_F32 || t == KV_F16 || t == KV_Q8_0; }
/* Bytes of one stored element, without the per-row scale of KV_Q8_0: 4, 2 or 1. */
static inline size_t kv_dtype_bytes(kv_dtype t) { return t == KV_F32 ? 4 : t == KV_F16 ? 2 : 1; }
/* Bytes one row of head_dim elements takes, its scale included (KV_Q8_0: head_dim + 4). */
static inline size_t kv_row_bytes(kv_dtype t, int head_dim) {
    return (size_t)head_dim * kv_dtype_bytes(t) + (t == KV_Q8_0 ? sizeof(float) : 0);
}

typedef struct kv_store {
    int n_layers;
    int kv_dim;        /* n_kv_heads * head_dim */
    int head_dim;      /* elements of one head's row; kv_dim is a multiple */
    int block_tokens;
    int n_blocks;
    size_t block_floats; /* elements per block for K (same for V) = n_layers*block_tokens*kv_dim */
    kv_dtype dtype;
    size_t head_bytes;  /* one head's run in a block and layer: block_tokens rows (+ Q8_0 scales) */
    size_t layer_bytes; /* one block's layer: n_heads * head_bytes */
    size_t block_bytes; /* one block: n_layers * layer_bytes (for K; the same for V) */
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

/* Copies rows [0, rows) of every head and layer of block src into block dst (K and V, and the
 * rows' scales for Q8_0); returns the bytes copied. The dense layout's compaction and tensor-parallel followers use it. */
size_t kv_store_copy_rows(kv_store *s, int src, int dst, int rows);

/* Bytes of one stored element: 4 (F32), 2 (F16) or 1 (Q8_0, scale not counted). */
static inline size_t kv_elem_bytes(const kv_store *s) { return kv_dtype_bytes(s->dtype); }

/* Element offset of (row, col) inside one block and layer, col in [0, kv_dim); F32/F16 only
 * (a Q8_0 head run also holds scales: use kv_byte_off). */
static inline size_t kv_elem_off(const kv_store *s, int row, int col) {
    size_t hs = (size_t)s->head_dim;
    return (size_t)col / hs * hs * (size_t)s->block_tokens + (size_t)row * hs + (size_t)col % hs;
}

/* Byte offset of element (row, col) inside one block and layer, any element type. */
static inline size_t kv_byte_off(const kv_store *s, int row, int col) {
    size_t hs = (size_t)s->head_dim;
    return (size_t)col / hs * s->head_bytes + ((size_t)row * hs + (size_t)col % hs) * kv_elem_bytes(s);
}
/* Byte offset of the block_tokens F32 scales of the store head holding column col (Q8_0). */
static inline size_t kv_scale_off(const kv_store *s, int col) {
    size_t hs = (size_t)s->head_dim;
    return (size_t)col / hs * s->head_bytes + (size_t)s->block_tokens * hs;
}

/* K (or V) of one block and layer, [n_heads][block_tokens][head_dim] in the store's element
 * type (Q8_0: each head's rows followed by their scales); element (row, col) is
 * kv_byte_off(s, row, col) bytes further (kv_elem_off elements for F32/F16). */
static inline void *kv_k_ptr(const kv_store *s, int block, int layer) {
    return (char *)s->k + (size_t)block * s->block_bytes + (size_t)layer * s->layer_bytes;
}
static inline void *kv_v_ptr(const kv_store *s, int block, int layer) {
    return (char *)s->v + (size_t)block * s->block_bytes + (size_t)layer * s->layer_bytes;
}
/* The same as floats: only for KV_F32 stores (rows r * kv_dim apart only when one head). */
static inline float *kv_k_rows(const kv_store *s, int block, int layer) {
    return (float *)kv_k_ptr(s, block, layer);
}
static inline float *kv_v_rows(const kv_store *s, int block, int layer) {
    return (float *)kv_v_ptr(s, block, layer);
}

#endif
