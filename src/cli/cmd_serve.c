/* cmd_serve.c — `weft serve`: the OpenAI-compatible HTTP server. Options are read by
 * src/server/config.c (flags, environment, config file); the server lives in src/server/. */
#include "cli/commands.h"
#include "server/server.h"

int cmd_serve(int argc, char **argv) {
    srv_config c;
    int r = srv_config_load(&c, argc, argv);
    if (r == 1) return 0;
    if (r != 0) return 2;
    return srv_run(&c);
}
