/* workers.c — the server's engines ("workers") and strategic offloading between them. Each
 * worker is an engine with its own kernel threads, KV cache, scheduling policy and length model
 * (which learns online on that engine's thread). Worker 0 is the primary; with --workers N > 1
 * the others are secondaries (--secondary-threads, --secondary-max-running), e.g. a slower CPU
 * worker beside a fast one. A request goes to a secondary only when the primary's predicted
 * queueing delay plus its predicted service time would miss the request's deadline_ms and the
 * secondary's would not (sched_offload_pick). The prediction for routing comes from a separate,
 * read-only copy of the length model, so HTTP threads never touch a worker's learning model.
 * Also renders the scheduling metrics of /metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"
#include "weft/sched.h"

static pred_model *load_predictor(const srv_config *c, weft_err *err) {
    if (!strcmp(c->predictor, "none")) return NULL;
    if (!strcmp(c->predictor, "default")) return pred_model_default(err);
    return pred_model_load(c->predictor, err);
}

static bool predicting(const srv_config *c) {
    return strcmp(c->predictor, "none") != 0;
}

int workers_start(srv *s, weft_err *err) {
    const srv_config *c = s->cfg;
    int n = c->workers > 0 ? c->workers : 1;
    if (n > SRV_MAX_WORKERS) return weft_errf(err, "at most %d workers", SRV_MAX_WORKERS);
    /* a tensor-parallel model drives its follower ranks from one engine's steps; a second
     * engine's forward passes would interleave with them */
    if (n > 1 && s->tp)
        return weft_errf(err, "--workers %d cannot be combined with --tp (one engine drives the "
                              "ranks)", n);
    if (predicting(c) && !(s->route_pred = load_predictor(c, err))) return -1;
    for (int i = 0; i < n; i++) {
        engine_config ec;
        engine_config_defaults(&ec);
        ec.mode = ENGINE_FUSED;
        ec.n_threads = i == 0 ? c->threads : c->secondary_threads;
        if (i == 0 && c->max_running > 0) ec.max_running = c->max_running;
        if (i > 0) ec.max_running = c->secondary_max_running;
        if (ec.max_running > ec.max_batch_tokens) ec.max_batch_tokens = ec.max_running;
        ec.kv.layout = c->kv_paged ? KV_LAYOUT_PAGED : KV_LAYOUT_DENSE;
        ec.kv.prefix_sharing = c->prefix_sharing;
        ec.kv.dtype = (kv_dtype)c->kv_type;
        ec.kv.capacity_tokens = c->kv_cache_tokens;
        ec.kv.capacity_bytes = c->kv_cache_bytes;
        ec.kv.max_seq_len = s->ctx;
        ec.consolidate = c->consolidate;
        sched_config sc;
        sched_config_defaults(&sc);
        sc.aging_s = c->aging_s;
        if (sched_late_parse(c->late_policy, &sc.late_policy) != 0)
            return weft_errf(err, "unknown --late-policy '%s' (keep, demote or drop)", c->late_policy);
        if (c->laxity_drop) sc.late_policy = SCHED_LATE_DROP;
        if (sched_rtlm_rank_parse(c->rtlm_rank, &sc.rtlm_rank) != 0)
            return weft_errf(err, "unknown --rtlm-rank '%s' (p90 or gittins)", c->rtlm_rank);
        if (sched_preempt_compare_parse(c->preempt_compare, &sc.preempt_compare) != 0)
            return weft_errf(err, "unknown --preempt-compare '%s' (auto, benefit or victim)",
                             c->preempt_compare);
        ec.policy = sched_policy_new(c->policy, &sc);
        if (!ec.policy) return weft_errf(err, "cannot create scheduling policy '%s'", c->policy);
        if (predicting(c)) {
            s->wpred[i] = load_predictor(c, err);
            if (!s->wpred[i]) {
                sched_policy_free(ec.policy);
                return -1;
            }
            ec.predictor = sched_predictor_hooks(s->wpred[i]);
        }
        s->workers[i] = engine_new(s->model, &ec, err); /* owns the policy, even on failure */
        if (!s->workers[i]) return -1;
        s->n_workers = i + 1;
        if (engine_start(s->workers[i], err) != 0) return -1;
    }
    s->eng = s->workers[0];
    return 0;
}

