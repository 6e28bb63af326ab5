/* pred_internal.h — what the files of src/predict/ share and the CLI (weft predict) and tests
 * may use beyond include/weft/predict.h: the feature indices, the cue lexicon lookup, the model's
 * layout, the parameter-file parser, the offline fit and the evaluation metrics. */
#ifndef WEFT_PRED_INTERNAL_H
#define WEFT_PRED_INTERNAL_H

#include <stddef.h>

#include "weft/predict.h"

/* ---- features (features.c) ---- */

/* Fixed feature indices; pred_feature_name(i) gives the name used in parameter files and
 * docs/predict.md. PF_ENTROPY is last: the text-only head uses indices [0, PF_ENTROPY). */
enum {
    PF_LOG_PROMPT_TOKENS,
    PF_LOG_LINES,
    PF_QUESTIONS,
    PF_SENTENCES,
    PF_ENUM_ITEMS,
    PF_CLAUSES,
    PF_FACTOID_WH,
    PF_WHY_HOW,
    PF_YES_NO,
    PF_OPEN_EXPLAIN,
    PF_CREATIVE,
    PF_COMPARE,
    PF_LIST_REQUEST,
    PF_LIST_N,
    PF_BREVITY,
    PF_DETAIL,
    PF_STEP_BY_STEP,
    PF_TARGET_WORDS,
    PF_TARGET_PRESENT,
    PF_SHORT_ANSWER_TASK,
    PF_TRANSFORM_TASK,
    PF_TRANSFORM_X_LEN,
    PF_CODE_REQUEST,
    PF_CODE_PRESENT,
    PF_LANG_MENTION,
    PF_NUMBERS,
    PF_MATHS,
    PF_VAGUE,
    PF_PRONOUN_AMBIG,
    PF_PP_ATTACH,
    PF_COORD_AMBIG,
    PF_POLYSEMY,
    PF_ROLEPLAY,
    PF_ADVICE,
    PF_DEFINITION,
    PF_OPINION,
    PF_CHIT_CHAT,
    PF_HARMFUL,
    PF_CONTEXT_BLOCK,
    PF_TOOL_CALL,
    PF_FIRST_PERSON,
    PF_IMPERATIVE,
    PF_LIMIT_CUE,
    PF_MULTI_PART,
    PF_CODE_X_LEN,
    PF_MATHS_X_LEN,
    PF_ENDS_OPEN,
    PF_CODE_COMPLETION,
    PF_DOC_WORDS,
    PF_DOCTESTS,
    PF_COMPLETION_X_DOC,
    PF_FERMI,
    PF_COUNTERFACTUAL,
    PF_COMPLETION_X_LEN,
    PF_MEAN_WORD_LEN,
    PF_INFORMAL,
    PF_COMPLETION_CASES,
    PF_GIVEN_CODE,
    PF_N_PARAMS,
    PF_ENTROPY,
    PF_COUNT
};

/* Bytes and words the cue scan reads (counts such as lines, numbers and code symbols cover the
 * whole prompt): cues live in the instruction, which is at the start or the end. */
#define PRED_CUE_HEAD_WORDS 3072
#define PRED_CUE_TAIL_WORDS 1024

/* The cue lexicon (cues.c): phrases of lower-case words mapped to a feature index. A phrase
 * word "#" matches any number. Sorted by phrase so the first word can be binary-searched. */
typedef struct pred_cue {
    const char *phrase;
    int feature;
} pred_cue;

/* The whole table, sorted; *n receives its length. */
const pred_cue *pred_cues(int *n);
/* Index of the first cue whose first word equals word[0..len) (lower case), or -1. */
int pred_cue_first(const char *word, size_t len);

/* ---- model (lenmodel.c) ---- */

#define PRED_HEAD_TEXT 0        /* features [0, PF_ENTROPY) */
#define PRED_HEAD_ENT 1         /* features [0, PF_COUNT) */
#define PRED_DIM (PF_COUNT + 1) /* + bias at index 0 of the coefficient vectors */

typedef struct pred_head {
    double w[PRED_DIM];            /* w[0] bias, w[1 + i] feature i (standardized) */
    double P[PRED_DIM * PRED_DIM]; /* RLS inverse-covariance state (not saved) */
    double q90;                    /* upper quantile of log1p residuals */
    long n_updates;
} pred_head;

/* Regression trees of the offline part (trees.c): complete binary trees of depth
 * PRED_TREE_DEPTH over raw text features, heap-ordered; node i goes right when
 * v[feat[i]] > thr[i], and a node with feat -1 always goes left (an early leaf). */
#define PRED_TREE_DEPTH 4
#define PRED_TREE_NODES ((1 << PRED_TREE_DEPTH) - 1)
#define PRED_TREE_LEAVES (1 << PRED_TREE_DEPTH)
#define PRED_MAX_TREES 2000

