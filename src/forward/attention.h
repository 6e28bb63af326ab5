/* attention.h — causal grouped-query attention of a ragged batch against the block-structured
 * KV cache, and the RoPE tables it shares with the forward pass. Private to src/forward/. */
#ifndef WEFT_FORWARD_ATTENTION_H
#define WEFT_FORWARD_ATTENTION_H

#include <stdbool.h>

#include "weft/forward.h"

typedef struct attn_ws {
    int n_threads, max_ctx, group; /* group = query heads per KV head */
    float *rope_cos, *rope_sin;    /* [max_ctx][rope_dim/2] */
    float *scores;                 /* [n_threads][n_heads][max_ctx] */
    /* Q8_0 cache: by default F32 queries against int8 keys and values widened in registers
     * (kn_attn_scores_q8 / kn_attn_values_q8). q8_int_qk (WEFT_ATTN_Q8_QK=int) quantizes each
     * query head like a cache row instead (int8, exact int32 dots); !q8_f32
     * (WEFT_ATTN_Q8_QK=int16) runs Q·K and P·V in integer arithmetic with 16-bit query
     * magnitudes and value weights (kn_attn_scores_q8q16 / kn_attn_values_q8w16; error ~1/65535
     * of the largest operand, docs/kernels.md). The quantized query lives in a thread's qi
     * ([n_threads][n_heads][3*head_dim]) and qscale ([n_threads][n_heads]). */
    int8_t *qi;
    float *qscale;
    bool q8_int_qk, q8_f32;
    /* Work items are (token, KV heads): heads_per_item 0 = all of a token's heads when the batch
     * has enough tokens for every thread, fewer when not; 1 = one head per item (the earlier
     * split; WEFT_ATTN_ITEMS=head). prefetch_runs: an item asks for the head run that many runs
     * ahead of the one it starts (WEFT_ATTN_PF; 0 = none, -1 = the default, ~8 KB ahead), and
     * near its end the first runs of the next item (prefetch_next; WEFT_ATTN_PF_NEXT=0: not). */
    int heads_per_item, prefetch_runs;
    bool prefetch_next;
    const weft_config *cfg;
} attn_ws;

int attn_ws_init(attn_ws *w, const weft_config *c, int n_threads, int max_ctx);
void attn_ws_free(attn_ws *w);

/* out[t][h*hd..] = softmax(q_t,h · K[0..pos_t] / sqrt(hd)) · V[0..pos_t] for every token t and
 * query head h, reading K/V of layer `layer` through each token's sequence block table. */
void attn_run(attn_ws *w, tp_pool *pool, const kv_store *kv, int layer, const weft_batch *b,
              const float *q, float *out);

#endif
