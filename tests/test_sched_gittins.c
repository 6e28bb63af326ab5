/* test_sched_gittins.c — the Gittins index of sched_gittins.c and rtlm's `--rtlm-rank gittins`
 * on constructed requests (no engine): the index against an independent brute-force reference
 * (the discrete definition summed token by token with erfc, no table, no Euler–Maclaurin) for
 * several sigma, attained lengths and caps; SRPT order as sigma -> 0; a long-running request
 * with a wide prediction overtaken by a fresh one of the same prediction; the cap (a request one
 * token from it is certain to end next: the highest index); the order of constructed queues
 * (short-certain, long-certain, short-but-uncertain); preemption decisions on constructed
 * batches; the knob and name parsing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/testutil.h"
#include "weft/sched.h"

/* P(X > x), X lognormal with median p50 and shape sigma. */
static double sbar(double x, double p50, double sigma) {
    if (x <= 0) return 1;
    return 0.5 * erfc(log(x / p50) / sigma / M_SQRT2);
}

/* The definition, token by token: S = ceil(X) truncated at cap; the max over D = 1..cap-a of
 * (P(S > a) - P(S > a + D)) / sum_{j<D} P(S > a + j). */
static double ref_index(double p50, double sigma, int cap, int a) {
    double s0 = sbar(a, p50, sigma), sum = 0, best = 0;
    if (s0 <= 0) return NAN;
    for (int d = 1; a + d <= cap; d++) {
        int k = a + d - 1;
        sum += k < cap ? sbar(k, p50, sigma) : 0;
        double end = a + d < cap ? sbar(a + d, p50, sigma) : 0;
        double v = (s0 - end) / sum;
        if (v > best) best = v;
    }
    return best;
}

static void test_against_reference(void **state) {
    (void)state;
    sched_gittins *g = sched_gittins_new();
    assert_non_null(g);
    const double sigmas[] = {0.15, 0.3, 0.6, 1.0, 1.5, 2.5};
    const double p50s[] = {20, 80, 200};
    const double fr[] = {0, 0.25, 0.6, 1.0, 1.5, 3.0};
    const int caps[] = {256, 2048};
    double worst = 0;
    for (size_t si = 0; si < sizeof sigmas / sizeof *sigmas; si++)
        for (size_t pi = 0; pi < sizeof p50s / sizeof *p50s; pi++)
            for (size_t ci = 0; ci < 2; ci++)
                for (size_t ai = 0; ai < sizeof fr / sizeof *fr; ai++) {
                    int a = (int)(fr[ai] * p50s[pi]), cap = caps[ci];
                    if (a >= cap - 1) continue;
                    double want = ref_index(p50s[pi], sigmas[si], cap, a);
                    if (!(want > 0) || sbar(a, p50s[pi], sigmas[si]) < 1e-12) continue;
                    double got = sched_gittins_index(g, p50s[pi], sigmas[si], cap, a);
                    /* compared as effective remaining tokens 1/G */
                    double err = fabs(1 / got - 1 / want) / (1 / want);
                    if (err > worst) worst = err;
                    if (err > 0.04)
                        fprintf(stderr, "sigma %.2f p50 %.0f cap %d a %d: got 1/G %.3f want %.3f\n",
                                sigmas[si], p50s[pi], cap, a, 1 / got, 1 / want);
                    assert_true(err <= 0.04);
                }
    fprintf(stderr, "worst relative error of 1/G against the reference: %.4f\n", worst);
    sched_gittins_free(g);
}

/* sigma -> 0 (the table's smallest): 1/G is the remaining p50 - a (+1/2), SRPT's key. */
static void test_srpt_limit(void **state) {
    (void)state;
    sched_gittins *g = sched_gittins_new();
    assert_non_null(g);
    const int p50[] = {40, 100, 150, 60, 300}, a[] = {0, 30, 100, 10, 50};
    for (int i = 0; i < 5; i++) {
        double left = 1 / sched_gittins_index(g, p50[i], 0.05, 4096, a[i]);
        double want = p50[i] - a[i] + 0.5;
        assert_true(fabs(left - want) <= 0.05 * want + 1.0);
    }
    /* the order of remaining lengths 40, 70, 50, 50, 250 */
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            int ri = p50[i] - a[i], rj = p50[j] - a[j];
            if (ri < rj)
                assert_true(sched_gittins_index(g, p50[i], 0.05, 4096, a[i]) >
                            sched_gittins_index(g, p50[j], 0.05, 4096, a[j]));
        }
    sched_gittins_free(g);
}

