/* prompts.h — the token ids a benchmark request sends: a data set's prompt text tokenized with
 * the model's tokenizer, or synthetic random ids of a given length; optionally behind a shared
 * system prefix (the same N tokens at the start of every prompt) for prefix-sharing
 * experiments. */
#ifndef WEFT_WORKLOAD_PROMPTS_H
#define WEFT_WORKLOAD_PROMPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/error.h"
#include "weft/tokenizer.h"
#include "workload/rng.h"

/* Lowest id a synthetic prompt uses: LLaMA vocabularies keep <unk>, <s>, </s> at 0..2. */
#define WL_SYNTH_FIRST_ID 3

/* len ids uniform in [WL_SYNTH_FIRST_ID, vocab) (vocab > WL_SYNTH_FIRST_ID). */
int wl_prompt_synthetic(wl_rng *r, int len, int vocab, int32_t *out, weft_err *err);

/* Tokenizes text (BOS first when add_bos) into a new array of at most max_len ids (the start of
 * the prompt is kept when it is longer; max_len <= 0: no limit). *out is malloc'd. */
int wl_prompt_tokenize(const weft_tokenizer *tok, const char *text, bool add_bos, int max_len,
                       int32_t **out, int *n, weft_err *err);

/* The shared system prefix: bos followed by len - 1 synthetic ids, the same for every request of
 * a workload (a function of seed only). len >= 1. */
int wl_prompt_prefix(int len, int vocab, int bos, uint64_t seed, int32_t *out, weft_err *err);

/* Prompt text for servers that tokenize for themselves (weft bench serve): n_words words drawn
 * from a list of common English words, space-separated, that are one token each (with their
 * leading space) in LLaMA vocabularies, so the text is about n_words tokens (+ BOS) there and
 * a similar count under other BPE vocabularies. *out is malloc'd, NUL-terminated. */
int wl_prompt_words(wl_rng *r, int n_words, char **out, weft_err *err);

#endif
