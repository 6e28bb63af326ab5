/* model_pack.c — packs a loaded model's Q8_0 matmul weights once, at load, into the layout the
 * AVX-512 VNNI kernel multiplies directly (kn_pack_new, src/kernels/qpack.c), so no decode
 * step repacks them (docs/kernels.md, "Weights packed at load").
 * What is packed: every layer's seven projections and the output head when they are Q8_0 and
 * the CPU has AVX-512 VNNI. The token embedding is read by row (kn_matrix_row_f32) and stays as
 * it is; a tied head (same data) gets its own packed copy. The copies cost about the Q8_0
 * weights' size again in anonymous memory (the file mapping stays, and its pages are only read
 * while packing), in one allocation, on 2 MB pages where the kernel gives them (batch-1 decode
 * streams all of it every token; see docs/kernels.md). WEFT_Q8_PREPACK=off skips packing (the kernels then repack per call, with
 * the same results bit for bit). */
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"

int model_pack_weights(weft_model *m, weft_err *err) {
    const char *e = getenv("WEFT_Q8_PREPACK");
    if (e && strcmp(e, "off") == 0) return 0;
    const int L = m->cfg.n_layers;
    kn_matrix **all = malloc(sizeof *all * ((size_t)L * 7 + 1));
    if (!all) return weft_errf(err, "out of memory");
    int n = 0;
    for (int l = 0; l < L; l++) {
        weft_layer *ly = &m->layers[l];
        kn_matrix *ws[] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
        for (int i = 0; i < 7; i++)
            if (kn_pack_supported(ws[i])) all[n++] = ws[i];
    }
    if (kn_pack_supported(&m->output)) all[n++] = &m->output;
    if (n == 0) {
        free(all);
        return 0;
    }
    m->packs = calloc((size_t)n, sizeof *m->packs);
    if (!m->packs || kn_pack_many((const kn_matrix *const *)all, n, m->packs) != 0) {
        free(all);
        return weft_errf(err, "out of memory packing the Q8_0 weights (WEFT_Q8_PREPACK=off "
                              "skips packing)");
    }
    m->n_packs = n;
    for (int i = 0; i < n; i++) all[i]->packed = m->packs[i];
    free(all);
    return 0;
}
