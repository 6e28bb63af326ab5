/* report.h — writing benchmark results: a markdown table for people (stdout), one CSV row per run
 * for scripts and plots (one header, appendable across invocations), and a JSON document with
 * every run's configuration, summary, engine counters and per-request records. */
#ifndef WEFT_WORKLOAD_REPORT_H
#define WEFT_WORKLOAD_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/engine.h"
#include "weft/error.h"
#include "workload/metrics.h"

/* One run: one engine configuration over one workload. */
typedef struct report_run {
    const char *label; /* caller's tag, e.g. "lambda=0.5" */
    const char *mode;  /* engine_mode_name */
    const char *kv;    /* "dense" / "paged" */
    bool prefix_sharing;
    int max_running, max_batch_tokens, max_wait_ms, n_threads, max_seq_len;
    int64_t kv_tokens;
    metrics_summary sum;
    engine_stats st;
    double wall_s;              /* the run, submission to last event */
    const metrics_request *req; /* per request (JSON only); may be NULL */
    int n_req;
    /* HTTP runs (weft bench serve): failures by kind; engine runs leave them 0 / NULL */
    int http_errors;        /* a non-200 status or an error event in the stream */
    int net_errors;         /* connection refused, timeout, malformed or truncated response */
    int short_outputs;      /* succeeded with fewer tokens than asked for */
    const int *http_status; /* per request (JSON only), 0 = no response; may be NULL */
    const char *policy;     /* scheduling policy (report_sched.c); NULL = fcfs */
    double aging_s;         /* the policy's aging bound (0 = none) */
} report_run;

/* Context printed once above the table / stored at the top of the JSON. */
typedef struct report_meta {
    const char *model;    /* description of the model */
    const char *workload; /* description of the workload */
    const char *machine;  /* CPU, cores, kernels */
    const char *command;  /* the command line */
} report_meta;

/* The machine / model / workload lines every table starts with (nothing when meta is NULL). */
void report_meta_header(FILE *out, const report_meta *meta);
void report_table(FILE *out, const report_meta *meta, const report_run *runs, int n);
/* The CSV columns, comma-separated, for tests and scripts. */
const char *report_csv_header(void);
/* Writes (append = false) or appends (header only when the file is new or empty) one row per run.
 */
int report_csv(const char *path, bool append, const report_run *runs, int n, weft_err *err);
int report_json(const char *path, const report_meta *meta, const report_run *runs, int n,
                weft_err *err);
/* "<cpu model>, N cores online" for the meta line; buf is filled and returned. */
const char *report_machine(char *buf, size_t size);
/* The CPU model name from /proc/cpuinfo ("unknown CPU" when absent); buf filled and returned. */
const char *report_cpu_name(char *buf, size_t size);

/* ---- scheduling (report_sched.c) ---- */

/* What the scheduling benchmark reports per run, from the per-request records and the engine
 * counters (the latter are zero for HTTP runs). */
typedef struct report_sched_summary {
    int n, n_finished;
    metrics_dist e2e_s, ttft_s, queue_s;
    int deadline_n, deadline_missed; /* requests with a deadline; of those missed or dropped */
    double miss_rate;                /* deadline_missed / deadline_n (0 when none) */
    int pred_n;                      /* finished requests with a prediction */
    double pred_mean, actual_mean;   /* mean predicted p50 and actual output tokens */
    double pred_mae_log;             /* mean |ln((p50+1)/(actual+1))| */
    double p90_coverage;             /* share with actual <= p90 */
    double sched_us_per_step;        /* (time_schedule_s + time_predict_s) / steps, us */
    double sched_overhead_pct;       /* the same / (schedule + forward + sample), percent */
} report_sched_summary;

void report_sched_summarize(const report_run *r, report_sched_summary *out);
/* A markdown table: one row per run with policy, response time, TTFT, queue time, deadlines,
 * predictions and scheduler cost. */
void report_sched_table(FILE *out, const report_meta *meta, const report_run *runs, int n);
const char *report_sched_csv_header(void);
int report_sched_csv(const char *path, bool append, const report_run *runs, int n, weft_err *err);

#endif
