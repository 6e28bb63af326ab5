/* kv_cache.h — who owns which part of the KV store (see kv.h), in one of two layouts chosen at
 * start-up, behind one interface the engine uses:
 *  - KV_LAYOUT_DENSE (Flover): each live sequence owns one slot of max_seq_len tokens. When
 *    sequences finish, kv_cache_compact() moves live slots into one contiguous range of n_live
 *    slots with the fewest moves (of all windows [w, w + n_live), the one that already holds
 *    the most live slots is kept; only the others move), so the running batch covers a dense
 *    range. Handles stay valid across compaction; views (kv_seq_view) must be taken again.
 *  - KV_LAYOUT_PAGED (vLLM): fixed-size blocks from a free list and a block table per sequence;
 *    nothing is copied when a sequence ends. With prefix sharing on, full blocks of prompt
 *    tokens are registered under a hash of all tokens up to their end; a later sequence whose
 *    prompt starts the same way reuses them (reference-counted) and skips their prefill.
 *    A block whose last user left stays indexed (and reusable) on the free list until an
 *    allocation reaches it; such blocks count as free (see src/engine/kv_paged.c).
 * Capacity is fixed at creation (in tokens or bytes); nothing ever allocates past it:
 * kv_seq_reserve fails instead, and the caller preempts. Not thread-safe: the engine thread
 * owns it. */
#ifndef WEFT_KV_CACHE_H
#define WEFT_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/error.h"
#include "weft/kv.h"
#include "weft/model.h"

typedef enum kv_layout { KV_LAYOUT_DENSE = 0, KV_LAYOUT_PAGED = 1 } kv_layout;

typedef struct kv_cache_config {
    kv_layout layout;
    int64_t capacity_tokens; /* total token rows (all sequences); 0: use capacity_bytes */
    int64_t capacity_bytes;  /* K+V bytes over all layers; used when capacity_tokens == 0 */
    int max_seq_len;         /* longest sequence (prompt + output); dense slot size */
    int block_tokens;        /* paged block size (default 16); ignored for dense */
    bool prefix_sharing;     /* paged only */
    kv_dtype dtype;          /* element type of the store: KV_F32 (zero value), KV_F16, KV_Q8_0 */
} kv_cache_config;

typedef struct kv_cache kv_cache;
typedef int32_t kv_handle; /* a live sequence's cache; -1 = none */

kv_cache *kv_cache_new(const weft_config *model, const kv_cache_config *cfg, weft_err *err);
void kv_cache_free(kv_cache *c);
const kv_store *kv_cache_store(const kv_cache *c);
kv_store *kv_cache_store_mut(kv_cache *c);
kv_layout kv_cache_layout(const kv_cache *c);
int64_t kv_cache_capacity_tokens(const kv_cache *c);

/* Opens a sequence for `prompt` (n tokens). With prefix sharing, *n_cached receives how many
 * leading prompt tokens are already in the cache (a multiple of the block size, always less
 * than n so the last prompt token is computed and yields logits); otherwise 0. Reserves room
 * for the prompt. Returns the handle, or -1 when the cache cannot hold the prompt now
 * (err says why; nothing is allocated then). */
kv_handle kv_seq_open(kv_cache *c, const int32_t *prompt, int n, int *n_cached, weft_err *err);
/* Makes positions [0, len) of h writable; 0, or -1 when the cache is full (h unchanged). */
int kv_seq_reserve(kv_cache *c, kv_handle h, int len);
/* Blocks a sequence of `len` tokens (prompt + generated so far) would need now, from an empty
 * cache and without sharing; for admission and preemption decisions. */
int kv_cache_blocks_for(const kv_cache *c, int len);
int kv_cache_free_blocks(const kv_cache *c);
/* The block table the forward pass reads. Valid until the next call that changes h or compacts. */
kv_seq kv_seq_view(const kv_cache *c, kv_handle h);
/* After the forward pass wrote positions [0, len) of h whose tokens are `tokens`: full prompt
 * blocks become shareable (paged + prefix sharing); no-op otherwise. */
void kv_seq_commit(kv_cache *c, kv_handle h, const int32_t *tokens, int len);
/* Releases h: dense frees the slot; paged drops one reference per block (a shared block is
 * freed when its last user leaves). */
void kv_seq_close(kv_cache *c, kv_handle h);

/* Dense only (no-op for paged): makes the live slots contiguous with the fewest moves.
 * Returns the number of slots moved; *bytes_moved (optional) receives the bytes copied. */
int kv_cache_compact(kv_cache *c, size_t *bytes_moved);
/* Called for every block copy compaction makes (rows [0, n_rows) of every layer from src to
 * dst), after the copy; tensor parallelism repeats them on the other ranks. NULL: none. */
void kv_cache_set_move_hook(kv_cache *c, void (*fn)(void *ctx, int src, int dst, int n_rows),
                            void *ctx);

typedef struct kv_cache_stats {
    int64_t capacity_tokens;  /* rows the store holds */
    int64_t reserved_tokens;  /* rows owned by live sequences (slots or blocks) */
    int64_t live_tokens;      /* rows holding a live token (shared rows counted once) */
    int n_seqs;
    int free_blocks, total_blocks;
    int64_t prefix_hit_tokens;   /* prompt tokens served from shared blocks so far */
    int64_t slot_moves;          /* dense: slots moved by compaction so far */
    int64_t bytes_moved;
} kv_cache_stats;
void kv_cache_get_stats(const kv_cache *c, kv_cache_stats *s);

#endif
