/* plan_greedy.c — the greedy split planners, the baselines the DP is measured against. Each
 * request starts at its eligible split point with the least KV memory-time (so the plan fits
 * whenever any plan does), and the visited request then upgrades to its least-server-work point
 * that still fits what the requests not yet visited leave of the budget. Visiting order is the
 * requests' arrival order, or decreasing efficiency (server work saved per KV unit spent, the
 * classic ratio rule for knapsacks). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "split/plan_internal.h"

typedef struct gkey {
    int i;
    double ratio;
} gkey;

static int by_ratio_desc(const void *a, const void *b) {
    const gkey *x = a, *y = b;
    if (x->ratio > y->ratio) return -1;
    if (x->ratio < y->ratio) return 1;
    return x->i - y->i; /* stable: earlier arrival first */
}

/* Least-work eligible point of request i using at most cap units (-1 if none). */
static int best_within(const split_space *sp, int i, long long cap) {
    int best = -1;
    for (int p = 0; p < sp->L1; p++) {
        size_t o = (size_t)i * sp->L1 + p;
        if (!sp->ok[o] || sp->u[o] > cap) continue;
        if (best < 0 || sp->c[o].server_work_s < sp->c[(size_t)i * sp->L1 + best].server_work_s)
            best = p;
    }
    return best;
}

int split_plan_greedy(const split_request *r, int n, const split_server *s,
                      split_greedy_order order, split_choice *out, split_plan_summary *sum,
                      weft_err *err) {
    if (order != SPLIT_GREEDY_ARRIVAL && order != SPLIT_GREEDY_EFFICIENCY)
        return weft_errf(err, "unknown greedy order %d", (int)order);
    split_space sp;
    if (split_space_build(r, n, s, &sp, err)) return -1;
    int *ps = malloc((size_t)n * sizeof *ps);
    gkey *keys = malloc((size_t)n * sizeof *keys);
    if (!ps || !keys) {
        free(ps), free(keys);
        split_space_free(&sp);
        return weft_errf(err, "out of memory");
    }
    split_space_fallback(&sp, ps); /* everyone at their fewest units */
    long long used = 0;
    for (int i = 0; i < n; i++) used += sp.u[(size_t)i * sp.L1 + ps[i]];
    if (sp.U == 0 || used <= sp.U) {
        long long left = sp.U == 0 ? 0 : sp.U - used;
        for (int i = 0; i < n; i++) {
            keys[i].i = i;
            size_t base = (size_t)i * sp.L1 + ps[i];
            int top = best_within(&sp, i, sp.U == 0 ? 0 : (long long)sp.U);
            size_t t = (size_t)i * sp.L1 + (top < 0 ? ps[i] : top);
            double saved = sp.c[base].server_work_s - sp.c[t].server_work_s;
            long long extra = (long long)sp.u[t] - sp.u[base];
            keys[i].ratio = extra <= 0 ? (saved > 0 ? DBL_MAX : 0) : saved / (double)extra;
        }
        if (order == SPLIT_GREEDY_EFFICIENCY) qsort(keys, (size_t)n, sizeof *keys, by_ratio_desc);
        for (int k = 0; k < n; k++) {
            int i = keys[k].i;
            long long base_u = sp.u[(size_t)i * sp.L1 + ps[i]];
            int p = best_within(&sp, i, base_u + left);
            if (p < 0) continue;
            long long pu = sp.u[(size_t)i * sp.L1 + p];
            if (sp.c[(size_t)i * sp.L1 + p].server_work_s <
                sp.c[(size_t)i * sp.L1 + ps[i]].server_work_s) {
                left -= pu - base_u;
                ps[i] = p;
            }
        }
    }
    split_space_emit(&sp, s, ps, out, sum);
    split_space_counts(r, n, out, sum);
    free(ps), free(keys);
    split_space_free(&sp);
    return 0;
}
