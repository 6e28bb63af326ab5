/* bench_kernels.c — microbenchmark of the matmul kernels: GFLOP/s per weight type, shape and
 * batch size, and for batch 1 (decode) the weight bytes streamed per second next to the
 * machine's read bandwidth measured by kn_read_bandwidth_gbs on a 256 MB buffer. F32 rows
 * also time sgemm and weft's own float kernel side by side, which is how kn_matmul's
 * sgemm threshold was chosen. Each case cycles through enough copies of its weight matrix to
 * exceed 128 MB, so weights come from DRAM as they do in a real decode step (where all layers
 * together are far larger than the L3), not from a warm cache; WEFT_BENCH_WARM=1 reuses one
 * copy instead (compute ceiling for matrices that fit in cache).
 * Q8_0p rows time the same Q8_0 weights packed once beforehand (kn_pack_new, what model load
 * does); type Q8_0 selects both.
 * Usage: bench_kernels [threads [type [max_n]]] (default: all cores, all types, n up to 64). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "kernels/kn_internal.h"
#include "weft/kernels.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t g_rng = 12345;
static uint32_t rnd(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}

static size_t row_bytes(weft_dtype t, int cols) {
    switch (t) {
    case WEFT_F32:
        return (size_t)cols * 4;
    case WEFT_F16:
    case WEFT_BF16:
        return (size_t)cols * 2;
    case WEFT_Q8_0:
        return (size_t)cols / 32 * 34;
    case WEFT_Q4_0:
        return (size_t)cols / 32 * 18;
    }
    return 0;
}

/* Plausible random weights: small floats, fp16 scales around 0.01, random quants. */
static void *make_weights(weft_dtype t, int rows, int cols) {
    size_t rb = row_bytes(t, cols), total = rb * (size_t)rows;
    uint8_t *buf = aligned_alloc(64, (total + 63) & ~(size_t)63);
    if (!buf) return NULL;
    if (t == WEFT_F32) {
        float *f = (float *)buf;
        for (size_t i = 0; i < total / 4; i++)
            f[i] = ((float)(rnd() & 0xffff) - 32768.0f) / 65536.0f;
    } else if (t == WEFT_F16 || t == WEFT_BF16) {
        uint16_t *h = (uint16_t *)buf;
        for (size_t i = 0; i < total / 2; i++)
            h[i] = t == WEFT_F16 ? (uint16_t)(0x2000 + (rnd() & 0x0fff)) | (rnd() & 0x8000)
                                 : (uint16_t)(0x3c00 + (rnd() & 0x00ff)) | (rnd() & 0x8000);
    } else {
        size_t bs = t == WEFT_Q8_0 ? 34 : 18;
        for (size_t b = 0; b < total / bs; b++) {
            uint16_t d = 0x2000 + (uint16_t)(rnd() & 0x3ff);
            memcpy(buf + b * bs, &d, 2);
            for (size_t j = 2; j < bs; j++)
                buf[b * bs + j] = (uint8_t)rnd();
        }
    }
    return buf;
}

typedef struct {
    const kn_matrix *W;
    const float *X;
    int n;
    float *Y;
} own_job;

/* weft's own float kernel regardless of n (kn_matmul would pick sgemm for large n). */
static void own_worker(void *ctx, int ith, int nth) {
    own_job *j = ctx;
    int per = (j->W->rows / nth + 15) & ~15;
    int r0 = ith * per, r1 = r0 + per < j->W->rows ? r0 + per : j->W->rows;
    if (r0 < r1) kn_mm_float_avx512(j->W, j->X, j->n, j->Y, r0, r1);
}

