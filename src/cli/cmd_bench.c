/* cmd_bench.c — `weft bench engine`: drives the engine in-process with a generated or replayed
 * workload and reports throughput and latency. The engine runs on its own thread
 * (engine_start); this thread submits each request at its arrival time, sleeping in between, and
 * the metrics collector records the events the engine thread delivers. Output lengths are forced
 * (ignore_eos), so every mode compared in one invocation does exactly the same work on exactly
 * the same requests; only the scheduling differs. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_wl.h"
#include "cli/cli_args.h"
#include "cli/commands.h"
#include "weft/engine.h"
#include "weft/model.h"
#include "weft/predict.h"
#include "weft/sched.h"
#include "weft/synth.h"
#include "weft/tp.h"
#include "workload/metrics.h"
#include "workload/report.h"
#include "workload/step_model.h"
#include "workload/vclock.h"
#include "workload/workload.h"

#define MAX_MODES 4
#define MAX_KVS 2
#define MAX_POLICIES 6
#define DEFAULT_VOCAB "../shared/models/tokenizers/tokenizer_llama2_32000.bin"

static void bench_usage(FILE *out) {
    fprintf(
        out,
        "usage: weft bench engine (--model F | --synth PRESET[:TYPE]) [options]\n"
        "       weft bench serve --url URL [options]   (HTTP load; see weft bench serve --help)\n"
        "       weft bench split --server-profile S --client-profile C   (split planner)\n"
        "       weft bench stepfit --trace F... --out PARAMS   (virtual clock's step model)\n"
        "model:\n"
        "  -m, --model F              GGUF, or llama2.c .bin (then --tokenizer)\n"
        "  -z, --tokenizer F          llama2.c tokenizer.bin\n"
        "      --synth PRESET[:TYPE]  synthesize a model with random weights into a temporary\n"
        "                             file (types f32 f16 bf16 q8_0 q4_0; default f32); presets:");
    for (size_t i = 0; synth_preset_at(i); i++)
        fprintf(out, " %s", synth_preset_at(i)->name);
    fprintf(out,
            "\n"
            "      --synth-layers N       override the preset's layer count\n"
            "      --vocab-from F|none    tokenizer for --synth (default " DEFAULT_VOCAB "\n"
            "                             when present, else the preset's generated one)\n"
            "engine (each mode of --mode and each layout of --kv runs on the same workload):\n"
            "      --mode LIST            fused,sequential,static,dynamic (default fused)\n"
            "      --kv LIST              dense,paged (default paged)\n"
            "      --prefix-sharing       share cached prompt prefixes (paged)\n"
            "      --kv-type f16|f32|q8_0 KV cache element type (default f16)\n"
            "      --kv-tokens N          cache capacity in tokens (default: enough for\n"
            "                             min(max-running, requests) longest sequences)\n"
            "      --block-tokens N       paged block size (default 16)\n"
            "      --max-seq-len N        longest sequence; longer requests are clipped\n"
            "                             (default: the workload's longest, at most the model's)\n"
            "      --max-batch-tokens N   token budget of one step (default 512)\n"
            "      --max-running N        sequences running at once (default 64)\n"
            "      --max-batch-size N     static/dynamic batch size (default max-running)\n"
            "      --max-wait-ms N        dynamic batching wait (default 50)\n"
            "  -t, --threads N            kernel threads (default: all cores)\n"
            "scheduling (docs/scheduling.md; each policy runs on the same workload):\n"
            "      --policy LIST          fcfs,priority,spf,laxity,rtlm,oracle (default fcfs)\n"
            "      --aging-s S            hard wait bound of every policy but fcfs, and the\n"
            "                             spf/rtlm/oracle aging horizon (default 20)\n"
            "      --sched-tpot S         seconds per token the policies assume before the\n"
            "                             engine measured its step time (default 0.05)\n"
            "      --wide-ratio X         rtlm: p90 >= X * p50 is a wide prediction (default 2)\n"
            "      --late-policy L        laxity/rtlm, a request that can no longer make its\n"
            "                             deadline: keep|demote|drop (default keep)\n"
            "      --laxity-drop          the same as --late-policy drop\n"
            "      --preempt-ratio X      spf/rtlm/oracle: pause a running request for a newcomer\n"
            "                             X times shorter than every running one (default 2;\n"
            "                             0 = never pause)\n"
            "      --preempt-min-steps N  steps a request runs before it may be paused (default 8)\n"
            "      --rtlm-rank gittins|p90 rtlm's order and preemption: the Gittins index of the\n"
            "                             predicted length distribution (default) or the\n"
            "                             predicted work, p90 when wide (docs/scheduling.md)\n"
            "      --gittins-sigma-scale X rtlm gittins: scale the lognormal's sigma (default 1)\n"
            "      --preempt-compare C    auto|benefit|victim: pause when the newcomer is\n"
            "                             preempt-ratio x shorter than every running request\n"
            "                             (benefit) or than the victim (victim: the batch keeps\n"
            "                             the best-ranked); auto: victim for rtlm gittins, else\n"
            "                             benefit (default auto)\n"
            "      --consolidate          admit by predicted KV footprint (prompt + p90);\n"
            "                             static/dynamic: form each batch from the queue head\n"
            "                             and the requests of closest predicted length\n"
            "      --predictor P          default (built-in length model, fresh per run), a\n"
            "                             parameter file, or none (default: default)\n"
            "      --sched-csv F          append one scheduling row per run to F\n"
            "      --sched-trace F        write each run's scheduling timeline to F (admit,\n"
            "                             pause, resume, preempt, finish, steps; a 'run' line\n"
            "                             before each; docs/scheduling.md)\n"
            "      --tp N                 tensor parallelism over N MPI ranks (mpirun -np N)\n"
            "      --virtual-clock PARAMS time from the step-time model PARAMS (weft bench\n"
            "                             stepfit) instead of the wall clock: one thread steps\n"
            "                             the engine, the forward pass still runs; the runs'\n"
            "                             times are modelled and deterministic (mode column\n"
            "                             <mode>-virtual; docs/scheduling.md \"Simulator\")\n"
            "%s"
            "      --system-prefix N      the same N-token system prompt before every prompt\n"
            "output:\n"
            "      --label TEXT           tag for the runs in every output\n"
            "      --csv F                one row per run (overwrites F)\n"
            "      --csv-append F         append rows to F (header when F is new)\n"
            "      --json F               configuration, summary and per-request records\n"
            "      --warmup N             warm-up tokens before the first run (default 16, 0 = "
            "none)\n"
            "      --timeout S            give up on a run after S seconds (default 3600)\n"
            "  -q, --quiet                no progress lines on stderr\n",
            bench_wl_usage);
}

/* ---- options ---- */

