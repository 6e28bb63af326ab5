/* fit.c — the offline fit of the length model (`weft predict fit`): weighted ridge regression of
 * log(1 + answer tokens) on the standardized features of the train prompts, solved by Cholesky on
 * the normal equations, then the residuals' weighted 0.9 quantile as the upper-quantile offset.
 * Records of the same prompt are folded into one row (weight and weighted mean target), so the
 * 180k AlpacaEval answers cost as little as its 805 prompts. The same code fits the baselines
 * (constant, prompt length only) with a feature mask; the full model then boosts trees (trees.c)
 * on the linear part's residuals. */
#include "predict/pred_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Feature standardization for the entropy feature, which no offline data set has: a prior
 * centred on typical next-token entropies of instruction-tuned models (nats); the online update
 * learns its weight. */
#define PRED_ENTROPY_MEAN 2.5
#define PRED_ENTROPY_SCALE 1.5

void pred_fit_defaults(pred_fit_opts *o) {
    o->ridge = 2.0;
    o->n_trees = PRED_FIT_TREES;
    o->learn_rate = PRED_FIT_LEARN_RATE;
    o->min_leaf = PRED_FIT_MIN_LEAF;
    o->set_cap = 0;
    o->set_power = PRED_FIT_SET_POWER;
    o->absolute = PRED_FIT_ABSOLUTE;
    o->forget = 0.998;
    o->prior_n = 200;
    o->q_step = 0.01;
    o->max_tokens = 8192;
    o->stack_folds = PRED_FIT_STACK_FOLDS;
    o->stack_ridge = PRED_FIT_STACK_RIDGE;
    o->stack_absolute = PRED_FIT_STACK_ABSOLUTE;
}

/* Solves A x = b (A symmetric positive definite, n x n, row-major; overwritten). */
static int cholesky_solve(double *A, double *b, int n) {
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++)
            s -= A[j * n + k] * A[j * n + k];
        if (!(s > 1e-12)) return -1;
        double l = sqrt(s);
        A[j * n + j] = l;
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int k = 0; k < j; k++)
                t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / l;
        }
    }
    for (int i = 0; i < n; i++) { /* L y = b */
        double t = b[i];
        for (int k = 0; k < i; k++)
            t -= A[i * n + k] * b[k];
        b[i] = t / A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* L^T x = y */
        double t = b[i];
        for (int k = i + 1; k < n; k++)
            t -= A[k * n + i] * b[k];
        b[i] = t / A[i * n + i];
    }
    return 0;
}

typedef struct wres {
    double r, w;
} wres;

static int cmp_wres(const void *a, const void *b) {
    double x = ((const wres *)a)->r, y = ((const wres *)b)->r;
    return (x > y) - (x < y);
}

typedef struct py_rec {
    int prompt;
    double y;
} py_rec;

static int cmp_py(const void *a, const void *b) {
    const py_rec *x = a, *y = b;
    if (x->prompt != y->prompt) return (x->prompt > y->prompt) - (x->prompt < y->prompt);
    return (x->y > y->y) - (x->y < y->y);
}

/* med[p] = median log1p(tokens) of train prompt p's answers (absolute loss: the prompt's row
 * stands for the median answer, not the mean). */
int pred_prompt_medians(const pred_data *d, double *med) {
    py_rec *a = malloc(sizeof *a * (size_t)(d->n_recs ? d->n_recs : 1));
    if (!a) return -1;
    int n = 0;
    for (int r = 0; r < d->n_recs; r++)
        if (!d->prompts[d->recs[r].prompt].test)
            a[n++] = (py_rec){d->recs[r].prompt, log1p(d->recs[r].tokens)};
    qsort(a, (size_t)n, sizeof *a, cmp_py);
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && a[j].prompt == a[i].prompt)
            j++;
        int k = j - i;
        med[a[i].prompt] = k % 2 ? a[i + k / 2].y : 0.5 * (a[i + k / 2 - 1].y + a[i + k / 2].y);
        i = j;
    }
    free(a);
    return 0;
}

/* Boosts trees on what the linear head leaves of each train prompt's mean log target (squared
 * loss) or median log target (absolute loss). */
