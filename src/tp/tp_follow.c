/* tp_follow.c — what ranks > 0 do: wait for each step's header and batch from the leader,
 * repeat the leader's KV cache block copies on this rank's cache, and run the same forward pass
 * on this rank's shard (whose collectives meet the leader's). The KV store and forward
 * workspace follow the leader's geometry (blocks, block size, batch and context limits) and are
 * rebuilt when it changes (a new engine, a new `weft run` generation). */
#include "weft/tp.h"

#ifdef WEFT_HAVE_MPI

#include <stdlib.h>
#include <string.h>

#include "tp/tp_internal.h"
#include "weft/kv.h"

typedef struct follower {
    tp_pool *pool;
    kv_store *kv;
    weft_forward *fwd;
    int geo[5]; /* kv blocks, block tokens, max tokens, max ctx, kv element type */
    kv_seq *seqs;
    int cap_seqs;
    uint8_t *want;
    int cap_want;
} follower;

static void follower_free(follower *f) {
    fwd_free(f->fwd);
    kv_store_free(f->kv);
    if (f->pool) tp_free(f->pool);
    free(f->seqs);
    free(f->want);
}

static void apply_moves(tp_session *s, kv_store *kv, const int32_t *mv, int n) {
    for (int i = 0; i < n; i++) {
        int src = mv[3 * i], dst = mv[3 * i + 1], rows = mv[3 * i + 2];
        if (!kv || src < 0 || dst < 0 || src >= kv->n_blocks || dst >= kv->n_blocks || rows < 0 ||
            rows > kv->block_tokens)
            tp_fail(s, "the leader sent an invalid KV move (%d -> %d, %d rows)", src, dst, rows);
        kv_store_copy_rows(kv, src, dst, rows);
    }
}

static void fit_geometry(tp_session *s, follower *f, const weft_model *m, const int32_t *h) {
    int geo[5] = {h[TP_H_KV_BLOCKS], h[TP_H_KV_BLOCK_TOKENS], h[TP_H_MAX_TOKENS], h[TP_H_MAX_CTX],
                  h[TP_H_KV_DTYPE]};
    if (f->kv && !memcmp(geo, f->geo, sizeof geo)) return;
    fwd_free(f->fwd);
    kv_store_free(f->kv);
    f->fwd = NULL;
    f->kv = NULL;
    const weft_config *c = &m->cfg;
    weft_err err = {{0}};
    /* the same element type and head-major layout as the leader's store, over this rank's heads */
    if (!kv_dtype_valid(geo[4]))
        tp_fail(s, "the leader sent an unknown KV element type %d", geo[4]);
    f->kv = kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, geo[1], geo[0],
                               (kv_dtype)geo[4], &err);
    if (f->kv) f->fwd = fwd_new(m, f->pool, geo[2], geo[3], &err);
    if (!f->kv || !f->fwd)
        tp_fail(s, "cannot set up this rank's KV cache and workspace: %s", err.msg);
    memcpy(f->geo, geo, sizeof geo);
}

int tp_session_follow(tp_session *s, const weft_model *m, int threads, weft_err *err) {
    if (s->rank == 0) return weft_errf(err, "tensor parallel: rank 0 leads, it does not follow");
    follower f = {0};
    f.pool = tp_new(threads);
    if (!f.pool) return weft_errf(err, "tensor parallel: cannot start %d kernel threads", threads);
    for (;;) {
        MPI_Request rq;
        tp_check_start(s, MPI_Ibcast(s->hdr, TP_H_COUNT, MPI_INT32_T, 0, s->comm, &rq),
                       "waiting for the next step");
        tp_wait(s, &rq, 1, "waiting for the next step");
        const int32_t *h = s->hdr;
        if (h[TP_H_TYPE] == TP_MSG_SHUTDOWN) break;
        int T = h[TP_H_TOKENS], S = h[TP_H_SEQS], NT = h[TP_H_TABLE], NM = h[TP_H_MOVES];
        if (h[TP_H_TYPE] != TP_MSG_STEP || T <= 0 || S <= 0 || NT < 0 || NM < 0 ||
            h[TP_H_PAYLOAD] != 4 * T + S + NT + 3 * NM)
            tp_fail(s, "malformed step header from the leader (type %d, %d tokens, %d sequences)",
                    h[TP_H_TYPE], T, S);
        tp_pay_reserve(s, (size_t)h[TP_H_PAYLOAD]);
        tp_check_start(s, MPI_Ibcast(s->pay, h[TP_H_PAYLOAD], MPI_INT32_T, 0, s->comm, &rq),
                       "the batch broadcast");
        tp_wait(s, &rq, 0, "the batch broadcast");
        const int32_t *p = s->pay;
        const int32_t *tok = p, *pos = p + T, *seq = p + 2 * T, *want = p + 3 * T;
        const int32_t *nblk = p + 4 * T, *blocks = nblk + S, *moves = blocks + NT;
        apply_moves(s, f.kv, moves, NM);
        fit_geometry(s, &f, m, h);
        if (S > f.cap_seqs) {
            kv_seq *q = realloc(f.seqs, sizeof *q * (size_t)S);
            if (!q) tp_fail(s, "out of memory for %d sequences", S);
            f.seqs = q;
            f.cap_seqs = S;
        }
        if (T > f.cap_want) {
            uint8_t *w = realloc(f.want, (size_t)T);
            if (!w) tp_fail(s, "out of memory for %d tokens", T);
            f.want = w;
            f.cap_want = T;
        }
        int at = 0;
        for (int i = 0; i < S; i++) {
            if (nblk[i] < 0 || nblk[i] > NT - at)
                tp_fail(s, "malformed block tables from the leader");
            f.seqs[i] = (kv_seq){.blocks = blocks + at, .n_blocks = nblk[i]};
            at += nblk[i];
        }
        for (int t = 0; t < T; t++)
            f.want[t] = want[t] != 0;
        weft_batch b = {.n_tokens = T,
                        .token = tok,
                        .pos = pos,
                        .seq = seq,
                        .want_logits = f.want,
                        .n_seqs = S,
                        .seqs = f.seqs};
        weft_err fe = {{0}};
        /* The leader validated the same batch against the same geometry, so a refusal here
         * means the ranks disagree: stop rather than leave the leader waiting. */
        if (fwd_run(f.fwd, f.kv, &b, NULL, &fe) != 0) tp_fail(s, "%s", fe.msg);
    }
    follower_free(&f);
    return 0;
}

#endif
