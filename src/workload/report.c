/* report.c — table, CSV and JSON writers for benchmark runs (see report.h). */
#include "workload/report.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static double pct(double part, double whole) {
    return whole > 0 ? 100.0 * part / whole : 0;
}

void report_meta_header(FILE *out, const report_meta *meta) {
    if (!meta) return;
    if (meta->machine) fprintf(out, "machine: %s\n", meta->machine);
    if (meta->model) fprintf(out, "model: %s\n", meta->model);
    if (meta->workload) fprintf(out, "workload: %s\n", meta->workload);
    fprintf(out, "\n");
}

void report_table(FILE *out, const report_meta *meta, const report_run *runs, int n) {
    report_meta_header(out, meta);
    fprintf(out, "| label | mode | kv | done | makespan s | out tok/s | req/s | TTFT p50 ms | "
                 "TTFT p99 ms | TPOT mean ms | e2e p50 s | e2e p99 s | KV live %% | prefilled "
                 "tok | prefix hit tok | preempt | fwd/sample/sched/compact %% | HTTP/net err |\n");
    fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        const metrics_summary *s = &r->sum;
        const engine_stats *st = &r->st;
        double busy =
            st->time_forward_s + st->time_sample_s + st->time_schedule_s + st->time_compact_s;
        fprintf(out,
                "| %s | %s | %s%s | %d/%d | %.2f | %.1f | %.2f | %.1f | %.1f | %.2f | %.2f | "
                "%.2f | %.1f | %llu | %lld | %llu | %.0f/%.0f/%.0f/%.0f | %d/%d |\n",
                r->label ? r->label : "", r->mode, r->kv, r->prefix_sharing ? "+prefix" : "",
                s->n_finished, s->n_requests, s->makespan_s, s->output_tok_per_s, s->req_per_s,
                1e3 * s->ttft_s.p50, 1e3 * s->ttft_s.p99, 1e3 * s->tpot_s.mean, s->e2e_s.p50,
                s->e2e_s.p99, 100.0 * st->kv_live_fraction_mean,
                (unsigned long long)st->tokens_prefilled, (long long)st->kv.prefix_hit_tokens,
                (unsigned long long)st->requests_preempted, pct(st->time_forward_s, busy),
                pct(st->time_sample_s, busy), pct(st->time_schedule_s, busy),
                pct(st->time_compact_s, busy), r->http_errors, r->net_errors);
    }
}

static const char CSV_HEADER[] =
    "label,mode,kv,prefix_sharing,max_running,max_batch_tokens,max_wait_ms,threads,max_seq_len,"
    "kv_tokens,requests,finished,failed,makespan_s,out_tok_s,req_s,prompt_tokens,output_tokens,"
    "ttft_mean_ms,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,tpot_mean_ms,tpot_p50_ms,tpot_p90_ms,"
    "tpot_p99_ms,e2e_mean_s,e2e_p50_s,e2e_p90_s,e2e_p99_s,e2e_max_s,steps,tokens_prefilled,"
    "tokens_decoded,prefix_hit_tokens,preempted,kv_live_frac,kv_capacity_tokens,slot_moves,"
    "bytes_moved,t_forward_s,t_sample_s,t_schedule_s,t_compact_s,wall_s,"
    "http_errors,net_errors,short_outputs";

const char *report_csv_header(void) {
    return CSV_HEADER;
}

/* Labels are the only free text: keep them CSV-safe. */
static void csv_text(FILE *f, const char *s) {
    for (; s && *s; s++)
        fputc(*s == ',' || *s == '\n' || *s == '"' ? ';' : *s, f);
}

