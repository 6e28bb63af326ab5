/* bench_attn.c — microbenchmark of decode attention alone, per KV cache element type: one
 * batch of B decode tokens (one per sequence) at context length L each, through attn_run (the
 * engine's attention: all pool threads, the items of src/forward/attention.c) for every layer
 * of a tiny110m-shaped model (12 layers, 12 heads of 64), the caches paged in 16-token blocks
 * (or block_tokens) handed out interleaved across sequences, as a fused batch's are. The work
 * split and prefetch distance follow WEFT_ATTN_ITEMS / WEFT_ATTN_PF (src/forward/attention.h).
 * Prints milliseconds per step (all layers), the K/V bytes one step streams and the rate that
 * makes. The whole cache is larger than the L3 cache at the default sizes, so the rows come from
 * DRAM as in a real step.
 * Q8_0 runs three times: with the default F32 queries against widened keys and values
 * (WEFT_ATTN_Q8_QK=f32), with int8 queries and integer Q·K (WEFT_ATTN_Q8_QK=int), and with
 * 16-bit query magnitudes and value weights (integer Q·K and P·V; =int16).
 * WEFT_BENCH_ATTN_TYPES=f32,f16,q8,q8int,q8int16 picks rows; WEFT_BENCH_ATTN_VARIANTS (below)
 * times several work splits / prefetch distances in turn. Each row: best (median) of reps.
 * Usage: bench_attn [B [L [threads [reps [block_tokens]]]]] (default 32 sequences, context 160,
 * all cores, 20 repetitions, 16-token blocks). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward/attention.h"
#include "weft/kv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Whether key is one of the comma-separated names in list. */
static bool type_listed(const char *list, const char *key) {
    const size_t n = strlen(key);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const size_t m = e ? (size_t)(e - p) : strlen(p);
        if (m == n && strncmp(p, key, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

int main(int argc, char **argv) {
    const int B = argc > 1 ? atoi(argv[1]) : 32, L = argc > 2 ? atoi(argv[2]) : 160;
    const int threads = argc > 3 ? atoi(argv[3]) : 0, reps = argc > 4 ? atoi(argv[4]) : 20;
    const int bt = argc > 5 ? atoi(argv[5]) : 16;
    if (B <= 0 || L <= 0 || reps <= 0 || B > 4096 || L > 1 << 16 || bt <= 0 || bt > 4096) {
        fprintf(stderr, "usage: bench_attn [B [L [threads [reps [block_tokens]]]]]\n");
        return 2;
    }
    weft_config c = {0};
    c.dim = 768;
    c.n_layers = 12;
    c.n_heads = 12;
    c.n_kv_heads = 12;
    c.head_dim = 64;
    c.rope_dim = 64;
    c.rope_theta = 10000.0f;
    c.rope_freq_scale = 1.0f;
    const int bps = (L + bt - 1) / bt, QD = c.n_heads * c.head_dim;
    tp_pool *pool = tp_new(threads);
    int32_t *tok = calloc((size_t)B, sizeof *tok), *pos = calloc((size_t)B, sizeof *pos);
    int32_t *seq = calloc((size_t)B, sizeof *seq), *blocks = calloc((size_t)B * bps, sizeof *blocks);
    kv_seq *seqs = calloc((size_t)B, sizeof *seqs);
    float *q = malloc(sizeof(float) * (size_t)B * QD), *out = malloc(sizeof(float) * (size_t)B * QD);
    float *row = malloc(sizeof(float) * (size_t)c.head_dim);
    attn_ws ws;
    if (!pool || !tok || !pos || !seq || !blocks || !seqs || !q || !out || !row ||
        attn_ws_init(&ws, &c, tp_size(pool), L) != 0) {
        fprintf(stderr, "bench_attn: out of memory\n");
        return 1;
    }
    unsigned r = 1;
    for (size_t i = 0; i < (size_t)B * QD; i++) {
        r = r * 1664525u + 1013904223u;
        q[i] = (float)((r >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    for (int s = 0; s < B; s++) {
        for (int i = 0; i < bps; i++) blocks[(size_t)s * bps + i] = i * B + s;
        seqs[s].blocks = blocks + (size_t)s * bps;
        seqs[s].n_blocks = bps;
        seq[s] = s;
        pos[s] = L - 1;
    }
    weft_batch b = {B, tok, pos, seq, NULL, B, seqs};
    printf("decode attention, tiny110m shape (12 layers, 12 heads x 64), %d sequences x context "
           "%d, %d threads, %d-token blocks, items: %s, prefetch %d runs ahead\n",
           B, L, tp_size(pool), bt, ws.heads_per_item == 1 ? "(token, head)" : "(token, all heads)",
           ws.prefetch_runs);
    printf("| KV type | ms per step (12 layers) | K/V MB per step | GB/s |\n|---|---|---|---|\n");
    /* Q8_0 rows: F32 queries and widened keys/values (WEFT_ATTN_Q8_QK=f32), int8 queries and
     * integer Q·K (WEFT_ATTN_Q8_QK=int), and the default: 16-bit query magnitudes and value
     * weights, integer Q·K and P·V */
    const kv_dtype types[5] = {KV_F32, KV_F16, KV_Q8_0, KV_Q8_0, KV_Q8_0};
    static const char *const type_key[5] = {"f32", "f16", "q8", "q8int", "q8int16"};
    const char *type_env = getenv("WEFT_BENCH_ATTN_TYPES");
    /* WEFT_BENCH_ATTN_VARIANTS="hpi:pf,..." (heads per item, 0 = the default split, 1 = one
     * head; prefetch runs ahead, -1 = the default; optional ":0" = not the next item's first
     * runs): variants timed in turn within one run, for A/B comparisons */
    const char *var_env = getenv("WEFT_BENCH_ATTN_VARIANTS");
    enum { MAX_VAR = 8 };
    int var_hpi[MAX_VAR], var_pf[MAX_VAR], var_nx[MAX_VAR], n_var = 0;
    if (var_env) {
        const char *p = var_env;
        while (*p && n_var < MAX_VAR) {
            int h, f, used;
            if (sscanf(p, "%d:%d%n", &h, &f, &used) != 2 || h < 0 || f < -1) {
                fprintf(stderr, "bench_attn: WEFT_BENCH_ATTN_VARIANTS wants hpi:pf[,hpi:pf...]\n");
                return 2;
            }
            var_hpi[n_var] = h;
            var_pf[n_var] = f;
            p += used;
            var_nx[n_var] = 1;
            if (*p == ':') { /* optional third field: prefetch the next item (1) or not (0) */
                var_nx[n_var] = p[1] != '0';
                p += 2;
            }
            n_var++;
            if (*p == ',') p++;
        }
    } else {
        var_hpi[0] = ws.heads_per_item;
        var_pf[0] = ws.prefetch_runs;
        var_nx[0] = ws.prefetch_next;
        n_var = 1;
    }
    double *times = malloc(sizeof(double) * (size_t)n_var * (size_t)reps);
    if (!times) {
        fprintf(stderr, "bench_attn: out of memory\n");
        return 1;
    }
    for (int ti = 0; ti < 5; ti++) {
        if (type_env && !type_listed(type_env, type_key[ti])) continue;
        ws.q8_f32 = ti != 4;
        ws.q8_int_qk = ti == 3;
        weft_err err = {{0}};
        kv_store *kv = kv_store_new_typed(c.n_layers, c.n_kv_heads, c.head_dim, bt, B * bps,
                                          types[ti], &err);
        if (!kv) {
            fprintf(stderr, "bench_attn: %s\n", err.msg);
            return 1;
        }
        /* fill every row with values of a realistic spread (the quantizer sees real rows) */
        char *k = kv->k, *v = kv->v;
        for (size_t i = 0; i < kv_store_bytes(kv) / 2; i++) {
            r = r * 1664525u + 1013904223u;
            k[i] = (char)(r >> 24);
            v[i] = (char)(r >> 16);
        }
        if (types[ti] != KV_Q8_0) { /* random bytes are NaN-free only as int8; rewrite floats */
            for (int blk = 0; blk < B * bps; blk++)
                for (int l = 0; l < c.n_layers; l++)
                    for (int t = 0; t < bt; t++)
                        for (int h = 0; h < c.n_kv_heads; h++) {
                            for (int d = 0; d < c.head_dim; d++) {
                                r = r * 1664525u + 1013904223u;
                                row[d] = (float)((r >> 8) & 0xffff) / 32768.0f - 1.0f;
                            }
                            size_t off = kv_byte_off(kv, t, h * c.head_dim);
                            char *kb = (char *)kv_k_ptr(kv, blk, l) + off;
                            char *vb = (char *)kv_v_ptr(kv, blk, l) + off;
                            if (types[ti] == KV_F16) {
                                kn_f32_to_f16_row((uint16_t *)kb, row, c.head_dim);
                                kn_f32_to_f16_row((uint16_t *)vb, row, c.head_dim);
                            } else
                                for (int d = 0; d < c.head_dim; d++)
                                    ((float *)kb)[d] = ((float *)vb)[d] = row[d];
                        }
        } else { /* sane scales */
            for (int blk = 0; blk < B * bps; blk++)
                for (int l = 0; l < c.n_layers; l++)
                    for (int h = 0; h < c.n_kv_heads; h++) {
                        float *ks = (float *)((char *)kv_k_ptr(kv, blk, l) +
                                              kv_scale_off(kv, h * c.head_dim));
                        float *vs = (float *)((char *)kv_v_ptr(kv, blk, l) +
                                              kv_scale_off(kv, h * c.head_dim));
                        for (int t = 0; t < bt; t++) ks[t] = vs[t] = 1.0f / 127.0f;
                    }
        }
        /* the variants take turns, one step each, so they see the same machine */
        for (int rep = 0; rep < reps; rep++)
            for (int vi = 0; vi < n_var; vi++) {
                ws.heads_per_item = var_hpi[vi];
                ws.prefetch_runs = var_pf[vi];
                ws.prefetch_next = var_nx[vi];
                double t0 = now_s();
                for (int l = 0; l < c.n_layers; l++) attn_run(&ws, pool, kv, l, &b, q, out);
                times[(size_t)vi * reps + rep] = now_s() - t0;
            }
        const double bytes =
            2.0 * c.n_layers * c.n_kv_heads * (double)B * L * kv_row_bytes(types[ti], c.head_dim);
        for (int vi = 0; vi < n_var; vi++) {
            double *tv = times + (size_t)vi * reps;
            qsort(tv, (size_t)reps, sizeof *tv, cmp_double);
            const double best = tv[0], med = tv[reps / 2];
            char var[64] = "";
            if (n_var > 1 || var_env)
                snprintf(var, sizeof var, " [items %s, prefetch %d%s]",
                         var_hpi[vi] == 1 ? "head" : "token", var_pf[vi],
                         var_nx[vi] ? "" : ", not the next item");
            printf("| %s%s%s | %.3f (median %.3f) | %.1f | %.1f |\n", kv_dtype_name(types[ti]),
                   ti == 2   ? " (F32 q, widened k/v; default)"
                   : ti == 3 ? " (int8 q, integer q·k; =int)"
                   : ti == 4 ? " (16-bit q and p, integer q·k and p·v; =int16)"
                             : "",
                   var, best * 1e3, med * 1e3, bytes / 1e6, bytes / best / 1e9);
        }
        fflush(stdout);
        kv_store_free(kv);
    }
    free(times);
    attn_ws_free(&ws);
    tp_free(pool);
    free(tok);
    free(pos);
    free(seq);
    free(blocks);
    free(seqs);
    free(q);
    free(out);
    free(row);
    return 0;
}
