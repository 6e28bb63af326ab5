/* test_kv_cache.c — the KV cache's ownership bookkeeping (src/engine/kv_*.c): dense slots and
 * their compaction (contents kept, fewest moves, live slots contiguous), paged block tables
 * (growth, capacity, clean failure), prefix sharing (reuse, reference counts, no false sharing
 * even when every hash collides), equality of the forward pass with and without a shared
 * prefix, long random operation sequences checked against every invariant, and configuration
 * errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kv_cache_internal.h"
#include "support/testutil.h"
#include "weft/forward.h"
#include "weft/kv_cache.h"
#include "weft/model.h"

/* ---------------------------------------------------------------- helpers */

/* a small model shape: kv_dim 8, 2 layers; 128 bytes per token */
static weft_config small_model(void) {
    weft_config m;
    memset(&m, 0, sizeof m);
    m.n_layers = 2;
    m.n_kv_heads = 2;
    m.head_dim = 4;
    return m;
}

static kv_cache *make_cache(kv_layout layout, int64_t tokens, int max_seq_len, int bt,
                            bool sharing) {
    weft_config m = small_model();
    kv_cache_config cfg = {layout, tokens, 0, max_seq_len, bt, sharing, KV_F32};
    weft_err err = {{0}};
    kv_cache *c = kv_cache_new(&m, &cfg, &err);
    if (!c) fail_msg("kv_cache_new: %s", err.msg);
    return c;
}

static void check(const kv_cache *c) {
    weft_err err = {{0}};
    if (kv_cache_check(c, &err) != 0) fail_msg("invariant: %s", err.msg);
}

static uint32_t rng_next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}
static int rng_int(uint64_t *s, int n) {
    return (int)(rng_next(s) % (uint32_t)n);
}

static float pattern(uint64_t key, int layer, int d, int is_v) {
    uint64_t x =
        key * 0x9e3779b97f4a7c15ull + (uint64_t)layer * 131 + (uint64_t)d * 7 + (uint64_t)is_v;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (float)(x % 100003) / 7.0f;
}

/* Writes K/V rows [from, to) of h through its block table, as the forward pass would. */
static void write_rows(kv_cache *c, kv_handle h, int from, int to, const uint64_t *keys) {
    kv_store *st = kv_cache_store_mut(c);
    kv_seq v = kv_seq_view(c, h);
    for (int p = from; p < to; p++) {
        int blk = p / st->block_tokens, row = p % st->block_tokens;
        assert_true(blk < v.n_blocks);
        for (int l = 0; l < st->n_layers; l++) {
            float *k = kv_k_rows(st, v.blocks[blk], l), *vv = kv_v_rows(st, v.blocks[blk], l);
            for (int d = 0; d < st->kv_dim; d++) {
                k[kv_elem_off(st, row, d)] = pattern(keys[p], l, d, 0);
                vv[kv_elem_off(st, row, d)] = pattern(keys[p], l, d, 1);
            }
        }
    }
}

/* 1 when rows [0, n) of h hold what write_rows put there. */
static int rows_match(const kv_cache *c, kv_handle h, int n, const uint64_t *keys) {
    const kv_store *st = kv_cache_store(c);
    kv_seq v = kv_seq_view(c, h);
    for (int p = 0; p < n; p++) {
        int blk = p / st->block_tokens, row = p % st->block_tokens;
        if (blk >= v.n_blocks) return 0;
        for (int l = 0; l < st->n_layers; l++) {
            const float *k = kv_k_rows(st, v.blocks[blk], l), *vv = kv_v_rows(st, v.blocks[blk], l);
            for (int d = 0; d < st->kv_dim; d++)
                if (k[kv_elem_off(st, row, d)] != pattern(keys[p], l, d, 0) ||
                    vv[kv_elem_off(st, row, d)] != pattern(keys[p], l, d, 1))
                    return 0;
        }
    }
    return 1;
}

/* Rows [0, n) of one block and layer in row-major order (whatever the store's layout). */
static void gather_rows(const kv_store *st, int blk, int l, int n, float *k_out, float *v_out) {
    const float *k = kv_k_rows(st, blk, l), *v = kv_v_rows(st, blk, l);
    for (int r = 0; r < n; r++)
        for (int d = 0; d < st->kv_dim; d++) {
            k_out[(size_t)r * st->kv_dim + d] = k[kv_elem_off(st, r, d)];
            v_out[(size_t)r * st->kv_dim + d] = v[kv_elem_off(st, r, d)];
        }
}

/* ---------------------------------------------------------------- 1. dense compaction */

/* Fewest single-slot moves that make the occupied slots contiguous, by breadth-first search
 * over occupancy masks: an independent check of the window rule. */
static int brute_min_moves(unsigned mask, int N) {
    static const int max_states = 1 << 10;
    int dist[1 << 10];
    unsigned queue[1 << 10];
    for (int i = 0; i < max_states; i++)
        dist[i] = -1;
    int head = 0, tail = 0;
    dist[mask] = 0;
    queue[tail++] = mask;
    while (head < tail) {
        unsigned m = queue[head++];
        unsigned low = m & -m;
        unsigned run = m / low; /* contiguous iff m/low is 2^k - 1 */
        if ((run & (run + 1)) == 0) return dist[m];
        for (int a = 0; a < N; a++) {
            if (!(m >> a & 1)) continue;
            for (int b = 0; b < N; b++) {
                if (m >> b & 1) continue;
                unsigned n = (m & ~(1u << a)) | (1u << b);
                if (dist[n] != -1) continue;
                dist[n] = dist[m] + 1;
                queue[tail++] = n;
            }
        }
    }
    return -1;
}

