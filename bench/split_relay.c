/* split_relay.c — a delaying TCP relay, the stand-in for `tc netem delay` in
 * bench/split_real.sh (this machine's kernel has no sch_netem). It listens on HOST:PORT, and for
 * every connection opens one to TARGET:TPORT and forwards bytes both ways, holding each chunk it
 * reads for DELAY_MS before writing it on (so a round trip gains 2 x DELAY_MS). Bandwidth is
 * shaped separately (tbf on the veth). Run inside a client's network namespace.
 * usage: split_relay HOST PORT TARGET TPORT ONE_WAY_DELAY_MS */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXP 64

typedef struct chunk {
    struct chunk *next;
    double due;
    size_t len, off;
    unsigned char data[];
} chunk;

typedef struct dir { /* bytes read from `from`, to be written to `to` */
    int from, to;
    chunk *head, *tail;
    int eof; /* `from` closed: shut `to` down once the queue is empty */
} dir;

typedef struct pair {
    dir d[2];
    int live;
} pair;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int tcp_addr(const char *host, int port, struct sockaddr_in *a) {
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void drop(pair *p) {
    for (int k = 0; k < 2; k++) {
        chunk *c = p->d[k].head;
        while (c) {
            chunk *n = c->next;
            free(c);
            c = n;
        }
        p->d[k].head = p->d[k].tail = NULL;
    }
    close(p->d[0].from);
    close(p->d[0].to);
    p->live = 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: split_relay HOST PORT TARGET TPORT ONE_WAY_DELAY_MS\n");
        return 2;
    }
    double delay = atof(argv[5]) / 1e3;
    struct sockaddr_in la, ta;
    if (tcp_addr(argv[1], atoi(argv[2]), &la) || tcp_addr(argv[3], atoi(argv[4]), &ta)) {
        fprintf(stderr, "split_relay: IPv4 addresses expected\n");
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(lfd, (struct sockaddr *)&la, sizeof la) || listen(lfd, 16)) {
        fprintf(stderr, "split_relay: cannot listen: %s\n", strerror(errno));
        return 1;
    }
    fprintf(stderr, "split_relay: %s:%s -> %s:%s, %.1f ms each way\n", argv[1], argv[2], argv[3],
            argv[4], delay * 1e3);
    static pair ps[MAXP];
    static unsigned char buf[1 << 16];
    for (;;) {
        struct pollfd pf[1 + 2 * MAXP];
        int n = 0, idx[2 * MAXP];
        pf[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
        double t = now_s(), next = t + 0.1;
        for (int i = 0; i < MAXP; i++) {
            if (!ps[i].live) continue;
            for (int k = 0; k < 2; k++) {
                dir *d = &ps[i].d[k];
                short ev = d->eof ? 0 : POLLIN;
                if (d->head && d->head->due <= t) ev |= 0; /* written below, not polled */
                if (d->head && d->head->due < next) next = d->head->due;
                idx[n - 1] = i * 2 + k;
                pf[n++] = (struct pollfd){.fd = d->from, .events = ev};
            }
        }
        int ms = (int)((next - t) * 1e3) + 1;
        if (ms < 0) ms = 0;
        if (poll(pf, (nfds_t)n, ms) < 0 && errno != EINTR) return 1;
        if (pf[0].revents & POLLIN) {
            int cfd = accept(lfd, NULL, NULL);
            int slot = -1;
            for (int i = 0; i < MAXP && slot < 0; i++)
                if (!ps[i].live) slot = i;
            int sfd = cfd >= 0 && slot >= 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
            if (sfd >= 0 && connect(sfd, (struct sockaddr *)&ta, sizeof ta) == 0) {
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ps[slot] = (pair){.live = 1};
                ps[slot].d[0] = (dir){.from = cfd, .to = sfd};
                ps[slot].d[1] = (dir){.from = sfd, .to = cfd};
            } else {
                if (sfd >= 0) close(sfd);
                if (cfd >= 0) close(cfd);
            }
        }
        for (int j = 1; j < n; j++) {
            int i = idx[j - 1] / 2, k = idx[j - 1] % 2;
            dir *d = &ps[i].d[k];
            if (!ps[i].live || !(pf[j].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t r = read(d->from, buf, sizeof buf);
            if (r <= 0) {
                d->eof = 1;
                continue;
            }
            chunk *c = malloc(sizeof *c + (size_t)r);
            if (!c) return 1;
            c->next = NULL;
            c->due = now_s() + delay;
            c->len = (size_t)r;
            c->off = 0;
            memcpy(c->data, buf, (size_t)r);
            if (d->tail) d->tail->next = c;
            else d->head = c;
            d->tail = c;
        }
        t = now_s();
        for (int i = 0; i < MAXP; i++) {
            if (!ps[i].live) continue;
            for (int k = 0; k < 2 && ps[i].live; k++) {
                dir *d = &ps[i].d[k];
                while (d->head && d->head->due <= t) {
                    chunk *c = d->head;
                    ssize_t w = send(d->to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
                    if (w < 0 && errno == EINTR) continue;
                    if (w <= 0) {
                        drop(&ps[i]);
                        break;
                    }
                    c->off += (size_t)w;
                    if (c->off < c->len) break;
                    d->head = c->next;
                    if (!d->head) d->tail = NULL;
                    free(c);
                }
                if (ps[i].live && d->eof && !d->head) shutdown(d->to, SHUT_WR);
            }
            if (ps[i].live && ps[i].d[0].eof && ps[i].d[1].eof && !ps[i].d[0].head &&
                !ps[i].d[1].head)
                drop(&ps[i]);
        }
    }
}
