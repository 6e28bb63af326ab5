/* cmd_bench_serve.c — `weft bench serve`: the HTTP counterpart of `weft bench engine`. Builds the
 * same workload from the same flags (src/cli/bench_wl.c), turns each prompt into text (a data
 * set's prompt as text; a synthetic prompt of N tokens as N - 1 common words, one token each in
 * LLaMA vocabularies, plus the BOS the server adds), sends the requests to any OpenAI-compatible
 * /v1/completions endpoint at their arrival times (src/workload/http_load.c) and reports with
 * the engine benchmark's metrics and writers, plus HTTP and network error counts.
 * libcurl's global state is initialised once here (curl_global_init before any handle exists,
 * curl_global_cleanup after the last is gone), the only place weft does so. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/bench_wl.h"
#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/tokenizer.h"
#include "workload/http_load.h"
#include "workload/metrics.h"
#include "workload/prompts.h"
#include "workload/report.h"
#include "workload/rng.h"
#include "workload/workload.h"

#define DEFAULT_VOCAB "../shared/models/tokenizers/tokenizer_llama2_32000.bin"

static void usage(FILE *out) {
    fprintf(out,
            "usage: weft bench serve --url URL [options]\n"
            "target:\n"
            "      --url URL              server base URL (http://HOST:PORT); requests go to\n"
            "                             URL/v1/completions\n"
            "      --api-key K            send Authorization: Bearer K\n"
            "      --model NAME           the request's model field (default: left out)\n"
            "      --no-stream            whole responses (TTFT is then the e2e latency)\n"
            "      --max-concurrency N    requests in flight at once (default 256); later\n"
            "                             arrivals wait for a free slot\n"
            "      --timeout S            per-request timeout in seconds (default 600)\n"
            "      --tokenizer F          llama2.c tokenizer.bin to measure data-set prompts and\n"
            "                             responses (default " DEFAULT_VOCAB ")\n"
            "      --tokenizer-vocab N    entries in --tokenizer (default 32000)\n"
            "%s"
            "output:\n"
            "      --label TEXT           tag for the run in every output\n"
            "      --policy NAME          the server's scheduling policy, for the scheduling\n"
            "                             report (weft bench serve only records it)\n"
            "      --sched-csv F          append a scheduling row (deadline misses, ...) to F\n"
            "      --nominal-max-tokens   weft servers only: send the workload's cap\n"
            "                             (--max-output) as max_tokens and force each length\n"
            "                             with the bench-only field bench_output_tokens, so the\n"
            "                             server's scheduler cannot read the true length\n"
            "      --csv F                one row per run (overwrites F)\n"
            "      --csv-append F         append the row to F (header when F is new)\n"
            "      --json F               configuration, summary and per-request records\n"
            "  -q, --quiet                no progress lines on stderr\n"
            "exit status: 0 all requests succeeded, 1 some failed (or an error), 2 bad options\n",
            bench_wl_usage);
}

typedef struct serve_opts {
    const char *url, *api_key, *model, *tokenizer;
    int tokenizer_vocab;
    bool no_stream, quiet, csv_append, nominal_max_tokens;
    int max_concurrency;
    double timeout_s;
    bench_wl w;
    const char *label, *csv, *json;
    const char *policy, *sched_csv;
} serve_opts;

/* Returns 0, 1 for --help, -1 for a bad option (exit 2). */
static int parse(int argc, char **argv, serve_opts *o) {
    memset(o, 0, sizeof *o);
    bench_wl_init(&o->w);
    o->max_concurrency = 256;
    o->timeout_s = 600;
    o->tokenizer_vocab = 32000;
    cli_args a = {argc, argv, 0, "bench serve"};
    while (a.i < a.argc) {
        const char *s = a.argv[a.i++];
        int rc = 0;
        if (!strcmp(s, "-h") || !strcmp(s, "--help"))
            return 1;
        else if (!strcmp(s, "--url"))
            rc = cli_str(&a, s, &o->url);
        else if (!strcmp(s, "--api-key"))
            rc = cli_str(&a, s, &o->api_key);
        else if (!strcmp(s, "--model"))
            rc = cli_str(&a, s, &o->model);
        else if (!strcmp(s, "--no-stream"))
            o->no_stream = true;
        else if (!strcmp(s, "--max-concurrency"))
            rc = cli_int(&a, s, 1, 4096, &o->max_concurrency);
        else if (!strcmp(s, "--timeout"))
            rc = bench_parse_double(&a, s, 0.001, 1e6, &o->timeout_s);
        else if (!strcmp(s, "--tokenizer"))
            rc = cli_str(&a, s, &o->tokenizer);
        else if (!strcmp(s, "--tokenizer-vocab"))
            rc = cli_int(&a, s, 4, 1 << 24, &o->tokenizer_vocab);
        else if (!strcmp(s, "--label"))
            rc = cli_str(&a, s, &o->label);
        else if (!strcmp(s, "--policy"))
            rc = cli_str(&a, s, &o->policy);
        else if (!strcmp(s, "--sched-csv"))
            rc = cli_str(&a, s, &o->sched_csv);
        else if (!strcmp(s, "--csv"))
            rc = cli_str(&a, s, &o->csv);
        else if (!strcmp(s, "--csv-append")) {
            rc = cli_str(&a, s, &o->csv);
            o->csv_append = true;
        } else if (!strcmp(s, "--json"))
            rc = cli_str(&a, s, &o->json);
        else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
            o->quiet = true;
        else if (!strcmp(s, "--nominal-max-tokens"))
            o->nominal_max_tokens = true;
        else if ((rc = bench_wl_option(&a, s, &o->w)) != 0)
            rc = rc < 0;
        else {
            fprintf(stderr, "weft bench serve: unknown option '%s'\n", s);
            return -1;
        }
        if (rc) return -1;
    }
    if (!o->url) {
        fprintf(stderr, "weft bench serve: --url is required\n");
        return -1;
    }
    if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8)) {
        fprintf(stderr, "weft bench serve: --url expects http://HOST:PORT, got '%s'\n", o->url);
        return -1;
    }
    return bench_wl_finish(&o->w);
}

