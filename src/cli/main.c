/* main.c — `weft <command>`: dispatches to the subcommands in src/cli/. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

static void usage(FILE *out) {
    fprintf(out, "usage: weft <command> [options]\n"
                 "commands:\n"
                 "  run      generate text from a model (weft run --model F [--prompt T] [-n N])\n"
                 "  serve    OpenAI-compatible HTTP server (weft serve --model F [--port N])\n"
                 "  split-client  generate with the model split between here and a server\n"
                 "           (weft split-client --server H:P --model F --split auto|P --prompt T)\n"
                 "  model    inspect a model file or synthesize one with random weights\n"
                 "           (weft model inspect F | weft model synth --preset P --out F.gguf)\n"
                 "  bench    benchmark the engine in-process (weft bench engine --synth P [...])\n"
                 "           or a server over HTTP (weft bench serve --url URL [...])\n"
                 "           or the split planner (weft bench split --server-profile S [...])\n"
                 "  predict  answer-length predictor: fit, eval, features of a prompt\n"
                 "           (weft predict eval --data FILE... | weft predict features --prompt T)\n"
                 "  split    split inference: measure a device (weft split profile --model F)\n"
                 "run `weft <command> --help` for its options\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (!strcmp(c, "split-client")) return cmd_split_client(argc - 2, argv + 2);
    if (!strcmp(c, "run")) return cmd_run(argc - 2, argv + 2);
    if (!strcmp(c, "model")) return cmd_model(argc - 2, argv + 2);
    if (!strcmp(c, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(c, "bench")) return cmd_bench(argc - 2, argv + 2);
    if (!strcmp(c, "predict")) return cmd_predict(argc - 2, argv + 2);
    if (!strcmp(c, "split")) return cmd_split(argc - 2, argv + 2);
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "weft: unknown command '%s'\n", c);
    usage(stderr);
    return 2;
}
