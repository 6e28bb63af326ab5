/* test_sched.c — the scheduling policies on constructed queues (no engine): each policy's order
 * of a hand-made waiting queue (ties broken by arrival, as the engine does), its victim choice,
 * aging (an old long request overtakes younger short ones at the configured bound), rtlm's use of
 * the upper quantile for wide predictions, demotion past p90, laxity's best-effort handling and
 * its drop option, names; the late policy (keep/demote/drop) of laxity and rtlm; the hard wait
 * bound (overdue and its victim); the preemption decision (sched_pick_pause); and the offload
 * decision on constructed worker loads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/sched.h"

#define MAXQ 16

static sched_info req(uint64_t id, double arrival, int p50, int p90) {
    sched_info r = {0};
    r.id = id;
    r.arrival_s = arrival;
    r.n_prompt = 10;
    r.max_tokens = 500;
    r.predicted_p50 = (float)p50;
    r.predicted_p90 = (float)p90;
    return r;
}

typedef struct ranked {
    double rank, arrival;
    uint64_t id;
} ranked;

static int by_rank(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->rank != y->rank) return x->rank < y->rank ? -1 : 1;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* The ids of q in the order the engine would admit them at time now. */
static void order(sched_policy *p, const sched_info *q, int n, double now, uint64_t *ids) {
    ranked r[MAXQ];
    for (int i = 0; i < n; i++)
        r[i] = (ranked){p->rank(p, &q[i], now), q[i].arrival_s, q[i].id};
    qsort(r, (size_t)n, sizeof *r, by_rank);
    for (int i = 0; i < n; i++)
        ids[i] = r[i].id;
}

static void expect_order(sched_policy *p, const sched_info *q, int n, double now,
                         const uint64_t *want) {
    uint64_t got[MAXQ];
    order(p, q, n, now, got);
    for (int i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "%s: position %d: got id %llu, want %llu\n", p->name, i,
                    (unsigned long long)got[i], (unsigned long long)want[i]);
        }
        assert_int_equal(got[i], want[i]);
    }
}

/* The rtlm rank a test runs under (registered twice with cmocka_unit_test_prestate; p90 when the
 * test has no state). */
static sched_rtlm_rank rank_of(void **state) {
    return state && *state ? *(const sched_rtlm_rank *)*state : SCHED_RTLM_P90;
}

static sched_policy *make_r(const char *name, double aging_s, sched_rtlm_rank rank) {
    sched_config c;
    sched_config_defaults(&c);
    c.rtlm_rank = rank;
    c.aging_s = aging_s;
    c.tpot_s = 0.01;
    c.prefill_weight = 0;
    sched_policy *p = sched_policy_new(name, &c);
    assert_non_null(p);
    assert_string_equal(p->name, name);
    return p;
}

static sched_policy *make(const char *name, double aging_s) {
    return make_r(name, aging_s, SCHED_RTLM_P90);
}

static void test_names(void **state) {
    (void)state;
    const char *names[] = {"fcfs", "priority", "spf", "laxity", "rtlm", "oracle"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        sched_policy *p = sched_policy_new(names[i], NULL);
        assert_non_null(p);
        assert_string_equal(p->name, names[i]);
        assert_non_null(strstr(sched_policy_names(), names[i]));
        sched_policy_free(p);
    }
    assert_null(sched_policy_new("sjf", NULL));
    assert_null(sched_policy_new(NULL, NULL));
}

static void test_fcfs(void **state) {
    (void)state;
    sched_policy *p = make("fcfs", 20);
    sched_info q[3] = {req(0, 2.0, 5, 5), req(1, 1.0, 500, 500), req(2, 3.0, 1, 1)};
    expect_order(p, q, 3, 4.0, (uint64_t[]){1, 0, 2});
    sched_policy_free(p);
}

static void test_priority(void **state) {
    (void)state;
    sched_policy *p = make("priority", 20);
    sched_info q[5] = {req(0, 1.0, 5, 5), req(1, 2.0, 5, 5), req(2, 3.0, 5, 5), req(3, 4.0, 5, 5),
                       req(4, 0.5, 5, 5)};
    q[0].priority = 0;
    q[1].priority = 5;
    q[2].priority = 1;
    q[3].priority = 5;
    q[4].priority = -1;
    /* higher first; FCFS within a level (1 before 3) */
    expect_order(p, q, 5, 10.0, (uint64_t[]){1, 3, 2, 0, 4});
    /* victim: the lowest priority, the latest arrival among equals */
    sched_info run[3] = {req(10, 1.0, 5, 5), req(11, 2.0, 5, 5), req(12, 3.0, 5, 5)};
    run[0].priority = 0;
    run[1].priority = 0;
    run[2].priority = 3;
    assert_int_equal(p->pick_victim(p, run, 3, 10.0), 1);
    sched_policy_free(p);
}

