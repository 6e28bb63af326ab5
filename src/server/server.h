/* server.h — `weft serve`: an OpenAI-compatible HTTP server in front of the fusion engine.
 * srv_config holds every option (filled by config.c from flags, environment and a config
 * file); srv_run loads the model, serves until SIGTERM/SIGINT and returns the exit code. */
#ifndef WEFT_SERVER_H
#define WEFT_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct srv_config {
    char model[4096];
    char model_name[256];      /* "" = the model file's base name */
    char host[256];
    int port;                  /* 0 = any free port */
    char api_key[512];         /* "" = no auth */
    int max_queue;             /* waiting requests before 429 */
    int64_t kv_cache_tokens;   /* 0 = use kv_cache_bytes; both 0 = engine default */
    int64_t kv_cache_bytes;
    bool kv_paged;
    int kv_type;               /* --kv-type: a kv_dtype (default KV_F16) */
    bool prefix_sharing;
    int ctx;                   /* 0 = the model's trained context */
    int max_tokens_cap;        /* 0 = none; a larger max_tokens is lowered to it */
    int queue_timeout_ms;      /* 0 = none */
    int64_t max_body_bytes;
    int threads;               /* 0 = all cores */
    int tp;                    /* tensor-parallel MPI ranks, 1 = none */
    char chat_template[16];    /* "" = detect */
    int shutdown_timeout_s;
    int max_connections;
    int connection_timeout_s;  /* idle / partial request timeout */
    /* scheduling (docs/scheduling.md) */
    char policy[16];           /* fcfs|priority|spf|laxity|rtlm (default fcfs) */
    int aging_s;               /* hard wait bound (all but fcfs) and spf/rtlm aging, s (default 20) */
    bool laxity_drop;          /* the same as late_policy "drop" (an older flag) */
    char late_policy[8];       /* laxity/rtlm, a late request: keep|demote|drop (default keep) */
    char rtlm_rank[8];         /* rtlm's order: gittins|p90 (default gittins) */
    char preempt_compare[8];   /* auto|benefit|victim (default auto) */
    bool consolidate;          /* admit by predicted KV footprint */
    int max_running;           /* primary worker's running batch (0 = engine default) */
    char predictor[4096];      /* "default", "none" or a parameter file */
    int workers;               /* engines (1 = no offloading; default 1) */
    int secondary_threads;     /* kernel threads of each secondary worker (default 1) */
    int secondary_max_running; /* running batch of each secondary worker (default 4) */
    int split_port;            /* split-inference clients (docs/split-protocol.md); -1 = off */
    char split_profile[4096];  /* the server's `weft split profile` JSON, for --split auto */
} srv_config;

/* Loads the configuration: defaults < config file < environment < flags. Returns 0, 1 when
 * --help was printed (exit 0), or -1 after printing an error (exit 2). */
int srv_config_load(srv_config *c, int argc, char **argv);
void srv_config_usage(FILE *out);

/* Serves until a signal asks to stop; returns the process exit code. */
int srv_run(const srv_config *c);
/* The same with a model already loaded (and sharded) by the caller, which the server then owns,
 * as tensor parallelism's leader does; tp (may be NULL) is closed after the engine stops, and
 * a failed rank turns /health unhealthy. */
struct weft_model;
struct tp_session;
int srv_run_loaded(const srv_config *c, struct weft_model *m, struct tp_session *tp);

#endif
