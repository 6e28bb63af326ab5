/* model.c — the format-independent face of a model: picks the loader by file magic, frees,
 * and answers size questions. */
#include "model/model_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weft/gguf.h"

static int file_is_gguf(const char *path, int *is_gguf, weft_err *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return weft_errf(err, "cannot open '%s': %m", path);
    unsigned char magic[4] = {0};
    ssize_t n = read(fd, magic, 4);
    close(fd);
    if (n < 0) return weft_errf(err, "cannot read '%s': %m", path);
    *is_gguf = n == 4 && memcmp(magic, "GGUF", 4) == 0;
    return 0;
}

weft_model *model_load(const char *path, const char *tokenizer_path, weft_err *err) {
    weft_model *m = calloc(1, sizeof *m);
    if (!m) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    int is_gguf = 0;
    int rc = file_is_gguf(path, &is_gguf, err);
    if (rc == 0)
        rc = is_gguf ? model_load_gguf(m, path, err)
                     : model_load_llama2c(m, path, tokenizer_path, err);
    if (rc == 0) rc = model_pack_weights(m, err);
    if (rc != 0) {
        model_free(m);
        return NULL;
    }
    return m;
}

void model_free(weft_model *m) {
    if (!m) return;
    tok_free(m->tok);
    for (int i = m->n_packs - 1; i >= 0; i--) kn_pack_free(m->packs[i]); /* packs[0] last: it owns all */
    free(m->packs);
    free(m->layers);
    free(m->owned_f32);
    free(m->owned_shard);
    if (m->gguf) gguf_close(m->gguf);
    if (m->map) munmap(m->map, m->map_size);
    free(m);
}

static uint64_t mat_params(const kn_matrix *w) { return (uint64_t)w->rows * (uint64_t)w->cols; }
static uint64_t mat_bytes(const kn_matrix *w) { return (uint64_t)w->rows * w->row_bytes; }

uint64_t model_param_count(const weft_model *m) {
    const weft_config *c = &m->cfg;
    uint64_t n = mat_params(&m->tok_embd) + (uint64_t)c->dim;
    if (!m->tied_output) n += mat_params(&m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *ly = &m->layers[l];
        n += 2u * (uint64_t)c->dim;
        n += mat_params(&ly->wq) + mat_params(&ly->wk) + mat_params(&ly->wv) + mat_params(&ly->wo);
        n += mat_params(&ly->w_gate) + mat_params(&ly->w_up) + mat_params(&ly->w_down);
    }
    return n;
}

uint64_t model_weight_bytes(const weft_model *m) {
    const weft_config *c = &m->cfg;
    uint64_t n = mat_bytes(&m->tok_embd) + 4u * (uint64_t)c->dim;
    if (!m->tied_output) n += mat_bytes(&m->output);
    for (int l = 0; l < c->n_layers; l++) {
        const weft_layer *ly = &m->layers[l];
        n += 8u * (uint64_t)c->dim;
        n += mat_bytes(&ly->wq) + mat_bytes(&ly->wk) + mat_bytes(&ly->wv) + mat_bytes(&ly->wo);
        n += mat_bytes(&ly->w_gate) + mat_bytes(&ly->w_up) + mat_bytes(&ly->w_down);
    }
    return n;
}
