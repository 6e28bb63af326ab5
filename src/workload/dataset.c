/* dataset.c — loading and sampling "pairs" data sets (see dataset.h). */
#include "workload/dataset.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload/rng.h"

static int push_pair(wl_dataset *d, int *cap, const char *prompt, const char *response) {
    if (d->n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        wl_pair *p = realloc(d->pairs, sizeof *p * (size_t)nc);
        if (!p) return -1;
        d->pairs = p;
        *cap = nc;
    }
    char *a = strdup(prompt), *b = strdup(response);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    d->pairs[d->n++] = (wl_pair){a, b};
    return 0;
}

int wl_dataset_load(const char *path, wl_dataset *out, weft_err *err) {
    out->pairs = NULL;
    out->n = 0;
    FILE *fp = fopen(path, "r");
    if (!fp) return weft_errf(err, "%s: cannot open: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int pcap = 0, lineno = 0, rc = -1;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        size_t k = strspn(line, " \t\r\n");
        if (!line[k]) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o || !json_is_object(o)) {
            weft_errf(err, "%s:%d: not a JSON object (%s)", path, lineno,
                      o ? "another JSON value" : je.text);
            json_decref(o);
            goto done;
        }
        const char *p = json_string_value(json_object_get(o, "prompt"));
        const char *r = json_string_value(json_object_get(o, "response"));
        if (!p || !r) {
            weft_errf(err, "%s:%d: needs string fields 'prompt' and 'response'", path, lineno);
            json_decref(o);
            goto done;
        }
        int pushed = push_pair(out, &pcap, p, r);
        json_decref(o);
        if (pushed) {
            weft_errf(err, "%s: out of memory", path);
            goto done;
        }
    }
    if (ferror(fp)) {
        weft_errf(err, "%s: read error", path);
        goto done;
    }
    if (out->n == 0) {
        weft_errf(err, "%s: no records", path);
        goto done;
    }
    rc = 0;
done:
    free(line);
    fclose(fp);
    if (rc) wl_dataset_free(out);
    return rc;
}

void wl_dataset_free(wl_dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->pairs[i].prompt);
        free(d->pairs[i].response);
    }
    free(d->pairs);
    d->pairs = NULL;
    d->n = 0;
}

int wl_dataset_pick(const wl_dataset *d, int n, uint64_t seed, int *idx, weft_err *err) {
    if (d->n <= 0 || n < 0) return weft_errf(err, "dataset pick: empty data set");
    int *perm = malloc(sizeof *perm * (size_t)d->n);
    if (!perm) return weft_errf(err, "dataset pick: out of memory");
    wl_rng r;
    wl_rng_seed(&r, seed);
    for (int done = 0; done < n;) {
        for (int i = 0; i < d->n; i++)
            perm[i] = i;
        /* Fisher-Yates, as far as this pass needs. */
        int take = n - done < d->n ? n - done : d->n;
        for (int i = 0; i < take; i++) {
            int j = (int)wl_rng_range(&r, i, d->n - 1);
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
            idx[done + i] = perm[i];
        }
        done += take;
    }
    free(perm);
    return 0;
}
