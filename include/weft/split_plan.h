/* split_plan.h — cost model and planner for collaborative split inference (after SplitLLM,
 * Mudvari, Jiang, Tassiulas 2024). A client runs the embedding and layers [0, p) of the model,
 * sends hidden states, and the server runs layers [p, L), the final norm and the head; p = 0 means
 * the client sends token ids only, p = L means the client runs everything (no server work).
 *
 * Cost model (split_cost_eval): per-layer prefill time per token and decode time per step on each
 * side (measured by `weft split profile`, see split_profile_measure), the link (bandwidth, RTT),
 * and the bytes of one hidden-state row give, for any p, a request's end-to-end latency, the
 * server's CPU-seconds of work, the client's, and the server KV memory it holds over its life.
 *
 * Planner: for a set of requests (or request types, each weighted by its count in the window)
 * choose every p to minimise the total server work subject to (1) every request's SLA, (2) the
 * server's capacity for the window: its compute (CPU-seconds) and its KV memory, which is shared —
 * a split request whose decode steps wait on a slow client or link holds its server-side KV
 * longer — and (3) the memory of every shared client device (split_client_device): the device
 * holds the weights of its deepest request's layers once (model placement) and each request's KV
 * beside them, so holding more layers leaves less room for a long request. (2) and (3) couple
 * the requests; the dynamic program (split_plan_dp) is exact over the budgets discretised to
 * `kv_units` / `device_units` units (each option's use rounded up, each budget down, so a plan
 * never exceeds the true budgets). docs/split.md ("Planner") states the formulation,
 * assumptions and complexity. With split_server.objective = SPLIT_OBJECTIVE_KV the planners
 * minimise the server's KV memory-time instead (a saturated KV-bound server, docs/split.md
 * "A KV-bound server").
 *
 * Everything here is pure computation on caller-owned data except split_profile_measure (runs
 * the model) and split_link_measure / split_link_sink_* (TCP). Stable API: additions only. */
#ifndef WEFT_SPLIT_PLAN_H
#define WEFT_SPLIT_PLAN_H

#include <stdint.h>
#include "weft/error.h"
#include "weft/model.h"

#define SPLIT_MAX_LAYERS 512    /* planner limit on L */
#define SPLIT_MAX_REQUESTS 4096 /* planner limit on one plan's requests */
#define SPLIT_MAX_DEVICES 4096 /* shared client devices in one plan */
#define SPLIT_EXHAUSTIVE_MAX 2000000 /* split_plan_exhaustive refuses more than this many plans */

/* Hidden-state wire encodings: bytes of one value. */
#define SPLIT_HIDDEN_F32 4
#define SPLIT_HIDDEN_F16 2

/* One device's compute cost for this model (seconds). A layer's cost is linear in the tokens of a
 * prefill chunk; a decode step is one token. "head" is what does not depend on the number of
 * layers: embedding lookup + final norm + classifier for the token(s) that need logits. */
typedef struct split_device_cost {
    double layer_prefill_s; /* per layer, per prompt token */
    double layer_decode_s;  /* per layer, per decode step (one token) */
    double head_prefill_s;  /* per prefill (embedding of the prompt + logits of its last token) */
    double head_decode_s;   /* per decode step (embedding + logits of one token) */
} split_device_cost;

/* One request (or a request type: `count` requests of the same shape in the window). */
typedef struct split_request {
    int prompt_tokens;            /* >= 1 */
    int output_tokens;            /* expected output length, >= 1 (length predictor p50/p90, or max_tokens) */
    double sla_s;                 /* end-to-end latency bound, seconds (> 0) */
    double count;                 /* weight: number of such requests in the window (1 for one request; > 0) */
    split_device_cost client;     /* the client device's costs (from its profile) */
    int client_max_layers;        /* most layers the client can hold; p > this is not allowed (L = any) */
    int client_can_head;          /* 1: the client holds the head too, so p = L (fully local) is allowed */
    double link_bw_Bps;           /* client <-> server bandwidth, bytes/s (> 0) */
    double link_rtt_s;            /* round-trip time, seconds (>= 0) */
    double hidden_bytes_per_token; /* one hidden-state row on the wire: dim * SPLIT_HIDDEN_F32|F16 */
    int device;                   /* 1..server.n_devices: the shared client device it runs on (its
                                     memory couples the requests there); 0 = a device of its own
                                     whose memory is not modelled */
} split_request;