static void test_spf_order_and_victim(void **state) {
    (void)state;
    sched_policy *p = make("spf", 1000);
    sched_info q[4] = {req(0, 1.0, 300, 400), req(1, 2.0, 20, 30), req(2, 3.0, 100, 120),
                       req(3, 4.0, 20, 25)};
    expect_order(p, q, 4, 5.0, (uint64_t[]){1, 3, 2, 0});
    /* remaining work counts, not total: 0 has generated most of its 300 */
    q[0].n_generated = 295;
    expect_order(p, q, 4, 5.0, (uint64_t[]){0, 1, 3, 2});
    /* nothing predicted: max_tokens is the work */
    sched_info u[2] = {req(0, 1.0, 0, 0), req(1, 2.0, 50, 60)};
    expect_order(p, u, 2, 3.0, (uint64_t[]){1, 0});
    /* victim: the most predicted work left */
    sched_info run[3] = {req(10, 1.0, 50, 60), req(11, 2.0, 400, 450), req(12, 3.0, 10, 20)};
    assert_int_equal(p->pick_victim(p, run, 3, 5.0), 1);
    sched_policy_free(p);
}

static void test_spf_aging(void **state) {
    (void)state;
    sched_policy *p = make("spf", 10);
    /* a long request that arrived at 0 against short ones arriving later */
    sched_info q[3] = {req(0, 0.0, 400, 450), req(1, 5.0, 10, 12), req(2, 6.0, 10, 12)};
    /* at t = 6 it is still behind the short ones */
    expect_order(p, q, 3, 6.0, (uint64_t[]){1, 2, 0});
    /* its rank falls as it waits */
    double r1 = p->rank(p, &q[0], 2.0), r2 = p->rank(p, &q[0], 8.0);
    assert_true(r2 < r1);
    /* at the aging bound it is ahead of everything younger, however short */
    expect_order(p, q, 3, 10.0, (uint64_t[]){0, 1, 2});
    /* among overdue requests the oldest goes first */
    sched_info o[2] = {req(0, 1.0, 5, 5), req(1, 0.0, 400, 450)};
    expect_order(p, o, 2, 30.0, (uint64_t[]){1, 0});
    /* without aging (a huge bound) it stays behind */
    sched_policy *noage = make("spf", 1e9);
    expect_order(noage, q, 3, 1000.0, (uint64_t[]){1, 2, 0});
    sched_policy_free(noage);
    sched_policy_free(p);
}

static void test_oracle(void **state) {
    (void)state;
    sched_policy *p = make("oracle", 1000);
    /* predictions say 0 is short; the truth says it is long */
    sched_info q[3] = {req(0, 1.0, 5, 10), req(1, 2.0, 100, 200), req(2, 3.0, 50, 60)};
    q[0].true_tokens = 300;
    q[1].true_tokens = 20;
    q[2].true_tokens = 40;
    expect_order(p, q, 3, 4.0, (uint64_t[]){1, 2, 0});
    assert_int_equal(p->pick_victim(p, q, 3, 4.0), 0);
    sched_policy_free(p);
}

