/* kv_dense.c — the dense (Flover) layout: the store is n_slots blocks of max_seq_len tokens and
 * every live sequence owns one slot. Handles map to slots through slot_of[], so compaction can
 * move a sequence's rows to another slot without the caller noticing: after kv_cache_compact
 * the live slots form one contiguous run, which is what a batch over a dense prefix needs. */
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache_internal.h"

int kv_dense_init(kv_cache *c, weft_err *err) {
    size_t n = (size_t)c->n_blocks;
    c->slot_of = malloc(sizeof *c->slot_of * n);
    c->owner = malloc(sizeof *c->owner * n);
    /* One handle per slot, allocated once: handles never outnumber slots, so slot_of never
     * moves and the views it backs stay valid. */
    c->seqs = calloc(n, sizeof *c->seqs);
    c->free_handles = malloc(sizeof *c->free_handles * n);
    if (!c->slot_of || !c->owner || !c->seqs || !c->free_handles)
        return weft_errf(err, "out of memory");
    for (int i = 0; i < c->n_blocks; i++) {
        c->owner[i] = -1;
        c->slot_of[i] = -1;
        c->free_handles[i] = c->n_blocks - 1 - i; /* lowest handle on top */
    }
    c->n_handles = c->n_free_handles = c->n_blocks;
    return 0;
}

kv_handle kv_dense_open(kv_cache *c, int n, weft_err *err) {
    if (c->n_live >= c->n_blocks)
        return weft_errf(err, "kv_cache: all %d slots are in use", c->n_blocks);
    int slot = 0;
    while (c->owner[slot] != -1)
        slot++;
    int h = kv_handle_alloc(c);
    if (h < 0) return weft_errf(err, "out of memory");
    c->owner[slot] = h;
    c->slot_of[h] = slot;
    c->seqs[h].reserved = n;
    c->seqs[h].prompt_len = n;
    return h;
}

int kv_dense_reserve(kv_cache *c, kv_handle h, int len) {
    c->seqs[h].reserved = len; /* the slot already spans max_seq_len */
    return 0;
}

void kv_dense_close(kv_cache *c, kv_handle h) {
    c->owner[c->slot_of[h]] = -1;
    c->slot_of[h] = -1;
}

/* Copies the rows h uses from slot src to slot dst, layer by layer; returns the bytes copied. */
static size_t kv_dense_move(kv_cache *c, kv_handle h, int src, int dst) {
    const size_t bytes = kv_store_copy_rows(c->store, src, dst, c->seqs[h].reserved);
    if (c->move_hook) c->move_hook(c->move_ctx, src, dst, c->seqs[h].reserved);
    c->owner[dst] = h;
    c->owner[src] = -1;
    c->slot_of[h] = dst;
    return bytes;
}

/* The fewest moves that make the n live slots contiguous: every window [w, w+n) is a possible
 * target, and the one already holding the most live slots needs the fewest moves (each live
 * slot outside it moves once into a free slot inside; no plan can do better since every live
 * slot outside the final window must move). */
int kv_dense_compact(kv_cache *c, size_t *bytes_moved) {
    const int N = c->n_blocks, n = c->n_live;
    if (n == 0 || n == N) return 0;
    int in = 0;
    for (int s = 0; s < n; s++)
        in += c->owner[s] != -1;
    int best = in, best_w = 0;
    for (int w = 1; w + n <= N; w++) {
        in += (c->owner[w + n - 1] != -1) - (c->owner[w - 1] != -1);
        if (in > best) {
            best = in;
            best_w = w;
        }
    }
    if (best == n) return 0;
    int moves = 0;
    size_t bytes = 0;
    int dst = best_w;
    for (int src = 0; src < N; src++) {
        if (c->owner[src] == -1 || (src >= best_w && src < best_w + n)) continue;
        while (c->owner[dst] != -1)
            dst++; /* a free slot inside the window: n - best exist */
        bytes += kv_dense_move(c, c->owner[src], src, dst);
        moves++;
    }
    c->slot_moves += moves;
    c->bytes_moved += (int64_t)bytes;
    if (bytes_moved) *bytes_moved = bytes;
    return moves;
}
