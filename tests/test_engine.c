/* test_engine.c — the temporal-fusion engine: requests that join and leave mid-flight give the
 * same greedy tokens as generate() running each alone (dense cache with compaction, paged,
 * paged with prefix sharing); preemption under a tiny cache loses nothing and changes no output;
 * chunked prefill never stalls running decodes; the four modes admit as documented; cancel,
 * engine_free with live requests, submit refusals; thousands of join/leave cycles; the
 * background thread. Greedy checks use stories260K (../shared); the rest a synthetic model. */
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/testutil.h"
#include "weft/engine.h"
#include "weft/generate.h"

#define NP 8       /* story prompts */
#define MAXREQ 64  /* request ids a recorder tracks */
#define MAXOUT 512 /* tokens per request a recorder keeps */
#define REF_N 200  /* tokens the generate() references run for */

/* ---- recording events ---- */

typedef struct rec {
    int tok[MAXOUT];
    int n;
    int n_fin, n_preempt, n_bad; /* n_bad: out-of-order index, events after FINISHED, ... */
    engine_finish fin;
} rec;

typedef struct recorder {
    rec r[MAXREQ];
    pthread_mutex_t mu; /* only the thread test reads while events arrive */
} recorder;

static recorder *recorder_new(void) {
    recorder *rc = calloc(1, sizeof *rc);
    assert_non_null(rc);
    assert_int_equal(pthread_mutex_init(&rc->mu, NULL), 0);
    return rc;
}

static void recorder_free(recorder *rc) {
    pthread_mutex_destroy(&rc->mu);
    free(rc);
}

/* No cmocka asserts here: events may arrive on the engine thread. */
static void on_event(void *ctx, const engine_event *ev) {
    recorder *rc = ctx;
    pthread_mutex_lock(&rc->mu);
    rec *r = &rc->r[ev->id % MAXREQ];
    if (r->n_fin) r->n_bad++;
    switch (ev->type) {
    case ENGINE_EV_TOKEN:
        if (ev->index != r->n) r->n_bad++;
        if (r->n < MAXOUT) r->tok[r->n] = ev->token;
        r->n++;
        break;
    case ENGINE_EV_FINISHED:
        r->n_fin++;
        r->fin = ev->finish;
        if (ev->n_generated != r->n) r->n_bad++;
        break;
    case ENGINE_EV_PREEMPTED:
        r->n_preempt++;
        break;
    case ENGINE_EV_CONSUMED: /* split requests only; none here */
        r->n_bad++;
        break;
    }
    pthread_mutex_unlock(&rc->mu);
}

static int rec_n(recorder *rc, uint64_t id) {
    pthread_mutex_lock(&rc->mu);
    int n = rc->r[id].n;
    pthread_mutex_unlock(&rc->mu);
    return n;
}

/* ---- fixture ---- */

typedef struct ref {
    int tok[REF_N];
    int n;
    bool stopped; /* an end token came before REF_N */
} ref;

typedef struct fixture {
    weft_model *story; /* NULL when ../shared is absent */
    weft_model *synth;
    tp_pool *pool;
    int32_t prompt[NP][256];
    int n_prompt[NP];
    ref greedy[NP], greedy_noeos[NP]; /* generate() alone, with and without end tokens */
} fixture;

#define PREFIX                                                                                     \
    "Once upon a time, there was a little girl named Lily. She lived in a small house with "       \
    "her mom and dad. Every day she played in the garden with her friend Tom."
static const char *const prompt_text[NP] = {
    "",
    "Once upon a time",
    "The little dog",
    PREFIX " Lily wanted to play with the ball.",
    PREFIX " Tom found a big red box.",
    PREFIX " They went to the park.",
    "Sam had a toy car",
    PREFIX " The sun",
};

static void make_ref(fixture *fx, int i, bool ignore_eos, ref *out) {
    gen_params p = {0};
    sampling_defaults(&p.sampling);
    p.sampling.temperature = 0;
    p.prompt = prompt_text[i];
    p.n_predict = REF_N;
    p.ctx_len = 512;
    p.ignore_eos = ignore_eos;
    gen_stats st;
    weft_err err = {{0}};
    int rc = generate(fx->story, fx->pool, &p, NULL, NULL, out->tok, REF_N, &st, &err);
    if (rc != 0) fprintf(stderr, "generate: %s\n", err.msg);
    assert_int_equal(rc, 0);
    out->n = st.n_generated;
    out->stopped = st.reason == GEN_STOP_EOS;
}