/* A wide prediction (sigma 1.5): the index rises a little and then falls with age, so a request
 * that ran long (5 x p50) ranks below a fresh one of the same prediction; with a narrow one
 * (sigma 0.2) a request past half its median ranks above a fresh one (it is nearly done). */
static void test_age_and_uncertainty(void **state) {
    (void)state;
    sched_gittins *g = sched_gittins_new();
    assert_non_null(g);
    double fresh = sched_gittins_index(g, 50, 1.5, 4096, 0);
    double old = sched_gittins_index(g, 50, 1.5, 4096, 250);
    assert_true(old < fresh);
    /* falling past the peak: each older age ranks lower */
    double prev = sched_gittins_index(g, 50, 1.5, 4096, 100);
    for (int a = 200; a <= 1600; a *= 2) {
        double v = sched_gittins_index(g, 50, 1.5, 4096, a);
        assert_true(v < prev);
        prev = v;
    }
    assert_true(sched_gittins_index(g, 50, 0.2, 4096, 30) > sched_gittins_index(g, 50, 0.2, 4096, 0));
    /* same median, more uncertainty: a fresh request is trusted less to be short */
    assert_true(sched_gittins_index(g, 50, 0.2, 4096, 0) > sched_gittins_index(g, 50, 1.5, 4096, 0));
    sched_gittins_free(g);
}

/* Truncation at the cap: one token from it the request is certain to end next (index 1, the
 * highest possible); near the cap a wide prediction's index rises towards it. */
static void test_cap(void **state) {
    (void)state;
    sched_gittins *g = sched_gittins_new();
    assert_non_null(g);
    assert_true(sched_gittins_index(g, 50, 1.5, 256, 255) == 1.0);
    assert_true(sched_gittins_index(g, 500, 0.3, 256, 255) == 1.0);
    /* nothing else reaches it (with sigma -> 0 the model itself is certain that a request past
     * its median ends next: not tested here) */
    const double sig[] = {0.3, 0.6, 1, 3};
    for (int s = 0; s < 4; s++)
        for (int a = 0; a < 254; a += 7)
            assert_true(sched_gittins_index(g, 50, sig[s], 256, a) < 1.0);
    /* a cap below the median: the request is certain to run to the cap, SRPT on cap - a */
    double left = 1 / sched_gittins_index(g, 1000, 0.3, 100, 20);
    assert_true(fabs(left - 80) < 2);
    /* a cap makes a long-running wide request shorter: its remaining is bounded */
    assert_true(sched_gittins_index(g, 50, 1.5, 256, 240) > sched_gittins_index(g, 50, 1.5, 4096, 240));
    /* the sigma from p50/p90, floored and scaled */
    assert_true(fabs(sched_gittins_sigma(50, 100, 1) - log(2) / 1.2815515655446004) < 1e-9);
    assert_true(fabs(sched_gittins_sigma(50, 50, 1) - SCHED_GITTINS_SIGMA_FLOOR) < 1e-12);
    assert_true(fabs(sched_gittins_sigma(50, 100, 2) - 2 * log(2) / 1.2815515655446004) < 1e-9);
    assert_true(sched_gittins_sigma(1, 1e9, 1) <= 4.0);
    sched_gittins_free(g);
}

static sched_info req(uint64_t id, double arrival, float p50, float p90) {
    sched_info r = {0};
    r.id = id;
    r.arrival_s = arrival;
    r.n_prompt = 10;
    r.max_tokens = 500;
    r.predicted_p50 = p50;
    r.predicted_p90 = p90;
    r.step_s = 0.01;
    return r;
}

