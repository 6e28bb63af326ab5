/* cmd_serve.c — `weft serve`: the OpenAI-compatible HTTP server. Options are read by
 * src/server/config.c (flags, environment, config file); the server lives in src/server/.
 * With --tp N every MPI rank loads its shard first; rank 0 then serves, the others follow. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "server/server.h"
#include "weft/model.h"
#include "weft/tp.h"

static weft_model *serve_load(void *ctx, weft_err *err) {
    const srv_config *c = ctx;
    return model_load(c->model, NULL, err);
}

int cmd_serve(int argc, char **argv) {
    srv_config c;
    int r = srv_config_load(&c, argc, argv);
    if (r == 1) return 0;
    if (r != 0) return 2;
    if (c.tp <= 1) return srv_run(&c);
    tp_session *tps = NULL;
    weft_model *m = NULL;
    int follower_rc = 0;
    weft_err err = {{0}};
    int jr = tp_job_begin(c.tp, serve_load, &c, c.threads, &tps, &m, &follower_rc, &err);
    if (jr == 1) return follower_rc; /* a follower rank, done */
    if (jr != 0) {
        fprintf(stderr, "weft serve: %s\n", err.msg);
        return 1;
    }
    /* A failed rank: keep answering /health (503) for a moment before the job is aborted. */
    if (!getenv("WEFT_TP_FAIL_GRACE_S")) tp_session_set_timeouts(tps, 0, 3);
    return srv_run_loaded(&c, m, tps);
}
