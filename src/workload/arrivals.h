/* arrivals.h — when each request of a benchmark arrives, in seconds from the start of the run:
 * a seeded Poisson process (exponential gaps of a given mean), or the replay of a production
 * trace (Azure LLM inference CSV, Mooncake JSONL) that also carries each request's prompt and
 * output token counts. */
#ifndef WEFT_WORKLOAD_ARRIVALS_H
#define WEFT_WORKLOAD_ARRIVALS_H

#include <stdint.h>

#include "weft/error.h"

/* n arrival times: the first at 0, then gaps drawn from an exponential distribution with mean
 * gap_mean_s (a Poisson process of rate 1/gap_mean_s). gap_mean_s == 0 puts every request at
 * t = 0 (a closed burst). Deterministic in seed. Returns 0, or -1 on bad arguments. */
int wl_poisson_arrivals(int n, double gap_mean_s, uint64_t seed, double *out, weft_err *err);

/* One record of a trace: arrival time (seconds after the trace's first record, after scaling)
 * and its token counts. */
typedef struct wl_trace_record {
    double t_s;
    int n_input;
    int n_output;
} wl_trace_record;

typedef struct wl_trace {
    wl_trace_record *rec; /* sorted by t_s; rec[0].t_s == 0 */
    int n;
} wl_trace;

/* Loads a trace. The format follows the file name: *.csv is the Azure LLM inference trace
 * (header naming TIMESTAMP, ContextTokens, GeneratedTokens; TIMESTAMP as
 * "YYYY-MM-DD HH:MM:SS[.frac]" or plain seconds), *.jsonl / *.json is Mooncake's (one object a
 * line with timestamp in ms, input_length, output_length); anything else is sniffed from its
 * first byte. Times become relative to the earliest record and are multiplied by time_scale
 * (> 0; 0.5 replays twice as fast). max_records > 0 keeps only the first max_records records of
 * the file. A malformed line fails the load with "path:line: what is wrong". */
int wl_trace_load(const char *path, double time_scale, int max_records, wl_trace *out,
                  weft_err *err);
void wl_trace_free(wl_trace *t);

#endif