static weft_model *make_synth(void) {
    return tu_synth_model("engine-gqa.gguf", "test-gqa", WEFT_F32, 7);
}

static int setup(void **state) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    fx->pool = tp_new(2);
    fx->synth = make_synth();
    if (!fx->pool || !fx->synth) return -1;
    char buf[4096];
    const char *gguf = tu_shared("models/stories260K.gguf", buf, sizeof buf);
    if (gguf) {
        weft_err err = {{0}};
        fx->story = model_load(gguf, NULL, &err);
        if (!fx->story) {
            fprintf(stderr, "load: %s\n", err.msg);
            return -1;
        }
        for (int i = 0; i < NP; i++) {
            const char *t = prompt_text[i];
            fx->n_prompt[i] = tok_encode(fx->story->tok, t, strlen(t), true, fx->prompt[i], 256);
            if (fx->n_prompt[i] <= 0 || fx->n_prompt[i] > 256) return -1;
            make_ref(fx, i, false, &fx->greedy[i]);
            make_ref(fx, i, true, &fx->greedy_noeos[i]);
        }
    }
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    if (!fx) return 0;
    model_free(fx->story);
    model_free(fx->synth);
    tp_free(fx->pool);
    free(fx);
    return 0;
}

#define STORY_OR_SKIP(fx)                                                                          \
    fixture *fx = *state;                                                                          \
    if (!fx->story) {                                                                              \
        printf("SKIP (loud): ../shared/models/stories260K.gguf absent\n");                         \
        skip();                                                                                    \
    }

/* ---- helpers ---- */

static engine_config base_config(kv_layout layout, int64_t capacity_tokens) {
    engine_config c;
    engine_config_defaults(&c);
    c.kv.layout = layout;
    c.kv.capacity_tokens = capacity_tokens;
    c.kv.max_seq_len = 512;
    c.kv.block_tokens = 16;
    c.max_batch_tokens = 64;
    c.max_running = 8;
    c.n_threads = 2;
    return c;
}

static engine *new_engine(const weft_model *m, const engine_config *c) {
    weft_err err = {{0}};
    engine *e = engine_new(m, c, &err);
    if (!e) fprintf(stderr, "engine_new: %s\n", err.msg);
    assert_non_null(e);
    return e;
}

static void submit_story(fixture *fx, engine *e, recorder *rc, int id, int prompt, int max_tokens,
                         bool ignore_eos) {
    engine_request r = {0};
    r.id = (uint64_t)id;
    r.prompt = fx->prompt[prompt];
    r.n_prompt = fx->n_prompt[prompt];
    r.max_tokens = max_tokens;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = 0;
    r.ignore_eos = ignore_eos;
    r.on_event = on_event;
    r.ctx = rc;
    weft_err err = {{0}};
    int rv = engine_submit(e, &r, &err);
    if (rv != 0) fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rv, 0);
}

