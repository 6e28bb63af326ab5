/* engine.h — temporal fusion: one engine thread owns a model's KV cache and loops over steps.
 * Each step it asks the scheduler policy who may run, builds ONE ragged batch (prefill chunks of
 * new requests + one decode token per running sequence, within a per-step token budget), runs
 * one forward pass, samples, and reports per-request events. Requests that arrive at any time
 * join at the next step; finished ones leave at once and free their cache.
 * The same engine runs the baselines, so comparisons use the same kernels:
 *   ENGINE_SEQUENTIAL  one request at a time (a request-level server)
 *   ENGINE_STATIC      a batch is formed from what is waiting and runs until its longest member
 *                      ends (finished members keep occupying their place); arrivals wait
 *   ENGINE_DYNAMIC     like static, but a batch starts only when it is full or its oldest request
 *                      has waited max_wait_ms (Triton's dynamic batcher)
 *   ENGINE_FUSED       iteration-level batching (this is weft)
 * Thread model: engine_submit / engine_cancel may be called from any thread; events are
 * delivered on the engine thread through each request's callback, which must not block. */
#ifndef WEFT_ENGINE_H
#define WEFT_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "weft/error.h"
#include "weft/kv_cache.h"
#include "weft/model.h"
#include "weft/predict.h"
#include "weft/sampler.h"
#include "weft/sched.h"

typedef enum engine_mode {
    ENGINE_FUSED = 0,
    ENGINE_SEQUENTIAL = 1,
    ENGINE_STATIC = 2,
    ENGINE_DYNAMIC = 3,
} engine_mode;

const char *engine_mode_name(engine_mode m);
int engine_mode_parse(const char *s, engine_mode *out); /* "fused", "sequential", ... */

/* Length prediction hooks (docs/scheduling.md), all called on the engine thread: predict when a
 * request with features is first seen, refine once prefill produced its end-of-prompt logits
 * (the hook computes the entropy and adds it to the features), update from every request that
 * finished with its real length (online learning). ctx is the caller's (e.g. a pred_model);
 * sched_predictor_hooks (sched_predictor.c) wires them to predict.h. */
typedef struct engine_predictor {
    void *ctx;
    pred_estimate (*predict)(void *ctx, const pred_features *f);
    void (*refine)(void *ctx, pred_features *f, const float *logits, int n_vocab);
    void (*update)(void *ctx, const pred_features *f, int actual_tokens);
} engine_predictor;

/* The hooks for a predict.h length model m (owned by the caller; one per engine). */
engine_predictor sched_predictor_hooks(pred_model *m);

/* The shape of one step's batch, as the engine ran it (what a step-time model needs). */
typedef struct engine_step_shape {
    int n_seqs;        /* sequences in the batch */
    int n_tokens;      /* tokens computed (decode tokens + prefill chunks + static padding) */
    int n_prefill;     /* of those: prefill-chunk tokens (sequences still reading their prompt) */
    int n_waiting;     /* requests waiting after admission */
    int64_t kv_tokens; /* attention work: sum over the batch's tokens of the positions they
                        * attend to (position + 1) */
} engine_step_shape;

/* An injected clock (engine_config.clock), owned by the caller: now() is the engine clock in
 * seconds (non-decreasing while steps run); step_done, when set, is called after each forward
 * pass with its shape and before its tokens are emitted, so a virtual clock advances by the
 * step's modelled time there (src/workload/vclock.c). now NULL = CLOCK_MONOTONIC since the
 * engine's creation. A clock needs synchronous engine_step: engine_start refuses it (and nothing
 * advances a virtual clock while the engine idles, so a dynamic batch's fill wait needs a driver
 * that moves the clock, not engine_wait_idle). Only the
 * scheduler-overhead diagnostics (time_schedule_s, time_sample_s, time_compact_s,
 * time_predict_s) stay on the wall clock. */
typedef struct engine_clock_source {
    void *ctx;
    double (*now)(void *ctx);
    void (*step_done)(void *ctx, const engine_step_shape *shape);
} engine_clock_source;

typedef struct engine_config {
    engine_mode mode;
    kv_cache_config kv;
    int max_batch_tokens;  /* token budget of one step (decode tokens + prefill chunks); 512 */
    int max_running;       /* sequences in the running batch at once; 64 */
    int max_batch_size;    /* static/dynamic: requests per batch; default max_running */
    int max_wait_ms;       /* dynamic: longest wait for a batch to fill; 50 */
    int n_threads;         /* kernel worker threads; 0 = all cores */
    bool compact_dense;    /* dense layout: compact slots after sequences leave (default on) */
    sched_policy *policy;  /* NULL: FCFS; the engine takes ownership */
    engine_predictor predictor; /* optional length prediction (predict NULL = none) */
    bool consolidate;      /* fused: admit only while the running batch's predicted KV footprint
                            * (prompt + predicted p90 output) fits the cache */
    FILE *sched_trace;     /* optional: one line per scheduling event and step (engine_trace.c);
                            * the caller opens, owns and closes it; NULL = none */
    engine_clock_source clock; /* optional injected clock (above); zero = the wall clock */
} engine_config;