void workers_stop(srv *s) {
    for (int i = 0; i < s->n_workers; i++) {
        engine_stop(s->workers[i]);
        engine_free(s->workers[i]);
        s->workers[i] = NULL;
    }
    for (int i = 0; i < SRV_MAX_WORKERS; i++) {
        pred_model_free(s->wpred[i]);
        s->wpred[i] = NULL;
    }
    pred_model_free(s->route_pred);
    s->route_pred = NULL;
    s->n_workers = 0;
    s->eng = NULL;
}

/* What the router knows about each worker (sched_offload_pick's input), from their stats. A
 * worker that has not stepped yet is assumed as slow as the slowest measured one (same model),
 * else 50 ms per step. /metrics shows the same view (recent step time, predicted delay). */
static void route_loads(const srv *s, const engine_stats *sts, sched_worker_load *w) {
    double guess = 0;
    for (int i = 0; i < s->n_workers; i++)
        if (sts[i].step_s_ewma > guess) guess = sts[i].step_s_ewma;
    if (guess <= 0) guess = 0.05;
    for (int i = 0; i < s->n_workers; i++) {
        const engine_stats st = sts[i];
        w[i] = (sched_worker_load){
            .running = st.running,
            .waiting = st.waiting,
            .max_running = i == 0 ? (s->cfg->max_running > 0 ? s->cfg->max_running : 64)
                                  : s->cfg->secondary_max_running,
            .step_s = st.step_s_ewma,
            .step_s_guess = guess,
            .waiting_tokens = st.waiting_pred_tokens,
            .running_left_tokens = st.running_left_tokens,
        };
    }
}

int workers_route(srv *s, const engine_request *r, const pred_features *f) {
    int k = 0;
    if (s->n_workers > 1 && r->deadline_ms > 0) {
        double pred = r->sched_max_tokens > 0 ? r->sched_max_tokens : r->max_tokens;
        if (s->route_pred && f) {
            pred_estimate est = pred_predict(s->route_pred, f);
            if (est.p50 > 0 && est.p50 < pred) pred = est.p50;
        }
        sched_worker_load w[SRV_MAX_WORKERS];
        engine_stats sts[SRV_MAX_WORKERS];
        for (int i = 0; i < s->n_workers; i++)
            engine_get_stats(s->workers[i], &sts[i]);
        route_loads(s, sts, w);
        k = sched_offload_pick(w, s->n_workers, 1e-3 * r->deadline_ms, pred);
    }
    atomic_fetch_add(&s->routed[k], 1);
    return k;
}

void workers_stats_sum(srv *s, engine_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->n_workers; i++) {
        engine_stats st;
        engine_get_stats(s->workers[i], &st);
        if (i == 0) {
            *out = st;
            continue;
        }
        out->running += st.running;
        out->waiting += st.waiting;
        out->kv.capacity_tokens += st.kv.capacity_tokens;
        out->kv.reserved_tokens += st.kv.reserved_tokens;
    }
}