/* Request id produced what generate() produced alone for the same prompt, cut at max_tokens. */
static void expect_ref(const rec *r, const ref *want, int max_tokens) {
    int n = want->n < max_tokens ? want->n : max_tokens;
    assert_true(want->stopped || want->n >= max_tokens); /* the reference went far enough */
    assert_int_equal(r->n_bad, 0);
    assert_int_equal(r->n_fin, 1);
    assert_int_equal(r->n, n);
    assert_memory_equal(r->tok, want->tok, sizeof(int) * (size_t)n);
    assert_int_equal(r->fin, want->n >= max_tokens ? ENGINE_FINISH_LENGTH : ENGINE_FINISH_STOP);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- requests joining and leaving mid-flight ---- */

static const int join_max_tokens[NP] = {120, 80, 60, 50, 70, 40, 100, 30};

/* Submits in three waves between steps, then runs to idle; every output matches generate(). */
static void run_join_leave(fixture *fx, const engine_config *c, engine_stats *st) {
    engine *e = new_engine(fx->story, c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    static const int wave_at_step[NP] = {0, 0, 0, 2, 2, 5, 5, 9};
    int next = 0;
    for (int step = 0; next < NP; step++) {
        while (next < NP && wave_at_step[next] == step) {
            submit_story(fx, e, rc, next, next, join_max_tokens[next], false);
            next++;
        }
        assert_true(engine_step(e, &err) >= 0);
    }
    assert_int_equal(engine_wait_idle(e, 60), 0);
    for (int i = 0; i < NP; i++)
        expect_ref(&rc->r[i], &fx->greedy[i], join_max_tokens[i]);
    engine_get_stats(e, st);
    assert_int_equal(st->requests_finished, NP);
    assert_int_equal(st->waiting, 0);
    assert_int_equal(st->running, 0);
    assert_int_equal(st->kv.n_seqs, 0);
    assert_true(st->kv_live_fraction_mean > 0 && st->kv_live_fraction_mean <= 1.0);
    assert_true(st->time_forward_s > 0);
    engine_free(e);
    recorder_free(rc);
}

static void test_join_leave_paged(void **state) {
    STORY_OR_SKIP(fx);
    engine_config c = base_config(KV_LAYOUT_PAGED, 4096);
    engine_stats st;
    run_join_leave(fx, &c, &st);
    assert_int_equal(st.requests_preempted, 0);
}

static void test_join_leave_dense(void **state) {
    STORY_OR_SKIP(fx);
    /* four slots for eight requests: they queue for slots, and slots free up out of order */
    engine_config c = base_config(KV_LAYOUT_DENSE, 4 * 512);
    c.compact_dense = true;
    engine_stats st;
    run_join_leave(fx, &c, &st);
    assert_true(st.kv.slot_moves > 0);
    assert_true(st.time_compact_s > 0);
}

static void test_join_leave_prefix_sharing(void **state) {
    STORY_OR_SKIP(fx);
    engine_config c = base_config(KV_LAYOUT_PAGED, 4096);
    c.kv.prefix_sharing = true;
    engine_stats st;
    run_join_leave(fx, &c, &st);
    assert_true(st.kv.prefix_hit_tokens >= 16);
    /* skipped prefill: fewer prompt tokens computed than submitted */
    int total = 0;
    for (int i = 0; i < NP; i++)
        total += fx->n_prompt[i];
    assert_true(st.tokens_prefilled < (uint64_t)total);
}

/* ---- preemption ---- */

static void test_preemption_tiny_cache(void **state) {
    STORY_OR_SKIP(fx);
    /* 6 blocks of 16 tokens; six short prompts each growing to ~50 tokens cannot all fit */
    engine_config c = base_config(KV_LAYOUT_PAGED, 96);
    c.kv.max_seq_len = 96;
    engine *e = new_engine(fx->story, &c);
    recorder *rc = recorder_new();
    static const int which[] = {0, 1, 2, 6, 1, 0};
    const int n = (int)(sizeof which / sizeof *which);
    for (int i = 0; i < n; i++)
        submit_story(fx, e, rc, i, which[i], 40, true);
    assert_int_equal(engine_wait_idle(e, 60), 0);
    int preempt_events = 0;
    for (int i = 0; i < n; i++) {
        expect_ref(&rc->r[i], &fx->greedy_noeos[which[i]], 40);
        preempt_events += rc->r[i].n_preempt;
    }
    engine_stats st;
    engine_get_stats(e, &st);
    assert_true(preempt_events > 0);
    assert_int_equal(st.requests_preempted, (uint64_t)preempt_events);
    assert_int_equal(st.requests_finished, (uint64_t)n);
    assert_int_equal(st.kv.n_seqs, 0);
    assert_int_equal(st.kv.free_blocks, st.kv.total_blocks);
    engine_free(e);
    recorder_free(rc);
}

/* A cache smaller than one max_seq_len sequence, when the cache accepts one (else NULL). */
static engine *new_engine_small_cache(const weft_model *m, const engine_config *c) {
    weft_err err = {{0}};
    engine *e = engine_new(m, c, &err);
    if (!e) {
        printf("note: the KV cache refuses a capacity below max_seq_len (%s)\n", err.msg);
        assert_non_null(strstr(err.msg, "cannot hold one sequence"));
    }
    return e;
}

/* ---- chunked prefill ---- */

static void test_chunked_prefill(void **state) {
    STORY_OR_SKIP(fx);
    engine_config c = base_config(KV_LAYOUT_PAGED, 4096);
    c.max_batch_tokens = 8;
    engine *e = new_engine(fx->story, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    submit_story(fx, e, rc, 0, 1, 80, true); /* short prompt: decoding after a step or two */
    for (int i = 0; i < 3; i++)
        assert_true(engine_step(e, &err) > 0);
    assert_true(rc->r[0].n > 0);
    int long_prompt = fx->n_prompt[3];
    assert_true(long_prompt > 3 * 7);
    submit_story(fx, e, rc, 1, 3, 20, true);
    int steps_to_first = 0;
    while (rc->r[1].n == 0) {
        int before = rc->r[0].n;
        assert_int_equal(engine_step(e, &err), 2);
        steps_to_first++;
        /* the running sequence decodes every single step while the prompt is split */
        assert_int_equal(rc->r[0].n, before + 1);
    }
    /* 8-token budget, one for the decode: at most 7 prompt tokens per step */
    assert_true(steps_to_first >= (long_prompt + 6) / 7);
    assert_int_equal(engine_wait_idle(e, 30), 0);
    expect_ref(&rc->r[0], &fx->greedy_noeos[1], 80);
    expect_ref(&rc->r[1], &fx->greedy_noeos[3], 20);
    engine_free(e);
    recorder_free(rc);
}

/* ---- modes (synthetic model) ---- */

static void submit_synth(engine *e, recorder *rc, uint64_t id, int n_prompt, int max_tokens) {
    int32_t p[64];
    for (int i = 0; i < n_prompt; i++)
        p[i] = (int32_t)(3 + (id * 31 + (uint64_t)i * 7) % 200);
    engine_request r = {0};
    r.id = id;
    r.prompt = p;
    r.n_prompt = n_prompt;
    r.max_tokens = max_tokens;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    r.on_event = on_event;
    r.ctx = rc;
    weft_err err = {{0}};
    int rv = engine_submit(e, &r, &err);
    if (rv != 0) fprintf(stderr, "submit: %s\n", err.msg);
    assert_int_equal(rv, 0);
}

static engine_config synth_config(engine_mode mode) {
    engine_config c = base_config(KV_LAYOUT_PAGED, 2048);
    c.mode = mode;
    c.kv.max_seq_len = 256;
    return c;
}

static void test_mode_sequential(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_SEQUENTIAL);
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    for (int i = 0; i < 3; i++)
        submit_synth(e, rc, (uint64_t)i, 5 + i, 6);
    int steps = 0, r;
    while ((r = engine_step(e, &err)) > 0) {
        assert_int_equal(r, 1);
        engine_stats st;
        engine_get_stats(e, &st);
        assert_true(st.running <= 1);
        /* strictly one after another */
        if (rc->r[1].n > 0) assert_int_equal(rc->r[0].n_fin, 1);
        if (rc->r[2].n > 0) assert_int_equal(rc->r[1].n_fin, 1);
        steps++;
    }
    assert_int_equal(r, 0);
    assert_int_equal(steps, 3 * 6);
    for (int i = 0; i < 3; i++)
        assert_int_equal(rc->r[i].fin, ENGINE_FINISH_LENGTH);
    engine_free(e);
    recorder_free(rc);
}

static void test_mode_static(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_STATIC);
    c.max_batch_size = 4;
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    submit_synth(e, rc, 0, 4, 3);
    submit_synth(e, rc, 1, 6, 8);
    assert_int_equal(engine_step(e, &err), 2);
    submit_synth(e, rc, 2, 3, 2); /* arrives mid-batch */
    /* the batch runs until its longest member ends; the short one stays as padding */
    for (int s = 1; s < 8; s++) {
        assert_int_equal(engine_step(e, &err), 2);
        assert_int_equal(rc->r[2].n, 0);
    }
    assert_int_equal(rc->r[0].n_fin, 1);
    assert_int_equal(rc->r[1].n_fin, 1);
    assert_int_equal(rc->r[1].n, 8);
    /* the next batch starts only now */
    assert_int_equal(engine_step(e, &err), 1);
    assert_int_equal(rc->r[2].n, 1);
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_int_equal(rc->r[2].n, 2);
    engine_free(e);
    recorder_free(rc);
}

static void test_mode_dynamic(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_DYNAMIC);
    c.max_batch_size = 3;
    c.max_wait_ms = 150;
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    /* a full batch starts at once */
    submit_synth(e, rc, 0, 4, 2);
    assert_int_equal(engine_step(e, &err), 0); /* one of three: waits */
    submit_synth(e, rc, 1, 4, 2);
    submit_synth(e, rc, 2, 4, 2);
    assert_int_equal(engine_step(e, &err), 3);
    assert_int_equal(engine_step(e, &err), 3);
    assert_int_equal(engine_step(e, &err), 0);
    /* a lone request starts when its wait ends */
    double t0 = engine_now_s(e);
    submit_synth(e, rc, 3, 4, 2);
    assert_int_equal(engine_step(e, &err), 0);
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_true(engine_now_s(e) - t0 >= 0.150);
    assert_int_equal(rc->r[3].n, 2);
    /* the background thread sleeps until the wait ends, then starts the batch */
    assert_int_equal(engine_start(e, &err), 0);
    t0 = engine_now_s(e);
    submit_synth(e, rc, 4, 4, 2);
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_true(engine_now_s(e) - t0 >= 0.150);
    assert_int_equal(rec_n(rc, 4), 2);
    engine_free(e); /* stops the thread */
    recorder_free(rc);
}

