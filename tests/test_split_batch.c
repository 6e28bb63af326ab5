/* test_split_batch.c — the counterfactual batch model of `--split auto` (src/split/batch_model.c):
 * the simulated steps on situations whose cost can be written down by hand (a streamer alone, two
 * streamers sharing every step, a split request alone, a split request joining a streamer's
 * steps), the step model taken from a profile's two batch sizes, and split_choose_auto's choice on
 * constructed situations: many streamers about to finish make streaming cheaper than a split that
 * will then run alone, while alone on a slow link the split that saves layers is cheaper; the SLA
 * still rules; movable split requests (plan level) turn a split into streaming; the prediction is
 * the request's increment of the total; bad input is refused; and the engine's side: the
 * snapshot of the sequences it runs, with a split client's measured cycle. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/testutil.h"
#include "weft/engine.h"
#include "weft/split_plan.h"

#define assert_near(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (eps))) {                                                           \
            print_message("%s = %.17g, expected %.17g (eps %g)\n", #a, a_, b_, (double)(eps));     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

enum { L = 6 };

/* A request as the batch model sees it (no recurrence). */
#define ACT(p_, n_, c_, mv_, st_)                                                                  \
    ((split_active){                                                                               \
        .p = (p_), .tokens_left = (n_), .cycle_s = (c_), .movable = (mv_), .start_s = (st_)})

/* Shaped like the real run's server (bench/split_real.sh: tiny15m, 1 thread): per layer and
 * decode step 0.134 ms alone, 0.051 ms per sequence with 4 per step; the head 1.12 / 0.40 ms. */
static split_server server(void) {
    split_server s;
    memset(&s, 0, sizeof s);
    s.n_layers = L;
    s.cost = (split_device_cost){1.2e-5, 1.34e-4, 1.12e-3, 1.12e-3};
    s.cost_batched = (split_device_cost){1.2e-5, 5.1e-5, 1.12e-3, 4.0e-4};
    s.batched_n = 4;
    s.slowdown = 1;
    s.window_s = 1;
    s.cores = 1;
    s.kv_bytes_per_layer_token = 2 * 288 * 4;
    s.io_token_s = 1e-4;
    s.io_frame_s = 1.5e-4;
    return s;
}

static split_request request(double rtt_s) {
    split_request r;
    memset(&r, 0, sizeof r);
    r.prompt_tokens = 25;
    r.output_tokens = 48;
    r.sla_s = 100;
    r.count = 1;
    r.client = (split_device_cost){4.6e-5, 5.6e-4, 4.5e-3, 4.4e-3};
    r.client_max_layers = L;
    r.client_can_head = 0;
    r.link_bw_Bps = 12.5e6;
    r.link_rtt_s = rtt_s;
    r.hidden_bytes_per_token = 288 * 4;
    return r;
}

static split_step_model model(void) {
    split_server s = server();
    split_step_model m;
    weft_err err = {{0}};
    assert_int_equal(split_step_model_from_server(&s, &m, &err), 0);
    return m;
}

static void test_step_model_from_profile(void **state) {
    (void)state;
    split_step_model m = model();
    /* x1 = a + f, x4 = a + f / 4: f = (x1 - x4) 4 / 3 */
    assert_near(m.layer_fixed_s, (1.34e-4 - 5.1e-5) * 4 / 3, 1e-12);
    assert_near(m.layer_marginal_s, 1.34e-4 - (1.34e-4 - 5.1e-5) * 4 / 3, 1e-12);
    assert_near(m.head_fixed_s, (1.12e-3 - 4.0e-4) * 4 / 3, 1e-12);
    assert_near(m.head_marginal_s + m.head_fixed_s, 1.12e-3, 1e-12);
    /* a step of 4 costs 4 x the per-sequence batched cost */
    assert_near(m.layer_fixed_s + 4 * m.layer_marginal_s, 4 * 5.1e-5, 1e-12);
    /* with one batch size only there is nothing to model */
    split_server s = server();
    s.batched_n = 0;
    weft_err err = {{0}};
    assert_int_equal(split_step_model_from_server(&s, &m, &err), -1);
    assert_non_null(strstr(err.msg, "two batch sizes"));
}

