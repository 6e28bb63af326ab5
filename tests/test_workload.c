/* test_workload.c — the benchmark workload library: Poisson gaps (mean, determinism in the seed,
 * λ = 0), trace parsing of small Azure CSV and Mooncake JSONL files written to scratch (time
 * origin and scaling, record caps, malformed lines reported with file:line), the percentile
 * method on known arrays, the run summary and the event collector, pairs data sets (seeded
 * picks, response token counts with an in-memory tokenizer and the shared tok512 one), and
 * whole workloads (shared system prefix, clipping, one record per request). */
#include "support/testutil.h"
#include "workload/arrivals.h"
#include "workload/dataset.h"
#include "workload/lengths.h"
#include "workload/metrics.h"
#include "workload/prompts.h"
#include "workload/rng.h"
#include "workload/workload.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *write_scratch(const char *name, const char *text, char *buf, size_t size) {
    tu_scratch(name, buf, size);
    FILE *f = fopen(buf, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* ---- arrivals ---- */

static void test_poisson_mean_and_seed(void **state) {
    (void)state;
    enum { N = 20001 };
    double *a = malloc(sizeof(double) * N), *b = malloc(sizeof(double) * N);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(wl_poisson_arrivals(N, 0.5, 7, a, NULL), 0);
    assert_true(a[0] == 0.0);
    for (int i = 1; i < N; i++)
        assert_true(a[i] >= a[i - 1]);
    double mean_gap = a[N - 1] / (N - 1);
    assert_true(fabs(mean_gap - 0.5) < 0.5 * 0.03); /* 20000 gaps: sd of the mean is 0.7% */
    /* exponential: the gaps' standard deviation equals their mean */
    double ss = 0;
    for (int i = 1; i < N; i++)
        ss += (a[i] - a[i - 1] - mean_gap) * (a[i] - a[i - 1] - mean_gap);
    assert_true(fabs(sqrt(ss / (N - 2)) - 0.5) < 0.5 * 0.05);
    assert_int_equal(wl_poisson_arrivals(N, 0.5, 7, b, NULL), 0);
    assert_memory_equal(a, b, sizeof(double) * N);
    assert_int_equal(wl_poisson_arrivals(N, 0.5, 8, b, NULL), 0);
    assert_true(memcmp(a, b, sizeof(double) * N) != 0);
    free(a);
    free(b);
}

static void test_poisson_zero_gap(void **state) {
    (void)state;
    double t[16];
    assert_int_equal(wl_poisson_arrivals(16, 0, 3, t, NULL), 0);
    for (int i = 0; i < 16; i++)
        assert_true(t[i] == 0.0);
    weft_err err = {{0}};
    assert_int_equal(wl_poisson_arrivals(4, -1, 3, t, &err), -1);
    assert_non_null(strstr(err.msg, "mean gap"));
    assert_int_equal(wl_poisson_arrivals(4, NAN, 3, t, &err), -1);
}

static void test_rng_range(void **state) {
    (void)state;
    wl_rng r;
    wl_rng_seed(&r, 1);
    int seen[5] = {0};
    for (int i = 0; i < 5000; i++) {
        int64_t v = wl_rng_range(&r, 3, 7);
        assert_true(v >= 3 && v <= 7);
        seen[v - 3]++;
    }
    for (int i = 0; i < 5; i++)
        assert_true(seen[i] > 800 && seen[i] < 1200);
    for (int i = 0; i < 1000; i++) {
        double u = wl_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
    }
}

static void test_trace_azure_csv(void **state) {
    (void)state;
    char path[4096];
    write_scratch("trace.csv",
                  "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                  "2023-11-16 23:59:59.5000000,374,44\n"
                  "2023-11-17 00:00:00.2500000,396,109\n"
                  "\n"
                  "2023-11-17 00:00:02.5,10,1\r\n",
                  path, sizeof path);
    wl_trace t;
    weft_err err = {{0}};
    assert_int_equal(wl_trace_load(path, 1.0, 0, &t, &err), 0);
    assert_int_equal(t.n, 3);
    assert_true(fabs(t.rec[0].t_s) < 1e-9);
    assert_true(fabs(t.rec[1].t_s - 0.75) < 1e-6); /* across midnight */
    assert_true(fabs(t.rec[2].t_s - 3.0) < 1e-6);
    assert_int_equal(t.rec[0].n_input, 374);
    assert_int_equal(t.rec[1].n_output, 109);
    assert_int_equal(t.rec[2].n_output, 1);
    wl_trace_free(&t);
    /* scaling and a record cap */
    assert_int_equal(wl_trace_load(path, 0.5, 2, &t, &err), 0);
    assert_int_equal(t.n, 2);
    assert_true(fabs(t.rec[1].t_s - 0.375) < 1e-6);
    wl_trace_free(&t);
    assert_int_equal(wl_trace_load(path, 0, 0, &t, &err), -1);
    assert_non_null(strstr(err.msg, "scale"));
}

static void expect_trace_error(const char *name, const char *text, const char *want) {
    char path[4096];
    write_scratch(name, text, path, sizeof path);
    wl_trace t;
    weft_err err = {{0}};
    assert_int_equal(wl_trace_load(path, 1.0, 0, &t, &err), -1);
    assert_null(t.rec);
    if (!strstr(err.msg, want)) fail_msg("%s: error '%s' lacks '%s'", name, err.msg, want);
}

static void test_trace_malformed(void **state) {
    (void)state;
    expect_trace_error(
        "bad1.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,1,2\nyesterday,1,2\n",
        ":3: bad TIMESTAMP 'yesterday'");
    expect_trace_error("bad2.csv", "TIMESTAMP,Context,GeneratedTokens\n0,1,2\n",
                       ":1: header must name TIMESTAMP, ContextTokens and GeneratedTokens");
    expect_trace_error("bad3.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,1\n",
                       ":2: 2 fields, the header has 3");
    expect_trace_error("bad4.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,-5,2\n",
                       ":2: bad ContextTokens '-5'");
    expect_trace_error("bad5.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,5,2x\n",
                       ":2: bad GeneratedTokens '2x'");
    expect_trace_error("bad6.csv", "", "empty file");
    expect_trace_error("bad7.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n", "no records");
    expect_trace_error(
        "bad8.jsonl",
        "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n{\"timestamp\": 1,\n",
        ":2: not a JSON object");
    expect_trace_error("bad9.jsonl", "{\"timestamp\": 0, \"input_length\": 5}\n",
                       ":1: missing or invalid 'output_length'");
    expect_trace_error("bad10.jsonl", "[1, 2]\n", ":1: not a JSON object (another JSON value)");
    expect_trace_error("bad11.jsonl",
                       "{\"timestamp\": \"soon\", \"input_length\": 5, \"output_length\": 2}\n",
                       ":1: missing or invalid 'timestamp'");
    char missing[4096];
    tu_scratch("no-such-trace.csv", missing, sizeof missing);
    wl_trace t;
    weft_err err = {{0}};
    assert_int_equal(wl_trace_load(missing, 1.0, 0, &t, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open"));
}

static void test_trace_mooncake_jsonl(void **state) {
    (void)state;
    char path[4096];
    /* out of order on purpose; hash_ids and other fields are ignored */
    write_scratch(
        "trace.jsonl",
        "{\"timestamp\": 3000, \"input_length\": 7, \"output_length\": 3, \"hash_ids\": [1, 2]}\n"
        "{\"timestamp\": 1000, \"input_length\": 40160, \"output_length\": 6}\n"
        "\n"
        "{\"timestamp\": 1500, \"input_length\": 12, \"output_length\": 0}\n",
        path, sizeof path);
    wl_trace t;
    weft_err err = {{0}};
    assert_int_equal(wl_trace_load(path, 2.0, 0, &t, &err), 0);
    assert_int_equal(t.n, 3);
    assert_true(t.rec[0].t_s == 0 && t.rec[0].n_input == 40160);
    assert_true(fabs(t.rec[1].t_s - 1.0) < 1e-9 && t.rec[1].n_output == 0);
    assert_true(fabs(t.rec[2].t_s - 4.0) < 1e-9 && t.rec[2].n_input == 7);
    wl_trace_free(&t);
    /* a file without the extension is sniffed */
    char path2[4096];
    write_scratch("trace-noext", "{\"timestamp\": 5, \"input_length\": 1, \"output_length\": 1}\n",
                  path2, sizeof path2);
    assert_int_equal(wl_trace_load(path2, 1.0, 0, &t, &err), 0);
    assert_int_equal(t.n, 1);
    wl_trace_free(&t);
}

/* ---- metrics ---- */

static void test_percentile_method(void **state) {
    (void)state;
    const double a[] = {1, 2, 3, 4};
    assert_true(metrics_percentile(a, 4, 0) == 1);
    assert_true(metrics_percentile(a, 4, 100) == 4);
    assert_true(fabs(metrics_percentile(a, 4, 50) - 2.5) < 1e-12);
    assert_true(fabs(metrics_percentile(a, 4, 90) - 3.7) < 1e-12);
    assert_true(fabs(metrics_percentile(a, 4, 25) - 1.75) < 1e-12);
    const double b[] = {10, 20, 30, 40, 50};
    assert_true(fabs(metrics_percentile(b, 5, 50) - 30) < 1e-12);
    assert_true(fabs(metrics_percentile(b, 5, 99) - 49.6) < 1e-9);
    assert_true(fabs(metrics_percentile(b, 5, 90) - 46) < 1e-9);
    const double c[] = {7};
    assert_true(metrics_percentile(c, 1, 99) == 7);
    assert_true(metrics_percentile(c, 0, 50) == 0);
    /* 1..100: p99 = 99.01 */
    double d[100];
    for (int i = 0; i < 100; i++)
        d[i] = i + 1;
    assert_true(fabs(metrics_percentile(d, 100, 99) - 99.01) < 1e-9);
    /* dist sorts its input */
    double u[] = {5, 1, 4, 2, 3};
    metrics_dist md;
    metrics_dist_of(u, 5, &md);
    assert_int_equal(md.n, 5);
    assert_true(md.mean == 3 && md.p50 == 3 && md.max == 5);
    assert_true(fabs(md.p90 - 4.6) < 1e-12);
    metrics_dist_of(u, 0, &md);
    assert_int_equal(md.n, 0);
}

static void test_summary(void **state) {
    (void)state;
    metrics_request r[3] = {
        {.arrival_s = 1.0,
         .first_token_s = 1.5,
         .finish_s = 3.5,
         .n_prompt = 4,
         .n_expected = 5,
         .n_generated = 5,
         .finish = ENGINE_FINISH_LENGTH,
         .submitted = true},
        {.arrival_s = 2.0,
         .first_token_s = 2.25,
         .finish_s = 5.0,
         .n_prompt = 6,
         .n_expected = 1,
         .n_generated = 1,
         .finish = ENGINE_FINISH_LENGTH,
         .submitted = true,
         .n_preempted = 2},
        {.arrival_s = 0.5,
         .first_token_s = -1,
         .finish_s = -1,
         .n_prompt = 3,
         .finish = -1,
         .submitted = false},
    };
    metrics_summary s;
    assert_int_equal(metrics_summarize(r, 3, &s, NULL), 0);
    assert_int_equal(s.n_requests, 3);
    assert_int_equal(s.n_finished, 2);
    assert_int_equal(s.n_failed, 1);
    assert_int_equal(s.n_preempted, 2);
    assert_true(fabs(s.makespan_s - 4.0) <
                1e-12); /* first finished arrival 1.0 → last finish 5.0 */
    assert_int_equal(s.output_tokens, 6);
    assert_int_equal(s.prompt_tokens, 10);
    assert_true(fabs(s.output_tok_per_s - 1.5) < 1e-12);
    assert_true(fabs(s.req_per_s - 0.5) < 1e-12);
    assert_int_equal(s.ttft_s.n, 2);
    assert_true(fabs(s.ttft_s.mean - 0.375) < 1e-12);
    assert_int_equal(s.tpot_s.n, 1); /* one token: no TPOT */
    assert_true(fabs(s.tpot_s.mean - 0.5) < 1e-12);
    assert_true(fabs(s.e2e_s.p50 - 2.75) < 1e-12);
}

static void test_collector(void **state) {
    (void)state;
    metrics_collector c;
    assert_int_equal(metrics_collector_init(&c, 2, NULL), 0);
    metrics_collector_submit(&c, 0, 0.5, 3, 2);
    metrics_collector_submit(&c, 1, 0.6, 3, 2);
    engine_event ev = {.type = ENGINE_EV_TOKEN, .id = 0, .index = 0, .t_s = 1.0};
    metrics_collector_on_event(&c, &ev);
    ev.index = 1;
    ev.t_s = 1.2;
    metrics_collector_on_event(&c, &ev);
    ev = (engine_event){.type = ENGINE_EV_FINISHED,
                        .id = 0,
                        .finish = ENGINE_FINISH_LENGTH,
                        .n_prompt = 3,
                        .n_generated = 2,
                        .t_s = 1.2};
    metrics_collector_on_event(&c, &ev);
    ev.id = 99; /* not ours: ignored */
    metrics_collector_on_event(&c, &ev);
    assert_int_equal(metrics_collector_wait(&c, 2, 0.01), 1); /* times out with one done */
    ev = (engine_event){.type = ENGINE_EV_PREEMPTED, .id = 1, .t_s = 1.3};
    metrics_collector_on_event(&c, &ev);
    ev = (engine_event){
        .type = ENGINE_EV_FINISHED, .id = 1, .finish = ENGINE_FINISH_CANCELLED, .t_s = 1.4};
    metrics_collector_on_event(&c, &ev);
    assert_int_equal(metrics_collector_wait(&c, 2, 1.0), 2);
    metrics_request out[2];
    metrics_collector_snapshot(&c, out);
    assert_true(out[0].first_token_s == 1.0 && out[0].finish_s == 1.2);
    assert_int_equal(out[0].n_generated, 2);
    assert_int_equal(out[1].n_preempted, 1);
    assert_int_equal(out[1].finish, ENGINE_FINISH_CANCELLED);
    metrics_summary s;
    assert_int_equal(metrics_summarize(out, 2, &s, NULL), 0);
    assert_int_equal(s.n_finished, 1);
    assert_int_equal(s.n_failed, 1);
    metrics_collector_destroy(&c);
}

/* ---- data sets and lengths ---- */

/* "<unk>" "<s>" "</s>" then words: every ASCII text of the words "a" and "bb" encodes to one token
 * per word. */
static weft_tokenizer *tiny_tokenizer(void) {
    const char *pieces[] = {"<unk>",
                            "<s>",
                            "</s>",
                            "\xe2\x96\x81"
                            "a",
                            "\xe2\x96\x81"
                            "bb",
                            "\xe2\x96\x81",
                            "a",
                            "b",
                            "bb"};
    const float scores[] = {0, 0, 0, -1, -1, -5, -6, -6, -2};
    weft_err err = {{0}};
    weft_tokenizer *t = tok_new_from_pieces(pieces, scores, NULL, 9, 1, 2, 0, &err);
    if (!t) fail_msg("tok_new_from_pieces: %s", err.msg);
    return t;
}

static const char PAIRS[] = "{\"prompt\": \"a a\", \"response\": \"a\", \"model\": \"x\"}\n"
                            "{\"prompt\": \"bb\", \"response\": \"a bb a bb a\"}\n"
                            "\n"
                            "{\"prompt\": \"a bb a\", \"response\": \"bb bb bb bb bb bb bb bb\"}\n"
                            "{\"prompt\": \"a\", \"response\": \"\"}\n";

static void test_dataset_pick(void **state) {
    (void)state;
    char path[4096];
    write_scratch("pairs.jsonl", PAIRS, path, sizeof path);
    wl_dataset d;
    weft_err err = {{0}};
    assert_int_equal(wl_dataset_load(path, &d, &err), 0);
    assert_int_equal(d.n, 4);
    assert_string_equal(d.pairs[2].prompt, "a bb a");
    int a[10], b[10];
    assert_int_equal(wl_dataset_pick(&d, 10, 5, a, &err), 0);
    assert_int_equal(wl_dataset_pick(&d, 10, 5, b, &err), 0);
    assert_memory_equal(a, b, sizeof a);
    /* each pass of 4 is a permutation; the last 2 are distinct */
    for (int pass = 0; pass < 2; pass++) {
        int seen[4] = {0};
        for (int i = 0; i < 4; i++)
            seen[a[pass * 4 + i]]++;
        for (int i = 0; i < 4; i++)
            assert_int_equal(seen[i], 1);
    }
    assert_true(a[8] != a[9]);
    wl_dataset_free(&d);

    write_scratch("pairs-bad.jsonl", "{\"prompt\": \"a\", \"response\": \"a\"}\n{\"prompt\": 3}\n",
                  path, sizeof path);
    assert_int_equal(wl_dataset_load(path, &d, &err), -1);
    assert_non_null(strstr(err.msg, ":2: needs string fields 'prompt' and 'response'"));
    write_scratch("pairs-bad2.jsonl", "not json\n", path, sizeof path);
    assert_int_equal(wl_dataset_load(path, &d, &err), -1);
    assert_non_null(strstr(err.msg, ":1: not a JSON object"));
}

static void test_lengths(void **state) {
    (void)state;
    weft_tokenizer *tok = tiny_tokenizer();
    char path[4096];
    write_scratch("pairs2.jsonl", PAIRS, path, sizeof path);
    wl_dataset d;
    weft_err err = {{0}};
    assert_int_equal(wl_dataset_load(path, &d, &err), 0);
    int idx[4] = {0, 1, 2, 3}, out[4];
    assert_int_equal(wl_lengths_from_dataset(&d, idx, 4, tok, 0, out, &err), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], 8);
    assert_int_equal(out[3], 1); /* an empty response still generates one token */
    assert_int_equal(wl_lengths_from_dataset(&d, idx, 4, tok, 6, out, &err), 0);
    assert_int_equal(out[2], 6);

    int u[1000];
    assert_int_equal(wl_lengths_uniform(1000, 4, 9, 3, u, &err), 0);
    int lo = 100, hi = 0;
    for (int i = 0; i < 1000; i++) {
        lo = u[i] < lo ? u[i] : lo;
        hi = u[i] > hi ? u[i] : hi;
    }
    assert_int_equal(lo, 4);
    assert_int_equal(hi, 9);
    assert_int_equal(wl_lengths_uniform(3, 5, 4, 3, u, &err), -1);
    assert_int_equal(wl_lengths_fixed(3, 0, u, &err), -1);
    assert_int_equal(wl_lengths_fixed(3, 7, u, &err), 0);
    assert_int_equal(u[2], 7);
    wl_dataset_free(&d);
    tok_free(tok);
}

static void test_lengths_shared_tokenizer(void **state) {
    (void)state;
    TU_SHARED_OR_SKIP(tp, "models/tok512.bin");
    weft_err err = {{0}};
    weft_tokenizer *tok = tok_load_bin(tp, 512, &err);
    assert_non_null(tok);
    const char *text = "Once upon a time, there was a little girl named Lily.";
    int n = wl_token_count(tok, text);
    assert_true(n > 5 && n < (int)strlen(text));
    int32_t *ids;
    int k;
    assert_int_equal(wl_prompt_tokenize(tok, text, true, 0, &ids, &k, &err), 0);
    assert_int_equal(k, n + 1);
    assert_int_equal(ids[0], tok_bos(tok));
    free(ids);
    assert_int_equal(wl_prompt_tokenize(tok, text, true, 4, &ids, &k, &err), 0);
    assert_int_equal(k, 4);
    free(ids);
    tok_free(tok);
}

/* ---- whole workloads ---- */

static void test_workload_prefix_and_clip(void **state) {
    (void)state;
    wl_spec s;
    wl_spec_defaults(&s);
    s.n_requests = 6;
    s.gap_mean_s = 0.1;
    s.prompt_len = 5;
    s.output_src = WL_SRC_UNIFORM;
    s.output_lo = 10;
    s.output_hi = 40;
    s.system_prefix = 8;
    s.max_seq_len = 30;
    wl_workload w;
    weft_err err = {{0}};
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w, &err), 0);
    assert_int_equal(w.n, 6);
    int clipped = 0;
    for (int i = 0; i < w.n; i++) {
        assert_int_equal(w.req[i].n_prompt, 13);
        assert_int_equal(w.req[i].prompt[0], 1);
        assert_memory_equal(w.req[i].prompt, w.req[0].prompt, 8 * sizeof(int32_t));
        for (int j = 1; j < 13; j++)
            assert_true(w.req[i].prompt[j] >= WL_SYNTH_FIRST_ID && w.req[i].prompt[j] < 100);
        assert_true(w.req[i].n_output >= 1 && w.req[i].n_prompt + w.req[i].n_output <= 30);
        clipped += w.req[i].n_output == 17;
        if (i) assert_true(w.req[i].arrival_s >= w.req[i - 1].arrival_s);
    }
    assert_true(w.n_clipped >= 1 && clipped >= w.n_clipped); /* clipped ones end at 30 */
    assert_true(w.req[1].prompt[8] != w.req[0].prompt[8] ||
                w.req[1].prompt[9] != w.req[0].prompt[9]);
    assert_int_equal(wl_workload_longest(&w), 30);
    /* the same spec builds the same workload */
    wl_workload w2;
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w2, &err), 0);
    for (int i = 0; i < w.n; i++) {
        assert_true(w.req[i].arrival_s == w2.req[i].arrival_s);
        assert_int_equal(w.req[i].n_output, w2.req[i].n_output);
        assert_memory_equal(w.req[i].prompt, w2.req[i].prompt, 13 * sizeof(int32_t));
    }
    wl_workload_free(&w2);
    /* another arrival seed: other arrival times, the same requests; the seed itself as the
     * arrival seed changes nothing */
    s.arrival_seed = s.seed + 1;
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w2, &err), 0);
    int moved = 0;
    for (int i = 0; i < w.n; i++) {
        moved += w.req[i].arrival_s != w2.req[i].arrival_s;
        assert_int_equal(w.req[i].n_output, w2.req[i].n_output);
        assert_memory_equal(w.req[i].prompt, w2.req[i].prompt, 13 * sizeof(int32_t));
    }
    assert_true(moved >= w.n - 1); /* the first arrival may be 0 in both */
    wl_workload_free(&w2);
    s.arrival_seed = s.seed;
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w2, &err), 0);
    for (int i = 0; i < w.n; i++)
        assert_true(w.req[i].arrival_s == w2.req[i].arrival_s);
    wl_workload_free(&w2);
    s.arrival_seed = 0;
    wl_workload_free(&w);

    s.n_requests = 0;
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w, &err), -1);
    s.n_requests = 2;
    s.output_src = WL_SRC_DATASET;
    s.lengths_from = "x.jsonl";
    assert_int_equal(wl_workload_build(&s, NULL, 100, 1, &w, &err), -1);
    assert_non_null(strstr(err.msg, "tokenizer"));
}

