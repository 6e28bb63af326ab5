/* cmd_model.c — `weft model inspect FILE` and `weft model synth ...`: the command-line face of
 * the GGUF reader, the llama2.c loader and the synthetic-model writer. Only argument handling
 * and printing live here; the work is in src/model/. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "weft/dtype.h"
#include "weft/gguf.h"
#include "weft/model.h"
#include "weft/synth.h"

static void model_usage(FILE *out) {
    fprintf(out,
            "usage: weft model inspect FILE [--tokenizer TOKENIZER.bin]\n"
            "       weft model synth --preset NAME --out FILE.gguf [--type TYPE] [--layers N]\n"
            "                        [--ctx N] [--seed S] [--vocab-from FILE] [--untied]\n"
            "  TYPE: f32 (default), f16, bf16, q8_0, q4_0\n"
            "  presets:");
    for (size_t i = 0; synth_preset_at(i); i++)
        fprintf(out, " %s", synth_preset_at(i)->name);
    fprintf(out, "\n  --vocab-from takes a GGUF (its tokenizer.ggml.* keys are copied) or a\n"
                 "  llama2.c tokenizer.bin; the model's vocabulary size then follows it\n"
                 "  inspect reads GGUF or llama2.c checkpoints; the latter need --tokenizer\n"
                 "  (default: tokenizer.bin beside FILE)\n");
}

/* ---- inspect ---- */

