/* engine.c — the engine's lifecycle and its doors to other threads: creation (model, cache,
 * forward workspace, policy), the submit/cancel inbox guarded by one mutex, the background
 * thread that runs steps and sleeps on a condition variable when there is nothing to do,
 * engine_wait_idle, and the statistics snapshot. The step itself is engine_step.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/engine_internal.h"

/* ---- names ---- */

static const char *const mode_names[] = {"fused", "sequential", "static", "dynamic"};

const char *engine_mode_name(engine_mode m) {
    return (unsigned)m < sizeof mode_names / sizeof *mode_names ? mode_names[m] : "?";
}

int engine_mode_parse(const char *s, engine_mode *out) {
    for (int i = 0; s && i < (int)(sizeof mode_names / sizeof *mode_names); i++)
        if (strcasecmp(s, mode_names[i]) == 0) {
            *out = (engine_mode)i;
            return 0;
        }
    return -1;
}

const char *engine_finish_name(engine_finish f) {
    switch (f) {
    case ENGINE_FINISH_LENGTH:
        return "length";
    case ENGINE_FINISH_STOP:
        return "stop";
    case ENGINE_FINISH_CONTEXT:
        return "context";
    case ENGINE_FINISH_CANCELLED:
        return "cancelled";
    case ENGINE_FINISH_ERROR:
        return "error";
    case ENGINE_FINISH_DEADLINE:
        return "deadline";
    }
    return "?";
}

/* ---- clock ---- */

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double engine_clock(const engine *e) {
    if (e->cfg.clock.now) return e->cfg.clock.now(e->cfg.clock.ctx);
    return mono_s() - e->t0;
}
double engine_wall(const engine *e) {
    return mono_s() - e->t0;
}
double engine_now_s(const engine *e) {
    return engine_clock(e);
}