/* A client device shared by several requests (a user's laptop or phone running every request
 * of that user). It holds the embedding and the weights of its first q layers once, q = the
 * deepest split among its requests (model placement), and each request running there keeps the
 * KV of its own p layers. Memory constraints, both from the cost model (docs/split.md):
 *   peak:      fixed + q * weight_per_layer + p_i * kv * (P_i + D_i) <= mem   for every i with p_i > 0
 *   aggregate: sum_i client KV memory-time_i <= (mem - fixed - q * weight_per_layer) * window
 * (nothing is held at q = 0). Deeper placement leaves less room for KV, so long requests can hold
 * fewer layers: the requests on one device compete for its memory. */
typedef struct split_client_device {
    double mem_bytes;                /* memory the device gives to the model (> 0) */
    double fixed_bytes;              /* held whenever q > 0: embedding table, buffers (>= 0) */
    double weight_bytes_per_layer;   /* one layer's weights (>= 0) */
    double kv_bytes_per_layer_token; /* the client's KV: one token in one layer (>= 0) */
} split_client_device;

/* The server: its own costs, the load it already carries, and its capacity for the window. */
typedef struct split_server {
    int n_layers;                 /* L, 1..SPLIT_MAX_LAYERS */
    split_device_cost cost;       /* per request as it runs in the fused batch */
    double slowdown;              /* >= 1: server-side latency multiplier at the planned load (queueing,
                                     sharing the batch); applies to latency, not to work */
    double window_s;              /* planning window, seconds (> 0) */
    double cores;                 /* CPU cores the server has (> 0) */
    double load;                  /* fraction of the cores already busy with other work, [0, 1) */
    double kv_bytes_per_layer_token; /* server KV bytes one token takes in one layer (K + V) */
    double kv_capacity_bytes;     /* KV memory available to these requests (<= 0: unlimited) */
    int kv_units;                 /* DP resolution: the window's KV budget (capacity * window_s,
                                     byte-seconds) is cut into this many units; 0 = default 2000 */
    const split_client_device *devices; /* shared client devices (caller-owned), may be NULL */
    int n_devices;                /* 0..SPLIT_MAX_DEVICES */
    split_device_cost cost_batched; /* per-sequence costs with batched_n sequences per decode
                                     step (weights read once per step for all of them) */
    int batched_n;                /* > 1: cost_batched is valid; 0 = decode costs as `cost` */
    double batch;                 /* expected sequences in each of this request's decode steps
                                     (>= 1; 0 = 1): the server's current load. Per-sequence decode
                                     costs are interpolated as a + f / batch through `cost` (1)
                                     and `cost_batched` (batched_n); the step lasts batch x that */
    double io_token_s;            /* server CPU-seconds per token streamed at p = 0 (its TOKEN
                                     frame through the network stack); work only */
    double io_frame_s;            /* server CPU-seconds per round trip at 0 < p < L (receiving a
                                     HIDDEN frame, sending the answer); work only */
    double io_token_batched_s;    /* io_token_s with batched_n streams at once (its per-step part
                                     is shared: interpolated like the decode costs); 0 = none */
    double load_step_s;           /* the server's current load as the time the requests already
                                     running add to each server step of this request (their part
                                     of the fused step), seconds; measured by the server
                                     (engine step time while busy); 0 = idle. Latency only */
    int device_units;             /* DP resolution of each device's KV memory-time budget
                                     (mem_bytes * window_s); 0 = default (1000, or 100 when the
                                     server's KV is limited too) */
    /* The fused step's fixed part (docs/split.md, "Server work: the fused step"): a decode step of
     * b sequences costs, per layer, fixed + marginal x b; the fixed part (the layer's weights read,
     * the thread pool's sync) is paid once per step by every step in which SOME sequence runs
     * that layer. A request's per-sequence cost (cost.layer_decode_s, or its interpolation at
     * `batch`) carries fixed / b of it; a plan saves the fixed part of layer l only when no
     * served request (and no running sequence, below) enters at or before l. */
    double step_fixed_layer_s;    /* fixed part of one layer's decode step, server seconds (>= 0);
                                     0 = derived from cost / cost_batched when batched_n > 1 and
                                     batch > 1, else none (the old separable model) */
    double step_batch;            /* sequences per step the per-sequence decode cost was measured
                                     at, to which step_fixed_layer_s is shared (>= 1 when
                                     step_fixed_layer_s > 0) */
    int batch_entry_known;        /* 1: batch_min_entry holds the running batch's lowest entry
                                     layer (`--split auto`); 0: no running batch is modelled */
    int batch_min_entry;          /* lowest entry layer among the sequences the server is already
                                     running (0: an ordinary request; n_layers: none) */
    double batch_split;           /* >= 1: the batch the tokens of a split request (0 < p < L) run
                                     in, measured apart from `batch` (which is then the batch of
                                     streamed tokens, p = 0): a split token waits for its client's
                                     round trip and joins whatever step runs when it arrives, or
                                     runs alone; 0 = `batch` for every p */
    int objective;                /* what the offline planners (split_plan_dp, split_plan_greedy,
                                     split_plan_exhaustive) minimise, split_objective:
                                     SPLIT_OBJECTIVE_WORK (0, the default): the server's work,
                                     split_plan_work (fused step); SPLIT_OBJECTIVE_KV: the server's
                                     KV memory-time, the sum of kv_byte_s (a saturated server whose
                                     resident requests are bounded by its KV memory: its work per
                                     request is proportional to it, docs/split.md "A KV-bound
                                     server"); the server's KV budget (kv_capacity_bytes) is then
                                     not a constraint (fits_kv = 1), every SLA and device
                                     constraint still is. Other planners ignore it */
} split_server;

