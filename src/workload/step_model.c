/* step_model.c — the virtual clock's step-time model: evaluation, the params file (parse and
 * write), reading step lines from scheduling traces, and the least-squares fit that calibrates
 * it (format and terms: step_model.h; the choice of terms: docs/scheduling.md "Simulator"). */
#include "workload/step_model.h"
#include "workload/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const term_names[STEPM_N_TERMS] = {"const", "seqs", "tokens", "prefill", "kv"};

const char *stepm_term_name(int term) {
    return term >= 0 && term < STEPM_N_TERMS ? term_names[term] : "?";
}

static int term_of(const char *s, size_t len) {
    for (int i = 0; i < STEPM_N_TERMS; i++)
        if (strlen(term_names[i]) == len && !strncmp(s, term_names[i], len)) return i;
    return -1;
}

int stepm_terms_parse(const char *list, unsigned *mask, weft_err *err) {
    *mask = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        int t = term_of(p, len);
        if (t < 0)
            return weft_errf(err, "step model: unknown term '%.*s' (terms: const, seqs, tokens, "
                                  "prefill, kv)", (int)len, p);
        *mask |= 1u << t;
        p += len;
        if (*p == ',') p++;
    }
    if (!*mask) return weft_errf(err, "step model: no terms given");
    return 0;
}

void stepm_features(const engine_step_shape *sh, double x[STEPM_N_TERMS]) {
    x[STEPM_CONST] = 1;
    x[STEPM_SEQS] = sh->n_seqs;
    x[STEPM_TOKENS] = sh->n_tokens;
    x[STEPM_PREFILL] = sh->n_prefill;
    x[STEPM_KV] = (double)sh->kv_tokens;
}

static double eval_ms(const stepm_params *p, const engine_step_shape *sh) {
    double x[STEPM_N_TERMS], t = 0;
    stepm_features(sh, x);
    for (int i = 0; i < STEPM_N_TERMS; i++)
        t += p->coef[i] * x[i];
    return t;
}

double stepm_eval_s(const stepm_params *p, const engine_step_shape *sh) {
    double s = 1e-3 * eval_ms(p, sh);
    return s > STEPM_MIN_S ? s : STEPM_MIN_S;
}

/* ---- params file ---- */

