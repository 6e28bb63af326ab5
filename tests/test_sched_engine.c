/* test_sched_engine.c — the policies inside the real engine (synthetic test model, steps driven
 * on this thread): aging lets a long request finish under a continuous stream of short ones
 * (and without aging it starves); the laxity drop option finishes a hopeless request with
 * ENGINE_FINISH_DEADLINE while the default only runs it late; consolidation admits by predicted
 * KV footprint and so avoids the preemptions plain admission causes; the predictor hooks are
 * called at submit, once after prefill and at every finish, and their prediction reaches the
 * policy, the FINISHED event and the statistics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/engine_util.h"
#include "weft/engine.h"

#define MAXREQ 256

typedef struct rec {
    int n_tok[MAXREQ];
    int fin[MAXREQ]; /* engine_finish + 1; 0 = not finished */
    double fin_t[MAXREQ], queue_s[MAXREQ];
    float p50[MAXREQ], p90[MAXREQ];
    int missed[MAXREQ];
    int n_fin, n_preempt;
    int short_before_long; /* requests other than 0 that finished before request 0 */
} rec;

static void on_event(void *ctx, const engine_event *ev) {
    rec *r = ctx;
    int id = ev->id < MAXREQ ? (int)ev->id : MAXREQ - 1; /* the stream test's many ids share */
    if (ev->type == ENGINE_EV_TOKEN) r->n_tok[id]++;
    if (ev->type == ENGINE_EV_PREEMPTED) r->n_preempt++;
    if (ev->type == ENGINE_EV_FINISHED) {
        r->fin[id] = (int)ev->finish + 1;
        r->fin_t[id] = ev->t_s;
        r->queue_s[id] = ev->queue_s;
        r->p50[id] = ev->pred_p50;
        r->p90[id] = ev->pred_p90;
        r->missed[id] = ev->deadline_missed;
        r->n_fin++;
        if (id != 0 && r->fin[0] == 0) r->short_before_long++;
    }
}

static weft_model *g_model;

static int setup(void **state) {
    (void)state;
    g_model = tu_synth_model("sched-engine.gguf", "test-gqa", WEFT_F32, 11);
    return g_model ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model_free(g_model);
    return 0;
}

static engine_config config(const char *policy, const sched_config *sc, int max_running,
                            int64_t kv_tokens) {
    engine_config c;
    engine_config_defaults(&c);
    c.kv.layout = KV_LAYOUT_PAGED;
    c.kv.block_tokens = 16;
    c.kv.max_seq_len = 256;
    c.kv.capacity_tokens = kv_tokens;
    c.max_batch_tokens = 64;
    c.max_running = max_running;
    c.n_threads = 1;
    c.policy = sched_policy_new(policy, sc);
    assert_non_null(c.policy);
    return c;
}

static engine_request request(rec *r, uint64_t id, int n_prompt, int max_tokens, int predicted) {
    static int32_t prompt[64]; /* engine_submit copies the prompt */
    engine_request q = tu_greedy_request(id, prompt, n_prompt, max_tokens, on_event, r);
    q.predicted_tokens = predicted;
    return q;
}

/* One running slot; a long request (predicted 200 tokens) and, for stream_s seconds, a stream
 * of short ones (predicted 2) that always keeps three short ones waiting. Returns whether the
 * long one finished while the stream was still running. */
static bool stream_run(double aging_s, double stream_s, rec *r) {
    sched_config sc;
    sched_config_defaults(&sc);
    sc.aging_s = aging_s;
    engine_config c = config("spf", &sc, 1, 4096);
    engine *e = tu_engine_new(g_model, &c);
    engine_request q = request(r, 0, 8, 12, 200);
    tu_submit(e, &q);
    uint64_t next = 1;
    double t_end = engine_now_s(e) + stream_s;
    bool during = false;
    while (engine_now_s(e) < t_end) {
        engine_stats st;
        engine_get_stats(e, &st);
        for (; st.waiting < 3; st.waiting++) {
            q = request(r, next++, 4, 2, 2);
            tu_submit(e, &q);
        }
        tu_step(e);
        if (r->fin[0]) {
            during = true;
            break;
        }
    }
    assert_int_equal(engine_wait_idle(e, 60), 0);
    engine_free(e);
    return during;
}