static void test_simulate_by_hand(void **state) {
    (void)state;
    const split_step_model m = model();
    const double F0 = m.head_fixed_s + L * m.layer_fixed_s;
    const double mu0 = m.head_marginal_s + L * m.layer_marginal_s;
    double work[3], ib[3], end[3];
    weft_err err = {{0}};
    /* one streamer alone: every step is its own */
    split_active one = ACT(0, 10, 0, 0, 0);
    double t = split_batch_simulate(&m, &one, 1, NULL, 0, work, ib, end, NULL, &err);
    assert_near(t, 10 * (F0 + mu0 + m.io_token_s), 1e-12);
    assert_near(ib[0], 10, 1e-12);
    assert_near(end[0], 10 * (F0 + mu0), 1e-12);
    /* two streamers: every step holds both, the fixed part is paid once and shared */
    split_active two[2] = {ACT(0, 10, 0, 0, 0), ACT(0, 10, 0, 0, 0)};
    t = split_batch_simulate(&m, two, 2, NULL, 0, work, ib, NULL, NULL, &err);
    assert_near(t, 10 * (F0 + 2 * mu0 + 2 * m.io_token_s), 1e-12);
    assert_near(work[0], 10 * (F0 / 2 + mu0 + m.io_token_s), 1e-12);
    assert_near(ib[0], 5, 1e-12);
    /* a split request alone: each token arrives a cycle after its previous step and runs alone,
     * paying the head's fixed part and its own layers' */
    const int p = 4;
    const double Fp = m.head_fixed_s + (L - p) * m.layer_fixed_s;
    const double mup = m.head_marginal_s + (L - p) * m.layer_marginal_s;
    split_active sp = ACT(p, 8, 0.01, 1, 0);
    double ph = 1;
    t = split_batch_simulate(&m, &sp, 1, &ph, 0, work, ib, end, NULL, &err);
    assert_near(t, 8 * (Fp + mup + m.io_frame_s), 1e-12);
    assert_near(ib[0], 8, 1e-12);
    assert_near(end[0], 8 * 0.01 + 8 * (Fp + mup), 1e-9);
    /* beside a streamer that outlives it, every split token joins the streamer's next step: the
     * step's lowest entry is 0 and its fixed part is shared by 2 */
    split_active mix[2] = {ACT(0, 1000, 0, 0, 0), ACT(p, 8, 0.01, 1, 0)};
    double phs[2] = {0, 1};
    t = split_batch_simulate(&m, mix, 2, phs, 0, work, ib, NULL, NULL, &err);
    assert_near(ib[1], 8 * 0.5, 1e-12);
    assert_near(work[1], 8 * (F0 / 2 + mup + m.io_frame_s), 1e-12);
    assert_near(t, work[0] + work[1], 1e-12);
    /* a split token that arrives while the engine is idle runs alone at once: two split
     * requests with the same cycle but offset phases never meet */
    split_active sp2[2] = {ACT(p, 5, 0.02, 1, 0), ACT(p, 5, 0.02, 1, 0)};
    double off[2] = {0, 0.5};
    t = split_batch_simulate(&m, sp2, 2, off, 0, work, ib, NULL, NULL, &err);
    assert_near(ib[0] + ib[1], 10, 1e-12);
    /* the same two with the same phase share every step */
    double same[2] = {0.5, 0.5};
    t = split_batch_simulate(&m, sp2, 2, same, 0, work, ib, NULL, NULL, &err);
    assert_near(ib[0] + ib[1], 5, 1e-12);
    assert_near(t, 5 * (Fp + 2 * mup + 2 * m.io_frame_s), 1e-12);
}

