/* channel.h — the per-request channel between the engine thread and one HTTP thread.
 * The engine's callback pushes events (never blocks: the queue grows; a request produces at
 * most max_tokens + 1 events, so it is bounded by the request); the HTTP thread pops them.
 * Instead of a condition variable the channel signals an eventfd, so the HTTP thread can wait
 * for engine events, the client's socket and the server's shutdown in one poll().
 * The channel is reference-counted: one reference for the HTTP side, one for the engine side
 * (dropped when FINISHED is pushed), so neither side has to wait for the other to free it. */
#ifndef WEFT_SERVER_CHANNEL_H
#define WEFT_SERVER_CHANNEL_H

#include <pthread.h>
#include <stdbool.h>

#include "weft/engine.h"

typedef struct chan {
    pthread_mutex_t mu;
    int efd; /* eventfd: readable while events are queued */
    engine_event *v;
    int head, n, cap;
    int refs;
    bool oom; /* an event was lost to allocation failure: the request is treated as failed */
} chan;

/* A channel with two references (HTTP + engine); NULL on failure. */
chan *chan_new(void);
/* Drops one reference; the last frees. */
void chan_unref(chan *c);
/* The engine callback (engine_event_fn): ctx is the chan. Drops the engine's reference after
 * a FINISHED event. */
void chan_on_event(void *ctx, const engine_event *ev);
/* Pops one event into *ev: 1 if one was queued, 0 if none. Never blocks. */
int chan_pop(chan *c, engine_event *ev);
/* Whether an event was lost (allocation failure inside the callback). */
bool chan_failed(chan *c);

#endif
