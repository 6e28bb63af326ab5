/* test_predict.c — the answer-length predictor (src/predict/): every text feature on hand-written
 * prompts (and zero on a neutral one), the cue lexicon's order and lookup, explicit length
 * requests, the tail window of long prompts, entropy on known distributions, the online update
 * converging on a synthetic stream with a known relation (coefficients, p90 coverage, the entropy
 * head), the offline fit recovering a known relation, rank correlations against naive O(n^2)
 * definitions, parameter save/load round trips and malformed parameter files refused with
 * precise messages. */
#include "support/pred_util.h"
#include "support/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predict/pred_data.h"
#include "predict/pred_internal.h"

static pred_features feat(const char *p) {
    pred_features f;
    pred_features_text(p, strlen(p), 0, &f);
    return f;
}

/* ---- features ---- */

static const struct {
    int feature;
    const char *prompt;
} feature_cases[] = {
    {PF_LOG_LINES, "first line\nsecond line\nthird"},
    {PF_QUESTIONS, "Why? How? What?"},
    {PF_ENUM_ITEMS, "Buy these:\n1. eggs\n2. milk\n- bread"},
    {PF_CLAUSES, "I left because it rained, but then it stopped"},
    {PF_FACTOID_WH, "Who wrote Hamlet"},
    {PF_WHY_HOW, "Why is the sky blue"},
    {PF_YES_NO, "Is Paris in France"},
    {PF_OPEN_EXPLAIN, "Explain gravity"},
    {PF_CREATIVE, "Write a poem about rain"},
    {PF_COMPARE, "Compare cats and dogs"},
    {PF_LIST_REQUEST, "List some fruits"},
    {PF_LIST_N, "Give me 7 tips for sleeping"},
    {PF_BREVITY, "Answer briefly: capital of Peru"},
    {PF_DETAIL, "Describe the war in detail"},
    {PF_STEP_BY_STEP, "Solve it step-by-step"},
    {PF_TARGET_WORDS, "Write 3 paragraphs on tea"},
    {PF_TARGET_PRESENT, "Reply in 50 words"},
    {PF_SHORT_ANSWER_TASK, "Classify this review"},
    {PF_TRANSFORM_TASK, "Translate to French: good morning"},
    {PF_TRANSFORM_X_LEN, "Paraphrase: the quick brown fox"},
    {PF_CODE_REQUEST, "Write a function that sorts"},
    {PF_CODE_PRESENT, "def f(x):\n    return x[0];"},
    {PF_LANG_MENTION, "Is C++ faster"},
    {PF_NUMBERS, "12 apples and 3.5 pears"},
    {PF_MATHS, "How many apples are left after 3 + 4"},
    {PF_VAGUE, "Tell me something about stuff"},
    {PF_PRONOUN_AMBIG, "They said it was there"},
    {PF_PP_ATTACH, "the man with the telescope on the hill"},
    {PF_COORD_AMBIG, "old men and women"},
    {PF_POLYSEMY, "Meet me at the bank"},
    {PF_ROLEPLAY, "You are a pirate captain"},
    {PF_ADVICE, "How can I sleep better"},
    {PF_DEFINITION, "What is entropy"},
    {PF_OPINION, "What do you think of jazz"},
    {PF_CHIT_CHAT, "Hello there, thanks"},
    {PF_HARMFUL, "How do I steal a car"},
    {PF_CONTEXT_BLOCK, "Summarize:\nThe text body here, long enough."},
    {PF_TOOL_CALL, "Use the weather API"},
    {PF_FIRST_PERSON, "My dog"},
    {PF_IMPERATIVE, "Write a memo."},
    {PF_LIMIT_CUE, "no more than twenty"},
    {PF_MULTI_PART, "First do A, then do B"},
    {PF_CODE_X_LEN, "int f(int x) { return x; }"},
    {PF_MATHS_X_LEN, "If 3 apples cost 6 dollars, how much is one"},
    {PF_ENDS_OPEN, "def add(a, b):\n    \"\"\"Adds.\"\"\"\n"},
    {PF_CODE_COMPLETION, "def add(a, b):\n    \"\"\"Adds.\"\"\"\n"},
    {PF_DOC_WORDS, "x = 1  // the count"},
    {PF_DOCTESTS, ">>> add(1, 2)\n3"},
    {PF_COMPLETION_X_DOC, "int add(int a, int b) {\n  /* sum of a and b */\n"},
    {PF_COMPLETION_X_LEN, "function add(a, b) {\n"},
    {PF_FERMI, "Estimate the number of piano tuners in Chicago"},
    {PF_COUNTERFACTUAL, "What if Rome had never fallen"},
    {PF_MEAN_WORD_LEN, "Paris"},
    {PF_INFORMAL, "how r u"},
    {PF_COMPLETION_CASES, "def f(x):\n    \"\"\"Return 1 if x is odd, otherwise 0.\"\"\"\n"},
    {PF_GIVEN_CODE, "def g(y):\n    return y\n\ndef f(x):\n    \"\"\"Use g.\"\"\"\n"},
    {PF_N_PARAMS, "def f(a, b):\n    \"\"\"Sum.\"\"\"\n"},
};

static void test_feature_names(void **state) {
    (void)state;
    assert_int_equal(pred_feature_count(), PF_COUNT);
    assert_true(PF_COUNT <= PRED_MAX_FEATURES);
    for (int i = 0; i < PF_COUNT; i++) {
        assert_non_null(pred_feature_name(i));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(pred_feature_name(i), pred_feature_name(j));
    }
    assert_null(pred_feature_name(PF_COUNT));
    assert_null(pred_feature_name(-1));
    assert_string_equal(pred_feature_name(PF_ENTROPY), "entropy");
}

/* Every text feature (other than length and sentences, which any text has) is zero on a neutral
 * prompt and positive on its own hand-written prompt. */
static void test_each_feature_fires(void **state) {
    (void)state;
    pred_features neutral = feat("Paris");
    /* "Paris" has words (a mean word length) and no final punctuation mark (informal) */
    for (int i = 0; i < PF_ENTROPY; i++)
        if (i != PF_LOG_PROMPT_TOKENS && i != PF_SENTENCES && i != PF_MEAN_WORD_LEN &&
            i != PF_INFORMAL) {
            if (neutral.v[i] != 0)
                fail_msg("feature %s is %g on 'Paris'", pred_feature_name(i), neutral.v[i]);
        }
    assert_int_equal(neutral.has_entropy, 0);
    assert_int_equal(neutral.n, PF_COUNT);
    int covered[PF_COUNT] = {0};
    for (size_t c = 0; c < sizeof feature_cases / sizeof feature_cases[0]; c++) {
        pred_features f = feat(feature_cases[c].prompt);
        int i = feature_cases[c].feature;
        if (!(f.v[i] > 0))
            fail_msg("feature %s is %g on '%s'", pred_feature_name(i), f.v[i],
                     feature_cases[c].prompt);
        covered[i] = 1;
    }
    covered[PF_LOG_PROMPT_TOKENS] = covered[PF_SENTENCES] = covered[PF_ENTROPY] = 1;
    for (int i = 0; i < PF_COUNT; i++)
        if (!covered[i]) fail_msg("feature %s has no hand-written case", pred_feature_name(i));
}

