/* model_llama2c.c — loads llama2.c checkpoints (.bin) into a weft_model.
 * Two layouts exist: the legacy one (a 28-byte header of seven int32, a negative vocab size
 * meaning a separate classifier follows the weights) and the "version 1" export (magic "ak42",
 * 256-byte header, a shared-classifier flag, norms stored first). Both are F32; the file is
 * mmap'd and the weight matrices point straight into the mapping. */
#include "model/model_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define L2C_MAGIC 0x616b3432u /* "ak42" */
#define L2C_V1_HEADER 256

/* Walks the mapping, handing out consecutive F32 arrays and refusing to run past the end. */
typedef struct l2c_cursor {
    const unsigned char *base;
    size_t size, off;
    int failed;
} l2c_cursor;

static const float *l2c_take(l2c_cursor *c, uint64_t n_floats) {
    uint64_t bytes = n_floats * 4u;
    if (c->failed || n_floats > SIZE_MAX / 4 || bytes > c->size - c->off) {
        c->failed = 1;
        return NULL;
    }
    const float *p = (const float *)(const void *)(c->base + c->off);
    c->off += (size_t)bytes;
    return p;
}

static kn_matrix l2c_matrix(const float *data, int rows, int cols) {
    kn_matrix m = {.type = WEFT_F32, .rows = rows, .cols = cols, .data = data,
                   .row_bytes = (size_t)cols * 4u};
    return m;
}

static int l2c_check_config(const weft_config *c, weft_err *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->ctx_len <= 0)
        return weft_errf(err, "llama2.c: header has a non-positive size (dim %d hidden %d layers %d "
                              "heads %d kv_heads %d vocab %d seq_len %d)",
                         c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                         c->vocab_size, c->ctx_len);
    if (c->dim > (1 << 16) || c->hidden_dim > (1 << 18) || c->n_layers > 1024 ||
        c->vocab_size > (1 << 22) || c->ctx_len > (1 << 22))
        return weft_errf(err, "llama2.c: header sizes are implausibly large");
    if (c->dim % c->n_heads != 0 || c->n_heads % c->n_kv_heads != 0)
        return weft_errf(err, "llama2.c: dim %d / heads %d / kv_heads %d do not divide evenly",
                         c->dim, c->n_heads, c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2 != 0)
        return weft_errf(err, "llama2.c: head size %d is odd (RoPE needs pairs)", c->dim / c->n_heads);
    return 0;
}

