/* cmd_predict.c — `weft predict fit|eval|features|ratio`: the command-line face of the
 * answer-length predictor (src/predict/). fit writes a parameter file from train prompts, eval
 * scores a parameter file (default: the built-in one) against a constant and a prompt-length-only
 * baseline on held-out prompts, features prints one prompt's features and prediction, ratio
 * measures the tokens-per-word ratio of answer text. Only argument handling and printing live here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "predict/pred_data.h"
#include "weft/gguf.h"
#include "weft/tokenizer.h"

#define DEFAULT_TOKENIZER "../shared/models/tokenizers/tokenizer_llama2_32000.bin"
#define MAX_DATA 64

static void predict_usage(FILE *out) {
    fprintf(
        out,
        "usage: weft predict fit --data FILE... --out PARAMS [--tokenizer TOK] [--ridge R]\n"
        "                        [--trees N] [--set-cap N]\n"
        "       weft predict eval --data FILE... [--params PARAMS] [--tokenizer TOK]\n"
        "       weft predict features --prompt TEXT [--params PARAMS] [--tokenizer TOK]\n"
        "       weft predict ratio --data FILE... [--tokenizer TOK]\n"
        "  FILE: a pairs JSONL file (prompt, response) or the alpaca_eval folder\n"
        "        (instructions.jsonl + lengths_all_models.tsv); --data takes several\n"
        "  Lengths are counted in the tokens of TOK, a llama2.c tokenizer.bin or a GGUF with a\n"
        "  vocabulary (default " DEFAULT_TOKENIZER ").\n"
        "  fit: --ridge L2 penalty (default 2), --trees boosted trees (default 200, 0: linear),\n"
        "  --set-cap N: a set with more than N train prompts weighs as N (default: no cap)\n"
        "  Prompts are split train/test by a hash of their text (1 in %d held out): fit and\n"
        "  the baselines see train only, eval reports on test only.\n",
        PRED_TEST_MOD);
}

typedef struct popts {
    const char *data[MAX_DATA];
    int n_data;
    const char *out, *params, *tokenizer, *prompt;
    float ridge, set_cap;
    int n_trees;
} popts;

static int parse(int argc, char **argv, const char *cmd, popts *o) {
    memset(o, 0, sizeof *o);
    o->ridge = -1;
    o->set_cap = -1;
    o->n_trees = -1;
    cli_args a = {argc, argv, 0, cmd};
    while (a.i < argc) {
        const char *opt = argv[a.i++];
        if (!strcmp(opt, "--data")) {
            if (a.i >= argc || !strncmp(argv[a.i], "--", 2)) {
                fprintf(stderr, "weft %s: --data needs at least one file\n", cmd);
                return -1;
            }
            while (a.i < argc && strncmp(argv[a.i], "--", 2)) {
                if (o->n_data == MAX_DATA) {
                    fprintf(stderr, "weft %s: at most %d data files\n", cmd, MAX_DATA);
                    return -1;
                }
                o->data[o->n_data++] = argv[a.i++];
            }
        } else if (!strcmp(opt, "--out")) {
            if (cli_str(&a, opt, &o->out)) return -1;
        } else if (!strcmp(opt, "--params")) {
            if (cli_str(&a, opt, &o->params)) return -1;
        } else if (!strcmp(opt, "--tokenizer")) {
            if (cli_str(&a, opt, &o->tokenizer)) return -1;
        } else if (!strcmp(opt, "--prompt")) {
            if (cli_str(&a, opt, &o->prompt)) return -1;
        } else if (!strcmp(opt, "--ridge")) {
            if (cli_float(&a, opt, 0, 1e6f, &o->ridge)) return -1;
        } else if (!strcmp(opt, "--trees")) {
            if (cli_int(&a, opt, 0, PRED_MAX_TREES, &o->n_trees)) return -1;
        } else if (!strcmp(opt, "--set-cap")) {
            if (cli_float(&a, opt, 0, 1e9f, &o->set_cap)) return -1;
        } else if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
            predict_usage(stdout);
            exit(0);
        } else {
            fprintf(stderr, "weft %s: unknown option '%s'\n", cmd, opt);
            return -1;
        }
    }
    return 0;
}

static weft_tokenizer *load_tokenizer(const char *path, weft_err *err) {
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".gguf")) {
        gguf_file *g = gguf_open(path, err);
        if (!g) return NULL;
        weft_tokenizer *t = tok_load_gguf(g, err);
        gguf_close(g);
        return t;
    }
    return tok_load_bin(path, 32000, err);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Loads every --data file; prints a one-line summary per set to stderr. */
