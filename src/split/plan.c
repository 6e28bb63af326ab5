/* plan.c — the option space every split planner works on (costs of each request at each split
 * point, eligibility, KV use in discrete units), plan summaries, and the two simple planners:
 * a fixed split for everyone (p = 0 is "no split") and one request joining a running server
 * (`--split auto`). The DP, greedy and exhaustive planners live in plan_dp.c, plan_greedy.c and
 * plan_exhaustive.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "split/plan_internal.h"

void split_space_free(split_space *sp) {
    free(sp->c);
    free(sp->u);
    free(sp->ok);
    free(sp->can_meet);
    free(sp->dev);
    free(sp->uc);
    free(sp->B);
    free(sp->room);
    memset(sp, 0, sizeof *sp);
}

int split_space_build(const split_request *r, int n, const split_server *s, split_space *sp,
                      weft_err *err) {
    memset(sp, 0, sizeof *sp);
    if (n < 1 || n > SPLIT_MAX_REQUESTS)
        return weft_errf(err, "number of requests %d out of range 1..%d", n, SPLIT_MAX_REQUESTS);
    if (!r || !s) return weft_errf(err, "no requests or no server");
    for (int i = 0; i < n; i++) {
        weft_err e2;
        if (split_request_check(&r[i], s, &e2))
            return weft_errf(err, "request %d: %s", i, e2.msg);
    }
    const int L1 = s->n_layers + 1;
    size_t cells = (size_t)n * L1;
    sp->n = n;
    sp->L1 = L1;
    sp->c = calloc(cells, sizeof *sp->c);
    sp->u = calloc(cells, sizeof *sp->u);
    sp->ok = calloc(cells, 1);
    sp->can_meet = calloc((size_t)n, 1);
    sp->nd = s->n_devices;
    sp->dev = calloc((size_t)n, sizeof *sp->dev);
    sp->uc = calloc(cells, sizeof *sp->uc);
    sp->B = calloc((size_t)(sp->nd > 0 ? sp->nd : 1) * L1, sizeof *sp->B);
    sp->room = calloc((size_t)(sp->nd > 0 ? sp->nd : 1) * L1, sizeof *sp->room);
    if (!sp->c || !sp->u || !sp->ok || !sp->can_meet || !sp->dev || !sp->uc || !sp->B || !sp->room) {
        split_space_free(sp);
        return weft_errf(err, "out of memory for a plan of %d requests x %d split points", n, L1);
    }
    /* Under the KV objective the budget is not a constraint (docs/split.md, "A KV-bound
     * server"): the plan that holds the least KV memory-time is sought anyway. */
    const double budget = s->kv_capacity_bytes > 0 && s->objective != SPLIT_OBJECTIVE_KV
                              ? s->kv_capacity_bytes * s->window_s
                              : 0;
    if (budget > 0) {
        sp->U = s->kv_units > 0 ? s->kv_units : SPLIT_DEFAULT_KV_UNITS;
        sp->unit_byte_s = budget / sp->U;
    }
    if (sp->nd > 0) {
        sp->Uc = s->device_units > 0 ? s->device_units
                 : sp->U > 0       ? SPLIT_DEFAULT_DEVICE_UNITS_2D
                                   : SPLIT_DEFAULT_DEVICE_UNITS;
        for (int d = 0; d < sp->nd; d++) {
            const split_client_device *v = &s->devices[d];
            const double unit = v->mem_bytes * s->window_s / sp->Uc;
            for (int q = 0; q < L1; q++) {
                double room = q == 0 ? v->mem_bytes
                                     : v->mem_bytes - v->fixed_bytes - q * v->weight_bytes_per_layer;
                sp->room[(size_t)d * L1 + q] = room;
                /* Round the budget down (and each use up), so a plan within units is within
                 * the true budget. */
                double b = floor(room * s->window_s / unit + 1e-9);
                sp->B[(size_t)d * L1 + q] = room < 0 ? -1 : (int32_t)(b > sp->Uc ? sp->Uc : b);
            }
        }
    }
    for (int i = 0; i < n; i++) {
        int best_lat = -1;
        sp->dev[i] = r[i].device;
        for (int p = 0; p < L1; p++) {
            split_choice *c = &sp->c[(size_t)i * L1 + p];
            if (split_cost_eval(&r[i], s, p, c, err)) {
                split_space_free(sp);
                return -1;
            }
            if (sp->U > 0) {
                /* Round up, so a plan within U units is within the true budget; the small
                 * slack keeps an exact multiple from rounding one unit too far. */
                double q = c->kv_byte_s / sp->unit_byte_s;
                double uq = ceil(q - 1e-9);
                sp->u[(size_t)i * L1 + p] = uq > sp->U ? sp->U + 1 : (int32_t)(uq < 0 ? 0 : uq);
            }
            if (r[i].device > 0) {
                const double unit = s->devices[r[i].device - 1].mem_bytes * s->window_s / sp->Uc;
                double uq = ceil(c->client_kv_byte_s / unit - 1e-9);
                sp->uc[(size_t)i * L1 + p] = uq > sp->Uc ? sp->Uc + 1 : (int32_t)(uq < 0 ? 0 : uq);
            }
            if (!c->allowed) continue;
            if (c->sla_ok) {
                sp->ok[(size_t)i * L1 + p] = 1;
                sp->can_meet[i] = 1;
            }
            if (best_lat < 0 || c->latency_s < sp->c[(size_t)i * L1 + best_lat].latency_s)
                best_lat = p;
        }
        if (!sp->can_meet[i] && best_lat >= 0) sp->ok[(size_t)i * L1 + best_lat] = 1;
    }
    return 0;
}