/* split_server.objective */
typedef enum split_objective {
    SPLIT_OBJECTIVE_WORK = 0, /* minimise server work (split_plan_work) */
    SPLIT_OBJECTIVE_KV = 1,   /* minimise server KV memory-time (sum of kv_byte_s) */
} split_objective;

/* Everything the cost model says about one request at one split point. Totals include `count`
 * except latency_s, which is per request. */
typedef struct split_choice {
    int p;                  /* layers the client runs, 0..L */
    int allowed;            /* p is within the client's limits */
    int sla_ok;             /* latency_s <= sla_s */
    double latency_s;       /* end-to-end: prefill + every decode step, both sides + link */
    double ttft_s;          /* time to the first token */
    double server_work_s;   /* server CPU-seconds (count requests) */
    double client_work_s;   /* client CPU-seconds (count requests) */
    double comm_s;          /* time on the link per request (transfers + round trips) */
    double bytes_up;        /* client -> server per request */
    double bytes_down;      /* server -> client per request */
    double kv_byte_s;       /* server KV memory-time, byte-seconds (count requests) */
    double client_kv_byte_s;   /* client KV memory-time on its shared device (count requests; 0
                                  when the request has no device) */
    double client_kv_peak_bytes; /* client KV of one request at its end: p * kv * (P + D) */
    double server_fixed_layer_s; /* the fused step's fixed part of ONE layer over this request's
                                    share of the steps, CPU-seconds (count requests; 0 at p = L):
                                    cores x decode steps x step_fixed_layer_s / step_batch.
                                    server_work_s above assumes no sequence in the batch enters
                                    below p; when the lowest entry layer of the batch is m < p
                                    the request's steps still pay layers [m, p)'s fixed part:
                                    (p - m) x this more (split_plan_work). In a planner's output,
                                    server_work_s already includes it. */
} split_choice;

/* Evaluates r at split point p (0..s->n_layers). Returns 0, or -1 for invalid inputs. */
int split_cost_eval(const split_request *r, const split_server *s, int p, split_choice *out,
                    weft_err *err);