static void test_dense_compaction(void **state) {
    (void)state;
    uint64_t rng = 42;
    for (int trial = 0; trial < 300; trial++) {
        const int N = 2 + rng_int(&rng, 9), L = 8;
        kv_cache *c = make_cache(KV_LAYOUT_DENSE, (int64_t)N * L + rng_int(&rng, L), L, 0, false);
        assert_int_equal(kv_cache_free_blocks(c), N);
        kv_handle h[10];
        int len[10];
        uint64_t keys[10][8];
        weft_err err = {{0}};
        for (int i = 0; i < N; i++) {
            len[i] = 1 + rng_int(&rng, L);
            int n0 = 1 + rng_int(&rng, len[i]);
            int cached = -1;
            h[i] = kv_seq_open(c, NULL, n0, &cached, &err);
            assert_true(h[i] >= 0);
            assert_int_equal(cached, 0);
            assert_int_equal(kv_seq_reserve(c, h[i], len[i]), 0);
            for (int p = 0; p < L; p++)
                keys[i][p] = (uint64_t)trial * 1000 + (uint64_t)i * 10 + (uint64_t)p;
            write_rows(c, h[i], 0, len[i], keys[i]);
        }
        /* full: no slot for another */
        assert_int_equal(kv_seq_open(c, NULL, 1, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "slots are in use"));
        assert_int_equal(kv_seq_reserve(c, h[0], L + 1), -1);

        int closed[10] = {0};
        for (int i = 0; i < N; i++)
            if (rng_int(&rng, 2)) {
                kv_seq_close(c, h[i]);
                closed[i] = 1;
            }
        /* an unshuffled copy of every live sequence's rows */
        const kv_store *st = kv_cache_store(c);
        size_t per = (size_t)st->n_layers * L * st->kv_dim;
        float *copy = malloc(sizeof(float) * 2 * per * (size_t)N);
        float *now_k = malloc(sizeof(float) * per), *now_v = malloc(sizeof(float) * per);
        assert_non_null(copy);
        assert_non_null(now_k);
        assert_non_null(now_v);
        unsigned mask = 0;
        int n_live = 0, old_slot[10];
        for (int i = 0; i < N; i++) {
            if (closed[i]) continue;
            n_live++;
            kv_seq v = kv_seq_view(c, h[i]);
            assert_int_equal(v.n_blocks, 1);
            old_slot[i] = v.blocks[0];
            mask |= 1u << v.blocks[0];
            for (int l = 0; l < st->n_layers; l++)
                gather_rows(st, v.blocks[0], l, len[i], copy + 2 * per * i + (size_t)l * L * st->kv_dim,
                            copy + 2 * per * i + per + (size_t)l * L * st->kv_dim);
        }
        int expect_moves = n_live ? brute_min_moves(mask, N) : 0;
        size_t bytes = 1;
        int moves = kv_cache_compact(c, &bytes);
        check(c);
        if (moves != expect_moves)
            fail_msg("trial %d: mask %#x: %d moves, optimum %d", trial, mask, moves, expect_moves);
        size_t expect_bytes = 0;
        int lo = N, hi = -1;
        for (int i = 0; i < N; i++) {
            if (closed[i]) continue;
            kv_seq v = kv_seq_view(c, h[i]);
            int s = v.blocks[0];
            if (s != old_slot[i])
                expect_bytes += 2 * (size_t)st->n_layers * len[i] * st->kv_dim * sizeof(float);
            if (s < lo) lo = s;
            if (s > hi) hi = s;
            for (int l = 0; l < st->n_layers; l++) {
                size_t n = (size_t)len[i] * st->kv_dim;
                gather_rows(st, s, l, len[i], now_k, now_v);
                assert_memory_equal(now_k, copy + 2 * per * i + (size_t)l * L * st->kv_dim,
                                    n * sizeof(float));
                assert_memory_equal(now_v, copy + 2 * per * i + per + (size_t)l * L * st->kv_dim,
                                    n * sizeof(float));
            }
            assert_true(rows_match(c, h[i], len[i], keys[i]));
        }
        assert_int_equal(bytes, expect_bytes);
        if (n_live) assert_int_equal(hi - lo + 1, n_live); /* distinct slots, so contiguous */
        /* a second compaction has nothing to do */
        assert_int_equal(kv_cache_compact(c, &bytes), 0);
        assert_int_equal(bytes, 0);
        kv_cache_stats stt;
        kv_cache_get_stats(c, &stt);
        assert_int_equal(stt.slot_moves, moves);
        assert_int_equal(stt.bytes_moved, (int64_t)expect_bytes);
        assert_int_equal(stt.n_seqs, n_live);
        assert_int_equal(stt.reserved_tokens, (int64_t)n_live * L);
        assert_int_equal(stt.free_blocks, N - n_live);
        assert_int_equal(stt.capacity_tokens, (int64_t)N * L);
        free(copy);
        free(now_k);
        free(now_v);
        kv_cache_free(c);
    }
}

/* The best window is not always [0, n): live slots at the far end stay put. */
static void test_dense_window_not_at_zero(void **state) {
    (void)state;
    kv_cache *c = make_cache(KV_LAYOUT_DENSE, 7 * 4, 4, 0, false);
    kv_handle h[7];
    for (int i = 0; i < 7; i++)
        h[i] = kv_seq_open(c, NULL, 2, NULL, NULL);
    /* live: slots 1, 4, 5, 6 -> window [3, 7) holds three: one move, where [0, 4) needs three */
    kv_seq_close(c, h[0]);
    kv_seq_close(c, h[2]);
    kv_seq_close(c, h[3]);
    assert_int_equal(kv_cache_compact(c, NULL), 1);
    assert_int_equal(kv_seq_view(c, h[1]).blocks[0], 3);
    for (int i = 4; i < 7; i++)
        assert_int_equal(kv_seq_view(c, h[i]).blocks[0], i);
    check(c);
    kv_cache_free(c);
}

/* ---------------------------------------------------------------- 2. paged tables */