void engine_config_defaults(engine_config *c);

typedef enum engine_event_type {
    ENGINE_EV_TOKEN = 0,     /* a new token id (callers decode text with a tok_decoder) */
    ENGINE_EV_FINISHED = 1,  /* the last event of a request */
    ENGINE_EV_PREEMPTED = 2, /* cache evicted; the request re-queues and recomputes */
    ENGINE_EV_CONSUMED = 3,  /* split: the hidden states fed so far are computed, prompt not
                              * finished yet (the client may send its next prefill chunk) */
} engine_event_type;

typedef enum engine_finish {
    ENGINE_FINISH_LENGTH = 0,  /* max_tokens reached */
    ENGINE_FINISH_STOP = 1,    /* an end token */
    ENGINE_FINISH_CONTEXT = 2, /* max_seq_len reached */
    ENGINE_FINISH_CANCELLED = 3,
    ENGINE_FINISH_ERROR = 4,
    ENGINE_FINISH_DEADLINE = 5, /* dropped: could no longer meet its deadline (a policy option) */
} engine_finish;

const char *engine_finish_name(engine_finish f);

#define ENGINE_MAX_TOP_LOGPROBS 5

typedef struct engine_event {
    engine_event_type type;
    uint64_t id;
    int token;            /* TOKEN */
    int index;            /* TOKEN: 0-based position in the output */
    engine_finish finish; /* FINISHED */
    int n_prompt, n_generated; /* FINISHED */
    double t_s;           /* engine clock when emitted */
    double queue_s;       /* FINISHED: submission to first admission (0 if never admitted) */
    /* TOKEN, when the request set want_logprobs: the chosen token's log-probability under the
     * model's raw distribution (log-softmax of the logits, before temperature and the other
     * sampling transforms), and the n_top most likely tokens, most likely first. */
    float logprob;
    int n_top;
    int top_ids[ENGINE_MAX_TOP_LOGPROBS];
    float top_logprobs[ENGINE_MAX_TOP_LOGPROBS];
    /* FINISHED: the request's last length prediction (0 = none) and whether it had a deadline
     * and missed it (-1: no deadline, 0: met, 1: missed or dropped) */
    float pred_p50, pred_p90;
    int deadline_missed;
} engine_event;

typedef void (*engine_event_fn)(void *ctx, const engine_event *ev);

typedef struct engine_request {
    uint64_t id;               /* caller's id, unique among live requests */
    const int32_t *prompt;     /* copied at submit */
    int n_prompt;
    int max_tokens;
    weft_sampling sampling;
    bool ignore_eos;           /* benchmarks force output lengths */
    int priority;              /* for policies; higher is more urgent */
    double deadline_ms;        /* relative to submission; 0 = none */
    int predicted_tokens;      /* for policies; 0 = unknown */
    bool want_logprobs;        /* TOKEN events carry logprob (costs one softmax per token) */
    int top_logprobs;          /* with want_logprobs: alternatives per token, 0..5 */
    engine_event_fn on_event;
    void *ctx;
    /* additions for scheduling */
    const pred_features *features; /* prompt's text features (copied at submit); with the
                                    * engine's predictor they give predicted p50/p90 */
    int true_tokens;           /* the real output length, for the oracle policy (benchmarks) */
    int sched_max_tokens;      /* the max_tokens the policies see (0 = max_tokens): a benchmark
                                * that forces each output length through max_tokens passes the
                                * nominal cap here, so no policy can read the true length from
                                * it (only oracle gets true_tokens) */
    /* Split inference: the client computes the embedding and layers [0, split_layer) and feeds
     * the hidden state of every position through engine_split_feed; the engine runs layers
     * [split_layer, L) + head for it inside the same fused batch as everyone else, and runs it
     * only in steps where a fed state is waiting. prompt holds placeholder ids (the server never
     * sees the client's tokens); needs the cache without prefix sharing. A split request cannot
     * be recomputed, so where another would be preempted it ends with ENGINE_FINISH_ERROR. */
    bool split;
    int split_layer; /* 0..n_layers */
    bool split_auto; /* the server planned this request's split point (`--split auto`, split 0
                      * included): its client's next request follows the same plan, which the
                      * counterfactual batch model uses (engine_split_snapshot) */
} engine_request;

typedef struct engine engine;

engine *engine_new(const weft_model *m, const engine_config *cfg, weft_err *err);
/* Stops the thread if running, drops every request (each gets FINISHED/CANCELLED), frees. */
void engine_free(engine *e);

/* Queues a request (thread-safe). Refuses (returns -1 with a message) a prompt that can never
 * fit max_seq_len or the cache, an empty prompt, out-of-vocabulary ids, a duplicate live id. */
int engine_submit(engine *e, const engine_request *r, weft_err *err);
/* Cancels a waiting or running request (thread-safe); it finishes with CANCELLED at the next
 * step and its cache is freed. Returns 0, or -1 if the id is unknown. */
