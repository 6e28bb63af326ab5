/* synth.c — synthetic llama models (see include/weft/synth.h). It owns the presets, the
 * tokenizer a synthetic model carries (generated, or taken from a GGUF or a llama2.c
 * tokenizer.bin), and the deterministic weight generator. Each tensor is seeded from the user
 * seed and a hash of its name, so its bytes do not depend on which tensors come before it. */
#include "weft/synth.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "weft/gguf.h"

/* ---- presets ---- */

static const synth_preset presets[] = {
    {"tiny15m", 288, 6, 6, 6, 768, 256, 32000},
    {"tiny110m", 768, 12, 12, 12, 2048, 1024, 32000},
    {"llama7b", 4096, 2, 32, 32, 11008, 4096, 32000},
    {"test-gqa", 64, 3, 8, 2, 160, 256, 512},
    /* head size 64 and GQA 2:1, small enough for the numpy reference: exercises the
     * specialised SIMD attention paths that head size 8 never reaches */
    {"test-hd64", 256, 2, 4, 2, 512, 256, 512},
    /* 3 heads and 3 KV heads: a head count no even number of tensor-parallel ranks divides */
    {"test-odd", 96, 2, 3, 3, 192, 256, 512},
};

const synth_preset *synth_preset_at(size_t i) {
    return i < sizeof presets / sizeof presets[0] ? &presets[i] : NULL;
}

const synth_preset *synth_find_preset(const char *name) {
    for (size_t i = 0; name && synth_preset_at(i); i++)
        if (strcmp(presets[i].name, name) == 0) return &presets[i];
    return NULL;
}

void synth_options_init(synth_options *o) {
    memset(o, 0, sizeof *o);
    o->type = WEFT_F32;
    o->seed = 1;
    o->rope_theta = 10000.0f;
    o->norm_eps = 1e-5f;
}

/* ---- vocabulary ---- */

enum { TOK_NORMAL = 1, TOK_UNKNOWN = 2, TOK_CONTROL = 3, TOK_BYTE = 6 };

typedef struct synth_vocab {
    uint32_t n;
    char **tokens; /* each malloc'd */
    float *scores;
    int32_t *types;
} synth_vocab;