static void test_paged_reserve_close(void **state) {
    (void)state;
    /* 16 blocks of 4 tokens; a sequence may span 8 blocks */
    kv_cache *c = make_cache(KV_LAYOUT_PAGED, 64, 32, 4, false);
    weft_err err = {{0}};
    int32_t prompt[32] = {0};
    assert_int_equal(kv_cache_capacity_tokens(c), 64);
    assert_int_equal(kv_cache_free_blocks(c), 16);
    assert_int_equal(kv_cache_blocks_for(c, 5), 2);
    assert_int_equal(kv_cache_blocks_for(c, 32), 8);
    assert_true(kv_cache_blocks_for(c, 33) > 16);
    int cached = -1;
    kv_handle a = kv_seq_open(c, prompt, 5, &cached, &err);
    assert_true(a >= 0);
    assert_int_equal(cached, 0);
    assert_int_equal(kv_seq_view(c, a).n_blocks, 2);
    assert_int_equal(kv_cache_free_blocks(c), 14);
    assert_int_equal(kv_seq_reserve(c, a, 9), 0);
    assert_int_equal(kv_seq_view(c, a).n_blocks, 3);
    assert_int_equal(kv_seq_reserve(c, a, 8), 0); /* never shrinks */
    assert_int_equal(kv_seq_view(c, a).n_blocks, 3);
    assert_int_equal(kv_seq_reserve(c, a, 33), -1); /* past max_seq_len */
    check(c);

    kv_handle b = kv_seq_open(c, prompt, 26, NULL, &err);
    assert_true(b >= 0);
    assert_int_equal(kv_cache_free_blocks(c), 6);
    kv_cache_stats st;
    kv_cache_get_stats(c, &st);
    assert_int_equal(st.reserved_tokens, 10 * 4);
    assert_int_equal(st.live_tokens, 9 + 26);
    assert_int_equal(st.n_seqs, 2);

    /* the prompt does not fit: refused, nothing allocated */
    kv_handle d = kv_seq_open(c, prompt, 28, NULL, &err);
    assert_int_equal(d, -1);
    assert_non_null(strstr(err.msg, "needs 7 more blocks, 6 free"));
    assert_int_equal(kv_cache_free_blocks(c), 6);
    check(c);

    /* grow until full; a failing reserve leaves the table as it was */
    assert_int_equal(kv_seq_reserve(c, a, 32), 0);
    assert_int_equal(kv_cache_free_blocks(c), 1);
    assert_int_equal(kv_seq_reserve(c, b, 28), 0); /* inside its last block */
    assert_int_equal(kv_cache_free_blocks(c), 1);
    kv_handle e = kv_seq_open(c, prompt, 4, NULL, &err);
    assert_true(e >= 0);
    assert_int_equal(kv_cache_free_blocks(c), 0);
    kv_seq before = kv_seq_view(c, e);
    int32_t saved = before.blocks[0];
    assert_int_equal(kv_seq_reserve(c, e, 5), -1);
    kv_seq after = kv_seq_view(c, e);
    assert_int_equal(after.n_blocks, 1);
    assert_int_equal(after.blocks[0], saved);
    assert_int_equal(kv_seq_reserve(c, e, 4), 0); /* still fits what it had */
    assert_int_equal(kv_seq_open(c, prompt, 1, NULL, &err), -1);
    kv_cache_get_stats(c, &st);
    assert_int_equal(st.reserved_tokens, 64);
    assert_int_equal(st.live_tokens, 32 + 28 + 4);
    assert_int_equal(st.free_blocks, 0);
    check(c);
    kv_seq_close(c, e);
    kv_seq_close(c, b);
    assert_int_equal(kv_cache_free_blocks(c), 8);
    kv_seq_close(c, a);
    kv_seq_close(c, a); /* closing twice is harmless */
    assert_int_equal(kv_cache_free_blocks(c), 16);
    assert_int_equal(kv_seq_view(c, a).n_blocks, 0);
    assert_int_equal(kv_seq_reserve(c, a, 4), -1);
    assert_int_equal(kv_cache_compact(c, NULL), 0);
    check(c);
    kv_cache_free(c);
}

/* ---------------------------------------------------------------- 3. prefix sharing */

static void fill_tokens(int32_t *t, int n, uint64_t seed) {
    for (int i = 0; i < n; i++)
        t[i] = 3 + rng_int(&seed, 1000);
}

static void test_prefix_sharing(void **state) {
    (void)state;
    /* 16 blocks of 16 */
    kv_cache *c = make_cache(KV_LAYOUT_PAGED, 256, 128, 16, true);
    weft_err err = {{0}};
    int32_t p1[64], p2[64];
    fill_tokens(p1, 64, 1);
    memcpy(p2, p1, sizeof(int32_t) * 40);
    fill_tokens(p2 + 40, 24, 2);

    int cached = -1;
    kv_handle a = kv_seq_open(c, p1, 40, &cached, &err);
    assert_int_equal(cached, 0);
    kv_seq_commit(c, a, p1, 40); /* two full prompt blocks become shareable */
    check(c);
    kv_handle b = kv_seq_open(c, p2, 50, &cached, &err);
    assert_true(b >= 0);
    assert_int_equal(cached, 32);
    kv_seq va = kv_seq_view(c, a), vb = kv_seq_view(c, b);
    assert_int_equal(vb.n_blocks, 4);
    assert_int_equal(vb.blocks[0], va.blocks[0]);
    assert_int_equal(vb.blocks[1], va.blocks[1]);
    assert_true(vb.blocks[2] != va.blocks[2]);
    assert_int_equal(kv_cache_free_blocks(c), 16 - 3 - 2);
    kv_cache_stats st;
    kv_cache_get_stats(c, &st);
    assert_int_equal(st.prefix_hit_tokens, 32);
    assert_int_equal(st.reserved_tokens, 5 * 16);
    assert_int_equal(st.live_tokens, 40 + 50 - 32);
    check(c);

    /* shared blocks stay until their last user leaves */
    kv_seq_close(c, a);
    assert_int_equal(kv_cache_free_blocks(c), 16 - 4);
    check(c);
    kv_seq_close(c, b);
    assert_int_equal(kv_cache_free_blocks(c), 16);
    check(c);

    /* freed but still indexed: a later prompt still finds them */
    kv_handle d = kv_seq_open(c, p1, 64, &cached, &err);
    assert_int_equal(cached, 32);
    assert_int_equal(kv_cache_free_blocks(c), 12);
    kv_seq_commit(c, d, p1, 64); /* now four blocks of p1 are indexed */
    kv_seq_close(c, d);

    /* n_cached stays below n: a prompt that is exactly cached blocks recomputes the last */
    for (int n = 1; n <= 64; n++) {
        kv_handle e = kv_seq_open(c, p1, n, &cached, &err);
        assert_true(e >= 0);
        int expect = ((n - 1) / 16) * 16;
        if (cached != expect) fail_msg("n %d: cached %d, want %d", n, cached, expect);
        kv_seq_close(c, e);
        check(c);
    }

    /* filling the cache with other prompts evicts the cached blocks, oldest first */
    int32_t other[128];
    fill_tokens(other, 128, 3);
    kv_handle f = kv_seq_open(c, other, 128, &cached, &err); /* 8 blocks: 8 plain free ones */
    assert_int_equal(cached, 0);
    kv_handle g = kv_seq_open(c, p1, 64, &cached, &err); /* all four still cached */
    assert_int_equal(cached, 48);
    kv_seq_close(c, g);
    kv_seq_close(c, f);
    int32_t other2[128];
    fill_tokens(other2, 128, 4);
    kv_handle f2 = kv_seq_open(c, other2, 128, NULL, &err);
    /* 7 blocks: the last 4 plain free ones, then 3 cached ones, least recently freed first */
    kv_handle f3 = kv_seq_open(c, other2, 112, NULL, &err);
    assert_true(f2 >= 0 && f3 >= 0);
    assert_int_equal(kv_cache_free_blocks(c), 1);
    check(c);
    kv_seq_close(c, f2);
    kv_seq_close(c, f3);
    kv_handle e = kv_seq_open(c, p1, 64, &cached, &err);
    /* closing frees a prompt's last block first, so its tail went and its head survived */
    assert_int_equal(cached, 16);
    kv_seq_close(c, e);
    check(c);
    kv_cache_free(c);
}

