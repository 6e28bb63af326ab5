/* test_split_plan.c — the split-inference cost model and planners: the cost formulas at the
 * three kinds of split point, input validation, the DP against exhaustive search on hundreds of
 * random small instances (same optimum, plan within budget and SLAs), the greedy baselines never
 * beating the DP (and losing to it on some instances, so the coupling is real), the single-request
 * chooser, the profile JSON round trip, and the KV objective (SPLIT_OBJECTIVE_KV: DP = exhaustive,
 * constraints, greedy never better, a case where it picks another plan than the work objective). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/split_plan.h"

/* |a - b| <= eps, with both values printed when it fails. */
#define assert_near(a, b, eps)                                                                  \
    do {                                                                                        \
        double a_ = (a), b_ = (b);                                                              \
        if (!(fabs(a_ - b_) <= (eps))) {                                                        \
            print_message("%s = %.17g, expected %.17g (eps %g)\n", #a, a_, b_, (double)(eps)); \
            fail();                                                                             \
        }                                                                                       \
    } while (0)

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double urand(uint64_t *s, double lo, double hi) {
    return lo + (hi - lo) * (double)(rng_next(s) >> 11) / 9007199254740992.0;
}
static int irand(uint64_t *s, int lo, int hi) { return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1)); }

static split_server base_server(int L) {
    split_server s;
    memset(&s, 0, sizeof s);
    s.n_layers = L;
    s.cost = (split_device_cost){1e-4, 2e-3, 1e-3, 5e-4};
    s.slowdown = 1;
    s.window_s = 10;
    s.cores = 2;
    s.load = 0;
    s.kv_bytes_per_layer_token = 2 * 64 * 4;
    s.kv_capacity_bytes = 0;
    return s;
}
static split_request base_request(int L) {
    split_request r;
    memset(&r, 0, sizeof r);
    r.prompt_tokens = 10;
    r.output_tokens = 5;
    r.sla_s = 100;
    r.count = 1;
    r.client = (split_device_cost){2e-4, 4e-3, 2e-3, 1e-3};
    r.client_max_layers = L;
    r.client_can_head = 1;
    r.link_bw_Bps = 1e6;
    r.link_rtt_s = 0.01;
    r.hidden_bytes_per_token = 64 * SPLIT_HIDDEN_F32;
    return r;
}

static void test_cost_points(void **state) {
    (void)state;
    const int L = 4;
    split_server s = base_server(L);
    split_request r = base_request(L);
    split_choice c;
    /* p = 0: ids up, server does all layers and the head. */
    assert_int_equal(split_cost_eval(&r, &s, 0, &c, NULL), 0);
    assert_true(c.allowed);
    assert_near(c.bytes_up, 10 * 4.0, 1e-9);
    assert_near(c.bytes_down, 5 * 4.0, 1e-9);
    double srv = (L * 10 * 1e-4 + 1e-3) + 4 * (L * 2e-3 + 5e-4);
    assert_near(c.server_work_s, srv * s.cores, 1e-12);
    assert_near(c.client_work_s, 0, 1e-15);
    double lat0 = 0.01 + 44 / 1e6 + (L * 10 * 1e-4 + 1e-3) + 4 * (L * 2e-3 + 5e-4);
    assert_near(c.latency_s, lat0, 1e-12);
    assert_near(c.kv_byte_s, L * 512.0 * (10 + 2.5) * lat0, 1e-9);
    /* 0 < p < L: hidden rows up for the prompt and each decode step, a round trip per step. */
    assert_int_equal(split_cost_eval(&r, &s, 1, &c, NULL), 0);
    assert_near(c.bytes_up, (10 + 4) * 256.0, 1e-9);
    double ttft = 1 * 10 * 2e-4 + (0.01 + 2560 / 1e6 + 4 / 1e6) + (3 * 10 * 1e-4 + 1e-3);
    double step = 1 * 4e-3 + (0.01 + 256 / 1e6 + 4 / 1e6) + (3 * 2e-3 + 5e-4);
    assert_near(c.ttft_s, ttft, 1e-12);
    assert_near(c.latency_s, ttft + 4 * step, 1e-12);
    assert_near(c.server_work_s, ((3 * 10 * 1e-4 + 1e-3) + 4 * (3 * 2e-3 + 5e-4)) * 2, 1e-12);
    assert_near(c.client_work_s, 1 * 10 * 2e-4 + 4 * 4e-3, 1e-12);
    /* p = L: fully local, no link, no server work, no server KV. */
    assert_int_equal(split_cost_eval(&r, &s, L, &c, NULL), 0);
    assert_near(c.server_work_s, 0, 0);
    assert_near(c.comm_s, 0, 0);
    assert_near(c.kv_byte_s, 0, 0);
    assert_near(c.latency_s, (L * 10 * 2e-4 + 2e-3) + 4 * (L * 4e-3 + 1e-3), 1e-12);
    /* The server's slowdown stretches its part of the latency, never its work. */
    s.slowdown = 3;
    split_choice c3;
    assert_int_equal(split_cost_eval(&r, &s, 0, &c3, NULL), 0);
    assert_near(c3.server_work_s, srv * s.cores, 1e-12);
    assert_near(c3.latency_s, 0.01 + 44 / 1e6 + 3 * srv, 1e-12);
    /* Limits of the client. */
    s.slowdown = 1;
    r.client_can_head = 0;
    assert_int_equal(split_cost_eval(&r, &s, L, &c, NULL), 0);
    assert_false(c.allowed);
    r.client_max_layers = 2;
    assert_int_equal(split_cost_eval(&r, &s, 3, &c, NULL), 0);
    assert_false(c.allowed);
    assert_int_equal(split_cost_eval(&r, &s, 2, &c, NULL), 0);
    assert_true(c.allowed);
    /* count weights the totals, not the latency. */
    r.count = 3;
    split_choice c4;
    assert_int_equal(split_cost_eval(&r, &s, 2, &c4, NULL), 0);
    assert_near(c4.latency_s, c.latency_s, 1e-12);
    assert_near(c4.server_work_s, 3 * c.server_work_s, 1e-12);
}

/* The server's load adds its step share to every step that has server work, and only there:
 * not to server work, not to a fully local request. */
static void test_cost_load(void **state) {
    (void)state;
    const int L = 4;
    split_server s = base_server(L);
    split_request r = base_request(L);
    split_choice c0;
    for (int p = 0; p <= L; p++) {
        split_server t = s;
        t.load_step_s = 0.02;
        split_choice a, b;
        assert_int_equal(split_cost_eval(&r, &s, p, &a, NULL), 0);
        assert_int_equal(split_cost_eval(&r, &t, p, &b, NULL), 0);
        double extra = p < L ? 0.02 * r.output_tokens : 0; /* prefill + 4 decode steps */
        assert_near(b.latency_s - a.latency_s, extra, 1e-12);
        assert_near(b.ttft_s - a.ttft_s, p < L ? 0.02 : 0, 1e-12);
        assert_near(b.server_work_s, a.server_work_s, 0);
    }
    split_server bad = s;
    bad.load_step_s = -1;
    weft_err e;
    assert_int_equal(split_cost_eval(&r, &bad, 0, &c0, &e), -1);
    assert_non_null(strstr(e.msg, "load_step_s"));
}

/* Batched decode costs: a + f / b through the alone and the batched measurement; the step of a
 * batch lasts b x the per-sequence cost; the network path adds to work, per token at p = 0 and
 * per round trip at 0 < p < L. */
static void test_cost_batch_io(void **state) {
    (void)state;
    const int L = 4;
    split_server s = base_server(L);
    s.cores = 1;
    s.cost = (split_device_cost){1e-4, 2e-3, 1e-3, 8e-4};
    s.batched_n = 4;
    s.cost_batched = (split_device_cost){1e-4, 5e-4, 1e-3, 2e-4}; /* shared: 2e-3, 8e-4 */
    split_request r = base_request(L); /* P = 10, D = 5: 4 decode steps */
    r.client_can_head = 0;
    split_choice a, b;
    s.batch = 1;
    assert_int_equal(split_cost_eval(&r, &s, 0, &a, NULL), 0);
    s.batch = 4; /* at the measured batch: exactly the batched costs */
    assert_int_equal(split_cost_eval(&r, &s, 0, &b, NULL), 0);
    double pre = L * 10 * 1e-4 + 1e-3;
    assert_near(a.server_work_s, pre + 4 * (L * 2e-3 + 8e-4), 1e-12);
    assert_near(b.server_work_s, pre + 4 * (L * 5e-4 + 2e-4), 1e-12);
    /* the step is 4 x the per-sequence cost, the prefill chunk waits for 3 others' tokens */
    double step4 = 4 * (L * 5e-4 + 2e-4);
    assert_near(b.latency_s - a.latency_s, 3 * (L * 5e-4 + 2e-4) + 4 * step4 -
                                               4 * (L * 2e-3 + 8e-4), 1e-12);
    s.batch = 2; /* between: a + f / 2, a = x1 - f */
    assert_int_equal(split_cost_eval(&r, &s, 0, &b, NULL), 0);
    double f_l = (2e-3 - 5e-4) * 4 / 3, f_h = (8e-4 - 2e-4) * 4 / 3;
    double ld = 2e-3 - f_l + f_l / 2, hd = 8e-4 - f_h + f_h / 2;
    assert_near(b.server_work_s, pre + 4 * (L * ld + hd), 1e-12);
    /* io: 5 tokens streamed at p = 0, 5 round trips (prefill + 4 steps) at p = 2, none at L */
    s.batch = 1;
    s.io_token_s = 1e-3;
    s.io_frame_s = 3e-3;
    split_choice c0, c2, n2;
    assert_int_equal(split_cost_eval(&r, &s, 0, &c0, NULL), 0);
    assert_near(c0.server_work_s - a.server_work_s, 5 * 1e-3, 1e-12);
    assert_int_equal(split_cost_eval(&r, &s, 2, &c2, NULL), 0);
    split_server s0 = s;
    s0.io_token_s = s0.io_frame_s = 0;
    assert_int_equal(split_cost_eval(&r, &s0, 2, &n2, NULL), 0);
    assert_near(c2.server_work_s - n2.server_work_s, 5 * 3e-3, 1e-12);
    assert_near(c2.latency_s, n2.latency_s, 0);
    /* io per streamed token in a batch: interpolated like the decode costs */
    s.io_token_batched_s = 4e-4; /* shared part: (1e-3 - 4e-4) * 4 / 3 = 8e-4 */
    s.batch = 2;
    split_choice cb, nb;
    assert_int_equal(split_cost_eval(&r, &s, 0, &cb, NULL), 0);
    s0 = s;
    s0.io_token_s = s0.io_frame_s = s0.io_token_batched_s = 0;
    assert_int_equal(split_cost_eval(&r, &s0, 0, &nb, NULL), 0);
    assert_near(cb.server_work_s - nb.server_work_s, 5 * (1e-3 - 8e-4 + 4e-4), 1e-12);
    /* bad values */
    weft_err e;
    split_server bad = s;
    bad.batch = -1;
    assert_int_equal(split_cost_eval(&r, &bad, 0, &a, &e), -1);
    assert_non_null(strstr(e.msg, "batch"));
    bad = s;
    bad.io_frame_s = NAN;
    assert_int_equal(split_cost_eval(&r, &bad, 0, &a, &e), -1);
    assert_non_null(strstr(e.msg, "io_"));
}

