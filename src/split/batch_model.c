/* batch_model.c — the counterfactual batch model of `--split auto`: which step each token of the
 * requests the server runs would join under a given set of split points, and what the steps cost.
 * A streamed token (p = 0) is in every step while its request runs; a split token (0 < p < L)
 * arrives one client round trip after the step that answered the previous one, joins the next
 * step that starts, and runs alone when no other token is ready. The fixed part of a step (the
 * head's classifier read, each layer's weights read and the pool's sync, for the layers at or
 * above the step's lowest entry) is paid once per step, so the batch a token runs in — and with
 * it the server's work — depends on every request's split point, not on one request's alone.
 * This file simulates those steps (split_batch_simulate) and chooses one new request's split
 * point against the requests already running, at plan level (split_choose_auto;
 * docs/split.md, "The counterfactual batch model"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "weft/split_plan.h"

#define TOKEN_ID_BYTES 4.0

static int finite_nonneg(double x) {
    return isfinite(x) && x >= 0;
}

int split_step_model_from_server(const split_server *s, split_step_model *m, weft_err *err) {
    memset(m, 0, sizeof *m);
    m->n_layers = s->n_layers;
    m->cores = s->cores > 0 ? s->cores : 1;
    m->io_token_s = s->io_token_s;
    m->io_frame_s = s->io_frame_s;
    if (s->batched_n > 1) {
        /* a per-sequence cost x1 alone and xB with B per step: a step of b costs f + a b with
         * f = (x1 - xB) B / (B - 1), a = x1 - f (each clamped to >= 0) */
        const double B = s->batched_n;
        double f = (s->cost.layer_decode_s - s->cost_batched.layer_decode_s) * B / (B - 1);
        if (!(f > 0)) f = 0;
        if (f > s->cost.layer_decode_s) f = s->cost.layer_decode_s;
        m->layer_fixed_s = f;
        m->layer_marginal_s = s->cost.layer_decode_s - f;
        f = (s->cost.head_decode_s - s->cost_batched.head_decode_s) * B / (B - 1);
        if (!(f > 0)) f = 0;
        if (f > s->cost.head_decode_s) f = s->cost.head_decode_s;
        m->head_fixed_s = f;
        m->head_marginal_s = s->cost.head_decode_s - f;
    } else if (s->step_fixed_layer_s > 0 && s->step_batch >= 1) {
        m->layer_fixed_s = s->step_fixed_layer_s;
        const double a = s->cost.layer_decode_s - s->step_fixed_layer_s / s->step_batch;
        m->layer_marginal_s = a > 0 ? a : 0;
        m->head_fixed_s = 0; /* no second batch size for the head: all of it per token */
        m->head_marginal_s = s->cost.head_decode_s;
    } else {
        return weft_errf(err, "the batch model needs the server's decode cost at two batch "
                              "sizes (a profile with \"batched\" or \"step\")");
    }
    return 0;
}

static int model_check(const split_step_model *m, weft_err *err) {
    if (m->n_layers < 1 || m->n_layers > SPLIT_MAX_LAYERS)
        return weft_errf(err, "batch model: n_layers %d out of range 1..%d", m->n_layers,
                         SPLIT_MAX_LAYERS);
    if (!finite_nonneg(m->layer_fixed_s) || !finite_nonneg(m->layer_marginal_s) ||
        !finite_nonneg(m->head_fixed_s) || !finite_nonneg(m->head_marginal_s) ||
        !finite_nonneg(m->io_token_s) || !finite_nonneg(m->io_frame_s))
        return weft_errf(err, "batch model: costs must be finite and >= 0");
    if (!isfinite(m->cores) || m->cores <= 0)
        return weft_errf(err, "batch model: cores %g must be > 0", m->cores);
    return 0;
}

