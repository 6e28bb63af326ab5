/* test_stop.c — the streaming stop-string matcher: matches split across feeds, released false
 * prefixes, several stop strings, pass-through, flush, and a randomised comparison with a
 * whole-text reference under random feed splits. */
#include "support/testutil.h"
#include "weft/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct run {
    stop_matcher m;
    char text[4096]; /* everything emitted so far */
    size_t n;
} run;

static void run_init(run *r, const char *const *strs, int n) {
    memset(r, 0, sizeof *r);
    assert_int_equal(stop_init(&r->m, strs, n), 0);
}

/* Feeds s, checks the reported length matches the NUL-terminated output, returns that output. */
static const char *feed(run *r, const char *s) {
    static char out[2048];
    size_t k = stop_feed(&r->m, s, strlen(s), out, sizeof out);
    assert_int_equal(k, strlen(out));
    memcpy(r->text + r->n, out, k);
    r->n += k;
    r->text[r->n] = 0;
    return out;
}

static const char *flush(run *r) {
    static char out[2048];
    size_t k = stop_flush(&r->m, out, sizeof out);
    assert_int_equal(k, strlen(out));
    memcpy(r->text + r->n, out, k);
    r->n += k;
    r->text[r->n] = 0;
    return out;
}

static void test_split_across_feeds(void **state) {
    (void)state;
    const char *stops[] = {"<|end|>"};
    run r;
    run_init(&r, stops, 1);
    assert_string_equal(feed(&r, "Hello <"), "Hello ");
    assert_string_equal(feed(&r, "|e"), "");
    assert_string_equal(feed(&r, "n"), "");
    assert_string_equal(feed(&r, "d|"), "");
    assert_false(r.m.stopped);
    assert_string_equal(feed(&r, "> and more"), "");
    assert_true(r.m.stopped);
    assert_string_equal(feed(&r, "ignored"), "");
    assert_string_equal(flush(&r), "");
    assert_string_equal(r.text, "Hello ");
}

static void test_false_prefix_released(void **state) {
    (void)state;
    const char *stops[] = {"STOP"};
    run r;
    run_init(&r, stops, 1);
    assert_string_equal(feed(&r, "ST"), "");
    assert_string_equal(feed(&r, "ART"), "START");
    assert_string_equal(feed(&r, "xS"), "x");
    assert_string_equal(feed(&r, "TO"), "");
    assert_string_equal(feed(&r, "o"), "STOo");
    assert_false(r.m.stopped);
    /* overlapping self-prefix: "aab" inside "aaab" */
    const char *stops2[] = {"aab"};
    run_init(&r, stops2, 1);
    assert_string_equal(feed(&r, "a"), "");
    assert_string_equal(feed(&r, "a"), "");
    assert_string_equal(feed(&r, "a"), "a");
    assert_string_equal(feed(&r, "b"), "");
    assert_true(r.m.stopped);
    assert_string_equal(r.text, "a");
}

static void test_multiple_strings(void **state) {
    (void)state;
    const char *stops[] = {"\n\n", "User:", ""};
    run r;
    run_init(&r, stops, 3);
    assert_int_equal(r.m.n, 2); /* the empty string is ignored */
    assert_string_equal(feed(&r, "ans"), "ans");
    assert_string_equal(feed(&r, "wer\nUs"), "wer\n");
    assert_string_equal(feed(&r, "er: hi"), "");
    assert_true(r.m.stopped);
    assert_string_equal(r.text, "answer\n");
    /* the first to complete wins; of those ending together, the longest */
    const char *stops2[] = {"abcd", "c", "xcd"};
    run_init(&r, stops2, 3);
    assert_string_equal(feed(&r, "zzabcd"), "zzab");
    const char *stops3[] = {"cd", "abcd"};
    run_init(&r, stops3, 2);
    assert_string_equal(feed(&r, "zzabcd"), "zz");
}