/* Absolute CLOCK_MONOTONIC time of engine clock t, for pthread_cond_timedwait. */
static struct timespec abs_time(const engine *e, double t) {
    double a = e->t0 + t;
    struct timespec ts;
    ts.tv_sec = (time_t)a;
    ts.tv_nsec = (long)((a - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    if (ts.tv_nsec < 0) ts.tv_nsec = 0;
    return ts;
}

/* ---- locking ---- */

static void check_pthread(int rc, const char *what) {
    if (rc == 0) return;
    fprintf(stderr, "engine: %s failed: %s\n", what, strerror(rc));
    abort();
}

void engine_lock(engine *e) {
    check_pthread(pthread_mutex_lock(&e->mu), "mutex lock");
}
void engine_unlock(engine *e) {
    check_pthread(pthread_mutex_unlock(&e->mu), "mutex unlock");
}

static void cond_signal(pthread_cond_t *c) {
    check_pthread(pthread_cond_signal(c), "cond signal");
}

/* Waits on c until woken or until the engine-clock time t (t <= 0: no limit); false on timeout. */
static bool cond_wait_until(engine *e, pthread_cond_t *c, double t) {
    if (t <= 0) {
        check_pthread(pthread_cond_wait(c, &e->mu), "cond wait");
        return true;
    }
    struct timespec ts = abs_time(e, t);
    int rc = pthread_cond_timedwait(c, &e->mu, &ts);
    if (rc == ETIMEDOUT) return false;
    check_pthread(rc, "cond timedwait");
    return true;
}

/* ---- configuration ---- */

void engine_config_defaults(engine_config *c) {
    memset(c, 0, sizeof *c);
    c->mode = ENGINE_FUSED;
    c->kv.layout = KV_LAYOUT_PAGED;
    c->kv.block_tokens = 16;
    c->kv.dtype = KV_F16;
    c->max_batch_tokens = 512;
    c->max_running = 64;
    c->max_batch_size = 0; /* = max_running */
    c->max_wait_ms = 50;
    c->compact_dense = true;
}

/* Fills in what the caller left at zero; refuses what cannot work. */
static int resolve_config(const weft_model *m, engine_config *c, weft_err *err) {
    if ((unsigned)c->mode > ENGINE_DYNAMIC)
        return weft_errf(err, "engine: unknown mode %d", (int)c->mode);
    if (c->kv.max_seq_len <= 0) c->kv.max_seq_len = m->cfg.ctx_len;
    if (c->kv.block_tokens <= 0) c->kv.block_tokens = 16;
    if (c->max_batch_tokens <= 0) c->max_batch_tokens = 512;
    if (c->max_running <= 0) c->max_running = 64;
    if (c->max_batch_size <= 0) c->max_batch_size = c->max_running;
    if (c->max_wait_ms < 0) c->max_wait_ms = 0;
    if (c->kv.max_seq_len < 2)
        return weft_errf(err, "engine: max_seq_len %d leaves no room to generate",
                         c->kv.max_seq_len);
    /* every running sequence must get at least its decode token into each step */
    if (c->max_running > c->max_batch_tokens)
        return weft_errf(err, "engine: max_running (%d) exceeds max_batch_tokens (%d)",
                         c->max_running, c->max_batch_tokens);
    if (c->max_batch_size > c->max_batch_tokens)
        return weft_errf(err, "engine: max_batch_size (%d) exceeds max_batch_tokens (%d)",
                         c->max_batch_size, c->max_batch_tokens);
    if (c->kv.capacity_tokens <= 0 && c->kv.capacity_bytes <= 0) {
        /* room for max_running full sequences, at most 1 GiB */
        const weft_config *mc = &m->cfg;
        int64_t per_token = 2 * (int64_t)mc->n_layers * mc->n_kv_heads * mc->head_dim * 4;
        int64_t want = (int64_t)c->max_running * c->kv.max_seq_len;
        int64_t cap = ((int64_t)1 << 30) / (per_token > 0 ? per_token : 1);
        c->kv.capacity_tokens = want < cap ? want : cap;
    }
    return 0;
}

/* ---- lifetime ---- */

static int init_sync(engine *e, weft_err *err) {
    pthread_condattr_t ca;
    if (pthread_mutex_init(&e->mu, NULL) != 0) return weft_errf(err, "engine: mutex init failed");
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&e->mu);
        return weft_errf(err, "engine: condattr init failed");
    }
    int rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0) rc = pthread_cond_init(&e->wake, &ca);
    if (rc == 0) {
        rc = pthread_cond_init(&e->idle, &ca);
        if (rc != 0) pthread_cond_destroy(&e->wake);
    }
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&e->mu);
        return weft_errf(err, "engine: condition variable init failed");
    }
    return 0;
}

static void free_parts(engine *e) {
    fwd_free(e->fwd);
    kv_cache_free(e->kv);
    tp_free(e->pool);
    sched_policy_free(e->policy);
    seq_list_free(&e->inbox);
    seq_list_free(&e->waiting);
    seq_list_free(&e->running);
    id_list_free(&e->cancels);
    split_feeds_free(&e->feeds);
    id_list_free(&e->live);
    free(e->b_tok);
    free(e->b_pos);
    free(e->b_seq);
    free(e->b_want);
    free(e->b_views);
    free(e->b_seqs);
    free(e->b_info);
    free(e->b_victims);
    free(e->logits);
    free(e->lp_row);
    free(e->b_samp);
    free(e->b_samp_row);
    free(e->b_samp_tok);
    free(e->b_hidden);
    free(e->b_entry);
    free(e);
}

