/* engine_step.c — one step of temporal fusion:
 *   1. take new requests and cancels from the inbox; order the waiting queue by policy rank;
 *   2. plan the running sequences within the token budget: one decode token per decoding
 *      sequence first, then prefill chunks, oldest first, so long prompts never stall decodes;
 *      make cache room for every planned token, preempting policy-chosen victims until it fits;
 *   3. admit waiting requests (engine_modes.c) into what is left of the budget;
 *   4. run ONE forward pass over the ragged batch; commit the cache; sample the sequences whose
 *      last token was computed; emit events; close finished sequences at once;
 *   5. dense layout: compact the cache after sequences left.
 * Static padding: in STATIC/DYNAMIC mode a member that finished (length or end token) keeps its
 * place and its cache, and is still computed each step, as a padded static batch computes its
 * shorter rows: it feeds one token at a fixed position (its last computed generated position,
 * or the first one after its prompt), whose output is discarded. Recomputing that position
 * rewrites the member's own rows only (never a shared prompt block). Padding leaves when the
 * batch has no unfinished member, and is the first thing evicted when the cache is full. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "weft/split_plan.h"

/* ---- queues ---- */

static int by_rank(const void *a, const void *b) {
    const engine_seq *x = *(engine_seq *const *)a, *y = *(engine_seq *const *)b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    if (x->arrival_s != y->arrival_s) return x->arrival_s < y->arrival_s ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int by_age(const void *a, const void *b) {
    const engine_seq *x = *(engine_seq *const *)a, *y = *(engine_seq *const *)b;
    if (x->arrival_s != y->arrival_s) return x->arrival_s < y->arrival_s ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Moves the inbox into the waiting queue and applies cancels. */
static int take_inbox(engine *e, weft_err *err) {
    id_list cancels = {0};
    engine_lock(e);
    /* Room for every live request in waiting, so preemption never needs to allocate. */
    if (seq_list_reserve(&e->waiting, e->waiting.n + e->running.n + e->inbox.n) != 0) {
        engine_unlock(e);
        return weft_errf(err, "engine: out of memory for the waiting queue");
    }
    for (int i = 0; i < e->inbox.n; i++)
        e->waiting.v[e->waiting.n++] = e->inbox.v[i];
    e->inbox.n = 0;
    cancels = e->cancels;
    e->cancels = (id_list){0};
    engine_unlock(e);

    for (int c = 0; c < cancels.n; c++) {
        uint64_t id = cancels.v[c];
        for (int i = 0; i < e->waiting.n; i++) {
            engine_seq *s = e->waiting.v[i];
            if (s->req.id != id) continue;
            seq_list_remove_at(&e->waiting, i);
            seq_drop_kv(e, s); /* a paused sequence still holds cache */
            seq_finish(e, s, ENGINE_FINISH_CANCELLED);
            seq_free(s);
            break;
        }
        for (int i = 0; i < e->running.n; i++) {
            engine_seq *s = e->running.v[i];
            if (s->req.id != id || s->padding) continue;
            kv_seq_close(e->kv, s->h);
            s->h = -1;
            e->closed_since_compact = true;
            seq_list_remove_at(&e->running, i);
            seq_finish(e, s, ENGINE_FINISH_CANCELLED);
            seq_free(s);
            break;
        }
    }
    id_list_free(&cancels);
    for (int i = 0; i < e->waiting.n; i++)
        if (!e->waiting.v[i]->predicted) engine_predict_new(e, e->waiting.v[i]);
    return 0;
}

static void rank_waiting(engine *e, double now) {
    sched_info info;
    for (int i = 0; i < e->waiting.n; i++) {
        engine_seq *s = e->waiting.v[i];
        seq_info_now(e, s, now, &info);
        if (e->policy->should_drop && e->policy->should_drop(e->policy, &info, now)) {
            /* the policy was configured to drop what can no longer meet its deadline */
            seq_list_remove_at(&e->waiting, i--);
            seq_drop_kv(e, s);
            seq_finish(e, s, ENGINE_FINISH_DEADLINE);
            seq_free(s);
            continue;
        }
        s->rank = e->policy->rank(e->policy, &info, now);
        /* the hard wait bound (sched_bound.c): overdue requests first, the longest wait first */
        s->overdue = sched_overdue(e->policy, &info);
        if (s->overdue) s->rank = -1e12 - info.waited_s;
    }
    qsort(e->waiting.v, (size_t)e->waiting.n, sizeof *e->waiting.v, by_rank);
}

/* Drops a running sequence that holds cache: finished padding, or one that ends with f. */
static void drop_running(engine *e, engine_seq *s, bool finish, engine_finish f) {
    if (s->h >= 0) kv_seq_close(e->kv, s->h);
    s->h = -1;
    e->closed_since_compact = true;
    int i = seq_list_find(&e->running, s);
    if (i >= 0) seq_list_remove_at(&e->running, i);
    if (finish) seq_finish(e, s, f);
    seq_free(s);
}

/* ---- planning and preemption ---- */

static engine_seq *choose_victim(engine *e) {
    for (int i = e->running.n - 1; i >= 0; i--)
        if (e->running.v[i]->padding) return e->running.v[i];
    int n = 0;
    for (int i = 0; i < e->running.n; i++) {
        seq_info(e->running.v[i], &e->b_info[n]);
        e->b_info[n].step_s = e->st.step_s_ewma;
        e->b_victims[n++] = e->running.v[i];
    }
    int k = e->policy->pick_victim(e->policy, e->b_info, n, engine_clock(e));
    if (k < 0 || k >= n) k = n - 1; /* a policy bug must not crash the engine */
    return e->b_victims[k];
}

/* Makes room in the cache for s to hold len tokens; true if it now does. Otherwise a victim
 * was evicted (possibly s itself) and the plan must be redone. */
static bool fit(engine *e, engine_seq *s, int len, bool *preempted) {
    if (kv_seq_reserve(e->kv, s->h, len) == 0) return true;
    /* paused sequences give their cache back first (engine_pause.c) */
    while (engine_release_paused(e, NULL))
        if (kv_seq_reserve(e->kv, s->h, len) == 0) return true;
    if (e->running.n == 1) {
        /* Alone in the cache and still too big: it can never grow further. */
        drop_running(e, s, !s->padding, ENGINE_FINISH_CONTEXT);
        return false;
    }
    engine_seq *v = choose_victim(e);
    if (v->padding) {
        drop_running(e, v, false, ENGINE_FINISH_LENGTH);
        return false;
    }
    if (v->req.split) { /* its client's states are gone: it cannot be recomputed here */
        drop_running(e, v, true, ENGINE_FINISH_ERROR);
        return false;
    }
    int i = seq_list_find(&e->running, v);
    seq_list_remove_at(&e->running, i);
    e->closed_since_compact = true;
    seq_preempt(e, v);
    e->waiting.v[e->waiting.n++] = v; /* capacity reserved in take_inbox */
    *preempted = true;
    return false;
}

/* Plans the running sequences' share of this step; returns the budget left. */
static int plan_running(engine *e, bool *preempted) {
    qsort(e->running.v, (size_t)e->running.n, sizeof *e->running.v, by_age);
retry:;
    int budget = e->cfg.max_batch_tokens;
    for (int i = 0; i < e->running.n; i++)
        e->running.v[i]->plan_n = 0;
    /* decode tokens (and padding) first: one each */
    for (int i = 0; i < e->running.n; i++) {
        engine_seq *s = e->running.v[i];
        int len;
        if (s->padding)
            len = s->pad_pos + 1;
        else if (s->state == SEQ_DECODING && seq_ready(s) > 0)
            len = s->n_computed + 1;
        else
            continue; /* prefilling, or a split request waiting for its client */
        if (!fit(e, s, len, preempted)) goto retry;
        s->plan_n = 1;
        budget--;
    }
    /* then prefill chunks, oldest first, until the budget is spent */
    for (int i = 0; i < e->running.n && budget > 0; i++) {
        engine_seq *s = e->running.v[i];
        if (s->padding || s->state != SEQ_PREFILLING) continue;
        int left = seq_ready(s);
        if (left <= 0) continue;
        int n = left < budget ? left : budget;
        if (!fit(e, s, s->n_computed + n, preempted)) goto retry;
        s->plan_n = n;
        budget -= n;
    }
    return budget;
}

/* ---- the batch ---- */

/* Split requests come first, later entry layers first (fwd_run_split's order), then the rest;
 * *n_hidden receives how many tokens enter with a hidden state. */
static int build_batch(engine *e, int *n_tokens, int *n_hidden) {
    int k = 0, t = 0;
    const int L = e->m->cfg.n_layers, D = e->m->cfg.dim;
    for (int lvl = L; lvl >= -1; lvl--)
    for (int i = 0; i < e->running.n; i++) {
        engine_seq *s = e->running.v[i];
        if (s->plan_n <= 0 || (s->req.split ? s->req.split_layer : -1) != lvl) continue;
        if (lvl >= 0) { /* plan_n <= hid_n (seq_ready) */
            memcpy(e->b_hidden + (size_t)t * D, s->hid, sizeof(float) * (size_t)s->plan_n * D);
            for (int j = 0; j < s->plan_n; j++) e->b_entry[t + j] = lvl;
            *n_hidden = t + s->plan_n;
        }
        e->b_views[k] = kv_seq_view(e->kv, s->h);
        e->b_seqs[k] = s;
        if (s->padding) {
            int p = s->pad_pos;
            e->b_tok[t] = s->tokens[p < s->n_tokens ? p : s->n_tokens - 1];
            e->b_pos[t] = p;
            e->b_seq[t] = k;
            e->b_want[t] = 0;
            t++;
        } else {
            for (int j = 0; j < s->plan_n; j++) {
                int p = s->n_computed + j;
                e->b_tok[t] = s->tokens[p];
                e->b_pos[t] = p;
                e->b_seq[t] = k;
                e->b_want[t] = p == s->n_tokens - 1;
                t++;
            }
        }
        k++;
    }
    *n_tokens = t;
    return k;
}

static bool batch_mode(const engine *e) {
    return e->cfg.mode == ENGINE_STATIC || e->cfg.mode == ENGINE_DYNAMIC;
}

static void finish_running(engine *e, engine_seq *s, engine_finish f) {
    if (batch_mode(e) && (f == ENGINE_FINISH_LENGTH || f == ENGINE_FINISH_STOP)) {
        /* keep the place: padding recomputes a position of its own (see the top comment) */
        s->padding = true;
        s->pad_pos = s->n_computed > s->n_open ? s->n_computed - 1 : s->n_computed;
        seq_finish(e, s, f);
        return;
    }
    drop_running(e, s, true, f);
}

/* Log-probabilities of the raw distribution in row (V logits): the chosen token's, and the
 * n_top most likely tokens' (most likely first; ties by lower id). */
static void logprobs_of(engine_seq *s, const float *row, int V, int chosen) {
    float mx = row[0];
    for (int i = 1; i < V; i++)
        if (row[i] > mx) mx = row[i];
    double sum = 0;
    for (int i = 0; i < V; i++)
        sum += exp((double)(row[i] - mx));
    float lse = mx + (float)log(sum);
    s->lp = row[chosen] - lse;
    int k = s->req.top_logprobs;
    if (k > V) k = V;
    s->lp_n_top = 0;
    for (int i = 0; i < V; i++) {
        int at = s->lp_n_top;
        if (at == k && (k == 0 || row[i] <= row[s->lp_top_ids[k - 1]])) continue;
        if (at == k) at--; /* drop the smallest */
        while (at > 0 && row[i] > row[s->lp_top_ids[at - 1]]) {
            s->lp_top_ids[at] = s->lp_top_ids[at - 1];
            at--;
        }
        s->lp_top_ids[at] = i;
        if (s->lp_n_top < k) s->lp_n_top++;
    }
    for (int i = 0; i < s->lp_n_top; i++)
        s->lp_top[i] = row[s->lp_top_ids[i]] - lse;
}

/* Sampling on the pool: each sequence's sampler, token history and logits row are its own, so
 * the rows of a batch are sampled in parallel with the same result as one by one. Sequences
 * that want logprobs keep the serial path (they share lp_row). Below ENGINE_SAMPLE_POOL_MIN
 * rows waking the workers costs more than it saves. */
enum { ENGINE_SAMPLE_POOL_MIN = 4 };

typedef struct sample_job {
    engine *e;
    int n;
} sample_job;

static void sample_rows(void *ctx, int ith, int nth) {
    const sample_job *j = ctx;
    engine *e = j->e;
    const size_t V = (size_t)e->m->cfg.vocab_size;
    for (int i = ith; i < j->n; i += nth) {
        engine_seq *s = e->b_samp[i];
        if (s->req.want_logprobs) continue;
        float *lg = e->logits + (size_t)e->b_samp_row[i] * V;
        e->b_samp_tok[i] = sampler_sample(s->smp, lg, s->tokens, s->n_tokens);
    }
}

/* After the forward pass: commit, sample, emit, finish. */
static void absorb(engine *e, int n_seqs) {
    const int V = e->m->cfg.vocab_size;
    int row = 0, ns = 0;
    for (int k = 0; k < n_seqs; k++) {
        engine_seq *s = e->b_seqs[k];
        if (s->padding) continue;
        if (s->state == SEQ_PREFILLING) e->st.tokens_prefilled += (uint64_t)s->plan_n;
        s->n_computed += s->plan_n;
        kv_seq_commit(e->kv, s->h, s->tokens, s->n_computed);
        if (s->req.split) { /* the fed states are used up */
            s->hid_n -= s->plan_n;
            memmove(s->hid, s->hid + (size_t)s->plan_n * e->m->cfg.dim,
                    sizeof(float) * (size_t)s->hid_n * e->m->cfg.dim);
            if (s->n_computed < s->n_tokens) seq_emit(e, s, ENGINE_EV_CONSUMED, 0, 0);
        }
        if (s->n_computed < s->n_tokens) continue; /* a prefill chunk short of the end */
        float *lg = e->logits + (size_t)row * (size_t)V;
        if (!s->refined) engine_predict_refine(e, s, lg); /* before the sampler edits the row */
        e->b_samp[ns] = s;
        e->b_samp_row[ns++] = row++;
    }
    sample_job job = {e, ns};
    if (ns >= ENGINE_SAMPLE_POOL_MIN && tp_size(e->pool) > 1) tp_run(e->pool, sample_rows, &job);
    else sample_rows(&job, 0, 1);
    for (int i = 0; i < ns; i++) {
        engine_seq *s = e->b_samp[i];
        int tok = e->b_samp_tok[i];
        if (s->req.want_logprobs) {
            float *lg = e->logits + (size_t)e->b_samp_row[i] * (size_t)V;
            memcpy(e->lp_row, lg, (size_t)V * sizeof *lg);
            tok = sampler_sample(s->smp, lg, s->tokens, s->n_tokens);
            logprobs_of(s, e->lp_row, V, tok);
        }
        s->state = SEQ_DECODING;
        int f = seq_accept_token(e, s, tok);
        if (f >= 0) finish_running(e, s, (engine_finish)f);
    }
}

static void release_idle_padding(engine *e) {
    for (int i = 0; i < e->running.n; i++)
        if (!e->running.v[i]->padding) return;
    while (e->running.n > 0)
        drop_running(e, e->running.v[e->running.n - 1], false, 0);
}

/* Predicted output tokens s still needs (for the offload policy): p50 - generated; once past
 * p50 the p90, once past that too its max_tokens (as the policies see it), so a request that
 * already ran long (e.g. one paused after it ran past its prediction) is not counted as done. */
static double predicted_left(const engine_seq *s) {
    double cap = s->req.sched_max_tokens > 0 ? s->req.sched_max_tokens : s->req.max_tokens;
    double p = s->p50 > 0 ? s->p50 : cap;
    if (p <= s->n_generated && s->p90 > s->n_generated) p = s->p90;
    if (p <= s->n_generated) p = cap;
    return p > s->n_generated ? p - s->n_generated : 1;
}

static void publish(engine *e) {
    kv_cache_stats ks;
    kv_cache_get_stats(e->kv, &ks);
    if (ks.reserved_tokens > 0) {
        e->live_frac_sum += (double)ks.live_tokens / (double)ks.reserved_tokens;
        e->live_frac_n++;
    }
    e->st.kv = ks;
    e->st.kv_live_fraction_mean = e->live_frac_n ? e->live_frac_sum / (double)e->live_frac_n : 0;
    int running = 0;
    for (int i = 0; i < e->running.n; i++)
        running += !e->running.v[i]->padding;
    e->st.running = running;
    double wt = 0, rt = 0;
    for (int i = 0; i < e->waiting.n; i++)
        wt += predicted_left(e->waiting.v[i]);
    for (int i = 0; i < e->running.n; i++)
        if (!e->running.v[i]->padding) rt += predicted_left(e->running.v[i]);
    e->st.waiting_pred_tokens = wt;
    e->st.running_left_tokens = rt;
    e->st.batch_min_entry = engine_split_min_entry(e);
    engine_split_publish(e);
    engine_lock(e);
    e->st.waiting = e->waiting.n; /* engine_get_stats adds the inbox */
    e->pub = e->st;
    engine_unlock(e);
}

static void compact(engine *e) {
    if (!e->closed_since_compact) return;
    e->closed_since_compact = false;
    if (kv_cache_layout(e->kv) != KV_LAYOUT_DENSE || !e->cfg.compact_dense) return;
    double t = engine_wall(e);
    kv_cache_compact(e->kv, NULL);
    e->st.time_compact_s += engine_wall(e) - t;
}

/* The batch's shape for the step-time model and the trace (engine_step_shape). */
static engine_step_shape step_shape(const engine *e, int n_seqs, int n_tokens) {
    engine_step_shape sh = {.n_seqs = n_seqs, .n_tokens = n_tokens, .n_waiting = e->waiting.n};
    for (int k = 0; k < n_seqs; k++) {
        const engine_seq *s = e->b_seqs[k];
        if (!s->padding && s->state == SEQ_PREFILLING) sh.n_prefill += s->plan_n;
    }
    for (int t = 0; t < n_tokens; t++)
        sh.kv_tokens += (int64_t)e->b_pos[t] + 1;
    return sh;
}

int engine_step(engine *e, weft_err *err) {
    double t0 = engine_clock(e), w0 = engine_wall(e);
    if (take_inbox(e, err) != 0) return -1;
    split_take_feeds(e);
    e->wake_at_s = 0;
    if (batch_mode(e)) release_idle_padding(e); /* a cancel may have ended the batch */
    rank_waiting(e, t0);
    engine_pause_for_waiting(e, t0);
    bool preempted = false;
    int budget = plan_running(e, &preempted);
    if (!preempted) engine_admit(e, &budget);
    int n_tokens = 0, n_hidden = 0;
    int n_seqs = build_batch(e, &n_tokens, &n_hidden);
    const int n_split_seqs = engine_split_count(e, n_seqs);
    double t1 = engine_clock(e), w1 = engine_wall(e);
    e->st.time_schedule_s += w1 - w0;
    if (n_seqs == 0) {
        compact(e);
        publish(e);
        return 0;
    }

    weft_batch b = {.n_tokens = n_tokens,
                    .token = e->b_tok,
                    .pos = e->b_pos,
                    .seq = e->b_seq,
                    .want_logits = e->b_want,
                    .n_seqs = n_seqs,
                    .seqs = e->b_views};
    fwd_split sp = {.n_hidden = n_hidden, .entry = e->b_entry, .hidden_in = e->b_hidden};
    int rc = fwd_run_split(e->fwd, kv_cache_store_mut(e->kv), &b, &sp, e->logits, err);
    const engine_step_shape shape = step_shape(e, n_seqs, n_tokens);
    if (rc == 0 && e->cfg.clock.step_done) e->cfg.clock.step_done(e->cfg.clock.ctx, &shape);
    double t2 = engine_clock(e), w2 = engine_wall(e);
    e->st.time_forward_s += t2 - t1;
    if (rc != 0) {
        /* A batch the forward pass refuses is an engine bug; end its members rather than
         * retrying the same batch forever. */
        for (int k = 0; k < n_seqs; k++) {
            engine_seq *s = e->b_seqs[k];
            drop_running(e, s, !s->padding, ENGINE_FINISH_ERROR);
        }
        compact(e);
        publish(e);
        return -1;
    }
    e->st.steps++;
    engine_split_mark_out(e, n_seqs, t2);
    absorb(e, n_seqs);
    if (batch_mode(e)) release_idle_padding(e);
    double t3 = engine_clock(e);
    e->st.time_sample_s += engine_wall(e) - w2;
    engine_trace(e, "step %.4f %d %d %d %.3f %d %lld %.3f\n", t1, n_seqs, n_tokens,
                 shape.n_waiting, 1e3 * (t2 - t1), shape.n_prefill, (long long)shape.kv_tokens,
                 1e3 * (t3 - t0));
    /* the policies' seconds per token: a short memory, so it follows the batch size */
    double dt = t3 - t0;
    e->st.step_s_ewma = e->st.step_s_ewma > 0 ? 0.9 * e->st.step_s_ewma + 0.1 * dt : dt;
    e->st.decode_batch_ewma = split_batch_ewma_update(e->st.decode_batch_ewma, n_seqs, 64);
    e->st.split_inv_batch_ewma =
        split_inv_batch_ewma_update(e->st.split_inv_batch_ewma, n_seqs, n_split_seqs, 64);
    e->st.stream_inv_batch_ewma =
        split_inv_batch_ewma_update(e->st.stream_inv_batch_ewma, n_seqs, n_seqs - n_split_seqs, 64);
    compact(e);
    publish(e);
    return n_seqs;
}

void engine_drop_all(engine *e) {
    while (e->running.n > 0) {
        engine_seq *s = e->running.v[e->running.n - 1];
        drop_running(e, s, !s->padding, ENGINE_FINISH_CANCELLED);
    }
    while (e->waiting.n > 0) {
        engine_seq *s = e->waiting.v[e->waiting.n - 1];
        e->waiting.n--;
        seq_drop_kv(e, s);
        seq_finish(e, s, ENGINE_FINISH_CANCELLED);
        seq_free(s);
    }
}
