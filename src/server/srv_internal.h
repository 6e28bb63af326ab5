/* srv_internal.h — the server object and the pieces the files of src/server/ share.
 * The server object owns everything: model, engine, HTTP daemon, metrics, the shutdown
 * eventfd; nothing here is global. HTTP threads read the model (immutable) and talk to the
 * engine only through engine_submit / engine_cancel / engine_get_stats and channels. */
#ifndef WEFT_SERVER_INTERNAL_H
#define WEFT_SERVER_INTERNAL_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "server/channel.h"
#include "server/chat_template.h"
#include "server/metrics.h"
#include "server/server.h"
#include "weft/engine.h"
#include "weft/model.h"
#include "weft/predict.h"

#define SRV_MAX_WORKERS 4

typedef enum srv_state { SRV_LOADING = 0, SRV_READY = 1, SRV_DRAINING = 2 } srv_state;

typedef struct srv {
    const srv_config *cfg;
    atomic_int state;
    weft_model *model;
    engine *eng; /* the primary worker (= workers[0]) */
    /* workers.c: every engine, its length model (used on its thread only), and the router's
     * own length model for offload decisions (never updated, so concurrent pred_predict calls
     * on it only read) */
    engine *workers[SRV_MAX_WORKERS];
    pred_model *wpred[SRV_MAX_WORKERS];
    int n_workers;
    pred_model *route_pred;
    atomic_uint_least64_t routed[SRV_MAX_WORKERS]; /* requests sent to each worker */
    struct tp_session *tp; /* tensor parallelism (leader), or NULL */
    chat_template tmpl;
    char model_id[256];
    int ctx; /* longest sequence (prompt + output) */
    long created;
    struct MHD_Daemon *daemon;
    int shutdown_efd; /* readable once running requests must be cancelled */
    metrics met;
    atomic_uint_least64_t next_id;
    pthread_mutex_t mu; /* guards the counters below */
    pthread_cond_t idle; /* n_live dropped to 0 */
    int n_waiting;       /* submitted, no first event yet (the bounded queue) */
    int n_live;          /* generation requests between submit and response end */
    struct split_srv *split; /* --split-port */
    struct split_auto *split_plan; /* --split-profile */
} srv;

