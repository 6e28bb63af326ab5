/* commands.h — the subcommands of `weft`, one file each under src/cli/. Each takes the
 * arguments after its own name and returns the process exit code. */
#ifndef WEFT_CLI_COMMANDS_H
#define WEFT_CLI_COMMANDS_H

int cmd_split_client(int argc, char **argv); /* weft split-client --server H:P ... */
int cmd_run(int argc, char **argv);         /* weft run --model F ... */
int cmd_model(int argc, char **argv);       /* weft model inspect|synth ... */
int cmd_serve(int argc, char **argv);       /* weft serve --model F ... */
int cmd_bench(int argc, char **argv);       /* weft bench engine|serve ... */
int cmd_bench_serve(int argc, char **argv); /* weft bench serve ... (from cmd_bench) */
int cmd_predict(int argc, char **argv);     /* weft predict fit|eval|features|ratio ... */
int cmd_split(int argc, char **argv);       /* weft split profile|link-sink ... */
int cmd_bench_split(int argc, char **argv); /* weft bench split ... (from cmd_bench) */
int cmd_bench_stepfit(int argc, char **argv); /* weft bench stepfit ... (from cmd_bench) */

#endif
