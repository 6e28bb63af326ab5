/* test_sched_preempt.c — preemptive scheduling inside the real engine (synthetic test model,
 * steps driven on this thread; docs/scheduling.md "Preemption"):
 *   - a short request that arrives while a long one holds the only running slot pauses it,
 *     finishes first, and both outputs are token for token what each produces alone (greedy),
 *     on the paged and the dense cache; with room the paused one keeps its cache (no
 *     recompute), with a cache too small for both it falls back to recompute, same outputs;
 *   - the aging bound: a long request under an endless stream of short ones is paused, yet
 *     finishes while the stream still runs, and nobody waits longer than the bound;
 *   - the hard wait bound for priority, laxity, spf and rtlm: a low-priority long request
 *     behind a stream of urgent short ones is admitted before it has waited the bound;
 *   - no thrash: requests of similar size never pause each other (hysteresis), and a resumed
 *     request always runs preempt_min_steps steps before it can be paused again;
 *   - sched_max_tokens hides a forced output length from the policies (benchmarks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/engine_util.h"
#include "weft/engine.h"

#define MAXREQ 64
#define MAXTOK 128

typedef struct rec {
    int n_tok[MAXREQ];
    int tok[MAXREQ][MAXTOK];
    int fin[MAXREQ]; /* engine_finish + 1; 0 = not finished */
    int fin_order[MAXREQ], n_fin;
    double fin_t[MAXREQ];
    int n_preempt_ev;
} rec;

static void on_event(void *ctx, const engine_event *ev) {
    rec *r = ctx;
    int id = ev->id < MAXREQ ? (int)ev->id : MAXREQ - 1;
    if (ev->type == ENGINE_EV_TOKEN) {
        if (r->n_tok[id] < MAXTOK) r->tok[id][r->n_tok[id]] = ev->token;
        r->n_tok[id]++;
    }
    if (ev->type == ENGINE_EV_PREEMPTED) r->n_preempt_ev++;
    if (ev->type == ENGINE_EV_FINISHED) {
        r->fin[id] = (int)ev->finish + 1;
        r->fin_t[id] = ev->t_s;
        if (r->n_fin < MAXREQ) r->fin_order[r->n_fin] = id;
        r->n_fin++;
    }
}

static weft_model *g_model;

static int setup(void **state) {
    (void)state;
    g_model = tu_synth_model("sched-preempt.gguf", "test-gqa", WEFT_F32, 11);
    return g_model ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model_free(g_model);
    return 0;
}

static engine *make_engine_traced(const char *policy, const sched_config *sc, kv_layout layout,
                                  int64_t kv_tokens, int max_running, FILE *trace) {
    engine_config c;
    engine_config_defaults(&c);
    c.kv.layout = layout;
    c.kv.block_tokens = 16;
    c.kv.max_seq_len = 128;
    c.kv.capacity_tokens = kv_tokens;
    c.max_batch_tokens = 128;
    c.max_running = max_running;
    c.n_threads = 1;
    c.policy = sched_policy_new(policy, sc);
    c.sched_trace = trace;
    assert_non_null(c.policy);
    return tu_engine_new(g_model, &c);
}

static engine *make_engine(const char *policy, const sched_config *sc, kv_layout layout,
                           int64_t kv_tokens, int max_running) {
    return make_engine_traced(policy, sc, layout, kv_tokens, max_running, NULL);
}

/* The scheduling trace of short_preempts_long (engine_trace.c): the events of requests 0 (long)
 * and 1 (short) in order, as letters (a admit, p pause, r resume, x preempt, f finish), and the
 * number of step lines. */
