/* cmd_bench_split.c — `weft bench split`: the split planner on a documented mix of request types
 * and client devices, computed from measured profiles (`weft split profile`). It builds the mix
 * (laptops and phones on good and poor links, each running its user's quick, chat and document
 * requests in the memory it gives to the model), sizes the server's window and KV memory from
 * the no-split plan, and
 * reports server work (CPU-seconds per request and per output token) and SLA attainment for no
 * split, the two greedy baselines and the DP; optionally over a sweep of KV headroom. The mix is
 * described in docs/split.md ("Benchmark"). `--objective kv` plans for a saturated server whose
 * resident requests are bounded by its KV memory (docs/split.md, "A KV-bound server"): the
 * planners minimise the server's KV memory-time and server work per request is no split's x
 * the plan's KV memory-time / no split's. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/split_plan.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: weft bench split --server-profile S.json --client-profile C.json [options]\n"
            "  --server-profile F   the server's profile (weft split profile --batch B on the server)\n"
            "  --client-profile F   the laptop client's profile (weft split profile --threads 1)\n"
            "  --layers L           layers of the planned model (default: the server profile's)\n"
            "  --slow-factor F      phones are F times slower than laptops (default 4)\n"
            "  --devices N          devices of each kind (laptop/phone x good/poor link) (default 2)\n"
            "  --per-type N         scales every device's requests in the window (default 1: 4 quick,\n"
            "                       3 chat, 1 document request per device)\n"
            "  --laptop-mb M        memory a laptop gives to the model (default 4000)\n"
            "  --phone-mb M         memory a phone gives to the model (default 2000)\n"
            "  --layer-weight-mb M  one layer's weights on a client (default 215.1: Llama-2-7B Q8_0)\n"
            "  --fixed-mb M         held on a client that runs any layer: embedding table + buffers\n"
            "                       (default 203.3: Llama-2-7B Q8_0 embedding + 64 MB)\n"
            "  --client-kv f16|f32  client KV element type (default f16)\n"
            "  --no-devices         plan without the devices' memory (each client alone, unlimited)\n"
            "  --seed S             jitter of the lengths (+-25%%) and arrival order (default 1)\n"
            "  --hidden f32|f16     hidden-state encoding on the wire (default f16)\n"
            "  --slowdown X         server-side latency multiplier at the planned load (default: the\n"
            "                       server profile's decode batch: a member waits for the whole step)\n"
            "  --fill F             window sized so no split fills F of the cores (default 0.9)\n"
            "  --kv-headroom H      server KV = H x what no split holds (default 1.25; 0 = unlimited)\n"
            "  --sla-quick X        SLA of quick requests = X x their no-split latency (default 1.5)\n"
            "  --sla-chat X         SLA of chat requests (default 2)\n"
            "  --sla-doc X          SLA of document requests (default 3)\n"
            "  --units U            DP resolution of the server's KV budget (default 500)\n"
            "  --device-units U     DP resolution of each device's KV budget (default 100)\n"
            "  --separable          ignore the server profile's step model: charge every request\n"
            "                       its per-sequence cost alone (the accounting before the fused\n"
            "                       step's fixed part was modelled)\n"
            "  --sweep              also report a sweep over the server's KV headroom (work only)\n"
            "  --objective work|kv  what the planners minimise (default work: the fused step's\n"
            "                       server work); kv: the server's KV memory-time, for a saturated\n"
            "                       server bounded by its KV memory, whose work per request is no\n"
            "                       split's x the plan's KV memory-time / no split's\n"
            "  --json F             write the results as JSON\n");
}

typedef struct mix_cfg {
    int L, per_type, units, device_units, hidden_bytes, n_per_kind, client_kv_bytes, no_devices;
    int separable; /* 1: no step model (each request charged its per-sequence cost alone) */
    int objective; /* split_server.objective: SPLIT_OBJECTIVE_WORK or SPLIT_OBJECTIVE_KV */
    double slow_factor, slowdown, fill, headroom, sla[3], laptop_mb, phone_mb, layer_mb, fixed_mb;
    uint64_t seed;
} mix_cfg;

/* The documented mix (docs/split.md, "Benchmark"): devices of 2 kinds x 2 links, each running its
 * user's requests of 3 types. */
static const char *kind_name[2] = {"laptop", "phone"};
static const char *link_name[2] = {"good", "poor"};
static const double link_bw[2] = {12.5e6, 1.25e6}; /* 100 Mbit/s, 10 Mbit/s */
static const double link_rtt[2] = {0.005, 0.050};
#define N_TYPES 3
static const char *type_name[N_TYPES] = {"quick", "chat", "doc"};
static const int type_prompt[N_TYPES] = {48, 200, 1024};
static const int type_answer[N_TYPES] = {16, 200, 128};
static const int type_count[N_TYPES] = {4, 3, 1}; /* per device in the window (x --per-type) */
#define PER_DEVICE 8                              /* sum of type_count */

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int jitter(uint64_t *s, int v) {
    double u = (double)(rng_next(s) >> 11) / 9007199254740992.0; /* [0, 1) */
    int j = (int)lround(v * (0.75 + 0.5 * u));
    return j < 1 ? 1 : j;
}

typedef struct plan_result {
    const char *name;
    split_plan_summary sum;
    split_choice *c;
} plan_result;

static int n_devices_of(const mix_cfg *cfg) { return 4 * cfg->n_per_kind; }
static int n_requests_of(const mix_cfg *cfg) { return n_devices_of(cfg) * PER_DEVICE * cfg->per_type; }