typedef struct bench_opts {
    const char *model, *tokenizer, *synth, *vocab_from;
    int synth_layers;
    engine_mode modes[MAX_MODES];
    int n_modes;
    kv_layout kvs[MAX_KVS];
    int n_kvs;
    bool prefix_sharing;
    kv_dtype kv_type;
    int64_t kv_tokens;
    int block_tokens, max_seq_len, max_batch_tokens, max_running, max_batch_size, max_wait_ms;
    int threads;
    int tp; /* tensor-parallel ranks (--tp), 1 = none */
    bench_wl w;
    const char *label, *csv, *json;
    bool csv_append, quiet;
    int warmup;
    double timeout_s;
    const char *policies[MAX_POLICIES];
    int n_policies;
    bool have_policy, consolidate;
    sched_config sc;
    const char *predictor, *sched_csv;
    const char *sched_trace;
    const char *virtual_clock; /* --virtual-clock PARAMS, NULL = the wall clock */
    stepm_params vmodel;       /* its step-time model */
} bench_opts;

static int parse_policies(const char *s, bench_opts *o) {
    static char buf[128]; /* the names point into it for the whole run */
    snprintf(buf, sizeof buf, "%s", s);
    o->n_policies = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        sched_policy *p = sched_policy_new(t, NULL);
        if (!p || o->n_policies == MAX_POLICIES) {
            sched_policy_free(p);
            fprintf(stderr, "weft bench: --policy expects a list of %s; got '%s'\n",
                    sched_policy_names(), s);
            return -1;
        }
        sched_policy_free(p);
        o->policies[o->n_policies++] = t;
    }
    if (o->n_policies == 0) {
        fprintf(stderr, "weft bench: --policy needs at least one policy\n");
        return -1;
    }
    o->have_policy = true;
    return 0;
}

static int parse_modes(const char *s, bench_opts *o) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_modes = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        engine_mode m;
        if (engine_mode_parse(t, &m) != 0 || o->n_modes == MAX_MODES) {
            fprintf(stderr,
                    "weft bench: --mode expects a list of fused, sequential, static, dynamic; "
                    "got '%s'\n",
                    s);
            return -1;
        }
        o->modes[o->n_modes++] = m;
    }
    if (o->n_modes == 0) {
        fprintf(stderr, "weft bench: --mode needs at least one mode\n");
        return -1;
    }
    return 0;
}

static int parse_kvs(const char *s, bench_opts *o) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_kvs = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        kv_layout l;
        if (!strcmp(t, "dense"))
            l = KV_LAYOUT_DENSE;
        else if (!strcmp(t, "paged"))
            l = KV_LAYOUT_PAGED;
        else
            l = (kv_layout)-1;
        if ((int)l < 0 || o->n_kvs == MAX_KVS) {
            fprintf(stderr, "weft bench: --kv expects dense, paged or both; got '%s'\n", s);
            return -1;
        }
        o->kvs[o->n_kvs++] = l;
    }
    if (o->n_kvs == 0) {
        fprintf(stderr, "weft bench: --kv needs a layout\n");
        return -1;
    }
    return 0;
}

