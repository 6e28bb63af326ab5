/* evaluate.c — held-out scoring for `weft predict eval`: rank correlation (Spearman, Kendall),
 * mean absolute error on log(1 + tokens) and coverage of the p90 of three predictors (the
 * model, a constant and prompt length only), per data set, per-prompt medians of multi-answer
 * sets, and pooled. */
#include "predict/pred_data.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct view {
    double *truth;
    int *prompt;
    int n, cap;
} view;

static int view_push(view *v, int prompt, double truth) {
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 1024;
        double *t = realloc(v->truth, sizeof *t * (size_t)nc);
        if (!t) return -1;
        v->truth = t;
        int *p = realloc(v->prompt, sizeof *p * (size_t)nc);
        if (!p) return -1;
        v->prompt = p;
        v->cap = nc;
    }
    v->truth[v->n] = truth;
    v->prompt[v->n++] = prompt;
    return 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct pidx {
    int prompt, i;
} pidx;

static int cmp_pidx(const void *a, const void *b) {
    const pidx *x = a, *y = b;
    if (x->prompt != y->prompt) return (x->prompt > y->prompt) - (x->prompt < y->prompt);
    return (x->i > y->i) - (x->i < y->i);
}

/* Prompt-level bootstrap of v: answers to one prompt are not independent (AlpacaEval has 227
 * per prompt), so whole prompts are resampled. Fills the interval fields of row. */
static int bootstrap_view(const view *v, const pred_estimate *est[PRED_EV_N], uint64_t seed,
                          int n_boot, pred_eval_row *row) {
    int n = v->n, rc = -1;
    if (n_boot <= 0 || n == 0) return 0;
    pidx *ord = malloc(sizeof *ord * (size_t)n);
    int *start = malloc(sizeof *start * (size_t)(n + 1));
    double *pm = NULL, *pl = NULL, *tr = NULL;
    double *rb = malloc(sizeof *rb * (size_t)n_boot), *db = malloc(sizeof *db * (size_t)n_boot);
    double *dc = malloc(sizeof *dc * (size_t)n_boot), *dp = malloc(sizeof *dp * (size_t)n_boot);
    if (!ord || !start || !rb || !db || !dc || !dp) goto done;
    for (int i = 0; i < n; i++)
        ord[i] = (pidx){v->prompt[i], i};
    qsort(ord, (size_t)n, sizeof *ord, cmp_pidx);
    int np = 0, maxc = 0;
    for (int i = 0; i < n; i++)
        if (i == 0 || ord[i].prompt != ord[i - 1].prompt) start[np++] = i;
    start[np] = n;
    for (int k = 0; k < np; k++)
        if (start[k + 1] - start[k] > maxc) maxc = start[k + 1] - start[k];
    /* a replicate draws np prompts with replacement: at most np * (largest prompt) answers */
    size_t cap = (size_t)np * (size_t)maxc;
    pm = malloc(sizeof *pm * cap);
    pl = malloc(sizeof *pl * cap);
    tr = malloc(sizeof *tr * cap);
    if (!pm || !pl || !tr) goto done;
    int beats = 0, beats_all = 0;
    for (int b = 0; b < n_boot; b++) {
        int m = 0;
        double mae[PRED_EV_N] = {0};
        for (int k = 0; k < np; k++) {
            int q = (int)(splitmix(&seed) % (uint64_t)np);
            for (int j = start[q]; j < start[q + 1]; j++) {
                int i = ord[j].i, p = v->prompt[i];
                pm[m] = est[PRED_EV_MODEL][p].p50;
                pl[m] = est[PRED_EV_PLEN][p].p50;
                tr[m] = v->truth[i];
                double lt = log1p(tr[m++]);
                for (int e = 0; e < PRED_EV_N; e++)
                    mae[e] += fabs(log1p(est[e][p].p50) - lt);
            }
        }
        double rm = pred_spearman(pm, tr, m), rl = pred_spearman(pl, tr, m);
        rb[b] = rm;
        db[b] = rm - rl;
        dc[b] = (mae[PRED_EV_MODEL] - mae[PRED_EV_CONST]) / m;
        dp[b] = (mae[PRED_EV_MODEL] - mae[PRED_EV_PLEN]) / m;
        beats += rm > rl && rm > 0;
        beats_all += rm > rl && rm > 0 && dc[b] < 0 && dp[b] < 0;
    }
    qsort(rb, (size_t)n_boot, sizeof *rb, cmp_d);
    qsort(db, (size_t)n_boot, sizeof *db, cmp_d);
    qsort(dc, (size_t)n_boot, sizeof *dc, cmp_d);
    qsort(dp, (size_t)n_boot, sizeof *dp, cmp_d);
    int lo = n_boot / 20, hi = n_boot - 1 - n_boot / 20;
    row->rho_lo = rb[lo];
    row->rho_hi = rb[hi];
    row->drho_lo = db[lo];
    row->drho_hi = db[hi];
    row->p_beats = (double)beats / n_boot;
    row->dmae_c_lo = dc[lo];
    row->dmae_c_hi = dc[hi];
    row->dmae_p_lo = dp[lo];
    row->dmae_p_hi = dp[hi];
    row->p_beats_all = (double)beats_all / n_boot;
    rc = 0;
done:
    free(ord);
    free(start);
    free(pm);
    free(pl);
    free(tr);
    free(rb);
    free(db);
    free(dc);
    free(dp);
    return rc;
}

