/* test_sched_group.c — length grouping for static/dynamic batching (src/sched/sched_group.c) on
 * constructed queues: the head is always in the batch, the rest are the predictions closest to
 * the head's on a log scale (ties in queue order, unknown predictions last), no prediction for the
 * head or room for everyone means queue order, and repeated batches drain a queue without
 * starving anyone: every request is admitted at the latest once everything before it was. And in
 * the real engine (static mode, synthetic test model): with --consolidate the long requests share
 * a batch and the short ones another, which takes fewer steps than queue order. */
#include <stdio.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/engine.h"
#include "weft/sched.h"

static void test_group_nearest_to_head(void **state) {
    (void)state;
    /* head predicts 400 tokens: the other long ones join it, the short ones wait */
    const float pred[] = {400, 20, 350, 25, 500, 30, 1000, 18};
    int chosen[8];
    int k = sched_group_by_length(pred, 8, 3, chosen);
    assert_int_equal(k, 3);
    assert_int_equal(chosen[0], 0); /* the head */
    assert_int_equal(chosen[1], 2); /* 350: |log 351 - log 401| = 0.13 */
    assert_int_equal(chosen[2], 4); /* 500: 0.22 (1000: 0.91, the short ones ~2.7) */
    /* a short head gathers the short ones */
    const float pred2[] = {20, 400, 350, 25, 500, 30, 1000, 18};
    k = sched_group_by_length(pred2, 8, 4, chosen);
    assert_int_equal(k, 4);
    int want[] = {0, 3, 5, 7};
    for (int i = 0; i < 4; i++)
        assert_int_equal(chosen[i], want[i]);
}

