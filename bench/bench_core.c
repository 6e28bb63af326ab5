/* bench_core.c — the inference-core benchmark: for synthetic models at realistic shapes
 * (TinyStories ~15M and ~110M, F32 and Q8_0) it measures decode throughput at several batch
 * sizes, prefill throughput, and how close batch-1 decode comes to this machine's memory
 * bandwidth, measured in the same run. Writes a markdown table to --out.
 *
 * usage: bench_core [--out FILE] [--presets a,b] [--types f32,q8_0] [--batches 1,4,16,32,64]
 *                   [--steps N] [--rounds N] [--threads N] [--dir DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "weft/forward.h"
#include "weft/model.h"
#include "weft/synth.h"
#include "workload/report.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_list(const char *s, char out[][16], int max) {
    int n = 0;
    while (*s && n < max) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len >= 16) len = 15;
        memcpy(out[n], s, len);
        out[n][len] = 0;
        n++;
        if (!e) break;
        s = e + 1;
    }
    return n;
}

/* Bytes of weights one decode step must read: every layer matrix, the norms and the
 * classifier; the embedding table only contributes the rows looked up. */
static double bytes_per_step(const weft_model *m) {
    double b = (double)model_weight_bytes(m);
    if (!m->tied_output) b -= (double)m->tok_embd.rows * (double)m->tok_embd.row_bytes;
    return b;
}

typedef struct run_ctx {
    weft_model *m;
    tp_pool *pool;
    int steps;
} run_ctx;