static void test_feature_values(void **state) {
    (void)state;
    pred_features f;
    pred_features_text("Paris", 5, 100, &f);
    assert_float_equal(f.v[PF_LOG_PROMPT_TOKENS], log1p(100.0), 1e-5);
    pred_features_text("abcdefgh", 8, 0, &f); /* estimated from bytes: (8 + 3) / 4 */
    assert_float_equal(f.v[PF_LOG_PROMPT_TOKENS], log1p(11.0 / 4), 1e-5);
    assert_float_equal(feat("Why? How? What?").v[PF_QUESTIONS], log1p(3.0), 1e-6);
    assert_float_equal(feat("One. Two. Three.").v[PF_SENTENCES], log1p(3.0), 1e-6);
    assert_float_equal(feat("Pi is 3.14 or so.").v[PF_SENTENCES], log1p(1.0), 1e-6);
    assert_float_equal(feat("Buy these:\n1. eggs\n2) milk\n- bread\n(a) jam").v[PF_ENUM_ITEMS],
                       log1p(4.0), 1e-6);
    assert_float_equal(feat("a\nb\nc").v[PF_LOG_LINES], log1p(2.0), 1e-6);
    assert_float_equal(feat("12 apples, 1,000 pears and 3.5 kg").v[PF_NUMBERS], log1p(3.0), 1e-6);
    /* explicit length requests */
    assert_float_equal(feat("Write 3 paragraphs on tea").v[PF_TARGET_WORDS], log1p(240.0), 1e-5);
    assert_float_equal(feat("Answer in one word").v[PF_TARGET_WORDS], log1p(1.0), 1e-6);
    assert_float_equal(feat("Write a short paragraph").v[PF_TARGET_WORDS], log1p(80.0), 1e-5);
    assert_float_equal(feat("Reply in 50 words").v[PF_TARGET_PRESENT], 1.0, 0);
    assert_float_equal(feat("Reply").v[PF_TARGET_PRESENT], 0.0, 0);
    assert_float_equal(feat("Give me 7 tips for sleeping").v[PF_LIST_N], log1p(7.0), 1e-6);
    assert_float_equal(feat("List ten countries").v[PF_LIST_N], log1p(10.0), 1e-6);
    assert_float_equal(feat("What are the top 5 movies").v[PF_LIST_N], log1p(5.0), 1e-6);
    assert_float_equal(feat("I have 2 cats").v[PF_LIST_N], 0.0, 0);
    /* the output-follows-input interaction */
    pred_features t = feat("Paraphrase: the quick brown fox");
    assert_float_equal(t.v[PF_TRANSFORM_X_LEN], t.v[PF_LOG_PROMPT_TOKENS], 0);
    assert_float_equal(feat("the quick brown fox").v[PF_TRANSFORM_X_LEN], 0.0, 0);
    /* cues are case-insensitive; phrase cues need every word */
    assert_true(feat("EXPLAIN IT").v[PF_OPEN_EXPLAIN] > 0);
    assert_true(feat("step by step").v[PF_STEP_BY_STEP] > 0);
    assert_float_equal(feat("a step forward").v[PF_STEP_BY_STEP], 0.0, 0);
    assert_true(feat("Is C# typed").v[PF_LANG_MENTION] > 0);
    /* yes/no and imperative only at a sentence start */
    assert_true(feat("Fine. Is it?").v[PF_YES_NO] > 0);
    assert_float_equal(feat("the answer is yes").v[PF_YES_NO], 0.0, 0);
    assert_float_equal(feat("please do not write").v[PF_IMPERATIVE] > 0, 1, 0); /* "please" */
    assert_float_equal(feat("they write").v[PF_IMPERATIVE], 0.0, 0);
    /* empty and NULL prompts are valid and give finite features */
    pred_features e;
    pred_features_text(NULL, 10, 0, &e);
    for (int i = 0; i < PF_COUNT; i++)
        assert_true(isfinite(e.v[i]));
    pred_features_text("", 0, 0, &e);
    assert_float_equal(e.v[PF_SENTENCES], 0.0, 0);
}

/* Code to complete (a signature + docstring, as HumanEval), its docstring and examples, and the
 * register features, on hand-written prompts with known counts. */
static void test_completion_and_register(void **state) {
    (void)state;
    const char *he = "from typing import List\n\n\ndef mean(xs: List[float]) -> float:\n"
                     "    \"\"\" Return the mean of xs.\n    >>> mean([1.0, 3.0])\n    2.0\n"
                     "    >>> mean([2.0])\n    2.0\n    \"\"\"\n";
    pred_features f;
    pred_features_text(he, strlen(he), 60, &f);
    assert_float_equal(f.v[PF_CODE_COMPLETION], 1.0, 0);
    /* docstring words: Return the mean of xs mean mean (letters-only runs; digits skipped) */
    assert_float_equal(f.v[PF_DOC_WORDS], log1p(7.0), 1e-6);
    assert_float_equal(f.v[PF_DOCTESTS], log1p(2.0), 1e-6);
    assert_float_equal(f.v[PF_COMPLETION_X_DOC], f.v[PF_DOC_WORDS], 0);
    assert_float_equal(f.v[PF_COMPLETION_X_LEN], log1p(60.0), 1e-5);
    /* a longer specification reads as more to write */
    const char *he2 = "def mean(xs):\n    \"\"\" Return the arithmetic mean of xs, or raise "
                      "ValueError when xs is empty; ignore None entries and\n    round to two "
                      "places.\n    \"\"\"\n";
    pred_features g = feat(he2);
    assert_float_equal(g.v[PF_CODE_COMPLETION], 1.0, 0);
    assert_true(g.v[PF_DOC_WORDS] > f.v[PF_DOC_WORDS]);
    /* finished code followed by an unindented call is not a completion; neither is a request */
    assert_float_equal(feat("def f(x):\n    return x\n\nprint(f(2))\n").v[PF_CODE_COMPLETION], 0,
                       0);
    pred_features w = feat("Write a function that adds two numbers.");
    assert_float_equal(w.v[PF_CODE_COMPLETION], 0, 0);
    assert_float_equal(w.v[PF_COMPLETION_X_LEN], 0, 0);
    assert_float_equal(w.v[PF_DOC_WORDS], 0, 0);
    /* a declaration is not a definition; a C signature with an open brace is */
    assert_float_equal(feat("int x = 3;\n    x++;\n").v[PF_CODE_COMPLETION], 0, 0);
    pred_features c = feat("int add(int a, int b) {\n  /* sum of a and b */\n");
    assert_float_equal(c.v[PF_CODE_COMPLETION], 1.0, 0);
    assert_float_equal(c.v[PF_DOC_WORDS], log1p(5.0), 1e-6);
    /* '#' is a comment only in a prompt with a definition: a markdown title is not */
    assert_float_equal(feat("# My essay\nWrite it.").v[PF_DOC_WORDS], 0, 0);
    /* vicuna-like categories */
    assert_true(feat("How many atoms are in a grain of salt? Try to explain your answer.")
                    .v[PF_FERMI] > 0);
    assert_float_equal(feat("How many apples are left").v[PF_FERMI], 0, 0);
    assert_true(feat("What would happen if the moon had never formed?").v[PF_COUNTERFACTUAL] > 0);
    /* the specification's cases, helpers given before the definition, parameters */
    assert_float_equal(f.v[PF_COMPLETION_CASES], 0, 0);
    assert_float_equal(f.v[PF_GIVEN_CODE], 0, 0); /* an import is not given code */
    assert_float_equal(f.v[PF_N_PARAMS], log1p(1.0), 1e-6);
    const char *he3 = "import math\n\ndef helper(v):\n    return v * 2\n\n\n"
                      "def combine(self, items: Dict[str, int], k=3):\n"
                      "    \"\"\" For each item, double it if it is odd; otherwise keep it.\n"
                      "    Only positive items count; if_x and x_if2 are names.\n"
                      "    >>> combine({}, 1)\n    0\n    \"\"\"\n";
    pred_features h = feat(he3);
    assert_float_equal(h.v[PF_CODE_COMPLETION], 1.0, 0);
    /* each, if, otherwise, Only (identifiers such as if_x are not words) */
    assert_float_equal(h.v[PF_COMPLETION_CASES], log1p(4.0), 1e-6);
    assert_float_equal(h.v[PF_GIVEN_CODE], log1p(2.0), 1e-6); /* the helper's two lines */
    assert_float_equal(h.v[PF_N_PARAMS], log1p(2.0), 1e-6);   /* self is not counted */
    assert_float_equal(feat("def f():\n    \"\"\"Nothing.\"\"\"\n").v[PF_N_PARAMS], 0, 0);
    assert_float_equal(feat("int add(int a, int b) {\n").v[PF_N_PARAMS], log1p(2.0), 1e-6);
    /* outside code to complete they stay 0: a chat "if" is no specification case */
    pred_features q = feat("What if it rains each day? Only if you know, otherwise skip.");
    assert_float_equal(q.v[PF_COMPLETION_CASES], 0, 0);
    assert_float_equal(q.v[PF_N_PARAMS], 0, 0);
    assert_float_equal(feat("def f(x):\n    return x\n\nprint(f(2))\n").v[PF_GIVEN_CODE], 0, 0);
    /* register */
    assert_float_equal(feat("aaa bb").v[PF_MEAN_WORD_LEN], 2.5, 1e-6);
    assert_float_equal(feat("how r u").v[PF_INFORMAL], log1p(3.0), 1e-6); /* start, end, "u" */
    assert_float_equal(feat("How are you?").v[PF_INFORMAL], 0, 0);
    assert_float_equal(feat("Can i go?").v[PF_INFORMAL], log1p(1.0), 1e-6); /* lower-case i */
    assert_true(feat("Elaborate the epistemological implications.").v[PF_MEAN_WORD_LEN] >
                feat("Is it ok to eat it?").v[PF_MEAN_WORD_LEN]);
}

