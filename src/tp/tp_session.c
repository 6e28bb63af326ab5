/* tp_session.c — the MPI side of tensor parallelism (see include/weft/tp.h): joining the job,
 * the start-up handshake (same model hash and shard plan on every rank), the communicator the
 * forward pass calls (batch broadcast, all-reduce, logits gather), failure detection and
 * shutdown. Every collective is non-blocking and waited on with a deadline, so a rank that dies
 * or hangs ends the job with a message instead of a hang. Communication stays on one thread
 * at a time (MPI_THREAD_SERIALIZED): the command's thread at start and end, the engine thread
 * in between. */
#include "weft/tp.h"

#ifdef WEFT_HAVE_MPI

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tp/tp_internal.h"

bool tp_mpi_available(void) {
    return true;
}

double tp_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

_Noreturn void tp_fail(tp_session *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char msg[sizeof s->fail_msg - 64];
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(s->fail_msg, sizeof s->fail_msg, "tensor parallel, rank %d of %d: %s", s->rank,
             s->size, msg);
    atomic_store(&s->failed, 1);
    fprintf(stderr, "weft: %s; stopping the MPI job\n", s->fail_msg);
    fflush(stderr);
    if (s->rank == 0 && s->grace_s > 0) {
        struct timespec ts = {(time_t)s->grace_s,
                              (long)((s->grace_s - (double)(time_t)s->grace_s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    MPI_Abort(MPI_COMM_WORLD, 3);
    abort(); /* MPI_Abort does not return */
}

void tp_wait(tp_session *s, MPI_Request *rq, int idle, const char *what) {
    double t0 = tp_now_s();
    long sleep_ns = 1000;
    for (unsigned it = 1;; it++) {
        int done = 0;
        int rc = MPI_Test(rq, &done, MPI_STATUS_IGNORE);
        tp_check_start(s, rc, what);
        if (done) return;
        if (idle) {
            /* Waiting for the next step: sleep a little longer each time, up to 1 ms, so an
             * idle server costs no CPU on the followers. */
            struct timespec ts = {0, sleep_ns};
            nanosleep(&ts, NULL);
            if (sleep_ns < 1000000) sleep_ns *= 2;
        } else if ((it & 255) == 0 && tp_now_s() - t0 > s->timeout_s) {
            tp_fail(s,
                    "no answer from the other ranks for %.0f s during %s: a rank died, hung "
                    "or runs a different model",
                    s->timeout_s, what);
        }
    }
}

void tp_check_start(tp_session *s, int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char e[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, e, &n);
    tp_fail(s, "%s failed: %s (a rank died or the network failed)", what, e);
}

void tp_pay_reserve(tp_session *s, size_t n) {
    if (n <= s->pay_cap) return;
    size_t cap = s->pay_cap ? s->pay_cap : 1024;
    while (cap < n)
        cap *= 2;
    int32_t *p = realloc(s->pay, cap * sizeof *p);
    if (!p) tp_fail(s, "out of memory for a %zu-value step message", n);
    s->pay = p;
    s->pay_cap = cap;
}

/* ---- the communicator the forward pass calls ---- */

static void c_begin(void *ctx, const kv_store *kv, int max_tokens, int max_ctx,
                    const weft_batch *b) {
    tp_session *s = ctx;
    if (s->rank != 0) return; /* followers received the batch already */
    double t0 = tp_now_s();
    if (s->in_step) s->st.forward_s += s->t_last - s->t_begin;
    s->in_step = 1;
    s->t_begin = t0;
    int n_table = 0;
    for (int i = 0; i < b->n_seqs; i++)
        n_table += b->seqs[i].n_blocks;
    size_t n =
        4 * (size_t)b->n_tokens + (size_t)b->n_seqs + (size_t)n_table + 3 * (size_t)s->n_moves;
    tp_pay_reserve(s, n);
    int32_t *p = s->pay;
    memcpy(p, b->token, sizeof *p * (size_t)b->n_tokens), p += b->n_tokens;
    memcpy(p, b->pos, sizeof *p * (size_t)b->n_tokens), p += b->n_tokens;
    memcpy(p, b->seq, sizeof *p * (size_t)b->n_tokens), p += b->n_tokens;
    for (int t = 0; t < b->n_tokens; t++)
        *p++ = b->want_logits ? b->want_logits[t] : 0;
    for (int i = 0; i < b->n_seqs; i++)
        *p++ = b->seqs[i].n_blocks;
    for (int i = 0; i < b->n_seqs; i++) {
        memcpy(p, b->seqs[i].blocks, sizeof *p * (size_t)b->seqs[i].n_blocks);
        p += b->seqs[i].n_blocks;
    }
    if (s->n_moves > 0) memcpy(p, s->moves, sizeof *p * 3 * (size_t)s->n_moves);
    int32_t h[TP_H_COUNT] = {[TP_H_TYPE] = TP_MSG_STEP,
                             [TP_H_TOKENS] = b->n_tokens,
                             [TP_H_SEQS] = b->n_seqs,
                             [TP_H_TABLE] = n_table,
                             [TP_H_MOVES] = s->n_moves,
                             [TP_H_MAX_TOKENS] = max_tokens,
                             [TP_H_MAX_CTX] = max_ctx,
                             [TP_H_KV_BLOCKS] = kv->n_blocks,
                             [TP_H_KV_BLOCK_TOKENS] = kv->block_tokens,
                             [TP_H_KV_DTYPE] = (int32_t)kv->dtype,
                             [TP_H_PAYLOAD] = (int32_t)n};
    memcpy(s->hdr, h, sizeof h);
    s->n_moves = 0;
    MPI_Request rq;
    tp_check_start(s, MPI_Ibcast(s->hdr, TP_H_COUNT, MPI_INT32_T, 0, s->comm, &rq),
                   "the step broadcast");
    tp_wait(s, &rq, 0, "the step broadcast");
    tp_check_start(s, MPI_Ibcast(s->pay, (int)n, MPI_INT32_T, 0, s->comm, &rq),
                   "the batch broadcast");
    tp_wait(s, &rq, 0, "the batch broadcast");
    s->st.steps++;
    s->t_last = tp_now_s();
    s->st.bcast_s += s->t_last - t0;
}

static void c_allreduce(void *ctx, float *x, size_t n) {
    tp_session *s = ctx;
    double t0 = tp_now_s();
    MPI_Request rq;
    tp_check_start(s, MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, s->comm, &rq),
                   "an all-reduce");
    tp_wait(s, &rq, 0, "an all-reduce");
    s->t_last = tp_now_s();
    s->st.allreduce_s += s->t_last - t0;
    s->st.allreduces++;
}

static void c_gather(void *ctx, const float *part, int n_rows, float *logits) {
    tp_session *s = ctx;
    double t0 = tp_now_s();
    int mine = n_rows * s->v_counts[s->rank];
    if (s->rank == 0) {
        size_t need = (size_t)n_rows * (size_t)s->vocab;
        if (need > s->gbuf_cap) {
            float *g = realloc(s->gbuf, need * sizeof *g);
            if (!g) tp_fail(s, "out of memory for %zu gathered logits", need);
            s->gbuf = g;
            s->gbuf_cap = need;
        }
        for (int r = 0; r < s->size; r++) {
            s->g_counts[r] = n_rows * s->v_counts[r];
            s->g_displs[r] = n_rows * s->v_displs[r];
        }
    }
    MPI_Request rq;
    tp_check_start(s,
                   MPI_Igatherv(part, mine, MPI_FLOAT, s->gbuf, s->g_counts, s->g_displs, MPI_FLOAT,
                                0, s->comm, &rq),
                   "the logits gather");
    tp_wait(s, &rq, 0, "the logits gather");
    if (s->rank == 0 && logits) {
        /* [rank][row][its vocabulary slice] → [row][vocab] */
        for (int r = 0; r < s->size; r++) {
            const float *src = s->gbuf + s->g_displs[r];
            int vc = s->v_counts[r];
            for (int i = 0; i < n_rows; i++)
                memcpy(logits + (size_t)i * s->vocab + s->v_displs[r], src + (size_t)i * vc,
                       sizeof(float) * (size_t)vc);
        }
    }
    s->t_last = tp_now_s();
    s->st.gather_s += s->t_last - t0;
}

static void c_kv_move(void *ctx, int src, int dst, int n_rows) {
    tp_session *s = ctx;
    if (s->rank != 0) return;
    if (s->n_moves == s->cap_moves) {
        int cap = s->cap_moves ? 2 * s->cap_moves : 64;
        int32_t *m = realloc(s->moves, sizeof *m * 3 * (size_t)cap);
        if (!m) tp_fail(s, "out of memory recording KV cache moves");
        s->moves = m;
        s->cap_moves = cap;
    }
    int32_t *m = s->moves + 3 * (size_t)s->n_moves++;
    m[0] = src;
    m[1] = dst;
    m[2] = n_rows;
}

/* ---- session ---- */

static double env_seconds(const char *name, double fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    double d = strtod(v, &end);
    return (*end == 0 && d >= 0 && d < 1e6) ? d : fallback;
}

tp_session *tp_session_open(int n, weft_err *err) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS) {
            weft_errf(err, "tensor parallel: MPI_Init_thread failed");
            return NULL;
        }
        if (provided < MPI_THREAD_SERIALIZED) {
            weft_errf(err, "tensor parallel: this MPI does not support calls from more than one "
                           "thread (MPI_THREAD_SERIALIZED)");
            MPI_Finalize();
            return NULL;
        }
    }
    int rank = 0, size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != n) {
        weft_errf(err,
                  "tensor parallel: --tp %d but the MPI job has %d rank%s; start it as "
                  "`mpirun -np %d weft ... --tp %d`",
                  n, size, size == 1 ? "" : "s", n, n);
        MPI_Finalize();
        return NULL;
    }
    tp_session *s = calloc(1, sizeof *s);
    if (!s || !(s->v_counts = calloc((size_t)size, sizeof(int))) ||
        !(s->v_displs = calloc((size_t)size, sizeof(int))) ||
        !(s->g_counts = calloc((size_t)size, sizeof(int))) ||
        !(s->g_displs = calloc((size_t)size, sizeof(int)))) {
        if (s) {
            free(s->v_counts);
            free(s->v_displs);
            free(s->g_counts);
            free(s);
        }
        weft_errf(err, "out of memory");
        MPI_Abort(MPI_COMM_WORLD, 3); /* the other ranks would wait in the handshake */
        return NULL;
    }
    s->rank = rank;
    s->size = size;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &s->comm) != MPI_SUCCESS ||
        MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN) != MPI_SUCCESS) {
        weft_errf(err, "tensor parallel: cannot set up the MPI communicator");
        MPI_Abort(MPI_COMM_WORLD, 3); /* the other ranks would wait in the handshake */
    }
    s->timeout_s = env_seconds("WEFT_TP_TIMEOUT_S", 60);
    s->grace_s = env_seconds("WEFT_TP_FAIL_GRACE_S", 0);
    atomic_init(&s->failed, 0);
    s->fc = (fwd_comm){.ctx = s,
                       .begin = c_begin,
                       .allreduce = c_allreduce,
                       .gather_logits = c_gather,
                       .kv_move = c_kv_move};
    return s;
}

