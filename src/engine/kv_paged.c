/* kv_paged.c — the paged (vLLM) layout: the store is n_blocks blocks of block_tokens rows; each
 * sequence has a block table that grows as kv_seq_reserve asks for more positions. Blocks are
 * reference-counted because prefix sharing (kv_prefix.c) lets several tables hold one block.
 *
 * The free list is doubly linked so a cached block can leave it from anywhere. Allocation takes
 * the head. A freed block that is not in the prefix index goes to the head (reused first); one
 * that is indexed goes to the tail and keeps its index entry, so a later prompt with the same
 * prefix can still find it; it is dropped from the index only when allocation reaches it (the
 * least recently freed indexed block goes first). Nothing here ever allocates past n_blocks. */
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache_internal.h"

int kv_paged_init(kv_cache *c, weft_err *err) {
    size_t n = (size_t)c->n_blocks;
    c->ref = calloc(n, sizeof *c->ref);
    c->free_prev = malloc(sizeof *c->free_prev * n);
    c->free_next = malloc(sizeof *c->free_next * n);
    if (!c->ref || !c->free_prev || !c->free_next) return weft_errf(err, "out of memory");
    for (int b = 0; b < c->n_blocks; b++) {
        c->free_prev[b] = b - 1;
        c->free_next[b] = b + 1 < c->n_blocks ? b + 1 : -1;
    }
    c->free_head = 0;
    c->free_tail = c->n_blocks - 1;
    c->n_free = c->n_blocks;
    return 0;
}

void kv_paged_free(kv_cache *c) {
    free(c->ref);
    free(c->free_prev);
    free(c->free_next);
}

/* ---------------------------------------------------------------- free list */

static void kv_free_unlink(kv_cache *c, int32_t b) {
    int32_t p = c->free_prev[b], n = c->free_next[b];
    if (p != -1)
        c->free_next[p] = n;
    else
        c->free_head = n;
    if (n != -1)
        c->free_prev[n] = p;
    else
        c->free_tail = p;
    c->free_prev[b] = c->free_next[b] = -1;
    c->n_free--;
}

static void kv_free_push(kv_cache *c, int32_t b, bool at_tail) {
    if (at_tail) {
        c->free_prev[b] = c->free_tail;
        c->free_next[b] = -1;
        if (c->free_tail != -1)
            c->free_next[c->free_tail] = b;
        else
            c->free_head = b;
        c->free_tail = b;
    } else {
        c->free_prev[b] = -1;
        c->free_next[b] = c->free_head;
        if (c->free_head != -1)
            c->free_prev[c->free_head] = b;
        else
            c->free_tail = b;
        c->free_head = b;
    }
    c->n_free++;
}

void kv_paged_take(kv_cache *c, int32_t b) {
    if (c->ref[b] == 0) kv_free_unlink(c, b);
    c->ref[b]++;
}

/* A fresh block for new rows; the caller has checked n_free. */
static int32_t kv_block_alloc(kv_cache *c) {
    int32_t b = c->free_head;
    kv_free_unlink(c, b);
    if (c->sharing && c->indexed[b]) kv_prefix_forget(c, b);
    c->ref[b] = 1;
    return b;
}

static void kv_block_release(kv_cache *c, int32_t b) {
    if (--c->ref[b] > 0) return;
    kv_free_push(c, b, c->sharing && c->indexed[b]);
}

/* ---------------------------------------------------------------- sequences */

kv_handle kv_paged_open(kv_cache *c, const int32_t *prompt, int n, int *n_cached, weft_err *err) {
    const int bt = c->block_tokens;
    const int total = (n + bt - 1) / bt;
    int h = kv_handle_alloc(c);
    if (h < 0) return weft_errf(err, "out of memory");
    kv_seq_state *s = &c->seqs[h];
    if (!s->table) s->table = malloc(sizeof *s->table * (size_t)c->max_table);
    if (!s->table) {
        kv_handle_release(c, h);
        return weft_errf(err, "out of memory");
    }
    /* Consecutive full prompt blocks already in the index; never the block holding the last
     * prompt token, whose logits the caller needs. */
    int k = 0, cached_free = 0;
    if (c->sharing) {
        const int max_k = (n - 1) / bt;
        for (; k < max_k; k++) {
            const int32_t *t = prompt + (size_t)k * bt;
            uint64_t hash = c->index.hash(s->chain_hash, t, bt);
            int32_t b = kv_prefix_lookup(c, hash, s->chain_block, s->chain_gen, t);
            if (b < 0) break;
            s->table[k] = b;
            s->chain_hash = hash;
            s->chain_block = b;
            s->chain_gen = c->gen[b];
            cached_free += c->ref[b] == 0;
        }
    }
    /* cached blocks nobody uses sit on the free list but are not free to allocate */
    if (total - k > c->n_free - cached_free) {
        int free_now = c->n_free - cached_free;
        kv_handle_release(c, h);
        return weft_errf(err, "kv_cache: prompt of %d tokens needs %d more blocks, %d free", n,
                         total - k, free_now);
    }
    for (int i = 0; i < k; i++)
        kv_paged_take(c, s->table[i]);
    for (int i = k; i < total; i++)
        s->table[i] = kv_block_alloc(c);
    s->n_table = total;
    s->reserved = n;
    s->prompt_len = n;
    s->n_indexed = k;
    c->prefix_hit_tokens += (int64_t)k * bt;
    if (n_cached) *n_cached = k * bt;
    return h;
}

int kv_paged_reserve(kv_cache *c, kv_handle h, int len) {
    kv_seq_state *s = &c->seqs[h];
    const int need = (len + c->block_tokens - 1) / c->block_tokens;
    if (need - s->n_table > c->n_free) return -1;
    while (s->n_table < need) {
        s->table[s->n_table] = kv_block_alloc(c);
        s->n_table++;
    }
    s->reserved = len;
    return 0;
}

void kv_paged_close(kv_cache *c, kv_handle h) {
    kv_seq_state *s = &c->seqs[h];
    /* last block first: among cached blocks the tail of a prompt is then evicted before its
     * head, and the head is what other prompts can still reach */
    for (int i = s->n_table - 1; i >= 0; i--)
        kv_block_release(c, s->table[i]);
    s->n_table = 0;
    s->reserved = 0;
}