static void test_mode_fused(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    submit_synth(e, rc, 0, 4, 10);
    assert_int_equal(engine_step(e, &err), 1);
    assert_int_equal(engine_step(e, &err), 1);
    submit_synth(e, rc, 1, 5, 3);
    assert_int_equal(engine_step(e, &err), 2); /* joins at the next step */
    assert_int_equal(rc->r[1].n, 1);
    assert_int_equal(rc->r[0].n, 3);
    assert_int_equal(engine_step(e, &err), 2);
    assert_int_equal(engine_step(e, &err), 2);
    assert_int_equal(rc->r[1].n_fin, 1); /* leaves at once */
    assert_int_equal(engine_step(e, &err), 1);
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_int_equal(rc->r[0].n, 10);
    engine_free(e);
    recorder_free(rc);
}

/* ---- cancel, free, refusals ---- */

static void test_cancel(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    c.max_running = 1;
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    submit_synth(e, rc, 0, 4, 50);
    submit_synth(e, rc, 1, 4, 50);
    for (int i = 0; i < 3; i++)
        assert_int_equal(engine_step(e, &err), 1);
    assert_int_equal(rc->r[1].n, 0); /* still waiting */
    assert_int_equal(engine_cancel(e, 1), 0);
    assert_int_equal(engine_cancel(e, 0), 0);
    assert_int_equal(engine_cancel(e, 99), -1);
    assert_int_equal(engine_step(e, &err), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(rc->r[i].n_fin, 1);
        assert_int_equal(rc->r[i].fin, ENGINE_FINISH_CANCELLED);
        assert_int_equal(rc->r[i].n_bad, 0);
    }
    assert_int_equal(rc->r[0].n, 3);
    assert_int_equal(engine_cancel(e, 0), -1); /* gone now */
    engine_stats st;
    engine_get_stats(e, &st);
    assert_int_equal(st.kv.n_seqs, 0);
    assert_int_equal(st.waiting + st.running, 0);
    /* the id is free again */
    submit_synth(e, rc, 0 + 2, 4, 1);
    assert_int_equal(engine_wait_idle(e, 10), 0);
    engine_free(e);
    recorder_free(rc);
}