/* Reads a whole file into a NUL-terminated buffer (at most 16 MiB: params and traces). */
static char *slurp(const char *path, weft_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        weft_errf(err, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= (size_t)16 << 20) {
                fclose(f);
                free(buf);
                weft_errf(err, "%s: larger than 16 MiB", path);
                return NULL;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf); /* reported below: never a silently truncated file */
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    if (!buf) {
        fclose(f);
        weft_errf(err, "%s: out of memory", path);
        return NULL;
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        weft_errf(err, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

/* Splits text into lines in place; calls fn(line, lineno) for each; stops at the first error. */
typedef int (*line_fn)(void *ctx, char *line, int lineno, weft_err *err);
static int each_line(char *text, line_fn fn, void *ctx, weft_err *err) {
    int lineno = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        lineno++;
        size_t len = strlen(p);
        if (len && p[len - 1] == '\r') p[len - 1] = 0;
        if (fn(ctx, p, lineno, err) != 0) return -1;
        if (!nl) break;
        p = nl + 1;
    }
    return 0;
}

typedef struct parse_ctx {
    const char *name;
    stepm_params *p;
    bool have_version;
    unsigned seen;
} parse_ctx;

static int parse_line(void *vctx, char *line, int lineno, weft_err *err) {
    parse_ctx *c = vctx;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    char key[32], val[64], extra[8];
    int k = sscanf(line, "%31s %63s %7s", key, val, extra);
    if (k <= 0) return 0; /* blank or comment */
    if (k != 2)
        return weft_errf(err, "%s:%d: expected 'NAME VALUE', got '%s'", c->name, lineno, line);
    if (!c->have_version) {
        if (strcmp(key, "stepm") || strcmp(val, "1"))
            return weft_errf(err, "%s:%d: the first line must be 'stepm 1' (the format version)",
                             c->name, lineno);
        c->have_version = true;
        return 0;
    }
    int t = term_of(key, strlen(key));
    if (t < 0)
        return weft_errf(err, "%s:%d: unknown term '%s' (terms: const, seqs, tokens, prefill, kv)",
                         c->name, lineno, key);
    if (c->seen & (1u << t))
        return weft_errf(err, "%s:%d: term '%s' given twice", c->name, lineno, key);
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (end == val || *end || errno == ERANGE || !isfinite(v))
        return weft_errf(err, "%s:%d: term '%s': '%s' is not a finite number", c->name, lineno,
                         key, val);
    c->seen |= 1u << t;
    c->p->coef[t] = v;
    return 0;
}

int stepm_parse(const char *text, const char *name, stepm_params *p, weft_err *err) {
    char *copy = strdup(text ? text : "");
    if (!copy) return weft_errf(err, "%s: out of memory", name);
    memset(p, 0, sizeof *p);
    parse_ctx c = {name, p, false, 0};
    int rc = each_line(copy, parse_line, &c, err);
    free(copy);
    if (rc == 0 && !c.have_version)
        rc = weft_errf(err, "%s: empty (no 'stepm 1' line)", name);
    if (rc == 0 && !c.seen) rc = weft_errf(err, "%s: no terms", name);
    return rc;
}

int stepm_load(const char *path, stepm_params *p, weft_err *err) {
    char *text = slurp(path, err);
    if (!text) return -1;
    int rc = stepm_parse(text, path, p, err);
    free(text);
    return rc;
}

int stepm_save(const char *path, const stepm_params *p, unsigned mask, const char *header,
               weft_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return weft_errf(err, "%s: %s", path, strerror(errno));
    for (const char *h = header; h && *h;) {
        size_t len = strcspn(h, "\n");
        fprintf(f, "# %.*s\n", (int)len, h);
        h += len;
        if (*h) h++;
    }
    fprintf(f, "stepm 1\n");
    for (int i = 0; i < STEPM_N_TERMS; i++)
        if ((mask & (1u << i)) || p->coef[i] != 0)
            fprintf(f, "%-8s %.9g\n", term_names[i], p->coef[i]);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) return weft_errf(err, "%s: write error", path);
    return 0;
}

/* ---- traces ---- */

typedef struct trace_ctx {
    const char *name;
    stepm_trace *t;
    int run; /* current run index, -1 = none yet */
} trace_ctx;

static int add_run(trace_ctx *c, const char *what, weft_err *err) {
    stepm_trace *t = c->t;
    if (t->n_runs == t->cap_runs) {
        int cap = t->cap_runs ? 2 * t->cap_runs : 8;
        char **nv = realloc(t->runs, sizeof *nv * (size_t)cap);
        if (!nv) return weft_errf(err, "%s: out of memory", c->name);
        t->runs = nv;
        t->cap_runs = cap;
    }
    const char *base = strrchr(c->name, '/');
    base = base ? base + 1 : c->name;
    size_t len = strlen(base) + strlen(what) + 3;
    char *s = malloc(len);
    if (!s) return weft_errf(err, "%s: out of memory", c->name);
    snprintf(s, len, "%s: %s", base, what);
    t->runs[t->n_runs] = s;
    c->run = t->n_runs++;
    return 0;
}

static const char *const step_fields[] = {"T",        "N_SEQS",    "N_TOKENS",
                                          "N_WAITING", "FORWARD_MS", "N_PREFILL",
                                          "KV_TOKENS", "STEP_MS"};

static int trace_line(void *vctx, char *line, int lineno, weft_err *err) {
    trace_ctx *c = vctx;
    char *save = NULL;
    char *kind = strtok_r(line, " \t", &save);
    if (!kind) return 0;
    if (!strcmp(kind, "run")) {
        char *rest = save ? save : (char *)"";
        return add_run(c, *rest ? rest : "run", err);
    }
    if (!strcmp(kind, "admit") || !strcmp(kind, "pause") || !strcmp(kind, "resume") ||
        !strcmp(kind, "preempt") || !strcmp(kind, "finish"))
        return 0;
    if (strcmp(kind, "step"))
        return weft_errf(err, "%s:%d: unknown trace line kind '%s'", c->name, lineno, kind);
    double v[8];
    int nf = 0;
    for (char *tok; (tok = strtok_r(NULL, " \t", &save));) {
        if (nf == 8)
            return weft_errf(err, "%s:%d: step line has more than 8 fields", c->name, lineno);
        char *end;
        errno = 0;
        v[nf] = strtod(tok, &end);
        if (end == tok || *end || !isfinite(v[nf]) || v[nf] < 0)
            return weft_errf(err, "%s:%d: step field %d (%s): '%s' is not a non-negative number",
                             c->name, lineno, nf + 1, step_fields[nf], tok);
        nf++;
    }
    if (nf != 8)
        return weft_errf(err,
                         "%s:%d: step line has %d fields; stepfit needs 8 (T N_SEQS N_TOKENS "
                         "N_WAITING FORWARD_MS N_PREFILL KV_TOKENS STEP_MS; an older trace "
                         "lacks the last three)",
                         c->name, lineno, nf);
    if (v[1] < 1 || v[2] < v[1] || v[5] > v[2] || v[6] < v[2])
        return weft_errf(err, "%s:%d: inconsistent step shape (needs 1 <= N_SEQS <= N_TOKENS, "
                              "N_PREFILL <= N_TOKENS <= KV_TOKENS)", c->name, lineno);
    if (c->run < 0 && add_run(c, "(no run line)", err) != 0) return -1;
    stepm_trace *t = c->t;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 1024;
        stepm_obs *nv = realloc(t->v, sizeof *nv * (size_t)cap);
        if (!nv) return weft_errf(err, "%s: out of memory", c->name);
        t->v = nv;
        t->cap = cap;
    }
    stepm_obs *o = &t->v[t->n++];
    memset(o, 0, sizeof *o);
    o->sh.n_seqs = (int)v[1];
    o->sh.n_tokens = (int)v[2];
    o->sh.n_waiting = (int)v[3];
    o->forward_ms = v[4];
    o->sh.n_prefill = (int)v[5];
    o->sh.kv_tokens = (int64_t)v[6];
    o->step_ms = v[7];
    o->run = c->run;
    return 0;
}

