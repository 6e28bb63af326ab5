/* lengths.c — output-length generators (see lengths.h). */
#include "workload/lengths.h"

#include <stdlib.h>
#include <string.h>

#include "workload/rng.h"

int wl_lengths_fixed(int n, int len, int *out, weft_err *err) {
    if (len < 1) return weft_errf(err, "output length must be at least 1, got %d", len);
    for (int i = 0; i < n; i++)
        out[i] = len;
    return 0;
}

int wl_lengths_uniform(int n, int lo, int hi, uint64_t seed, int *out, weft_err *err) {
    if (lo < 1 || hi < lo) return weft_errf(err, "length range %d:%d: need 1 <= A <= B", lo, hi);
    wl_rng r;
    wl_rng_seed(&r, seed);
    for (int i = 0; i < n; i++)
        out[i] = (int)wl_rng_range(&r, lo, hi);
    return 0;
}

int wl_token_count(const weft_tokenizer *tok, const char *text) {
    /* A first call with no room returns the full count. */
    return tok_encode(tok, text, strlen(text), false, NULL, 0);
}

int wl_lengths_from_dataset(const wl_dataset *d, const int *idx, int n, const weft_tokenizer *tok,
                            int max_output, int *out, weft_err *err) {
    for (int i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= d->n)
            return weft_errf(err, "record index %d out of range", idx[i]);
        int k = wl_token_count(tok, d->pairs[idx[i]].response);
        if (k < 0) return weft_errf(err, "cannot tokenize the response of record %d", idx[i]);
        if (k < 1) k = 1;
        if (max_output > 0 && k > max_output) k = max_output;
        out[i] = k;
    }
    return 0;
}