/* Builds devices, requests and server for cfg. Device v: kind (v / n_per_kind) & 1, link
 * (v / (2 n_per_kind)) & 1. Each device's requests come in a random order, and the devices'
 * streams interleave round-robin: a mixed stream as it would arrive. type_of[i] = type * 4 +
 * kind * 2 + link (for the per-type table). */
static int build_mix(const mix_cfg *cfg, const split_profile *sp, const split_profile *cp,
                     split_request *r, int *type_of, split_client_device *dv, split_server *s,
                     weft_err *err) {
    memset(s, 0, sizeof *s);
    s->n_layers = cfg->L;
    s->cost = sp->cost;
    s->slowdown = cfg->slowdown;
    s->window_s = 1; /* sized below */
    s->cores = sp->threads > 0 ? sp->threads : 1;
    s->load = 0;
    s->kv_bytes_per_layer_token = 2.0 * sp->kv_dim * sizeof(float);
    s->kv_capacity_bytes = 0;
    s->kv_units = cfg->units;
    s->device_units = cfg->device_units;
    s->objective = cfg->objective;
    /* The fused step (docs/split.md): "cost" is per sequence at decode_batch and carries the
     * fixed part / decode_batch; a request saves that part of a layer only when no served
     * request runs the layer. */
    if (!cfg->separable && sp->step_hi > 0 && sp->decode_batch > 1) {
        s->step_fixed_layer_s = sp->step_layer_fixed_s;
        s->step_batch = sp->decode_batch;
    }
    const int nd = n_devices_of(cfg), per_dev = PER_DEVICE * cfg->per_type;
    for (int v = 0; v < nd; v++) {
        const int kind = (v / cfg->n_per_kind) & 1;
        memset(&dv[v], 0, sizeof dv[v]);
        dv[v].mem_bytes = 1e6 * (kind ? cfg->phone_mb : cfg->laptop_mb);
        dv[v].fixed_bytes = 1e6 * cfg->fixed_mb;
        dv[v].weight_bytes_per_layer = 1e6 * cfg->layer_mb;
        dv[v].kv_bytes_per_layer_token = 2.0 * cp->kv_dim * cfg->client_kv_bytes;
    }
    if (!cfg->no_devices) {
        s->devices = dv;
        s->n_devices = nd;
    }
    uint64_t rng = cfg->seed;
    /* Each device's sequence of types, shuffled. */
    int *seq = malloc((size_t)nd * per_dev * sizeof *seq);
    if (!seq) return weft_errf(err, "out of memory");
    for (int v = 0; v < nd; v++) {
        int *q = seq + (size_t)v * per_dev, k = 0;
        for (int t = 0; t < N_TYPES; t++)
            for (int c = 0; c < type_count[t] * cfg->per_type; c++) q[k++] = t;
        for (int a = per_dev - 1; a > 0; a--) {
            int b = (int)(rng_next(&rng) % (uint64_t)(a + 1)), x = q[a];
            q[a] = q[b];
            q[b] = x;
        }
    }
    int n = 0;
    for (int k = 0; k < per_dev; k++)
        for (int v = 0; v < nd; v++) {
            const int kind = (v / cfg->n_per_kind) & 1, lk = (v / (2 * cfg->n_per_kind)) & 1;
            const int t = seq[(size_t)v * per_dev + k];
            split_request q;
            memset(&q, 0, sizeof q);
            q.prompt_tokens = jitter(&rng, type_prompt[t]);
            q.output_tokens = jitter(&rng, type_answer[t]);
            q.count = 1;
            q.client = cp->cost;
            if (kind == 1) {
                q.client.layer_prefill_s *= cfg->slow_factor;
                q.client.layer_decode_s *= cfg->slow_factor;
                q.client.head_prefill_s *= cfg->slow_factor;
                q.client.head_decode_s *= cfg->slow_factor;
            }
            q.client_max_layers = cfg->L; /* memory decides (with --no-devices: anything) */
            q.client_can_head = 0;        /* the server always runs the head */
            q.link_bw_Bps = link_bw[lk];
            q.link_rtt_s = link_rtt[lk];
            q.hidden_bytes_per_token = (double)sp->dim * cfg->hidden_bytes;
            q.device = cfg->no_devices ? 0 : v + 1;
            /* SLA: a multiple of what the request takes with no split at the planned load. */
            q.sla_s = 1;
            split_choice c0;
            if (split_cost_eval(&q, s, 0, &c0, err)) {
                free(seq);
                return -1;
            }
            q.sla_s = c0.latency_s * cfg->sla[t];
            type_of[n] = t * 4 + kind * 2 + lk;
            r[n++] = q;
        }
    free(seq);
    /* Window: no split fills `fill` of the cores. KV: headroom x what no split holds. */
    double w0 = 0, kv0 = 0;
    for (int i = 0; i < n; i++) {
        split_choice c0;
        if (split_cost_eval(&r[i], s, 0, &c0, err)) return -1;
        w0 += c0.server_work_s;
        kv0 += c0.kv_byte_s;
    }
    s->window_s = w0 / (cfg->fill * s->cores);
    s->kv_capacity_bytes = cfg->headroom > 0 ? cfg->headroom * kv0 / s->window_s : 0;
    return 0;
}

static void print_row(const plan_result *pr, const plan_result *none) {
    const split_plan_summary *m = &pr->sum;
    double per_req = m->server_work_s / m->n_requests, per_tok = m->server_work_s / m->output_tokens;
    double vs = none ? 100 * (1 - m->server_work_s / none->sum.server_work_s) : 0;
    printf("%-18s %12.4f %14.3f %9.1f%% %9.1f%% %6s %8s %8s %9.2f\n", pr->name, per_req,
           per_tok * 1e3, vs, 100 * m->n_sla_ok / m->n_requests, m->fits_kv ? "yes" : "NO",
           m->fits_compute ? "yes" : "NO", m->fits_devices ? "yes" : "NO", m->device_util_max);
}

