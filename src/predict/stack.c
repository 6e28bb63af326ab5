/* stack.c — the per-kind stack of the length model with prompt length. The trees + linear model
 * ranks code completions worse than prompt length alone (docs/predict.md), because one model over
 * every kind of prompt cannot give prompt length the weight it has within one kind. The stack
 * re-weighs, per prompt kind that the text features detect at serving time (code to complete,
 * maths word problem, other code, chat), the model's own prediction against log prompt length:
 * pred = c0 + c1 * model + c2 * log_prompt_tokens. The coefficients are fitted on out-of-fold
 * predictions of the model over the fit's own train prompts (an inner cross-validation, so the
 * stack never sees a prediction made on a prompt the model was fitted on), by ridge least squares
 * shrunk toward the identity. Owns: kind detection, applying the stack, fitting it. */
#include "predict/pred_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int pred_prompt_kind(const float *v) {
    if (v[PF_CODE_COMPLETION] > 0) return PRED_KIND_COMPLETION;
    if (v[PF_MATHS_X_LEN] > 0) return PRED_KIND_MATHS;
    if (v[PF_CODE_X_LEN] > 0 || v[PF_CODE_REQUEST] > 0) return PRED_KIND_CODE;
    return PRED_KIND_CHAT;
}

const char *pred_kind_name(int kind) {
    static const char *names[PRED_KIND_COUNT] = {"chat", "completion", "maths", "code"};
    return kind >= 0 && kind < PRED_KIND_COUNT ? names[kind] : "?";
}

double pred_stack_apply(const pred_model *m, const float *v, double raw) {
    if (!m->has_stack) return raw;
    const pred_stack *s = &m->stack[pred_prompt_kind(v)];
    return s->c0 + s->c1 * raw + s->c2 * (double)v[PF_LOG_PROMPT_TOKENS];
}

/* Solves the 3x3 symmetric positive definite system A x = b by Gaussian elimination. */
static int solve3(double A[3][3], double b[3]) {
    for (int c = 0; c < 3; c++) {
        if (!(A[c][c] > 1e-12)) return -1;
        for (int r = c + 1; r < 3; r++) {
            double f = A[r][c] / A[c][c];
            for (int k = c; k < 3; k++)
                A[r][k] -= f * A[c][k];
            b[r] -= f * b[c];
        }
    }
    for (int r = 2; r >= 0; r--) {
        double t = b[r];
        for (int k = r + 1; k < 3; k++)
            t -= A[r][k] * b[k];
        b[r] = t / A[r][r];
    }
    return 0;
}

pred_stack pred_stack_fit_kind(const double *y, const double *raw, const double *lp,
                               const double *w, int n, double ridge, double min_w) {
    pred_stack id = {0, 1, 0};
    double sw = 0, mr = 0, ml = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        mr += w[i] * raw[i];
        ml += w[i] * lp[i];
    }
    if (!(sw >= min_w) || !(sw > 0)) return id;
    mr /= sw;
    ml /= sw;
    double vl = 0;
    for (int i = 0; i < n; i++)
        vl += w[i] * (lp[i] - ml) * (lp[i] - ml);
    double sl = sqrt(vl / sw);
    if (!(sl > 1e-6)) sl = 1;
    /* y - dM = a + u dM + g dl, with dM = raw - mr, dl = (lp - ml) / sl; ridge on u and g pulls
     * toward c1 = 1, c2 = 0 (the unstacked model, apart from the kind's level a) */
    double A[3][3] = {{0}}, b[3] = {0};
    for (int i = 0; i < n; i++) {
        double x[3] = {1, raw[i] - mr, (lp[i] - ml) / sl};
        double t = y[i] - x[1];
        for (int r = 0; r < 3; r++) {
            b[r] += w[i] * x[r] * t;
            for (int c = 0; c < 3; c++)
                A[r][c] += w[i] * x[r] * x[c];
        }
    }
    A[1][1] += ridge;
    A[2][2] += ridge;
    if (solve3(A, b)) return id;
    pred_stack s;
    s.c1 = 1 + b[1];
    s.c2 = b[2] / sl;
    s.c0 = b[0] - s.c1 * mr - s.c2 * ml;
    if (!isfinite(s.c0) || !isfinite(s.c1) || !isfinite(s.c2)) return id;
    return s;
}

