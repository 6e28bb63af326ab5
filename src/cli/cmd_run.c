/* cmd_run.c — `weft run`: load a model, generate from a prompt, print the text as it is
 * produced (stdout) and the prompt and generation speed at the end (stderr). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/generate.h"
#include "weft/model.h"
#include "weft/tp.h"

static void run_usage(FILE *out) {
    fprintf(out,
            "usage: weft run --model F [options]\n"
            "  -m, --model F          GGUF file, or llama2.c .bin (then --tokenizer)\n"
            "  -z, --tokenizer F      llama2.c tokenizer.bin (default: tokenizer.bin beside the model)\n"
            "  -p, --prompt TEXT      prompt (default: empty, generation starts from BOS)\n"
            "  -n, --n-predict N      tokens to generate (default 256)\n"
            "      --temp T           temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K          (default 40, 0 = off)\n"
            "      --top-p P          (default 0.95, 1 = off)\n"
            "      --min-p P          (default 0.05, 0 = off)\n"
            "      --repeat-penalty R (default 1.0 = off)\n"
            "      --repeat-last-n N  (default 64)\n"
            "  -s, --seed S           RNG seed (default 42)\n"
            "      --stop TEXT        stop string (repeatable, up to 8)\n"
            "      --ignore-eos       do not stop at end tokens\n"
            "  -c, --ctx N            context length (default: the model's)\n"
            "      --kv-type T        KV cache element type: f32 (default), f16 or q8_0\n"
            "  -t, --threads N        worker threads (default: all cores)\n"
            "      --no-echo          do not print the prompt before the generation\n"
            "      --tp N             tensor parallelism over N MPI ranks (under mpirun -np N)\n");
}

/* The prompt is echoed just before the first generated text (or after a generation that
 * produced none), so a refused prompt leaves stdout empty. */
typedef struct echo_state {
    const char *prompt; /* NULL once printed or when not echoing */
} echo_state;

static void echo_prompt(echo_state *e) {
    if (e->prompt) fputs(e->prompt, stdout);
    e->prompt = NULL;
}

