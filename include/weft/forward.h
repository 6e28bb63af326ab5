/* forward.h — the LLaMA forward pass over a ragged batch.
 * One call computes any mix of sequences, each contributing one or many consecutive tokens at
 * its own positions (prefill chunks and decode tokens together), writes their keys/values into
 * the cache through each sequence's block table, and returns logits only for the tokens that
 * ask for them. The workspace is sized once at creation; a step allocates nothing. */
#ifndef WEFT_FORWARD_H
#define WEFT_FORWARD_H

#include <stdint.h>
#include "weft/error.h"
#include "weft/kernels.h"
#include "weft/kv.h"
#include "weft/model.h"

typedef struct weft_batch {
    int n_tokens;
    const int32_t *token;       /* [n_tokens] token ids */
    const int32_t *pos;         /* [n_tokens] position of each token in its sequence */
    const int32_t *seq;         /* [n_tokens] index into seqs */
    const uint8_t *want_logits; /* [n_tokens] 1 = return logits for this token */
    int n_seqs;
    const kv_seq *seqs;         /* [n_seqs] block tables */
} weft_batch;

typedef struct weft_forward weft_forward;

/* Tensor parallelism (src/tp/): when the model carries a communicator (m->comm), fwd_run calls
 * begin (the leader sends the batch to the other ranks), sums the attention-output and FFN-down
 * partials over ranks with allreduce, and gathers the vocabulary slices of the logits (into
 * logits on the leader; NULL there on followers). kv_move is called by the KV cache's owner
 * for every block copy so the other ranks can repeat it. Failures end the MPI job. */
typedef struct fwd_comm {
    void *ctx;
    void (*begin)(void *ctx, const kv_store *kv, int max_tokens, int max_ctx, const weft_batch *b);
    void (*allreduce)(void *ctx, float *x, size_t n);
    void (*gather_logits)(void *ctx, const float *part, int n_rows, float *logits);
    void (*kv_move)(void *ctx, int src_block, int dst_block, int n_rows);
} fwd_comm;

/* max_tokens: most tokens one batch may hold. max_ctx: longest sequence attention must span. */
weft_forward *fwd_new(const weft_model *m, tp_pool *pool, int max_tokens, int max_ctx,
                      weft_err *err);
/* A partial model: runs only layers [layer_lo, layer_hi) of m (the others are never read, so
 * their mmap'd pages are never faulted in); the KV store passed to fwd_run then holds
 * layer_hi - layer_lo layers (KV layer 0 = model layer layer_lo) and may be NULL when the range
 * is empty. The embedding is used only when layer_lo == 0, the final norm and head only when
 * layer_hi == n_layers. fwd_new is fwd_new_range(m, ..., 0, n_layers). */
weft_forward *fwd_new_range(const weft_model *m, tp_pool *pool, int max_tokens, int max_ctx,
                            int layer_lo, int layer_hi, weft_err *err);
void fwd_free(weft_forward *f);

/* Runs the batch. logits receives one row of vocab_size floats per token with want_logits set,
 * in batch order. Tokens of one sequence must appear in increasing position order, and every
 * position below a token's own must already be in the cache or earlier in this batch.
 * Returns 0, or -1 with a message for an invalid batch (nothing is written then). */
int fwd_run(weft_forward *f, kv_store *kv, const weft_batch *b, float *logits, weft_err *err);

/* Split inference (a zero fwd_split = every token enters at the embedding and leaves at the
 * head, as fwd_run). The first n_hidden tokens of the batch enter with a hidden state instead of
 * their embedding, at layer entry[t] (the layers before it ran elsewhere); entry must not
 * increase along the batch (later entrants first), so the tokens that have reached layer l are
 * always a suffix [first_active(l), n_tokens) and every matmul runs on that contiguous range,
 * no gather. Tokens past n_hidden enter at layer 0 from their embedding (token ids are only
 * read for them). hidden_out: the forward stops after its last layer and writes every token's
 * state [n_tokens][dim] there instead of logits (the client side of a split). */
typedef struct fwd_split {
    int n_hidden;
    const int32_t *entry;   /* [n_hidden] entry layer, in [layer_lo, layer_hi] */
    const float *hidden_in; /* [n_hidden][dim] */
    float *hidden_out;      /* NULL, or [n_tokens][dim] */
} fwd_split;
int fwd_run_split(weft_forward *f, kv_store *kv, const weft_batch *b, const fwd_split *sp,
                  float *logits, weft_err *err);

#endif
