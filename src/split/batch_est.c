/* batch_est.c — the server's recent decode batch, measured: an exponentially weighted mean over
 * the engine's last steps of the sequences each step ran. The planner charges each token of a
 * request a + f / b (its own part plus its share of the step's fixed part f, docs/split.md);
 * summed over all tokens that is tokens * a + steps * f exactly when b = tokens / steps, the
 * step-weighted mean batch, so that is what is averaged (not the batch a request sees when it
 * connects, which misses the requests that arrive after it). */
#include <math.h>

#include "weft/split_plan.h"

double split_inv_batch_ewma_update(double prev, int n_seqs, int k, int window_tokens) {
    if (n_seqs <= 0 || k <= 0) return prev;
    if (window_tokens < 1) window_tokens = 1;
    const double v = 1.0 / n_seqs;
    if (!(prev > 0)) return v;
    const double keep = pow(1 - 1.0 / window_tokens, k); /* k samples of the same value */
    return keep * prev + (1 - keep) * v;
}

double split_batch_ewma_update(double prev, int n_seqs, int window_steps) {
    if (n_seqs <= 0) return prev; /* an idle step ran nothing: no batch to measure */
    if (window_steps < 1) window_steps = 1;
    if (!(prev > 0)) return n_seqs; /* the first measured step */
    const double w = 1.0 / window_steps;
    return (1 - w) * prev + w * n_seqs;
}