static int load_data(const popts *o, const char *cmd, weft_tokenizer **tok, pred_data *d) {
    weft_err err = {{0}};
    const char *tp = o->tokenizer ? o->tokenizer : DEFAULT_TOKENIZER;
    if (!o->tokenizer && access(tp, R_OK)) {
        fprintf(stderr, "weft %s: no tokenizer at the default %s; pass --tokenizer\n", cmd, tp);
        return -1;
    }
    *tok = load_tokenizer(tp, &err);
    if (!*tok) {
        fprintf(stderr, "weft %s: %s\n", cmd, err.msg);
        return -1;
    }
    memset(d, 0, sizeof *d);
    double t0 = now_s();
    for (int i = 0; i < o->n_data; i++) {
        int before = d->n_recs, pb = d->n_prompts;
        if (pred_data_add(d, o->data[i], *tok, &err)) {
            fprintf(stderr, "weft %s: %s\n", cmd, err.msg);
            return -1;
        }
        int test = 0;
        for (int p = pb; p < d->n_prompts; p++)
            test += d->prompts[p].test;
        fprintf(stderr, "  %-36s %7d answers, %6d prompts (%d held out)\n",
                d->sets[d->n_sets - 1].name, d->n_recs - before, d->n_prompts - pb, test);
    }
    fprintf(stderr, "loaded %d answers to %d prompts in %.2f s; features %.1f us/prompt\n",
            d->n_recs, d->n_prompts, now_s() - t0,
            d->n_prompts ? 1e6 * d->feature_seconds / d->n_prompts : 0.0);
    return 0;
}

static int cmd_fit(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict fit", &o)) return 2;
    if (!o.n_data || !o.out) {
        fprintf(stderr, "weft predict fit: needs --data FILE... and --out PARAMS\n");
        return 2;
    }
    weft_tokenizer *tok = NULL;
    pred_data d = {0};
    int rc = 1;
    if (load_data(&o, "predict fit", &tok, &d)) goto done;
    pred_fit_opts fo;
    pred_fit_defaults(&fo);
    if (o.ridge >= 0) fo.ridge = o.ridge;
    if (o.n_trees >= 0) fo.n_trees = o.n_trees;
    if (o.set_cap >= 0) fo.set_cap = o.set_cap;
    weft_err err = {{0}};
    double t0 = now_s();
    pred_model *m = pred_fit(&d, &fo, NULL, &err);
    if (!m) {
        fprintf(stderr, "weft predict fit: %s\n", err.msg);
        goto done;
    }
    double t1 = now_s();
    if (pred_model_save(m, o.out, &err)) {
        fprintf(stderr, "weft predict fit: %s\n", err.msg);
        pred_model_free(m);
        goto done;
    }
    printf("fitted %d features + %d trees on the train prompts in %.3f s; wrote %s\n", PF_ENTROPY,
           fo.n_trees, t1 - t0, o.out);
    pred_model_free(m);
    rc = 0;
done:
    pred_data_free(&d);
    tok_free(tok);
    return rc;
}

static void print_table(const pred_eval *ev) {
    static const char *const who[PRED_EV_N] = {"model", "const", "plen"};
    printf("%-38s %6s", "set (held-out)", "n");
    for (int k = 0; k < PRED_EV_N; k++)
        printf(" | %-6s %5s %5s %5s %5s", who[k], "rho", "tau", "mae", "cov90");
    printf(" | beats both\n");
    for (int i = 0; i < ev->n_rows; i++) {
        const pred_eval_row *r = &ev->rows[i];
        printf("%-38s %6d", r->name, r->n);
        for (int k = 0; k < PRED_EV_N; k++)
            printf(" | %-6s %5.3f %5.3f %5.3f %5.3f", "", r->rho[k], r->tau[k], r->mae[k],
                   r->cov[k]);
        int beats = r->n > 0;
        for (int k = 1; k < PRED_EV_N; k++)
            beats &= r->rho[PRED_EV_MODEL] > r->rho[k] && r->mae[PRED_EV_MODEL] < r->mae[k];
        printf(" | %s\n", beats ? "yes" : "NO");
    }
}

static int cmd_eval(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict eval", &o)) return 2;
    if (!o.n_data) {
        fprintf(stderr, "weft predict eval: needs --data FILE...\n");
        return 2;
    }
    weft_tokenizer *tok = NULL;
    pred_data d = {0};
    pred_model *ms[PRED_EV_N] = {0};
    pred_eval ev = {0};
    int rc = 1;
    weft_err err = {{0}};
    ms[PRED_EV_MODEL] = o.params ? pred_model_load(o.params, &err) : pred_model_default(&err);
    if (!ms[PRED_EV_MODEL]) {
        fprintf(stderr, "weft predict eval: %s\n", err.msg);
        goto done;
    }
    if (load_data(&o, "predict eval", &tok, &d)) goto done;
    pred_fit_opts fo;
    pred_fit_defaults(&fo);
    int none[PF_COUNT] = {0}, plen[PF_COUNT] = {0};
    plen[PF_LOG_PROMPT_TOKENS] = 1;
    ms[PRED_EV_CONST] = pred_fit(&d, &fo, none, &err);
    ms[PRED_EV_PLEN] = ms[PRED_EV_CONST] ? pred_fit(&d, &fo, plen, &err) : NULL;
    if (!ms[PRED_EV_PLEN]) {
        fprintf(stderr, "weft predict eval: baselines: %s\n", err.msg);
        goto done;
    }
    if (pred_evaluate(&d, ms, &ev, &err)) {
        fprintf(stderr, "weft predict eval: %s\n", err.msg);
        goto done;
    }
    printf("model: %s; baselines const and plen (prompt length only) fitted on the same train "
           "split\nrho/tau: Spearman/Kendall of p50 vs true tokens; mae: |log(1+p50) - "
           "log(1+true)|; cov90: share of answers <= p90\n",
           o.params ? o.params : "built-in default");
    print_table(&ev);
    rc = 0;
done:
    pred_eval_free(&ev);
    for (int k = 0; k < PRED_EV_N; k++)
        pred_model_free(ms[k]);
    pred_data_free(&d);
    tok_free(tok);
    return rc;
}

