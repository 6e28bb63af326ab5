/* test_predict_stack.c — the length model's per-kind stack with prompt length (src/predict/
 * stack.c): prompt kinds on hand-written prompts, the stack's least squares recovering known
 * coefficients (and shrinking to the identity), the whole fit recovering a per-kind prompt-length
 * relation that one model over all kinds cannot express, the parameter file's 'stack' lines
 * (round trip, files without them, malformed ones), and the online update through the stack. */
#include "support/pred_util.h"
#include "support/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predict/pred_data.h"
#include "predict/pred_internal.h"

static double gauss(unsigned *s) {
    double u1 = (rand_r(s) + 1.0) / (RAND_MAX + 2.0), u2 = (rand_r(s) + 1.0) / (RAND_MAX + 2.0);
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int kind_of(const char *p) {
    pred_features f;
    pred_features_text(p, strlen(p), 0, &f);
    return pred_prompt_kind(f.v);
}

static void test_prompt_kinds(void **state) {
    (void)state;
    assert_int_equal(kind_of("def add(a, b):\n    \"\"\"Return the sum of a and b.\n"
                             "    >>> add(2, 3)\n    5\n    \"\"\"\n"),
                     PRED_KIND_COMPLETION);
    assert_int_equal(kind_of("Tom has 3 apples and buys 5 more bags with 4 apples each. How "
                             "many apples does he have in total?"),
                     PRED_KIND_MATHS);
    assert_int_equal(kind_of("Write a Python function that reverses a string."), PRED_KIND_CODE);
    assert_int_equal(kind_of("Tell me about the history of Paris."), PRED_KIND_CHAT);
    assert_int_equal(kind_of(""), PRED_KIND_CHAT);
    assert_string_equal(pred_kind_name(PRED_KIND_COMPLETION), "completion");
    assert_string_equal(pred_kind_name(PRED_KIND_COUNT), "?");
}

static void test_stack_fit_kind(void **state) {
    (void)state;
    enum { N = 400 };
    double y[N], raw[N], lp[N], w[N];
    unsigned s = 5;
    for (int i = 0; i < N; i++) {
        raw[i] = 3 + gauss(&s);
        lp[i] = 4 + 0.7 * gauss(&s);
        w[i] = 0.5 + (i % 3);
        y[i] = 0.5 + 0.6 * raw[i] + 0.3 * lp[i];
    }
    pred_stack st = pred_stack_fit_kind(y, raw, lp, w, N, 0, 1);
    assert_float_equal(st.c0, 0.5, 1e-9);
    assert_float_equal(st.c1, 0.6, 1e-9);
    assert_float_equal(st.c2, 0.3, 1e-9);
    /* a huge ridge keeps c1 = 1, c2 = 0 and fits the level only */
    st = pred_stack_fit_kind(y, raw, lp, w, N, 1e12, 1);
    assert_float_equal(st.c1, 1, 1e-6);
    assert_float_equal(st.c2, 0, 1e-6);
    double e = 0, sw = 0;
    for (int i = 0; i < N; i++) {
        e += w[i] * (y[i] - (st.c0 + raw[i]));
        sw += w[i];
    }
    assert_float_equal(e / sw, 0, 1e-6);
    /* absolute loss: a quarter of the rows far above the line (bimodal answers) move the
     * least-squares fit but not the least-absolute one */
    double yo[N], sc[N];
    for (int i = 0; i < N; i++)
        yo[i] = y[i] + (i % 4 == 0 ? 3.0 : 0.0);
    pred_stack ls = pred_stack_fit_kind(yo, raw, lp, w, N, 0, 1);
    pred_stack la = pred_stack_fit_kind_lad(yo, raw, lp, w, N, 0, 1, sc);
    print_message("with outliers: LS c0 %.3f c1 %.3f c2 %.3f, LAD c0 %.3f c1 %.3f c2 %.3f\n", ls.c0,
                  ls.c1, ls.c2, la.c0, la.c1, la.c2);
    /* at the centre (raw 3, lp 4; truth 3.5) LS sits near the mean shift of 0.75 above */
    assert_true(ls.c0 + 3 * ls.c1 + 4 * ls.c2 - 3.5 > 0.5);
    assert_float_equal(la.c0, 0.5, 0.05);
    assert_float_equal(la.c1, 0.6, 0.01);
    assert_float_equal(la.c2, 0.3, 0.01);
    /* too little weight: the identity */
    st = pred_stack_fit_kind(y, raw, lp, w, N, 0, 1e9);
    assert_true(st.c0 == 0 && st.c1 == 1 && st.c2 == 0);
    st = pred_stack_fit_kind(y, raw, lp, w, 0, 0, 0);
    assert_true(st.c0 == 0 && st.c1 == 1 && st.c2 == 0);
}

/* Chat prompts: length follows a cue, not prompt length. Completions (code_completion = 1):
 * length follows prompt length with slope 0.8. The features carry no completion x length
 * interaction, so without trees one linear model can only give prompt length one slope; the
 * stack gives each kind its own. */
static void kind_data(pred_data *d, int n) {
    tu_pred_data_new(d, n, "kinds", "prompt");
    unsigned s = 21;
    for (int i = 0; i < n; i++) {
        pred_prompt *p = &d->prompts[i];
        p->test = i % 5 == 0;
        int completion = i % 2;
        p->f.v[PF_CODE_COMPLETION] = (float)completion;
        p->f.v[PF_DETAIL] = (float)(rand_r(&s) % 3);
        p->f.v[PF_LOG_PROMPT_TOKENS] = (float)(2 + 4.0 * rand_r(&s) / RAND_MAX);
        double lp = p->f.v[PF_LOG_PROMPT_TOKENS];
        double y = completion ? 1.0 + 0.8 * lp : 4.0 + 0.4 * p->f.v[PF_DETAIL];
        d->recs[i] = (pred_record){i, (float)expm1(y + 0.05 * gauss(&s)), 1.0f};
    }
    d->n_prompts = d->n_recs = n;
}

static double slope_lp(const pred_model *m, pred_features f) {
    f.v[PF_LOG_PROMPT_TOKENS] = 3;
    double a = pred_predict_log(m, &f, NULL);
    f.v[PF_LOG_PROMPT_TOKENS] = 5;
    return (pred_predict_log(m, &f, NULL) - a) / 2;
}

static void test_fit_recovers_per_kind_relation(void **state) {
    (void)state;
    enum { N = 2000 };
    pred_data d;
    kind_data(&d, N);
    pred_fit_opts o;
    pred_fit_defaults(&o);
    o.n_trees = 0;
    weft_err err;
    o.stack_folds = 0;
    pred_model *flat = pred_fit(&d, &o, NULL, &err);
    o.stack_folds = 5;
    pred_model *st = pred_fit(&d, &o, NULL, &err);
    assert_non_null(flat);
    assert_non_null(st);
    assert_int_equal(flat->has_stack, 0);
    assert_int_equal(st->has_stack, 1);
    pred_features chat = d.prompts[0].f, comp = d.prompts[1].f;
    assert_int_equal(pred_prompt_kind(chat.v), PRED_KIND_CHAT);
    assert_int_equal(pred_prompt_kind(comp.v), PRED_KIND_COMPLETION);
    print_message("slopes in log prompt length: flat %.3f/%.3f, stacked chat %.3f completion "
                  "%.3f\n",
                  slope_lp(flat, chat), slope_lp(flat, comp), slope_lp(st, chat),
                  slope_lp(st, comp));
    /* one slope for both kinds without the stack, about half of 0.8 */
    assert_float_equal(slope_lp(flat, chat), slope_lp(flat, comp), 1e-9);
    assert_float_equal(slope_lp(flat, chat), 0.4, 0.1);
    /* the stack recovers each kind's own slope */
    assert_float_equal(slope_lp(st, comp), 0.8, 0.05);
    assert_float_equal(slope_lp(st, chat), 0.0, 0.05);
    /* and its held-out error is far lower */
    double ef = 0, es = 0;
    int n = 0;
    for (int p = 0; p < N; p++)
        if (d.prompts[p].test) {
            double y = log1p(d.recs[p].tokens);
            ef += fabs(pred_predict_log(flat, &d.prompts[p].f, NULL) - y);
            es += fabs(pred_predict_log(st, &d.prompts[p].f, NULL) - y);
            n++;
        }
    print_message("held-out mean |log error|: flat %.3f, stacked %.3f\n", ef / n, es / n);
    assert_true(es < 0.5 * ef);
    /* the stack's inner fits saw train prompts only: marking every other prompt held out
     * changes nothing about the held-out ones' role, and a fit on train only is reproducible */
    pred_model *again = pred_fit(&d, &o, NULL, &err);
    assert_non_null(again);
    assert_memory_equal(again->stack, st->stack, sizeof st->stack);
    pred_model_free(again);
    pred_model_free(flat);
    pred_model_free(st);
    pred_data_free(&d);
}

static void test_stack_params(void **state) {
    (void)state;
    weft_err err;
    pred_model *m = pred_model_default(&err);
    assert_non_null(m);
    char *old = pred_model_format(m, &err);
    assert_non_null(old);
    /* a file without 'stack' lines (all files before the stack) loads with no stack */
    char *cut = strdup(old);
    assert_non_null(cut);
    char *sl = strstr(cut, "\n# per-kind stack");
    if (sl) strcpy(sl + 1, "end\n");
    pred_model *o = pred_model_parse(cut, strlen(cut), "OLD", &err);
    assert_non_null(o);
    assert_int_equal(o->has_stack, 0);
    assert_null(strstr(cut, "stack "));
    /* a stack round-trips and changes predictions as written */
    o->has_stack = 1;
    for (int k = 0; k < PRED_KIND_COUNT; k++)
        o->stack[k] = (pred_stack){0.25 * k, 1 - 0.1 * k, 0.05 * k};
    char *txt = pred_model_format(o, &err);
    assert_non_null(txt);
    assert_non_null(strstr(txt, "stack completion 0.25 0.9 0.05\n"));
    pred_model *r = pred_model_parse(txt, strlen(txt), "NEW", &err);
    assert_non_null(r);
    assert_int_equal(r->has_stack, 1);
    const char *p = "def f(x):\n    \"\"\"Return x twice.\"\"\"\n";
    pred_features f;
    pred_features_text(p, strlen(p), 0, &f);
    assert_float_equal(pred_predict_log(r, &f, NULL), pred_predict_log(o, &f, NULL), 1e-6);
    pred_model *plain = pred_model_parse(cut, strlen(cut), "OLD", &err);
    assert_non_null(plain);
    double raw = pred_predict_log(plain, &f, NULL);
    assert_float_equal(pred_predict_log(r, &f, NULL),
                       0.25 + 0.9 * raw + 0.05 * f.v[PF_LOG_PROMPT_TOKENS], 1e-6);
    /* malformed stack lines: precise errors */
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"stack poetry 0 1 0\n", "takes a kind"},
        {"stack chat 0 1\n", "takes a kind"},
        {"stack chat 0 1 nan\n", "not a finite number"},
        {"stack chat 0 99 0\n", "[-50, 50]"},
        {"stack chat 0 1 0\nstack chat 0 1 0\n", "a second 'stack chat'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(cut) + strlen(bad[i].line) + 1;
        char *t = malloc(n);
        assert_non_null(t);
        char *end = strstr(cut, "\nend\n");
        assert_non_null(end);
        size_t head = (size_t)(end - cut) + 1;
        memcpy(t, cut, head);
        snprintf(t + head, n - head, "%send\n", bad[i].line);
        pred_model *x = pred_model_parse(t, strlen(t), "BAD", &err);
        assert_null(x);
        print_message("%s", err.msg);
        print_message("\n");
        assert_non_null(strstr(err.msg, bad[i].msg));
        assert_non_null(strstr(err.msg, "BAD:"));
        free(t);
    }
    pred_model_free(plain);
    pred_model_free(r);
    pred_model_free(o);
    pred_model_free(m);
    free(txt);
    free(cut);
    free(old);
}

