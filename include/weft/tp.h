/* tp.h — tensor parallelism over MPI: one model sharded across the ranks of an MPI job.
 * Every rank holds a contiguous range of KV heads (with their query heads and KV cache), a
 * range of feed-forward units and a range of vocabulary rows (Megatron-style). Rank 0 (the
 * leader) runs the command (weft run / serve / bench engine) and, at each forward pass, sends
 * the batch and any KV cache block copies to the other ranks (followers), which run the same
 * forward pass on their shard; the attention output and FFN down projections are summed with
 * all-reduce, and the vocabulary slices of the logits gathered on the leader.
 * Names: the tp_pool thread pool (kernels.h) is unrelated; this module's names are
 * tp_plan_*, tp_shard_*, tp_session_*, tp_job_*. See docs/tensor-parallel.md. */
#ifndef WEFT_TP_H
#define WEFT_TP_H

#include <stdbool.h>
#include <stdint.h>

#include "weft/error.h"
#include "weft/model.h"

/* ---- shard plan (pure, no MPI) ---- */
typedef struct tp_plan {
    int rank, size;
    int kv0, kv1; /* KV heads [kv0, kv1) */
    int h0, h1;   /* query heads [h0, h1) = [kv0, kv1) * group */
    int f0, f1;   /* feed-forward units [f0, f1) of hidden_dim */
    int v0, v1;   /* vocabulary rows [v0, v1) of the output head */
} tp_plan;

/* Computes rank's plan for cfg over size ranks: contiguous, as even as possible (the first
 * ranks take one more when a count does not divide). KV heads are the unit of attention (a
 * rank takes whole groups of query heads); FFN ranges are whole quantization blocks of
 * ffn_block elements (32 for Q8_0/Q4_0, else 1); attn_block likewise for the output
 * projection's columns. Refuses (with the numbers) a model with fewer KV heads or FFN blocks
 * than ranks, or a head range that does not start on a quantization block. */
int tp_plan_make(const weft_config *cfg, int ffn_block, int attn_block, int rank, int size,
                 tp_plan *out, weft_err *err);
/* FNV-1a hash of every rank's plan (what the start-up handshake compares). */
uint64_t tp_plan_hash(const weft_config *cfg, int ffn_block, int attn_block, int size);

/* ---- sharding a loaded model (in place) ---- */
/* Cuts m down to plan p: row slices (wq, wk, wv, w_gate, w_up, output) become views into the
 * mapping; column slices (wo, w_down) are copied, this rank's part only, into memory the model
 * owns, and the mapped pages of the full tensors are released. cfg.n_heads, n_kv_heads and
 * hidden_dim become this rank's counts (dim, head_dim, vocab_size stay). */
int tp_shard_model(weft_model *m, const tp_plan *p, weft_err *err);
/* 64-bit hash of the model as loaded (before sharding): hyper-parameters, every tensor's type
 * and shape, the norms in full and 32-byte samples of each weight matrix every 1 MiB (at least
 * 8 per matrix). A different file, type, seed or shape changes it. */
uint64_t tp_model_hash(const weft_model *m);

/* ---- the MPI job ---- */
typedef struct tp_session tp_session;

bool tp_mpi_available(void); /* built with MPI */

/* Joins the MPI job (MPI_Init_thread) and checks it has exactly n ranks. */
tp_session *tp_session_open(int n, weft_err *err);
int tp_session_rank(const tp_session *s);
int tp_session_size(const tp_session *s);
/* Loads nothing itself: given this rank's load result (m NULL with load_err when it failed),
 * compares model hash and shard plan across all ranks (MPI_Allgather), then shards m and
 * attaches the communicator to it (m->comm). Every rank returns -1 if any rank failed or
 * disagrees; the leader's message says which rank and why. */
int tp_session_attach(tp_session *s, weft_model *m, const char *load_err, weft_err *err);
/* Followers: serve forward passes until the leader closes the session. threads: kernel
 * threads of this rank. Returns 0 on a clean shutdown. */
int tp_session_follow(tp_session *s, const weft_model *m, int threads, weft_err *err);
/* Leader: prints the communication statistics (stderr) and tells the followers to stop.
 * Every rank: MPI_Finalize. Frees s. */
void tp_session_close(tp_session *s);
/* A rank failed or stopped answering: true from then on (thread-safe), with its message. */
bool tp_session_failed(const tp_session *s, char *msg, size_t msg_size);
/* Seconds a collective may wait before the job is declared broken (default 60,
 * WEFT_TP_TIMEOUT_S overrides); grace: seconds the leader keeps running (e.g. so /health can
 * report the failure) before aborting the job (default 0, WEFT_TP_FAIL_GRACE_S). */
void tp_session_set_timeouts(tp_session *s, double timeout_s, double grace_s);

typedef struct tp_stats {
    uint64_t steps, allreduces;
    double forward_s; /* leader: sum over passes from the batch broadcast to the last collective */
    double allreduce_s; /* time inside all-reduce (transfer plus waiting for the slower rank) */
    double bcast_s, gather_s;
} tp_stats;
void tp_session_stats(const tp_session *s, tp_stats *out);

/* ---- what the commands call ---- */
typedef weft_model *(*tp_load_fn)(void *ctx, weft_err *err);
/* For a command given --tp n: n <= 1 just loads. Otherwise joins the job, loads on every rank,
 * runs the handshake and shards. On the leader returns 0 with *m and *s set (close s after
 * freeing nothing else: tp_job_end). On a follower serves until shutdown, and returns 1 (the
 * command should exit with *exit_code). -1 on error (message in err; the job is over). */
int tp_job_begin(int n, tp_load_fn load, void *load_ctx, int threads, tp_session **s,
                 weft_model **m, int *exit_code, weft_err *err);
/* Leader: closes the session (if any) — call after the engine using the model is freed. */
void tp_job_end(tp_session *s);

#endif
