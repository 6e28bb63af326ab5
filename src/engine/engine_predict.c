/* engine_predict.c — the engine's side of length prediction (docs/scheduling.md): a request's
 * prediction is made when the stepping thread first sees it (so the predictor, which learns
 * online, is only ever touched by that thread), refined once with the end-of-prompt entropy from
 * the logits prefill already produced, and every request that finished with its real length
 * updates the predictor. Also the statistics /metrics and the benchmarks report: predicted vs
 * actual length, upper-quantile coverage, deadlines met and missed, and the time all this costs. */
#include <math.h>

#include "engine/engine_internal.h"

static void set_from_estimate(engine_seq *s, pred_estimate est) {
    float p50 = est.p50 > 1 ? est.p50 : 1;
    float p90 = est.p90 > p50 ? est.p90 : p50;
    s->p50 = p50;
    s->p90 = p90;
}

void engine_predict_new(engine *e, engine_seq *s) {
    if (s->predicted) return;
    s->predicted = true;
    const engine_predictor *p = &e->cfg.predictor;
    if (s->has_feat && p->predict) {
        double t = engine_wall(e);
        set_from_estimate(s, p->predict(p->ctx, &s->feat));
        e->st.time_predict_s += engine_wall(e) - t;
    } else if (s->req.predicted_tokens > 0) {
        s->p50 = s->p90 = (float)s->req.predicted_tokens;
    }
}

void engine_predict_refine(engine *e, engine_seq *s, const float *logits) {
    if (s->refined) return;
    s->refined = true;
    const engine_predictor *p = &e->cfg.predictor;
    if (!s->has_feat || !p->refine || !p->predict) return;
    double t = engine_wall(e);
    p->refine(p->ctx, &s->feat, logits, e->m->cfg.vocab_size);
    set_from_estimate(s, p->predict(p->ctx, &s->feat));
    e->st.time_predict_s += engine_wall(e) - t;
}

void engine_predict_finished(engine *e, engine_seq *s, engine_finish f, engine_event *ev) {
    ev->pred_p50 = s->p50;
    ev->pred_p90 = s->p90;
    ev->deadline_missed = -1;
    if (s->deadline_s > 0) {
        bool ok = f == ENGINE_FINISH_LENGTH || f == ENGINE_FINISH_STOP;
        bool missed = !ok || ev->t_s > s->deadline_s;
        if (f != ENGINE_FINISH_CANCELLED) { /* a caller's cancel is not the scheduler's miss */
            e->st.deadline_requests++;
            e->st.deadline_missed += missed;
        }
        ev->deadline_missed = missed;
    }
    if (f == ENGINE_FINISH_DEADLINE) e->st.requests_dropped++;
    if (f != ENGINE_FINISH_LENGTH && f != ENGINE_FINISH_STOP) return;
    int actual = s->n_generated;
    if (s->p50 > 0) {
        e->st.pred_n++;
        e->st.pred_tokens_sum += s->p50;
        e->st.actual_tokens_sum += actual;
        e->st.pred_abs_log_err_sum += fabs(log((s->p50 + 1.0) / (actual + 1.0)));
        e->st.pred_p90_covered += actual <= s->p90;
    }
    /* A request cut by max_tokens says only "at least this long"; learning from it would teach
     * the model the caller's cap. Benchmarks force lengths (ignore_eos), so there the cap is the
     * real length: learn from those too. */
    const engine_predictor *p = &e->cfg.predictor;
    if (s->has_feat && p->update && (f == ENGINE_FINISH_STOP || s->req.ignore_eos)) {
        double t = engine_wall(e);
        p->update(p->ctx, &s->feat, actual);
        e->st.time_predict_s += engine_wall(e) - t;
    }
}

int engine_predicted_blocks(const engine *e, const engine_seq *s) {
    int cap = s->req.sched_max_tokens > 0 ? s->req.sched_max_tokens : s->req.max_tokens;
    double out = s->p90 > 0 ? s->p90 : cap;
    if (out > cap) out = cap;
    int total = s->n_prompt + (int)ceil(out);
    if (total < s->n_tokens + 1) total = s->n_tokens + 1; /* ran past the prediction */
    if (total > e->max_seq_len) total = e->max_seq_len;
    return kv_cache_blocks_for(e->kv, total);
}