int stepm_trace_parse(const char *text, const char *name, stepm_trace *t, weft_err *err) {
    char *copy = strdup(text ? text : "");
    if (!copy) return weft_errf(err, "%s: out of memory", name);
    trace_ctx c = {name, t, -1};
    int rc = each_line(copy, trace_line, &c, err);
    free(copy);
    return rc;
}

int stepm_trace_read(const char *path, stepm_trace *t, weft_err *err) {
    char *text = slurp(path, err);
    if (!text) return -1;
    int rc = stepm_trace_parse(text, path, t, err);
    free(text);
    return rc;
}

void stepm_trace_free(stepm_trace *t) {
    for (int i = 0; i < t->n_runs; i++)
        free(t->runs[i]);
    free(t->runs);
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* ---- fit ---- */

/* The median of v (sorts v in place): metrics.c's p50, the mean of the middle two when n is even. */
static double median(double *v, int n) {
    metrics_dist d;
    metrics_dist_of(v, n, &d);
    return d.p50;
}

/* Solves the normal equations over the observations with keep[i] set. */
static int solve(const stepm_obs *obs, int n, const bool *keep, const int *terms, int k,
                 stepm_params *out, weft_err *err) {
    double scale[STEPM_N_TERMS] = {0};
    double A[STEPM_N_TERMS][STEPM_N_TERMS + 1];
    memset(A, 0, sizeof A);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        double x[STEPM_N_TERMS];
        stepm_features(&obs[i].sh, x);
        for (int a = 0; a < k; a++)
            scale[a] += x[terms[a]] * x[terms[a]];
        m++;
    }
    if (m < k) return weft_errf(err, "stepfit: %d steps cannot determine %d terms", m, k);
    for (int a = 0; a < k; a++) {
        if (scale[a] <= 0)
            return weft_errf(err, "stepfit: term '%s' is zero in every step: leave it out "
                                  "(--terms)", term_names[terms[a]]);
        scale[a] = sqrt(scale[a] / m);
    }
    for (int i = 0; i < n; i++) {
        if (!keep[i]) continue;
        double x[STEPM_N_TERMS], z[STEPM_N_TERMS];
        stepm_features(&obs[i].sh, x);
        for (int a = 0; a < k; a++)
            z[a] = x[terms[a]] / scale[a];
        for (int a = 0; a < k; a++) {
            for (int b = 0; b < k; b++)
                A[a][b] += z[a] * z[b];
            A[a][k] += z[a] * obs[i].step_ms;
        }
    }
    /* Gaussian elimination with partial pivoting; a tiny pivot = not identifiable */
    double trace = 0;
    for (int a = 0; a < k; a++)
        trace += A[a][a];
    for (int c = 0; c < k; c++) {
        int piv = c;
        for (int r = c + 1; r < k; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        if (fabs(A[piv][c]) < 1e-10 * trace)
            return weft_errf(err, "stepfit: term '%s' cannot be told apart from the others in "
                                  "these steps (collinear): leave it out (--terms)",
                             term_names[terms[c]]);
        if (piv != c)
            for (int j = 0; j <= k; j++) {
                double tmp = A[c][j];
                A[c][j] = A[piv][j];
                A[piv][j] = tmp;
            }
        for (int r = 0; r < k; r++) {
            if (r == c) continue;
            double f = A[r][c] / A[c][c];
            for (int j = c; j <= k; j++)
                A[r][j] -= f * A[c][j];
        }
    }
    memset(out, 0, sizeof *out);
    for (int a = 0; a < k; a++)
        out->coef[terms[a]] = A[a][k] / A[a][a] / scale[a];
    return 0;
}

int stepm_fit(const stepm_obs *obs, int n, unsigned mask, stepm_params *out,
              stepm_fit_info *info, weft_err *err) {
    int terms[STEPM_N_TERMS], k = 0;
    for (int i = 0; i < STEPM_N_TERMS; i++)
        if (mask & (1u << i)) terms[k++] = i;
    if (k == 0) return weft_errf(err, "stepfit: no terms");
    if (n <= 0) return weft_errf(err, "stepfit: no step lines in the traces");
    bool *keep = malloc(sizeof *keep * (size_t)n);
    double *r = malloc(sizeof *r * (size_t)n);
    double *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!keep || !r || !tmp) {
        free(keep);
        free(r);
        free(tmp);
        return weft_errf(err, "stepfit: out of memory");
    }
    for (int i = 0; i < n; i++)
        keep[i] = true;
    int rc = solve(obs, n, keep, terms, k, out, err);
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            r[i] = fabs(1e3 * stepm_eval_s(out, &obs[i].sh) - obs[i].step_ms);
            tmp[i] = r[i];
        }
        double cut = 5 * median(tmp, n);
        int kept = 0;
        for (int i = 0; i < n; i++)
            kept += r[i] <= cut;
        if (cut > 0 && kept < n && kept >= n / 2 && kept >= k) {
            for (int i = 0; i < n; i++)
                keep[i] = r[i] <= cut;
            rc = solve(obs, n, keep, terms, k, out, err);
        }
    }
    if (rc == 0 && info) {
        int m = 0, mp = 0;
        for (int i = 0; i < n; i++) {
            if (!keep[i]) continue;
            double pred = 1e3 * stepm_eval_s(out, &obs[i].sh);
            r[m++] = fabs(pred - obs[i].step_ms);
            if (obs[i].step_ms > 0) tmp[mp++] = 100 * fabs(pred - obs[i].step_ms) / obs[i].step_ms;
        }
        info->n_steps = n;
        info->n_used = m;
        info->median_abs_err_ms = median(r, m);
        info->median_abs_err_pct = median(tmp, mp);
    }
    free(keep);
    free(r);
    free(tmp);
    return rc;
}