static int run_plans(const split_request *r, int n, const split_server *s, plan_result *pr,
                     weft_err *err) {
    pr[0].name = "no split";
    pr[1].name = "greedy (arrival)";
    pr[2].name = "greedy (ratio)";
    pr[3].name = "DP";
    if (split_plan_fixed(r, n, s, 0, pr[0].c, &pr[0].sum, err)) return -1;
    if (split_plan_greedy(r, n, s, SPLIT_GREEDY_ARRIVAL, pr[1].c, &pr[1].sum, err)) return -1;
    if (split_plan_greedy(r, n, s, SPLIT_GREEDY_EFFICIENCY, pr[2].c, &pr[2].sum, err)) return -1;
    if (split_plan_dp(r, n, s, pr[3].c, &pr[3].sum, err)) return -1;
    return 0;
}

static json_t *summary_json(const plan_result *pr) {
    const split_plan_summary *m = &pr->sum;
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:b, s:b, s:f}", "plan", pr->name,
                     "server_cpu_s_total", m->server_work_s, "server_cpu_s_per_request",
                     m->server_work_s / m->n_requests, "server_cpu_s_per_output_token",
                     m->server_work_s / m->output_tokens, "sla_attainment",
                     m->n_sla_ok / m->n_requests, "client_s_total", m->client_work_s,
                     "kv_byte_s", m->kv_byte_s, "kv_budget_byte_s", m->kv_budget_byte_s,
                     "fits_kv", m->fits_kv, "fits_compute", m->fits_compute, "fits_devices",
                     m->fits_devices, "device_util_max", m->device_util_max);
}

/* A plan in the KV-bound regime (docs/split.md, "A KV-bound server"): a saturated server whose
 * resident requests are bounded by its KV memory C sustains x = C / (mean KV memory-time per
 * request) requests per second (Little's law) and is busy all the time, so its work per request
 * is cores / x, proportional to the plan's KV memory-time; no split's work calibrates it. The
 * physical check: the decode batch b that makes its steps, back to back, take exactly that
 * time, from the step model (per layer fixed + marginal x b, the head likewise), and the step
 * time tau(b) against the server part of a step the cost model's latencies assumed. */
typedef struct kv_row {
    double kv_rel;     /* the plan's KV memory-time / no split's */
    double work_s;     /* server CPU-seconds of the window's requests in the regime */
    double batch;      /* implied decode batch (sequences per step); < 0: not defined */
    double step_s;     /* the step's duration at that batch, seconds */
    double model_step_s; /* the server part of a step the cost model's latencies assume (slowdown
                            x the request's own per-sequence step), token-weighted mean, seconds */
    /* The same regime with latencies consistent with its steps: every member of a decode step
     * waits for the whole step tau(b) (not slowdown x its own cost), and with wait = 1 a split
     * token (0 < p < L) also waits half a step on average for the step under way when its
     * hidden state arrives; latencies, KV memory-time, b and tau solved together. [0]: no
     * extra wait, [1]: the half step. */
    double fp_kv_rel[2], fp_work_s[2], fp_batch[2], fp_step_s[2], fp_sla_met[2];
    int fp_ok[2];  /* 1: the iteration converged to a KV-bound point */
} kv_row;

/* The consistent-steps map (kv_regime): with every decode step of the plan lasting tau, each
 * served request's latency gets Dd x (tau - the server part of a step the cost model assumed:
 * slowdown x its own per-sequence step), plus half a step per split token when half_wait; its
 * KV memory-time scales with its latency; the regime's busy time for that KV gives the batch
 * b and the step g = tau(b). Returns -1 when the plan's own work exceeds the time (no batch). */
typedef struct kv_fp {
    const split_request *r;
    int n;
    const split_server *s;
    const plan_result *pr, *none;
    int half_wait;
    double pre, marg, dd, fixed; /* prefill, marginal decode (server s), decode tokens, fixed/step */
} kv_fp;
typedef struct kv_fp_out {
    double rel, batch, sla_met;
} kv_fp_out;

static int kv_fp_eval(const kv_fp *c, double tau, double *g, kv_fp_out *o) {
    const int L = c->s->n_layers;
    double kv = 0, met = 0, nreq = 0;
    for (int i = 0; i < c->n; i++) {
        const split_choice *x = &c->pr->c[i];
        const int ls = L - x->p;
        double lat = x->latency_s;
        if (ls > 0) {
            const double own = c->s->slowdown * (ls * c->s->cost.layer_decode_s + c->s->cost.head_decode_s);
            const double wait = c->half_wait && x->p > 0 ? 0.5 * tau : 0;
            lat += (c->r[i].output_tokens - 1) * (tau + wait - own);
        }
        kv += x->kv_byte_s * (x->latency_s > 0 ? lat / x->latency_s : 1);
        met += c->r[i].count * (lat <= c->r[i].sla_s * (1 + 1e-12));
        nreq += c->r[i].count;
    }
    const double rel = kv / c->none->sum.kv_byte_s;
    const double left = c->none->sum.server_work_s * rel / c->s->cores - c->pre - c->marg;
    if (left <= 0) return -1;
    const double b = c->dd * c->fixed / left;
    *g = c->fixed + b * c->marg / c->dd;
    if (o) {
        o->rel = rel;
        o->batch = b;
        o->sla_met = met / nreq;
    }
    return 0;
}