static sched_policy *gittins_policy(double scale) {
    sched_config c;
    sched_config_defaults(&c);
    c.rtlm_rank = SCHED_RTLM_GITTINS;
    c.gittins_sigma_scale = scale;
    return sched_policy_new("rtlm", &c);
}

/* Short-certain first, then short-but-uncertain (the same median, p90 three times it), then
 * long-certain; a request with no prediction falls back to the p90 rule (its max_tokens); aging
 * and the deadline-urgent branch still come first. */
static void test_queue_order(void **state) {
    (void)state;
    sched_policy *p = gittins_policy(1);
    assert_non_null(p);
    assert_string_equal(p->name, "rtlm");
    sched_info sc = req(1, 0.0, 20, 24);   /* short, certain */
    sched_info su = req(2, 0.0, 20, 60);   /* short median, wide */
    sched_info lc = req(3, 0.0, 300, 340); /* long, certain */
    sched_info none = req(4, 0.0, 0, 0);   /* no prediction */
    double t = 1.0;
    double rs = p->rank(p, &sc, t), ru = p->rank(p, &su, t), rl = p->rank(p, &lc, t),
           rn = p->rank(p, &none, t);
    assert_true(rs < ru);
    assert_true(ru < rl);
    assert_true(rl < rn);
    /* under p90 the wide one counts as its p90 (60 tokens); under gittins as less: its index
     * weighs the chance that it is short */
    sched_config c;
    sched_config_defaults(&c);
    c.rtlm_rank = SCHED_RTLM_P90;
    sched_policy *q = sched_policy_new("rtlm", &c);
    assert_non_null(q);
    assert_true(q->rank(q, &su, t) > p->rank(p, &su, t));
    sched_policy_free(q);
    /* aging: the long one, waiting the whole bound, goes first */
    sched_info old = req(5, 0.0, 300, 340);
    sched_info young = req(6, 20.5, 20, 24);
    assert_true(p->rank(p, &old, 21.0) < p->rank(p, &young, 21.0));
    /* a deadline that must start now ranks by its slack, ahead of the same work without one */
    sched_info dl = req(7, 0.0, 300, 340);
    dl.deadline_s = 1.0 + 300 * 0.01 * 1.5;
    assert_true(p->rank(p, &dl, 1.0) < 0.6 * p->rank(p, &lc, 1.0));
    /* the victim: the lowest index (a long-running wide request, not a nearly done one) */
    sched_info run[3] = {req(8, 0.0, 20, 200), req(9, 0.0, 100, 120), req(10, 0.0, 100, 120)};
    for (int i = 0; i < 3; i++) run[i].running = 1;
    run[0].n_generated = 300; /* ran 15 x its median, wide */
    run[1].n_generated = 90;
    run[2].n_generated = 10;
    assert_int_equal(p->pick_victim(p, run, 3, 1.0), 0);
    sched_policy_free(p);
}

