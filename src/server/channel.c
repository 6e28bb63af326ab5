/* channel.c — see channel.h. */
#include "server/channel.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

chan *chan_new(void) {
    chan *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        free(c);
        return NULL;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        close(c->efd);
        free(c);
        return NULL;
    }
    c->refs = 2;
    return c;
}

void chan_unref(chan *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    int left = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&c->mu);
    close(c->efd);
    free(c->v);
    free(c);
}

static int chan_grow(chan *c) {
    int cap = c->cap ? c->cap * 2 : 16;
    engine_event *v = malloc((size_t)cap * sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < c->n; i++)
        v[i] = c->v[(c->head + i) % c->cap];
    free(c->v);
    c->v = v;
    c->cap = cap;
    c->head = 0;
    return 0;
}

void chan_on_event(void *ctx, const engine_event *ev) {
    chan *c = ctx;
    if (ev->type == ENGINE_EV_PREEMPTED) return; /* invisible to the client */
    pthread_mutex_lock(&c->mu);
    if (c->n == c->cap && chan_grow(c) != 0) {
        c->oom = true;
    } else {
        c->v[(c->head + c->n) % c->cap] = *ev;
        c->n++;
    }
    pthread_mutex_unlock(&c->mu);
    uint64_t one = 1;
    /* Only EAGAIN (counter saturated) can fail here, and then the fd is readable anyway. */
    while (write(c->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
    if (ev->type == ENGINE_EV_FINISHED) chan_unref(c);
}

int chan_pop(chan *c, engine_event *ev) {
    pthread_mutex_lock(&c->mu);
    int got = 0;
    if (c->n > 0) {
        *ev = c->v[c->head];
        c->head = (c->head + 1) % c->cap;
        c->n--;
        got = 1;
    }
    if (c->n == 0) {
        uint64_t drain;
        /* resets the counter; EAGAIN when already zero is fine */
        while (read(c->efd, &drain, sizeof drain) < 0 && errno == EINTR) {
        }
    }
    pthread_mutex_unlock(&c->mu);
    return got;
}

bool chan_failed(chan *c) {
    pthread_mutex_lock(&c->mu);
    bool f = c->oom;
    pthread_mutex_unlock(&c->mu);
    return f;
}
