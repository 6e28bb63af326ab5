/* prompts.c — prompt token ids for benchmark requests (see prompts.h). */
#include "workload/prompts.h"

#include <stdlib.h>
#include <string.h>

int wl_prompt_synthetic(wl_rng *r, int len, int vocab, int32_t *out, weft_err *err) {
    if (vocab <= WL_SYNTH_FIRST_ID)
        return weft_errf(err, "synthetic prompt: vocabulary of %d ids is too small", vocab);
    if (len < 0) return weft_errf(err, "synthetic prompt: negative length");
    for (int i = 0; i < len; i++)
        out[i] = (int32_t)wl_rng_range(r, WL_SYNTH_FIRST_ID, vocab - 1);
    return 0;
}

int wl_prompt_tokenize(const weft_tokenizer *tok, const char *text, bool add_bos, int max_len,
                       int32_t **out, int *n, weft_err *err) {
    *out = NULL;
    *n = 0;
    size_t len = strlen(text);
    int total = tok_encode(tok, text, len, add_bos, NULL, 0);
    if (total < 0) return weft_errf(err, "cannot tokenize prompt");
    int keep = max_len > 0 && total > max_len ? max_len : total;
    int32_t *ids = malloc(sizeof *ids * (size_t)(total > 0 ? total : 1));
    if (!ids) return weft_errf(err, "out of memory tokenizing a prompt");
    if (tok_encode(tok, text, len, add_bos, ids, total) != total) {
        free(ids);
        return weft_errf(err, "tokenizer gave inconsistent counts");
    }
    *out = ids;
    *n = keep;
    return 0;
}

int wl_prompt_prefix(int len, int vocab, int bos, uint64_t seed, int32_t *out, weft_err *err) {
    if (len < 1) return weft_errf(err, "system prefix: length must be at least 1");
    wl_rng r;
    wl_rng_seed(&r, seed ^ 0x5157454654505246ULL); /* its own stream, apart from the prompts' */
    out[0] = bos;
    return wl_prompt_synthetic(&r, len - 1, vocab, out + 1, err);
}

static const char *const COMMON_WORDS[] = {
    "the",  "of",    "and",  "to",    "in",    "is",   "that", "for",  "it",    "as",
    "was",  "with",  "be",   "by",    "on",    "not",  "he",   "this", "are",   "or",
    "his",  "from",  "at",   "which", "but",   "have", "an",   "had",  "they",  "you",
    "were", "their", "one",  "all",   "we",    "can",  "her",  "has",  "there", "been",
    "if",   "more",  "when", "will",  "would", "who",  "so",   "no",
};

int wl_prompt_words(wl_rng *r, int n_words, char **out, weft_err *err) {
    *out = NULL;
    if (n_words < 0) return weft_errf(err, "prompt text: negative length");
    const int n_list = (int)(sizeof COMMON_WORDS / sizeof COMMON_WORDS[0]);
    size_t cap = (size_t)n_words * 7 + 1, len = 0; /* longest word 5 bytes + space */
    char *s = malloc(cap);
    if (!s) return weft_errf(err, "out of memory building prompt text");
    for (int i = 0; i < n_words; i++) {
        const char *w = COMMON_WORDS[wl_rng_range(r, 0, n_list - 1)];
        size_t k = strlen(w);
        if (i) s[len++] = ' ';
        memcpy(s + len, w, k);
        len += k;
    }
    s[len] = 0;
    *out = s;
    return 0;
}