/* A cue at the end of a very long prompt is read (tail window); one in the middle is not. */
static void test_long_prompt_windows(void **state) {
    (void)state;
    size_t n = 6000;
    char *p = malloc(n * 4 + 64);
    assert_non_null(p);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 3500) {
            memcpy(p + k, "explain ", 8);
            k += 8;
        }
        memcpy(p + k, "zq ", 3);
        k += 3;
    }
    memcpy(p + k, "Answer briefly.", 15);
    k += 15;
    p[k] = 0;
    pred_features f;
    pred_features_text(p, k, 0, &f);
    assert_true(f.v[PF_BREVITY] > 0);
    assert_float_equal(f.v[PF_OPEN_EXPLAIN], 0.0, 0);
    assert_float_equal(f.v[PF_SENTENCES], log1p(1.0), 1e-6);
    free(p);
}

static void test_cue_table(void **state) {
    (void)state;
    int n;
    const pred_cue *c = pred_cues(&n);
    assert_true(n > 100);
    for (int i = 0; i < n; i++) {
        assert_true(c[i].feature >= 0 && c[i].feature < PF_ENTROPY);
        if (i) assert_true(strcmp(c[i - 1].phrase, c[i].phrase) <= 0);
        for (const char *s = c[i].phrase; *s; s++)
            assert_false(*s >= 'A' && *s <= 'Z');
        /* every phrase is found from its first word */
        size_t fl = strcspn(c[i].phrase, " ");
        int j = pred_cue_first(c[i].phrase, fl);
        assert_true(j >= 0 && j <= i);
        assert_int_equal(strncmp(c[j].phrase, c[i].phrase, fl), 0);
    }
    assert_int_equal(pred_cue_first("zzzzqqq", 7), -1);
    assert_true(pred_cue_first("HOW", 3) >= 0);
}

/* ---- entropy ---- */

static void test_entropy(void **state) {
    (void)state;
    float l[1000];
    for (int i = 0; i < 1000; i++)
        l[i] = 3.0f; /* uniform */
    assert_float_equal(pred_entropy(l, 1000), log(1000.0), 1e-4);
    assert_float_equal(pred_entropy(l, 1), 0.0, 1e-6);
    l[7] = 200.0f; /* nearly one-hot */
    assert_float_equal(pred_entropy(l, 1000), 0.0, 1e-4);
    /* p = (0.5, 0.25, 0.25): H = 1.5 ln 2 */
    float q[3] = {logf(0.5f) + 40, logf(0.25f) + 40, logf(0.25f) + 40};
    assert_float_equal(pred_entropy(q, 3), 1.5 * log(2.0), 1e-5);
    /* -inf logits are zero-probability entries */
    float r[3] = {1.0f, 1.0f, -INFINITY};
    assert_float_equal(pred_entropy(r, 3), log(2.0), 1e-6);
    float bad[2] = {1.0f, NAN};
    assert_true(isnan(pred_entropy(bad, 2)));
    assert_float_equal(pred_entropy(NULL, 5), 0.0, 0);
    pred_features f = feat("Paris");
    pred_features_set_entropy(&f, NAN);
    assert_int_equal(f.has_entropy, 0);
    pred_features_set_entropy(&f, -1);
    assert_int_equal(f.has_entropy, 0);
    pred_features_set_entropy(&f, 2.0f);
    assert_int_equal(f.has_entropy, 1);
    assert_float_equal(f.v[PF_ENTROPY], 2.0, 0);
}

/* ---- model: prediction, online update ---- */

static void test_default_predicts(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    pred_features a = feat("Answer with one word: what colour is the sky?");
    pred_features b = feat("Write a detailed essay of 5 paragraphs explaining the causes of the "
                           "French Revolution, and compare them with the American one.");
    pred_estimate ea = pred_predict(m, &a), eb = pred_predict(m, &b);
    assert_true(ea.p50 >= 1 && ea.p90 >= ea.p50);
    assert_true(eb.p90 >= eb.p50);
    assert_true(eb.p50 > 3 * ea.p50); /* the fitted default separates these clearly */
    /* no entropy: the text head; with entropy at its prior mean, the same until updated */
    pred_features c = b;
    pred_features_set_entropy(&c, 2.5f);
    assert_float_equal(pred_predict(m, &c).p50, eb.p50, 1e-3 * eb.p50);
    pred_estimate z = pred_predict(NULL, &a);
    assert_float_equal(z.p50, 1.0, 0);
    pred_model_free(m);
}

