/* params.c — the length model's parameter file: a small line-oriented text format (documented
 * in docs/predict.md) that `weft predict fit` writes, that is compiled into the binary as the
 * default, and that pred_model_load reads back. Parsing is strict: every line is checked, names
 * must match this build's features in order, every number must be finite and in range, and an
 * error names the file and line. Files are limited to PRED_PARAMS_MAX_BYTES. */
#include "predict/pred_internal.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRED_PARAMS_MAX_BYTES (1 << 20)
#define PRED_PARAMS_MAGIC "weft-predict-params"
#define PRED_PARAMS_VERSION 1
/* "tree" + (feature, threshold) per node + leaves */
#define TREE_FIELDS (1 + 2 * PRED_TREE_NODES + PRED_TREE_LEAVES)

/* Splits line into at most max whitespace-separated fields (in place). */
static int split_fields(char *line, char **f, int max) {
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
        if (n == max) return max + 1;
        f[n++] = t;
    }
    return n;
}

static int parse_num(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

enum {
    SEEN_MAGIC = 1,
    SEEN_FORGET = 2,
    SEEN_PRIOR = 4,
    SEEN_QSTEP = 8,
    SEEN_MAX = 16,
    SEEN_BIAS = 32,
    SEEN_Q90 = 64,
    SEEN_FEATURES = 128,
    SEEN_END = 256,
    SEEN_TREES = 512
};

pred_model *pred_model_parse(const char *text, size_t len, const char *name, weft_err *err) {
    if (len > PRED_PARAMS_MAX_BYTES) {
        weft_errf(err, "%s: %zu bytes, more than the %d a parameter file may have", name, len,
                  PRED_PARAMS_MAX_BYTES);
        return NULL;
    }
    pred_model *m = calloc(1, sizeof *m);
    char *buf = malloc(len + 1);
    if (!m || !buf) {
        weft_errf(err, "%s: out of memory", name);
        goto fail;
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    if (memchr(buf, 0, len)) {
        weft_errf(err, "%s: contains a NUL byte (not a text parameter file)", name);
        goto fail;
    }
    unsigned seen = 0;
    int next_feature = 0, lineno = 0, trees_declared = 0;
    unsigned stack_seen = 0;
    for (int k = 0; k < PRED_KIND_COUNT; k++)
        m->stack[k] = (pred_stack){0, 1, 0}; /* kinds without a 'stack' line: identity */
    /* lines are walked by hand (not strtok) so that empty lines keep their numbers */
    for (char *line = buf; line && *line != 0;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *f[TREE_FIELDS + 1];
        int nf = split_fields(line, f, TREE_FIELDS);
        char *next = nl ? nl + 1 : NULL;
        if (nf == 0) {
            line = next;
            continue;
        }
        if (seen & SEEN_END) {
            weft_errf(err, "%s:%d: text after 'end'", name, lineno);
            goto fail;
        }
        if (!(seen & SEEN_MAGIC)) {
            if (nf != 2 || strcmp(f[0], PRED_PARAMS_MAGIC)) {
                weft_errf(err, "%s:%d: not a weft length-model parameter file (expected '%s %d')",
                          name, lineno, PRED_PARAMS_MAGIC, PRED_PARAMS_VERSION);
                goto fail;
            }
            if (strcmp(f[1], "1")) {
                weft_errf(err, "%s:%d: parameter file version '%s', this build reads version %d",
                          name, lineno, f[1], PRED_PARAMS_VERSION);
                goto fail;
            }
            seen |= SEEN_MAGIC;
            line = next;
            continue;
        }
        const char *key = f[0];
        if (!strcmp(key, "trees")) {
            double v;
            if (nf != 2 || parse_num(f[1], &v) || v != floor(v) || v < 0 || v > PRED_MAX_TREES) {
                weft_errf(err, "%s:%d: 'trees' takes a count in [0, %d]", name, lineno,
                          PRED_MAX_TREES);
                goto fail;
            }
            if (seen & SEEN_TREES) {
                weft_errf(err, "%s:%d: a second 'trees' line", name, lineno);
                goto fail;
            }
            trees_declared = (int)v;
            if (trees_declared) {
                m->trees = calloc((size_t)trees_declared, sizeof *m->trees);
                if (!m->trees) {
                    weft_errf(err, "%s: out of memory", name);
                    goto fail;
                }
            }
            seen |= SEEN_TREES;
            line = next;
            continue;
        }
        if (!strcmp(key, "tree")) {
            if (!(seen & SEEN_TREES) || m->n_trees >= trees_declared) {
                weft_errf(err, "%s:%d: more 'tree' lines than 'trees' declared (%d)", name, lineno,
                          trees_declared);
                goto fail;
            }
            if (nf != TREE_FIELDS) {
                weft_errf(err, "%s:%d: 'tree' takes %d values, got %d", name, lineno,
                          TREE_FIELDS - 1, nf - 1);
                goto fail;
            }
            pred_tree *t = &m->trees[m->n_trees];
            for (int i = 1; i < nf; i++) {
                double v;
                if (parse_num(f[i], &v)) {
                    weft_errf(err, "%s:%d: '%s' is not a finite number", name, lineno, f[i]);
                    goto fail;
                }
                if (i <= 2 * PRED_TREE_NODES && i % 2 == 1) {
                    if (v != floor(v) || v < -1 || v >= PF_ENTROPY) {
                        weft_errf(err, "%s:%d: tree node feature %g is not a text feature index",
                                  name, lineno, v);
                        goto fail;
                    }
                    t->feat[(i - 1) / 2] = (int)v;
                } else if (i <= 2 * PRED_TREE_NODES) {
                    t->thr[(i - 1) / 2] = (float)v;
                } else {
                    if (fabs(v) > 20) {
                        weft_errf(err, "%s:%d: tree leaf %g out of range [-20, 20]", name, lineno,
                                  v);
                        goto fail;
                    }
                    t->leaf[i - 1 - 2 * PRED_TREE_NODES] = (float)v;
                }
            }
            m->n_trees++;
            line = next;
            continue;
        }
        if (!strcmp(key, "stack")) { /* optional (files before the stack have none) */
            int kind = -1;
            for (int k = 0; nf == 5 && k < PRED_KIND_COUNT; k++)
                if (!strcmp(f[1], pred_kind_name(k))) kind = k;
            if (nf != 5 || kind < 0) {
                weft_errf(err, "%s:%d: 'stack' takes a kind (chat, completion, maths, code) and 3 "
                          "values", name, lineno);
                goto fail;
            }
            if (stack_seen & (1u << kind)) {
                weft_errf(err, "%s:%d: a second 'stack %s' line", name, lineno, f[1]);
                goto fail;
            }
            double c[3];
            for (int i = 0; i < 3; i++)
                if (parse_num(f[2 + i], &c[i]) || fabs(c[i]) > 50) {
                    weft_errf(err, "%s:%d: '%s' is not a finite number in [-50, 50]", name, lineno,
                              f[2 + i]);
                    goto fail;
                }
            m->stack[kind] = (pred_stack){c[0], c[1], c[2]};
            stack_seen |= 1u << kind;
            m->has_stack = 1;
            line = next;
            continue;
        }
        double a[5];
        int want = !strcmp(key, "feature")                       ? 6
                   : !strcmp(key, "bias") || !strcmp(key, "q90") ? 3
                   : !strcmp(key, "end")                         ? 1
                   : !strcmp(key, "forget") || !strcmp(key, "prior_n") || !strcmp(key, "q_step") ||
                           !strcmp(key, "max_tokens") || !strcmp(key, "features")
                       ? 2
                       : -1;
        if (want < 0) {
            weft_errf(err, "%s:%d: unknown key '%s'", name, lineno, key);
            goto fail;
        }
        if (nf != want) {
            weft_errf(err, "%s:%d: '%s' takes %d value%s, got %d", name, lineno, key, want - 1,
                      want == 2 ? "" : "s", nf - 1);
            goto fail;
        }
        int first_num = !strcmp(key, "feature") ? 2 : 1;
        for (int i = first_num; i < nf; i++)
            if (parse_num(f[i], &a[i - first_num])) {
                weft_errf(err, "%s:%d: '%s' is not a finite number", name, lineno, f[i]);
                goto fail;
            }
        if (!strcmp(key, "features")) {
            if (a[0] != PF_COUNT) {
                weft_errf(err, "%s:%d: file has %g features, this build computes %d", name, lineno,
                          a[0], PF_COUNT);
                goto fail;
            }
            seen |= SEEN_FEATURES;
        } else if (!strcmp(key, "forget")) {
            if (!(a[0] > 0.5 && a[0] <= 1.0)) {
                weft_errf(err, "%s:%d: forget must be in (0.5, 1], got %g", name, lineno, a[0]);
                goto fail;
            }
            m->forget = a[0];
            seen |= SEEN_FORGET;
        } else if (!strcmp(key, "prior_n")) {
            if (!(a[0] >= 1 && a[0] <= 1e9)) {
                weft_errf(err, "%s:%d: prior_n must be in [1, 1e9], got %g", name, lineno, a[0]);
                goto fail;
            }
            m->prior_n = a[0];
            seen |= SEEN_PRIOR;
        } else if (!strcmp(key, "q_step")) {
            if (!(a[0] >= 0 && a[0] <= 1)) {
                weft_errf(err, "%s:%d: q_step must be in [0, 1], got %g", name, lineno, a[0]);
                goto fail;
            }
            m->q_step = a[0];
            seen |= SEEN_QSTEP;
        } else if (!strcmp(key, "max_tokens")) {
            if (!(a[0] >= 1 && a[0] <= 1e7)) {
                weft_errf(err, "%s:%d: max_tokens must be in [1, 1e7], got %g", name, lineno, a[0]);
                goto fail;
            }
            m->max_tokens = a[0];
            seen |= SEEN_MAX;
        } else if (!strcmp(key, "bias")) {
            m->head[PRED_HEAD_TEXT].w[0] = a[0];
            m->head[PRED_HEAD_ENT].w[0] = a[1];
            seen |= SEEN_BIAS;
        } else if (!strcmp(key, "q90")) {
            if (a[0] < 0 || a[1] < 0 || a[0] > 20 || a[1] > 20) {
                weft_errf(err, "%s:%d: q90 values must be in [0, 20] (log units)", name, lineno);
                goto fail;
            }
            m->head[PRED_HEAD_TEXT].q90 = a[0];
            m->head[PRED_HEAD_ENT].q90 = a[1];
            seen |= SEEN_Q90;
        } else if (!strcmp(key, "feature")) {
            if (!(seen & SEEN_FEATURES)) {
                weft_errf(err, "%s:%d: 'features N' must come before the feature lines", name,
                          lineno);
                goto fail;
            }
            if (next_feature >= PF_COUNT) {
                weft_errf(err, "%s:%d: more feature lines than the %d features", name, lineno,
                          PF_COUNT);
                goto fail;
            }
            if (strcmp(f[1], pred_feature_name(next_feature))) {
                weft_errf(err, "%s:%d: feature %d is '%s' in this build, the file says '%s'", name,
                          lineno, next_feature, pred_feature_name(next_feature), f[1]);
                goto fail;
            }
            if (!(a[1] > 0)) {
                weft_errf(err, "%s:%d: scale of feature '%s' must be > 0, got %g", name, lineno,
                          f[1], a[1]);
                goto fail;
            }
            if (next_feature == PF_ENTROPY && a[2] != 0) {
                weft_errf(err, "%s:%d: the text-only head cannot weigh 'entropy' (got %g)", name,
                          lineno, a[2]);
                goto fail;
            }
            m->mean[next_feature] = (float)a[0];
            m->scale[next_feature] = (float)a[1];
            m->head[PRED_HEAD_TEXT].w[1 + next_feature] = a[2];
            m->head[PRED_HEAD_ENT].w[1 + next_feature] = a[3];
            next_feature++;
        } else { /* end */
            seen |= SEEN_END;
        }
        line = next;
    }
    static const struct {
        unsigned bit;
        const char *what;
    } need[] = {{SEEN_MAGIC, "the header line"},
                {SEEN_FEATURES, "'features'"},
                {SEEN_FORGET, "'forget'"},
                {SEEN_PRIOR, "'prior_n'"},
                {SEEN_QSTEP, "'q_step'"},
                {SEEN_MAX, "'max_tokens'"},
                {SEEN_BIAS, "'bias'"},
                {SEEN_Q90, "'q90'"},
                {SEEN_END, "the closing 'end' (file truncated?)"}};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (!(seen & need[i].bit)) {
            weft_errf(err, "%s: missing %s", name, need[i].what);
            goto fail;
        }
    if (m->n_trees != trees_declared) {
        weft_errf(err, "%s: %d 'tree' lines, 'trees' declared %d", name, m->n_trees,
                  trees_declared);
        goto fail;
    }
    if (next_feature != PF_COUNT) {
        weft_errf(err, "%s: %d feature lines, need %d", name, next_feature, PF_COUNT);
        goto fail;
    }
    free(buf);
    pred_model_reset_online(m);
    return m;
fail:
    free(buf);
    pred_model_free(m);
    return NULL;
}

/* Appends to a growing string. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void
sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *p = realloc(b->s, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
}

char *pred_model_format(const pred_model *m, weft_err *err) {
    sbuf b = {0};
    sb_printf(&b, "%s %d\n", PRED_PARAMS_MAGIC, PRED_PARAMS_VERSION);
    sb_printf(&b,
              "# length model: log(1 + output tokens) = bias + sum w_i * (v_i - mean_i) / "
              "scale_i\n# (docs/predict.md). Columns: feature NAME MEAN SCALE W_TEXT W_ENTROPY\n");
    sb_printf(&b, "features %d\n", PF_COUNT);
    sb_printf(&b, "forget %.17g\nprior_n %.17g\nq_step %.17g\nmax_tokens %.17g\n", m->forget,
              m->prior_n, m->q_step, m->max_tokens);
    sb_printf(&b, "bias %.9g %.9g\n", m->head[PRED_HEAD_TEXT].w[0], m->head[PRED_HEAD_ENT].w[0]);
    sb_printf(&b, "q90 %.9g %.9g\n", m->head[PRED_HEAD_TEXT].q90, m->head[PRED_HEAD_ENT].q90);
    for (int i = 0; i < PF_COUNT; i++)
        sb_printf(&b, "feature %s %.9g %.9g %.9g %.9g\n", pred_feature_name(i), (double)m->mean[i],
                  (double)m->scale[i], i == PF_ENTROPY ? 0.0 : m->head[PRED_HEAD_TEXT].w[1 + i],
                  m->head[PRED_HEAD_ENT].w[1 + i]);
    sb_printf(&b, "# trees: per tree, (feature index, threshold) for %d nodes, then %d leaves\n",
              PRED_TREE_NODES, PRED_TREE_LEAVES);
    sb_printf(&b, "trees %d\n", m->n_trees);
    for (int k = 0; k < m->n_trees; k++) {
        const pred_tree *t = &m->trees[k];
        sb_printf(&b, "tree");
        for (int i = 0; i < PRED_TREE_NODES; i++)
            sb_printf(&b, " %d %.9g", t->feat[i], (double)t->thr[i]);
        for (int i = 0; i < PRED_TREE_LEAVES; i++)
            sb_printf(&b, " %.9g", (double)t->leaf[i]);
        sb_printf(&b, "\n");
    }
    if (m->has_stack) {
        sb_printf(&b, "# per-kind stack: log1p tokens = C0 + C1 * model + C2 * log_prompt_tokens\n");
        for (int k = 0; k < PRED_KIND_COUNT; k++)
            sb_printf(&b, "stack %s %.9g %.9g %.9g\n", pred_kind_name(k), m->stack[k].c0,
                      m->stack[k].c1, m->stack[k].c2);
    }
    sb_printf(&b, "end\n");
    if (b.oom) {
        free(b.s);
        weft_errf(err, "formatting parameters: out of memory");
        return NULL;
    }
    return b.s;
}

pred_model *pred_model_load(const char *path, weft_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        weft_errf(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PRED_PARAMS_MAX_BYTES + 1);
    if (!buf) {
        fclose(fp);
        weft_errf(err, "%s: out of memory", path);
        return NULL;
    }
    size_t n = fread(buf, 1, PRED_PARAMS_MAX_BYTES + 1, fp);
    int bad = ferror(fp);
    fclose(fp);
    pred_model *m = NULL;
    if (bad)
        weft_errf(err, "%s: read error", path);
    else if (n == 0)
        weft_errf(err, "%s: empty file, not a parameter file", path);
    else
        m = pred_model_parse(buf, n, path, err); /* reports files over the size limit */
    free(buf);
    return m;
}

int pred_model_save(const pred_model *m, const char *path, weft_err *err) {
    char *text = pred_model_format(m, err);
    if (!text) return -1;
    /* write to a temporary beside the target and rename, so a reader never sees half a file */
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) {
        free(text);
        return weft_errf(err, "%s: out of memory", path);
    }
    snprintf(tmp, pl + 16, "%s.tmp%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "w");
    int rc = 0;
    if (!fp) {
        rc = weft_errf(err, "%s: cannot create: %s", tmp, strerror(errno));
    } else {
        size_t tl = strlen(text);
        int bad = fwrite(text, 1, tl, fp) != tl;
        if (fclose(fp) || bad) {
            rc = weft_errf(err, "%s: write failed: %s", tmp, strerror(errno));
            remove(tmp);
        } else if (rename(tmp, path)) {
            rc = weft_errf(err, "%s: cannot rename into place: %s", path, strerror(errno));
            remove(tmp);
        }
    }
    free(tmp);
    free(text);
    return rc;
}
