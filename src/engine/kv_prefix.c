/* kv_prefix.c — prefix sharing for the paged layout: an index of full prompt blocks whose K/V
 * rows another sequence with the same leading tokens can reuse instead of recomputing.
 *
 * A block is indexed under a chained hash: the hash of the previous block's hash and this
 * block's tokens, so equal hashes suggest equal whole prefixes. The hash is never trusted: each
 * indexed block keeps its tokens and the indexed block before it (its parent, with the parent's
 * generation), and a lookup matches only when the tokens are equal and the parent is the block
 * the caller matched one step earlier. By induction a match means the whole prefix is equal.
 * A block's generation changes whenever it leaves the index, so a child whose parent was
 * evicted and reused can never be matched through the new occupant.
 *
 * At most one indexed block exists per (parent, tokens): a sequence that computed a block an
 * equal twin already indexed keeps its copy private and chains its later blocks onto the twin.
 *
 * The table is open addressing with linear probing (load at most 1/2) and backward-shift
 * deletion, so no tombstones accumulate however long the server runs. */
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache_internal.h"

int kv_prefix_init(kv_cache *c, weft_err *err) {
    size_t n = (size_t)c->n_blocks;
    size_t size = 16;
    while (size < 2 * n)
        size *= 2;
    c->indexed = calloc(n, sizeof *c->indexed);
    c->bhash = calloc(n, sizeof *c->bhash);
    c->parent = malloc(sizeof *c->parent * n);
    c->parent_gen = calloc(n, sizeof *c->parent_gen);
    c->gen = calloc(n, sizeof *c->gen);
    c->btokens = malloc(sizeof *c->btokens * n * (size_t)c->block_tokens);
    c->index.slots = malloc(sizeof *c->index.slots * size);
    if (!c->indexed || !c->bhash || !c->parent || !c->parent_gen || !c->gen || !c->btokens ||
        !c->index.slots)
        return weft_errf(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        c->parent[i] = -1;
    for (size_t i = 0; i < size; i++)
        c->index.slots[i] = -1;
    c->index.mask = (uint32_t)(size - 1);
    c->index.hash = kv_prefix_default_hash;
    return 0;
}

void kv_prefix_free(kv_cache *c) {
    free(c->indexed);
    free(c->bhash);
    free(c->parent);
    free(c->parent_gen);
    free(c->gen);
    free(c->btokens);
    free(c->index.slots);
}

static uint64_t kv_mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

uint64_t kv_prefix_default_hash(uint64_t prev, const int32_t *tokens, int n) {
    uint64_t h = kv_mix64(prev + 0x9e3779b97f4a7c15ull);
    for (int i = 0; i < n; i++)
        h = kv_mix64(h ^ (uint32_t)tokens[i]) + (uint64_t)i;
    return h;
}

int kv_cache_set_hash(kv_cache *c, kv_block_hash_fn fn) {
    if (!c->sharing || !fn) return -1;
    for (int b = 0; b < c->n_blocks; b++)
        if (c->indexed[b]) return -1;
    c->index.hash = fn;
    return 0;
}

/* ---------------------------------------------------------------- index */

int32_t kv_prefix_lookup(const kv_cache *c, uint64_t hash, int32_t parent, uint32_t parent_gen,
                         const int32_t *tokens) {
    const int bt = c->block_tokens;
    for (uint32_t i = (uint32_t)hash & c->index.mask;; i = (i + 1) & c->index.mask) {
        int32_t b = c->index.slots[i];
        if (b == -1) return -1;
        if (c->bhash[b] == hash && c->parent[b] == parent && c->parent_gen[b] == parent_gen &&
            memcmp(c->btokens + (size_t)b * bt, tokens, sizeof *tokens * (size_t)bt) == 0)
            return b;
    }
}

static void kv_index_insert(kv_cache *c, int32_t b) {
    uint32_t i = (uint32_t)c->bhash[b] & c->index.mask;
    while (c->index.slots[i] != -1)
        i = (i + 1) & c->index.mask;
    c->index.slots[i] = b;
}

void kv_prefix_forget(kv_cache *c, int32_t b) {
    const uint32_t mask = c->index.mask;
    int32_t *slots = c->index.slots;
    uint32_t i = (uint32_t)c->bhash[b] & mask;
    while (slots[i] != b)
        i = (i + 1) & mask;
    /* backward shift: pull later entries of the probe run into the hole unless their home
     * lies cyclically within (hole, entry] */
    for (uint32_t j = (i + 1) & mask; slots[j] != -1; j = (j + 1) & mask) {
        uint32_t home = (uint32_t)c->bhash[slots[j]] & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        slots[i] = slots[j];
        i = j;
    }
    slots[i] = -1;
    c->indexed[b] = false;
    c->parent[b] = -1;
    c->gen[b]++;
}

/* ---------------------------------------------------------------- registration */

void kv_prefix_commit(kv_cache *c, kv_handle h, const int32_t *tokens, int len) {
    kv_seq_state *s = &c->seqs[h];
    const int bt = c->block_tokens;
    if (s->index_done) return;
    int upto = len < s->prompt_len ? len : s->prompt_len;
    if (upto > s->reserved) upto = s->reserved;
    const int n_full = upto / bt;
    for (int i = s->n_indexed; i < n_full; i++) {
        /* the parent left the index (a twin's, evicted): nothing after it is reachable */
        if (s->chain_block != -1 && c->gen[s->chain_block] != s->chain_gen) {
            s->index_done = true;
            return;
        }
        const int32_t *t = tokens + (size_t)i * bt;
        uint64_t hash = c->index.hash(s->chain_hash, t, bt);
        int32_t b = kv_prefix_lookup(c, hash, s->chain_block, s->chain_gen, t);
        if (b < 0) {
            b = s->table[i];
            c->indexed[b] = true;
            c->bhash[b] = hash;
            c->parent[b] = s->chain_block;
            c->parent_gen[b] = s->chain_gen;
            memcpy(c->btokens + (size_t)b * bt, t, sizeof *t * (size_t)bt);
            kv_index_insert(c, b);
        }
        s->chain_hash = hash;
        s->chain_block = b;
        s->chain_gen = c->gen[b];
        s->n_indexed = i + 1;
    }
}
