/* server.c — the server's life: block the stop signals and read them from a signalfd the
 * server owns, bind the HTTP port (so /health answers 503 while the model loads), load the
 * model and start the engine, then serve until SIGTERM/SIGINT. Shutdown is graceful: /health
 * turns 503, new generation requests get 503, running requests get shutdown_timeout_s to finish,
 * then the rest are cancelled (streams receive an error event) and the process exits 0. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "server/split_server.h"
#include "server/srv_internal.h"
#include "weft/tp.h"

static void base_name(const char *path, char *out, size_t size) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b && !strcmp(dot, ".gguf")) n = (size_t)(dot - b);
    snprintf(out, size, "%.*s", (int)n, b);
}

/* Threads that libraries started before main() (OpenBLAS's) do not block the stop signals,
 * so the kernel may deliver SIGTERM to one of them. This handler, which holds no state,
 * forwards it to the main thread (whose thread id is the process id), where it is blocked and
 * therefore stays pending until the server reads it from its signalfd. */
static void forward_to_main(int sig) {
    int saved = errno;
    syscall(SYS_tgkill, (long)getpid(), (long)getpid(), (long)sig);
    errno = saved;
}

/* Waits until no generation request is live, or until deadline (CLOCK_MONOTONIC seconds).
 * Returns the number still live. */
static int wait_idle(srv *s, double timeout_s) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double end = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec + timeout_s;
    pthread_mutex_lock(&s->mu);
    while (s->n_live > 0) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double now = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        if (now >= end) break;
        double step = end - now < 0.2 ? end - now : 0.2; /* the condvar uses CLOCK_REALTIME */
        struct timespec rt;
        clock_gettime(CLOCK_REALTIME, &rt);
        long ns = rt.tv_nsec + (long)(step * 1e9);
        rt.tv_sec += ns / 1000000000L;
        rt.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&s->idle, &s->mu, &rt);
    }
    int left = s->n_live;
    pthread_mutex_unlock(&s->mu);
    return left;
}

static int start_engine(srv *s, weft_err *err) {
    const srv_config *c = s->cfg;
    if (!s->model) s->model = model_load(c->model, NULL, err);
    if (!s->model) return -1;
    s->ctx = c->ctx > 0 ? c->ctx : s->model->cfg.ctx_len;
    if (chat_template_init(&s->tmpl, s->model, c->chat_template) != 0)
        return weft_errf(err, "unknown chat template '%s'", c->chat_template);
    return workers_start(s, err); /* one engine per worker (workers.c) */
}

/* The split-inference port (--split-port): its own listener thread over the same engine. */
static int split_start(srv *s, weft_err *err) {
    const srv_config *c = s->cfg;
    if (c->prefix_sharing)
        return weft_errf(err, "--split-port needs --prefix-sharing off (a split request's cache "
                              "holds only its server-side layers)");
    split_srv_config sc = {.host = c->host, .port = c->split_port, .api_key = c->api_key,
                           .max_seq_len = s->ctx, .idle_timeout_s = c->connection_timeout_s};
    if (c->split_profile[0]) {
        s->split_plan = split_auto_new(s->model, s->eng, c->split_profile, err);
        if (!s->split_plan) return -1;
        sc.choose = split_auto_choose;
        sc.choose_ctx = s->split_plan;
    }
    s->split = split_srv_start(s->eng, s->model, &sc, err);
    if (!s->split) return -1;
    fprintf(stderr, "weft serve: split clients on %s:%d (auto split %s)\n", c->host,
            split_srv_port(s->split), s->split_plan ? "planned from the profile" : "off");
    return 0;
}

int srv_run(const srv_config *c) { return srv_run_loaded(c, NULL, NULL); }

