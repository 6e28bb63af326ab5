/* sched.h — the scheduling policy the engine consults every step: in which order waiting
 * requests are admitted and which running sequence to preempt when the KV cache is full.
 * Policies are small objects behind this interface so benchmarks can swap them on the same
 * workload; FCFS is the first (sched_fcfs.c). The engine owns the queues; a policy only ranks.
 * The uncertainty-aware policies (predicted-shortest-first, deadline/laxity) plug in here. */
#ifndef WEFT_SCHED_H
#define WEFT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

/* What a policy may look at for one request (waiting or running). */
typedef struct sched_info {
    uint64_t id;
    double arrival_s;      /* engine clock, seconds */
    int n_prompt;
    int n_generated;
    int max_tokens;
    int priority;          /* request's own priority; higher is more urgent */
    double deadline_s;     /* absolute, engine clock; 0 = none */
    int predicted_tokens;  /* predicted output length; 0 = unknown */
    int n_preempted;       /* times this request was preempted */
    /* additions for the uncertainty-aware policies (sched_policies.c) */
    float predicted_p50;   /* central estimate of the output length, tokens; 0 = unknown */
    float predicted_p90;   /* upper quantile, tokens (>= p50); 0 = unknown */
    int true_tokens;       /* the real output length: benchmarks only (oracle); 0 = unknown */
    int running;           /* 1: in the running batch (pick_victim), 0: waiting */
    double step_s;         /* the engine's recent mean step time (EWMA), seconds; 0 = unknown */
    /* additions for preemptive scheduling (sched_pause.c) */
    int steps_run;         /* running: steps since it was (re)admitted */
    int pausable;          /* running: the engine could pause it now (decoding, not split) */
    /* the hard wait bound (sched_bound.c) */
    double waited_s;       /* seconds it has spent waiting so far: queued before its first
                            * admission, plus paused or preempted since (the engine fills it
                            * where the bound is checked; 0 = unknown) */
} sched_info;

typedef struct sched_policy sched_policy;
struct sched_policy {
    const char *name;
    /* Key ordering the waiting queue: lower runs first (ties by arrival). */
    double (*rank)(const sched_policy *p, const sched_info *r, double now_s);
    /* Index of the running sequence to preempt when the cache cannot hold the next step, among
     * n candidates (n >= 1). */
    int (*pick_victim)(const sched_policy *p, const sched_info *running, int n, double now_s);
    void (*destroy)(sched_policy *p);
    void *state;
    /* Optional (NULL = never): true when a waiting request should be dropped now, because it can
     * no longer meet its deadline and the policy was configured to drop such requests. The
     * engine then finishes it with ENGINE_FINISH_DEADLINE. */
    bool (*should_drop)(const sched_policy *p, const sched_info *r, double now_s);
    /* Optional (NULL = the policy never pauses): the request's remaining work in output tokens
     * (prefill counted by prefill_weight when it is waiting), on which a preemptive policy
     * (spf, rtlm, oracle) compares a waiting request with the running ones (sched_pick_pause). */
    double (*remaining)(const sched_policy *p, const sched_info *r, double now_s);
    /* Hard bound on any request's total wait (sched_info.waited_s), seconds; 0 = none (fcfs, the
     * non-preemptive baseline). Every policy made by sched_policy_new with a configuration sets
     * it to aging_s; the engine enforces it (sched_overdue, sched_pick_overdue_victim). */
    double wait_bound_s;
};

/* First come, first served: rank by arrival; the victim is the latest arrival (vLLM's rule). */
sched_policy *sched_fcfs_new(void);
void sched_policy_free(sched_policy *p);

/* ---- the policies of weft's uncertainty-aware scheduling (docs/scheduling.md) ---- */

/* What laxity and rtlm do with a request that can no longer make its deadline (its deadline
 * minus now is less than its predicted remaining time): `--late-policy keep|demote|drop`. */
typedef enum sched_late {
    SCHED_LATE_KEEP = 0, /* default: it keeps its normal order (rtlm: by its work, as if it had
                          * no deadline; laxity: by its (negative) laxity) and still ages */
    SCHED_LATE_DEMOTE,   /* moved behind every request that can still make it (still ages) */
    SCHED_LATE_DROP,     /* a waiting one is finished with ENGINE_FINISH_DEADLINE */
} sched_late;

/* "keep", "demote", "drop"; NULL for an unknown value. */
const char *sched_late_name(sched_late l);
/* 0 and *out set for "keep", "demote" or "drop"; -1 otherwise. */
int sched_late_parse(const char *s, sched_late *out);

/* How rtlm ranks and preempts (`--rtlm-rank p90|gittins`, docs/scheduling.md). */
typedef enum sched_rtlm_rank {
    SCHED_RTLM_P90 = 0, /* predicted work, p90 when the prediction is wide, demotion past p90
                         * (sched_rtlm_remaining): the earlier rules */
    SCHED_RTLM_GITTINS, /* default (chosen on the development workload, docs/scheduling.md): the
                         * Gittins index of the lognormal length distribution given by the
                         * prediction's p50 and p90, truncated at max_tokens (sched_gittins.c) */
} sched_rtlm_rank;