static void test_bad_input(void **state) {
    (void)state;
    split_server s = base_server(4);
    split_request r = base_request(4);
    split_choice c;
    weft_err e;
    assert_int_equal(split_cost_eval(&r, &s, 5, &c, &e), -1);
    assert_non_null(strstr(e.msg, "split point 5"));
    assert_int_equal(split_cost_eval(&r, &s, -1, &c, &e), -1);
    split_request b = r;
    b.link_bw_Bps = 0;
    assert_int_equal(split_cost_eval(&b, &s, 1, &c, &e), -1);
    assert_non_null(strstr(e.msg, "bandwidth"));
    b = r;
    b.sla_s = NAN;
    assert_int_equal(split_cost_eval(&b, &s, 1, &c, &e), -1);
    b = r;
    b.prompt_tokens = 0;
    assert_int_equal(split_cost_eval(&b, &s, 1, &c, &e), -1);
    b = r;
    b.client.layer_decode_s = -1;
    assert_int_equal(split_cost_eval(&b, &s, 1, &c, &e), -1);
    assert_non_null(strstr(e.msg, "client"));
    split_server t = s;
    t.load = 1;
    assert_int_equal(split_cost_eval(&r, &t, 1, &c, &e), -1);
    t = s;
    t.n_layers = 0;
    assert_int_equal(split_cost_eval(&r, &t, 0, &c, &e), -1);
    t = s;
    t.slowdown = 0.5;
    assert_int_equal(split_cost_eval(&r, &t, 0, &c, &e), -1);
    split_choice out[2];
    assert_int_equal(split_plan_dp(&r, 0, &s, out, NULL, &e), -1);
    split_request two[2] = {r, b};
    assert_int_equal(split_plan_dp(two, 2, &s, out, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "request 1"));
    assert_int_equal(split_plan_greedy(&r, 1, &s, (split_greedy_order)7, out, NULL, &e), -1);
    split_request many[8];
    for (int i = 0; i < 8; i++) many[i] = r;
    split_choice mo[8];
    s.n_layers = 20; /* 21^8 plans: too many for the exhaustive search */
    for (int i = 0; i < 8; i++) many[i].client_max_layers = 20;
    assert_int_equal(split_plan_exhaustive(many, 8, &s, mo, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "exceeds"));
    /* A DP table past its size limit is refused before it is allocated. */
    enum { NBIG = 300 };
    split_request *big = calloc(NBIG, sizeof *big);
    split_choice *bo = calloc(NBIG, sizeof *bo);
    assert_non_null(big);
    assert_non_null(bo);
    for (int i = 0; i < NBIG; i++) big[i] = many[0];
    s.kv_capacity_bytes = 1e9;
    s.kv_units = 1000000;
    assert_int_equal(split_plan_dp(big, NBIG, &s, bo, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "kv_units"));
    free(big);
    free(bo);
}

/* A random small instance: a server, n requests of mixed clients and links, SLAs around what
 * some split point achieves, and a KV budget between "binding hard" and "loose". */
static void random_instance(uint64_t *rng, int *n_out, split_request *r, split_server *s) {
    int L = irand(rng, 1, 5);
    int n = irand(rng, 1, 6);
    *s = base_server(L);
    s->cost.layer_prefill_s = urand(rng, 2e-5, 2e-4);
    s->cost.layer_decode_s = urand(rng, 5e-4, 4e-3);
    s->cost.head_prefill_s = urand(rng, 0, 2e-3);
    s->cost.head_decode_s = urand(rng, 0, 1e-3);
    s->slowdown = urand(rng, 1, 3);
    s->cores = irand(rng, 1, 4);
    s->kv_units = irand(rng, 20, 200);
    for (int i = 0; i < n; i++) {
        split_request q = base_request(L);
        q.prompt_tokens = irand(rng, 1, 200);
        q.output_tokens = irand(rng, 1, 64);
        double f = urand(rng, 0.3, 8);
        q.client.layer_prefill_s = s->cost.layer_prefill_s * f;
        q.client.layer_decode_s = s->cost.layer_decode_s * f;
        q.client.head_prefill_s = s->cost.head_prefill_s * f;
        q.client.head_decode_s = s->cost.head_decode_s * f;
        q.client_max_layers = irand(rng, 0, L);
        q.client_can_head = (int)(rng_next(rng) & 1);
        q.link_bw_Bps = urand(rng, 1e4, 1e8);
        q.link_rtt_s = urand(rng, 0, 0.08);
        q.hidden_bytes_per_token = 288.0 * ((rng_next(rng) & 1) ? SPLIT_HIDDEN_F32 : SPLIT_HIDDEN_F16);
        q.count = (rng_next(rng) % 4 == 0) ? irand(rng, 2, 5) : 1;
        /* SLA: somewhere around the latency of a random split point. */
        split_choice c;
        assert_int_equal(split_cost_eval(&q, s, irand(rng, 0, L), &c, NULL), 0);
        q.sla_s = c.latency_s * urand(rng, 0.7, 1.6);
        r[i] = q;
    }
    /* KV budget: between the least KV any SLA-meeting plan needs and what the least-work plan
     * holds, so the budget is sometimes loose, often binding, and now and then too small. */
    double kv_least = 0, kv_minwork = 0;
    for (int i = 0; i < n; i++) {
        double least = INFINITY, mw = INFINITY, mw_kv = 0, fast = INFINITY, fast_kv = 0;
        for (int p = 0; p <= L; p++) {
            split_choice c;
            assert_int_equal(split_cost_eval(&r[i], s, p, &c, NULL), 0);
            if (!c.allowed) continue;
            if (c.latency_s < fast) fast = c.latency_s, fast_kv = c.kv_byte_s;
            if (!c.sla_ok) continue;
            if (c.kv_byte_s < least) least = c.kv_byte_s;
            if (c.server_work_s < mw) mw = c.server_work_s, mw_kv = c.kv_byte_s;
        }
        kv_least += isfinite(least) ? least : fast_kv;
        kv_minwork += isfinite(mw) ? mw_kv : fast_kv;
    }
    double hi = fmax(kv_minwork, kv_least);
    /* The DP rounds each request's use up to whole units: leave room for that. */
    double slack = 1 + (double)n / s->kv_units;
    switch (rng_next(rng) % 10) {
    case 0: s->kv_capacity_bytes = 0; break;                                  /* unlimited */
    case 1: s->kv_capacity_bytes = 0.5 * kv_least / s->window_s; break;       /* too small */
    default:
        s->kv_capacity_bytes = (kv_least + urand(rng, 0, 1.1) * (hi - kv_least)) * slack / s->window_s;
    }
    if (s->kv_capacity_bytes < 0) s->kv_capacity_bytes = 0;
    *n_out = n;
}

static double rel_close(double a, double b) { return fabs(a - b) <= 1e-9 * fmax(1, fmax(fabs(a), fabs(b))); }

/* Checks a plan's constraints from the cost model alone: SLAs met wherever possible, units in
 * budget (recomputed here with the documented rounding). */
static void check_plan(const split_request *r, int n, const split_server *s, const split_choice *c,
                       const split_plan_summary *sum) {
    int U = s->kv_units > 0 ? s->kv_units : 2000;
    double budget = s->kv_capacity_bytes * s->window_s;
    long long units = 0;
    double work = 0;
    for (int i = 0; i < n; i++) {
        assert_true(c[i].allowed);
        int can = 0;
        for (int p = 0; p <= s->n_layers; p++) {
            split_choice x;
            assert_int_equal(split_cost_eval(&r[i], s, p, &x, NULL), 0);
            if (x.allowed && x.sla_ok) can = 1;
        }
        if (can && sum->feasible) assert_true(c[i].sla_ok);
        if (s->kv_capacity_bytes > 0) units += (long long)ceil(c[i].kv_byte_s / (budget / U) - 1e-9);
        work += c[i].server_work_s;
    }
    assert_true(rel_close(work, sum->server_work_s));
    if (sum->feasible && s->kv_capacity_bytes > 0) {
        assert_true(units <= U);
        assert_true(sum->kv_byte_s <= budget * (1 + 1e-12));
    }
}

