/* test_mm_fused.c — kn_matmul_fused (the forward's RMSNorm / residual / SwiGLU / post step
 * inside the matmul dispatch) must give exactly the bits of the unfused sequence it replaces,
 * for every weight type (quantized: fused; float: the fallback), packed and unpacked Q8_0,
 * ragged shapes (rows not a multiple of the 16-row unit, shares of 3 threads), batch sizes
 * 1..67 and with or without a pool; post must see every output complete. And kn_argmax (the
 * greedy sampler's AVX-512 argmax) must equal the scalar loop, ties, NaN and infinities
 * included. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/kernels.h"

static uint64_t g_rng = 0x243f6a8885a308d3ull;
static uint32_t urand(void) {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}
static float frand(void) { /* uniform in [-1, 1) */
    return (float)(urand() & 0xffffff) / 8388608.0f - 1.0f;
}

/* Random weights of type t: small fp16 scales (2^-9 .. 2^-8), random quants. */
static kn_matrix make_w(weft_dtype t, int rows, int cols) {
    size_t rb = t == WEFT_Q8_0 ? (size_t)cols / 32 * 34
                : t == WEFT_Q4_0 ? (size_t)cols / 32 * 18
                                 : (size_t)cols * 4;
    uint8_t *buf = malloc(rb * (size_t)rows);
    assert_non_null(buf);
    for (size_t i = 0; i < rb * (size_t)rows; i++) buf[i] = (uint8_t)urand();
    if (t == WEFT_F32) {
        float *f = (float *)buf;
        for (size_t i = 0; i < (size_t)rows * cols; i++) f[i] = frand() * 0.05f;
    } else {
        size_t bs = t == WEFT_Q8_0 ? 34 : 18;
        for (size_t o = 0; o < rb * (size_t)rows; o += bs) {
            uint16_t h = (uint16_t)(0x1800 + (urand() & 0x3ff));
            memcpy(buf + o, &h, 2);
            if (t == WEFT_Q8_0)
                for (int j = 0; j < 32; j++)
                    if (buf[o + 2 + j] == 0x80) buf[o + 2 + j] = 0x81; /* no -128 in Q8_0 */
        }
    }
    return (kn_matrix){.type = t, .rows = rows, .cols = cols, .data = buf, .row_bytes = rb};
}

/* post: copies Ys[0] into a snapshot, split by thread, so a post that ran before the matmul
 * and its epilogue were complete would leave stale values there. */
typedef struct {
    const float *y;
    float *snap;
    size_t len;
} snap_job;

static void snap_post(void *ctx, int ith, int nth) {
    snap_job *j = ctx;
    size_t lo = j->len * (size_t)ith / (size_t)nth, hi = j->len * (size_t)(ith + 1) / (size_t)nth;
    memcpy(j->snap + lo, j->y + lo, (hi - lo) * sizeof(float));
}

enum { NMAX = 67 };

static void fail_bits(const char *what, const float *got, const float *want, size_t len,
                      int rows, int cols, int n) {
    for (size_t i = 0; i < len; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s %dx%d n=%d: [%zu] = %.9g, unfused %.9g", what, rows, cols, n, i,
                     got[i], want[i]);
}

/* One shape: (a) norm + Q/K/V-like 2 matrices + post, (b) 1 matrix + residual, (c) norm +
 * gate/up + SwiGLU, each against the unfused sequence. */
static void check_shape(tp_pool *pool, weft_dtype t, int rows, int cols, bool pack) {
    kn_matrix w0 = make_w(t, rows, cols), w1 = make_w(t, rows, cols);
    kn_packed *p0 = NULL, *p1 = NULL;
    if (pack) {
        p0 = kn_pack_new(&w0);
        p1 = kn_pack_new(&w1);
        if (!p0 || !p1) {
            printf("SKIP packed %dx%d: no AVX-512 VNNI\n", rows, cols);
            kn_pack_free(p0);
            kn_pack_free(p1);
            free((void *)w0.data);
            free((void *)w1.data);
            return;
        }
        w0.packed = p0;
        w1.packed = p1;
    }
    const size_t xl = (size_t)NMAX * cols, yl = (size_t)NMAX * rows;
    float *X = malloc(xl * sizeof(float)), *nw = malloc((size_t)cols * sizeof(float));
    float *xn = malloc(xl * sizeof(float)), *xn2 = malloc(xl * sizeof(float));
    float *Y[4], *R = malloc(yl * sizeof(float)), *R2 = malloc(yl * sizeof(float));
    float *snap = malloc(yl * sizeof(float));
    for (int i = 0; i < 4; i++) {
        Y[i] = malloc(yl * sizeof(float));
        assert_non_null(Y[i]);
    }
    size_t sb = kn_matmul_scratch_bytes(&w0, NMAX);
    void *scratch = sb ? malloc(sb) : NULL;
    assert_true(X && nw && xn && xn2 && R && R2 && snap && (!sb || scratch));
    for (size_t i = 0; i < xl; i++) X[i] = frand() * (i % 7 == 0 ? 5.0f : 1.0f);
    for (int i = 0; i < cols; i++) nw[i] = 0.5f + frand();
    const kn_matrix *ws[2] = {&w0, &w1};
    const float eps = 1e-5f;
    for (int n = 1; n <= NMAX; n += n < 9 ? 1 : 7) {
        const size_t ny = (size_t)n * rows;
        /* (a) unfused: norm rows, both matmuls; fused with a post snapshot */
        for (int x = 0; x < n; x++)
            kn_rmsnorm(xn + (size_t)x * cols, X + (size_t)x * cols, nw, cols, eps);
        float *ref[2] = {Y[0], Y[1]}, *got[2] = {Y[2], Y[3]};
        kn_matmul_multi(pool, ws, 2, xn, n, ref, scratch);
        snap_job sj = {Y[2], snap, ny};
        kn_mm_fuse fa = {.norm_w = nw, .norm_eps = eps, .norm_out = xn2, .post = snap_post,
                         .post_ctx = &sj};
        memset(xn2, 0xff, (size_t)n * cols * sizeof(float));
        kn_matmul_fused(pool, ws, 2, X, n, got, scratch, &fa);
        fail_bits("norm_out", xn2, xn, (size_t)n * cols, rows, cols, n);
        fail_bits("fused Y0", Y[2], Y[0], ny, rows, cols, n);
        fail_bits("fused Y1", Y[3], Y[1], ny, rows, cols, n);
        fail_bits("post snapshot", snap, Y[0], ny, rows, cols, n);

        /* (b) residual: R += X·W0ᵀ */
        for (size_t i = 0; i < ny; i++) R[i] = R2[i] = frand();
        kn_matmul(pool, &w0, X, n, Y[0], scratch);
        kn_add(R, Y[0], (int)ny);
        kn_mm_fuse fr = {.residual = R2};
        kn_matmul_fused(pool, &ws[0], 1, X, n, &got[0], scratch, &fr);
        fail_bits("residual Y", Y[2], Y[0], ny, rows, cols, n);
        fail_bits("residual", R2, R, ny, rows, cols, n);

        /* (c) norm + gate/up + SwiGLU */
        kn_matmul_multi(pool, ws, 2, xn, n, ref, scratch);
        kn_swiglu(Y[0], Y[1], (int)ny);
        kn_mm_fuse fg = {.norm_w = nw, .norm_eps = eps, .norm_out = xn2, .swiglu = true};
        kn_matmul_fused(pool, ws, 2, X, n, got, scratch, &fg);
        fail_bits("swiglu", Y[2], Y[0], ny, rows, cols, n);
    }
    for (int i = 0; i < 4; i++) free(Y[i]);
    free(X);
    free(nw);
    free(xn);
    free(xn2);
    free(R);
    free(R2);
    free(snap);
    free(scratch);
    kn_pack_free(p0);
    kn_pack_free(p1);
    free((void *)w0.data);
    free((void *)w1.data);
}

