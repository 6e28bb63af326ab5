/* test_vclock.c — the virtual clock (docs/scheduling.md "Simulator"): an injected clock drives
 * the engine's decisions and times (a deadline drop fires at the injected time, queue time and
 * event times come from it, the policies' step-time EWMA is the modelled step); engine_start
 * refuses an injected clock; the virtual driver's makespan is the modelled steps plus the idle
 * gaps, and its runs are bit-identical twice and with 1 or 2 kernel threads; the step-model
 * fitter recovers known coefficients from synthetic step lines; bad params files and bad trace
 * lines give FILE:LINE errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/engine_util.h"
#include "weft/engine.h"
#include "workload/step_model.h"
#include "workload/vclock.h"

static weft_model *g_model;

static int setup(void **state) {
    (void)state;
    g_model = tu_synth_model("vclock.gguf", "test-gqa", WEFT_F32, 5);
    return g_model ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    model_free(g_model);
    return 0;
}

/* ---- a fake clock the test sets by hand; each step adds step_s ---- */

typedef struct fake_clock {
    double now, step_s;
    int steps;
} fake_clock;

static double fake_now(void *ctx) {
    return ((fake_clock *)ctx)->now;
}
static void fake_step(void *ctx, const engine_step_shape *sh) {
    fake_clock *f = ctx;
    assert_true(sh->n_seqs >= 1 && sh->n_tokens >= sh->n_seqs && sh->kv_tokens >= sh->n_tokens);
    f->now += f->step_s;
    f->steps++;
}

#define MAXEV 4096
typedef struct evlog {
    int n;
    int type[MAXEV], fin[MAXEV];
    uint64_t id[MAXEV];
    double t[MAXEV], queue_s[MAXEV];
} evlog;

static void on_event(void *ctx, const engine_event *ev) {
    evlog *l = ctx;
    assert_true(l->n < MAXEV);
    l->type[l->n] = ev->type;
    l->id[l->n] = ev->id;
    l->t[l->n] = ev->t_s;
    l->fin[l->n] = ev->type == ENGINE_EV_FINISHED ? (int)ev->finish : -1;
    l->queue_s[l->n] = ev->queue_s;
    l->n++;
}

static engine_config config(const char *policy, const sched_config *sc, int threads) {
    engine_config c;
    engine_config_defaults(&c);
    c.kv.block_tokens = 16;
    c.kv.max_seq_len = 256;
    c.kv.capacity_tokens = 4096;
    c.max_batch_tokens = 64;
    c.max_running = 2;
    c.n_threads = threads;
    c.policy = sched_policy_new(policy, sc);
    assert_non_null(c.policy);
    return c;
}

static engine_request request(evlog *l, uint64_t id, int n_prompt, int max_tokens) {
    static int32_t prompt[64]; /* engine_submit copies the prompt */
    engine_request q = tu_greedy_request(id, prompt, n_prompt, max_tokens, on_event, l);
    q.predicted_tokens = max_tokens;
    return q;
}

/* Index of request id's FINISHED event in l, -1 if none. */
static int finished_at(const evlog *l, uint64_t id) {
    for (int i = 0; i < l->n; i++)
        if (l->id[i] == id && l->type[i] == ENGINE_EV_FINISHED) return i;
    return -1;
}

/* A request with a 1 s deadline is dropped (laxity, late policy drop) when the injected clock
 * says 5 s have passed, though only microseconds of wall time did; at injected time 0 it runs. */
static void test_injected_clock_drives_deadline_drop(void **state) {
    (void)state;
    for (int jump = 0; jump <= 1; jump++) {
        evlog *l = calloc(1, sizeof *l);
        assert_non_null(l);
        fake_clock fc = {0, 0.01, 0};
        sched_config sc;
        sched_config_defaults(&sc);
        sc.late_policy = SCHED_LATE_DROP;
        engine_config c = config("laxity", &sc, 1);
        c.clock = (engine_clock_source){&fc, fake_now, fake_step};
        engine *e = tu_engine_new(g_model, &c);
        engine_request q = request(l, 1, 8, 5);
        q.deadline_ms = 1000;
        tu_submit(e, &q);
        if (jump) fc.now = 5.0;
        for (int i = 0; i < 20; i++)
            tu_step(e);
        engine_stats st;
        engine_get_stats(e, &st);
        engine_free(e);
        int at = finished_at(l, 1);
        assert_true(at >= 0);
        if (jump) {
            assert_int_equal(l->fin[at], ENGINE_FINISH_DEADLINE);
            assert_int_equal(st.requests_dropped, 1);
            assert_int_equal(fc.steps, 0); /* nothing ran */
            assert_true(l->t[at] == 5.0);
        } else {
            assert_int_equal(l->fin[at], ENGINE_FINISH_LENGTH);
            assert_int_equal(st.requests_dropped, 0);
            /* 5 tokens: one prefill step, then 4 decode steps, each 0.01 injected seconds */
            assert_int_equal(fc.steps, 5);
            assert_true(fabs(l->t[at] - 0.05) < 1e-12);
        }
        free(l);
    }
}

