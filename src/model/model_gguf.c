/* model_gguf.c — binds a validated GGUF file (see gguf_read.c) to a weft_model: reads the
 * LLaMA hyper-parameters from `<arch>.*` metadata, checks every tensor's shape and type
 * against them, and points the weight matrices into the mapping. */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "weft/gguf.h"

static int meta_u32(const gguf_file *f, const char *arch, const char *name, int required,
                    int fallback, int *out, weft_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) {
        if (gguf_find_key(f, key) >= 0)
            return weft_errf(err, "gguf model: key '%s' is not an unsigned integer", key);
        if (required) return weft_errf(err, "gguf model: required key '%s' is missing", key);
        *out = fallback;
        return 0;
    }
    if (v > (1u << 30)) return weft_errf(err, "gguf model: key '%s' = %u is implausible", key, v);
    *out = (int)v;
    return 0;
}

static float meta_f32(const gguf_file *f, const char *arch, const char *name, float fallback) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, name);
    float v;
    return gguf_get_f32(f, key, &v) ? v : fallback;
}

/* A 2-D weight [rows, cols] (GGUF ne0 = cols). */
static int bind_matrix(const gguf_file *f, const char *name, int rows, int cols, kn_matrix *out,
                       weft_err *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return weft_errf(err, "gguf model: tensor '%s' is missing", name);
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows)
        return weft_errf(err, "gguf model: tensor '%s' has shape [%llu, %llu] (n_dims %u), "
                              "expected [%d, %d]",
                         name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                         t->n_dims, cols, rows);
    size_t rb = dtype_row_bytes((weft_dtype)t->type, (size_t)cols);
    if (rb == 0)
        return weft_errf(err, "gguf model: tensor '%s' type %s cannot hold rows of %d elements", name,
                         dtype_name(t->type), cols);
    out->type = (weft_dtype)t->type;
    out->rows = rows;
    out->cols = cols;
    out->data = t->data;
    out->row_bytes = rb;
    return 0;
}

/* A norm vector [n], converted to F32 into *arena when stored in another type. */
static int bind_vector(const gguf_file *f, const char *name, int n, float **arena,
                       const float **out, weft_err *err) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return weft_errf(err, "gguf model: tensor '%s' is missing", name);
    if (t->n_dims != 1 || t->ne[0] != (uint64_t)n)
        return weft_errf(err, "gguf model: tensor '%s' should be a vector of %d elements", name, n);
    if (t->type == WEFT_F32) {
        *out = t->data;
        return 0;
    }
    if (dtype_row_bytes((weft_dtype)t->type, (size_t)n) == 0)
        return weft_errf(err, "gguf model: tensor '%s' type %s cannot hold %d elements", name,
                         dtype_name(t->type), n);
    dtype_dequantize_row((weft_dtype)t->type, t->data, *arena, (size_t)n);
    *out = *arena;
    *arena += n;
    return 0;
}

static void add_stop(weft_config *c, int id) {
    if (id < 0 || id >= c->vocab_size) return;
    for (int i = 0; i < c->n_stop_ids; i++)
        if (c->stop_ids[i] == id) return;
    if (c->n_stop_ids < WEFT_MAX_STOP_IDS) c->stop_ids[c->n_stop_ids++] = id;
}

