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
 * split requests (their client's states are gone) or prefilling sequences.
 * The hard wait bound (sched_bound.c) is enforced here too: a waiting request that is overdue
 * (rank_waiting ranks it first) pauses a running one when the batch is full, whatever the
 * policy's own preemption rule says, so it is admitted in this step. */
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
        engine_trace(e, "preempt %.4f %llu %d\n", engine_clock(e), (unsigned long long)s->req.id,
                     s->n_generated);
        seq_emit(e, s, ENGINE_EV_PREEMPTED, 0, ENGINE_FINISH_LENGTH);
        return true;
    }
    return false;
}

double seq_waited(const engine_seq *s, double now) {
    double w = (s->admitted_s > 0 ? s->admitted_s : now) - s->arrival_s + s->rewait_s;
    if (s->state == SEQ_WAITING && s->admitted_s > 0 && s->wait_from > 0) w += now - s->wait_from;
    return w > 0 ? w : 0;
}

void seq_info_now(const engine *e, const engine_seq *s, double now, sched_info *out) {
    seq_info(s, out);
    out->step_s = e->st.step_s_ewma;
    out->waited_s = seq_waited(s, now);
    if (s->state != SEQ_WAITING) {
        out->steps_run = (int)(e->st.steps - s->admit_step);
        out->pausable = s->state == SEQ_DECODING && !s->req.split && !s->padding && s->h >= 0;
    }
}

/* The running batch as sched_info in e->b_info (and the sequences in e->b_victims); its size. */
static int running_info(engine *e, double now) {
    int n = 0;
    for (int i = 0; i < e->running.n; i++) {
        seq_info_now(e, e->running.v[i], now, &e->b_info[n]);
        e->b_victims[n++] = e->running.v[i];
    }
    return n;
}

static void pause_seq(engine *e, engine_seq *v, double now, bool overdue) {
    engine_trace(e, "pause %.4f %llu %d%s\n", now, (unsigned long long)v->req.id, v->n_generated,
                 overdue ? " overdue" : "");
    seq_list_remove_at(&e->running, seq_list_find(&e->running, v));
    v->state = SEQ_WAITING;
    v->paused = true;
    v->plan_n = 0;
    v->wait_from = now;
    e->st.requests_paused++;
    e->waiting.v[e->waiting.n++] = v; /* capacity reserved in take_inbox */
}

/* Overdue requests (ranked first by rank_waiting) get a running slot each, pausing the policy's
 * victim among those far from their own bound when the batch is full. */
static void pause_for_overdue(engine *e, double now) {
    int n_wait = e->waiting.n, claimed = 0;
    for (int w = 0; w < n_wait && e->waiting.v[w]->overdue; w++) {
        claimed++;
        if (e->running.n + claimed <= e->cfg.max_running) continue; /* a slot is free for it */
        int n = running_info(e, now);
        int k = sched_pick_overdue_victim(e->policy, e->b_info, n, now);
        if (k < 0 || k >= n) return;
        pause_seq(e, e->b_victims[k], now, true);
        e->st.requests_paused_overdue++;
    }
}

void engine_pause_for_waiting(engine *e, double now) {
    if (e->cfg.mode != ENGINE_FUSED) return;
    if (e->policy->wait_bound_s > 0) pause_for_overdue(e, now);
    if (!e->policy->remaining || e->running.n < e->cfg.max_running) return;
    int n_wait = e->waiting.n; /* paused sequences are appended behind: not candidates here */
    for (int w = 0; w < n_wait && e->running.n > 0; w++) {
        int n = running_info(e, now);
        sched_info wi;
        seq_info_now(e, e->waiting.v[w], now, &wi);
        int k = sched_pick_pause(e->policy, e->b_info, n, &wi, now);
        if (k < 0 || k >= n) return; /* admission follows rank order: nobody behind may jump */
        pause_seq(e, e->b_victims[k], now, false);
    }
}