static int cmd_features(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict features", &o)) return 2;
    if (!o.prompt) {
        fprintf(stderr, "weft predict features: needs --prompt TEXT\n");
        return 2;
    }
    weft_err err = {{0}};
    int n_tok = 0;
    if (o.tokenizer) {
        weft_tokenizer *tok = load_tokenizer(o.tokenizer, &err);
        if (!tok) {
            fprintf(stderr, "weft predict features: %s\n", err.msg);
            return 1;
        }
        n_tok = tok_encode(tok, o.prompt, strlen(o.prompt), false, NULL, 0);
        tok_free(tok);
    }
    pred_model *m = o.params ? pred_model_load(o.params, &err) : pred_model_default(&err);
    if (!m) {
        fprintf(stderr, "weft predict features: %s\n", err.msg);
        return 1;
    }
    pred_features f;
    double t0 = now_s();
    enum { REPS = 200 };
    for (int r = 0; r < REPS; r++)
        pred_features_text(o.prompt, strlen(o.prompt), n_tok, &f);
    double us = (now_s() - t0) * 1e6 / REPS;
    printf("prompt tokens: %d (%s)\n", n_tok > 0 ? n_tok : (int)((strlen(o.prompt) + 3) / 4),
           n_tok > 0 ? "tokenizer" : "estimated from bytes; pass --tokenizer to count");
    for (int i = 0; i < PF_ENTROPY; i++)
        printf("  %-20s %8.4f\n", pred_feature_name(i), f.v[i]);
    printf("  %-20s (after prefill only)\n", pred_feature_name(PF_ENTROPY));
    pred_estimate e = pred_predict(m, &f);
    printf("predicted output tokens: p50 %.0f  p90 %.0f\n", e.p50, e.p90);
    /* cost of the online update, on a scratch copy of the model (both heads: with entropy) */
    pred_model *scratch = o.params ? pred_model_load(o.params, &err) : pred_model_default(&err);
    double t_upd = 0;
    if (scratch) {
        pred_features g = f;
        pred_features_set_entropy(&g, 2.0f);
        double t1 = now_s();
        for (int r = 0; r < REPS; r++)
            pred_update(scratch, &g, 100 + r);
        t_upd = (now_s() - t1) * 1e6 / REPS;
        pred_model_free(scratch);
    }
    printf("time: features %.2f us, online update (both heads) %.2f us\n", us, t_upd);
    pred_model_free(m);
    return 0;
}

static int cmd_ratio(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict ratio", &o)) return 2;
    if (!o.n_data) {
        fprintf(stderr, "weft predict ratio: needs --data FILE...\n");
        return 2;
    }
    weft_tokenizer *tok = NULL;
    pred_data d = {0};
    int rc = 1;
    if (load_data(&o, "predict ratio", &tok, &d)) goto done;
    if (d.resp_words <= 0) {
        fprintf(stderr, "weft predict ratio: no answer text (pairs files) loaded\n");
        goto done;
    }
    printf("answer text: %.0f words, %.0f tokens: %.3f tokens per word\n", d.resp_words,
           d.resp_tokens, d.resp_tokens / d.resp_words);
    rc = 0;
done:
    pred_data_free(&d);
    tok_free(tok);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    if (argc < 1) {
        predict_usage(stderr);
        return 2;
    }
    const char *c = argv[0];
    if (!strcmp(c, "fit")) return cmd_fit(argc - 1, argv + 1);
    if (!strcmp(c, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(c, "features")) return cmd_features(argc - 1, argv + 1);
    if (!strcmp(c, "ratio")) return cmd_ratio(argc - 1, argv + 1);
    if (!strcmp(c, "--help") || !strcmp(c, "-h")) {
        predict_usage(stdout);
        return 0;
    }
    fprintf(stderr, "weft predict: unknown subcommand '%s'\n", c);
    predict_usage(stderr);
    return 2;
}