static void emit_stdout(void *ctx, const char *text, size_t len) {
    echo_prompt(ctx);
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static int default_tokenizer(const char *model, char *buf, size_t size) {
    const char *slash = strrchr(model, '/');
    int dir_len = slash ? (int)(slash - model) : 1;
    snprintf(buf, size, "%.*s/tokenizer.bin", dir_len, slash ? model : ".");
    return access(buf, R_OK) == 0 ? 0 : -1;
}

typedef struct run_load {
    const char *model, *tokenizer;
} run_load;

static weft_model *run_load_model(void *ctx, weft_err *err) {
    const run_load *l = ctx;
    return model_load(l->model, l->tokenizer, err);
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *prompt = "";
    const char *stops[STOP_MAX_STRINGS];
    int n_stops = 0, n_predict = 256, ctx = 0, threads = 0, echo = 1, ignore_eos = 0, tp = 1;
    gen_params gp = {0};
    sampling_defaults(&gp.sampling);
    gp.sampling.seed = 42;

    cli_args a = {argc, argv, 0, "run"};
    while (a.i < a.argc) {
        const char *o = a.argv[a.i++];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { run_usage(stdout); return 0; }
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) { if (cli_str(&a, o, &model_path)) return 2; }
        else if (!strcmp(o, "-z") || !strcmp(o, "--tokenizer")) { if (cli_str(&a, o, &tok_path)) return 2; }
        else if (!strcmp(o, "-p") || !strcmp(o, "--prompt")) { if (cli_str(&a, o, &prompt)) return 2; }
        else if (!strcmp(o, "-n") || !strcmp(o, "--n-predict")) { if (cli_int(&a, o, 0, INT_MAX, &n_predict)) return 2; }
        else if (!strcmp(o, "--temp")) { if (cli_float(&a, o, 0, 100, &gp.sampling.temperature)) return 2; }
        else if (!strcmp(o, "--top-k")) { if (cli_int(&a, o, 0, INT_MAX, &gp.sampling.top_k)) return 2; }
        else if (!strcmp(o, "--top-p")) { if (cli_float(&a, o, 0, 1, &gp.sampling.top_p)) return 2; }
        else if (!strcmp(o, "--min-p")) { if (cli_float(&a, o, 0, 1, &gp.sampling.min_p)) return 2; }
        else if (!strcmp(o, "--repeat-penalty")) { if (cli_float(&a, o, 0.01f, 100, &gp.sampling.repeat_penalty)) return 2; }
        else if (!strcmp(o, "--repeat-last-n")) { if (cli_int(&a, o, 0, INT_MAX, &gp.sampling.repeat_last_n)) return 2; }
        else if (!strcmp(o, "-s") || !strcmp(o, "--seed")) { if (cli_u64(&a, o, &gp.sampling.seed)) return 2; }
        else if (!strcmp(o, "-c") || !strcmp(o, "--ctx")) { if (cli_int(&a, o, 1, 1 << 20, &ctx)) return 2; }
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) { if (cli_int(&a, o, 1, 1024, &threads)) return 2; }
        else if (!strcmp(o, "--tp")) { if (cli_int(&a, o, 1, 4096, &tp)) return 2; }
        else if (!strcmp(o, "--kv-type")) {
            const char *v = NULL;
            if (cli_str(&a, o, &v)) return 2;
            if (kv_dtype_parse(v, &gp.kv_type) != 0) {
                fprintf(stderr, "weft run: --kv-type expects f32, f16 or q8_0, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(o, "--ignore-eos")) ignore_eos = 1;
        else if (!strcmp(o, "--no-echo")) echo = 0;
        else if (!strcmp(o, "--stop")) {
            if (n_stops == STOP_MAX_STRINGS) { fprintf(stderr, "weft run: at most %d --stop strings\n", STOP_MAX_STRINGS); return 2; }
            if (cli_str(&a, o, &stops[n_stops])) return 2;
            n_stops++;
        } else {
            fprintf(stderr, "weft run: unknown option '%s'\n", o);
            run_usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "weft run: --model is required\n");
        run_usage(stderr);
        return 2;
    }
    char tok_buf[PATH_MAX];
    if (!tok_path && default_tokenizer(model_path, tok_buf, sizeof tok_buf) == 0) tok_path = tok_buf;

    weft_err err = {{0}};
    weft_model *m = NULL;
    tp_session *tps = NULL;
    run_load ld = {model_path, tok_path};
    int follower_rc = 0;
    int jr = tp_job_begin(tp, run_load_model, &ld, threads, &tps, &m, &follower_rc, &err);
    if (jr == 1) return follower_rc; /* a tensor-parallel follower rank, done */
    if (jr != 0) {
        fprintf(stderr, "weft run: %s\n", err.msg);
        return 1;
    }
    tp_pool *pool = tp_new(threads);
    if (!pool) {
        fprintf(stderr, "weft run: cannot start worker threads\n");
        tp_job_end(tps);
        model_free(m);
        return 1;
    }
    gp.prompt = prompt;
    gp.n_predict = n_predict;
    gp.ctx_len = ctx;
    gp.stop_strs = stops;
    gp.n_stop_strs = n_stops;
    gp.ignore_eos = ignore_eos;
    echo_state es = {echo ? prompt : NULL};

    gen_stats st;
    int rc = generate(m, pool, &gp, emit_stdout, &es, NULL, 0, &st, &err);
    if (rc == 0) {
        echo_prompt(&es);
        printf("\n");
        fflush(stdout);
        fprintf(stderr,
                "\nprompt: %d tokens in %.3f s (%.1f tok/s) | generation: %d tokens in %.3f s "
                "(%.1f tok/s) | stop: %s | %d threads, %s kernels\n",
                st.n_prompt, st.prefill_s, st.prefill_s > 0 ? st.n_prompt / st.prefill_s : 0.0,
                st.n_generated, st.decode_s, st.decode_s > 0 ? st.n_generated / st.decode_s : 0.0,
                gen_stop_name(st.reason), tp_size(pool), kn_isa_name(kn_isa_active()));
    } else {
        fprintf(stderr, "weft run: %s\n", err.msg);
    }
    tp_free(pool);
    tp_job_end(tps);
    model_free(m);
    return rc == 0 ? 0 : 1;
}