static void trace_events(FILE *f, char ev0[16], char ev1[16], uint64_t *steps) {
    char line[256], kind[16];
    int n0 = 0, n1 = 0;
    *steps = 0;
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        double t;
        unsigned long long id;
        assert_int_equal(sscanf(line, "%15s %lf", kind, &t), 2);
        assert_true(t >= 0);
        if (!strcmp(kind, "step")) {
            int n_seqs, n_tokens;
            assert_int_equal(sscanf(line, "step %lf %d %d", &t, &n_seqs, &n_tokens), 3);
            assert_true(n_seqs >= 1 && n_tokens >= n_seqs);
            (*steps)++;
            continue;
        }
        assert_int_equal(sscanf(line, "%15s %lf %llu", kind, &t, &id), 3);
        char c = !strcmp(kind, "admit")     ? 'a'
                 : !strcmp(kind, "pause")   ? 'p'
                 : !strcmp(kind, "resume")  ? 'r'
                 : !strcmp(kind, "preempt") ? 'x'
                 : !strcmp(kind, "finish")  ? 'f'
                                            : '?';
        assert_true(c != '?');
        assert_true(id <= 1);
        if (id == 0 && n0 < 15) ev0[n0++] = c;
        if (id == 1 && n1 < 15) ev1[n1++] = c;
    }
    ev0[n0] = ev1[n1] = 0;
}

static int32_t g_prompt[MAXREQ][64];

/* A request with true length max_tokens (oracle) and a matching prediction (spf). */
static engine_request request(rec *r, uint64_t id, int n_prompt, int max_tokens) {
    engine_request q =
        tu_greedy_request(id, g_prompt[id % MAXREQ], n_prompt, max_tokens, on_event, r);
    q.predicted_tokens = max_tokens;
    q.true_tokens = max_tokens;
    return q;
}

static void run_idle(engine *e) {
    for (int i = 0; i < 10000; i++) {
        engine_stats st;
        engine_get_stats(e, &st);
        if (st.waiting == 0 && st.running == 0) return;
        tu_step(e);
    }
    fail_msg("engine did not go idle");
}

/* Greedy tokens of a request run alone. */
static void alone(kv_layout layout, int id, int n_prompt, int max_tokens, rec *out) {
    engine *e = make_engine("fcfs", NULL, layout, 4096, 1);
    engine_request q = request(out, (uint64_t)id, n_prompt, max_tokens);
    tu_submit(e, &q);
    run_idle(e);
    engine_free(e);
    assert_int_equal(out->n_tok[id], max_tokens);
}

/* Long request 0 runs alone for 12 steps, then short request 1 arrives (one running slot). */
static void short_preempts_long(kv_layout layout, int64_t kv_tokens, int long_prompt,
                                int short_prompt, bool expect_recompute) {
    rec *ref = calloc(1, sizeof *ref), *r = calloc(1, sizeof *r);
    assert_non_null(ref);
    assert_non_null(r);
    const int long_len = 60, short_len = 5;
    alone(layout, 0, long_prompt, long_len, ref);
    alone(layout, 1, short_prompt, short_len, ref);

    FILE *trace = tmpfile();
    assert_non_null(trace);
    engine *e = make_engine_traced("oracle", NULL, layout, kv_tokens, 1, trace);
    engine_request q = request(r, 0, long_prompt, long_len);
    tu_submit(e, &q);
    for (int i = 0; i < 12; i++)
        tu_step(e);
    q = request(r, 1, short_prompt, short_len);
    tu_submit(e, &q);
    run_idle(e);
    engine_stats st;
    engine_get_stats(e, &st);
    engine_free(e);
    printf("%s cache of %lld tokens: paused %llu, resumed %llu, preempted (recompute) %llu\n",
           layout == KV_LAYOUT_PAGED ? "paged" : "dense", (long long)kv_tokens,
           (unsigned long long)st.requests_paused, (unsigned long long)st.pause_resumed,
           (unsigned long long)st.requests_preempted);
    assert_int_equal(r->n_fin, 2);
    assert_int_equal(r->fin_order[0], 1); /* the short one finished first */
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1);
    assert_int_equal(r->fin[1], ENGINE_FINISH_LENGTH + 1);
    assert_int_equal(st.requests_paused, 1);
    if (expect_recompute) {
        assert_int_equal(st.pause_resumed, 0); /* it lost its cache to the short one */
        assert_int_equal(st.requests_preempted, 1);
        assert_int_equal(r->n_preempt_ev, 1);
    } else {
        assert_int_equal(st.pause_resumed, 1);
        assert_int_equal(st.requests_preempted, 0);
        assert_int_equal(r->n_preempt_ev, 0);
    }
    for (int id = 0; id < 2; id++) {
        assert_int_equal(r->n_tok[id], ref->n_tok[id]);
        assert_memory_equal(r->tok[id], ref->tok[id], sizeof(int) * (size_t)r->n_tok[id]);
    }
    /* the trace tells the same story: the long one admitted, paused, then resumed with its
     * cache or preempted and admitted again (recompute), finished; the short one admitted
     * and finished; one step line per step */
    char ev0[16], ev1[16];
    uint64_t steps;
    trace_events(trace, ev0, ev1, &steps);
    assert_string_equal(ev0, expect_recompute ? "apxaf" : "aprf");
    assert_string_equal(ev1, "af");
    assert_int_equal(steps, st.steps);
    fclose(trace);
    free(ref);
    free(r);
}