/* Returns 0, 1 for --help (exit 0), or -1 (exit 2). */
static int parse_opts(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    bench_wl_init(&o->w);
    o->modes[0] = ENGINE_FUSED;
    o->n_modes = 1;
    o->kvs[0] = KV_LAYOUT_PAGED;
    o->n_kvs = 1;
    o->block_tokens = 16;
    o->kv_type = KV_F16;
    o->max_batch_tokens = 512;
    o->max_running = 64;
    o->max_wait_ms = 50;
    o->warmup = 16;
    o->timeout_s = 3600;
    o->policies[0] = "fcfs";
    o->n_policies = 1;
    sched_config_defaults(&o->sc);
    o->predictor = "default";
    o->tp = 1;
    cli_args a = {argc, argv, 0, "bench"};
    while (a.i < a.argc) {
        const char *s = a.argv[a.i++];
        int rc = 0;
        if (!strcmp(s, "-h") || !strcmp(s, "--help"))
            return 1;
        else if (!strcmp(s, "-m") || !strcmp(s, "--model"))
            rc = cli_str(&a, s, &o->model);
        else if (!strcmp(s, "-z") || !strcmp(s, "--tokenizer"))
            rc = cli_str(&a, s, &o->tokenizer);
        else if (!strcmp(s, "--synth"))
            rc = cli_str(&a, s, &o->synth);
        else if (!strcmp(s, "--synth-layers"))
            rc = cli_int(&a, s, 1, 1024, &o->synth_layers);
        else if (!strcmp(s, "--vocab-from"))
            rc = cli_str(&a, s, &o->vocab_from);
        else if (!strcmp(s, "--mode")) {
            const char *v;
            rc = cli_str(&a, s, &v) || parse_modes(v, o);
        } else if (!strcmp(s, "--kv")) {
            const char *v;
            rc = cli_str(&a, s, &v) || parse_kvs(v, o);
        } else if (!strcmp(s, "--prefix-sharing"))
            o->prefix_sharing = true;
        else if (!strcmp(s, "--kv-type")) {
            const char *v;
            rc = cli_str(&a, s, &v);
            if (!rc && kv_dtype_parse(v, &o->kv_type) != 0) {
                fprintf(stderr, "weft bench engine: --kv-type expects f16, f32 or q8_0, got '%s'\n", v);
                rc = -1;
            }
        }
        else if (!strcmp(s, "--kv-tokens")) {
            int v;
            rc = cli_int(&a, s, 1, INT_MAX, &v);
            o->kv_tokens = v;
        } else if (!strcmp(s, "--block-tokens"))
            rc = cli_int(&a, s, 1, 4096, &o->block_tokens);
        else if (!strcmp(s, "--max-seq-len"))
            rc = cli_int(&a, s, 2, 1 << 20, &o->max_seq_len);
        else if (!strcmp(s, "--max-batch-tokens"))
            rc = cli_int(&a, s, 1, 1 << 20, &o->max_batch_tokens);
        else if (!strcmp(s, "--max-running"))
            rc = cli_int(&a, s, 1, 4096, &o->max_running);
        else if (!strcmp(s, "--max-batch-size"))
            rc = cli_int(&a, s, 1, 4096, &o->max_batch_size);
        else if (!strcmp(s, "--max-wait-ms"))
            rc = cli_int(&a, s, 0, 3600000, &o->max_wait_ms);
        else if (!strcmp(s, "-t") || !strcmp(s, "--threads"))
            rc = cli_int(&a, s, 1, 1024, &o->threads);
        else if (!strcmp(s, "--policy")) {
            const char *v;
            rc = cli_str(&a, s, &v) || parse_policies(v, o);
        } else if (!strcmp(s, "--aging-s"))
            rc = bench_parse_double(&a, s, 1e-3, 1e9, &o->sc.aging_s);
        else if (!strcmp(s, "--sched-tpot"))
            rc = bench_parse_double(&a, s, 1e-6, 100, &o->sc.tpot_s);
        else if (!strcmp(s, "--wide-ratio"))
            rc = bench_parse_double(&a, s, 1, 1000, &o->sc.wide_ratio);
        else if (!strcmp(s, "--laxity-drop"))
            o->sc.late_policy = SCHED_LATE_DROP;
        else if (!strcmp(s, "--late-policy")) {
            const char *v;
            rc = cli_str(&a, s, &v);
            if (!rc && sched_late_parse(v, &o->sc.late_policy) != 0) {
                fprintf(stderr, "weft bench engine: --late-policy: expected keep, demote or drop, "
                                "got '%s'\n", v);
                rc = -1;
            }
        }
        else if (!strcmp(s, "--preempt-ratio"))
            rc = bench_parse_double(&a, s, 0, 1000, &o->sc.preempt_ratio);
        else if (!strcmp(s, "--preempt-min-steps"))
            rc = cli_int(&a, s, 1, 1000000, &o->sc.preempt_min_steps);
        else if (!strcmp(s, "--rtlm-rank")) {
            const char *v;
            rc = cli_str(&a, s, &v);
            if (!rc && sched_rtlm_rank_parse(v, &o->sc.rtlm_rank) != 0) {
                fprintf(stderr, "weft bench engine: --rtlm-rank: expected p90 or gittins, got '%s'\n",
                        v);
                rc = -1;
            }
        } else if (!strcmp(s, "--preempt-compare")) {
            const char *v;
            rc = cli_str(&a, s, &v);
            if (!rc && sched_preempt_compare_parse(v, &o->sc.preempt_compare) != 0) {
                fprintf(stderr, "weft bench engine: --preempt-compare: expected auto, benefit or "
                                "victim, got '%s'\n", v);
                rc = -1;
            }
        } else if (!strcmp(s, "--gittins-sigma-scale"))
            rc = bench_parse_double(&a, s, 0.01, 100, &o->sc.gittins_sigma_scale);
        else if (!strcmp(s, "--consolidate"))
            o->consolidate = true;
        else if (!strcmp(s, "--predictor"))
            rc = cli_str(&a, s, &o->predictor);
        else if (!strcmp(s, "--sched-csv"))
            rc = cli_str(&a, s, &o->sched_csv);
        else if (!strcmp(s, "--sched-trace"))
            rc = cli_str(&a, s, &o->sched_trace);
        else if (!strcmp(s, "--virtual-clock"))
            rc = cli_str(&a, s, &o->virtual_clock);
        else if (!strcmp(s, "--tp"))
            rc = cli_int(&a, s, 1, 4096, &o->tp);
        else if (!strcmp(s, "--system-prefix"))
            rc = cli_int(&a, s, 1, 1 << 20, &o->w.wl.system_prefix);
        else if ((rc = bench_wl_option(&a, s, &o->w)) != 0)
            rc = rc < 0;
        else if (!strcmp(s, "--label"))
            rc = cli_str(&a, s, &o->label);
        else if (!strcmp(s, "--csv"))
            rc = cli_str(&a, s, &o->csv);
        else if (!strcmp(s, "--csv-append")) {
            rc = cli_str(&a, s, &o->csv);
            o->csv_append = true;
        } else if (!strcmp(s, "--json"))
            rc = cli_str(&a, s, &o->json);
        else if (!strcmp(s, "--warmup"))
            rc = cli_int(&a, s, 0, 4096, &o->warmup);
        else if (!strcmp(s, "--timeout"))
            rc = bench_parse_double(&a, s, 0.001, 1e7, &o->timeout_s);
        else if (!strcmp(s, "-q") || !strcmp(s, "--quiet"))
            o->quiet = true;
        else {
            fprintf(stderr, "weft bench: unknown option '%s'\n", s);
            return -1;
        }
        if (rc) return -1;
    }

    /* combinations */
    if (!o->model == !o->synth) {
        fprintf(stderr, "weft bench: give exactly one of --model and --synth\n");
        return -1;
    }
    if (bench_wl_finish(&o->w)) return -1;
    if (o->virtual_clock) {
        weft_err e = {{0}};
        if (stepm_load(o->virtual_clock, &o->vmodel, &e)) {
            fprintf(stderr, "weft bench: --virtual-clock: %s\n", e.msg);
            return -1;
        }
        if (o->tp > 1) {
            fprintf(stderr, "weft bench: --virtual-clock runs one process; it cannot be combined "
                            "with --tp\n");
            return -1;
        }
        for (int i = 0; i < o->n_modes; i++)
            if (o->modes[i] == ENGINE_DYNAMIC) {
                fprintf(stderr, "weft bench: --virtual-clock: the dynamic mode waits on the "
                                "clock between steps, which the virtual driver does not model\n");
                return -1;
            }
        o->warmup = 0; /* modelled times do not depend on a warm machine */
    }
    if (o->prefix_sharing) {
        for (int i = 0; i < o->n_kvs; i++)
            if (o->kvs[i] != KV_LAYOUT_PAGED) {
                fprintf(stderr, "weft bench: --prefix-sharing needs --kv paged\n");
                return -1;
            }
    }
    return 0;
}

