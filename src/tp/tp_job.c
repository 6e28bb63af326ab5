/* tp_job.c — the few lines every command (run, serve, bench engine) needs for --tp N: join the
 * MPI job, load the model on every rank, agree and shard, then lead (rank 0) or follow. */
#include "weft/tp.h"

#include <stdio.h>

int tp_job_begin(int n, tp_load_fn load, void *load_ctx, int threads, tp_session **s,
                 weft_model **m, int *exit_code, weft_err *err) {
    *s = NULL;
    *m = NULL;
    *exit_code = 0;
    if (n <= 1) {
        *m = load(load_ctx, err);
        return *m ? 0 : -1;
    }
    tp_session *ss = tp_session_open(n, err);
    if (!ss) return -1;
    weft_err lerr = {{0}};
    weft_model *mm = load(load_ctx, &lerr);
    if (tp_session_attach(ss, mm, mm ? NULL : lerr.msg, err) != 0) {
        int rank = tp_session_rank(ss);
        model_free(mm);
        tp_session_close(ss);
        if (rank == 0) return -1;
        /* The leader reports why and exits non-zero. A follower exiting non-zero first would
         * make mpirun abort the job before the leader has printed the reason. */
        *exit_code = 0;
        return 1;
    }
    if (tp_session_rank(ss) == 0) {
        *s = ss;
        *m = mm;
        return 0;
    }
    int rc = tp_session_follow(ss, mm, threads, err);
    model_free(mm);
    tp_session_close(ss);
    if (rc != 0) fprintf(stderr, "weft: %s\n", err->msg);
    *exit_code = rc != 0;
    return 1;
}

void tp_job_end(tp_session *s) {
    tp_session_close(s);
}
