/* trees.c — the non-linear half of the length model: gradient-boosted regression trees of fixed
 * depth on the raw text features, fitted offline on what the linear model leaves unexplained.
 * Length depends on interactions a linear model cannot express (a long prompt means a long
 * answer for a maths word problem or code to complete, a short one for a chat question; "list"
 * with a number means something else than "list" alone). Splits are searched over at most
 * PRED_TREE_BINS candidate thresholds per feature (weighted quantiles of the train values), so a fit over
 * 30k prompts takes well under a second. The trees stay fixed at run time; the online update
 * moves the linear part only. */
#include "predict/pred_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PRED_TREE_BINS 48

double pred_trees_eval(const pred_tree *t, int n, const float *v) {
    double s = 0;
    for (int k = 0; k < n; k++) {
        int node = 0;
        for (int d = 0; d < PRED_TREE_DEPTH; d++) {
            int f = t[k].feat[node];
            int right = f >= 0 && v[f] > t[k].thr[node];
            node = 2 * node + 1 + right;
        }
        s += t[k].leaf[node - PRED_TREE_NODES];
    }
    return s;
}

/* Candidate thresholds per feature: midpoints between consecutive distinct quantile values. */
typedef struct binning {
    float thr[PRED_TREE_BINS]; /* bin b holds values <= thr[b]; the last bin the rest */
    int n_thr;
} binning;

typedef struct vw {
    float v;
    double w;
} vw;

static int cmp_vw(const void *a, const void *b) {
    float x = ((const vw *)a)->v, y = ((const vw *)b)->v;
    return (x > y) - (x < y);
}

/* Thresholds of feature f: one between the smallest value and the next (for the many features
 * that are mostly 0: present or not), then midpoints at weighted quantiles (weights w, the
 * fit's sample weights) of the values above the smallest. Quantiles of all rows would put every
 * threshold of a sparse feature (an interaction such as completion_x_len, non-zero on a few
 * hundred prompts) among its smallest few values, and sets with little weight in rows but much
 * in the fit would get none. */
static int make_bins(const float *X, const double *w, int n, int nf, int f, binning *b) {
    vw *col = malloc(sizeof *col * (size_t)n);
    if (!col) return -1;
    for (int i = 0; i < n; i++)
        col[i] = (vw){X[(size_t)i * nf + f], w[i] > 0 ? w[i] : 0};
    qsort(col, (size_t)n, sizeof *col, cmp_vw);
    b->n_thr = 0;
    int k = 0;
    while (k < n && col[k].v <= col[0].v)
        k++;
    if (k >= n) {
        free(col);
        return 0;
    }
    b->thr[b->n_thr++] = 0.5f * (col[0].v + col[k].v);
    double total = 0;
    for (int i = k; i < n; i++)
        total += col[i].w;
    double acc = 0;
    int i = k;
    for (int q = 1; q < PRED_TREE_BINS && total > 0; q++) {
        double target = total * q / PRED_TREE_BINS;
        while (i < n && acc + col[i].w < target)
            acc += col[i++].w;
        if (i >= n) break;
        float v = col[i].v; /* the quantile value; the threshold goes above it */
        int j = i;
        while (j < n && col[j].v <= v)
            j++;
        if (j >= n) break;
        float t = 0.5f * (v + col[j].v);
        if (t > b->thr[b->n_thr - 1] && b->n_thr < PRED_TREE_BINS) b->thr[b->n_thr++] = t;
    }
    free(col);
    return 0;
}

