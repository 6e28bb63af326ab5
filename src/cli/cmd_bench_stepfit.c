/* cmd_bench_stepfit.c — `weft bench stepfit`: fits the virtual clock's step-time model
 * (src/workload/step_model.h) to the step lines of scheduling traces (`weft bench engine
 * --sched-trace F`), writes the params file, and reports the fit: the median absolute error per
 * step, per step shape (batch size, decode-only or with prefill), and each run's modelled
 * against measured total step time. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "workload/step_model.h"

#define STEPFIT_MAX_TRACES 64
#define STEPFIT_DEFAULT_TERMS "const,seqs,tokens,prefill,kv"

static void usage(FILE *out) {
    fprintf(out,
            "usage: weft bench stepfit --trace F [F...] --out PARAMS [options]\n"
            "  --trace F...    scheduling traces (weft bench engine --sched-trace), up to %d\n"
            "  --out PARAMS    the fitted step-time model (for --virtual-clock)\n"
            "  --terms LIST    model terms, of const,seqs,tokens,prefill,kv (default %s)\n"
            "  --report F      write the fit report (markdown) to F (default stdout)\n",
            STEPFIT_MAX_TRACES, STEPFIT_DEFAULT_TERMS);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double med(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void report(FILE *f, const stepm_trace *t, const stepm_params *p, unsigned mask,
                   const stepm_fit_info *fi, double *meas, double *model, double *errs) {
    fprintf(f, "step-time model: t_ms =");
    for (int i = 0, first = 1; i < STEPM_N_TERMS; i++)
        if (mask & (1u << i)) {
            fprintf(f, "%s %.6g%s%s", first ? "" : " +", p->coef[i], i ? " * " : "",
                    i ? stepm_term_name(i) : "");
            first = 0;
        }
    fprintf(f, "\n\nsteps: %d in %d runs, %d used by the fit (the rest: residual over 5x the "
               "median, refit once)\nmedian |error| per step: %.3f ms (%.1f%%)\n\n",
            fi->n_steps, t->n_runs, fi->n_used, fi->median_abs_err_ms, fi->median_abs_err_pct);
    /* per shape: batch size x decode-only / with prefill */
    int maxb = 0;
    for (int i = 0; i < t->n; i++)
        if (t->v[i].sh.n_seqs > maxb) maxb = t->v[i].sh.n_seqs;
    fprintf(f, "| batch | kind | steps | measured median ms | model median ms | median |error| %% "
               "|\n|---:|---|---:|---:|---:|---:|\n");
    for (int b = 1; b <= maxb; b++)
        for (int kind = 0; kind < 2; kind++) {
            int m = 0;
            for (int i = 0; i < t->n; i++) {
                const stepm_obs *o = &t->v[i];
                if (o->sh.n_seqs != b || (o->sh.n_prefill > 0) != kind) continue;
                double pm = 1e3 * stepm_eval_s(p, &o->sh);
                meas[m] = o->step_ms;
                model[m] = pm;
                errs[m] = o->step_ms > 0 ? 100 * fabs(pm - o->step_ms) / o->step_ms : 0;
                m++;
            }
            if (!m) continue;
            double a = med(meas, m), bm = med(model, m), e = med(errs, m);
            fprintf(f, "| %d | %s | %d | %.2f | %.2f | %.1f |\n", b, kind ? "with prefill" : "decode",
                    m, a, bm, e);
        }
    fprintf(f, "\n| run | steps | measured total s | model total s | model / measured |\n"
               "|---|---:|---:|---:|---:|\n");
    for (int r = 0; r < t->n_runs; r++) {
        double ms = 0, mm = 0;
        int m = 0;
        for (int i = 0; i < t->n; i++) {
            if (t->v[i].run != r) continue;
            ms += t->v[i].step_ms;
            mm += 1e3 * stepm_eval_s(p, &t->v[i].sh);
            m++;
        }
        if (!m) continue;
        fprintf(f, "| %s | %d | %.2f | %.2f | %.3f |\n", t->runs[r], m, ms / 1e3, mm / 1e3,
                ms > 0 ? mm / ms : 0);
    }
}