static uint64_t colliding_hash(uint64_t prev, const int32_t *t, int n) {
    (void)prev, (void)t, (void)n;
    return 7;
}

/* Every block hashes alike: only equal tokens under an equal prefix may be shared. */
static void test_prefix_collisions(void **state) {
    (void)state;
    kv_cache *c = make_cache(KV_LAYOUT_PAGED, 64 * 4, 64, 4, true);
    assert_int_equal(kv_cache_set_hash(c, colliding_hash), 0);
    weft_err err = {{0}};
    int32_t base[16], t[16];
    fill_tokens(base, 16, 9);
    int cached = -1;
    kv_handle a = kv_seq_open(c, base, 16, &cached, &err);
    kv_seq_commit(c, a, base, 16);
    check(c);
    assert_int_equal(kv_cache_set_hash(c, colliding_hash), -1); /* blocks are indexed now */

    /* one token different in block 1: only block 0 is shared */
    memcpy(t, base, sizeof t);
    t[5]++;
    kv_handle b = kv_seq_open(c, t, 16, &cached, &err);
    assert_int_equal(cached, 4);
    kv_seq_commit(c, b, t, 16);
    /* block 0 different, blocks 1-2 equal: the chain breaks at block 0 */
    memcpy(t, base, sizeof t);
    t[0]++;
    kv_handle d = kv_seq_open(c, t, 16, &cached, &err);
    assert_int_equal(cached, 0);
    kv_seq_commit(c, d, t, 16);
    /* same tokens as block 1 of a at block 0 of a new prompt: different position, no share */
    kv_handle e = kv_seq_open(c, base + 4, 12, &cached, &err);
    assert_int_equal(cached, 0);
    check(c);
    /* the full prompt again: three blocks shared, last one computed */
    kv_handle f = kv_seq_open(c, base, 16, &cached, &err);
    assert_int_equal(cached, 12);
    kv_seq va = kv_seq_view(c, a), vf = kv_seq_view(c, f);
    for (int i = 0; i < 3; i++)
        assert_int_equal(vf.blocks[i], va.blocks[i]);
    check(c);
    kv_seq_close(c, a);
    kv_seq_close(c, b);
    kv_seq_close(c, d);
    kv_seq_close(c, e);
    kv_seq_close(c, f);
    assert_int_equal(kv_cache_free_blocks(c), 64);
    check(c);
    kv_cache_free(c);
}

/* Two sequences compute the same prompt at once: the second's blocks stay private, and later
 * prompts chain through the first's; sequences opened on blocks of either still share right. */
static void test_prefix_twins(void **state) {
    (void)state;
    kv_cache *c = make_cache(KV_LAYOUT_PAGED, 64 * 4, 64, 4, true);
    weft_err err = {{0}};
    int32_t p[40];
    fill_tokens(p, 40, 5);
    int cached = -1;
    kv_handle a = kv_seq_open(c, p, 8, &cached, &err);
    kv_handle b = kv_seq_open(c, p, 20, &cached, &err);
    assert_int_equal(cached, 0);
    kv_seq_commit(c, a, p, 8);
    kv_seq_commit(c, b, p, 20); /* blocks 0-1 twins of a's; 2-4 chained on a's block 1 */
    check(c);
    kv_handle d = kv_seq_open(c, p, 40, &cached, &err);
    assert_int_equal(cached, 20);
    kv_seq va = kv_seq_view(c, a), vb = kv_seq_view(c, b), vd = kv_seq_view(c, d);
    assert_int_equal(vd.blocks[0], va.blocks[0]);
    assert_int_equal(vd.blocks[1], va.blocks[1]);
    assert_int_equal(vd.blocks[2], vb.blocks[2]);
    assert_int_equal(vd.blocks[4], vb.blocks[4]);
    check(c);
    kv_seq_close(c, a);
    kv_seq_close(c, b);
    kv_seq_close(c, d);
    assert_int_equal(kv_cache_free_blocks(c), 64);
    check(c);
    kv_cache_free(c);
}

/* A sequence chained onto a twin's block that is then evicted: its later blocks are not
 * registered (nothing could reach them), and nobody shares stale rows. */
static void test_prefix_evicted_parent(void **state) {
    (void)state;
    kv_cache *c = make_cache(KV_LAYOUT_PAGED, 64 * 4, 64, 4, true);
    weft_err err = {{0}};
    int32_t p[40], other[64];
    fill_tokens(p, 40, 6);
    fill_tokens(other, 64, 7);
    int cached = -1;
    kv_handle a = kv_seq_open(c, p, 8, &cached, &err);
    kv_handle b = kv_seq_open(c, p, 20, &cached, &err);
    kv_seq_commit(c, a, p, 8);
    kv_seq_commit(c, b, p, 4); /* block 0 is a twin of a's */
    kv_seq_close(c, a);        /* a's blocks stay cached */
    assert_int_equal(kv_cache_free_blocks(c), 59);
    kv_handle x[4];
    for (int i = 0; i < 3; i++)
        x[i] = kv_seq_open(c, other, 64, NULL, &err);
    x[3] = kv_seq_open(c, other, 44, NULL, &err); /* the last 11 blocks: a's are evicted */
    for (int i = 0; i < 4; i++)
        assert_true(x[i] >= 0);
    assert_int_equal(kv_cache_free_blocks(c), 0);
    kv_seq_commit(c, b, p, 20);
    check(c);
    for (int i = 0; i < 4; i++)
        kv_seq_close(c, x[i]);
    kv_handle d = kv_seq_open(c, p, 40, &cached, &err);
    assert_int_equal(cached, 0);
    kv_seq_close(c, d);
    kv_seq_close(c, b);
    assert_int_equal(kv_cache_free_blocks(c), 64);
    check(c);
    kv_cache_free(c);
}