/* Seconds per call: best of repeated calls for at least ~0.25 s (and 3 calls). */
#define TIME_BEST(stmt)                                                                            \
    ({                                                                                             \
        double best_ = 1e30, start_ = now_s();                                                     \
        for (int it_ = 0; it_ < 3 || now_s() - start_ < 0.25; it_++) {                             \
            double t0_ = now_s();                                                                  \
            stmt;                                                                                  \
            double dt_ = now_s() - t0_;                                                            \
            if (dt_ < best_) best_ = dt_;                                                          \
        }                                                                                          \
        best_;                                                                                     \
    })

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *only = argc > 2 && argv[2][0] ? argv[2] : NULL;
    int max_n = argc > 3 ? atoi(argv[3]) : 64;
    tp_pool *pool = tp_new(threads);
    if (!pool) {
        fprintf(stderr, "tp_new failed\n");
        return 1;
    }
    printf("ISA %s (VNNI %s), %d threads\n", kn_isa_name(kn_isa_active()),
           kn_cpu_has_avx512_vnni() ? "yes" : "no", tp_size(pool));

    size_t bw_bytes = (size_t)256 << 20;
    void *bw = aligned_alloc(64, bw_bytes);
    if (!bw) return 1;
    memset(bw, 1, bw_bytes);
    double bw_gbs = kn_read_bandwidth_gbs(pool, bw, bw_bytes, 20);
    free(bw);
    printf("read bandwidth, 256 MB buffer: %.1f GB/s\n\n", bw_gbs);

    /* Q8_0p: the same Q8_0 weights packed once beforehand (kn_pack_new, as model load does) */
    struct {
        weft_dtype t;
        const char *name;
        int cols, rows;
    } cases[] = {
        {WEFT_F32, "F32", 768, 2048},    {WEFT_F32, "F32", 4096, 4096},
        {WEFT_F32, "F32", 768, 32000},   {WEFT_F16, "F16", 768, 2048},
        {WEFT_F16, "F16", 4096, 4096},   {WEFT_Q8_0, "Q8_0", 768, 2048},
        {WEFT_Q8_0, "Q8_0", 4096, 4096}, {WEFT_Q8_0, "Q8_0p", 768, 2048},
        {WEFT_Q8_0, "Q8_0p", 4096, 4096}, {WEFT_Q8_0, "Q8_0p", 768, 32000},
        {WEFT_Q4_0, "Q4_0", 768, 2048},  {WEFT_Q4_0, "Q4_0", 4096, 4096},
    };
    const int ns[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    printf("%-5s %11s %8s %4s %10s %9s %9s %12s %12s\n", "type", "cols x rows", "MB", "n",
           "us/call", "GFLOP/s", "GB/s", "%bandwidth", "own F32 GF/s");
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int rows = cases[c].rows, cols = cases[c].cols;
        if (only && strcmp(only, cases[c].name) != 0 &&
            !(strcmp(only, "Q8_0") == 0 && strcmp(cases[c].name, "Q8_0p") == 0))
            continue;
        const bool pack = strcmp(cases[c].name, "Q8_0p") == 0;
        size_t wbytes = row_bytes(cases[c].t, cols) * (size_t)rows;
        int copies = getenv("WEFT_BENCH_WARM") ? 1 : (int)(((size_t)128 << 20) / wbytes) + 1;
        void *data[256];
        if (copies > 256) copies = 256;
        data[0] = make_weights(cases[c].t, rows, cols);
        if (!data[0]) return 1;
        for (int k = 1; k < copies; k++) {
            data[k] = aligned_alloc(64, (wbytes + 63) & ~(size_t)63);
            if (!data[k]) return 1;
            memcpy(data[k], data[0], wbytes);
        }
        kn_packed *packs[256] = {NULL};
        for (int k = 0; pack && k < copies; k++) {
            kn_matrix Wk = {.type = cases[c].t, .rows = rows, .cols = cols, .data = data[k],
                            .row_bytes = row_bytes(cases[c].t, cols)};
            if (!(packs[k] = kn_pack_new(&Wk))) {
                fprintf(stderr, "bench_kernels: cannot pack Q8_0 (no AVX-512 VNNI?)\n");
                return 1;
            }
        }
        int cur = 0;
        int nalloc = max_n > 64 ? max_n : 64;
        float *X = malloc(sizeof(float) * (size_t)nalloc * (size_t)cols);
        float *Y = malloc(sizeof(float) * (size_t)nalloc * (size_t)rows);
        if (!X || !Y) return 1;
        kn_matrix W = {.type = cases[c].t,
                       .rows = rows,
                       .cols = cols,
                       .data = data[0],
                       .row_bytes = row_bytes(cases[c].t, cols),
                       .packed = packs[0]};
#define NEXT_COPY() (cur = (cur + 1) % copies, W.data = data[cur], W.packed = packs[cur])
        size_t sb = kn_matmul_scratch_bytes(&W, nalloc);
        void *scratch = sb ? malloc(sb) : NULL;
        for (int i = 0; i < nalloc * cols; i++)
            X[i] = ((float)(rnd() & 0xffff) - 32768.0f) / 32768.0f;
        double mb = (double)W.row_bytes * rows / 1e6;
        for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
            int n = ns[k];
            if (n > max_n) break;
            double t = TIME_BEST((NEXT_COPY(), kn_matmul(pool, &W, X, n, Y, scratch)));
            double gflops = 2.0 * rows * cols * n / t / 1e9;
            char own[32] = "";
            if (cases[c].t == WEFT_F32 && kn_isa_active() == KN_ISA_AVX512) {
                own_job oj = {&W, X, n, Y};
                double to = TIME_BEST((NEXT_COPY(), tp_run(pool, own_worker, &oj)));
                snprintf(own, sizeof own, "%.1f", 2.0 * rows * cols * n / to / 1e9);
            }
            if (n == 1)
                printf("%-5s %5dx%-5d %8.1f %4d %10.1f %9.1f %9.1f %11.0f%% %12s\n", cases[c].name,
                       cols, rows, mb, n, t * 1e6, gflops, mb / 1e3 / t,
                       100.0 * mb / 1e3 / t / bw_gbs, own);
            else
                printf("%-5s %5dx%-5d %8.1f %4d %10.1f %9.1f %9s %12s %12s\n", cases[c].name, cols,
                       rows, mb, n, t * 1e6, gflops, "", "", own);
        }
        free(scratch);
        free(X);
        free(Y);
        for (int k = 0; k < copies; k++) {
            free(data[k]);
            kn_pack_free(packs[k]);
        }
    }
    tp_free(pool);
    return 0;
}