int cmd_bench_stepfit(int argc, char **argv) {
    const char *traces[STEPFIT_MAX_TRACES];
    int n_traces = 0;
    const char *out = NULL, *terms = STEPFIT_DEFAULT_TERMS, *report_path = NULL;
    cli_args a = {argc, argv, 0, "bench stepfit"};
    while (a.i < a.argc) {
        const char *s = a.argv[a.i++];
        int rc = 0;
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(s, "--trace")) {
            if (a.i >= a.argc || a.argv[a.i][0] == '-') {
                fprintf(stderr, "weft bench stepfit: --trace needs at least one file\n");
                return 2;
            }
            while (a.i < a.argc && a.argv[a.i][0] != '-') {
                if (n_traces == STEPFIT_MAX_TRACES) {
                    fprintf(stderr, "weft bench stepfit: more than %d traces\n",
                            STEPFIT_MAX_TRACES);
                    return 2;
                }
                traces[n_traces++] = a.argv[a.i++];
            }
        } else if (!strcmp(s, "--out"))
            rc = cli_str(&a, s, &out);
        else if (!strcmp(s, "--terms"))
            rc = cli_str(&a, s, &terms);
        else if (!strcmp(s, "--report"))
            rc = cli_str(&a, s, &report_path);
        else {
            fprintf(stderr, "weft bench stepfit: unknown option '%s'\n", s);
            usage(stderr);
            return 2;
        }
        if (rc) return 2;
    }
    if (!n_traces || !out) {
        fprintf(stderr, "weft bench stepfit: --trace and --out are required\n");
        usage(stderr);
        return 2;
    }
    weft_err err = {{0}};
    unsigned mask;
    if (stepm_terms_parse(terms, &mask, &err)) {
        fprintf(stderr, "weft bench stepfit: --terms: %s\n", err.msg);
        return 2;
    }
    stepm_trace t = {0};
    for (int i = 0; i < n_traces; i++)
        if (stepm_trace_read(traces[i], &t, &err)) {
            fprintf(stderr, "weft bench stepfit: %s\n", err.msg);
            stepm_trace_free(&t);
            return 1;
        }
    stepm_params p;
    stepm_fit_info fi;
    if (stepm_fit(t.v, t.n, mask, &p, &fi, &err)) {
        fprintf(stderr, "weft bench stepfit: %s\n", err.msg);
        stepm_trace_free(&t);
        return 1;
    }
    char header[1024];
    int hn = snprintf(header, sizeof header,
                      "weft step-time model (src/workload/step_model.h), fitted by weft bench "
                      "stepfit\nfrom %d steps (%d used) of %d traces; median |error| per step "
                      "%.3f ms (%.1f%%)\nterms: %s",
                      fi.n_steps, fi.n_used, n_traces, fi.median_abs_err_ms,
                      fi.median_abs_err_pct, terms);
    if (hn < 0 || hn >= (int)sizeof header) header[sizeof header - 1] = 0;
    int rc = 0;
    if (stepm_save(out, &p, mask, header, &err)) {
        fprintf(stderr, "weft bench stepfit: %s\n", err.msg);
        rc = 1;
    }
    double *buf = malloc(sizeof *buf * 3 * (size_t)(t.n > 0 ? t.n : 1));
    FILE *f = report_path ? fopen(report_path, "w") : stdout;
    if (!buf || !f) {
        fprintf(stderr, "weft bench stepfit: cannot write the report%s%s\n",
                report_path ? " to " : "", report_path ? report_path : "");
        rc = 1;
    } else {
        report(f, &t, &p, mask, &fi, buf, buf + t.n, buf + 2 * t.n);
        if (report_path) {
            bool bad = ferror(f) != 0;
            if (fclose(f) != 0 || bad) {
                fprintf(stderr, "weft bench stepfit: %s: write error\n", report_path);
                rc = 1;
            }
        }
    }
    free(buf);
    stepm_trace_free(&t);
    return rc;
}
