/* sched_predictor.c — wires the length model of predict.h into the engine's predictor hooks
 * (engine_predictor): predict -> pred_predict, refine -> pred_entropy of the end-of-prompt
 * logits added to the features, update -> pred_update (online learning). The engine calls all
 * three on its own thread, so one pred_model per engine needs no lock. */
#include "weft/engine.h"
#include "weft/predict.h"

static pred_estimate hook_predict(void *ctx, const pred_features *f) {
    return pred_predict(ctx, f);
}

static void hook_refine(void *ctx, pred_features *f, const float *logits, int n_vocab) {
    (void)ctx;
    pred_features_set_entropy(f, pred_entropy(logits, n_vocab));
}

static void hook_update(void *ctx, const pred_features *f, int actual_tokens) {
    pred_update(ctx, f, actual_tokens);
}

engine_predictor sched_predictor_hooks(pred_model *m) {
    engine_predictor p = {
        .ctx = m, .predict = hook_predict, .refine = hook_refine, .update = hook_update};
    return p;
}
