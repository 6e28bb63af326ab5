/* lenmodel.c — the length model: a linear regression on log(1 + output tokens) over the
 * standardized features, with two heads (text-only before prefill, text + entropy after), an
 * upper quantile taken from the residuals, and an online update from every finished request:
 * recursive least squares with a forgetting factor for the coefficients and a stochastic
 * quantile tracker for the residual p90, so the model follows the served model and its traffic.
 * Boosted trees (trees.c), fitted offline on the linear part's residuals, add the interactions;
 * they stay fixed online.
 * Parameter files are parsed and written in params.c; the offline fit is in fit.c. */
#include "predict/pred_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRED_Q 0.9   /* the upper quantile the model reports */
#define Z_CLAMP 12.0 /* standardized features are clipped so one odd prompt cannot explode */

static int head_dims(int h) {
    return h == PRED_HEAD_TEXT ? PF_ENTROPY : PF_COUNT;
}

void pred_model_reset_online(pred_model *m) {
    for (int h = 0; h < 2; h++) {
        pred_head *hd = &m->head[h];
        int k = head_dims(h) + 1;
        memset(hd->P, 0, sizeof hd->P);
        for (int i = 0; i < k; i++)
            hd->P[i * PRED_DIM + i] = 1.0 / m->prior_n;
        hd->n_updates = 0;
    }
}

/* x[0] = 1, x[1 + i] = standardized feature i, for the dims of head h. */
static void design_row(const pred_model *m, const pred_features *f, int h, double *x) {
    int k = head_dims(h);
    x[0] = 1.0;
    for (int i = 0; i < k; i++) {
        double v = i < f->n ? f->v[i] : m->mean[i];
        double z = ((double)v - m->mean[i]) / m->scale[i];
        if (!isfinite(z)) z = 0;
        if (z > Z_CLAMP) z = Z_CLAMP;
        if (z < -Z_CLAMP) z = -Z_CLAMP;
        x[1 + i] = z;
    }
}

static double head_dot(const pred_head *hd, const double *x, int k1) {
    double y = 0;
    for (int i = 0; i < k1; i++)
        y += hd->w[i] * x[i];
    return y;
}

double pred_predict_log(const pred_model *m, const pred_features *f, int *head_used) {
    int h = f->has_entropy ? PRED_HEAD_ENT : PRED_HEAD_TEXT;
    if (head_used) *head_used = h;
    double x[PRED_DIM];
    design_row(m, f, h, x);
    double raw =
        pred_trees_eval(m->trees, m->n_trees, f->v) + head_dot(&m->head[h], x, head_dims(h) + 1);
    return pred_stack_apply(m, f->v, raw);
}

/* The stack (stack.c) makes the prediction c0 + c1 * (trees + w . x) + c2 * lp: linear in w
 * with the design row scaled by c1. So the exact RLS update of w takes the target
 * y - c0 - c1 * trees - c2 * lp and the row c1 * x; *c1 receives the factor (1 without a
 * stack, and then the target is y - trees exactly as before the stack existed). */
static double online_target(const pred_model *m, const pred_features *f, double logy,
                            double *c1) {
    double t = pred_trees_eval(m->trees, m->n_trees, f->v);
    if (!m->has_stack) {
        *c1 = 1;
        return logy - t;
    }
    const pred_stack *s = &m->stack[pred_prompt_kind(f->v)];
    *c1 = s->c1;
    return logy - s->c0 - s->c1 * t - s->c2 * (double)f->v[PF_LOG_PROMPT_TOKENS];
}

static void scale_row(double *x, int k1, double c1) {
    if (c1 == 1) return;
    for (int i = 0; i < k1; i++)
        x[i] *= c1;
}

static float clamp_tokens(const pred_model *m, double logy) {
    double t = expm1(logy);
    if (!(t >= 1.0)) t = 1.0; /* also catches NaN */
    if (t > m->max_tokens) t = m->max_tokens;
    return (float)t;
}

pred_estimate pred_predict(const pred_model *m, const pred_features *f) {
    pred_estimate e = {1.0f, 1.0f};
    if (!m || !f) return e;
    int h;
    double y = pred_predict_log(m, f, &h);
    double q = m->head[h].q90 > 0 ? m->head[h].q90 : 0;
    e.p50 = clamp_tokens(m, y);
    e.p90 = clamp_tokens(m, y + q);
    if (e.p90 < e.p50) e.p90 = e.p50;
    return e;
}

/* One RLS step on head hd with target y over the k1 coordinates ix[0..k1) of w and P (x holds
 * the design row's values at those coordinates, x[0] = 1 for the bias at ix[0] = 0); returns
 * the a-priori residual. The full update passes every coordinate of the head in order; a
 * baseline that uses fewer features (pred_update_masked) passes only its own, so the others
 * stay exactly where they are. */