int model_load_gguf(weft_model *m, const char *path, weft_err *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return -1;
    m->gguf = f;
    snprintf(m->source, sizeof m->source, "gguf");

    const char *arch = gguf_get_str(f, "general.architecture");
    if (!arch) return weft_errf(err, "gguf model: general.architecture is missing");
    if (strcmp(arch, "llama") != 0)
        return weft_errf(err, "gguf model: architecture '%s' is not supported (only llama)", arch);
    snprintf(m->arch, sizeof m->arch, "%s", arch);

    weft_config *c = &m->cfg;
    if (meta_u32(f, arch, "embedding_length", 1, 0, &c->dim, err) ||
        meta_u32(f, arch, "feed_forward_length", 1, 0, &c->hidden_dim, err) ||
        meta_u32(f, arch, "block_count", 1, 0, &c->n_layers, err) ||
        meta_u32(f, arch, "attention.head_count", 1, 0, &c->n_heads, err) ||
        meta_u32(f, arch, "context_length", 0, 2048, &c->ctx_len, err))
        return -1;
    if (meta_u32(f, arch, "attention.head_count_kv", 0, c->n_heads, &c->n_kv_heads, err)) return -1;
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->ctx_len <= 0)
        return weft_errf(err, "gguf model: a hyper-parameter is zero");
    if (c->dim % c->n_heads != 0 || c->n_heads % c->n_kv_heads != 0)
        return weft_errf(err, "gguf model: dim %d, heads %d and kv heads %d do not divide evenly",
                         c->dim, c->n_heads, c->n_kv_heads);
    if (meta_u32(f, arch, "attention.key_length", 0, c->dim / c->n_heads, &c->head_dim, err))
        return -1;
    if (c->head_dim != c->dim / c->n_heads) /* dim % n_heads == 0; no int product to overflow */
        return weft_errf(err, "gguf model: head size %d x %d heads != embedding %d (unsupported)",
                         c->head_dim, c->n_heads, c->dim);
    if (meta_u32(f, arch, "rope.dimension_count", 0, c->head_dim, &c->rope_dim, err)) return -1;
    if (c->rope_dim > c->head_dim || c->rope_dim % 2 != 0)
        return weft_errf(err, "gguf model: rope dimension %d invalid for head size %d", c->rope_dim,
                         c->head_dim);
    c->norm_eps = meta_f32(f, arch, "attention.layer_norm_rms_epsilon", 1e-5f);
    c->rope_theta = meta_f32(f, arch, "rope.freq_base", 10000.0f);
    c->rope_freq_scale = 1.0f;
    {
        char key[128];
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        const char *stype = gguf_get_str(f, key);
        float factor = meta_f32(f, arch, "rope.scaling.factor", 0.0f);
        float legacy = meta_f32(f, arch, "rope.scale_linear", 0.0f);
        if (stype && strcmp(stype, "none") != 0 && strcmp(stype, "linear") != 0)
            return weft_errf(err, "gguf model: rope scaling '%s' is not supported (none, linear)",
                             stype);
        if ((!stype || strcmp(stype, "linear") == 0) && factor > 0.0f) c->rope_freq_scale = 1.0f / factor;
        else if (legacy > 0.0f) c->rope_freq_scale = 1.0f / legacy;
    }
    if (!(c->norm_eps > 0.0f) || !(c->rope_theta > 0.0f))
        return weft_errf(err, "gguf model: rms epsilon and rope base must be positive");

    m->tok = tok_load_gguf(f, err);
    if (!m->tok) return -1;
    c->vocab_size = tok_vocab_size(m->tok);
    int meta_vocab = 0;
    if (meta_u32(f, arch, "vocab_size", 0, c->vocab_size, &meta_vocab, err)) return -1;
    if (meta_vocab != c->vocab_size)
        return weft_errf(err, "gguf model: %s.vocab_size %d differs from the tokenizer's %d tokens",
                         arch, meta_vocab, c->vocab_size);
    c->bos_id = tok_bos(m->tok);
    c->eos_id = tok_eos(m->tok);
    add_stop(c, c->eos_id);
    uint32_t id;
    if (gguf_get_u32(f, "tokenizer.ggml.eot_token_id", &id)) add_stop(c, (int)id);
    if (gguf_get_u32(f, "tokenizer.ggml.eom_token_id", &id)) add_stop(c, (int)id);

    const int D = c->dim, H = c->hidden_dim, V = c->vocab_size;
    const int QD = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    /* Metadata alone must not size an allocation: every layer has 9 tensors, and binding the
     * embedding first proves dim against a tensor that really is in the file. */
    if ((size_t)c->n_layers > gguf_tensor_count(f) / 9)
        return weft_errf(err, "gguf model: %s.block_count %d needs %llu layer tensors but the "
                              "file has %zu tensors in all",
                         arch, c->n_layers, 9ull * (unsigned long long)c->n_layers,
                         gguf_tensor_count(f));
    if (bind_matrix(f, "token_embd.weight", V, D, &m->tok_embd, err)) return -1;
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    m->owned_f32 = malloc(sizeof(float) * (size_t)D * (2 * (size_t)c->n_layers + 1));
    if (!m->layers || !m->owned_f32) return weft_errf(err, "out of memory");
    float *arena = m->owned_f32;

    if (bind_vector(f, "output_norm.weight", D, &arena, &m->out_norm, err)) return -1;
    if (gguf_find_tensor(f, "output.weight")) {
        if (bind_matrix(f, "output.weight", V, D, &m->output, err)) return -1;
    } else {
        m->output = m->tok_embd;
        m->tied_output = 1;
    }
    for (int l = 0; l < c->n_layers; l++) {
        weft_layer *ly = &m->layers[l];
        char n[96];
#define BLK(s) (snprintf(n, sizeof n, "blk.%d.%s", l, s), n)
        if (bind_vector(f, BLK("attn_norm.weight"), D, &arena, &ly->attn_norm, err) ||
            bind_vector(f, BLK("ffn_norm.weight"), D, &arena, &ly->ffn_norm, err) ||
            bind_matrix(f, BLK("attn_q.weight"), QD, D, &ly->wq, err) ||
            bind_matrix(f, BLK("attn_k.weight"), KV, D, &ly->wk, err) ||
            bind_matrix(f, BLK("attn_v.weight"), KV, D, &ly->wv, err) ||
            bind_matrix(f, BLK("attn_output.weight"), D, QD, &ly->wo, err) ||
            bind_matrix(f, BLK("ffn_gate.weight"), H, D, &ly->w_gate, err) ||
            bind_matrix(f, BLK("ffn_up.weight"), H, D, &ly->w_up, err) ||
            bind_matrix(f, BLK("ffn_down.weight"), D, H, &ly->w_down, err))
            return -1;
#undef BLK
    }
    return 0;
}
