/* engine_internal.h — the engine's private state, shared by its files:
 *   engine.c        lifecycle, the background thread, submit/cancel inbox, stats snapshot
 *   engine_seq.c    one request's state machine and its events
 *   engine_modes.c  admission rules per mode (fused, sequential, static, dynamic)
 *   engine_step.c   one step: schedule -> ragged batch -> forward -> sample -> events
 * Locking: fields under "shared" are guarded by mu; everything else belongs to whichever thread
 * runs steps (the background thread, or the caller of engine_step). Events are delivered with
 * mu released, so a callback may call engine_submit or engine_cancel. */
#ifndef WEFT_ENGINE_INTERNAL_H
#define WEFT_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "weft/engine.h"
#include "weft/forward.h"

/* A request's life: WAITING -> PREFILLING -> DECODING -> FINISHED; preemption sends a
 * PREFILLING or DECODING sequence back to WAITING with its generated tokens folded into the
 * prompt it will recompute. */
typedef enum seq_state { SEQ_WAITING, SEQ_PREFILLING, SEQ_DECODING, SEQ_FINISHED } seq_state;

typedef struct engine_seq {
    engine_request req; /* the caller's request; req.prompt is not kept (see tokens) */
    int32_t *tokens;    /* prompt, then generated tokens; capacity max_seq_len */
    int n_prompt;       /* the caller's prompt length */
    int n_tokens;       /* prompt + generated */
    int n_generated;
    int n_open;     /* tokens given to kv_seq_open at the last admission (the recompute prompt) */
    int n_computed; /* leading tokens whose keys/values are in the cache */
    int n_preempted;
    weft_sampler *smp; /* lives across preemption: the random stream continues */
    kv_handle h;
    seq_state state;
    double arrival_s, deadline_s;
    uint64_t order; /* submission counter: the last tie-break */
    double rank;    /* policy rank, refreshed every step */
    uint64_t batch; /* static/dynamic: the batch it belongs to (0: none yet) */
    bool cancelled;
    bool padding; /* static/dynamic: finished, still computed until its batch ends */
    int pad_pos;  /* padding: the position recomputed each step */
    int plan_n;   /* tokens this sequence contributes to the current step */
    double admitted_s; /* engine clock at the first admission; 0 = not yet */
    bool paused;         /* WAITING with its cache kept (h >= 0): a preemptive policy paused it
                          * (engine_pause.c); admission resumes it without recompute */
    uint64_t admit_step; /* e->st.steps at the last (re)admission */
    double wait_from;    /* engine clock when it last went back to waiting (pause, preemption) */
    double rewait_s;     /* seconds waited again after its first admission */
    bool overdue;        /* waiting past the policy's wait bound's guard (sched_overdue): ranked
                          * first and admitted even past consolidation (engine_pause.c) */
    /* the last sampled token's log-probabilities (want_logprobs), read by seq_emit */
    float lp;
    int lp_n_top;
    int lp_top_ids[ENGINE_MAX_TOP_LOGPROBS];
    float lp_top[ENGINE_MAX_TOP_LOGPROBS];
    /* length prediction (engine_predict.c) */
    pred_features feat;
    bool has_feat, predicted, refined;
    float p50, p90; /* 0 = unknown */
    /* split requests: fed hidden states of positions [n_computed, n_computed + hid_n) */
    float *hid;
    int hid_n, hid_cap;
    double split_out_s; /* engine clock when its last step ended (0: none pending) */
    double cycle_s;     /* measured mean of feed arrival - split_out_s (0: none yet) */
} engine_seq;

typedef struct split_feed {
    uint64_t id;
    float *rows;
    int n;
    double t; /* engine clock at arrival */
} split_feed;

typedef struct feed_list {
    split_feed *v;
    int n, cap;
} feed_list;

typedef struct seq_list {
    engine_seq **v;
    int n, cap;
} seq_list;

typedef struct id_list {
    uint64_t *v;
    int n, cap;
} id_list;

struct engine {
    const weft_model *m;
    engine_config cfg; /* defaults resolved */
    sched_policy *policy;
    tp_pool *pool;
    kv_cache *kv;
    weft_forward *fwd;
    int max_seq_len;
    int total_blocks;   /* cache blocks (dense: slots) when empty */
    int max_batch_seqs; /* most sequences one step can hold */
    double t0;          /* CLOCK_MONOTONIC at creation */

    /* shared: guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the engine thread: work arrived or stop */
    pthread_cond_t idle; /* engine_wait_idle: the last live request finished */
    seq_list inbox;      /* submitted, not yet seen by a step */
    id_list cancels;     /* cancel requests not yet applied */
    feed_list feeds;     /* split hidden states not yet handed to their sequences */
    id_list live;        /* ids submitted and not yet FINISHED (duplicates, cancel) */
    int n_unfinished;    /* submitted requests whose FINISHED was not yet delivered */
    uint64_t next_order;
    bool thread_started, stop;
    pthread_t thread;
    engine_stats pub; /* the snapshot engine_get_stats returns */
    engine_split_seq split_snap[ENGINE_SPLIT_SNAPSHOT_MAX]; /* engine_split_snapshot's */
    int split_snap_n;