/* ---- model ---- */

/* Synthesizes the model into a temporary file, loads it and unlinks the file (the mapping
 * keeps the data). Returns NULL after printing why; exit status 2 for a bad spec via *usage. */
static weft_model *synth_model(const bench_opts *o, char *desc, size_t desc_size, int *usage) {
    char preset[64];
    snprintf(preset, sizeof preset, "%s", o->synth);
    weft_dtype type = WEFT_F32;
    char *colon = strchr(preset, ':');
    if (colon) {
        *colon = 0;
        if (dtype_from_name(colon + 1, &type)) {
            fprintf(stderr, "weft bench: --synth type '%s' unknown (f32, f16, bf16, q8_0, q4_0)\n",
                    colon + 1);
            *usage = 1;
            return NULL;
        }
    }
    if (!synth_find_preset(preset)) {
        fprintf(stderr, "weft bench: --synth preset '%s' unknown\n", preset);
        *usage = 1;
        return NULL;
    }
    synth_options so;
    synth_options_init(&so);
    so.preset = preset;
    so.type = type;
    so.n_layers = (uint32_t)o->synth_layers;
    if (o->vocab_from && strcmp(o->vocab_from, "none"))
        so.vocab_from = o->vocab_from;
    else if (!o->vocab_from && access(DEFAULT_VOCAB, R_OK) == 0)
        so.vocab_from = DEFAULT_VOCAB;

    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/weft-bench-XXXXXX.gguf", dir && *dir ? dir : "/tmp");
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        fprintf(stderr, "weft bench: cannot create a temporary file in %s: %s\n",
                dir && *dir ? dir : "/tmp", strerror(errno));
        return NULL;
    }
    close(fd);
    weft_err err = {{0}};
    synth_result res;
    weft_model *m = NULL;
    if (synth_write(&so, path, &res, &err) == 0) m = model_load(path, NULL, &err);
    if (unlink(path) != 0 && errno != ENOENT)
        fprintf(stderr, "weft bench: warning: cannot remove %s: %s\n", path, strerror(errno));
    if (!m) {
        fprintf(stderr, "weft bench: --synth %s: %s\n", o->synth, err.msg);
        return NULL;
    }
    snprintf(desc, desc_size, "synth %s %s (%.1fM params, %.0f MB weights, vocab %s)", preset,
             dtype_name(type), (double)model_param_count(m) / 1e6,
             (double)model_weight_bytes(m) / 1e6, so.vocab_from ? so.vocab_from : "generated");
    return m;
}

