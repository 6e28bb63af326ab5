/* data.c — loading prompts and true answer lengths for `weft predict fit|eval` (see pred_data.h):
 * pairs files through the workload module's JSONL reader, the AlpacaEval folder through its own
 * small TSV reader, prompts deduplicated within a set, features computed once per prompt. */
#include "predict/pred_data.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "workload/dataset.h"
#include "workload/lengths.h"

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    /* final mix so the low bits depend on every byte */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int pred_is_test_prompt(const char *text) {
    return fnv1a(text) % PRED_TEST_MOD == 0;
}

int pred_is_val_prompt(const char *text) {
    return fnv1a(text) / PRED_TEST_MOD % PRED_VAL_MOD == 0;
}

int pred_prompt_fold(const char *text, int k) {
    if (k < 2) return 0;
    /* digits of the hash above those of the held-out and validation choices, so folds cut
     * across both (K-fold over the train prompts only leaves no fold empty) */
    return (int)(fnv1a(text) / (PRED_TEST_MOD * PRED_VAL_MOD) % (uint64_t)k);
}

int pred_prompt_inner_fold(const char *text, int k) {
    if (k < 2) return 0;
    /* a salted re-mix of the hash: the fold is unrelated to the digits used above */
    uint64_t h = fnv1a(text) ^ 0x9e3779b97f4a7c15ull;
    h ^= h >> 31;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (int)(h % (uint64_t)k);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, elem * (size_t)nc);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int add_set(pred_data *d, const char *path, int multi) {
    pred_set *s = realloc(d->sets, sizeof *s * (size_t)(d->n_sets + 1));
    if (!s) return -1;
    d->sets = s;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char *name = strdup(base);
    if (!name) return -1;
    char *dot = strrchr(name, '.');
    if (dot && dot != name) *dot = 0;
    d->sets[d->n_sets].name = name;
    d->sets[d->n_sets].multi = multi;
    return d->n_sets++;
}

/* Index of prompt text within set (added when new), via a per-load hash table. */
typedef struct ptab {
    int *slot;
    size_t cap;
} ptab;

static int ptab_init(ptab *t, size_t n) {
    t->cap = 1024;
    while (t->cap < 2 * n)
        t->cap *= 2;
    t->slot = malloc(sizeof *t->slot * t->cap);
    if (!t->slot) return -1;
    for (size_t i = 0; i < t->cap; i++)
        t->slot[i] = -1;
    return 0;
}

static int intern_prompt(pred_data *d, ptab *t, int set, const char *text,
                         const weft_tokenizer *tok, weft_err *err) {
    size_t i = fnv1a(text) & (t->cap - 1);
    for (; t->slot[i] >= 0; i = (i + 1) & (t->cap - 1))
        if (!strcmp(d->prompts[t->slot[i]].text, text)) return t->slot[i];
    if (grow((void **)&d->prompts, &d->cap_prompts, d->n_prompts + 1, sizeof *d->prompts))
        return weft_errf(err, "out of memory");
    pred_prompt *p = &d->prompts[d->n_prompts];
    memset(p, 0, sizeof *p);
    p->text = strdup(text);
    if (!p->text) return weft_errf(err, "out of memory");
    int k = wl_token_count(tok, text);
    if (k < 0) {
        free(p->text);
        return weft_errf(err, "cannot tokenize a prompt of set %s", d->sets[set].name);
    }
    p->tokens = k;
    p->set = set;
    p->test = pred_is_test_prompt(text);
    double t0 = now_s();
    pred_features_text(text, strlen(text), k, &p->f);
    d->feature_seconds += now_s() - t0;
    t->slot[i] = d->n_prompts;
    return d->n_prompts++;
}

static int add_record(pred_data *d, int prompt, double tokens, weft_err *err) {
    if (grow((void **)&d->recs, &d->cap_recs, d->n_recs + 1, sizeof *d->recs))
        return weft_errf(err, "out of memory");
    d->recs[d->n_recs++] = (pred_record){prompt, (float)tokens, 1.0f};
    d->prompts[prompt].n_resp++;
    return 0;
}

