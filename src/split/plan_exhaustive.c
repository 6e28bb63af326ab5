/* plan_exhaustive.c — the reference split planner for small instances: tries every one of the
 * (L+1)^n assignments of split points, with the same discretised KV budget as the DP, and keeps
 * the least total server work among those where every request that can meet its SLA does and a
 * request that cannot sits at its lowest-latency point, and every shared client device's memory
 * holds (weights of its deepest split, each KV peak, the KV memory-time), scoring each plan with
 * its true server work (split_plan_work: the fused step's fixed part, paid for every layer some
 * served request runs). It decides eligibility from the cost
 * model directly (not from the shared eligibility table), so tests that compare it with the DP
 * check the DP's search and its option filtering both. Under SPLIT_OBJECTIVE_KV it keeps the
 * least server KV memory-time instead (no server KV budget then). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "split/plan_internal.h"

typedef struct ex_state {
    const split_space *sp;
    const split_server *s;
    const int *fastest; /* per request: lowest-latency allowed p */
    int *cur, *best;
    double best_work;
    int found;
} ex_state;

static int eligible(const ex_state *st, int i, int p) {
    const split_choice *c = &st->sp->c[(size_t)i * st->sp->L1 + p];
    if (!c->allowed) return 0;
    return st->sp->can_meet[i] ? c->sla_ok : p == st->fastest[i];
}

/* The shared client devices' memory, checked from the device parameters: the device holds the
 * weights of its deepest request's layers, every request's KV peak fits beside them, and the
 * KV memory-time (in the DP's units, rounded the same way) fits what the weights leave. */
static int devices_fit(const ex_state *st) {
    const split_space *sp = st->sp;
    const split_server *s = st->s;
    for (int d = 0; d < s->n_devices; d++) {
        const split_client_device *v = &s->devices[d];
        int q = 0;
        for (int i = 0; i < sp->n; i++)
            if (sp->dev[i] == d + 1 && st->cur[i] > q) q = st->cur[i];
        if (q == 0) continue; /* nothing held */
        const double room = v->mem_bytes - v->fixed_bytes - q * v->weight_bytes_per_layer;
        if (room < 0) return 0;
        const double unit = v->mem_bytes * s->window_s / sp->Uc;
        long long units = 0;
        for (int i = 0; i < sp->n; i++) {
            if (sp->dev[i] != d + 1) continue;
            const split_choice *c = &sp->c[(size_t)i * sp->L1 + st->cur[i]];
            if (st->cur[i] > 0 && c->client_kv_peak_bytes > room) return 0;
            units += sp->uc[(size_t)i * sp->L1 + st->cur[i]];
        }
        if ((double)units > floor(room * s->window_s / unit + 1e-9)) return 0;
    }
    return 1;
}

static void dfs(ex_state *st, int i, long long units) {
    const split_space *sp = st->sp;
    if (i == sp->n) {
        if (!devices_fit(st)) return;
        /* the plan's true work: the fused step's fixed part is not separable per request
         * (or, under SPLIT_OBJECTIVE_KV, the plan's server KV memory-time) */
        const double work = split_space_plan_objective(sp, st->s, st->cur);
        if (!st->found || work < st->best_work) {
            st->found = 1;
            st->best_work = work;
            memcpy(st->best, st->cur, (size_t)sp->n * sizeof *st->cur);
        }
        return;
    }
    for (int p = 0; p < sp->L1; p++) {
        if (!eligible(st, i, p)) continue;
        size_t o = (size_t)i * sp->L1 + p;
        long long nu = units + sp->u[o];
        if (sp->U > 0 && nu > sp->U) continue;
        st->cur[i] = p;
        dfs(st, i + 1, nu);
    }
}

int split_plan_exhaustive(const split_request *r, int n, const split_server *s, split_choice *out,
                          split_plan_summary *sum, weft_err *err) {
    double plans = 1;
    for (int i = 0; i < n && plans <= SPLIT_EXHAUSTIVE_MAX; i++) plans *= s->n_layers + 1;
    if (n >= 1 && plans > SPLIT_EXHAUSTIVE_MAX)
        return weft_errf(err, "exhaustive search over (%d+1)^%d plans exceeds the limit of %d",
                         s->n_layers, n, SPLIT_EXHAUSTIVE_MAX);
    split_space sp;
    if (split_space_build(r, n, s, &sp, err)) return -1;
    int *fastest = malloc((size_t)n * sizeof *fastest);
    int *cur = malloc((size_t)n * sizeof *cur), *best = malloc((size_t)n * sizeof *best);
    if (!fastest || !cur || !best) {
        free(fastest), free(cur), free(best);
        split_space_free(&sp);
        return weft_errf(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        fastest[i] = -1;
        for (int p = 0; p < sp.L1; p++) {
            const split_choice *c = &sp.c[(size_t)i * sp.L1 + p];
            if (c->allowed &&
                (fastest[i] < 0 || c->latency_s < sp.c[(size_t)i * sp.L1 + fastest[i]].latency_s))
                fastest[i] = p;
        }
    }
    ex_state st = {&sp, s, fastest, cur, best, DBL_MAX, 0};
    dfs(&st, 0, 0);
    if (!st.found) split_space_fallback(&sp, best);
    split_space_emit(&sp, s, best, out, sum);
    split_space_counts(r, n, out, sum);
    free(fastest), free(cur), free(best);
    split_space_free(&sp);
    return 0;
}
