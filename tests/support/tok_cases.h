/* tok_cases.h — runs llama.cpp-style tokenizer test vectors (.inp/.out pairs) against a
 * weft_tokenizer; shared by the tokenizer tests that load the vocabulary in different ways. */
#ifndef WEFT_TOK_CASES_H
#define WEFT_TOK_CASES_H

#include "weft/tokenizer.h"

/* Encodes every case of inp_path (cases separated by "\n__ggml_vocab_test__\n") without BOS
 * and compares with the matching line of out_path (space-separated ids). Prints each mismatch.
 * Sets *n_cases and *n_matched; returns 0, or -1 when the files are unreadable or disagree in
 * case count. */
int tu_run_vocab_cases(const weft_tokenizer *t, const char *inp_path, const char *out_path,
                       int *n_cases, int *n_matched);

#endif