static void test_pass_through_and_flush(void **state) {
    (void)state;
    run r;
    run_init(&r, NULL, 0);
    assert_string_equal(feed(&r, "anything <|end|> at all"), "anything <|end|> at all");
    assert_string_equal(flush(&r), "");
    const char *stops[] = {"END"};
    run_init(&r, stops, 1);
    assert_string_equal(feed(&r, "the E"), "the ");
    assert_string_equal(feed(&r, "N"), "");
    assert_string_equal(flush(&r), "EN");
    assert_string_equal(flush(&r), "");
    assert_string_equal(r.text, "the EN");
}

static void test_init_limits(void **state) {
    (void)state;
    stop_matcher m;
    const char *nine[9] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
    assert_int_equal(stop_init(&m, nine, 9), -1);
    assert_int_equal(stop_init(&m, nine, 8), 0);
    char longs[STOP_MAX_LEN + 2];
    memset(longs, 'x', sizeof longs);
    longs[STOP_MAX_LEN + 1] = 0;
    const char *one[1] = {longs};
    assert_int_equal(stop_init(&m, one, 1), -1);
    longs[STOP_MAX_LEN] = 0;
    assert_int_equal(stop_init(&m, one, 1), 0);
    /* a stop string of the maximum length fed one byte at a time */
    char out[2048];
    size_t emitted = 0;
    for (int i = 0; i < STOP_MAX_LEN - 1; i++) emitted += stop_feed(&m, "x", 1, out, sizeof out);
    assert_int_equal(emitted, 0);
    assert_int_equal(m.n_held, STOP_MAX_LEN - 1);
    emitted += stop_feed(&m, "y", 1, out, sizeof out); /* breaks the run: all but none held */
    assert_int_equal(emitted, STOP_MAX_LEN);
}

/* Reference: cut before the stop string that completes first (longest on equal ends). */
static size_t reference_cut(const char *t, size_t n, const char *const *stops, int ns) {
    for (size_t end = 1; end <= n; end++) {
        size_t best = 0;
        for (int i = 0; i < ns; i++) {
            size_t len = strlen(stops[i]);
            if (len <= end && memcmp(t + end - len, stops[i], len) == 0 && len > best) best = len;
        }
        if (best) return end - best;
    }
    return n;
}

static void test_random_against_reference(void **state) {
    (void)state;
    uint64_t x = 12345;
    for (int trial = 0; trial < 3000; trial++) {
        char stops_buf[3][8];
        const char *stops[3];
        int ns = 1 + trial % 3;
        for (int i = 0; i < ns; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            int len = 1 + (int)((x >> 33) % 5);
            for (int j = 0; j < len; j++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                stops_buf[i][j] = (char)('a' + (x >> 33) % 3);
            }
            stops_buf[i][len] = 0;
            stops[i] = stops_buf[i];
        }
        char text[64];
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = 1 + (x >> 33) % 60;
        for (size_t j = 0; j < n; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            text[j] = (char)('a' + (x >> 33) % 4);
        }
        text[n] = 0;
        run r;
        run_init(&r, stops, ns);
        char piece[64];
        for (size_t off = 0; off < n && !r.m.stopped;) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            size_t k = 1 + (x >> 33) % 7;
            if (k > n - off) k = n - off;
            memcpy(piece, text + off, k);
            piece[k] = 0;
            feed(&r, piece);
            off += k;
        }
        flush(&r);
        size_t cut = reference_cut(text, n, stops, ns);
        if (r.n != cut || memcmp(r.text, text, cut) != 0)
            fail_msg("trial %d: text \"%s\" stops %s/%s/%s: got \"%s\", want %zu bytes", trial,
                     text, stops[0], ns > 1 ? stops[1] : "-", ns > 2 ? stops[2] : "-", r.text,
                     cut);
        assert_int_equal(r.m.stopped, cut < n);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_across_feeds),   cmocka_unit_test(test_false_prefix_released),
        cmocka_unit_test(test_multiple_strings),     cmocka_unit_test(test_pass_through_and_flush),
        cmocka_unit_test(test_init_limits),          cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
