/* test_sampler.c — the token sampler: greedy, seeding, temperature, top-k (with a statistical
 * check against softmax), top-p and min-p cut-offs on hand-made distributions, repetition
 * penalty, and degenerate inputs. */
#include "support/testutil.h"
#include "weft/sampler.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V 32000

static weft_sampling plain(float temp) {
    weft_sampling p;
    sampling_defaults(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 42;
    return p;
}

/* Deterministic pseudo-random logits in about [-4, 4]. */
static void random_logits(float *l, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        l[i] = (float)((double)(seed >> 11) * 0x1.0p-53 * 8.0 - 4.0);
    }
}

/* Draws n samples (fresh copy of logits each time) and counts each id. */
static void draw(weft_sampler *s, const float *logits, int nv, int n, int *counts) {
    float *tmp = malloc((size_t)nv * sizeof *tmp);
    assert_non_null(tmp);
    for (int i = 0; i < n; i++) {
        memcpy(tmp, logits, (size_t)nv * sizeof *tmp);
        int id = sampler_sample(s, tmp, NULL, 0);
        assert_true(id >= 0 && id < nv);
        counts[id]++;
    }
    free(tmp);
}

static void test_greedy(void **state) {
    (void)state;
    static float l[V];
    random_logits(l, V, 1);
    l[12345] = 9.0f;
    weft_sampling p = plain(0.0f);
    weft_sampler *s = sampler_new(&p, V);
    assert_non_null(s);
    assert_int_equal(sampler_sample(s, l, NULL, 0), 12345);
    l[777] = 9.0f; /* tie: lowest id */
    assert_int_equal(sampler_sample(s, l, NULL, 0), 777);
    l[5] = NAN; /* NaN never wins */
    assert_int_equal(sampler_sample(s, l, NULL, 0), 777);
    sampler_free(s);
    /* top_k = 1 at temperature 1 is greedy too */
    p = plain(1.0f);
    p.top_k = 1;
    s = sampler_new(&p, V);
    random_logits(l, V, 2);
    l[31999] = 8.0f;
    for (int i = 0; i < 50; i++) assert_int_equal(sampler_sample(s, l, NULL, 0), 31999);
    sampler_free(s);
}

static void test_seed_reproducible(void **state) {
    (void)state;
    static float l[V], tmp[V];
    random_logits(l, V, 3);
    weft_sampling p;
    sampling_defaults(&p);
    p.seed = 1234;
    int seq[3][200];
    for (int run = 0; run < 3; run++) {
        if (run == 2) p.seed = 1235;
        weft_sampler *s = sampler_new(&p, V);
        assert_non_null(s);
        for (int i = 0; i < 200; i++) {
            memcpy(tmp, l, sizeof l);
            seq[run][i] = sampler_sample(s, tmp, NULL, 0);
        }
        sampler_free(s);
    }
    assert_memory_equal(seq[0], seq[1], sizeof seq[0]);
    assert_memory_not_equal(seq[0], seq[2], sizeof seq[0]);
}

static void test_low_temperature_is_greedy(void **state) {
    (void)state;
    static float l[V], tmp[V];
    random_logits(l, V, 4);
    l[4242] = 4.5f; /* clear of the rest by at least 0.5 */
    float temps[] = {1e-3f, 1e-2f, 0.05f};
    for (int k = 0; k < 3; k++) {
        weft_sampling p;
        sampling_defaults(&p);
        p.temperature = temps[k];
        weft_sampler *s = sampler_new(&p, V);
        for (int i = 0; i < 300; i++) {
            memcpy(tmp, l, sizeof l);
            assert_int_equal(sampler_sample(s, tmp, NULL, 0), 4242);
        }
        sampler_free(s);
    }
}