/* ---- one run ---- */

typedef struct run_setup {
    const bench_opts *o;
    const weft_model *m;
    const wl_workload *w;
    int max_seq_len;
    int64_t kv_tokens;
    FILE *trace; /* --sched-trace, NULL = none */
} run_setup;

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* What submitting one request of the workload needs (both drivers). */
typedef struct submit_ctx {
    const bench_opts *o;
    const wl_workload *w;
    pred_model *pm;
    metrics_collector *coll;
    weft_sampling sp;
    int n_refused;
} submit_ctx;

/* Submits request i of the workload to e, stamped with the engine clock (vclock_submit_fn). */
static int submit_request(void *vctx, engine *e, int i) {
    submit_ctx *c = vctx;
    const bench_opts *o = c->o;
    const wl_request *q = &c->w->req[i];
    weft_err err = {{0}};
    engine_request er = {0};
    er.id = (uint64_t)i;
    er.prompt = q->prompt;
    er.n_prompt = q->n_prompt;
    er.max_tokens = q->n_output;
    er.sampling = c->sp;
    er.sampling.seed = o->w.wl.seed + (uint64_t)i;
    er.ignore_eos = true;
    er.on_event = metrics_collector_on_event;
    er.ctx = c->coll;
    er.true_tokens = q->n_output; /* read by the oracle policy only */
    /* the other policies see the workload's nominal cap, not the forced length */
    if (o->w.wl.max_output > q->n_output) er.sched_max_tokens = o->w.wl.max_output;
    er.priority = bench_wl_priority(&o->w, i);
    er.deadline_ms = bench_wl_deadline_ms(&o->w, q);
    /* The caller's side of prediction: text features (microseconds), as the server does. */
    pred_features feat;
    if (c->pm) {
        const char *text = q->text ? q->text : "";
        pred_features_text(text, strlen(text), q->n_prompt, &feat);
        er.features = &feat;
    }
    metrics_collector_submit(c->coll, i, engine_now_s(e), q->n_prompt, q->n_output);
    metrics_collector_set_sched(c->coll, i, 1e-3 * er.deadline_ms, er.priority);
    if (engine_submit(e, &er, &err) != 0) {
        if (c->n_refused++ < 3) fprintf(stderr, "weft bench: request %d refused: %s\n", i, err.msg);
        metrics_collector_refused(c->coll, i);
        return -1;
    }
    return 0;
}

/* The virtual-clock driver (--virtual-clock): this thread steps the engine; returns the number
 * of requests finished, or -1 after printing the error. */
static int drive_virtual(vclock *vc, engine *e, submit_ctx *c) {
    const wl_workload *w = c->w;
    double *arr = malloc(sizeof *arr * (size_t)(w->n > 0 ? w->n : 1));
    if (!arr) {
        fprintf(stderr, "weft bench: out of memory\n");
        return -1;
    }
    for (int i = 0; i < w->n; i++)
        arr[i] = w->req[i].arrival_s;
    weft_err err = {{0}};
    int rc = vclock_run(vc, e, w->n, arr, submit_request, c, &err);
    free(arr);
    if (rc) {
        fprintf(stderr, "weft bench: %s\n", err.msg);
        return -1;
    }
    return metrics_collector_wait(c->coll, w->n, 0.001);
}

/* Runs workload w under one configuration; fills r (r->req points into *reqs_out, malloc'd).
 * Returns 0, or -1 after printing the error. */