/* Queue time, event times and the policies' step-time EWMA come from the injected clock. */
static void test_injected_clock_times(void **state) {
    (void)state;
    evlog *l = calloc(1, sizeof *l);
    assert_non_null(l);
    fake_clock fc = {1.0, 0.25, 0};
    engine_config c = config("fcfs", NULL, 1);
    c.clock = (engine_clock_source){&fc, fake_now, fake_step};
    engine *e = tu_engine_new(g_model, &c);
    assert_true(engine_now_s(e) == 1.0);
    engine_request q = request(l, 7, 8, 3);
    tu_submit(e, &q);
    fc.now = 3.5; /* it waited 2.5 s before the first step */
    for (int i = 0; i < 10; i++)
        tu_step(e);
    engine_stats st;
    engine_get_stats(e, &st);
    engine_free(e);
    int at = finished_at(l, 7);
    assert_true(at >= 0);
    assert_true(l->queue_s[at] == 2.5);
    assert_int_equal(l->type[0], ENGINE_EV_TOKEN); /* first token at the end of its step */
    assert_true(l->t[0] == 3.75);
    assert_true(l->t[at] == 3.5 + 3 * 0.25);
    assert_true(fabs(st.step_s_ewma - 0.25) < 1e-12);
    assert_true(fabs(st.time_forward_s - 0.75) < 1e-12);
    free(l);
}

static void test_engine_start_refuses_injected_clock(void **state) {
    (void)state;
    fake_clock fc = {0, 0.01, 0};
    engine_config c = config("fcfs", NULL, 1);
    c.clock = (engine_clock_source){&fc, fake_now, fake_step};
    engine *e = tu_engine_new(g_model, &c);
    weft_err err = {{0}};
    assert_int_equal(engine_start(e, &err), -1);
    assert_non_null(strstr(err.msg, "synchronous engine_step"));
    engine_free(e);
}

/* ---- the virtual driver ---- */

typedef struct drive_ctx {
    evlog *l;
    int n_prompt[32], max_tokens[32];
} drive_ctx;

static int submit_one(void *vctx, engine *e, int i) {
    drive_ctx *d = vctx;
    engine_request q = request(d->l, (uint64_t)i, d->n_prompt[i], d->max_tokens[i]);
    tu_submit(e, &q);
    return 0;
}

/* Runs 12 requests (bursts and an idle gap) under rtlm with the model in p; fills l. */
static void drive(const stepm_params *p, int threads, evlog *l, vclock *vc) {
    drive_ctx d = {l, {0}, {0}};
    double arr[12];
    for (int i = 0; i < 12; i++) {
        d.n_prompt[i] = 4 + (i * 7) % 40;
        d.max_tokens[i] = 3 + (i * 13) % 29;
        arr[i] = i < 6 ? 0.02 * i : 10.0 + 0.05 * i; /* a gap of several seconds after 6 */
    }
    vclock_init(vc, p);
    engine_config c = config("rtlm", NULL, threads);
    c.clock = vclock_source(vc);
    engine *e = tu_engine_new(g_model, &c);
    weft_err err = {{0}};
    int rc = vclock_run(vc, e, 12, arr, submit_one, &d, &err);
    if (rc) fprintf(stderr, "vclock_run: %s\n", err.msg);
    assert_int_equal(rc, 0);
    engine_stats st;
    engine_get_stats(e, &st);
    assert_int_equal(st.requests_finished, 12);
    assert_int_equal(st.steps, vc->steps);
    engine_free(e);
}

static void test_virtual_makespan_is_steps_plus_idle(void **state) {
    (void)state;
    stepm_params p = {{0}};
    p.coef[STEPM_CONST] = 20; /* 20 ms per step, whatever its shape */
    evlog *l = calloc(1, sizeof *l);
    assert_non_null(l);
    vclock vc;
    drive(&p, 1, l, &vc);
    assert_true(vc.steps > 0);
    assert_true(fabs(vc.busy_s - 0.020 * (double)vc.steps) < 1e-9);
    assert_true(vc.idle_s > 5.0); /* the gap before the second burst */
    assert_true(fabs(vc.now - (vc.busy_s + vc.idle_s)) < 1e-9);
    double last = 0;
    for (int i = 0; i < l->n; i++)
        if (l->t[i] > last) last = l->t[i];
    assert_true(last == vc.now); /* the last event ends the last step */
    free(l);
}

