/* cli_args.h — strict option-value parsing shared by the subcommands: every number is checked
 * for garbage and range, and a bad value is reported with the option's name. */
#ifndef WEFT_CLI_ARGS_H
#define WEFT_CLI_ARGS_H

#include <stdint.h>

typedef struct cli_args {
    int argc;
    char **argv;
    int i;           /* next argument to read */
    const char *cmd; /* for messages */
} cli_args;

/* Each consumes the value after option `opt`; returns 0, or -1 after printing an error. */
int cli_str(cli_args *a, const char *opt, const char **out);
int cli_int(cli_args *a, const char *opt, int lo, int hi, int *out);
int cli_float(cli_args *a, const char *opt, float lo, float hi, float *out);
int cli_u64(cli_args *a, const char *opt, uint64_t *out);

#endif