static void vocab_free(synth_vocab *v) {
    for (uint32_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
    memset(v, 0, sizeof *v);
}

static int vocab_alloc(synth_vocab *v, uint32_t n) {
    v->n = n;
    v->tokens = calloc(n, sizeof *v->tokens);
    v->scores = calloc(n, sizeof *v->scores);
    v->types = calloc(n, sizeof *v->types);
    return v->tokens && v->scores && v->types ? 0 : -1;
}

static int token_type_of(const char *s) {
    if (strcmp(s, "<unk>") == 0) return TOK_UNKNOWN;
    if (strcmp(s, "<s>") == 0 || strcmp(s, "</s>") == 0) return TOK_CONTROL;
    unsigned x;
    char tail;
    if (strlen(s) == 6 && sscanf(s, "<0x%2x%c", &x, &tail) == 2 && tail == '>') return TOK_BYTE;
    return TOK_NORMAL;
}

/* A vocabulary that encodes any text: specials, the 256 byte-fallback pieces, the printable
 * ASCII characters, then unique filler words with decreasing scores. */
static int vocab_generate(synth_vocab *v, uint32_t n, weft_err *err) {
    if (n < 3) return weft_errf(err, "synth: vocabulary of %u tokens is too small", n);
    if (vocab_alloc(v, n)) return weft_errf(err, "synth: out of memory for the vocabulary");
    char buf[32];
    float score = 0.0f;
    for (uint32_t i = 0; i < n; i++) {
        if (i == 0)
            snprintf(buf, sizeof buf, "<unk>");
        else if (i == 1)
            snprintf(buf, sizeof buf, "<s>");
        else if (i == 2)
            snprintf(buf, sizeof buf, "</s>");
        else if (i < 3 + 256)
            snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else if (i == 3 + 256)
            snprintf(buf, sizeof buf, "\xe2\x96\x81"); /* "▁" */
        else if (i < 3 + 256 + 1 + 94)
            snprintf(buf, sizeof buf, "%c", (char)(0x21 + i - 260));
        else
            snprintf(buf, sizeof buf, "\xe2\x96\x81w%u", i);
        if (!(v->tokens[i] = strdup(buf))) return weft_errf(err, "synth: out of memory");
        v->types[i] = token_type_of(buf);
        v->scores[i] = v->types[i] == TOK_NORMAL ? score-- : 0.0f;
    }
    return 0;
}

static int read_whole(const char *path, uint8_t **out, size_t *size, weft_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return weft_errf(err, "synth: cannot open '%s': %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(fp);
                return weft_errf(err, "synth: out of memory reading '%s'", path);
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n, fp);
        n += k;
        if (k == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return weft_errf(err, "synth: error reading '%s'", path);
    }
    *out = buf;
    *size = n;
    return 0;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length,
 * bytes. It has no count: tokens run to the end of the file. Its BOS/EOS pieces are spelled
 * "\n<s>\n" and "\n</s>\n" and its word boundaries as plain spaces; GGUF vocabularies spell
 * them "<s>", "</s>" and U+2581. */
static int vocab_from_llama2c(synth_vocab *v, const uint8_t *p, size_t size, const char *path,
                              weft_err *err) {
    if (size < 4) return weft_errf(err, "synth: '%s' is too short for a tokenizer.bin", path);
    uint32_t n = 0;
    for (size_t pos = 4; pos < size; n++) {
        int32_t len;
        if (size - pos < 8) return weft_errf(err, "synth: '%s': token %u is truncated", path, n);
        memcpy(&len, p + pos + 4, 4);
        if (len < 0 || (size_t)len > size - pos - 8 || len > 4096)
            return weft_errf(err, "synth: '%s': token %u has bad length %d", path, n, len);
        pos += 8 + (size_t)len;
    }
    if (n < 3) return weft_errf(err, "synth: '%s' holds only %u tokens", path, n);
    if (vocab_alloc(v, n)) return weft_errf(err, "synth: out of memory for the vocabulary");
    size_t pos = 4;
    for (uint32_t i = 0; i < n; i++) {
        int32_t len;
        memcpy(&v->scores[i], p + pos, 4);
        memcpy(&len, p + pos + 4, 4);
        pos += 8;
        /* tokenizer.bin spells the word-boundary marker as a plain space; GGUF vocabularies
         * spell it U+2581 (3 bytes), so each space grows by 2 bytes. */
        size_t spaces = 0;
        for (int32_t j = 0; j < len; j++) spaces += p[pos + (size_t)j] == ' ';
        char *s = malloc((size_t)len + 2 * spaces + 1);
        if (!s) return weft_errf(err, "synth: out of memory");
        size_t o = 0;
        for (int32_t j = 0; j < len; j++) {
            char c = (char)p[pos + (size_t)j];
            if (c == ' ') {
                memcpy(s + o, "\xe2\x96\x81", 3);
                o += 3;
            } else {
                s[o++] = c;
            }
        }
        s[o] = 0;
        pos += (size_t)len;
        if (strcmp(s, "\n<s>\n") == 0)
            strcpy(s, "<s>");
        else if (strcmp(s, "\n</s>\n") == 0)
            strcpy(s, "</s>");
        v->tokens[i] = s;
        v->types[i] = token_type_of(s);
    }
    return 0;
}

static int set_vocab_keys(gguf_writer *w, const synth_vocab *v) {
    int rc = 0;
    rc |= gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    rc |= gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, v->n);
    rc |= gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v->scores, v->n);
    rc |= gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v->types, v->n);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    rc |= gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    return rc ? -1 : 0;
}

/* Adds the tokenizer keys to w and returns the vocabulary size through n_vocab. */
static int add_tokenizer(gguf_writer *w, const synth_options *o, const synth_preset *p,
                         uint32_t *n_vocab, weft_err *err) {
    synth_vocab v = {0};
    int rc = -1;
    if (!o->vocab_from) {
        if (vocab_generate(&v, p->vocab_size, err) == 0) rc = set_vocab_keys(w, &v);
        *n_vocab = v.n;
        vocab_free(&v);
        return rc;
    }
    uint8_t *buf = NULL;
    size_t size = 0;
    if (read_whole(o->vocab_from, &buf, &size, err)) return -1;
    if (size >= 4 && memcmp(buf, "GGUF", 4) == 0) {
        gguf_file *src = gguf_open_memory(buf, size, err);
        if (src) {
            uint64_t n = 0;
            gguf_type et;
            if (!gguf_get_arr_info(src, "tokenizer.ggml.tokens", &et, &n) ||
                et != GGUF_TYPE_STRING || n < 3 || n > UINT32_MAX) {
                weft_errf(err, "synth: '%s' has no usable tokenizer.ggml.tokens array",
                          o->vocab_from);
            } else {
                rc = 0;
                for (size_t i = 0; i < gguf_kv_count(src) && rc == 0; i++)
                    if (strncmp(gguf_kv_key(src, i), "tokenizer.ggml.", 15) == 0)
                        rc = gguf_writer_copy_kv(w, src, i);
                *n_vocab = (uint32_t)n;
            }
            gguf_close(src);
        }
    } else if (vocab_from_llama2c(&v, buf, size, o->vocab_from, err) == 0) {
        rc = set_vocab_keys(w, &v);
        *n_vocab = v.n;
    }
    vocab_free(&v);
    free(buf);
    return rc;
}