static void test_fused_equals_unfused(void **state) {
    (void)state;
    tp_pool *p3 = tp_new(3), *p2 = tp_new(2);
    assert_true(p3 && p2);
    const kn_isa isas[] = {KN_ISA_SCALAR, KN_ISA_AVX2, KN_ISA_AVX512};
    for (size_t k = 0; k < sizeof isas / sizeof *isas; k++) {
        if (isas[k] > kn_isa_detected()) continue;
        kn_isa_set(isas[k]);
        check_shape(p3, WEFT_Q8_0, 100, 32 * 45, false); /* shares 48/32/20 rows */
        check_shape(p3, WEFT_Q4_0, 37, 32 * 3, false);
        check_shape(p2, WEFT_F32, 40, 96, false);          /* the unfused fallback */
        check_shape(NULL, WEFT_Q8_0, 64, 96, false);        /* no pool */
        if (isas[k] == KN_ISA_AVX512) {
            check_shape(p3, WEFT_Q8_0, 100, 32 * 45, true); /* packed, partial last group */
            check_shape(p2, WEFT_Q8_0, 35, 2048, true);     /* two K chunks */
            check_shape(p2, WEFT_Q8_0, 768, 768, true);     /* tiny110m's Q/K/V width */
        }
    }
    kn_isa_set(kn_isa_detected());
    tp_free(p3);
    tp_free(p2);
}

static int ref_argmax(const float *x, int n) {
    int best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++)
        if (x[i] > bv) {
            bv = x[i];
            best = i;
        }
    return best;
}

static void check_argmax(const float *x, int n, const char *what) {
    int want = ref_argmax(x, n);
    const kn_isa isas[] = {KN_ISA_SCALAR, KN_ISA_AVX2, KN_ISA_AVX512};
    for (size_t k = 0; k < sizeof isas / sizeof *isas; k++) {
        if (isas[k] > kn_isa_detected()) continue;
        kn_isa_set(isas[k]);
        int got = kn_argmax(x, n);
        if (got != want)
            fail_msg("argmax %s n=%d (%s): %d, want %d", what, n, kn_isa_name(isas[k]), got, want);
    }
    kn_isa_set(kn_isa_detected());
}

static void test_argmax(void **state) {
    (void)state;
    enum { V = 32000 };
    float *x = malloc(V * sizeof(float));
    assert_non_null(x);
    assert_int_equal(kn_argmax(x, 0), 0);
    for (int n = 1; n <= 70; n++) {
        for (int i = 0; i < n; i++) x[i] = (float)(urand() % 8); /* many ties */
        check_argmax(x, n, "ties");
        for (int i = 0; i < n; i++) x[i] = urand() % 3 ? NAN : -INFINITY;
        check_argmax(x, n, "NaN/-inf only");
        x[urand() % n] = -3.0f;
        check_argmax(x, n, "one finite among NaN");
        for (int i = 0; i < n; i++) x[i] = urand() % 4 ? frand() : NAN;
        check_argmax(x, n, "NaN mixed");
        x[n - 1] = INFINITY;
        check_argmax(x, n, "+inf last");
    }
    for (int r = 0; r < 20; r++) {
        for (int i = 0; i < V; i++) x[i] = frand() * 10.0f;
        int a = (int)(urand() % V), b = (int)(urand() % V);
        x[a] = x[b] = 11.0f; /* a tie at the top */
        if (r % 3 == 0) x[urand() % V] = NAN;
        check_argmax(x, V, "vocabulary row");
        check_argmax(x, V - (int)(urand() % 17), "ragged row");
    }
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_equals_unfused),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
