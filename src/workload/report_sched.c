/* report_sched.c — the scheduling benchmark's view of a run (see report.h): response time, TTFT
 * and queue-time distributions, deadline misses, predicted vs actual output length and the
 * scheduler's own cost per step, as a markdown table and a CSV with one row per run. A request
 * with a deadline counts as missed when it did not finish (dropped, failed) or finished after
 * arrival + deadline; for engine runs that is the engine's own verdict, for HTTP runs the
 * client's clock. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "workload/report.h"

static bool ok(const metrics_request *q) {
    return q->submitted && q->finish_s >= 0 &&
           (q->finish == ENGINE_FINISH_LENGTH || q->finish == ENGINE_FINISH_STOP);
}

void report_sched_summarize(const report_run *r, report_sched_summary *o) {
    memset(o, 0, sizeof *o);
    o->n = r->n_req;
    const engine_stats *st = &r->st;
    /* The scheduler's cost: the scheduling phase of each step, plus the prediction work done in
     * the sampling phase (refine after prefill, online update at finish). time_predict_s also
     * covers the first prediction, already inside time_schedule_s, so this is an upper bound. */
    double cost = st->time_schedule_s + st->time_predict_s;
    if (st->steps > 0) o->sched_us_per_step = 1e6 * cost / (double)st->steps;
    double busy = st->time_schedule_s + st->time_forward_s + st->time_sample_s;
    if (busy > 0) o->sched_overhead_pct = 100.0 * cost / busy;
    if (!r->req || r->n_req <= 0) return;
    int n = r->n_req;
    double *e2e = malloc(sizeof *e2e * (size_t)n), *ttft = malloc(sizeof *ttft * (size_t)n),
           *queue = malloc(sizeof *queue * (size_t)n);
    if (!e2e || !ttft || !queue) {
        free(e2e);
        free(ttft);
        free(queue);
        return; /* the summary stays zero: out of memory is reported by the caller's counts */
    }
    int ne = 0, nt = 0, nq = 0, covered = 0;
    double pred_sum = 0, act_sum = 0, err_sum = 0;
    for (int i = 0; i < n; i++) {
        const metrics_request *q = &r->req[i];
        bool done = ok(q);
        if (q->deadline_s > 0) {
            o->deadline_n++;
            bool missed = q->deadline_missed == 1 || !done ||
                          q->finish_s - q->arrival_s > q->deadline_s + 1e-9;
            o->deadline_missed += missed;
        }
        if (!done) continue;
        o->n_finished++;
        e2e[ne++] = q->finish_s - q->arrival_s;
        if (q->first_token_s >= 0) ttft[nt++] = q->first_token_s - q->arrival_s;
        queue[nq++] = q->queue_s;
        if (q->pred_p50 > 0) {
            o->pred_n++;
            pred_sum += q->pred_p50;
            act_sum += q->n_generated;
            err_sum += fabs(log((q->pred_p50 + 1.0) / (q->n_generated + 1.0)));
            covered += q->n_generated <= q->pred_p90;
        }
    }
    metrics_dist_of(e2e, ne, &o->e2e_s);
    metrics_dist_of(ttft, nt, &o->ttft_s);
    metrics_dist_of(queue, nq, &o->queue_s);
    if (o->deadline_n) o->miss_rate = (double)o->deadline_missed / o->deadline_n;
    if (o->pred_n) {
        o->pred_mean = pred_sum / o->pred_n;
        o->actual_mean = act_sum / o->pred_n;
        o->pred_mae_log = err_sum / o->pred_n;
        o->p90_coverage = (double)covered / o->pred_n;
    }
    free(e2e);
    free(ttft);
    free(queue);
}

