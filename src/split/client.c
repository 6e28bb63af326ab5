/* client.c — split_generate (split_client.h): one request over one TCP connection. The client
 * sends HELLO, learns its split layer from ACCEPT, then for each prefill chunk runs its layers
 * and sends HIDDEN, waiting for CONSUMED (or, after the last chunk, the first TOKEN); for each
 * TOKEN it runs the token through its layers and sends its state, until the server's DONE. At
 * split 0 (protocol v2) it sends the prompt's ids in one IDS frame and then only receives: the
 * server streams every TOKEN and DONE without waiting for it.
 * Blocking sockets with a receive timeout: a client has one request and nothing else to do. */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "split/proto.h"
#include "weft/split_client.h"

void split_client_opts_init(split_client_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->split = -1;
    o->max_tokens = 256;
    sampling_defaults(&o->sampling);
    o->sampling.temperature = 0;
    o->chunk = 64;
    o->timeout_s = 60;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct conn {
    int fd;
    uint64_t up, down;
    uint8_t *buf; /* one incoming frame */
    size_t cap;
} conn;

static int send_all(conn *c, const uint8_t *p, size_t n, weft_err *err) {
    c->up += n;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return weft_errf(err, "split: send to the server failed: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int recv_all(conn *c, uint8_t *p, size_t n, weft_err *err) {
    c->down += n;
    while (n > 0) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return weft_errf(err, "split: the server closed the connection");
        if (r < 0)
            return weft_errf(err, "split: receive from the server failed: %s",
                             errno == EAGAIN ? "timed out" : strerror(errno));
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one frame; an ERROR frame becomes err. Returns the type, or -1. */
static int recv_frame(conn *c, uint32_t *len, weft_err *err) {
    uint8_t h[SPLIT_HDR_BYTES];
    if (recv_all(c, h, sizeof h, err) != 0) return -1;
    split_hdr hd;
    char msg[256];
    if (split_hdr_parse(h, 4 + SPLIT_MAX_MSG, &hd, msg, sizeof msg) != 0)
        return weft_errf(err, "split: bad frame from the server: %s", msg);
    if (hd.length > c->cap) return weft_errf(err, "split: frame too large");
    if (recv_all(c, c->buf, hd.length, err) != 0) return -1;
    *len = hd.length;
    if (hd.type == SPLIT_T_ERROR) {
        uint32_t code = 0;
        char m[SPLIT_MAX_MSG + 1];
        split_error_decode(c->buf, hd.length, &code, m, sizeof m);
        return weft_errf(err, "split: server error %u: %s", code, m);
    }
    return hd.type;
}

static int dial(const char *host, int port, double timeout_s, weft_err *err) {
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0) return weft_errf(err, "split: cannot resolve %s: %s", host, gai_strerror(rc));
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) return weft_errf(err, "split: cannot connect to %s:%d: %s", host, port, strerror(errno));
    int one = 1;
    struct timeval tv = {(time_t)timeout_s, (long)((timeout_s - floor(timeout_s)) * 1e6)};
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
        close(fd);
        return weft_errf(err, "split: setsockopt: %s", strerror(errno));
    }
    return fd;
}