/* The four planners on one instance: DP, exhaustive search, ratio greedy, arrival greedy. Asserts
 * that the DP finds exactly the exhaustive optimum (same feasibility, same server work) and that
 * both of their plans keep the cost model's constraints (check_plan). `what` and `t` name the
 * instance in a failure message. */
static void plan_four(const char *what, int t, const split_request *r, int n, const split_server *s,
                      split_choice *cd, split_choice *ce, split_choice *cg, split_choice *ca,
                      split_plan_summary *sd, split_plan_summary *se, split_plan_summary *sg,
                      split_plan_summary *sa) {
    weft_err e;
    assert_int_equal(split_plan_dp(r, n, s, cd, sd, &e), 0);
    assert_int_equal(split_plan_exhaustive(r, n, s, ce, se, &e), 0);
    assert_int_equal(split_plan_greedy(r, n, s, SPLIT_GREEDY_EFFICIENCY, cg, sg, &e), 0);
    assert_int_equal(split_plan_greedy(r, n, s, SPLIT_GREEDY_ARRIVAL, ca, sa, &e), 0);
    assert_int_equal(sd->feasible, se->feasible);
    if (!rel_close(sd->server_work_s, se->server_work_s)) {
        print_message("%s instance %d: dp %.12g exhaustive %.12g\n", what, t, sd->server_work_s,
                      se->server_work_s);
        fail();
    }
    check_plan(r, n, s, cd, sd);
    check_plan(r, n, s, ce, se);
}

static void test_dp_equals_exhaustive(void **state) {
    (void)state;
    uint64_t rng = 12345;
    int instances = 0, binding = 0, greedy_worse = 0, arrival_worse = 0, infeasible = 0;
    for (int t = 0; t < 600; t++) {
        split_request r[6];
        split_server s;
        int n;
        random_instance(&rng, &n, r, &s);
        split_choice cd[6], ce[6], cg[6], ca[6], cu[6];
        split_plan_summary sd, se, sg, sa, su;
        weft_err e;
        plan_four("", t, r, n, &s, cd, ce, cg, ca, &sd, &se, &sg, &sa);
        instances++;
        assert_int_equal(sd.fits_kv, se.fits_kv);
        check_plan(r, n, &s, cg, &sg);
        check_plan(r, n, &s, ca, &sa);
        if (!sd.fits_kv) {
            infeasible++;
            continue;
        }
        /* Greedy fits whenever anything fits, and is never better than the optimum. */
        assert_true(sg.fits_kv && sa.fits_kv);
        assert_true(sg.server_work_s >= sd.server_work_s * (1 - 1e-12));
        assert_true(sa.server_work_s >= sd.server_work_s * (1 - 1e-12));
        if (sg.server_work_s > sd.server_work_s * (1 + 1e-9)) greedy_worse++;
        if (sa.server_work_s > sd.server_work_s * (1 + 1e-9)) arrival_worse++;
        /* Does the shared budget bind? Compare with the same instance unconstrained. */
        split_server free_s = s;
        free_s.kv_capacity_bytes = 0;
        assert_int_equal(split_plan_dp(r, n, &free_s, cu, &su, &e), 0);
        assert_true(su.server_work_s <= sd.server_work_s * (1 + 1e-12));
        if (su.server_work_s < sd.server_work_s * (1 - 1e-9)) binding++;
    }
    print_message("split planner: %d instances, budget binds in %d, greedy worse in %d "
                  "(efficiency order) and %d (arrival order), no plan fits in %d\n", instances,
                  binding, greedy_worse, arrival_worse, infeasible);
    assert_int_equal(instances, 600);
    /* The instances exercise the coupling: the budget binds often and greedy is not optimal. */
    assert_true(binding >= 60);
    assert_true(greedy_worse >= 3 && arrival_worse >= 5);
}

/* Shared client devices on top of a random instance: 1-3 devices, each request on one of them
 * or on a device of its own; memory from "only the embedding fits" to "everything fits". */
static void add_devices(uint64_t *rng, split_request *r, int n, split_server *s,
                        split_client_device *dv) {
    const int L = s->n_layers, nd = irand(rng, 1, 3);
    for (int d = 0; d < nd; d++) {
        dv[d].weight_bytes_per_layer = urand(rng, 1e3, 1e4);
        dv[d].kv_bytes_per_layer_token = urand(rng, 1, 60);
        dv[d].fixed_bytes = urand(rng, 0, 5e3);
        dv[d].mem_bytes = dv[d].fixed_bytes + urand(rng, 0, L) * dv[d].weight_bytes_per_layer +
                          urand(rng, 0, 1) * L * dv[d].kv_bytes_per_layer_token * 200;
    }
    s->devices = dv;
    s->n_devices = nd;
    s->device_units = irand(rng, 10, 80);
    if (rng_next(rng) & 1) s->kv_capacity_bytes = 0; /* the devices alone couple the requests */
    /* Sometimes a short window, so the devices' KV memory-time binds too. */
    if (rng_next(rng) % 3 == 0) {
        double w = urand(rng, 0.05, 1);
        s->kv_capacity_bytes *= s->window_s / w; /* same server budget */
        s->window_s = w;
    }
    for (int i = 0; i < n; i++) r[i].device = irand(rng, 0, nd);
}

/* A plan's device constraints from the parameters alone (when the plan says it is feasible). */
static void check_devices(const split_request *r, int n, const split_server *s,
                          const split_choice *c, const split_plan_summary *sum) {
    if (!sum->feasible) return;
    assert_true(sum->fits_devices);
    for (int d = 0; d < s->n_devices; d++) {
        const split_client_device *v = &s->devices[d];
        int q = 0;
        double kvt = 0;
        for (int i = 0; i < n; i++)
            if (r[i].device == d + 1) {
                if (c[i].p > q) q = c[i].p;
                kvt += c[i].client_kv_byte_s;
            }
        if (q == 0) continue;
        double room = v->mem_bytes - v->fixed_bytes - q * v->weight_bytes_per_layer;
        assert_true(room >= 0);
        assert_true(kvt <= room * s->window_s * (1 + 1e-12));
        for (int i = 0; i < n; i++)
            if (r[i].device == d + 1 && c[i].p > 0) {
                double peak = c[i].p * v->kv_bytes_per_layer_token *
                              (r[i].prompt_tokens + r[i].output_tokens);
                assert_near(c[i].client_kv_peak_bytes, peak, 1e-9 * fmax(1, peak));
                assert_true(peak <= room * (1 + 1e-12));
            }
    }
}

static void test_dp_equals_exhaustive_devices(void **state) {
    (void)state;
    uint64_t rng = 4242;
    int instances = 0, binding = 0, greedy_worse = 0, arrival_worse = 0, infeasible = 0;
    int greedy_unfit = 0, both_limits = 0;
    for (int t = 0; t < 600; t++) {
        split_request r[6];
        split_server s;
        split_client_device dv[3];
        int n;
        random_instance(&rng, &n, r, &s);
        add_devices(&rng, r, n, &s, dv);
        if (s.kv_capacity_bytes > 0) both_limits++;
        split_choice cd[6], ce[6], cg[6], ca[6], cu[6];
        split_plan_summary sd, se, sg, sa, su;
        weft_err e;
        plan_four("device", t, r, n, &s, cd, ce, cg, ca, &sd, &se, &sg, &sa);
        instances++;
        assert_int_equal(sd.fits_kv && sd.fits_devices, se.fits_kv && se.fits_devices);
        check_devices(r, n, &s, cd, &sd);
        check_devices(r, n, &s, ce, &se);
        check_devices(r, n, &s, cg, &sg);
        check_devices(r, n, &s, ca, &sa);
        if (!(sd.fits_kv && sd.fits_devices)) {
            infeasible++;
            /* Nothing fits: neither greedy can have found a plan that fits. */
            assert_false(sg.fits_kv && sg.fits_devices);
            assert_false(sa.fits_kv && sa.fits_devices);
            continue;
        }
        /* A greedy plan that fits is never better than the optimum. */
        if (sg.fits_kv && sg.fits_devices)
            assert_true(sg.server_work_s >= sd.server_work_s * (1 - 1e-12));
        else
            greedy_unfit++;
        if (sa.fits_kv && sa.fits_devices)
            assert_true(sa.server_work_s >= sd.server_work_s * (1 - 1e-12));
        else
            greedy_unfit++;
        if (sg.server_work_s > sd.server_work_s * (1 + 1e-9)) greedy_worse++;
        if (sa.server_work_s > sd.server_work_s * (1 + 1e-9)) arrival_worse++;
        /* Do the devices bind? The same instance with unlimited devices. */
        split_server free_s = s;
        free_s.n_devices = 0;
        free_s.devices = NULL;
        split_request rf[6];
        memcpy(rf, r, sizeof rf);
        for (int i = 0; i < n; i++) rf[i].device = 0;
        assert_int_equal(split_plan_dp(rf, n, &free_s, cu, &su, &e), 0);
        assert_true(su.server_work_s <= sd.server_work_s * (1 + 1e-12));
        if (su.server_work_s < sd.server_work_s * (1 - 1e-9)) binding++;
    }
    print_message("split planner with shared devices: %d instances (%d with the server's KV "
                  "limited too), devices bind in %d, greedy worse in %d (efficiency order) and %d "
                  "(arrival order), a greedy plan that does not fit in %d, no plan fits in %d\n",
                  instances, both_limits, binding, greedy_worse, arrival_worse, greedy_unfit,
                  infeasible);
    assert_int_equal(instances, 600);
    assert_true(binding >= 100);
    assert_true(both_limits >= 200 && instances - both_limits >= 200);
    assert_true(greedy_worse >= 3 && arrival_worse >= 3);
}