int tp_session_rank(const tp_session *s) {
    return s->rank;
}
int tp_session_size(const tp_session *s) {
    return s->size;
}

void tp_session_set_timeouts(tp_session *s, double timeout_s, double grace_s) {
    if (timeout_s > 0) s->timeout_s = timeout_s;
    if (grace_s >= 0) s->grace_s = grace_s;
}

bool tp_session_failed(const tp_session *s, char *msg, size_t msg_size) {
    if (!atomic_load(&((tp_session *)s)->failed)) return false;
    if (msg && msg_size) snprintf(msg, msg_size, "%s", s->fail_msg);
    return true;
}

void tp_session_stats(const tp_session *s, tp_stats *out) {
    *out = s->st;
    if (s->in_step) out->forward_s += s->t_last - s->t_begin;
}

/* What each rank reports in the handshake. */
typedef struct hs_info {
    int32_t ok, ffn_block, attn_block, pad;
    uint64_t model_hash, plan_hash;
    int32_t n_layers, dim, n_heads, n_kv_heads, hidden_dim, vocab;
    char msg[256];
} hs_info;

static int block_of(weft_dtype t) {
    size_t b = dtype_block_elems(t);
    return b ? (int)b : 1;
}

int tp_session_attach(tp_session *s, weft_model *m, const char *load_err, weft_err *err) {
    hs_info me = {0};
    tp_plan plan = {0};
    if (m) {
        const weft_config *c = &m->cfg;
        me.ffn_block = block_of(m->layers[0].w_down.type);
        me.attn_block = block_of(m->layers[0].wo.type);
        for (int l = 1; l < c->n_layers; l++) {
            if (block_of(m->layers[l].w_down.type) > me.ffn_block)
                me.ffn_block = block_of(m->layers[l].w_down.type);
            if (block_of(m->layers[l].wo.type) > me.attn_block)
                me.attn_block = block_of(m->layers[l].wo.type);
        }
        me.model_hash = tp_model_hash(m);
        me.plan_hash = tp_plan_hash(c, me.ffn_block, me.attn_block, s->size);
        me.n_layers = c->n_layers, me.dim = c->dim, me.n_heads = c->n_heads;
        me.n_kv_heads = c->n_kv_heads, me.hidden_dim = c->hidden_dim, me.vocab = c->vocab_size;
        weft_err pe = {{0}};
        if (tp_plan_make(c, me.ffn_block, me.attn_block, s->rank, s->size, &plan, &pe) != 0)
            snprintf(me.msg, sizeof me.msg, "%.250s", pe.msg);
        else
            me.ok = 1;
    } else {
        snprintf(me.msg, sizeof me.msg, "%.250s", load_err ? load_err : "the model did not load");
    }
    hs_info *all = calloc((size_t)s->size, sizeof *all);
    if (!all) tp_fail(s, "out of memory for the handshake");
    MPI_Request rq;
    tp_check_start(
        s,
        MPI_Iallgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, s->comm, &rq),
        "the start-up handshake");
    tp_wait(s, &rq, 0, "the start-up handshake");
    int rc = 0;
    for (int r = 0; r < s->size && rc == 0; r++) {
        const hs_info *o = &all[r];
        if (!o->ok)
            rc = weft_errf(err, "tensor parallel: rank %d cannot take part: %s", r, o->msg);
        else if (o->model_hash != all[0].model_hash)
            rc = weft_errf(err,
                           "tensor parallel: rank %d loaded a different model than rank 0 "
                           "(model hash %016llx vs %016llx; %d layers, dim %d, %d heads, "
                           "vocab %d vs %d layers, dim %d, %d heads, vocab %d): every rank "
                           "must load the same file",
                           r, (unsigned long long)o->model_hash,
                           (unsigned long long)all[0].model_hash, o->n_layers, o->dim, o->n_heads,
                           o->vocab, all[0].n_layers, all[0].dim, all[0].n_heads, all[0].vocab);
        else if (o->plan_hash != all[0].plan_hash)
            rc = weft_errf(err,
                           "tensor parallel: rank %d computed a different shard plan than "
                           "rank 0 (a different weft version?)",
                           r);
    }
    free(all);
    if (rc != 0) return -1;
    if (tp_shard_model(m, &plan, err) != 0) {
        /* Every rank has the same plan and file, so every rank fails alike here. */
        return -1;
    }
    s->plan = plan;
    s->vocab = m->cfg.vocab_size;
    for (int r = 0; r < s->size; r++) {
        tp_plan o;
        tp_plan_make(&(weft_config){.n_heads = me.n_heads,
                                    .n_kv_heads = me.n_kv_heads,
                                    .hidden_dim = me.hidden_dim,
                                    .vocab_size = me.vocab,
                                    .head_dim = m->cfg.head_dim},
                     me.ffn_block, me.attn_block, r, s->size, &o, NULL);
        s->v_counts[r] = o.v1 - o.v0;
        s->v_displs[r] = o.v0;
    }
    m->comm = &s->fc;
    return 0;
}