/* ---------------------------------------------------------------- 4. forward pass */

static double max_rel_err(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num) num = d;
        if (fabs(b[i]) > den) den = fabs(b[i]);
    }
    return den > 0 ? num / den : num;
}

/* Prefills tokens [from, to) of h in one batch (logits of the last into out), then decodes
 * n_dec more tokens one at a time (their logits follow in out). */
static void run_seq(weft_forward *f, kv_cache *c, kv_handle h, const int32_t *tok, int from, int to,
                    int n_dec, float *out, int V) {
    weft_err err = {{0}};
    int32_t pos[64], seq[64] = {0};
    uint8_t want[64] = {0};
    assert_int_equal(kv_seq_reserve(c, h, to), 0);
    for (int i = from; i < to; i++)
        pos[i - from] = i;
    want[to - from - 1] = 1;
    kv_seq sv = kv_seq_view(c, h);
    weft_batch b = {to - from, tok + from, pos, seq, want, 1, &sv};
    if (fwd_run(f, kv_cache_store_mut(c), &b, out, &err) != 0) fail_msg("fwd: %s", err.msg);
    kv_seq_commit(c, h, tok, to);
    for (int d = 0; d < n_dec; d++) {
        int32_t p = to + d;
        uint8_t w = 1;
        assert_int_equal(kv_seq_reserve(c, h, p + 1), 0);
        sv = kv_seq_view(c, h);
        weft_batch db = {1, tok + p, &p, seq, &w, 1, &sv};
        if (fwd_run(f, kv_cache_store_mut(c), &db, out + (size_t)(d + 1) * V, &err) != 0)
            fail_msg("fwd: %s", err.msg);
        kv_seq_commit(c, h, tok, p + 1);
    }
}

typedef struct fwd_fixture {
    weft_model *m;
    tp_pool *pool;
    weft_forward *f;
} fwd_fixture;

/* Q8_0 weights make the forward pass batch-invariant bit for bit (the quantized matmuls sum
 * in one order whatever the batch), which lets the Q8_0-cache tests below demand equality. */
static void fwd_setup_typed(fwd_fixture *fx, weft_dtype type) {
    const char *name = type == WEFT_F32 ? "kvc-gqa.gguf" : "kvc-gqa-q8.gguf";
    fx->m = tu_synth_model(name, "test-gqa", type, 5);
    if (!fx->m) fail_msg("cannot synthesize and load the test model");
    weft_err err = {{0}};
    fx->pool = tp_new(2);
    assert_non_null(fx->pool);
    fx->f = fwd_new(fx->m, fx->pool, 64, 64, &err);
    if (!fx->f) fail_msg("fwd_new: %s", err.msg);
}

static void fwd_teardown(fwd_fixture *fx) {
    fwd_free(fx->f);
    tp_free(fx->pool);
    model_free(fx->m);
}

/* tol: largest relative logit error allowed (0 = bit-identical). */
static void forward_shared_prefix(kv_dtype dt, weft_dtype wt, double tol) {
    fwd_fixture fx;
    fwd_setup_typed(&fx, wt);
    weft_model *m = fx.m;
    weft_forward *f = fx.f;
    weft_err err = {{0}};
    const int V = m->cfg.vocab_size, NDEC = 3;
    int32_t a_tok[64], b_tok[64];
    fill_tokens(a_tok, 64, 21);
    for (int i = 0; i < 64; i++)
        a_tok[i] %= V;
    memcpy(b_tok, a_tok, sizeof(int32_t) * 40);
    fill_tokens(b_tok + 40, 24, 22);
    for (int i = 40; i < 64; i++)
        b_tok[i] %= V;
    float *ref = malloc(sizeof(float) * (size_t)(NDEC + 1) * V);
    float *got = malloc(sizeof(float) * (size_t)(NDEC + 1) * V);
    assert_non_null(ref);
    assert_non_null(got);

    /* B alone in a cache without sharing */
    kv_cache_config cfg = {KV_LAYOUT_PAGED, 16 * 16, 0, 64, 16, false, dt};
    kv_cache *plain = kv_cache_new(&m->cfg, &cfg, &err);
    assert_non_null(plain);
    kv_handle hb = kv_seq_open(plain, b_tok, 48, NULL, &err);
    run_seq(f, plain, hb, b_tok, 0, 48, NDEC, ref, V);
    kv_cache_free(plain);

    /* A first, then B reusing A's first two blocks */
    cfg.prefix_sharing = true;
    kv_cache *c = kv_cache_new(&m->cfg, &cfg, &err);
    assert_non_null(c);
    int cached = -1;
    kv_handle ha = kv_seq_open(c, a_tok, 40, &cached, &err);
    assert_int_equal(cached, 0);
    run_seq(f, c, ha, a_tok, 0, 40, 0, got, V);
    hb = kv_seq_open(c, b_tok, 48, &cached, &err);
    assert_int_equal(cached, 32);
    kv_seq_close(c, ha); /* B keeps the shared blocks alive */
    run_seq(f, c, hb, b_tok, cached, 48, NDEC, got, V);
    for (int d = 0; d <= NDEC; d++) {
        double e = max_rel_err(got + (size_t)d * V, ref + (size_t)d * V, V);
        if (e > tol) fail_msg("output %d: rel err %.3g", d, e);
    }
    check(c);
    kv_seq_close(c, hb);
    kv_cache_free(c);
    free(ref);
    free(got);
    fwd_teardown(&fx);
}

static void test_forward_shared_prefix(void **state) {
    (void)state;
    forward_shared_prefix(KV_F32, WEFT_F32, 1e-5);
}

/* Q8_0 cache: B reads A's quantized rows (int8 and scales) through shared blocks; with Q8_0
 * weights those rows are bit-identical to the ones B would write, so are the logits. */
