/* arrivals.c — Poisson arrival times and trace replay (see arrivals.h). */
#include "workload/arrivals.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload/rng.h"

int wl_poisson_arrivals(int n, double gap_mean_s, uint64_t seed, double *out, weft_err *err) {
    if (n < 0 || !(gap_mean_s >= 0) || !isfinite(gap_mean_s))
        return weft_errf(err, "poisson arrivals: need n >= 0 and a finite mean gap >= 0");
    wl_rng r;
    wl_rng_seed(&r, seed);
    double t = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0) t += wl_rng_exponential(&r, gap_mean_s);
        out[i] = t;
    }
    return 0;
}

/* ---- parsing helpers ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil-day formula,
 * written out from its published derivation). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "YYYY-MM-DD HH:MM:SS[.frac]" (or 'T' between date and time) → seconds since the epoch. */
static int parse_datetime(const char *s, double *out) {
    int y, mo, d, h, mi, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[ T]%2d:%2d:%n", &y, &mo, &d, &h, &mi, &n) != 5 || n == 0)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59) return -1;
    char *end;
    errno = 0;
    double sec = strtod(s + n, &end);
    if (errno || end == s + n || *end || !(sec >= 0 && sec < 61)) return -1;
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
    return 0;
}

static int parse_double_field(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

static int parse_count_field(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 100000000) return -1;
    *out = (int)v;
    return 0;
}

static void chomp(char *line) {
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = 0;
}

static int is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return 0;
    return 1;
}

static int push_record(wl_trace *t, int *cap, double ts, int in, int outn) {
    if (t->n == *cap) {
        int nc = *cap ? *cap * 2 : 1024;
        wl_trace_record *r = realloc(t->rec, sizeof *r * (size_t)nc);
        if (!r) return -1;
        t->rec = r;
        *cap = nc;
    }
    t->rec[t->n++] = (wl_trace_record){ts, in, outn};
    return 0;
}

/* Splits a CSV line in place at commas (no quoting: the traces have none). */
static int split_csv(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        if (n == max) return -1;
        fields[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    for (int i = 0; i < n; i++) {
        while (*fields[i] == ' ')
            fields[i]++;
        size_t k = strlen(fields[i]);
        while (k > 0 && fields[i][k - 1] == ' ')
            fields[i][--k] = 0;
    }
    return n;
}

#define MAX_CSV_FIELDS 32

static int load_csv(FILE *fp, const char *path, int max_records, wl_trace *t, weft_err *err) {
    char *line = NULL;
    size_t cap = 0;
    int rcap = 0, lineno = 0, col_t = -1, col_in = -1, col_out = -1, n_cols = 0, rc = -1;
    char *f[MAX_CSV_FIELDS];
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        chomp(line);
        if (is_blank(line)) continue;
        int n = split_csv(line, f, MAX_CSV_FIELDS);
        if (n < 0) {
            weft_errf(err, "%s:%d: more than %d fields", path, lineno, MAX_CSV_FIELDS);
            goto done;
        }
        if (col_t < 0) { /* the header */
            for (int i = 0; i < n; i++) {
                if (!strcmp(f[i], "TIMESTAMP"))
                    col_t = i;
                else if (!strcmp(f[i], "ContextTokens"))
                    col_in = i;
                else if (!strcmp(f[i], "GeneratedTokens"))
                    col_out = i;
            }
            if (col_t < 0 || col_in < 0 || col_out < 0) {
                weft_errf(err,
                          "%s:%d: header must name TIMESTAMP, ContextTokens and GeneratedTokens",
                          path, lineno);
                goto done;
            }
            n_cols = n;
            continue;
        }
        if (n != n_cols) {
            weft_errf(err, "%s:%d: %d fields, the header has %d", path, lineno, n, n_cols);
            goto done;
        }
        double ts;
        int in, outn;
        if (parse_datetime(f[col_t], &ts) && parse_double_field(f[col_t], &ts)) {
            weft_errf(err, "%s:%d: bad TIMESTAMP '%s'", path, lineno, f[col_t]);
            goto done;
        }
        if (parse_count_field(f[col_in], &in)) {
            weft_errf(err, "%s:%d: bad ContextTokens '%s'", path, lineno, f[col_in]);
            goto done;
        }
        if (parse_count_field(f[col_out], &outn)) {
            weft_errf(err, "%s:%d: bad GeneratedTokens '%s'", path, lineno, f[col_out]);
            goto done;
        }
        if (push_record(t, &rcap, ts, in, outn)) {
            weft_errf(err, "%s: out of memory", path);
            goto done;
        }
        if (max_records > 0 && t->n == max_records) break;
    }
    if (col_t < 0) {
        weft_errf(err, "%s: empty file (no CSV header)", path);
        goto done;
    }
    rc = 0;
done:
    free(line);
    return rc;
}

