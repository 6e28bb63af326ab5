/* pred_data.h — prompts with their true answer lengths for fitting and evaluating the length
 * model (`weft predict fit|eval`): "pairs" JSONL files (read with src/workload/dataset.c, response
 * lengths counted with the serving model's tokenizer) and the AlpacaEval folder (805 prompts,
 * lengths of 227 models' answers given in words, converted with PRED_WORDS_TO_TOKENS). Records
 * are split into train and test BY PROMPT TEXT (a hash), so the same prompt is on the same side
 * in every set; the offline fit, the default parameters and the baselines only see train. */
#ifndef WEFT_PRED_DATA_H
#define WEFT_PRED_DATA_H

#include <stdint.h>

#include "predict/pred_internal.h"
#include "weft/tokenizer.h"

/* Llama-2 tokens per whitespace word of English answer text, measured by
 * `weft predict ratio --data ../shared/data/pairs/{alpaca_cleaned_1000,vicuna_eval,
 * self_instruct_preds,mt_bench_turn1}.jsonl` (see docs/predict.md); used only where a data set
 * gives words instead of text (AlpacaEval). */
#define PRED_WORDS_TO_TOKENS 1.65

/* One in PRED_TEST_MOD prompts (by hash) is held out. */
#define PRED_TEST_MOD 5
/* Hyper-parameters are chosen on a validation split carved out of the TRAIN prompts only: one in
 * PRED_VAL_MOD of them, by other digits of the same hash (`weft predict tune`). */
#define PRED_VAL_MOD 5

typedef struct pred_prompt {
    char *text;
    int tokens; /* prompt length in the serving model's tokens */
    int set;
    int test;   /* 1: held out (scored by eval); 0: train; -1: ignored by fit and eval (tune
                 * sets the held-out prompts to -1 and its validation prompts to 1) */
    int n_resp; /* records (answers) with this prompt in its set */
    pred_features f;
} pred_prompt;

typedef struct pred_record {
    int prompt;   /* index into prompts */
    float tokens; /* true answer length, serving-model tokens */
    float weight; /* 1 / n_resp of its prompt: each distinct prompt counts once per set */
} pred_record;

typedef struct pred_set {
    char *name;
    int multi; /* many answers per prompt by design (AlpacaEval): also evaluated on medians */
} pred_set;

typedef struct pred_data {
    pred_set *sets;
    int n_sets;
    pred_prompt *prompts;
    int n_prompts, cap_prompts;
    pred_record *recs;
    int n_recs, cap_recs;
    double resp_words, resp_tokens; /* over pairs responses: the measured words->tokens ratio */
    double feature_seconds;         /* time spent in pred_features_text */
} pred_data;

/* Adds a pairs JSONL file or an AlpacaEval folder (instructions.jsonl +
 * lengths_all_models.tsv). tok counts prompt and response tokens. */
int pred_data_add(pred_data *d, const char *path, const weft_tokenizer *tok, weft_err *err);
void pred_data_free(pred_data *d);
/* Whether prompt text is held out (hash of the text). */
int pred_is_test_prompt(const char *text);
/* Cross-validation fold (0..k-1) of a prompt text, by a hash: the same text is in the same fold
 * in every set, and the folds are independent of the held-out and validation choices. */
int pred_prompt_fold(const char *text, int k);
/* Fold (0..k-1) of the stack's inner cross-validation inside a fit (stack.c): a second hash of
 * the text (salted), independent of the held-out, validation and outer-fold digits. */
int pred_prompt_inner_fold(const char *text, int k);
/* Whether a train prompt is in the validation part of the train split (tune only). */
int pred_is_val_prompt(const char *text);

/* ---- fit (fit.c) ---- */

typedef struct pred_fit_opts {
    double ridge;      /* L2 penalty on standardized coefficients */
    int n_trees;       /* boosted trees on the linear part's residuals (0: linear only) */
    double learn_rate; /* shrinkage of each tree */
    double min_leaf;   /* least prompt weight in a tree leaf */
    double set_cap;    /* a set with more train prompts weighs as this many (0: no cap) */
    int absolute;      /* trees boost absolute instead of squared error (toward medians) */
    double set_power;  /* a set of n train prompts weighs in total as n^set_power (1: every prompt
                        * alike; 0: every set alike), rescaled so the total stays the number of
                        * train prompts */
    double forget, prior_n, q_step, max_tokens; /* copied into the model for online use */
    int stack_folds;    /* inner folds of the per-kind stack (stack.c); 0: no stack */
    double stack_ridge; /* shrinkage of the stack toward the identity, in prompt weight */
    int stack_absolute; /* the stack fits each prompt's median answer by absolute loss (IRLS)
                         * instead of the mean log answer by squared loss */
} pred_fit_opts;

/* Defaults of the fit (chosen by `weft predict tune` on the validation part of the train
 * prompts; docs/predict.md). */
#define PRED_FIT_SET_POWER 1.0
#define PRED_FIT_MIN_LEAF 10.0
#define PRED_FIT_LEARN_RATE 0.1
#define PRED_FIT_TREES 200
#define PRED_FIT_ABSOLUTE 0
/* The per-kind stack (stack.c): inner folds (0: off by default — it is shipped only if the
 * pre-registered evaluation in docs/predict.md says so), ridge toward the identity (as strong as
 * this many prompts of evidence), and the least train weight of a kind to get its own stack. */