engine *engine_new(const weft_model *m, const engine_config *cfg, weft_err *err) {
    sched_policy *policy = cfg ? cfg->policy : NULL;
    engine *e = NULL;
    if (!m || !cfg) {
        weft_errf(err, "engine: model and config are required");
        goto fail;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        weft_errf(err, "engine: out of memory");
        goto fail;
    }
    e->m = m;
    e->cfg = *cfg;
    e->policy = policy ? policy : sched_fcfs_new();
    policy = NULL; /* owned by e from here */
    if (!e->policy) {
        weft_errf(err, "engine: out of memory for the scheduling policy");
        goto fail;
    }
    e->cfg.policy = e->policy;
    if (resolve_config(m, &e->cfg, err) != 0) goto fail;
    e->max_seq_len = e->cfg.kv.max_seq_len;
    int nb =
        e->cfg.max_running > e->cfg.max_batch_size ? e->cfg.max_running : e->cfg.max_batch_size;
    e->max_batch_seqs = nb;
    e->pool = tp_new(e->cfg.n_threads);
    if (!e->pool) {
        weft_errf(err, "engine: cannot start %d kernel threads", e->cfg.n_threads);
        goto fail;
    }
    e->kv = kv_cache_new(&m->cfg, &e->cfg.kv, err);
    if (!e->kv) goto fail;
    if (m->comm) kv_cache_set_move_hook(e->kv, m->comm->kv_move, m->comm->ctx); /* tensor parallel */
    e->fwd = fwd_new(m, e->pool, e->cfg.max_batch_tokens, e->max_seq_len, err);
    if (!e->fwd) goto fail;
    kv_cache_stats ks;
    kv_cache_get_stats(e->kv, &ks);
    e->total_blocks = ks.total_blocks;

    size_t bt = (size_t)e->cfg.max_batch_tokens;
    e->b_tok = malloc(bt * sizeof *e->b_tok);
    e->b_pos = malloc(bt * sizeof *e->b_pos);
    e->b_seq = malloc(bt * sizeof *e->b_seq);
    e->b_want = malloc(bt * sizeof *e->b_want);
    e->b_views = malloc((size_t)nb * sizeof *e->b_views);
    e->b_seqs = malloc((size_t)nb * sizeof *e->b_seqs);
    e->b_info = malloc((size_t)nb * sizeof *e->b_info);
    e->b_victims = malloc((size_t)nb * sizeof *e->b_victims);
    e->logits = malloc((size_t)nb * (size_t)m->cfg.vocab_size * sizeof *e->logits);
    e->lp_row = malloc((size_t)m->cfg.vocab_size * sizeof *e->lp_row);
    e->b_samp = malloc((size_t)nb * sizeof *e->b_samp);
    e->b_samp_row = malloc((size_t)nb * sizeof *e->b_samp_row);
    e->b_samp_tok = malloc((size_t)nb * sizeof *e->b_samp_tok);
    e->b_hidden = malloc(bt * (size_t)m->cfg.dim * sizeof *e->b_hidden);
    e->b_entry = malloc(bt * sizeof *e->b_entry);
    if (!e->b_tok || !e->b_pos || !e->b_seq || !e->b_want || !e->b_views || !e->b_seqs ||
        !e->b_info || !e->b_victims || !e->logits || !e->lp_row || !e->b_samp || !e->b_samp_row || !e->b_samp_tok || !e->b_hidden ||
        !e->b_entry || seq_list_reserve(&e->running, nb) != 0) {
        weft_errf(err, "engine: out of memory for the step workspace");
        goto fail;
    }
    if (init_sync(e, err) != 0) goto fail;
    e->t0 = mono_s();
    return e;
fail:
    if (e) free_parts(e);
    sched_policy_free(policy);
    return NULL;
}

void engine_free(engine *e) {
    if (!e) return;
    engine_stop(e);
    /* Nothing else may touch e now; requests still in the inbox are dropped like the rest. */
    for (int i = 0; i < e->inbox.n; i++) {
        engine_seq *s = e->inbox.v[i];
        seq_finish(e, s, ENGINE_FINISH_CANCELLED);
        seq_free(s);
    }
    e->inbox.n = 0;
    engine_drop_all(e);
    pthread_cond_destroy(&e->wake);
    pthread_cond_destroy(&e->idle);
    pthread_mutex_destroy(&e->mu);
    free_parts(e);
}

