/* bench_wl.h — the workload options shared by `weft bench engine` and `weft bench serve`
 * (requests, arrivals, output lengths, prompts, seed, temperature): one parser, one set of
 * combination rules and one description line, so both benchmarks build the same workload from
 * the same flags. */
#ifndef WEFT_CLI_BENCH_WL_H
#define WEFT_CLI_BENCH_WL_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/cli_args.h"
#include "workload/workload.h"

typedef struct bench_wl {
    wl_spec wl;
    bool have_rate, have_gap, have_out_len, have_out_range, have_prompt_len;
    float temp;
    /* scheduling: per-request deadlines and priorities (docs/scheduling.md) */
    double deadline_ms, deadline_tok_ms;
    int priorities;
} bench_wl;

/* Request q's deadline in ms after its arrival: --deadline-ms + --deadline-per-token-ms times its
 * output length (0 = none). */
double bench_wl_deadline_ms(const bench_wl *w, const wl_request *q);
/* Request i's priority in 0..--priorities-1, deterministic in the seed (0 without the option). */
int bench_wl_priority(const bench_wl *w, int i);

/* The defaults (wl_spec_defaults, greedy). */
void bench_wl_init(bench_wl *w);
/* Tries option s (already consumed from a; its value is read from a). Returns 1 when s is a
 * workload option and parsed, 0 when s is not one of them, -1 after printing an error. */
int bench_wl_option(cli_args *a, const char *s, bench_wl *w);
/* Checks exclusive options and picks the length / prompt sources; -1 after printing. */
int bench_wl_finish(bench_wl *w);
/* "N requests, arrivals; prompts; outputs; seed; token totals" for reports. */
void bench_wl_describe(const bench_wl *w, const wl_workload *wl, char *buf, size_t size);
/* A number option in [lo, hi]; -1 after printing. */
int bench_parse_double(cli_args *a, const char *opt, double lo, double hi, double *out);
/* The usage lines of the workload options. */
extern const char bench_wl_usage[];

#endif
