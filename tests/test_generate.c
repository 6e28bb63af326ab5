/* test_generate.c — generate() end to end on the trained stories260K model (../shared): greedy
 * decoding reproduces llama2.c's expectation, stop strings cut the text exactly (also across
 * token boundaries), end tokens stop generation unless ignore_eos, prompt spacing follows
 * SentencePiece, over-long prompts are refused, the context limit stops generation, sampling is
 * seed-deterministic, chunked prefill equals token-by-token prefill, and the llama2.c checkpoint
 * gives the same tokens as the GGUF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/generate.h"
#include "weft/model.h"

#define MAX_TEXT 65536
#define MAX_IDS 2048

typedef struct fixture {
    weft_model *m;
    tp_pool *pool;
    char *greedy;       /* stories260K.greedy200.txt without its final newline */
    size_t greedy_len;
} fixture;

/* Collects everything generate() emits; remembers the first piece separately. */
typedef struct sink {
    char text[MAX_TEXT];
    size_t len;
    char first[128];
    int n_calls;
} sink;

static void sink_emit(void *ctx, const char *text, size_t len) {
    sink *s = ctx;
    assert_true(len > 0);
    assert_true(s->len + len < sizeof s->text);
    if (s->n_calls == 0) {
        size_t n = len < sizeof s->first - 1 ? len : sizeof s->first - 1;
        memcpy(s->first, text, n);
        s->first[n] = 0;
    }
    memcpy(s->text + s->len, text, len);
    s->len += len;
    s->text[s->len] = 0;
    s->n_calls++;
}

typedef struct run_out {
    sink out;
    int ids[MAX_IDS];
    gen_stats st;
    weft_err err;
    int rc;
} run_out;

static gen_params greedy_params(const char *prompt, int n_predict) {
    gen_params p = {0};
    sampling_defaults(&p.sampling);
    p.sampling.temperature = 0;
    p.prompt = prompt;
    p.n_predict = n_predict;
    return p;
}

/* Heap-allocated: run_out is too large for comfortable stack use in several frames. */
static run_out *run(const weft_model *m, tp_pool *pool, const gen_params *p) {
    run_out *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->rc = generate(m, pool, p, sink_emit, &r->out, r->ids, MAX_IDS, &r->st, &r->err);
    if (r->rc != 0) printf("generate: %s\n", r->err.msg);
    return r;
}

static int setup(void **state) {
    char buf[4096];
    const char *gguf = tu_shared("models/stories260K.gguf", buf, sizeof buf);
    if (!gguf) {
        *state = NULL; /* each test skips loudly */
        return 0;
    }
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx) return -1;
    weft_err err = {{0}};
    fx->m = model_load(gguf, NULL, &err);
    if (!fx->m) {
        fprintf(stderr, "load: %s\n", err.msg);
        free(fx);
        return -1;
    }
    fx->pool = tp_new(1);
    char tbuf[4096];
    const char *txt = tu_shared("models/stories260K.greedy200.txt", tbuf, sizeof tbuf);
    fx->greedy = txt ? tu_read_file(txt, &fx->greedy_len) : NULL;
    if (!fx->pool || !fx->greedy) {
        fprintf(stderr, "setup: no thread pool or no stories260K.greedy200.txt\n");
        tp_free(fx->pool);
        model_free(fx->m);
        free(fx->greedy);
        free(fx);
        return -1;
    }
    if (fx->greedy_len > 0 && fx->greedy[fx->greedy_len - 1] == '\n')
        fx->greedy[--fx->greedy_len] = 0;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    if (fx) {
        tp_free(fx->pool);
        model_free(fx->m);
        free(fx->greedy);
        free(fx);
    }
    return 0;
}

#define FIXTURE_OR_SKIP(fx)                                                                    \
    fixture *fx = *state;                                                                      \
    if (!fx) {                                                                                 \
        printf("SKIP (loud): ../shared/models/stories260K.gguf absent\n");                     \
        skip();                                                                                \
    }