#define PRED_FIT_STACK_FOLDS 0
#define PRED_FIT_STACK_RIDGE 10.0
#define PRED_STACK_MIN_W 30.0
#define PRED_FIT_STACK_ABSOLUTE 0
void pred_fit_defaults(pred_fit_opts *o);
/* Fits on the train records of d. use[i] != 0 selects feature i (NULL: all text features);
 * the baselines are fits with one or no feature. */
pred_model *pred_fit(const pred_data *d, const pred_fit_opts *o, const int *use, weft_err *err);

/* med[p] = median log1p(tokens) of train prompt p's answers (fit.c). Returns 0 or -1 (OOM). */
int pred_prompt_medians(const pred_data *d, double *med);
/* pred_stack_fit_kind by absolute loss (iteratively reweighted; scratch holds n doubles). */
pred_stack pred_stack_fit_kind_lad(const double *y, const double *raw, const double *lp,
                                   const double *w, int n, double ridge, double min_w,
                                   double *scratch);
/* Fits m's per-kind stack (stack.c) from out-of-fold predictions of models fitted with o (no
 * stack) on o->stack_folds inner folds of the train prompts; pw[p], py[p]: prompt p's train
 * weight and weighted log target sum (pw 0: not a train prompt). Sets m->has_stack. */
int pred_fit_stack(const pred_data *d, const pred_fit_opts *o, pred_model *m, const double *pw,
                   const double *py, weft_err *err);

/* ---- evaluation (evaluate.c) ---- */

enum { PRED_EV_MODEL, PRED_EV_CONST, PRED_EV_PLEN, PRED_EV_N };

typedef struct pred_eval_row {
    char name[96];
    int n; /* held-out answers (or prompts, for a /median view) */
    double rho[PRED_EV_N], tau[PRED_EV_N], mae[PRED_EV_N], cov[PRED_EV_N];
    /* prompt-level (cluster) bootstrap, PRED_BOOT replicates, fixed seed: 90% interval of the
     * model's rho, of rho(model) - rho(plen), and the share of replicates where the model's rho
     * beats both baselines' (the constant's is 0) */
    double rho_lo, rho_hi, drho_lo, drho_hi, p_beats;
    /* the same replicates: 90% intervals of MAE(model) - MAE(const) and MAE(model) - MAE(plen)
     * (negative: the model's error is lower), and the share of replicates where the model beats
     * both baselines on rho AND on MAE (the "beats both" verdict) */
    double dmae_c_lo, dmae_c_hi, dmae_p_lo, dmae_p_hi, p_beats_all;
} pred_eval_row;

#define PRED_BOOT 1000

typedef struct pred_eval {
    pred_eval_row *rows; /* one per set, "/median" views of multi-answer sets, then "pooled" */
    int n_rows;
} pred_eval;

/* Scores the three predictors (the model, a constant, prompt length only) on the held-out
 * records of d. The pooled view takes every answer of single-answer sets and the per-prompt
 * median of multi-answer sets. */
int pred_evaluate(const pred_data *d, pred_model *const models[PRED_EV_N], pred_eval *out,
                  weft_err *err);
/* The same with n_boot bootstrap replicates (0: no intervals, as tune does per candidate). */
int pred_evaluate_boot(const pred_data *d, pred_model *const models[PRED_EV_N], int n_boot,
                       pred_eval *out, weft_err *err);
/* The same scoring from given estimates est[k][prompt] (only prompts with test == 1 are read):
 * cross-validation and online replay produce their own estimates per prompt. */
int pred_evaluate_est(const pred_data *d, pred_estimate *const est[PRED_EV_N], int n_boot,
                      pred_eval *out, weft_err *err);
void pred_eval_free(pred_eval *e);

/* ---- cross-validation and online replay (crossval.c) ---- */

/* Features predictor k uses: NULL (model: all), none (const), log_prompt_tokens only (plen). */
const int *pred_ev_use(int k);
/* Prequential replay: per set, the prompts with test == 1 in a fixed order (seed and the set's
 * name), each predicted by copies of models[k] (fresh per set) before its answers are seen, then
 * one online update per answer (pred_update for the model; pred_update_masked on the baselines'
 * own coefficients); multi-answer sets update once with the prompt's median answer. Writes
 * est[k][p] for those prompts. */
int pred_online_replay(const pred_data *d, pred_model *const models[PRED_EV_N], uint64_t seed,
                       pred_estimate *const est[PRED_EV_N], weft_err *err);
/* K-fold cross-validation by prompt (pred_prompt_fold): for each fold the model is fitted with
 * model_opts and the baselines with base_opts on the other folds (pred_fit, as `weft predict fit`
 * does), then the fold's prompts are predicted (online: replayed with pred_online_replay, seed +
 * fold). Prompts marked test == -1 take no part. On return every other prompt has test == 1 and
 * its out-of-fold estimates in est[k][p]. */
int pred_crossval(pred_data *d, const pred_fit_opts *model_opts, const pred_fit_opts *base_opts,
                  int folds, int online, uint64_t seed, pred_estimate *const est[PRED_EV_N],
                  weft_err *err);

#endif
