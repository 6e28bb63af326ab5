/* ref_logits.c — test tool: runs weft's forward pass the way serving does (one prefill chunk,
 * then one decode token per call against the KV cache) over a fixed token list and writes every
 * position's logits as raw float32, for comparison with the independent numpy reference.
 * usage: ref_logits MODEL N_PREFILL OUT.f32 TOKEN...   (MODEL: GGUF) */
#include <stdio.h>
#include <stdlib.h>

#include "weft/forward.h"
#include "weft/model.h"

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: ref_logits MODEL N_PREFILL OUT.f32 TOKEN...\n");
        return 2;
    }
    weft_err err = {{0}};
    weft_model *m = model_load(argv[1], NULL, &err);
    if (!m) {
        fprintf(stderr, "ref_logits: %s\n", err.msg);
        return 1;
    }
    int n_prefill = atoi(argv[2]);
    int n = argc - 4;
    if (n_prefill < 1 || n_prefill > n) {
        fprintf(stderr, "ref_logits: bad N_PREFILL\n");
        return 2;
    }
    int32_t *tok = malloc(sizeof *tok * (size_t)n), *pos = malloc(sizeof *pos * (size_t)n);
    int32_t *seq = calloc((size_t)n, sizeof *seq);
    uint8_t *want = malloc((size_t)n);
    int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V * (size_t)n);
    tp_pool *pool = tp_new(0);
    kv_store *kv = kv_store_new(m->cfg.n_layers, m->cfg.n_kv_heads * m->cfg.head_dim, 16,
                                (n + 15) / 16, &err);
    weft_forward *f = fwd_new(m, pool, n_prefill, n, &err);
    if (!tok || !pos || !seq || !want || !logits || !pool || !kv || !f) {
        fprintf(stderr, "ref_logits: setup failed: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        tok[i] = atoi(argv[4 + i]);
        pos[i] = i;
        want[i] = 1;
    }
    /* paged block table with 16-token blocks, deliberately not in order */
    int nb = (n + 15) / 16;
    int32_t *blocks = malloc(sizeof *blocks * (size_t)nb);
    if (!blocks) return 1;
    for (int i = 0; i < nb; i++) blocks[i] = nb - 1 - i;
    kv_seq sv = {.blocks = blocks, .n_blocks = nb};
    weft_batch b = {.n_tokens = n_prefill, .token = tok, .pos = pos, .seq = seq,
                    .want_logits = want, .n_seqs = 1, .seqs = &sv};
    if (fwd_run(f, kv, &b, logits, &err) != 0) {
        fprintf(stderr, "ref_logits: %s\n", err.msg);
        return 1;
    }
    for (int i = n_prefill; i < n; i++) {
        weft_batch d = {.n_tokens = 1, .token = tok + i, .pos = pos + i, .seq = seq,
                        .want_logits = want, .n_seqs = 1, .seqs = &sv};
        if (fwd_run(f, kv, &d, logits + (size_t)i * V, &err) != 0) {
            fprintf(stderr, "ref_logits: %s\n", err.msg);
            return 1;
        }
    }
    FILE *fp = fopen(argv[3], "wb");
    if (!fp || fwrite(logits, sizeof(float), (size_t)V * n, fp) != (size_t)V * n || fclose(fp)) {
        fprintf(stderr, "ref_logits: cannot write %s\n", argv[3]);
        return 1;
    }
    fwd_free(f);
    kv_store_free(kv);
    tp_free(pool);
    model_free(m);
    free(tok); free(pos); free(seq); free(want); free(logits); free(blocks);
    return 0;
}