/* The text of ids (control tokens such as BOS give none); malloc'd, or NULL. */
static char *detokenize(const weft_tokenizer *tok, const int32_t *ids, int n) {
    size_t cap = 64 * (size_t)n + 64, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    tok_decoder d;
    tok_decoder_init(&d, tok);
    for (int i = 0; i < n; i++) {
        int k = tok_decoder_feed(&d, ids[i], s + len, cap - len);
        if (k < 0) {
            free(s);
            return NULL;
        }
        len += (size_t)k;
    }
    int k = tok_decoder_flush(&d, s + len, cap - len);
    if (k < 0) {
        free(s);
        return NULL;
    }
    return s;
}

static char *join_command(int argc, char **argv) {
    size_t n = sizeof "weft bench serve";
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) + 1;
    char *cmd = malloc(n);
    if (!cmd) return NULL;
    strcpy(cmd, "weft bench serve");
    for (int i = 0; i < argc; i++) {
        strcat(cmd, " ");
        strcat(cmd, argv[i]);
    }
    return cmd;
}

int cmd_bench_serve(int argc, char **argv) {
    serve_opts o;
    int p = parse(argc, argv, &o);
    if (p == 1) {
        usage(stdout);
        return 0;
    }
    if (p < 0) return 2;

    weft_err err = {{0}};
    weft_tokenizer *tok = NULL;
    bool need_tok = o.w.wl.output_src == WL_SRC_DATASET || o.w.wl.prompt_src == WL_SRC_DATASET;
    if (need_tok) {
        const char *path = o.tokenizer ? o.tokenizer : DEFAULT_VOCAB;
        tok = tok_load_bin(path, o.tokenizer_vocab, &err);
        if (!tok) {
            fprintf(stderr, "weft bench serve: tokenizer %s: %s\n", path, err.msg);
            return 1;
        }
    }
    int vocab = tok ? tok_vocab_size(tok) : 32000, bos = tok ? tok_bos(tok) : 1;

    int rc = 1;
    bool curl_up = false;
    wl_workload w = {0};
    hl_request *rq = NULL;
    metrics_request *recs = NULL;
    int *status = NULL;
    char *cmd = NULL;
    if (wl_workload_build(&o.w.wl, tok, vocab, bos, &w, &err)) {
        fprintf(stderr, "weft bench serve: workload: %s\n", err.msg);
        goto done;
    }
    rq = calloc((size_t)w.n, sizeof *rq);
    recs = calloc((size_t)w.n, sizeof *recs);
    status = calloc((size_t)w.n, sizeof *status);
    cmd = join_command(argc, argv);
    if (!rq || !recs || !status || !cmd) {
        fprintf(stderr, "weft bench serve: out of memory\n");
        goto done;
    }
    wl_rng words;
    wl_rng_seed(&words, o.w.wl.seed ^ 0x7765667477726473ULL);
    for (int i = 0; i < w.n; i++) {
        const wl_request *q = &w.req[i];
        char *text = NULL;
        if (o.w.wl.prompt_src == WL_SRC_DATASET) {
            text = detokenize(tok, q->prompt, q->n_prompt);
            if (!text) err.msg[0] = 0;
        } else if (wl_prompt_words(&words, q->n_prompt > 1 ? q->n_prompt - 1 : 1, &text, &err)) {
            text = NULL;
        }
        if (!text) {
            fprintf(stderr, "weft bench serve: prompt %d: %s\n", i,
                    err.msg[0] ? err.msg : "cannot build its text");
            goto done;
        }
        rq[i].arrival_s = q->arrival_s;
        rq[i].prompt = text;
        rq[i].n_prompt = q->n_prompt;
        rq[i].max_tokens = q->n_output;
        if (o.nominal_max_tokens && o.w.wl.max_output > q->n_output) {
            rq[i].max_tokens = o.w.wl.max_output; /* as in-process: sched_max_tokens */
            rq[i].force_tokens = q->n_output;
        }
        rq[i].priority = bench_wl_priority(&o.w, i);
        rq[i].deadline_ms = bench_wl_deadline_ms(&o.w, q);
    }

    CURLcode cc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (cc != CURLE_OK) {
        fprintf(stderr, "weft bench serve: curl_global_init: %s\n", curl_easy_strerror(cc));
        goto done;
    }
    curl_up = true;

    char wdesc[1024], machine[256], target[768];
    bench_wl_describe(&o.w, &w, wdesc, sizeof wdesc);
    report_machine(machine, sizeof machine);
    snprintf(target, sizeof target, "%s (model %s, %s, max concurrency %d, timeout %g s)", o.url,
             o.model ? o.model : "unnamed", o.no_stream ? "not streamed" : "streamed",
             o.max_concurrency, o.timeout_s);
    if (!o.quiet) fprintf(stderr, "bench serve: %s\nbench serve: %s\n", target, wdesc);

    hl_config hc = {o.url,    o.api_key,   o.model,           !o.no_stream,
                    o.w.temp, o.w.wl.seed, o.max_concurrency, o.timeout_s};
    hl_stats hs;
    if (hl_run(&hc, rq, w.n, recs, status, &hs, &err)) {
        fprintf(stderr, "weft bench serve: %s\n", err.msg);
        goto done;
    }
    for (int i = 0; i < w.n; i++) { /* the client's clock judges deadlines over HTTP */
        recs[i].deadline_s = 1e-3 * rq[i].deadline_ms;
        recs[i].priority = rq[i].priority;
        recs[i].deadline_missed = -1;
    }
    report_run r;
    memset(&r, 0, sizeof r);
    if (metrics_summarize(recs, w.n, &r.sum, &err)) {
        fprintf(stderr, "weft bench serve: %s\n", err.msg);
        goto done;
    }
    r.label = o.label;
    r.mode = o.no_stream ? "http-whole" : "http-stream";
    r.kv = "-";
    r.max_running = o.max_concurrency;
    r.wall_s = hs.wall_s;
    r.req = recs;
    r.n_req = w.n;
    r.http_errors = hs.n_http_errors;
    r.net_errors = hs.n_net_errors;
    r.short_outputs = hs.n_short;
    r.http_status = status;
    r.policy = o.policy;
    if (!o.quiet) {
        fprintf(stderr,
                "bench serve: %d/%d succeeded (%d HTTP errors, %d network errors, %d "
                "short), makespan %.2f s, %.1f output tok/s\n",
                hs.n_ok, w.n, hs.n_http_errors, hs.n_net_errors, hs.n_short, r.sum.makespan_s,
                r.sum.output_tok_per_s);
    }
    if (hs.first_error[0]) fprintf(stderr, "weft bench serve: first failure: %s\n", hs.first_error);
    report_meta meta = {target, wdesc, machine, cmd};
    report_table(stdout, &meta, &r, 1);
    fflush(stdout);
    int failed = hs.n_ok < w.n;
    if (o.policy || o.sched_csv) {
        fprintf(stdout, "\nscheduling (client clock; queue time is not visible over HTTP):\n\n");
        report_sched_table(stdout, NULL, &r, 1);
    }
    if (o.sched_csv && report_sched_csv(o.sched_csv, true, &r, 1, &err)) {
        fprintf(stderr, "weft bench serve: %s\n", err.msg);
        failed = 1;
    }
    if (o.csv && report_csv(o.csv, o.csv_append, &r, 1, &err)) {
        fprintf(stderr, "weft bench serve: %s\n", err.msg);
        failed = 1;
    }
    if (o.json && report_json(o.json, &meta, &r, 1, &err)) {
        fprintf(stderr, "weft bench serve: %s\n", err.msg);
        failed = 1;
    }
    rc = failed ? 1 : 0;
done:
    if (curl_up) curl_global_cleanup();
    if (rq)
        for (int i = 0; i < w.n; i++)
            free((char *)rq[i].prompt);
    free(rq);
    free(recs);
    free(status);
    free(cmd);
    wl_workload_free(&w);
    tok_free(tok);
    return rc;
}
