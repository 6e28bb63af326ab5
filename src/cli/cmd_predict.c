/* cmd_predict.c — `weft predict fit|tune|eval|features|ratio`: the command-line face of the
 * answer-length predictor (src/predict/). fit writes a parameter file from train prompts, tune
 * chooses the fit's hyper-parameters on a validation part of the train prompts, eval scores a
 * parameter file (default: the built-in one) against a constant and a prompt-length-only
 * baseline on held-out prompts, features prints one prompt's features and prediction, ratio
 * measures the tokens-per-word ratio of answer text. Only argument handling and printing live here.
 */
#include <stdint.h>
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
#define MAX_FOLDS 20
#define DEFAULT_SEED 1

static void predict_usage(FILE *out) {
    fprintf(
        out,
        "usage: weft predict fit --data FILE... --out PARAMS [--tokenizer TOK] [--ridge R]\n"
        "                        [--trees N] [--set-cap N] [--set-power P] [--min-leaf W]\n"
        "                        [--learn-rate L] [--absolute|--squared] [--stack-folds K]\n"
        "                        [--stack-ridge R] [--stack-absolute|--stack-squared]\n"
        "                        [--val]\n"
        "       weft predict tune --data FILE... [--out PARAMS] [--tokenizer TOK]\n"
        "       weft predict eval --data FILE... [--params PARAMS] [--tokenizer TOK] [--val]\n"
        "                         [--folds K [fit options]] [--online] [--seed N] [--boot N]\n"
        "       weft predict features --prompt TEXT [--params PARAMS] [--tokenizer TOK]\n"
        "       weft predict ratio --data FILE... [--tokenizer TOK]\n"
        "  FILE: a pairs JSONL file (prompt, response) or the alpaca_eval folder\n"
        "        (instructions.jsonl + lengths_all_models.tsv); --data takes several\n"
        "  Lengths are counted in the tokens of TOK, a llama2.c tokenizer.bin or a GGUF with a\n"
        "  vocabulary (default " DEFAULT_TOKENIZER ").\n"
        "  fit: --ridge L2 penalty (default 2), --trees boosted trees (default 200, 0: linear),\n"
        "  --set-cap N: a set with more than N train prompts weighs as N (default: no cap),\n"
        "  --set-power P: a set of n train prompts weighs n^P in total (1: every prompt\n"
        "  alike, 0: every set alike; default %.2f), --min-leaf least prompt weight in a tree\n"
        "  leaf (default %g), --learn-rate tree shrinkage (default %g), --absolute: trees boost\n"
        "  absolute error toward each prompt's median answer (--squared: squared error, mean),\n"
        "  --stack-folds K: per prompt kind (chat, code completion, maths, other code) re-weigh\n"
        "  the model against log prompt length, fitted on the model's out-of-fold predictions\n"
        "  from K inner folds of the train prompts (default %d; 0: no stack; none with\n"
        "  --absolute), --stack-ridge R: its pull toward the unstacked model, in prompts of\n"
        "  evidence (default %g), --stack-absolute: the stack fits each prompt's median\n"
        "  answer by absolute loss (--stack-squared: its mean log answer, squared loss)\n"
        "  tune: fits a grid of (set-power, min-leaf, trees, loss) on the train prompts\n"
        "  outside a validation part (1 in %d train prompts, by hash), scores each on that\n"
        "  part, picks the best (most sets where it beats both baselines, then mean per-set\n"
        "  rho), and with --out refits it on all train prompts; held-out prompts are never read\n"
        "  --val (fit, eval): develop on the train side only: fit leaves the validation part\n"
        "  out, eval scores it; held-out prompts are not used\n"
        "  Prompts are split train/test by a hash of their text (1 in %d held out): fit and\n"
        "  the baselines see train only, eval reports on test only.\n"
        "  eval --folds K (2..%d): K-fold cross-validation by prompt instead: every prompt is\n"
        "  held out once; in each fold the model (fit options as for fit, e.g. --trees) and\n"
        "  both baselines are fitted on the other K-1 folds exactly as fit does; the metrics\n"
        "  cover all out-of-fold predictions (--params does not apply). With --val the\n"
        "  held-out prompts are left out and the folds cut the train prompts only.\n"
        "  eval --online: prequential: each set's held-out (or out-of-fold) prompts are\n"
        "  replayed in a fixed order (--seed N, default %d); each is predicted, then its\n"
        "  answers update the predictor online as the server does (pred_update; the\n"
        "  baselines' own coefficients by the same recursive least squares); every set starts\n"
        "  from the offline models. --boot N: bootstrap replicates (default %d; 0: no\n"
        "  intervals, a quicker development run).\n",
        PRED_FIT_SET_POWER, PRED_FIT_MIN_LEAF, PRED_FIT_LEARN_RATE, PRED_FIT_STACK_FOLDS,
        PRED_FIT_STACK_RIDGE, PRED_VAL_MOD, PRED_TEST_MOD,
        MAX_FOLDS, DEFAULT_SEED, PRED_BOOT);
}

