/* kv.h — storage for the attention key/value cache, in fixed-size blocks of tokens.
 * A sequence sees its cache through a block table: position p lives in block
 * table[p / block_tokens] at row p % block_tokens. One block of ctx tokens per sequence is the
 * dense layout; small blocks from a free list are the paged layout (engine/ decides which).
 * Within a block, each layer holds block_tokens rows of kv_dim floats for K and for V. */
#ifndef WEFT_KV_H
#define WEFT_KV_H

#include <stddef.h>
#include <stdint.h>
#include "weft/error.h"

typedef struct kv_store {
    int n_layers;
    int kv_dim;        /* n_kv_heads * head_dim */
    int block_tokens;
    int n_blocks;
    size_t block_floats; /* floats per block for K (same for V) = n_layers*block_tokens*kv_dim */
    float *k;
    float *v;
} kv_store;

/* A sequence's view of the cache: which blocks hold its positions, in order. */
typedef struct kv_seq {
    const int32_t *blocks;
    int n_blocks;
} kv_seq;

kv_store *kv_store_new(int n_layers, int kv_dim, int block_tokens, int n_blocks, weft_err *err);
void kv_store_free(kv_store *s);
size_t kv_store_bytes(const kv_store *s);
/* Rows [block_tokens][kv_dim] of K (or V) for one block and layer. */
static inline float *kv_k_rows(const kv_store *s, int block, int layer) {
    return s->k + (size_t)block * s->block_floats + (size_t)layer * s->block_tokens * s->kv_dim;
}
static inline float *kv_v_rows(const kv_store *s, int block, int layer) {
    return s->v + (size_t)block * s->block_floats + (size_t)layer * s->block_tokens * s->kv_dim;
}

#endif