static void test_workload_dataset_and_trace(void **state) {
    (void)state;
    weft_tokenizer *tok = tiny_tokenizer();
    char pairs[4096], trace[4096];
    write_scratch("pairs3.jsonl", PAIRS, pairs, sizeof pairs);
    write_scratch("trace3.csv",
                  "TIMESTAMP,ContextTokens,GeneratedTokens\n0,3,4\n0.5,2,9\n2,100,1\n", trace,
                  sizeof trace);
    wl_spec s;
    wl_spec_defaults(&s);
    s.n_requests = 8;
    s.output_src = WL_SRC_DATASET;
    s.lengths_from = pairs;
    s.prompt_src = WL_SRC_DATASET;
    s.prompts_from = pairs;
    wl_workload w;
    weft_err err = {{0}};
    assert_int_equal(wl_workload_build(&s, tok, 9, 1, &w, &err), 0);
    /* the same record gives prompt and length: prompt tokens (with BOS) → response length */
    for (int i = 0; i < w.n; i++) {
        int np = w.req[i].n_prompt, no = w.req[i].n_output;
        assert_int_equal(w.req[i].prompt[0], 1);
        int want = np == 3 && w.req[i].prompt[1] == 3   ? 1 /* "a a" → "a" */
                   : np == 2 && w.req[i].prompt[1] == 4 ? 5
                   : np == 4                            ? 8
                                                        : 1;
        assert_int_equal(no, want);
        assert_true(w.req[i].arrival_s == 0);
    }
    wl_workload_free(&w);

    wl_spec_defaults(&s);
    s.trace = trace;
    s.trace_scale = 2;
    s.n_requests = 0;
    s.output_src = WL_SRC_TRACE;
    s.prompt_src = WL_SRC_TRACE;
    s.max_prompt = 50;
    assert_int_equal(wl_workload_build(&s, NULL, 9, 1, &w, &err), 0);
    assert_int_equal(w.n, 3);
    assert_true(w.req[1].arrival_s == 1.0 && w.req[2].arrival_s == 4.0);
    assert_int_equal(w.req[0].n_prompt, 3);
    assert_int_equal(w.req[1].n_output, 9);
    assert_int_equal(w.req[2].n_prompt, 50);
    wl_workload_free(&w);
    tok_free(tok);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poisson_mean_and_seed),
        cmocka_unit_test(test_poisson_zero_gap),
        cmocka_unit_test(test_rng_range),
        cmocka_unit_test(test_trace_azure_csv),
        cmocka_unit_test(test_trace_malformed),
        cmocka_unit_test(test_trace_mooncake_jsonl),
        cmocka_unit_test(test_percentile_method),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_collector),
        cmocka_unit_test(test_dataset_pick),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_lengths_shared_tokenizer),
        cmocka_unit_test(test_workload_prefix_and_clip),
        cmocka_unit_test(test_workload_dataset_and_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