/* Validates a request against a server (same checks the planners make). */
int split_request_check(const split_request *r, const split_server *s, weft_err *err);

/* The server work of a set of requests served together at split points c[i].p (each from
 * split_cost_eval): sum over the served ones (p < L) of server_work_s + (p - m) x
 * server_fixed_layer_s, m the lowest served split point (and the running batch's
 * batch_min_entry when s->batch_entry_known). Not separable per request: the fixed part of the
 * layers [0, m) is saved only when every request splits at >= m. attributed[] (may be NULL)
 * receives each request's part. The planners minimise exactly this. */
double split_plan_work(const split_server *s, const split_choice *c, int n, double *attributed);

/* A plan's totals. */
typedef struct split_plan_summary {
    double server_work_s;     /* sum over requests */
    double client_work_s;
    double kv_byte_s;
    double kv_budget_byte_s;  /* kv_capacity_bytes * window_s (0 = unlimited) */
    double compute_capacity_s; /* window_s * cores * (1 - load) */
    double n_requests;        /* sum of counts */
    double n_sla_ok;          /* sum of counts of requests whose choice meets the SLA */
    double output_tokens;     /* sum of count * output_tokens */
    int fits_kv;              /* kv_byte_s <= budget (after the DP's rounding up) */
    int fits_compute;         /* server_work_s <= compute_capacity_s */
    int fits_devices;         /* every shared client device's memory constraints hold (after the
                                 DP's rounding up); 1 when there are no devices */
    double device_util_max;   /* highest client compute utilisation of a shared device: its
                                 requests' client work / window_s (reported, not constrained) */
    int feasible;             /* every request that can meet its SLA alone does, and all fit */
} split_plan_summary;

/* Planners. Each fills out[n] (one choice per request, in input order) and sum (may be NULL).
 * A request that cannot meet its SLA at any allowed p gets its lowest-latency p (sla_ok = 0).
 * When no plan fits the KV budget the planners return the plan with the least KV memory-time
 * among SLA-meeting choices (feasible = 0). All return 0, or -1 for invalid inputs. */

/* Exact: minimum total server work over all plans meeting every SLA, the (discretised) server KV
 * budget and every shared device's memory. O(n (L+1) U) time for requests without a device, plus
 * per device O(sum_q n_d (L+1) (B_d(q)+1) (U+1) + U^2) (docs/split.md); refused beyond 4e9
 * inner steps or a 512 MiB choice table. */
int split_plan_dp(const split_request *r, int n, const split_server *s, split_choice *out,
                  split_plan_summary *sum, weft_err *err);

/* Greedy baselines, in the order a practitioner would use. */
typedef enum split_greedy_order {
    SPLIT_GREEDY_ARRIVAL = 0,    /* requests in input order, each takes its least-server-work
                                    SLA-meeting p that fits what is left of the budget */
    SPLIT_GREEDY_EFFICIENCY = 1, /* same, visiting requests by decreasing server work saved per
                                    unit of resource (server KV units / budget + device memory /
                                    the device's memory): the knapsack ratio rule */
} split_greedy_order;
int split_plan_greedy(const split_request *r, int n, const split_server *s,
                      split_greedy_order order, split_choice *out, split_plan_summary *sum,
                      weft_err *err);

/* Exhaustive search over all (L+1)^n plans with the DP's discretisation (for tests on small
 * instances). -1 when there are more than SPLIT_EXHAUSTIVE_MAX plans. */
int split_plan_exhaustive(const split_request *r, int n, const split_server *s, split_choice *out,
                          split_plan_summary *sum, weft_err *err);

/* Every request at the same p (p = 0: no split, the server does everything). */
int split_plan_fixed(const split_request *r, int n, const split_server *s, int p,
                     split_choice *out, split_plan_summary *sum, weft_err *err);