static void test_aging_long_finishes_under_short_stream(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* a 50 ms aging bound: the long request gets in while the stream still runs */
    assert_true(stream_run(0.05, 5.0, r));
    printf("with aging: %d short requests finished before the long one; it waited %.3f s\n",
           r->short_before_long, r->queue_s[0]);
    assert_true(r->short_before_long > 0); /* it did wait behind shorter work first */
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1);
    assert_int_equal(r->n_tok[0], 12);
    /* linear aging lets it overtake shortly before the bound; it then waits at most for the
     * running short request to end (generous margin for a loaded machine) */
    assert_true(r->queue_s[0] > 0.005 && r->queue_s[0] < 0.05 + 1.0);
    memset(r, 0, sizeof *r);
    /* no aging: it starves as long as the stream runs */
    assert_false(stream_run(1e9, 0.3, r));
    printf("without aging: %d short requests finished, the long one still waiting\n",
           r->short_before_long);
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1); /* after the stream, at last */
    free(r);
}

static void test_laxity_drop_option(void **state) {
    (void)state;
    for (int late = SCHED_LATE_KEEP; late <= SCHED_LATE_DROP; late++) {
        rec *r = calloc(1, sizeof *r);
        assert_non_null(r);
        sched_config sc;
        sched_config_defaults(&sc);
        sc.late_policy = (sched_late)late;
        engine_config c = config("laxity", &sc, 1, 4096);
        engine *e = tu_engine_new(g_model, &c);
        engine_request q = request(r, 0, 8, 200, 200); /* occupies the only slot */
        tu_submit(e, &q);
        tu_step(e);
        q = request(r, 1, 8, 20, 20);
        q.deadline_ms = 1; /* 20 tokens cannot be done in 1 ms behind 200 of request 0 */
        tu_submit(e, &q);
        q = request(r, 2, 8, 5, 5);
        q.deadline_ms = 60000; /* easy */
        tu_submit(e, &q);
        assert_int_equal(engine_wait_idle(e, 60), 0);
        engine_stats st;
        engine_get_stats(e, &st);
        engine_free(e);
        assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1);
        assert_int_equal(r->fin[2], ENGINE_FINISH_LENGTH + 1);
        assert_int_equal(r->missed[2], 0);
        assert_int_equal(r->missed[0], -1);
        assert_int_equal(r->missed[1], 1);
        assert_int_equal(st.deadline_requests, 2);
        assert_int_equal(st.deadline_missed, 1);
        if (late == SCHED_LATE_DROP) {
            assert_int_equal(r->fin[1], ENGINE_FINISH_DEADLINE + 1);
            assert_int_equal(r->n_tok[1], 0);
            assert_int_equal(st.requests_dropped, 1);
        } else {
            assert_int_equal(r->fin[1], ENGINE_FINISH_LENGTH + 1);
            assert_int_equal(r->n_tok[1], 20);
            assert_int_equal(st.requests_dropped, 0);
            if (late == SCHED_LATE_DEMOTE) /* deprioritised: after the feasible request 2 */
                assert_true(r->fin_t[1] > r->fin_t[2]);
            else /* kept: the least laxity (negative) runs first, before 2 */
                assert_true(r->fin_t[1] < r->fin_t[2]);
        }
        free(r);
    }
}

/* Eight requests of 8 prompt tokens that each grow to 8 + 100 tokens, in a cache of 320 tokens
 * (20 blocks of 16): all prompts fit at once, but only two full sequences (7 blocks each) do. */
static uint64_t consolidation_run(bool consolidate, rec *r) {
    engine_config c = config("fcfs", NULL, 8, 320);
    c.consolidate = consolidate;
    engine *e = tu_engine_new(g_model, &c);
    for (int i = 0; i < 8; i++) {
        engine_request q = request(r, (uint64_t)i, 8, 100, 100);
        tu_submit(e, &q);
    }
    assert_int_equal(engine_wait_idle(e, 120), 0);
    engine_stats st;
    engine_get_stats(e, &st);
    engine_free(e);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r->fin[i], ENGINE_FINISH_LENGTH + 1);
        assert_int_equal(r->n_tok[i], 100);
    }
    return st.requests_preempted;
}

