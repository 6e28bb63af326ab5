/* test_attn_kernels.c — kn_attn_scores / kn_attn_values against a double-precision reference
 * for every head size the SIMD path specialises (16..256) and ones it does not (8, 48), several
 * group sizes and row counts, on each ISA the CPU has; and the F16-cache variants, whose keys
 * and values are half floats (the reference widens the same halves, so only F32 arithmetic
 * rounding separates them), plus the F32→F16 row conversion against the scalar converter; and
 * the Q8_0-cache variants (int8 rows with a per-row scale): the row quantizer against its
 * definition, the kernels against a double reference on the same dequantized rows (F32
 * arithmetic tolerance) and against the unquantized rows (the quantization error bound); the
 * integer Q·K kernel (int8 queries) against a double reference, against F32 queries within the
 * query quantization bound, and bit-equal between the scalar and the AVX-512 VNNI kernel. */
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

/* Q8_0 rows. Quantizer: scale = max|x|/127, |x - scale*q| <= scale/2 (+ F32 rounding), q in
 * [-127, 127], the largest |x| maps to ±127. Kernels: the same tolerance as F32 against a double
 * reference on scale*q; against the unquantized rows each product's key or value moves by at
 * most its scale/2, so |score error| <= scale_attn * kscale/2 * Σ|q| (+ arithmetic), and each
 * output element by at most Σ_i |p_i| * vscale_i/2. */
static void check_shape_q8(int hd, int g, int n) {
    unsigned seed = (unsigned)(hd * 53 + g * 13 + n);
    const size_t kstride = (size_t)hd * 2 + 16, sstride = (size_t)n + 3;
    float *q = malloc(sizeof(float) * g * hd), *s = malloc(sizeof(float) * sstride * g);
    float *kf = malloc(sizeof(float) * kstride * n), *vf = malloc(sizeof(float) * kstride * n);
    int8_t *k = malloc(kstride * n), *v = malloc(kstride * n);
    float *ks = malloc(sizeof(float) * n), *vs = malloc(sizeof(float) * n);
    float *out = malloc(sizeof(float) * g * hd);
    double *ref = malloc(sizeof(double) * g * hd), *bound = malloc(sizeof(double) * g * hd);
    assert_non_null(q); assert_non_null(s); assert_non_null(kf); assert_non_null(vf);
    assert_non_null(k); assert_non_null(v); assert_non_null(ks); assert_non_null(vs);
    assert_non_null(out); assert_non_null(ref); assert_non_null(bound);
    for (int i = 0; i < g * hd; i++) q[i] = frand(&seed);
    for (size_t i = 0; i < kstride * n; i++) {
        kf[i] = frand(&seed) * 3.0f;
        vf[i] = frand(&seed) * 0.5f;
    }
    for (int i = 0; i < n; i++) {
        float *kr = kf + (size_t)i * kstride, *vr = vf + (size_t)i * kstride;
        if (i == 1) /* an all-zero row: scale 0, reads back as zeros */
            for (int d = 0; d < hd; d++) kr[d] = 0.0f;
        kn_quantize_row_q8kv(k + (size_t)i * kstride, &ks[i], kr, hd);
        kn_quantize_row_q8kv(v + (size_t)i * kstride, &vs[i], vr, hd);
        float amax = 0;
        for (int d = 0; d < hd; d++) amax = fmaxf(amax, fabsf(kr[d]));
        assert_true(ks[i] == amax / 127.0f);
        int top = 0;
        for (int d = 0; d < hd; d++) {
            int8_t e = k[(size_t)i * kstride + d];
            assert_true(e != -128); /* the int8 range is symmetric: [-127, 127] */
            if (e == 127 || e == -127) top = 1;
            double err = fabs((double)kr[d] - (double)ks[i] * e);
            if (err > ks[i] * 0.5 * (1 + 1e-5))
                fail_msg("quantize hd=%d row %d elem %d: %g -> %d * %g", hd, i, d, kr[d], e, ks[i]);
        }
        assert_true(top == (amax > 0));
    }
    const float scale = 0.25f;
    kn_attn_scores_q8(q, g, hd, k, kstride, ks, n, scale, s, sstride);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++) {
            double r = 0, exact = 0, qabs = 0;
            for (int d = 0; d < hd; d++) {
                r += (double)q[h * hd + d] * ((double)ks[i] * k[i * kstride + d]);
                exact += (double)q[h * hd + d] * kf[i * kstride + d];
                qabs += fabs(q[h * hd + d]);
            }
            r *= scale;
            exact *= scale;
            double got = s[h * sstride + i];
            if (fabs(got - r) > 1e-5 * (1 + fabs(r)) * hd)
                fail_msg("q8 scores hd=%d g=%d n=%d h=%d i=%d: %g vs %g", hd, g, n, h, i, got, r);
            if (fabs(got - exact) > scale * ks[i] * 0.5 * qabs + 1e-5 * (1 + fabs(r)) * hd)
                fail_msg("q8 scores hd=%d g=%d n=%d h=%d i=%d: %g vs unquantized %g", hd, g, n, h,
                         i, got, exact);
        }
    for (int i = 0; i < g * hd; i++) { out[i] = 0.75f; ref[i] = 0.75; bound[i] = 0; }
    kn_attn_values_q8(s, sstride, g, hd, v, kstride, vs, n, out);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++)
            for (int d = 0; d < hd; d++) {
                double w = s[h * sstride + i];
                ref[h * hd + d] += w * ((double)vs[i] * v[i * kstride + d]);
                bound[h * hd + d] += fabs(w) * vs[i] * 0.5;
            }
    for (int i = 0; i < g * hd; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * (1 + fabs(ref[i])) * n)
            fail_msg("q8 values hd=%d g=%d n=%d elem %d: %g vs %g", hd, g, n, i, out[i], ref[i]);
    /* against the unquantized values */
    for (int h = 0; h < g; h++)
        for (int d = 0; d < hd; d++) {
            double exact = 0.75;
            for (int i = 0; i < n; i++) exact += (double)s[h * sstride + i] * vf[i * kstride + d];
            if (fabs(out[h * hd + d] - exact) > bound[h * hd + d] + 1e-5 * (1 + fabs(exact)) * n)
                fail_msg("q8 values hd=%d g=%d n=%d h=%d d=%d: %g vs unquantized %g", hd, g, n, h,
                         d, out[h * hd + d], exact);
        }
    free(q); free(s); free(kf); free(vf); free(k); free(v); free(ks); free(vs); free(out);
    free(ref); free(bound);
}

