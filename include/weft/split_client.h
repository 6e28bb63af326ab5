/* split_client.h — the client side of split inference (after SplitLLM): this device runs the
 * embedding and the first p layers of the model, sends hidden states to a weft server
 * (`weft serve --split-port`), which runs the remaining layers and the head inside its fused
 * batch and sends back each generated token. Protocol: docs/split-protocol.md.
 *   split_local     the partial model: embedding + layers [0, p) with their own KV cache (only
 *                   those layers' mmap'd weights are ever read)
 *   split_generate  one request over one connection: HELLO/ACCEPT, one round trip per prefill
 *                   chunk and per generated token, tokens streamed through a callback. */
#ifndef WEFT_SPLIT_CLIENT_H
#define WEFT_SPLIT_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/error.h"
#include "weft/model.h"
#include "weft/sampler.h"

typedef struct split_local split_local;

/* Layers [0, p) of m (0 <= p <= n_layers), positions up to max_ctx, n_threads kernel threads
 * (0 = all cores). */
split_local *split_local_new(const weft_model *m, int p, int max_ctx, int max_chunk,
                             int n_threads, weft_err *err);
void split_local_free(split_local *c);
/* Computes the next n positions (n <= max_chunk): hidden_out receives [n][dim] states after
 * layer p - 1 (the embeddings when p = 0). Returns 0 or -1. */
int split_local_run(split_local *c, const int32_t *tokens, int n, float *hidden_out,
                    weft_err *err);
int split_local_pos(const split_local *c); /* positions computed so far */

typedef struct split_client_opts {
    const char *host;
    int port;
    const char *api_key;  /* NULL or "" = none */
    int split;            /* layers to run here, 0..n_layers, or -1 = the server plans (auto) */
    bool f16;             /* hidden states as F16 on the wire (default F32) */
    int max_tokens;
    weft_sampling sampling; /* repeat_penalty must be 1 (the server never sees the prompt) */
    int chunk;            /* prefill rows per frame (default 64, at most 256) */
    int n_threads;        /* 0 = all cores */
    double timeout_s;     /* per receive (default 60) */
    /* For auto: the end-to-end SLA (0 = none), this client's measured costs (weft split
     * profile; 0 = unknown) and its link. */
    double sla_s;
    double layer_prefill_s, layer_decode_s, head_prefill_s, head_decode_s;
    int client_max_layers; /* 0 = all */
    double link_bw_Bps, link_rtt_s;
} split_client_opts;

void split_client_opts_init(split_client_opts *o); /* greedy, chunk 64, F32, split -1 */

/* Called for every generated token; return nonzero to stop early (the connection is closed,
 * which cancels the request on the server). */
typedef int (*split_token_fn)(void *ctx, int token);

typedef struct split_result {
    int split_layer;    /* the p the server accepted */
    int n_generated;
    int finish;         /* engine_finish of the server (0 length, 1 stop, 2 context, 3, 4) */
    double ttft_s, total_s;
    double client_compute_s; /* time in split_local_run */
    uint64_t bytes_up, bytes_down;
} split_result;

/* Generates from prompt (token ids, n_prompt >= 1) with the model split at o->split. Returns 0,
 * or -1 with err (the server's ERROR frame message when it refused). */
int split_generate(const weft_model *m, const split_client_opts *o, const int32_t *prompt,
                   int n_prompt, split_token_fn on_token, void *ctx, split_result *res,
                   weft_err *err);

#endif