static void test_short_preempts_long_paged(void **state) {
    (void)state;
    short_preempts_long(KV_LAYOUT_PAGED, 4096, 8, 6, false);
    /* 8 blocks: the long one (56 + 60 tokens) alone fits; at the pause it holds 5 blocks and
     * the short one's 60-token prompt needs 4 of the 3 left: the paused cache is given back */
    short_preempts_long(KV_LAYOUT_PAGED, 8 * 16, 56, 60, true);
}

static void test_short_preempts_long_dense(void **state) {
    (void)state;
    short_preempts_long(KV_LAYOUT_DENSE, 4096, 8, 6, false);
    /* one slot: the paused sequence must give it up */
    short_preempts_long(KV_LAYOUT_DENSE, 128, 8, 6, true);
}

/* One running slot, a long request (60 tokens) running, then a stream of short ones (2
 * tokens) that always keeps two waiting. With aging bound aging_s the long request is paused
 * but finishes while the stream still runs. Returns its response time (0 if it did not finish
 * during the stream). */
static double stream_run_policy(const char *policy, sched_rtlm_rank rank, double aging_s,
                                double stream_s, rec *r, engine_stats *st) {
    sched_config sc;
    sched_config_defaults(&sc);
    sc.aging_s = aging_s;
    sc.rtlm_rank = rank;
    engine *e = make_engine(policy, &sc, KV_LAYOUT_PAGED, 4096, 1);
    engine_request q = request(r, 0, 8, 60);
    tu_submit(e, &q);
    double t_sub = engine_now_s(e);
    for (int i = 0; i < 10; i++)
        tu_step(e);
    uint64_t next = 1;
    double t_end = engine_now_s(e) + stream_s, resp = 0;
    while (engine_now_s(e) < t_end) {
        engine_stats s;
        engine_get_stats(e, &s);
        for (; s.waiting < 2; s.waiting++) {
            q = request(r, next++, 4, 2);
            tu_submit(e, &q);
        }
        tu_step(e);
        if (r->fin[0] && resp == 0) {
            resp = r->fin_t[0] - t_sub;
            break;
        }
    }
    run_idle(e);
    engine_get_stats(e, st);
    engine_free(e);
    return resp;
}

static double stream_run(double aging_s, double stream_s, rec *r, engine_stats *st) {
    return stream_run_policy("spf", SCHED_RTLM_P90, aging_s, stream_s, r, st);
}

/* rtlm with the Gittins rank (sched_gittins.c) under the same stream: the long request is paused
 * for the short ones (far higher index) and still finishes within the bound. */
static void test_aging_bound_gittins(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    engine_stats st;
    double resp = stream_run_policy("rtlm", SCHED_RTLM_GITTINS, 0.3, 10.0, r, &st);
    printf("rtlm gittins, aging 0.3 s: long request paused %llu times, finished after %.3f s, "
           "longest wait %.3f s\n",
           (unsigned long long)st.requests_paused, resp, st.wait_s_max);
    assert_true(st.requests_paused >= 1);
    assert_true(resp > 0);
    assert_int_equal(r->n_tok[0], 60);
    assert_true(st.wait_s_max <= 0.3);
    memset(r, 0, sizeof *r);
    resp = stream_run_policy("rtlm", SCHED_RTLM_GITTINS, 1e9, 0.5, r, &st);
    assert_true(resp == 0);
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1);
    free(r);
}

