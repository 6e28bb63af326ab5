/* config.c — `weft serve` options. One table names every option once: its long flag, its
 * environment variable, its type, range and help text; flags, environment and config file
 * (`key = value` lines, keys as the long options without dashes) all go through it, so the
 * three sources cannot drift apart. Precedence: flag > environment > file > default. */
#include "server/server.h"
#include "weft/kv.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef enum opt_kind { OPT_STR, OPT_INT, OPT_SIZE, OPT_BOOL, OPT_ENUM } opt_kind;

typedef struct opt_def {
    const char *name; /* long option without "--" */
    const char *env;
    opt_kind kind;
    const char *arg;  /* placeholder in --help */
    const char *help;
    int64_t lo, hi;   /* OPT_INT range */
    const char *choices; /* OPT_ENUM: '|'-separated */
} opt_def;

static const opt_def opts[] = {
    {"model", "WEFT_MODEL", OPT_STR, "F", "GGUF model file (required)", 0, 0, NULL},
    {"model-name", "WEFT_MODEL_NAME", OPT_STR, "NAME",
     "model id reported by /v1/models (default: the file's base name)", 0, 0, NULL},
    {"host", "WEFT_HOST", OPT_STR, "ADDR", "IPv4/IPv6 address to bind (default 127.0.0.1)", 0,
     0, NULL},
    {"port", "WEFT_PORT", OPT_INT, "N", "TCP port, 0 = any free port (default 8080)", 0, 65535,
     NULL},
    {"api-key", "WEFT_API_KEY", OPT_STR, "K",
     "require 'Authorization: Bearer K' on every endpoint but /health", 0, 0, NULL},
    {"max-queue", "WEFT_MAX_QUEUE", OPT_INT, "N",
     "waiting requests before new ones get 429 (default 64)", 1, 1000000, NULL},
    {"kv-cache", "WEFT_KV_CACHE", OPT_SIZE, "SIZE",
     "KV cache capacity: tokens, or bytes with a K/M/G suffix (default: engine's)", 0, 0, NULL},
    {"kv-layout", "WEFT_KV_LAYOUT", OPT_ENUM, "L", "dense|paged (default dense)", 0, 0,
     "dense|paged"},
    {"kv-type", "WEFT_KV_TYPE", OPT_ENUM, "T",
     "KV cache element type: f16 (half the bytes per token), f32, or q8_0 (int8 + a scale per "
     "head row, ~1.9x the tokens of f16) (default f16)", 0, 0, "f16|f32|q8_0"},
    {"prefix-sharing", "WEFT_PREFIX_SHARING", OPT_BOOL, NULL,
     "share common prompt prefixes (paged layout only)", 0, 0, NULL},
    {"ctx", "WEFT_CTX", OPT_INT, "N", "context length per request (default: the model's)", 2,
     1 << 20, NULL},
    {"max-tokens-cap", "WEFT_MAX_TOKENS_CAP", OPT_INT, "N",
     "lower any larger max_tokens to N (default 0 = reject over-long requests)", 0, INT_MAX,
     NULL},
    {"queue-timeout-ms", "WEFT_QUEUE_TIMEOUT_MS", OPT_INT, "N",
     "cancel a request without a first token after N ms (default 0 = none)", 0, INT_MAX, NULL},
    {"max-body-bytes", "WEFT_MAX_BODY_BYTES", OPT_INT, "N",
     "largest request body (default 1048576)", 1, INT_MAX, NULL},
    {"threads", "WEFT_THREADS", OPT_INT, "N", "kernel worker threads (default: all cores)", 0,
     1024, NULL},
    {"tp", "WEFT_TP", OPT_INT, "N",
     "tensor parallelism over N MPI ranks; start as mpirun -np N weft serve --tp N (default 1)",
     1, 4096, NULL},
    {"chat-template", "WEFT_CHAT_TEMPLATE", OPT_ENUM, "T",
     "llama2|chatml|zephyr|raw (default: detected from the model)", 0, 0,
     "llama2|chatml|zephyr|raw"},
    {"shutdown-timeout-s", "WEFT_SHUTDOWN_TIMEOUT_S", OPT_INT, "N",
     "on SIGTERM, wait N s for running requests before cancelling them (default 30)", 0, 86400,
     NULL},
    {"max-connections", "WEFT_MAX_CONNECTIONS", OPT_INT, "N",
     "concurrent HTTP connections (default 256)", 1, 100000, NULL},
    {"connection-timeout-s", "WEFT_CONNECTION_TIMEOUT_S", OPT_INT, "N",
     "close idle connections and partial requests after N s (default 30)", 1, 86400, NULL},
    {"policy", "WEFT_POLICY", OPT_ENUM, "P",
     "scheduling policy fcfs|priority|spf|laxity|rtlm (default fcfs; docs/scheduling.md)", 0, 0,
     "fcfs|priority|spf|laxity|rtlm"},
    {"aging-s", "WEFT_AGING_S", OPT_INT, "N",
     "every policy but fcfs: no request waits (queued and paused) longer than N s; spf/rtlm "
     "also age ranks over it (default 20)", 1, 86400, NULL},
    {"late-policy", "WEFT_LATE_POLICY", OPT_ENUM, "L",
     "laxity/rtlm, a request that can no longer meet deadline_ms: keep (its normal order), "
     "demote (behind all that can) or drop (finish_reason \"deadline\") (default keep)", 0, 0,
     "keep|demote|drop"},
    {"rtlm-rank", "WEFT_RTLM_RANK", OPT_ENUM, "R",
     "rtlm's order and preemption: gittins (the Gittins index of the predicted length "
     "distribution) or p90 (predicted work, p90 when wide; the earlier rules) (default gittins)", 0, 0, "p90|gittins"},
    {"preempt-compare", "WEFT_PREEMPT_COMPARE", OPT_ENUM, "C",
     "spf/rtlm: which running request a waiting one must beat to pause it: victim (only the one "
     "it would pause), benefit (every one) or auto (victim for rtlm's Gittins rank, else "
     "benefit) (default auto)", 0, 0, "auto|benefit|victim"},
    {"laxity-drop", "WEFT_LAXITY_DROP", OPT_BOOL, NULL,
     "the same as --late-policy drop (kept for existing configurations)", 0,
     0, NULL},
    {"consolidate", "WEFT_CONSOLIDATE", OPT_BOOL, NULL,
     "admit only while the batch's predicted KV footprint (prompt + p90 output) fits", 0, 0,
     NULL},
    {"max-running", "WEFT_MAX_RUNNING", OPT_INT, "N",
     "sequences in the primary worker's running batch (default 64)", 1, 4096, NULL},
    {"predictor", "WEFT_PREDICTOR", OPT_STR, "P",
     "length model: default (built in), none, or a parameter file (weft predict fit)", 0, 0,
     NULL},
    {"workers", "WEFT_WORKERS", OPT_INT, "N",
     "engines (each with its own threads and KV cache); N > 1 offloads requests that would "
     "miss deadline_ms on the primary to a secondary that can meet it (default 1)", 1, 4, NULL},
    {"secondary-threads", "WEFT_SECONDARY_THREADS", OPT_INT, "N",
     "kernel threads of each secondary worker (default 1)", 1, 1024, NULL},
    {"secondary-max-running", "WEFT_SECONDARY_MAX_RUNNING", OPT_INT, "N",
     "running batch of each secondary worker (default 4)", 1, 4096, NULL},
    {"split-port", "WEFT_SPLIT_PORT", OPT_INT, "N",
     "accept split-inference clients on TCP port N, 0 = any free port (default off)", 0, 65535,
     NULL},
    {"split-profile", "WEFT_SPLIT_PROFILE", OPT_STR, "F",
     "this server's `weft split profile` JSON: plans the split of clients asking for auto", 0, 0,
     NULL},
    {"config", "WEFT_CONFIG", OPT_STR, "FILE", "read options from FILE (key = value lines)", 0,
     0, NULL},
};
enum { N_OPTS = sizeof opts / sizeof opts[0] };