static double rls_step(pred_model *m, pred_head *hd, const double *x, const int *ix, int k1,
                       double y) {
    double Px[PRED_DIM];
    double denom = m->forget, dot = 0;
    for (int i = 0; i < k1; i++) {
        const double *row = hd->P + ix[i] * PRED_DIM;
        double s = 0;
        for (int j = 0; j < k1; j++)
            s += row[ix[j]] * x[j];
        Px[i] = s;
        denom += x[i] * s;
    }
    for (int i = 0; i < k1; i++)
        dot += hd->w[ix[i]] * x[i];
    double e = y - dot;
    if (!(denom > 0) || !isfinite(denom)) return e;
    for (int i = 0; i < k1; i++)
        hd->w[ix[i]] += Px[i] / denom * e;
    /* P <- (P - Px Px^T / denom) / lambda; the division (forgetting) is skipped while the trace
     * is above its starting value, so directions that traffic never excites cannot wind up. The
     * new trace is known from the diagonal before the update, so one pass does both. */
    double inv = 1.0 / denom, tr = 0;
    for (int i = 0; i < k1; i++)
        tr += hd->P[ix[i] * PRED_DIM + ix[i]] - Px[i] * Px[i] * inv;
    double scale = tr / m->forget <= k1 / m->prior_n ? 1.0 / m->forget : 1.0;
    for (int i = 0; i < k1; i++) {
        double a = Px[i] * inv;
        double *row = hd->P + ix[i] * PRED_DIM;
        for (int j = 0; j < k1; j++)
            row[ix[j]] = (row[ix[j]] - a * Px[j]) * scale;
    }
    return e;
}

/* The RLS step on coordinates ix[0..k1) of head hd, then the Robbins-Monro tracker of the
 * residual's 0.9 quantile. */
static void head_update(pred_model *m, pred_head *hd, const double *x, const int *ix, int k1,
                        double y) {
    double e = rls_step(m, hd, x, ix, k1, y);
    hd->q90 += m->q_step * (PRED_Q - (e <= hd->q90 ? 1.0 : 0.0));
    if (hd->q90 < 0) hd->q90 = 0;
    hd->n_updates++;
}

void pred_update(pred_model *m, const pred_features *f, int actual_tokens) {
    if (!m || !f || actual_tokens < 0) return;
    double t = actual_tokens > m->max_tokens ? m->max_tokens : actual_tokens;
    /* the trees (and the stack) are fixed: the linear part learns what they leave */
    double c1;
    double y = online_target(m, f, log1p(t), &c1);
    int ix[PRED_DIM];
    for (int i = 0; i < PRED_DIM; i++)
        ix[i] = i;
    for (int h = 0; h < 2; h++) {
        if (h == PRED_HEAD_ENT && !f->has_entropy) continue;
        double x[PRED_DIM];
        design_row(m, f, h, x);
        scale_row(x, head_dims(h) + 1, c1);
        head_update(m, &m->head[h], x, ix, head_dims(h) + 1, y);
    }
}

void pred_update_masked(pred_model *m, const pred_features *f, int actual_tokens, const int *use) {
    if (!use) {
        pred_update(m, f, actual_tokens);
        return;
    }
    if (!m || !f || actual_tokens < 0) return;
    double t = actual_tokens > m->max_tokens ? m->max_tokens : actual_tokens;
    double c1;
    double y = online_target(m, f, log1p(t), &c1);
    double full[PRED_DIM], x[PRED_DIM];
    int ix[PRED_DIM], k1 = 0;
    design_row(m, f, PRED_HEAD_TEXT, full);
    scale_row(full, PF_ENTROPY + 1, c1);
    /* coefficients outside the mask stay fixed: their part of the prediction leaves the
     * target, so the residual is that of the whole prediction */
    const pred_head *hd = &m->head[PRED_HEAD_TEXT];
    for (int i = 0; i <= PF_ENTROPY; i++)
        if (i == 0 || use[i - 1]) {
            ix[k1] = i;
            x[k1++] = full[i];
        } else {
            y -= hd->w[i] * full[i];
        }
    head_update(m, &m->head[PRED_HEAD_TEXT], x, ix, k1, y);
}

pred_model *pred_model_clone(const pred_model *m, weft_err *err) {
    pred_model *c = malloc(sizeof *c);
    if (!c) {
        weft_errf(err, "model copy: out of memory");
        return NULL;
    }
    *c = *m;
    c->trees = NULL;
    if (m->n_trees > 0) {
        c->trees = malloc(sizeof *c->trees * (size_t)m->n_trees);
        if (!c->trees) {
            free(c);
            weft_errf(err, "model copy: out of memory");
            return NULL;
        }
        memcpy(c->trees, m->trees, sizeof *c->trees * (size_t)m->n_trees);
    }
    return c;
}

pred_model *pred_model_default(weft_err *err) {
    return pred_model_parse(pred_default_params_text, strlen(pred_default_params_text),
                            "built-in default parameters", err);
}

void pred_model_free(pred_model *m) {
    if (!m) return;
    free(m->trees);
    free(m);
}