static void test_greedy_200(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = greedy_params("", 200);
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->st.n_prompt, 1); /* BOS alone */
    assert_int_equal(r->st.n_generated, 200);
    assert_int_equal(r->st.reason, GEN_STOP_LENGTH);
    assert_string_equal(r->out.text, fx->greedy);
    /* SentencePiece drops the dummy-prefix space of the first piece after BOS. */
    assert_true(r->out.first[0] != ' ');
    /* The same run without out_ids and without an emit callback must not crash. */
    gen_stats st;
    weft_err err = {{0}};
    assert_int_equal(generate(fx->m, fx->pool, &p, NULL, NULL, NULL, 0, &st, &err), 0);
    assert_int_equal(st.n_generated, 200);
    /* out_ids shorter than the generation: only max_ids are written, the count is complete. */
    int few[3] = {-7, -7, -7};
    assert_int_equal(generate(fx->m, fx->pool, &p, NULL, NULL, few, 2, &st, &err), 0);
    assert_int_equal(few[0], r->ids[0]);
    assert_int_equal(few[1], r->ids[1]);
    assert_int_equal(few[2], -7);
    assert_int_equal(st.n_generated, 200);
    free(r);
}

static void check_stop(fixture *fx, const char *const *stops, int n_stops) {
    /* Expected: the greedy text up to the earliest occurrence of any stop string. */
    const char *first = NULL;
    for (int i = 0; i < n_stops; i++) {
        const char *at = strstr(fx->greedy, stops[i]);
        if (at && (!first || at < first)) first = at;
    }
    gen_params p = greedy_params("", 200);
    p.stop_strs = stops;
    p.n_stop_strs = n_stops;
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    if (first) {
        size_t want = (size_t)(first - fx->greedy);
        if (r->out.len != want || memcmp(r->out.text, fx->greedy, want) != 0)
            printf("stop '%s': got \"%s\", want \"%.*s\"\n", stops[0], r->out.text, (int)want,
                   fx->greedy);
        assert_int_equal(r->out.len, want);
        assert_memory_equal(r->out.text, fx->greedy, want);
        assert_int_equal(r->st.reason, GEN_STOP_STRING);
        assert_true(r->st.n_generated < 200);
    } else {
        assert_string_equal(r->out.text, fx->greedy);
        assert_int_equal(r->st.reason, GEN_STOP_LENGTH);
    }
    free(r);
}

static void test_stop_strings(void **state) {
    FIXTURE_OR_SKIP(fx);
    /* Whole word; a string spanning two tokens ("▁little" "▁girl") and starting mid-token; one
     * ending mid-token; punctuation; the first text of all; several strings at once (the
     * earliest occurrence wins); one that never occurs. */
    static const char *const cases[][3] = {
        {"park"}, {"tle gi"}, {"Lily. She lo"}, {"\""}, {"Once"}, {"\n"},
        {"Lily's mom", "park", "red ball"}, {"zebra xylophone"},
    };
    static const int counts[] = {1, 1, 1, 1, 1, 1, 3, 1};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) check_stop(fx, cases[i], counts[i]);
}

static int find_end(const weft_model *m, const int *ids, int n) {
    for (int i = 0; i < n; i++) {
        if (ids[i] == m->cfg.bos_id || ids[i] == m->cfg.eos_id) return i;
    }
    return -1;
}

static void test_end_tokens(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = {0};
    sampling_defaults(&p.sampling);
    p.sampling.temperature = 0.8f;
    p.sampling.seed = 1234;
    p.prompt = "Once upon a time";
    p.n_predict = 1000;
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    printf("end-token run: %d tokens, stop: %s\n", r->st.n_generated, gen_stop_name(r->st.reason));
    assert_int_equal(r->st.reason, GEN_STOP_EOS);
    int n = r->st.n_generated;
    assert_true(n > 0 && n < 1000);
    assert_int_equal(find_end(fx->m, r->ids, n), -1); /* the end token is not among the ids */
    assert_null(strstr(r->out.text, "<s>"));
    assert_null(strstr(r->out.text, "</s>"));

    /* ignore_eos: the same seed walks the same path, takes the end token and goes on. */
    gen_params q = p;
    q.ignore_eos = true;
    q.n_predict = n + 40;
    run_out *r2 = run(fx->m, fx->pool, &q);
    assert_int_equal(r2->rc, 0);
    assert_int_equal(r2->st.reason, GEN_STOP_LENGTH);
    assert_int_equal(r2->st.n_generated, n + 40);
    assert_memory_equal(r2->ids, r->ids, sizeof(int) * (size_t)n);
    assert_true(r2->ids[n] == fx->m->cfg.bos_id || r2->ids[n] == fx->m->cfg.eos_id);
    assert_true(r2->out.len > r->out.len);
    assert_memory_equal(r2->out.text, r->out.text, r->out.len);
    assert_null(strstr(r2->out.text, "<s>"));
    assert_null(strstr(r2->out.text, "</s>"));
    free(r);
    free(r2);
}