/* want_logprobs: each TOKEN carries the chosen token's log-probability and the most likely
 * alternatives, most likely first; greedy picks the first of them. */
typedef struct lp_rec {
    int n, n_bad, n_fin;
    double queue_s;
} lp_rec;

static void on_lp_event(void *ctx, const engine_event *ev) {
    lp_rec *r = ctx;
    if (ev->type == ENGINE_EV_FINISHED) {
        r->n_fin++;
        r->queue_s = ev->queue_s;
        return;
    }
    if (ev->type != ENGINE_EV_TOKEN) return;
    r->n++;
    double mass = 0;
    if (ev->n_top != 3 || !(ev->logprob <= 0) || ev->top_ids[0] != ev->token ||
        fabsf(ev->top_logprobs[0] - ev->logprob) > 1e-6f)
        r->n_bad++;
    for (int i = 0; i < ev->n_top; i++) {
        mass += exp(ev->top_logprobs[i]);
        if (i && ev->top_logprobs[i] > ev->top_logprobs[i - 1]) r->n_bad++;
    }
    if (mass > 1.0 + 1e-4) r->n_bad++;
}

static void test_logprobs(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    engine *e = new_engine(fx->synth, &c);
    int32_t p[4] = {5, 9, 13, 17};
    lp_rec rec0 = {0};
    engine_request r = {0};
    r.id = 1;
    r.prompt = p;
    r.n_prompt = 4;
    r.max_tokens = 6;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    r.want_logprobs = true;
    r.top_logprobs = 3;
    r.on_event = on_lp_event;
    r.ctx = &rec0;
    weft_err err = {{0}};
    assert_int_equal(engine_submit(e, &r, &err), 0);
    r.id = 2;
    r.top_logprobs = ENGINE_MAX_TOP_LOGPROBS + 1;
    assert_int_equal(engine_submit(e, &r, &err), -1);
    assert_non_null(strstr(err.msg, "top_logprobs"));
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_int_equal(rec0.n, 6);
    assert_int_equal(rec0.n_fin, 1);
    assert_int_equal(rec0.n_bad, 0);
    assert_true(rec0.queue_s >= 0);
    engine_free(e);
}

