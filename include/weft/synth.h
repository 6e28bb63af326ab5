/* synth.h — synthetic LLaMA models: deterministic random weights at realistic shapes, written
 * as a valid llama GGUF (same tensor names and metadata keys as llama.cpp's converters), so the
 * loader, kernels and benchmarks can run at 7B shapes without downloading a 7B model.
 * The weights are a pure function of (preset, options, seed, tensor name): tensor order and
 * thread count never change the bytes. */
#ifndef WEFT_SYNTH_H
#define WEFT_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/dtype.h"
#include "weft/error.h"

typedef struct synth_preset {
    const char *name;
    uint32_t dim; /* embedding length */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t hidden_dim; /* feed-forward length */
    uint32_t ctx_len;
    uint32_t vocab_size; /* used when no tokenizer is given */
} synth_preset;

/* The built-in presets: tiny15m, tiny110m, llama7b, test-gqa. */
const synth_preset *synth_find_preset(const char *name);
/* i-th preset, or NULL past the end (for listing them in usage text). */
const synth_preset *synth_preset_at(size_t i);

typedef struct synth_options {
    const char *preset;     /* required */
    weft_dtype type;        /* type of every 2-D weight; norms are always F32 (default F32) */
    uint32_t n_layers;      /* 0: the preset's */
    uint32_t ctx_len;       /* 0: the preset's */
    uint64_t seed;          /* default 1 */
    float rope_theta;       /* default 10000 */
    float norm_eps;         /* default 1e-5 */
    bool untied;            /* write a separate output.weight (else the embedding is shared) */
    const char *vocab_from; /* NULL, a GGUF (its tokenizer.ggml.* keys are copied) or a
                             * llama2.c tokenizer.bin; the vocabulary size then follows it */
} synth_options;

void synth_options_init(synth_options *o);

typedef struct synth_result {
    uint64_t n_params;   /* elements over all tensors */
    uint64_t file_bytes; /* size of the written file */
    uint32_t vocab_size;
    uint32_t n_tensors;
} synth_result;

/* Writes the model to path. res may be NULL. Returns 0 or -1 with err filled. */
int synth_write(const synth_options *o, const char *path, synth_result *res, weft_err *err);

#endif
