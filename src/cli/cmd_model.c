/* cmd_model.c — placeholder until `weft model` lands. */
#include <stdio.h>
#include "cli/commands.h"
int cmd_model(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "weft model: not built yet\n");
    return 1;
}