static void test_top_k_statistics(void **state) {
    (void)state;
    static float l[V];
    static int counts[V];
    random_logits(l, V, 5);
    l[100] = 6.0f;
    l[20000] = 5.5f;
    l[300] = 4.2f; /* third: excluded by top_k = 2 */
    weft_sampling p = plain(1.0f);
    p.top_k = 2;
    weft_sampler *s = sampler_new(&p, V);
    memset(counts, 0, sizeof counts);
    const int n = 2000;
    draw(s, l, V, n, counts);
    assert_int_equal(counts[100] + counts[20000], n);
    double want = 1.0 / (1.0 + exp(-0.5)); /* softmax over the two kept */
    double got = (double)counts[100] / n;
    double sd = sqrt(want * (1 - want) / n);
    printf("top_k=2: P(best) observed %.4f expected %.4f (sd %.4f)\n", got, want, sd);
    assert_true(fabs(got - want) < 5 * sd);
    sampler_free(s);

    /* temperature 2 flattens the same pair: exp(-0.25) odds */
    p.temperature = 2.0f;
    s = sampler_new(&p, V);
    memset(counts, 0, sizeof counts);
    draw(s, l, V, n, counts);
    assert_int_equal(counts[100] + counts[20000], n);
    want = 1.0 / (1.0 + exp(-0.25));
    got = (double)counts[100] / n;
    assert_true(fabs(got - want) < 5 * sqrt(want * (1 - want) / n));
    sampler_free(s);
}

/* A five-token distribution 0.5/0.2/0.15/0.1/0.05 at ids 10..14, padded to nv with tokens of
 * negligible mass. */
static void hand_made(float *l, int nv) {
    for (int i = 0; i < nv; i++) l[i] = -40.0f;
    const float pr[5] = {0.5f, 0.2f, 0.15f, 0.1f, 0.05f};
    for (int i = 0; i < 5; i++) l[10 + i] = logf(pr[i]);
}

/* Samples many times and returns the set of ids seen as a bitmask over 10..14 (and -1 if any
 * other id appears). */
static int seen_mask(const weft_sampling *p, int nv, int n) {
    float *l = malloc((size_t)nv * sizeof *l);
    int *counts = calloc((size_t)nv, sizeof *counts);
    assert_non_null(l);
    assert_non_null(counts);
    hand_made(l, nv);
    weft_sampler *s = sampler_new(p, nv);
    assert_non_null(s);
    draw(s, l, nv, n, counts);
    int mask = 0;
    for (int i = 0; i < nv; i++) {
        if (!counts[i]) continue;
        if (i < 10 || i > 14) {
            mask = -1;
            break;
        }
        mask |= 1 << (i - 10);
    }
    sampler_free(s);
    free(counts);
    free(l);
    return mask;
}

static void test_top_p(void **state) {
    (void)state;
    int sizes[2] = {32, V};
    for (int si = 0; si < 2; si++) {
        for (int with_k = 0; with_k < 2; with_k++) { /* full-vocabulary path and top-k path */
            weft_sampling p = plain(1.0f);
            p.top_k = with_k ? 20 : 0;
            p.top_p = 0.69f; /* 0.5 + 0.2 = 0.7 is the smallest set reaching it */
            assert_int_equal(seen_mask(&p, sizes[si], 1500), 0x3);
            p.top_p = 0.71f; /* needs the third */
            assert_int_equal(seen_mask(&p, sizes[si], 1500), 0x7);
            p.top_p = 0.86f; /* 0.85 is not enough: four */
            assert_int_equal(seen_mask(&p, sizes[si], 1500), 0xF);
            p.top_p = 0.3f; /* the first alone */
            assert_int_equal(seen_mask(&p, sizes[si], 500), 0x1);
            p.top_p = 0.0f; /* at least one is always kept */
            assert_int_equal(seen_mask(&p, sizes[si], 500), 0x1);
        }
    }
    /* frequencies within the nucleus follow the renormalised distribution */
    static float l[V];
    static int counts[V];
    hand_made(l, V);
    weft_sampling p = plain(1.0f);
    p.top_p = 0.71f;
    weft_sampler *s = sampler_new(&p, V);
    const int n = 4000;
    draw(s, l, V, n, counts);
    double want = 0.5 / 0.85, got = (double)counts[10] / n;
    assert_true(fabs(got - want) < 5 * sqrt(want * (1 - want) / n));
    sampler_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    weft_sampling p = plain(1.0f);
    p.min_p = 0.25f; /* floor 0.125: 0.5, 0.2, 0.15 pass */
    assert_int_equal(seen_mask(&p, V, 1500), 0x7);
    p.min_p = 0.35f; /* floor 0.175 */
    assert_int_equal(seen_mask(&p, V, 1500), 0x3);
    p.min_p = 0.45f; /* floor 0.225 */
    assert_int_equal(seen_mask(&p, V, 500), 0x1);
    p.min_p = 0.05f; /* floor 0.025: all five, nothing of the padding */
    assert_int_equal(seen_mask(&p, V, 1500), 0x1F);
    /* combined with top-p and top-k: the intersection */
    p.min_p = 0.25f;
    p.top_p = 0.69f;
    p.top_k = 4;
    assert_int_equal(seen_mask(&p, V, 1500), 0x3);
    p.min_p = 2.0f; /* nonsense: falls back to the best token */
    assert_int_equal(seen_mask(&p, V, 200), 0x1);
}

