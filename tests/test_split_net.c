/* test_split_net.c — split inference end to end over TCP, in one process: an engine with the
 * split server (src/server/split_server.c) and clients using the client library.
 *  - for EVERY split point 0..L (0: token ids up, tokens streamed down, protocol v2), split
 *    generation gives exactly the unsplit greedy tokens with
 *    F32 hidden states, and the same tokens with F16 (test model and stories260K);
 *  - several split clients at different split points and an ordinary request run at once in the
 *    same fused batch and all get their unsplit tokens;
 *  - hostile frames (bad magic, wrong version, oversized, wrong shape, NaN/Inf, truncated,
 *    wrong auth, out-of-order, idle; at split 0 the IDS frame's ids outside the vocabulary,
 *    wrong counts or lengths, IDS at another split, HIDDEN at split 0, version 1) each get an ERROR frame with the right code and the
 *    connection is closed, while a concurrent good request is unaffected; afterwards the engine
 *    holds no request (their caches were freed). */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "server/split_server.h"
#include "split/proto.h"
#include "support/testutil.h"
#include "weft/engine.h"
#include "weft/split_client.h"

#define NGEN 24
#define KEY "sekret-key"
static const int32_t prompt[] = {1, 17, 42, 9, 300, 5, 77, 128, 3, 60, 61, 62, 63};
#define NPROMPT ((int)(sizeof prompt / sizeof prompt[0]))

typedef struct fixture {
    weft_model *m;
    engine *eng;
    split_srv *srv;
    int port;
    int32_t ref[NGEN]; /* unsplit greedy tokens */
    int n_ref;
} fixture;

/* ---- an ordinary (unsplit) request through the same engine ---- */
typedef struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int32_t tok[NGEN];
    int n;
    bool done;
} collect;

