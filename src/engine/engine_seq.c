/* engine_seq.c — one request inside the engine: its tokens (prompt, then generated), its sampler
 * and cache handle, and the state machine WAITING -> PREFILLING -> DECODING -> FINISHED.
 * Preemption is recompute: the cache is freed and the request waits again with
 * prompt := prompt + generated, keeping its generated count, its sampler (so a sampled stream
 * continues where it was) and its max_tokens budget. Also the small growable lists the engine
 * keeps its queues in. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* ---- lists ---- */

static int grow(void **v, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 8;
    while (nc < need)
        nc *= 2;
    void *nv = realloc(*v, (size_t)nc * elem);
    if (!nv) return -1;
    *v = nv;
    *cap = nc;
    return 0;
}

int seq_list_reserve(seq_list *l, int n) {
    return grow((void **)&l->v, &l->cap, n, sizeof *l->v);
}

int seq_list_push(seq_list *l, engine_seq *s) {
    if (seq_list_reserve(l, l->n + 1) != 0) return -1;
    l->v[l->n++] = s;
    return 0;
}

/* Keeps the order: queues are ordered (by rank, by age). */
void seq_list_remove_at(seq_list *l, int i) {
    memmove(&l->v[i], &l->v[i + 1], sizeof *l->v * (size_t)(l->n - i - 1));
    l->n--;
}

int seq_list_find(const seq_list *l, const engine_seq *s) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == s) return i;
    return -1;
}

void seq_list_free(seq_list *l) {
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

int id_list_push(id_list *l, uint64_t id) {
    if (grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v) != 0) return -1;
    l->v[l->n++] = id;
    return 0;
}

bool id_list_remove(id_list *l, uint64_t id) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == id) {
            l->v[i] = l->v[--l->n];
            return true;
        }
    return false;
}

bool id_list_contains(const id_list *l, uint64_t id) {
    for (int i = 0; i < l->n; i++)
        if (l->v[i] == id) return true;
    return false;
}