int engine_cancel(engine *e, uint64_t id);
/* Split requests: hands the engine the hidden states ([n][dim], copied) of the next n positions
 * of request id (thread-safe). Each prefill chunk is answered by CONSUMED (or, for the last,
 * the first TOKEN); each TOKEN then waits for the state of that token before the next step.
 * More states than the request has positions ends it with ENGINE_FINISH_ERROR.
 * Returns 0, or -1 if the id is unknown or memory runs out. */
int engine_split_feed(engine *e, uint64_t id, const float *rows, int n, weft_err *err);

/* Runs one step on the calling thread (tests and single-threaded drivers; do not mix with
 * engine_start). Returns the number of sequences that ran, 0 when idle, -1 on error. */
int engine_step(engine *e, weft_err *err);
/* Runs steps on a background thread until engine_stop; sleeps when idle. */
int engine_start(engine *e, weft_err *err);
void engine_stop(engine *e);
/* Blocks until no request is waiting or running (or the timeout passes: returns -1). */
int engine_wait_idle(engine *e, double timeout_s);

/* The engine clock: monotonic seconds since creation, or the injected clock (config.clock). */
double engine_now_s(const engine *e);

typedef struct engine_stats {
    uint64_t steps;
    uint64_t tokens_prefilled, tokens_decoded;
    uint64_t requests_finished, requests_preempted;
    int waiting, running;
    double time_forward_s, time_sample_s, time_schedule_s, time_compact_s; /* step breakdown */
    kv_cache_stats kv;
    double kv_live_fraction_mean; /* mean over steps of live / reserved tokens */
    /* scheduling (docs/scheduling.md) */
    uint64_t deadline_requests;   /* finished requests that had a deadline */
    uint64_t deadline_missed;     /* of those: finished after it, or dropped */
    uint64_t requests_dropped;    /* ENGINE_FINISH_DEADLINE */
    uint64_t queued_requests;     /* requests admitted at least once */
    double queue_s_sum;           /* their summed submission-to-admission time */
    double queue_s_max;
    uint64_t pred_n;              /* finished requests that had a prediction */
    double pred_tokens_sum, actual_tokens_sum; /* p50 predicted vs generated, summed */
    double pred_abs_log_err_sum;  /* sum |ln((p50+1)/(actual+1))| */
    uint64_t pred_p90_covered;    /* actual <= p90 */
    double time_predict_s;        /* predict (inside time_schedule_s) + refine and update (inside
                                   * time_sample_s) */
    double step_s_ewma;           /* recent step time (what the policies see) */
    double waiting_pred_tokens;   /* predicted output tokens of the waiting queue (p50, else
                                   * max_tokens), for the offload policy */
    double running_left_tokens;   /* predicted output tokens the running sequences still need */
    /* preemptive policies (engine_pause.c) */
    uint64_t requests_paused;     /* pauses for a shorter request (cache kept); a paused request
                                   * that later lost its cache counts in requests_preempted */
    uint64_t pause_resumed;       /* paused requests resumed with their cache */
    double wait_s_max;            /* finished requests: the longest total time spent waiting
                                   * (before the first admission, paused, or preempted) */
    uint64_t requests_paused_overdue; /* of requests_paused: pauses that made room for a
                                   * request about to exceed the hard wait bound (sched_bound.c) */
    double decode_batch_ewma;     /* recent sequences per step (step-weighted, about the last
                                   * 64 steps; split_batch_ewma_update), for `--split auto` */
    int batch_min_entry;          /* lowest entry layer among the running and waiting sequences
                                   * (0: an ordinary request; split_layer of a split one; -1:
                                   * none), for `--split auto`'s fused step model */
    double split_inv_batch_ewma;  /* recent mean over split sequences' tokens (fed hidden states)
                                   * of 1 / the sequences in their step, and the same over the
                                   * other sequences' tokens (about the last 64 tokens of each;
                                   * split_inv_batch_ewma_update; 0 = none yet): the batch each
                                   * kind runs in, for `--split auto` */
    double stream_inv_batch_ewma;
} engine_stats;
void engine_get_stats(engine *e, engine_stats *s); /* thread-safe snapshot */

/* One sequence the engine is running or about to run, as `--split auto`'s counterfactual batch
 * model sees it (split_active in weft/split_plan.h). */
typedef struct engine_split_seq {
    int split_layer;  /* 0: streams (in every step while it runs); > 0: waits for its client */
    bool split_auto;  /* engine_request.split_auto */
    int tokens_left;  /* tokens it still generates (max_tokens - generated) */
    int max_tokens, n_prompt; /* its request's */
    double cycle_s;   /* split: measured mean seconds from the end of the step that produced its
                       * token to the arrival of its next hidden state (its client's layers and
                       * the link's round trip); 0 = not measured yet */
} engine_split_seq;
#define ENGINE_SPLIT_SNAPSHOT_MAX 256
/* Thread-safe: copies up to max (<= ENGINE_SPLIT_SNAPSHOT_MAX) of the sequences as of the last
 * step into out and returns how many the engine had (may exceed max; only max are copied). */
int engine_split_snapshot(engine *e, engine_split_seq *out, int max);

#endif