static void test_aging_bound_with_preemption(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    engine_stats st;
    double resp = stream_run(0.3, 10.0, r, &st);
    printf("aging 0.3 s: long request paused %llu times, finished after %.3f s under the stream, "
           "longest wait %.3f s\n",
           (unsigned long long)st.requests_paused, resp, st.wait_s_max);
    assert_true(st.requests_paused >= 1); /* the short ones did displace it */
    assert_true(resp > 0);                /* ... and it still finished during the stream */
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1);
    assert_int_equal(r->n_tok[0], 60);
    /* the hard bound (sched_bound.c): nobody's total wait, queued and paused, exceeds it */
    assert_true(st.wait_s_max <= 0.3);
    /* without aging it keeps being displaced as long as the stream runs */
    memset(r, 0, sizeof *r);
    resp = stream_run(1e9, 0.5, r, &st);
    assert_true(resp == 0);
    assert_int_equal(r->fin[0], ENGINE_FINISH_LENGTH + 1); /* after the stream, at last */
    free(r);
}

/* The hard wait bound for every policy that has one: one running slot held by a stream of
 * higher-priority, easy-deadline short requests (always two waiting), and a long request of the
 * lowest priority and no deadline that arrives behind them. priority and laxity never give it a
 * slot by their own order (laxity: best effort behind every deadline) and never pause; spf and
 * rtlm rank it behind the short ones until aging brings it forward. With the bound it is
 * admitted, pausing a short one if need be, before it has waited bound seconds, and it finishes
 * while the stream still runs; the longest wait of any request is within the bound. Without the
 * bound (a huge aging_s) priority keeps it waiting as long as the stream runs. */
static double bound_run(const char *policy, sched_rtlm_rank rank, double bound, double stream_s,
                        engine_stats *st) {
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    sched_config sc;
    sched_config_defaults(&sc);
    sc.aging_s = bound;
    sc.rtlm_rank = rank;
    engine *e = make_engine(policy, &sc, KV_LAYOUT_PAGED, 4096, 1);
    uint64_t next = 1, long_id = MAXREQ - 1;
    engine_request q;
    bool long_in = false;
    double t_sub = 0, t_end = engine_now_s(e) + stream_s, resp = 0;
    while (engine_now_s(e) < t_end) {
        engine_stats s;
        engine_get_stats(e, &s);
        for (; s.waiting < 2 + long_in && next < 100000; s.waiting++) {
            q = request(r, next++ % (MAXREQ - 1), 4, 12);
            q.priority = 1;
            q.deadline_ms = 60000;
            tu_submit(e, &q);
        }
        if (!long_in && next > 3) {
            q = request(r, long_id, 8, 40);
            q.priority = 0;
            tu_submit(e, &q);
            t_sub = engine_now_s(e);
            long_in = true;
        }
        tu_step(e);
        if (r->fin[long_id]) {
            resp = r->fin_t[long_id] - t_sub;
            break;
        }
    }
    run_idle(e);
    engine_get_stats(e, st);
    engine_free(e);
    assert_int_equal(r->n_tok[long_id], 40);
    free(r);
    return resp;
}

static void test_hard_wait_bound(void **state) {
    (void)state;
    const char *policies[] = {"priority", "laxity", "spf", "rtlm", "rtlm"};
    for (int i = 0; i < 5; i++) {
        engine_stats st;
        sched_rtlm_rank rank = i == 4 ? SCHED_RTLM_GITTINS : SCHED_RTLM_P90;
        double resp = bound_run(policies[i], rank, 0.5, 10.0, &st);
        printf("%s (rank %s), bound 0.5 s: the long request finished after %.3f s; longest "
               "wait %.3f s; %llu pauses, %llu for an overdue request\n",
               policies[i], sched_rtlm_rank_name(rank), resp, st.wait_s_max,
               (unsigned long long)st.requests_paused,
               (unsigned long long)st.requests_paused_overdue);
        assert_true(resp > 0);            /* it finished during the stream */
        assert_true(st.wait_s_max <= 0.5); /* nobody waited past the bound */
        assert_true(st.wait_s_max > 0.3);  /* the long one did wait: the scenario holds */
    }
    /* without the bound, priority starves it until the stream ends */
    engine_stats st;
    double resp = bound_run("priority", SCHED_RTLM_P90, 1e9, 1.0, &st);
    assert_true(resp == 0);
    assert_true(st.wait_s_max > 0.9);
}