typedef struct pred_tree {
    int feat[PRED_TREE_NODES];
    float thr[PRED_TREE_NODES];
    float leaf[PRED_TREE_LEAVES];
} pred_tree;

/* Sum of the trees' outputs for features v (text features only). */
double pred_trees_eval(const pred_tree *t, int n, const float *v);
/* Gradient boosting: fits n_trees trees to targets r[0..n) with weights w, rows
 * X[i * nf .. i * nf + nf) (features 0..nf), each tree shrunk by lr, leaves holding at least
 * min_leaf weight. Squared error (absolute 0: splits and leaves on the residuals' means) or
 * absolute error (absolute 1: splits on the residuals' signs, leaves = their weighted medians,
 * so the model moves toward conditional medians). r is left holding the final residuals.
 * Returns 0 or -1 (out of memory). */
int pred_trees_fit(const float *X, int n, int nf, const double *w, double *r, int n_trees,
                   double lr, double min_leaf, int absolute, pred_tree *out);

/* Prompt kinds the stack (stack.c) tells apart from the text features alone, so that the same
 * kind is known when serving: code to complete (code_completion), maths word problems
 * (maths_x_len), other code (code_x_len or code_request), everything else (chat). */
enum { PRED_KIND_CHAT, PRED_KIND_COMPLETION, PRED_KIND_MATHS, PRED_KIND_CODE, PRED_KIND_COUNT };
int pred_prompt_kind(const float *v);
const char *pred_kind_name(int kind);

/* Per-kind stack of the model with prompt length: log1p prediction =
 * c0 + c1 * (trees + linear part) + c2 * log_prompt_tokens. Identity (0, 1, 0) = no stack. */
typedef struct pred_stack {
    double c0, c1, c2;
} pred_stack;

struct pred_model {
    float mean[PF_COUNT], scale[PF_COUNT]; /* z = (v - mean) / scale */
    /* has_stack 0 (files without 'stack' lines, baselines): predictions are trees + linear part,
     * bit for bit as before the stack existed */
    int has_stack;
    pred_stack stack[PRED_KIND_COUNT];
    pred_head head[2];
    /* log1p prediction = trees(v) + w . [1, z]: the trees are fixed after the offline fit, the
     * linear part is what the online update moves. */
    pred_tree *trees;
    int n_trees;
    double forget;     /* RLS forgetting factor lambda in (0, 1] */
    double prior_n;    /* strength of the starting coefficients, in requests */
    double q_step;     /* step of the online quantile tracker (log units) */
    double max_tokens; /* predictions are clamped to [1, max_tokens] */
};

/* The stack's part: stacked log1p prediction from the unstacked one (raw = trees + linear). */
double pred_stack_apply(const pred_model *m, const float *v, double raw);
/* Fits one kind's stack by weighted ridge least squares of y on [1, raw, lp] over n rows,
 * shrunk toward the identity (c1 = 1, c2 = 0) with the strength of `ridge` rows (raw and lp are
 * centred and lp scaled inside). Fewer than min_w total weight: identity. Returns the stack. */
pred_stack pred_stack_fit_kind(const double *y, const double *raw, const double *lp,
                               const double *w, int n, double ridge, double min_w);

/* A model with the given standardization and coefficients; P starts at I / prior_n. */
void pred_model_reset_online(pred_model *m);
/* Builds a model from a parameter text (the file format, docs/predict.md); name is used in
 * error messages ("FILE:LINE: ..."). */
pred_model *pred_model_parse(const char *text, size_t len, const char *name, weft_err *err);
/* Writes the parameter text of m to a malloc'd string. */
char *pred_model_format(const pred_model *m, weft_err *err);
/* log1p-space prediction of head h (h = PRED_HEAD_ENT only when f->has_entropy). */
double pred_predict_log(const pred_model *m, const pred_features *f, int *head_used);

/* The online update restricted to the text head's bias and the features with use[i] != 0 (NULL:
 * exactly pred_update): the other coefficients and their covariance stay untouched. Evaluation
 * uses it to give the baselines (constant: bias only; prompt length) the same online treatment
 * (recursive least squares with the same forgetting, prior and quantile tracker) as the model. */
void pred_update_masked(pred_model *m, const pred_features *f, int actual_tokens, const int *use);
/* A deep copy of m (trees included), online state and all. */
pred_model *pred_model_clone(const pred_model *m, weft_err *err);

/* The default parameter text compiled into the binary (generated from share/predict/). */
extern const char pred_default_params_text[];

/* ---- metrics (metrics.c) ---- */

/* Spearman rank correlation with average ranks for ties; 0 when either side is constant. */
double pred_spearman(const double *x, const double *y, int n);
/* Kendall's tau-b (ties corrected), O(n log n); 0 when either side is constant. */
double pred_kendall(const double *x, const double *y, int n);

#endif
