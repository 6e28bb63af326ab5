/* crossval.c — the evaluation protocols beyond the single held-out split (`weft predict eval
 * --folds K`, `--online`): K-fold cross-validation by prompt, where every prompt is held out
 * exactly once and the model and both baselines are refitted on the other folds with the fit's
 * own procedure (pred_fit), and prequential online replay, where each set's held-out prompts are
 * predicted one by one in a fixed seeded order and each prediction is followed by the online
 * update the server applies when a request finishes (pred_update; the baselines get the same
 * recursive least squares on their own coefficients, pred_update_masked). Both produce one
 * estimate per prompt, scored by pred_evaluate_est. */
#include "predict/pred_data.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Feature masks of the three predictors: the model uses every text feature (NULL), the
 * constant none, the prompt-length baseline only log_prompt_tokens. */
static const int use_none[PF_COUNT] = {0};
static const int use_plen[PF_COUNT] = {[PF_LOG_PROMPT_TOKENS] = 1};

const int *pred_ev_use(int k) {
    return k == PRED_EV_CONST ? use_none : k == PRED_EV_PLEN ? use_plen : NULL;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static int tokens_int(double t) {
    if (!(t > 0)) return 0;
    if (t > 1e9) return 1000000000;
    return (int)lround(t);
}

int pred_online_replay(const pred_data *d, pred_model *const models[PRED_EV_N], uint64_t seed,
                       pred_estimate *const est[PRED_EV_N], weft_err *err) {
    int rc = -1, np = d->n_prompts;
    int *start = calloc((size_t)np + 1, sizeof *start);
    int *recs = malloc(sizeof *recs * (size_t)(d->n_recs ? d->n_recs : 1));
    int *order = malloc(sizeof *order * (size_t)(np ? np : 1));
    float *lens = malloc(sizeof *lens * (size_t)(d->n_recs ? d->n_recs : 1));
    pred_model *m[PRED_EV_N] = {0};
    if (!start || !recs || !order || !lens) {
        weft_errf(err, "online replay: out of memory");
        goto done;
    }
    /* records grouped by prompt (counting sort, file order kept within a prompt) */
    for (int r = 0; r < d->n_recs; r++)
        start[d->recs[r].prompt + 1]++;
    for (int p = 0; p < np; p++)
        start[p + 1] += start[p];
    {
        int *fill = malloc(sizeof *fill * (size_t)(np ? np : 1));
        if (!fill) {
            weft_errf(err, "online replay: out of memory");
            goto done;
        }
        memcpy(fill, start, sizeof *fill * (size_t)np);
        for (int r = 0; r < d->n_recs; r++)
            recs[fill[d->recs[r].prompt]++] = r;
        free(fill);
    }
    for (int s = 0; s < d->n_sets; s++) {
        int n = 0;
        for (int p = 0; p < np; p++)
            if (d->prompts[p].set == s && d->prompts[p].test == 1) order[n++] = p;
        if (!n) continue;
        /* a fixed order per set: the seed mixed with the set's name, Fisher-Yates */
        uint64_t x = seed;
        for (const char *c = d->sets[s].name; *c; c++)
            x = x * 131 + (unsigned char)*c;
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(splitmix(&x) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        /* every set starts from the offline models */
        for (int k = 0; k < PRED_EV_N; k++)
            if (!(m[k] = pred_model_clone(models[k], err))) goto done;
        for (int i = 0; i < n; i++) {
            int p = order[i];
            const pred_features *f = &d->prompts[p].f;
            for (int k = 0; k < PRED_EV_N; k++)
                est[k][p] = pred_predict(m[k], f);
            /* then the answers finish: one update per answer; a set with many answering models
             * per prompt (AlpacaEval: 227) stands for one served model by the median answer,
             * so that one prompt does not fill the forgetting window 227 times over */
            int a = start[p], b = start[p + 1];
            if (d->sets[s].multi && b > a) {
                int c = 0;
                for (int j = a; j < b; j++)
                    lens[c++] = d->recs[recs[j]].tokens;
                qsort(lens, (size_t)c, sizeof *lens, cmp_f);
                double med = c % 2 ? lens[c / 2] : 0.5 * (lens[c / 2 - 1] + lens[c / 2]);
                for (int k = 0; k < PRED_EV_N; k++)
                    pred_update_masked(m[k], f, tokens_int(med), pred_ev_use(k));
            } else {
                for (int j = a; j < b; j++)
                    for (int k = 0; k < PRED_EV_N; k++)
                        pred_update_masked(m[k], f, tokens_int(d->recs[recs[j]].tokens),
                                           pred_ev_use(k));
            }
        }
        for (int k = 0; k < PRED_EV_N; k++) {
            pred_model_free(m[k]);
            m[k] = NULL;
        }
    }
    rc = 0;
done:
    for (int k = 0; k < PRED_EV_N; k++)
        pred_model_free(m[k]);
    free(start);
    free(recs);
    free(order);
    free(lens);
    return rc;
}

int pred_crossval(pred_data *d, const pred_fit_opts *model_opts, const pred_fit_opts *base_opts,
                  int folds, int online, uint64_t seed, pred_estimate *const est[PRED_EV_N],
                  weft_err *err) {
    if (folds < 2) {
        weft_errf(err, "cross-validation needs at least 2 folds, not %d", folds);
        return -1;
    }
    int np = d->n_prompts, rc = -1;
    int *fold = malloc(sizeof *fold * (size_t)(np ? np : 1));
    pred_model *m[PRED_EV_N] = {0};
    if (!fold) {
        weft_errf(err, "cross-validation: out of memory");
        return -1;
    }
    /* prompts marked -1 (held out of this run: --val) stay out of every fold */
    for (int p = 0; p < np; p++)
        fold[p] = d->prompts[p].test == -1 ? -1 : pred_prompt_fold(d->prompts[p].text, folds);
    for (int f = 0; f < folds; f++) {
        int n_test = 0;
        for (int p = 0; p < np; p++) {
            d->prompts[p].test = fold[p] < 0 ? -1 : fold[p] == f;
            n_test += fold[p] == f;
        }
        if (!n_test) continue;
        /* exactly what `weft predict fit` does, on the other folds */
        m[PRED_EV_MODEL] = pred_fit(d, model_opts, NULL, err);
        if (!m[PRED_EV_MODEL]) goto done;
        for (int k = 1; k < PRED_EV_N; k++)
            if (!(m[k] = pred_fit(d, base_opts, pred_ev_use(k), err))) goto done;
        if (online) {
            if (pred_online_replay(d, m, seed + (uint64_t)f, est, err)) goto done;
        } else {
            for (int p = 0; p < np; p++)
                if (fold[p] == f)
                    for (int k = 0; k < PRED_EV_N; k++)
                        est[k][p] = pred_predict(m[k], &d->prompts[p].f);
        }
        for (int k = 0; k < PRED_EV_N; k++) {
            pred_model_free(m[k]);
            m[k] = NULL;
        }
    }
    rc = 0;
done:
    /* every prompt that took part is now scored (out of fold) */
    for (int p = 0; p < np; p++)
        d->prompts[p].test = fold[p] < 0 ? -1 : 1;
    for (int k = 0; k < PRED_EV_N; k++)
        pred_model_free(m[k]);
    free(fold);
    return rc;
}