static int fit_trees(const pred_data *d, const pred_fit_opts *o, pred_model *m, const double *pw,
                     const double *py, weft_err *err) {
    int n = 0;
    for (int p = 0; p < d->n_prompts; p++)
        n += pw[p] > 0;
    float *X = malloc(sizeof *X * (size_t)n * PF_ENTROPY);
    double *w = malloc(sizeof *w * (size_t)n), *r = malloc(sizeof *r * (size_t)n);
    double *med = o->absolute ? calloc((size_t)d->n_prompts + 1, sizeof *med) : NULL;
    m->trees = calloc((size_t)o->n_trees, sizeof *m->trees);
    int rc = -1;
    if (!X || !w || !r || !m->trees || (o->absolute && (!med || pred_prompt_medians(d, med)))) {
        weft_errf(err, "fit: out of memory");
        goto done;
    }
    const pred_head *ht = &m->head[PRED_HEAD_TEXT];
    int i = 0;
    for (int p = 0; p < d->n_prompts; p++) {
        if (!(pw[p] > 0)) continue;
        const float *v = d->prompts[p].f.v;
        double lin = ht->w[0];
        for (int f = 0; f < PF_ENTROPY; f++) {
            X[(size_t)i * PF_ENTROPY + f] = v[f];
            lin += ht->w[1 + f] * ((double)v[f] - m->mean[f]) / m->scale[f];
        }
        w[i] = pw[p];
        r[i] = (o->absolute ? med[p] : py[p] / pw[p]) - lin;
        i++;
    }
    if (pred_trees_fit(X, n, PF_ENTROPY, w, r, o->n_trees, o->learn_rate, o->min_leaf,
                       o->absolute, m->trees)) {
        weft_errf(err, "fit: out of memory (trees)");
        goto done;
    }
    m->n_trees = o->n_trees;
    rc = 0;
done:
    free(X);
    free(w);
    free(r);
    free(med);
    return rc;
}

