/* cmd_bench_split.c — `weft bench split`: the split planner on a documented mix of request types
 * and client devices, computed from measured profiles (`weft split profile`). It builds the mix
 * (fast/slow clients x good/poor links x short/long prompts x short/long answers, a few jittered
 * requests of each type), sizes the server's window and KV memory from the no-split plan, and
 * reports server work (CPU-seconds per request and per output token) and SLA attainment for no
 * split, the two greedy baselines and the DP; optionally over a sweep of KV headroom. The mix is
 * described in docs/split.md ("Benchmark"). */
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
            "  --client-profile F   the fast client's profile (weft split profile --threads 1)\n"
            "  --layers L           layers of the planned model (default: the server profile's)\n"
            "  --slow-factor F      slow clients are F times slower than the fast one (default 4)\n"
            "  --fast-max-frac X    fast clients hold at most X*L layers (1 = the whole model and\n"
            "                       its head: fully local allowed) (default 0.75)\n"
            "  --slow-max-frac X    slow clients hold at most X*L layers and no head (default 0.25)\n"
            "  --per-type N         requests of each of the 16 types (default 4)\n"
            "  --seed S             jitter of the lengths (+-25%%) (default 1)\n"
            "  --hidden f32|f16     hidden-state encoding on the wire (default f16)\n"
            "  --slowdown X         server-side latency multiplier at the planned load (default: the\n"
            "                       server profile's decode batch: a member waits for the whole step)\n"
            "  --fill F             window sized so no split fills F of the cores (default 0.9)\n"
            "  --kv-headroom H      server KV = H x what no split holds (default 1.25; 0 = unlimited)\n"
            "  --sla-tight X        SLA of short answers = X x their no-split latency (default 1.5)\n"
            "  --sla-relaxed X      SLA of long answers = X x their no-split latency (default 3)\n"
            "  --units U            DP resolution of the KV budget (default 2000)\n"
            "  --by-type            plan one split point per request type (16 entries weighted by\n"
            "                       --per-type) instead of one per request\n"
            "  --sweep              also report a sweep over KV headroom\n"
            "  --json F             write the results as JSON\n");
}

typedef struct mix_cfg {
    int L, per_type, units, hidden_bytes, by_type;
    double slow_factor, slow_max_frac, fast_max_frac, slowdown, fill, headroom, sla_tight, sla_relaxed;
    uint64_t seed;
} mix_cfg;

/* The documented mix: 2 devices x 2 links x 2 prompt lengths x 2 answer lengths. */
static const char *dev_name[2] = {"fast", "slow"};
static const char *link_name[2] = {"good", "poor"};
static const double link_bw[2] = {12.5e6, 1.25e6}; /* 100 Mbit/s, 10 Mbit/s */
static const double link_rtt[2] = {0.005, 0.050};
static const int prompt_len[2] = {32, 256};
static const int answer_len[2] = {32, 128};

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

/* Builds requests and server for cfg; n_out requests. Types are laid out in arrival order
 * round-robin (one of each type, then the next of each), as a mixed stream would arrive. */
static int build_mix(const mix_cfg *cfg, const split_profile *sp, const split_profile *cp,
                     split_request *r, int *type_of, split_server *s, weft_err *err) {
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
    uint64_t rng = cfg->seed;
    int n = 0;
    const int reps = cfg->by_type ? 1 : cfg->per_type;
    for (int k = 0; k < reps; k++)
        for (int t = 0; t < 16; t++) {
            int dev = t >> 3 & 1, lk = t >> 2 & 1, pl = t >> 1 & 1, al = t & 1;
            split_request q;
            memset(&q, 0, sizeof q);
            if (cfg->by_type) { /* one plan entry per type, weighted by its count */
                q.prompt_tokens = prompt_len[pl];
                q.output_tokens = answer_len[al];
                q.count = cfg->per_type;
            } else {
                q.prompt_tokens = jitter(&rng, prompt_len[pl]);
                q.output_tokens = jitter(&rng, answer_len[al]);
                q.count = 1;
            }
            q.client = cp->cost;
            if (dev == 1) {
                q.client.layer_prefill_s *= cfg->slow_factor;
                q.client.layer_decode_s *= cfg->slow_factor;
                q.client.head_prefill_s *= cfg->slow_factor;
                q.client.head_decode_s *= cfg->slow_factor;
                q.client_max_layers = (int)floor(cfg->slow_max_frac * cfg->L);
                q.client_can_head = 0;
            } else {
                q.client_max_layers = (int)floor(cfg->fast_max_frac * cfg->L);
                q.client_can_head = q.client_max_layers >= cfg->L;
            }
            q.link_bw_Bps = link_bw[lk];
            q.link_rtt_s = link_rtt[lk];
            q.hidden_bytes_per_token = (double)sp->dim * cfg->hidden_bytes;
            /* SLA: a multiple of what the request takes with no split at the planned load. */
            q.sla_s = 1;
            split_choice c0;
            if (split_cost_eval(&q, s, 0, &c0, err)) return -1;
            q.sla_s = c0.latency_s * (al ? cfg->sla_relaxed : cfg->sla_tight);
            type_of[n] = t;
            r[n++] = q;
        }
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
    printf("%-18s %12.4f %14.3f %9.1f%% %9.1f%% %6s %8s\n", pr->name, per_req, per_tok * 1e3, vs,
           100 * m->n_sla_ok / m->n_requests, m->fits_kv ? "yes" : "NO",
           m->fits_compute ? "yes" : "NO");
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
    return json_pack("{s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:b}", "plan", pr->name,
                     "server_cpu_s_total", m->server_work_s, "server_cpu_s_per_request",
                     m->server_work_s / m->n_requests, "server_cpu_s_per_output_token",
                     m->server_work_s / m->output_tokens, "sla_attainment",
                     m->n_sla_ok / m->n_requests, "client_s_total", m->client_work_s,
                     "kv_byte_s", m->kv_byte_s, "kv_budget_byte_s", m->kv_budget_byte_s,
                     "fits_kv", m->fits_kv, "fits_compute", m->fits_compute);
}

