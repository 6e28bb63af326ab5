/* engine_pause.c — preemptive scheduling in the engine: pausing a running sequence for a much
 * shorter waiting one (the decision is the policy's, sched_pick_pause in src/sched/sched_pause.c),
 * and giving a paused sequence's cache back when memory runs short.
 * A pause keeps the sequence's KV cache: it moves from running to waiting with its handle,
 * computed tokens and sampler intact, and admission later resumes it exactly where it stopped
 * (seq_admit), so the output is the same as if it had never paused and nothing is recomputed.
 * Only when the cache cannot hold a running sequence's next token or a new admission does a
 * paused sequence lose its cache (the worst-ranked first) and fall back to recompute, as an
 * ordinary preemption (it then counts in requests_preempted and emits PREEMPTED).
 * Pausing runs only in FUSED mode (static batches keep their members by definition), only when
 * the running batch is full (otherwise the short request is simply admitted), and never touches
 * split requests (their client's states are gone) or prefilling sequences. */
#include "engine/engine_internal.h"

void seq_drop_kv(engine *e, engine_seq *s) {
    if (s->h >= 0) {
        kv_seq_close(e->kv, s->h);
        e->closed_since_compact = true;
    }
    s->h = -1;
    s->paused = false;
}

bool engine_release_paused(engine *e, const engine_seq *except) {
    for (int i = e->waiting.n - 1; i >= 0; i--) {
        engine_seq *s = e->waiting.v[i];
        if (s == except || !s->paused || s->h < 0) continue;
        seq_drop_kv(e, s);
        s->n_computed = 0;
        s->n_preempted++;
        e->st.requests_preempted++;
        seq_emit(e, s, ENGINE_EV_PREEMPTED, 0, ENGINE_FINISH_LENGTH);
        return true;
    }
    return false;
}

void engine_pause_for_waiting(engine *e, double now) {
    if (e->cfg.mode != ENGINE_FUSED || !e->policy->remaining) return;
    if (e->running.n < e->cfg.max_running) return;
    int n_wait = e->waiting.n; /* paused sequences are appended behind: not candidates here */
    for (int w = 0; w < n_wait && e->running.n > 0; w++) {
        int n = 0;
        for (int i = 0; i < e->running.n; i++) {
            engine_seq *s = e->running.v[i];
            seq_info(s, &e->b_info[n]);
            e->b_info[n].step_s = e->st.step_s_ewma;
            e->b_info[n].steps_run = (int)(e->st.steps - s->admit_step);
            e->b_info[n].pausable = s->state == SEQ_DECODING && !s->req.split && !s->padding &&
                                    s->h >= 0;
            e->b_victims[n++] = s;
        }
        sched_info wi;
        seq_info(e->waiting.v[w], &wi);
        wi.step_s = e->st.step_s_ewma;
        int k = sched_pick_pause(e->policy, e->b_info, n, &wi, now);
        if (k < 0 || k >= n) return; /* admission follows rank order: nobody behind may jump */
        engine_seq *v = e->b_victims[k];
        seq_list_remove_at(&e->running, seq_list_find(&e->running, v));
        v->state = SEQ_WAITING;
        v->paused = true;
        v->plan_n = 0;
        v->wait_from = now;
        e->st.requests_paused++;
        e->waiting.v[e->waiting.n++] = v; /* capacity reserved in take_inbox */
    }
}