pred_model *pred_fit(const pred_data *d, const pred_fit_opts *o, const int *use, weft_err *err) {
    const int nf = PF_ENTROPY; /* text features */
    int sel[PF_COUNT], k = 0;
    for (int i = 0; i < nf; i++)
        if (!use || use[i]) sel[k++] = i;
    int n1 = k + 1;
    pred_model *m = calloc(1, sizeof *m);
    double *A = calloc((size_t)n1 * n1, sizeof *A), *b = calloc((size_t)n1, sizeof *b);
    double *pw = calloc((size_t)d->n_prompts, sizeof *pw),
           *py = calloc((size_t)d->n_prompts, sizeof *py);
    wres *res = malloc(sizeof *res * (size_t)(d->n_recs ? d->n_recs : 1));
    if (!m || !A || !b || !pw || !py || !res) {
        weft_errf(err, "fit: out of memory");
        goto fail;
    }
    /* large sets weigh as set_cap prompts, so that a few big sets cannot drown the rest */
    double *setw = calloc((size_t)d->n_sets + 1, sizeof *setw);
    if (!setw) {
        weft_errf(err, "fit: out of memory");
        goto fail;
    }
    for (int p = 0; p < d->n_prompts; p++)
        if (!d->prompts[p].test) setw[d->prompts[p].set] += 1;
    /* set balance: a set of n train prompts weighs n^set_power in total, rescaled so that all
     * sets together still weigh the number of train prompts (leaf sizes keep their meaning) */
    double n_all = 0, n_pow = 0;
    for (int s = 0; s < d->n_sets; s++) {
        n_all += setw[s];
        if (setw[s] > 0) n_pow += pow(setw[s], o->set_power);
    }
    for (int s = 0; s < d->n_sets; s++) {
        double n = setw[s];
        setw[s] = o->set_cap > 0 && n > o->set_cap ? o->set_cap / n : 1.0;
        if (n > 0 && o->set_power != 1 && n_pow > 0)
            setw[s] *= pow(n, o->set_power) / n * (n_all / n_pow);
    }
    /* fold records into prompts: total weight and weighted mean log target */
    double wsum = 0;
    for (int r = 0; r < d->n_recs; r++) {
        const pred_record *rc = &d->recs[r];
        if (d->prompts[rc->prompt].test) continue;
        double w = rc->weight * setw[d->prompts[rc->prompt].set];
        pw[rc->prompt] += w;
        py[rc->prompt] += w * log1p(rc->tokens);
        wsum += w;
    }
    free(setw);
    if (wsum <= 0) {
        weft_errf(err, "fit: no training records (every prompt is in the held-out split?)");
        goto fail;
    }
    /* standardization over train prompts */
    for (int i = 0; i < nf; i++) {
        double s = 0, s2 = 0;
        for (int p = 0; p < d->n_prompts; p++)
            if (pw[p] > 0) s += pw[p] * d->prompts[p].f.v[i];
        double mu = s / wsum;
        for (int p = 0; p < d->n_prompts; p++)
            if (pw[p] > 0) {
                double t = d->prompts[p].f.v[i] - mu;
                s2 += pw[p] * t * t;
            }
        double sd = sqrt(s2 / wsum);
        m->mean[i] = (float)mu;
        m->scale[i] = sd > 1e-6 ? (float)sd : 1.0f;
    }
    m->mean[PF_ENTROPY] = PRED_ENTROPY_MEAN;
    m->scale[PF_ENTROPY] = PRED_ENTROPY_SCALE;
    /* normal equations */
    double x[PRED_DIM];
    for (int p = 0; p < d->n_prompts; p++) {
        if (!(pw[p] > 0)) continue;
        double y = py[p] / pw[p];
        x[0] = 1;
        for (int j = 0; j < k; j++)
            x[1 + j] = (d->prompts[p].f.v[sel[j]] - m->mean[sel[j]]) / m->scale[sel[j]];
        for (int i = 0; i < n1; i++) {
            b[i] += pw[p] * x[i] * y;
            for (int j = 0; j <= i; j++)
                A[i * n1 + j] += pw[p] * x[i] * x[j];
        }
    }
    for (int i = 0; i < n1; i++)
        for (int j = 0; j < i; j++)
            A[j * n1 + i] = A[i * n1 + j];
    for (int i = 1; i < n1; i++)
        A[i * n1 + i] += o->ridge;
    if (cholesky_solve(A, b, n1)) {
        weft_errf(err, "fit: normal equations are singular (too few training prompts?)");
        goto fail;
    }
    pred_head *ht = &m->head[PRED_HEAD_TEXT];
    ht->w[0] = b[0];
    for (int j = 0; j < k; j++)
        ht->w[1 + sel[j]] = b[1 + j];
    if (o->n_trees > 0 && !use && fit_trees(d, o, m, pw, py, err)) goto fail;
    /* the per-kind stack with prompt length (stack.c), on the model's out-of-fold predictions;
     * it is a least-squares fit toward mean log targets, so it would pull an --absolute model
     * (toward medians) back to means: with the absolute loss there is no stack */
    if (o->stack_folds >= 2 && !o->absolute && !use && pred_fit_stack(d, o, m, pw, py, err))
        goto fail;
    /* upper quantile of the residuals, every train record (not folded) */
    int nr = 0;
    for (int r = 0; r < d->n_recs; r++) {
        const pred_record *rc = &d->recs[r];
        const pred_prompt *pp = &d->prompts[rc->prompt];
        if (pp->test) continue;
        double yhat = ht->w[0] + pred_trees_eval(m->trees, m->n_trees, pp->f.v);
        for (int j = 0; j < k; j++)
            yhat += ht->w[1 + sel[j]] * (pp->f.v[sel[j]] - m->mean[sel[j]]) / m->scale[sel[j]];
        yhat = pred_stack_apply(m, pp->f.v, yhat);
        res[nr++] =
            (wres){log1p(rc->tokens) - yhat, pw[rc->prompt] / d->prompts[rc->prompt].n_resp};
    }
    qsort(res, (size_t)nr, sizeof *res, cmp_wres);
    double acc = 0, q = res[nr - 1].r;
    for (int i = 0; i < nr; i++) {
        acc += res[i].w;
        if (acc >= 0.9 * wsum) {
            q = res[i].r;
            break;
        }
    }
    ht->q90 = q > 0 ? q : 0;
    /* the entropy head starts as the text head with a zero entropy weight */
    pred_head *he = &m->head[PRED_HEAD_ENT];
    memcpy(he->w, ht->w, sizeof he->w);
    he->w[1 + PF_ENTROPY] = 0;
    he->q90 = ht->q90;
    m->forget = o->forget;
    m->prior_n = o->prior_n;
    m->q_step = o->q_step;
    m->max_tokens = o->max_tokens;
    pred_model_reset_online(m);
    free(A);
    free(b);
    free(pw);
    free(py);
    free(res);
    return m;
fail:
    pred_model_free(m);
    free(A);
    free(b);
    free(pw);
    free(py);
    free(res);
    return NULL;
}