static const char *type_name(gguf_type t) {
    static const char *const names[] = {"u8",   "i8",  "u16", "i16", "u32", "i32", "f32",
                                        "bool", "str", "arr", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* Prints s quoted, with control bytes escaped, cut at max bytes. */
static void print_quoted(const char *s, size_t max) {
    putchar('"');
    size_t n = 0;
    for (; *s && n < max; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            printf("\\n");
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    if (*s) printf("...");
    putchar('"');
}

static void print_num(double v, gguf_type t) {
    if (t == GGUF_TYPE_FLOAT32 || t == GGUF_TYPE_FLOAT64)
        printf("%g", v);
    else if (t == GGUF_TYPE_BOOL)
        printf("%s", v != 0 ? "true" : "false");
    else
        printf("%.0f", v);
}

static void print_kv(const gguf_file *f, size_t i) {
    const char *key = gguf_kv_key(f, i);
    gguf_type t = gguf_kv_type(f, i);
    gguf_type et;
    uint64_t n;
    double v;
    printf("  %-44s ", key);
    if (t == GGUF_TYPE_STRING) {
        printf("str = ");
        print_quoted(gguf_kv_str(f, i), 80);
    } else if (gguf_kv_arr_info(f, i, &et, &n)) {
        printf("%s[%" PRIu64 "] = [", type_name(et), n);
        uint64_t show = n < 5 ? n : 5;
        for (uint64_t k = 0; k < show; k++) {
            if (k) printf(", ");
            if (et == GGUF_TYPE_STRING)
                print_quoted(gguf_get_arr_str(f, key, k), 24);
            else if (gguf_get_arr_num(f, key, k, &v))
                print_num(v, et);
        }
        printf("%s]", n > show ? ", ..." : "");
    } else if (gguf_kv_num(f, i, &v)) {
        printf("%s = ", type_name(t));
        print_num(v, t);
    }
    putchar('\n');
}

static void print_hparams(const gguf_file *f, const char *arch) {
    static const char *const keys[] = {"context_length",
                                       "embedding_length",
                                       "block_count",
                                       "feed_forward_length",
                                       "attention.head_count",
                                       "attention.head_count_kv",
                                       "rope.dimension_count",
                                       "rope.freq_base",
                                       "attention.layer_norm_rms_epsilon",
                                       "vocab_size"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char full[256];
        snprintf(full, sizeof full, "%s.%s", arch, keys[k]);
        long i = gguf_find_key(f, full);
        double v;
        if (i < 0 || !gguf_kv_num(f, (size_t)i, &v)) continue;
        printf("  %-34s ", keys[k]);
        print_num(v, gguf_kv_type(f, (size_t)i));
        putchar('\n');
    }
    gguf_type et;
    uint64_t n;
    if (gguf_get_arr_info(f, "tokenizer.ggml.tokens", &et, &n))
        printf("  %-34s %" PRIu64 "\n", "tokenizer tokens", n);
}

/* tokenizer.bin in FILE's directory, when it exists; NULL otherwise. */
static const char *tokenizer_beside(const char *path, char *buf, size_t size) {
    const char *slash = strrchr(path, '/');
    int dir_len = slash ? (int)(slash - path) + 1 : 0;
    int n = snprintf(buf, size, "%.*stokenizer.bin", dir_len, path);
    if (n < 0 || (size_t)n >= size) return NULL;
    FILE *fp = fopen(buf, "rb");
    if (!fp) return NULL;
    fclose(fp);
    return buf;
}

/* A llama2.c checkpoint: whatever model_load makes of it. */
static int inspect_llama2c(const char *path, const char *tokenizer) {
    char beside[4096];
    if (!tokenizer) tokenizer = tokenizer_beside(path, beside, sizeof beside);
    weft_err err = {{0}};
    weft_model *m = model_load(path, tokenizer, &err);
    if (!m) {
        fprintf(stderr,
                "weft model inspect: not GGUF, and not a loadable llama2.c checkpoint: %s\n",
                err.msg);
        return 1;
    }
    const weft_config *c = &m->cfg;
    int v1 = strcmp(m->source, "llama2c-v1") == 0;
    printf("file:          %s (%zu bytes)\n", path, m->map_size);
    printf("format:        llama2.c %s\n", v1 ? "version 1 (magic \"ak42\", 256-byte header), F32"
                                              : "legacy (28-byte header), F32");
    printf("architecture:  %s\n", m->arch);
    printf("tokenizer:     %s (%d tokens, bos %d, eos %d)\n", tokenizer, c->vocab_size, c->bos_id,
           c->eos_id);
    printf("hyper-parameters:\n");
    const struct {
        const char *name;
        int v;
    } rows[] = {{"dim", c->dim},
                {"hidden_dim", c->hidden_dim},
                {"n_layers", c->n_layers},
                {"n_heads", c->n_heads},
                {"n_kv_heads", c->n_kv_heads},
                {"head_dim", c->head_dim},
                {"vocab_size", c->vocab_size},
                {"seq_len", c->ctx_len}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("  %-34s %d\n", rows[i].name, rows[i].v);
    printf("  %-34s %g (fixed for llama2.c)\n", "rope.freq_base", c->rope_theta);
    printf("  %-34s %g (fixed for llama2.c)\n", "rms_epsilon", c->norm_eps);
    printf("classifier:    %s\n", m->tied_output ? "shared with the token embedding"
                                                 : "separate (its own [vocab, dim] matrix)");
    uint64_t params = model_param_count(m);
    printf("totals:        %" PRIu64 " parameters (%.2fM), %" PRIu64 " weight bytes\n", params,
           (double)params / 1e6, model_weight_bytes(m));
    model_free(m);
    return 0;
}

static int inspect(const char *path, const char *tokenizer) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "weft model inspect: cannot open '%s': %s\n", path, strerror(errno));
        return 1;
    }
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got < 4 || memcmp(magic, "GGUF", 4) != 0) return inspect_llama2c(path, tokenizer);
    weft_err err = {{0}};
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "weft model inspect: '%s': %s\n", path, err.msg);
        return 1;
    }
    const char *arch = gguf_get_str(f, "general.architecture");
    printf("file:          %s (%zu bytes)\n", path, gguf_file_size(f));
    printf("format:        GGUF v%u, alignment %u, data at offset %" PRIu64 "\n", gguf_version(f),
           gguf_alignment(f), gguf_data_offset(f));
    printf("architecture:  %s\n", arch ? arch : "(none)");
    const char *name = gguf_get_str(f, "general.name");
    if (name) printf("name:          %s\n", name);
    if (arch) {
        printf("hyper-parameters:\n");
        print_hparams(f, arch);
    }
    printf("metadata (%zu keys):\n", gguf_kv_count(f));
    for (size_t i = 0; i < gguf_kv_count(f); i++)
        print_kv(f, i);

    size_t nt = gguf_tensor_count(f);
    printf("tensors (%zu):\n", nt);
    uint64_t params = 0, bytes = 0;
    enum { N_TYPES = 31 };
    uint64_t by_type_bytes[N_TYPES] = {0}, by_type_count[N_TYPES] = {0};
    for (size_t i = 0; i < nt; i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[128];
        int len = snprintf(shape, sizeof shape, "[");
        uint64_t ne = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%" PRIu64, d ? ", " : "",
                            t->ne[d]);
            ne *= t->ne[d];
        }
        snprintf(shape + len, sizeof shape - (size_t)len, "]");
        printf("  %-36s %-22s %-5s %12" PRIu64 " bytes\n", t->name, shape, dtype_name(t->type),
               t->nbytes);
        params += ne;
        bytes += t->nbytes;
        if (t->type < N_TYPES) {
            by_type_bytes[t->type] += t->nbytes;
            by_type_count[t->type]++;
        }
    }
    printf("totals:        %" PRIu64 " parameters (%.2fM), %" PRIu64 " tensor bytes\n", params,
           (double)params / 1e6, bytes);
    for (unsigned ty = 0; ty < N_TYPES; ty++)
        if (by_type_count[ty])
            printf("  %-5s %5" PRIu64 " tensors %14" PRIu64 " bytes\n", dtype_name(ty),
                   by_type_count[ty], by_type_bytes[ty]);
    gguf_close(f);
    return 0;
}