static void test_forward_shared_prefix_q8(void **state) {
    (void)state;
    forward_shared_prefix(KV_Q8_0, WEFT_Q8_0, 0);
}

/* Compaction moves a sequence mid-generation; decoding on from its new slot must give the same
 * logits as never moving (for an F32, an F16 and a Q8_0 store: the move copies elements, not
 * floats, and for Q8_0 the rows' scales too; a Q8_0 move that forgot the scales reads zeros or
 * another sequence's scales). */
static void forward_dense_compaction(kv_dtype dt, weft_dtype wt, double tol) {
    fwd_fixture fx;
    fwd_setup_typed(&fx, wt);
    const int V = fx.m->cfg.vocab_size, NDEC = 3, N = 20;
    weft_err err = {{0}};
    int32_t tok[4][64];
    for (int s = 0; s < 4; s++) {
        fill_tokens(tok[s], 64, 30 + (uint64_t)s);
        for (int i = 0; i < 64; i++)
            tok[s][i] %= V;
    }
    float *ref = malloc(sizeof(float) * (size_t)(NDEC + 1) * V);
    float *got = malloc(sizeof(float) * (size_t)(NDEC + 1) * V);
    assert_non_null(ref);
    assert_non_null(got);
    kv_cache_config cfg = {KV_LAYOUT_DENSE, 4 * 64, 0, 64, 0, false, dt};
    kv_cache *c = kv_cache_new(&fx.m->cfg, &cfg, &err);
    assert_non_null(c);
    assert_int_equal(kv_elem_bytes(kv_cache_store(c)), kv_dtype_bytes(dt));
    kv_handle h = kv_seq_open(c, tok[3], N, NULL, &err);
    run_seq(fx.f, c, h, tok[3], 0, N, NDEC, ref, V);
    kv_seq_close(c, h);

    kv_handle hs[4];
    for (int s = 0; s < 4; s++) {
        hs[s] = kv_seq_open(c, tok[s], N, NULL, &err);
        assert_true(hs[s] >= 0);
        run_seq(fx.f, c, hs[s], tok[s], 0, N, 0, got, V);
    }
    assert_int_equal(kv_seq_view(c, hs[3]).blocks[0], 3);
    kv_seq_close(c, hs[1]);
    kv_seq_close(c, hs[2]);
    size_t bytes = 0;
    assert_int_equal(kv_cache_compact(c, &bytes), 1); /* slot 3 -> slot 1 */
    assert_int_equal(kv_seq_view(c, hs[3]).blocks[0], 1);
    assert_int_equal(bytes, 2 * (size_t)fx.m->cfg.n_layers * N * fx.m->cfg.n_kv_heads *
                                kv_row_bytes(dt, fx.m->cfg.head_dim));
    for (int d = 1; d <= NDEC; d++)
        run_seq(fx.f, c, hs[3], tok[3], N + d - 1, N + d, 0, got + (size_t)d * V, V);
    for (int d = 0; d <= NDEC; d++) {
        double e = max_rel_err(got + (size_t)d * V, ref + (size_t)d * V, V);
        if (e > tol) fail_msg("output %d: rel err %.3g", d, e);
    }
    check(c);
    kv_cache_free(c);
    free(ref);
    free(got);
    fwd_teardown(&fx);
}

static void test_forward_dense_compaction(void **state) {
    (void)state;
    forward_dense_compaction(KV_F32, WEFT_F32, 1e-5);
}

static void test_forward_dense_compaction_f16(void **state) {
    (void)state;
    forward_dense_compaction(KV_F16, WEFT_F32, 1e-5);
}

static void test_forward_dense_compaction_q8(void **state) {
    (void)state;
    forward_dense_compaction(KV_Q8_0, WEFT_Q8_0, 0);
    forward_dense_compaction(KV_Q8_0, WEFT_F32, 1e-5);
}

/* ---------------------------------------------------------------- 5. random operations */

#define RND_MAX_SEQ 48
#define RND_HANDLES 64

typedef struct rnd_seq {
    bool live;
    kv_handle h;
    int prompt_len, written;
    uint64_t uid;
    int32_t tok[RND_MAX_SEQ];
    uint64_t key[RND_MAX_SEQ];
} rnd_seq;

/* Row keys: rows a full prompt block may share depend only on the tokens up to them; all
 * other rows also on the sequence, so a block wrongly in two tables shows up. */
static void rnd_keys(rnd_seq *s, int from, int to, int bt, bool sharing) {
    uint64_t h = from ? s->key[from - 1] : 1;
    int shareable = sharing ? (s->prompt_len / bt) * bt : 0;
    for (int p = from; p < to; p++) {
        h = h * 0x100000001b3ull ^ (uint64_t)(uint32_t)s->tok[p] ^ (uint64_t)p << 40;
        s->key[p] = p < shareable ? h : h ^ (s->uid * 0x9e3779b97f4a7c15ull);
    }
}