static long count_words(const char *s) {
    long n = 0;
    int in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

static int add_pairs(pred_data *d, const char *path, const weft_tokenizer *tok, weft_err *err) {
    wl_dataset ds;
    if (wl_dataset_load(path, &ds, err)) return -1;
    int rc = -1, set = add_set(d, path, 0);
    ptab t = {0};
    if (set < 0 || ptab_init(&t, (size_t)ds.n)) {
        weft_errf(err, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < ds.n; i++) {
        int p = intern_prompt(d, &t, set, ds.pairs[i].prompt, tok, err);
        if (p < 0) goto done;
        int k = wl_token_count(tok, ds.pairs[i].response);
        if (k < 0) {
            weft_errf(err, "%s: record %d: cannot tokenize the response", path, i + 1);
            goto done;
        }
        d->resp_words += (double)count_words(ds.pairs[i].response);
        d->resp_tokens += k;
        if (add_record(d, p, k, err)) goto done;
    }
    rc = 0;
done:
    free(t.slot);
    wl_dataset_free(&ds);
    return rc;
}

/* AlpacaEval: instructions.jsonl (instr_idx, instruction) + lengths_all_models.tsv. */
static int add_alpaca(pred_data *d, const char *dir, const weft_tokenizer *tok, weft_err *err) {
    char path[4096];
    int rc = -1, n_instr = 0, *pid = NULL;
    char *line = NULL;
    size_t cap = 0;
    ptab t = {0};
    snprintf(path, sizeof path, "%s/instructions.jsonl", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) return weft_errf(err, "%s: cannot open: %s", path, strerror(errno));
    int set = add_set(d, dir[strlen(dir) - 1] == '/' ? "alpaca_eval" : dir, 1);
    if (set < 0 || ptab_init(&t, 1024)) {
        weft_errf(err, "%s: out of memory", path);
        goto done;
    }
    int lineno = 0;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        if (!line[strspn(line, " \t\r\n")]) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        json_t *ji = o ? json_object_get(o, "instr_idx") : NULL;
        const char *text = o ? json_string_value(json_object_get(o, "instruction")) : NULL;
        if (!o || !json_is_integer(ji) || !text) {
            weft_errf(err, "%s:%d: needs an integer 'instr_idx' and a string 'instruction'%s%s",
                      path, lineno, o ? "" : ": ", o ? "" : je.text);
            json_decref(o);
            goto done;
        }
        json_int_t idx = json_integer_value(ji);
        if (idx < 0 || idx > 1000000) {
            weft_errf(err, "%s:%d: instr_idx %lld out of range", path, lineno, (long long)idx);
            json_decref(o);
            goto done;
        }
        if (idx >= n_instr) {
            int *q = realloc(pid, sizeof *q * (size_t)(idx + 1));
            if (!q) {
                json_decref(o);
                weft_errf(err, "out of memory");
                goto done;
            }
            for (int k = n_instr; k <= idx; k++)
                q[k] = -1;
            pid = q;
            n_instr = (int)idx + 1;
        }
        int p = intern_prompt(d, &t, set, text, tok, err);
        json_decref(o);
        if (p < 0) goto done;
        pid[idx] = p;
    }
    fclose(fp);
    snprintf(path, sizeof path, "%s/lengths_all_models.tsv", dir);
    fp = fopen(path, "r");
    if (!fp) {
        weft_errf(err, "%s: cannot open: %s", path, strerror(errno));
        goto done;
    }
    lineno = 0;
    int col_idx = -1, col_words = -1;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *f[16];
        int nf = 0;
        for (char *s = line; nf < 16;) {
            f[nf++] = s;
            char *tab = strchr(s, '\t');
            if (!tab) break;
            *tab = 0;
            s = tab + 1;
        }
        if (lineno == 1) {
            for (int k = 0; k < nf; k++) {
                if (!strcmp(f[k], "instr_idx")) col_idx = k;
                if (!strcmp(f[k], "response_words")) col_words = k;
            }
            if (col_idx < 0 || col_words < 0) {
                weft_errf(err, "%s:1: header needs columns instr_idx and response_words", path);
                goto done;
            }
            continue;
        }
        if (nf == 1 && !f[0][0]) continue;
        if (nf <= col_idx || nf <= col_words) {
            weft_errf(err, "%s:%d: %d columns, header has more", path, lineno, nf);
            goto done;
        }
        char *e1, *e2;
        errno = 0;
        long idx = strtol(f[col_idx], &e1, 10);
        long words = strtol(f[col_words], &e2, 10);
        if (errno || *e1 || *e2 || e1 == f[col_idx] || e2 == f[col_words] || words < 0 ||
            words > 10000000) {
            weft_errf(err, "%s:%d: instr_idx and response_words must be integers", path, lineno);
            goto done;
        }
        if (idx < 0 || idx >= n_instr || pid[idx] < 0) {
            weft_errf(err, "%s:%d: instr_idx %ld is not in instructions.jsonl", path, lineno, idx);
            goto done;
        }
        if (add_record(d, pid[idx], (double)words * PRED_WORDS_TO_TOKENS, err)) goto done;
    }
    if (lineno < 2) {
        weft_errf(err, "%s: no records", path);
        goto done;
    }
    rc = 0;
done:
    if (fp) fclose(fp);
    free(line);
    free(pid);
    free(t.slot);
    return rc;
}

int pred_data_add(pred_data *d, const char *path, const weft_tokenizer *tok, weft_err *err) {
    struct stat st;
    if (stat(path, &st)) return weft_errf(err, "%s: %s", path, strerror(errno));
    int first_rec = d->n_recs;
    int rc = S_ISDIR(st.st_mode) ? add_alpaca(d, path, tok, err) : add_pairs(d, path, tok, err);
    if (rc) return rc;
    for (int i = first_rec; i < d->n_recs; i++)
        d->recs[i].weight = 1.0f / (float)d->prompts[d->recs[i].prompt].n_resp;
    return 0;
}

void pred_data_free(pred_data *d) {
    for (int i = 0; i < d->n_sets; i++)
        free(d->sets[i].name);
    for (int i = 0; i < d->n_prompts; i++)
        free(d->prompts[i].text);
    free(d->sets);
    free(d->prompts);
    free(d->recs);
    memset(d, 0, sizeof *d);
}