static void test_free_with_live_requests(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    c.max_running = 2;
    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    for (int i = 0; i < 4; i++)
        submit_synth(e, rc, (uint64_t)i, 4, 50);
    assert_int_equal(engine_step(e, &err), 2);
    submit_synth(e, rc, 4, 4, 50); /* still in the inbox */
    engine_free(e);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rc->r[i].n_fin, 1);
        assert_int_equal(rc->r[i].fin, ENGINE_FINISH_CANCELLED);
        assert_int_equal(rc->r[i].n_bad, 0);
    }
    recorder_free(rc);
}

static void expect_refused(engine *e, const engine_request *r, const char *needle) {
    weft_err err = {{0}};
    assert_int_equal(engine_submit(e, r, &err), -1);
    if (!strstr(err.msg, needle)) fprintf(stderr, "message: %s (wanted '%s')\n", err.msg, needle);
    assert_non_null(strstr(err.msg, needle));
}

static void test_submit_refusals(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    c.kv.capacity_tokens = 64; /* 4 blocks */
    c.kv.max_seq_len = 128;
    engine *e = new_engine_small_cache(fx->synth, &c);
    bool small_cache = e != NULL;
    if (!e) {
        c.kv.capacity_tokens = 128;
        e = new_engine(fx->synth, &c);
    }
    recorder *rc = recorder_new();
    int32_t p[200];
    for (int i = 0; i < 200; i++)
        p[i] = 5;
    engine_request r = {
        .id = 1, .prompt = p, .n_prompt = 4, .max_tokens = 4, .on_event = on_event, .ctx = rc};
    sampling_defaults(&r.sampling);

    r.n_prompt = 0;
    expect_refused(e, &r, "empty prompt");
    r.prompt = NULL;
    r.n_prompt = 4;
    expect_refused(e, &r, "empty prompt");
    r.prompt = p;
    p[2] = 512; /* test-gqa has 512 tokens */
    expect_refused(e, &r, "prompt token 2 is id 512, outside the vocabulary");
    p[2] = -1;
    expect_refused(e, &r, "outside the vocabulary");
    p[2] = 5;
    r.max_tokens = 0;
    expect_refused(e, &r, "max_tokens must be at least 1");
    r.max_tokens = 4;
    r.n_prompt = 128;
    expect_refused(e, &r, "the prompt is 128 tokens; max_seq_len 128");
    r.n_prompt = 100;
    r.max_tokens = 29;
    expect_refused(e, &r, "exceeds max_seq_len 128");
    if (small_cache) {
        r.n_prompt = 70; /* 5 blocks of 16; the cache has 4 */
        r.max_tokens = 4;
        expect_refused(e, &r, "needs 5 cache blocks");
    }
    engine_stats st;
    engine_get_stats(e, &st);
    assert_int_equal(st.waiting, 0);

    r.n_prompt = 4;
    weft_err err = {{0}};
    assert_int_equal(engine_submit(e, &r, &err), 0);
    expect_refused(e, &r, "already live");
    assert_int_equal(engine_wait_idle(e, 10), 0);
    assert_int_equal(rc->r[1].n_fin, 1);
    assert_int_equal(engine_submit(e, &r, &err), 0); /* finished: the id may be reused */
    engine_free(e);
    recorder_free(rc);

    /* configurations that cannot work are refused too */
    c = synth_config(ENGINE_FUSED);
    c.max_running = 100;
    c.max_batch_tokens = 50;
    assert_null(engine_new(fx->synth, &c, &err));
    assert_non_null(strstr(err.msg, "max_running"));
}

