/* engine_split.c — the engine's side of split inference: hidden states that clients computed
 * for the first layers of their requests arrive from other threads (engine_split_feed, queued
 * under the engine lock like cancels), and the stepping thread hands them to their sequences.
 * A split sequence runs in a step only for positions whose state has arrived (seq_ready); its
 * tokens join the same fused batch as everyone else's (engine_step.c orders them first, later
 * entry layers first, as fwd_run_split wants). */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

int engine_split_feed(engine *e, uint64_t id, const float *rows, int n, weft_err *err) {
    if (!e || !rows || n <= 0) return weft_errf(err, "engine: split feed needs rows");
    size_t bytes = sizeof(float) * (size_t)n * (size_t)e->m->cfg.dim;
    float *copy = malloc(bytes);
    if (!copy) return weft_errf(err, "engine: out of memory for %d hidden states", n);
    memcpy(copy, rows, bytes);
    engine_lock(e);
    int rc = 0;
    if (!id_list_contains(&e->live, id)) {
        rc = weft_errf(err, "engine: split feed for unknown request %llu", (unsigned long long)id);
    } else if (e->feeds.n == e->feeds.cap) {
        int nc = e->feeds.cap ? 2 * e->feeds.cap : 8;
        split_feed *nv = realloc(e->feeds.v, sizeof *nv * (size_t)nc);
        if (!nv) rc = weft_errf(err, "engine: out of memory queueing a split feed");
        else {
            e->feeds.v = nv;
            e->feeds.cap = nc;
        }
    }
    if (rc == 0) {
        e->feeds.v[e->feeds.n++] = (split_feed){id, copy, n, engine_clock(e)};
        copy = NULL;
        pthread_cond_signal(&e->wake);
    }
    engine_unlock(e);
    free(copy);
    return rc;
}

void split_feeds_free(feed_list *l) {
    for (int i = 0; i < l->n; i++)
        free(l->v[i].rows);
    free(l->v);
    *l = (feed_list){0};
}

int seq_ready(const engine_seq *s) {
    int left = s->n_tokens - s->n_computed;
    if (!s->req.split) return left;
    return s->hid_n < left ? s->hid_n : left;
}

/* Stores feed f in s; -1 when it does not fit s's positions or memory runs out. */
static int store(engine *e, engine_seq *s, const split_feed *f) {
    const int D = e->m->cfg.dim;
    if (!s->req.split || s->n_computed + s->hid_n + f->n > s->n_tokens) return -1;
    if (s->hid_n + f->n > s->hid_cap) {
        int nc = s->hid_n + f->n;
        float *nv = realloc(s->hid, sizeof(float) * (size_t)nc * D);
        if (!nv) return -1;
        s->hid = nv;
        s->hid_cap = nc;
    }
    memcpy(s->hid + (size_t)s->hid_n * D, f->rows, sizeof(float) * (size_t)f->n * D);
    s->hid_n += f->n;
    /* its client's cycle: from the end of the step that answered it to this state's arrival */
    if (s->split_out_s > 0 && f->t >= s->split_out_s) {
        const double c = f->t - s->split_out_s;
        s->cycle_s = s->cycle_s > 0 ? 0.75 * s->cycle_s + 0.25 * c : c;
    }
    s->split_out_s = 0;
    return 0;
}

void split_take_feeds(engine *e) {
    engine_lock(e);
    feed_list fl = e->feeds;
    e->feeds = (feed_list){0};
    engine_unlock(e);
    for (int i = 0; i < fl.n; i++) {
        const split_feed *f = &fl.v[i];
        for (int w = 0; w < e->waiting.n; w++) {
            engine_seq *s = e->waiting.v[w];
            if (s->req.id != f->id) continue;
            if (store(e, s, f) != 0) {
                seq_list_remove_at(&e->waiting, w);
                seq_finish(e, s, ENGINE_FINISH_ERROR);
                seq_free(s);
            }
            break;
        }
        for (int r = 0; r < e->running.n; r++) {
            engine_seq *s = e->running.v[r];
            if (s->req.id != f->id || s->padding) continue;
            if (store(e, s, f) != 0) {
                kv_seq_close(e->kv, s->h);
                s->h = -1;
                e->closed_since_compact = true;
                seq_list_remove_at(&e->running, r);
                seq_finish(e, s, ENGINE_FINISH_ERROR);
                seq_free(s);
            }
            break;
        }
    }
    split_feeds_free(&fl);
}

/* The lowest layer any sequence the engine is running or about to run enters at: a fused step
 * pays a layer's fixed part whenever one of its sequences runs that layer (`--split auto`). */
int engine_split_min_entry(const engine *e) {
    int m = -1;
    for (int i = 0; i < e->running.n; i++) {
        const engine_seq *s = e->running.v[i];
        if (s->padding) continue;
        const int l = s->req.split ? s->req.split_layer : 0;
        if (m < 0 || l < m) m = l;
    }
    for (int i = 0; i < e->waiting.n; i++) {
        const engine_seq *s = e->waiting.v[i];
        const int l = s->req.split ? s->req.split_layer : 0;
        if (m < 0 || l < m) m = l;
    }
    return m;
}

int engine_split_count(const engine *e, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        k += e->b_seqs[i]->req.split && !e->b_seqs[i]->padding;
    return k;
}

void engine_split_mark_out(engine *e, int n_seqs, double t) {
    for (int i = 0; i < n_seqs; i++) {
        engine_seq *s = e->b_seqs[i];
        if (s->req.split && !s->padding) s->split_out_s = t;
    }
}

static void snap_one(engine *e, int *n, const engine_seq *s) {
    if (*n < ENGINE_SPLIT_SNAPSHOT_MAX) {
        const int left = s->req.max_tokens - s->n_generated;
        e->split_snap[*n] = (engine_split_seq){
            .split_layer = s->req.split ? s->req.split_layer : 0,
            .split_auto = s->req.split_auto,
            .tokens_left = left > 0 ? left : 0,
            .max_tokens = s->req.max_tokens,
            .n_prompt = s->n_prompt,
            .cycle_s = s->req.split ? s->cycle_s : 0,
        };
    }
    (*n)++;
}

void engine_split_publish(engine *e) {
    /* the stepping thread owns the lists; the snapshot is written under the lock */
    engine_lock(e);
    int n = 0;
    for (int i = 0; i < e->running.n; i++)
        if (!e->running.v[i]->padding) snap_one(e, &n, e->running.v[i]);
    for (int i = 0; i < e->waiting.n; i++)
        snap_one(e, &n, e->waiting.v[i]);
    e->split_snap_n = n;
    engine_unlock(e);
}

int engine_split_snapshot(engine *e, engine_split_seq *out, int max) {
    if (!e || !out || max <= 0) return 0;
    if (max > ENGINE_SPLIT_SNAPSHOT_MAX) max = ENGINE_SPLIT_SNAPSHOT_MAX;
    engine_lock(e);
    const int n = e->split_snap_n;
    const int k = n < max ? n : max;
    memcpy(out, e->split_snap, sizeof *out * (size_t)k);
    engine_unlock(e);
    return n;
}