static double gauss(unsigned *s) {
    double u1 = (rand_r(s) + 1.0) / (RAND_MAX + 2.0), u2 = (rand_r(s) + 1.0) / (RAND_MAX + 2.0);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* Synthetic request: a few standardized features, a known log-linear length. */
static double synth_request(const pred_model *m, unsigned *s, pred_features *f, double *ent,
                            int with_entropy) {
    memset(f, 0, sizeof *f);
    f->n = PF_COUNT;
    double z[PF_COUNT] = {0};
    for (int i = 0; i < PF_ENTROPY; i++)
        f->v[i] = m->mean[i];
    int used[3] = {PF_LOG_PROMPT_TOKENS, PF_CREATIVE, PF_BREVITY};
    for (int k = 0; k < 3; k++) {
        z[used[k]] = gauss(s);
        f->v[used[k]] = (float)(m->mean[used[k]] + m->scale[used[k]] * z[used[k]]);
    }
    double y = 3.0 + 0.5 * z[PF_LOG_PROMPT_TOKENS] + 0.8 * z[PF_CREATIVE] - 0.6 * z[PF_BREVITY];
    if (with_entropy) {
        double ze = gauss(s);
        *ent = m->mean[PF_ENTROPY] + m->scale[PF_ENTROPY] * ze;
        if (*ent < 0.01) *ent = 0.01, ze = (0.01 - m->mean[PF_ENTROPY]) / m->scale[PF_ENTROPY];
        pred_features_set_entropy(f, (float)*ent);
        y += 0.7 * ze;
    }
    return y;
}

static void test_online_update_converges(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    /* The shipped trees are fixed and non-linear in these features, so the exact relation is
     * learnable by the linear part only without them; test_online_with_trees covers the rest. */
    assert_true(m->n_trees > 0);
    m->n_trees = 0;
    unsigned s = 12345;
    const double sigma = 0.2;
    pred_features f;
    double ent;
    /* error before any update: the default knows nothing of this relation */
    double err0 = 0;
    for (int i = 0; i < 500; i++) {
        double y = synth_request(m, &s, &f, &ent, 0);
        err0 += fabs(pred_predict_log(m, &f, NULL) - y);
    }
    err0 /= 500;
    for (int i = 0; i < 6000; i++) {
        double y = synth_request(m, &s, &f, &ent, 0) + sigma * gauss(&s);
        pred_update(m, &f, (int)lround(expm1(y)));
    }
    double err1 = 0, cover = 0;
    for (int i = 0; i < 2000; i++) {
        double y = synth_request(m, &s, &f, &ent, 0);
        err1 += fabs(pred_predict_log(m, &f, NULL) - y);
        double ynoisy = y + sigma * gauss(&s);
        cover += expm1(ynoisy) <= pred_predict(m, &f).p90;
    }
    err1 /= 2000;
    cover /= 2000;
    print_message("online: mean |log error| %.3f -> %.3f, p90 coverage %.3f, q90 %.3f\n", err0,
                  err1, cover, m->head[PRED_HEAD_TEXT].q90);
    assert_true(err0 > 0.3);
    assert_true(err1 < 0.06);
    assert_true(cover > 0.85 && cover < 0.95);
    assert_float_equal(m->head[PRED_HEAD_TEXT].q90, 1.2816 * sigma, 0.08);
    assert_float_equal(m->head[PRED_HEAD_TEXT].w[1 + PF_CREATIVE], 0.8, 0.05);
    assert_float_equal(m->head[PRED_HEAD_TEXT].w[1 + PF_BREVITY], -0.6, 0.05);
    assert_int_equal(m->head[PRED_HEAD_ENT].n_updates, 0); /* no entropy was given */
    /* now with entropy: the entropy head learns its weight, the text head cannot */
    for (int i = 0; i < 6000; i++) {
        double y = synth_request(m, &s, &f, &ent, 1) + sigma * gauss(&s);
        pred_update(m, &f, (int)lround(expm1(y)));
    }
    double et = 0, ee = 0;
    for (int i = 0; i < 2000; i++) {
        double y = synth_request(m, &s, &f, &ent, 1);
        ee += fabs(pred_predict_log(m, &f, NULL) - y);
        pred_features g = f;
        g.has_entropy = 0;
        et += fabs(pred_predict_log(m, &g, NULL) - y);
    }
    print_message("entropy head: mean |log error| %.3f (text head %.3f), w_entropy %.3f\n",
                  ee / 2000, et / 2000, m->head[PRED_HEAD_ENT].w[1 + PF_ENTROPY]);
    assert_true(ee / 2000 < 0.08);
    assert_true(et / 2000 > 0.3);
    assert_float_equal(m->head[PRED_HEAD_ENT].w[1 + PF_ENTROPY], 0.7, 0.06);
    /* garbage updates are ignored */
    pred_head before = m->head[PRED_HEAD_TEXT];
    pred_update(m, &f, -5);
    pred_update(NULL, &f, 10);
    pred_update(m, NULL, 10);
    assert_memory_equal(&before, &m->head[PRED_HEAD_TEXT], sizeof before);
    pred_model_free(m);
}

/* With the shipped trees in place, the linear part still absorbs a new relation: the error
 * falls far, though not to the noise floor (the trees' steps are fixed). */
static void test_online_with_trees(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    unsigned s = 777;
    pred_features f;
    double ent, e0 = 0, e1 = 0;
    for (int i = 0; i < 500; i++) {
        double y = synth_request(m, &s, &f, &ent, 0);
        e0 += fabs(pred_predict_log(m, &f, NULL) - y);
    }
    for (int i = 0; i < 6000; i++) {
        double y = synth_request(m, &s, &f, &ent, 0) + 0.2 * gauss(&s);
        pred_update(m, &f, (int)lround(expm1(y)));
    }
    for (int i = 0; i < 500; i++) {
        double y = synth_request(m, &s, &f, &ent, 0);
        e1 += fabs(pred_predict_log(m, &f, NULL) - y);
    }
    print_message("online with trees: mean |log error| %.3f -> %.3f\n", e0 / 500, e1 / 500);
    assert_true(e1 < 0.25 * e0);
    assert_true(e1 / 500 < 0.15);
    pred_model_free(m);
}

/* ---- offline fit ---- */

static void test_fit_recovers_relation(void **state) {
    (void)state;
    pred_data d;
    memset(&d, 0, sizeof d);
    enum { N = 3000 };
    d.n_sets = 1;
    d.sets = calloc(1, sizeof *d.sets);
    d.prompts = calloc(N, sizeof *d.prompts);
    d.recs = calloc(N, sizeof *d.recs);
    assert_non_null(d.sets);
    assert_non_null(d.prompts);
    assert_non_null(d.recs);
    d.sets[0].name = strdup("synthetic");
    unsigned s = 99;
    for (int i = 0; i < N; i++) {
        pred_prompt *p = &d.prompts[i];
        p->n_resp = 1;
        p->test = i % 5 == 0;
        p->f.n = PF_COUNT;
        for (int k = 0; k < PF_ENTROPY; k++)
            p->f.v[k] = (float)(rand_r(&s) % 3);
        double y = 2.0 + 0.4 * p->f.v[PF_DETAIL] - 0.3 * p->f.v[PF_BREVITY] + 0.1 * gauss(&s);
        d.recs[i] = (pred_record){i, (float)expm1(y), 1.0f};
    }
    d.n_prompts = d.n_recs = N;
    pred_fit_opts o;
    pred_fit_defaults(&o);
    o.n_trees = 0; /* the linear part alone must recover the relation */
    weft_err err;
    pred_model *m = pred_fit(&d, &o, NULL, &err);
    assert_non_null(m);
    /* coefficients are on standardized features: w = beta * scale */
    assert_float_equal(m->head[PRED_HEAD_TEXT].w[1 + PF_DETAIL] / m->scale[PF_DETAIL], 0.4, 0.03);
    assert_float_equal(m->head[PRED_HEAD_TEXT].w[1 + PF_BREVITY] / m->scale[PF_BREVITY], -0.3,
                       0.03);
    assert_float_equal(m->head[PRED_HEAD_TEXT].w[1 + PF_CODE_PRESENT], 0.0, 0.03);
    assert_float_equal(m->head[PRED_HEAD_TEXT].q90, 1.2816 * 0.1, 0.03);
    pred_eval ev;
    pred_model *ms[PRED_EV_N];
    int none[PF_COUNT] = {0}, plen[PF_COUNT] = {0};
    plen[PF_LOG_PROMPT_TOKENS] = 1;
    ms[0] = m;
    ms[1] = pred_fit(&d, &o, none, &err);
    ms[2] = pred_fit(&d, &o, plen, &err);
    assert_non_null(ms[1]);
    assert_non_null(ms[2]);
    assert_float_equal(ms[1]->head[0].w[1 + PF_DETAIL], 0.0, 0);
    assert_int_equal(pred_evaluate(&d, ms, &ev, &err), 0);
    assert_int_equal(ev.n_rows, 2); /* the set, pooled */
    assert_int_equal(ev.rows[0].n, N / 5);
    assert_true(ev.rows[0].rho[PRED_EV_MODEL] > 0.8);
    assert_true(fabs(ev.rows[0].rho[PRED_EV_CONST]) < 1e-12);
    assert_true(ev.rows[0].mae[PRED_EV_MODEL] < ev.rows[0].mae[PRED_EV_PLEN]);
    assert_float_equal(ev.rows[0].cov[PRED_EV_MODEL], 0.9, 0.04);
    /* bootstrap intervals: around the point estimate, and the model clearly beats the
     * prompt-length baseline (which sees only noise here) */
    assert_true(ev.rows[0].rho_lo <= ev.rows[0].rho[PRED_EV_MODEL]);
    assert_true(ev.rows[0].rho_hi >= ev.rows[0].rho[PRED_EV_MODEL]);
    assert_true(ev.rows[0].rho_hi - ev.rows[0].rho_lo < 0.1); /* 600 prompts, rho ~0.9 */
    assert_true(ev.rows[0].drho_lo > 0.5);
    assert_float_equal(ev.rows[0].p_beats, 1.0, 0);
    pred_eval_free(&ev);
    pred_model_free(ms[0]);
    /* with trees (on pure noise beyond the linear relation) the ranking stays as good */
    o.n_trees = 50;
    ms[0] = pred_fit(&d, &o, NULL, &err);
    assert_non_null(ms[0]);
    assert_int_equal(ms[0]->n_trees, 50);
    assert_int_equal(pred_evaluate(&d, ms, &ev, &err), 0);
    assert_true(ev.rows[0].rho[PRED_EV_MODEL] > 0.8);
    pred_eval_free(&ev);
    for (int k = 0; k < PRED_EV_N; k++)
        pred_model_free(ms[k]);
    /* all held out: a clear error */
    for (int i = 0; i < N; i++)
        d.prompts[i].test = 1;
    assert_null(pred_fit(&d, &o, NULL, &err));
    assert_non_null(strstr(err.msg, "no training records"));
    pred_data_free(&d);
}

/* A pred_data of n single-answer train prompts with random irrelevant features; y(i) gives the
 * log1p target of prompt i, set(i) its set (of n_sets). */
static void synth_data(pred_data *d, int n, int n_sets, double (*y)(int, unsigned *),
                       int (*set)(int)) {
    memset(d, 0, sizeof *d);
    d->n_sets = n_sets;
    d->sets = calloc((size_t)n_sets, sizeof *d->sets);
    d->prompts = calloc((size_t)n, sizeof *d->prompts);
    d->recs = calloc((size_t)n, sizeof *d->recs);
    assert_non_null(d->sets);
    assert_non_null(d->prompts);
    assert_non_null(d->recs);
    for (int k = 0; k < n_sets; k++) {
        char name[16];
        snprintf(name, sizeof name, "set%d", k);
        d->sets[k].name = strdup(name);
    }
    unsigned s = 7;
    for (int i = 0; i < n; i++) {
        pred_prompt *p = &d->prompts[i];
        p->n_resp = 1;
        p->set = set(i);
        p->f.n = PF_COUNT;
        for (int k = 0; k < PF_ENTROPY; k++)
            p->f.v[k] = (float)(rand_r(&s) % 3);
        d->recs[i] = (pred_record){i, (float)expm1(y(i, &s)), 1.0f};
    }
    d->n_prompts = d->n_recs = n;
}

/* 70% of answers at 2, 30% at 5 (log units): mean 2.9, median 2 */
static double skewed_y(int i, unsigned *s) {
    (void)i;
    return rand_r(s) % 10 < 7 ? 2.0 : 5.0;
}
static int one_set(int i) {
    (void)i;
    return 0;
}
/* set 0: 1000 prompts at 1; set 1: 100 prompts at 3 */
static double by_set_y(int i, unsigned *s) {
    (void)s;
    return i < 1000 ? 1.0 : 3.0;
}
static int two_sets(int i) {
    return i >= 1000;
}

/* The absolute loss moves the trees toward medians, the squared loss toward means; set_power
 * balances sets: 1 = every prompt alike, 0 = every set alike. */
static void test_fit_loss_and_set_balance(void **state) {
    (void)state;
    pred_data d;
    synth_data(&d, 2000, 1, skewed_y, one_set);
    pred_fit_opts o;
    pred_fit_defaults(&o);
    o.n_trees = 80;
    o.min_leaf = 200; /* leaves of 200 prompts: the trees cannot chase single answers */
    o.ridge = 1e6; /* the linear part stays at the mean level: the trees do the work */
    weft_err err;
    o.absolute = 0;
    pred_model *sq = pred_fit(&d, &o, NULL, &err);
    o.absolute = 1;
    pred_model *ab = pred_fit(&d, &o, NULL, &err);
    assert_non_null(sq);
    assert_non_null(ab);
    /* averaged over the prompts: the trees' splits on the (irrelevant) random features move
     * single prompts, not the level */
    double msq = 0, mab = 0;
    for (int i = 0; i < d.n_prompts; i++) {
        msq += log1p(pred_predict(sq, &d.prompts[i].f).p50) / d.n_prompts;
        mab += log1p(pred_predict(ab, &d.prompts[i].f).p50) / d.n_prompts;
    }
    assert_float_equal(msq, 2.9, 0.1);
    assert_float_equal(mab, 2.0, 0.1);
    pred_model_free(sq);
    pred_model_free(ab);
    pred_data_free(&d);

    synth_data(&d, 1100, 2, by_set_y, two_sets);
    int none[PF_COUNT] = {0};
    pred_fit_defaults(&o);
    o.set_power = 1;
    pred_model *every_prompt = pred_fit(&d, &o, none, &err);
    o.set_power = 0;
    pred_model *every_set = pred_fit(&d, &o, none, &err);
    assert_non_null(every_prompt);
    assert_non_null(every_set);
    assert_float_equal(every_prompt->head[0].w[0], (1000 * 1.0 + 100 * 3.0) / 1100, 1e-6);
    assert_float_equal(every_set->head[0].w[0], 2.0, 1e-6);
    pred_model_free(every_prompt);
    pred_model_free(every_set);
    pred_data_free(&d);
}

/* The validation part of the train split (tune) is about 1 in PRED_VAL_MOD prompts and
 * independent of the held-out split. */
static void test_validation_split(void **state) {
    (void)state;
    int val = 0, test = 0, both = 0;
    enum { N = 20000 };
    for (int i = 0; i < N; i++) {
        char t[32];
        snprintf(t, sizeof t, "prompt number %d", i);
        int v = pred_is_val_prompt(t), h = pred_is_test_prompt(t);
        val += v;
        test += h;
        both += v && h;
    }
    assert_float_equal((double)val / N, 1.0 / PRED_VAL_MOD, 0.015);
    assert_float_equal((double)test / N, 1.0 / PRED_TEST_MOD, 0.015);
    assert_float_equal((double)both / N, 1.0 / (PRED_VAL_MOD * PRED_TEST_MOD), 0.008);
}

/* ---- online update of the baselines, model copies ---- */

/* A hand-made linear model over standardized = raw features (mean 0, scale 1), no trees. */
static pred_model *plain_model(void) {
    pred_model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    for (int i = 0; i < PF_COUNT; i++)
        m->scale[i] = 1.0f;
    m->forget = 0.998;
    m->prior_n = 200;
    m->q_step = 0.01;
    m->max_tokens = 1e7;
    pred_model_reset_online(m);
    return m;
}

static void test_masked_update_and_clone(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    pred_model *c = pred_model_clone(m, &err), *c2 = pred_model_clone(m, &err);
    assert_non_null(c);
    assert_non_null(c2);
    assert_true(c->trees != m->trees);
    assert_int_equal(c->n_trees, m->n_trees);
    assert_memory_equal(c->trees, m->trees, sizeof *m->trees * (size_t)m->n_trees);
    assert_memory_equal(c->head, m->head, sizeof m->head);
    /* the masked update with no mask is the server's update, bit for bit */
    pred_features f = feat("Explain in detail how tides work, step by step.");
    for (int i = 0; i < 50; i++) {
        pred_update(c, &f, 300 + i);
        pred_update_masked(c2, &f, 300 + i, NULL);
    }
    assert_memory_equal(c->head, c2->head, sizeof c->head);
    /* the copy is independent of the original */
    assert_true(c->head[PRED_HEAD_TEXT].w[0] != m->head[PRED_HEAD_TEXT].w[0]);
    pred_model_free(c);
    pred_model_free(c2);
    pred_model_free(m);

    /* constant (no feature): the bias becomes a running mean; nothing else moves although the
     * features are non-zero */
    int none[PF_COUNT] = {0}, plen[PF_COUNT] = {0};
    plen[PF_LOG_PROMPT_TOKENS] = 1;
    pred_model *k = plain_model(), *l = plain_model();
    k->head[PRED_HEAD_TEXT].w[1 + PF_DETAIL] = 0.25; /* a fixed weight the mask must keep */
    unsigned s = 4242;
    for (int i = 0; i < 8000; i++) {
        pred_features g;
        memset(&g, 0, sizeof g);
        g.n = PF_COUNT;
        for (int j = 0; j < PF_ENTROPY; j++)
            g.v[j] = (float)(rand_r(&s) % 3);
        double y = 3.0 + 0.1 * gauss(&s);
        pred_update_masked(k, &g, (int)lround(expm1(y)), none);
        double yl = 1.0 + 0.5 * g.v[PF_LOG_PROMPT_TOKENS] + 0.1 * gauss(&s);
        pred_update_masked(l, &g, (int)lround(expm1(yl)), plen);
    }
    /* bias = mean of y - 0.25 * mean(detail) = 3 - 0.25 (detail uniform on 0..2) */
    assert_float_equal(k->head[PRED_HEAD_TEXT].w[0], 3.0 - 0.25, 0.08);
    assert_float_equal(k->head[PRED_HEAD_TEXT].w[1 + PF_DETAIL], 0.25, 0);
    assert_float_equal(l->head[PRED_HEAD_TEXT].w[0], 1.0, 0.1);
    assert_float_equal(l->head[PRED_HEAD_TEXT].w[1 + PF_LOG_PROMPT_TOKENS], 0.5, 0.05);
    for (int j = 0; j < PF_COUNT; j++) {
        if (j != PF_DETAIL) assert_float_equal(k->head[PRED_HEAD_TEXT].w[1 + j], 0.0, 0);
        if (j != PF_LOG_PROMPT_TOKENS) assert_float_equal(l->head[PRED_HEAD_TEXT].w[1 + j], 0.0, 0);
    }
    assert_int_equal(k->head[PRED_HEAD_ENT].n_updates, 0);
    /* the quantile tracker follows too (after its climb over the first, large residuals):
     * the prompt-length line fits exactly, residual noise 0.1 -> q90 ~ 0.128 */
    assert_float_equal(l->head[PRED_HEAD_TEXT].q90, 0.128, 0.04);
    pred_model_free(k);
    pred_model_free(l);
}

/* Folds: about 1/K each, a function of the text only, independent of the held-out split. */
static void test_folds(void **state) {
    (void)state;
    enum { N = 20000, K = 5 };
    int cnt[K] = {0}, test_in_0 = 0, test = 0;
    for (int i = 0; i < N; i++) {
        char t[32];
        snprintf(t, sizeof t, "prompt number %d", i);
        int f = pred_prompt_fold(t, K);
        assert_true(f >= 0 && f < K);
        assert_int_equal(f, pred_prompt_fold(t, K));
        cnt[f]++;
        test += pred_is_test_prompt(t);
        test_in_0 += pred_is_test_prompt(t) && f == 0;
    }
    for (int f = 0; f < K; f++)
        assert_float_equal((double)cnt[f] / N, 1.0 / K, 0.015);
    assert_float_equal((double)test_in_0 / test, 1.0 / K, 0.03);
    assert_int_equal(pred_prompt_fold("x", 1), 0);
}

/* N single-answer prompts with texts, one set: y = 2 + 0.4 detail - 0.3 brevity + noise. */
static void text_data(pred_data *d, int n, double level) {
    tu_pred_data_new(d, n, "synthetic", "synthetic prompt");
    unsigned s = 31;
    for (int i = 0; i < n; i++) {
        pred_prompt *p = &d->prompts[i];
        p->test = pred_is_test_prompt(p->text);
        for (int k = 0; k < PF_ENTROPY; k++)
            p->f.v[k] = (float)(rand_r(&s) % 3);
        double y = level + 0.4 * p->f.v[PF_DETAIL] - 0.3 * p->f.v[PF_BREVITY] + 0.1 * gauss(&s);
        d->recs[i] = (pred_record){i, (float)expm1(y), 1.0f};
    }
    d->n_prompts = d->n_recs = n;
}

/* Cross-validation scores every prompt once, out of fold: a fold's estimates are exactly those
 * of the fit on the other folds. Prompts marked -1 take no part. */
static void test_crossval_out_of_fold(void **state) {
    (void)state;
    enum { N = 1500, K = 3 };
    pred_data d;
    text_data(&d, N, 2.0);
    d.prompts[7].test = -1;
    pred_fit_opts o;
    pred_fit_defaults(&o);
    o.n_trees = 10;
    pred_estimate *est[PRED_EV_N];
    for (int k = 0; k < PRED_EV_N; k++) {
        est[k] = calloc(N, sizeof *est[k]);
        assert_non_null(est[k]);
    }
    weft_err err;
    assert_int_equal(pred_crossval(&d, &o, &o, 1, 0, 1, est, &err), -1);
    assert_non_null(strstr(err.msg, "at least 2 folds"));
    assert_int_equal(pred_crossval(&d, &o, &o, K, 0, 1, est, &err), 0);
    int scored = 0;
    for (int p = 0; p < N; p++) {
        if (p == 7) {
            assert_int_equal(d.prompts[p].test, -1);
            assert_float_equal(est[PRED_EV_MODEL][p].p50, 0, 0);
            continue;
        }
        assert_int_equal(d.prompts[p].test, 1);
        assert_true(est[PRED_EV_MODEL][p].p50 >= 1);
        scored++;
    }
    assert_int_equal(scored, N - 1);
    /* fold 1 by hand: the same fit on the other folds gives the same estimates */
    for (int p = 0; p < N; p++)
        if (p != 7) d.prompts[p].test = pred_prompt_fold(d.prompts[p].text, K) == 1;
    pred_model *m = pred_fit(&d, &o, NULL, &err), *c = pred_fit(&d, &o, pred_ev_use(1), &err);
    assert_non_null(m);
    assert_non_null(c);
    int checked = 0;
    for (int p = 0; p < N; p++)
        if (d.prompts[p].test == 1) {
            assert_float_equal(est[PRED_EV_MODEL][p].p50, pred_predict(m, &d.prompts[p].f).p50, 0);
            assert_float_equal(est[PRED_EV_CONST][p].p50, pred_predict(c, &d.prompts[p].f).p50, 0);
            checked++;
        }
    assert_true(checked > N / K / 2);
    pred_model_free(m);
    pred_model_free(c);
    for (int p = 0; p < N; p++)
        if (p != 7) d.prompts[p].test = 1;
    pred_eval ev;
    assert_int_equal(pred_evaluate_est(&d, est, 200, &ev, &err), 0);
    assert_int_equal(ev.rows[0].n, N - 1);
    assert_true(ev.rows[0].rho[PRED_EV_MODEL] > 0.8);
    assert_true(ev.rows[0].dmae_p_hi < 0 && ev.rows[0].dmae_c_hi < 0);
    assert_float_equal(ev.rows[0].p_beats_all, 1.0, 0);
    pred_eval_free(&ev);
    for (int k = 0; k < PRED_EV_N; k++)
        free(est[k]);
    pred_data_free(&d);
}

/* Online replay: the served answers run one log unit longer than the offline data; replaying
 * with the online update absorbs the level for the model and the constant alike, the estimates
 * are deterministic for a seed, and another seed replays in another order. */
static void test_online_replay(void **state) {
    (void)state;
    enum { N = 3000 };
    pred_data d, served;
    text_data(&d, N, 2.0);
    text_data(&served, N, 3.0);
    for (int p = 0; p < N; p++) /* a stream of N served requests */
        served.prompts[p].test = 1;
    pred_fit_opts o;
    pred_fit_defaults(&o);
    o.n_trees = 0;
    weft_err err;
    pred_model *ms[PRED_EV_N];
    for (int k = 0; k < PRED_EV_N; k++) {
        ms[k] = pred_fit(&d, &o, pred_ev_use(k), &err);
        assert_non_null(ms[k]);
    }
    pred_estimate *est[PRED_EV_N], *est2[PRED_EV_N];
    for (int k = 0; k < PRED_EV_N; k++) {
        est[k] = calloc(N, sizeof *est[k]);
        est2[k] = calloc(N, sizeof *est2[k]);
        assert_non_null(est[k]);
        assert_non_null(est2[k]);
    }
    pred_eval off, on;
    assert_int_equal(pred_evaluate_boot(&served, ms, 0, &off, &err), 0);
    assert_int_equal(pred_online_replay(&served, ms, 1, est, &err), 0);
    assert_int_equal(pred_evaluate_est(&served, est, 0, &on, &err), 0);
    print_message("online replay: MAE model %.3f -> %.3f, const %.3f -> %.3f\n",
                  off.rows[0].mae[PRED_EV_MODEL], on.rows[0].mae[PRED_EV_MODEL],
                  off.rows[0].mae[PRED_EV_CONST], on.rows[0].mae[PRED_EV_CONST]);
    assert_true(off.rows[0].mae[PRED_EV_MODEL] > 0.9);
    /* the RLS prior is worth 200 requests: the level is absorbed over the first few hundred */
    assert_true(on.rows[0].mae[PRED_EV_MODEL] < 0.4 * off.rows[0].mae[PRED_EV_MODEL]);
    assert_true(on.rows[0].mae[PRED_EV_CONST] < off.rows[0].mae[PRED_EV_CONST] - 0.4);
    assert_true(on.rows[0].rho[PRED_EV_MODEL] > 0.8);
    /* the offline models are not touched by the replay */
    pred_eval again;
    assert_int_equal(pred_evaluate_boot(&served, ms, 0, &again, &err), 0);
    assert_float_equal(again.rows[0].mae[PRED_EV_MODEL], off.rows[0].mae[PRED_EV_MODEL], 0);
    /* same seed: same estimates; another seed: another order */
    assert_int_equal(pred_online_replay(&served, ms, 1, est2, &err), 0);
    assert_memory_equal(est[0], est2[0], sizeof *est[0] * N);
    assert_int_equal(pred_online_replay(&served, ms, 2, est2, &err), 0);
    assert_true(memcmp(est[0], est2[0], sizeof *est[0] * N) != 0);
    pred_eval_free(&off);
    pred_eval_free(&on);
    pred_eval_free(&again);
    for (int k = 0; k < PRED_EV_N; k++) {
        pred_model_free(ms[k]);
        free(est[k]);
        free(est2[k]);
    }
    pred_data_free(&d);
    pred_data_free(&served);
}

/* ---- rank correlations ---- */

static double naive_kendall_b(const double *x, const double *y, int n) {
    double c = 0, dsc = 0, tx = 0, ty = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double a = x[i] - x[j], b = y[i] - y[j];
            if (a == 0 && b == 0) continue;
            if (a == 0)
                tx++;
            else if (b == 0)
                ty++;
            else if ((a > 0) == (b > 0))
                c++;
            else
                dsc++;
        }
    return (c - dsc) / sqrt((c + dsc + tx) * (c + dsc + ty));
}

