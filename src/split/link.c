/* link.c — measuring the client-server link for the split cost model: round-trip time (median
 * of small ping-pongs) and bandwidth (bulk transfers, doubled until one takes long enough to
 * time), against a link sink that answers the same tiny protocol: an 8-byte little-endian
 * length n, then n bytes, answered by one byte. The sink serves one connection at a time with
 * socket timeouts, so a stuck peer cannot hold it for long. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "weft/split_plan.h"

#define LINK_MAX_BULK (64u << 20)   /* largest transfer the measure sends and the sink accepts */
#define LINK_PINGS 21
#define LINK_IO_TIMEOUT_S 30

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void set_timeouts(int fd, int seconds) {
    struct timeval tv = {seconds, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}
static int read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void put_le64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* One exchange: header + n bytes out, one byte back. Returns seconds or -1. */
static double exchange(int fd, const char *payload, uint64_t n) {
    unsigned char h[8], ack;
    put_le64(h, n);
    double t0 = now_s();
    if (write_all(fd, h, 8) || (n && write_all(fd, payload, (size_t)n)) || read_all(fd, &ack, 1))
        return -1;
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(const char *host, int port, weft_err *err) {
    if (port < 1 || port > 65535) return weft_errf(err, "port %d out of range 1..65535", port);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g) return weft_errf(err, "%s: %s", host, gai_strerror(g));
    int fd = -1;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        set_timeouts(fd, LINK_IO_TIMEOUT_S);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return weft_errf(err, "cannot connect to %s:%d: %s", host, port, strerror(errno));
    return fd;
}

int split_link_measure(const char *host, int port, double *bw_Bps, double *rtt_s, weft_err *err) {
    int fd = connect_to(host, port, err);
    if (fd < 0) return -1;
    int rc = -1;
    char *buf = calloc(LINK_MAX_BULK, 1);
    if (!buf) {
        weft_errf(err, "out of memory");
        goto out;
    }
    double t[LINK_PINGS];
    for (int i = 0; i < LINK_PINGS; i++) {
        t[i] = exchange(fd, buf, 0);
        if (t[i] < 0) {
            weft_errf(err, "%s:%d: the link sink did not answer a ping (is it a link sink?)", host, port);
            goto out;
        }
    }
    qsort(t, LINK_PINGS, sizeof *t, cmp_double);
    double rtt = t[LINK_PINGS / 2];
    /* Double the transfer until it takes >= 0.3 s (or hits the cap), then time it. */
    uint64_t n = 64u << 10;
    double dt = 0;
    for (;;) {
        dt = exchange(fd, buf, n);
        if (dt < 0) {
            weft_errf(err, "%s:%d: bulk transfer of %llu bytes failed", host, port,
                      (unsigned long long)n);
            goto out;
        }
        if (dt >= 0.3 || n >= LINK_MAX_BULK) break;
        n *= 2;
    }
    double xfer = dt - rtt;
    if (xfer <= 0) xfer = dt;
    *bw_Bps = (double)n / xfer;
    *rtt_s = rtt;
    rc = 0;
out:
    free(buf);
    close(fd);
    return rc;
}

static void serve_one(int fd, char *buf, size_t cap) {
    set_timeouts(fd, 10);
    for (;;) {
        unsigned char h[8];
        if (read_all(fd, h, 8)) return;
        uint64_t n = get_le64(h);
        if (n > LINK_MAX_BULK) return; /* not our protocol: drop the peer */
        while (n > 0) {
            size_t k = n < cap ? (size_t)n : cap;
            if (read_all(fd, buf, k)) return;
            n -= k;
        }
        unsigned char ack = 1;
        if (write_all(fd, &ack, 1)) return;
    }
}

int split_link_sink_run(const char *host, int port, volatile int *stop, weft_err *err) {
    if (port < 1 || port > 65535) return weft_errf(err, "port %d out of range 1..65535", port);
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g) return weft_errf(err, "%s: %s", host ? host : "*", gai_strerror(g));
    int lfd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(lfd, res->ai_addr, res->ai_addrlen) || listen(lfd, 8)) {
        int e = errno;
        if (lfd >= 0) close(lfd);
        freeaddrinfo(res);
        return weft_errf(err, "cannot listen on %s:%d: %s", host ? host : "*", port, strerror(e));
    }
    freeaddrinfo(res);
    const size_t cap = 1u << 20;
    char *buf = malloc(cap);
    if (!buf) {
        close(lfd);
        return weft_errf(err, "out of memory");
    }
    while (!stop || !*stop) {
        struct pollfd pf = {lfd, POLLIN, 0};
        int r = poll(&pf, 1, 200);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) continue;
        serve_one(fd, buf, cap);
        close(fd);
    }
    free(buf);
    close(lfd);
    return 0;
}