/* Integer Q·K over a Q8_0 cache (kn_attn_scores_q8q8): queries quantized per head like cache
 * rows. The int32 dots are exact, so against a double reference on the same int8 values only the
 * two F32 multiplies round (relative 2^-22); against F32 queries (kn_attn_scores_q8) each query
 * element moves by at most qscale/2, so |difference| <= scale * kscale * qscale/2 * Σ|k|.
 * out receives the scores ([g][sstride = n]) for the bit-equality check across ISAs. */
static void check_shape_q8q8(int hd, int g, int n, float *out) {
    unsigned seed = (unsigned)(hd * 71 + g * 5 + n);
    const size_t kstride = (size_t)hd + 64;
    float *q = malloc(sizeof(float) * g * hd), *kf = malloc(sizeof(float) * kstride * n);
    float *qs = malloc(sizeof(float) * g), *ks = malloc(sizeof(float) * n);
    float *sf = malloc(sizeof(float) * g * n);
    int8_t *qi = malloc((size_t)g * hd), *k = malloc(kstride * n);
    assert_non_null(q); assert_non_null(kf); assert_non_null(qs); assert_non_null(ks);
    assert_non_null(sf); assert_non_null(qi); assert_non_null(k);
    for (int i = 0; i < g * hd; i++) q[i] = frand(&seed) * 2.0f;
    for (size_t i = 0; i < kstride * n; i++) kf[i] = frand(&seed) * 3.0f;
    for (int h = 0; h < g; h++) kn_quantize_row_q8kv(qi + (size_t)h * hd, &qs[h], q + (size_t)h * hd, hd);
    for (int i = 0; i < n; i++) kn_quantize_row_q8kv(k + (size_t)i * kstride, &ks[i], kf + (size_t)i * kstride, hd);
    const float scale = 0.125f;
    kn_attn_scores_q8q8(qi, qs, g, hd, k, kstride, ks, n, scale, out, (size_t)n);
    kn_attn_scores_q8(q, g, hd, k, kstride, ks, n, scale, sf, (size_t)n);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++) {
            double r = 0, kabs = 0;
            for (int d = 0; d < hd; d++) {
                r += ((double)qs[h] * qi[h * hd + d]) * ((double)ks[i] * k[i * kstride + d]);
                kabs += fabs((double)ks[i] * k[i * kstride + d]);
            }
            r *= scale;
            double got = out[h * n + i];
            if (fabs(got - r) > 3e-7 * fabs(r) + 1e-30)
                fail_msg("q8q8 scores hd=%d g=%d n=%d h=%d i=%d: %.9g vs %.9g", hd, g, n, h, i, got, r);
            double bound = scale * qs[h] * 0.5 * kabs + 1e-5 * (1 + fabs(r)) * hd;
            if (fabs(got - sf[h * n + i]) > bound)
                fail_msg("q8q8 vs F32-query scores hd=%d g=%d n=%d h=%d i=%d: %g vs %g (bound %g)",
                         hd, g, n, h, i, got, sf[h * n + i], bound);
        }
    free(q); free(kf); free(qs); free(ks); free(sf); free(qi); free(k);
}