static void test_rank_correlations(void **state) {
    (void)state;
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {5, 6, 7, 8, 7};
    /* scipy.stats.spearmanr / kendalltau on these: 0.8207826816681233, 0.7378647873726218 */
    assert_float_equal(pred_spearman(x, y, 5), 0.8207826816681233, 1e-12);
    assert_float_equal(pred_kendall(x, y, 5), 0.7378647873726218, 1e-12);
    double r[5] = {5, 4, 3, 2, 1}, c[5] = {2, 2, 2, 2, 2};
    assert_float_equal(pred_spearman(x, r, 5), -1.0, 1e-12);
    assert_float_equal(pred_kendall(x, r, 5), -1.0, 1e-12);
    assert_float_equal(pred_spearman(x, c, 5), 0.0, 0);
    assert_float_equal(pred_kendall(c, x, 5), 0.0, 0);
    unsigned s = 7;
    enum { N = 700 };
    double a[N], b[N];
    for (int t = 0; t < 5; t++) {
        for (int i = 0; i < N; i++) {
            a[i] = rand_r(&s) % 20;
            b[i] = a[i] * (t - 2) + rand_r(&s) % 15;
        }
        assert_float_equal(pred_kendall(a, b, N), naive_kendall_b(a, b, N), 1e-9);
    }
}