static void test_virtual_run_deterministic(void **state) {
    (void)state;
    stepm_params p = {{0}};
    p.coef[STEPM_CONST] = 7.5;
    p.coef[STEPM_SEQS] = 1.25;
    p.coef[STEPM_TOKENS] = 0.3;
    p.coef[STEPM_KV] = 0.001;
    evlog *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b), *c = calloc(1, sizeof *c);
    assert_true(a && b && c);
    vclock va, vb, vcc;
    drive(&p, 1, a, &va);
    drive(&p, 1, b, &vb);
    drive(&p, 2, c, &vcc);
    for (const evlog *x = b; x; x = x == b ? c : NULL) {
        assert_int_equal(a->n, x->n);
        assert_memory_equal(a->type, x->type, sizeof(int) * (size_t)a->n);
        assert_memory_equal(a->id, x->id, sizeof(uint64_t) * (size_t)a->n);
        assert_memory_equal(a->t, x->t, sizeof(double) * (size_t)a->n);
        assert_memory_equal(a->queue_s, x->queue_s, sizeof(double) * (size_t)a->n);
    }
    assert_true(va.now == vb.now && va.now == vcc.now);
    free(a);
    free(b);
    free(c);
}

/* ---- the step model ---- */

static void test_fit_recovers_known_params(void **state) {
    (void)state;
    const double truth[STEPM_N_TERMS] = {12.5, 0.8, 0.35, 0.9, 0.0004};
    stepm_params tp = {{0}};
    memcpy(tp.coef, truth, sizeof truth);
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    len += (size_t)snprintf(text + len, cap - len, "run synth fused paged fcfs\n");
    unsigned x = 12345;
    for (int i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;
        engine_step_shape sh = {0};
        sh.n_seqs = 1 + (int)((x >> 8) % 4);
        int prefill = (x >> 12) % 5 == 0 ? 1 + (int)((x >> 16) % 120) : 0;
        sh.n_prefill = prefill;
        sh.n_tokens = sh.n_seqs - (prefill > 0) + prefill;
        sh.kv_tokens = sh.n_tokens + (int64_t)((x >> 4) % 4000) + 20 * prefill;
        double t = 1e3 * stepm_eval_s(&tp, &sh);
        if (i % 97 == 0) t *= 3; /* an outlier: the trimmed refit ignores it */
        len += (size_t)snprintf(text + len, cap - len, "admit 0.1 %d 8 0 5 9\n", i);
        len += (size_t)snprintf(text + len, cap - len, "step %.4f %d %d 0 %.3f %d %lld %.6f\n",
                                0.01 * i, sh.n_seqs, sh.n_tokens, t, sh.n_prefill,
                                (long long)sh.kv_tokens, t);
        assert_true(len < cap - 200);
    }
    stepm_trace t = {0};
    weft_err err = {{0}};
    assert_int_equal(stepm_trace_parse(text, "synth.trace", &t, &err), 0);
    assert_int_equal(t.n, 2000);
    assert_int_equal(t.n_runs, 1);
    stepm_params fit;
    stepm_fit_info fi;
    assert_int_equal(stepm_fit(t.v, t.n, (1u << STEPM_N_TERMS) - 1, &fit, &fi, &err), 0);
    for (int i = 0; i < STEPM_N_TERMS; i++)
        assert_true(fabs(fit.coef[i] - truth[i]) <= 1e-4 * fabs(truth[i]));
    assert_true(fi.n_used < fi.n_steps); /* the outliers were trimmed */
    assert_true(fi.median_abs_err_pct < 1e-3);
    /* a term that is zero in every step cannot be fitted, and says so */
    for (int i = 0; i < t.n; i++)
        t.v[i].sh.n_prefill = 0;
    assert_int_equal(stepm_fit(t.v, t.n, (1u << STEPM_N_TERMS) - 1, &fit, &fi, &err), -1);
    assert_non_null(strstr(err.msg, "'prefill' is zero in every step"));
    stepm_trace_free(&t);
    free(text);
}