static int run_one(const run_setup *s, engine_mode mode, kv_layout kv, const char *policy,
                   report_run *r, metrics_request **reqs_out) {
    const bench_opts *o = s->o;
    const wl_workload *w = s->w;
    engine_config cfg;
    engine_config_defaults(&cfg);
    cfg.mode = mode;
    cfg.kv.layout = kv;
    cfg.kv.capacity_tokens = s->kv_tokens;
    cfg.kv.capacity_bytes = 0;
    cfg.kv.max_seq_len = s->max_seq_len;
    cfg.kv.block_tokens = o->block_tokens;
    cfg.kv.prefix_sharing = o->prefix_sharing && kv == KV_LAYOUT_PAGED;
    cfg.kv.dtype = o->kv_type;
    cfg.max_batch_tokens = o->max_batch_tokens;
    cfg.max_running = o->max_running;
    cfg.max_batch_size = o->max_batch_size > 0 ? o->max_batch_size : o->max_running;
    cfg.max_wait_ms = o->max_wait_ms;
    cfg.n_threads = o->threads;
    cfg.consolidate = o->consolidate;
    cfg.sched_trace = s->trace;
    vclock vc;
    if (o->virtual_clock) {
        vclock_init(&vc, &o->vmodel);
        cfg.clock = vclock_source(&vc);
    }

    weft_err err = {{0}};
    /* A fresh length model per run: it learns online, and every policy must start from the
     * same one. */
    pred_model *pm = NULL;
    if (strcmp(o->predictor, "none")) {
        pm = !strcmp(o->predictor, "default") ? pred_model_default(&err)
                                              : pred_model_load(o->predictor, &err);
        if (!pm) {
            fprintf(stderr, "weft bench: predictor %s: %s\n", o->predictor, err.msg);
            return -1;
        }
        cfg.predictor = sched_predictor_hooks(pm);
    }
    cfg.policy = sched_policy_new(policy, &o->sc);
    if (!cfg.policy) {
        fprintf(stderr, "weft bench: cannot create policy %s\n", policy);
        pred_model_free(pm);
        return -1;
    }
    metrics_collector coll;
    if (metrics_collector_init(&coll, w->n, &err)) {
        fprintf(stderr, "weft bench: %s\n", err.msg);
        sched_policy_free(cfg.policy);
        pred_model_free(pm);
        return -1;
    }
    engine *e = engine_new(s->m, &cfg, &err); /* owns the policy from here, even on failure */
    if (!e) {
        fprintf(stderr, "weft bench: %s/%s: %s\n", engine_mode_name(mode),
                kv == KV_LAYOUT_DENSE ? "dense" : "paged", err.msg);
        metrics_collector_destroy(&coll);
        pred_model_free(pm);
        return -1;
    }
    if (!o->virtual_clock && engine_start(e, &err)) {
        fprintf(stderr, "weft bench: cannot start the engine: %s\n", err.msg);
        engine_free(e);
        metrics_collector_destroy(&coll);
        pred_model_free(pm);
        return -1;
    }
    submit_ctx sc = {.o = o, .w = w, .pm = pm, .coll = &coll};
    sampling_defaults(&sc.sp);
    sc.sp.temperature = o->w.temp;
    sc.sp.seed = o->w.wl.seed;
    double t0 = engine_now_s(e);
    int done;
    if (o->virtual_clock) {
        done = drive_virtual(&vc, e, &sc);
    } else {
        for (int i = 0; i < w->n; i++) {
            const wl_request *q = &w->req[i];
            for (double now; (now = engine_now_s(e)) < t0 + q->arrival_s;)
                sleep_s(fmin(t0 + q->arrival_s - now, 0.05));
            (void)submit_request(&sc, e, i);
        }
        done = metrics_collector_wait(&coll, w->n, o->timeout_s);
    }
    double wall = engine_now_s(e) - t0;
    engine_get_stats(e, &r->st);
    engine_stop(e);
    engine_free(e); /* cancels whatever is left (after a timeout) */
    pred_model_free(pm);
    metrics_request *reqs = malloc(sizeof *reqs * (size_t)w->n);
    int rc = 0;
    if (!reqs) {
        fprintf(stderr, "weft bench: out of memory\n");
        rc = -1;
    } else {
        metrics_collector_snapshot(&coll, reqs);
        if (metrics_summarize(reqs, w->n, &r->sum, &err)) {
            fprintf(stderr, "weft bench: %s\n", err.msg);
            rc = -1;
        }
    }
    metrics_collector_destroy(&coll);
    if (done < 0)
        rc = -1; /* the virtual driver printed why */
    else if (done < w->n) {
        fprintf(stderr, "weft bench: %s: only %d of %d requests finished within %.0f s\n",
                engine_mode_name(mode), done, w->n, o->timeout_s);
    }
    r->label = o->label;
    static const char *const virtual_modes[] = {"fused-virtual", "sequential-virtual",
                                                "static-virtual", "dynamic-virtual"};
    r->mode = o->virtual_clock ? virtual_modes[mode] : engine_mode_name(mode);
    r->kv = kv == KV_LAYOUT_DENSE ? "dense" : "paged";
    r->prefix_sharing = cfg.kv.prefix_sharing;
    r->max_running = cfg.max_running;
    r->max_batch_tokens = cfg.max_batch_tokens;
    r->max_wait_ms = cfg.max_wait_ms;
    r->n_threads = o->threads;
    r->max_seq_len = s->max_seq_len;
    r->kv_tokens = s->kv_tokens;
    r->wall_s = wall;
    r->policy = policy;
    r->aging_s = strcmp(policy, "fcfs") ? o->sc.aging_s : 0; /* the wait bound (sched_bound.c) */
    r->req = reqs;
    r->n_req = w->n;
    *reqs_out = reqs;
    return rc;
}