static void test_laxity(void **state) {
    (void)state;
    sched_policy *p = make("laxity", 20); /* 0.01 s per token */
    double now = 10.0;
    sched_info q[5] = {req(0, 1.0, 100, 120), req(1, 2.0, 100, 120), req(2, 3.0, 10, 12),
                       req(3, 4.0, 10, 12), req(4, 0.5, 10, 12)};
    q[0].deadline_s = now + 3.0;  /* needs 1 s: slack 2 */
    q[1].deadline_s = now + 1.5;  /* needs 1 s: slack 0.5 */
    q[2].deadline_s = now + 1.1;  /* needs 0.1 s: slack 1.0 */
    q[3].deadline_s = now + 0.05; /* needs 0.1 s: cannot make it */
    q[4].deadline_s = 0;          /* no deadline */
    /* least slack first, by default (late policy keep) the one that cannot make it too: its
     * laxity is the least; the deadline-free are best effort, behind */
    expect_order(p, q, 5, now, (uint64_t[]){3, 1, 2, 0, 4});
    /* kept, not dropped, by default */
    assert_non_null(p->should_drop);
    assert_false(p->should_drop(p, &q[3], now));
    /* victim: the most slack (best effort first) */
    sched_info run[3] = {q[0], q[1], q[4]};
    for (int i = 0; i < 3; i++)
        run[i].running = 1;
    assert_int_equal(p->pick_victim(p, run, 3, now), 2);
    sched_policy_free(p);

    /* demote: the hopeless one is best effort, FCFS with the deadline-free (4 arrived first) */
    sched_config c;
    sched_config_defaults(&c);
    c.tpot_s = 0.01;
    c.prefill_weight = 0;
    c.late_policy = SCHED_LATE_DEMOTE;
    p = sched_policy_new("laxity", &c);
    assert_non_null(p);
    expect_order(p, q, 5, now, (uint64_t[]){1, 2, 0, 4, 3});
    assert_false(p->should_drop(p, &q[3], now));
    sched_policy_free(p);

    /* the drop option */
    c.late_policy = SCHED_LATE_DROP;
    p = sched_policy_new("laxity", &c);
    assert_non_null(p);
    assert_true(p->should_drop(p, &q[3], now));
    assert_false(p->should_drop(p, &q[0], now));
    assert_false(p->should_drop(p, &q[4], now)); /* no deadline: never dropped */
    sched_info running = q[3];
    running.running = 1;
    assert_false(p->should_drop(p, &running, now)); /* only waiting requests are dropped */
    /* the measured step time replaces the guess: at 1 ms per token 3 can make it */
    sched_info fast = q[3];
    fast.step_s = 0.001;
    assert_false(p->should_drop(p, &fast, now));
    sched_policy_free(p);
}

static void test_rtlm_uncertainty(void **state) {
    (void)state;
    sched_policy *p = make("rtlm", 1000);
    /* 0: p50 10 but wide (p90 100): ranked on 100. 1: p50 30, narrow (p90 40): ranked on 30. */
    sched_info q[3] = {req(0, 1.0, 10, 100), req(1, 2.0, 30, 40), req(2, 3.0, 60, 80)};
    expect_order(p, q, 3, 5.0, (uint64_t[]){1, 2, 0});
    /* spf trusts the p50 and puts 0 first */
    sched_policy *spf = make("spf", 1000);
    expect_order(spf, q, 3, 5.0, (uint64_t[]){0, 1, 2});
    sched_policy_free(spf);
    sched_config c;
    sched_config_defaults(&c);
    assert_true(sched_rtlm_remaining(&c, &q[0]) == 100);
    assert_true(sched_rtlm_remaining(&c, &q[1]) == 30);
    sched_policy_free(p);
}

static void test_rtlm_demotion(void **state) {
    (void)state;
    sched_policy *p = make("rtlm", 1000);
    /* 0 was predicted short (p90 20) but has generated 25 tokens: demoted, it is expected to
     * run as long again (25 left), so it waits behind 1 and 2 (15 and 20 left) */
    sched_info q[3] = {req(0, 1.0, 10, 20), req(1, 2.0, 15, 18), req(2, 3.0, 20, 24)};
    q[0].n_generated = 25;
    assert_true(sched_demoted(&q[0]));
    assert_false(sched_demoted(&q[1]));
    expect_order(p, q, 3, 4.0, (uint64_t[]){1, 2, 0});
    /* and it is the first victim, even though its nominal remaining work looks small */
    sched_info run[3] = {q[1], q[0], q[2]};
    for (int i = 0; i < 3; i++)
        run[i].running = 1;
    assert_int_equal(p->pick_victim(p, run, 3, 4.0), 1);
    /* not yet past p90: not demoted, first in line */
    q[0].n_generated = 15;
    expect_order(p, q, 3, 4.0, (uint64_t[]){0, 1, 2});
    sched_policy_free(p);
}

