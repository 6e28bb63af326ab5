/* sched_registry.c — the policies by name (`--policy fcfs|priority|spf|laxity|rtlm|oracle`), their
 * shared configuration and its defaults, and the helpers every policy uses (a policy object
 * that carries its configuration, token-to-time conversion, aging, victim choice). */
#include <stdlib.h>
#include <string.h>

#include "sched/sched_internal.h"

void sched_config_defaults(sched_config *c) {
    memset(c, 0, sizeof *c);
    c->aging_s = 20.0;
    c->tpot_s = 0.05;
    c->late_policy = SCHED_LATE_KEEP;
    c->wide_ratio = 2.0;
    c->prefill_weight = 0.02;
    c->preempt_ratio = 2.0;
    c->preempt_min_steps = 8;
    c->rtlm_rank = SCHED_RTLM_GITTINS;
    c->gittins_sigma_scale = 1.0;
}

static void cfg_destroy(sched_policy *p) {
    free(p->state);
    free(p);
}

sched_policy *sched_alloc(const char *name, const sched_config *c) {
    sched_policy *p = calloc(1, sizeof *p);
    sched_config *st = malloc(sizeof *st);
    if (!p || !st) {
        free(p);
        free(st);
        return NULL;
    }
    if (c)
        *st = *c;
    else
        sched_config_defaults(st);
    if (!(st->aging_s > 0)) st->aging_s = 20.0;
    if (!(st->tpot_s > 0)) st->tpot_s = 0.05;
    if (!(st->wide_ratio >= 1)) st->wide_ratio = 2.0;
    if (!(st->prefill_weight >= 0)) st->prefill_weight = 0;
    if (!(st->preempt_ratio >= 0)) st->preempt_ratio = 0;
    if (st->preempt_ratio > 0 && st->preempt_ratio < 1) st->preempt_ratio = 1;
    if (st->preempt_min_steps < 1) st->preempt_min_steps = 1;
    if (st->late_policy != SCHED_LATE_DEMOTE && st->late_policy != SCHED_LATE_DROP)
        st->late_policy = SCHED_LATE_KEEP;
    if (st->rtlm_rank != SCHED_RTLM_GITTINS) st->rtlm_rank = SCHED_RTLM_P90;
    if (st->preempt_compare != SCHED_PREEMPT_BENEFIT && st->preempt_compare != SCHED_PREEMPT_VICTIM)
        st->preempt_compare = SCHED_PREEMPT_AUTO;
    if (!(st->gittins_sigma_scale > 0)) st->gittins_sigma_scale = 1.0;
    p->name = name;
    p->wait_bound_s = st->aging_s;
    p->state = st;
    p->destroy = cfg_destroy;
    return p;
}

const sched_config *sched_cfg(const sched_policy *p) {
    return p->state;
}

double sched_tpot(const sched_config *c, const sched_info *r) {
    return r->step_s > 0 ? r->step_s : c->tpot_s;
}

double sched_aged(const sched_config *c, double work, const sched_info *r, double now_s) {
    double wait = now_s - r->arrival_s;
    if (wait < 0) wait = 0;
    if (wait >= c->aging_s) return -wait;
    if (work < 0) work = 0;
    return work * (1.0 - wait / c->aging_s);
}

int sched_victim_by(const sched_policy *p, const sched_info *running, int n, double now_s,
                    sched_key_fn key) {
    int v = 0;
    double kv = key(p, &running[0], now_s);
    for (int i = 1; i < n; i++) {
        double k = key(p, &running[i], now_s);
        if (k > kv || (k == kv && running[i].arrival_s >= running[v].arrival_s)) {
            v = i;
            kv = k;
        }
    }
    return v;
}

bool sched_demoted(const sched_info *r) {
    return r->predicted_p90 > 0 && (float)r->n_generated > r->predicted_p90;
}

double sched_past_prediction(const sched_info *r, double total) {
    if (r->n_generated < total) return total;
    if (r->predicted_p90 > r->n_generated) return r->predicted_p90;
    /* past every prediction: expect it to run as long again (lengths are heavy-tailed: the
     * longer a request has run, the longer it is likely still to run) */
    return 2.0 * r->n_generated;
}

double sched_rtlm_remaining(const sched_config *c, const sched_info *r) {
    double total;
    if (r->predicted_p50 <= 0)
        total = r->predicted_tokens > 0 ? r->predicted_tokens : r->max_tokens;
    else if (r->predicted_p90 >= c->wide_ratio * r->predicted_p50)
        total = r->predicted_p90;
    else
        total = r->predicted_p50;
    total = sched_past_prediction(r, total);
    if (total > r->max_tokens) total = r->max_tokens;
    double left = total - r->n_generated;
    return left < 1 ? 1 : left;
}

static const char *const late_names[] = {"keep", "demote", "drop"};

const char *sched_late_name(sched_late l) {
    return (int)l >= 0 && (int)l < 3 ? late_names[l] : NULL;
}

int sched_late_parse(const char *s, sched_late *out) {
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, late_names[i])) {
            *out = (sched_late)i;
            return 0;
        }
    return -1;
}

static const char *const rank_names[] = {"p90", "gittins"};

const char *sched_rtlm_rank_name(sched_rtlm_rank r) {
    return (int)r >= 0 && (int)r < 2 ? rank_names[r] : NULL;
}

int sched_rtlm_rank_parse(const char *s, sched_rtlm_rank *out) {
    for (int i = 0; s && i < 2; i++)
        if (!strcmp(s, rank_names[i])) {
            *out = (sched_rtlm_rank)i;
            return 0;
        }
    return -1;
}

static const char *const compare_names[] = {"auto", "benefit", "victim"};

const char *sched_preempt_compare_name(sched_preempt_compare c) {
    return (int)c >= 0 && (int)c < 3 ? compare_names[c] : NULL;
}

int sched_preempt_compare_parse(const char *s, sched_preempt_compare *out) {
    for (int i = 0; s && i < 3; i++)
        if (!strcmp(s, compare_names[i])) {
            *out = (sched_preempt_compare)i;
            return 0;
        }
    return -1;
}

static const char names[] = "fcfs,priority,spf,laxity,rtlm,oracle";

const char *sched_policy_names(void) {
    return names;
}

sched_policy *sched_policy_new(const char *name, const sched_config *c) {
    if (!name) return NULL;
    if (!strcmp(name, "fcfs")) return sched_fcfs_new();
    if (!strcmp(name, "priority")) return sched_priority_new(c);
    if (!strcmp(name, "spf")) return sched_spf_new(c);
    if (!strcmp(name, "laxity")) return sched_laxity_new(c);
    if (!strcmp(name, "rtlm")) return sched_rtlm_new(c);
    if (!strcmp(name, "oracle")) return sched_oracle_new(c);
    return NULL;
}