    /* the stepping thread's own */
    seq_list waiting, running;
    uint64_t batch_counter; /* static/dynamic: id of the batch in flight */
    double wake_at_s;       /* dynamic: when the oldest waiting request's wait ends; 0 = none */
    bool closed_since_compact;
    engine_stats st;
    double live_frac_sum;
    uint64_t live_frac_n;
    /* step workspace, sized at creation */
    int32_t *b_tok, *b_pos, *b_seq;
    uint8_t *b_want;
    kv_seq *b_views;
    engine_seq **b_seqs;
    sched_info *b_info; /* victim candidates */
    engine_seq **b_victims;
    float *logits;
    float *lp_row; /* one row of raw logits kept for want_logprobs (the sampler edits its row) */
    engine_seq **b_samp; /* the step's sequences that sample a token, in batch order */
    int32_t *b_samp_row, *b_samp_tok; /* their logits row; the token sampled on the pool */
    float *b_hidden; /* [max_batch_tokens][dim]: split entrants' states, in batch order */
    int32_t *b_entry;
};

/* Lock helpers: a failing pthread call on our own valid objects means corrupted state, and
 * carrying on could lose requests silently, so it aborts loudly instead. */
void engine_lock(engine *e);
void engine_unlock(engine *e);

/* engine.c */
double engine_clock(const engine *e);
/* Wall seconds since creation, for the scheduler-overhead diagnostics only (never for a
 * scheduling decision): equals engine_clock unless a clock was injected. */
double engine_wall(const engine *e);
/* One request fewer is unfinished; wakes engine_wait_idle when none is left. */
void engine_request_done(engine *e);

/* engine_seq.c */
int seq_list_reserve(seq_list *l, int n);
int seq_list_push(seq_list *l, engine_seq *s);
void seq_list_remove_at(seq_list *l, int i);
int seq_list_find(const seq_list *l, const engine_seq *s);
void seq_list_free(seq_list *l);
int id_list_push(id_list *l, uint64_t id);
bool id_list_remove(id_list *l, uint64_t id);
bool id_list_contains(const id_list *l, uint64_t id);
void id_list_free(id_list *l);

engine_seq *seq_new(const engine *e, const engine_request *r, weft_err *err);
void seq_free(engine_seq *s);
void seq_info(const engine_seq *s, sched_info *out);
void seq_emit(engine *e, engine_seq *s, engine_event_type type, int token, engine_finish f);
/* Admits s into the cache (WAITING -> PREFILLING); -1 when the cache cannot hold it now. */
int seq_admit(engine *e, engine_seq *s);
/* Frees s's cache and sends it back to WAITING (recompute); emits PREEMPTED. */
void seq_preempt(engine *e, engine_seq *s);
/* engine_pause.c: preemptive policies. */
/* Pauses running sequences for much shorter waiting ones (sched_pick_pause), FUSED mode only;
 * a paused sequence keeps its cache and waits (running -> waiting). */
void engine_pause_for_waiting(engine *e, double now);
/* Seconds s has waited so far at engine clock now: queued before its first admission, plus
 * paused or preempted since (the quantity the hard wait bound limits). */
double seq_waited(const engine_seq *s, double now);
/* sched_info for s with the fields the wait bound and pausing need (step time, waited_s, and
 * for a running one steps_run and pausable). */
void seq_info_now(const engine *e, const engine_seq *s, double now, sched_info *out);
/* Memory is short: a paused sequence (the worst-ranked one, not `except`) gives its cache back
 * and will recompute. False when no paused sequence holds cache. */
bool engine_release_paused(engine *e, const engine_seq *except);
/* engine_trace.c: a line to cfg.sched_trace (printf format), when the caller set one. */
void engine_trace(const engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Closes the cache a waiting sequence may still hold (paused), before it is dropped. */
void seq_drop_kv(engine *e, engine_seq *s);
/* Marks s FINISHED, emits the event, forgets the id. The caller closes the cache, unlinks and
 * frees s (or keeps it as static padding). */
void seq_finish(engine *e, engine_seq *s, engine_finish f);
/* Takes a sampled token: an end token (unless ignore_eos) is not kept; otherwise it is appended
 * and emitted. Returns the engine_finish reason when s is done now, else -1. */
int seq_accept_token(engine *e, engine_seq *s, int token);

/* engine_modes.c */
/* Admits waiting sequences into running according to the mode; *budget is the step's token
 * budget left after the running sequences' share. */
void engine_admit(engine *e, int *budget);

/* engine_predict.c */
/* Predicts the length of a newly seen request (features + predictor, else the caller's
 * predicted_tokens). */
void engine_predict_new(engine *e, engine_seq *s);
/* After prefill: refines the prediction with the end-of-prompt logits (once per request). */
void engine_predict_refine(engine *e, engine_seq *s, const float *logits);
/* A request finished: online update and prediction / deadline statistics. Fills the FINISHED
 * event's prediction fields. */
void engine_predict_finished(engine *e, engine_seq *s, engine_finish f, engine_event *ev);
/* Predicted KV footprint of s in cache blocks: prompt + predicted p90 output (consolidation). */
int engine_predicted_blocks(const engine *e, const engine_seq *s);
/* engine_split.c */
/* Hands queued feeds to their sequences (engine thread; a sequence whose feed is invalid or
 * cannot be stored ends with ERROR). */
void split_take_feeds(engine *e);
void split_feeds_free(feed_list *l);
/* Marks the split sequences of the step's batch (n_seqs) as having ended a step at t. */
void engine_split_mark_out(engine *e, int n_seqs, double t);
/* Refreshes the snapshot engine_split_snapshot returns (takes the engine lock). */
void engine_split_publish(engine *e);
/* Tokens s could compute now: all it has left, or for a split request what was fed. */
int seq_ready(const engine_seq *s);
/* Lowest entry layer among running and waiting sequences (0: an ordinary one), -1: none. */
int engine_split_min_entry(const engine *e);
/* How many of the step's n sequences (b_seqs) are split ones (fed hidden states). */
int engine_split_count(const engine *e, int n);

/* engine_step.c */
/* Finishes and drops every waiting and running sequence (engine_free). */
void engine_drop_all(engine *e);

#endif