static sched_policy *make_late(const char *name, double aging_s, sched_late late,
                               sched_rtlm_rank rank) {
    sched_config c;
    sched_config_defaults(&c);
    c.rtlm_rank = rank;
    c.aging_s = aging_s;
    c.tpot_s = 0.01;
    c.prefill_weight = 0;
    c.late_policy = late;
    sched_policy *p = sched_policy_new(name, &c);
    assert_non_null(p);
    return p;
}

/* Under either rank (the deadline slack uses the p90 rule under both). */
static void test_rtlm_deadlines_and_aging(void **state) {
    sched_rtlm_rank rank = rank_of(state);
    /* demote: 0.01 s per token */
    sched_policy *p = make_late("rtlm", 10, SCHED_LATE_DEMOTE, rank);
    double now = 5.0;
    /* 0: long (2 s of work), deadline in 2.5 s: slack 0.5 < work, urgent -> ranks by slack 0.5.
     * 1: 0.8 s of work, no deadline. 2: short but its deadline has passed: behind everyone. */
    sched_info q[3] = {req(0, 4.0, 200, 210), req(1, 4.5, 80, 90), req(2, 3.0, 5, 6)};
    q[0].deadline_s = now + 2.5;
    q[2].deadline_s = now - 0.1;
    expect_order(p, q, 3, now, (uint64_t[]){0, 1, 2});
    /* aging beats even the hopeless penalty: after 10 s of waiting, 2 is first (0's deadline
     * has passed by then too, so it is behind 1) */
    expect_order(p, q, 3, 13.0, (uint64_t[]){2, 1, 0});
    assert_false(p->should_drop(p, &q[2], now)); /* demoted, not dropped */
    sched_policy_free(p);
}

/* --late-policy on rtlm: where a request that can no longer make its deadline goes (under
 * either rank). */
static void test_rtlm_late_policy(void **state) {
    sched_rtlm_rank rank = rank_of(state);
    double now = 5.0;
    /* 0: 0.5 s of work, no deadline. 1: 0.3 s of work, deadline passed (late). 2: 1 s of work,
     * no deadline. All arrived at 4.9 (aging 1000 s: negligible). */
    sched_info q[3] = {req(0, 4.9, 50, 55), req(1, 4.9, 30, 33), req(2, 4.9, 100, 110)};
    q[0].id = 0;
    q[1].deadline_s = now - 0.1;
    /* keep (the default): by its work, as if it had no deadline -> between nothing and 0 */
    sched_policy *p = make_r("rtlm", 1000, rank);
    expect_order(p, q, 3, now, (uint64_t[]){1, 0, 2});
    assert_false(p->should_drop(p, &q[1], now));
    sched_policy_free(p);
    /* keep also for a deadline that is only just out of reach (slack -0.01 s) */
    sched_info q2[3] = {q[0], q[1], q[2]};
    q2[1].deadline_s = now + 0.29;
    p = make_late("rtlm", 1000, SCHED_LATE_KEEP, rank);
    expect_order(p, q2, 3, now, (uint64_t[]){1, 0, 2});
    sched_policy_free(p);
    /* demote: behind everything that can still make it (or has no deadline) */
    p = make_late("rtlm", 1000, SCHED_LATE_DEMOTE, rank);
    expect_order(p, q, 3, now, (uint64_t[]){0, 2, 1});
    expect_order(p, q2, 3, now, (uint64_t[]){0, 2, 1});
    assert_false(p->should_drop(p, &q[1], now));
    sched_policy_free(p);
    /* drop: a waiting late request is dropped; a running one, or one that can make it, not */
    p = make_late("rtlm", 1000, SCHED_LATE_DROP, rank);
    assert_true(p->should_drop(p, &q[1], now));
    assert_true(p->should_drop(p, &q2[1], now));
    assert_false(p->should_drop(p, &q[0], now)); /* no deadline */
    sched_info ok = q[1];
    ok.deadline_s = now + 1.0; /* 0.3 s of work: can make it */
    assert_false(p->should_drop(p, &ok, now));
    sched_info run = q[1];
    run.running = 1;
    assert_false(p->should_drop(p, &run, now));
    sched_policy_free(p);
    /* names */
    sched_late l;
    assert_int_equal(sched_late_parse("keep", &l), 0);
    assert_int_equal(l, SCHED_LATE_KEEP);
    assert_int_equal(sched_late_parse("demote", &l), 0);
    assert_int_equal(l, SCHED_LATE_DEMOTE);
    assert_int_equal(sched_late_parse("drop", &l), 0);
    assert_int_equal(l, SCHED_LATE_DROP);
    assert_int_equal(sched_late_parse("Drop", &l), -1);
    assert_int_equal(sched_late_parse(NULL, &l), -1);
    assert_string_equal(sched_late_name(SCHED_LATE_DEMOTE), "demote");
    sched_config c;
    sched_config_defaults(&c);
    assert_int_equal(c.late_policy, SCHED_LATE_KEEP);
}