int report_csv(const char *path, bool append, const report_run *runs, int n, weft_err *err) {
    bool header = true;
    if (append) {
        struct stat sb;
        if (stat(path, &sb) == 0 && sb.st_size > 0) header = false;
    }
    FILE *f = fopen(path, append ? "a" : "w");
    if (!f) return weft_errf(err, "%s: cannot write: %s", path, strerror(errno));
    if (header) fprintf(f, "%s\n", CSV_HEADER);
    for (int i = 0; i < n; i++) {
        const report_run *r = &runs[i];
        const metrics_summary *s = &r->sum;
        const engine_stats *st = &r->st;
        csv_text(f, r->label);
        fprintf(f, ",%s,%s,%d,%d,%d,%d,%d,%d,%lld,", r->mode, r->kv, r->prefix_sharing ? 1 : 0,
                r->max_running, r->max_batch_tokens, r->max_wait_ms, r->n_threads, r->max_seq_len,
                (long long)r->kv_tokens);
        fprintf(f, "%d,%d,%d,%.6f,%.4f,%.5f,%lld,%lld,", s->n_requests, s->n_finished, s->n_failed,
                s->makespan_s, s->output_tok_per_s, s->req_per_s, (long long)s->prompt_tokens,
                (long long)s->output_tokens);
        fprintf(f, "%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,", 1e3 * s->ttft_s.mean,
                1e3 * s->ttft_s.p50, 1e3 * s->ttft_s.p90, 1e3 * s->ttft_s.p99, 1e3 * s->tpot_s.mean,
                1e3 * s->tpot_s.p50, 1e3 * s->tpot_s.p90, 1e3 * s->tpot_s.p99);
        fprintf(f, "%.6f,%.6f,%.6f,%.6f,%.6f,", s->e2e_s.mean, s->e2e_s.p50, s->e2e_s.p90,
                s->e2e_s.p99, s->e2e_s.max);
        fprintf(f, "%llu,%llu,%llu,%lld,%llu,%.6f,%lld,%lld,%lld,", (unsigned long long)st->steps,
                (unsigned long long)st->tokens_prefilled, (unsigned long long)st->tokens_decoded,
                (long long)st->kv.prefix_hit_tokens, (unsigned long long)st->requests_preempted,
                st->kv_live_fraction_mean, (long long)st->kv.capacity_tokens,
                (long long)st->kv.slot_moves, (long long)st->kv.bytes_moved);
        fprintf(f, "%.6f,%.6f,%.6f,%.6f,%.6f,%d,%d,%d\n", st->time_forward_s, st->time_sample_s,
                st->time_schedule_s, st->time_compact_s, r->wall_s, r->http_errors, r->net_errors,
                r->short_outputs);
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) return weft_errf(err, "%s: write failed", path);
    return 0;
}

static json_t *dist_json(const metrics_dist *d, double scale) {
    return json_pack("{s:i,s:f,s:f,s:f,s:f,s:f}", "n", d->n, "mean", scale * d->mean, "p50",
                     scale * d->p50, "p90", scale * d->p90, "p99", scale * d->p99, "max",
                     scale * d->max);
}

