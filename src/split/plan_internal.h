/* plan_internal.h — what the three planners (plan.c, plan_greedy.c, plan_exhaustive.c) share:
 * the option space of a plan (every request's cost at every split point, which points are
 * eligible, and their KV use in DP units), so the DP, the greedy baselines and the exhaustive
 * search see exactly the same discretised problem. */
#ifndef WEFT_SPLIT_PLAN_INTERNAL_H
#define WEFT_SPLIT_PLAN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "weft/split_plan.h"

#define SPLIT_DEFAULT_KV_UNITS 2000

typedef struct split_space {
    int n, L1;               /* requests, options per request (L + 1) */
    split_choice *c;         /* [n * L1]: request i at p = c[i * L1 + p] */
    int32_t *u;              /* [n * L1]: KV units of each option (0 when unlimited) */
    uint8_t *ok;             /* [n * L1]: 1 = eligible (allowed and meets the SLA, or the forced
                                lowest-latency point of a request that can meet it nowhere) */
    uint8_t *can_meet;       /* [n]: some allowed p meets the SLA */
    int U;                   /* KV budget in units; 0 = unlimited (every u is 0) */
    double unit_byte_s;      /* size of one unit (0 when unlimited) */
    /* Shared client devices (split_client_device): nd devices, each request's device dev[i]
     * (0 = none), its options' client KV memory-time in that device's units uc[], and per device
     * and placement depth q: the units left for KV, B[d * L1 + q] (-1: the weights alone do not
     * fit), and the bytes left for one request's KV peak, room[d * L1 + q]. */
    int nd, Uc;              /* devices; units of each device's budget (0 when nd = 0) */
    int *dev;                /* [n] */
    int32_t *uc;             /* [n * L1] */
    int32_t *B;              /* [nd * L1] */
    double *room;            /* [nd * L1] */
} split_space;

#define SPLIT_DEFAULT_DEVICE_UNITS 1000
#define SPLIT_DEFAULT_DEVICE_UNITS_2D 100 /* when the server's KV is limited too */

/* Does request i fit its device's peak at placement depth q with split point p? */
int split_space_peak_ok(const split_space *sp, int i, int q, int p);
/* Do device d's constraints hold for the plan p[] (q = deepest p of its requests)? */
int split_space_device_fits(const split_space *sp, int d, const int *p);

/* The fused step's fixed part of one layer (server seconds per step) and the sequences per
 * step it is shared by (split_server.step_fixed_layer_s, or derived from the batched costs);
 * fixed = 0 when there is none or the batch is <= 1. */
void split_server_step_fixed(const split_server *s, int p, double *fixed, double *batch);
/* The batch a token of a request at split point p runs in (batch, or batch_split at 0 < p < L). */
double split_server_batch(const split_server *s, int p);
/* The plan's true server work (split_plan_work) for the options p[i] of the space. */
double split_space_plan_work(const split_space *sp, const split_server *s, const int *p,
                             double *attributed);

/* The value a planner minimises for request i's option o = i * L1 + p, per request: its
 * server work alone (SPLIT_OBJECTIVE_WORK; the plan adds the fused step's coupling) or its
 * server KV memory-time (SPLIT_OBJECTIVE_KV). */
static inline double split_space_item(const split_space *sp, const split_server *s, size_t o) {
    return s->objective == SPLIT_OBJECTIVE_KV ? sp->c[o].kv_byte_s : sp->c[o].server_work_s;
}
/* The plan's objective for the options p[i]: split_space_plan_work, or the plan's server KV
 * memory-time under SPLIT_OBJECTIVE_KV. */
double split_space_plan_objective(const split_space *sp, const split_server *s, const int *p);

int split_space_build(const split_request *r, int n, const split_server *s, split_space *sp,
                      weft_err *err);
void split_space_free(split_space *sp);
/* The option of request i that uses the fewest server KV units (ties: least work); on a shared
 * client device, its eligible option with the fewest client layers. */
int split_space_min_units(const split_space *sp, int i);
/* Copies the chosen options (p[i]) to out and fills sum. */
void split_space_emit(const split_space *sp, const split_server *s, const int *p,
                      split_choice *out, split_plan_summary *sum);
/* Fills sum's request counts, SLA attainment and output tokens (from the requests). */
void split_space_counts(const split_request *r, int n, const split_choice *out,
                        split_plan_summary *sum);
/* Fallback when nothing fits the budget: every request at its fewest-units option. */
void split_space_fallback(const split_space *sp, int *p);

#endif