/* The hard wait bound (sched_bound.c): when a request is overdue and which running request
 * makes room for it. */
static void test_wait_bound(void **state) {
    sched_rtlm_rank rank = rank_of(state);
    sched_policy *p = make("spf", 20); /* bound 20 s: overdue from 19 s (5% guard) */
    assert_true(p->wait_bound_s == 20);
    sched_info w = req(0, 0.0, 100, 110);
    w.waited_s = 18.9;
    assert_false(sched_overdue(p, &w));
    w.waited_s = 19.0;
    assert_true(sched_overdue(p, &w));
    /* the guard grows with the step time: two steps of 0.5 s -> overdue from 18 s */
    w.step_s = 0.5;
    w.waited_s = 18.2;
    assert_true(sched_overdue(p, &w));
    assert_true(sched_overdue_at(p, &w) > 17.99 && sched_overdue_at(p, &w) < 18.01);
    w.running = 1; /* a running request is never overdue */
    assert_false(sched_overdue(p, &w));
    /* fcfs has no bound */
    sched_policy *f = sched_fcfs_new();
    assert_non_null(f);
    assert_true(f->wait_bound_s == 0);
    w.running = 0;
    w.waited_s = 1e6;
    assert_false(sched_overdue(f, &w));
    sched_info one = req(1, 0, 10, 10);
    one.running = one.pausable = one.steps_run = 1;
    assert_int_equal(sched_pick_overdue_victim(f, &one, 1, 0), -1);
    sched_policy_free(f);
    /* every other policy takes the bound from aging_s */
    const char *names[] = {"priority", "laxity", "rtlm", "oracle"};
    for (int i = 0; i < 4; i++) {
        sched_policy *o = make_r(names[i], 7, rank);
        assert_true(o->wait_bound_s == 7);
        sched_policy_free(o);
    }

    /* the victim: spf's own (the most work left) among those that may be paused */
    sched_info run[4] = {req(10, 1, 300, 300), req(11, 2, 400, 400), req(12, 3, 50, 50),
                         req(13, 4, 500, 500)};
    for (int i = 0; i < 4; i++) {
        run[i].running = 1;
        run[i].pausable = 1;
        run[i].steps_run = 1; /* the ratio and minimum run of sched_pick_pause do not apply */
    }
    run[3].pausable = 0;       /* prefilling or split: cannot be paused */
    assert_int_equal(sched_pick_overdue_victim(p, run, 4, 25.0), 1);
    run[1].waited_s = 18.5; /* itself nearly overdue (within a guard of 19 s): spared */
    assert_int_equal(sched_pick_overdue_victim(p, run, 4, 25.0), 0);
    run[0].steps_run = 0; /* not run a step since its admission */
    assert_int_equal(sched_pick_overdue_victim(p, run, 4, 25.0), 2);
    run[2].pausable = 0;
    assert_int_equal(sched_pick_overdue_victim(p, run, 4, 25.0), -1);
    sched_policy_free(p);

    /* priority's victim is the lowest priority, the bound does not change that */
    sched_policy *pr = make("priority", 20);
    sched_info pr_run[3] = {req(20, 1, 10, 10), req(21, 2, 10, 10), req(22, 3, 10, 10)};
    for (int i = 0; i < 3; i++) {
        pr_run[i].running = pr_run[i].pausable = pr_run[i].steps_run = 1;
        pr_run[i].priority = 5 - i;
    }
    assert_int_equal(sched_pick_overdue_victim(pr, pr_run, 3, 30.0), 2);
    sched_policy_free(pr);

    /* sched_pick_pause (the policy's own preemption) spares a request that has waited half its
     * way to being overdue */
    sched_config c;
    sched_config_defaults(&c); /* ratio 2, min 8 steps, aging 20 s */
    c.rtlm_rank = rank;
    sched_policy *rt = sched_policy_new("rtlm", &c);
    assert_non_null(rt);
    sched_info rr[2] = {req(30, 10.0, 200, 210), req(31, 10.0, 300, 310)};
    for (int i = 0; i < 2; i++) {
        rr[i].running = rr[i].pausable = 1;
        rr[i].steps_run = 20;
    }
    sched_info sw = req(32, 11.0, 10, 12);
    assert_int_equal(sched_pick_pause(rt, rr, 2, &sw, 12.0), 1);
    rr[1].waited_s = 10.0; /* >= half of 19 s */
    assert_int_equal(sched_pick_pause(rt, rr, 2, &sw, 12.0), 0);
    sched_policy_free(rt);
}