char *workers_metrics_render(srv *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    const char *pol = s->cfg->policy;
    fprintf(f,
            "# HELP weft_sched_policy The scheduling policy in use (label).\n"
            "# TYPE weft_sched_policy gauge\nweft_sched_policy{policy=\"%s\"} 1\n",
            pol);
    static const struct {
        const char *name, *type, *help;
    } m[] = {
        {"weft_worker_requests_routed_total", "counter",
         "Requests the router sent to each worker (offloading: worker > 0)."},
        {"weft_worker_requests_running", "gauge", "Running batch of each worker."},
        {"weft_worker_requests_waiting", "gauge", "Waiting queue of each worker."},
        {"weft_sched_steps_total", "counter", "Engine steps."},
        {"weft_sched_time_seconds_total", "counter",
         "Scheduler time (queues, ranking, admission, prediction) summed over steps."},
        {"weft_step_time_seconds_total", "counter",
         "Whole step time (scheduler + forward + sampling) summed over steps."},
        {"weft_sched_queue_seconds_total", "counter",
         "Submission-to-admission time summed over admitted requests (per policy)."},
        {"weft_sched_queued_requests_total", "counter", "Requests admitted at least once."},
        {"weft_sched_queue_seconds_max", "gauge", "Longest submission-to-admission time."},
        {"weft_deadline_requests_total", "counter", "Finished requests that had deadline_ms."},
        {"weft_deadline_missed_total", "counter",
         "Of those: finished after the deadline or dropped."},
        {"weft_deadline_dropped_total", "counter", "Requests dropped by --late-policy drop."},
        {"weft_predicted_requests_total", "counter",
         "Finished requests that had a length prediction."},
        {"weft_predicted_tokens_total", "counter", "Their predicted (p50) output tokens, summed."},
        {"weft_actual_tokens_total", "counter", "Their actual output tokens, summed."},
        {"weft_prediction_abs_log_error_total", "counter",
         "Sum of |ln((p50+1)/(actual+1))| (divide by weft_predicted_requests_total)."},
        {"weft_prediction_p90_covered_total", "counter",
         "Predicted requests whose actual length was within the p90 prediction."},
        {"weft_sched_paused_total", "counter",
         "Running requests paused (cache kept) for a much shorter one (spf, rtlm)."},
        {"weft_sched_wait_seconds_max", "gauge",
         "Longest total wait of a finished request (queued, paused or preempted)."},
        {"weft_step_time_recent_seconds", "gauge",
         "Recent step time (EWMA, what the policies and the router price steps with; 0 before "
         "the first step)."},
        {"weft_worker_predicted_delay_seconds", "gauge",
         "The router's predicted queueing delay for a request submitted now (work in front / "
         "slots x step time; an unmeasured worker is priced at the slowest measured one)."},
    };
    enum { NM = sizeof m / sizeof m[0] };
    engine_stats st[SRV_MAX_WORKERS];
    for (int i = 0; i < s->n_workers; i++)
        engine_get_stats(s->workers[i], &st[i]);
    sched_worker_load w[SRV_MAX_WORKERS];
    route_loads(s, st, w);
    for (int k = 0; k < NM; k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m[k].name, m[k].help, m[k].name, m[k].type);
        for (int i = 0; i < s->n_workers; i++) {
            const engine_stats *e = &st[i];
            double v = 0;
            switch (k) {
            case 0:
                v = (double)atomic_load(&s->routed[i]);
                break;
            case 1:
                v = e->running;
                break;
            case 2:
                v = e->waiting;
                break;
            case 3:
                v = (double)e->steps;
                break;
            case 4:
                v = e->time_schedule_s;
                break;
            case 5:
                v = e->time_schedule_s + e->time_forward_s + e->time_sample_s;
                break;
            case 6:
                v = e->queue_s_sum;
                break;
            case 7:
                v = (double)e->queued_requests;
                break;
            case 8:
                v = e->queue_s_max;
                break;
            case 9:
                v = (double)e->deadline_requests;
                break;
            case 10:
                v = (double)e->deadline_missed;
                break;
            case 11:
                v = (double)e->requests_dropped;
                break;
            case 12:
                v = (double)e->pred_n;
                break;
            case 13:
                v = e->pred_tokens_sum;
                break;
            case 14:
                v = e->actual_tokens_sum;
                break;
            case 15:
                v = e->pred_abs_log_err_sum;
                break;
            case 16:
                v = (double)e->pred_p90_covered;
                break;
            case 17:
                v = (double)e->requests_paused;
                break;
            case 18:
                v = e->wait_s_max;
                break;
            case 19:
                v = e->step_s_ewma;
                break;
            default:
                v = sched_offload_delay(&w[i]);
                break;
            }
            fprintf(f, "%s{worker=\"%d\",policy=\"%s\"} %.9g\n", m[k].name, i, pol, v);
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
