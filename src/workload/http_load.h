/* http_load.h — an open-loop HTTP load generator for OpenAI-compatible servers: posts each
 * request to <url>/v1/completions at its arrival time, streaming (SSE) or not, and records per
 * request the send time, the time of the first chunk carrying text (TTFT), the completion time,
 * the token counts (from the usage chunk when the server sends one, else the text chunks) and
 * the HTTP status. One thread drives every transfer through libcurl's multi interface, so the
 * timing of one request never waits on another's callbacks and at most max_concurrency
 * requests are in flight; each has its own timeout, so a dead or stuck server fails requests
 * rather than hanging the run. The caller must have called curl_global_init. */
#ifndef WEFT_WORKLOAD_HTTP_LOAD_H
#define WEFT_WORKLOAD_HTTP_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/error.h"
#include "workload/metrics.h"

typedef struct hl_config {
    const char *url;     /* base URL, e.g. "http://127.0.0.1:8080" (a trailing "/v1" is fine) */
    const char *api_key; /* sent as "Authorization: Bearer K"; NULL = none */
    const char *model;   /* the request's "model"; NULL = left out */
    bool stream;         /* stream with stream_options.include_usage */
    double temperature;
    uint64_t seed;       /* request i is sent with seed + i */
    int max_concurrency; /* >= 1: later arrivals wait for a free slot */
    double timeout_s;    /* per request, connect to last byte */
} hl_config;

typedef struct hl_request {
    double arrival_s;   /* from the start of the run */
    const char *prompt; /* text */
    int n_prompt;       /* the workload's token count (used when the server reports none) */
    int max_tokens;
    int priority;       /* sent as weft's "priority" when non-zero */
    double deadline_ms; /* sent as weft's "deadline_ms" when > 0 */
    int force_tokens;   /* > 0: sent as weft's bench-only "bench_output_tokens" (<= max_tokens):
                         * the output length, while the server's scheduler sees max_tokens */
} hl_request;

/* Outcome of a run beyond the per-request records. */
typedef struct hl_stats {
    int n_ok;
    int n_http_errors; /* a response with a status other than 200, or an error event in a stream */
    int n_net_errors;  /* connection refused, timeout, malformed or truncated response */
    int n_short;       /* succeeded with fewer tokens than expected (force_tokens, else
                        * max_tokens) (the server ignored
                        * ignore_eos or hit its context) */
    double wall_s;     /* start to the last completion */
    char first_error[400]; /* the first failure, for the user */
} hl_stats;

/* Runs the n requests. out[i] gets request i: arrival_s = when it was sent (seconds from the
 * start; later than its arrival time only when the concurrency limit held it back),
 * first_token_s, finish_s (response complete), n_prompt / n_generated (usage, else the
 * workload's count / text chunks), finish (LENGTH or STOP from finish_reason; ERROR when it
 * failed), submitted = true. http_status (may be NULL) gets each status (0: no response).
 * Returns 0 (failed requests included), or -1 only when the run itself could not be set up. */
int hl_run(const hl_config *c, const hl_request *rq, int n, metrics_request *out, int *http_status,
           hl_stats *st, weft_err *err);

#endif