/* One request joining a running server (`--split auto`): the least-server-work p that meets the
 * SLA and leaves kv_left_byte_s (< 0: unlimited) of KV memory-time; if none fits, the
 * lowest-KV SLA-meeting p; if none meets the SLA, the lowest-latency p. Returns p (>= 0) or -1.
 * With s->batch_entry_known the work is that of the fused step model: out->server_work_s is
 * this request's part with the running batch's lowest entry layer m (it pays the fixed part of
 * [m, p) when p > m), and the choice also counts what entering below m adds to the others'
 * steps ((m - p) x server_fixed_layer_s x (step_batch - 1)), so a split that only moves cost
 * onto the batch is not chosen. */
int split_choose_one(const split_request *r, const split_server *s, double kv_left_byte_s,
                     split_choice *out, weft_err *err);

/* The server's recent decode batch (the engine's stats.decode_batch_ewma, what `--split auto`
 * uses as split_server.batch): prev updated with a step that ran n_seqs sequences, a weight of
 * 1 / window_steps; prev <= 0 = no step yet (returns n_seqs); n_seqs <= 0 leaves prev as is.
 * Its mean is the step-weighted mean batch, tokens / steps, so that a + f / b per token sums to
 * the steps' measured cost (src/split/batch_est.c). */
double split_batch_ewma_update(double prev, int n_seqs, int window_steps);
/* The batch one kind of token runs in: an exponential mean over tokens of 1 / (sequences in
 * the token's step), prev updated with a step of n_seqs sequences of which k are of that kind
 * (each a sample, weight 1 / window_tokens); prev <= 0 = none yet; k <= 0 leaves prev as is.
 * 1 / the mean is the batch to charge that kind's tokens with: summed over them, fixed / b per
 * token is exactly their share of their steps' fixed parts (engine_stats.split_inv_batch_ewma,
 * stream_inv_batch_ewma). */
double split_inv_batch_ewma_update(double prev, int n_seqs, int k, int window_tokens);

/* ---- the counterfactual batch model (`--split auto`, src/split/batch_model.c) ----
 * A split token waits for its client's round trip and joins a step only if one is running (or
 * starting) when its hidden state arrives, else it runs alone; a streamed token (p = 0) is in
 * every step while its request runs. So the batch each token runs in is a function of every
 * request's split point, and a split that looks cheap against the batch measured now can be
 * what keeps the batch small. The model simulates the engine's steps for the requests the
 * server is running plus the new one at each candidate split point (docs/split.md, "The
 * counterfactual batch model"). */

/* The fused step, split into what a step pays once and what each of its tokens adds. */
typedef struct split_step_model {
    int n_layers;              /* L */
    double layer_fixed_s;      /* per layer, once per step in which some token runs it (CPU-s) */
    double layer_marginal_s;   /* per layer, per token that runs it */
    double head_fixed_s;       /* final norm + classifier: once per step */
    double head_marginal_s;    /* per token */
    double io_token_s;         /* network path per streamed token (p = 0), CPU-s */
    double io_frame_s;         /* network path per round trip (0 < p < L), CPU-s */
    double cores;              /* a step's wall time is its work / cores (> 0) */
} split_step_model;

/* Fills m from a server's costs: the step profile when s has step_fixed_layer_s (its head's fixed
 * part from cost / cost_batched), else the line through cost (1 sequence per step) and
 * cost_batched (batched_n). -1 when s has neither (no batch to model). */
int split_step_model_from_server(const split_server *s, split_step_model *m, weft_err *err);

/* One request on the server when another connects (from the engine, engine_split_snapshot). */
typedef struct split_active {
    int p;           /* 0: streams; 0 < p < L: split */
    int tokens_left; /* decode tokens it still produces (>= 0) */
    double cycle_s;  /* 0 < p: seconds from the end of the step that answered its token to its
                        next hidden state's arrival (client layers + round trip), >= 0 */
    int movable;     /* 1: planned by `--split auto`: at plan level its client's requests follow
                        the same plan as the new request's: where that one streams unsplit it
                        streams too, where that one splits it splits too */
    double start_s;  /* when it starts decoding, seconds from now (>= 0; 0 for a running one) */
    int recur_tokens; /* > 0: its client sends the next request like it as soon as it ends, with
                        this many decode tokens (a closed loop; split_batch_simulate needs a
                        horizon then); 0 = it does not recur */
    double recur_prefill_s; /* server CPU-seconds of each recurrence's prefill (simulation input;
                        split_choose_auto sets it from prompt_tokens and the world's p) */
    int prompt_tokens; /* its prompt (for its recurrences' prefill in split_choose_auto) */
} split_active;