/* ---- weights ---- */

typedef struct synth_tensor {
    char name[64];
    uint64_t ne[2];
    uint32_t n_dims;
    weft_dtype type;
    bool is_norm;
    uint64_t seed;
} synth_tensor;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float rand_sym(uint64_t *s) {
    return (float)(splitmix64(s) >> 40) * 0x1p-23f - 1.0f;
}

static uint64_t name_seed(uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 1099511628211ull;
    uint64_t s = seed ^ h;
    return splitmix64(&s);
}

/* Weights are uniform with std 1/sqrt(row length), so a matmul keeps activations O(1);
 * norm weights are 1 plus a little noise so they are not a no-op. */
static int synth_fill(void *ctx, const char *name, void *dst, uint64_t nbytes) {
    const synth_tensor *t = ctx;
    (void)name;
    size_t ne0 = (size_t)t->ne[0];
    size_t row_bytes = dtype_row_bytes(t->type, ne0);
    if (row_bytes == 0 || nbytes != row_bytes * t->ne[1]) return -1;
    float *row = malloc(ne0 * sizeof *row);
    if (!row) return -1;
    uint64_t s = t->seed;
    float amp = sqrtf(3.0f / (float)ne0);
    for (uint64_t r = 0; r < t->ne[1]; r++) {
        for (size_t i = 0; i < ne0; i++)
            row[i] = t->is_norm ? 1.0f + 0.05f * rand_sym(&s) : amp * rand_sym(&s);
        dtype_quantize_row(t->type, row, (uint8_t *)dst + r * row_bytes, ne0);
    }
    free(row);
    return 0;
}

static uint32_t llama_file_type(weft_dtype t) {
    switch (t) {
    case WEFT_F16:
        return 1;
    case WEFT_Q4_0:
        return 2;
    case WEFT_Q8_0:
        return 7;
    case WEFT_BF16:
        return 32;
    default:
        return 0;
    }
}

typedef struct model_shape {
    uint32_t dim, n_layers, n_heads, n_kv, hidden, ctx, head_dim, vocab;
} model_shape;

static int check_shape(const synth_options *o, const model_shape *m, weft_err *err) {
    if (!dtype_supported(o->type))
        return weft_errf(err, "synth: unsupported weight type %u", (unsigned)o->type);
    if (m->n_layers < 1 || m->n_layers > 1024)
        return weft_errf(err, "synth: layer count %u out of range 1..1024", m->n_layers);
    if (m->ctx < 1 || m->ctx > (1u << 24))
        return weft_errf(err, "synth: context length %u out of range", m->ctx);
    size_t blk = dtype_block_elems(o->type);
    if (m->dim % blk || m->hidden % blk)
        return weft_errf(err, "synth: %s needs dim (%u) and hidden (%u) multiples of %zu",
                         dtype_name(o->type), m->dim, m->hidden, blk);
    if (!(o->rope_theta > 0.0f) || !(o->norm_eps > 0.0f))
        return weft_errf(err, "synth: rope theta and norm epsilon must be positive");
    return 0;
}

static int add_metadata(gguf_writer *w, const synth_options *o, const model_shape *m) {
    int rc = 0;
    rc |= gguf_writer_set_str(w, "general.architecture", "llama");
    rc |= gguf_writer_set_str(w, "general.name", o->preset);
    rc |= gguf_writer_set_u32(w, "general.file_type", llama_file_type(o->type));
    rc |= gguf_writer_set_u32(w, "llama.context_length", m->ctx);
    rc |= gguf_writer_set_u32(w, "llama.embedding_length", m->dim);
    rc |= gguf_writer_set_u32(w, "llama.block_count", m->n_layers);
    rc |= gguf_writer_set_u32(w, "llama.feed_forward_length", m->hidden);
    rc |= gguf_writer_set_u32(w, "llama.rope.dimension_count", m->head_dim);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count", m->n_heads);
    rc |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", m->n_kv);
    rc |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", o->norm_eps);
    rc |= gguf_writer_set_f32(w, "llama.rope.freq_base", o->rope_theta);
    return rc ? -1 : 0;
}

