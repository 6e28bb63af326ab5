/* plan_dp.c — the exact split planner: a multiple-choice knapsack solved by dynamic programming.
 * Requests are the groups, their eligible split points the items; an item's weight is its server
 * KV memory-time in discrete units and its cost its server work. best[r] after request i is the
 * least total server work of requests 0..i using at most r units; a choice table (one int16 per
 * request and unit) recovers the plan. O(n * (L+1) * U) time, O(n * U) memory. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "split/plan_internal.h"

int split_plan_dp(const split_request *r, int n, const split_server *s, split_choice *out,
                  split_plan_summary *sum, weft_err *err) {
    split_space sp;
    if (split_space_build(r, n, s, &sp, err)) return -1;
    const int U = sp.U, L1 = sp.L1;
    const size_t W = (size_t)U + 1;
    double *cur = malloc(W * sizeof *cur), *nxt = malloc(W * sizeof *nxt);
    int16_t *pick = malloc((size_t)n * W * sizeof *pick);
    int *ps = malloc((size_t)n * sizeof *ps);
    if (!cur || !nxt || !pick || !ps) {
        free(cur), free(nxt), free(pick), free(ps);
        split_space_free(&sp);
        return weft_errf(err, "out of memory for the DP table (%d requests x %zu units)", n, W);
    }
    for (size_t k = 0; k < W; k++) cur[k] = 0; /* no requests: no work, any budget */
    for (int i = 0; i < n; i++) {
        int16_t *pk = pick + (size_t)i * W;
        for (size_t k = 0; k < W; k++) {
            double best = DBL_MAX;
            int16_t bp = -1;
            for (int p = 0; p < L1; p++) {
                size_t o = (size_t)i * L1 + p;
                if (!sp.ok[o]) continue;
                int32_t u = sp.u[o];
                if ((size_t)u > k) continue;
                double prev = cur[k - (size_t)u];
                if (prev == DBL_MAX) continue;
                double v = prev + sp.c[o].server_work_s;
                if (v < best) best = v, bp = (int16_t)p;
            }
            nxt[k] = best;
            pk[k] = bp;
        }
        double *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (cur[U] == DBL_MAX) {
        split_space_fallback(&sp, ps);
    } else {
        size_t k = (size_t)U;
        for (int i = n - 1; i >= 0; i--) {
            int p = pick[(size_t)i * W + k];
            ps[i] = p;
            k -= (size_t)sp.u[(size_t)i * L1 + p];
        }
    }
    split_space_emit(&sp, s, ps, out, sum);
    split_space_counts(r, n, out, sum);
    free(cur), free(nxt), free(pick), free(ps);
    split_space_free(&sp);
    return 0;
}