/* The AVX-512 VNNI integer kernel equals the scalar one bit for bit (exact int32 dots, the same
 * two F32 multiplies), on every head size it specialises and ones it does not. */
static void test_q8q8_isa_bit_equal(void **state) {
    (void)state;
    const int hds[] = {8, 48, 64, 128, 192, 256};
    const int gs[] = {1, 3, 8};
    const int ns[] = {1, 5, 16, 33, 70};
    kn_isa best = kn_isa_detected();
    if (best < KN_ISA_AVX512) printf("SKIP part: no AVX-512 (only the scalar kernel checked)\n");
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof gs / sizeof *gs; b++)
            for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
                const size_t sz = sizeof(float) * (size_t)gs[b] * ns[c];
                float *x = malloc(sz), *y = malloc(sz);
                assert_non_null(x);
                assert_non_null(y);
                kn_isa_set(KN_ISA_SCALAR);
                check_shape_q8q8(hds[a], gs[b], ns[c], x);
                kn_isa_set(best);
                check_shape_q8q8(hds[a], gs[b], ns[c], y);
                assert_memory_equal(x, y, sz);
                free(x);
                free(y);
            }
    kn_isa_set(best);
}

/* 16-bit query magnitudes / value weights (kn_attn_scores_q8q16, kn_attn_values_q8w16, opt-in
 * WEFT_ATTN_Q8_QK=int16): within 1/65535-relative bounds of the F32-query kernels, and the AVX-512
 * VNNI kernels equal the scalar ones bit for bit. */
static void run_q16(int hd, int g, int n, float *sc, float *out) {
    unsigned seed = (unsigned)(hd * 17 + g * 3 + n);
    const size_t kstride = (size_t)hd + 64;
    float *q = malloc(sizeof(float) * g * hd), *kf = malloc(sizeof(float) * kstride * n);
    float *qs = malloc(sizeof(float) * g), *ks = malloc(sizeof(float) * n), *vs = malloc(sizeof(float) * n);
    float *sf = malloc(sizeof(float) * g * n), *of = malloc(sizeof(float) * g * hd);
    uint8_t *q3 = malloc((size_t)g * hd * 3);
    int8_t *k = malloc(kstride * n), *v = malloc(kstride * n);
    assert_non_null(q); assert_non_null(kf); assert_non_null(qs); assert_non_null(ks);
    assert_non_null(vs); assert_non_null(sf); assert_non_null(of); assert_non_null(q3);
    assert_non_null(k); assert_non_null(v);
    for (int i = 0; i < g * hd; i++) q[i] = frand(&seed) * 2.0f;
    for (int i = 0; i < n; i++) {
        for (size_t d = 0; d < kstride; d++) kf[i * kstride + d] = frand(&seed);
        kn_quantize_row_q8kv(k + (size_t)i * kstride, &ks[i], kf + (size_t)i * kstride, hd);
        for (size_t d = 0; d < kstride; d++) kf[i * kstride + d] = frand(&seed);
        kn_quantize_row_q8kv(v + (size_t)i * kstride, &vs[i], kf + (size_t)i * kstride, hd);
    }
    for (int h = 0; h < g; h++) kn_quantize_q16(q3 + (size_t)h * 3 * hd, &qs[h], q + (size_t)h * hd, hd);
    const float scale = 0.125f;
    kn_attn_scores_q8q16(q3, qs, g, hd, k, kstride, ks, n, scale, sc, (size_t)n);
    kn_attn_scores_q8(q, g, hd, k, kstride, ks, n, scale, sf, (size_t)n);
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++) {
            double kabs = 0;
            for (int d = 0; d < hd; d++) kabs += fabs((double)ks[i] * k[i * kstride + d]);
            double bound = scale * qs[h] * 0.5 * kabs + 1e-5 * (1 + fabs(sf[h * n + i])) * hd;
            if (fabs(sc[h * n + i] - sf[h * n + i]) > bound)
                fail_msg("q8q16 scores hd=%d g=%d n=%d h=%d i=%d: %g vs %g", hd, g, n, h, i,
                         sc[h * n + i], sf[h * n + i]);
        }
    for (int i = 0; i < g * n; i++) sc[i] = fabsf(sc[i]) * (i % 7 == 3 ? -1.0f : 1.0f);
    for (int i = 0; i < g * hd; i++) out[i] = of[i] = 0.5f;
    kn_attn_values_q8w16(sc, (size_t)n, g, hd, v, kstride, vs, n, out);
    kn_attn_values_q8(sc, (size_t)n, g, hd, v, kstride, vs, n, of);
    for (int h = 0; h < g; h++)
        for (int d = 0; d < hd; d++) {
            double bound = 1e-5 * (1 + fabs(of[h * hd + d])) * n;
            for (int i0 = 0; i0 < n; i0 += 16) { /* each weight off by <= wmax/131070 */
                double wmax = 0, vsum = 0;
                for (int i = i0; i < n && i < i0 + 16; i++) {
                    wmax = fmax(wmax, fabs((double)sc[h * n + i] * vs[i]));
                    vsum += fabs((double)v[i * kstride + d]);
                }
                bound += wmax / 131070.0 * 1.0001 * vsum;
            }
            if (fabs(out[h * hd + d] - of[h * hd + d]) > bound)
                fail_msg("q8w16 values hd=%d g=%d n=%d h=%d d=%d: %g vs %g", hd, g, n, h, d,
                         out[h * hd + d], of[h * hd + d]);
        }
    free(q); free(kf); free(qs); free(ks); free(vs); free(sf); free(of); free(q3); free(k); free(v);
}