/* Prefill throughput: one sequence of n tokens in one call, best of 3. */
static double bench_prefill(run_ctx *r, int n) {
    weft_err err = {{0}};
    const weft_config *c = &r->m->cfg;
    kv_store *kv = kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, n, 1, KV_F32, &err);
    weft_forward *f = fwd_new(r->m, r->pool, n, n, &err);
    int32_t *tok = malloc(sizeof *tok * n), *pos = malloc(sizeof *pos * n), *seq = calloc(n, 4);
    uint8_t *want = calloc(n, 1);
    float *logits = malloc(sizeof(float) * c->vocab_size);
    if (!kv || !f || !tok || !pos || !seq || !want || !logits) {
        fprintf(stderr, "bench: setup failed: %s\n", err.msg);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        tok[i] = 3 + (i * 7919) % (c->vocab_size - 3);
        pos[i] = i;
    }
    want[n - 1] = 1;
    int32_t blk = 0;
    kv_seq sv = {&blk, 1};
    weft_batch b = {n, tok, pos, seq, want, 1, &sv};
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        if (fwd_run(f, kv, &b, logits, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    fwd_free(f);
    kv_store_free(kv);
    free(tok); free(pos); free(seq); free(want); free(logits);
    return n / best;
}

/* Decode throughput at batch B: B sequences with a 32-token prompt each, then `steps`
 * steps of one token per sequence; returns tokens/s over the decode steps. */
static double bench_decode(run_ctx *r, int B) {
    const int P = 32, steps = r->steps, ctx = P + steps + 1;
    weft_err err = {{0}};
    const weft_config *c = &r->m->cfg;
    int maxT = B * P > B ? B * P : B;
    kv_store *kv = kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, ctx, B, KV_F32, &err);
    weft_forward *f = fwd_new(r->m, r->pool, maxT, ctx, &err);
    int32_t *tok = malloc(sizeof *tok * maxT), *pos = malloc(sizeof *pos * maxT);
    int32_t *seq = malloc(sizeof *seq * maxT), *blocks = malloc(sizeof *blocks * B);
    uint8_t *want = calloc(maxT, 1);
    kv_seq *seqs = malloc(sizeof *seqs * B);
    float *logits = malloc(sizeof(float) * (size_t)c->vocab_size * B);
    if (!kv || !f || !tok || !pos || !seq || !blocks || !want || !seqs || !logits) {
        fprintf(stderr, "bench: setup failed: %s\n", err.msg);
        exit(1);
    }
    for (int s = 0; s < B; s++) {
        blocks[s] = s;
        seqs[s].blocks = &blocks[s];
        seqs[s].n_blocks = 1;
        for (int i = 0; i < P; i++) {
            int k = s * P + i;
            tok[k] = 3 + (k * 7919) % (c->vocab_size - 3);
            pos[k] = i;
            seq[k] = s;
            want[k] = i == P - 1;
        }
    }
    weft_batch pb = {B * P, tok, pos, seq, want, B, seqs};
    if (fwd_run(f, kv, &pb, logits, &err) != 0) {
        fprintf(stderr, "bench: %s\n", err.msg);
        exit(1);
    }
    for (int s = 0; s < B; s++) {
        seq[s] = s;
        want[s] = 1;
    }
    double t0 = now_s();
    for (int st = 0; st < steps; st++) {
        for (int s = 0; s < B; s++) {
            tok[s] = 3 + ((s + 1) * (st + 13) * 104729) % (c->vocab_size - 3);
            pos[s] = P + st;
        }
        weft_batch db = {B, tok, pos, seq, want, B, seqs};
        if (fwd_run(f, kv, &db, logits, &err) != 0) {
            fprintf(stderr, "bench: %s\n", err.msg);
            exit(1);
        }
    }
    double dt = now_s() - t0;
    fwd_free(f);
    kv_store_free(kv);
    free(tok); free(pos); free(seq); free(blocks); free(want); free(seqs); free(logits);
    return (double)B * steps / dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define MAX_ROUNDS 15

int main(int argc, char **argv) {
    const char *out_path = "bench/results/core.md", *dir = "/tmp";
    const char *presets_s = "tiny15m,tiny110m", *types_s = "f32,q8_0", *batches_s = "1,4,16,32,64";
    int threads = 0, steps = 32, rounds = 5;
    for (int i = 1; i < argc; i += 2) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "bench_core: %s needs a value\n", o); return 2; }
        if (!strcmp(o, "--out")) out_path = v;
        else if (!strcmp(o, "--presets")) presets_s = v;
        else if (!strcmp(o, "--types")) types_s = v;
        else if (!strcmp(o, "--batches")) batches_s = v;
        else if (!strcmp(o, "--threads")) threads = atoi(v);
        else if (!strcmp(o, "--steps")) steps = atoi(v);
        else if (!strcmp(o, "--rounds")) rounds = atoi(v);
        else if (!strcmp(o, "--dir")) dir = v;
        else { fprintf(stderr, "bench_core: unknown option %s\n", o); return 2; }
    }
    char presets[8][16], types[8][16], batch_names[16][16];
    int np = parse_list(presets_s, presets, 8), nt = parse_list(types_s, types, 8);
    int nb = parse_list(batches_s, batch_names, 16);
    int batches[16], i32 = -1;
    for (int i = 0; i < nb; i++) {
        batches[i] = atoi(batch_names[i]);
        if (batches[i] < 1) { fprintf(stderr, "bench_core: bad batch size %s\n", batch_names[i]); return 2; }
        if (batches[i] == 32) i32 = i;
    }
    if (steps < 1) steps = 1;
    if (rounds < 1) rounds = 1;
    if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
    if (nb < 1 || batches[0] != 1) { fprintf(stderr, "bench_core: --batches must start with 1\n"); return 2; }

    tp_pool *pool = tp_new(threads);
    if (!pool) return 1;
    size_t bw_bytes = (size_t)256 << 20;
    char *buf = malloc(bw_bytes);
    if (!buf) return 1;
    memset(buf, 1, bw_bytes);

    FILE *out = fopen(out_path, "w");
    if (!out) { perror(out_path); return 1; }
    struct utsname un;
    uname(&un);
    char machine[256];
    report_machine(machine, sizeof machine);
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    fprintf(out, "# bench_core results\n\nmachine: %s, %d threads, %s kernels, %s %s; date %s\n\n",
            machine, tp_size(pool), kn_isa_name(kn_isa_active()), un.sysname, un.release, date);
    fprintf(out, "| model | type | weights MB | prefill tok/s |");
    for (int i = 0; i < nb; i++) fprintf(out, " decode b=%d tok/s |", batches[i]);
    fprintf(out, " read bandwidth GB/s | b1 GB/s | b1 %% of bandwidth |%s\n",
            i32 >= 0 ? " b32 / b1 |" : "");
    fprintf(out, "|---|---|---|---|");
    for (int i = 0; i < nb; i++) fprintf(out, "---|");
    fprintf(out, "---|---|---|%s\n", i32 >= 0 ? "---|" : "");

    for (int pi = 0; pi < np; pi++)
        for (int ti = 0; ti < nt; ti++) {
            weft_dtype type;
            if (dtype_from_name(types[ti], &type) != 0) {
                fprintf(stderr, "bench_core: unknown type %s\n", types[ti]);
                return 2;
            }
            char path[512];
            snprintf(path, sizeof path, "%s/weft-bench-%s-%s.gguf", dir, presets[pi], types[ti]);
            synth_options o;
            synth_options_init(&o);
            o.preset = presets[pi];
            o.type = type;
            weft_err err = {{0}};
            if (synth_write(&o, path, NULL, &err) != 0) {
                fprintf(stderr, "bench_core: %s\n", err.msg);
                return 1;
            }
            weft_model *m = model_load(path, NULL, &err);
            if (!m) {
                fprintf(stderr, "bench_core: %s\n", err.msg);
                return 1;
            }
            run_ctx r = {m, pool, steps};
            double step_bytes = bytes_per_step(m);
            double pre = bench_prefill(&r, 128);
            /* Rounds interleave every batch size with a bandwidth probe, so slow phases of a
             * shared machine hit all of them alike; medians are reported. */
            double tps[16][MAX_ROUNDS], bw[MAX_ROUNDS], frac[MAX_ROUNDS], ratio32[MAX_ROUNDS];
            for (int rd = 0; rd < rounds; rd++) {
                bw[rd] = kn_read_bandwidth_gbs(pool, buf, bw_bytes, 1);
                for (int i = 0; i < nb; i++) tps[i][rd] = bench_decode(&r, batches[i]);
                frac[rd] = tps[0][rd] * step_bytes / 1e9 / bw[rd];
                ratio32[rd] = i32 >= 0 ? tps[i32][rd] / tps[0][rd] : 0;
                printf("%s %s round %d: bandwidth %.1f GB/s, b1 %.1f tok/s (%.0f%%)%s", presets[pi],
                       types[ti], rd + 1, bw[rd], tps[0][rd], 100 * frac[rd],
                       i32 >= 0 ? "" : "\n");
                if (i32 >= 0) printf(", b32 %.1f tok/s (%.1fx)\n", tps[i32][rd], ratio32[rd]);
                fflush(stdout);
            }
            double med_tps[16];
            for (int i = 0; i < nb; i++) med_tps[i] = median(tps[i], rounds);
            double med_bw = median(bw, rounds), med_frac = median(frac, rounds);
            fprintf(out, "| %s (%.0fM) | %s | %.0f | %.0f |", presets[pi],
                    model_param_count(m) / 1e6, types[ti], step_bytes / 1e6, pre);
            for (int i = 0; i < nb; i++) fprintf(out, " %.1f |", med_tps[i]);
            fprintf(out, " %.1f | %.1f | %.0f%% |", med_bw, med_tps[0] * step_bytes / 1e9,
                    100.0 * med_frac);
            if (i32 >= 0) fprintf(out, " %.1fx |", median(ratio32, rounds));
            fprintf(out, "\n");
            fflush(out);
            model_free(m);
            unlink(path);
        }
    fprintf(out,
            "\nMedians over %d rounds; each round measures the read bandwidth (all threads, best "
            "8 MiB window of a 256 MiB buffer) and then every batch size, so a ratio compares "
            "numbers taken moments apart. \"weights MB\" is what one decode step reads (layers, "
            "norms, classifier; not the embedding table); b1 GB/s = that x batch-1 tokens/s. "
            "Decode: %d steps after a 32-token prompt per sequence; prefill: one 128-token "
            "prompt, best of 3. Reproduce: `make bench`.\n",
            rounds, steps);
    fclose(out);
    free(buf);
    tp_free(pool);
    printf("wrote %s\n", out_path);
    return 0;
}
