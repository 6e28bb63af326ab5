/* step_model.h — the step-time model of the virtual clock (docs/scheduling.md "Simulator"):
 * the modelled duration of one engine step from its shape (engine_step_shape),
 *   t_ms = const + seqs * n_seqs + tokens * n_tokens + prefill * n_prefill + kv * kv_tokens,
 * with the coefficients read from a text params file, and the least-squares fitter that makes
 * that file from scheduling traces (`weft bench stepfit`, the step lines of engine_trace.c).
 *
 * Params file (one `NAME VALUE` per line; '#' starts a comment; blank lines ignored):
 *   stepm 1              the format version; must be the first line that is not a comment
 *   const MS             milliseconds per step
 *   seqs MS              per sequence in the batch
 *   tokens MS            per token computed (decode tokens and prefill-chunk tokens)
 *   prefill MS           extra per prefill-chunk token
 *   kv MS                per attended position (sum over the batch's tokens of position + 1)
 * A term that is absent is 0. Every value must be finite; errors name FILE:LINE. A modelled step
 * is never shorter than STEPM_MIN_S (a fit with negative terms cannot stall the clock). */
#ifndef WEFT_WORKLOAD_STEP_MODEL_H
#define WEFT_WORKLOAD_STEP_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/engine.h"
#include "weft/error.h"

enum { STEPM_CONST, STEPM_SEQS, STEPM_TOKENS, STEPM_PREFILL, STEPM_KV, STEPM_N_TERMS };

#define STEPM_MIN_S 1e-5

typedef struct stepm_params {
    double coef[STEPM_N_TERMS]; /* milliseconds per unit of each term's feature */
} stepm_params;

const char *stepm_term_name(int term);
/* "const,seqs,tokens,kv" -> a mask of 1 << term; -1 with a message for an unknown name. */
int stepm_terms_parse(const char *list, unsigned *mask, weft_err *err);
/* The features of a shape, in the terms' order. */
void stepm_features(const engine_step_shape *sh, double x[STEPM_N_TERMS]);
/* Modelled seconds of one step (>= STEPM_MIN_S). */
double stepm_eval_s(const stepm_params *p, const engine_step_shape *sh);

/* Parses params text; name is used in the FILE:LINE of errors. */
int stepm_parse(const char *text, const char *name, stepm_params *p, weft_err *err);
int stepm_load(const char *path, stepm_params *p, weft_err *err);
/* Writes p (the terms with a nonzero coefficient, or in mask) after the comment lines in
 * header (each line gets '# '; may be NULL). */
int stepm_save(const char *path, const stepm_params *p, unsigned mask, const char *header,
               weft_err *err);

/* One measured step of a trace. */
typedef struct stepm_obs {
    engine_step_shape sh;
    double step_ms, forward_ms;
    int run; /* index into stepm_trace.runs */
} stepm_obs;

typedef struct stepm_trace {
    stepm_obs *v;
    int n, cap;
    char **runs; /* "FILE: run line" per run (a file without run lines is one run) */
    int n_runs, cap_runs;
} stepm_trace;

/* Appends the steps of a --sched-trace file to t. Step lines need the 9-field format; other
 * known line kinds are skipped; anything else is an error naming FILE:LINE. */
int stepm_trace_read(const char *path, stepm_trace *t, weft_err *err);
/* The same from text (name for errors). */
int stepm_trace_parse(const char *text, const char *name, stepm_trace *t, weft_err *err);
void stepm_trace_free(stepm_trace *t);

typedef struct stepm_fit_info {
    int n_steps;   /* observations given */
    int n_used;    /* kept after trimming outliers */
    double median_abs_err_ms, median_abs_err_pct; /* over the kept steps */
} stepm_fit_info;

/* Least squares (normal equations, columns scaled) of step_ms on the features of the terms in
 * mask; then one refit without the steps whose residual exceeds 5 x the median absolute
 * residual (a shared machine's hiccups), unless that would keep fewer than half. -1 with a
 * message when a term cannot be identified (constant or collinear in these steps). */
int stepm_fit(const stepm_obs *obs, int n, unsigned mask, stepm_params *out,
              stepm_fit_info *info, weft_err *err);

#endif
