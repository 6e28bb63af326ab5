/* split_server.h — the server side of split inference: a TCP listener (`weft serve
 * --split-port`) on its own thread, speaking docs/split-protocol.md. Each connection is one
 * split request whose layers [p, L) run inside the engine's fused batch (engine_request.split);
 * the thread relays hidden states in and tokens out. Bad frames get an ERROR frame and the
 * connection is closed; its request is cancelled and its cache freed, others are untouched. */
#ifndef WEFT_SERVER_SPLIT_SERVER_H
#define WEFT_SERVER_SPLIT_SERVER_H

#include "split/proto.h"
#include "weft/engine.h"
#include "weft/model.h"

/* Chooses p for a client that asked for auto (split = -1): returns 0..L, or -1 with msg. Also
 * called for a fixed split (h->split >= 0), then it must return h->split (it may log the
 * planner's prediction for it). split_live: the split requests (p > 0) running now. */
typedef int (*split_choose_fn)(void *ctx, const split_hello *h, int split_live, char *msg,
                               size_t msg_size);

typedef struct split_srv_config {
    const char *host;
    int port;            /* 0 = any free port */
    const char *api_key; /* "" = none */
    int max_conns;       /* concurrent split connections (default 64) */
    int max_chunk;       /* rows per HIDDEN frame (default 64, <= SPLIT_MAX_ROWS) */
    int idle_timeout_s;  /* a client silent this long while the server waits for it (30) */
    int max_seq_len;     /* the engine's */
    split_choose_fn choose; /* NULL: auto is refused */
    void *choose_ctx;
} split_srv_config;

typedef struct split_srv split_srv;

split_srv *split_srv_start(engine *e, const weft_model *m, const split_srv_config *cfg,
                           weft_err *err);
int split_srv_port(const split_srv *s);
/* Closes every connection, cancels their requests (the engine must still be running), joins. */
void split_srv_stop(split_srv *s);

/* `--split auto` on the server side (split_auto.c): the server's profile (weft split profile)
 * and its engine's state, with the client's HELLO, give split_choose_one's least-server-work
 * split point that meets the client's SLA. */
typedef struct split_auto split_auto;
split_auto *split_auto_new(const weft_model *m, engine *e, const char *profile_path,
                           weft_err *err);
void split_auto_free(split_auto *a);
int split_auto_choose(void *ctx, const split_hello *h, int split_live, char *msg,
                      size_t msg_size);

#endif