int split_generate(const weft_model *m, const split_client_opts *o, const int32_t *prompt,
                   int n_prompt, split_token_fn on_token, void *ctx, split_result *res,
                   weft_err *err) {
    const int D = m->cfg.dim;
    split_result r = {0};
    if (n_prompt < 1) return weft_errf(err, "split: empty prompt");
    if (o->sampling.repeat_penalty != 1.0f)
        return weft_errf(err, "split: repeat penalty is not available (the server never sees the "
                              "prompt tokens)");
    int chunk = o->chunk > 0 ? o->chunk : 64;
    if (chunk > SPLIT_MAX_ROWS) chunk = SPLIT_MAX_ROWS;
    split_dtype dt = o->f16 ? SPLIT_DT_F16 : SPLIT_DT_F32;
    double t0 = now_s();
    conn c = {.fd = -1};
    split_local *loc = NULL;
    float *hid = NULL;
    uint8_t *out = NULL;
    int32_t *toks = NULL;
    int rc = -1;
    c.cap = 64 + SPLIT_MAX_MSG;
    c.buf = malloc(c.cap);
    size_t out_cap = split_hidden_bytes(chunk, D, SPLIT_DT_F32) + SPLIT_HDR_BYTES +
                     SPLIT_HELLO_FIXED + SPLIT_MAX_KEY;
    out = malloc(out_cap);
    hid = malloc(sizeof(float) * (size_t)chunk * D);
    if (!c.buf || !out || !hid) {
        weft_errf(err, "split: out of memory");
        goto done;
    }
    c.fd = dial(o->host, o->port, o->timeout_s > 0 ? o->timeout_s : 60, err);
    if (c.fd < 0) goto done;

    split_hello h = {0};
    h.flags = o->f16 ? SPLIT_HELLO_F16 : 0;
    h.split = o->split;
    h.n_prompt = n_prompt;
    h.max_tokens = o->max_tokens;
    h.chunk = chunk;
    h.temperature = o->sampling.temperature;
    h.top_k = o->sampling.top_k;
    h.top_p = o->sampling.top_p;
    h.min_p = o->sampling.min_p;
    h.seed = o->sampling.seed;
    h.sla_s = (float)o->sla_s;
    h.layer_prefill_s = (float)o->layer_prefill_s;
    h.layer_decode_s = (float)o->layer_decode_s;
    h.head_prefill_s = (float)o->head_prefill_s;
    h.head_decode_s = (float)o->head_decode_s;
    h.client_max_layers = o->client_max_layers;
    h.link_bw_Bps = (float)o->link_bw_Bps;
    h.link_rtt_s = (float)o->link_rtt_s;
    if (o->api_key) {
        size_t kl = strlen(o->api_key);
        if (kl > SPLIT_MAX_KEY) {
            weft_errf(err, "split: API key longer than %d bytes", SPLIT_MAX_KEY);
            goto done;
        }
        memcpy(h.key, o->api_key, kl);
        h.key_len = (uint32_t)kl;
    }
    size_t n = split_hello_encode(&h, out, out_cap);
    if (send_all(&c, out, n, err) != 0) goto done;
    uint32_t len;
    int ty = recv_frame(&c, &len, err);
    if (ty < 0) goto done;
    int32_t acc[6];
    char msg[256];
    if (ty != SPLIT_T_ACCEPT || split_ints_decode(c.buf, len, acc, 6, msg, sizeof msg) != 0) {
        weft_errf(err, "split: expected ACCEPT, got frame type %d", ty);
        goto done;
    }
    int p = acc[0], L = acc[1], dim = acc[2], max_seq = acc[3], max_chunk = acc[4];
    if (L != m->cfg.n_layers || dim != D || p < 0 || p > L || max_seq < 2 || max_chunk < 1) {
        weft_errf(err, "split: the server's model (%d layers, dim %d, split %d) does not match "
                       "this one (%d layers, dim %d)", L, dim, p, m->cfg.n_layers, D);
        goto done;
    }
    if (chunk > max_chunk) chunk = max_chunk;
    r.split_layer = p;
    if (n_prompt > max_seq - 1) {
        weft_errf(err, "split: prompt of %d tokens does not fit the server's context %d", n_prompt,
                  max_seq);
        goto done;
    }
    if (p == 0) { /* ids up once, then tokens stream down */
        size_t ib = split_ids_bytes(n_prompt);
        uint8_t *ob = malloc(ib);
        if (!ob) {
            weft_errf(err, "split: out of memory");
            goto done;
        }
        n = split_ids_encode(ob, ib, 0, n_prompt, prompt);
        int sr = send_all(&c, ob, n, err);
        free(ob);
        if (sr != 0) goto done;
        for (;;) {
            ty = recv_frame(&c, &len, err);
            if (ty < 0) goto done;
            int32_t v[2];
            if (ty == SPLIT_T_DONE && split_ints_decode(c.buf, len, v, 2, msg, sizeof msg) == 0) {
                r.finish = v[0];
                break;
            }
            if (ty != SPLIT_T_TOKEN || split_ints_decode(c.buf, len, v, 2, msg, sizeof msg) != 0 ||
                v[1] != r.n_generated || v[0] < 0 || v[0] >= m->cfg.vocab_size ||
                r.n_generated >= o->max_tokens) {
                weft_errf(err, "split: unexpected frame type %d from the server", ty);
                goto done;
            }
            if (r.n_generated == 0) r.ttft_s = now_s() - t0;
            r.n_generated++;
            if (on_token && on_token(ctx, v[0]) != 0) {
                rc = 0; /* stopped by the caller: closing the connection cancels it */
                goto done;
            }
        }
        goto finished;
    }
    loc = split_local_new(m, p, max_seq, chunk, o->n_threads, err);
    toks = malloc(sizeof *toks * (size_t)max_seq);
    if (!loc || !toks) {
        if (!toks) weft_errf(err, "split: out of memory");
        goto done;
    }
    memcpy(toks, prompt, sizeof *toks * (size_t)n_prompt);
    int n_tok = n_prompt, sent = 0;
    for (;;) {
        /* send the states of every known position not sent yet (a chunk at most) */
        int k = n_tok - sent < chunk ? n_tok - sent : chunk;
        double tc = now_s();
        if (split_local_run(loc, toks + sent, k, hid, err) != 0) goto done;
        r.client_compute_s += now_s() - tc;
        n = split_hidden_encode(out, out_cap, sent, k, D, dt, hid);
        if (send_all(&c, out, n, err) != 0) goto done;
        sent += k;
        ty = recv_frame(&c, &len, err);
        if (ty < 0) goto done;
        int32_t v[2];
        if (ty == SPLIT_T_CONSUMED && sent < n_prompt) continue;
        if (ty == SPLIT_T_DONE && split_ints_decode(c.buf, len, v, 2, msg, sizeof msg) == 0) {
            r.finish = v[0];
            break;
        }
        if (ty != SPLIT_T_TOKEN || split_ints_decode(c.buf, len, v, 2, msg, sizeof msg) != 0 ||
            v[1] != r.n_generated || v[0] < 0 || v[0] >= m->cfg.vocab_size) {
            weft_errf(err, "split: unexpected frame type %d from the server", ty);
            goto done;
        }
        if (r.n_generated == 0) r.ttft_s = now_s() - t0;
        r.n_generated++;
        toks[n_tok++] = v[0];
        if (on_token && on_token(ctx, v[0]) != 0) {
            rc = 0; /* stopped by the caller: closing the connection cancels it */
            goto done;
        }
        /* the server ends the request itself after max_tokens or at the context end */
        if (r.n_generated >= o->max_tokens || n_tok >= max_seq) {
            ty = recv_frame(&c, &len, err);
            if (ty != SPLIT_T_DONE || split_ints_decode(c.buf, len, v, 2, msg, sizeof msg) != 0) {
                if (ty >= 0) weft_errf(err, "split: expected DONE, got frame type %d", ty);
                goto done;
            }
            r.finish = v[0];
            break;
        }
    }
finished:
    if (r.finish == 3 || r.finish == 4) {
        weft_errf(err, "split: the server ended the request (%s)",
                  r.finish == 3 ? "cancelled" : "error: evicted or invalid");
        goto done;
    }
    rc = 0;
done:
    r.total_s = now_s() - t0;
    r.bytes_up = c.up;
    r.bytes_down = c.down;
    if (res) *res = r;
    if (c.fd >= 0) close(c.fd);
    split_local_free(loc);
    free(c.buf);
    free(out);
    free(hid);
    free(toks);
    return rc;
}