/* The placement trade-off in its smallest form: one device, a short request arriving before a
 * long one. Holding many layers leaves too little memory for the long request's KV; the DP
 * holds fewer layers so both split, the arrival-order greedy lets the short request take the
 * deepest split and the long one is left with a shallow split. */
static void test_device_placement_case(void **state) {
    (void)state;
    const int L = 8;
    split_server s = base_server(L);
    split_client_device dv = {0};
    dv.weight_bytes_per_layer = 100;
    dv.fixed_bytes = 0;
    dv.kv_bytes_per_layer_token = 1;
    dv.mem_bytes = 8 * 100 + 40; /* all 8 layers leave 40 bytes of KV */
    s.devices = &dv;
    s.n_devices = 1;
    split_request r[2];
    r[0] = base_request(L); /* short: 10 + 5 tokens, 15 bytes of KV per layer */
    r[0].client_can_head = 0;
    r[0].device = 1;
    r[0].link_rtt_s = 0;
    r[1] = r[0];
    r[1].prompt_tokens = 190; /* long: 195 bytes of KV per layer */
    split_choice cd[2], ca[2], ce[2];
    split_plan_summary sd, sa, se;
    assert_int_equal(split_plan_dp(r, 2, &s, cd, &sd, NULL), 0);
    assert_int_equal(split_plan_exhaustive(r, 2, &s, ce, &se, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 2, &s, SPLIT_GREEDY_ARRIVAL, ca, &sa, NULL), 0);
    assert_true(sd.feasible && sa.feasible);
    /* A layer of the long request saves 3x the server work of a layer of the short one
     * (190 vs 10 prompt tokens, 4 decode steps). The short request at p = 7 (700 bytes of
     * weights + 105 of KV) leaves 140 bytes: the long one gets p = 0. Holding q layers leaves
     * 840 - 100 q for each request's KV: the best is q = 4 (room 440: short at 4, long at 2,
     * 390 bytes), 4 x 1 + 2 x 3 = 10 short-layer units of work saved against 7. */
    assert_int_equal(ca[0].p, 7);
    assert_int_equal(ca[1].p, 0);
    assert_near(sd.server_work_s, se.server_work_s, 1e-12);
    assert_true(sd.server_work_s < sa.server_work_s);
    assert_int_equal(cd[0].p, 4);
    assert_int_equal(cd[1].p, 2);
}

/* Unlimited memory: the requests decouple and every planner picks each request's least-work
 * SLA-meeting point. */
static void test_unlimited_decouples(void **state) {
    (void)state;
    uint64_t rng = 777;
    for (int t = 0; t < 100; t++) {
        split_request r[6];
        split_server s;
        int n;
        random_instance(&rng, &n, r, &s);
        s.kv_capacity_bytes = 0;
        split_choice cd[6], cg[6];
        split_plan_summary sd, sg;
        assert_int_equal(split_plan_dp(r, n, &s, cd, &sd, NULL), 0);
        assert_int_equal(split_plan_greedy(r, n, &s, SPLIT_GREEDY_ARRIVAL, cg, &sg, NULL), 0);
        assert_true(rel_close(sd.server_work_s, sg.server_work_s));
        for (int i = 0; i < n; i++) {
            double best = INFINITY;
            for (int p = 0; p <= s.n_layers; p++) {
                split_choice x;
                assert_int_equal(split_cost_eval(&r[i], &s, p, &x, NULL), 0);
                if (x.allowed && x.sla_ok && x.server_work_s < best) best = x.server_work_s;
            }
            if (isfinite(best)) assert_true(rel_close(cd[i].server_work_s, best));
            else assert_false(cd[i].sla_ok);
        }
    }
}

/* A hand-made instance where the greedy ratio rule is wrong: one request saves a lot but needs
 * most of the budget, two small ones save a bit more together. */
static void test_greedy_suboptimal_case(void **state) {
    (void)state;
    const int L = 2;
    split_server s = base_server(L);
    s.kv_units = 100;
    split_request r[3];
    for (int i = 0; i < 3; i++) r[i] = base_request(L);
    /* Slow link: a split request stays resident long, so it holds a lot of KV memory-time. */
    for (int i = 0; i < 3; i++) {
        r[i].client_can_head = 0;
        r[i].client_max_layers = 1;
        r[i].link_rtt_s = 0.05;
        r[i].client = s.cost;
    }
    r[0].prompt_tokens = 40;
    r[0].output_tokens = 20;
    split_choice c0[3], c1[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(split_cost_eval(&r[i], &s, 0, &c0[i], NULL), 0);
        assert_int_equal(split_cost_eval(&r[i], &s, 1, &c1[i], NULL), 0);
    }
    /* Budget: p=0 for all plus just enough extra for request 0 or for both others. */
    double extra0 = c1[0].kv_byte_s - c0[0].kv_byte_s;
    double extra12 = c1[1].kv_byte_s - c0[1].kv_byte_s + c1[2].kv_byte_s - c0[2].kv_byte_s;
    assert_true(extra0 > 0 && extra12 > 0);
    double base = c0[0].kv_byte_s + c0[1].kv_byte_s + c0[2].kv_byte_s;
    s.kv_capacity_bytes = (base + fmax(extra0, extra12) * 1.05) / s.window_s;
    split_choice cd[3], cg[3], ce[3];
    split_plan_summary sd, sg, se;
    assert_int_equal(split_plan_dp(r, 3, &s, cd, &sd, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 3, &s, SPLIT_GREEDY_EFFICIENCY, cg, &sg, NULL), 0);
    assert_int_equal(split_plan_exhaustive(r, 3, &s, ce, &se, NULL), 0);
    assert_true(sd.feasible && sg.feasible);
    assert_true(rel_close(sd.server_work_s, se.server_work_s));
    assert_true(sd.server_work_s <= sg.server_work_s * (1 + 1e-12));
    /* Both halves cannot split at once, and the DP takes the better half. */
    int split_count = (cd[0].p == 1) + (cd[1].p == 1) + (cd[2].p == 1);
    assert_true(split_count >= 1);
    double saved0 = c0[0].server_work_s - c1[0].server_work_s;
    double saved12 = c0[1].server_work_s - c1[1].server_work_s + c0[2].server_work_s - c1[2].server_work_s;
    double want = c0[0].server_work_s + c0[1].server_work_s + c0[2].server_work_s - fmax(saved0, saved12);
    assert_true(sd.server_work_s <= want * (1 + 1e-9));
}

static void test_choose_one(void **state) {
    (void)state;
    const int L = 4;
    split_server s = base_server(L);
    split_request r = base_request(L);
    split_choice c;
    /* Loose SLA, no memory limit: fully local (no server work). */
    assert_int_equal(split_choose_one(&r, &s, -1, &c, NULL), L);
    assert_near(c.server_work_s, 0, 0);
    /* Client cannot hold the head: the deepest split. */
    r.client_can_head = 0;
    assert_int_equal(split_choose_one(&r, &s, -1, &c, NULL), L - 1);
    /* A KV budget smaller than the deep split needs: the least-work point that fits (checked
     * against every point), or the least-KV one when none fits. */
    split_choice deep;
    assert_int_equal(split_cost_eval(&r, &s, L - 1, &deep, NULL), 0);
    for (int t = 1; t <= 4; t++) {
        double left = deep.kv_byte_s * 0.25 * t;
        int p = split_choose_one(&r, &s, left, &c, NULL);
        assert_true(p >= 0 && p < L);
        double best = INFINITY, least = INFINITY;
        for (int q = 0; q <= L; q++) {
            split_choice x;
            assert_int_equal(split_cost_eval(&r, &s, q, &x, NULL), 0);
            if (!x.allowed || !x.sla_ok) continue;
            if (x.kv_byte_s < least) least = x.kv_byte_s;
            if (x.kv_byte_s <= left && x.server_work_s < best) best = x.server_work_s;
        }
        if (isfinite(best)) {
            assert_true(c.kv_byte_s <= left);
            assert_near(c.server_work_s, best, 1e-15);
        } else {
            assert_near(c.kv_byte_s, least, 1e-15);
        }
    }
    /* An SLA only the server alone can meet. */
    split_choice c0;
    assert_int_equal(split_cost_eval(&r, &s, 0, &c0, NULL), 0);
    r.sla_s = c0.latency_s * 1.0001;
    assert_int_equal(split_choose_one(&r, &s, -1, &c, NULL), 0);
    assert_true(c.sla_ok);
    /* Impossible SLA: the fastest point, flagged. */
    r.sla_s = 1e-9;
    int p = split_choose_one(&r, &s, -1, &c, NULL);
    assert_true(p >= 0);
    assert_false(c.sla_ok);
    for (int q = 0; q <= L; q++) {
        split_choice x;
        assert_int_equal(split_cost_eval(&r, &s, q, &x, NULL), 0);
        if (x.allowed) assert_true(c.latency_s <= x.latency_s);
    }
}