void report_sched_table(FILE *out, const report_meta *meta, const report_run *runs, int n) {
    report_meta_header(out, meta);
    fprintf(out, "| label | policy | done | out tok/s | e2e mean s | e2e p50 s | e2e p99 s | TTFT "
                 "mean s | TTFT p99 s | queue mean s | queue max s | deadline miss | preempt | "
                 "pred/actual tok | p90 cover | sched us/step | sched %% |\n");
    fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        report_sched_summary s;
        report_sched_summarize(r, &s);
        fprintf(out,
                "| %s | %s | %d/%d | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | "
                "%d/%d (%.1f%%) | %llu | %.0f/%.0f | %.0f%% | %.1f | %.2f |\n",
                r->label ? r->label : "", r->policy ? r->policy : "fcfs", s.n_finished, s.n,
                r->sum.output_tok_per_s, s.e2e_s.mean, s.e2e_s.p50, s.e2e_s.p99, s.ttft_s.mean,
                s.ttft_s.p99, s.queue_s.mean, s.queue_s.max, s.deadline_missed, s.deadline_n,
                100.0 * s.miss_rate, (unsigned long long)r->st.requests_preempted, s.pred_mean,
                s.actual_mean, 100.0 * s.p90_coverage, s.sched_us_per_step, s.sched_overhead_pct);
    }
}

static const char SCHED_CSV_HEADER[] =
    "label,policy,mode,max_running,kv_tokens,aging_s,requests,finished,makespan_s,out_tok_s,"
    "req_s,e2e_mean_s,e2e_p50_s,e2e_p90_s,e2e_p99_s,e2e_max_s,ttft_mean_s,ttft_p50_s,ttft_p99_s,"
    "queue_mean_s,queue_p50_s,queue_p99_s,queue_max_s,deadline_n,deadline_missed,miss_rate,"
    "dropped,preempted,pred_n,pred_mean_tok,actual_mean_tok,pred_mae_log,p90_coverage,steps,"
    "sched_us_per_step,sched_overhead_pct,t_schedule_s,t_predict_s,t_forward_s,paused,resumed,"
    "wait_max_s,paused_overdue";

const char *report_sched_csv_header(void) {
    return SCHED_CSV_HEADER;
}

int report_sched_csv(const char *path, bool append, const report_run *runs, int n, weft_err *err) {
    bool header = true;
    if (append) {
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size > 0) header = false;
    }
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f) return weft_errf(err, "%s: cannot write: %s", path, strerror(errno));
    if (header) fprintf(f, "%s\n", SCHED_CSV_HEADER);
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        const engine_stats *st = &r->st;
        report_sched_summary s;
        report_sched_summarize(r, &s);
        for (const char *c = r->label; c && *c; c++)
            fputc(*c == ',' || *c == '\n' || *c == '"' ? ';' : *c, f);
        fprintf(f, ",%s,%s,%d,%lld,%.3f,%d,%d,%.6f,%.4f,%.5f,", r->policy ? r->policy : "fcfs",
                r->mode ? r->mode : "", r->max_running, (long long)r->kv_tokens, r->aging_s, s.n,
                s.n_finished, r->sum.makespan_s, r->sum.output_tok_per_s, r->sum.req_per_s);
        fprintf(f, "%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,", s.e2e_s.mean, s.e2e_s.p50,
                s.e2e_s.p90, s.e2e_s.p99, s.e2e_s.max, s.ttft_s.mean, s.ttft_s.p50, s.ttft_s.p99);
        fprintf(f, "%.6f,%.6f,%.6f,%.6f,%d,%d,%.5f,%llu,%llu,", s.queue_s.mean, s.queue_s.p50,
                s.queue_s.p99, s.queue_s.max, s.deadline_n, s.deadline_missed, s.miss_rate,
                (unsigned long long)st->requests_dropped,
                (unsigned long long)st->requests_preempted);
        fprintf(f, "%d,%.3f,%.3f,%.5f,%.5f,%llu,%.3f,%.4f,%.6f,%.6f,%.6f,", s.pred_n, s.pred_mean,
                s.actual_mean, s.pred_mae_log, s.p90_coverage, (unsigned long long)st->steps,
                s.sched_us_per_step, s.sched_overhead_pct, st->time_schedule_s, st->time_predict_s,
                st->time_forward_s);
        fprintf(f, "%llu,%llu,%.6f,%llu\n", (unsigned long long)st->requests_paused,
                (unsigned long long)st->pause_resumed, st->wait_s_max,
                (unsigned long long)st->requests_paused_overdue);
    }
    if (fclose(f) != 0) return weft_errf(err, "%s: write failed: %s", path, strerror(errno));
    return 0;
}