void tp_session_close(tp_session *s) {
    if (!s) return;
    if (s->rank == 0 && s->fc.ctx && s->plan.size > 0) {
        tp_stats st;
        tp_session_stats(s, &st);
        fprintf(stderr,
                "tp: %d ranks, %llu forward passes: forward %.3f s, all-reduce %.3f s (%.1f%% "
                "of forward, %llu calls), batch broadcast %.3f s, logits gather %.3f s\n",
                s->size, (unsigned long long)st.steps, st.forward_s, st.allreduce_s,
                st.forward_s > 0 ? 100.0 * st.allreduce_s / st.forward_s : 0.0,
                (unsigned long long)st.allreduces, st.bcast_s, st.gather_s);
        int32_t h[TP_H_COUNT] = {[TP_H_TYPE] = TP_MSG_SHUTDOWN};
        memcpy(s->hdr, h, sizeof h);
        MPI_Request rq;
        tp_check_start(s, MPI_Ibcast(s->hdr, TP_H_COUNT, MPI_INT32_T, 0, s->comm, &rq),
                       "the shutdown message");
        tp_wait(s, &rq, 0, "the shutdown message");
    }
    MPI_Comm_free(&s->comm);
    MPI_Finalize();
    free(s->moves);
    free(s->pay);
    free(s->gbuf);
    free(s->v_counts);
    free(s->v_displs);
    free(s->g_counts);
    free(s->g_displs);
    free(s);
}

#else /* !WEFT_HAVE_MPI */

bool tp_mpi_available(void) {
    return false;
}

tp_session *tp_session_open(int n, weft_err *err) {
    weft_errf(err,
              "tensor parallel: --tp %d needs MPI, and this weft was built without it "
              "(install libopenmpi-dev: scripts/setup.sh, then rebuild)",
              n);
    return NULL;
}
int tp_session_rank(const tp_session *s) {
    return 0;
}
int tp_session_size(const tp_session *s) {
    return 1;
}
int tp_session_attach(tp_session *s, weft_model *m, const char *load_err, weft_err *err) {
    return weft_errf(err, "tensor parallel: built without MPI");
}
int tp_session_follow(tp_session *s, const weft_model *m, int threads, weft_err *err) {
    return weft_errf(err, "tensor parallel: built without MPI");
}
void tp_session_close(tp_session *s) {}
bool tp_session_failed(const tp_session *s, char *msg, size_t msg_size) {
    return false;
}
void tp_session_set_timeouts(tp_session *s, double timeout_s, double grace_s) {}
void tp_session_stats(const tp_session *s, tp_stats *out) {
    *out = (tp_stats){0};
}

#endif