/* A short generation so the first measured run does not pay for page faults and cold caches. */
static void warm_up(const run_setup *s, int tokens) {
    if (tokens <= 0) return;
    int32_t prompt[8];
    int n = s->w->req[0].n_prompt < 8 ? s->w->req[0].n_prompt : 8;
    memcpy(prompt, s->w->req[0].prompt, sizeof *prompt * (size_t)n);
    wl_request q = {0, prompt, n, tokens < s->max_seq_len - n ? tokens : s->max_seq_len - n, NULL};
    wl_workload w = {&q, 1, 0};
    bench_opts o = *s->o;
    o.timeout_s = 600;
    run_setup ws = *s;
    ws.trace = NULL; /* the warm-up is not a measured run */
    ws.o = &o;
    ws.w = &w;
    report_run r = {0};
    metrics_request *reqs = NULL;
    (void)run_one(&ws, ENGINE_FUSED, s->o->kvs[0], "fcfs", &r, &reqs);
    free(reqs);
}

typedef struct bench_load {
    const bench_opts *o;
    char *desc;
    size_t desc_size;
    int usage;
} bench_load;

/* Loads (or synthesizes) the model and describes it, before any tensor-parallel sharding. */
static weft_model *bench_load_model(void *ctx, weft_err *err) {
    bench_load *l = ctx;
    const bench_opts *o = l->o;
    weft_model *m;
    if (o->synth) {
        m = synth_model(o, l->desc, l->desc_size, &l->usage);
        if (!m && o->tp > 1) weft_errf(err, "--synth %s failed", o->synth); /* else printed */
        return m;
    }
    m = model_load(o->model, o->tokenizer, err);
    if (m)
        snprintf(l->desc, l->desc_size, "%s (%.1fM params, %.0f MB weights)", o->model,
                 (double)model_param_count(m) / 1e6, (double)model_weight_bytes(m) / 1e6);
    return m;
}