static void random_ops(kv_layout layout, bool sharing, int bt, uint64_t seed,
                       kv_block_hash_fn hash) {
    const int cap = layout == KV_LAYOUT_DENSE ? 6 * RND_MAX_SEQ + 5 : 230;
    kv_cache *c = make_cache(layout, cap, RND_MAX_SEQ, bt, sharing);
    if (hash) assert_int_equal(kv_cache_set_hash(c, hash), 0);
    rnd_seq *seqs = calloc(RND_HANDLES, sizeof *seqs);
    assert_non_null(seqs);
    int32_t bases[4][RND_MAX_SEQ];
    for (int i = 0; i < 4; i++)
        fill_tokens(bases[i], RND_MAX_SEQ, seed * 10 + (uint64_t)i);
    uint64_t rng = seed, uid = 0;
    weft_err err = {{0}};
    kv_cache_stats st;
    for (int it = 0; it < 4000; it++) {
        int op = rng_int(&rng, 10);
        int i = rng_int(&rng, RND_HANDLES);
        rnd_seq *s = &seqs[i];
        if (op < 3 && !s->live) {
            /* open: a prompt that often starts like another one */
            int n = 1 + rng_int(&rng, RND_MAX_SEQ);
            memcpy(s->tok, bases[rng_int(&rng, 4)], sizeof s->tok);
            if (rng_int(&rng, 3) == 0) s->tok[rng_int(&rng, RND_MAX_SEQ)] ^= 1;
            kv_cache_get_stats(c, &st);
            int cached = -1;
            kv_handle h = kv_seq_open(c, s->tok, n, &cached, &err);
            if (h < 0) {
                kv_cache_stats st2;
                kv_cache_get_stats(c, &st2);
                assert_int_equal(st2.free_blocks, st.free_blocks);
                assert_int_equal(st2.n_seqs, st.n_seqs);
                assert_true(strlen(err.msg) > 0);
            } else {
                assert_true(cached >= 0 && cached < n && cached % bt == 0);
                if (!sharing) assert_int_equal(cached, 0);
                s->live = true;
                s->h = h;
                s->prompt_len = n;
                s->uid = ++uid;
                rnd_keys(s, 0, n, bt, sharing);
                /* shared rows already hold the right values */
                assert_true(rows_match(c, h, cached, s->key));
                write_rows(c, h, cached, n, s->key);
                s->written = n;
                if (rng_int(&rng, 4)) kv_seq_commit(c, h, s->tok, n);
            }
        } else if (op < 6 && s->live) {
            /* grow by a few generated tokens */
            int len = s->written + 1 + rng_int(&rng, 6);
            kv_seq before = kv_seq_view(c, s->h);
            int32_t saved[RND_MAX_SEQ];
            memcpy(saved, before.blocks, sizeof(int32_t) * (size_t)before.n_blocks);
            int free_before = kv_cache_free_blocks(c);
            if (kv_seq_reserve(c, s->h, len) != 0) {
                kv_seq after = kv_seq_view(c, s->h);
                assert_int_equal(after.n_blocks, before.n_blocks);
                assert_memory_equal(after.blocks, saved, sizeof(int32_t) * (size_t)after.n_blocks);
                assert_int_equal(kv_cache_free_blocks(c), free_before);
            } else {
                for (int p = s->written; p < len; p++)
                    s->tok[p] = 3 + rng_int(&rng, 1000);
                rnd_keys(s, s->written, len, bt, sharing);
                write_rows(c, s->h, s->written, len, s->key);
                s->written = len;
                kv_seq_commit(c, s->h, s->tok, len);
            }
        } else if (op < 8 && s->live) {
            kv_seq_close(c, s->h);
            s->live = false;
        } else if (op == 8) {
            int moves = kv_cache_compact(c, NULL);
            if (layout == KV_LAYOUT_PAGED) assert_int_equal(moves, 0);
        }
        check(c);
        if (it % 25 == 0 || op == 8)
            for (int j = 0; j < RND_HANDLES; j++)
                if (seqs[j].live && !rows_match(c, seqs[j].h, seqs[j].written, seqs[j].key))
                    fail_msg("iteration %d: rows of sequence %d changed", it, j);
        kv_cache_get_stats(c, &st);
        assert_true(st.reserved_tokens <= st.capacity_tokens);
        assert_true(st.live_tokens <= st.reserved_tokens);
    }
    for (int j = 0; j < RND_HANDLES; j++)
        if (seqs[j].live) kv_seq_close(c, seqs[j].h);
    kv_cache_get_stats(c, &st);
    assert_int_equal(st.free_blocks, st.total_blocks);
    assert_int_equal(st.n_seqs, 0);
    assert_int_equal(st.reserved_tokens, 0);
    check(c);
    if (sharing) assert_true(st.prefix_hit_tokens > 0);
    free(seqs);
    kv_cache_free(c);
}

/* Four hash values whose home slots sit at the very end of the index: long probe runs that
 * wrap around, so deletion's backward shift is exercised across the wrap. */
static uint64_t crowded_hash(uint64_t prev, const int32_t *t, int n) {
    return (kv_prefix_default_hash(prev, t, n) & 3) | ~(uint64_t)3;
}

static void test_random_dense(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++)
        random_ops(KV_LAYOUT_DENSE, false, RND_MAX_SEQ, seed, NULL);
}
static void test_random_paged(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++)
        random_ops(KV_LAYOUT_PAGED, false, 8, seed, NULL);
}
static void test_random_shared(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++) {
        random_ops(KV_LAYOUT_PAGED, true, 4, seed, NULL);
        random_ops(KV_LAYOUT_PAGED, true, 16, seed, NULL);
        random_ops(KV_LAYOUT_PAGED, true, 4, seed + 10, crowded_hash);
        random_ops(KV_LAYOUT_PAGED, true, 16, seed + 10, colliding_hash);
    }
}

/* ---------------------------------------------------------------- 6. configuration */