/* ---- parameter files ---- */

static void test_save_load_round_trip(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    /* move it away from the default so the file must carry the online state */
    pred_features f = feat("Write a long story about a dragon, in detail.");
    for (int i = 0; i < 50; i++)
        pred_update(m, &f, 900);
    char path[4096];
    tu_scratch("predict-params.txt", path, sizeof path);
    assert_int_equal(pred_model_save(m, path, &err), 0);
    pred_model *l = pred_model_load(path, &err);
    if (!l) fail_msg("%s", err.msg);
    const char *ps[] = {"Write a long story about a dragon, in detail.", "Who wrote Hamlet?",
                        "def f(x):\n    return x", "Translate to French: cat"};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        pred_features g = feat(ps[i]);
        pred_estimate a = pred_predict(m, &g), b = pred_predict(l, &g);
        assert_float_equal(a.p50, b.p50, 1e-4 * a.p50);
        assert_float_equal(a.p90, b.p90, 1e-4 * a.p90);
    }
    /* a second save is byte-identical */
    char path2[4096];
    tu_scratch("predict-params2.txt", path2, sizeof path2);
    assert_int_equal(pred_model_save(l, path2, &err), 0);
    char *t1 = tu_read_file(path, NULL), *t2 = tu_read_file(path2, NULL);
    assert_non_null(t1);
    assert_non_null(t2);
    assert_string_equal(t1, t2);
    free(t1);
    free(t2);
    remove(path);
    remove(path2);
    assert_int_not_equal(pred_model_save(m, "/nonexistent-dir/x/params.txt", &err), 0);
    assert_non_null(strstr(err.msg, "cannot create"));
    pred_model_free(m);
    pred_model_free(l);
}