static void test_prompt_spacing(void **state) {
    FIXTURE_OR_SKIP(fx);
    /* The prompt tokenizes to the same ids greedy decoding produced from BOS, so prompt + the
     * continuation must be exactly a prefix of the greedy text: no space lost or doubled. */
    const char *prompt = "Once upon a time";
    gen_params p = greedy_params(prompt, 40);
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->st.n_prompt, 5); /* BOS ▁Once ▁upon ▁a ▁time */
    size_t pl = strlen(prompt);
    assert_true(pl + r->out.len <= fx->greedy_len);
    assert_memory_equal(fx->greedy, prompt, pl);
    assert_memory_equal(fx->greedy + pl, r->out.text, r->out.len);
    free(r);

    /* A prompt ending in a word: the next word-initial piece (▁Lily) keeps its space, once. */
    prompt = "Once upon a time, there was a little girl named";
    p = greedy_params(prompt, 10);
    r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    printf("continuation of \"%s\": \"%s\"\n", prompt, r->out.text);
    assert_true(r->out.first[0] == ' ');
    assert_true(r->out.first[1] != ' ' && r->out.first[1] != 0);
    assert_memory_equal(r->out.text, " Lily", 5);
    pl = strlen(prompt);
    assert_memory_equal(fx->greedy + pl, r->out.text, r->out.len);
    free(r);

    /* A prompt ending in an incomplete UTF-8 sequence: its dangling byte belongs to the prompt
     * and must not turn the first generated text into U+FFFD. */
    p = greedy_params("abc\xC3", 5);
    r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    assert_true(r->out.len > 0);
    assert_false(r->out.len >= 3 && memcmp(r->out.text, "\xEF\xBF\xBD", 3) == 0);
    free(r);
}

static void test_prompt_too_long(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = greedy_params("Once upon a time, there was a little girl named Lily.", 10);
    p.ctx_len = 8;
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_not_equal(r->rc, 0);
    assert_non_null(strstr(r->err.msg, "prompt"));
    assert_non_null(strstr(r->err.msg, "context"));
    assert_int_equal(r->out.n_calls, 0);
    free(r);
    /* BOS alone does not fit a one-token context either (nothing could be generated). */
    p = greedy_params("", 10);
    p.ctx_len = 1;
    r = run(fx->m, fx->pool, &p);
    assert_int_not_equal(r->rc, 0);
    free(r);
    /* Negative n_predict is refused. */
    p = greedy_params("", -1);
    r = run(fx->m, fx->pool, &p);
    assert_int_not_equal(r->rc, 0);
    assert_non_null(strstr(r->err.msg, "n_predict"));
    free(r);
}

static void test_n_predict_zero(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = greedy_params("Once upon a time", 0);
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->st.n_generated, 0);
    assert_int_equal(r->st.n_prompt, 5);
    assert_int_equal(r->st.reason, GEN_STOP_LENGTH);
    assert_int_equal(r->out.n_calls, 0);
    assert_int_equal(r->out.len, 0);
    free(r);
}

static void test_context_exhaustion(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = greedy_params("Once upon a time", 100);
    p.ctx_len = 16;
    run_out *r = run(fx->m, fx->pool, &p);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->st.reason, GEN_STOP_CONTEXT);
    assert_int_equal(r->st.n_generated, 16 - 5);
    /* A small context does not change what fits: the same tokens as greedy from the full one. */
    gen_params q = greedy_params("Once upon a time", 16 - 5);
    run_out *full = run(fx->m, fx->pool, &q);
    assert_int_equal(full->rc, 0);
    assert_int_equal(full->st.reason, GEN_STOP_LENGTH);
    assert_memory_equal(full->ids, r->ids, sizeof(int) * (16 - 5));
    assert_string_equal(full->out.text, r->out.text);
    /* Exactly filling the context with n_predict is a length stop, not a context stop. */
    q.ctx_len = 16;
    run_out *exact = run(fx->m, fx->pool, &q);
    assert_int_equal(exact->rc, 0);
    assert_int_equal(exact->st.reason, GEN_STOP_LENGTH);
    assert_int_equal(exact->st.n_generated, 16 - 5);
    free(r);
    free(full);
    free(exact);
}

