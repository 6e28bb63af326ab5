/* bench_wl.c — workload options shared by the bench subcommands (see bench_wl.h). */
#include "cli/bench_wl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char bench_wl_usage[] =
    "workload:\n"
    "  -n, --requests N           number of requests (default 32; with --trace a cap)\n"
    "      --rate R               Poisson arrivals at R requests/s\n"
    "      --gap-mean S           Poisson arrivals with mean gap S seconds (0 = all at once;\n"
    "                             the default)\n"
    "      --trace FILE           replay arrivals and lengths of an Azure CSV or Mooncake\n"
    "                             JSONL trace\n"
    "      --trace-scale X        multiply trace times by X (0.5 = twice as fast)\n"
    "      --output-len N         every request generates N tokens (default 128)\n"
    "      --output-len-range A:B uniform in [A, B]\n"
    "      --lengths-from F       output length = tokens of a real response in a pairs\n"
    "                             JSONL data set\n"
    "      --max-output N         cap on output lengths\n"
    "      --prompt-len N         synthetic prompts of N tokens (default 32)\n"
    "      --prompts-from F       prompts from a pairs JSONL data set (tokenized)\n"
    "      --max-prompt N         cut prompts to N tokens\n"
    "      --temp T               sampling temperature (default 0 = greedy)\n"
    "      --deadline-ms A        every request gets a deadline of A ms after arrival ...\n"
    "      --deadline-per-token-ms B  ... plus B ms per output token it must generate\n"
    "      --priorities K         seeded random request priorities 0..K-1\n"
    "  -s, --seed S               workload and sampling seed (default 1)\n"
    "      --arrival-seed S       Poisson arrival times from seed S instead (the same\n"
    "                             requests; default: --seed's)\n";

void bench_wl_init(bench_wl *w) {
    memset(w, 0, sizeof *w);
    wl_spec_defaults(&w->wl);
}

static int parse_range(cli_args *a, const char *opt, int *lo, int *hi) {
    const char *s;
    if (cli_str(a, opt, &s)) return -1;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10), y = 0;
    int ok = !errno && end != s && *end == ':';
    if (ok) {
        const char *b = end + 1;
        y = strtol(b, &end, 10);
        ok = !errno && end != b && !*end && x >= 1 && y >= x && y <= INT_MAX;
    }
    if (!ok) {
        fprintf(stderr, "weft %s: %s expects A:B with 1 <= A <= B, got '%s'\n", a->cmd, opt, s);
        return -1;
    }
    *lo = (int)x;
    *hi = (int)y;
    return 0;
}

int bench_parse_double(cli_args *a, const char *opt, double lo, double hi, double *out) {
    float f;
    if (cli_float(a, opt, (float)lo, (float)hi, &f)) return -1;
    *out = f;
    return 0;
}

int bench_wl_option(cli_args *a, const char *s, bench_wl *w) {
    int rc;
    double d;
    if (!strcmp(s, "-n") || !strcmp(s, "--requests"))
        rc = cli_int(a, s, 1, 10000000, &w->wl.n_requests);
    else if (!strcmp(s, "--rate")) {
        rc = bench_parse_double(a, s, 1e-6, 1e9, &d);
        if (!rc) w->wl.gap_mean_s = 1.0 / d;
        w->have_rate = true;
    } else if (!strcmp(s, "--gap-mean")) {
        rc = bench_parse_double(a, s, 0, 1e6, &w->wl.gap_mean_s);
        w->have_gap = true;
    } else if (!strcmp(s, "--trace"))
        rc = cli_str(a, s, &w->wl.trace);
    else if (!strcmp(s, "--trace-scale"))
        rc = bench_parse_double(a, s, 1e-6, 1e6, &w->wl.trace_scale);
    else if (!strcmp(s, "--output-len")) {
        rc = cli_int(a, s, 1, 1 << 20, &w->wl.output_len);
        w->have_out_len = true;
    } else if (!strcmp(s, "--output-len-range")) {
        rc = parse_range(a, s, &w->wl.output_lo, &w->wl.output_hi);
        w->have_out_range = true;
    } else if (!strcmp(s, "--lengths-from"))
        rc = cli_str(a, s, &w->wl.lengths_from);
    else if (!strcmp(s, "--max-output"))
        rc = cli_int(a, s, 1, 1 << 20, &w->wl.max_output);
    else if (!strcmp(s, "--prompt-len")) {
        rc = cli_int(a, s, 1, 1 << 20, &w->wl.prompt_len);
        w->have_prompt_len = true;
    } else if (!strcmp(s, "--prompts-from"))
        rc = cli_str(a, s, &w->wl.prompts_from);
    else if (!strcmp(s, "--max-prompt"))
        rc = cli_int(a, s, 1, 1 << 20, &w->wl.max_prompt);
    else if (!strcmp(s, "--deadline-ms"))
        rc = bench_parse_double(a, s, 0, 1e9, &w->deadline_ms);
    else if (!strcmp(s, "--deadline-per-token-ms"))
        rc = bench_parse_double(a, s, 0, 1e6, &w->deadline_tok_ms);
    else if (!strcmp(s, "--priorities"))
        rc = cli_int(a, s, 1, 1000, &w->priorities);
    else if (!strcmp(s, "--temp"))
        rc = cli_float(a, s, 0, 100, &w->temp);
    else if (!strcmp(s, "-s") || !strcmp(s, "--seed"))
        rc = cli_u64(a, s, &w->wl.seed);
    else if (!strcmp(s, "--arrival-seed"))
        rc = cli_u64(a, s, &w->wl.arrival_seed);
    else
        return 0;
    return rc ? -1 : 1;
}

