/* split_server.c — split-inference connections (see split_server.h, docs/split-protocol.md).
 * One thread polls the listening socket, an eventfd the engine callbacks signal, and every
 * connection (non-blocking). Per connection: HELLO (auth, limits, the split layer: the client's
 * or the planner's) -> ACCEPT; then strictly one frame in flight: the client sends HIDDEN, the
 * server answers CONSUMED (a prefill chunk) or TOKEN (the next token), and DONE at the end.
 * At split 0 (protocol v2) the client sends its prompt's token ids in one IDS frame instead: the
 * server runs an ordinary request and streams TOKEN frames without waiting for the client.
 * Engine events arrive on the engine thread; they are queued per connection under mu and turned
 * into frames here, so only this thread touches sockets. A connection's memory is freed once
 * its socket is closed AND the engine delivered its request's FINISHED (the callback's ctx). */
#include "server/split_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVQ 8
#define WBUF 4096
#define ID_BASE (1ULL << 62) /* split request ids never meet the HTTP server's */

typedef enum cstate { C_HELLO, C_RUN, C_CLOSING } cstate;

typedef struct sconn {
    struct split_srv *srv;
    int fd;          /* -1 once closed */
    cstate state;
    double last_s;   /* last frame in or out; closing: when closing began */
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint8_t wbuf[WBUF];
    size_t wlen, woff;
    /* the request */
    uint64_t id;
    int p, n_prompt, max_tokens, chunk, fed, n_gen;
    split_dtype dt;
    bool expect;     /* the server waits for a HIDDEN (or IDS) frame */
    bool ids_mode;   /* split 0: the request is submitted when its IDS frame arrives */
    engine_request req; /* split 0: the request as HELLO described it, without its prompt */
    float *rows;
    /* guarded by srv->mu */
    bool engine_live; /* submitted, FINISHED not yet delivered */
    engine_event *evq; /* grows: at split 0 tokens stream without waiting for the client */
    int n_ev, cap_ev;
    bool ev_overflow;
} sconn;