/* ---- many join/leave cycles ---- */

typedef struct churn {
    int finished, tokens, bad;
} churn;

static void churn_event(void *ctx, const engine_event *ev) {
    churn *ch = ctx;
    if (ev->type == ENGINE_EV_TOKEN) ch->tokens++;
    if (ev->type == ENGINE_EV_FINISHED) {
        ch->finished++;
        if (ev->finish != ENGINE_FINISH_LENGTH) ch->bad++;
    }
}

static void churn_run(fixture *fx, kv_layout layout, int n_requests) {
    engine_config c = synth_config(ENGINE_FUSED);
    c.kv.layout = layout;
    c.kv.max_seq_len = 32;
    c.kv.capacity_tokens = layout == KV_LAYOUT_DENSE ? 6 * 32 : 160;
    c.kv.prefix_sharing = layout == KV_LAYOUT_PAGED;
    c.max_running = 8;
    c.max_batch_tokens = 24;
    c.n_threads = 1;
    engine *e = new_engine(fx->synth, &c);
    churn ch = {0};
    weft_err err = {{0}};
    int expect_tokens = 0;
    unsigned x = 12345;
    for (int i = 0; i < n_requests;) {
        x = x * 1103515245u + 12345u;
        int burst = 1 + (int)((x >> 16) % 4);
        for (int b = 0; b < burst && i < n_requests; b++, i++) {
            int32_t p[20];
            int np = 1 + (int)((x >> (b + 3)) % 18);
            for (int k = 0; k < np; k++)
                p[k] = (int32_t)(1 + (k * 13 + (i % 5)) % 250);
            engine_request r = {.id = (uint64_t)i,
                                .prompt = p,
                                .n_prompt = np,
                                .max_tokens = 1 + i % 4,
                                .ignore_eos = true,
                                .on_event = churn_event,
                                .ctx = &ch};
            sampling_defaults(&r.sampling);
            r.sampling.seed = (uint64_t)i;
            expect_tokens += r.max_tokens;
            assert_int_equal(engine_submit(e, &r, &err), 0);
        }
        assert_true(engine_step(e, &err) >= 0);
    }
    assert_int_equal(engine_wait_idle(e, 120), 0);
    assert_int_equal(ch.finished, n_requests);
    assert_int_equal(ch.tokens, expect_tokens);
    assert_int_equal(ch.bad, 0);
    engine_stats st;
    engine_get_stats(e, &st);
    assert_int_equal(st.kv.n_seqs, 0);
    assert_int_equal(st.requests_finished, (uint64_t)n_requests);
    engine_free(e);
}