void srv_config_usage(FILE *out) {
    fprintf(out, "usage: weft serve --model F.gguf [options]\n"
                 "OpenAI-compatible HTTP server (see docs/server.md).\n"
                 "Every option may also come from its environment variable or from a config\n"
                 "file line `name = value`; precedence: flag > environment > file > default.\n");
    for (int i = 0; i < N_OPTS; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                 opts[i].arg ? opts[i].arg : "");
        fprintf(out, "  %-26s %s\n  %-26s   [env %s]\n", left, opts[i].help, "", opts[i].env);
    }
    fprintf(out, "  %-26s %s\n", "-h, --help", "this text");
}

static void config_defaults(srv_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8080;
    c->max_queue = 64;
    c->kv_type = KV_F16;
    c->tp = 1;
    c->max_body_bytes = 1 << 20;
    c->shutdown_timeout_s = 30;
    c->max_connections = 256;
    c->connection_timeout_s = 30;
    snprintf(c->policy, sizeof c->policy, "fcfs");
    c->aging_s = 20;
    snprintf(c->late_policy, sizeof c->late_policy, "keep");
    snprintf(c->rtlm_rank, sizeof c->rtlm_rank, "gittins");
    snprintf(c->preempt_compare, sizeof c->preempt_compare, "auto");
    snprintf(c->predictor, sizeof c->predictor, "default");
    c->workers = 1;
    c->secondary_threads = 1;
    c->secondary_max_running = 4;
    c->split_port = -1;
}