static json_t *run_json(const report_run *r) {
    const metrics_summary *s = &r->sum;
    const engine_stats *st = &r->st;
    json_t *o = json_object();
    if (!o) return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "label", json_string(r->label ? r->label : ""));
    bad |= json_object_set_new(o, "config",
                               json_pack("{s:s,s:s,s:b,s:i,s:i,s:i,s:i,s:i,s:I}", "mode", r->mode,
                                         "kv", r->kv, "prefix_sharing", r->prefix_sharing,
                                         "max_running", r->max_running, "max_batch_tokens",
                                         r->max_batch_tokens, "max_wait_ms", r->max_wait_ms,
                                         "threads", r->n_threads, "max_seq_len", r->max_seq_len,
                                         "kv_tokens", (json_int_t)r->kv_tokens));
    json_t *sum =
        json_pack("{s:i,s:i,s:i,s:i,s:f,s:I,s:I,s:f,s:f,s:f}", "requests", s->n_requests,
                  "finished", s->n_finished, "failed", s->n_failed, "preempted", s->n_preempted,
                  "makespan_s", s->makespan_s, "prompt_tokens", (json_int_t)s->prompt_tokens,
                  "output_tokens", (json_int_t)s->output_tokens, "output_tok_per_s",
                  s->output_tok_per_s, "req_per_s", s->req_per_s, "wall_s", r->wall_s);
    if (sum) {
        bad |= json_object_set_new(sum, "http_errors", json_integer(r->http_errors));
        bad |= json_object_set_new(sum, "net_errors", json_integer(r->net_errors));
        bad |= json_object_set_new(sum, "short_outputs", json_integer(r->short_outputs));
        bad |= json_object_set_new(sum, "ttft_ms", dist_json(&s->ttft_s, 1e3));
        bad |= json_object_set_new(sum, "tpot_ms", dist_json(&s->tpot_s, 1e3));
        bad |= json_object_set_new(sum, "e2e_s", dist_json(&s->e2e_s, 1.0));
    }
    bad |= json_object_set_new(o, "summary", sum);
    bad |= json_object_set_new(
        o, "engine",
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "steps",
                  (json_int_t)st->steps, "tokens_prefilled", (json_int_t)st->tokens_prefilled,
                  "tokens_decoded", (json_int_t)st->tokens_decoded, "requests_finished",
                  (json_int_t)st->requests_finished, "requests_preempted",
                  (json_int_t)st->requests_preempted, "time_forward_s", st->time_forward_s,
                  "time_sample_s", st->time_sample_s, "time_schedule_s", st->time_schedule_s,
                  "time_compact_s", st->time_compact_s, "kv_live_fraction_mean",
                  st->kv_live_fraction_mean, "kv", "capacity_tokens",
                  (json_int_t)st->kv.capacity_tokens, "reserved_tokens",
                  (json_int_t)st->kv.reserved_tokens, "live_tokens", (json_int_t)st->kv.live_tokens,
                  "prefix_hit_tokens", (json_int_t)st->kv.prefix_hit_tokens, "slot_moves",
                  (json_int_t)st->kv.slot_moves, "bytes_moved", (json_int_t)st->kv.bytes_moved));
    json_t *reqs = json_array();
    for (int i = 0; reqs && r->req && i < r->n_req; i++) {
        const metrics_request *q = &r->req[i];
        const char *fin = q->finish >= 0 ? engine_finish_name((engine_finish)q->finish)
                          : q->submitted ? "unfinished"
                                         : "refused";
        json_t *rec =
            json_pack("{s:i,s:f,s:f,s:f,s:i,s:i,s:i,s:s,s:i}", "id", i, "arrival_s", q->arrival_s,
                      "first_token_s", q->first_token_s, "finish_s", q->finish_s, "n_prompt",
                      q->n_prompt, "n_expected", q->n_expected, "n_generated", q->n_generated,
                      "finish", fin, "n_preempted", q->n_preempted);
        if (rec && r->http_status)
            bad |= json_object_set_new(rec, "http_status", json_integer(r->http_status[i]));
        bad |= json_array_append_new(reqs, rec);
    }
    bad |= json_object_set_new(o, "requests", reqs);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int report_json(const char *path, const report_meta *meta, const report_run *runs, int n,
                weft_err *err) {
    json_t *root = json_object(), *arr = json_array();
    int bad = !root || !arr;
    if (!bad && meta) {
        const char *keys[] = {"model", "workload", "machine", "command"};
        const char *vals[] = {meta->model, meta->workload, meta->machine, meta->command};
        for (int i = 0; i < 4; i++)
            if (vals[i]) bad |= json_object_set_new(root, keys[i], json_string(vals[i]));
    }
    for (int i = 0; !bad && i < n; i++)
        bad |= json_array_append_new(arr, run_json(&runs[i]));
    if (!bad) {
        bad |= json_object_set_new(root, "runs", arr);
        arr = NULL;
    }
    int rc = 0;
    if (bad)
        rc = weft_errf(err, "%s: cannot build the JSON document (out of memory)", path);
    else if (json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(8)) != 0)
        rc = weft_errf(err, "%s: cannot write: %s", path, strerror(errno));
    json_decref(arr);
    json_decref(root);
    return rc;
}

const char *report_cpu_name(char *buf, size_t size) {
    char cpu[128] = "unknown CPU";
    FILE *ci = fopen("/proc/cpuinfo", "r");
    if (ci) {
        char line[256];
        while (fgets(line, sizeof line, ci))
            if (!strncmp(line, "model name", 10)) {
                char *p = strchr(line, ':');
                if (p) snprintf(cpu, sizeof cpu, "%s", p + 2);
                cpu[strcspn(cpu, "\n")] = 0;
                break;
            }
        fclose(ci);
    }
    snprintf(buf, size, "%s", cpu);
    return buf;
}

const char *report_machine(char *buf, size_t size) {
    char cpu[128];
    report_cpu_name(cpu, sizeof cpu);
    snprintf(buf, size, "%s, %ld cores online", cpu, sysconf(_SC_NPROCESSORS_ONLN));
    return buf;
}
