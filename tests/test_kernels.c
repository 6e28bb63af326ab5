/* test_kernels.c — unit tests of the CPU kernels: the thread pool's fork/join contract, every
 * matmul path (each weight type × each ISA the CPU has × batch sizes and awkward shapes)
 * against a double-precision reference over the dequantized weights, and the vector / layer
 * operations against plain scalar references.
 *
 * Tolerances. Float weights (F32/F16/BF16: exact after widening) use unquantized X, so the
 * only error is float accumulation: |y - ref| <= 1e-5 · Σ|w·x| + 1e-6.
 * Q8_0/Q4_0 matmuls quantize each 32-element block of X to int8 with d = max|x|/127 and
 * round-to-nearest, so each x_j is off by at most d/2 = max|x_b|/254, giving the rigorous
 * bound |y - ref| <= Σ_b (max|x_b|/254) · Σ_{j in b} |w_j|, plus the float slack above. The
 * AVX-512 VNNI quantized kernels must equal the scalar kernel bit for bit (one summation order,
 * kn_internal.h); the AVX2 one has its own order and agrees to 1e-5. Every quantized kernel
 * must give a row the same bits whatever the batch around it (test_matmul_quant_batch_invariant). */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/kn_internal.h"
#include "support/testutil.h"
#include "weft/kernels.h"