static int copy_str(char *dst, size_t size, const char *v, const char *src, const char *name) {
    size_t n = strlen(v);
    if (n >= size) {
        fprintf(stderr, "weft serve: %s (%s): value longer than %zu bytes\n", name, src, size - 1);
        return -1;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

/* "123" tokens, or "64M" bytes (K/M/G, powers of 1024). */
static int parse_size(const char *v, int64_t *tokens, int64_t *bytes) {
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || n <= 0) return -1;
    int64_t mul = 0;
    if (*end == 'K' || *end == 'k') mul = 1024;
    else if (*end == 'M' || *end == 'm') mul = 1024 * 1024;
    else if (*end == 'G' || *end == 'g') mul = 1024LL * 1024 * 1024;
    if (mul) {
        end++;
        if (*end == 'B' || *end == 'b') end++;
    }
    if (*end) return -1;
    if (mul && n > INT64_MAX / mul) return -1;
    *tokens = mul ? 0 : n;
    *bytes = mul ? n * mul : 0;
    return 0;
}

static int parse_bool(const char *v, bool *out) {
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")) {
        *out = false;
        return 0;
    }
    return -1;
}

static bool enum_ok(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* Applies value v of option d; src names the source for messages. */
static int apply(srv_config *c, const opt_def *d, const char *v, const char *src) {
    const char *name = d->name;
    switch (d->kind) {
    case OPT_INT: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end || n < d->lo || n > d->hi) {
            fprintf(stderr, "weft serve: --%s (%s) expects an integer in [%lld, %lld], got '%s'\n",
                    name, src, (long long)d->lo, (long long)d->hi, v);
            return -1;
        }
        int iv = (int)n;
        if (!strcmp(name, "port")) c->port = iv;
        else if (!strcmp(name, "max-queue")) c->max_queue = iv;
        else if (!strcmp(name, "ctx")) c->ctx = iv;
        else if (!strcmp(name, "max-tokens-cap")) c->max_tokens_cap = iv;
        else if (!strcmp(name, "queue-timeout-ms")) c->queue_timeout_ms = iv;
        else if (!strcmp(name, "max-body-bytes")) c->max_body_bytes = iv;
        else if (!strcmp(name, "threads")) c->threads = iv;
        else if (!strcmp(name, "tp")) c->tp = iv;
        else if (!strcmp(name, "shutdown-timeout-s")) c->shutdown_timeout_s = iv;
        else if (!strcmp(name, "max-connections")) c->max_connections = iv;
        else if (!strcmp(name, "connection-timeout-s")) c->connection_timeout_s = iv;
        else if (!strcmp(name, "aging-s")) c->aging_s = iv;
        else if (!strcmp(name, "max-running")) c->max_running = iv;
        else if (!strcmp(name, "workers")) c->workers = iv;
        else if (!strcmp(name, "secondary-threads")) c->secondary_threads = iv;
        else if (!strcmp(name, "secondary-max-running")) c->secondary_max_running = iv;
        else if (!strcmp(name, "split-port")) c->split_port = iv;
        return 0;
    }
    case OPT_SIZE:
        if (parse_size(v, &c->kv_cache_tokens, &c->kv_cache_bytes) != 0) {
            fprintf(stderr,
                    "weft serve: --%s (%s) expects tokens or bytes with K/M/G (e.g. 4096, 64M), "
                    "got '%s'\n",
                    name, src, v);
            return -1;
        }
        return 0;
    case OPT_BOOL: {
        bool b;
        if (parse_bool(v, &b) != 0) {
            fprintf(stderr, "weft serve: --%s (%s) expects true/false/1/0, got '%s'\n", name, src,
                    v);
            return -1;
        }
        if (!strcmp(name, "laxity-drop")) c->laxity_drop = b;
        else if (!strcmp(name, "consolidate")) c->consolidate = b;
        else c->prefix_sharing = b;
        return 0;
    }
    case OPT_ENUM:
        if (!enum_ok(d->choices, v)) {
            fprintf(stderr, "weft serve: --%s (%s) expects one of %s, got '%s'\n", name, src,
                    d->choices, v);
            return -1;
        }
        if (!strcmp(name, "kv-layout")) c->kv_paged = !strcmp(v, "paged");
        else if (!strcmp(name, "kv-type")) c->kv_type = !strcmp(v, "f32")    ? KV_F32
                                                         : !strcmp(v, "q8_0") ? KV_Q8_0
                                                                              : KV_F16;
        else if (!strcmp(name, "policy")) return copy_str(c->policy, sizeof c->policy, v, src, name);
        else if (!strcmp(name, "late-policy"))
            return copy_str(c->late_policy, sizeof c->late_policy, v, src, name);
        else if (!strcmp(name, "rtlm-rank"))
            return copy_str(c->rtlm_rank, sizeof c->rtlm_rank, v, src, name);
        else if (!strcmp(name, "preempt-compare"))
            return copy_str(c->preempt_compare, sizeof c->preempt_compare, v, src, name);
        else return copy_str(c->chat_template, sizeof c->chat_template, v, src, name);
        return 0;
    case OPT_STR:
        if (!strcmp(name, "model")) return copy_str(c->model, sizeof c->model, v, src, name);
        if (!strcmp(name, "model-name"))
            return copy_str(c->model_name, sizeof c->model_name, v, src, name);
        if (!strcmp(name, "host")) return copy_str(c->host, sizeof c->host, v, src, name);
        if (!strcmp(name, "api-key"))
            return copy_str(c->api_key, sizeof c->api_key, v, src, name);
        if (!strcmp(name, "predictor"))
            return copy_str(c->predictor, sizeof c->predictor, v, src, name);
        if (!strcmp(name, "split-profile"))
            return copy_str(c->split_profile, sizeof c->split_profile, v, src, name);
        return 0; /* config: handled by the caller */
    }
    return 0;
}

