/* sched_internal.h — what the policy files share: the configuration every policy object keeps
 * as its state, and the small helpers for turning predicted tokens into time and for aging. */
#ifndef WEFT_SCHED_INTERNAL_H
#define WEFT_SCHED_INTERNAL_H

#include <stddef.h>

#include "weft/sched.h"

/* A policy object with its configuration as state (freed together). */
sched_policy *sched_alloc(const char *name, const sched_config *c);
const sched_config *sched_cfg(const sched_policy *p);

/* Seconds one output token takes: the engine's measured step time, else the configured guess. */
double sched_tpot(const sched_config *c, const sched_info *r);
/* Rank with aging: work (>= 0) shrinks linearly with the wait and is 0 at aging_s; past the
 * bound the rank is -(wait), so overdue requests run first, oldest first. */
double sched_aged(const sched_config *c, double work, const sched_info *r, double now_s);
/* A request's predicted total output once it has run past `total`: its p90 while still under
 * it, else twice what it generated (demotion without starvation: docs/scheduling.md). */
double sched_past_prediction(const sched_info *r, double total);
/* Victim among n running: the one with the largest key (ties: the latest arrival). */
typedef double (*sched_key_fn)(const sched_policy *p, const sched_info *r, double now_s);
int sched_victim_by(const sched_policy *p, const sched_info *running, int n, double now_s,
                    sched_key_fn key);

/* Constructors of the individual policies. */
sched_policy *sched_priority_new(const sched_config *c);
sched_policy *sched_spf_new(const sched_config *c);
sched_policy *sched_oracle_new(const sched_config *c);
sched_policy *sched_laxity_new(const sched_config *c);
sched_policy *sched_rtlm_new(const sched_config *c);

#endif
