/* kv_cache.c — the front end of the KV cache (include/weft/kv_cache.h): it checks the
 * configuration, sizes the store, hands out sequence handles, dispatches to the dense
 * (kv_dense.c) or paged (kv_paged.c, kv_prefix.c) layout, and reports statistics. It also
 * holds the invariant check the tests run after every operation, so the bookkeeping of both
 * layouts is verified in one place. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache_internal.h"

#define KV_DEFAULT_BLOCK_TOKENS 16

/* ---------------------------------------------------------------- configuration */

static int kv_check_config(const weft_config *m, const kv_cache_config *cfg, int *block_tokens,
                           int64_t *capacity_tokens, weft_err *err) {
    if (!m || !cfg) return weft_errf(err, "kv_cache: model and configuration are required");
    if (m->n_layers <= 0 || m->n_kv_heads <= 0 || m->head_dim <= 0)
        return weft_errf(err,
                         "kv_cache: model shape must be positive (layers %d, kv heads %d, "
                         "head_dim %d)",
                         m->n_layers, m->n_kv_heads, m->head_dim);
    if (cfg->layout != KV_LAYOUT_DENSE && cfg->layout != KV_LAYOUT_PAGED)
        return weft_errf(err, "kv_cache: unknown layout %d (0 = dense, 1 = paged)",
                         (int)cfg->layout);
    if (cfg->max_seq_len <= 0)
        return weft_errf(err, "kv_cache: max_seq_len must be positive (got %d)", cfg->max_seq_len);
    /* headroom so block arithmetic (len + block_tokens - 1) never overflows an int */
    if (cfg->max_seq_len > INT_MAX / 4)
        return weft_errf(err, "kv_cache: max_seq_len %d is too large (at most %d)",
                         cfg->max_seq_len, INT_MAX / 4);
    if (cfg->capacity_tokens < 0)
        return weft_errf(err, "kv_cache: capacity_tokens must not be negative (got %lld)",
                         (long long)cfg->capacity_tokens);
    if (cfg->capacity_tokens == 0 && cfg->capacity_bytes < 0)
        return weft_errf(err, "kv_cache: capacity_bytes must not be negative (got %lld)",
                         (long long)cfg->capacity_bytes);
    if (cfg->capacity_tokens == 0 && cfg->capacity_bytes == 0)
        return weft_errf(err, "kv_cache: set capacity_tokens or capacity_bytes");
    if (cfg->layout == KV_LAYOUT_DENSE && cfg->prefix_sharing)
        return weft_errf(err, "kv_cache: prefix sharing needs the paged layout");

    int bt = cfg->max_seq_len;
    if (cfg->layout == KV_LAYOUT_PAGED) {
        bt = cfg->block_tokens == 0 ? KV_DEFAULT_BLOCK_TOKENS : cfg->block_tokens;
        if (bt < 0)
            return weft_errf(err, "kv_cache: block_tokens must be positive (got %d)",
                             cfg->block_tokens);
        if (bt > INT_MAX / 4)
            return weft_errf(err, "kv_cache: block_tokens %d is too large (at most %d)", bt,
                             INT_MAX / 4);
    }
    if (!kv_dtype_valid(cfg->dtype))
        return weft_errf(err, "kv_cache: unknown element type %d (0 = f32, 1 = f16, 2 = q8_0)",
                         (int)cfg->dtype);
    if (cfg->dtype == KV_Q8_0 && m->head_dim % 4 != 0)
        return weft_errf(err,
                         "kv_cache: a q8_0 cache needs a head size that is a multiple of 4 "
                         "(the model's is %d); use --kv-type f16",
                         m->head_dim);
    /* K and V, every layer, in the store's element type (a Q8_0 row: head_dim bytes + scale) */
    int64_t bytes_per_token = 2 * (int64_t)m->n_layers * m->n_kv_heads *
                              (int64_t)kv_row_bytes(cfg->dtype, m->head_dim);
    int64_t tokens = cfg->capacity_tokens;
    if (tokens == 0) tokens = cfg->capacity_bytes / bytes_per_token;
    int64_t per_seq_blocks = ((int64_t)cfg->max_seq_len + bt - 1) / bt;
    if (tokens / bt < per_seq_blocks) {
        if (cfg->capacity_tokens == 0)
            return weft_errf(err,
                             "kv_cache: capacity of %lld bytes (%lld tokens at %lld bytes "
                             "per token) cannot hold one sequence of max_seq_len %d%s",
                             (long long)cfg->capacity_bytes, (long long)tokens,
                             (long long)bytes_per_token, cfg->max_seq_len,
                             bt != cfg->max_seq_len ? " in whole blocks" : "");
        return weft_errf(err,
                         "kv_cache: capacity of %lld tokens cannot hold one sequence of "
                         "max_seq_len %d%s",
                         (long long)tokens, cfg->max_seq_len,
                         bt != cfg->max_seq_len ? " in whole blocks" : "");
    }
    if (tokens / bt > INT_MAX / 2)
        return weft_errf(err, "kv_cache: capacity of %lld tokens needs too many blocks of %d",
                         (long long)tokens, bt);
    *block_tokens = bt;
    *capacity_tokens = tokens;
    return 0;
}

