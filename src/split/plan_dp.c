/* plan_dp.c — the exact split planner: a dynamic program over the server's KV budget and the
 * shared client devices' memory. The outer program is a multiple-choice knapsack over the
 * server's KV memory-time in discrete units: groups are taken in input order, best[k] after a
 * group is the least total server work of the groups so far within k units. A request with no
 * shared device is a group of its own (its eligible split points are the items). The requests of
 * one shared device form one group whose cost curve f_d[j] (least work within j server units) comes
 * from an inner program: for every placement depth q (layers whose weights the device holds), a
 * knapsack over the device's KV memory-time units left at q and the server units, with each
 * request's options limited to p <= q and to KV peaks that fit beside q layers; f_d is the minimum
 * over q. The plan is recovered from choice tables (the inner table is rebuilt for the chosen q
 * only). The fused step's fixed part couples all served requests (split_plan_work), so all of
 * this runs once per candidate lowest entry layer m (every request limited to p >= m and
 * charged as if the batch's lowest entry were m) and the least true work wins. Time, per m,
 * O(n (L+1) U) for requests without a device, plus for each device
 * O(sum_q n_d (L+1) (B_q+1) (U+1) + U^2); docs/split.md ("Dynamic program") derives it.
 * Under SPLIT_OBJECTIVE_KV each option is charged its server KV memory-time, the objective is
 * a plain sum (no lowest entry to enumerate: one program) and the server's KV budget is not a
 * constraint (U = 0): only the devices couple the requests. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "split/plan_internal.h"

/* Largest choice table (int16 cells) the DP allocates: 512 MiB. */
#define SPLIT_DP_MAX_CELLS (256 * 1024 * 1024)
/* Most inner-loop steps the device programs may take (a few seconds). */
#define SPLIT_DP_MAX_STEPS 4e9

typedef struct dev_group {
    int d;        /* device index (0-based) */
    int cnt;      /* member requests */
    int *m;       /* their indices, in input order */
    int qmax;     /* deepest eligible p among the members */
} dev_group;

/* Inner program of device group g at placement depth q: h over (client units c <= B, server
 * units k <= U), "at most" semantics. Fills f[k] = least work within B client units and k server
 * units (DBL_MAX: none). With pick != NULL records each member's p per cell. h and h2 hold
 * (B+1)*(U+1) doubles. Returns B, or -1 when q's weights do not fit. */
static int device_program(const split_space *sp, const uint8_t *ok, const double *wk,
                          const dev_group *g, int q, double *h, double *h2, int16_t *pick,
                          double *f) {
    const int L1 = sp->L1, U = sp->U;
    const int32_t B = sp->B[(size_t)g->d * L1 + q];
    if (B < 0) return -1;
    const size_t W = (size_t)U + 1, cells = ((size_t)B + 1) * W;
    for (size_t x = 0; x < cells; x++) h[x] = 0;
    for (int t = 0; t < g->cnt; t++) {
        const int i = g->m[t];
        int16_t *pk = pick ? pick + (size_t)t * cells : NULL;
        for (size_t x = 0; x < cells; x++) h2[x] = DBL_MAX;
        if (pk)
            for (size_t x = 0; x < cells; x++) pk[x] = -1;
        for (int p = 0; p <= q && p < L1; p++) {
            const size_t o = (size_t)i * L1 + p;
            if (!ok[o] || !split_space_peak_ok(sp, i, q, p)) continue;
            const size_t uc = (size_t)sp->uc[o], u = (size_t)sp->u[o];
            if (uc > (size_t)B || u > (size_t)U) continue;
            const double w = wk[o];
            for (size_t c = uc; c <= (size_t)B; c++) {
                const double *src = h + (c - uc) * W;
                double *dst = h2 + c * W;
                for (size_t k = u; k < W; k++) {
                    const double prev = src[k - u];
                    if (prev == DBL_MAX) continue;
                    const double v = prev + w;
                    if (v < dst[k]) {
                        dst[k] = v;
                        if (pk) pk[c * W + k] = (int16_t)p;
                    }
                }
            }
        }
        memcpy(h, h2, cells * sizeof *h);
    }
    for (size_t k = 0; k < W; k++) f[k] = h[(size_t)B * W + k];
    return B;
}

static void groups_free(dev_group *g, int ng) {
    if (!g) return;
    for (int k = 0; k < ng; k++) free(g[k].m);
    free(g);
}

