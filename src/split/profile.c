/* profile.c — `weft split profile`'s measurement and its JSON file. The per-layer cost of this
 * device is the slope of forward time against depth: the model is shallow-copied with
 * cfg.n_layers cut to two depths, each is timed (prefill of a prompt chunk; decode steps of a
 * batch of sequences) with the ordinary fwd_run, and the line through the two fastest times gives
 * per-layer cost (slope) and what does not depend on depth — embedding, final norm, head —
 * (intercept). Timed at two decode batch sizes, the step times give the fused step model
 * (per step, fixed + marginal x batch: the "step" object; docs/split.md). */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft/forward.h"
#include "weft/split_plan.h"
#include "workload/report.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* The fastest repetition: on a shared machine interference only ever adds time, so the
 * minimum is the steadiest estimate of what the device costs. */
static double fastest(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[0];
}

/* Times the model cut to k layers: *pre = fastest seconds of a P-token prefill, *dec = fastest
 * seconds of one decode step of B sequences (divided by B: per sequence). */
static int time_depth(const weft_model *m, tp_pool *pool, int k, int P, int B, int reps,
                      double *pre, double *dec, weft_err *err) {
    weft_model cut = *m; /* shallow: shares weights; only the depth differs */
    cut.cfg.n_layers = k;
    const weft_config *c = &cut.cfg;
    const int ctx = P + reps + 2;
    if (ctx > c->ctx_len && c->ctx_len > 0)
        return weft_errf(err, "profile needs a context of %d tokens, the model has %d", ctx,
                         c->ctx_len);
    const int maxt = P > B ? P : B;
    int rc = -1;
    kv_store *kv = kv_store_new(k, c->n_kv_heads * c->head_dim, ctx, B, err);
    weft_forward *f = kv ? fwd_new(&cut, pool, maxt, ctx, err) : NULL;
    float *logits = malloc((size_t)B * (size_t)c->vocab_size * sizeof *logits);
    int32_t *tok = malloc((size_t)maxt * sizeof *tok), *pos = malloc((size_t)maxt * sizeof *pos);
    int32_t *seq = malloc((size_t)maxt * sizeof *seq), *blk = malloc((size_t)B * sizeof *blk);
    uint8_t *want = malloc((size_t)maxt);
    kv_seq *seqs = malloc((size_t)B * sizeof *seqs);
    double *tp = malloc((size_t)reps * sizeof *tp), *td = malloc((size_t)reps * sizeof *td);
    if (!kv || !f) goto out;
    if (!logits || !tok || !pos || !seq || !blk || !want || !seqs || !tp || !td) {
        weft_errf(err, "out of memory for the profile");
        goto out;
    }
    for (int b = 0; b < B; b++) {
        blk[b] = b;
        seqs[b] = (kv_seq){&blk[b], 1};
    }
    /* Prefill: P tokens of sequence 0 (logits for the last), reps + 1 times (first is warm-up). */
    for (int r = 0; r <= reps; r++) {
        for (int i = 0; i < P; i++) {
            tok[i] = (int32_t)((i * 7919 + r * 104729 + 1) % c->vocab_size);
            pos[i] = i;
            seq[i] = 0;
            want[i] = i == P - 1;
        }
        weft_batch bt = {P, tok, pos, seq, want, 1, seqs};
        double t0 = now_s();
        if (fwd_run(f, kv, &bt, logits, err)) goto out;
        if (r > 0) tp[r - 1] = now_s() - t0;
    }
    /* Fill every sequence's context to P, then time decode steps of all B together. */
    for (int b = 1; b < B; b++) {
        for (int i = 0; i < P; i++) {
            tok[i] = (int32_t)((i * 31 + b * 17 + 3) % c->vocab_size);
            pos[i] = i;
            seq[i] = b;
            want[i] = 0;
        }
        weft_batch bt = {P, tok, pos, seq, want, B, seqs};
        if (fwd_run(f, kv, &bt, logits, err)) goto out;
    }
    for (int r = 0; r <= reps; r++) {
        for (int b = 0; b < B; b++) {
            tok[b] = (int32_t)((b * 13 + r * 7 + 5) % c->vocab_size);
            pos[b] = P + r;
            seq[b] = b;
            want[b] = 1;
        }
        weft_batch bt = {B, tok, pos, seq, want, B, seqs};
        double t0 = now_s();
        if (fwd_run(f, kv, &bt, logits, err)) goto out;
        if (r > 0) td[r - 1] = (now_s() - t0) / B;
    }
    *pre = fastest(tp, reps);
    *dec = fastest(td, reps);
    rc = 0;
out:
    fwd_free(f);
    kv_store_free(kv);
    free(logits), free(tok), free(pos), free(seq), free(blk), free(want), free(seqs), free(tp),
        free(td);
    return rc;
}