static void expect_params_error(const char *text, const char *want) {
    stepm_params p;
    weft_err err = {{0}};
    assert_int_equal(stepm_parse(text, "m.params", &p, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("got '%s', want '%s'", err.msg, want);
}

static void expect_trace_error(const char *text, const char *want) {
    stepm_trace t = {0};
    weft_err err = {{0}};
    assert_int_equal(stepm_trace_parse(text, "x.trace", &t, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("got '%s', want '%s'", err.msg, want);
    stepm_trace_free(&t);
}

static void test_bad_params_and_traces(void **state) {
    (void)state;
    stepm_params p;
    weft_err err = {{0}};
    assert_int_equal(stepm_parse("# c\nstepm 1\nconst 2.5 # ms\n\nkv 1e-4\n", "ok", &p, &err), 0);
    assert_true(p.coef[STEPM_CONST] == 2.5 && p.coef[STEPM_KV] == 1e-4 && p.coef[STEPM_SEQS] == 0);
    expect_params_error("const 1\n", "m.params:1: the first line must be 'stepm 1'");
    expect_params_error("stepm 2\nconst 1\n", "m.params:1: the first line must be 'stepm 1'");
    expect_params_error("stepm 1\nconst 1\nwarp 3\n", "m.params:3: unknown term 'warp'");
    expect_params_error("stepm 1\nconst 1\nconst 2\n", "m.params:3: term 'const' given twice");
    expect_params_error("stepm 1\n\nseqs 1x\n", "m.params:3: term 'seqs': '1x' is not a finite");
    expect_params_error("stepm 1\nkv nan\n", "m.params:2: term 'kv': 'nan' is not a finite");
    expect_params_error("stepm 1\nconst\n", "m.params:2: expected 'NAME VALUE'");
    expect_params_error("stepm 1\nconst 1 2\n", "m.params:2: expected 'NAME VALUE'");
    expect_params_error("# nothing\n", "m.params: empty");
    expect_params_error("stepm 1\n", "m.params: no terms");
    assert_int_equal(stepm_load("/nonexistent/x.params", &p, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.params: "));

    expect_trace_error("run a\nstep 0.1 2 2 0 3.5\n",
                       "x.trace:2: step line has 5 fields; stepfit needs 8");
    expect_trace_error("step 0.1 2 2 0 3.5 0 10 4\nbogus 1 2\n",
                       "x.trace:2: unknown trace line kind 'bogus'");
    expect_trace_error("step 0.1 2 2 0 3.5 0 1O 4\n", "x.trace:1: step field 7 (KV_TOKENS): '1O'");
    expect_trace_error("step 0.1 2 2 0 -3 0 10 4\n", "x.trace:1: step field 5 (FORWARD_MS)");
    expect_trace_error("step 0.1 2 2 0 3 0 10 4 9\n", "x.trace:1: step line has more than 8");
    expect_trace_error("step 0.1 3 2 0 3 0 10 4\n", "x.trace:1: inconsistent step shape");
    unsigned mask;
    assert_int_equal(stepm_terms_parse("const,seqs,kv", &mask, &err), 0);
    assert_int_equal(mask, (1u << STEPM_CONST) | (1u << STEPM_SEQS) | (1u << STEPM_KV));
    assert_int_equal(stepm_terms_parse("const,foo", &mask, &err), -1);
    assert_non_null(strstr(err.msg, "unknown term 'foo'"));
}

/* The params file the fitter writes reads back to the same coefficients. */
static void test_params_roundtrip(void **state) {
    (void)state;
    stepm_params p = {{0}}, q;
    p.coef[STEPM_CONST] = 31.25;
    p.coef[STEPM_TOKENS] = 0.123456789;
    p.coef[STEPM_KV] = -2.5e-5;
    char path[512];
    tu_scratch("vclock.params", path, sizeof path);
    weft_err err = {{0}};
    assert_int_equal(stepm_save(path, &p, 1u << STEPM_SEQS, "a header\nsecond line", &err), 0);
    assert_int_equal(stepm_load(path, &q, &err), 0);
    for (int i = 0; i < STEPM_N_TERMS; i++)
        assert_true(fabs(p.coef[i] - q.coef[i]) <= 1e-12 * fabs(p.coef[i]));
    /* never shorter than STEPM_MIN_S, even when the terms add up to less */
    engine_step_shape sh = {.n_seqs = 1, .n_tokens = 1, .kv_tokens = 2000000};
    assert_true(stepm_eval_s(&q, &sh) == STEPM_MIN_S);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_injected_clock_drives_deadline_drop),
        cmocka_unit_test(test_injected_clock_times),
        cmocka_unit_test(test_engine_start_refuses_injected_clock),
        cmocka_unit_test(test_virtual_makespan_is_steps_plus_idle),
        cmocka_unit_test(test_virtual_run_deterministic),
        cmocka_unit_test(test_fit_recovers_known_params),
        cmocka_unit_test(test_bad_params_and_traces),
        cmocka_unit_test(test_params_roundtrip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