struct split_srv {
    engine *eng;
    const weft_model *m;
    split_srv_config cfg;
    char api_key[SPLIT_MAX_KEY + 1];
    int lfd, efd, port;
    pthread_t th;
    bool th_started;
    atomic_bool stop;
    pthread_mutex_t mu;
    sconn **conns;
    int n_conns;
    uint64_t next_id;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void wake(split_srv *s) {
    uint64_t one = 1;
    ssize_t w = write(s->efd, &one, sizeof one);
    (void)w; /* a full counter already wakes the thread */
}

/* engine thread */
static void on_event(void *ctx, const engine_event *ev) {
    sconn *c = ctx;
    split_srv *s = c->srv;
    pthread_mutex_lock(&s->mu);
    if (ev->type != ENGINE_EV_PREEMPTED) {
        if (c->n_ev == c->cap_ev) {
            int nc = c->cap_ev ? 2 * c->cap_ev : EVQ;
            engine_event *nv = nc <= 1 << 20 ? realloc(c->evq, sizeof *nv * (size_t)nc) : NULL;
            if (nv) c->evq = nv, c->cap_ev = nc;
        }
        if (c->n_ev < c->cap_ev) c->evq[c->n_ev++] = *ev;
        else c->ev_overflow = true;
    }
    if (ev->type == ENGINE_EV_FINISHED) c->engine_live = false;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

static void queue_bytes(sconn *c, const uint8_t *p, size_t n) {
    if (c->woff > 0 && c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->woff > 0 && c->wlen + n > WBUF) { /* streamed tokens: make room */
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
    if (c->wlen + n > WBUF) { /* a client that stopped reading; drop the connection */
        c->state = C_CLOSING;
        return;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

static void queue_ints(sconn *c, split_type t, const int32_t *v, int n) {
    uint8_t b[64];
    size_t k = split_ints_encode(b, sizeof b, t, v, n);
    queue_bytes(c, b, k);
}

static void cancel_request(sconn *c) {
    pthread_mutex_lock(&c->srv->mu);
    bool live = c->engine_live;
    pthread_mutex_unlock(&c->srv->mu);
    if (live) engine_cancel(c->srv->eng, c->id);
}

/* Sends an ERROR frame, stops reading, cancels the request; the socket closes once flushed. */
static void refuse(sconn *c, split_errcode code, const char *msg) {
    uint8_t b[SPLIT_HDR_BYTES + 4 + SPLIT_MAX_MSG];
    size_t k = split_error_encode(b, sizeof b, code, msg);
    c->woff = c->wlen = 0; /* the error is the last word */
    queue_bytes(c, b, k);
    c->state = C_CLOSING;
    c->last_s = now_s();
    cancel_request(c);
}

/* Hands the request to the engine, marking the connection live first (events may arrive before
 * engine_submit returns); on failure unmarks it and refuses the client. 0 or -1. */
static int submit_live(sconn *c, const engine_request *r) {
    split_srv *s = c->srv;
    pthread_mutex_lock(&s->mu);
    c->engine_live = true;
    pthread_mutex_unlock(&s->mu);
    weft_err err = {{0}};
    if (engine_submit(s->eng, r, &err) == 0) return 0;
    pthread_mutex_lock(&s->mu);
    c->engine_live = false;
    pthread_mutex_unlock(&s->mu);
    refuse(c, SPLIT_E_SERVER, err.msg);
    return -1;
}

static void close_fd(sconn *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    cancel_request(c);
}

static int grow_rbuf(sconn *c, size_t cap) {
    if (cap <= c->rcap) return 0;
    uint8_t *n = realloc(c->rbuf, cap);
    if (!n) return -1;
    c->rbuf = n;
    c->rcap = cap;
    return 0;
}

static void on_hello(sconn *c, const uint8_t *p, uint32_t len) {
    split_srv *s = c->srv;
    const weft_config *mc = &s->m->cfg;
    split_hello h;
    char msg[256];
    int code = split_hello_decode(p, len, &h, msg, sizeof msg);
    if (code != 0) {
        refuse(c, (split_errcode)code, msg);
        return;
    }
    if (s->api_key[0] && !split_key_equal(h.key, h.key_len, s->api_key)) {
        refuse(c, SPLIT_E_AUTH, "invalid API key");
        return;
    }
    int pl = h.split;
    int split_live = 0; /* split requests (p > 0) running now: they wait on their clients */
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->n_conns; i++)
        if (s->conns[i] != c && s->conns[i]->engine_live && !s->conns[i]->ids_mode) split_live++;
    pthread_mutex_unlock(&s->mu);
    if (pl > mc->n_layers) {
        snprintf(msg, sizeof msg, "split %d exceeds the model's %d layers", pl, mc->n_layers);
        refuse(c, SPLIT_E_LIMIT, msg);
        return;
    }
    if (pl >= 0 && s->cfg.choose) /* a fixed split: the planner only predicts and logs it */
        pl = s->cfg.choose(s->cfg.choose_ctx, &h, split_live, msg, sizeof msg);
    else if (pl < 0) {
        if (!s->cfg.choose) {
            refuse(c, SPLIT_E_LIMIT, "auto split needs the server's profile "
                                     "(weft serve --split-profile)");
            return;
        }
        pl = s->cfg.choose(s->cfg.choose_ctx, &h, split_live, msg, sizeof msg);
        if (pl < 0 || pl > mc->n_layers) {
            refuse(c, SPLIT_E_SERVER, msg);
            return;
        }
    }
    if ((int64_t)h.n_prompt + h.max_tokens > s->cfg.max_seq_len) {
        snprintf(msg, sizeof msg, "prompt (%d) + max_tokens (%d) exceeds the context %d",
                 h.n_prompt, h.max_tokens, s->cfg.max_seq_len);
        refuse(c, SPLIT_E_LIMIT, msg);
        return;
    }
    c->p = pl;
    c->n_prompt = h.n_prompt;
    c->max_tokens = h.max_tokens;
    c->chunk = h.chunk < s->cfg.max_chunk ? h.chunk : s->cfg.max_chunk;
    c->dt = (h.flags & SPLIT_HELLO_F16) ? SPLIT_DT_F16 : SPLIT_DT_F32;
    c->ids_mode = pl == 0;
    size_t frame = c->ids_mode ? split_ids_bytes(h.n_prompt)
                               : split_hidden_bytes(c->chunk, mc->dim, SPLIT_DT_F32);
    if (!c->ids_mode) c->rows = malloc(sizeof(float) * (size_t)c->chunk * mc->dim);
    int32_t *zeros = c->ids_mode ? NULL : calloc((size_t)h.n_prompt, sizeof *zeros);
    if ((!c->ids_mode && (!c->rows || !zeros)) || grow_rbuf(c, frame) != 0) {
        free(zeros);
        refuse(c, SPLIT_E_SERVER, "out of memory");
        return;
    }
    engine_request r = {0};
    r.id = c->id = ID_BASE + s->next_id++;
    r.prompt = zeros; /* placeholders: the prompt never leaves the client */
    r.n_prompt = h.n_prompt;
    r.max_tokens = h.max_tokens;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = h.temperature;
    r.sampling.top_k = h.top_k;
    r.sampling.top_p = h.top_p;
    r.sampling.min_p = h.min_p;
    r.sampling.repeat_penalty = 1.0f;
    r.sampling.seed = h.seed;
    r.deadline_ms = 1e3 * h.sla_s;
    r.on_event = on_event;
    r.ctx = c;
    r.split = !c->ids_mode;
    r.split_layer = pl;
    r.split_auto = h.split < 0; /* planned by the server: the batch model may move its next one */
    if (c->ids_mode) { /* submitted with the ids (on_ids) */
        c->req = r;
        c->req.prompt = NULL;
    } else {
        int rc = submit_live(c, &r);
        free(zeros);
        if (rc != 0) return;
    }
    int32_t acc[6] = {pl, mc->n_layers, mc->dim, s->cfg.max_seq_len, c->chunk, 0};
    queue_ints(c, SPLIT_T_ACCEPT, acc, 6);
    c->state = C_RUN;
    c->expect = true;
}

/* Split 0: the prompt's ids; the request runs as an ordinary one from here on. */
static void on_ids(sconn *c, const uint8_t *p, uint32_t len) {
    split_srv *s = c->srv;
    char msg[256];
    if (!c->expect || c->fed > 0) {
        refuse(c, SPLIT_E_STATE, "IDS after the prompt was sent");
        return;
    }
    int32_t *ids = malloc(sizeof *ids * (size_t)c->n_prompt);
    if (!ids) {
        refuse(c, SPLIT_E_SERVER, "out of memory");
        return;
    }
    int pos0, n;
    int code = split_ids_decode(p, len, s->m->cfg.vocab_size, c->n_prompt, &pos0, &n, ids, msg,
                                sizeof msg);
    if (code == 0 && (pos0 != 0 || n != c->n_prompt)) {
        snprintf(msg, sizeof msg, "IDS for positions [%d, %d); the prompt is [0, %d) in one frame",
                 pos0, pos0 + n, c->n_prompt);
        code = SPLIT_E_STATE;
    }
    if (code != 0) {
        free(ids);
        refuse(c, (split_errcode)code, msg);
        return;
    }
    engine_request r = c->req;
    r.prompt = ids;
    int rc = submit_live(c, &r);
    free(ids);
    if (rc != 0) return;
    c->fed = n;
    c->expect = false; /* tokens stream down; nothing more comes up */
}

static void on_hidden(sconn *c, const uint8_t *p, uint32_t len) {
    split_srv *s = c->srv;
    char msg[256];
    if (!c->expect) {
        refuse(c, SPLIT_E_STATE, "HIDDEN before the server answered the last one");
        return;
    }
    int pos0, n;
    int max_rows = c->fed < c->n_prompt ? c->chunk : 1;
    int code = split_hidden_decode(p, len, s->m->cfg.dim, c->dt, max_rows, &pos0, &n, c->rows,
                                   msg, sizeof msg);
    if (code != 0) {
        refuse(c, (split_errcode)code, msg);
        return;
    }
    int known = c->n_prompt + c->n_gen; /* positions whose token exists */
    if (pos0 != c->fed || c->fed + n > known) {
        snprintf(msg, sizeof msg, "HIDDEN for positions [%d, %d); expected %d..%d", pos0, pos0 + n,
                 c->fed, known);
        refuse(c, SPLIT_E_STATE, msg);
        return;
    }
    weft_err err = {{0}};
    if (engine_split_feed(s->eng, c->id, c->rows, n, &err) != 0) {
        refuse(c, SPLIT_E_SERVER, err.msg);
        return;
    }
    c->fed += n;
    c->expect = false;
}

static void on_frame(sconn *c, const split_hdr *h, const uint8_t *p) {
    c->last_s = now_s();
    if (c->state == C_HELLO && h->type == SPLIT_T_HELLO) {
        on_hello(c, p, h->length);
        return;
    }
    if (c->state == C_RUN && h->type == SPLIT_T_HIDDEN && !c->ids_mode) {
        on_hidden(c, p, h->length);
        return;
    }
    if (c->state == C_RUN && h->type == SPLIT_T_IDS && c->ids_mode) {
        on_ids(c, p, h->length);
        return;
    }
    if (c->state == C_RUN && (h->type == SPLIT_T_HIDDEN || h->type == SPLIT_T_IDS)) {
        refuse(c, SPLIT_E_STATE, c->ids_mode ? "HIDDEN at split 0: send the prompt's ids (IDS)"
                                             : "IDS at a split point > 0: send HIDDEN");
        return;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "frame type %u is not allowed %s", h->type,
             c->state == C_HELLO ? "before HELLO" : "now");
    refuse(c, SPLIT_E_STATE, msg);
}

static uint32_t max_payload(const sconn *c) {
    if (c->state == C_HELLO) return SPLIT_HELLO_FIXED + SPLIT_MAX_KEY;
    if (c->ids_mode) return (uint32_t)(split_ids_bytes(c->n_prompt) - SPLIT_HDR_BYTES);
    return (uint32_t)(split_hidden_bytes(c->chunk, c->srv->m->cfg.dim, SPLIT_DT_F32) -
                      SPLIT_HDR_BYTES);
}

static void do_read(sconn *c) {
    while (c->state != C_CLOSING && c->fd >= 0) {
        size_t need = SPLIT_HDR_BYTES;
        split_hdr h = {0};
        if (c->rlen >= SPLIT_HDR_BYTES) {
            char msg[160];
            if (c->state == C_RUN && c->ids_mode && (c->rbuf[6] | c->rbuf[7] << 8) == SPLIT_T_HIDDEN &&
                c->rbuf[4] == SPLIT_VERSION && c->rbuf[5] == 0) { /* say why, not "too long" */
                refuse(c, SPLIT_E_STATE, "HIDDEN at split 0: send the prompt's ids (IDS)");
                return;
            }
            int code = split_hdr_parse(c->rbuf, max_payload(c), &h, msg, sizeof msg);
            if (code != 0) {
                refuse(c, (split_errcode)code, msg);
                return;
            }
            need = SPLIT_HDR_BYTES + h.length;
            if (c->rlen == need) {
                c->rlen = 0;
                on_frame(c, &h, c->rbuf + SPLIT_HDR_BYTES);
                continue;
            }
        }
        if (grow_rbuf(c, need) != 0) {
            refuse(c, SPLIT_E_SERVER, "out of memory");
            return;
        }
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, need - c->rlen, 0);
        if (r > 0) {
            c->rlen += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        close_fd(c); /* the client left: its request is cancelled */
    }
}

static void do_write(sconn *c) {
    while (c->fd >= 0 && c->woff < c->wlen) {
        ssize_t w = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
        if (w > 0) {
            c->woff += (size_t)w;
            c->last_s = now_s();
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
        close_fd(c);
        return;
    }
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->state == C_CLOSING && c->wlen == 0 && c->fd >= 0) close_fd(c);
}

/* Turns the engine's events for c into frames. */
static void relay_events(sconn *c) {
    split_srv *s = c->srv;
    engine_event ev[EVQ];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int n = c->n_ev < EVQ ? c->n_ev : EVQ;
        bool over = c->ev_overflow;
        c->ev_overflow = false;
        if (n > 0) {
            memcpy(ev, c->evq, sizeof ev[0] * (size_t)n);
            memmove(c->evq, c->evq + n, sizeof ev[0] * (size_t)(c->n_ev - n));
            c->n_ev -= n;
        }
        pthread_mutex_unlock(&s->mu);
        if (n == 0 && !over) return;
        if (c->fd < 0 || c->state == C_CLOSING) continue; /* drain */
        if (over) {
            refuse(c, SPLIT_E_SERVER, "internal event overflow");
            continue;
        }
        for (int i = 0; i < n && c->state != C_CLOSING; i++) {
            if (ev[i].type == ENGINE_EV_CONSUMED) {
                int32_t v = c->fed;
                queue_ints(c, SPLIT_T_CONSUMED, &v, 1);
                c->expect = true;
            } else if (ev[i].type == ENGINE_EV_TOKEN) {
                int32_t v[2] = {ev[i].token, ev[i].index};
                queue_ints(c, SPLIT_T_TOKEN, v, 2);
                c->n_gen++;
                c->expect = !c->ids_mode && c->n_gen < c->max_tokens &&
                            c->n_prompt + c->n_gen < s->cfg.max_seq_len;
            } else if (ev[i].type == ENGINE_EV_FINISHED) {
                int32_t v[2] = {(int32_t)ev[i].finish, ev[i].n_generated};
                queue_ints(c, SPLIT_T_DONE, v, 2);
                c->state = C_CLOSING;
                c->last_s = now_s();
                c->expect = false;
            }
        }
        if (c->fd >= 0 && c->wlen > c->woff) do_write(c);
    }
}

static void free_conn(sconn *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->rbuf);
    free(c->rows);
    free(c->evq);
    free(c);
}

static void accept_new(split_srv *s) {
    for (;;) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sconn *c = calloc(1, sizeof *c);
        sconn **nv = c ? realloc(s->conns, sizeof *nv * (size_t)(s->n_conns + 1)) : NULL;
        if (!c || !nv || s->n_conns >= s->cfg.max_conns) {
            uint8_t b[128];
            size_t k = split_error_encode(b, sizeof b, SPLIT_E_BUSY, "too many split connections");
            ssize_t w = send(fd, b, k, MSG_NOSIGNAL); /* best effort */
            (void)w;
            close(fd);
            free(c);
            if (nv) s->conns = nv;
            continue;
        }
        s->conns = nv;
        c->srv = s;
        c->fd = fd;
        c->state = C_HELLO;
        c->last_s = now_s();
        s->conns[s->n_conns++] = c;
    }
}

/* Frees connections whose socket is closed and whose request the engine finished. */
static void reap(split_srv *s) {
    for (int i = 0; i < s->n_conns;) {
        sconn *c = s->conns[i];
        pthread_mutex_lock(&s->mu);
        bool live = c->engine_live;
        pthread_mutex_unlock(&s->mu);
        if (c->fd < 0 && !live) {
            free_conn(c);
            s->conns[i] = s->conns[--s->n_conns];
        } else {
            i++;
        }
    }
}

static void *split_main(void *arg) {
    split_srv *s = arg;
    struct pollfd *pf = NULL;
    int pf_cap = 0;
    while (!atomic_load(&s->stop)) {
        int need = s->n_conns + 2;
        if (need > pf_cap) {
            struct pollfd *n = realloc(pf, sizeof *n * (size_t)need);
            if (!n) { /* try again after a pause */
                struct timespec ts = {0, 10000000};
                nanosleep(&ts, NULL);
                continue;
            }
            pf = n;
            pf_cap = need;
        }
        pf[0] = (struct pollfd){.fd = s->lfd, .events = POLLIN};
        pf[1] = (struct pollfd){.fd = s->efd, .events = POLLIN};
        for (int i = 0; i < s->n_conns; i++) {
            sconn *c = s->conns[i];
            short ev = (short)((c->state != C_CLOSING ? POLLIN : 0) | (c->wlen > c->woff ? POLLOUT : 0));
            pf[i + 2] = (struct pollfd){.fd = c->fd >= 0 ? c->fd : -1, .events = ev};
        }
        int n_polled = s->n_conns;
        if (poll(pf, (nfds_t)(n_polled + 2), 200) < 0 && errno != EINTR) break;
        if (pf[1].revents & POLLIN) {
            uint64_t v;
            ssize_t r = read(s->efd, &v, sizeof v);
            (void)r;
        }
        double t = now_s();
        for (int i = 0; i < n_polled; i++) {
            sconn *c = s->conns[i];
            relay_events(c);
            if (c->fd >= 0 && (pf[i + 2].revents & (POLLIN | POLLHUP | POLLERR))) do_read(c);
            if (c->fd >= 0) do_write(c);
            if (c->fd < 0) continue;
            double idle = t - c->last_s;
            if (c->state == C_CLOSING && idle > 2.0) close_fd(c);
            else if ((c->state == C_HELLO || c->expect) && idle > s->cfg.idle_timeout_s)
                refuse(c, SPLIT_E_TIMEOUT, "client idle too long");
            if (c->fd >= 0) do_write(c);
        }
        if (pf[0].revents & POLLIN) accept_new(s);
        reap(s);
    }
    free(pf);
    /* stopping: close every socket, cancel, wait (bounded) for the engine to let go */
    for (int i = 0; i < s->n_conns; i++)
        close_fd(s->conns[i]);
    for (int tries = 0; tries < 500 && s->n_conns > 0; tries++) {
        reap(s);
        if (s->n_conns == 0) break;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    if (s->n_conns > 0)
        fprintf(stderr, "weft serve: %d split request(s) did not end; their memory is kept\n",
                s->n_conns);
    return NULL;
}

static int listen_on(const char *host, int port, int *bound, weft_err *err) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) return weft_errf(err, "split port: cannot resolve %s: %s", host, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
            bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return weft_errf(err, "split port: cannot listen on %s:%d: %s", host, port, strerror(errno));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        close(fd);
        return weft_errf(err, "split port: getsockname: %s", strerror(errno));
    }
    *bound = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

split_srv *split_srv_start(engine *e, const weft_model *m, const split_srv_config *cfg,
                           weft_err *err) {
    split_srv *s = calloc(1, sizeof *s);
    if (!s) {
        weft_errf(err, "out of memory");
        return NULL;
    }
    s->eng = e;
    s->m = m;
    s->cfg = *cfg;
    s->lfd = s->efd = -1;
    if (s->cfg.max_conns <= 0) s->cfg.max_conns = 64;
    if (s->cfg.max_chunk <= 0 || s->cfg.max_chunk > SPLIT_MAX_ROWS) s->cfg.max_chunk = 64;
    if (s->cfg.idle_timeout_s <= 0) s->cfg.idle_timeout_s = 30;
    if (cfg->api_key) snprintf(s->api_key, sizeof s->api_key, "%s", cfg->api_key);
    atomic_init(&s->stop, false);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        weft_errf(err, "split port: mutex init failed");
        return NULL;
    }
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) {
        weft_errf(err, "split port: eventfd: %s", strerror(errno));
        goto fail;
    }
    s->lfd = listen_on(cfg->host ? cfg->host : "127.0.0.1", cfg->port, &s->port, err);
    if (s->lfd < 0) goto fail;
    int rc = pthread_create(&s->th, NULL, split_main, s);
    if (rc != 0) {
        weft_errf(err, "split port: cannot start its thread: %s", strerror(rc));
        goto fail;
    }
    s->th_started = true;
    return s;
fail:
    split_srv_stop(s);
    return NULL;
}

int split_srv_port(const split_srv *s) {
    return s->port;
}

void split_srv_stop(split_srv *s) {
    if (!s) return;
    if (s->th_started) {
        atomic_store(&s->stop, true);
        wake(s);
        pthread_join(s->th, NULL);
    }
    bool stuck = s->n_conns > 0;
    if (!stuck) free(s->conns);
    if (s->lfd >= 0) close(s->lfd);
    if (s->efd >= 0 && !stuck) close(s->efd);
    if (!stuck) {
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
}