static void test_fixed_and_summary(void **state) {
    (void)state;
    const int L = 3;
    split_server s = base_server(L);
    split_request r[2] = {base_request(L), base_request(L)};
    r[1].count = 4;
    r[1].output_tokens = 9;
    split_choice c[2];
    split_plan_summary sum;
    assert_int_equal(split_plan_fixed(r, 2, &s, 0, c, &sum, NULL), 0);
    assert_int_equal(c[0].p, 0);
    assert_int_equal(c[1].p, 0);
    assert_near(sum.n_requests, 5, 0);
    assert_near(sum.output_tokens, 5 + 4 * 9, 0);
    assert_near(sum.n_sla_ok, 5, 0);
    assert_near(sum.server_work_s, c[0].server_work_s + c[1].server_work_s, 1e-12);
    assert_near(sum.compute_capacity_s, 10 * 2, 1e-12);
    assert_true(sum.fits_compute && sum.fits_kv && sum.feasible);
    /* Over capacity: a busy server. */
    s.load = 0.999999;
    assert_int_equal(split_plan_fixed(r, 2, &s, 0, c, &sum, NULL), 0);
    assert_false(sum.fits_compute);
    assert_false(sum.feasible);
    weft_err e;
    assert_int_equal(split_plan_fixed(r, 2, &s, 4, c, &sum, &e), -1);
}

static void test_profile_json(void **state) {
    (void)state;
    split_profile p;
    memset(&p, 0, sizeof p);
    snprintf(p.device, sizeof p.device, "test \"cpu\" x2");
    snprintf(p.model, sizeof p.model, "/tmp/m.gguf");
    p.n_layers = 6;
    p.dim = 288;
    p.kv_dim = 288;
    p.threads = 2;
    p.prompt_tokens = 64;
    p.decode_batch = 4;
    p.k_lo = 1;
    p.k_hi = 6;
    p.cost = (split_device_cost){1.25e-5, 3.5e-4, 2e-4, 1e-4};
    p.has_link = 1;
    p.link_bw_Bps = 1.25e6;
    p.link_rtt_s = 0.02;
    p.batched_n = 4;
    p.cost_batched = (split_device_cost){1.25e-5, 1.5e-4, 2e-4, 4e-5};
    p.io_token_s = 2e-4;
    p.io_frame_s = 3e-4;
    p.io_token_batched_s = 1e-4;
    char path[4096];
    tu_scratch("split_profile_test.json", path, sizeof path);
    weft_err e;
    assert_int_equal(split_profile_write_json(&p, path, &e), 0);
    split_profile q;
    assert_int_equal(split_profile_read_json(path, &q, &e), 0);
    assert_string_equal(q.device, p.device);
    assert_int_equal(q.n_layers, 6);
    assert_int_equal(q.decode_batch, 4);
    assert_near(q.cost.layer_prefill_s, p.cost.layer_prefill_s, 1e-18);
    assert_near(q.cost.head_decode_s, p.cost.head_decode_s, 1e-18);
    assert_int_equal(q.has_link, 1);
    assert_near(q.link_rtt_s, 0.02, 1e-15);
    assert_int_equal(q.batched_n, 4);
    assert_near(q.cost_batched.layer_decode_s, 1.5e-4, 1e-18);
    assert_near(q.cost_batched.head_decode_s, 4e-5, 1e-18);
    assert_near(q.io_token_s, 2e-4, 1e-18);
    assert_near(q.io_frame_s, 3e-4, 1e-18);
    assert_near(q.io_token_batched_s, 1e-4, 1e-18);
    split_profile_scale(&q, 4);
    assert_near(q.cost.layer_decode_s, 4 * 3.5e-4, 1e-15);
    assert_near(q.link_rtt_s, 0.02, 1e-15); /* the link is not the device */
    /* Bad files: missing, not JSON, a negative cost. */
    assert_int_equal(split_profile_read_json("/nonexistent/x.json", &q, &e), -1);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"n_layers\": 6, \"cost\": {\"layer_prefill_s\": -1}}", f);
    fclose(f);
    assert_int_equal(split_profile_read_json(path, &q, &e), -1);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not json", f);
    fclose(f);
    assert_int_equal(split_profile_read_json(path, &q, &e), -1);
    remove(path);
}

/* The measured batch: the first step sets it, idle steps leave it, a steady batch is found, and
 * over a mix of batch sizes it settles at tokens / steps (the step-weighted mean), the value
 * for which a + f / b per token adds up to the steps' cost tokens * a + steps * f. */
static void test_batch_ewma(void **state) {
    (void)state;
    double b = split_batch_ewma_update(0, 3, 64);
    assert_true(b == 3.0);
    assert_true(split_batch_ewma_update(b, 0, 64) == 3.0);
    for (int i = 0; i < 2000; i++) b = split_batch_ewma_update(b, 5, 64);
    assert_true(fabs(b - 5) < 1e-6);
    /* one step of 1 sequence, then three of 4: 13 tokens in 4 steps */
    b = 0;
    double mean = 0;
    int n = 0;
    for (int i = 0; i < 40000; i++) {
        b = split_batch_ewma_update(b, i % 4 == 0 ? 1 : 4, 64);
        if (i >= 20000) {
            mean += b;
            n++;
        }
    }
    mean /= n;
    assert_true(fabs(mean - 13.0 / 4) < 0.01);
    /* the cost it predicts matches the steps': a + f / b over 13 tokens vs 13 a + 4 f */
    const double a = 1e-4, f = 1e-3;
    assert_true(fabs(13 * (a + f / mean) - (13 * a + 4 * f)) < 1e-3 * (13 * a + 4 * f));
    /* a short window follows a change faster than a long one */
    double s = 1, l = 1;
    for (int i = 0; i < 16; i++) {
        s = split_batch_ewma_update(s, 4, 8);
        l = split_batch_ewma_update(l, 4, 64);
    }
    assert_true(s > l && s < 4 && l > 1);
}


/* ---- the fused step's fixed part (docs/split.md, "Server work: the fused step") ---- */

/* The fused step model on top of a random instance: a fixed part of each layer's step shared by
 * step_batch sequences (up to the whole per-sequence cost), a network path per round trip that
 * sometimes makes a split cost more than the marginal work it saves, and sometimes a running
 * batch with a known lowest entry layer. */
static void add_step_model(uint64_t *rng, split_server *s) {
    s->step_batch = urand(rng, 2, 16);
    s->step_fixed_layer_s = urand(rng, 0, 1) * s->cost.layer_decode_s * s->step_batch;
    if (rng_next(rng) & 1) s->io_frame_s = urand(rng, 0, 3) * s->cost.layer_decode_s;
    if (rng_next(rng) % 3 == 0) {
        s->batch_entry_known = 1;
        s->batch_min_entry = irand(rng, 0, s->n_layers);
    }
}

/* The plan's work recomputed from its split points, the fused step physically: every served
 * request's marginal work (its own layers and everything else it costs alone, minus its share
 * of the fixed part of its layers) plus, for every layer some served request or the running
 * batch runs, the fixed part shared by all the served requests' steps. */
static double physical_work(const split_request *r, int n, const split_server *s,
                            const split_choice *c) {
    double marginal = 0, shares = 0;
    int m = s->batch_entry_known ? s->batch_min_entry : s->n_layers;
    for (int i = 0; i < n; i++) {
        if (c[i].p >= s->n_layers) continue;
        split_choice x;
        assert_int_equal(split_cost_eval(&r[i], s, c[i].p, &x, NULL), 0);
        marginal += x.server_work_s - (s->n_layers - c[i].p) * x.server_fixed_layer_s;
        shares += x.server_fixed_layer_s;
        if (c[i].p < m) m = c[i].p;
    }
    double fixed = 0;
    for (int l = 0; l < s->n_layers; l++)
        if (l >= m) fixed += shares;
    return marginal + fixed;
}

static void test_dp_equals_exhaustive_step(void **state) {
    (void)state;
    uint64_t rng = 777;
    int instances = 0, coupled = 0, greedy_worse = 0, arrival_worse = 0, with_dev = 0;
    for (int t = 0; t < 800; t++) {
        split_request r[6];
        split_server s;
        split_client_device dv[3];
        int n;
        random_instance(&rng, &n, r, &s);
        if (t % 2) {
            add_devices(&rng, r, n, &s, dv);
            with_dev++;
        }
        add_step_model(&rng, &s);
        split_choice cd[6], ce[6], cg[6], ca[6], cs[6], x[6];
        split_plan_summary sd, se, sg, sa, ss;
        weft_err e;
        plan_four("step", t, r, n, &s, cd, ce, cg, ca, &sd, &se, &sg, &sa);
        instances++;
        check_devices(r, n, &s, cd, &sd);
        /* Every planner's reported work is the true (physical) work of its plan, and each
         * request's part is split_plan_work's attribution. */
        const split_choice *plans[4] = {cd, ce, cg, ca};
        const split_plan_summary *sums[4] = {&sd, &se, &sg, &sa};
        for (int k = 0; k < 4; k++) {
            double attr[6];
            for (int i = 0; i < n; i++)
                assert_int_equal(split_cost_eval(&r[i], &s, plans[k][i].p, &x[i], NULL), 0);
            assert_true(rel_close(split_plan_work(&s, x, n, attr), sums[k]->server_work_s));
            assert_true(rel_close(physical_work(r, n, &s, plans[k]), sums[k]->server_work_s));
            for (int i = 0; i < n; i++)
                assert_true(rel_close(attr[i], plans[k][i].server_work_s));
        }
        if (!(sd.fits_kv && sd.fits_devices)) continue;
        if (sg.fits_kv && sg.fits_devices) {
            assert_true(sg.server_work_s >= sd.server_work_s * (1 - 1e-12));
            if (sg.server_work_s > sd.server_work_s * (1 + 1e-9)) greedy_worse++;
        }
        if (sa.fits_kv && sa.fits_devices) {
            assert_true(sa.server_work_s >= sd.server_work_s * (1 - 1e-12));
            if (sa.server_work_s > sd.server_work_s * (1 + 1e-9)) arrival_worse++;
        }
        /* The plan the separable accounting picks, scored truly, is never better and often
         * worse: the coupling matters. */
        split_server sep = s;
        sep.step_fixed_layer_s = 0;
        sep.batch_entry_known = 0;
        assert_int_equal(split_plan_dp(r, n, &sep, cs, &ss, &e), 0);
        if (!(ss.fits_kv && ss.fits_devices)) continue;
        for (int i = 0; i < n; i++)
            assert_int_equal(split_cost_eval(&r[i], &s, cs[i].p, &x[i], NULL), 0);
        const double sep_true = split_plan_work(&s, x, n, NULL);
        assert_true(sep_true >= sd.server_work_s * (1 - 1e-12));
        if (sep_true > sd.server_work_s * (1 + 1e-9)) coupled++;
    }
    print_message("split planner, fused step model: %d instances (%d with shared devices), the "
                  "separable plan costs more in %d, greedy worse in %d (ratio order) and %d "
                  "(arrival order)\n", instances, with_dev, coupled, greedy_worse, arrival_worse);
    assert_int_equal(instances, 800);
    assert_true(coupled >= 20);
    assert_true(greedy_worse >= 20 && arrival_worse >= 20);
}