static void test_q16_isa_bit_equal(void **state) {
    (void)state;
    const int hds[] = {16, 64, 128, 192, 256}, gs[] = {1, 3}, ns[] = {1, 5, 16, 33, 70};
    kn_isa best = kn_isa_detected();
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof gs / sizeof *gs; b++)
            for (size_t c = 0; c < sizeof ns / sizeof *ns; c++) {
                const int g = gs[b], n = ns[c], hd = hds[a];
                float *s1 = malloc(sizeof(float) * g * n), *s2 = malloc(sizeof(float) * g * n);
                float *o1 = malloc(sizeof(float) * g * hd), *o2 = malloc(sizeof(float) * g * hd);
                assert_non_null(s1); assert_non_null(s2); assert_non_null(o1); assert_non_null(o2);
                kn_isa_set(KN_ISA_SCALAR);
                run_q16(hd, g, n, s1, o1);
                kn_isa_set(best);
                run_q16(hd, g, n, s2, o2);
                assert_memory_equal(s1, s2, sizeof(float) * g * n);
                assert_memory_equal(o1, o2, sizeof(float) * g * hd);
                free(s1); free(s2); free(o1); free(o2);
            }
    kn_isa_set(best);
}

/* The AVX-512 Q8_0 row quantizer writes the same bytes and scale as the scalar one, also on
 * exact .5 ties, zero rows, rows with a NaN or an infinity. */
static void test_quantize_row_isa_equal(void **state) {
    (void)state;
    kn_isa best = kn_isa_detected();
    unsigned seed = 99;
    for (int trial = 0; trial < 200; trial++) {
        const int n = 16 * (1 + trial % 8);
        float x[128];
        int8_t a[128], b[128];
        float sa = -1, sb = -2;
        for (int i = 0; i < n; i++) x[i] = frand(&seed) * (float)(1 + trial);
        if (trial % 5 == 1) { /* ties: amax 127 makes inv 1, x.5 values round to even */
            for (int i = 0; i < n; i++) x[i] = (float)((i % 20) - 10) + 0.5f;
            x[0] = 127.0f;
        }
        if (trial % 5 == 2)
            for (int i = 0; i < n; i++) x[i] = 0.0f;
        if (trial % 5 == 3) x[trial % n] = NAN;
        if (trial % 5 == 4 && trial % 2) x[trial % n] = INFINITY;
        kn_isa_set(KN_ISA_SCALAR);
        kn_quantize_row_q8kv(a, &sa, x, n);
        kn_isa_set(best);
        kn_quantize_row_q8kv(b, &sb, x, n);
        assert_memory_equal(&sa, &sb, sizeof sa);
        assert_memory_equal(a, b, (size_t)n);
    }
    kn_isa_set(best);
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
                check_shape_q8(hds[a], gs[b], ns[c]);
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_attn_every_isa),
                                       cmocka_unit_test(test_q8q8_isa_bit_equal),
                                       cmocka_unit_test(test_q16_isa_bit_equal),
                                       cmocka_unit_test(test_quantize_row_isa_equal)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