int split_plan_dp(const split_request *r, int n, const split_server *s, split_choice *out,
                  split_plan_summary *sum, weft_err *err) {
    split_space sp;
    if (split_space_build(r, n, s, &sp, err)) return -1;
    const int U = sp.U, L1 = sp.L1;
    const size_t W = (size_t)U + 1;
    int rc = -1;
    dev_group *dg = NULL;
    double *cur = NULL, *nxt = NULL, *fd = NULL, *fq = NULL, *h = NULL, *h2 = NULL;
    int16_t *pick = NULL, *qb = NULL, *dpick = NULL;
    int32_t *give = NULL;
    int *ps = NULL, *order = NULL, *pm = NULL;
    uint8_t *okm = NULL;
    double *wm = NULL;
    int ng = 0, n_order = 0;

    /* Groups: every request without a device, and every device with requests, in the order of
     * their first request. order[] holds i >= 0 for a request, -(g+1) for device group g. */
    dg = calloc((size_t)(sp.nd > 0 ? sp.nd : 1), sizeof *dg);
    order = malloc((size_t)n * sizeof *order);
    ps = malloc((size_t)n * sizeof *ps);
    if (!dg || !order || !ps) goto oom;
    {
        int *gi = malloc((size_t)(sp.nd > 0 ? sp.nd : 1) * sizeof *gi);
        if (!gi) goto oom;
        for (int d = 0; d < sp.nd; d++) gi[d] = -1;
        for (int i = 0; i < n; i++) {
            const int d = sp.dev[i] - 1;
            if (d < 0) {
                order[n_order++] = i;
                continue;
            }
            if (gi[d] < 0) {
                gi[d] = ng;
                dg[ng].d = d;
                dg[ng].m = malloc((size_t)n * sizeof *dg[ng].m);
                if (!dg[ng].m) {
                    free(gi);
                    goto oom;
                }
                ng++;
                order[n_order++] = -ng;
            }
            dev_group *g = &dg[gi[d]];
            g->m[g->cnt++] = i;
            for (int p = 0; p < L1; p++)
                if (sp.ok[(size_t)i * L1 + p] && p > g->qmax) g->qmax = p;
        }
        free(gi);
    }
    /* Candidate lowest entry layers: a point some request can take, and no deeper than every
     * request can go (each must take p >= m, or p = L where that is eligible). */
    int m_top = L1 - 1;
    for (int i = 0; i < n; i++) {
        int top = -1;
        for (int p = 0; p < L1; p++)
            if (sp.ok[(size_t)i * L1 + p]) top = p;
        if (top < m_top) m_top = top;
    }
    int n_cand = 1;
    for (int m = 0; m <= m_top && m < L1 - 1; m++)
        for (int i = 0; i < n; i++)
            if (sp.ok[(size_t)i * L1 + m]) {
                n_cand++;
                break;
            }
    /* Size the device programs before running them (once per candidate lowest entry). */
    size_t max_cells = 0, max_pick = 0;
    double steps = 0;
    for (int k = 0; k < ng; k++)
        for (int q = 0; q <= dg[k].qmax; q++) {
            const int32_t B = sp.B[(size_t)dg[k].d * L1 + q];
            if (B < 0) continue;
            const size_t cells = ((size_t)B + 1) * W;
            if (cells > max_cells) max_cells = cells;
            if (cells * (size_t)dg[k].cnt > max_pick) max_pick = cells * (size_t)dg[k].cnt;
            steps += (double)cells * dg[k].cnt * (q + 1) * n_cand;
        }
    if ((size_t)n_order * W > SPLIT_DP_MAX_CELLS || max_pick > SPLIT_DP_MAX_CELLS ||
        steps > SPLIT_DP_MAX_STEPS) {
        split_space_free(&sp);
        groups_free(dg, ng);
        free(order), free(ps);
        return weft_errf(err, "DP of %d requests x %zu KV units (devices: %d units, %.3g steps) "
                              "exceeds its limits: use fewer kv_units or device_units", n, W,
                         sp.Uc, steps);
    }
    cur = malloc(W * sizeof *cur);
    nxt = malloc(W * sizeof *nxt);
    give = malloc((size_t)n_order * W * sizeof *give);
    pick = malloc((size_t)n_order * W * sizeof *pick);
    if (!cur || !nxt || !give || !pick) goto oom;
    if (ng > 0) {
        fd = malloc(W * sizeof *fd);
        fq = malloc(W * sizeof *fq);
        qb = malloc((size_t)n_order * W * sizeof *qb);
        h = malloc(max_cells * sizeof *h);
        h2 = malloc(max_cells * sizeof *h2);
        dpick = malloc((max_pick ? max_pick : 1) * sizeof *dpick);
        if (!fd || !fq || !qb || !h || !h2 || !dpick) goto oom;
    }

    /* The fused step's fixed part couples every served request (split_plan_work): solve the
     * program once per lowest entry layer m, each request limited to p >= m (or p = L, not
     * served) and charged its work as if the batch's lowest entry were m; the least of these
     * optima is the true optimum (a plan whose lowest entry is m* costs exactly its true work in
     * the program for m*, and at least its true work in any program for m <= m*). */
    okm = malloc((size_t)n * L1);
    wm = malloc((size_t)n * L1 * sizeof *wm);
    pm = malloc((size_t)n * sizeof *pm);
    if (!okm || !wm || !pm) goto oom;
    double best_true = DBL_MAX;
    int found = 0;
    const int Lsrv = L1 - 1;
    /* The KV objective (sum of kv_byte_s) has no fused-step coupling: one program, every
     * eligible point, each option charged its KV memory-time. */
    const int kvobj = s->objective == SPLIT_OBJECTIVE_KV;
    for (int m = 0; m <= Lsrv; m++) {
        /* only a point some request can take is a lowest entry; L: nobody served */
        int cand = m == Lsrv && m <= m_top;
        for (int i = 0; i < n && !cand && m <= m_top; i++) cand = sp.ok[(size_t)i * L1 + m];
        if (kvobj) {
            if (m > 0) break;
            cand = 1;
        }
        if (!cand) continue;
        const int me = s->batch_entry_known && s->batch_min_entry < m ? s->batch_min_entry : m;
        for (int i = 0; i < n; i++)
            for (int p = 0; p < L1; p++) {
                const size_t x = (size_t)i * L1 + p;
                okm[x] = sp.ok[x] && p >= m;
                /* the option's own objective, plus (work) the fixed part of [me, p) */
                wm[x] = split_space_item(&sp, s, x) +
                        (!kvobj && p < Lsrv ? (p - me) * sp.c[x].server_fixed_layer_s : 0);
            }
        for (size_t k = 0; k < W; k++) cur[k] = 0; /* no requests: no work, any budget */
        for (int o = 0; o < n_order; o++) {
            int32_t *gv = give + (size_t)o * W;
            int16_t *pk = pick + (size_t)o * W;
            if (order[o] >= 0) { /* one request: its split points are the items */
                const int i = order[o];
                for (size_t k = 0; k < W; k++) {
                    double best = DBL_MAX;
                    int16_t bp = -1;
                    for (int p = 0; p < L1; p++) {
                        size_t x = (size_t)i * L1 + p;
                        if (!okm[x]) continue;
                        int32_t u = sp.u[x];
                        if ((size_t)u > k) continue;
                        double prev = cur[k - (size_t)u];
                        if (prev == DBL_MAX) continue;
                        double v = prev + wm[x];
                        if (v < best) best = v, bp = (int16_t)p;
                    }
                    nxt[k] = best;
                    pk[k] = bp;
                    gv[k] = bp >= 0 ? sp.u[(size_t)i * L1 + bp] : 0;
                }
            } else { /* a shared device: its cost curve over server units, minimised over q */
                const dev_group *g = &dg[-order[o] - 1];
                int16_t *qk = qb + (size_t)o * W;
                for (size_t j = 0; j < W; j++) fd[j] = DBL_MAX, qk[j] = -1;
                for (int q = 0; q <= g->qmax; q++) {
                    if (device_program(&sp, okm, wm, g, q, h, h2, NULL, fq) < 0) continue;
                    for (size_t j = 0; j < W; j++)
                        if (fq[j] < fd[j]) fd[j] = fq[j], qk[j] = (int16_t)q;
                }
                for (size_t k = 0; k < W; k++) {
                    double best = DBL_MAX;
                    int32_t bj = -1;
                    for (size_t j = 0; j <= k; j++) {
                        if (fd[j] == DBL_MAX || cur[k - j] == DBL_MAX) continue;
                        double v = cur[k - j] + fd[j];
                        if (v < best) best = v, bj = (int32_t)j;
                    }
                    nxt[k] = best;
                    gv[k] = bj;
                    pk[k] = bj >= 0 ? qk[bj] : -1;
                }
            }
            double *t = cur;
            cur = nxt;
            nxt = t;
        }
        if (cur[U] == DBL_MAX) continue; /* nothing fits with every entry >= m */
        size_t k = (size_t)U;
        for (int o = n_order - 1; o >= 0; o--) {
            const int32_t j = give[(size_t)o * W + k];
            const int16_t pq = pick[(size_t)o * W + k];
            if (order[o] >= 0) {
                pm[order[o]] = pq;
            } else { /* rebuild the device's program at its chosen q, with choices */
                const dev_group *g = &dg[-order[o] - 1];
                const int32_t B = device_program(&sp, okm, wm, g, pq, h, h2, dpick, fq);
                size_t c = (size_t)B, kk = (size_t)j;
                const size_t cells = ((size_t)B + 1) * W;
                for (int t = g->cnt - 1; t >= 0; t--) {
                    const int i = g->m[t];
                    const int p = dpick[(size_t)t * cells + c * W + kk];
                    pm[i] = p;
                    c -= (size_t)sp.uc[(size_t)i * L1 + p];
                    kk -= (size_t)sp.u[(size_t)i * L1 + p];
                }
            }
            k -= (size_t)j;
        }
        const double tw = split_space_plan_objective(&sp, s, pm);
        if (!found || tw < best_true) {
            found = 1;
            best_true = tw;
            memcpy(ps, pm, (size_t)n * sizeof *ps);
        }
    }
    if (!found) split_space_fallback(&sp, ps);
    split_space_emit(&sp, s, ps, out, sum);
    split_space_counts(r, n, out, sum);
    rc = 0;
    goto done;
oom:
    weft_errf(err, "out of memory for the DP (%d requests x %zu units)", n, W);
done:
    free(cur), free(nxt), free(fd), free(fq), free(h), free(h2);
    free(pick), free(qb), free(dpick), free(give), free(ps), free(order);
    free(okm), free(wm), free(pm);
    groups_free(dg, ng);
    split_space_free(&sp);
    return rc;
}