static void test_group_ties_unknown_and_fallbacks(void **state) {
    (void)state;
    int chosen[6];
    /* equal distances: queue order; unknown (0) predictions come last */
    const float pred[] = {100, 0, 100, 0, 100, 300};
    int k = sched_group_by_length(pred, 6, 3, chosen);
    assert_int_equal(k, 3);
    assert_int_equal(chosen[0], 0);
    assert_int_equal(chosen[1], 2);
    assert_int_equal(chosen[2], 4);
    k = sched_group_by_length(pred, 6, 5, chosen); /* 300 before the unknown ones */
    int want5[] = {0, 1, 2, 4, 5};
    assert_int_equal(k, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(chosen[i], want5[i]);
    /* head without a prediction: plain queue order */
    const float nohead[] = {0, 5, 500, 5};
    k = sched_group_by_length(nohead, 4, 2, chosen);
    assert_int_equal(k, 2);
    assert_int_equal(chosen[0], 0);
    assert_int_equal(chosen[1], 1);
    /* room for everyone; size larger than the queue; empty queue */
    k = sched_group_by_length(pred, 6, 6, chosen);
    assert_int_equal(k, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(chosen[i], i);
    k = sched_group_by_length(pred, 6, 10, chosen);
    assert_int_equal(k, 6);
    assert_int_equal(sched_group_by_length(pred, 0, 3, chosen), 0);
    assert_int_equal(sched_group_by_length(pred, 6, 0, chosen), 0);
}

/* Drain a queue of alternating long and short requests batch by batch (arrival order = queue
 * order, as under fcfs): batches are homogeneous where the queue allows it, and no request is
 * admitted later than the batch that holds everything queued before it (the starvation bound:
 * with batch size B, request i goes in batch <= i). */
static void test_group_drains_without_starving(void **state) {
    (void)state;
    enum { N = 24, B = 4 };
    int id[N], n = N, batch_of[N];
    float pred[N];
    for (int i = 0; i < N; i++) {
        id[i] = i;
        batch_of[i] = -1;
    }
    int homogeneous = 0;
    for (int b = 0; n > 0; b++) {
        for (int i = 0; i < n; i++)
            pred[i] = id[i] % 2 ? 20.0f + (float)id[i] : 600.0f + (float)id[i];
        int chosen[N];
        int k = sched_group_by_length(pred, n, B, chosen);
        assert_true(k == (n < B ? n : B));
        assert_int_equal(chosen[0], 0);
        int longs = 0;
        for (int j = 0; j < k; j++) {
            batch_of[id[chosen[j]]] = b;
            longs += id[chosen[j]] % 2 == 0;
        }
        homogeneous += longs == 0 || longs == k;
        int m = 0, c = 0; /* remove the chosen (ascending) from the queue */
        for (int i = 0; i < n; i++) {
            if (c < k && chosen[c] == i) {
                c++;
                continue;
            }
            id[m++] = id[i];
        }
        n = m;
    }
    for (int i = 0; i < N; i++) {
        assert_true(batch_of[i] >= 0);
        assert_true(batch_of[i] <= i);
    }
    assert_int_equal(homogeneous, N / B); /* every batch all-long or all-short */
}

/* ---- in the engine ---- */

typedef struct fin_log {
    int order[8]; /* ids in finishing order */
    int n;
} fin_log;

static void on_event(void *ctx, const engine_event *ev) {
    fin_log *f = ctx;
    if (ev->type == ENGINE_EV_FINISHED && f->n < 8) f->order[f->n++] = (int)ev->id;
}

/* Four requests queued at once, batch size 2, true lengths as predictions: long, short, long,
 * short. Returns the steps to finish all; fills the finishing order. */
static int static_run(const weft_model *m, bool consolidate, fin_log *f) {
    engine_config c;
    engine_config_defaults(&c);
    c.mode = ENGINE_STATIC;
    c.max_batch_size = 2;
    c.max_running = 2;
    c.max_batch_tokens = 64;
    c.kv.layout = KV_LAYOUT_PAGED;
    c.kv.block_tokens = 16;
    c.kv.max_seq_len = 128;
    c.kv.capacity_tokens = 1024;
    c.n_threads = 1;
    c.consolidate = consolidate;
    c.policy = sched_fcfs_new();
    assert_non_null(c.policy);
    weft_err err = {{0}};
    engine *e = engine_new(m, &c, &err);
    assert_non_null(e);
    static const int len[4] = {30, 3, 30, 3};
    int32_t prompt[8];
    for (int id = 0; id < 4; id++) {
        for (int i = 0; i < 8; i++)
            prompt[i] = 3 + (int32_t)((id * 13 + i * 5) % 200);
        engine_request q = {0};
        q.id = (uint64_t)id;
        q.prompt = prompt;
        q.n_prompt = 8;
        q.max_tokens = len[id];
        q.predicted_tokens = len[id];
        q.ignore_eos = true;
        sampling_defaults(&q.sampling);
        q.sampling.temperature = 0;
        q.on_event = on_event;
        q.ctx = f;
        assert_int_equal(engine_submit(e, &q, &err), 0);
    }
    int steps = 0;
    while (f->n < 4 && steps < 1000) {
        assert_true(engine_step(e, &err) >= 0);
        steps++;
    }
    assert_int_equal(f->n, 4);
    engine_free(e);
    return steps;
}

static void test_group_in_static_engine(void **state) {
    (void)state;
    weft_model *m = tu_synth_model("sched-group.gguf", "test-gqa", WEFT_F32, 5);
    assert_non_null(m);
    fin_log plain = {0}, grouped = {0};
    int s_plain = static_run(m, false, &plain);
    int s_grouped = static_run(m, true, &grouped);
    printf("static, batch 2, lengths 30 3 30 3: %d steps in queue order, %d grouped\n", s_plain,
           s_grouped);
    /* queue order: {0, 1} then {2, 3}: the short 1 finishes before the long 2 even starts */
    int pos_plain[4], pos_grouped[4];
    for (int i = 0; i < 4; i++) {
        pos_plain[plain.order[i]] = i;
        pos_grouped[grouped.order[i]] = i;
    }
    assert_true(pos_plain[1] < pos_plain[2]);
    /* grouped: {0, 2} (the head and the other long one) first, then {1, 3} */
    assert_true(pos_grouped[0] < 2 && pos_grouped[2] < 2);
    assert_true(pos_grouped[1] >= 2 && pos_grouped[3] >= 2);
    /* two 30-step batches versus one 30-step and one 3-step batch */
    assert_true(s_grouped + 20 < s_plain);
    model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_nearest_to_head),
        cmocka_unit_test(test_group_ties_unknown_and_fallbacks),
        cmocka_unit_test(test_group_drains_without_starving),
        cmocka_unit_test(test_group_in_static_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