/* A request that starts later: nothing before its start_s, then its steps. */
static void test_simulate_start(void **state) {
    (void)state;
    const split_step_model m = model();
    const double F0 = m.head_fixed_s + L * m.layer_fixed_s;
    const double mu0 = m.head_marginal_s + L * m.layer_marginal_s;
    double work[2], ib[2], end[2];
    weft_err err = {{0}};
    /* the second streamer starts after the first is done: they never share */
    split_active a[2] = {ACT(0, 5, 0, 0, 0), ACT(0, 5, 0, 0, 1.0)};
    double t = split_batch_simulate(&m, a, 2, NULL, 0, work, ib, end, NULL, &err);
    assert_near(t, 10 * (F0 + mu0 + m.io_token_s), 1e-12);
    assert_near(end[1], 1.0 + 5 * (F0 + mu0), 1e-9);
    assert_near(ib[1], 5, 1e-12);
    /* it starts in the middle of the first one's steps: they share from then on */
    a[1].start_s = 2.5 * (F0 + mu0);
    split_batch_simulate(&m, a, 2, NULL, 0, work, ib, end, NULL, &err);
    assert_near(ib[0], 3 + 2 * 0.5, 1e-12);
    split_active bad = ACT(0, 5, 0, 0, -1);
    assert_true(split_batch_simulate(&m, &bad, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
}

/* Where every request is in every step (a batching-bound server, the offline planner's
 * assumption), the simulation and the offline fused step model (split_plan_work, whose
 * per-request costs carry fixed / b and whose batch pays the fixed part of every layer at or above
 * its lowest entry) give the same total. */
static void test_offline_consistency(void **state) {
    (void)state;
    split_step_model m = model();
    m.io_token_s = m.io_frame_s = 0;
    m.cores = 2;
    const int b = 5, Dd = 20;
    const int ps[5] = {0, 0, 2, 3, 5};
    split_active a[5];
    for (int i = 0; i < b; i++)
        a[i] = ACT(ps[i], Dd, 0, 0, 0); /* a split at cycle 0 is in every step too */
    double ib[5];
    weft_err err = {{0}};
    const double sim = split_batch_simulate(&m, a, b, NULL, 0, NULL, ib, NULL, NULL, &err);
    for (int i = 0; i < b; i++)
        assert_near(ib[i], (double)Dd / b, 1e-12);
    split_server s = server();
    s.batched_n = 0;
    s.io_token_s = s.io_frame_s = 0;
    s.cores = m.cores;
    s.cost = (split_device_cost){0, m.layer_marginal_s + m.layer_fixed_s / b, 0,
                                 m.head_marginal_s + m.head_fixed_s / b};
    s.step_fixed_layer_s = m.layer_fixed_s;
    s.step_batch = b;
    split_request r = request(0.001);
    r.output_tokens = Dd + 1;
    r.client_max_layers = L;
    split_choice c[5];
    for (int i = 0; i < b; i++)
        assert_int_equal(split_cost_eval(&r, &s, ps[i], &c[i], &err), 0);
    assert_near(split_plan_work(&s, c, b, NULL), sim, 1e-12);
}

static void test_simulate_rejects(void **state) {
    (void)state;
    const split_step_model m = model();
    weft_err err = {{0}};
    split_active bad = ACT(L, 3, 0.01, 0, 0); /* p = L never runs on the server */
    assert_true(split_batch_simulate(&m, &bad, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "request 0"));
    split_active neg = ACT(1, -1, 0.01, 0, 0);
    assert_true(split_batch_simulate(&m, &neg, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    split_active cyc = ACT(1, 3, NAN, 0, 0);
    assert_true(split_batch_simulate(&m, &cyc, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    split_step_model m2 = m;
    m2.cores = 0;
    split_active ok = ACT(0, 3, 0, 0, 0);
    assert_true(split_batch_simulate(&m2, &ok, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "cores"));
    /* too much to step: refused, not run */
    split_active big = ACT(0, 3000000, 0, 0, 0);
    assert_true(split_batch_simulate(&m, &big, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "more than"));
    assert_near(split_batch_simulate(&m, NULL, 0, NULL, 0, NULL, NULL, NULL, NULL, &err), 0, 0);
}

static int choose(const split_request *r, const split_active *act, int n, split_choice *c,
                  split_auto_detail *d) {
    split_server s = server();
    split_step_model m = model();
    weft_err err = {{0}};
    int p = split_choose_auto(r, &s, &m, act, n, c, d, &err);
    if (p < 0) print_message("split_choose_auto: %s\n", err.msg);
    assert_true(p >= 0 && p < L);
    assert_int_equal(c->p, p);
    return p;
}

static double predicted(const split_request *r, const split_active *act, int n, int p) {
    split_server s = server();
    split_step_model m = model();
    split_choice c;
    weft_err err = {{0}};
    assert_int_equal(split_predict_auto(r, &s, &m, act, n, p, &c, NULL, &err), p);
    return c.server_work_s;
}

/* Alone on the server with a slow link, the split that saves the most layers is cheaper: the head
 * is paid per token either way, the skipped layers are not; with four streamers about to finish,
 * streaming joins their steps while a split's tokens, one per long round trip, would mostly run
 * alone after they are gone. */
static void test_streamers_vs_alone(void **state) {
    (void)state;
    split_request r = request(0.03);
    split_choice c;
    split_auto_detail d;
    int p = choose(&r, NULL, 0, &c, &d);
    assert_int_equal(p, L - 1);
    assert_true(c.sla_ok);
    assert_near(d.batch, 1, 1e-12);
    assert_true(predicted(&r, NULL, 0, L - 1) < predicted(&r, NULL, 0, 0));
    split_active many[4];
    for (int i = 0; i < 4; i++)
        many[i] = ACT(0, 48, 0, 0, 0);
    p = choose(&r, many, 4, &c, &d);
    assert_int_equal(p, 0);
    assert_true(d.batch > 4); /* it ran with the four */
    assert_true(predicted(&r, many, 4, 0) < predicted(&r, many, 4, L - 1));
    /* the streamers that outlive the split request: its tokens join their steps too, and the
     * split then saves its layers' marginal part, more than the round trip's network path
     * costs here */
    for (int i = 0; i < 4; i++)
        many[i].tokens_left = 100000 / 4;
    r.output_tokens = 16;
    p = choose(&r, many, 4, &c, &d);
    assert_int_equal(p, L - 1);
}

/* Recurrence: a client that sends its next request like the current one as soon as it ends.
 * Over a horizon a recurring streamer alone produces one token per step, and each restart adds
 * its prefill; without a horizon a recurring request is refused. */
static void test_recurrence(void **state) {
    (void)state;
    const split_step_model m = model();
    const double F0 = m.head_fixed_s + L * m.layer_fixed_s;
    const double mu0 = m.head_marginal_s + L * m.layer_marginal_s;
    const double step = F0 + mu0;
    split_active a = ACT(0, 3, 0, 0, 0);
    a.recur_tokens = 4;
    a.recur_prefill_s = 0.01;
    weft_err err = {{0}};
    double toks = 0, tk2[2];
    assert_true(split_batch_simulate(&m, &a, 1, NULL, 0, NULL, NULL, NULL, NULL, &err) < 0);
    assert_non_null(strstr(err.msg, "no horizon"));
    /* 3 + 4 + 4 tokens end at 11 steps: a horizon of 10.5 steps holds 11 of them (the 11th
     * starts before it), two restarts (the one after the 11th is past the horizon) */
    const double t =
        split_batch_simulate(&m, &a, 1, NULL, 10.5 * step, NULL, NULL, NULL, &toks, &err);
    assert_near(toks, 11, 0);
    assert_near(t, 11 * (step + m.io_token_s) + 2 * 0.01, 1e-12);
    /* with no horizon the world ends when the requests that do not recur are done: beside a
     * 5-token one, the recurring one shares 5 steps and restarts once (after its 3) */
    split_active two[2] = {a, ACT(0, 5, 0, 0, 0)};
    double end[2];
    split_batch_simulate(&m, two, 2, NULL, 0, NULL, NULL, end, tk2, &err);
    assert_near(tk2[0], 5, 0);
    assert_near(tk2[1], 5, 0);
    assert_near(end[1], 5 * (F0 + 2 * mu0), 1e-12);
}

/* Plan level over time: the movable split requests' clients keep coming back. One movable split
 * request with few tokens left: as they are, it ends soon and this one is alone, so split; at
 * plan level it and its successors stream where this one streams and share every step. */
static void test_plan_level_recurring(void **state) {
    (void)state;
    split_server s = server();
    split_step_model m = model();
    split_request r = request(0.002);
    split_choice c;
    split_auto_detail d;
    weft_err err = {{0}};
    split_active o = ACT(L - 1, 3, 0.02, 1, 0);
    o.prompt_tokens = 25;
    assert_int_equal(split_choose_auto(&r, &s, &m, &o, 1, &c, &d, &err), L - 1);
    o.recur_tokens = 47;
    assert_int_equal(split_choose_auto(&r, &s, &m, &o, 1, &c, &d, &err), 0);
    assert_true(d.stream_world_s > 0 && d.world_work_s <= d.stream_world_s);
    /* the prediction is the request's own increment with the other as it is, recurrence or not */
    split_choice c2;
    assert_int_equal(split_predict_auto(&r, &s, &m, &o, 1, 0, &c2, NULL, &err), 0);
    assert_near(c.server_work_s, c2.server_work_s, 1e-15);
    o.recur_tokens = 0;
    assert_int_equal(split_predict_auto(&r, &s, &m, &o, 1, 0, &c2, NULL, &err), 0);
    assert_near(c.server_work_s, c2.server_work_s, 1e-15);
}

/* The SLA rules: the cheapest point alone (a deep split on a slow link) is too slow for a tight
 * SLA, so the request streams; with no SLA it splits. */
static void test_sla_respected(void **state) {
    (void)state;
    split_request r = request(0.03);
    split_choice c;
    split_auto_detail d;
    r.sla_s = 0.5; /* 47 round trips of 30 ms do not fit */
    int p = choose(&r, NULL, 0, &c, &d);
    assert_int_equal(p, 0);
    assert_true(c.sla_ok);
    assert_true(c.latency_s <= r.sla_s);
    /* a client that may hold at most 2 layers: the best allowed split */
    r.sla_s = 100;
    r.client_max_layers = 2;
    p = choose(&r, NULL, 0, &c, &d);
    assert_int_equal(p, 2);
    /* no point meets the SLA: the fastest one, reported as missing it */
    r.client_max_layers = L;
    r.sla_s = 1e-4;
    p = choose(&r, NULL, 0, &c, &d);
    assert_int_equal(c.sla_ok, 0);
    split_server s = server();
    split_step_model m = model();
    weft_err err = {{0}};
    for (int q = 0; q < L; q++) {
        split_choice cq;
        assert_int_equal(split_predict_auto(&r, &s, &m, NULL, 0, q, &cq, NULL, &err), q);
        assert_true(c.latency_s <= cq.latency_s + 1e-12);
    }
}

/* Plan level: split requests that `--split auto` planned (movable) would stream too where this one
 * streams, and then share every step; the same requests fixed by their clients (not movable) stay
 * split, and beside them this request is cheaper split. */
static void test_plan_level(void **state) {
    (void)state;
    split_request r = request(0.002);
    split_choice c;
    split_auto_detail d;
    split_active act[3];
    for (int i = 0; i < 3; i++)
        act[i] = ACT(L - 1, 40, 0.02, 0, 0);
    int p = choose(&r, act, 3, &c, &d);
    assert_true(p > 0);
    assert_int_equal(d.n_movable, 0);
    for (int i = 0; i < 3; i++)
        act[i].movable = 1;
    p = choose(&r, act, 3, &c, &d);
    assert_int_equal(p, 0);
    assert_int_equal(d.n_movable, 3);
    assert_true(d.stream_world_s > 0);
    assert_near(d.world_work_s, d.stream_world_s, 1e-15);
    /* the other way: a long streamer whose steps a split would join. Not planned by auto, it
     * streams whatever this one does, and the split saves its layers' marginal part; planned by
     * auto, it would split too where this one splits, and the split would run alone */
    split_request r2 = request(0.03);
    r2.output_tokens = 16;
    split_active st = ACT(0, 100000, 0, 0, 0);
    assert_int_equal(choose(&r2, &st, 1, &c, &d), L - 1);
    st.movable = 1;
    assert_int_equal(choose(&r2, &st, 1, &c, &d), 0);
    assert_int_equal(d.n_movable, 1);
}

/* The prediction is the request's increment of the total: its prefill plus what the simulated
 * total gains with it, so predictions of requests that join one another add up to the total. */
static void test_prediction_is_increment(void **state) {
    (void)state;
    const split_step_model m = model();
    const split_server s = server();
    split_request r = request(0.004);
    weft_err err = {{0}};
    split_active act[3] = {ACT(0, 30, 0, 0, 0), ACT(3, 20, 0.01, 1, 0), ACT(0, 5, 0, 0, 0)};
    double ph[4] = {0.5, 0.5, 0.5, 1};
    const double base = split_batch_simulate(&m, act, 3, ph, 0, NULL, NULL, NULL, NULL, &err);
    for (int p = 0; p < L; p++) {
        split_active w[4];
        memcpy(w, act, sizeof act);
        const double cyc = p * r.client.layer_decode_s + r.link_rtt_s +
                           (r.hidden_bytes_per_token + 4) / r.link_bw_Bps;
        w[3] = ACT(p, r.output_tokens - 1, p > 0 ? cyc : 0, 0, 0);
        const double with = split_batch_simulate(&m, w, 4, ph, 0, NULL, NULL, NULL, NULL, &err);
        const double pre =
            s.cores * ((L - p) * r.prompt_tokens * s.cost.layer_prefill_s + s.cost.head_prefill_s) +
            (p == 0 ? s.io_token_s : s.io_frame_s);
        assert_near(predicted(&r, act, 3, p), pre + with - base, 1e-12);
    }
    /* two requests, the second joining the first: the first's prediction (alone) and the
     * second's (beside the first) add up to the total of both */
    split_request r2 = request(0.004);
    const double p1 = predicted(&r2, NULL, 0, 0);
    split_active first = ACT(0, r2.output_tokens - 1, 0, 0, 0);
    const double p2 = predicted(&r2, &first, 1, 0);
    split_active both[2] = {first, ACT(0, r2.output_tokens - 1, 0, 0, 0)};
    const double tot = split_batch_simulate(&m, both, 2, NULL, 0, NULL, NULL, NULL, NULL, &err);
    const double pre0 =
        s.cores * (L * r2.prompt_tokens * s.cost.layer_prefill_s + s.cost.head_prefill_s) +
        s.io_token_s;
    assert_near(p1 + p2, tot + 2 * pre0, 1e-12);
}

static void test_choose_rejects(void **state) {
    (void)state;
    split_server s = server();
    split_step_model m = model();
    split_request r = request(0.01);
    split_choice c;
    weft_err err = {{0}};
    m.n_layers = L + 1;
    assert_int_equal(split_choose_auto(&r, &s, &m, NULL, 0, &c, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "layers"));
    m = model();
    r.output_tokens = 0;
    assert_int_equal(split_choose_auto(&r, &s, &m, NULL, 0, &c, NULL, &err), -1);
    r = request(0.01);
    assert_int_equal(split_choose_auto(&r, &s, &m, NULL, SPLIT_SIM_MAX_SEQS, &c, NULL, &err), -1);
    assert_int_equal(split_predict_auto(&r, &s, &m, NULL, 0, L + 1, &c, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
}

/* ---- the engine's snapshot (engine_split_snapshot) ---- */

typedef struct evwait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answers; /* CONSUMED + TOKEN events */
    int finished;
} evwait;

static void on_ev(void *ctx, const engine_event *ev) {
    evwait *w = ctx;
    pthread_mutex_lock(&w->mu);
    if (ev->type == ENGINE_EV_TOKEN || ev->type == ENGINE_EV_CONSUMED) w->answers++;
    if (ev->type == ENGINE_EV_FINISHED) w->finished = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void wait_answers(evwait *w, int n) {
    pthread_mutex_lock(&w->mu);
    while (w->answers < n && !w->finished)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void sleep_s(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

/* A split request whose "client" answers each token 30 ms after it gets it: the snapshot shows
 * it with its split layer, the auto flag, its tokens left and a cycle of at least 30 ms; an
 * ordinary request beside it shows as a streamer. */
static void test_engine_snapshot(void **state) {
    (void)state;
    weft_model *m = tu_synth_model("split_batch.gguf", "test-gqa", WEFT_F32, 5);
    assert_non_null(m);
    engine_config ec;
    engine_config_defaults(&ec);
    ec.n_threads = 1;
    ec.kv.max_seq_len = 64;
    ec.kv.capacity_tokens = 64 * 8;
    weft_err err = {{0}};
    engine *e = engine_new(m, &ec, &err);
    assert_non_null(e);
    assert_int_equal(engine_start(e, &err), 0);
    evwait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    int32_t zeros[2] = {0, 0};
    engine_request r = {0};
    r.id = 7;
    r.prompt = zeros;
    r.n_prompt = 2;
    r.max_tokens = 6;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = 0;
    r.ignore_eos = true;
    r.on_event = on_ev;
    r.ctx = &w;
    r.split = true;
    r.split_layer = 1;
    r.split_auto = true;
    assert_int_equal(engine_submit(e, &r, &err), 0);
    const int D = m->cfg.dim;
    float *rows = calloc((size_t)2 * D, sizeof *rows);
    assert_non_null(rows);
    for (int i = 0; i < 2 * D; i++)
        rows[i] = 0.01f * (float)(i % 7);
    assert_int_equal(engine_split_feed(e, 7, rows, 2, &err), 0); /* the prompt */
    wait_answers(&w, 1);
    for (int t = 1; t <= 3; t++) { /* three decode tokens, each answered after 30 ms */
        sleep_s(0.03);
        assert_int_equal(engine_split_feed(e, 7, rows, 1, &err), 0);
        wait_answers(&w, 1 + t);
    }
    engine_split_seq snap[4];
    int n = 0;
    for (int k = 0; k < 400; k++) { /* published at the end of each step, after its events */
        n = engine_split_snapshot(e, snap, 4);
        if (n == 1 && snap[0].tokens_left == 6 - 4) break;
        sleep_s(0.005);
    }
    assert_int_equal(n, 1);
    assert_int_equal(snap[0].split_layer, 1);
    assert_true(snap[0].split_auto);
    assert_int_equal(snap[0].tokens_left, 6 - 4);
    assert_true(snap[0].cycle_s >= 0.03);
    assert_true(snap[0].cycle_s < 1.0);
    engine_cancel(e, 7);
    pthread_mutex_lock(&w.mu);
    while (!w.finished)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    assert_int_equal(engine_split_snapshot(NULL, snap, 4), 0);
    engine_free(e);
    free(rows);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_model_from_profile), cmocka_unit_test(test_simulate_by_hand),
        cmocka_unit_test(test_simulate_start),          cmocka_unit_test(test_offline_consistency),
        cmocka_unit_test(test_simulate_rejects),        cmocka_unit_test(test_recurrence),
        cmocka_unit_test(test_plan_level_recurring),    cmocka_unit_test(test_streamers_vs_alone),
        cmocka_unit_test(test_sla_respected),           cmocka_unit_test(test_plan_level),
        cmocka_unit_test(test_prediction_is_increment), cmocka_unit_test(test_choose_rejects),
        cmocka_unit_test(test_engine_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
