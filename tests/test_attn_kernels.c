/* test_attn_kernels.c — kn_attn_scores / kn_attn_values against a double-precision reference
 * for every head size the SIMD path specialises (16..256) and ones it does not (8, 48), several
 * group sizes and row counts, on each ISA the CPU has; and the F16-cache variants, whose keys
 * and values are half floats (the reference widens the same halves, so only F32 arithmetic
 * rounding separates them), plus the F32→F16 row conversion against the scalar converter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "support/testutil.h"
#include "weft/dtype.h"
#include "weft/kernels.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void check_shape(int hd, int g, int n) {
    unsigned seed = (unsigned)(hd * 131 + g * 7 + n);
    const size_t kstride = (size_t)hd * 3 + 16, sstride = (size_t)n + 5;
    float *q = malloc(sizeof(float) * g * hd), *k = malloc(sizeof(float) * kstride * n);
    float *v = malloc(sizeof(float) * kstride * n), *s = malloc(sizeof(float) * sstride * g);
    float *out = malloc(sizeof(float) * g * hd);
    double *ref = malloc(sizeof(double) * g * hd);
    assert_non_null(q); assert_non_null(k); assert_non_null(v); assert_non_null(s);
    assert_non_null(out); assert_non_null(ref);
    for (int i = 0; i < g * hd; i++) q[i] = frand(&seed);
    for (size_t i = 0; i < kstride * n; i++) { k[i] = frand(&seed); v[i] = frand(&seed); }
    const float scale = 0.125f;
    kn_attn_scores(q, g, hd, k, kstride, n, scale, s, sstride);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++) {
            double r = 0;
            for (int d = 0; d < hd; d++) r += (double)q[h * hd + d] * k[i * kstride + d];
            r *= scale;
            double got = s[h * sstride + i];
            if (fabs(got - r) > 1e-5 * (1 + fabs(r)) * hd)
                fail_msg("scores hd=%d g=%d n=%d h=%d i=%d: %g vs %g", hd, g, n, h, i, got, r);
        }
    for (int i = 0; i < g * hd; i++) { out[i] = 0.5f; ref[i] = 0.5; }
    kn_attn_values(s, sstride, g, hd, v, kstride, n, out);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++)
            for (int d = 0; d < hd; d++)
                ref[h * hd + d] += (double)s[h * sstride + i] * v[i * kstride + d];
    for (int i = 0; i < g * hd; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i])) * n)
            fail_msg("values hd=%d g=%d n=%d elem %d: %g vs %g", hd, g, n, i, out[i], ref[i]);
    free(q); free(k); free(v); free(s); free(out); free(ref);
}

/* F16 rows: the kernels must equal the F32 kernels' maths on the widened halves. */
static void check_shape_f16(int hd, int g, int n) {
    unsigned seed = (unsigned)(hd * 37 + g * 11 + n);
    const size_t kstride = (size_t)hd * 2 + 16, sstride = (size_t)n + 3;
    float *q = malloc(sizeof(float) * g * hd), *s = malloc(sizeof(float) * sstride * g);
    float *tmp = malloc(sizeof(float) * kstride * n);
    uint16_t *k = malloc(sizeof(uint16_t) * kstride * n), *v = malloc(sizeof(uint16_t) * kstride * n);
    float *out = malloc(sizeof(float) * g * hd);
    double *ref = malloc(sizeof(double) * g * hd);
    assert_non_null(q); assert_non_null(s); assert_non_null(tmp); assert_non_null(k);
    assert_non_null(v); assert_non_null(out); assert_non_null(ref);
    for (int i = 0; i < g * hd; i++) q[i] = frand(&seed);
    for (size_t i = 0; i < kstride * n; i++) tmp[i] = frand(&seed) * 3.0f;
    kn_f32_to_f16_row(k, tmp, (int)(kstride * n));
    for (size_t i = 0; i < kstride * n; i++)
        if (k[i] != f32_to_fp16(tmp[i]))
            fail_msg("f32->f16 row elem %zu: %04x vs scalar %04x", i, k[i], f32_to_fp16(tmp[i]));
    for (size_t i = 0; i < kstride * n; i++) v[i] = f32_to_fp16(frand(&seed));
    const float scale = 0.25f;
    kn_attn_scores_f16(q, g, hd, k, kstride, n, scale, s, sstride);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++) {
            double r = 0;
            for (int d = 0; d < hd; d++)
                r += (double)q[h * hd + d] * fp16_to_f32(k[i * kstride + d]);
            r *= scale;
            double got = s[h * sstride + i];
            if (fabs(got - r) > 1e-5 * (1 + fabs(r)) * hd)
                fail_msg("f16 scores hd=%d g=%d n=%d h=%d i=%d: %g vs %g", hd, g, n, h, i, got, r);
        }
    for (int i = 0; i < g * hd; i++) { out[i] = -0.25f; ref[i] = -0.25; }
    kn_attn_values_f16(s, sstride, g, hd, v, kstride, n, out);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++)
            for (int d = 0; d < hd; d++)
                ref[h * hd + d] += (double)s[h * sstride + i] * fp16_to_f32(v[i * kstride + d]);
    for (int i = 0; i < g * hd; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i])) * n)
            fail_msg("f16 values hd=%d g=%d n=%d elem %d: %g vs %g", hd, g, n, i, out[i], ref[i]);
    free(q); free(s); free(tmp); free(k); free(v); free(out); free(ref);
}

static void run_all(void) {
    const int hds[] = {8, 16, 32, 48, 64, 128, 256};
    const int gs[] = {1, 2, 4, 8};
    const int ns[] = {1, 3, 4, 7, 16, 33, 50};
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof gs / sizeof *gs; b++)
            for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
                check_shape(hds[a], gs[b], ns[c]);
                check_shape_f16(hds[a], gs[b], ns[c]);
            }
}

static void test_attn_every_isa(void **state) {
    (void)state;
    kn_isa best = kn_isa_detected();
    for (int isa = KN_ISA_SCALAR; isa <= KN_ISA_AVX512; isa++) {
        if (isa > (int)best) {
            printf("SKIP: %s not supported by this CPU\n", kn_isa_name((kn_isa)isa));
            continue;
        }
        kn_isa_set((kn_isa)isa);
        run_all();
    }
    kn_isa_set(best);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attn_every_isa)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
