/* cmd_run.c — placeholder until `weft run` lands. */
#include <stdio.h>
#include "cli/commands.h"
int cmd_run(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "weft run: not built yet\n");
    return 1;
}