/* ---- deterministic inputs ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* uniform in [-1, 1) */
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((g_rng >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}

/* ---- test-local fp16 / bf16 / quantizers (independent of the code under test) ---- */

static uint16_t t_f32_to_fp16(float f) {
    /* Round to nearest even through double arithmetic; inputs here are small normals. */
    if (f == 0.0f) return signbit(f) ? 0x8000 : 0;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    int e;
    frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    int exp16 = e - 1 + 15;
    if (exp16 <= 0) { /* subnormal: units of 2^-24 */
        long q = lrint(a / ldexp(1.0, -24));
        return (uint16_t)(sign | (uint16_t)q);
    }
    long man = lrint((a / ldexp(1.0, e - 1) - 1.0) * 1024.0);
    if (man == 1024) {
        man = 0;
        exp16++;
    }
    if (exp16 >= 31) return sign | 0x7c00;
    return (uint16_t)(sign | (exp16 << 10) | man);
}

static float t_fp16_to_f32(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (float)((h & 0x8000) ? -v : v);
}

static uint16_t t_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

static float t_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void t_quant_q8(const float *x, uint8_t *blk) {
    float amax = 0;
    for (int j = 0; j < 32; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t dh = t_f32_to_fp16(d);
    memcpy(blk, &dh, 2);
    for (int j = 0; j < 32; j++)
        blk[2 + j] = (uint8_t)(int8_t)lrintf(x[j] * id);
}

static void t_quant_q4(const float *x, uint8_t *blk) {
    float m = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > fabsf(m)) m = x[j];
    float d = m / -8.0f, id = d ? 1.0f / d : 0.0f;
    uint16_t dh = t_f32_to_fp16(d);
    memcpy(blk, &dh, 2);
    for (int j = 0; j < 16; j++) {
        int q0 = (int)(x[j] * id + 8.5f), q1 = (int)(x[j + 16] * id + 8.5f);
        q0 = q0 > 15 ? 15 : q0;
        q1 = q1 > 15 ? 15 : q1;
        blk[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
}

/* A weight matrix in `type` built from random floats, with its exact dequantized values. */
typedef struct {
    kn_matrix m;
    uint8_t *buf;
    float *deq; /* rows × cols */
} t_matrix;

static size_t t_row_bytes(weft_dtype t, int cols) {
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

static t_matrix t_make(weft_dtype t, int rows, int cols, size_t pad) {
    t_matrix tm = {0};
    size_t rb = t_row_bytes(t, cols) + pad;
    tm.buf = calloc((size_t)rows, rb);
    tm.deq = malloc((size_t)rows * cols * sizeof(float));
    float *src = malloc((size_t)cols * sizeof(float));
    assert_non_null(tm.buf);
    assert_non_null(tm.deq);
    assert_non_null(src);
    for (int r = 0; r < rows; r++) {
        uint8_t *row = tm.buf + (size_t)r * rb;
        float *dq = tm.deq + (size_t)r * cols;
        for (int j = 0; j < cols; j++)
            src[j] = frand() * (1.0f + (float)(r % 5));
        for (int j = 0; j < cols; j++) {
            switch (t) {
            case WEFT_F32:
                memcpy(row + 4 * j, &src[j], 4);
                dq[j] = src[j];
                break;
            case WEFT_F16: {
                uint16_t h = t_f32_to_fp16(src[j]);
                memcpy(row + 2 * j, &h, 2);
                dq[j] = t_fp16_to_f32(h);
                break;
            }
            case WEFT_BF16: {
                uint16_t h = t_f32_to_bf16(src[j]);
                memcpy(row + 2 * j, &h, 2);
                dq[j] = t_bf16_to_f32(h);
                break;
            }
            default:
                break;
            }
        }
        if (t == WEFT_Q8_0 || t == WEFT_Q4_0) {
            for (int b = 0; b < cols / 32; b++) {
                uint8_t *blk = row + (size_t)b * (t == WEFT_Q8_0 ? 34 : 18);
                uint16_t dh;
                if (t == WEFT_Q8_0)
                    t_quant_q8(src + 32 * b, blk);
                else
                    t_quant_q4(src + 32 * b, blk);
                memcpy(&dh, blk, 2);
                float d = t_fp16_to_f32(dh);
                for (int j = 0; j < 32; j++) {
                    float q = t == WEFT_Q8_0 ? (float)(int8_t)blk[2 + j]
                              : j < 16       ? (float)((blk[2 + j] & 15) - 8)
                                             : (float)((blk[2 + j - 16] >> 4) - 8);
                    dq[32 * b + j] = d * q;
                }
            }
        }
    }
    free(src);
    tm.m = (kn_matrix){.type = t, .rows = rows, .cols = cols, .data = tm.buf, .row_bytes = rb};
    return tm;
}

static void t_free(t_matrix *tm) {
    free(tm->buf);
    free(tm->deq);
}

static const weft_dtype k_types[] = {WEFT_F32, WEFT_F16, WEFT_BF16, WEFT_Q8_0, WEFT_Q4_0};
static const char *type_name(weft_dtype t) {
    switch (t) {
    case WEFT_F32:
        return "F32";
    case WEFT_F16:
        return "F16";
    case WEFT_BF16:
        return "BF16";
    case WEFT_Q8_0:
        return "Q8_0";
    case WEFT_Q4_0:
        return "Q4_0";
    }
    return "?";
}

static bool isa_available(kn_isa isa) {
    if (isa <= kn_isa_detected()) return true;
    static bool said[3];
    if (!said[isa]) {
        printf("SKIP: ISA %s not supported by this CPU\n", kn_isa_name(isa));
        said[isa] = true;
    }
    return false;
}

/* ---- ISA selection ---- */

static void test_isa_set(void **state) {
    (void)state;
    kn_isa det = kn_isa_detected();
    printf("detected ISA: %s\n", kn_isa_name(det));
    kn_isa_set(KN_ISA_SCALAR);
    assert_int_equal(kn_isa_active(), KN_ISA_SCALAR);
    kn_isa_set(KN_ISA_AVX512);
    assert_int_equal(kn_isa_active(), det); /* clamped */
    assert_string_equal(kn_isa_name(KN_ISA_AVX2), "avx2");
}

/* ---- thread pool ---- */

typedef struct {
    _Atomic int counts[8];
    _Atomic int bad_nth;
    int expect_nth;
} tp_count_ctx;

static void count_fn(void *ctx, int ith, int nth) {
    tp_count_ctx *c = ctx;
    if (nth != c->expect_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&c->bad_nth, 1);
    else
        atomic_fetch_add(&c->counts[ith], 1);
}

static void test_threadpool(void **state) {
    (void)state;
    const int sizes[] = {1, 2, 5};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        tp_pool *p = tp_new(sizes[s]);
        assert_non_null(p);
        assert_int_equal(tp_size(p), sizes[s]);
        tp_count_ctx c = {.expect_nth = sizes[s]};
        for (int run = 1; run <= 3000; run++) {
            tp_run(p, count_fn, &c);
            /* Every worker ran exactly once in each run, and all had finished on return. */
            for (int i = 0; i < sizes[s]; i++)
                assert_int_equal(atomic_load(&c.counts[i]), run);
            if (run % 1000 == 0) usleep(20000); /* let workers fall asleep on the condvar */
        }
        assert_int_equal(atomic_load(&c.bad_nth), 0);
        tp_free(p);
    }
    tp_pool *p = tp_new(0);
    assert_non_null(p);
    assert_true(tp_size(p) >= 1);
    tp_free(p);
    tp_free(NULL);
}

/* ---- matmul ---- */

typedef struct {
    double err, bound;
} t_cmp;

/* Checks Y (n × rows) against the double reference; returns the worst err/bound ratio. */
static double check_matmul(const t_matrix *tm, const float *X, int n, const float *Y) {
    const kn_matrix *W = &tm->m;
    bool quant = W->type == WEFT_Q8_0 || W->type == WEFT_Q4_0;
    double worst = 0;
    for (int x = 0; x < n; x++) {
        const float *xr = X + (size_t)x * W->cols;
        for (int r = 0; r < W->rows; r++) {
            const float *w = tm->deq + (size_t)r * W->cols;
            double ref = 0, mag = 0, qbound = 0;
            for (int b = 0; b < (quant ? W->cols / 32 : 1); b++) {
                int j0 = quant ? 32 * b : 0, j1 = quant ? j0 + 32 : W->cols;
                double amax = 0, wabs = 0;
                for (int j = j0; j < j1; j++) {
                    ref += (double)w[j] * xr[j];
                    mag += fabs((double)w[j] * xr[j]);
                    amax = fmax(amax, fabs((double)xr[j]));
                    wabs += fabs((double)w[j]);
                }
                if (quant) qbound += amax / 254.0 * 1.001 * wabs;
            }
            double bound = 1e-5 * mag + 1e-6 + qbound;
            double err = fabs((double)Y[(size_t)x * W->rows + r] - ref);
            if (err / bound > worst) worst = err / bound;
        }
    }
    return worst;
}

static void run_matmul_case_n(tp_pool *pool, weft_dtype t, int rows, int cols, size_t pad,
                              const int *ns, size_t nns) {
    t_matrix tm = t_make(t, rows, cols, pad);
    int nmax = 0;
    for (size_t k = 0; k < nns; k++)
        nmax = ns[k] > nmax ? ns[k] : nmax;
    float *X = malloc((size_t)nmax * cols * sizeof(float));
    float *Y = malloc((size_t)nmax * rows * sizeof(float));
    float *Yref = malloc((size_t)nmax * rows * sizeof(float));
    size_t sb = kn_matmul_scratch_bytes(&tm.m, nmax);
    void *scratch = sb ? malloc(sb) : NULL;
    assert_true(X && Y && Yref && (!sb || scratch));
    for (int i = 0; i < nmax * cols; i++)
        X[i] = frand() * 2.0f;
    for (size_t k = 0; k < nns; k++) {
        int n = ns[k];
        assert_true(kn_matmul_scratch_bytes(&tm.m, n) <= sb);
        kn_isa_set(KN_ISA_SCALAR);
        kn_matmul(pool, &tm.m, X, n, Yref, scratch);
        double w = check_matmul(&tm, X, n, Yref);
        if (w > 1.0)
            fail_msg("%s scalar %dx%d n=%d: error %.3g x bound", type_name(t), rows, cols, n, w);
        for (kn_isa isa = KN_ISA_AVX2; isa <= KN_ISA_AVX512; isa++) {
            if (!isa_available(isa)) continue;
            kn_isa_set(isa);
            for (size_t i = 0; i < (size_t)n * rows; i++)
                Y[i] = NAN;
            kn_matmul(pool, &tm.m, X, n, Y, scratch);
            w = check_matmul(&tm, X, n, Y);
            if (w > 1.0)
                fail_msg("%s %s %dx%d n=%d: error %.3g x bound", type_name(t), kn_isa_name(isa),
                         rows, cols, n, w);
            if ((t == WEFT_Q8_0 || t == WEFT_Q4_0) && isa == KN_ISA_AVX512 &&
                kn_cpu_has_avx512_vnni()) {
                /* The canonical summation order: bit-equal to the scalar kernel. */
                for (size_t i = 0; i < (size_t)n * rows; i++)
                    if (memcmp(&Y[i], &Yref[i], sizeof(float)) != 0)
                        fail_msg("%s vnni %dx%d n=%d: y[%zu][%zu]=%.9g, scalar %.9g", type_name(t),
                                 rows, cols, n, i / (size_t)rows, i % (size_t)rows, Y[i], Yref[i]);
            } else if (t == WEFT_Q8_0 || t == WEFT_Q4_0) {
                /* Same integer sums as the scalar path: only float rounding differs. */
                for (int x = 0; x < n; x++)
                    for (int r = 0; r < rows; r++) {
                        size_t i = (size_t)x * rows + r;
                        double tol = 1e-5 * (fabs((double)Yref[i]) + 1.0) * sqrt(cols / 32.0);
                        if (fabs((double)Y[i] - Yref[i]) > tol)
                            fail_msg("%s %s %dx%d n=%d: y[%d][%d]=%g, scalar %g", type_name(t),
                                     kn_isa_name(isa), rows, cols, n, x, r, Y[i], Yref[i]);
                    }
            }
        }
    }
    kn_isa_set(kn_isa_detected());
    free(scratch);
    free(X);
    free(Y);
    free(Yref);
    t_free(&tm);
}

static void run_matmul_case(tp_pool *pool, weft_dtype t, int rows, int cols, size_t pad) {
    static const int ns[] = {1, 2, 3, 7, 16, 33};
    run_matmul_case_n(pool, t, rows, cols, pad, ns, sizeof ns / sizeof *ns);
}

static void test_matmul_all(void **state) {
    (void)state;
    tp_pool *pool = tp_new(3); /* 3 threads: row shares that are not multiples of the unroll */
    assert_non_null(pool);
    static const int shapes[][2] = {{1, 32}, {5, 64}, {37, 96}, {67, 288}, {130, 768}, {16, 32}};
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++)
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            run_matmul_case(pool, k_types[ti], shapes[s][0], shapes[s][1], s % 2 ? 64 : 0);
    /* Float types also accept columns that are not a multiple of the vector width. */
    run_matmul_case(pool, WEFT_F32, 9, 45, 4);
    run_matmul_case(pool, WEFT_F16, 9, 23, 2);
    run_matmul_case(pool, WEFT_BF16, 3, 7, 0);
    /* Float kernels' batched path: X tiles of 2..6 rows (n split evenly), streamed for n <= 12,
     * else L2 panels of weight rows x 1024-column blocks (partial sums added into Y); columns
     * beyond one block with a ragged tail, rows that are not a multiple of the 4-row tile. */
    static const int tile_n[] = {5, 6, 8, 12, 13, 24, 64};
    const size_t ntn = sizeof tile_n / sizeof *tile_n;
    run_matmul_case_n(pool, WEFT_F32, 67, 1100, 0, tile_n, ntn);
    run_matmul_case_n(pool, WEFT_F32, 45, 2048, 16, tile_n, ntn);
    run_matmul_case_n(pool, WEFT_F16, 130, 1037, 6, tile_n, ntn);
    run_matmul_case_n(pool, WEFT_BF16, 37, 2061, 0, tile_n, ntn);
    /* Large batches: F32 through sgemm and through the own kernel (with padded rows), the
     * others tile over n. */
    static const int big_n[] = {130};
    int saved_min_n = kn_sgemm_min_n();
    kn_sgemm_min_n_set(128);
    run_matmul_case_n(pool, WEFT_F32, 67, 288, 32, big_n, 1);
    kn_sgemm_min_n_set(1 << 20);
    run_matmul_case_n(pool, WEFT_F32, 67, 288, 32, big_n, 1);
    kn_sgemm_min_n_set(saved_min_n);
    run_matmul_case_n(pool, WEFT_Q4_0, 67, 288, 0, big_n, 1);
    run_matmul_case_n(pool, WEFT_Q8_0, 5, 4096, 0, big_n, 1); /* X in more than one L2 chunk */
    tp_free(pool);
}

/* The VNNI kernel's packed path forced for every n (WEFT_Q_BATCHED_MIN_N=1): weights packed per
 * call in chunks of 32 blocks of 16 rows, micro-tiles of 2 row groups x up to 4 X rows. Every n
 * from 1 to 67 (all X-tile tails), an odd block count over two K chunks (the last block pair
 * is a half pair), and 3 threads on 100 rows: shares of 48 (a lone 16-row group after a
 * 32-row tile), 32 and 20 (16 packed + 4 on the row-lane tile). */
static void test_matmul_quant_batched(void **state) {
    (void)state;
    tp_pool *pool = tp_new(3);
    assert_non_null(pool);
    assert_int_equal(setenv("WEFT_Q_BATCHED_MIN_N", "1", 1), 0);
    int ns[67];
    for (int i = 0; i < 67; i++)
        ns[i] = i + 1;
    run_matmul_case_n(pool, WEFT_Q8_0, 100, 32 * 45, 0, ns, 67);
    run_matmul_case_n(pool, WEFT_Q4_0, 100, 32 * 45, 18, ns, 67);
    static const int few[] = {12, 13, 32, 33};
    run_matmul_case_n(pool, WEFT_Q8_0, 16, 32, 0, few, 4);  /* one block, one group */
    run_matmul_case_n(pool, WEFT_Q4_0, 35, 2048, 0, few, 4); /* K chunks 32 + 32 */
    run_matmul_case_n(NULL, WEFT_Q8_0, 64, 96, 34, few, 4);  /* caller thread only */
    assert_int_equal(unsetenv("WEFT_Q_BATCHED_MIN_N"), 0);
    tp_free(pool);
}

/* Batch invariance: row x of a batched product has exactly the bits of the same X row run
 * alone (n = 1), for every n in 1..67, on ragged shapes (rows not a multiple of 16, an odd
 * block count, 3 threads), for each ISA, with the packed-path threshold at its default,
 * forced on for every n, and off. This is what lets a sequence's logits not depend on the
 * other sequences in its engine batch. */
static void check_batch_invariant(tp_pool *pool, weft_dtype t, int rows, int cols) {
    enum { NMAX = 67 };
    t_matrix tm = t_make(t, rows, cols, 0);
    float *X = malloc((size_t)NMAX * cols * sizeof(float));
    float *Y = malloc((size_t)NMAX * rows * sizeof(float));
    float *Y1 = malloc((size_t)NMAX * rows * sizeof(float));
    size_t sb = kn_matmul_scratch_bytes(&tm.m, NMAX);
    void *scratch = malloc(sb);
    assert_true(X && Y && Y1 && scratch);
    for (int i = 0; i < NMAX * cols; i++)
        X[i] = frand() * (i % 7 == 0 ? 8.0f : 1.0f);
    static const char *const k_env[] = {NULL, "1", "off"};
    for (kn_isa isa = KN_ISA_SCALAR; isa <= KN_ISA_AVX512; isa++) {
        if (!isa_available(isa)) continue;
        kn_isa_set(isa);
        for (size_t e = 0; e < (isa == KN_ISA_AVX512 ? 3u : 1u); e++) {
            if (k_env[e])
                assert_int_equal(setenv("WEFT_Q_BATCHED_MIN_N", k_env[e], 1), 0);
            else
                assert_int_equal(unsetenv("WEFT_Q_BATCHED_MIN_N"), 0);
            for (int x = 0; x < NMAX; x++)
                kn_matmul(pool, &tm.m, X + (size_t)x * cols, 1, Y1 + (size_t)x * rows, scratch);
            for (int n = 2; n <= NMAX; n++) {
                kn_matmul(pool, &tm.m, X, n, Y, scratch);
                for (size_t i = 0; i < (size_t)n * rows; i++)
                    if (memcmp(&Y[i], &Y1[i], sizeof(float)) != 0)
                        fail_msg("%s %s env=%s %dx%d n=%d: y[%zu][%zu]=%.9g, alone %.9g",
                                 type_name(t), kn_isa_name(isa), k_env[e] ? k_env[e] : "unset",
                                 rows, cols, n, i / (size_t)rows, i % (size_t)rows, Y[i], Y1[i]);
            }
        }
    }
    assert_int_equal(unsetenv("WEFT_Q_BATCHED_MIN_N"), 0);
    kn_isa_set(kn_isa_detected());
    free(scratch);
    free(X);
    free(Y);
    free(Y1);
    t_free(&tm);
}

static void test_matmul_quant_batch_invariant(void **state) {
    (void)state;
    tp_pool *pool = tp_new(3);
    assert_non_null(pool);
    check_batch_invariant(pool, WEFT_Q8_0, 100, 32 * 45);
    check_batch_invariant(pool, WEFT_Q4_0, 100, 32 * 45);
    check_batch_invariant(pool, WEFT_Q8_0, 37, 32 * 3);
    check_batch_invariant(pool, WEFT_Q4_0, 19, 32 * 4);
    tp_free(pool);
}

/* Q8_0 weights packed once (kn_pack_new, what model load does): every n from 1 to 67 gives the
 * scalar kernel's bits (so also batch invariance), on ragged shapes (rows not a multiple of 16:
 * a padded last group; one block; two K chunks; padded rows), 3 threads and the caller alone;
 * and a row-slice view of a packed matrix (data moved, as tensor parallelism does) no longer
 * matches its packing and still computes its own rows. */
static void check_prepacked(tp_pool *pool, int rows, int cols, size_t pad) {
    enum { NMAX = 67 };
    t_matrix tm = t_make(WEFT_Q8_0, rows, cols, pad);
    float *X = malloc((size_t)NMAX * cols * sizeof(float));
    float *Y = malloc((size_t)NMAX * rows * sizeof(float));
    float *Yr = malloc((size_t)NMAX * rows * sizeof(float));
    void *scratch = malloc(kn_matmul_scratch_bytes(&tm.m, NMAX));
    assert_true(X && Y && Yr && scratch);
    for (int i = 0; i < NMAX * cols; i++) X[i] = frand() * (i % 5 == 0 ? 6.0f : 1.0f);
    kn_packed *pk = kn_pack_new(&tm.m);
    if (!pk) {
        printf("SKIP prepacked %dx%d: no AVX-512 VNNI\n", rows, cols);
    } else {
        assert_true(kn_pack_bytes(pk) >= (size_t)rows * cols);
        kn_matrix wp = tm.m;
        wp.packed = pk;
        for (int n = 1; n <= NMAX; n++) {
            kn_isa_set(KN_ISA_SCALAR);
            kn_matmul(pool, &tm.m, X, n, Yr, scratch);
            kn_isa_set(kn_isa_detected());
            kn_matmul(pool, &wp, X, n, Y, scratch);
            for (size_t i = 0; i < (size_t)n * rows; i++)
                if (memcmp(&Y[i], &Yr[i], sizeof(float)) != 0)
                    fail_msg("prepacked Q8_0 %dx%d n=%d: y[%zu][%zu]=%.9g, scalar %.9g", rows,
                             cols, n, i / (size_t)rows, i % (size_t)rows, Y[i], Yr[i]);
        }
        if (rows > 3) { /* a view of rows [3, rows): the packing no longer matches */
            kn_matrix view = wp;
            view.data = (const uint8_t *)wp.data + 3 * wp.row_bytes;
            view.rows = rows - 3;
            kn_matrix plain = view;
            plain.packed = NULL;
            kn_isa_set(KN_ISA_SCALAR);
            kn_matmul(pool, &plain, X, 5, Yr, scratch);
            kn_isa_set(kn_isa_detected());
            kn_matmul(pool, &view, X, 5, Y, scratch);
            assert_memory_equal(Y, Yr, sizeof(float) * 5 * (size_t)view.rows);
        }
        kn_pack_free(pk);
    }
    free(X);
    free(Y);
    free(Yr);
    free(scratch);
    t_free(&tm);
}

static void test_matmul_q8_prepacked(void **state) {
    (void)state;
    tp_pool *pool = tp_new(3);
    assert_non_null(pool);
    check_prepacked(pool, 100, 32 * 45, 0); /* shares 48/32/20: a partial group at the end */
    check_prepacked(pool, 37, 32 * 3, 34);
    check_prepacked(pool, 16, 32, 0);
    check_prepacked(pool, 35, 2048, 0); /* two K chunks of 32 blocks */
    check_prepacked(pool, 40, 32 * 70, 0); /* 70 blocks: n = 1 takes the packed path too */
    check_prepacked(NULL, 1, 64, 2);
    check_prepacked(NULL, 64, 96, 34);
    tp_free(pool);
}

static void test_matmul_no_pool(void **state) {
    (void)state;
    t_matrix tm = t_make(WEFT_Q4_0, 19, 64, 0);
    float X[2 * 64], Y[2 * 19];
    for (int i = 0; i < 128; i++)
        X[i] = frand();
    void *scratch = malloc(kn_matmul_scratch_bytes(&tm.m, 2));
    assert_non_null(scratch);
    kn_matmul(NULL, &tm.m, X, 2, Y, scratch);
    assert_true(check_matmul(&tm, X, 2, Y) <= 1.0);
    free(scratch);
    t_free(&tm);
}

static void test_matrix_row(void **state) {
    (void)state;
    for (size_t ti = 0; ti < sizeof k_types / sizeof *k_types; ti++) {
        t_matrix tm = t_make(k_types[ti], 7, 96, 32);
        float out[96];
        for (int r = 0; r < 7; r++) {
            kn_matrix_row_f32(&tm.m, r, out);
            assert_memory_equal(out, tm.deq + (size_t)r * 96, sizeof out);
        }
        t_free(&tm);
    }
}

/* ---- vector / layer ops ---- */

static const int k_lens[] = {1, 3, 8, 15, 16, 17, 31, 33, 64, 100, 128, 1000, 4099};

static void fill(float *v, int n, float scale) {
    for (int i = 0; i < n; i++)
        v[i] = frand() * scale;
}

static void assert_close(const float *got, const double *want, int n, double rel, const char *what,
                         kn_isa isa) {
    for (int i = 0; i < n; i++) {
        double tol = rel * (fabs(want[i]) + 1e-3);
        if (!(fabs((double)got[i] - want[i]) <= tol))
            fail_msg("%s (%s) n=%d: [%d] = %.9g, want %.9g", what, kn_isa_name(isa), n, i, got[i],
                     want[i]);
    }
}

static void test_ops(void **state) {
    (void)state;
    enum { NMAX = 4099 };
    float *a = malloc(NMAX * sizeof(float)), *b = malloc(NMAX * sizeof(float));
    float *c = malloc(NMAX * sizeof(float)), *w = malloc(NMAX * sizeof(float));
    double *ref = malloc(NMAX * sizeof(double));
    assert_true(a && b && c && w && ref);
    for (kn_isa isa = KN_ISA_SCALAR; isa <= KN_ISA_AVX512; isa++) {
        if (!isa_available(isa)) continue;
        kn_isa_set(isa);
        for (size_t k = 0; k < sizeof k_lens / sizeof *k_lens; k++) {
            int n = k_lens[k];
            fill(a, n, 3.0f);
            fill(b, n, 3.0f);
            fill(w, n, 1.0f);
            /* dot */
            double d = 0, mag = 0;
            for (int i = 0; i < n; i++) {
                d += (double)a[i] * b[i];
                mag += fabs((double)a[i] * b[i]);
            }
            float got = kn_dot_f32(a, b, n);
            if (fabs(got - d) > 1e-6 * mag + 1e-7) fail_msg("dot n=%d: %g vs %g", n, got, d);
            /* axpy */
            memcpy(c, b, n * sizeof(float));
            for (int i = 0; i < n; i++)
                ref[i] = (double)b[i] + 0.75 * a[i];
            kn_axpy_f32(c, 0.75f, a, n);
            for (int i = 0; i < n; i++)
                if (fabs(c[i] - ref[i]) > 1e-6 * (fabs(a[i]) + fabs(b[i])))
                    fail_msg("axpy (%s) n=%d [%d]", kn_isa_name(isa), n, i);
            /* scale */
            memcpy(c, a, n * sizeof(float));
            for (int i = 0; i < n; i++)
                ref[i] = (double)a[i] * -1.5;
            kn_scale_f32(c, -1.5f, n);
            assert_close(c, ref, n, 1e-6, "scale", isa);
            /* add */
            memcpy(c, a, n * sizeof(float));
            for (int i = 0; i < n; i++)
                ref[i] = (double)a[i] + b[i];
            kn_add(c, b, n);
            for (int i = 0; i < n; i++)
                if (fabs(c[i] - ref[i]) > 1e-6 * (fabs(a[i]) + fabs(b[i])))
                    fail_msg("add n=%d [%d]", n, i);
            /* rmsnorm, in place and not */
            double ss = 0;
            for (int i = 0; i < n; i++)
                ss += (double)a[i] * a[i];
            double inv = 1.0 / sqrt(ss / n + 1e-5);
            for (int i = 0; i < n; i++)
                ref[i] = a[i] * inv * w[i];
            kn_rmsnorm(c, a, w, n, 1e-5f);
            assert_close(c, ref, n, 1e-5, "rmsnorm", isa);
            memcpy(c, a, n * sizeof(float));
            kn_rmsnorm(c, c, w, n, 1e-5f);
            assert_close(c, ref, n, 1e-5, "rmsnorm in place", isa);
            /* softmax, with an offset that would overflow a naive exp */
            for (int i = 0; i < n; i++)
                c[i] = a[i] * 10.0f + 500.0f;
            double mx = -INFINITY, sum = 0;
            for (int i = 0; i < n; i++)
                mx = fmax(mx, (double)c[i]);
            for (int i = 0; i < n; i++)
                sum += exp((double)c[i] - mx);
            for (int i = 0; i < n; i++)
                ref[i] = exp((double)c[i] - mx) / sum;
            kn_softmax(c, n);
            assert_close(c, ref, n, 1e-5, "softmax", isa);
            /* swiglu over a wide range, including saturating inputs */
            for (int i = 0; i < n; i++)
                c[i] = a[i] * (i % 7 == 0 ? 40.0f : 3.0f);
            for (int i = 0; i < n; i++)
                ref[i] = c[i] / (1.0 + exp(-(double)c[i])) * b[i];
            kn_swiglu(c, b, n);
            assert_close(c, ref, n, 1e-5, "swiglu", isa);
        }
    }
    kn_isa_set(kn_isa_detected());
    free(a);
    free(b);
    free(c);
    free(w);
    free(ref);
}

static void test_bandwidth_probe(void **state) {
    (void)state;
    size_t bytes = 4u << 20;
    void *buf = malloc(bytes);
    assert_non_null(buf);
    memset(buf, 1, bytes);
    tp_pool *p = tp_new(2);
    assert_non_null(p);
    double gbs = kn_read_bandwidth_gbs(p, buf, bytes, 3);
    printf("read bandwidth (4 MiB, cache-resident): %.1f GB/s\n", gbs);
    assert_true(gbs > 0.1);
    tp_free(p);
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_set),         cmocka_unit_test(test_threadpool),
        cmocka_unit_test(test_matmul_all),      cmocka_unit_test(test_matmul_no_pool),
        cmocka_unit_test(test_matmul_quant_batched),
        cmocka_unit_test(test_matmul_quant_batch_invariant),
        cmocka_unit_test(test_matmul_q8_prepacked),
        cmocka_unit_test(test_matrix_row),      cmocka_unit_test(test_ops),
        cmocka_unit_test(test_bandwidth_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