#define SPLIT_SIM_MAX_SEQS 512
#define SPLIT_SIM_MAX_TOKENS 2000000 /* sum over steps of the requests scanned, one simulation */

/* Simulates the engine's decode steps for a[0..n) from time 0: a streaming request is in every
 * step from its start_s until its tokens are done; a split one's first hidden state arrives at
 * start_s + its cycle_s x phase (phase[i] in [0, 1], NULL = 0.5: the mean residual of a cycle
 * under way) and each next one cycle_s after the step that answered it ends; a step runs every
 * request whose state has arrived (one token each), pays the fixed part of the layers >= its
 * lowest entry and the head once, each token's marginal part and its network path, and lasts
 * its cost (the profile's server seconds; work = cores x that + the network path). A request
 * with recur_tokens starts again when it ends before the horizon (its recur_prefill_s added to
 * its work). With horizon_s > 0 the simulation stops at the first step that would start at or
 * after it; 0 = when every request that does not recur is done (at least one must not). Returns the total CPU-seconds; work[i]
 * (may be NULL) receives request i's share (the step's fixed part divided among its tokens),
 * inv_batch[i] (may be NULL) the sum over its tokens of 1 / their step's batch, end_s[i] (may be
 * NULL) when its last token's step ended, tokens[i] (may be NULL) the tokens it produced. -1 on
 * bad input or more than SPLIT_SIM_MAX_TOKENS to step. */
double split_batch_simulate(const split_step_model *m, const split_active *a, int n,
                            const double *phase, double horizon_s, double *work,
                            double *inv_batch, double *end_s, double *tokens, weft_err *err);

/* What split_choose_auto found for the chosen p (for the server's log). */
typedef struct split_auto_detail {
    double batch;            /* the new request's tokens' batch in the simulation (tokens /
                                sum of 1 / batch) */
    double world_work_s;     /* the objective at the chosen p: the request's cost plus what it
                                changes in the others' steps in the plan-level world (CPU-s) */
    double stream_world_s;   /* the same at p = 0 (where the movable split requests stream too);
                                -1 if p = 0 does not meet the SLA */
    int n_active, n_movable; /* requests seen, and how many of them movable */
} split_auto_detail;

/* `--split auto` with the counterfactual batch model: for every allowed p of r, simulates the
 * active requests plus r at p in the plan-level world and takes the p with the least objective
 * whose latency (split_cost_eval with r's simulated batch) meets the SLA; none: the
 * lowest-latency p. The objective is r's prefill plus its simulated decode work plus what it
 * changes in the others' steps: each other's work with r minus the same tokens at its per-token
 * cost without r (token for token: on a busy server r's steps push the others' later work past
 * any time horizon, so equal times would undercount r). The plan-level world: every client
 * keeps sending requests like its current one as soon as one ends (a closed loop: the active
 * requests with recur_tokens > 0, each recurrence with its prefill), and the others with r's
 * profile take r's choice: where r streams (p = 0) the movable requests stream too, where r
 * splits the movable streaming ones split too (at p, with r's cycle) and the split ones keep
 * their split; the others (not movable) stay as they are. The world with r runs until r and every request that
 * does not recur are done, the world without r as long. r's cycle at p is its client's
 * layers + the link's round trip. out->server_work_s is r's predicted part, the same increment
 * with the requests as they are (no recurrence, no plan-level change): summed over requests that
 * join one another the predictions add up to the total. s gives the prefill, the link and the
 * latency; m the steps. Returns p or -1. */
int split_choose_auto(const split_request *r, const split_server *s, const split_step_model *m,
                      const split_active *act, int n_act, split_choice *out,
                      split_auto_detail *detail, weft_err *err);