/* An integer-valued JSON number field >= 0. */
static int json_count(json_t *o, const char *key, double *out) {
    json_t *v = json_object_get(o, key);
    if (!v || !json_is_number(v)) return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0) return -1;
    *out = d;
    return 0;
}

static int load_jsonl(FILE *fp, const char *path, int max_records, wl_trace *t, weft_err *err) {
    char *line = NULL;
    size_t cap = 0;
    int rcap = 0, lineno = 0, rc = -1;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        chomp(line);
        if (is_blank(line)) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o || !json_is_object(o)) {
            weft_errf(err, "%s:%d: not a JSON object (%s)", path, lineno,
                      o ? "another JSON value" : je.text);
            json_decref(o);
            goto done;
        }
        double ts_ms, in, outn;
        const char *bad = json_count(o, "timestamp", &ts_ms)      ? "timestamp"
                          : json_count(o, "input_length", &in)    ? "input_length"
                          : json_count(o, "output_length", &outn) ? "output_length"
                                                                  : NULL;
        json_decref(o);
        if (bad) {
            weft_errf(err, "%s:%d: missing or invalid '%s' (a number >= 0)", path, lineno, bad);
            goto done;
        }
        if (in > 1e8 || outn > 1e8) {
            weft_errf(err, "%s:%d: token count out of range", path, lineno);
            goto done;
        }
        if (push_record(t, &rcap, ts_ms / 1000.0, (int)in, (int)outn)) {
            weft_errf(err, "%s: out of memory", path);
            goto done;
        }
        if (max_records > 0 && t->n == max_records) break;
    }
    rc = 0;
done:
    free(line);
    return rc;
}

static int cmp_time(const void *a, const void *b) {
    const wl_trace_record *x = a, *y = b;
    return (x->t_s > y->t_s) - (x->t_s < y->t_s);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

int wl_trace_load(const char *path, double time_scale, int max_records, wl_trace *out,
                  weft_err *err) {
    out->rec = NULL;
    out->n = 0;
    if (!(time_scale > 0) || !isfinite(time_scale))
        return weft_errf(err, "trace: time scale must be a positive number");
    FILE *fp = fopen(path, "r");
    if (!fp) return weft_errf(err, "%s: cannot open: %s", path, strerror(errno));
    int json;
    if (ends_with(path, ".csv"))
        json = 0;
    else if (ends_with(path, ".jsonl") || ends_with(path, ".json"))
        json = 1;
    else {
        int c;
        while ((c = fgetc(fp)) == ' ' || c == '\n' || c == '\r' || c == '\t') {
        }
        json = c == '{';
        rewind(fp);
    }
    int rc = json ? load_jsonl(fp, path, max_records, out, err)
                  : load_csv(fp, path, max_records, out, err);
    if (rc == 0 && ferror(fp)) rc = weft_errf(err, "%s: read error", path);
    fclose(fp);
    if (rc == 0 && out->n == 0) rc = weft_errf(err, "%s: no records", path);
    if (rc) {
        wl_trace_free(out);
        return -1;
    }
    /* Traces are written in time order; sort only a file that is not (ties keep no particular
     * order then, but qsort is deterministic, so a replay still is). */
    int sorted = 1;
    for (int i = 1; i < out->n && sorted; i++)
        sorted = out->rec[i].t_s >= out->rec[i - 1].t_s;
    if (!sorted) qsort(out->rec, (size_t)out->n, sizeof *out->rec, cmp_time);
    double t0 = out->rec[0].t_s;
    for (int i = 0; i < out->n; i++)
        out->rec[i].t_s = (out->rec[i].t_s - t0) * time_scale;
    return 0;
}

void wl_trace_free(wl_trace *t) {
    free(t->rec);
    t->rec = NULL;
    t->n = 0;
}