double bench_wl_deadline_ms(const bench_wl *w, const wl_request *q) {
    if (w->deadline_ms <= 0 && w->deadline_tok_ms <= 0) return 0;
    return w->deadline_ms + w->deadline_tok_ms * q->n_output;
}

int bench_wl_priority(const bench_wl *w, int i) {
    if (w->priorities <= 1) return 0;
    uint64_t z = w->wl.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)i * 0xbf58476d1ce4e5b9ULL + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL; /* splitmix64's finaliser */
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (int)(z % (uint64_t)w->priorities);
}

int bench_wl_finish(bench_wl *w) {
    if (w->have_rate && w->have_gap) {
        fprintf(stderr, "weft bench: --rate and --gap-mean are exclusive\n");
        return -1;
    }
    if (w->wl.trace && (w->have_rate || w->have_gap)) {
        fprintf(stderr, "weft bench: --trace gives the arrival times; drop --rate/--gap-mean\n");
        return -1;
    }
    if (w->have_out_len + w->have_out_range + (w->wl.lengths_from != NULL) > 1) {
        fprintf(stderr, "weft bench: --output-len, --output-len-range and --lengths-from are "
                        "exclusive\n");
        return -1;
    }
    if (w->have_prompt_len && w->wl.prompts_from) {
        fprintf(stderr, "weft bench: --prompt-len and --prompts-from are exclusive\n");
        return -1;
    }
    if (!w->wl.trace && !w->have_rate && !w->have_gap) w->wl.gap_mean_s = 0;
    if (w->wl.trace && !w->have_out_len && !w->have_out_range && !w->wl.lengths_from)
        w->wl.output_src = WL_SRC_TRACE;
    else if (w->have_out_range)
        w->wl.output_src = WL_SRC_UNIFORM;
    else if (w->wl.lengths_from)
        w->wl.output_src = WL_SRC_DATASET;
    else
        w->wl.output_src = WL_SRC_FIXED;
    if (w->wl.prompts_from)
        w->wl.prompt_src = WL_SRC_DATASET;
    else if (w->wl.trace && !w->have_prompt_len)
        w->wl.prompt_src = WL_SRC_TRACE;
    else
        w->wl.prompt_src = WL_SRC_FIXED;
    return 0;
}

void bench_wl_describe(const bench_wl *bw, const wl_workload *w, char *buf, size_t size) {
    const wl_spec *s = &bw->wl;
    char arr[256], outl[256], pr[320];
    if (s->trace)
        snprintf(arr, sizeof arr, "arrivals from %s x%g", s->trace, s->trace_scale);
    else if (s->gap_mean_s > 0)
        snprintf(arr, sizeof arr, "Poisson arrivals, mean gap %g s (%.3g req/s)", s->gap_mean_s,
                 1.0 / s->gap_mean_s);
    else
        snprintf(arr, sizeof arr, "all arriving at t=0");
    switch (s->output_src) {
    case WL_SRC_FIXED:
        snprintf(outl, sizeof outl, "%d output tokens", s->output_len);
        break;
    case WL_SRC_UNIFORM:
        snprintf(outl, sizeof outl, "output tokens uniform in [%d, %d]", s->output_lo,
                 s->output_hi);
        break;
    case WL_SRC_DATASET:
        snprintf(outl, sizeof outl, "output lengths from %s", s->lengths_from);
        break;
    default:
        snprintf(outl, sizeof outl, "output lengths from the trace");
        break;
    }
    if (s->max_output) {
        size_t k = strlen(outl);
        snprintf(outl + k, sizeof outl - k, " (cap %d)", s->max_output);
    }
    if (s->prompt_src == WL_SRC_DATASET)
        snprintf(pr, sizeof pr, "prompts from %s", s->prompts_from);
    else if (s->prompt_src == WL_SRC_TRACE)
        snprintf(pr, sizeof pr, "synthetic prompts of the trace's lengths");
    else
        snprintf(pr, sizeof pr, "synthetic %d-token prompts", s->prompt_len);
    char aseed[48] = "";
    if (s->arrival_seed && !s->trace)
        snprintf(aseed, sizeof aseed, " (arrivals: seed %llu)", (unsigned long long)s->arrival_seed);
    snprintf(buf, size,
             "%d requests, %s; %s; %s%s%.0d%s; seed %llu%s; %lld prompt + %lld output tokens; %d "
             "clipped to fit",
             w->n, arr, pr, outl, s->system_prefix ? "; shared system prefix " : "",
             s->system_prefix, s->system_prefix ? " tokens" : "", (unsigned long long)s->seed, aseed,
             (long long)wl_workload_prompt_tokens(w), (long long)wl_workload_output_tokens(w),
             w->n_clipped);
}