static void expect_config_error(const weft_config *m, kv_cache_config cfg, const char *needle) {
    weft_err err = {{0}};
    kv_cache *c = kv_cache_new(m, &cfg, &err);
    if (c) fail_msg("accepted a bad configuration (want '%s')", needle);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

/* Byte capacity with a Q8_0 store: a row of head_dim elements takes head_dim + 4 bytes (int8 and
 * an F32 scale) against 2 * head_dim for F16, so at head size 64 (tiny110m: 12 layers, 12 KV
 * heads) the same bytes hold 128/68 = 1.88x the tokens; the store never exceeds the budget. */
static void test_q8_capacity(void **state) {
    (void)state;
    weft_config m;
    memset(&m, 0, sizeof m);
    m.n_layers = 12;
    m.n_kv_heads = 12;
    m.head_dim = 64;
    const int64_t budget = 64ll << 20;
    int64_t tok[3];
    const kv_dtype dts[3] = {KV_F32, KV_F16, KV_Q8_0};
    const int64_t per_token[3] = {2 * 12 * 12 * 64 * 4, 2 * 12 * 12 * 64 * 2, 2 * 12 * 12 * 68};
    for (int layout = 0; layout < 2; layout++) {
        for (int i = 0; i < 3; i++) {
            kv_cache_config cfg = {layout ? KV_LAYOUT_PAGED : KV_LAYOUT_DENSE, 0, budget, 256,
                                   16, false, dts[i]};
            weft_err err = {{0}};
            kv_cache *c = kv_cache_new(&m, &cfg, &err);
            if (!c) fail_msg("kv_cache_new: %s", err.msg);
            const int bt = layout ? 16 : 256;
            tok[i] = kv_cache_capacity_tokens(c);
            assert_int_equal(tok[i], budget / per_token[i] / bt * bt);
            assert_int_equal(kv_store_bytes(kv_cache_store(c)), (size_t)(tok[i] * per_token[i]));
            assert_true((int64_t)kv_store_bytes(kv_cache_store(c)) <= budget);
            kv_cache_free(c);
        }
        double ratio = (double)tok[2] / (double)tok[1];
        printf("layout %d: f32 %lld, f16 %lld, q8_0 %lld tokens in 64 MiB (q8_0/f16 %.3f)\n",
               layout, (long long)tok[0], (long long)tok[1], (long long)tok[2], ratio);
        assert_true(ratio > 1.8 && ratio < 1.95);
    }
    /* a head size that is not a multiple of 4 cannot hold aligned scales: refused clearly */
    m.head_dim = 6;
    kv_cache_config cfg = {KV_LAYOUT_PAGED, 1024, 0, 64, 16, false, KV_Q8_0};
    expect_config_error(&m, cfg, "q8_0 cache needs a head size that is a multiple of 4");
}

static void test_config_errors(void **state) {
    (void)state;
    weft_config m = small_model();
    const kv_cache_config ok = {KV_LAYOUT_PAGED, 1024, 0, 64, 16, true, KV_F32};
    kv_cache_config cfg = ok;
    cfg.max_seq_len = 0;
    expect_config_error(&m, cfg, "max_seq_len must be positive (got 0)");
    cfg = ok;
    cfg.capacity_tokens = 0;
    expect_config_error(&m, cfg, "set capacity_tokens or capacity_bytes");
    cfg.capacity_bytes = -5;
    expect_config_error(&m, cfg, "capacity_bytes must not be negative (got -5)");
    cfg = ok;
    cfg.max_seq_len = 1 << 30;
    expect_config_error(&m, cfg, "max_seq_len 1073741824 is too large");
    cfg = ok;
    cfg.block_tokens = 1 << 30;
    expect_config_error(&m, cfg, "block_tokens 1073741824 is too large");
    cfg = ok;
    cfg.capacity_tokens = -1;
    expect_config_error(&m, cfg, "capacity_tokens must not be negative");
    cfg = ok;
    cfg.block_tokens = -4;
    expect_config_error(&m, cfg, "block_tokens must be positive (got -4)");
    cfg = ok;
    cfg.capacity_tokens = 63;
    expect_config_error(&m, cfg,
                        "capacity of 63 tokens cannot hold one sequence of max_seq_len 64");
    cfg = ok;
    cfg.capacity_tokens = 0;
    cfg.capacity_bytes = 128 * 60; /* 128 bytes per token */
    expect_config_error(&m, cfg, "(60 tokens at 128 bytes per token) cannot hold one sequence");
    cfg = ok;
    cfg.layout = KV_LAYOUT_DENSE;
    expect_config_error(&m, cfg, "prefix sharing needs the paged layout");
    cfg = ok;
    cfg.layout = (kv_layout)7;
    expect_config_error(&m, cfg, "unknown layout 7");
    cfg = ok;
    cfg.dtype = (kv_dtype)9;
    expect_config_error(&m, cfg, "unknown element type 9");
    /* an F16 store holds twice the tokens in the same bytes: 64 bytes per token here */
    cfg = ok;
    cfg.capacity_tokens = 0;
    cfg.capacity_bytes = 128 * 60;
    cfg.dtype = KV_F16;
    {
        weft_err e16 = {{0}};
        kv_cache *c16 = kv_cache_new(&m, &cfg, &e16);
        assert_non_null(c16);
        assert_int_equal(kv_cache_capacity_tokens(c16), 112); /* 120 tokens: 7 blocks of 16 */
        assert_int_equal(kv_store_bytes(kv_cache_store(c16)), 112 * 64);
        kv_cache_free(c16);
    }
    cfg = ok;
    weft_config bad = m;
    bad.n_kv_heads = 0;
    expect_config_error(&bad, cfg, "model shape must be positive");
    expect_config_error(NULL, cfg, "model and configuration are required");

    /* capacity in bytes, default block size */
    cfg = ok;
    cfg.capacity_tokens = 0;
    cfg.capacity_bytes = 128 * 100;
    cfg.block_tokens = 0;
    weft_err err = {{0}};
    kv_cache *c = kv_cache_new(&m, &cfg, &err);
    assert_non_null(c);
    assert_int_equal(kv_cache_capacity_tokens(c), 96); /* 100 tokens: 6 whole blocks of 16 */
    assert_int_equal(kv_cache_store(c)->block_tokens, 16);
    assert_int_equal(kv_cache_layout(c), KV_LAYOUT_PAGED);
    /* a bad prompt is refused with a reason */
    int32_t t[65] = {0};
    assert_int_equal(kv_seq_open(c, t, 0, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "at least one token"));
    assert_int_equal(kv_seq_open(c, t, 65, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "exceeds max_seq_len 64"));
    assert_int_equal(kv_seq_open(c, NULL, 3, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "needs the prompt"));
    check(c);
    kv_cache_free(c);

    cfg = ok;
    cfg.layout = KV_LAYOUT_DENSE;
    cfg.prefix_sharing = false;
    cfg.capacity_tokens = 200;
    c = kv_cache_new(&m, &cfg, &err);
    assert_non_null(c);
    assert_int_equal(kv_cache_capacity_tokens(c), 192); /* three slots of 64 */
    assert_int_equal(kv_cache_free_blocks(c), 3);
    assert_int_equal(kv_cache_blocks_for(c, 64), 1);
    kv_cache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_compaction),
        cmocka_unit_test(test_dense_window_not_at_zero),
        cmocka_unit_test(test_paged_reserve_close),
        cmocka_unit_test(test_prefix_sharing),
        cmocka_unit_test(test_prefix_collisions),
        cmocka_unit_test(test_prefix_twins),
        cmocka_unit_test(test_prefix_evicted_parent),
        cmocka_unit_test(test_forward_shared_prefix),
        cmocka_unit_test(test_forward_dense_compaction),
        cmocka_unit_test(test_forward_dense_compaction_f16),
        cmocka_unit_test(test_forward_dense_compaction_q8),
        cmocka_unit_test(test_forward_shared_prefix_q8),
        cmocka_unit_test(test_q8_capacity),
        cmocka_unit_test(test_random_dense),
        cmocka_unit_test(test_random_paged),
        cmocka_unit_test(test_random_shared),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