int srv_run_loaded(const srv_config *c, weft_model *preloaded, struct tp_session *tp) {
    srv s;
    memset(&s, 0, sizeof s);
    s.cfg = c;
    s.model = preloaded;
    s.tp = tp;
    s.shutdown_efd = -1;
    atomic_init(&s.state, SRV_LOADING);
    atomic_init(&s.next_id, 0);
    s.created = (long)time(NULL);
    if (c->model_name[0]) snprintf(s.model_id, sizeof s.model_id, "%s", c->model_name);
    else base_name(c->model, s.model_id, sizeof s.model_id);

    int rc = 1, sfd = -1;
    bool mu_ok = false, idle_ok = false, met_ok = false;
    weft_err err = {{0}};
    /* Stop signals arrive through the signalfd; blocked before any thread starts so every
     * thread inherits the mask. SIGPIPE is blocked too: a write to a closed socket then
     * fails with EPIPE instead of killing the process. */
    sigset_t stop_set, block_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    block_set = stop_set;
    sigaddset(&block_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &block_set, NULL) != 0) {
        fprintf(stderr, "weft serve: cannot block signals\n");
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_to_main;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0) {
        fprintf(stderr, "weft serve: cannot install signal handlers: %s\n", strerror(errno));
        return 1;
    }
    sfd = signalfd(-1, &stop_set, SFD_CLOEXEC);
    s.shutdown_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sfd < 0 || s.shutdown_efd < 0) {
        fprintf(stderr, "weft serve: signalfd/eventfd: %s\n", strerror(errno));
        goto done;
    }
    if (pthread_mutex_init(&s.mu, NULL) != 0) goto done;
    mu_ok = true;
    if (pthread_cond_init(&s.idle, NULL) != 0) goto done;
    idle_ok = true;
    if (metrics_init(&s.met) != 0) goto done;
    met_ok = true;

    s.daemon = http_start(&s, &err);
    if (!s.daemon) {
        fprintf(stderr, "weft serve: %s\n", err.msg);
        goto done;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
    int port = di ? di->port : c->port;
    if (start_engine(&s, &err) != 0) {
        fprintf(stderr, "weft serve: %s\n", err.msg);
        goto done;
    }
    if (c->split_port >= 0 && split_start(&s, &err) != 0) {
        fprintf(stderr, "weft serve: %s\n", err.msg);
        goto done;
    }
    atomic_store(&s.state, SRV_READY);
    const char *h = c->host;
    bool v6 = strchr(h, ':') != NULL;
    fprintf(stderr,
            "weft serve: model %s (%s, ctx %d, chat template %s)\n",
            s.model_id, c->model, s.ctx, chat_kind_name(s.tmpl.kind));
    if (s.n_workers > 1 || strcmp(c->policy, "fcfs"))
        fprintf(stderr, "weft serve: policy %s, %d worker(s), predictor %s\n", c->policy,
                s.n_workers, c->predictor);
    fprintf(stderr, "weft serve: listening on http://%s%s%s:%d\n", v6 ? "[" : "", h, v6 ? "]" : "",
            port);
    fflush(stderr);

    /* serve until a stop signal */
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(sfd, &si, sizeof si);
        if (n == (ssize_t)sizeof si) break;
        if (n < 0 && errno == EINTR) continue;
        fprintf(stderr, "weft serve: reading the signalfd failed: %s\n", strerror(errno));
        break;
    }
    fprintf(stderr, "weft serve: shutting down (waiting up to %d s for running requests)\n",
            c->shutdown_timeout_s);
    if (s.tp)
        fprintf(stderr, "weft serve: (tensor parallel: under mpirun a stop signal also means the "
                        "launcher is ending the job, e.g. because another rank exited)\n");
    pthread_mutex_lock(&s.mu); /* gen_submit checks the state under this lock */
    atomic_store(&s.state, SRV_DRAINING);
    pthread_mutex_unlock(&s.mu);
    /* The socket stays open while draining: /health answers 503 (so a balancer sees the
     * state) and new generation requests are refused with 503 instead of a refused connect. */
    int left = wait_idle(&s, c->shutdown_timeout_s);
    if (left > 0) {
        fprintf(stderr, "weft serve: cancelling %d request(s) still running\n", left);
        uint64_t one = 1;
        if (write(s.shutdown_efd, &one, sizeof one) < 0)
            fprintf(stderr, "weft serve: eventfd write: %s\n", strerror(errno));
        left = wait_idle(&s, 10);
        if (left > 0) fprintf(stderr, "weft serve: %d request(s) did not end\n", left);
    }
    rc = 0;
done:
    if (s.daemon) MHD_stop_daemon(s.daemon); /* joins every connection thread */
    split_srv_stop(s.split); /* before the engine: it cancels its requests there */
    split_auto_free(s.split_plan);
    workers_stop(&s);
    tp_job_end(s.tp);
    model_free(s.model);
    if (met_ok) metrics_destroy(&s.met);
    if (idle_ok) pthread_cond_destroy(&s.idle);
    if (mu_ok) pthread_mutex_destroy(&s.mu);
    if (sfd >= 0) close(sfd);
    if (s.shutdown_efd >= 0) close(s.shutdown_efd);
    if (rc == 0) fprintf(stderr, "weft serve: stopped\n");
    return rc;
}
