/* cmd_split.c — `weft split profile` (measure this device's per-layer cost for a model, and
 * optionally the link to a host, into the JSON profile the split planner reads) and
 * `weft split link-sink` (the peer `--link HOST:PORT` measures against). `weft split-client`
 * is a separate command (cmd_split_client.c). */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/model.h"
#include "weft/split_plan.h"

static void split_usage(FILE *out) {
    fprintf(out,
            "usage: weft split profile --model F [options]\n"
            "  -m, --model F          GGUF, or llama2.c .bin (then --tokenizer)\n"
            "  -z, --tokenizer F      llama2.c tokenizer.bin\n"
            "  -t, --threads N        worker threads (default: all cores)\n"
            "      --prompt-tokens N  prefill chunk to time (default 64)\n"
            "      --batch B          sequences per timed decode step; the cost is per sequence\n"
            "                         (default 1: a lone client; a server profile uses its fused batch)\n"
            "      --batch-lo N       also time decode steps of N < B sequences and write the step\n"
            "                         model, per step fixed + marginal x batch (JSON \"step\"; default\n"
            "                         1 when --batch > 1; 0: only --batch)\n"
            "      --reps N           timed repetitions per depth, fastest taken (default 5)\n"
            "      --slow F           multiply the measured costs by F (a device F times slower)\n"
            "      --link HOST:PORT   measure bandwidth and RTT to a `weft split link-sink`\n"
            "      --link-bw BYTES/S  give the link instead (with --link-rtt SECONDS)\n"
            "      --link-rtt S\n"
            "  -o, --out F.json       write the profile there (default: stdout)\n"
            "       weft split link-sink --port P [--host H]   answer --link measurements\n");
}

static int parse_hostport(const char *s, char *host, size_t hsize, int *port) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= hsize) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p < 1 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