/* ---- errors.c: OpenAI's error object ---- */
/* Queues {"error":{"message","type","param","code"}} with status; param/code may be NULL. */
enum MHD_Result oai_error(struct MHD_Connection *c, unsigned status, const char *type,
                          const char *code, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;
/* The same object as a JSON string (malloc'd), for errors inside an SSE stream. */
char *oai_error_json(const char *type, const char *code, const char *message);
/* Error detail a request parser fills before the response is sent. */
typedef struct oai_err {
    unsigned status;
    const char *type, *code;
    char param[64];
    char msg[512];
} oai_err;
int oai_errf(oai_err *e, unsigned status, const char *code, const char *param, const char *fmt,
             ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
enum MHD_Result oai_error_send(struct MHD_Connection *c, const oai_err *e);

/* ---- http.c ---- */
struct MHD_Daemon *http_start(srv *s, weft_err *err);
/* Queues body (copied) with a content type; extra header pair optional (NULL). */
enum MHD_Result http_send(struct MHD_Connection *c, unsigned status, const char *ctype,
                          const char *body, size_t len, const char *hname, const char *hval);
enum MHD_Result http_send_json(struct MHD_Connection *c, unsigned status, json_t *obj);

/* ---- auth.c ---- */
/* Whether the request may pass (true when no key is configured). */
bool auth_ok(const srv *s, struct MHD_Connection *c);

/* ---- utf8 / JSON helpers (oai_util.c) ---- */
/* A JSON string from bytes that may hold invalid UTF-8 (replaced by U+FFFD); NULL on OOM. */
json_t *oai_string(const char *s, size_t n);

/* ---- gen.c: one generation request from submit to the last event ---- */
typedef struct strbuf {
    char *s;
    size_t n, cap;
} strbuf;
int strbuf_add(strbuf *b, const char *s, size_t n); /* 0, or -1 on OOM */

typedef enum gen_status {
    GEN_RUNNING = 0,
    GEN_DONE,         /* finished: finish_reason set */
    GEN_DISCONNECTED, /* the client went away */
    GEN_TIMEOUT,      /* no first token within the queue timeout */
    GEN_SHUTDOWN,     /* cancelled by the shutdown timeout */
    GEN_FAILED,       /* engine error or out of memory */
} gen_status;

typedef struct gen_job {
    srv *s;
    struct MHD_Connection *conn;
    int conn_fd;
    chan *ch;
    uint64_t id;
    bool chat, stream, include_usage;
    bool want_lp;
    int top_lp;
    int max_tokens;
    int32_t *prompt;
    int n_prompt;
    engine *eng; /* the worker the request was routed to */
    int worker;
    engine_request req;
    stop_matcher stop;
    tok_decoder dec;
    int end_token; /* template end-of-turn token, or -1 */
    char resp_id[48];
    long created; /* unix time of submission */
    /* progress */
    bool submitted, first_seen, counted_live;
    gen_status status;
    const char *finish_reason;
    int n_generated;
    double t_submit, t_first, t_last, queue_s;
    /* output since the last take (streaming) or in all (non-streaming) */
    strbuf text;
    size_t text_offset; /* bytes of completion text produced so far (logprobs text_offset) */
    json_t *lp;         /* completions: logprobs object; chat: content array; NULL if unwanted */
    /* streaming */
    strbuf out;         /* SSE bytes not yet handed to MHD */
    size_t out_off;
    bool sent_head, sent_tail;
    /* when the request was refused before completion */
    oai_err err;
} gen_job;

/* Parsed, validated sampling options shared by both endpoints. */
typedef struct oai_params {
    int max_tokens;        /* -1: endpoint default */
    weft_sampling sampling;
    const char *stops[STOP_MAX_STRINGS];
    int n_stops;
    bool stream, include_usage;
    bool want_lp;
    int top_lp;
    int priority;
    double deadline_ms;
    bool ignore_eos;
    int bench_output_tokens; /* bench-only extension (0 = none): stop after this many tokens,
                              * while the scheduler sees max_tokens as the cap (weft bench serve
                              * --nominal-max-tokens; docs/scheduling.md) */
    pred_features feat; /* the prompt's text features (length prediction) */
    bool has_feat;
} oai_params;

/* Computes p's prompt features from the prompt text (or the last chat message) when the server
 * predicts lengths; n_tokens is the prompt's length in tokens. */
void gen_prompt_features(const srv *s, const char *text, size_t len, int n_tokens,
                         oai_params *p);

/* Reads the fields both endpoints share from body (strings point into body). */
int oai_parse_common(srv *s, json_t *body, bool chat, oai_params *p, oai_err *e);

gen_job *gen_new(srv *s, struct MHD_Connection *c, bool chat);
/* Takes ownership of prompt (malloc'd). Checks lengths, queue room; submits. 0 or -1 (j->err). */
int gen_submit(gen_job *j, int32_t *prompt, int n_prompt, const oai_params *p);
/* Waits for and absorbs events until something new is in j->text / j->lp, or the status
 * leaves GEN_RUNNING. until_first: stop after the first token as well. */
void gen_pump(gen_job *j);
/* Ends the job (cancels the engine request if still live), records metrics, frees. */
void gen_free(gen_job *j);
/* OpenAI's usage object. */
json_t *gen_usage(const gen_job *j);
/* Builds the error for a job that ended in a failure status (timeout, shutdown, failure). */
void gen_status_error(gen_job *j);

/* ---- completions.c / chat.c ---- */
/* Handle the final call of a POST with its complete body. */
enum MHD_Result oai_completions(srv *s, struct MHD_Connection *c, const char *body, size_t n,
                                gen_job **job_out);
enum MHD_Result oai_chat(srv *s, struct MHD_Connection *c, const char *body, size_t n,
                         gen_job **job_out);
/* Shared tail: runs a submitted job and queues the response (non-streaming JSON or SSE). */
enum MHD_Result oai_respond(gen_job *j, gen_job **job_out);
/* Response bodies (take and reset j->text / j->lp where they report them). */
json_t *cmpl_final(gen_job *j);
json_t *cmpl_chunk(gen_job *j, const char *finish);
json_t *chat_final(gen_job *j);
json_t *chat_chunk(gen_job *j, bool role, const char *finish);
/* {"id","object","created","model"} of a response or chunk. */
json_t *oai_envelope(const gen_job *j, const char *object);
/* Parses the body as a JSON object (400 for malformed JSON / invalid UTF-8 / not an object). */
json_t *oai_parse_body(const char *body, size_t n, oai_err *e);

/* ---- workers.c: one or more engines, and the offload routing between them ---- */
/* Loads the predictors and starts cfg->workers engines on s->model; -1 with err. */
int workers_start(srv *s, weft_err *err);
/* Stops and frees every engine and predictor. */
void workers_stop(srv *s);
/* The worker for r (sched_offload_pick on each worker's load and the router's prediction of
 * r's length); counts the decision. */
int workers_route(srv *s, const engine_request *r, const pred_features *f);
/* Sum of the workers' gauges (running, waiting, KV) for /metrics; zero before start. */
void workers_stats_sum(srv *s, engine_stats *out);
/* The scheduling metrics (policy, per-worker queue time, deadlines, predictions, scheduler time
 * per step, routing) in Prometheus text format, malloc'd; NULL on allocation failure. */
char *workers_metrics_render(srv *s);

/* ---- sse.c ---- */
enum MHD_Result sse_respond(gen_job *j);

/* The text produced since the last take (as a JSON string), and the logprobs gathered since
 * the last take (completions' or chat's shape, per j->chat; a fresh collector replaces them). */
json_t *gen_take_text(gen_job *j);
json_t *gen_take_lp(gen_job *j);

#endif
