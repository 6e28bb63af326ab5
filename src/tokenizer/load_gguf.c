/* load_gguf.c — builds the tokenizer from a GGUF file's tokenizer.ggml.* metadata. Kept apart
 * from the other loaders so that only programs which read GGUF pull in the GGUF reader.
 * Only SentencePiece vocabularies (tokenizer.ggml.model = "llama") are accepted. */
#include "tokenizer/tok_internal.h"
#include "weft/gguf.h"

#include <math.h>
#include <string.h>

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

static bool is_numeric(gguf_type t) {
    return t != GGUF_TYPE_STRING && t != GGUF_TYPE_ARRAY && t != GGUF_TYPE_BOOL;
}

/* Optional per-token numeric array: present must mean the right shape. *has is set when it is. */
static int check_optional_array(const gguf_file *f, const char *key, uint64_t n_tokens,
                                bool *has, weft_err *err) {
    gguf_type et;
    uint64_t n;
    *has = false;
    if (gguf_find_key(f, key) < 0) return 0;
    if (!gguf_get_arr_info(f, key, &et, &n)) return weft_errf(err, "%s is not an array", key);
    if (!is_numeric(et)) return weft_errf(err, "%s is an array of non-numeric type %d", key, et);
    if (n != n_tokens) {
        return weft_errf(err, "%s has %llu entries but there are %llu tokens", key,
                         (unsigned long long)n, (unsigned long long)n_tokens);
    }
    *has = true;
    return 0;
}

static int get_id(const gguf_file *f, const char *key, int dflt, int *out, weft_err *err) {
    uint32_t v;
    *out = dflt;
    if (gguf_find_key(f, key) < 0) return 0;
    if (!gguf_get_u32(f, key, &v) || v > (uint32_t)TOK_MAX_VOCAB)
        return weft_errf(err, "%s is not a valid token id", key);
    *out = (int)v;
    return 0;
}

weft_tokenizer *tok_load_gguf(const struct gguf_file *f, weft_err *err) {
    const char *model = gguf_get_str(f, KEY_MODEL);
    if (!model) {
        weft_errf(err, "GGUF has no %s string: no tokenizer in this file", KEY_MODEL);
        return NULL;
    }
    if (strcmp(model, "llama") != 0) {
        weft_errf(err, "tokenizer model \"%.64s\" is not supported: only SentencePiece BPE "
                       "(\"llama\") vocabularies are",
                  model);
        return NULL;
    }
    gguf_type et;
    uint64_t n;
    if (!gguf_get_arr_info(f, KEY_TOKENS, &et, &n)) {
        weft_errf(err, "GGUF has no %s array", KEY_TOKENS);
        return NULL;
    }
    if (et != GGUF_TYPE_STRING) {
        weft_errf(err, "%s is an array of type %d, not strings", KEY_TOKENS, et);
        return NULL;
    }
    if (n == 0 || n > (uint64_t)TOK_MAX_VOCAB) {
        weft_errf(err, "%s has %llu entries (allowed 1..%d)", KEY_TOKENS, (unsigned long long)n,
                  TOK_MAX_VOCAB);
        return NULL;
    }
    bool has_scores, has_types;
    if (check_optional_array(f, KEY_SCORES, n, &has_scores, err) != 0) return NULL;
    if (check_optional_array(f, KEY_TYPES, n, &has_types, err) != 0) return NULL;
    int bos, eos, unk;
    if (get_id(f, "tokenizer.ggml.bos_token_id", 1, &bos, err) != 0 ||
        get_id(f, "tokenizer.ggml.eos_token_id", 2, &eos, err) != 0 ||
        get_id(f, "tokenizer.ggml.unknown_token_id", 0, &unk, err) != 0)
        return NULL;

    weft_tokenizer *t = tok_alloc((int)n, err);
    if (!t) return NULL;
    for (uint64_t i = 0; i < n; i++) {
        const char *s = gguf_get_arr_str(f, KEY_TOKENS, i);
        if (!s) {
            weft_errf(err, "%s[%llu] is unreadable", KEY_TOKENS, (unsigned long long)i);
            goto fail;
        }
        double score = 0.0, type = 0.0;
        if (has_scores && !gguf_get_arr_num(f, KEY_SCORES, i, &score)) {
            weft_errf(err, "%s[%llu] is unreadable", KEY_SCORES, (unsigned long long)i);
            goto fail;
        }
        if (has_types && !gguf_get_arr_num(f, KEY_TYPES, i, &type)) {
            weft_errf(err, "%s[%llu] is unreadable", KEY_TYPES, (unsigned long long)i);
            goto fail;
        }
        /* Unknown type codes (0 = undefined, or garbage) fall back to inference from the text. */
        int ty = (type >= TOK_NORMAL && type <= TOK_BYTE) ? (int)type : 0;
        if (isnan(score) || score > 3.0e38 || score < -3.0e38) {
            weft_errf(err, "%s[%llu] = %g is not a usable score", KEY_SCORES,
                      (unsigned long long)i, score);
            goto fail;
        }
        if (tok_add_piece(t, s, strlen(s), (float)score, ty, err) != 0) goto fail;
    }
    if (tok_finish(t, bos, eos, unk, err) != 0) goto fail;
    return t;
fail:
    tok_free(t);
    return NULL;
}