/* The same prediction at a given p (a client that fixed its split point): out as above, detail's
 * stream_world_s -1. Returns p or -1. */
int split_predict_auto(const split_request *r, const split_server *s, const split_step_model *m,
                       const split_active *act, int n_act, int p, split_choice *out,
                       split_auto_detail *detail, weft_err *err);

/* ---- measured costs: `weft split profile` ---- */

typedef struct split_profile {
    char device[96];         /* free text: CPU model, "x4 slowed", ... */
    char model[256];         /* model path it was measured on */
    int n_layers, dim, kv_dim; /* kv_dim = n_kv_heads * head_dim */
    int threads;
    int prompt_tokens;       /* prefill length measured */
    int decode_batch;        /* sequences per measured decode step (cost is per sequence) */
    int k_lo, k_hi;          /* the two truncated depths timed */
    split_device_cost cost;
    int has_link;            /* link fields valid */
    double link_bw_Bps, link_rtt_s;
    int batched_n;           /* > 1: cost_batched holds the per-sequence costs measured with this
                                many sequences per decode step (JSON "batched"); 0 = none */
    split_device_cost cost_batched;
    double io_token_s, io_frame_s; /* the server's network path (JSON "io"; 0 = not measured) */
    double io_token_batched_s;     /* io_token_s with batched_n streams (JSON "io.token_batched_s") */
    /* The decode step model (JSON "step"): a step of b sequences costs, per layer,
     * layer_fixed_s + layer_marginal_s x b, and the head head_fixed_s + head_marginal_s x b,
     * measured at step_lo and step_hi sequences (step_hi > step_lo >= 1). step_hi = 0: not
     * measured (an older file: derived from "cost" and "batched" when both exist). */
    int step_lo, step_hi;
    double step_layer_fixed_s, step_layer_marginal_s, step_head_fixed_s, step_head_marginal_s;
} split_profile;

/* Times the forward on m truncated to two depths and fits slope (per layer) and intercept
 * (head). prompt_tokens: prefill chunk to time; decode_batch: concurrent sequences per decode
 * step (1 = a lone client; the server's fused batch for the server's profile); reps >= 1. */
int split_profile_measure(const weft_model *m, int threads, int prompt_tokens, int decode_batch,
                          int reps, split_profile *out, weft_err *err);
/* The same, and when 1 <= batch_lo < decode_batch also times decode steps of batch_lo
 * sequences and fills the step model (step_lo = batch_lo, step_hi = decode_batch); batch_lo
 * = 0: only decode_batch. "cost" stays the per-sequence cost at decode_batch. */
int split_profile_measure2(const weft_model *m, int threads, int prompt_tokens, int decode_batch,
                           int batch_lo, int reps, split_profile *out, weft_err *err);
/* Fills p's step model from two per-sequence decode costs x_lo (at b_lo sequences per step)
 * and x_hi (at b_hi > b_lo): per step, fixed + marginal x b. A fixed or marginal part that
 * noise makes negative is clamped to 0 (the other one then takes the whole cost). */
void split_profile_step_fit(split_profile *p, int b_lo, const split_device_cost *x_lo, int b_hi,
                            const split_device_cost *x_hi);
/* Multiplies every cost by factor (> 0): "a client that is factor times slower". */
void split_profile_scale(split_profile *p, double factor);
/* Writes/reads the profile as a small JSON object (fields as in split_profile). */
int split_profile_write_json(const split_profile *p, const char *path, weft_err *err);
int split_profile_read_json(const char *path, split_profile *out, weft_err *err);

/* Link: RTT (median of small ping-pongs) and bandwidth (a bulk transfer) to a link sink. */
int split_link_measure(const char *host, int port, double *bw_Bps, double *rtt_s, weft_err *err);
/* A link sink: accepts connections on host:port and answers the measure protocol (an 8-byte
 * little-endian length n, then n bytes, answered by one byte). Runs until *stop becomes nonzero
 * (checked every 200 ms) or forever when stop is NULL. */
int split_link_sink_run(const char *host, int port, volatile int *stop, weft_err *err);

#endif