kv_cache *kv_cache_new(const weft_config *model, const kv_cache_config *cfg, weft_err *err) {
    int bt = 0;
    int64_t tokens = 0;
    if (kv_check_config(model, cfg, &bt, &tokens, err) != 0) return NULL;
    kv_cache *c = calloc(1, sizeof *c);
    if (!c) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    c->layout = cfg->layout;
    c->sharing = cfg->layout == KV_LAYOUT_PAGED && cfg->prefix_sharing;
    c->max_seq_len = cfg->max_seq_len;
    c->block_tokens = bt;
    c->n_blocks = (int)(tokens / bt);
    c->max_table = (cfg->max_seq_len + bt - 1) / bt;
    c->free_head = c->free_tail = -1;
    c->store = kv_store_new_typed(model->n_layers, model->n_kv_heads, model->head_dim, bt,
                                  c->n_blocks, cfg->dtype, err);
    if (!c->store) goto fail;
    if (c->layout == KV_LAYOUT_DENSE) {
        if (kv_dense_init(c, err) != 0) goto fail;
    } else {
        if (kv_paged_init(c, err) != 0) goto fail;
        if (c->sharing && kv_prefix_init(c, err) != 0) goto fail;
    }
    return c;
fail:
    kv_cache_free(c);
    return NULL;
}

void kv_cache_free(kv_cache *c) {
    if (!c) return;
    for (int h = 0; h < c->n_handles; h++)
        free(c->seqs[h].table);
    free(c->seqs);
    free(c->free_handles);
    free(c->slot_of);
    free(c->owner);
    kv_paged_free(c);
    kv_prefix_free(c);
    kv_store_free(c->store);
    free(c);
}

const kv_store *kv_cache_store(const kv_cache *c) {
    return c->store;
}
kv_store *kv_cache_store_mut(kv_cache *c) {
    return c->store;
}
void kv_cache_set_move_hook(kv_cache *c, void (*fn)(void *ctx, int src, int dst, int n_rows),
                            void *ctx) {
    c->move_hook = fn;
    c->move_ctx = ctx;
}
kv_layout kv_cache_layout(const kv_cache *c) {
    return c->layout;
}
int64_t kv_cache_capacity_tokens(const kv_cache *c) {
    return (int64_t)c->n_blocks * c->block_tokens;
}

/* ---------------------------------------------------------------- handles */

kv_seq_state *kv_live_seq(const kv_cache *c, kv_handle h) {
    if (!c || h < 0 || h >= c->n_handles || !c->seqs[h].live) return NULL;
    return &c->seqs[h];
}