pred_stack pred_stack_fit_kind_lad(const double *y, const double *raw, const double *lp,
                                   const double *w, int n, double ridge, double min_w,
                                   double *scratch) {
    /* iteratively reweighted least squares: row weight w / max(|residual|, 0.01) turns the
     * squared loss into the absolute one at its fixed point */
    pred_stack s = pred_stack_fit_kind(y, raw, lp, w, n, ridge, min_w);
    double sw = 0;
    for (int i = 0; i < n; i++)
        sw += w[i];
    if (!(sw >= min_w) || !(sw > 0)) return s;
    for (int it = 0; it < 50; it++) {
        double sv = 0;
        for (int i = 0; i < n; i++) {
            double r = fabs(y[i] - (s.c0 + s.c1 * raw[i] + s.c2 * lp[i]));
            scratch[i] = w[i] / (r > 0.01 ? r : 0.01);
            sv += scratch[i];
        }
        /* the same pull toward the identity as the squared fit: in the reweighted problem a
         * ridge of `ridge` rows of average weight */
        pred_stack t = pred_stack_fit_kind(y, raw, lp, scratch, n, ridge * sv / sw, 0);
        double dc = fabs(t.c0 - s.c0) + fabs(t.c1 - s.c1) + fabs(t.c2 - s.c2);
        s = t;
        if (dc < 1e-9) break;
    }
    return s;
}

int pred_fit_stack(const pred_data *d, const pred_fit_opts *o, pred_model *m, const double *pw,
                   const double *py, weft_err *err) {
    int np = d->n_prompts, rc = -1;
    pred_data in = *d; /* shallow: the inner fits only read; the test flags are the copy's */
    in.prompts = malloc(sizeof *in.prompts * (size_t)(np ? np : 1));
    double *raw = calloc((size_t)(np ? np : 1), sizeof *raw);
    double *y = malloc(sizeof *y * (size_t)(np ? np : 1)),
           *lp = malloc(sizeof *lp * (size_t)(np ? np : 1));
    double *w = malloc(sizeof *w * (size_t)(np ? np : 1)),
           *rk = malloc(sizeof *rk * (size_t)(np ? np : 1));
    int *fold = malloc(sizeof *fold * (size_t)(np ? np : 1));
    double *sc = malloc(sizeof *sc * (size_t)(np ? np : 1));
    double *med = o->stack_absolute ? calloc((size_t)(np ? np : 1), sizeof *med) : NULL;
    if (!in.prompts || !raw || !y || !lp || !w || !rk || !fold || !sc ||
        (o->stack_absolute && (!med || pred_prompt_medians(d, med)))) {
        weft_errf(err, "fit: out of memory (stack)");
        goto done;
    }
    memcpy(in.prompts, d->prompts, sizeof *in.prompts * (size_t)np);
    for (int p = 0; p < np; p++)
        fold[p] = !(pw[p] > 0)         ? -1
                  : d->prompts[p].text ? pred_prompt_inner_fold(d->prompts[p].text, o->stack_folds)
                                       : p % o->stack_folds; /* data built without texts */
    pred_fit_opts io = *o;
    io.stack_folds = 0;
    for (int f = 0; f < o->stack_folds; f++) {
        int n_out = 0;
        for (int p = 0; p < np; p++) {
            in.prompts[p].test = fold[p] < 0 ? -1 : fold[p] == f;
            n_out += fold[p] == f;
        }
        if (!n_out) continue;
        pred_model *im = pred_fit(&in, &io, NULL, err);
        if (!im) goto done;
        for (int p = 0; p < np; p++)
            if (fold[p] == f) {
                pred_features tf = d->prompts[p].f;
                tf.has_entropy = 0;
                raw[p] = pred_predict_log(im, &tf, NULL);
            }
        pred_model_free(im);
    }
    for (int k = 0; k < PRED_KIND_COUNT; k++) {
        int n = 0;
        for (int p = 0; p < np; p++) {
            if (fold[p] < 0 || pred_prompt_kind(d->prompts[p].f.v) != k) continue;
            y[n] = o->stack_absolute ? med[p] : py[p] / pw[p];
            w[n] = pw[p];
            lp[n] = d->prompts[p].f.v[PF_LOG_PROMPT_TOKENS];
            rk[n] = raw[p];
            n++;
        }
        m->stack[k] =
            o->stack_absolute
                ? pred_stack_fit_kind_lad(y, rk, lp, w, n, o->stack_ridge, PRED_STACK_MIN_W, sc)
                : pred_stack_fit_kind(y, rk, lp, w, n, o->stack_ridge, PRED_STACK_MIN_W);
    }
    m->has_stack = 1;
    rc = 0;
done:
    free(in.prompts);
    free(raw);
    free(y);
    free(lp);
    free(w);
    free(rk);
    free(fold);
    free(sc);
    free(med);
    return rc;
}