void id_list_free(id_list *l) {
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* ---- lifetime ---- */

engine_seq *seq_new(const engine *e, const engine_request *r, weft_err *err) {
    engine_seq *s = calloc(1, sizeof *s);
    if (!s) {
        weft_errf(err, "engine: out of memory for request %llu", (unsigned long long)r->id);
        return NULL;
    }
    s->req = *r;
    s->req.prompt = NULL; /* the caller's buffer is not ours to keep */
    s->tokens = malloc(sizeof *s->tokens * (size_t)e->max_seq_len);
    s->smp = sampler_new(&r->sampling, e->m->cfg.vocab_size);
    if (!s->tokens || !s->smp) {
        seq_free(s);
        weft_errf(err, "engine: out of memory for request %llu", (unsigned long long)r->id);
        return NULL;
    }
    memcpy(s->tokens, r->prompt, sizeof *s->tokens * (size_t)r->n_prompt);
    s->req.features = NULL; /* copied below: the caller's struct is not ours to keep */
    if (r->features) {
        s->feat = *r->features;
        s->has_feat = true;
    }
    s->n_prompt = s->n_tokens = r->n_prompt;
    s->h = -1;
    s->state = SEQ_WAITING;
    return s;
}

void seq_free(engine_seq *s) {
    if (!s) return;
    sampler_free(s->smp);
    free(s->hid);
    free(s->tokens);
    free(s);
}

void seq_info(const engine_seq *s, sched_info *out) {
    *out = (sched_info){
        .id = s->req.id,
        .arrival_s = s->arrival_s,
        .n_prompt = s->n_prompt,
        .n_generated = s->n_generated,
        .max_tokens = s->req.sched_max_tokens > 0 ? s->req.sched_max_tokens : s->req.max_tokens,
        .priority = s->req.priority,
        .deadline_s = s->deadline_s,
        .predicted_tokens = s->req.predicted_tokens,
        .n_preempted = s->n_preempted,
        .predicted_p50 = s->p50,
        .predicted_p90 = s->p90,
        .true_tokens = s->req.true_tokens,
        .running = s->state != SEQ_WAITING,
    };
}

/* ---- events and transitions ---- */

void seq_emit(engine *e, engine_seq *s, engine_event_type type, int token, engine_finish f) {
    if (!s->req.on_event && type != ENGINE_EV_FINISHED) return;
    engine_event ev = {
        .type = type,
        .id = s->req.id,
        .token = token,
        .index = type == ENGINE_EV_TOKEN ? s->n_generated - 1 : 0,
        .finish = f,
        .n_prompt = s->n_prompt,
        .n_generated = s->n_generated,
        .t_s = engine_clock(e),
    };
    if (type == ENGINE_EV_FINISHED && s->admitted_s > 0) ev.queue_s = s->admitted_s - s->arrival_s;
    if (type == ENGINE_EV_FINISHED) {
        engine_predict_finished(e, s, f, &ev);
        if (!s->req.on_event) return;
    }
    if (type == ENGINE_EV_TOKEN && s->req.want_logprobs) {
        ev.logprob = s->lp;
        ev.n_top = s->lp_n_top;
        for (int i = 0; i < s->lp_n_top; i++) {
            ev.top_ids[i] = s->lp_top_ids[i];
            ev.top_logprobs[i] = s->lp_top[i];
        }
    }
    s->req.on_event(s->req.ctx, &ev);
}

int seq_admit(engine *e, engine_seq *s) {
    if (s->paused && s->h >= 0) { /* resume: its cache is intact, nothing to recompute */
        /* room for the token it decodes next (admission plans it in this step) */
        while (kv_seq_reserve(e->kv, s->h, s->n_computed + 1) != 0)
            if (!engine_release_paused(e, s)) return -1;
        s->paused = false;
        s->state = SEQ_DECODING;
        if (s->wait_from > 0) s->rewait_s += engine_clock(e) - s->wait_from;
        s->wait_from = 0;
        s->plan_n = 0;
        s->admit_step = e->st.steps;
        e->st.pause_resumed++;
        engine_trace(e, "resume %.4f %llu %d\n", engine_clock(e), (unsigned long long)s->req.id,
                     s->n_generated);
        return 0;
    }
    if (kv_cache_blocks_for(e->kv, s->n_tokens) > e->total_blocks) return -2;
    int n_cached = 0;
    kv_handle h;
    /* memory is short: paused sequences give their cache back (they will recompute) */
    while ((h = kv_seq_open(e->kv, s->tokens, s->n_tokens, &n_cached, NULL)) < 0)
        if (!engine_release_paused(e, s)) return -1;
    /* The cache promises n_cached < n; clamp anyway so the last token is always computed. */
    if (n_cached < 0) n_cached = 0;
    if (n_cached > s->n_tokens - 1) n_cached = s->n_tokens - 1;
    s->h = h;
    if (s->admitted_s > 0 && s->wait_from > 0) { /* back after a preemption */
        s->rewait_s += engine_clock(e) - s->wait_from;
        s->wait_from = 0;
    }
    if (s->admitted_s == 0) {
        s->admitted_s = engine_clock(e);
        double q = s->admitted_s - s->arrival_s;
        e->st.queued_requests++;
        e->st.queue_s_sum += q;
        if (q > e->st.queue_s_max) e->st.queue_s_max = q;
    }
    s->admit_step = e->st.steps;
    engine_trace(e, "admit %.4f %llu %d %d %.0f %.0f\n", engine_clock(e),
                 (unsigned long long)s->req.id, s->n_prompt, s->n_generated, s->p50, s->p90);
    s->n_open = s->n_tokens;
    s->n_computed = n_cached;
    s->state = SEQ_PREFILLING;
    s->plan_n = 0;
    return 0;
}

void seq_preempt(engine *e, engine_seq *s) {
    if (s->h >= 0) kv_seq_close(e->kv, s->h);
    s->h = -1;
    s->n_computed = 0;
    s->plan_n = 0;
    s->state = SEQ_WAITING;
    s->wait_from = engine_clock(e);
    s->n_preempted++;
    e->st.requests_preempted++;
    engine_trace(e, "preempt %.4f %llu %d\n", engine_clock(e), (unsigned long long)s->req.id,
                 s->n_generated);
    seq_emit(e, s, ENGINE_EV_PREEMPTED, 0, ENGINE_FINISH_LENGTH);
}

void seq_finish(engine *e, engine_seq *s, engine_finish f) {
    double waited = (s->admitted_s > 0 ? s->admitted_s : engine_clock(e)) - s->arrival_s +
                    s->rewait_s + (s->wait_from > 0 ? engine_clock(e) - s->wait_from : 0);
    if (waited > e->st.wait_s_max) e->st.wait_s_max = waited;
    s->state = SEQ_FINISHED;
    e->st.requests_finished++;
    engine_trace(e, "finish %.4f %llu %d %.4f\n", engine_clock(e), (unsigned long long)s->req.id,
                 s->n_generated, s->arrival_s);
    /* The id is free again before the event, so a callback may reuse it; the idle count drops
     * after it, so engine_wait_idle returns only once every FINISHED was delivered. */
    engine_lock(e);
    id_list_remove(&e->live, s->req.id);
    engine_unlock(e);
    seq_emit(e, s, ENGINE_EV_FINISHED, 0, f);
    engine_request_done(e);
}

/* A document boundary (BOS) ends a story too, as in generate(). */
static bool is_end_token(const weft_config *c, int id) {
    if (id == c->bos_id) return true;
    for (int i = 0; i < c->n_stop_ids; i++)
        if (c->stop_ids[i] == id) return true;
    return false;
}

int seq_accept_token(engine *e, engine_seq *s, int token) {
    if (!s->req.ignore_eos && is_end_token(&e->m->cfg, token)) return ENGINE_FINISH_STOP;
    s->tokens[s->n_tokens++] = token;
    s->n_generated++;
    e->st.tokens_decoded++;
    seq_emit(e, s, ENGINE_EV_TOKEN, token, ENGINE_FINISH_LENGTH);
    if (s->n_generated >= s->req.max_tokens) return ENGINE_FINISH_LENGTH;
    if (s->n_tokens >= e->max_seq_len) return ENGINE_FINISH_CONTEXT;
    return -1;
}