int model_load_llama2c(weft_model *m, const char *path, const char *tokenizer_path, weft_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return weft_errf(err, "cannot open '%s': %m", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return weft_errf(err, "cannot stat '%s': %m", path);
    }
    if (st.st_size < 28) {
        close(fd);
        return weft_errf(err, "llama2.c: '%s' is %lld bytes, too small for a header", path,
                         (long long)st.st_size);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return weft_errf(err, "cannot mmap '%s': %m", path);
    m->map = map;
    m->map_size = (size_t)st.st_size;

    const unsigned char *b = map;
    int32_t h[7];
    uint32_t magic;
    memcpy(&magic, b, 4);
    int version = 0, shared = 0;
    size_t header = 28;
    if (magic == L2C_MAGIC) {
        int32_t v;
        memcpy(&v, b + 4, 4);
        if (v != 1)
            return weft_errf(err, "llama2.c: export version %d is not supported (only the legacy "
                                  "format and version 1, F32)", v);
        if (m->map_size < L2C_V1_HEADER) return weft_errf(err, "llama2.c: truncated v1 header");
        version = 1;
        memcpy(h, b + 8, sizeof h);
        shared = b[8 + sizeof h] != 0;
        header = L2C_V1_HEADER;
    } else {
        memcpy(h, b, sizeof h);
        shared = h[5] > 0;
        if (h[5] < 0 && h[5] != INT32_MIN) h[5] = -h[5]; /* INT32_MIN stays: refused below */
    }
    weft_config *c = &m->cfg;
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->vocab_size = h[5];
    c->ctx_len = h[6];
    if (l2c_check_config(c, err) != 0) return -1;
    c->head_dim = c->dim / c->n_heads;
    c->rope_dim = c->head_dim;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_freq_scale = 1.0f;
    snprintf(m->arch, sizeof m->arch, "llama");
    snprintf(m->source, sizeof m->source, version ? "llama2c-v1" : "llama2c");

    const int L = c->n_layers, D = c->dim, H = c->hidden_dim, V = c->vocab_size;
    const int KV = c->n_kv_heads * c->head_dim;
    l2c_cursor cur = {.base = b, .size = m->map_size, .off = header};
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) return weft_errf(err, "out of memory");

    const float *embd, *att_norm, *ffn_norm, *fin_norm, *wq, *wk, *wv, *wo, *w1, *w2, *w3;
    if (version == 0) {
        embd = l2c_take(&cur, (uint64_t)V * D);
        att_norm = l2c_take(&cur, (uint64_t)L * D);
        wq = l2c_take(&cur, (uint64_t)L * D * D);
        wk = l2c_take(&cur, (uint64_t)L * KV * D);
        wv = l2c_take(&cur, (uint64_t)L * KV * D);
        wo = l2c_take(&cur, (uint64_t)L * D * D);
        ffn_norm = l2c_take(&cur, (uint64_t)L * D);
        w1 = l2c_take(&cur, (uint64_t)L * H * D);
        w2 = l2c_take(&cur, (uint64_t)L * D * H);
        w3 = l2c_take(&cur, (uint64_t)L * H * D);
        fin_norm = l2c_take(&cur, (uint64_t)D);
        /* legacy files carry RoPE tables (seq_len x head_size/2, real then imaginary): skip */
        l2c_take(&cur, (uint64_t)c->ctx_len * (c->head_dim / 2) * 2);
    } else {
        att_norm = l2c_take(&cur, (uint64_t)L * D);
        ffn_norm = l2c_take(&cur, (uint64_t)L * D);
        fin_norm = l2c_take(&cur, (uint64_t)D);
        embd = l2c_take(&cur, (uint64_t)V * D);
        wq = l2c_take(&cur, (uint64_t)L * D * D);
        wk = l2c_take(&cur, (uint64_t)L * KV * D);
        wv = l2c_take(&cur, (uint64_t)L * KV * D);
        wo = l2c_take(&cur, (uint64_t)L * D * D);
        w1 = l2c_take(&cur, (uint64_t)L * H * D);
        w2 = l2c_take(&cur, (uint64_t)L * D * H);
        w3 = l2c_take(&cur, (uint64_t)L * H * D);
    }
    const float *wcls = shared ? embd : l2c_take(&cur, (uint64_t)V * D);
    if (cur.failed)
        return weft_errf(err, "llama2.c: '%s' is truncated: %zu bytes cannot hold the weights its "
                              "header describes", path, m->map_size);
    if (cur.off != m->map_size)
        return weft_errf(err, "llama2.c: '%s' has %zu trailing bytes after the weights its header "
                              "describes (wrong format or classifier flag?)",
                         path, m->map_size - cur.off);

    m->tok_embd = l2c_matrix(embd, V, D);
    m->output = l2c_matrix(wcls, V, D);
    m->tied_output = shared;
    m->out_norm = fin_norm;
    for (int l = 0; l < L; l++) {
        weft_layer *ly = &m->layers[l];
        ly->attn_norm = att_norm + (size_t)l * D;
        ly->ffn_norm = ffn_norm + (size_t)l * D;
        ly->wq = l2c_matrix(wq + (size_t)l * D * D, D, D);
        ly->wk = l2c_matrix(wk + (size_t)l * KV * D, KV, D);
        ly->wv = l2c_matrix(wv + (size_t)l * KV * D, KV, D);
        ly->wo = l2c_matrix(wo + (size_t)l * D * D, D, D);
        ly->w_gate = l2c_matrix(w1 + (size_t)l * H * D, H, D);
        ly->w_down = l2c_matrix(w2 + (size_t)l * D * H, D, H);
        ly->w_up = l2c_matrix(w3 + (size_t)l * H * D, H, D);
    }

    /* checked only now, so a broken checkpoint is reported as such even without a tokenizer */
    if (!tokenizer_path)
        return weft_errf(err, "llama2.c checkpoint '%s' needs a tokenizer (--tokenizer tokenizer.bin)",
                         path);
    m->tok = tok_load_bin(tokenizer_path, V, err);
    if (!m->tok) return -1;
    c->bos_id = tok_bos(m->tok);
    c->eos_id = tok_eos(m->tok);
    c->n_stop_ids = 0;
    c->stop_ids[c->n_stop_ids++] = c->eos_id;
    return 0;
}
