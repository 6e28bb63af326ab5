/* model_internal.h — what the per-format loaders share inside src/model/. */
#ifndef WEFT_MODEL_INTERNAL_H
#define WEFT_MODEL_INTERNAL_H

#include <stdio.h>
#include "weft/model.h"

/* Each fills a zeroed model (config, weights, tokenizer, ownership fields) or returns -1;
 * model_free releases whatever was set, including on failure. */
int model_load_gguf(weft_model *m, const char *path, weft_err *err);
int model_load_llama2c(weft_model *m, const char *path, const char *tokenizer_path, weft_err *err);
/* Packs the Q8_0 matmul weights once for the VNNI kernel (model_pack.c); 0, or -1 with a message
 * when out of memory. WEFT_Q8_PREPACK=off skips it. */
int model_pack_weights(weft_model *m, weft_err *err);

#endif
