/* model.h — an immutable LLaMA-family model: hyper-parameters, weights (mmap'd where the file
 * layout allows) and its tokenizer. Loaded from GGUF (v2/v3) or from a llama2.c checkpoint
 * (.bin, legacy header, shared or separate classifier) plus its tokenizer.bin. */
#ifndef WEFT_MODEL_H
#define WEFT_MODEL_H

#include <stdint.h>
#include "weft/error.h"
#include "weft/kernels.h"
#include "weft/tokenizer.h"

#define WEFT_MAX_STOP_IDS 8

typedef struct weft_config {
    int dim;         /* embedding width */
    int hidden_dim;  /* SwiGLU inner width */
    int n_layers;
    int n_heads;
    int n_kv_heads;  /* grouped-query attention: n_heads % n_kv_heads == 0 */
    int head_dim;    /* dim / n_heads */
    int vocab_size;
    int ctx_len;     /* trained context length */
    float norm_eps;
    float rope_theta;
    float rope_freq_scale; /* 1 / linear scaling factor; 1 = none */
    int rope_dim;          /* rotated dimensions per head (= head_dim for LLaMA) */
    int bos_id, eos_id;
    int n_stop_ids;        /* EOS plus extra end tokens (EOT, EOM) from metadata */
    int stop_ids[WEFT_MAX_STOP_IDS];
} weft_config;

typedef struct weft_layer {
    const float *attn_norm; /* [dim] */
    const float *ffn_norm;  /* [dim] */
    kn_matrix wq, wk, wv, wo;          /* wq: [n_heads*hd, dim], wk/wv: [n_kv*hd, dim], wo: [dim, dim] */
    kn_matrix w_gate, w_up, w_down;    /* gate/up: [hidden, dim], down: [dim, hidden] */
} weft_layer;

typedef struct weft_model {
    weft_config cfg;
    char arch[32];          /* "llama" */
    char source[16];        /* "gguf" or "llama2c" */
    kn_matrix tok_embd;     /* [vocab, dim] */
    const float *out_norm;  /* [dim] */
    kn_matrix output;       /* [vocab, dim]; shares tok_embd's data when tied */
    int tied_output;
    weft_layer *layers;
    weft_tokenizer *tok;
    /* ownership (private) */
    struct gguf_file *gguf;
    void *map;
    size_t map_size;
    float *owned_f32;       /* norms converted to F32 when stored otherwise */
    /* tensor parallelism (src/tp/): this rank's copied column slices, and the communicator
     * forward passes use; both NULL for a whole model */
    void *owned_shard;
    const struct fwd_comm *comm;
    /* Q8_0 matmul weights packed once at load for the AVX-512 VNNI kernel (model_pack.c);
     * each packed matrix's kn_matrix.packed points into these */
    kn_packed **packs;
    int n_packs;
} weft_model;

/* Loads path (GGUF by magic, otherwise llama2.c). tokenizer_path is required for llama2.c
 * checkpoints and ignored for GGUF (may be NULL). */
weft_model *model_load(const char *path, const char *tokenizer_path, weft_err *err);
void model_free(weft_model *m);
/* Total parameter count and weight bytes (for benchmarks and inspect). */
uint64_t model_param_count(const weft_model *m);
uint64_t model_weight_bytes(const weft_model *m);

#endif