/* ---- submit / cancel ---- */

static int check_request(const engine *e, const engine_request *r, weft_err *err) {
    if (!r) return weft_errf(err, "engine: no request");
    unsigned long long id = (unsigned long long)r->id;
    if (!r->prompt || r->n_prompt <= 0)
        return weft_errf(err, "engine: request %llu has an empty prompt", id);
    int V = e->m->cfg.vocab_size;
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= V)
            return weft_errf(err,
                             "engine: request %llu: prompt token %d is id %d, outside the "
                             "vocabulary [0, %d)",
                             id, i, (int)r->prompt[i], V);
    if (r->want_logprobs && (r->top_logprobs < 0 || r->top_logprobs > ENGINE_MAX_TOP_LOGPROBS))
        return weft_errf(err, "engine: request %llu: top_logprobs must be in [0, %d] (got %d)",
                         id, ENGINE_MAX_TOP_LOGPROBS, r->top_logprobs);
    if (r->split && (r->split_layer < 0 || r->split_layer > e->m->cfg.n_layers))
        return weft_errf(err, "engine: request %llu: split layer %d outside [0, %d]", id,
                         r->split_layer, e->m->cfg.n_layers);
    if (r->split && (e->cfg.kv.prefix_sharing || e->cfg.mode == ENGINE_STATIC ||
                     e->cfg.mode == ENGINE_DYNAMIC))
        return weft_errf(err, "engine: request %llu: split requests need a cache without prefix "
                              "sharing and the fused or sequential mode", id);
    if (r->max_tokens < 1)
        return weft_errf(err, "engine: request %llu: max_tokens must be at least 1 (got %d)", id,
                         r->max_tokens);
    if (r->n_prompt > e->max_seq_len - 1)
        return weft_errf(err,
                         "engine: request %llu: the prompt is %d tokens; max_seq_len %d holds at "
                         "most %d prompt tokens plus one generated",
                         id, r->n_prompt, e->max_seq_len, e->max_seq_len - 1);
    if ((int64_t)r->n_prompt + r->max_tokens > e->max_seq_len)
        return weft_errf(err,
                         "engine: request %llu: prompt (%d tokens) + max_tokens (%d) exceeds "
                         "max_seq_len %d",
                         id, r->n_prompt, r->max_tokens, e->max_seq_len);
    /* kv_cache_blocks_for reads only the cache's fixed geometry: safe from any thread. */
    int need = kv_cache_blocks_for(e->kv, r->n_prompt);
    if (need > e->total_blocks)
        return weft_errf(err,
                         "engine: request %llu: the prompt (%d tokens) needs %d cache blocks; the "
                         "whole cache has %d",
                         id, r->n_prompt, need, e->total_blocks);
    return 0;
}

int engine_submit(engine *e, const engine_request *r, weft_err *err) {
    if (!e) return weft_errf(err, "engine: no engine");
    if (check_request(e, r, err) != 0) return -1;
    engine_seq *s = seq_new(e, r, err);
    if (!s) return -1;
    engine_lock(e);
    if (id_list_contains(&e->live, r->id)) {
        engine_unlock(e);
        seq_free(s);
        return weft_errf(err, "engine: request id %llu is already live", (unsigned long long)r->id);
    }
    if (seq_list_push(&e->inbox, s) != 0) {
        engine_unlock(e);
        seq_free(s);
        return weft_errf(err, "engine: out of memory queueing request %llu",
                         (unsigned long long)r->id);
    }
    if (id_list_push(&e->live, r->id) != 0) {
        e->inbox.n--;
        engine_unlock(e);
        seq_free(s);
        return weft_errf(err, "engine: out of memory queueing request %llu",
                         (unsigned long long)r->id);
    }
    s->arrival_s = engine_clock(e);
    s->deadline_s = r->deadline_ms > 0 ? s->arrival_s + 1e-3 * r->deadline_ms : 0;
    s->order = e->next_order++;
    e->n_unfinished++;
    cond_signal(&e->wake);
    engine_unlock(e);
    return 0;
}