typedef struct popts {
    const char *data[MAX_DATA];
    int n_data;
    const char *out, *params, *tokenizer, *prompt;
    float ridge, set_cap, set_power, min_leaf, learn_rate, stack_ridge;
    int n_trees;
    int stack_absolute; /* --stack-absolute / --stack-squared; -1 = default */
    int stack_folds; /* --stack-folds K: inner folds of the per-kind stack (0: none); -1 = default */
    int absolute; /* --absolute: trees boost absolute error; -1 = default */
    int val; /* --val: the validation part of train plays "held out"; held-out prompts unused */
    int folds;  /* eval --folds K: K-fold cross-validation by prompt (0: the single split) */
    int online; /* eval --online: prequential replay with the online update */
    int seed;   /* eval --online: order of the replay */
    int boot;   /* eval --boot N: bootstrap replicates (default PRED_BOOT; 0: none) */
} popts;

static int parse(int argc, char **argv, const char *cmd, popts *o) {
    memset(o, 0, sizeof *o);
    o->ridge = -1;
    o->set_cap = -1;
    o->set_power = -1;
    o->min_leaf = -1;
    o->learn_rate = -1;
    o->n_trees = -1;
    o->stack_folds = -1;
    o->stack_ridge = -1;
    o->stack_absolute = -1;
    o->absolute = -1;
    o->seed = DEFAULT_SEED;
    o->boot = PRED_BOOT;
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
        } else if (!strcmp(opt, "--stack-folds")) {
            if (cli_int(&a, opt, 0, MAX_FOLDS, &o->stack_folds)) return -1;
            if (o->stack_folds == 1) {
                fprintf(stderr, "weft %s: --stack-folds takes 0 (no stack) or 2..%d\n", cmd,
                        MAX_FOLDS);
                return -1;
            }
        } else if (!strcmp(opt, "--stack-absolute")) {
            o->stack_absolute = 1;
        } else if (!strcmp(opt, "--stack-squared")) {
            o->stack_absolute = 0;
        } else if (!strcmp(opt, "--stack-ridge")) {
            if (cli_float(&a, opt, 0, 1e9f, &o->stack_ridge)) return -1;
        } else if (!strcmp(opt, "--set-cap")) {
            if (cli_float(&a, opt, 0, 1e9f, &o->set_cap)) return -1;
        } else if (!strcmp(opt, "--absolute")) {
            o->absolute = 1;
        } else if (!strcmp(opt, "--squared")) {
            o->absolute = 0;
        } else if (!strcmp(opt, "--val")) {
            o->val = 1;
        } else if (!strcmp(opt, "--folds")) {
            if (cli_int(&a, opt, 2, MAX_FOLDS, &o->folds)) return -1;
        } else if (!strcmp(opt, "--online")) {
            o->online = 1;
        } else if (!strcmp(opt, "--boot")) {
            if (cli_int(&a, opt, 0, 100000, &o->boot)) return -1;
        } else if (!strcmp(opt, "--seed")) {
            if (cli_int(&a, opt, 0, 1000000000, &o->seed)) return -1;
        } else if (!strcmp(opt, "--set-power")) {
            if (cli_float(&a, opt, 0, 1, &o->set_power)) return -1;
        } else if (!strcmp(opt, "--min-leaf")) {
            if (cli_float(&a, opt, 0, 1e9f, &o->min_leaf)) return -1;
        } else if (!strcmp(opt, "--learn-rate")) {
            if (cli_float(&a, opt, 1e-4f, 1, &o->learn_rate)) return -1;
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

/* Development on the train side only: held-out prompts leave the game (-1), the validation part
 * of the train prompts plays "held out" (1). Returns the number of validation prompts. */
static int use_validation_split(pred_data *d) {
    int n_val = 0;
    for (int p = 0; p < d->n_prompts; p++) {
        pred_prompt *pp = &d->prompts[p];
        if (pp->test)
            pp->test = -1;
        else if (pred_is_val_prompt(pp->text)) {
            pp->test = 1;
            n_val++;
        }
    }
    return n_val;
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
    if (o->val && o->folds) {
        int n_train = 0;
        for (int p = 0; p < d->n_prompts; p++) {
            d->prompts[p].test = d->prompts[p].test ? -1 : 0;
            n_train += !d->prompts[p].test;
        }
        fprintf(stderr, "--val --folds: the %d train prompts are cut into %d folds; held-out "
                "unused\n", n_train, o->folds);
    } else if (o->val) {
        fprintf(stderr, "--val: %d validation prompts (of train) play held-out; held-out unused\n",
                use_validation_split(d));
    }
    return 0;
}

static void fit_opts_from(const popts *o, pred_fit_opts *fo) {
    pred_fit_defaults(fo);
    if (o->ridge >= 0) fo->ridge = o->ridge;
    if (o->n_trees >= 0) fo->n_trees = o->n_trees;
    if (o->set_cap >= 0) fo->set_cap = o->set_cap;
    if (o->set_power >= 0) fo->set_power = o->set_power;
    if (o->min_leaf >= 0) fo->min_leaf = o->min_leaf;
    if (o->learn_rate > 0) fo->learn_rate = o->learn_rate;
    if (o->absolute >= 0) fo->absolute = o->absolute;
    if (o->stack_folds >= 0) fo->stack_folds = o->stack_folds;
    if (o->stack_ridge >= 0) fo->stack_ridge = o->stack_ridge;
    if (o->stack_absolute >= 0) fo->stack_absolute = o->stack_absolute;
}

/* The baselines are fitted as the issue defines them, whatever weighting the model uses: every
 * train prompt counts once (set_power 1). With set-balanced weights the prompt-length slope
 * changes sign, and the prompt-length baseline would rank code completions backwards: a straw
 * man. */
static void baseline_opts(const popts *o, pred_fit_opts *fo) {
    fit_opts_from(o, fo);
    fo->set_power = 1;
    fo->set_cap = 0;
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
    fit_opts_from(&o, &fo);
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
    if (m->has_stack) { /* which kinds the stack saw, per set, and what it learnt */
        printf("per-kind stack (%d inner folds): log1p tokens = c0 + c1 * model + c2 * "
               "log_prompt_tokens; train prompts per set and kind:\n%-34s", fo.stack_folds, "set");
        for (int k = 0; k < PRED_KIND_COUNT; k++)
            printf(" %10s", pred_kind_name(k));
        printf("\n");
        for (int s = 0; s < d.n_sets; s++) {
            int cnt[PRED_KIND_COUNT] = {0};
            for (int p = 0; p < d.n_prompts; p++)
                if (d.prompts[p].set == s && !d.prompts[p].test)
                    cnt[pred_prompt_kind(d.prompts[p].f.v)]++;
            printf("%-34s", d.sets[s].name);
            for (int k = 0; k < PRED_KIND_COUNT; k++)
                printf(" %10d", cnt[k]);
            printf("\n");
        }
        for (int k = 0; k < PRED_KIND_COUNT; k++)
            printf("stack %-10s c0 %8.4f c1 %7.4f c2 %7.4f\n", pred_kind_name(k), m->stack[k].c0,
                   m->stack[k].c1, m->stack[k].c2);
    }
    pred_model_free(m);
    rc = 0;
done:
    pred_data_free(&d);
    tok_free(tok);
    return rc;
}

/* The "beats both" verdict: higher rho and lower log-MAE than each baseline. */
static int row_beats(const pred_eval_row *r) {
    int beats = r->n > 0;
    for (int k = 1; k < PRED_EV_N; k++)
        beats &= r->rho[PRED_EV_MODEL] > r->rho[k] && r->mae[PRED_EV_MODEL] < r->mae[k];
    return beats;
}

/* "yes", or "NO (rho)", "NO (MAE)", "NO (rho, MAE)": what the model fails against a baseline */
static const char *verdict(const pred_eval_row *r) {
    if (row_beats(r)) return "yes";
    int rho = 0, mae = 0;
    for (int k = 1; k < PRED_EV_N; k++) {
        rho |= !(r->rho[PRED_EV_MODEL] > r->rho[k]);
        mae |= !(r->mae[PRED_EV_MODEL] < r->mae[k]);
    }
    return rho && mae ? "NO (rho, MAE)" : rho ? "NO (rho)" : mae ? "NO (MAE)" : "NO (empty)";
}

static void print_table(const pred_eval *ev, const char *what, int n_boot) {
    static const char *const who[PRED_EV_N] = {"model", "const", "plen"};
    char head[64];
    snprintf(head, sizeof head, "set (%s)", what);
    printf("%-38s %6s", head, "n");
    for (int k = 0; k < PRED_EV_N; k++)
        printf(" | %-6s %5s %5s %5s %5s", who[k], "rho", "tau", "mae", "cov90");
    printf(" | beats both\n");
    for (int i = 0; i < ev->n_rows; i++) {
        const pred_eval_row *r = &ev->rows[i];
        printf("%-38s %6d", r->name, r->n);
        for (int k = 0; k < PRED_EV_N; k++)
            printf(" | %-6s %5.3f %5.3f %5.3f %5.3f", "", r->rho[k], r->tau[k], r->mae[k],
                   r->cov[k]);
        printf(" | %s\n", verdict(r));
    }
    if (n_boot <= 0) return;
    printf("\nbootstrap over the scored prompts (%d replicates, whole prompts resampled, fixed "
           "seed):\n90%% intervals of the model's rho, of rho(model) - rho(plen) and of "
           "MAE(model) - MAE(baseline)\n(negative: the model's error is lower); P(beats): share of"
           " replicates where the model's rho\nis above both baselines' (const: 0); P(both): "
           "where it beats both on rho AND MAE\n",
           n_boot);
    printf("%-38s %6s | %6s %15s | %15s | %9s | %17s | %17s | %7s\n", head, "n", "rho",
           "rho 90% CI", "d(rho) 90% CI", "P(beats)", "dMAE const 90% CI", "dMAE plen 90% CI",
           "P(both)");
    for (int i = 0; i < ev->n_rows; i++) {
        const pred_eval_row *r = &ev->rows[i];
        printf("%-38s %6d | %6.3f [%6.3f,%6.3f] | [%6.3f,%6.3f] | %9.3f | [%6.3f,%6.3f]   | "
               "[%6.3f,%6.3f]   | %7.3f\n",
               r->name, r->n, r->rho[PRED_EV_MODEL], r->rho_lo, r->rho_hi, r->drho_lo,
               r->drho_hi, r->p_beats, r->dmae_c_lo, r->dmae_c_hi, r->dmae_p_lo, r->dmae_p_hi,
               r->p_beats_all);
    }
}

/* Scores fit options fo on the prompts marked test == 1 of d (the validation part): the model
 * and both baselines fitted with fo on the rest. Returns 0 and fills *beaten (rows where the
 * model beats both), *mean_rho (mean over per-set rows, no /median, no pooled) and *pooled. */
static int tune_score(const pred_data *d, const pred_fit_opts *fo, int *beaten, double *mean_rho,
                      double *pooled, char *failed, size_t failed_size, weft_err *err) {
    pred_model *ms[PRED_EV_N] = {0};
    int none[PF_COUNT] = {0}, plen[PF_COUNT] = {0}, rc = -1;
    plen[PF_LOG_PROMPT_TOKENS] = 1;
    pred_eval ev = {0};
    pred_fit_opts bo = *fo; /* baselines: every train prompt alike (baseline_opts) */
    bo.set_power = 1;
    bo.set_cap = 0;
    ms[PRED_EV_MODEL] = pred_fit(d, fo, NULL, err);
    ms[PRED_EV_CONST] = ms[PRED_EV_MODEL] ? pred_fit(d, &bo, none, err) : NULL;
    ms[PRED_EV_PLEN] = ms[PRED_EV_CONST] ? pred_fit(d, &bo, plen, err) : NULL;
    if (!ms[PRED_EV_PLEN] || pred_evaluate_boot(d, ms, 0, &ev, err)) goto done;
    *beaten = 0;
    *mean_rho = 0;
    failed[0] = 0;
    int n = 0;
    for (int i = 0; i < ev.n_rows; i++) {
        const pred_eval_row *r = &ev.rows[i];
        if (!strcmp(r->name, "pooled")) {
            *pooled = r->rho[PRED_EV_MODEL];
            continue;
        }
        *beaten += row_beats(r);
        if (!row_beats(r)) {
            size_t l = strlen(failed);
            snprintf(failed + l, failed_size - l, "%s%s", l ? "," : "", r->name);
        }
        if (strchr(r->name, '/')) continue;
        *mean_rho += r->rho[PRED_EV_MODEL];
        n++;
    }
    *mean_rho /= n ? n : 1;
    rc = 0;
done:
    pred_eval_free(&ev);
    for (int k = 0; k < PRED_EV_N; k++)
        pred_model_free(ms[k]);
    return rc;
}

static int cmd_tune(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict tune", &o)) return 2;
    if (!o.n_data) {
        fprintf(stderr, "weft predict tune: needs --data FILE...\n");
        return 2;
    }
    weft_tokenizer *tok = NULL;
    pred_data d = {0};
    int rc = 1;
    weft_err err = {{0}};
    if (load_data(&o, "predict tune", &tok, &d)) goto done;
    /* held-out prompts leave the game; the validation part of train plays "test" */
    int n_val = o.val ? 0 : use_validation_split(&d);
    for (int p = 0; p < d.n_prompts && o.val; p++)
        n_val += d.prompts[p].test == 1;
    printf("validation: %d of the train prompts (1 in %d by hash); held-out prompts unused\n",
           n_val, PRED_VAL_MOD);
    static const double powers[] = {1, 0.5};
    static const double leaves[] = {30, 10};
    static const int trees[] = {200, 400};
    static const int losses[] = {0, 1}; /* squared, absolute */
    pred_fit_opts best;
    fit_opts_from(&o, &best);
    int best_beaten = -1;
    double best_rho = -2;
    printf("%9s %8s %6s %8s | %6s %9s %7s | %s\n", "set-power", "min-leaf", "trees", "loss",
           "beaten", "mean rho", "pooled", "rows not beaten");
    for (size_t a = 0; a < sizeof powers / sizeof *powers; a++)
        for (size_t b = 0; b < sizeof leaves / sizeof *leaves; b++)
            for (size_t c = 0; c < sizeof trees / sizeof *trees; c++)
                for (size_t e = 0; e < sizeof losses / sizeof *losses; e++) {
                    pred_fit_opts fo;
                    fit_opts_from(&o, &fo);
                    fo.set_power = powers[a];
                    fo.min_leaf = leaves[b];
                    fo.n_trees = trees[c];
                    fo.absolute = losses[e];
                    int beaten;
                    double mrho, pooled = 0;
                    char failed[512];
                    if (tune_score(&d, &fo, &beaten, &mrho, &pooled, failed, sizeof failed,
                                   &err)) {
                        fprintf(stderr, "weft predict tune: %s\n", err.msg);
                        goto done;
                    }
                    printf("%9.2f %8g %6d %8s | %6d %9.4f %7.4f | %s\n", fo.set_power,
                           fo.min_leaf, fo.n_trees, fo.absolute ? "absolute" : "squared", beaten,
                           mrho, pooled, failed);
                    fflush(stdout);
                    if (beaten > best_beaten || (beaten == best_beaten && mrho > best_rho)) {
                        best = fo;
                        best_beaten = beaten;
                        best_rho = mrho;
                    }
                }
    printf("best: --set-power %g --min-leaf %g --trees %d --learn-rate %g %s (beats both "
           "baselines on %d validation rows, mean per-set rho %.4f)\n",
           best.set_power, best.min_leaf, best.n_trees, best.learn_rate,
           best.absolute ? "--absolute" : "--squared", best_beaten, best_rho);
    if (o.out) {
        for (int p = 0; p < d.n_prompts; p++) /* back to the real split: fit on all train */
            d.prompts[p].test = d.prompts[p].test == -1;
        pred_model *m = pred_fit(&d, &best, NULL, &err);
        if (!m || pred_model_save(m, o.out, &err)) {
            fprintf(stderr, "weft predict tune: %s\n", err.msg);
            pred_model_free(m);
            goto done;
        }
        pred_model_free(m);
        printf("refitted on all train prompts; wrote %s\n", o.out);
    }
    rc = 0;
done:
    pred_data_free(&d);
    tok_free(tok);
    return rc;
}

static int cmd_eval(int argc, char **argv) {
    popts o;
    if (parse(argc, argv, "predict eval", &o)) return 2;
    if (!o.n_data) {
        fprintf(stderr, "weft predict eval: needs --data FILE...\n");
        return 2;
    }
    if (o.folds && o.params) {
        fprintf(stderr, "weft predict eval: --folds refits the model in every fold; --params "
                        "does not apply (pass fit options instead)\n");
        return 2;
    }
    weft_tokenizer *tok = NULL;
    pred_data d = {0};
    pred_model *ms[PRED_EV_N] = {0};
    pred_estimate *est[PRED_EV_N] = {0};
    pred_eval ev = {0};
    int rc = 1;
    weft_err err = {{0}};
    if (!o.folds) {
        ms[PRED_EV_MODEL] = o.params ? pred_model_load(o.params, &err) : pred_model_default(&err);
        if (!ms[PRED_EV_MODEL]) {
            fprintf(stderr, "weft predict eval: %s\n", err.msg);
            goto done;
        }
    }
    if (load_data(&o, "predict eval", &tok, &d)) goto done;
    pred_fit_opts fo, mo;
    baseline_opts(&o, &fo);
    fit_opts_from(&o, &mo);
    for (int k = 0; k < PRED_EV_N && (o.folds || o.online); k++)
        if (!(est[k] = calloc((size_t)(d.n_prompts ? d.n_prompts : 1), sizeof *est[k]))) {
            fprintf(stderr, "weft predict eval: out of memory\n");
            goto done;
        }
    double t0 = now_s(), t1;
    if (o.folds) {
        if (pred_crossval(&d, &mo, &fo, o.folds, o.online, (uint64_t)o.seed, est, &err)) {
            fprintf(stderr, "weft predict eval: %s\n", err.msg);
            goto done;
        }
        t1 = now_s();
        printf("protocol: %d-fold cross-validation by prompt (fold = hash of the prompt text, the "
               "same text in the same fold in every set)%s: the model (--set-power %g "
               "--min-leaf %g --trees %d --learn-rate %g --ridge %g %s) and both baselines "
               "refitted on the other folds in each fold; every %s prompt scored once, out of "
               "fold%s\n",
               o.folds, o.val ? " over the train prompts only (held-out unused)" : "",
               mo.set_power, mo.min_leaf, mo.n_trees, mo.learn_rate, mo.ridge,
               mo.absolute ? "--absolute" : "--squared", o.val ? "train" : "",
               o.online ? "; online replay within each fold" : "");
    } else {
        for (int k = 1; k < PRED_EV_N; k++)
            if (!(ms[k] = pred_fit(&d, &fo, pred_ev_use(k), &err))) {
                fprintf(stderr, "weft predict eval: baselines: %s\n", err.msg);
                goto done;
            }
        if (o.online && pred_online_replay(&d, ms, (uint64_t)o.seed, est, &err)) {
            fprintf(stderr, "weft predict eval: %s\n", err.msg);
            goto done;
        }
        t1 = now_s();
        printf("protocol: the single split by prompt (1 in %d held out); model: %s; baselines "
               "const and plen (prompt length only) fitted on the same train split\n",
               PRED_TEST_MOD, o.params ? o.params : "built-in default");
    }
    if (o.online)
        printf("online (prequential): per set, its scored prompts replayed in a fixed order "
               "(seed %d%s); each predicted before its answers are seen, then every answer "
               "(AlpacaEval: the prompt's median answer) updates the predictor as the server does "
               "on finish (model: pred_update; const: running mean, plen: online refit of its "
               "line, by the same RLS); every set starts from the offline models\n",
               o.seed, o.folds ? " + fold" : "");
    printf("rho/tau: Spearman/Kendall of p50 vs true tokens; mae: |log(1+p50) - log(1+true)|; "
           "cov90: share of answers <= p90\n");
    int scored = o.folds || o.online ? pred_evaluate_est(&d, est, o.boot, &ev, &err)
                                     : pred_evaluate_boot(&d, ms, o.boot, &ev, &err);
    if (scored) {
        fprintf(stderr, "weft predict eval: %s\n", err.msg);
        goto done;
    }
    double t2 = now_s();
    print_table(&ev, o.folds ? "out-of-fold" : o.val ? "validation" : "held-out", o.boot);
    printf("time: fits and predictions %.2f s, scoring with bootstrap %.2f s\n", t1 - t0,
           t2 - t1);
    rc = 0;
done:
    pred_eval_free(&ev);
    for (int k = 0; k < PRED_EV_N; k++) {
        pred_model_free(ms[k]);
        free(est[k]);
    }
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
    printf("prompt kind: %s (per-kind stack: %s)\n", pred_kind_name(pred_prompt_kind(f.v)),
           m->has_stack ? "yes" : "none in these parameters");
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
    if (!strcmp(c, "tune")) return cmd_tune(argc - 1, argv + 1);
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