static void test_many_join_leave(void **state) {
    fixture *fx = *state;
    int n = getenv("WEFT_SANITIZED") ? 1500 : 4000;
    churn_run(fx, KV_LAYOUT_PAGED, n);
    churn_run(fx, KV_LAYOUT_DENSE, n / 2);
}

/* ---- the background thread ---- */

typedef struct submitter {
    engine *e;
    recorder *rc;
    int first, count;
    int failures;
} submitter;

static void *submit_thread(void *arg) {
    submitter *s = arg;
    for (int i = s->first; i < s->first + s->count; i++) {
        int32_t p[16];
        int np = 2 + i % 9;
        for (int k = 0; k < np; k++)
            p[k] = (int32_t)(3 + (i * 17 + k * 5) % 240);
        engine_request r = {.id = (uint64_t)i,
                            .prompt = p,
                            .n_prompt = np,
                            .max_tokens = 3 + i % 7,
                            .ignore_eos = true,
                            .on_event = on_event,
                            .ctx = s->rc};
        sampling_defaults(&r.sampling);
        r.sampling.temperature = 0;
        weft_err err = {{0}};
        if (engine_submit(s->e, &r, &err) != 0) s->failures++;
        if (i % 3 == 0) sleep_ms(2);
    }
    return NULL;
}

static void test_background_thread(void **state) {
    fixture *fx = *state;
    engine_config c = synth_config(ENGINE_FUSED);
    c.max_running = 4;
    /* reference: the same requests one at a time, stepped on this thread */
    recorder *solo = recorder_new();
    engine_config cs = c;
    cs.mode = ENGINE_SEQUENTIAL;
    engine *es = new_engine(fx->synth, &cs);
    submitter ss = {es, solo, 0, 24, 0};
    submit_thread(&ss);
    assert_int_equal(engine_wait_idle(es, 30), 0);
    engine_free(es);

    engine *e = new_engine(fx->synth, &c);
    recorder *rc = recorder_new();
    weft_err err = {{0}};
    assert_int_equal(engine_start(e, &err), 0);
    assert_int_equal(engine_start(e, &err), -1); /* once */
    pthread_t th[2];
    submitter sub[2] = {{e, rc, 0, 12, 0}, {e, rc, 12, 12, 0}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, submit_thread, &sub[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(sub[0].failures + sub[1].failures, 0);
    assert_int_equal(engine_wait_idle(e, 30), 0);
    for (int i = 0; i < 24; i++) {
        assert_int_equal(rc->r[i].n_fin, 1);
        assert_int_equal(rc->r[i].n_bad, 0);
        assert_int_equal(rc->r[i].n, solo->r[i].n);
        assert_memory_equal(rc->r[i].tok, solo->r[i].tok, sizeof(int) * (size_t)rc->r[i].n);
    }
    /* idle: the thread sleeps; a later submit wakes it */
    sleep_ms(20);
    engine_stats a, b;
    engine_get_stats(e, &a);
    sleep_ms(30);
    engine_get_stats(e, &b);
    assert_int_equal(a.steps, b.steps);
    submitter late = {e, rc, 40, 2, 0};
    submit_thread(&late);
    assert_int_equal(engine_wait_idle(e, 30), 0);
    assert_int_equal(rec_n(rc, 40), 3 + 40 % 7);
    engine_stop(e);
    engine_stop(e); /* harmless twice */
    engine_free(e);
    recorder_free(rc);
    recorder_free(solo);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_leave_paged),
        cmocka_unit_test(test_join_leave_dense),
        cmocka_unit_test(test_join_leave_prefix_sharing),
        cmocka_unit_test(test_preemption_tiny_cache),
        cmocka_unit_test(test_chunked_prefill),
        cmocka_unit_test(test_mode_sequential),
        cmocka_unit_test(test_mode_static),
        cmocka_unit_test(test_mode_dynamic),
        cmocka_unit_test(test_mode_fused),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_with_live_requests),
        cmocka_unit_test(test_submit_refusals),
        cmocka_unit_test(test_many_join_leave),
        cmocka_unit_test(test_background_thread),
        cmocka_unit_test(test_logprobs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