int split_space_min_units(const split_space *sp, int i) {
    int best = -1;
    for (int p = 0; p < sp->L1; p++) {
        size_t k = (size_t)i * sp->L1 + p;
        if (!sp->ok[k]) continue;
        if (best < 0) {
            best = p;
            continue;
        }
        size_t b = (size_t)i * sp->L1 + best;
        /* On a shared device the scarce thing is the device's memory: fewest layers there first. */
        if (sp->dev[i] > 0 && p != best) {
            if (p < best) best = p;
            continue;
        }
        if (sp->u[k] < sp->u[b] ||
            (sp->u[k] == sp->u[b] && sp->c[k].server_work_s < sp->c[b].server_work_s))
            best = p;
    }
    return best;
}

int split_space_peak_ok(const split_space *sp, int i, int q, int p) {
    if (sp->dev[i] == 0 || p == 0) return 1;
    if (p > q) return 0;
    const double room = sp->room[(size_t)(sp->dev[i] - 1) * sp->L1 + q];
    return sp->c[(size_t)i * sp->L1 + p].client_kv_peak_bytes <= room;
}

int split_space_device_fits(const split_space *sp, int d, const int *p) {
    int q = 0;
    long long units = 0;
    for (int i = 0; i < sp->n; i++)
        if (sp->dev[i] == d + 1 && p[i] > q) q = p[i];
    const int32_t b = sp->B[(size_t)d * sp->L1 + q];
    if (b < 0) return 0;
    for (int i = 0; i < sp->n; i++) {
        if (sp->dev[i] != d + 1) continue;
        if (!split_space_peak_ok(sp, i, q, p[i])) return 0;
        units += sp->uc[(size_t)i * sp->L1 + p[i]];
    }
    return units <= b;
}

void split_space_fallback(const split_space *sp, int *p) {
    for (int i = 0; i < sp->n; i++) p[i] = split_space_min_units(sp, i);
}

/* The lowest entry layer of the batch: the lowest served split point (p < L) and the running
 * batch's, L when nothing is served. */
static int min_entry(const split_server *s, const int *p, int n) {
    int m = s->batch_entry_known ? s->batch_min_entry : s->n_layers;
    for (int i = 0; i < n; i++)
        if (p[i] < s->n_layers && p[i] < m) m = p[i];
    return m;
}

double split_plan_work(const split_server *s, const split_choice *c, int n, double *attributed) {
    int m = s->batch_entry_known ? s->batch_min_entry : s->n_layers;
    for (int i = 0; i < n; i++)
        if (c[i].p < s->n_layers && c[i].p < m) m = c[i].p;
    double total = 0;
    for (int i = 0; i < n; i++) {
        double w = 0;
        if (c[i].p < s->n_layers)
            w = c[i].server_work_s + (c[i].p - m) * c[i].server_fixed_layer_s;
        if (attributed) attributed[i] = w;
        total += w;
    }
    return total;
}

double split_space_plan_work(const split_space *sp, const split_server *s, const int *p,
                             double *attributed) {
    const int m = min_entry(s, p, sp->n);
    double total = 0;
    for (int i = 0; i < sp->n; i++) {
        const split_choice *c = &sp->c[(size_t)i * sp->L1 + p[i]];
        double w = 0;
        if (p[i] < s->n_layers) w = c->server_work_s + (p[i] - m) * c->server_fixed_layer_s;
        if (attributed) attributed[i] = w;
        total += w;
    }
    return total;
}

double split_space_plan_objective(const split_space *sp, const split_server *s, const int *p) {
    if (s->objective != SPLIT_OBJECTIVE_KV) return split_space_plan_work(sp, s, p, NULL);
    double total = 0;
    for (int i = 0; i < sp->n; i++) total += sp->c[(size_t)i * sp->L1 + p[i]].kv_byte_s;
    return total;
}

