/* predict.h — answer-length prediction from a prompt's uncertainty (after RT-LM).
 * Two halves: cheap text features (ambiguity, vagueness, open-endedness, explicit length cues,
 * multi-part questions, code/maths content, prompt length) computed in microseconds, plus one
 * model signal that costs nothing extra once prefill has run (entropy of the next-token
 * distribution at the end of the prompt); and a small length model that maps features to a
 * central estimate (p50) and an upper quantile (p90) of the output length in the serving model's
 * tokens. The model is fitted offline (`weft predict fit`), shipped as a small parameter file, and
 * updated online from every finished request. The scheduler (sched/) consumes pred_estimate. */
#ifndef WEFT_PREDICT_H
#define WEFT_PREDICT_H

#include <stddef.h>
#include "weft/error.h"

#define PRED_MAX_FEATURES 64

/* A prompt's feature vector. Entries are fixed by index (see pred_feature_name). The entropy
 * feature is present only once has_entropy is set (after prefill); before that the model uses
 * its text-only coefficients. */
typedef struct pred_features {
    int n;                        /* number of features filled (pred_feature_count()) */
    float v[PRED_MAX_FEATURES];
    int has_entropy;
} pred_features;

int pred_feature_count(void);
const char *pred_feature_name(int i);

/* Computes the text features of prompt (UTF-8, len bytes). n_prompt_tokens is the prompt's
 * length in the serving model's tokens (or an estimate; <= 0 means "estimate from bytes"). */
void pred_features_text(const char *prompt, size_t len, int n_prompt_tokens, pred_features *out);
/* Adds the end-of-prompt next-token entropy (nats) once prefill has produced the logits. */
void pred_features_set_entropy(pred_features *f, float entropy_nats);
/* Entropy (nats) of softmax(logits[0..n)), numerically stable. */
float pred_entropy(const float *logits, int n);

typedef struct pred_estimate {
    float p50;  /* central estimate of the output length, tokens */
    float p90;  /* upper quantile, tokens (>= p50) */
} pred_estimate;

typedef struct pred_model pred_model;

/* The built-in default parameters (fitted on ../shared/data, shipped with weft). */
pred_model *pred_model_default(weft_err *err);
pred_model *pred_model_load(const char *path, weft_err *err);
int pred_model_save(const pred_model *m, const char *path, weft_err *err);
void pred_model_free(pred_model *m);

pred_estimate pred_predict(const pred_model *m, const pred_features *f);
/* Online update from a finished request's true output length (tokens). Thread-safety is the
 * caller's: one model per engine thread, or guard it. */
void pred_update(pred_model *m, const pred_features *f, int actual_tokens);

#endif
