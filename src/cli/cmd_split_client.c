/* cmd_split_client.c — `weft split-client`: generate text with the model split between this
 * process (embedding + the first p layers) and a weft server (`weft serve --split-port`), which
 * runs the rest inside its fused batch. Tokens stream to stdout as they arrive; a summary line
 * (split point, timings, bytes on the wire) goes to stderr. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/model.h"
#include "weft/split_client.h"
#include "weft/split_plan.h"
#include "weft/tokenizer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: weft split-client --server HOST:PORT --model F.gguf [options]\n"
            "      --server HOST:PORT the server's --split-port\n"
            "  -m, --model F          the same GGUF the server runs (only layers [0, p) are read)\n"
            "      --split auto|P     layers to run here (0..n_layers), or auto: the server plans\n"
            "                         from this client's profile and SLA (default auto)\n"
            "  -p, --prompt TEXT      prompt (default: empty, generation starts from BOS)\n"
            "  -n, --n-predict N      tokens to generate (default 256)\n"
            "      --temp T           temperature, 0 = greedy (default 0 = greedy)\n"
            "      --top-k K          (default 40, 0 = off)\n"
            "      --top-p P          (default 0.95, 1 = off)\n"
            "      --min-p P          (default 0.05, 0 = off)\n"
            "  -s, --seed S           RNG seed (default 42)\n"
            "      --hidden f32|f16   hidden states on the wire (default f32)\n"
            "      --chunk N          prefill rows per frame (default 64, at most 256)\n"
            "      --api-key K        the server's API key (default: $WEFT_API_KEY)\n"
            "      --profile F        this client's `weft split profile` JSON (for auto)\n"
            "      --sla-ms MS        end-to-end latency bound for auto planning (default none)\n"
            "      --link-bw BPS      link bandwidth in bytes/s for auto (default: the profile's)\n"
            "      --link-rtt-ms MS   link round-trip time for auto (default: the profile's)\n"
            "      --max-layers N     most layers this client may run under auto (default all)\n"
            "  -t, --threads N        worker threads (default: all cores)\n"
            "      --timeout-s S      per-frame receive timeout (default 60)\n"
            "      --no-echo          do not print the prompt before the generation\n");
}

typedef struct out_state {
    tok_decoder dec;
    const char *echo;
} out_state;

static int on_token(void *ctx, int token) {
    out_state *o = ctx;
    if (o->echo) fputs(o->echo, stdout);
    o->echo = NULL;
    char piece[256];
    int n = tok_decoder_feed(&o->dec, token, piece, sizeof piece);
    if (n > 0) fwrite(piece, 1, (size_t)n, stdout);
    fflush(stdout);
    return 0;
}

static const char *finish_name(int f) {
    static const char *const names[] = {"length", "stop", "context", "cancelled", "error"};
    return f >= 0 && f < 5 ? names[f] : "?";
}

int cmd_split_client(int argc, char **argv) {
    const char *server = NULL, *model_path = NULL, *prompt = "", *split = "auto";
    const char *hidden = "f32", *profile = NULL;
    int n_predict = 256, echo = 1, max_layers = 0;
    float sla_ms = 0, bw = 0, rtt_ms = -1, timeout = 60;
    split_client_opts o;
    split_client_opts_init(&o);
    o.sampling.seed = 42;
    o.api_key = getenv("WEFT_API_KEY");
    cli_args a = {argc, argv, 0, "split-client"};
    while (a.i < a.argc) {
        const char *s = a.argv[a.i++];
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(s, "--server")) { if (cli_str(&a, s, &server)) return 2; }
        else if (!strcmp(s, "-m") || !strcmp(s, "--model")) { if (cli_str(&a, s, &model_path)) return 2; }
        else if (!strcmp(s, "--split")) { if (cli_str(&a, s, &split)) return 2; }
        else if (!strcmp(s, "-p") || !strcmp(s, "--prompt")) { if (cli_str(&a, s, &prompt)) return 2; }
        else if (!strcmp(s, "-n") || !strcmp(s, "--n-predict")) { if (cli_int(&a, s, 1, INT_MAX, &n_predict)) return 2; }
        else if (!strcmp(s, "--temp")) { if (cli_float(&a, s, 0, 100, &o.sampling.temperature)) return 2; }
        else if (!strcmp(s, "--top-k")) { if (cli_int(&a, s, 0, INT_MAX, &o.sampling.top_k)) return 2; }
        else if (!strcmp(s, "--top-p")) { if (cli_float(&a, s, 0, 1, &o.sampling.top_p)) return 2; }
        else if (!strcmp(s, "--min-p")) { if (cli_float(&a, s, 0, 1, &o.sampling.min_p)) return 2; }
        else if (!strcmp(s, "-s") || !strcmp(s, "--seed")) { if (cli_u64(&a, s, &o.sampling.seed)) return 2; }
        else if (!strcmp(s, "--hidden")) { if (cli_str(&a, s, &hidden)) return 2; }
        else if (!strcmp(s, "--chunk")) { if (cli_int(&a, s, 1, 256, &o.chunk)) return 2; }
        else if (!strcmp(s, "--api-key")) { if (cli_str(&a, s, &o.api_key)) return 2; }
        else if (!strcmp(s, "--profile")) { if (cli_str(&a, s, &profile)) return 2; }
        else if (!strcmp(s, "--sla-ms")) { if (cli_float(&a, s, 0, 1e9f, &sla_ms)) return 2; }
        else if (!strcmp(s, "--link-bw")) { if (cli_float(&a, s, 1, 1e15f, &bw)) return 2; }
        else if (!strcmp(s, "--link-rtt-ms")) { if (cli_float(&a, s, 0, 1e6f, &rtt_ms)) return 2; }
        else if (!strcmp(s, "--max-layers")) { if (cli_int(&a, s, 0, 100000, &max_layers)) return 2; }
        else if (!strcmp(s, "-t") || !strcmp(s, "--threads")) { if (cli_int(&a, s, 1, 1024, &o.n_threads)) return 2; }
        else if (!strcmp(s, "--timeout-s")) { if (cli_float(&a, s, 0.1f, 86400, &timeout)) return 2; }
        else if (!strcmp(s, "--no-echo")) echo = 0;
        else {
            fprintf(stderr, "weft split-client: unknown option '%s'\n", s);
            usage(stderr);
            return 2;
        }
    }
    if (!server || !model_path) {
        fprintf(stderr, "weft split-client: --server and --model are required\n");
        usage(stderr);
        return 2;
    }
    char host[256];
    const char *colon = strrchr(server, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == server || (size_t)(colon - server) >= sizeof host || !end || *end ||
        port < 1 || port > 65535) {
        fprintf(stderr, "weft split-client: --server expects HOST:PORT, got '%s'\n", server);
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - server), server);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [v6]:port */
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = 0;
    }
    o.host = host;
    o.port = (int)port;
    if (!strcmp(split, "auto")) o.split = -1;
    else {
        long v = strtol(split, &end, 10);
        if (!*split || *end || v < 0 || v > 100000) {
            fprintf(stderr, "weft split-client: --split expects auto or a layer count, got '%s'\n", split);
            return 2;
        }
        o.split = (int)v;
    }
    if (!strcmp(hidden, "f16")) o.f16 = true;
    else if (strcmp(hidden, "f32")) {
        fprintf(stderr, "weft split-client: --hidden expects f32 or f16, got '%s'\n", hidden);
        return 2;
    }
    o.max_tokens = n_predict;
    o.timeout_s = timeout;
    o.sla_s = sla_ms / 1e3;
    o.client_max_layers = max_layers;
    weft_err err = {{0}};
    if (profile) {
        split_profile pr;
        if (split_profile_read_json(profile, &pr, &err) != 0) {
            fprintf(stderr, "weft split-client: %s\n", err.msg);
            return 1;
        }
        o.layer_prefill_s = pr.cost.layer_prefill_s;
        o.layer_decode_s = pr.cost.layer_decode_s;
        o.head_prefill_s = pr.cost.head_prefill_s;
        o.head_decode_s = pr.cost.head_decode_s;
        if (pr.has_link) {
            o.link_bw_Bps = pr.link_bw_Bps;
            o.link_rtt_s = pr.link_rtt_s;
        }
    }
    if (bw > 0) o.link_bw_Bps = bw;
    if (rtt_ms >= 0) o.link_rtt_s = rtt_ms / 1e3;

    weft_model *m = model_load(model_path, NULL, &err);
    if (!m) {
        fprintf(stderr, "weft split-client: %s\n", err.msg);
        return 1;
    }
    int rc = 1;
    size_t plen = strlen(prompt);
    int n_prompt = tok_encode(m->tok, prompt, plen, true, NULL, 0);
    int32_t *toks = n_prompt > 0 ? malloc(sizeof *toks * (size_t)n_prompt) : NULL;
    if (!toks || tok_encode(m->tok, prompt, plen, true, toks, n_prompt) != n_prompt) {
        fprintf(stderr, "weft split-client: cannot tokenize the prompt\n");
        goto done;
    }
    out_state os = {.echo = echo ? prompt : NULL};
    tok_decoder_init(&os.dec, m->tok);
    char scratch[64];
    tok_decoder_feed(&os.dec, toks[n_prompt - 1], scratch, sizeof scratch);
    split_result res;
    if (split_generate(m, &o, toks, n_prompt, on_token, &os, &res, &err) != 0) {
        fprintf(stderr, "\nweft split-client: %s\n", err.msg);
        goto done;
    }
    if (os.echo) fputs(os.echo, stdout);
    char piece[64];
    int n = tok_decoder_flush(&os.dec, piece, sizeof piece);
    if (n > 0) fwrite(piece, 1, (size_t)n, stdout);
    printf("\n");
    fflush(stdout);
    fprintf(stderr,
            "split-client: split %d/%d | prompt %d | generated %d | finish %s | ttft %.4f s | "
            "total %.4f s | client compute %.4f s | up %llu B | down %llu B | hidden %s\n",
            res.split_layer, m->cfg.n_layers, n_prompt, res.n_generated, finish_name(res.finish),
            res.ttft_s, res.total_s, res.client_compute_s, (unsigned long long)res.bytes_up,
            (unsigned long long)res.bytes_down, o.f16 ? "f16" : "f32");
    rc = 0;
done:
    free(toks);
    model_free(m);
    return rc;
}
