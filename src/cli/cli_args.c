/* cli_args.c — see cli_args.h. */
#include "cli/cli_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int cli_str(cli_args *a, const char *opt, const char **out) {
    if (a->i >= a->argc) {
        fprintf(stderr, "weft %s: option %s needs a value\n", a->cmd, opt);
        return -1;
    }
    *out = a->argv[a->i++];
    return 0;
}

int cli_int(cli_args *a, const char *opt, int lo, int hi, int *out) {
    const char *s;
    if (cli_str(a, opt, &s)) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "weft %s: %s expects an integer in [%d, %d], got '%s'\n", a->cmd, opt, lo,
                hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int cli_float(cli_args *a, const char *opt, float lo, float hi, float *out) {
    const char *s;
    if (cli_str(a, opt, &s)) return -1;
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "weft %s: %s expects a number in [%g, %g], got '%s'\n", a->cmd, opt, lo, hi,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_u64(cli_args *a, const char *opt, uint64_t *out) {
    const char *s;
    if (cli_str(a, opt, &s)) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "weft %s: %s expects a non-negative integer, got '%s'\n", a->cmd, opt, s);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}