static void test_offload(void **state) {
    (void)state;
    /* primary: fast (20 ms/step), 8 slots, full, 16 waiting with 100 predicted tokens each */
    sched_worker_load w[2] = {
        {.running = 8,
         .waiting = 16,
         .max_running = 8,
         .step_s = 0.02,
         .waiting_tokens = 1600,
         .running_left_tokens = 400},
        {.running = 1, .waiting = 0, .max_running = 4, .step_s = 0.05},
    };
    /* primary delay: (1600 + 400) / 8 * 0.02 = 5 s; secondary: free slot, 0 s */
    assert_true(sched_offload_delay(&w[0]) > 4.99 && sched_offload_delay(&w[0]) < 5.01);
    assert_true(sched_offload_delay(&w[1]) == 0);
    /* 50 tokens, deadline 4 s: primary 5 + 1 = 6 s misses, secondary 2.5 s meets -> 1 */
    assert_int_equal(sched_offload_pick(w, 2, 4.0, 50), 1);
    /* no deadline: the primary keeps it */
    assert_int_equal(sched_offload_pick(w, 2, 0, 50), 0);
    /* a generous deadline the primary meets: primary */
    assert_int_equal(sched_offload_pick(w, 2, 7.0, 50), 0);
    /* a deadline nobody meets (1 s; secondary needs 2.5 s): primary */
    assert_int_equal(sched_offload_pick(w, 2, 1.0, 50), 0);
    /* one worker only: always 0 */
    assert_int_equal(sched_offload_pick(w, 1, 4.0, 50), 0);
    /* a quiet primary is always preferred */
    sched_worker_load quiet[2] = {{.running = 2, .max_running = 8, .step_s = 0.02}, w[1]};
    assert_int_equal(sched_offload_pick(quiet, 2, 4.0, 50), 0);
    /* a busy secondary that would also miss is not used: 3 workers, the third can make it */
    sched_worker_load three[3] = {
        w[0],
        {.running = 4,
         .waiting = 10,
         .max_running = 4,
         .step_s = 0.05,
         .waiting_tokens = 1000,
         .running_left_tokens = 200},
        {.running = 0, .max_running = 2, .step_s_guess = 0.04},
    };
    assert_int_equal(sched_offload_pick(three, 3, 4.0, 50), 2);
}


/* Preemption (sched_pick_pause): a much shorter waiting request pauses the running sequence
 * with the most remaining work; hysteresis, the minimum run and the aging bound hold it back;
 * non-preemptive policies never pause. */
static sched_info running(uint64_t id, double arrival, int p50, int p90, int generated) {
    sched_info r = req(id, arrival, p50, p90);
    r.running = 1;
    r.pausable = 1;
    r.steps_run = 100;
    r.n_generated = generated;
    return r;
}