/* Per-layer slope and depth-independent intercept from the model cut to k_lo and k_hi layers,
 * decode steps of B sequences (costs per sequence). */
static int measure_cost(const weft_model *m, tp_pool *pool, int k_lo, int k_hi, int P, int B,
                        int reps, split_device_cost *c, weft_err *err) {
    double pre_lo, dec_lo, pre_hi = 0, dec_hi = 0;
    if (time_depth(m, pool, k_lo, P, B, reps, &pre_lo, &dec_lo, err)) return -1;
    if (k_hi != k_lo && time_depth(m, pool, k_hi, P, B, reps, &pre_hi, &dec_hi, err)) return -1;
    memset(c, 0, sizeof *c);
    if (k_hi == k_lo) {
        c->layer_prefill_s = pre_lo / P;
        c->layer_decode_s = dec_lo;
        return 0;
    }
    double sp = (pre_hi - pre_lo) / (k_hi - k_lo), sd = (dec_hi - dec_lo) / (k_hi - k_lo);
    /* Timing noise on a shared machine can tilt a short line; a layer never costs < 0. */
    if (sp < 0) sp = 0;
    if (sd < 0) sd = 0;
    c->layer_prefill_s = sp / P;
    c->layer_decode_s = sd;
    c->head_prefill_s = fmax(0, pre_lo - k_lo * sp);
    c->head_decode_s = fmax(0, dec_lo - k_lo * sd);
    return 0;
}

/* fixed + marginal x b through (b_lo, b_lo x_lo) and (b_hi, b_hi x_hi), x per sequence. */
static void fit_line(int b_lo, double x_lo, int b_hi, double x_hi, double *fixed, double *marg) {
    const double t_lo = b_lo * x_lo, t_hi = b_hi * x_hi;
    double mg = (t_hi - t_lo) / (b_hi - b_lo), fx = t_lo - mg * b_lo;
    if (mg < 0) { /* the bigger batch was not slower: all of it is fixed */
        mg = 0;
        fx = t_hi;
    }
    if (fx < 0) { /* no shared part visible: all of it per sequence */
        fx = 0;
        mg = x_hi;
    }
    *fixed = fx;
    *marg = mg;
}

void split_profile_step_fit(split_profile *p, int b_lo, const split_device_cost *x_lo, int b_hi,
                            const split_device_cost *x_hi) {
    p->step_lo = b_lo;
    p->step_hi = b_hi;
    fit_line(b_lo, x_lo->layer_decode_s, b_hi, x_hi->layer_decode_s, &p->step_layer_fixed_s,
             &p->step_layer_marginal_s);
    fit_line(b_lo, x_lo->head_decode_s, b_hi, x_hi->head_decode_s, &p->step_head_fixed_s,
             &p->step_head_marginal_s);
}