double split_batch_simulate(const split_step_model *m, const split_active *a, int n,
                            const double *phase, double horizon_s, double *work, double *inv_batch,
                            double *end_s, double *tokens, weft_err *err) {
    if (model_check(m, err)) return -1;
    if (n < 0 || n > SPLIT_SIM_MAX_SEQS || (n > 0 && !a)) {
        weft_errf(err, "batch model: %d requests (at most %d)", n, SPLIT_SIM_MAX_SEQS);
        return -1;
    }
    if (!isfinite(horizon_s)) {
        weft_errf(err, "batch model: horizon %g must be finite", horizon_s);
        return -1;
    }
    const int L = m->n_layers;
    double total_tokens = 0;
    int recurring = 0;
    for (int i = 0; i < n; i++) {
        if (a[i].p < 0 || a[i].p >= L || a[i].tokens_left < 0 || !finite_nonneg(a[i].cycle_s) ||
            !finite_nonneg(a[i].start_s) || a[i].recur_tokens < 0 ||
            !finite_nonneg(a[i].recur_prefill_s) || (phase && !(phase[i] >= 0 && phase[i] <= 1))) {
            weft_errf(err, "batch model: request %d: p %d (0..%d), tokens %d, cycle %g", i, a[i].p,
                      L - 1, a[i].tokens_left, a[i].cycle_s);
            return -1;
        }
        total_tokens += a[i].tokens_left;
        recurring |= a[i].recur_tokens > 0;
    }
    int once = 0; /* requests that do not recur and still have tokens */
    for (int i = 0; i < n; i++)
        once += a[i].recur_tokens == 0 && a[i].tokens_left > 0;
    if (recurring && !(horizon_s > 0) && once == 0) {
        weft_errf(err, "batch model: only recurring requests and no horizon");
        return -1;
    }
    if (!(horizon_s > 0) && total_tokens * (n > 0 ? n : 1) > SPLIT_SIM_MAX_TOKENS) {
        weft_errf(err, "batch model: %.0f tokens x %d requests is more than %d to step",
                  total_tokens, n, SPLIT_SIM_MAX_TOKENS);
        return -1;
    }
    int *left = malloc(sizeof *left * (size_t)(n > 0 ? n : 1));
    double *next = malloc(sizeof *next * (size_t)(n > 0 ? n : 1));
    int *in = malloc(sizeof *in * (size_t)(n > 0 ? n : 1));
    if (!left || !next || !in) {
        free(left);
        free(next);
        free(in);
        weft_errf(err, "batch model: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        left[i] = a[i].tokens_left;
        next[i] = a[i].start_s + (a[i].p > 0 ? a[i].cycle_s * (phase ? phase[i] : 0.5) : 0);
        if (work) work[i] = 0;
        if (inv_batch) inv_batch[i] = 0;
        if (end_s) end_s[i] = 0;
        if (tokens) tokens[i] = 0;
    }
    double t = 0, total = 0, scanned = 0;
    int rc = 0;
    for (;;) {
        if (recurring && !(horizon_s > 0) && once == 0) break; /* the ones that end are done */
        int b = 0, lo = L;
        double wake = INFINITY;
        for (int i = 0; i < n; i++) {
            if (left[i] <= 0) continue;
            if (next[i] <= t) {
                in[b++] = i;
                if (a[i].p < lo) lo = a[i].p;
            } else if (next[i] < wake) {
                wake = next[i];
            }
        }
        if (b == 0) {
            if (!isfinite(wake)) break; /* everyone is done */
            t = wake;                   /* idle until the next hidden state arrives */
            if (horizon_s > 0 && t >= horizon_s) break;
            continue;
        }
        if (horizon_s > 0 && t >= horizon_s) break;
        scanned += n;
        if (scanned > SPLIT_SIM_MAX_TOKENS) {
            rc = weft_errf(err,
                           "batch model: more than %d token x request steps before the "
                           "horizon %g s",
                           SPLIT_SIM_MAX_TOKENS, horizon_s);
            break;
        }
        const double fixed = m->head_fixed_s + m->layer_fixed_s * (L - lo);
        double step = fixed;
        for (int k = 0; k < b; k++)
            step += m->head_marginal_s + m->layer_marginal_s * (L - a[in[k]].p);
        t += step; /* the step's wall seconds (the profile's costs are the server's seconds) */
        for (int k = 0; k < b; k++) {
            const int i = in[k];
            const double own = m->head_marginal_s + m->layer_marginal_s * (L - a[i].p);
            const double io = a[i].p == 0 ? m->io_token_s : m->io_frame_s;
            double w = m->cores * (fixed / b + own) + io;
            if (tokens) tokens[i] += 1;
            if (inv_batch) inv_batch[i] += 1.0 / b;
            left[i]--;
            if (end_s && left[i] == 0) end_s[i] = t;
            if (left[i] == 0 && a[i].recur_tokens == 0) once--;
            next[i] = a[i].p > 0 ? t + a[i].cycle_s : t;
            if (left[i] == 0 && a[i].recur_tokens > 0 && (!(horizon_s > 0) || t < horizon_s)) {
                /* its client's next request, like it, at once: its prefill now, its first
                 * decode state a cycle later (a streamer's next step) */
                left[i] = a[i].recur_tokens;
                w += a[i].recur_prefill_s;
            }
            total += w;
            if (work) work[i] += w;
        }
    }
    free(left);
    free(next);
    free(in);
    if (rc) return -1;
    return total;
}

/* r's cycle at split p: its client's layers for one token and the link's round trip with one
 * hidden-state row up and one token id down (the cost model's per-step client and link parts). */
static double cycle_at(const split_request *r, int p) {
    return p * r->client.layer_decode_s + r->link_rtt_s +
           r->hidden_bytes_per_token / r->link_bw_Bps + TOKEN_ID_BYTES / r->link_bw_Bps;
}

/* a request's prefill on the server at p, CPU-seconds (the cost model's, with its first frame) */
static double prefill_at(const split_server *s, int prompt_tokens, int p) {
    const int ls = s->n_layers - p;
    if (ls <= 0 || prompt_tokens <= 0) return 0;
    const double pre = ls * prompt_tokens * s->cost.layer_prefill_s + s->cost.head_prefill_s;
    return s->cores * pre + (p == 0 ? s->io_token_s : s->io_frame_s);
}

static double prefill_work(const split_request *r, const split_server *s, int p) {
    return prefill_at(s, r->prompt_tokens, p);
}

/* The simulation state one choice shares between its candidate split points. */
typedef struct auto_ctx {
    const split_request *r;
    const split_server *s;
    const split_step_model *m;
    const split_active *act;
    int n_act, n_mov;
    split_active *w; /* the others as simulated, then r */
    double *ph, *wk, *ib, *tk, *wk0, *tk0;
    split_active *w0; /* the others as they are (w is changed per world and restored) */
    double base;      /* the others' total without r (as they are, no recurrence) */
} auto_ctx;

static int ctx_open(auto_ctx *x, const split_request *r, const split_server *s,
                    const split_step_model *m, const split_active *act, int n_act, weft_err *err) {
    memset(x, 0, sizeof *x);
    if (split_request_check(r, s, err) || model_check(m, err)) return -1;
    if (m->n_layers != s->n_layers)
        return weft_errf(err, "batch model: %d layers, server %d", m->n_layers, s->n_layers);
    if (n_act < 0 || n_act + 1 > SPLIT_SIM_MAX_SEQS || (n_act > 0 && !act))
        return weft_errf(err, "batch model: %d active requests (at most %d)", n_act,
                         SPLIT_SIM_MAX_SEQS - 1);
    const int L = s->n_layers, n = n_act + 1;
    x->r = r;
    x->s = s;
    x->m = m;
    x->act = act;
    x->n_act = n_act;
    x->w = malloc(sizeof *x->w * (size_t)n);
    x->ph = malloc(sizeof *x->ph * (size_t)n);
    x->wk = malloc(sizeof *x->wk * (size_t)n);
    x->ib = malloc(sizeof *x->ib * (size_t)n);
    x->tk = malloc(sizeof *x->tk * (size_t)n);
    x->wk0 = malloc(sizeof *x->wk0 * (size_t)n);
    x->tk0 = malloc(sizeof *x->tk0 * (size_t)n);
    x->w0 = malloc(sizeof *x->w0 * (size_t)n);
    if (!x->w || !x->ph || !x->wk || !x->ib || !x->tk || !x->wk0 || !x->tk0 || !x->w0)
        return weft_errf(err, "batch model: out of memory");
    /* the others as they are; a split one whose cycle is not measured yet takes the mean of
     * the measured ones (or, with none, this client's own cycle at its split point) */
    double csum = 0;
    int cn = 0;
    for (int i = 0; i < n_act; i++)
        if (act[i].p > 0 && act[i].cycle_s > 0) {
            csum += act[i].cycle_s;
            cn++;
        }
    for (int i = 0; i < n_act; i++) {
        x->w[i] = act[i];
        if (x->w[i].p >= L) x->w[i].p = L - 1; /* cannot happen from the engine: clamp */
        if (x->w[i].p < 0) x->w[i].p = 0;
        if (x->w[i].p > 0 && !(x->w[i].cycle_s > 0))
            x->w[i].cycle_s = cn ? csum / cn : cycle_at(r, x->w[i].p);
        x->w[i].start_s = 0;
        x->ph[i] = 0.5; /* an arbitrary point of its cycle: half of one to go on average */
        x->n_mov += act[i].movable != 0;
    }
    for (int i = 0; i < n_act; i++) {
        x->w[i].recur_tokens = 0; /* the prediction's world: as they are */
        x->w[i].recur_prefill_s = 0;
        x->w0[i] = x->w[i];
    }
    if (n_act > 0) {
        x->base = split_batch_simulate(m, x->w, n_act, x->ph, 0, NULL, NULL, NULL, NULL, err);
        if (x->base < 0) return -1;
    }
    return 0;
}

static void ctx_close(auto_ctx *x) {
    free(x->w);
    free(x->ph);
    free(x->wk);
    free(x->ib);
    free(x->tk);
    free(x->wk0);
    free(x->tk0);
    free(x->w0);
}

/* r at p: its choice (latency with its simulated batch; server_work_s its predicted part),
 * the plan-level objective (server CPU-seconds per token) and its tokens' batch. */
static int eval_at(auto_ctx *x, int p, split_choice *c, double *obj, double *bsim, weft_err *err) {
    const split_request *r = x->r;
    const split_server *s = x->s;
    const int L = s->n_layers, n_act = x->n_act, n = n_act + 1;
    const int Dd = r->output_tokens - 1;
    double pred = 0;
    *bsim = 1;
    /* the prediction: the others as they are, r once */
    for (int i = 0; i < n_act; i++)
        x->w[i].recur_tokens = 0;
    if (p < L) {
        x->w[n_act] = (split_active){p, Dd, p > 0 ? cycle_at(r, p) : 0, 0, 0, 0, 0, 0};
        x->ph[n_act] = 1; /* its first decode state: one cycle after its prefill's step */
        const double with =
            split_batch_simulate(x->m, x->w, n, x->ph, 0, x->wk, x->ib, NULL, NULL, err);
        if (with < 0) return -1;
        pred = prefill_work(r, s, p) + (with - x->base);
        if (Dd > 0 && x->ib[n_act] > 0) *bsim = Dd / x->ib[n_act];
    }
    /* The objective, at plan level: r's cost plus what it changes in the others' steps, in the
     * world where every client keeps sending requests like its current one as soon as one ends
     * (a closed loop: the active requests with recur_tokens > 0), and the others with r's profile
     * take r's choice: where r streams the movable requests stream, where r splits the movable
     * streaming ones split too (at p, with r's cycle; the split ones keep theirs). The world with
     * r runs until r (and every request that does not recur) is done; the world without r runs
     * as long. */
    for (int i = 0; i < n_act; i++) {
        const split_active *o = &x->act[i];
        if (o->movable && p == 0) x->w[i].p = 0;              /* they stream too */
        if (o->movable && p > 0 && p < L && x->w[i].p == 0) { /* they split too, like r */
            x->w[i].p = p;
            x->w[i].cycle_s = cycle_at(r, p);
        }
        x->w[i].recur_tokens = o->recur_tokens;
        x->w[i].recur_prefill_s = prefill_at(s, o->prompt_tokens, x->w[i].p);
    }
    double delta = 0;
    if (p < L) {
        double *end = x->ib; /* free again: r's batch is taken above */
        const double with =
            split_batch_simulate(x->m, x->w, n, x->ph, 0, x->wk, NULL, end, x->tk, err);
        double T = 0;
        for (int i = 0; i < n && with >= 0; i++)
            if (i == n_act || x->w[i].recur_tokens == 0) T = end[i] > T ? end[i] : T;
        double without = 0;
        if (with >= 0 && n_act > 0 && T > 0)
            without =
                split_batch_simulate(x->m, x->w, n_act, x->ph, T, x->wk0, NULL, NULL, x->tk0, err);
        if (with < 0 || without < 0) {
            delta = -1;
        } else {
            /* r's own work, plus each other's work with r minus what the same tokens of it cost
             * without r (per token): compared token for token, not over the same time, since
             * on a busy server r's steps push the others' later work past any time horizon */
            delta = x->wk[n_act];
            for (int i = 0; i < n_act; i++) {
                const double c0 = x->tk0[i] > 0 ? x->wk0[i] / x->tk0[i] : 0;
                delta += x->wk[i] - (x->tk0[i] > 0 ? c0 * x->tk[i] : x->wk[i]);
            }
        }
    }
    memcpy(x->w, x->w0, sizeof *x->w * (size_t)n_act); /* back as they are */
    if (delta == -1) return -1;
    *obj = p < L ? prefill_work(r, s, p) + delta : 0;
    /* latency: the cost model with the batch this request's tokens ran in */
    split_server s2 = *s;
    s2.batch = *bsim;
    s2.batch_split = *bsim;
    s2.batch_entry_known = 0;
    if (split_cost_eval(r, &s2, p, c, err)) return -1;
    c->server_work_s = r->count * pred;
    return 0;
}

int split_predict_auto(const split_request *r, const split_server *s, const split_step_model *m,
                       const split_active *act, int n_act, int p, split_choice *out,
                       split_auto_detail *detail, weft_err *err) {
    auto_ctx x;
    int rc = -1;
    double obj, bsim;
    if (ctx_open(&x, r, s, m, act, n_act, err) == 0) {
        if (p < 0 || p > s->n_layers)
            weft_errf(err, "split point %d out of range 0..%d", p, s->n_layers);
        else if (eval_at(&x, p, out, &obj, &bsim, err) == 0) {
            rc = p;
            if (detail) *detail = (split_auto_detail){bsim, obj, -1, n_act, x.n_mov};
        }
    }
    ctx_close(&x);
    return rc;
}

int split_choose_auto(const split_request *r, const split_server *s, const split_step_model *m,
                      const split_active *act, int n_act, split_choice *out,
                      split_auto_detail *detail, weft_err *err) {
    auto_ctx x;
    int rc = -1;
    if (ctx_open(&x, r, s, m, act, n_act, err) != 0) goto done;
    const int L = s->n_layers;
    int best = -1, fast = -1;
    double best_obj = INFINITY, best_lat = INFINITY, stream_world = -1;
    double best_batch = 1, fast_batch = 1;
    split_choice best_c = {0}, fast_c = {0};
    for (int p = 0; p <= L; p++) {
        if (p > r->client_max_layers || (p == L && !r->client_can_head)) continue;
        split_choice c;
        double obj, bsim;
        if (eval_at(&x, p, &c, &obj, &bsim, err)) goto done;
        if (p == 0) stream_world = c.sla_ok ? obj : -1;
        if (c.latency_s < best_lat) {
            best_lat = c.latency_s;
            fast = p;
            fast_c = c;
            fast_batch = bsim;
        }
        if (c.sla_ok && obj < best_obj - 1e-12) {
            best_obj = obj;
            best = p;
            best_c = c;
            best_batch = bsim;
        }
    }
    if (best < 0) { /* no allowed p meets the SLA: the fastest */
        best = fast;
        best_c = fast_c;
        best_batch = fast_batch;
    }
    if (best < 0) {
        weft_errf(err, "no allowed split point (client_max_layers %d)", r->client_max_layers);
        goto done;
    }
    *out = best_c;
    if (detail)
        *detail = (split_auto_detail){best_batch, isfinite(best_obj) ? best_obj : -1, stream_world,
                                      n_act, x.n_mov};
    rc = best;
done:
    ctx_close(&x);
    return rc;
}
