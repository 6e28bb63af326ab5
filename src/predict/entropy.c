/* entropy.c — the one model signal of the length predictor: the entropy of the next-token
 * distribution at the end of the prompt, read from the logits that prefill produces anyway
 * (after RT-LM, where a flat distribution marks a prompt the model is unsure how to answer). */
#include "predict/pred_internal.h"

#include <math.h>

float pred_entropy(const float *logits, int n) {
    if (!logits || n <= 0) return 0.0f;
    /* H = log Z - sum p (l - max), with Z = sum exp(l - max): one pass for the max, one for
     * both sums, in double so a 32,000-entry vocabulary loses nothing. */
    double mx = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (isnan(logits[i]) || logits[i] == INFINITY) return NAN;
        if (logits[i] > mx) mx = logits[i];
    }
    if (mx == -INFINITY) return NAN; /* every logit -inf: no distribution */
    double z = 0, s = 0;
    for (int i = 0; i < n; i++) {
        if (logits[i] == -INFINITY) continue;
        double d = (double)logits[i] - mx;
        double e = exp(d);
        z += e;
        s += e * d;
    }
    double h = log(z) - s / z;
    return (float)(h < 0 ? 0 : h);
}

void pred_features_set_entropy(pred_features *f, float entropy_nats) {
    if (!f || !isfinite(entropy_nats) || entropy_nats < 0) return; /* stays text-only */
    f->v[PF_ENTROPY] = entropy_nats;
    f->has_entropy = 1;
    if (f->n < PF_COUNT) f->n = PF_COUNT;
}
