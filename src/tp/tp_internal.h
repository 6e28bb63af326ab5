/* tp_internal.h — the MPI session state shared by tp_session.c (collectives, handshake,
 * failure handling) and tp_follow.c (the follower loop). Only compiled with MPI. */
#ifndef WEFT_TP_INTERNAL_H
#define WEFT_TP_INTERNAL_H

#include <mpi.h>
#include <stdatomic.h>

#include "weft/forward.h"
#include "weft/tp.h"

/* The step header every forward pass starts with (leader → all). */
enum { TP_MSG_STEP = 1, TP_MSG_SHUTDOWN = 2 };
enum {
    TP_H_TYPE,
    TP_H_TOKENS,
    TP_H_SEQS,
    TP_H_TABLE,
    TP_H_MOVES,
    TP_H_MAX_TOKENS,
    TP_H_MAX_CTX,
    TP_H_KV_BLOCKS,
    TP_H_KV_BLOCK_TOKENS,
    TP_H_KV_DTYPE,
    TP_H_PAYLOAD,
    TP_H_COUNT
};

struct tp_session {
    int rank, size;
    MPI_Comm comm;
    double timeout_s, grace_s;
    fwd_comm fc;
    tp_plan plan;
    int *v_counts, *v_displs; /* [size] vocabulary rows per rank, and their starts */
    int vocab;
    /* leader: KV block copies since the last step, (src, dst, rows) triples */
    int32_t *moves;
    int n_moves, cap_moves;
    /* step payload (leader builds, followers receive) */
    int32_t hdr[TP_H_COUNT];
    int32_t *pay;
    size_t pay_cap;
    float *gbuf; /* leader: gathered logits slices before reordering */
    size_t gbuf_cap;
    int *g_counts, *g_displs;
    /* stats (leader) */
    tp_stats st;
    double t_begin, t_last;
    int in_step;
    atomic_int failed;
    char fail_msg[384];
};

double tp_now_s(void);
/* Waits for rq. idle: the rank is waiting for work (sleep between polls, no timeout); else
 * busy-polls and declares the job broken after timeout_s. what names the operation. */
void tp_wait(tp_session *s, MPI_Request *rq, int idle, const char *what);
/* Prints the message, marks the session failed, waits grace_s (leader) and aborts the job. */
_Noreturn void tp_fail(tp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fails the job when starting a non-blocking collective returned an error (rc of MPI_I...). */
void tp_check_start(tp_session *s, int rc, const char *what);
/* Grows s->pay to hold n int32 values; fails the job when out of memory. */
void tp_pay_reserve(tp_session *s, size_t n);

#endif