static int score_view(const view *v, const pred_estimate *est[PRED_EV_N], const char *name,
                      int n_boot, pred_eval_row *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->name, sizeof row->name, "%s", name);
    row->n = v->n;
    if (v->n == 0) return 0;
    double *pr = malloc(sizeof *pr * (size_t)v->n), *tr = malloc(sizeof *tr * (size_t)v->n);
    if (!pr || !tr) {
        free(pr);
        free(tr);
        return -1;
    }
    for (int i = 0; i < v->n; i++)
        tr[i] = v->truth[i];
    for (int k = 0; k < PRED_EV_N; k++) {
        double mae = 0, cov = 0;
        for (int i = 0; i < v->n; i++) {
            const pred_estimate *e = &est[k][v->prompt[i]];
            pr[i] = e->p50;
            mae += fabs(log1p(e->p50) - log1p(tr[i]));
            cov += tr[i] <= e->p90;
        }
        row->rho[k] = pred_spearman(pr, tr, v->n);
        row->tau[k] = pred_kendall(pr, tr, v->n);
        row->mae[k] = mae / v->n;
        row->cov[k] = cov / v->n;
    }
    free(pr);
    free(tr);
    uint64_t seed = 0x5EEDull;
    for (const char *c = name; *c; c++)
        seed = seed * 131 + (unsigned char)*c;
    return bootstrap_view(v, est, seed, n_boot, row);
}

static int push_row(pred_eval *out) {
    pred_eval_row *r = realloc(out->rows, sizeof *r * (size_t)(out->n_rows + 1));
    if (!r) return -1;
    out->rows = r;
    return out->n_rows++;
}

int pred_evaluate(const pred_data *d, pred_model *const models[PRED_EV_N], pred_eval *out,
                  weft_err *err) {
    return pred_evaluate_boot(d, models, PRED_BOOT, out, err);
}

int pred_evaluate_boot(const pred_data *d, pred_model *const models[PRED_EV_N], int n_boot,
                       pred_eval *out, weft_err *err) {
    out->rows = NULL;
    out->n_rows = 0;
    pred_estimate *est[PRED_EV_N] = {0};
    int rc = -1;
    for (int k = 0; k < PRED_EV_N; k++) {
        est[k] = malloc(sizeof *est[k] * (size_t)(d->n_prompts ? d->n_prompts : 1));
        if (!est[k]) {
            weft_errf(err, "evaluate: out of memory");
            goto done;
        }
        for (int p = 0; p < d->n_prompts; p++)
            est[k][p] = pred_predict(models[k], &d->prompts[p].f);
    }
    rc = pred_evaluate_est(d, est, n_boot, out, err);
done:
    for (int k = 0; k < PRED_EV_N; k++)
        free(est[k]);
    return rc;
}

int pred_evaluate_est(const pred_data *d, pred_estimate *const est[PRED_EV_N], int n_boot,
                      pred_eval *out, weft_err *err) {
    out->rows = NULL;
    out->n_rows = 0;
    int rc = -1;
    view pooled = {0}, v = {0};
    double *tmp = NULL;
    int **by_prompt = NULL;
    const pred_estimate *cest[PRED_EV_N] = {est[0], est[1], est[2]};
    /* records of each prompt, for medians */
    int *cnt = calloc((size_t)d->n_prompts + 1, sizeof *cnt);
    if (!cnt) goto oom;
    tmp = malloc(sizeof *tmp * (size_t)(d->n_recs ? d->n_recs : 1));
    by_prompt = calloc((size_t)d->n_prompts + 1, sizeof *by_prompt);
    if (!tmp || !by_prompt) {
        free(cnt);
        goto oom;
    }
    for (int r = 0; r < d->n_recs; r++)
        cnt[d->recs[r].prompt]++;
    for (int s = 0; s < d->n_sets; s++) {
        v.n = 0;
        for (int r = 0; r < d->n_recs; r++) {
            const pred_prompt *pp = &d->prompts[d->recs[r].prompt];
            if (pp->set != s || pp->test != 1) continue;
            if (view_push(&v, d->recs[r].prompt, d->recs[r].tokens)) {
                free(cnt);
                goto oom;
            }
            if (!d->sets[s].multi && view_push(&pooled, d->recs[r].prompt, d->recs[r].tokens)) {
                free(cnt);
                goto oom;
            }
        }
        int i = push_row(out);
        if (i < 0 || score_view(&v, cest, d->sets[s].name, n_boot, &out->rows[i])) {
            free(cnt);
            goto oom;
        }
        if (!d->sets[s].multi) continue;
        /* per-prompt medians */
        v.n = 0;
        for (int p = 0; p < d->n_prompts; p++) {
            if (d->prompts[p].set != s || d->prompts[p].test != 1) continue;
            int n = 0;
            for (int r = 0; r < d->n_recs; r++)
                if (d->recs[r].prompt == p) tmp[n++] = d->recs[r].tokens;
            if (!n) continue;
            qsort(tmp, (size_t)n, sizeof *tmp, cmp_d);
            double med = n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
            if (view_push(&v, p, med) || view_push(&pooled, p, med)) {
                free(cnt);
                goto oom;
            }
        }
        char name[96];
        snprintf(name, sizeof name, "%s/median", d->sets[s].name);
        i = push_row(out);
        if (i < 0 || score_view(&v, cest, name, n_boot, &out->rows[i])) {
            free(cnt);
            goto oom;
        }
    }
    free(cnt);
    int i = push_row(out);
    if (i < 0 || score_view(&pooled, cest, "pooled", n_boot, &out->rows[i])) goto oom;
    rc = 0;
    goto done;
oom:
    weft_errf(err, "evaluate: out of memory");
    pred_eval_free(out);
done:
    free(pooled.truth);
    free(pooled.prompt);
    free(v.truth);
    free(v.prompt);
    free(tmp);
    free(by_prompt);
    return rc;
}

void pred_eval_free(pred_eval *e) {
    free(e->rows);
    e->rows = NULL;
    e->n_rows = 0;
}