static void kv_regime(const split_request *r, int n, const split_server *s, const split_profile *sp,
                      const plan_result *pr, const plan_result *none, kv_row *out) {
    memset(out, 0, sizeof *out);
    out->kv_rel = pr->sum.kv_byte_s / none->sum.kv_byte_s;
    out->work_s = none->sum.server_work_s * out->kv_rel;
    out->batch = -1;
    if (sp->step_hi <= 0) return;
    const int L = s->n_layers;
    const double f = sp->step_layer_fixed_s, mu = sp->step_layer_marginal_s;
    const double fh = sp->step_head_fixed_s, muh = sp->step_head_marginal_s;
    double pre = 0, marg = 0, dd = 0, model = 0;
    int m = L;
    for (int i = 0; i < n; i++) {
        const int p = pr->c[i].p, ls = L - p;
        if (ls <= 0) continue;
        const double Dd = r[i].output_tokens - 1;
        if (p < m) m = p;
        pre += r[i].count * (ls * r[i].prompt_tokens * s->cost.layer_prefill_s + s->cost.head_prefill_s);
        marg += r[i].count * Dd * (ls * mu + muh);
        dd += r[i].count * Dd;
        model += r[i].count * Dd * s->slowdown * (ls * s->cost.layer_decode_s + s->cost.head_decode_s);
    }
    if (dd <= 0) return;
    const double fixed = (L - m) * f + fh, busy = out->work_s / s->cores;
    const double left = busy - pre - marg; /* the time the steps' fixed parts may take */
    out->model_step_s = model / dd;
    /* the plan's own work exceeds the time: compute-bound, not KV-bound; or no fixed part: the
     * work does not depend on the batch */
    if (left <= 0 || fixed <= 0) return;
    out->batch = dd * fixed / left;
    out->step_s = fixed + out->batch * marg / dd;
    /* Latencies consistent with the steps: the step tau at which the plan's latencies (every
     * member waiting tau per decode step), its KV memory-time, the regime's busy time and the
     * batch it implies give back tau. That batch falls as tau grows (longer lives, more KV
     * memory-time, fewer requests per second, more time for the same steps' fixed parts), so
     * the fixed point is unique and found by bisection (a plain iteration can oscillate when the
     * fixed parts are a small share of the time). No split is its own fixed point. */
    for (int w = 0; w < 2; w++) {
        kv_fp ctx = {r, n, s, pr, none, w, pre, marg, dd, fixed};
        double lo = 0, hi = out->step_s > 0 ? out->step_s : fixed, g;
        int found = 0;
        for (int k = 0; k < 80 && !found; k++, hi *= 2) /* hi: g(hi) <= hi */
            found = kv_fp_eval(&ctx, hi, &g, NULL) == 0 && g <= hi;
        if (!found) continue;
        for (int k = 0; k < 200 && hi - lo > 1e-13 * hi; k++) {
            const double mid = 0.5 * (lo + hi);
            if (kv_fp_eval(&ctx, mid, &g, NULL) == 0 && g <= mid) hi = mid;
            else lo = mid; /* g(mid) > mid, or compute-bound there (g infinite) */
        }
        kv_fp_out o;
        if (kv_fp_eval(&ctx, hi, &g, &o)) continue;
        out->fp_ok[w] = 1;
        out->fp_kv_rel[w] = o.rel;
        out->fp_work_s[w] = none->sum.server_work_s * o.rel;
        out->fp_batch[w] = o.batch;
        out->fp_step_s[w] = g;
        out->fp_sla_met[w] = o.sla_met;
    }
}