/* Replaces the first occurrence of from in text by to (malloc'd). */
static char *edit(const char *text, const char *from, const char *to) {
    const char *p = strstr(text, from);
    assert_non_null(p);
    size_t n = strlen(text) - strlen(from) + strlen(to);
    char *o = malloc(n + 1);
    assert_non_null(o);
    size_t k = (size_t)(p - text);
    memcpy(o, text, k);
    strcpy(o + k, to);
    strcat(o, p + strlen(from));
    return o;
}

static void expect_refused(const char *text, size_t len, const char *want) {
    weft_err err = {{0}};
    pred_model *m = pred_model_parse(text, len, "P", &err);
    if (m) fail_msg("accepted a file that should fail with '%s'", want);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
}

static void test_malformed_params_refused(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    char *good = pred_model_format(m, &err);
    assert_non_null(good);
    pred_model *ok = pred_model_parse(good, strlen(good), "P", &err);
    assert_non_null(ok);
    pred_model_free(ok);
    static const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"weft-predict-params 1", "hello", "P:1: not a weft length-model parameter file"},
        {"weft-predict-params 1", "weft-predict-params 2", "version '2'"},
        {"\nend", "\nbogus 1\nend", "unknown key 'bogus'"},
        {"forget 0.998", "forget abc", "'abc' is not a finite number"},
        {"forget 0.998", "forget nan", "'nan' is not a finite number"},
        {"forget 0.998", "forget 2", "forget must be in (0.5, 1]"},
        {"prior_n 200", "prior_n 0", "prior_n must be in"},
        {"feature log_lines", "feature log_linez",
         "feature 1 is 'log_lines' in this build, the file says 'log_linez'"},
        {"\nend", "\n", "missing the closing 'end'"},
        {"\nend", "\nend\nforget 0.9", "text after 'end'"},
        {"\nbias ", "\nbias 1 #", "'bias' takes 2 values, got 1"},
        {"\nq90 ", "\nq90 -1 0.5 #", "q90 values must be in [0, 20]"},
        {"max_tokens 8192", "", "missing 'max_tokens'"},
        {"feature entropy 2.5 1.5 0", "feature entropy 2.5 1.5 1",
         "text-only head cannot weigh 'entropy'"},
        {"feature entropy 2.5 1.5", "feature entropy 2.5 0",
         "scale of feature 'entropy' must be > 0"},

    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = edit(good, cases[i].from, cases[i].to);
        expect_refused(t, strlen(t), cases[i].want);
        free(t);
    }
    char from[64], to[64], want[128];
    snprintf(from, sizeof from, "features %d", PF_COUNT);
    snprintf(to, sizeof to, "features %d", PF_COUNT - 1);
    snprintf(want, sizeof want, "file has %d features, this build computes %d", PF_COUNT - 1,
             PF_COUNT);
    char *t = edit(good, from, to);
    expect_refused(t, strlen(t), want);
    free(t);
    t = edit(good, "feature entropy", "# feature entropy");
    snprintf(want, sizeof want, "%d feature lines, need %d", PF_COUNT - 1, PF_COUNT);
    expect_refused(t, strlen(t), want);
    free(t);
    t = edit(good, "\ntrees ", "\ntrees 1 #");
    expect_refused(t, strlen(t), "more 'tree' lines than 'trees' declared (1)");
    free(t);
    t = edit(good, "\ntree ", "\ntree 99 ");
    expect_refused(t, strlen(t), "'tree' takes 46 values, got 47");
    free(t);
    t = edit(good, "\ntree ", "\ntree 77 0 #");
    expect_refused(t, strlen(t), "'tree' takes 46 values, got 2");
    free(t);
    t = edit(good, "\ntrees ", "\ntrees 9999 #");
    expect_refused(t, strlen(t), "'trees' takes a count in [0, 2000]");
    free(t);
    expect_refused("", 0, "missing the header line");
    char nul[] = "weft-predict-params 1\n\0end\n";
    expect_refused(nul, sizeof nul - 1, "contains a NUL byte");
    size_t big = (1u << 20) + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, '#', big);
    expect_refused(huge, big, "more than the 1048576 a parameter file may have");
    free(huge);
    /* from files */
    assert_null(pred_model_load("/nonexistent/params.txt", &err));
    assert_non_null(strstr(err.msg, "/nonexistent/params.txt: cannot open"));
    char path[4096];
    tu_scratch("predict-empty.txt", path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(pred_model_load(path, &err));
    assert_non_null(strstr(err.msg, "empty file"));
    remove(path);
    free(good);
    pred_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feature_names),
        cmocka_unit_test(test_each_feature_fires),
        cmocka_unit_test(test_feature_values),
        cmocka_unit_test(test_long_prompt_windows),
        cmocka_unit_test(test_completion_and_register),
        cmocka_unit_test(test_cue_table),
        cmocka_unit_test(test_entropy),
        cmocka_unit_test(test_default_predicts),
        cmocka_unit_test(test_online_update_converges),
        cmocka_unit_test(test_online_with_trees),
        cmocka_unit_test(test_fit_recovers_relation),
        cmocka_unit_test(test_fit_loss_and_set_balance),
        cmocka_unit_test(test_validation_split),
        cmocka_unit_test(test_masked_update_and_clone),
        cmocka_unit_test(test_folds),
        cmocka_unit_test(test_crossval_out_of_fold),
        cmocka_unit_test(test_online_replay),
        cmocka_unit_test(test_rank_correlations),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_malformed_params_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