static void test_no_thrash(void **state) {
    (void)state;
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* similar sizes (40 left vs 30): hysteresis, nobody is paused */
    engine *e = make_engine("oracle", NULL, KV_LAYOUT_PAGED, 4096, 1);
    engine_request q = request(r, 0, 8, 50);
    tu_submit(e, &q);
    for (int i = 0; i < 10; i++)
        tu_step(e);
    q = request(r, 1, 8, 30);
    tu_submit(e, &q);
    run_idle(e);
    engine_stats st;
    engine_get_stats(e, &st);
    engine_free(e);
    assert_int_equal(st.requests_paused, 0);
    assert_int_equal(r->fin_order[0], 0);

    /* a short request every 3 steps (no aging): the long one is paused again and again, but
     * every time it runs it makes preempt_min_steps tokens of progress first */
    memset(r, 0, sizeof *r);
    sched_config sc;
    sched_config_defaults(&sc);
    sc.aging_s = 1e9;
    e = make_engine("oracle", &sc, KV_LAYOUT_PAGED, 4096, 1);
    q = request(r, 0, 8, 100);
    tu_submit(e, &q);
    int seg = 0, n_seg = 0, short_seg = 0;
    uint64_t next = 1;
    for (int i = 0; i < 400 && !r->fin[0]; i++) {
        if (i % 3 == 0 && next < MAXREQ - 1) {
            q = request(r, next++, 4, 2);
            tu_submit(e, &q);
        }
        int before = r->n_tok[0];
        tu_step(e);
        if (r->n_tok[0] > before) {
            seg++;
        } else if (seg > 0) { /* a run of the long request ended: it was paused */
            if (seg < sc.preempt_min_steps) short_seg++;
            n_seg++;
            seg = 0;
        }
    }
    run_idle(e);
    engine_get_stats(e, &st);
    engine_free(e);
    printf("long request: %d runs before the last, paused %llu times\n", n_seg,
           (unsigned long long)st.requests_paused);
    assert_true(n_seg >= 2);   /* it was paused repeatedly */
    assert_int_equal(short_seg, 0);
    assert_int_equal(r->n_tok[0], 100);
    free(r);
}


/* sched_max_tokens: a benchmark forcing lengths through max_tokens hides them from the policies.
 * Three requests without predictions wait together (one slot): spf falls back on max_tokens, so
 * it runs them shortest first when it may see max_tokens, and in arrival order when all show
 * the same nominal cap. */
static void test_sched_max_tokens_hides_length(void **state) {
    (void)state;
    const int len[3] = {30, 5, 20};
    for (int masked = 0; masked <= 1; masked++) {
        rec *r = calloc(1, sizeof *r);
        assert_non_null(r);
        engine *e = make_engine("spf", NULL, KV_LAYOUT_PAGED, 4096, 1);
        for (int i = 0; i < 3; i++) {
            engine_request q = request(r, (uint64_t)i, 8, len[i]);
            q.predicted_tokens = 0;
            q.true_tokens = 0;
            if (masked) q.sched_max_tokens = 64;
            tu_submit(e, &q);
        }
        run_idle(e);
        engine_free(e);
        assert_int_equal(r->n_fin, 3);
        for (int i = 0; i < 3; i++)
            assert_int_equal(r->n_tok[i], len[i]);
        if (masked) {
            assert_int_equal(r->fin_order[0], 0);
            assert_int_equal(r->fin_order[1], 1);
            assert_int_equal(r->fin_order[2], 2);
        } else {
            assert_int_equal(r->fin_order[0], 1);
            assert_int_equal(r->fin_order[1], 2);
            assert_int_equal(r->fin_order[2], 0);
        }
        free(r);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_short_preempts_long_paged),
        cmocka_unit_test(test_short_preempts_long_dense),
        cmocka_unit_test(test_aging_bound_with_preemption),
        cmocka_unit_test(test_aging_bound_gittins),
        cmocka_unit_test(test_hard_wait_bound),
        cmocka_unit_test(test_no_thrash),
        cmocka_unit_test(test_sched_max_tokens_hides_length),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
