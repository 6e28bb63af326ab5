/* pred_util.c — synthetic predictor data sets for the unit tests (pred_util.h). */
#include "support/pred_util.h"

#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tu_pred_data_new(pred_data *d, int n, const char *set_name, const char *prefix) {
    memset(d, 0, sizeof *d);
    d->n_sets = 1;
    d->sets = calloc(1, sizeof *d->sets);
    d->prompts = calloc((size_t)n, sizeof *d->prompts);
    d->recs = calloc((size_t)n, sizeof *d->recs);
    assert_non_null(d->sets);
    assert_non_null(d->prompts);
    assert_non_null(d->recs);
    d->sets[0].name = strdup(set_name);
    assert_non_null(d->sets[0].name);
    for (int i = 0; i < n; i++) {
        pred_prompt *p = &d->prompts[i];
        char t[64];
        snprintf(t, sizeof t, "%s %d", prefix, i);
        p->text = strdup(t);
        assert_non_null(p->text);
        p->n_resp = 1;
        p->f.n = PF_COUNT;
    }
}