static int bin_of(const binning *b, float v) {
    int lo = 0, hi = b->n_thr; /* first threshold >= v */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (b->thr[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct fitctx {
    const float *X;
    const uint8_t *bins; /* n x nf */
    const binning *bn;
    int nf;
    const double *w;
    const double *r;
    double min_leaf, lr;
    double *hw, *hr; /* histograms nf x (PRED_TREE_BINS + 1) */
    /* absolute loss: r holds the signs of the residuals (what splits are chosen on), resid the
     * residuals themselves, whose weighted median is a leaf's value; buf is scratch */
    int absolute;
    const double *resid;
    vw *buf;
} fitctx;

/* Finds the best split of rows idx[0..m); returns 0 and the feature/bin, or -1 if none. */
static int best_split(fitctx *c, const int *idx, int m, int *bf, int *bb) {
    const int nb = PRED_TREE_BINS + 1;
    memset(c->hw, 0, sizeof *c->hw * (size_t)c->nf * nb);
    memset(c->hr, 0, sizeof *c->hr * (size_t)c->nf * nb);
    double W = 0, S = 0;
    for (int k = 0; k < m; k++) {
        int i = idx[k];
        double wi = c->w[i], ri = c->r[i] * wi;
        W += wi;
        S += ri;
        const uint8_t *bi = c->bins + (size_t)i * c->nf;
        for (int f = 0; f < c->nf; f++) {
            c->hw[f * nb + bi[f]] += wi;
            c->hr[f * nb + bi[f]] += ri;
        }
    }
    if (W < 2 * c->min_leaf) return -1;
    double base = S * S / W, best = 1e-9;
    *bf = -1;
    for (int f = 0; f < c->nf; f++) {
        double wl = 0, sl = 0;
        for (int b = 0; b < c->bn[f].n_thr; b++) {
            wl += c->hw[f * nb + b];
            sl += c->hr[f * nb + b];
            double wr = W - wl, sr = S - sl;
            if (wl < c->min_leaf || wr < c->min_leaf) continue;
            double gain = sl * sl / wl + sr * sr / wr - base;
            if (gain > best) {
                best = gain;
                *bf = f;
                *bb = b;
            }
        }
    }
    return *bf >= 0 ? 0 : -1;
}

static int cmp_vwd(const void *a, const void *b) {
    double x = ((const vw *)a)->w, y = ((const vw *)b)->w;
    return (x > y) - (x < y);
}

static double leaf_value(const fitctx *c, const int *idx, int m) {
    if (c->absolute) { /* weighted median of the residuals (buf: .w = residual, .v unused) */
        double W = 0;
        for (int k = 0; k < m; k++)
            W += c->w[idx[k]];
        if (!(W > 0)) return 0;
        vw *b = c->buf;
        for (int k = 0; k < m; k++)
            b[k] = (vw){(float)c->w[idx[k]], c->resid[idx[k]]};
        qsort(b, (size_t)m, sizeof *b, cmp_vwd);
        double acc = 0;
        for (int k = 0; k < m; k++) {
            acc += b[k].v;
            if (acc >= 0.5 * W) return c->lr * b[k].w;
        }
        return c->lr * b[m - 1].w;
    }
    double W = 0, S = 0;
    for (int k = 0; k < m; k++) {
        W += c->w[idx[k]];
        S += c->w[idx[k]] * c->r[idx[k]];
    }
    return W > 0 ? c->lr * S / W : 0;
}

/* Grows node `node` of t over rows idx[0..m) (reordered in place). */
static void grow(fitctx *c, pred_tree *t, int node, int depth, int *idx, int m) {
    if (depth == PRED_TREE_DEPTH) {
        t->leaf[node - PRED_TREE_NODES] = (float)leaf_value(c, idx, m);
        return;
    }
    int f, b;
    if (m == 0 || best_split(c, idx, m, &f, &b)) {
        /* early leaf: this node and the nodes under it go left; the leftmost leaf holds the
         * value (the other leaves below are unreachable) */
        float v = (float)leaf_value(c, idx, m);
        int n = node;
        for (int d = depth; d < PRED_TREE_DEPTH; d++) {
            t->feat[n] = -1;
            t->thr[n] = 0;
            n = 2 * n + 1;
        }
        t->leaf[n - PRED_TREE_NODES] = v;
        return;
    }
    t->feat[node] = f;
    t->thr[node] = c->bn[f].thr[b];
    int split = 0;
    for (int k = 0; k < m; k++) /* rows with bin <= b to the front */
        if (c->bins[(size_t)idx[k] * c->nf + f] <= b) {
            int tmp = idx[split];
            idx[split++] = idx[k];
            idx[k] = tmp;
        }
    grow(c, t, 2 * node + 1, depth + 1, idx, split);
    grow(c, t, 2 * node + 2, depth + 1, idx + split, m - split);
}

int pred_trees_fit(const float *X, int n, int nf, const double *w, double *r, int n_trees,
                   double lr, double min_leaf, int absolute, pred_tree *out) {
    if (n <= 0 || n_trees <= 0) return 0;
    double *sg = NULL;
    vw *buf = NULL;
    if (absolute) {
        sg = malloc(sizeof *sg * (size_t)n);
        buf = malloc(sizeof *buf * (size_t)n);
        if (!sg || !buf) {
            free(sg);
            free(buf);
            return -1;
        }
    }
    binning *bn = calloc((size_t)nf, sizeof *bn);
    uint8_t *bins = malloc((size_t)n * nf);
    int *idx = malloc(sizeof *idx * (size_t)n);
    double *hw = malloc(sizeof *hw * (size_t)nf * (PRED_TREE_BINS + 1));
    double *hr = malloc(sizeof *hr * (size_t)nf * (PRED_TREE_BINS + 1));
    int rc = -1;
    if (!bn || !bins || !idx || !hw || !hr) goto done;
    for (int f = 0; f < nf; f++)
        if (make_bins(X, w, n, nf, f, &bn[f])) goto done;
    for (int i = 0; i < n; i++)
        for (int f = 0; f < nf; f++)
            bins[(size_t)i * nf + f] = (uint8_t)bin_of(&bn[f], X[(size_t)i * nf + f]);
    fitctx c = {X, bins, bn, nf, w, absolute ? sg : r, min_leaf, lr, hw, hr, absolute, r, buf};
    for (int k = 0; k < n_trees; k++) {
        pred_tree *t = &out[k];
        for (int i = 0; i < n && absolute; i++)
            sg[i] = (r[i] > 0) - (r[i] < 0);
        memset(t, 0, sizeof *t);
        for (int i = 0; i < n; i++)
            idx[i] = i;
        grow(&c, t, 0, 0, idx, n);
        for (int i = 0; i < n; i++)
            r[i] -= pred_trees_eval(t, 1, X + (size_t)i * nf);
    }
    rc = 0;
done:
    free(sg);
    free(buf);
    free(bn);
    free(bins);
    free(idx);
    free(hw);
    free(hr);
    return rc;
}