/* Preemption decisions through sched_pick_pause with the Gittins rank. */
static void test_pause(void **state) {
    (void)state;
    sched_policy *p = gittins_policy(1);
    assert_non_null(p);
    sched_info run[2] = {req(1, 0.0, 200, 240), req(2, 0.0, 180, 220)};
    for (int i = 0; i < 2; i++) {
        run[i].running = 1;
        run[i].pausable = 1;
        run[i].steps_run = 20;
        run[i].n_generated = 20;
    }
    sched_info w = req(3, 1.0, 10, 12); /* short, certain */
    /* every running request has far more left: pause the one with the most (lowest index) */
    assert_int_equal(sched_pick_pause(p, run, 2, &w, 1.0), 0);
    /* minimum run protects a just-admitted one */
    run[0].steps_run = 3;
    assert_int_equal(sched_pick_pause(p, run, 2, &w, 1.0), 1);
    run[0].steps_run = 20;
    /* a running request near its certain end: the Gittins comparison (the batch keeps the k
     * highest indices: the victim's index against w's) still pauses the long one; the benefit
     * comparison (every running request against w) lets w wait for the one about to end */
    run[1].n_generated = 178;
    run[1].predicted_p90 = 185;
    assert_int_equal(sched_pick_pause(p, run, 2, &w, 1.0), 0);
    sched_config bc;
    sched_config_defaults(&bc);
    bc.rtlm_rank = SCHED_RTLM_GITTINS;
    bc.preempt_compare = SCHED_PREEMPT_BENEFIT;
    sched_policy *pb = sched_policy_new("rtlm", &bc);
    assert_non_null(pb);
    assert_int_equal(sched_pick_pause(pb, run, 2, &w, 1.0), -1);
    run[1].n_generated = 20;
    assert_int_equal(sched_pick_pause(pb, run, 2, &w, 1.0), 0);
    sched_policy_free(pb);
    /* the comparison is a knob of every preemptive policy: spf with victim pauses too */
    bc.rtlm_rank = SCHED_RTLM_P90;
    bc.preempt_compare = SCHED_PREEMPT_VICTIM;
    sched_policy *sv = sched_policy_new("spf", &bc);
    assert_non_null(sv);
    run[1].n_generated = 178;
    assert_int_equal(sched_pick_pause(sv, run, 2, &w, 1.0), 0);
    sched_policy_free(sv);
    run[1].n_generated = 20;
    run[1].predicted_p90 = 220;
    /* a similar newcomer never pauses anyone */
    sched_info sim = req(4, 1.0, 150, 180);
    assert_int_equal(sched_pick_pause(p, run, 2, &sim, 1.0), -1);
    /* a wide newcomer counts as more work than a certain one of the same median */
    sched_info wide = req(5, 1.0, 10, 30);
    assert_true(p->remaining(p, &wide, 1.0) > p->remaining(p, &w, 1.0));
    /* the aging bound: an old running request is never displaced */
    run[0].arrival_s = -25;
    run[1].arrival_s = -25;
    assert_int_equal(sched_pick_pause(p, run, 2, &w, 1.0), -1);
    sched_policy_free(p);
}

static void test_names_and_knob(void **state) {
    (void)state;
    sched_rtlm_rank r;
    assert_int_equal(sched_rtlm_rank_parse("gittins", &r), 0);
    assert_int_equal(r, SCHED_RTLM_GITTINS);
    assert_int_equal(sched_rtlm_rank_parse("p90", &r), 0);
    assert_int_equal(r, SCHED_RTLM_P90);
    assert_int_equal(sched_rtlm_rank_parse("srpt", &r), -1);
    assert_string_equal(sched_rtlm_rank_name(SCHED_RTLM_GITTINS), "gittins");
    assert_null(sched_rtlm_rank_name((sched_rtlm_rank)7));
    sched_preempt_compare pc;
    assert_int_equal(sched_preempt_compare_parse("victim", &pc), 0);
    assert_int_equal(pc, SCHED_PREEMPT_VICTIM);
    assert_int_equal(sched_preempt_compare_parse("benefit", &pc), 0);
    assert_int_equal(pc, SCHED_PREEMPT_BENEFIT);
    assert_int_equal(sched_preempt_compare_parse("all", &pc), -1);
    assert_string_equal(sched_preempt_compare_name(SCHED_PREEMPT_AUTO), "auto");
    sched_config c;
    sched_config_defaults(&c);
    assert_int_equal(c.rtlm_rank, SCHED_RTLM_GITTINS); /* chosen on the development workload */
    assert_true(c.gittins_sigma_scale == 1.0);
    /* a larger sigma scale trusts the prediction less: a fresh narrow request looks longer */
    sched_policy *a = gittins_policy(1), *b = gittins_policy(3);
    assert_non_null(a);
    assert_non_null(b);
    sched_info x = req(1, 0.0, 50, 60);
    assert_true(b->remaining(b, &x, 0) > a->remaining(a, &x, 0));
    sched_policy_free(a);
    sched_policy_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_reference), cmocka_unit_test(test_srpt_limit),
        cmocka_unit_test(test_age_and_uncertainty), cmocka_unit_test(test_cap),
        cmocka_unit_test(test_queue_order), cmocka_unit_test(test_pause),
        cmocka_unit_test(test_names_and_knob),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