/* The smallest case of the coupling: request B cannot split (its client holds no layer), A can
 * split at 1..3. Alone, A's split saves its whole per-sequence cost of three layers, far more than
 * the round trips cost the server, so both greedy orders split it. In a batch with B, the fixed
 * part of every layer is paid anyway (B runs them all), so A saves only the marginal part, less
 * than what its round trips cost: the DP keeps A unsplit, with less server work. */
static void test_step_coupling_case(void **state) {
    (void)state;
    const int L = 4;
    split_server s = base_server(L);
    s.cores = 1;
    s.cost.layer_prefill_s = 1e-6;
    s.cost.layer_decode_s = 1e-3; /* per sequence in a batch of 4: 0.9 ms fixed share + 0.1 */
    s.step_batch = 4;
    s.step_fixed_layer_s = 3.6e-3;
    s.io_frame_s = 5e-4;
    split_request r[2] = {base_request(L), base_request(L)};
    for (int i = 0; i < 2; i++) {
        r[i].output_tokens = 50;
        r[i].client_can_head = 0;
        r[i].sla_s = 1e6;
    }
    r[1].client_max_layers = 0;
    split_choice cd[2], ce[2], cg[2], ca[2];
    split_plan_summary sd, se, sg, sa;
    assert_int_equal(split_plan_dp(r, 2, &s, cd, &sd, NULL), 0);
    assert_int_equal(split_plan_exhaustive(r, 2, &s, ce, &se, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 2, &s, SPLIT_GREEDY_ARRIVAL, ca, &sa, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 2, &s, SPLIT_GREEDY_EFFICIENCY, cg, &sg, NULL), 0);
    assert_int_equal(cd[0].p, 0);
    assert_int_equal(cd[1].p, 0);
    assert_int_equal(ca[0].p, 3);
    assert_int_equal(cg[0].p, 3);
    /* A at 3 beside B at 0: its 49 steps save 3 x 0.1 ms marginal, its 50 round trips cost
     * 0.5 ms each; prefill saves 3 x 10 x 1 us. */
    const double extra = 50 * 5e-4 - 49 * 3 * 1e-4 - 3 * 10 * 1e-6;
    assert_near(sa.server_work_s - sd.server_work_s, extra, 1e-12);
    assert_near(sg.server_work_s - sd.server_work_s, extra, 1e-12);
    assert_near(se.server_work_s, sd.server_work_s, 1e-15);
    /* Alone (B gone) A splits at 3 after all: the fixed part is then its own to save. */
    split_choice c1;
    split_plan_summary s1;
    assert_int_equal(split_plan_dp(r, 1, &s, &c1, &s1, NULL), 0);
    assert_int_equal(c1.p, 3);
    /* Joining a running server (--split auto): B's kind running (lowest entry 0) keeps A
     * unsplit; an empty server (lowest entry L) lets it split; a batch entering at 3 lets it
     * split at 3, and entering lower would add the others' fixed part, so it does not. */
    split_choice c;
    s.batch_entry_known = 1;
    s.batch_min_entry = 0;
    assert_int_equal(split_choose_one(&r[0], &s, -1, &c, NULL), 0);
    s.batch_min_entry = L;
    assert_int_equal(split_choose_one(&r[0], &s, -1, &c, NULL), 3);
    s.batch_min_entry = 3;
    r[0].client_max_layers = 3;
    assert_int_equal(split_choose_one(&r[0], &s, -1, &c, NULL), 3);
    /* its prediction at 3 with the batch at 3 is its separable cost; at 2 it would pay layer
     * 2's fixed share for its own steps */
    split_choice a3, a2;
    assert_int_equal(split_cost_eval(&r[0], &s, 3, &a3, NULL), 0);
    assert_near(c.server_work_s, a3.server_work_s, 1e-15);
    assert_int_equal(split_cost_eval(&r[0], &s, 2, &a2, NULL), 0);
    assert_near(a2.server_fixed_layer_s, 49 * 0.9e-3, 1e-12);
    /* a bad entry layer is refused */
    s.batch_min_entry = L + 1;
    weft_err e;
    assert_int_equal(split_choose_one(&r[0], &s, -1, &c, &e), -1);
}

/* The step model from two batch sizes: per step fixed + marginal x b, and an older profile file
 * ("cost" at one batch, "batched" at another, no "step") gets the same fit when read. */
static void test_profile_step(void **state) {
    (void)state;
    split_profile p;
    memset(&p, 0, sizeof p);
    /* step time of a layer 2 ms + 0.5 ms x b; head 1 ms + 0.25 ms x b */
    split_device_cost x1 = {1e-5, 2.5e-3, 1e-3, 1.25e-3}, x8 = {1e-5, (2e-3 + 8 * 0.5e-3) / 8, 1e-3,
                                                               (1e-3 + 8 * 0.25e-3) / 8};
    split_profile_step_fit(&p, 1, &x1, 8, &x8);
    assert_int_equal(p.step_lo, 1);
    assert_int_equal(p.step_hi, 8);
    assert_near(p.step_layer_fixed_s, 2e-3, 1e-15);
    assert_near(p.step_layer_marginal_s, 0.5e-3, 1e-15);
    assert_near(p.step_head_fixed_s, 1e-3, 1e-15);
    assert_near(p.step_head_marginal_s, 0.25e-3, 1e-15);
    /* noise: a bigger batch that is not slower per step is all fixed */
    split_device_cost y8 = x8;
    y8.layer_decode_s = 2.5e-3 / 8 * 0.9;
    split_profile_step_fit(&p, 1, &x1, 8, &y8);
    assert_near(p.step_layer_marginal_s, 0, 0);
    assert_near(p.step_layer_fixed_s, 8 * y8.layer_decode_s, 1e-15);
    /* round trip of the "step" object */
    p.n_layers = 4;
    p.decode_batch = 8;
    p.cost = x8;
    split_profile_step_fit(&p, 1, &x1, 8, &x8);
    char path[4096];
    tu_scratch("split_profile_step.json", path, sizeof path);
    weft_err e;
    assert_int_equal(split_profile_write_json(&p, path, &e), 0);
    split_profile q;
    assert_int_equal(split_profile_read_json(path, &q, &e), 0);
    assert_int_equal(q.step_lo, 1);
    assert_int_equal(q.step_hi, 8);
    assert_near(q.step_layer_fixed_s, 2e-3, 1e-12);
    assert_near(q.step_head_marginal_s, 0.25e-3, 1e-12);
    /* an older file: "cost" at batch 1 and "batched" at 4, no "step" */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"n_layers\": 4, \"decode_batch\": 1, \"cost\": {\"layer_prefill_s\": 1e-5, "
          "\"layer_decode_s\": 2.5e-3, \"head_prefill_s\": 1e-3, \"head_decode_s\": 1.25e-3}, "
          "\"batched\": {\"decode_batch\": 4, \"cost\": {\"layer_prefill_s\": 1e-5, "
          "\"layer_decode_s\": 1e-3, \"head_prefill_s\": 1e-3, \"head_decode_s\": 5e-4}}}", f);
    fclose(f);
    assert_int_equal(split_profile_read_json(path, &q, &e), 0);
    assert_int_equal(q.step_hi, 4);
    assert_near(q.step_layer_fixed_s, 2e-3, 1e-12);
    assert_near(q.step_layer_marginal_s, 0.5e-3, 1e-12);
    /* an older file with one batch size: no step model, and it still loads */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"n_layers\": 4, \"decode_batch\": 8, \"cost\": {\"layer_prefill_s\": 1e-5, "
          "\"layer_decode_s\": 2.5e-3, \"head_prefill_s\": 1e-3, \"head_decode_s\": 1.25e-3}}", f);
    fclose(f);
    assert_int_equal(split_profile_read_json(path, &q, &e), 0);
    assert_int_equal(q.step_hi, 0);
    assert_near(q.step_layer_fixed_s, 0, 0);
    /* a malformed step object */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"n_layers\": 4, \"cost\": {\"layer_prefill_s\": 1e-5, \"layer_decode_s\": 2.5e-3, "
          "\"head_prefill_s\": 1e-3, \"head_decode_s\": 1.25e-3}, \"step\": {\"batch_lo\": 4, "
          "\"batch_hi\": 2, \"layer_fixed_s\": 1, \"layer_marginal_s\": 1, \"head_fixed_s\": 1, "
          "\"head_marginal_s\": 1}}", f);
    fclose(f);
    assert_int_equal(split_profile_read_json(path, &q, &e), -1);
    assert_non_null(strstr(e.msg, "batch_lo"));
    remove(path);
}