static void test_repetition_penalty(void **state) {
    (void)state;
    weft_sampling p = plain(0.0f);
    p.repeat_penalty = 1.2f;
    p.repeat_last_n = 2;
    weft_sampler *s = sampler_new(&p, 4);
    assert_non_null(s);
    float l[4] = {2.0f, 1.9f, -1.0f, -1.1f};
    int32_t recent[] = {0, 0, 0};
    assert_int_equal(sampler_sample(s, l, recent, 3), 1);
    assert_float_equal(l[0], 2.0f / 1.2f, 1e-6); /* divided once, though seen three times */
    /* outside the window: not penalised */
    float l2[4] = {2.0f, 1.9f, -1.0f, -1.1f};
    int32_t recent2[] = {0, 3, 3};
    assert_int_equal(sampler_sample(s, l2, recent2, 3), 0);
    assert_float_equal(l2[3], -1.1f * 1.2f, 1e-6);
    /* negative logits are multiplied */
    float l3[4] = {-5.0f, -5.0f, -1.0f, -1.1f};
    int32_t recent3[] = {2};
    assert_int_equal(sampler_sample(s, l3, recent3, 1), 3);
    /* out-of-range ids in recent are ignored */
    float l4[4] = {2.0f, 1.9f, -1.0f, -1.1f};
    int32_t recent4[] = {-1, 99};
    assert_int_equal(sampler_sample(s, l4, recent4, 2), 0);
    sampler_free(s);
}

static void test_degenerate(void **state) {
    (void)state;
    weft_sampling p;
    sampling_defaults(&p);
    assert_null(sampler_new(&p, 0));
    assert_null(sampler_new(NULL, 10));
    weft_sampler *s = sampler_new(&p, 3);
    float l[3] = {-INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(sampler_sample(s, l, NULL, 0), 0);
    float l2[3] = {NAN, 1.0f, NAN};
    assert_int_equal(sampler_sample(s, l2, NULL, 0), 1);
    float l3[3] = {0.0f, INFINITY, 0.0f};
    assert_int_equal(sampler_sample(s, l3, NULL, 0), 1);
    sampler_free(s);
    /* top_k larger than the vocabulary, every sampler option at once */
    p.top_k = 100;
    p.repeat_penalty = 1.3f;
    s = sampler_new(&p, 3);
    float l4[3] = {1.0f, 1.0f, 1.0f};
    int32_t recent[] = {0, 1, 2};
    int id = sampler_sample(s, l4, recent, 3);
    assert_true(id >= 0 && id < 3);
    sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy),           cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_low_temperature_is_greedy),
        cmocka_unit_test(test_top_k_statistics), cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),            cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