/* Handles are indices into seqs, recycled through a stack; the array grows on demand so a
 * large paged cache does not pay for every sequence it could ever hold. */
int kv_handle_alloc(kv_cache *c) {
    if (c->n_free_handles == 0) {
        int grow = c->n_handles ? c->n_handles : 16;
        if (grow > INT_MAX / 2 - c->n_handles) return -1;
        int n = c->n_handles + grow;
        kv_seq_state *seqs = realloc(c->seqs, sizeof *seqs * (size_t)n);
        if (!seqs) return -1;
        c->seqs = seqs;
        int32_t *fh = realloc(c->free_handles, sizeof *fh * (size_t)n);
        if (!fh) return -1;
        c->free_handles = fh;
        memset(seqs + c->n_handles, 0, sizeof *seqs * (size_t)grow);
        /* lowest ids on top of the stack */
        for (int i = n - 1; i >= c->n_handles; i--)
            c->free_handles[c->n_free_handles++] = i;
        c->n_handles = n;
    }
    int h = c->free_handles[--c->n_free_handles];
    kv_seq_state *s = &c->seqs[h];
    int32_t *table = s->table; /* paged tables are kept for reuse */
    memset(s, 0, sizeof *s);
    s->table = table;
    s->live = true;
    s->chain_block = -1;
    c->n_live++;
    return h;
}

void kv_handle_release(kv_cache *c, kv_handle h) {
    c->seqs[h].live = false;
    c->free_handles[c->n_free_handles++] = h;
    c->n_live--;
}

/* ---------------------------------------------------------------- sequences */

kv_handle kv_seq_open(kv_cache *c, const int32_t *prompt, int n, int *n_cached, weft_err *err) {
    if (n_cached) *n_cached = 0;
    if (!c) return weft_errf(err, "kv_cache: no cache");
    if (n < 1) return weft_errf(err, "kv_cache: a prompt needs at least one token (got %d)", n);
    if (n > c->max_seq_len)
        return weft_errf(err, "kv_cache: prompt of %d tokens exceeds max_seq_len %d", n,
                         c->max_seq_len);
    if (c->sharing && !prompt) return weft_errf(err, "kv_cache: prefix sharing needs the prompt");
    if (c->layout == KV_LAYOUT_DENSE) return kv_dense_open(c, n, err);
    return kv_paged_open(c, prompt, n, n_cached, err);
}

int kv_seq_reserve(kv_cache *c, kv_handle h, int len) {
    kv_seq_state *s = kv_live_seq(c, h);
    if (!s || len > c->max_seq_len) return -1;
    if (len <= s->reserved) return 0;
    if (c->layout == KV_LAYOUT_DENSE) return kv_dense_reserve(c, h, len);
    return kv_paged_reserve(c, h, len);
}

int kv_cache_blocks_for(const kv_cache *c, int len) {
    if (len <= 0) return 0;
    /* longer than any sequence may be: more than the whole cache, so it is never admitted */
    if (len > c->max_seq_len) return c->n_blocks + 1;
    if (c->layout == KV_LAYOUT_DENSE) return 1;
    return (len + c->block_tokens - 1) / c->block_tokens;
}

int kv_cache_free_blocks(const kv_cache *c) {
    if (c->layout == KV_LAYOUT_DENSE) return c->n_blocks - c->n_live;
    return c->n_free;
}

kv_seq kv_seq_view(const kv_cache *c, kv_handle h) {
    kv_seq v = {NULL, 0};
    const kv_seq_state *s = kv_live_seq(c, h);
    if (!s) return v;
    if (c->layout == KV_LAYOUT_DENSE) {
        v.blocks = &c->slot_of[h];
        v.n_blocks = 1;
    } else {
        v.blocks = s->table;
        v.n_blocks = s->n_table;
    }
    return v;
}

