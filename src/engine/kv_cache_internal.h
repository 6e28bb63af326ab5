/* kv_cache_internal.h — the state behind kv_cache.h, shared by its four files:
 *   kv_cache.c   front end: configuration, handles, dispatch by layout, stats, invariant check
 *   kv_dense.c   dense layout: one max_seq_len slot per sequence, compaction
 *   kv_paged.c   paged layout: free list, block tables, reference counts
 *   kv_prefix.c  prefix sharing: chained block hashes and the index of shareable blocks
 * Tests include this header too, for the invariant check and the hash hook. */
#ifndef WEFT_KV_CACHE_INTERNAL_H
#define WEFT_KV_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/kv_cache.h"

/* Hash of one block, chained on the hash of everything before it. */
typedef uint64_t (*kv_block_hash_fn)(uint64_t prev, const int32_t *tokens, int n);

/* One handle's sequence. */
typedef struct kv_seq_state {
    bool live;
    int reserved;   /* positions [0, reserved) are writable */
    int prompt_len; /* tokens given to kv_seq_open; only these are ever shared */
    /* paged: the block table (capacity max_table) */
    int32_t *table;
    int n_table;
    /* paged + sharing: blocks [0, n_indexed) are in the index (own or an equal twin's);
     * chain_* describe the indexed block that ends that prefix, the parent of the next one. */
    int n_indexed;
    bool index_done; /* no more blocks of this sequence can be registered */
    uint64_t chain_hash;
    int32_t chain_block;
    uint32_t chain_gen;
} kv_seq_state;

/* The index of shareable blocks (kv_prefix.c): open addressing with linear probing over block
 * ids, keyed by each block's chained hash. */
typedef struct kv_prefix_index {
    int32_t *slots; /* block id or -1 */
    uint32_t mask;
    kv_block_hash_fn hash;
} kv_prefix_index;

struct kv_cache {
    kv_layout layout;
    bool sharing;
    int max_seq_len;
    int block_tokens; /* dense: max_seq_len */
    int n_blocks;     /* dense: slots */
    int max_table;    /* most blocks one sequence holds */
    kv_store *store;

    /* handles */
    kv_seq_state *seqs;
    int n_handles; /* entries in seqs */
    int32_t *free_handles;
    int n_free_handles;
    int n_live;

    /* dense */
    int32_t *slot_of; /* [n_blocks] handle -> slot (stable storage for kv_seq_view) */
    int32_t *owner;   /* [n_blocks] slot -> handle or -1 */

    /* paged: per block */
    int32_t *ref;       /* users of the block; 0 = on the free list */
    int32_t *free_prev; /* free list links; -1 ends; allocation takes the head */
    int32_t *free_next;
    int32_t free_head, free_tail;
    int n_free;
    /* paged + sharing: per block */
    bool *indexed;   /* the block is in the prefix index */
    uint64_t *bhash; /* chained hash */
    int32_t *parent; /* indexed block before it in its prompt, or -1 */
    uint32_t *parent_gen;
    uint32_t *gen;    /* bumped whenever the block stops holding what it was indexed as */
    int32_t *btokens; /* [n_blocks][block_tokens] tokens of indexed blocks */
    kv_prefix_index index;

    /* counters */
    int64_t prefix_hit_tokens;
    int64_t slot_moves;
    void (*move_hook)(void *ctx, int src, int dst, int n_rows); /* see kv_cache_set_move_hook */
    void *move_ctx;
    int64_t bytes_moved;
};

/* kv_cache.c */
kv_seq_state *kv_live_seq(const kv_cache *c, kv_handle h);
int kv_handle_alloc(kv_cache *c); /* -1: out of memory */
void kv_handle_release(kv_cache *c, kv_handle h);

/* kv_dense.c */
int kv_dense_init(kv_cache *c, weft_err *err);
kv_handle kv_dense_open(kv_cache *c, int n, weft_err *err);
int kv_dense_reserve(kv_cache *c, kv_handle h, int len);
void kv_dense_close(kv_cache *c, kv_handle h);
int kv_dense_compact(kv_cache *c, size_t *bytes_moved);

/* kv_paged.c */
int kv_paged_init(kv_cache *c, weft_err *err);
void kv_paged_free(kv_cache *c);
kv_handle kv_paged_open(kv_cache *c, const int32_t *prompt, int n, int *n_cached, weft_err *err);
int kv_paged_reserve(kv_cache *c, kv_handle h, int len);
void kv_paged_close(kv_cache *c, kv_handle h);
/* Unlinks a block from the free list (it must be there) and gives it one user. */
void kv_paged_take(kv_cache *c, int32_t b);

/* kv_prefix.c */
int kv_prefix_init(kv_cache *c, weft_err *err);
void kv_prefix_free(kv_cache *c);
uint64_t kv_prefix_default_hash(uint64_t prev, const int32_t *tokens, int n);
/* The indexed block that continues the prefix ending at parent (-1: start of the prompt) with
 * these block_tokens tokens, or -1. Equality is checked, never inferred from the hash. */
int32_t kv_prefix_lookup(const kv_cache *c, uint64_t hash, int32_t parent, uint32_t parent_gen,
                         const int32_t *tokens);
/* Registers the full prompt blocks of h among positions [0, len) that are not yet indexed. */
void kv_prefix_commit(kv_cache *c, kv_handle h, const int32_t *tokens, int len);
/* Drops b from the index (it is about to hold other tokens). */
void kv_prefix_forget(kv_cache *c, int32_t b);

/* Test hooks. kv_cache_check verifies every invariant of the bookkeeping: 0, or -1 with the
 * first violation in err. kv_cache_set_hash replaces the block hash (only while no block is
 * indexed), so tests can force collisions. */
int kv_cache_check(const kv_cache *c, weft_err *err);
int kv_cache_set_hash(kv_cache *c, kv_block_hash_fn fn);

#endif
