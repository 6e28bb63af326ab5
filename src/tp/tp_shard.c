/* tp_shard.c — cuts a loaded model down to one tensor-parallel rank's shard, and the model hash
 * the ranks compare at start-up (see include/weft/tp.h).
 * Row slices stay views into the mmap'd file: only the rows this rank multiplies are ever
 * read. Column slices (wo, w_down: this rank's inputs are a column range of every row) are not
 * contiguous in row-major storage, so this rank's columns are copied once into owned memory and
 * the full tensors' mapped pages are handed back to the kernel (madvise). */
#include "weft/tp.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void row_slice(kn_matrix *w, int r0, int r1) {
    w->data = (const unsigned char *)w->data + (size_t)r0 * w->row_bytes;
    w->rows = r1 - r0;
}

/* Bytes needed for the column slice [c0, c1) of w, or 0 when c0/c1 are not block aligned. */
static size_t col_slice_bytes(const kn_matrix *w, int c0, int c1) {
    size_t be = dtype_block_elems(w->type);
    if (be == 0 || c0 % (int)be != 0 || c1 % (int)be != 0 || c1 <= c0) return 0;
    return (size_t)w->rows * dtype_row_bytes(w->type, (size_t)(c1 - c0));
}

/* Copies the columns [c0, c1) of every row into dst and points w at it; releases the pages of
 * the source range when it is file-mapped. */
static void col_slice(kn_matrix *w, int c0, int c1, unsigned char *dst) {
    size_t off = dtype_row_bytes(w->type, (size_t)c0);
    size_t rb = dtype_row_bytes(w->type, (size_t)(c1 - c0));
    const unsigned char *src = w->data;
    for (int r = 0; r < w->rows; r++)
        memcpy(dst + (size_t)r * rb, src + (size_t)r * w->row_bytes + off, rb);
    long page = sysconf(_SC_PAGESIZE);
    if (page > 0) {
        uintptr_t a = (uintptr_t)src, e = a + (size_t)w->rows * w->row_bytes;
        uintptr_t pa = (a + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
        uintptr_t pe = e & ~((uintptr_t)page - 1);
        /* Only pages wholly inside this tensor, which is never read again: for a file mapping
         * they are dropped from this process, for heap memory zeroed; either is harmless. */
        if (pe > pa) (void)madvise((void *)pa, pe - pa, MADV_DONTNEED);
    }
    w->data = dst;
    w->cols = c1 - c0;
    w->row_bytes = rb;
}

int tp_shard_model(weft_model *m, const tp_plan *p, weft_err *err) {
    weft_config *c = &m->cfg;
    if (m->owned_shard || m->comm)
        return weft_errf(err, "tensor parallel: the model is already sharded");
    const int hd = c->head_dim, L = c->n_layers;
    const int q0 = p->h0 * hd, q1 = p->h1 * hd, k0 = p->kv0 * hd, k1 = p->kv1 * hd;
    size_t total = 0;
    for (int l = 0; l < L; l++) {
        size_t a = col_slice_bytes(&m->layers[l].wo, q0, q1);
        size_t b = col_slice_bytes(&m->layers[l].w_down, p->f0, p->f1);
        if (a == 0 || b == 0)
            return weft_errf(err,
                             "tensor parallel: layer %d: the column ranges [%d, %d) of "
                             "attn_output (%s) and [%d, %d) of ffn_down (%s) are not whole "
                             "quantization blocks",
                             l, q0, q1, dtype_name(m->layers[l].wo.type), p->f0, p->f1,
                             dtype_name(m->layers[l].w_down.type));
        total += a + b;
    }
    unsigned char *own = NULL;
    if (posix_memalign((void **)&own, 64, total) != 0)
        return weft_errf(err,
                         "tensor parallel: cannot allocate %zu bytes for this rank's "
                         "column slices",
                         total);
    unsigned char *at = own;
    for (int l = 0; l < L; l++) {
        weft_layer *ly = &m->layers[l];
        row_slice(&ly->wq, q0, q1);
        row_slice(&ly->wk, k0, k1);
        row_slice(&ly->wv, k0, k1);
        row_slice(&ly->w_gate, p->f0, p->f1);
        row_slice(&ly->w_up, p->f0, p->f1);
        size_t a = col_slice_bytes(&ly->wo, q0, q1);
        col_slice(&ly->wo, q0, q1, at);
        at += a;
        size_t b = col_slice_bytes(&ly->w_down, p->f0, p->f1);
        col_slice(&ly->w_down, p->f0, p->f1, at);
        at += b;
    }
    row_slice(&m->output, p->v0, p->v1); /* tok_embd stays whole: lookups read single rows */
    m->owned_shard = own;
    c->n_heads = p->h1 - p->h0;
    c->n_kv_heads = p->kv1 - p->kv0;
    c->hidden_dim = p->f1 - p->f0;
    return 0;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t hash_matrix(uint64_t h, const kn_matrix *w) {
    int64_t shape[4] = {w->type, w->rows, w->cols, (int64_t)w->row_bytes};
    h = fnv(h, shape, sizeof shape);
    size_t bytes = (size_t)w->rows * w->row_bytes, sample = 32;
    if (bytes <= 8 * sample) return fnv(h, w->data, bytes);
    size_t n = bytes >> 20;
    if (n < 8) n = 8;
    const unsigned char *d = w->data;
    for (size_t i = 0; i < n; i++) {
        size_t off = (size_t)((double)(bytes - sample) * (double)i / (double)(n - 1));
        h = fnv(h, d + off, sample);
    }
    return h;
}

uint64_t tp_model_hash(const weft_model *m) {
    const weft_config *c = &m->cfg;
    uint64_t h = 0xcbf29ce484222325ull;
    int32_t cfg[] = {c->dim,        c->hidden_dim, c->n_layers,   c->n_heads,
                     c->n_kv_heads, c->head_dim,   c->vocab_size, c->ctx_len,
                     c->rope_dim,   c->bos_id,     c->eos_id,     m->tied_output};
    float cf[] = {c->norm_eps, c->rope_theta, c->rope_freq_scale};
    h = fnv(h, cfg, sizeof cfg);
    h = fnv(h, cf, sizeof cf);
    h = hash_matrix(h, &m->tok_embd);
    h = hash_matrix(h, &m->output);
    h = fnv(h, m->out_norm, sizeof(float) * (size_t)c->dim);
    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *ly = &m->layers[l];
        h = fnv(h, ly->attn_norm, sizeof(float) * (size_t)c->dim);
        h = fnv(h, ly->ffn_norm, sizeof(float) * (size_t)c->dim);
        const kn_matrix *ws[] = {&ly->wq,     &ly->wk,   &ly->wv,    &ly->wo,
                                 &ly->w_gate, &ly->w_up, &ly->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            h = hash_matrix(h, ws[i]);
    }
    return h;
}