/* The batch each kind of token runs in: split tokens alone in their steps, streamed ones 4 at a
 * time; the mean of 1 / b over a kind's tokens charges them exactly their steps' fixed parts. */
static void test_batch_by_kind(void **state) {
    (void)state;
    assert_true(split_inv_batch_ewma_update(0, 4, 0, 64) == 0);   /* no token of the kind */
    assert_true(split_inv_batch_ewma_update(0, 4, 2, 64) == 0.25); /* the first sample */
    assert_true(split_inv_batch_ewma_update(0.5, 0, 3, 64) == 0.5); /* an idle step */
    /* steps of 4 streamed sequences, and every third step one split sequence alone */
    double sp = 0, st = 0;
    long split_steps = 0, stream_steps = 0, split_tok = 0, stream_tok = 0;
    double sp_mean = 0, st_mean = 0;
    int n = 0;
    for (int i = 0; i < 30000; i++) {
        const int alone = i % 3 == 0;
        const int seqs = alone ? 1 : 4, k_split = alone ? 1 : 0;
        sp = split_inv_batch_ewma_update(sp, seqs, k_split, 64);
        st = split_inv_batch_ewma_update(st, seqs, seqs - k_split, 64);
        if (i >= 15000) {
            split_steps += alone, stream_steps += !alone;
            split_tok += k_split, stream_tok += seqs - k_split;
            sp_mean += sp, st_mean += st, n++;
        }
    }
    sp_mean /= n, st_mean /= n;
    assert_true(fabs(1 / sp_mean - 1) < 1e-9);
    assert_true(fabs(1 / st_mean - 4) < 1e-9);
    /* fixed part f per step: split tokens x f / b_split = their steps' f exactly */
    const double f = 1e-3;
    assert_true(fabs(split_tok * f * sp_mean - split_steps * f) < 1e-9 * split_steps * f);
    assert_true(fabs(stream_tok * f * st_mean - stream_steps * f) < 1e-9 * stream_steps * f);
    /* the cost model charges a split point its kind's batch, and p = 0 and p = L the other */
    const int L = 4;
    split_server s = base_server(L);
    s.cost_batched = s.cost;
    s.cost_batched.layer_decode_s = 0.5e-3; /* 2 ms alone, 0.5 ms each of 4: f = 2 ms */
    s.batched_n = 4;
    s.batch = 4;
    s.batch_split = 1;
    split_request r = base_request(L);
    r.client_can_head = 0;
    split_choice c0, c2, t0, t2;
    assert_int_equal(split_cost_eval(&r, &s, 0, &c0, NULL), 0);
    assert_int_equal(split_cost_eval(&r, &s, 2, &c2, NULL), 0);
    split_server same = s;
    same.batch_split = 0;
    assert_int_equal(split_cost_eval(&r, &same, 0, &t0, NULL), 0);
    assert_int_equal(split_cost_eval(&r, &same, 2, &t2, NULL), 0);
    assert_near(c0.server_work_s, t0.server_work_s, 1e-15);
    /* at p = 2 the two server layers cost their whole 2 ms each per step alone, 0.5 ms in 4 */
    assert_near(c2.server_work_s - t2.server_work_s, 4 * 2 * (2e-3 - 0.5e-3) * s.cores, 1e-12);
    assert_near(c2.server_fixed_layer_s, 0, 0); /* alone in its steps: nothing shared */
    assert_near(t2.server_fixed_layer_s, 4 * 0.5e-3 * s.cores, 1e-15);
    s.batch_split = 0.5;
    weft_err e;
    assert_int_equal(split_cost_eval(&r, &s, 2, &c2, &e), -1);
}

/* ---- the KV objective (split_server.objective = SPLIT_OBJECTIVE_KV, docs/split.md "A KV-bound
 * server"): minimise the server's KV memory-time under every SLA and device constraint ---- */

/* A plan's server KV memory-time, from the cost model alone. */
static double plan_kv(const split_request *r, int n, const split_server *s, const split_choice *c) {
    double kv = 0;
    for (int i = 0; i < n; i++) {
        split_choice x;
        assert_int_equal(split_cost_eval(&r[i], s, c[i].p, &x, NULL), 0);
        kv += x.kv_byte_s;
    }
    return kv;
}

/* The constraints of a kv plan from the cost model: every achievable SLA met (a request that can
 * meet it nowhere at its fastest point), the summary's KV and work are the plan's, and the
 * server's KV budget is not a constraint (fits_kv). */
static void check_kv_plan(const split_request *r, int n, const split_server *s,
                          const split_choice *c, const split_plan_summary *sum) {
    double work = 0;
    for (int i = 0; i < n; i++) {
        assert_true(c[i].allowed);
        int can = 0;
        double fast = INFINITY;
        for (int p = 0; p <= s->n_layers; p++) {
            split_choice x;
            assert_int_equal(split_cost_eval(&r[i], s, p, &x, NULL), 0);
            if (x.allowed && x.sla_ok) can = 1;
            if (x.allowed && x.latency_s < fast) fast = x.latency_s;
        }
        if (can && sum->fits_devices) assert_true(c[i].sla_ok);
        if (!can) assert_near(c[i].latency_s, fast, 0);
        work += c[i].server_work_s;
    }
    assert_true(sum->fits_kv);
    assert_true(rel_close(sum->kv_byte_s, plan_kv(r, n, s, c)));
    assert_true(rel_close(work, sum->server_work_s));
    /* the reported work is still the plan's true (fused step) work */
    split_choice x[6];
    for (int i = 0; i < n; i++) assert_int_equal(split_cost_eval(&r[i], s, c[i].p, &x[i], NULL), 0);
    assert_true(rel_close(split_plan_work(s, x, n, NULL), sum->server_work_s));
}

static void test_kv_objective_random(void **state) {
    (void)state;
    uint64_t rng = 9090;
    int instances = 0, with_dev = 0, dev_bind = 0, greedy_worse = 0, arrival_worse = 0;
    int differs = 0, infeasible = 0;
    for (int t = 0; t < 600; t++) {
        split_request r[6];
        split_server s;
        split_client_device dv[3];
        int n;
        random_instance(&rng, &n, r, &s);
        if (t % 2) {
            add_devices(&rng, r, n, &s, dv);
            with_dev++;
        }
        if (t % 3 == 0) add_step_model(&rng, &s);
        split_server w = s; /* the same instance under the default objective */
        s.objective = SPLIT_OBJECTIVE_KV;
        split_choice cd[6], ce[6], cg[6], ca[6], cw[6], cu[6];
        split_plan_summary sd, se, sg, sa, sw, su;
        weft_err e;
        assert_int_equal(split_plan_dp(r, n, &s, cd, &sd, &e), 0);
        assert_int_equal(split_plan_exhaustive(r, n, &s, ce, &se, &e), 0);
        assert_int_equal(split_plan_greedy(r, n, &s, SPLIT_GREEDY_EFFICIENCY, cg, &sg, &e), 0);
        assert_int_equal(split_plan_greedy(r, n, &s, SPLIT_GREEDY_ARRIVAL, ca, &sa, &e), 0);
        instances++;
        /* The DP finds the exhaustive optimum of the KV memory-time. */
        assert_int_equal(sd.feasible, se.feasible);
        assert_int_equal(sd.fits_devices, se.fits_devices);
        if (!rel_close(sd.kv_byte_s, se.kv_byte_s)) {
            print_message("kv instance %d: dp %.12g exhaustive %.12g\n", t, sd.kv_byte_s, se.kv_byte_s);
            fail();
        }
        const split_choice *plans[4] = {cd, ce, cg, ca};
        const split_plan_summary *sums[4] = {&sd, &se, &sg, &sa};
        for (int k = 0; k < 4; k++) {
            check_kv_plan(r, n, &s, plans[k], sums[k]);
            check_devices(r, n, &s, plans[k], sums[k]);
        }
        /* The server's KV budget plays no part: the same optimum without it. */
        split_server nb = s;
        nb.kv_capacity_bytes = 0;
        assert_int_equal(split_plan_dp(r, n, &nb, cu, &su, &e), 0);
        assert_true(rel_close(su.kv_byte_s, sd.kv_byte_s));
        if (!sd.fits_devices) {
            infeasible++;
            assert_false(sg.fits_devices);
            assert_false(sa.fits_devices);
            continue;
        }
        /* A greedy plan that fits is never better than the DP. */
        if (sg.fits_devices) {
            assert_true(sg.kv_byte_s >= sd.kv_byte_s * (1 - 1e-12));
            if (sg.kv_byte_s > sd.kv_byte_s * (1 + 1e-9)) greedy_worse++;
        }
        if (sa.fits_devices) {
            assert_true(sa.kv_byte_s >= sd.kv_byte_s * (1 - 1e-12));
            if (sa.kv_byte_s > sd.kv_byte_s * (1 + 1e-9)) arrival_worse++;
        }
        /* Each objective's optimum is best at its own objective: the work plan (when it fits
         * without the server's KV budget binding it) holds at least as much KV, the kv plan
         * costs at least as much work. */
        w.kv_capacity_bytes = 0;
        assert_int_equal(split_plan_dp(r, n, &w, cw, &sw, &e), 0);
        if (sw.fits_devices && sw.feasible == sd.feasible) {
            assert_true(sw.kv_byte_s >= sd.kv_byte_s * (1 - 1e-12));
            assert_true(sd.server_work_s >= sw.server_work_s * (1 - 1e-12));
            if (sw.kv_byte_s > sd.kv_byte_s * (1 + 1e-9)) differs++;
        }
        /* Do the devices bind the KV objective? The same requests with no shared device. */
        if (s.n_devices > 0) {
            split_request rf[6];
            memcpy(rf, r, sizeof rf);
            for (int i = 0; i < n; i++) rf[i].device = 0;
            split_server fs = nb;
            fs.n_devices = 0;
            fs.devices = NULL;
            assert_int_equal(split_plan_dp(rf, n, &fs, cu, &su, &e), 0);
            assert_true(su.kv_byte_s <= sd.kv_byte_s * (1 + 1e-12));
            if (su.kv_byte_s < sd.kv_byte_s * (1 - 1e-9)) dev_bind++;
        }
    }
    print_message("split planner, KV objective: %d instances (%d with shared devices), devices "
                  "bind in %d, no plan fits in %d, greedy worse in %d (ratio order) and %d "
                  "(arrival order), the work objective's plan holds more KV in %d\n", instances,
                  with_dev, dev_bind, infeasible, greedy_worse, arrival_worse, differs);
    assert_int_equal(instances, 600);
    /* The instances exercise what couples the requests and what tells the objectives apart. */
    assert_true(dev_bind >= 30);
    assert_true(differs >= 50);
    /* The greedy orders rarely lose under this objective (a shallow split holds more KV than no
     * split on most links, so a request splits deep or not at all): on none of these instances;
     * test_kv_objective_case has a placement case where the arrival order loses. */
}