static const opt_def *find_opt(const char *name) {
    for (int i = 0; i < N_OPTS; i++)
        if (!strcmp(opts[i].name, name)) return &opts[i];
    return NULL;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

static int load_file(srv_config *c, const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "weft serve: cannot open config file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, fp)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(fp)) {
            fprintf(stderr, "weft serve: %s:%d: line too long\n", path, lineno);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "weft serve: %s:%d: expected 'name = value'\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') { /* optional quotes */
            val[vl - 1] = 0;
            val++;
        }
        const opt_def *d = find_opt(key);
        if (!d || !strcmp(key, "config")) {
            fprintf(stderr, "weft serve: %s:%d: unknown option '%s'\n", path, lineno, key);
            rc = -1;
            break;
        }
        char src[64];
        snprintf(src, sizeof src, "config line %d", lineno);
        rc = apply(c, d, val, src);
    }
    if (rc == 0 && ferror(fp)) {
        fprintf(stderr, "weft serve: error reading '%s'\n", path);
        rc = -1;
    }
    fclose(fp);
    return rc;
}

/* One pass over argv: in collect mode only finds --config and --help; in apply mode sets
 * everything. Flags accept "--name value" and "--name=value". */
static int scan_flags(srv_config *c, int argc, char **argv, bool apply_mode, const char **config,
                      bool *help) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            *help = true;
            continue;
        }
        const char *name = NULL, *val = NULL;
        char buf[64];
        if (!strncmp(a, "--", 2)) {
            const char *eq = strchr(a, '=');
            size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
            if (n < sizeof buf) {
                memcpy(buf, a + 2, n);
                buf[n] = 0;
                name = buf;
                if (eq) val = eq + 1;
            }
        } else if (!strcmp(a, "-m")) {
            name = "model";
        }
        const opt_def *d = name ? find_opt(name) : NULL;
        if (!d) {
            fprintf(stderr, "weft serve: unknown option '%s'\n", a);
            return -1;
        }
        if (!val && d->kind == OPT_BOOL) {
            val = "true";
        } else if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "weft serve: option --%s needs a value\n", d->name);
                return -1;
            }
            val = argv[++i];
        }
        if (!strcmp(d->name, "config")) {
            *config = val;
            continue;
        }
        if (apply_mode && apply(c, d, val, "flag") != 0) return -1;
    }
    return 0;
}

int srv_config_load(srv_config *c, int argc, char **argv) {
    config_defaults(c);
    const char *config = NULL;
    bool help = false;
    if (scan_flags(c, argc, argv, false, &config, &help) != 0) return -1;
    if (help) {
        srv_config_usage(stdout);
        return 1;
    }
    if (!config) config = getenv("WEFT_CONFIG");
    if (config && *config && load_file(c, config) != 0) return -1;
    for (int i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (!v || !strcmp(opts[i].name, "config")) continue;
        char src[80];
        snprintf(src, sizeof src, "env %s", opts[i].env);
        if (apply(c, &opts[i], v, src) != 0) return -1;
    }
    if (scan_flags(c, argc, argv, true, &config, &help) != 0) return -1;
    if (!c->model[0]) {
        fprintf(stderr, "weft serve: --model is required (or WEFT_MODEL)\n");
        return -1;
    }
    if (c->prefix_sharing && !c->kv_paged) {
        fprintf(stderr, "weft serve: --prefix-sharing needs --kv-layout paged\n");
        return -1;
    }
    return 0;
}