/* "p90", "gittins"; NULL for an unknown value. */
const char *sched_rtlm_rank_name(sched_rtlm_rank r);
/* 0 and *out set for "p90" or "gittins"; -1 otherwise. */
int sched_rtlm_rank_parse(const char *s, sched_rtlm_rank *out);

/* What sched_pick_pause compares the waiting request's remaining work with
 * (`--preempt-compare auto|benefit|victim`, docs/scheduling.md). */
typedef enum sched_preempt_compare {
    SCHED_PREEMPT_AUTO = 0, /* default: victim for rtlm with the Gittins rank, else benefit */
    SCHED_PREEMPT_BENEFIT,  /* every running request's (the first to end frees a slot anyway) */
    SCHED_PREEMPT_VICTIM,   /* the victim's: the running batch holds the best-ranked requests
                             * (Gittins' rule on k slots: serve the k highest indices) */
} sched_preempt_compare;

/* "auto", "benefit", "victim"; NULL for an unknown value. */
const char *sched_preempt_compare_name(sched_preempt_compare c);
/* 0 and *out set for a known name; -1 otherwise. */
int sched_preempt_compare_parse(const char *s, sched_preempt_compare *out);

/* Knobs shared by the policies; sched_config_defaults gives the documented defaults. */
typedef struct sched_config {
    double aging_s;         /* spf/rtlm/oracle: a request's rank falls linearly with its wait and
                             * reaches the head of the queue after aging_s (default 20); every
                             * policy but fcfs: the hard bound on a request's total wait
                             * (sched_policy.wait_bound_s) */
    double tpot_s;          /* laxity/rtlm: seconds per output token under load, to turn
                             * predicted tokens into time, used until the engine has measured its
                             * step time (sched_info.step_s) (default 0.05) */
    sched_late late_policy; /* laxity/rtlm: a request that can no longer make its deadline
                             * (default SCHED_LATE_KEEP) */
    double wide_ratio;      /* rtlm: a prediction is "wide" when p90 >= wide_ratio * p50; wide
                             * ones are ranked on p90 (default 2) */
    double prefill_weight;  /* spf/rtlm/oracle: a prompt token counts as this many output tokens
                             * of work (default 0.02: prefill is batched and cheap) */
    /* preemption (spf/rtlm/oracle; sched_pick_pause): when the running batch is full, a waiting
     * request pauses the running sequence with the most remaining work if every running
     * sequence has more than preempt_ratio x its own remaining work (default 2; 0 = never
     * pause: non-preemptive), and the paused one has run at least preempt_min_steps steps since
     * its (re)admission (default 8) and is younger than aging_s (an old request is never
     * displaced). */
    double preempt_ratio;
    int preempt_min_steps;
    /* which remaining work the newcomer is compared with (default SCHED_PREEMPT_AUTO) */
    sched_preempt_compare preempt_compare;
    /* rtlm's ranking and preemption (default SCHED_RTLM_GITTINS) */
    sched_rtlm_rank rtlm_rank;
    /* rtlm gittins: the lognormal's sigma is ln(p90/p50)/1.2816 (at least
     * SCHED_GITTINS_SIGMA_FLOOR) times this factor (default 1; > 1 trusts the predictions less) */
    double gittins_sigma_scale;
} sched_config;

void sched_config_defaults(sched_config *c);

/* Policies by name: fcfs, priority, spf, laxity, rtlm, oracle. NULL for an unknown name (or out
 * of memory); c NULL = defaults. */
sched_policy *sched_policy_new(const char *name, const sched_config *c);
/* The names sched_policy_new accepts, comma-separated, for usage lines and errors. */
const char *sched_policy_names(void);

/* Predicted remaining output tokens of r for ranking: rtlm's rule (p90 when the prediction is
 * wide, else p50; max_tokens when nothing is predicted), minus what it has generated. Past that
 * estimate the p90 counts; a request that ran past its p90 is "demoted": its total is taken as
 * twice what it generated (at most max_tokens), so it waits behind shorter work without
 * starving (assuming max_tokens starved every mispredicted request until the aging bound). */
double sched_rtlm_remaining(const sched_config *c, const sched_info *r);
/* True when r ran past its upper prediction (demotion). */
bool sched_demoted(const sched_info *r);

/* ---- the Gittins index of a predicted length distribution (sched_gittins.c) ---- */

/* The lognormal's sigma is never below this before scaling (p90 == p50 is not certainty). */
#define SCHED_GITTINS_SIGMA_FLOOR 0.1

/* An immutable table (built once, ~a few ms; owned by its creator, e.g. the rtlm policy) of the
 * scale-free part of the index over sigma in [0.05, 4] and attained/p50 in [1e-3, 4096]. */