void kv_seq_commit(kv_cache *c, kv_handle h, const int32_t *tokens, int len) {
    kv_seq_state *s = kv_live_seq(c, h);
    if (!s || !c->sharing || !tokens || len <= 0) return;
    kv_prefix_commit(c, h, tokens, len);
}

void kv_seq_close(kv_cache *c, kv_handle h) {
    if (!kv_live_seq(c, h)) return;
    if (c->layout == KV_LAYOUT_DENSE)
        kv_dense_close(c, h);
    else
        kv_paged_close(c, h);
    kv_handle_release(c, h);
}

int kv_cache_compact(kv_cache *c, size_t *bytes_moved) {
    if (bytes_moved) *bytes_moved = 0;
    if (!c || c->layout != KV_LAYOUT_DENSE) return 0;
    return kv_dense_compact(c, bytes_moved);
}

/* ---------------------------------------------------------------- statistics */

void kv_cache_get_stats(const kv_cache *c, kv_cache_stats *st) {
    memset(st, 0, sizeof *st);
    st->capacity_tokens = kv_cache_capacity_tokens(c);
    st->n_seqs = c->n_live;
    st->total_blocks = c->n_blocks;
    st->free_blocks = kv_cache_free_blocks(c);
    st->prefix_hit_tokens = c->prefix_hit_tokens;
    st->slot_moves = c->slot_moves;
    st->bytes_moved = c->bytes_moved;
    int64_t live = 0;
    for (int h = 0; h < c->n_handles; h++)
        if (c->seqs[h].live) live += c->seqs[h].reserved;
    if (c->layout == KV_LAYOUT_DENSE) {
        st->reserved_tokens = (int64_t)c->n_live * c->max_seq_len;
    } else {
        int64_t used = 0;
        for (int b = 0; b < c->n_blocks; b++) {
            if (c->ref[b] == 0) continue;
            used++;
            /* Only full prompt blocks are shared and every user spans them whole, so each
             * extra user counted a full block of rows twice. */
            live -= (int64_t)(c->ref[b] - 1) * c->block_tokens;
        }
        st->reserved_tokens = used * c->block_tokens;
    }
    st->live_tokens = live;
}

/* ---------------------------------------------------------------- invariants */