static void test_consolidation_avoids_preemption(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    uint64_t plain = consolidation_run(false, r);
    memset(r, 0, sizeof *r);
    uint64_t packed = consolidation_run(true, r);
    printf("preemptions: %llu plain, %llu consolidated\n", (unsigned long long)plain,
           (unsigned long long)packed);
    assert_true(plain > 0);
    assert_int_equal(packed, 0);
    free(r);
}

/* A fake predictor: p50 = feature 0, p90 = 2 * p50; refine adds feature 1 to the p50 via the
 * entropy flag; update records what it learnt. */
typedef struct fake_pred {
    int n_predict, n_refine, n_update;
    int last_actual[MAXREQ];
    int n_vocab_seen;
} fake_pred;

static pred_estimate fake_predict(void *ctx, const pred_features *f) {
    fake_pred *p = ctx;
    p->n_predict++;
    float p50 = f->v[0] + (f->has_entropy ? f->v[1] : 0);
    return (pred_estimate){p50, 2 * p50};
}

static void fake_refine(void *ctx, pred_features *f, const float *logits, int n) {
    fake_pred *p = ctx;
    p->n_refine++;
    p->n_vocab_seen = n;
    assert_non_null(logits);
    f->has_entropy = 1;
}

static void fake_update(void *ctx, const pred_features *f, int actual) {
    fake_pred *p = ctx;
    p->last_actual[(int)f->v[2]] = actual;
    p->n_update++;
}

/* The predictor hooks under rtlm, with either rank (*state: a sched_rtlm_rank). */
static void test_predictor_hooks(void **state) {
    sched_config sc;
    sched_config_defaults(&sc);
    sc.rtlm_rank = *(const sched_rtlm_rank *)*state;
    rec *r = calloc(1, sizeof *r);
    fake_pred *fp = calloc(1, sizeof *fp);
    assert_non_null(r);
    assert_non_null(fp);
    engine_config c = config("rtlm", &sc, 4, 4096);
    c.predictor = (engine_predictor){fp, fake_predict, fake_refine, fake_update};
    engine *e = tu_engine_new(g_model, &c);
    for (int i = 0; i < 4; i++) {
        pred_features f = {0};
        f.n = 3;
        f.v[0] = 10.0f * (float)(i + 1);
        f.v[1] = 5;
        f.v[2] = (float)i; /* lets the fake tell requests apart */
        engine_request q = request(r, (uint64_t)i, 6, 3 + i, 0);
        q.features = &f; /* copied at submit: f may go out of scope */
        tu_submit(e, &q);
    }
    assert_int_equal(engine_wait_idle(e, 60), 0);
    engine_stats st;
    engine_get_stats(e, &st);
    engine_free(e);
    assert_int_equal(fp->n_refine, 4);
    assert_int_equal(fp->n_predict, 8); /* at first sight and after the refinement */
    assert_int_equal(fp->n_update, 4);
    assert_int_equal(fp->n_vocab_seen, g_model->cfg.vocab_size);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fp->last_actual[i], 3 + i);
        /* the refined prediction reached the event */
        assert_true(r->p50[i] == 10.0f * (float)(i + 1) + 5);
        assert_true(r->p90[i] == 2 * r->p50[i]);
    }
    assert_int_equal(st.pred_n, 4);
    assert_true(st.pred_tokens_sum == 15 + 25 + 35 + 45);
    assert_true(st.actual_tokens_sum == 3 + 4 + 5 + 6);
    assert_int_equal(st.pred_p90_covered, 4);
    assert_true(st.pred_abs_log_err_sum > 0);
    assert_int_equal(st.queued_requests, 4);
    free(fp);
    free(r);
}

int main(void) {
    static const sched_rtlm_rank rank_p90 = SCHED_RTLM_P90, rank_gittins = SCHED_RTLM_GITTINS;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aging_long_finishes_under_short_stream),
        cmocka_unit_test(test_laxity_drop_option),
        cmocka_unit_test(test_consolidation_avoids_preemption),
        cmocka_unit_test_prestate(test_predictor_hooks, (void *)&rank_p90),
        cmocka_unit_test_prestate(test_predictor_hooks, (void *)&rank_gittins),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