int split_profile_measure2(const weft_model *m, int threads, int prompt_tokens, int decode_batch,
                           int batch_lo, int reps, split_profile *out, weft_err *err) {
    const int L = m->cfg.n_layers;
    if (L < 1) return weft_errf(err, "model has no layers");
    if (prompt_tokens < 1 || prompt_tokens > 8192)
        return weft_errf(err, "profile prompt length %d out of range 1..8192", prompt_tokens);
    if (decode_batch < 1 || decode_batch > 256)
        return weft_errf(err, "profile decode batch %d out of range 1..256", decode_batch);
    if (batch_lo < 0 || (batch_lo > 0 && batch_lo >= decode_batch))
        return weft_errf(err, "profile low batch %d must be 0 (none) or 1..%d (below the decode "
                              "batch)", batch_lo, decode_batch - 1);
    if (reps < 1 || reps > 1000) return weft_errf(err, "profile reps %d out of range 1..1000", reps);
    tp_pool *pool = tp_new(threads);
    if (!pool) return weft_errf(err, "cannot start %d worker threads", threads);
    memset(out, 0, sizeof *out);
    /* Two depths as far apart as the model allows; a 1-layer model can only give one point,
     * so its intercept is taken as 0 (all cost counted per layer). */
    const int k_lo = 1, k_hi = L;
    int rc = measure_cost(m, pool, k_lo, k_hi, prompt_tokens, decode_batch, reps, &out->cost, err);
    split_device_cost lo;
    if (!rc && batch_lo > 0)
        rc = measure_cost(m, pool, k_lo, k_hi, prompt_tokens, batch_lo, reps, &lo, err);
    out->threads = tp_size(pool);
    tp_free(pool);
    if (rc) return -1;
    if (batch_lo > 0) split_profile_step_fit(out, batch_lo, &lo, decode_batch, &out->cost);
    report_cpu_name(out->device, sizeof out->device);
    out->n_layers = L;
    out->dim = m->cfg.dim;
    out->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    out->prompt_tokens = prompt_tokens;
    out->decode_batch = decode_batch;
    out->k_lo = k_lo;
    out->k_hi = k_hi;
    return 0;
}

int split_profile_measure(const weft_model *m, int threads, int prompt_tokens, int decode_batch,
                          int reps, split_profile *out, weft_err *err) {
    return split_profile_measure2(m, threads, prompt_tokens, decode_batch, 0, reps, out, err);
}

void split_profile_scale(split_profile *p, double factor) {
    p->cost.layer_prefill_s *= factor;
    p->cost.layer_decode_s *= factor;
    p->cost.head_prefill_s *= factor;
    p->cost.head_decode_s *= factor;
    p->cost_batched.layer_prefill_s *= factor;
    p->cost_batched.layer_decode_s *= factor;
    p->cost_batched.head_prefill_s *= factor;
    p->cost_batched.head_decode_s *= factor;
    p->step_layer_fixed_s *= factor;
    p->step_layer_marginal_s *= factor;
    p->step_head_fixed_s *= factor;
    p->step_head_marginal_s *= factor;
}