static void on_ev(void *ctx, const engine_event *ev) {
    collect *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (ev->type == ENGINE_EV_TOKEN && c->n < NGEN) c->tok[c->n++] = ev->token;
    if (ev->type == ENGINE_EV_FINISHED) c->done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static uint64_t next_id = 1;

static void submit_plain(fixture *fx, collect *c) {
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->n = 0;
    c->done = false;
    engine_request r = {0};
    r.id = next_id++;
    r.prompt = prompt;
    r.n_prompt = NPROMPT;
    r.max_tokens = NGEN;
    r.ignore_eos = true;
    sampling_defaults(&r.sampling);
    r.sampling.temperature = 0;
    r.on_event = on_ev;
    r.ctx = c;
    weft_err err = {{0}};
    assert_int_equal(engine_submit(fx->eng, &r, &err), 0);
}

static void wait_plain(collect *c) {
    pthread_mutex_lock(&c->mu);
    while (!c->done) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

/* ---- split clients ---- */
typedef struct sjob {
    fixture *fx;
    int p;
    bool f16;
    const char *key;
    int32_t tok[NGEN];
    int n, rc;
    split_result res;
    char err[600];
} sjob;

static int on_tok(void *ctx, int token) {
    sjob *j = ctx;
    if (j->n < NGEN) j->tok[j->n++] = token;
    return 0;
}

static void *run_split(void *arg) {
    sjob *j = arg;
    split_client_opts o;
    split_client_opts_init(&o);
    o.port = j->fx->port;
    o.api_key = j->key;
    o.split = j->p;
    o.f16 = j->f16;
    o.max_tokens = NGEN;
    o.chunk = 5; /* several prefill chunks */
    o.n_threads = 1;
    o.timeout_s = 20;
    weft_err err = {{0}};
    j->n = 0;
    j->rc = split_generate(j->fx->m, &o, prompt, NPROMPT, on_tok, j, &j->res, &err);
    snprintf(j->err, sizeof j->err, "%s", err.msg);
    return NULL;
}

/* The tokens must match the reference over the tokens both have: a split request stops at an
 * end token (the ordinary reference ignores them), so the split run may be shorter only then. */
static void check_tokens(const fixture *fx, const sjob *j) {
    if (j->rc != 0) fail_msg("split at %d (%s): %s", j->p, j->f16 ? "f16" : "f32", j->err);
    assert_int_equal(j->res.split_layer, j->p);
    assert_true(j->n >= 1);
    for (int i = 0; i < j->n; i++)
        if (j->tok[i] != fx->ref[i])
            fail_msg("split at %d (%s): token %d is %d, unsplit %d", j->p, j->f16 ? "f16" : "f32",
                     i, j->tok[i], fx->ref[i]);
    if (j->n < NGEN) assert_int_equal(j->res.finish, ENGINE_FINISH_STOP);
}

static int setup_with(void **state, weft_model *m) {
    fixture *fx = calloc(1, sizeof *fx);
    if (!fx || !m) return -1;
    fx->m = m;
    engine_config ec;
    engine_config_defaults(&ec);
    ec.n_threads = 1;
    ec.kv.max_seq_len = 128;
    ec.kv.capacity_tokens = 128 * 16;
    weft_err err = {{0}};
    fx->eng = engine_new(m, &ec, &err);
    if (!fx->eng || engine_start(fx->eng, &err) != 0) return -1;
    split_srv_config sc = {.host = "127.0.0.1", .port = 0, .api_key = KEY, .max_conns = 16,
                           .max_chunk = 8, .idle_timeout_s = 2, .max_seq_len = 128};
    fx->srv = split_srv_start(fx->eng, m, &sc, &err);
    if (!fx->srv) {
        fprintf(stderr, "split server: %s\n", err.msg);
        return -1;
    }
    fx->port = split_srv_port(fx->srv);
    collect c;
    submit_plain(fx, &c);
    wait_plain(&c);
    memcpy(fx->ref, c.tok, sizeof c.tok);
    fx->n_ref = c.n;
    *state = fx;
    return fx->n_ref == NGEN ? 0 : -1;
}

static int setup_synth(void **state) {
    weft_model *m = tu_synth_model("split_net.gguf", "test-gqa", WEFT_F32, 9);
    if (!m) return -1;
    return setup_with(state, m);
}

static int setup_stories(void **state) {
    char buf[4096];
    const char *path = tu_shared("models/stories260K.gguf", buf, sizeof buf);
    if (!path) {
        *state = NULL;
        return 0;
    }
    weft_err err = {{0}};
    return setup_with(state, model_load(path, NULL, &err));
}

static int teardown(void **state) {
    fixture *fx = *state;
    if (!fx) return 0;
    split_srv_stop(fx->srv);
    engine_free(fx->eng);
    model_free(fx->m);
    free(fx);
    return 0;
}

static void every_split_point(fixture *fx) {
    for (int f16 = 0; f16 <= 1; f16++)
        for (int p = 0; p <= fx->m->cfg.n_layers; p++) {
            sjob j = {.fx = fx, .p = p, .f16 = f16, .key = KEY};
            run_split(&j);
            check_tokens(fx, &j);
        }
}

static void test_every_split_synth(void **state) {
    every_split_point(*state);
}

static void test_every_split_stories(void **state) {
    if (!*state) skip();
    every_split_point(*state);
}

/* Clients at every split point plus an ordinary request, all at once: one fused batch. */
static void test_concurrent_mixed(void **state) {
    fixture *fx = *state;
    const int L = fx->m->cfg.n_layers;
    sjob jobs[8];
    pthread_t th[8];
    int n = L + 1 < 8 ? L + 1 : 8;
    collect c;
    submit_plain(fx, &c);
    for (int i = 0; i < n; i++) {
        jobs[i] = (sjob){.fx = fx, .p = i, .f16 = i % 2, .key = KEY};
        assert_int_equal(pthread_create(&th[i], NULL, run_split, &jobs[i]), 0);
    }
    for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
    wait_plain(&c);
    for (int i = 0; i < n; i++) check_tokens(fx, &jobs[i]);
    assert_memory_equal(c.tok, fx->ref, sizeof c.tok);
}

/* ---- hostile clients ---- */
static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_bytes(int fd, const void *p, size_t n) {
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

static size_t hello(uint8_t *buf, size_t cap, const char *key, int split, bool f16) {
    split_hello h = {0};
    h.split = split;
    h.flags = f16 ? SPLIT_HELLO_F16 : 0;
    h.n_prompt = NPROMPT;
    h.max_tokens = 4;
    h.chunk = 4;
    h.top_p = 1;
    h.key_len = (uint32_t)strlen(key);
    memcpy(h.key, key, h.key_len);
    return split_hello_encode(&h, buf, cap);
}

/* Reads frames until ERROR (returns its code) or until the server closes (returns 0 when no
 * ERROR came) — and checks that the server then closes the connection. */
static int expect_error(int fd) {
    uint8_t hb[SPLIT_HDR_BYTES], pl[4096];
    for (;;) {
        ssize_t r = recv(fd, hb, sizeof hb, MSG_WAITALL);
        if (r != (ssize_t)sizeof hb) return 0;
        split_hdr h;
        char msg[128];
        assert_int_equal(split_hdr_parse(hb, sizeof pl, &h, msg, sizeof msg), 0);
        if (h.length) assert_int_equal(recv(fd, pl, h.length, MSG_WAITALL), (ssize_t)h.length);
        if (h.type != SPLIT_T_ERROR) continue;
        uint32_t code;
        char m[SPLIT_MAX_MSG + 1];
        assert_int_equal(split_error_decode(pl, h.length, &code, m, sizeof m), 0);
        printf("  refused with %u: %s\n", code, m);
        /* closed (a reset when our unread bytes were still in the server's buffer) */
        errno = 0;
        ssize_t z = recv(fd, hb, 1, 0);
        assert_true(z == 0 || (z < 0 && errno == ECONNRESET));
        return (int)code;
    }
}

/* After HELLO + ACCEPT at split point p: the caller then sends its frame. */
static int accepted_at(fixture *fx, int p, bool f16) {
    int fd = dial(fx->port);
    uint8_t b[1024];
    send_bytes(fd, b, hello(b, sizeof b, KEY, p, f16));
    uint8_t hb[SPLIT_HDR_BYTES + 24];
    assert_int_equal(recv(fd, hb, sizeof hb, MSG_WAITALL), (ssize_t)sizeof hb);
    assert_int_equal(hb[6], SPLIT_T_ACCEPT);
    return fd;
}
static int accepted(fixture *fx, bool f16) { return accepted_at(fx, 1, f16); }

static void test_hostile_frames(void **state) {
    fixture *fx = *state;
    const int D = fx->m->cfg.dim;
    /* a good request runs across all of it */
    sjob good = {.fx = fx, .p = 1, .key = KEY};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_split, &good), 0);
    uint8_t b[1 << 16];
    float *rows = calloc((size_t)16 * D, sizeof *rows);
    assert_non_null(rows);
    int fd;

    printf("bad magic\n");
    fd = dial(fx->port);
    size_t n = hello(b, sizeof b, KEY, 1, false);
    b[0] ^= 0xff;
    send_bytes(fd, b, n);
    assert_int_equal(expect_error(fd), SPLIT_E_FRAME);
    close(fd);

    printf("wrong version\n");
    fd = dial(fx->port);
    n = hello(b, sizeof b, KEY, 1, false);
    b[4] = 9;
    send_bytes(fd, b, n);
    assert_int_equal(expect_error(fd), SPLIT_E_VERSION);
    close(fd);

    printf("wrong auth\n");
    fd = dial(fx->port);
    send_bytes(fd, b, hello(b, sizeof b, "wrong-key", 1, false));
    assert_int_equal(expect_error(fd), SPLIT_E_AUTH);
    close(fd);

    printf("no auth\n");
    fd = dial(fx->port);
    send_bytes(fd, b, hello(b, sizeof b, "", 1, false));
    assert_int_equal(expect_error(fd), SPLIT_E_AUTH);
    close(fd);

    printf("oversized HELLO (length field)\n");
    fd = dial(fx->port);
    split_hdr_write(b, SPLIT_T_HELLO, 1u << 30);
    send_bytes(fd, b, SPLIT_HDR_BYTES);
    assert_int_equal(expect_error(fd), SPLIT_E_LIMIT);
    close(fd);

    printf("split beyond the model\n");
    fd = dial(fx->port);
    send_bytes(fd, b, hello(b, sizeof b, KEY, fx->m->cfg.n_layers + 1, false));
    assert_int_equal(expect_error(fd), SPLIT_E_LIMIT);
    close(fd);

    printf("HIDDEN before HELLO\n");
    fd = dial(fx->port);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 1, D, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("wrong shape (width)\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 2, D - 1, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_FRAME);
    close(fd);

    printf("wrong dtype\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F16, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_FRAME);
    close(fd);

    printf("more rows than the chunk\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 5, D, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_LIMIT);
    close(fd);

    printf("oversized HIDDEN (length field)\n");
    fd = accepted(fx, false);
    split_hdr_write(b, SPLIT_T_HIDDEN, 1u << 28);
    send_bytes(fd, b, SPLIT_HDR_BYTES);
    assert_int_equal(expect_error(fd), SPLIT_E_LIMIT);
    close(fd);

    printf("length disagrees with rows\n");
    fd = accepted(fx, false);
    n = split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F32, rows);
    b[SPLIT_HDR_BYTES + 4] = 3; /* claims 3 rows, carries 2 */
    send_bytes(fd, b, n);
    assert_int_equal(expect_error(fd), SPLIT_E_FRAME);
    close(fd);

    printf("wrong position\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 3, 2, D, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("NaN\n");
    fd = accepted(fx, false);
    rows[D + 3] = NAN;
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_VALUE);
    close(fd);

    printf("Inf (F16)\n");
    fd = accepted(fx, true);
    rows[D + 3] = INFINITY;
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F16, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_VALUE);
    close(fd);
    rows[D + 3] = 0;

    printf("two HIDDEN frames without waiting\n");
    fd = accepted(fx, false);
    n = split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F32, rows);
    size_t n2 = split_hidden_encode(b + n, sizeof b - n, 2, 2, D, SPLIT_DT_F32, rows);
    send_bytes(fd, b, n + n2);
    int code = expect_error(fd);
    assert_true(code == SPLIT_E_STATE);
    close(fd);

    printf("truncated frame, then disconnect\n");
    fd = accepted(fx, false);
    n = split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F32, rows);
    send_bytes(fd, b, n / 2);
    close(fd);

    printf("truncated frame, then silence (idle timeout)\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, n / 2);
    assert_int_equal(expect_error(fd), SPLIT_E_TIMEOUT);
    close(fd);

    printf("version 1 (before IDS frames)\n");
    fd = dial(fx->port);
    n = hello(b, sizeof b, KEY, 0, false);
    b[4] = 1;
    send_bytes(fd, b, n);
    assert_int_equal(expect_error(fd), SPLIT_E_VERSION);
    close(fd);

    int32_t ids[NPROMPT + 4];
    memcpy(ids, prompt, sizeof prompt);
    ids[NPROMPT] = ids[NPROMPT + 1] = ids[NPROMPT + 2] = ids[NPROMPT + 3] = 1;

    printf("IDS at split 1\n");
    fd = accepted_at(fx, 1, false);
    send_bytes(fd, b, split_ids_encode(b, sizeof b, 0, NPROMPT, ids));
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("HIDDEN at split 0\n");
    fd = accepted_at(fx, 0, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 1, D, SPLIT_DT_F32, rows));
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("IDS: token id outside the vocabulary\n");
    fd = accepted_at(fx, 0, false);
    ids[3] = fx->m->cfg.vocab_size;
    send_bytes(fd, b, split_ids_encode(b, sizeof b, 0, NPROMPT, ids));
    assert_int_equal(expect_error(fd), SPLIT_E_VALUE);
    close(fd);
    ids[3] = -1;
    fd = accepted_at(fx, 0, false);
    send_bytes(fd, b, split_ids_encode(b, sizeof b, 0, NPROMPT, ids));
    assert_int_equal(expect_error(fd), SPLIT_E_VALUE);
    close(fd);
    ids[3] = prompt[3];

    printf("IDS: fewer ids than the prompt\n");
    fd = accepted_at(fx, 0, false);
    send_bytes(fd, b, split_ids_encode(b, sizeof b, 0, NPROMPT - 1, ids));
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("IDS: more ids than the prompt\n");
    fd = accepted_at(fx, 0, false);
    send_bytes(fd, b, split_ids_encode(b, sizeof b, 0, NPROMPT + 4, ids));
    assert_int_equal(expect_error(fd), SPLIT_E_LIMIT);
    close(fd);

    printf("IDS: length disagrees with the count\n");
    fd = accepted_at(fx, 0, false);
    n = split_ids_encode(b, sizeof b, 0, NPROMPT, ids);
    b[SPLIT_HDR_BYTES + 4] = NPROMPT - 2; /* claims fewer ids than it carries */
    send_bytes(fd, b, n);
    assert_int_equal(expect_error(fd), SPLIT_E_FRAME);
    close(fd);

    printf("IDS: a second IDS frame while tokens stream\n");
    fd = accepted_at(fx, 0, false);
    n = split_ids_encode(b, sizeof b, 0, NPROMPT, ids);
    memcpy(b + n, b, n); /* both in one write: the server reads the second before it is done */
    send_bytes(fd, b, 2 * n);
    assert_int_equal(expect_error(fd), SPLIT_E_STATE);
    close(fd);

    printf("disconnect in the middle of the prefill\n");
    fd = accepted(fx, false);
    send_bytes(fd, b, split_hidden_encode(b, sizeof b, 0, 2, D, SPLIT_DT_F32, rows));
    close(fd);

    pthread_join(th, NULL);
    check_tokens(fx, &good);
    /* every hostile request is gone from the engine, its cache freed */
    engine_stats st;
    for (int i = 0; i < 300; i++) {
        engine_get_stats(fx->eng, &st);
        if (st.running == 0 && st.waiting == 0 && st.kv.n_seqs == 0) break;
        usleep(10000);
    }
    assert_int_equal(st.running + st.waiting, 0);
    assert_int_equal(st.kv.n_seqs, 0);
    /* and the server still serves */
    sjob again = {.fx = fx, .p = 2, .key = KEY};
    run_split(&again);
    check_tokens(fx, &again);
    free(rows);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_split_synth, setup_synth, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_mixed, setup_synth, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_frames, setup_synth, teardown),
        cmocka_unit_test_setup_teardown(test_every_split_stories, setup_stories, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