static int split_profile_cmd(int argc, char **argv) {
    const char *model_path = NULL, *tok_path = NULL, *out_path = NULL, *link = NULL;
    int threads = 0, prompt_tokens = 64, batch = 1, reps = 5, batch_lo = -1;
    float slow = 1, link_bw = 0, link_rtt = -1;
    cli_args a = {argc, argv, 0, "split profile"};
    while (a.i < a.argc) {
        const char *o = a.argv[a.i++];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { split_usage(stdout); return 0; }
        else if (!strcmp(o, "-m") || !strcmp(o, "--model")) { if (cli_str(&a, o, &model_path)) return 2; }
        else if (!strcmp(o, "-z") || !strcmp(o, "--tokenizer")) { if (cli_str(&a, o, &tok_path)) return 2; }
        else if (!strcmp(o, "-t") || !strcmp(o, "--threads")) { if (cli_int(&a, o, 1, 1024, &threads)) return 2; }
        else if (!strcmp(o, "--prompt-tokens")) { if (cli_int(&a, o, 1, 8192, &prompt_tokens)) return 2; }
        else if (!strcmp(o, "--batch")) { if (cli_int(&a, o, 1, 256, &batch)) return 2; }
        else if (!strcmp(o, "--batch-lo")) { if (cli_int(&a, o, 0, 255, &batch_lo)) return 2; }
        else if (!strcmp(o, "--reps")) { if (cli_int(&a, o, 1, 1000, &reps)) return 2; }
        else if (!strcmp(o, "--slow")) { if (cli_float(&a, o, 0.001f, 1e6f, &slow)) return 2; }
        else if (!strcmp(o, "--link")) { if (cli_str(&a, o, &link)) return 2; }
        else if (!strcmp(o, "--link-bw")) { if (cli_float(&a, o, 1, 1e12f, &link_bw)) return 2; }
        else if (!strcmp(o, "--link-rtt")) { if (cli_float(&a, o, 0, 60, &link_rtt)) return 2; }
        else if (!strcmp(o, "-o") || !strcmp(o, "--out")) { if (cli_str(&a, o, &out_path)) return 2; }
        else {
            fprintf(stderr, "weft split profile: unknown option '%s'\n", o);
            split_usage(stderr);
            return 2;
        }
    }
    if (!model_path) {
        fprintf(stderr, "weft split profile: --model is required\n");
        return 2;
    }
    if (batch_lo < 0) batch_lo = batch > 1 ? 1 : 0;
    if (batch_lo > 0 && batch_lo >= batch) {
        fprintf(stderr, "weft split profile: --batch-lo %d must be below --batch %d (or 0)\n",
                batch_lo, batch);
        return 2;
    }
    if ((link_bw > 0) != (link_rtt >= 0)) {
        fprintf(stderr, "weft split profile: --link-bw and --link-rtt go together\n");
        return 2;
    }
    if (link && link_bw > 0) {
        fprintf(stderr, "weft split profile: give --link or --link-bw/--link-rtt, not both\n");
        return 2;
    }
    char host[256];
    int port = 0;
    if (link && parse_hostport(link, host, sizeof host, &port)) {
        fprintf(stderr, "weft split profile: --link expects HOST:PORT, got '%s'\n", link);
        return 2;
    }
    weft_err err = {{0}};
    weft_model *m = model_load(model_path, tok_path, &err);
    if (!m) {
        fprintf(stderr, "weft split profile: %s\n", err.msg);
        return 1;
    }
    split_profile p;
    int rc = split_profile_measure2(m, threads, prompt_tokens, batch, batch_lo, reps, &p, &err);
    model_free(m);
    if (rc) {
        fprintf(stderr, "weft split profile: %s\n", err.msg);
        return 1;
    }
    snprintf(p.model, sizeof p.model, "%s", model_path);
    if (slow != 1) {
        split_profile_scale(&p, slow);
        size_t n = strlen(p.device);
        snprintf(p.device + n, sizeof p.device - n, " (costs x%g)", slow);
    }
    if (link) {
        if (split_link_measure(host, port, &p.link_bw_Bps, &p.link_rtt_s, &err)) {
            fprintf(stderr, "weft split profile: %s\n", err.msg);
            return 1;
        }
        p.has_link = 1;
    } else if (link_bw > 0) {
        p.link_bw_Bps = link_bw;
        p.link_rtt_s = link_rtt;
        p.has_link = 1;
    }
    fprintf(stderr,
            "weft split profile: %s, %d layers, %d threads: per layer %.3f us/prompt token, "
            "%.3f ms/decode step; head %.3f ms/prefill, %.3f ms/step\n",
            p.device, p.n_layers, p.threads, p.cost.layer_prefill_s * 1e6,
            p.cost.layer_decode_s * 1e3, p.cost.head_prefill_s * 1e3, p.cost.head_decode_s * 1e3);
    if (p.step_hi > 0)
        fprintf(stderr,
                "weft split profile: decode step of b sequences (fit at %d and %d): per layer "
                "%.4f ms fixed + %.4f ms x b; head %.4f ms fixed + %.4f ms x b\n",
                p.step_lo, p.step_hi, p.step_layer_fixed_s * 1e3, p.step_layer_marginal_s * 1e3,
                p.step_head_fixed_s * 1e3, p.step_head_marginal_s * 1e3);
    if (p.has_link)
        fprintf(stderr, "weft split profile: link %.3f MB/s, RTT %.3f ms\n", p.link_bw_Bps / 1e6,
                p.link_rtt_s * 1e3);
    const char *dst = out_path ? out_path : "/dev/stdout";
    if (split_profile_write_json(&p, dst, &err)) {
        fprintf(stderr, "weft split profile: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* The sink polls a volatile int; on Linux sig_atomic_t is that int, so the signal handler's
 * flag is handed to it directly. */
_Static_assert(_Generic((sig_atomic_t)0, int: 1, default: 0), "sig_atomic_t is int");
static volatile sig_atomic_t sink_stop_sig;
static void on_term(int sig) {
    (void)sig;
    sink_stop_sig = 1;
}

static int split_link_sink_cmd(int argc, char **argv) {
    const char *host = "127.0.0.1";
    int port = 0;
    cli_args a = {argc, argv, 0, "split link-sink"};
    while (a.i < a.argc) {
        const char *o = a.argv[a.i++];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { split_usage(stdout); return 0; }
        else if (!strcmp(o, "--host")) { if (cli_str(&a, o, &host)) return 2; }
        else if (!strcmp(o, "--port")) { if (cli_int(&a, o, 1, 65535, &port)) return 2; }
        else {
            fprintf(stderr, "weft split link-sink: unknown option '%s'\n", o);
            return 2;
        }
    }
    if (!port) {
        fprintf(stderr, "weft split link-sink: --port is required\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    weft_err err = {{0}};
    fprintf(stderr, "weft split link-sink: listening on %s:%d\n", host, port);
    int rc = split_link_sink_run(host, port, &sink_stop_sig, &err);
    if (rc) {
        fprintf(stderr, "weft split link-sink: %s\n", err.msg);
        return 1;
    }
    return 0;
}

int cmd_split(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        split_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "profile")) return split_profile_cmd(argc - 1, argv + 1);
    if (!strcmp(argv[0], "link-sink")) return split_link_sink_cmd(argc - 1, argv + 1);
    fprintf(stderr, "weft split: unknown subcommand '%s' (profile or link-sink)\n", argv[0]);
    return 2;
}