int cmd_bench_split(int argc, char **argv) {
    const char *sp_path = NULL, *cp_path = NULL, *json_path = NULL, *hidden = "f16", *ckv = "f16";
    mix_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.per_type = 1, cfg.units = 500, cfg.device_units = 100, cfg.hidden_bytes = SPLIT_HIDDEN_F16;
    cfg.n_per_kind = 2, cfg.client_kv_bytes = 2, cfg.slow_factor = 4, cfg.fill = 0.9;
    cfg.headroom = 1.25, cfg.sla[0] = 1.5, cfg.sla[1] = 2, cfg.sla[2] = 3, cfg.laptop_mb = 4000;
    cfg.phone_mb = 2000, cfg.layer_mb = 215.1, cfg.fixed_mb = 203.3, cfg.seed = 1;
    int sweep = 0;
    const char *objective = "work";
    float f;
    cli_args a = {argc, argv, 0, "bench split"};
    while (a.i < a.argc) {
        const char *o = a.argv[a.i++];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(o, "--server-profile")) { if (cli_str(&a, o, &sp_path)) return 2; }
        else if (!strcmp(o, "--client-profile")) { if (cli_str(&a, o, &cp_path)) return 2; }
        else if (!strcmp(o, "--json")) { if (cli_str(&a, o, &json_path)) return 2; }
        else if (!strcmp(o, "--objective")) { if (cli_str(&a, o, &objective)) return 2; }
        else if (!strcmp(o, "--hidden")) { if (cli_str(&a, o, &hidden)) return 2; }
        else if (!strcmp(o, "--client-kv")) { if (cli_str(&a, o, &ckv)) return 2; }
        else if (!strcmp(o, "--layers")) { if (cli_int(&a, o, 1, SPLIT_MAX_LAYERS, &cfg.L)) return 2; }
        else if (!strcmp(o, "--per-type")) { if (cli_int(&a, o, 1, 64, &cfg.per_type)) return 2; }
        else if (!strcmp(o, "--devices")) { if (cli_int(&a, o, 1, 64, &cfg.n_per_kind)) return 2; }
        else if (!strcmp(o, "--units")) { if (cli_int(&a, o, 1, 100000, &cfg.units)) return 2; }
        else if (!strcmp(o, "--device-units")) { if (cli_int(&a, o, 1, 100000, &cfg.device_units)) return 2; }
        else if (!strcmp(o, "--seed")) { if (cli_u64(&a, o, &cfg.seed)) return 2; }
        else if (!strcmp(o, "--sweep")) sweep = 1;
        else if (!strcmp(o, "--no-devices")) cfg.no_devices = 1;
        else if (!strcmp(o, "--separable")) cfg.separable = 1;
        else if (!strcmp(o, "--slow-factor")) { if (cli_float(&a, o, 0.01f, 1000, &f)) return 2; cfg.slow_factor = f; }
        else if (!strcmp(o, "--laptop-mb")) { if (cli_float(&a, o, 1, 1e7f, &f)) return 2; cfg.laptop_mb = f; }
        else if (!strcmp(o, "--phone-mb")) { if (cli_float(&a, o, 1, 1e7f, &f)) return 2; cfg.phone_mb = f; }
        else if (!strcmp(o, "--layer-weight-mb")) { if (cli_float(&a, o, 0, 1e6f, &f)) return 2; cfg.layer_mb = f; }
        else if (!strcmp(o, "--fixed-mb")) { if (cli_float(&a, o, 0, 1e6f, &f)) return 2; cfg.fixed_mb = f; }
        else if (!strcmp(o, "--slowdown")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.slowdown = f; }
        else if (!strcmp(o, "--fill")) { if (cli_float(&a, o, 0.01f, 1, &f)) return 2; cfg.fill = f; }
        else if (!strcmp(o, "--kv-headroom")) { if (cli_float(&a, o, 0, 1000, &f)) return 2; cfg.headroom = f; }
        else if (!strcmp(o, "--sla-quick")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.sla[0] = f; }
        else if (!strcmp(o, "--sla-chat")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.sla[1] = f; }
        else if (!strcmp(o, "--sla-doc")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.sla[2] = f; }
        else {
            fprintf(stderr, "weft bench split: unknown option '%s'\n", o);
            usage(stderr);
            return 2;
        }
    }
    if (!sp_path || !cp_path) {
        fprintf(stderr, "weft bench split: --server-profile and --client-profile are required\n");
        usage(stderr);
        return 2;
    }
    if (!strcmp(hidden, "f32")) cfg.hidden_bytes = SPLIT_HIDDEN_F32;
    else if (!strcmp(hidden, "f16")) cfg.hidden_bytes = SPLIT_HIDDEN_F16;
    else {
        fprintf(stderr, "weft bench split: --hidden expects f32 or f16, got '%s'\n", hidden);
        return 2;
    }
    if (!strcmp(objective, "work")) cfg.objective = SPLIT_OBJECTIVE_WORK;
    else if (!strcmp(objective, "kv")) cfg.objective = SPLIT_OBJECTIVE_KV;
    else {
        fprintf(stderr, "weft bench split: --objective expects work or kv, got '%s'\n", objective);
        return 2;
    }
    if (cfg.objective == SPLIT_OBJECTIVE_KV && sweep) {
        fprintf(stderr, "weft bench split: --sweep varies the server's KV budget, which is not a "
                        "constraint under --objective kv\n");
        return 2;
    }
    if (!strcmp(ckv, "f32")) cfg.client_kv_bytes = 4;
    else if (!strcmp(ckv, "f16")) cfg.client_kv_bytes = 2;
    else {
        fprintf(stderr, "weft bench split: --client-kv expects f32 or f16, got '%s'\n", ckv);
        return 2;
    }
    weft_err err = {{0}};
    split_profile sp, cp;
    if (split_profile_read_json(sp_path, &sp, &err) || split_profile_read_json(cp_path, &cp, &err)) {
        fprintf(stderr, "weft bench split: %s\n", err.msg);
        return 1;
    }
    if (sp.dim != cp.dim || sp.kv_dim != cp.kv_dim) {
        fprintf(stderr, "weft bench split: the profiles are of different models (dim %d/%d, kv_dim %d/%d)\n",
                sp.dim, cp.dim, sp.kv_dim, cp.kv_dim);
        return 1;
    }
    if (sp.dim < 1 || sp.kv_dim < 1) {
        fprintf(stderr, "weft bench split: the server profile has no dim/kv_dim\n");
        return 1;
    }
    if (!cfg.L) cfg.L = sp.n_layers;
    if (cfg.slowdown <= 0) cfg.slowdown = sp.decode_batch > 1 ? sp.decode_batch : 1;

    const int n = n_requests_of(&cfg), nd = n_devices_of(&cfg);
    split_request *r = calloc((size_t)n, sizeof *r);
    int *type_of = calloc((size_t)n, sizeof *type_of);
    split_client_device *dv = calloc((size_t)nd, sizeof *dv);
    plan_result pr[4], pw;
    memset(pr, 0, sizeof pr);
    memset(&pw, 0, sizeof pw);
    int rc = 1;
    json_t *root = json_object(), *runs = json_array();
    for (int k = 0; k < 4; k++) pr[k].c = calloc((size_t)n, sizeof *pr[k].c);
    if (!r || !type_of || !dv || !pr[0].c || !pr[1].c || !pr[2].c || !pr[3].c || !root || !runs) {
        fprintf(stderr, "weft bench split: out of memory\n");
        goto done;
    }
    split_server s;
    if (build_mix(&cfg, &sp, &cp, r, type_of, dv, &s, &err) || run_plans(r, n, &s, pr, &err)) {
        fprintf(stderr, "weft bench split: %s\n", err.msg);
        goto done;
    }
    printf("split planner on the documented mix: %d requests from %d client devices (%d per "
           "device: quick/chat/doc), L = %d layers, hidden %s\n", n, nd, PER_DEVICE * cfg.per_type,
           cfg.L, hidden);
    printf("server: %s, %d threads, decode batch %d; laptops: %s, %g MB for the model; phones: "
           "x%g slower, %g MB; %s\n", sp.device, sp.threads, sp.decode_batch, cp.device,
           cfg.laptop_mb, cfg.slow_factor, cfg.phone_mb,
           cfg.no_devices ? "device memory NOT modelled (--no-devices)"
                          : "client memory: weights of the layers a device holds + each request's KV");
    printf("client weights %.1f MB/layer + %.1f MB fixed, client KV %s; window %.3f s (no split "
           "fills %.0f%% of %g cores), server KV %s, slowdown %g, SLA %gx/%gx/%gx (quick/chat/doc) "
           "the no-split latency\n\n", cfg.layer_mb, cfg.fixed_mb, ckv, s.window_s, cfg.fill * 100,
           s.cores, cfg.headroom > 0 ? "headroom x" : "unlimited", cfg.slowdown, cfg.sla[0],
           cfg.sla[1], cfg.sla[2]);
    if (s.step_fixed_layer_s > 0)
        printf("server work: the fused step model, per layer %.4f ms fixed + %.4f ms x batch "
               "(profile fit at %d and %d), batch %g: a layer's fixed part is saved only when no "
               "served request runs it\n", sp.step_layer_fixed_s * 1e3,
               sp.step_layer_marginal_s * 1e3, sp.step_lo, sp.step_hi, s.step_batch);
    else
        printf("server work: separable (each request charged its per-sequence cost alone%s)\n",
               cfg.separable ? ", --separable" : "; the server profile has no step model");
    kv_row kr[5];
    for (int k = 0; k < 4; k++) kv_regime(r, n, &s, &sp, &pr[k], &pr[0], &kr[k]);
    double wk[4];
    if (cfg.objective == SPLIT_OBJECTIVE_KV) {
        /* The default objective's DP plan in the same regime, for comparison. */
        split_server sw = s;
        sw.objective = SPLIT_OBJECTIVE_WORK;
        pw.name = "DP (work obj.)";
        pw.c = calloc((size_t)n, sizeof *pw.c);
        if (!pw.c) {
            fprintf(stderr, "weft bench split: out of memory\n");
            goto done;
        }
        if (split_plan_dp(r, n, &sw, pw.c, &pw.sum, &err)) {
            fprintf(stderr, "weft bench split: %s\n", err.msg);
            goto done;
        }
        kv_regime(r, n, &s, &sp, &pw, &pr[0], &kr[4]);
        const plan_result *pk[5] = {&pr[0], &pr[1], &pr[2], &pr[3], &pw};
        printf("objective: the server's KV memory-time (--objective kv): a saturated server whose "
               "resident requests are bounded by its KV memory; server work per request = no "
               "split's x the plan's KV memory-time / no split's (docs/split.md, \"A KV-bound "
               "server\"); the server's KV budget is not a constraint\n");
        printf("%-18s %12s %14s %10s %10s %10s %12s %8s %8s %7s %8s %9s\n", "plan", "CPU-s/req",
               "CPU-ms/out-tok", "vs none", "KV GB-s", "KV/none", "fused CPU-s", "SLA met",
               "dev ok", "batch", "step ms", "model ms");
        for (int k = 0; k < 5; k++) {
            const split_plan_summary *m = &pk[k]->sum;
            char b[32], st[32];
            if (kr[k].batch >= 0) {
                snprintf(b, sizeof b, "%.2f", kr[k].batch);
                snprintf(st, sizeof st, "%.1f", kr[k].step_s * 1e3);
            } else {
                snprintf(b, sizeof b, "n/a");
                snprintf(st, sizeof st, "n/a");
            }
            printf("%-18s %12.4f %14.3f %9.1f%% %10.1f %9.1f%% %12.4f %7.1f%% %8s %7s %8s %9.1f\n",
                   pk[k]->name, kr[k].work_s / m->n_requests, 1e3 * kr[k].work_s / m->output_tokens,
                   100 * (1 - kr[k].kv_rel), m->kv_byte_s / 1e9, 100 * kr[k].kv_rel,
                   m->server_work_s / m->n_requests, 100 * m->n_sla_ok / m->n_requests,
                   m->fits_devices ? "yes" : "NO", b, st, kr[k].model_step_s * 1e3);
        }
        printf("(fused CPU-s: the same plan's work per request in the batching-bound model; batch: "
               "the decode batch at which the regime's steps, back to back, take exactly its time "
               "(step model), step ms: that step's duration, model ms: the server part of a step "
               "the cost model's latencies assumed; n/a: the plan's own work exceeds the time, or "
               "the profile has no fixed step part)\n");
        printf("\nthe same plans with latencies consistent with the regime's steps (every member of "
               "a step waits for the whole step; +half: a split token also waits half a step for "
               "the step under way): KV/none, CPU-s/req, batch, step ms, SLA met\n");
        printf("%-18s %8s %10s %7s %8s %8s   %8s %10s %7s %8s %8s\n", "plan", "KV/none",
               "CPU-s/req", "batch", "step ms", "SLA met", "+half", "CPU-s/req", "batch",
               "step ms", "SLA met");
        for (int k = 0; k < 5; k++) {
            printf("%-18s", pk[k]->name);
            for (int w = 0; w < 2; w++) {
                if (!kr[k].fp_ok[w]) {
                    printf(" %8s %10s %7s %8s %8s%s", "n/a", "", "", "", "", w ? "" : "  ");
                    continue;
                }
                printf(" %7.1f%% %10.4f %7.2f %8.1f %7.1f%%%s", 100 * kr[k].fp_kv_rel[w],
                       kr[k].fp_work_s[w] / pk[k]->sum.n_requests, kr[k].fp_batch[w],
                       kr[k].fp_step_s[w] * 1e3, 100 * kr[k].fp_sla_met[w], w ? "" : "  ");
            }
            printf("\n");
        }
        for (int w = 0; w < 2; w++)
            if (kr[0].fp_ok[w] && kr[1].fp_ok[w] && kr[2].fp_ok[w] && kr[3].fp_ok[w])
                printf("consistent steps%s: DP vs no split %.1f%%, vs greedy (ratio) %.1f%%, vs "
                       "greedy (arrival) %.1f%% less server work\n", w ? " +half" : "",
                       100 * (1 - kr[3].fp_work_s[w] / kr[0].fp_work_s[w]),
                       100 * (1 - kr[3].fp_work_s[w] / kr[2].fp_work_s[w]),
                       100 * (1 - kr[3].fp_work_s[w] / kr[1].fp_work_s[w]));
        for (int k = 0; k < 4; k++) wk[k] = kr[k].work_s;
    } else {
        if (cfg.headroom > 0) printf("(server KV headroom %g: %.1f MB)\n", cfg.headroom, s.kv_capacity_bytes / 1e6);
        printf("%-18s %12s %14s %10s %10s %6s %8s %8s %9s\n", "plan", "CPU-s/req", "CPU-ms/out-tok",
               "vs none", "SLA met", "KV ok", "CPU ok", "dev ok", "dev util");
        for (int k = 0; k < 4; k++) print_row(&pr[k], &pr[0]);
        for (int k = 0; k < 4; k++) wk[k] = pr[k].sum.server_work_s;
    }
    /* the plans' server work in the chosen regime: none, arrival, ratio, DP */
    const double dp_vs_greedy = 100 * (1 - wk[3] / wk[2]);
    const double dp_vs_arrival = 100 * (1 - wk[3] / wk[1]);
    const double dp_vs_none = 100 * (1 - wk[3] / wk[0]);
    printf("\nDP vs no split: %.1f%% less server work (target >= 33%%); vs greedy (ratio): %.1f%% "
           "less; vs greedy (arrival): %.1f%% less (target >= 19%%)\n",
           dp_vs_none, dp_vs_greedy, dp_vs_arrival);
    if (cfg.objective != SPLIT_OBJECTIVE_KV) {
        printf("KV memory-time vs no split (= server work per request of a saturated KV-bound server, "
               "--objective kv): greedy (arrival) %.1f%%, greedy (ratio) %.1f%%, DP %.1f%%\n",
               100 * kr[1].kv_rel, 100 * kr[2].kv_rel, 100 * kr[3].kv_rel);
    }
    /* Split points chosen per type (mean over the type's requests). */
    printf("\nmean split point per device kind, link and request type (p = layers on the client; "
           "L = %d)\n", cfg.L);
    printf("%-7s %-5s %-6s %7s %7s %9s %9s %9s %9s\n", "device", "link", "type", "prompt",
           "answer", "none", "g-arrival", "g-ratio", "DP");
    for (int t = 0; t < 4 * N_TYPES; t++) {
        double m[4] = {0};
        int cnt = 0;
        for (int i = 0; i < n; i++)
            if (type_of[i] == t) {
                cnt++;
                for (int k = 0; k < 4; k++) m[k] += pr[k].c[i].p;
            }
        if (!cnt) continue;
        printf("%-7s %-5s %-6s %7d %7d %9.1f %9.1f %9.1f %9.1f\n", kind_name[(t >> 1) & 1],
               link_name[t & 1], type_name[t / 4], type_prompt[t / 4], type_answer[t / 4],
               m[0] / cnt, m[1] / cnt, m[2] / cnt, m[3] / cnt);
    }
    /* The batch's lowest entry: below it every layer's fixed step part is saved. */
    int lo[4], n_lo[4];
    for (int k = 0; k < 4; k++) {
        lo[k] = cfg.L, n_lo[k] = 0;
        for (int i = 0; i < n; i++)
            if (pr[k].c[i].p < lo[k]) lo[k] = pr[k].c[i].p;
        for (int i = 0; i < n; i++) n_lo[k] += pr[k].c[i].p == lo[k];
    }
    printf("%-36s %9d %9d %9d %9d\n", "lowest split point (the batch's entry)", lo[0], lo[1],
           lo[2], lo[3]);
    printf("%-36s %9d %9d %9d %9d\n", "requests at it", n_lo[0], n_lo[1], n_lo[2], n_lo[3]);
    json_t *main_run = json_array();
    for (int k = 0; k < 4; k++) {
        json_t *o = summary_json(&pr[k]);
        if (cfg.objective == SPLIT_OBJECTIVE_KV) {
            json_object_set_new(o, "kv_bound_cpu_s_per_request", json_real(kr[k].work_s / pr[k].sum.n_requests));
            json_object_set_new(o, "kv_bound_cpu_s_per_output_token",
                                json_real(kr[k].work_s / pr[k].sum.output_tokens));
            json_object_set_new(o, "kv_vs_none", json_real(kr[k].kv_rel));
            json_object_set_new(o, "implied_batch", json_real(kr[k].batch));
            json_object_set_new(o, "implied_step_s", json_real(kr[k].step_s));
            json_object_set_new(o, "model_step_s", json_real(kr[k].model_step_s));
            for (int w = 0; w < 2; w++) {
                if (!kr[k].fp_ok[w]) continue;
                json_t *fp = json_pack("{s:f, s:f, s:f, s:f, s:f}", "kv_vs_none", kr[k].fp_kv_rel[w],
                                       "cpu_s_per_request", kr[k].fp_work_s[w] / pr[k].sum.n_requests,
                                       "batch", kr[k].fp_batch[w], "step_s", kr[k].fp_step_s[w],
                                       "sla_attainment", kr[k].fp_sla_met[w]);
                json_object_set_new(o, w ? "consistent_steps_half_wait" : "consistent_steps", fp);
            }
        }
        json_array_append_new(main_run, o);
    }
    if (cfg.objective == SPLIT_OBJECTIVE_KV) {
        json_object_set_new(root, "objective", json_string("kv"));
        json_t *o = summary_json(&pw);
        json_object_set_new(o, "kv_bound_cpu_s_per_request", json_real(kr[4].work_s / pw.sum.n_requests));
        json_object_set_new(o, "kv_vs_none", json_real(kr[4].kv_rel));
        json_object_set_new(o, "implied_batch", json_real(kr[4].batch));
        for (int w = 0; w < 2; w++)
            if (kr[4].fp_ok[w])
                json_object_set_new(o, w ? "consistent_steps_half_wait_kv_vs_none" : "consistent_steps_kv_vs_none",
                                    json_real(kr[4].fp_kv_rel[w]));
        json_object_set_new(root, "dp_work_objective", o);
    }
    json_object_set_new(root, "server_profile", json_string(sp_path));
    json_object_set_new(root, "client_profile", json_string(cp_path));
    json_object_set_new(root, "layers", json_integer(cfg.L));
    json_object_set_new(root, "requests", json_integer(n));
    json_object_set_new(root, "devices", json_integer(cfg.no_devices ? 0 : nd));
    json_object_set_new(root, "kv_headroom", json_real(cfg.headroom));
    json_object_set_new(root, "slowdown", json_real(cfg.slowdown));
    json_object_set_new(root, "step_fixed_layer_s", json_real(s.step_fixed_layer_s));
    json_object_set_new(root, "step_batch", json_real(s.step_batch));
    json_object_set_new(root, "window_s", json_real(s.window_s));
    json_object_set_new(root, "plans", main_run);
    json_object_set_new(root, "dp_less_than_none_pct", json_real(dp_vs_none));
    json_object_set_new(root, "dp_less_than_greedy_ratio_pct", json_real(dp_vs_greedy));
    json_object_set_new(root, "dp_less_than_greedy_arrival_pct", json_real(dp_vs_arrival));

    if (sweep) {
        static const double hs[] = {1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 0};
        printf("\nServer KV headroom sweep (server CPU-ms per output token; * = a plan that misses "
               "an SLA or does not fit)\n%-10s %10s %12s %12s %10s %12s %12s\n", "headroom", "none",
               "g-arrival", "g-ratio", "DP", "DP-vs-none", "DP-vs-ratio");
        for (size_t h = 0; h < sizeof hs / sizeof *hs; h++) {
            mix_cfg c2 = cfg;
            c2.headroom = hs[h];
            plan_result q[4];
            memcpy(q, pr, sizeof q);
            if (build_mix(&c2, &sp, &cp, r, type_of, dv, &s, &err) || run_plans(r, n, &s, q, &err)) {
                fprintf(stderr, "weft bench split: %s\n", err.msg);
                goto done;
            }
            char hn[16];
            if (hs[h] > 0) snprintf(hn, sizeof hn, "%g", hs[h]);
            else snprintf(hn, sizeof hn, "unlimited");
            printf("%-10s", hn);
            for (int k = 0; k < 4; k++)
                printf(" %*.3f%s", k == 0 ? 10 : 11, 1e3 * q[k].sum.server_work_s / q[k].sum.output_tokens,
                       q[k].sum.n_sla_ok < q[k].sum.n_requests || !q[k].sum.fits_kv ||
                               !q[k].sum.fits_devices ? "*" : " ");
            double a1 = 100 * (1 - q[3].sum.server_work_s / q[0].sum.server_work_s);
            double a2 = 100 * (1 - q[3].sum.server_work_s / q[2].sum.server_work_s);
            printf(" %11.1f%% %11.1f%%\n", a1, a2);
            json_t *row = json_array();
            for (int k = 0; k < 4; k++) json_array_append_new(row, summary_json(&q[k]));
            json_t *o = json_pack("{s:f, s:o}", "kv_headroom", hs[h], "plans", row);
            json_array_append_new(runs, o);
        }
        json_object_set_new(root, "sweep", runs);
        runs = NULL;
    }
    if (json_path && json_dump_file(root, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(8))) {
        fprintf(stderr, "weft bench split: cannot write %s\n", json_path);
        goto done;
    }
    rc = 0;
done:
    json_decref(runs);
    json_decref(root);
    for (int k = 0; k < 4; k++) free(pr[k].c);
    free(pw.c);
    free(r);
    free(type_of);
    free(dv);
    return rc;
}
