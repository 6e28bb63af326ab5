/* plan_greedy.c — the greedy split planners, the baselines the DP is measured against. Each
 * request starts at its eligible split point that uses the least of the scarce resources (the
 * fewest server KV units; on a shared client device, the fewest client layers), and the visited
 * request then upgrades to its least-server-work point that still fits: in what the requests not
 * yet visited leave of the server's KV budget, and in its device's memory beside the layers the
 * device already holds and the KV of the requests already placed there. Visiting order is the
 * requests' arrival order ("each request offloads as much as it can when it comes"), or decreasing
 * efficiency: server work saved per unit of resource spent, the resources normalised by their
 * budgets (the classic ratio rule for knapsacks, with the multi-resource normalisation). Both
 * decide per request from its own work alone (server_work_s: what a per-request rule sees);
 * their plans are scored with the true plan cost (split_plan_work, through split_space_emit),
 * the fused step's fixed part included. Under SPLIT_OBJECTIVE_KV "work" reads "server KV
 * memory-time" throughout (what a request saves, what it upgrades to; the ratio's denominator
 * is still the resources spent) and the server's KV budget is not a constraint. */
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

/* Memory request i needs on its device, alone, at split point p (0 without a device). */
static double device_need(const split_space *sp, const split_server *s, int i, int p) {
    if (sp->dev[i] == 0 || p == 0) return 0;
    const split_client_device *v = &s->devices[sp->dev[i] - 1];
    return v->fixed_bytes + p * v->weight_bytes_per_layer +
           sp->c[(size_t)i * sp->L1 + p].client_kv_peak_bytes;
}

/* Least-work (least-objective) eligible point of request i that fits alone: at most cap server
 * units and, on a device, its weights and KV within the device's memory (-1 if none). */
static int best_alone(const split_space *sp, const split_server *s, int i, long long cap) {
    int best = -1;
    for (int p = 0; p < sp->L1; p++) {
        size_t o = (size_t)i * sp->L1 + p;
        if (!sp->ok[o] || sp->u[o] > cap) continue;
        if (sp->dev[i] > 0 && p > 0) {
            int32_t b = sp->B[(size_t)(sp->dev[i] - 1) * sp->L1 + p];
            if (b < 0 || sp->uc[o] > b || !split_space_peak_ok(sp, i, p, p)) continue;
        }
        if (best < 0 || split_space_item(sp, s, o) < split_space_item(sp, s, (size_t)i * sp->L1 + best))
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
    split_space_fallback(&sp, ps); /* everyone at their least use */
    long long used = 0;
    for (int i = 0; i < n; i++) used += sp.u[(size_t)i * sp.L1 + ps[i]];
    if (sp.U == 0 || used <= sp.U) {
        long long left = sp.U == 0 ? 0 : sp.U - used;
        const long long cap = sp.U == 0 ? 0 : (long long)sp.U;
        for (int i = 0; i < n; i++) {
            keys[i].i = i;
            size_t base = (size_t)i * sp.L1 + ps[i];
            int top = best_alone(&sp, s, i, cap);
            if (top < 0) top = ps[i];
            size_t t = (size_t)i * sp.L1 + top;
            double saved = split_space_item(&sp, s, base) - split_space_item(&sp, s, t);
            double cost = 0;
            if (sp.U > 0) cost += ((double)sp.u[t] - sp.u[base]) / sp.U;
            if (sp.dev[i] > 0)
                cost += (device_need(&sp, s, i, top) - device_need(&sp, s, i, ps[i])) /
                        s->devices[sp.dev[i] - 1].mem_bytes;
            keys[i].ratio = cost <= 0 ? (saved > 0 ? DBL_MAX : 0) : saved / cost;
        }
        if (order == SPLIT_GREEDY_EFFICIENCY) qsort(keys, (size_t)n, sizeof *keys, by_ratio_desc);
        for (int k = 0; k < n; k++) {
            const int i = keys[k].i, cur = ps[i];
            const long long base_u = sp.u[(size_t)i * sp.L1 + cur];
            int best = cur;
            for (int p = 0; p < sp.L1; p++) {
                size_t o = (size_t)i * sp.L1 + p;
                if (!sp.ok[o] || sp.u[o] > base_u + left) continue;
                if (split_space_item(&sp, s, o) >= split_space_item(&sp, s, (size_t)i * sp.L1 + best))
                    continue;
                if (sp.dev[i] > 0) { /* the device with this request at p, the others as placed */
                    ps[i] = p;
                    int fits = split_space_device_fits(&sp, sp.dev[i] - 1, ps);
                    ps[i] = cur;
                    if (!fits) continue;
                }
                best = p;
            }
            left -= sp.u[(size_t)i * sp.L1 + best] - base_u;
            ps[i] = best;
        }
    }
    split_space_emit(&sp, s, ps, out, sum);
    split_space_counts(r, n, out, sum);
    free(ps), free(keys);
    split_space_free(&sp);
    return 0;
}