static gen_params sampled_params(uint64_t seed) {
    gen_params p = {0};
    sampling_defaults(&p.sampling);
    p.sampling.temperature = 1.0f;
    p.sampling.seed = seed;
    p.prompt = "Once upon a time";
    p.n_predict = 100;
    p.ignore_eos = true;
    return p;
}

static void test_seed_determinism(void **state) {
    FIXTURE_OR_SKIP(fx);
    gen_params p = sampled_params(7);
    run_out *a = run(fx->m, fx->pool, &p);
    run_out *b = run(fx->m, fx->pool, &p);
    p = sampled_params(8);
    run_out *c = run(fx->m, fx->pool, &p);
    assert_int_equal(a->rc, 0);
    assert_int_equal(b->rc, 0);
    assert_int_equal(c->rc, 0);
    assert_int_equal(a->st.n_generated, 100);
    assert_int_equal(c->st.n_generated, 100);
    assert_memory_equal(a->ids, b->ids, sizeof(int) * 100);
    assert_string_equal(a->out.text, b->out.text);
    assert_memory_not_equal(a->ids, c->ids, sizeof(int) * 100);
    free(a);
    free(b);
    free(c);
}

static void test_chunked_prefill(void **state) {
    FIXTURE_OR_SKIP(fx);
    const char *prompt = "Once upon a time, there was a little girl named Lily. She loved to play "
                         "outside in the sun with her big red ball.";
    static const int chunks[] = {256, 1, 3, 7, 0};
    run_out *ref = NULL;
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        gen_params p = greedy_params(prompt, 50);
        p.prefill_chunk = chunks[i];
        run_out *r = run(fx->m, fx->pool, &p);
        assert_int_equal(r->rc, 0);
        assert_true(r->st.n_prompt > 20);
        if (!ref) {
            ref = r;
            continue;
        }
        assert_int_equal(r->st.n_generated, ref->st.n_generated);
        assert_memory_equal(r->ids, ref->ids, sizeof(int) * (size_t)ref->st.n_generated);
        assert_string_equal(r->out.text, ref->out.text);
        free(r);
    }
    free(ref);
}

static void test_llama2c_matches_gguf(void **state) {
    FIXTURE_OR_SKIP(fx);
    TU_SHARED_OR_SKIP(bin, "models/stories260K.bin");
    TU_SHARED_OR_SKIP(tok, "models/tok512.bin");
    weft_err err = {{0}};
    weft_model *m2 = model_load(bin, tok, &err);
    if (!m2) printf("load: %s\n", err.msg);
    assert_non_null(m2);
    static const char *const prompts[] = {"", "Once upon a time, there was a dog"};
    for (int i = 0; i < 2; i++) {
        gen_params p = greedy_params(prompts[i], 200);
        run_out *a = run(fx->m, fx->pool, &p);
        run_out *b = run(m2, fx->pool, &p);
        assert_int_equal(a->rc, 0);
        assert_int_equal(b->rc, 0);
        assert_int_equal(a->st.n_prompt, b->st.n_prompt);
        assert_int_equal(a->st.n_generated, b->st.n_generated);
        assert_memory_equal(a->ids, b->ids, sizeof(int) * (size_t)a->st.n_generated);
        assert_string_equal(a->out.text, b->out.text);
        free(a);
        free(b);
    }
    model_free(m2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_200),
        cmocka_unit_test(test_stop_strings),
        cmocka_unit_test(test_end_tokens),
        cmocka_unit_test(test_prompt_spacing),
        cmocka_unit_test(test_prompt_too_long),
        cmocka_unit_test(test_n_predict_zero),
        cmocka_unit_test(test_context_exhaustion),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_chunked_prefill),
        cmocka_unit_test(test_llama2c_matches_gguf),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