int engine_cancel(engine *e, uint64_t id) {
    if (!e) return -1;
    engine_lock(e);
    int rc = -1;
    if (id_list_contains(&e->live, id) && id_list_push(&e->cancels, id) == 0) {
        rc = 0;
        cond_signal(&e->wake);
    }
    engine_unlock(e);
    return rc;
}

void engine_request_done(engine *e) {
    engine_lock(e);
    if (--e->n_unfinished == 0) check_pthread(pthread_cond_broadcast(&e->idle), "cond broadcast");
    engine_unlock(e);
}

/* ---- the background thread ---- */

static void *engine_main(void *arg) {
    engine *e = arg;
    bool busy = false;      /* step again at once */
    double sleep_until = 0; /* engine clock; 0 = until woken */
    for (;;) {
        engine_lock(e);
        while (!e->stop && !busy && e->inbox.n == 0 && e->cancels.n == 0 && e->feeds.n == 0) {
            if (!cond_wait_until(e, &e->wake, sleep_until)) break;
        }
        bool stop = e->stop;
        engine_unlock(e);
        if (stop) break;
        int ran = engine_step(e, NULL);
        /* Keep stepping while sequences run, or right after a step that did work (a static
         * batch may have just ended with requests waiting). Waiting requests that could not
         * start (a dynamic batch filling up) are looked at again when their wait ends. */
        busy = e->running.n > 0 || (e->waiting.n > 0 && ran > 0);
        if (ran == 0) busy = false; /* only split requests waiting for their clients */
        sleep_until = 0;
        if (!busy && e->waiting.n > 0)
            sleep_until = e->wake_at_s > 0 ? e->wake_at_s : engine_clock(e) + 0.005;
    }
    return NULL;
}

int engine_start(engine *e, weft_err *err) {
    if (!e) return weft_errf(err, "engine: no engine");
    if (e->thread_started) return weft_errf(err, "engine: already started");
    if (e->cfg.clock.now)
        return weft_errf(err, "engine: an injected (virtual) clock needs synchronous "
                              "engine_step; engine_start refuses it");
    e->stop = false;
    int rc = pthread_create(&e->thread, NULL, engine_main, e);
    if (rc != 0) return weft_errf(err, "engine: cannot start the engine thread (%s)", strerror(rc));
    e->thread_started = true;
    return 0;
}

void engine_stop(engine *e) {
    if (!e || !e->thread_started) return;
    engine_lock(e);
    e->stop = true;
    cond_signal(&e->wake);
    engine_unlock(e);
    check_pthread(pthread_join(e->thread, NULL), "join");
    e->thread_started = false;
    e->stop = false;
}

/* Without the background thread, the caller's thread runs the steps. */
int engine_wait_idle(engine *e, double timeout_s) {
    double deadline = timeout_s > 0 ? engine_clock(e) + timeout_s : 0;
    engine_lock(e);
    while (e->n_unfinished > 0) {
        if (deadline > 0 && engine_clock(e) >= deadline) {
            engine_unlock(e);
            return -1;
        }
        if (e->thread_started) {
            cond_wait_until(e, &e->idle, deadline);
            continue;
        }
        engine_unlock(e);
        if (engine_step(e, NULL) == 0 && e->waiting.n > 0) {
            /* a dynamic batch filling up: sleep until its wait ends */
            double until = e->wake_at_s > 0 ? e->wake_at_s : engine_clock(e) + 0.001;
            if (deadline > 0 && until > deadline) until = deadline;
            double d = until - engine_clock(e);
            if (d > 0) {
                struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        engine_lock(e);
    }
    engine_unlock(e);
    return 0;
}

void engine_get_stats(engine *e, engine_stats *s) {
    engine_lock(e);
    *s = e->pub;
    s->waiting += e->inbox.n;
    engine_unlock(e);
}