int split_profile_write_json(const split_profile *p, const char *path, weft_err *err) {
    json_t *root = json_pack(
        "{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:{s:f, s:f, s:f, s:f}}", "device",
        p->device, "model", p->model, "n_layers", p->n_layers, "dim", p->dim, "kv_dim", p->kv_dim,
        "threads", p->threads, "prompt_tokens", p->prompt_tokens, "decode_batch", p->decode_batch,
        "k_lo", p->k_lo, "k_hi", p->k_hi, "cost", "layer_prefill_s", p->cost.layer_prefill_s,
        "layer_decode_s", p->cost.layer_decode_s, "head_prefill_s", p->cost.head_prefill_s,
        "head_decode_s", p->cost.head_decode_s);
    if (!root) return weft_errf(err, "cannot build the profile JSON");
    if (p->batched_n > 1) {
        json_t *bt = json_pack("{s:i, s:{s:f, s:f, s:f, s:f}}", "decode_batch", p->batched_n,
                               "cost", "layer_prefill_s", p->cost_batched.layer_prefill_s,
                               "layer_decode_s", p->cost_batched.layer_decode_s,
                               "head_prefill_s", p->cost_batched.head_prefill_s,
                               "head_decode_s", p->cost_batched.head_decode_s);
        if (!bt || json_object_set_new(root, "batched", bt)) {
            json_decref(root);
            return weft_errf(err, "cannot build the profile JSON");
        }
    }
    if (p->step_hi > p->step_lo && p->step_lo >= 1) {
        json_t *st = json_pack("{s:i, s:i, s:f, s:f, s:f, s:f}", "batch_lo", p->step_lo,
                               "batch_hi", p->step_hi, "layer_fixed_s", p->step_layer_fixed_s,
                               "layer_marginal_s", p->step_layer_marginal_s, "head_fixed_s",
                               p->step_head_fixed_s, "head_marginal_s", p->step_head_marginal_s);
        if (!st || json_object_set_new(root, "step", st)) {
            json_decref(root);
            return weft_errf(err, "cannot build the profile JSON");
        }
    }
    if (p->io_token_s > 0 || p->io_frame_s > 0) {
        json_t *io = json_pack("{s:f, s:f, s:f}", "token_s", p->io_token_s, "frame_s",
                               p->io_frame_s, "token_batched_s", p->io_token_batched_s);
        if (!io || json_object_set_new(root, "io", io)) {
            json_decref(root);
            return weft_errf(err, "cannot build the profile JSON");
        }
    }
    if (p->has_link) {
        json_t *link = json_pack("{s:f, s:f}", "bw_Bps", p->link_bw_Bps, "rtt_s", p->link_rtt_s);
        if (!link || json_object_set_new(root, "link", link)) {
            json_decref(root);
            return weft_errf(err, "cannot build the profile JSON");
        }
    }
    int rc = 0;
    if (json_dump_file(root, path, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0)
        rc = weft_errf(err, "%s: cannot write the profile: %s", path, strerror(errno));
    json_decref(root);
    return rc;
}

static int get_num(json_t *o, const char *key, double *v, int required, weft_err *err,
                   const char *path) {
    json_t *x = json_object_get(o, key);
    if (!x) return required ? weft_errf(err, "%s: profile has no \"%s\"", path, key) : 1;
    if (!json_is_number(x)) return weft_errf(err, "%s: \"%s\" is not a number", path, key);
    *v = json_number_value(x);
    if (!isfinite(*v) || *v < 0) return weft_errf(err, "%s: \"%s\" = %g must be >= 0", path, key, *v);
    return 0;
}

int split_profile_read_json(const char *path, split_profile *out, weft_err *err) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return weft_errf(err, "%s: not a profile: %s (line %d)", path, je.text, je.line);
    int rc = -1;
    memset(out, 0, sizeof *out);
    json_t *cost = json_object_get(root, "cost");
    if (!json_is_object(root) || !json_is_object(cost)) {
        weft_errf(err, "%s: a profile is an object with a \"cost\" object", path);
        goto done;
    }
    const char *s = json_string_value(json_object_get(root, "device"));
    snprintf(out->device, sizeof out->device, "%s", s ? s : "");
    s = json_string_value(json_object_get(root, "model"));
    snprintf(out->model, sizeof out->model, "%s", s ? s : "");
    static const char *ints[] = {"n_layers", "dim", "kv_dim", "threads", "prompt_tokens",
                                 "decode_batch", "k_lo", "k_hi"};
    int *dst[] = {&out->n_layers, &out->dim, &out->kv_dim, &out->threads, &out->prompt_tokens,
                  &out->decode_batch, &out->k_lo, &out->k_hi};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        double v = 0;
        int r = get_num(root, ints[i], &v, i == 0, err, path);
        if (r < 0) goto done;
        if (v > 1e9 || v != floor(v)) {
            weft_errf(err, "%s: \"%s\" = %g must be a whole number", path, ints[i], v);
            goto done;
        }
        *dst[i] = (int)v;
    }
    if (out->n_layers < 1 || out->n_layers > SPLIT_MAX_LAYERS) {
        weft_errf(err, "%s: n_layers %d out of range 1..%d", path, out->n_layers, SPLIT_MAX_LAYERS);
        goto done;
    }
    if (get_num(cost, "layer_prefill_s", &out->cost.layer_prefill_s, 1, err, path) < 0 ||
        get_num(cost, "layer_decode_s", &out->cost.layer_decode_s, 1, err, path) < 0 ||
        get_num(cost, "head_prefill_s", &out->cost.head_prefill_s, 1, err, path) < 0 ||
        get_num(cost, "head_decode_s", &out->cost.head_decode_s, 1, err, path) < 0)
        goto done;
    json_t *bt = json_object_get(root, "batched");
    if (bt) {
        json_t *bc = json_object_get(bt, "cost");
        double nb = 0;
        if (!json_is_object(bt) || !json_is_object(bc)) {
            weft_errf(err, "%s: \"batched\" needs decode_batch and a cost object", path);
            goto done;
        }
        if (get_num(bt, "decode_batch", &nb, 1, err, path) < 0 ||
            get_num(bc, "layer_prefill_s", &out->cost_batched.layer_prefill_s, 1, err, path) < 0 ||
            get_num(bc, "layer_decode_s", &out->cost_batched.layer_decode_s, 1, err, path) < 0 ||
            get_num(bc, "head_prefill_s", &out->cost_batched.head_prefill_s, 1, err, path) < 0 ||
            get_num(bc, "head_decode_s", &out->cost_batched.head_decode_s, 1, err, path) < 0)
            goto done;
        if (nb < 2 || nb > 4096 || nb != floor(nb)) {
            weft_errf(err, "%s: batched decode_batch %g must be a whole number in 2..4096", path, nb);
            goto done;
        }
        out->batched_n = (int)nb;
    }
    json_t *st = json_object_get(root, "step");
    if (st) {
        double lo = 0, hi = 0;
        if (!json_is_object(st)) {
            weft_errf(err, "%s: \"step\" must be an object", path);
            goto done;
        }
        if (get_num(st, "batch_lo", &lo, 1, err, path) < 0 ||
            get_num(st, "batch_hi", &hi, 1, err, path) < 0 ||
            get_num(st, "layer_fixed_s", &out->step_layer_fixed_s, 1, err, path) < 0 ||
            get_num(st, "layer_marginal_s", &out->step_layer_marginal_s, 1, err, path) < 0 ||
            get_num(st, "head_fixed_s", &out->step_head_fixed_s, 1, err, path) < 0 ||
            get_num(st, "head_marginal_s", &out->step_head_marginal_s, 1, err, path) < 0)
            goto done;
        if (lo < 1 || hi <= lo || hi > 4096 || lo != floor(lo) || hi != floor(hi)) {
            weft_errf(err, "%s: step batch_lo %g and batch_hi %g must be whole numbers, "
                           "1 <= batch_lo < batch_hi <= 4096", path, lo, hi);
            goto done;
        }
        out->step_lo = (int)lo;
        out->step_hi = (int)hi;
    } else if (out->batched_n > 1) {
        /* an older file with two batch sizes ("cost" at decode_batch, "batched"): fit the step
         * model from them */
        const int b1 = out->decode_batch > 0 ? out->decode_batch : 1;
        if (out->batched_n > b1)
            split_profile_step_fit(out, b1, &out->cost, out->batched_n, &out->cost_batched);
        else if (out->batched_n < b1)
            split_profile_step_fit(out, out->batched_n, &out->cost_batched, b1, &out->cost);
    }
    json_t *io = json_object_get(root, "io");
    if (io) {
        if (!json_is_object(io) || get_num(io, "token_s", &out->io_token_s, 1, err, path) < 0 ||
            get_num(io, "frame_s", &out->io_frame_s, 1, err, path) < 0 ||
            get_num(io, "token_batched_s", &out->io_token_batched_s, 0, err, path) < 0) {
            if (!json_is_object(io)) weft_errf(err, "%s: \"io\" must be an object", path);
            goto done;
        }
    }
    json_t *link = json_object_get(root, "link");
    if (link) {
        if (!json_is_object(link) || get_num(link, "bw_Bps", &out->link_bw_Bps, 1, err, path) < 0 ||
            get_num(link, "rtt_s", &out->link_rtt_s, 1, err, path) < 0)
            goto done;
        if (out->link_bw_Bps <= 0) {
            weft_errf(err, "%s: link bandwidth must be > 0", path);
            goto done;
        }
        out->has_link = 1;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}
