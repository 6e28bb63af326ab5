/* lengths.h — how many tokens each request generates: a fixed number, a seeded uniform draw from
 * a range, or the token count of a data set's real response (tokenized with the model's own
 * tokenizer), capped. Benchmarks force these lengths with ignore_eos, so a run's work is known
 * in advance and equal across the modes compared. */
#ifndef WEFT_WORKLOAD_LENGTHS_H
#define WEFT_WORKLOAD_LENGTHS_H

#include <stdint.h>

#include "weft/error.h"
#include "weft/tokenizer.h"
#include "workload/dataset.h"

/* Every out[i] = len (>= 1). */
int wl_lengths_fixed(int n, int len, int *out, weft_err *err);
/* out[i] uniform in [lo, hi] (1 <= lo <= hi), deterministic in seed. */
int wl_lengths_uniform(int n, int lo, int hi, uint64_t seed, int *out, weft_err *err);
/* out[i] = tokens of d->pairs[idx[i]].response (no BOS), at least 1, at most max_output when
 * max_output > 0. */
int wl_lengths_from_dataset(const wl_dataset *d, const int *idx, int n, const weft_tokenizer *tok,
                            int max_output, int *out, weft_err *err);
/* Token count of text under tok (no BOS), or -1 on a tokenizer failure. */
int wl_token_count(const weft_tokenizer *tok, const char *text);

#endif