static int bench_engine(int argc, char **argv) {
    bench_opts o;
    int p = parse_opts(argc, argv, &o);
    if (p == 1) {
        bench_usage(stdout);
        return 0;
    }
    if (p < 0) return 2;

    char model_desc[512];
    weft_err err = {{0}};
    weft_model *m;
    tp_session *tps = NULL;
    bench_load ld = {&o, model_desc, sizeof model_desc, 0};
    int follower_rc = 0;
    int jr = tp_job_begin(o.tp, bench_load_model, &ld, o.threads, &tps, &m, &follower_rc, &err);
    if (jr == 1) return follower_rc; /* a tensor-parallel follower rank, done */
    if (jr != 0) {
        if (err.msg[0]) fprintf(stderr, "weft bench: %s\n", err.msg);
        return ld.usage ? 2 : 1;
    }
    if (o.tp > 1) {
        size_t n = strlen(model_desc);
        snprintf(model_desc + n, sizeof model_desc - n, ", tensor parallel over %d ranks", o.tp);
    }

    int rc = 1;
    wl_workload w = {0};
    report_run runs[MAX_MODES * MAX_KVS * MAX_POLICIES];
    metrics_request *reqs[MAX_MODES * MAX_KVS * MAX_POLICIES] = {0};
    int n_runs = 0;

    o.w.wl.max_seq_len = o.max_seq_len > 0 ? o.max_seq_len : m->cfg.ctx_len;
    if (wl_workload_build(&o.w.wl, m->tok, m->cfg.vocab_size, m->cfg.bos_id, &w, &err)) {
        fprintf(stderr, "weft bench: workload: %s\n", err.msg);
        goto done;
    }
    run_setup s = {&o, m, &w, 0, 0, NULL};
    if (o.max_seq_len > 0)
        s.max_seq_len = o.max_seq_len;
    else {
        int bt = o.block_tokens;
        s.max_seq_len = (wl_workload_longest(&w) + bt - 1) / bt * bt;
        if (s.max_seq_len > m->cfg.ctx_len && wl_workload_longest(&w) <= m->cfg.ctx_len)
            s.max_seq_len = m->cfg.ctx_len;
    }
    int conc = o.max_running < w.n ? o.max_running : w.n;
    s.kv_tokens = o.kv_tokens > 0 ? o.kv_tokens : (int64_t)conc * s.max_seq_len;

    char wdesc[1024], machine[512], mdesc[768];
    bench_wl_describe(&o.w, &w, wdesc, sizeof wdesc);
    report_machine(machine, sizeof machine);
    if (o.virtual_clock) { /* the times are modelled: say so wherever the machine is named */
        char real[512];
        snprintf(real, sizeof real, "%s", machine);
        snprintf(machine, sizeof machine,
                 "VIRTUAL CLOCK (step model %.80s): times modelled, not measured; forward "
                 "passes ran on %.100s", o.virtual_clock, real);
    }
    snprintf(mdesc, sizeof mdesc, "%s; max_seq_len %d, KV %lld tokens", model_desc, s.max_seq_len,
             (long long)s.kv_tokens);
    size_t cmd_len = sizeof "weft bench engine";
    for (int i = 0; i < argc; i++)
        cmd_len += strlen(argv[i]) + 1;
    char *cmd = malloc(cmd_len);
    if (!cmd) {
        fprintf(stderr, "weft bench: out of memory\n");
        goto done;
    }
    strcpy(cmd, "weft bench engine");
    for (int i = 0; i < argc; i++) {
        strcat(cmd, " ");
        strcat(cmd, argv[i]);
    }
    report_meta meta = {mdesc, wdesc, machine, cmd};
    if (!o.quiet) fprintf(stderr, "bench: %s\nbench: %s\n", mdesc, wdesc);

    warm_up(&s, o.warmup);
    int failed = 0;
    if (o.sched_trace && !(s.trace = fopen(o.sched_trace, "w"))) {
        fprintf(stderr, "weft bench: --sched-trace %s: %s\n", o.sched_trace, strerror(errno));
        free(cmd);
        goto done;
    }
    for (int k = 0; k < o.n_kvs; k++)
        for (int i = 0; i < o.n_modes; i++)
        for (int pi = 0; pi < o.n_policies; pi++) {
            report_run *r = &runs[n_runs];
            memset(r, 0, sizeof *r);
            if (s.trace)
                fprintf(s.trace, "run %s %s %s %s\n", o.label ? o.label : "-",
                        engine_mode_name(o.modes[i]),
                        o.kvs[k] == KV_LAYOUT_DENSE ? "dense" : "paged", o.policies[pi]);
            if (run_one(&s, o.modes[i], o.kvs[k], o.policies[pi], r, &reqs[n_runs])) {
                free(reqs[n_runs]);
                reqs[n_runs] = NULL;
                failed = 1;
                goto report;
            }
            if (!o.quiet)
                fprintf(stderr,
                        "bench: %s/%s%s/%s: %d/%d finished, makespan %.2f s, %.1f output tok/s\n",
                        r->mode, r->kv, r->prefix_sharing ? "+prefix" : "", r->policy,
                        r->sum.n_finished,
                        r->sum.n_requests, r->sum.makespan_s, r->sum.output_tok_per_s);
            if (r->sum.n_finished < r->sum.n_requests) failed = 1;
            n_runs++;
        }
report:
    if (s.trace) {
        bool bad = ferror(s.trace) != 0;
        if (fclose(s.trace) != 0 || bad) {
            fprintf(stderr, "weft bench: --sched-trace %s: write error\n", o.sched_trace);
            failed = 1;
        }
        s.trace = NULL;
    }
    report_table(stdout, &meta, runs, n_runs);
    if (o.have_policy || o.sched_csv) {
        fprintf(stdout, "\nscheduling:\n\n");
        report_sched_table(stdout, NULL, runs, n_runs);
    }
    fflush(stdout);
    if (o.sched_csv && report_sched_csv(o.sched_csv, true, runs, n_runs, &err)) {
        fprintf(stderr, "weft bench: %s\n", err.msg);
        failed = 1;
    }
    if (o.csv && report_csv(o.csv, o.csv_append, runs, n_runs, &err)) {
        fprintf(stderr, "weft bench: %s\n", err.msg);
        failed = 1;
    }
    if (o.json && report_json(o.json, &meta, runs, n_runs, &err)) {
        fprintf(stderr, "weft bench: %s\n", err.msg);
        failed = 1;
    }
    free(cmd);
    rc = failed ? 1 : 0;
done:
    for (int i = 0; i < n_runs; i++)
        free(reqs[i]);
    wl_workload_free(&w);
    tp_job_end(tps);
    model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "-h") || !strcmp(argv[0], "--help")) {
        bench_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (!strcmp(argv[0], "engine")) return bench_engine(argc - 1, argv + 1);
    if (!strcmp(argv[0], "serve")) return cmd_bench_serve(argc - 1, argv + 1);
    if (!strcmp(argv[0], "split")) return cmd_bench_split(argc - 1, argv + 1);
    if (!strcmp(argv[0], "stepfit")) return cmd_bench_stepfit(argc - 1, argv + 1);
    fprintf(stderr, "weft bench: unknown target '%s' (engine, serve, split or stepfit)\n", argv[0]);
    return 2;
}