static void test_pause_decision(void **state) {
    (void)state;
    sched_config c;
    sched_config_defaults(&c); /* ratio 2, min 8 steps, aging 20 s */
    sched_policy *spf = sched_policy_new("spf", &c);
    assert_non_null(spf);
    /* remaining: 290, 40, 95; the first slot frees after 40 */
    sched_info run[3] = {running(10, 1.0, 300, 320, 10), running(11, 2.0, 50, 60, 10),
                         running(12, 3.0, 100, 110, 5)};
    sched_info w = req(0, 4.0, 15, 30); /* 15 + 0.02 x 10 prompt tokens */
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 5.0), 0); /* the longest */
    /* benefit and hysteresis: 25.2 is shorter than the longest (290) but 2 x 25.2 is not
     * shorter than the wait for the first slot (40): no pause */
    w = req(0, 4.0, 25, 30);
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 5.0), -1);
    /* the longest just (re)admitted: it keeps running for min steps; the next longest goes */
    w = req(0, 4.0, 15, 30);
    run[0].steps_run = 3;
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 5.0), 2);
    run[0].steps_run = 100;
    /* the aging bound: a request older than aging_s is never displaced */
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 21.5), 2);
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 23.5), -1); /* 12 too is over 20 s */
    /* not pausable (prefilling, split): skipped */
    run[0].pausable = 0;
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 5.0), 2);
    run[0].pausable = 1;
    sched_policy_free(spf);

    /* preempt_ratio 0: non-preemptive */
    c.preempt_ratio = 0;
    spf = sched_policy_new("spf", &c);
    assert_int_equal(sched_pick_pause(spf, run, 3, &w, 5.0), -1);
    sched_policy_free(spf);

    /* fcfs, priority, laxity never pause */
    const char *np[] = {"fcfs", "priority", "laxity"};
    for (int i = 0; i < 3; i++) {
        sched_policy *p = sched_policy_new(np[i], NULL);
        assert_non_null(p);
        assert_null(p->remaining);
        assert_int_equal(sched_pick_pause(p, run, 3, &w, 5.0), -1);
        sched_policy_free(p);
    }

    /* rtlm (rank p90): a wide prediction counts on p90 */
    sched_config_defaults(&c);
    c.rtlm_rank = SCHED_RTLM_P90;
    sched_policy *rt = sched_policy_new("rtlm", &c);
    sched_info r2[2] = {running(20, 1.0, 40, 50, 10),   /* narrow: 30 left */
                        running(21, 2.0, 20, 200, 10)}; /* wide: 190 left on p90 */
    w = req(0, 4.0, 10, 12);
    assert_int_equal(sched_pick_pause(rt, r2, 2, &w, 5.0), 1);
    /* spf reads p50 (10 left): the first slot frees too soon to pause anyone */
    spf = sched_policy_new("spf", &c);
    assert_int_equal(sched_pick_pause(spf, r2, 2, &w, 5.0), -1);
    sched_policy_free(spf);
    /* demoted (100 generated, past its p90 of 25): expected to run as long again, 100 left */
    r2[0] = running(20, 1.0, 60, 70, 10); /* 50 left */
    r2[1] = running(21, 2.0, 20, 25, 100);
    assert_true(sched_demoted(&r2[1]));
    assert_int_equal(sched_pick_pause(rt, r2, 2, &w, 5.0), 1);
    sched_policy_free(rt);

    /* oracle: true lengths */
    sched_policy *or = sched_policy_new("oracle", &c);
    sched_info r3[2] = {running(30, 1.0, 5, 5, 10), running(31, 2.0, 5, 5, 10)};
    r3[0].true_tokens = 400;
    r3[1].true_tokens = 100;
    w = req(0, 4.0, 300, 300);
    w.true_tokens = 10;
    assert_int_equal(sched_pick_pause(or, r3, 2, &w, 5.0), 0);
    r3[1].true_tokens = 25; /* 15 left: the first slot frees almost as soon */
    assert_int_equal(sched_pick_pause(or, r3, 2, &w, 5.0), -1);
    sched_policy_free(or);
}

int main(void) {
    static const sched_rtlm_rank rank_gittins = SCHED_RTLM_GITTINS;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_fcfs),
        cmocka_unit_test(test_priority),      cmocka_unit_test(test_spf_order_and_victim),
        cmocka_unit_test(test_spf_aging),     cmocka_unit_test(test_oracle),
        cmocka_unit_test(test_laxity),        cmocka_unit_test(test_rtlm_uncertainty),
        cmocka_unit_test(test_rtlm_demotion), cmocka_unit_test(test_rtlm_deadlines_and_aging),
        cmocka_unit_test(test_offload),       cmocka_unit_test(test_pause_decision),
        cmocka_unit_test(test_rtlm_late_policy), cmocka_unit_test(test_wait_bound),
        /* the same under rtlm's Gittins rank */
        cmocka_unit_test_prestate(test_rtlm_deadlines_and_aging, (void *)&rank_gittins),
        cmocka_unit_test_prestate(test_rtlm_late_policy, (void *)&rank_gittins),
        cmocka_unit_test_prestate(test_wait_bound, (void *)&rank_gittins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