static int kv_check_paged(const kv_cache *c, int32_t *count, weft_err *err) {
    const int bt = c->block_tokens;
    memset(count, 0, sizeof *count * (size_t)c->n_blocks);
    for (int h = 0; h < c->n_handles; h++) {
        const kv_seq_state *s = &c->seqs[h];
        if (!s->live) continue;
        if (s->n_table != (s->reserved + bt - 1) / bt || s->n_table > c->max_table)
            return weft_errf(err, "handle %d: %d blocks for %d reserved tokens", h, s->n_table,
                             s->reserved);
        if (s->reserved < s->prompt_len || s->prompt_len < 1)
            return weft_errf(err, "handle %d: reserved %d below prompt %d", h, s->reserved,
                             s->prompt_len);
        for (int i = 0; i < s->n_table; i++) {
            int32_t b = s->table[i];
            if (b < 0 || b >= c->n_blocks)
                return weft_errf(err, "handle %d: block %d out of range", h, b);
            count[b]++;
            for (int j = 0; j < i; j++)
                if (s->table[j] == b)
                    return weft_errf(err, "handle %d: block %d twice in one table", h, b);
        }
        if (s->n_indexed > s->n_table || s->n_indexed > s->prompt_len / bt)
            return weft_errf(err, "handle %d: %d indexed blocks of %d", h, s->n_indexed,
                             s->n_table);
    }
    int n_used = 0;
    for (int b = 0; b < c->n_blocks; b++) {
        if (count[b] != c->ref[b])
            return weft_errf(err, "block %d: refcount %d but %d tables hold it", b, c->ref[b],
                             count[b]);
        if (c->ref[b] > 1 && !(c->sharing && c->indexed[b]))
            return weft_errf(err, "block %d: in %d tables but not a shared prefix block", b,
                             c->ref[b]);
        if (c->ref[b] > 0) n_used++;
    }
    /* the free list holds exactly the blocks nobody uses, each once */
    int n = 0;
    int32_t prev = -1;
    for (int32_t b = c->free_head; b != -1; b = c->free_next[b]) {
        if (b < 0 || b >= c->n_blocks || ++n > c->n_blocks)
            return weft_errf(err, "free list: corrupt at block %d", b);
        if (c->ref[b] != 0) return weft_errf(err, "free list: block %d has users", b);
        if (c->free_prev[b] != prev) return weft_errf(err, "free list: bad back link at %d", b);
        prev = b;
    }
    if (prev != c->free_tail)
        return weft_errf(err, "free list: tail %d, last %d", c->free_tail, prev);
    if (n != c->n_free || n + n_used != c->n_blocks)
        return weft_errf(err, "free list: %d listed, n_free %d, %d used of %d", n, c->n_free,
                         n_used, c->n_blocks);
    if (!c->sharing) return 0;
    int n_indexed = 0;
    for (int b = 0; b < c->n_blocks; b++) {
        if (!c->indexed[b]) continue;
        n_indexed++;
        int32_t found = kv_prefix_lookup(c, c->bhash[b], c->parent[b], c->parent_gen[b],
                                         c->btokens + (size_t)b * bt);
        if (found != b)
            return weft_errf(err, "index: block %d not found under its hash (got %d)", b, found);
    }
    int n_slots = 0;
    for (uint32_t i = 0; i <= c->index.mask; i++) {
        int32_t b = c->index.slots[i];
        if (b == -1) continue;
        n_slots++;
        if (b < 0 || b >= c->n_blocks || !c->indexed[b])
            return weft_errf(err, "index: slot %u holds unindexed block %d", i, b);
    }
    if (n_slots != n_indexed)
        return weft_errf(err, "index: %d entries for %d indexed blocks", n_slots, n_indexed);
    return 0;
}

int kv_cache_check(const kv_cache *c, weft_err *err) {
    int n_live = 0;
    for (int h = 0; h < c->n_handles; h++)
        n_live += c->seqs[h].live;
    if (n_live != c->n_live)
        return weft_errf(err, "handles: %d live, counted %d", c->n_live, n_live);
    if (c->n_free_handles + n_live != c->n_handles)
        return weft_errf(err, "handles: %d free + %d live != %d", c->n_free_handles, n_live,
                         c->n_handles);
    for (int i = 0; i < c->n_free_handles; i++) {
        int32_t h = c->free_handles[i];
        if (h < 0 || h >= c->n_handles || c->seqs[h].live)
            return weft_errf(err, "handles: free entry %d (%d) is live or out of range", i, h);
    }
    for (int h = 0; h < c->n_handles; h++) {
        const kv_seq_state *s = &c->seqs[h];
        if (s->live && (s->reserved > c->max_seq_len || s->reserved < s->prompt_len))
            return weft_errf(err, "handle %d: reserved %d (prompt %d, max %d)", h, s->reserved,
                             s->prompt_len, c->max_seq_len);
    }
    if (c->layout == KV_LAYOUT_DENSE) {
        int owned = 0;
        for (int slot = 0; slot < c->n_blocks; slot++) {
            int32_t h = c->owner[slot];
            if (h == -1) continue;
            owned++;
            if (!kv_live_seq(c, h) || c->slot_of[h] != slot)
                return weft_errf(err, "slot %d: owner %d does not map back", slot, h);
        }
        if (owned != n_live) return weft_errf(err, "slots: %d owned, %d live", owned, n_live);
        return 0;
    }
    int32_t *count = malloc(sizeof *count * (size_t)c->n_blocks);
    if (!count) return weft_errf(err, "out of memory");
    int rc = kv_check_paged(c, count, err);
    free(count);
    return rc;
}
