/* workload.h — a benchmark workload: for each request its arrival time, prompt token ids and the
 * number of tokens it must generate. Assembled from the pieces in this folder (arrivals,
 * lengths, prompts, data sets) according to a wl_spec, once, before any mode runs, so every
 * mode compared in one invocation serves exactly the same requests. */
#ifndef WEFT_WORKLOAD_WORKLOAD_H
#define WEFT_WORKLOAD_WORKLOAD_H

#include <stdint.h>

#include "weft/error.h"
#include "weft/tokenizer.h"

typedef enum wl_source {
    WL_SRC_FIXED = 0,   /* one length for all */
    WL_SRC_UNIFORM = 1, /* seeded uniform draw from [lo, hi] (output lengths only) */
    WL_SRC_DATASET = 2, /* from a pairs data set */
    WL_SRC_TRACE = 3,   /* from the trace's token counts */
} wl_source;

typedef struct wl_spec {
    int n_requests;     /* Poisson: required; trace: 0 = every record, else a cap */
    double gap_mean_s;  /* Poisson mean gap (0 = all at t = 0) */
    const char *trace;  /* arrivals (and default lengths) from this trace; NULL = Poisson */
    double trace_scale; /* trace time multiplier (> 0) */
    wl_source output_src;
    int output_len;           /* FIXED */
    int output_lo, output_hi; /* UNIFORM */
    const char *lengths_from; /* DATASET */
    int max_output;           /* cap on every output length (0 = none) */
    wl_source prompt_src; /* FIXED (synthetic ids), DATASET (tokenized text) or TRACE (synthetic) */
    int prompt_len;       /* FIXED */
    const char *prompts_from; /* DATASET */
    int system_prefix;        /* shared leading tokens on every prompt (0 = none) */
    int max_prompt;           /* prompts are cut to this many tokens (0 = none) */
    int max_seq_len;          /* prompt + output is clipped to this (0 = none): outputs first */
    uint64_t seed;
    uint64_t arrival_seed; /* Poisson arrival times from this seed instead of seed's (0 = seed's):
                            * other arrivals of the same requests, prompts and lengths */
} wl_spec;

void wl_spec_defaults(wl_spec *s); /* 32 requests at t=0, 32-token prompts, 128 output tokens */

typedef struct wl_request {
    double arrival_s;
    int32_t *prompt;
    int n_prompt;
    int n_output;
    char *text; /* the prompt's text when it came from a data set (for length prediction), or
                 * NULL */
} wl_request;

typedef struct wl_workload {
    wl_request *req;
    int n;
    int n_clipped; /* requests shortened to fit max_prompt / max_seq_len */
} wl_workload;

/* Builds the workload. tok is needed for data sets (may be NULL otherwise); vocab bounds
 * synthetic ids; bos starts the system prefix and data-set prompts. */
int wl_workload_build(const wl_spec *s, const weft_tokenizer *tok, int vocab, int bos,
                      wl_workload *out, weft_err *err);
void wl_workload_free(wl_workload *w);

/* Sums over the workload (for reports). */
int64_t wl_workload_prompt_tokens(const wl_workload *w);
int64_t wl_workload_output_tokens(const wl_workload *w);
int wl_workload_longest(const wl_workload *w); /* max prompt + output */

#endif
