/* bench_attn.c — microbenchmark of decode attention alone, per KV cache element type: one
 * batch of B decode tokens (one per sequence) at context length L each, through attn_run (the
 * engine's attention: all pool threads, (token, KV head) items) for every layer of a
 * tiny110m-shaped model (12 layers, 12 heads of 64), the caches paged in 16-token blocks
 * handed out interleaved across sequences, as a fused batch's are. Prints milliseconds per
 * step (all layers), the K/V bytes one step streams and the rate that makes. The whole cache is
 * larger than the L3 cache at the default sizes, so the rows come from DRAM as in a real step.
 * Q8_0 runs three times: with F32 queries against widened keys and values
 * (WEFT_ATTN_Q8_QK=f32), with int8 queries and integer Q·K (WEFT_ATTN_Q8_QK=int), and with the
 * default 16-bit query magnitudes and value weights (integer Q·K and P·V).
 * Usage: bench_attn [B [L [threads [reps]]]] (default 32 sequences, context 160, all cores, 20). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "forward/attention.h"
#include "weft/kv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const int B = argc > 1 ? atoi(argv[1]) : 32, L = argc > 2 ? atoi(argv[2]) : 160;
    const int threads = argc > 3 ? atoi(argv[3]) : 0, reps = argc > 4 ? atoi(argv[4]) : 20;
    if (B <= 0 || L <= 0 || reps <= 0 || B > 4096 || L > 1 << 16) {
        fprintf(stderr, "usage: bench_attn [B [L [threads [reps]]]]\n");
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
    const int bt = 16, bps = (L + bt - 1) / bt, QD = c.n_heads * c.head_dim;
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
           "%d, %d threads, 16-token blocks\n",
           B, L, tp_size(pool));
    printf("| KV type | ms per step (12 layers) | K/V MB per step | GB/s |\n|---|---|---|---|\n");
    /* Q8_0 rows: F32 queries and widened keys/values (WEFT_ATTN_Q8_QK=f32), int8 queries and
     * integer Q·K (WEFT_ATTN_Q8_QK=int), and the default: 16-bit query magnitudes and value
     * weights, integer Q·K and P·V */
    const kv_dtype types[5] = {KV_F32, KV_F16, KV_Q8_0, KV_Q8_0, KV_Q8_0};
    for (int ti = 0; ti < 5; ti++) {
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
        double best = 1e30;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = now_s();
            for (int l = 0; l < c.n_layers; l++) attn_run(&ws, pool, kv, l, &b, q, out);
            double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        const double bytes =
            2.0 * c.n_layers * c.n_kv_heads * (double)B * L * kv_row_bytes(types[ti], c.head_dim);
        printf("| %s%s | %.3f | %.1f | %.1f |\n", kv_dtype_name(types[ti]),
               ti == 2   ? " (F32 q, widened k/v; default)"
               : ti == 3 ? " (int8 q, integer q·k; =int)"
               : ti == 4 ? " (16-bit q and p, integer q·k and p·v; =int16)"
                         : "", best * 1e3,
               bytes / 1e6,
               bytes / best / 1e9);
        kv_store_free(kv);
    }
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