typedef struct sched_gittins sched_gittins;
sched_gittins *sched_gittins_new(void); /* NULL when out of memory */
void sched_gittins_free(sched_gittins *g);
/* sigma of the lognormal with median p50 whose 0.9 quantile is p90: ln(p90/p50)/1.2816, at least
 * SCHED_GITTINS_SIGMA_FLOOR, times scale (<= 0: 1), clamped to the table's [0.05, 4]. */
double sched_gittins_sigma(double p50, double p90, double scale);
/* The Gittins index per token, in (0, 1], of a request that generated `attained` tokens and
 * whose output length is ceil(X), X lognormal(ln p50, sigma), truncated at cap (<= 0: none):
 *   max over D >= 1 of P(S <= a + D | S > a) / E[min(S - a, D) | S > a].
 * Higher = sooner; 1 = certain to end with its next token (attained = cap - 1); 1/G is the
 * request's "effective remaining tokens" (with sigma -> 0: p50 - attained + 1/2, SRPT). */
double sched_gittins_index(const sched_gittins *g, double p50, double sigma, int cap,
                           int attained);

/* ---- preemption: shortest remaining work first (sched_pause.c) ---- */

/* With the running batch full and w the best-ranked waiting request: the index among the n
 * running of the sequence to pause so that w can run, or -1 (p not preemptive, preempt_ratio 0,
 * no candidate, no benefit). A candidate is pausable, ran >= preempt_min_steps steps since its
 * admission and is younger than aging_s; the one with the most remaining work is chosen. With the
 * benefit comparison it is paused only if EVERY running request's remaining work exceeds
 * preempt_ratio x w's: otherwise w would get a slot (the first running request to end) sooner
 * than pausing is worth; with the victim comparison, if the chosen one's exceeds it (the batch
 * keeps the best-ranked requests). Either way the ratio is a hysteresis: two requests of similar
 * size never swap back and forth. */
int sched_pick_pause(const sched_policy *p, const sched_info *running, int n, const sched_info *w,
                     double now_s);

/* ---- the hard wait bound (sched_bound.c) ---- */

/* The wait (sched_info.waited_s) from which r is overdue under p: the bound minus a guard of
 * 5% of it plus two of the engine's recent steps (r->step_s), so that an overdue request is
 * admitted before its wait reaches the bound. 0 when p has no bound. */
double sched_overdue_at(const sched_policy *p, const sched_info *r);
/* True when p has a wait bound and the waiting request r has waited past sched_overdue_at: the
 * engine then ranks it ahead of everything (the longest wait first) and, with the running batch
 * full, pauses a running request for it (sched_pick_overdue_victim). */
bool sched_overdue(const sched_policy *p, const sched_info *r);
/* The index among the n running of the sequence to pause so that an overdue request can run, or
 * -1: the policy's own victim (pick_victim) among those that are pausable, ran at least one
 * step since their admission and are themselves at least one guard away from being overdue (so
 * a paused victim cannot at once displace another). The ratio and minimum run of
 * sched_pick_pause do not apply: the bound comes first. The bound therefore holds as long as
 * the overdue requests do not by themselves fill the running batch (not under sustained
 * overload) and in FUSED mode (static batches are never paused). */
int sched_pick_overdue_victim(const sched_policy *p, const sched_info *running, int n,
                              double now_s);

/* ---- strategic offloading (sched_offload.c) ---- */

/* What the offload policy knows about one worker (an engine with its own threads and cache). */
typedef struct sched_worker_load {
    int running, waiting, max_running;
    double step_s;           /* its recent step time; 0 = not measured yet (use step_s_guess) */
    double step_s_guess;     /* its configured/expected step time before any measurement */
    double waiting_tokens;   /* predicted output tokens of everything waiting */
    double running_left_tokens; /* predicted output tokens the running sequences still need */
} sched_worker_load;

/* Predicted seconds until a request submitted now to w starts (its queueing delay): zero while w
 * has a free running slot and nobody waits, else the predicted work in front of it spread over
 * w's max_running slots, one token per slot per step. */
double sched_offload_delay(const sched_worker_load *w);
/* Predicted completion (seconds from now) of a request of pred_tokens output tokens on w. */
double sched_offload_completion(const sched_worker_load *w, double pred_tokens);
/* The worker for a request with a deadline of deadline_rel_s seconds (0 = none) and pred_tokens
 * predicted output tokens: worker 0 (the primary) unless its predicted completion would miss the
 * deadline and a secondary's would not, in which case the first such secondary. */
int sched_offload_pick(const sched_worker_load *w, int n, double deadline_rel_s,
                       double pred_tokens);

/* ---- length grouping for batch-at-a-time modes (sched_group.c) ---- */

/* Chooses a batch of min(size, n) among n waiting requests in policy order whose predicted
 * output lengths are pred[0..n) (tokens; <= 0 = unknown): index 0 (the queue head) always, then
 * those whose prediction is closest to the head's on a log scale (unknown ones last; ties in
 * queue order). Writes the chosen indices ascending to chosen[] and returns their count. Without
 * a prediction for the head it returns the first min(size, n), as plain admission would. */
int sched_group_by_length(const float *pred, int n, int size, int *chosen);

#endif