void split_space_emit(const split_space *sp, const split_server *s, const int *p,
                      split_choice *out, split_plan_summary *sum) {
    split_plan_summary t;
    memset(&t, 0, sizeof t);
    long long units = 0;
    int all_met = 1;
    const int m = min_entry(s, p, sp->n);
    for (int i = 0; i < sp->n; i++) {
        const split_choice *c = &sp->c[(size_t)i * sp->L1 + p[i]];
        out[i] = *c;
        /* its part of the plan's true work: the fixed step part of layers [m, p) it shares */
        if (p[i] < s->n_layers) out[i].server_work_s += (p[i] - m) * c->server_fixed_layer_s;
        t.server_work_s += out[i].server_work_s;
        t.client_work_s += c->client_work_s;
        t.kv_byte_s += c->kv_byte_s;
        units += sp->u[(size_t)i * sp->L1 + p[i]];
        if (sp->can_meet[i] && !c->sla_ok) all_met = 0;
    }
    t.kv_budget_byte_s = s->kv_capacity_bytes > 0 ? s->kv_capacity_bytes * s->window_s : 0;
    t.compute_capacity_s = s->window_s * s->cores * (1 - s->load);
    t.fits_kv = sp->U == 0 || units <= sp->U;
    t.fits_compute = t.server_work_s <= t.compute_capacity_s;
    t.fits_devices = 1;
    for (int d = 0; d < sp->nd; d++) {
        if (!split_space_device_fits(sp, d, p)) t.fits_devices = 0;
        double w = 0;
        for (int i = 0; i < sp->n; i++)
            if (sp->dev[i] == d + 1) w += sp->c[(size_t)i * sp->L1 + p[i]].client_work_s;
        if (w / s->window_s > t.device_util_max) t.device_util_max = w / s->window_s;
    }
    t.feasible = all_met && t.fits_kv && t.fits_compute && t.fits_devices;
    if (sum) *sum = t;
}

void split_space_counts(const split_request *r, int n, const split_choice *out,
                        split_plan_summary *sum) {
    if (!sum) return;
    sum->n_requests = sum->n_sla_ok = sum->output_tokens = 0;
    for (int i = 0; i < n; i++) {
        sum->n_requests += r[i].count;
        sum->output_tokens += r[i].count * r[i].output_tokens;
        if (out[i].sla_ok) sum->n_sla_ok += r[i].count;
    }
}

int split_plan_fixed(const split_request *r, int n, const split_server *s, int p,
                     split_choice *out, split_plan_summary *sum, weft_err *err) {
    split_space sp;
    if (split_space_build(r, n, s, &sp, err)) return -1;
    if (p < 0 || p >= sp.L1) {
        split_space_free(&sp);
        return weft_errf(err, "split point %d out of range 0..%d", p, sp.L1 - 1);
    }
    int *ps = calloc((size_t)sp.n, sizeof *ps);
    if (!ps) {
        split_space_free(&sp);
        return weft_errf(err, "out of memory");
    }
    for (int i = 0; i < sp.n; i++) ps[i] = p;
    split_space_emit(&sp, s, ps, out, sum);
    split_space_counts(r, n, out, sum);
    free(ps);
    split_space_free(&sp);
    return 0;
}

int split_choose_one(const split_request *r, const split_server *s, double kv_left_byte_s,
                     split_choice *out, weft_err *err) {
    if (split_request_check(r, s, err)) return -1;
    int best = -1, least_kv = -1, fastest = -1;
    split_choice cb = {0}, ck = {0}, cf = {0};
    double best_cost = 0;
    for (int p = 0; p <= s->n_layers; p++) {
        double fx, fb;
        split_server_step_fixed(s, p, &fx, &fb);
        split_choice c;
        if (split_cost_eval(r, s, p, &c, err)) return -1;
        if (!c.allowed) continue;
        /* In the running batch (docs/split.md, "the fused step"): its steps pay the fixed part
         * of the layers [m, p) the batch's lowest entry m still runs; and entering below m
         * makes the b - 1 others' steps pay the fixed part of [p, m) too, which this request
         * causes (the decision counts it; the prediction is this request's own part). */
        double extra = 0;
        if (s->batch_entry_known && p < s->n_layers) {
            const int m = s->batch_min_entry;
            if (p > m) c.server_work_s += (p - m) * c.server_fixed_layer_s;
            if (p < m && fb > 1) extra = (m - p) * c.server_fixed_layer_s * (fb - 1);
        }
        const double cost = c.server_work_s + extra;
        if (fastest < 0 || c.latency_s < cf.latency_s) fastest = p, cf = c;
        if (!c.sla_ok) continue;
        if (least_kv < 0 || c.kv_byte_s < ck.kv_byte_s) least_kv = p, ck = c;
        if (kv_left_byte_s >= 0 && c.kv_byte_s > kv_left_byte_s) continue;
        if (best < 0 || cost < best_cost) best = p, cb = c, best_cost = cost;
    }
    if (best >= 0) *out = cb;
    else if (least_kv >= 0) *out = ck;
    else if (fastest >= 0) *out = cf;
    else return weft_errf(err, "no split point is allowed for this client");
    return out->p;
}