/* ---- synth ---- */

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (!*s || *end || errno || s[0] == '-' || v > max) {
        fprintf(stderr, "weft model synth: %s expects a number up to %" PRIu64 ", got '%s'\n", opt,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int synth(int argc, char **argv) {
    synth_options o;
    synth_options_init(&o);
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            model_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--untied")) {
            o.untied = true;
            continue;
        }
        if (a[0] != '-' || a[1] != '-') {
            fprintf(stderr, "weft model synth: unexpected argument '%s'\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "weft model synth: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        uint64_t n;
        if (!strcmp(a, "--preset"))
            o.preset = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--vocab-from"))
            o.vocab_from = v;
        else if (!strcmp(a, "--type")) {
            if (dtype_from_name(v, &o.type)) {
                fprintf(stderr, "weft model synth: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--layers")) {
            if (parse_u64(a, v, 1024, &n) || n == 0) {
                if (n == 0) fprintf(stderr, "weft model synth: --layers must be at least 1\n");
                return 2;
            }
            o.n_layers = (uint32_t)n;
        } else if (!strcmp(a, "--ctx")) {
            if (parse_u64(a, v, 1u << 24, &n) || n == 0) {
                if (n == 0) fprintf(stderr, "weft model synth: --ctx must be at least 1\n");
                return 2;
            }
            o.ctx_len = (uint32_t)n;
        } else if (!strcmp(a, "--seed")) {
            if (parse_u64(a, v, UINT64_MAX, &o.seed)) return 2;
        } else {
            fprintf(stderr, "weft model synth: unknown option '%s'\n", a);
            model_usage(stderr);
            return 2;
        }
    }
    if (!o.preset || !out) {
        fprintf(stderr, "weft model synth: --preset and --out are required\n");
        model_usage(stderr);
        return 2;
    }
    if (!synth_find_preset(o.preset)) {
        fprintf(stderr, "weft model synth: unknown preset '%s'\n", o.preset);
        model_usage(stderr);
        return 2;
    }
    weft_err err = {{0}};
    synth_result r;
    if (synth_write(&o, out, &r, &err)) {
        fprintf(stderr, "weft model synth: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s: preset %s, %s, %u tensors, vocab %u, %" PRIu64 " parameters (%.2fM), %" PRIu64
           " bytes\n",
           out, o.preset, dtype_name(o.type), r.n_tensors, r.vocab_size, r.n_params,
           (double)r.n_params / 1e6, r.file_bytes);
    return 0;
}

int cmd_model(int argc, char **argv) {
    if (argc < 1) {
        model_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help")) {
        model_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[0], "inspect")) {
        const char *file = NULL, *tokenizer = NULL;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--tokenizer")) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "weft model inspect: --tokenizer needs a value\n");
                    return 2;
                }
                tokenizer = argv[++i];
            } else if (argv[i][0] == '-' && argv[i][1] == '-') {
                fprintf(stderr, "weft model inspect: unknown option '%s'\n", argv[i]);
                model_usage(stderr);
                return 2;
            } else if (file) {
                fprintf(stderr, "weft model inspect: expected exactly one FILE\n");
                model_usage(stderr);
                return 2;
            } else {
                file = argv[i];
            }
        }
        if (!file) {
            fprintf(stderr, "weft model inspect: expected exactly one FILE\n");
            model_usage(stderr);
            return 2;
        }
        return inspect(file, tokenizer);
    }
    if (!strcmp(argv[0], "synth")) return synth(argc - 1, argv + 1);
    fprintf(stderr, "weft model: unknown subcommand '%s'\n", argv[0]);
    model_usage(stderr);
    return 2;
}
