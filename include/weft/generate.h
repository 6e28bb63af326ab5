/* generate.h — single-sequence text generation on top of the batched forward pass: tokenize,
 * prefill in chunks, sample token by token, stream text (UTF-8-safe, stop strings held back)
 * and stop on end tokens, stop strings or the length limit. `weft run` is a thin CLI over
 * this; the serving engine batches many sequences instead. */
#ifndef WEFT_GENERATE_H
#define WEFT_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include "weft/error.h"
#include "weft/kernels.h"
#include "weft/kv.h"
#include "weft/model.h"
#include "weft/sampler.h"

typedef struct gen_params {
    const char *prompt;          /* may be empty: generation starts from BOS alone */
    int n_predict;               /* tokens to generate (upper bound) */
    int ctx_len;                 /* 0: the model's trained context */
    int prefill_chunk;           /* prompt tokens per forward call (0: 256) */
    weft_sampling sampling;
    const char *const *stop_strs;
    int n_stop_strs;
    bool ignore_eos;             /* keep going through end tokens (benchmarks) */
    kv_dtype kv_type;            /* KV cache element type (zero value: KV_F32) */
} gen_params;

typedef enum gen_stop { GEN_STOP_LENGTH, GEN_STOP_EOS, GEN_STOP_STRING, GEN_STOP_CONTEXT } gen_stop;

typedef struct gen_stats {
    int n_prompt;                /* prompt tokens, BOS included */
    int n_generated;
    double prefill_s, decode_s;  /* wall time of the two phases */
    gen_stop reason;
} gen_stats;

/* Called with each piece of text as soon as it is safe to print. */
typedef void (*gen_emit_fn)(void *ctx, const char *text, size_t len);

/* Generated token ids are written to out_ids (if non-NULL, up to max_ids). */
int generate(const weft_model *m, tp_pool *pool, const gen_params *p, gen_emit_fn emit,
             void *emit_ctx, int *out_ids, int max_ids, gen_stats *stats, weft_err *err);

const char *gen_stop_name(gen_stop r);

#endif