int cmd_bench_split(int argc, char **argv) {
    const char *sp_path = NULL, *cp_path = NULL, *json_path = NULL, *hidden = "f16";
    mix_cfg cfg = {0, 4, 2000, SPLIT_HIDDEN_F16, 0, 4, 0.25, 0.75, 0, 0.9, 1.25, 1.5, 3, 1};
    int sweep = 0;
    float f;
    cli_args a = {argc, argv, 0, "bench split"};
    while (a.i < a.argc) {
        const char *o = a.argv[a.i++];
        if (!strcmp(o, "-h") || !strcmp(o, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(o, "--server-profile")) { if (cli_str(&a, o, &sp_path)) return 2; }
        else if (!strcmp(o, "--client-profile")) { if (cli_str(&a, o, &cp_path)) return 2; }
        else if (!strcmp(o, "--json")) { if (cli_str(&a, o, &json_path)) return 2; }
        else if (!strcmp(o, "--hidden")) { if (cli_str(&a, o, &hidden)) return 2; }
        else if (!strcmp(o, "--layers")) { if (cli_int(&a, o, 1, SPLIT_MAX_LAYERS, &cfg.L)) return 2; }
        else if (!strcmp(o, "--per-type")) { if (cli_int(&a, o, 1, SPLIT_MAX_REQUESTS / 16, &cfg.per_type)) return 2; }
        else if (!strcmp(o, "--units")) { if (cli_int(&a, o, 1, 1000000, &cfg.units)) return 2; }
        else if (!strcmp(o, "--seed")) { if (cli_u64(&a, o, &cfg.seed)) return 2; }
        else if (!strcmp(o, "--sweep")) sweep = 1;
        else if (!strcmp(o, "--by-type")) cfg.by_type = 1;
        else if (!strcmp(o, "--slow-factor")) { if (cli_float(&a, o, 0.01f, 1000, &f)) return 2; cfg.slow_factor = f; }
        else if (!strcmp(o, "--slow-max-frac")) { if (cli_float(&a, o, 0, 1, &f)) return 2; cfg.slow_max_frac = f; }
        else if (!strcmp(o, "--fast-max-frac")) { if (cli_float(&a, o, 0, 1, &f)) return 2; cfg.fast_max_frac = f; }
        else if (!strcmp(o, "--slowdown")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.slowdown = f; }
        else if (!strcmp(o, "--fill")) { if (cli_float(&a, o, 0.01f, 1, &f)) return 2; cfg.fill = f; }
        else if (!strcmp(o, "--kv-headroom")) { if (cli_float(&a, o, 0, 1000, &f)) return 2; cfg.headroom = f; }
        else if (!strcmp(o, "--sla-tight")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.sla_tight = f; }
        else if (!strcmp(o, "--sla-relaxed")) { if (cli_float(&a, o, 1, 1000, &f)) return 2; cfg.sla_relaxed = f; }
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

    const int n = cfg.by_type ? 16 : 16 * cfg.per_type;
    split_request *r = calloc((size_t)n, sizeof *r);
    int *type_of = calloc((size_t)n, sizeof *type_of);
    plan_result pr[4];
    memset(pr, 0, sizeof pr);
    int rc = 1;
    json_t *root = json_object(), *runs = json_array();
    for (int k = 0; k < 4; k++) pr[k].c = calloc((size_t)n, sizeof *pr[k].c);
    if (!r || !type_of || !pr[0].c || !pr[1].c || !pr[2].c || !pr[3].c || !root || !runs) {
        fprintf(stderr, "weft bench split: out of memory\n");
        goto done;
    }
    split_server s;
    if (build_mix(&cfg, &sp, &cp, r, type_of, &s, &err) || run_plans(r, n, &s, pr, &err)) {
        fprintf(stderr, "weft bench split: %s\n", err.msg);
        goto done;
    }
    printf("split planner on the documented mix: %d requests (16 types x %d), L = %d layers, "
           "hidden %s\n", n, cfg.per_type, cfg.L, hidden);
    printf("server: %s, %d threads, decode batch %d; clients: %s (fast), x%g (slow)\n", sp.device,
           sp.threads, sp.decode_batch, cp.device, cfg.slow_factor);
    printf("window %.3f s (no split fills %.0f%% of %g cores), KV budget %s, slowdown %g, "
           "SLA %gx (short answers) / %gx (long) the no-split latency\n\n",
           s.window_s, cfg.fill * 100, s.cores,
           cfg.headroom > 0 ? "headroom x" : "unlimited", cfg.slowdown, cfg.sla_tight,
           cfg.sla_relaxed);
    if (cfg.headroom > 0) printf("(KV headroom %g: %.1f MB)\n", cfg.headroom, s.kv_capacity_bytes / 1e6);
    printf("%-18s %12s %14s %10s %10s %6s %8s\n", "plan", "CPU-s/req", "CPU-ms/out-tok",
           "vs none", "SLA met", "KV ok", "CPU ok");
    for (int k = 0; k < 4; k++) print_row(&pr[k], &pr[0]);
    double dp_vs_greedy = 100 * (1 - pr[3].sum.server_work_s / pr[2].sum.server_work_s);
    double dp_vs_arrival = 100 * (1 - pr[3].sum.server_work_s / pr[1].sum.server_work_s);
    double dp_vs_none = 100 * (1 - pr[3].sum.server_work_s / pr[0].sum.server_work_s);
    printf("\nDP vs no split: %.1f%% less server work (target >= 33%%); vs greedy (ratio): %.1f%% "
           "less; vs greedy (arrival): %.1f%% less (target >= 19%%)\n",
           dp_vs_none, dp_vs_greedy, dp_vs_arrival);
    /* Split points chosen per type (mean over the type's requests). */
    printf("\nmean split point per type (p = layers on the client; L = %d)\n", cfg.L);
    printf("%-4s %-5s %-5s %7s %7s %9s %9s %9s %9s\n", "dev", "link", "", "prompt", "answer",
           "none", "g-arrival", "g-ratio", "DP");
    for (int t = 0; t < 16; t++) {
        double m[4] = {0};
        int cnt = 0;
        for (int i = 0; i < n; i++)
            if (type_of[i] == t) {
                cnt++;
                for (int k = 0; k < 4; k++) m[k] += pr[k].c[i].p;
            }
        printf("%-4s %-5s %-5s %7d %7d %9.1f %9.1f %9.1f %9.1f\n", dev_name[t >> 3 & 1],
               link_name[t >> 2 & 1], "", prompt_len[t >> 1 & 1], answer_len[t & 1], m[0] / cnt,
               m[1] / cnt, m[2] / cnt, m[3] / cnt);
    }
    json_t *main_run = json_array();
    for (int k = 0; k < 4; k++) json_array_append_new(main_run, summary_json(&pr[k]));
    json_object_set_new(root, "server_profile", json_string(sp_path));
    json_object_set_new(root, "client_profile", json_string(cp_path));
    json_object_set_new(root, "layers", json_integer(cfg.L));
    json_object_set_new(root, "requests", json_integer(n));
    json_object_set_new(root, "kv_headroom", json_real(cfg.headroom));
    json_object_set_new(root, "slowdown", json_real(cfg.slowdown));
    json_object_set_new(root, "window_s", json_real(s.window_s));
    json_object_set_new(root, "plans", main_run);
    json_object_set_new(root, "dp_less_than_none_pct", json_real(dp_vs_none));
    json_object_set_new(root, "dp_less_than_greedy_ratio_pct", json_real(dp_vs_greedy));
    json_object_set_new(root, "dp_less_than_greedy_arrival_pct", json_real(dp_vs_arrival));

    if (sweep) {
        static const double hs[] = {1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 0};
        printf("\nKV headroom sweep (server CPU-ms per output token; SLA met by all plans "
               "unless marked)\n%-10s %10s %12s %12s %10s %12s %12s\n", "headroom", "none",
               "g-arrival", "g-ratio", "DP", "DP-vs-none", "DP-vs-ratio");
        for (size_t h = 0; h < sizeof hs / sizeof *hs; h++) {
            mix_cfg c2 = cfg;
            c2.headroom = hs[h];
            plan_result q[4];
            memcpy(q, pr, sizeof q);
            if (build_mix(&c2, &sp, &cp, r, type_of, &s, &err) || run_plans(r, n, &s, q, &err)) {
                fprintf(stderr, "weft bench split: %s\n", err.msg);
                goto done;
            }
            char hn[16];
            if (hs[h] > 0) snprintf(hn, sizeof hn, "%g", hs[h]);
            else snprintf(hn, sizeof hn, "unlimited");
            printf("%-10s", hn);
            for (int k = 0; k < 4; k++)
                printf(" %*.3f%s", k == 0 ? 10 : 11, 1e3 * q[k].sum.server_work_s / q[k].sum.output_tokens,
                       q[k].sum.n_sla_ok < q[k].sum.n_requests || !q[k].sum.fits_kv ? "*" : " ");
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
    free(r);
    free(type_of);
    return rc;
}