/* Two requests, L = 2, no device, loose SLAs, the client cannot run the head. A is on a slow link
 * (200 ms round trip), B on one with no delay. A split always saves server work (one of the two
 * layers), so the work objective splits both: {1, 1}. The KV memory-time is (L - p) x the
 * request's life: A split lives 1.034 s holding one layer's KV against 0.221 s holding two
 * unsplit, so the KV objective keeps A unsplit; B split lives 33.6 ms (one layer) against
 * 21.0 ms (two layers), so it splits: {0, 1}. */
static void test_kv_objective_case(void **state) {
    (void)state;
    const int L = 2;
    split_server s = base_server(L);
    split_request r[2] = {base_request(L), base_request(L)};
    for (int i = 0; i < 2; i++) r[i].client_can_head = 0;
    r[0].link_rtt_s = 0.2;
    r[1].link_rtt_s = 0;
    split_choice a0, a1, b0, b1;
    assert_int_equal(split_cost_eval(&r[0], &s, 0, &a0, NULL), 0);
    assert_int_equal(split_cost_eval(&r[0], &s, 1, &a1, NULL), 0);
    assert_int_equal(split_cost_eval(&r[1], &s, 0, &b0, NULL), 0);
    assert_int_equal(split_cost_eval(&r[1], &s, 1, &b1, NULL), 0);
    /* the lives quoted above: prefill 3 ms and 4 steps of 4.5 ms on the server; split, the client
     * runs 2 ms + 4 ms per step and each round trip carries 2560 B up (prompt) or 256 B */
    assert_near(a0.latency_s, 0.2 + 44e-6 + 0.003 + 4 * 0.0045, 1e-12);
    assert_near(a1.latency_s, (0.002 + 0.2 + 2564e-6 + 0.002) + 4 * (0.004 + 0.2 + 260e-6 + 0.0025),
                1e-12);
    assert_near(b1.latency_s, (0.002 + 2564e-6 + 0.002) + 4 * (0.004 + 260e-6 + 0.0025), 1e-12);
    assert_true(a1.kv_byte_s > a0.kv_byte_s && b1.kv_byte_s < b0.kv_byte_s);
    assert_true(a1.server_work_s < a0.server_work_s && b1.server_work_s < b0.server_work_s);
    split_choice cw[2], ck[2], ce[2], cg[2], ca[2];
    split_plan_summary sw, sk, se, sg, sa;
    assert_int_equal(split_plan_dp(r, 2, &s, cw, &sw, NULL), 0);
    assert_int_equal(cw[0].p, 1);
    assert_int_equal(cw[1].p, 1);
    s.objective = SPLIT_OBJECTIVE_KV;
    assert_int_equal(split_plan_dp(r, 2, &s, ck, &sk, NULL), 0);
    assert_int_equal(split_plan_exhaustive(r, 2, &s, ce, &se, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 2, &s, SPLIT_GREEDY_EFFICIENCY, cg, &sg, NULL), 0);
    assert_int_equal(split_plan_greedy(r, 2, &s, SPLIT_GREEDY_ARRIVAL, ca, &sa, NULL), 0);
    const split_choice *kv_plans[4] = {ck, ce, cg, ca};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(kv_plans[k][0].p, 0);
        assert_int_equal(kv_plans[k][1].p, 1);
    }
    assert_near(sk.kv_byte_s, a0.kv_byte_s + b1.kv_byte_s, 1e-12 * sk.kv_byte_s);
    assert_near(sw.kv_byte_s, a1.kv_byte_s + b1.kv_byte_s, 1e-12 * sw.kv_byte_s);
    assert_near(sk.server_work_s, a0.server_work_s + b1.server_work_s, 1e-15);
    assert_true(sk.feasible && sw.feasible);
    /* A server KV budget below the kv plan's is not a constraint under the KV objective (the
     * work objective then has no plan that fits). */
    s.kv_capacity_bytes = 0.5 * sk.kv_byte_s / s.window_s;
    split_plan_summary sb;
    assert_int_equal(split_plan_dp(r, 2, &s, ck, &sb, NULL), 0);
    assert_true(sb.fits_kv && sb.feasible);
    assert_int_equal(ck[0].p, 0);
    assert_int_equal(ck[1].p, 1);
    split_server t = s;
    t.objective = SPLIT_OBJECTIVE_WORK;
    assert_int_equal(split_plan_dp(r, 2, &t, cw, &sw, NULL), 0);
    assert_false(sw.fits_kv);
    /* Placement under the KV objective (test_device_placement_case's device, a client as fast
     * as the server on a fast link with no delay, so a split adds little to a request's life and
     * its KV memory-time falls with every layer it takes): the short request A arrives first.
     * The arrival greedy gives it its least-KV point alone, p = 7, and the device then has 140
     * bytes left for B's KV (195 per layer): B stays unsplit. The DP holds 4 layers: A at 4 and
     * B, which holds 19 times A's KV per layer, at 2. */
    split_server sv = base_server(8);
    sv.objective = SPLIT_OBJECTIVE_KV;
    split_client_device dv = {0};
    dv.weight_bytes_per_layer = 100;
    dv.kv_bytes_per_layer_token = 1;
    dv.mem_bytes = 8 * 100 + 40;
    sv.devices = &dv;
    sv.n_devices = 1;
    split_request q[2] = {base_request(8), base_request(8)};
    for (int i = 0; i < 2; i++) {
        q[i].client_can_head = 0;
        q[i].device = 1;
        q[i].link_rtt_s = 0;
        q[i].link_bw_Bps = 1e9;
        q[i].client = sv.cost;
    }
    q[1].prompt_tokens = 190;
    split_choice qd[2], qe[2], qa[2], qg[2];
    split_plan_summary qsd, qse, qsa, qsg;
    assert_int_equal(split_plan_dp(q, 2, &sv, qd, &qsd, NULL), 0);
    assert_int_equal(split_plan_exhaustive(q, 2, &sv, qe, &qse, NULL), 0);
    assert_int_equal(split_plan_greedy(q, 2, &sv, SPLIT_GREEDY_ARRIVAL, qa, &qsa, NULL), 0);
    assert_int_equal(split_plan_greedy(q, 2, &sv, SPLIT_GREEDY_EFFICIENCY, qg, &qsg, NULL), 0);
    assert_true(qsd.feasible && qsa.feasible && qsg.feasible);
    assert_int_equal(qa[0].p, 7);
    assert_int_equal(qa[1].p, 0);
    assert_int_equal(qd[0].p, 4);
    assert_int_equal(qd[1].p, 2);
    assert_int_equal(qg[0].p, 4); /* the ratio order visits B first */
    assert_int_equal(qg[1].p, 2);
    assert_near(qse.kv_byte_s, qsd.kv_byte_s, 1e-12 * qsd.kv_byte_s);
    assert_true(qsa.kv_byte_s > qsd.kv_byte_s * 1.01);
    /* an unknown objective is refused with its value */
    weft_err e;
    t.objective = 2;
    assert_int_equal(split_plan_dp(r, 2, &t, cw, &sw, &e), -1);
    assert_non_null(strstr(e.msg, "objective 2"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_points),
        cmocka_unit_test(test_cost_load),
        cmocka_unit_test(test_cost_batch_io),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_dp_equals_exhaustive),
        cmocka_unit_test(test_dp_equals_exhaustive_devices),
        cmocka_unit_test(test_device_placement_case),
        cmocka_unit_test(test_unlimited_decouples),
        cmocka_unit_test(test_greedy_suboptimal_case),
        cmocka_unit_test(test_choose_one),
        cmocka_unit_test(test_fixed_and_summary),
        cmocka_unit_test(test_profile_json),
        cmocka_unit_test(test_batch_ewma),
        cmocka_unit_test(test_dp_equals_exhaustive_step),
        cmocka_unit_test(test_step_coupling_case),
        cmocka_unit_test(test_profile_step),
        cmocka_unit_test(test_batch_by_kind),
        cmocka_unit_test(test_kv_objective_random),
        cmocka_unit_test(test_kv_objective_case),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