static void plan_one(synth_tensor *t, const synth_options *o, const char *name, uint64_t ne0,
                     uint64_t ne1, bool is_norm) {
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->n_dims = is_norm ? 1 : 2;
    t->is_norm = is_norm;
    t->type = is_norm ? WEFT_F32 : o->type;
    t->seed = name_seed(o->seed, t->name);
}

/* Builds the tensor list in llama.cpp's naming; returns the number of entries written. */
static size_t plan_tensors(synth_tensor *ts, const synth_options *o, const model_shape *m) {
    size_t n = 0;
    uint64_t q_dim = (uint64_t)m->n_heads * m->head_dim, kv_dim = (uint64_t)m->n_kv * m->head_dim;
    plan_one(&ts[n++], o, "token_embd.weight", m->dim, m->vocab, false);
    plan_one(&ts[n++], o, "output_norm.weight", m->dim, 1, true);
    if (o->untied) plan_one(&ts[n++], o, "output.weight", m->dim, m->vocab, false);
    static const struct {
        const char *suffix;
        int in, out; /* 0 dim, 1 q_dim, 2 kv_dim, 3 hidden; out < 0 marks a norm */
    } layer[] = {
        {"attn_norm", 0, -1}, {"attn_q", 0, 1},      {"attn_k", 0, 2},
        {"attn_v", 0, 2},     {"attn_output", 1, 0}, {"ffn_norm", 0, -1},
        {"ffn_gate", 0, 3},   {"ffn_up", 0, 3},      {"ffn_down", 3, 0},
    };
    const uint64_t size_of[4] = {m->dim, q_dim, kv_dim, m->hidden};
    for (uint32_t l = 0; l < m->n_layers; l++) {
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%u.%s.weight", l, layer[k].suffix);
            bool norm = layer[k].out < 0;
            plan_one(&ts[n++], o, name, size_of[layer[k].in], norm ? 1 : size_of[layer[k].out],
                     norm);
        }
    }
    return n;
}

int synth_write(const synth_options *o, const char *path, synth_result *res, weft_err *err) {
    const synth_preset *p = synth_find_preset(o->preset);
    if (!p) return weft_errf(err, "synth: unknown preset '%s'", o->preset ? o->preset : "");
    model_shape m = {
        p->dim,        o->n_layers ? o->n_layers : p->n_layers, p->n_heads,          p->n_kv_heads,
        p->hidden_dim, o->ctx_len ? o->ctx_len : p->ctx_len,    p->dim / p->n_heads, 0};
    if (check_shape(o, &m, err)) return -1;
    gguf_writer *w = gguf_writer_new();
    if (!w) return weft_errf(err, "synth: out of memory");
    synth_tensor *ts = NULL;
    int rc = -1;
    if (add_metadata(w, o, &m)) {
        weft_errf(err, "synth: out of memory building metadata");
        goto done;
    }
    if (add_tokenizer(w, o, p, &m.vocab, err)) {
        if (err && !err->msg[0]) weft_errf(err, "synth: out of memory building the tokenizer");
        goto done;
    }
    if (gguf_writer_set_u32(w, "llama.vocab_size", m.vocab)) goto done;
    ts = calloc(3 + 9 * (size_t)m.n_layers, sizeof *ts);
    if (!ts) {
        weft_errf(err, "synth: out of memory");
        goto done;
    }
    size_t nt = plan_tensors(ts, o, &m);
    uint64_t n_params = 0;
    for (size_t i = 0; i < nt; i++) {
        gguf_writer_add_tensor(w, ts[i].name, ts[i].n_dims, ts[i].ne, ts[i].type, synth_fill,
                               &ts[i]);
        n_params += ts[i].ne[0] * ts[i].ne[1];
    }
    if (gguf_writer_write(w, path, err)) goto done;
    struct stat st;
    if (stat(path, &st) != 0) {
        weft_errf(err, "synth: cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    if (res) {
        res->n_params = n_params;
        res->file_bytes = (uint64_t)st.st_size;
        res->vocab_size = m.vocab;
        res->n_tensors = (uint32_t)nt;
    }
    rc = 0;
done:
    free(ts);
    gguf_writer_free(w);
    return rc;
}