/* Online: with an identity stack the update is the unstacked one bit for bit; with c1 != 1 the
 * update still learns a level shift exactly through the scaled design row. */
static void test_stack_online(void **state) {
    (void)state;
    weft_err err;
    pred_model *a = pred_model_default(&err), *b = pred_model_default(&err);
    assert_non_null(a);
    assert_non_null(b);
    a->has_stack = 0;
    b->has_stack = 1;
    for (int k = 0; k < PRED_KIND_COUNT; k++)
        a->stack[k] = b->stack[k] = (pred_stack){0, 1, 0};
    const char *ps[] = {"Tell me a story about a dragon.", "def g(n):\n    \"\"\"Sum 1..n.\"\"\"\n",
                        "What is 12 times 7 plus 3 apples each day? How many in total"};
    for (int i = 0; i < 300; i++) {
        pred_features f;
        pred_features_text(ps[i % 3], strlen(ps[i % 3]), 0, &f);
        pred_update(a, &f, 50 + i);
        pred_update(b, &f, 50 + i);
    }
    assert_memory_equal(a->head, b->head, sizeof a->head);
    /* a stack with c1 = 0.5 on completions: served answers run 0.8 log units longer */
    b->stack[PRED_KIND_COMPLETION] = (pred_stack){0.3, 0.5, 0.1};
    pred_features f;
    pred_features_text(ps[1], strlen(ps[1]), 0, &f);
    assert_int_equal(pred_prompt_kind(f.v), PRED_KIND_COMPLETION);
    double target = pred_predict_log(b, &f, NULL) + 0.8, prev = 0.8;
    /* one prompt excites one direction: plain RLS (the forgetting stays off while the other
     * directions keep the trace above its start), so the error falls like 1/updates */
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 2000; i++)
            pred_update(b, &f, (int)lround(expm1(target)));
        double e = target - pred_predict_log(b, &f, NULL);
        print_message("stacked online: error %.4f after %d updates\n", e, 2000 * (round + 1));
        assert_true(e > 0 && e < 0.8 * prev);
        prev = e;
    }
    assert_true(prev < 0.06);
    pred_model_free(a);
    pred_model_free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_kinds),
        cmocka_unit_test(test_stack_fit_kind),
        cmocka_unit_test(test_fit_recovers_per_kind_relation),
        cmocka_unit_test(test_stack_params),
        cmocka_unit_test(test_stack_online),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
