/* test_dtype.c — the scalar dtype layer: half/bfloat conversions (rounding, subnormals, inf,
 * NaN), Q8_0/Q4_0 round-trip error bounds and layout, and block/row geometry. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/testutil.h"
#include "weft/dtype.h"

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_fp16_edges(void **state) {
    (void)state;
    assert_int_equal(f32_to_fp16(0.0f), 0x0000);
    assert_int_equal(f32_to_fp16(-0.0f), 0x8000);
    assert_int_equal(f32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(f32_to_fp16(-2.0f), 0xc000);
    assert_int_equal(f32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(f32_to_fp16(65519.0f), 0x7bff); /* below the halfway point to 65536 */
    assert_int_equal(f32_to_fp16(65520.0f), 0x7c00); /* halfway, odd mantissa: up to inf */
    assert_int_equal(f32_to_fp16(1e10f), 0x7c00);
    assert_int_equal(f32_to_fp16(-INFINITY), 0xfc00);
    assert_int_equal(f32_to_fp16(INFINITY), 0x7c00);
    uint16_t n = f32_to_fp16(NAN);
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    /* A NaN whose payload lives only in the low bits must not turn into inf. */
    n = f32_to_fp16(from_bits(0x7f800001u));
    assert_true((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    assert_true(isnan(fp16_to_f32(0x7e00)));
    assert_true(isinf(fp16_to_f32(0x7c00)) && fp16_to_f32(0x7c00) > 0);
    /* Ties to even among normals: 1 + 2^-11 is halfway between 1 and 1 + 2^-10. */
    assert_int_equal(f32_to_fp16(1.0f + 0x1p-11f), 0x3c00);
    assert_int_equal(f32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02);
    assert_int_equal(f32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
    /* Subnormals. */
    assert_int_equal(f32_to_fp16(0x1p-24f), 0x0001);
    assert_int_equal(f32_to_fp16(0x1p-25f), 0x0000);            /* tie to even: 0 */
    assert_int_equal(f32_to_fp16(0x1p-25f + 0x1p-35f), 0x0001); /* just above the tie */
    assert_int_equal(f32_to_fp16(3 * 0x1p-25f), 0x0002);        /* tie between 1 and 2 units */
    assert_int_equal(f32_to_fp16(-0x1p-24f), 0x8001);
    assert_int_equal(f32_to_fp16(1023 * 0x1p-24f), 0x03ff);
    assert_int_equal(f32_to_fp16(0x1p-14f), 0x0400);            /* smallest normal */
    assert_int_equal(f32_to_fp16(0x1p-14f - 0x1p-26f), 0x0400); /* rounds up into normal */
    assert_int_equal(f32_to_fp16(1e-30f), 0x0000);
    assert_int_equal(f32_to_fp16(from_bits(0x00000001u)), 0x0000); /* f32 subnormal */
    assert_true(fp16_to_f32(0x0001) == 0x1p-24f);
    assert_true(fp16_to_f32(0x83ff) == -1023 * 0x1p-24f);
    assert_true(fp16_to_f32(0x7bff) == 65504.0f);
}

/* Every half value survives f16 -> f32 -> f16 bit-exactly (NaN stays NaN). */
static void test_fp16_exhaustive_roundtrip(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        uint16_t back = f32_to_fp16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
            assert_true(isnan(f));
            assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        } else {
            assert_int_equal(back, h);
        }
    }
}

/* For random finite floats in half range, the result is a nearest half (checked against both
 * neighbours), i.e. the conversion is correctly rounded. */
static void test_fp16_nearest_property(void **state) {
    (void)state;
    uint64_t s = 42;
    for (int i = 0; i < 200000; i++) {
        uint32_t u = (uint32_t)rng_next(&s);
        /* Exponents from 2^-30 to 2^15 cover subnormals, normals and overflow edge. */
        u = (u & 0x807fffffu) | ((uint32_t)(97 + (rng_next(&s) % 46)) << 23);
        float f = from_bits(u);
        uint16_t h = f32_to_fp16(f);
        double err = fabs((double)fp16_to_f32(h) - (double)f);
        if ((h & 0x7fff) == 0x7c00) {
            assert_true(fabs(f) >= 65520.0f);
            continue;
        }
        for (int d = -1; d <= 1; d += 2) {
            uint16_t nb = (uint16_t)(h + d);
            if ((nb & 0x7c00) == 0x7c00 || ((h & 0x7fff) == 0 && d < 0)) continue;
            double nerr = fabs((double)fp16_to_f32(nb) - (double)f);
            assert_true(err <= nerr);
            if (err == nerr) assert_int_equal(h & 1, 0); /* ties go to even */
        }
    }
}

static void test_bf16(void **state) {
    (void)state;
    assert_int_equal(f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(f32_to_bf16(-2.0f), 0xc000);
    assert_int_equal(f32_to_bf16(from_bits(0x3f808000u)), 0x3f80); /* tie, even stays */
    assert_int_equal(f32_to_bf16(from_bits(0x3f818000u)), 0x3f82); /* tie, odd rounds up */
    assert_int_equal(f32_to_bf16(from_bits(0x3f808001u)), 0x3f81);
    assert_int_equal(f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(f32_to_bf16(from_bits(0x7f7fffffu)), 0x7f80); /* FLT_MAX rounds to inf */
    uint16_t n = f32_to_bf16(from_bits(0x7f800001u));
    assert_true((n & 0x7f80) == 0x7f80 && (n & 0x7f));
    assert_true(isnan(bf16_to_f32(n)));
    assert_true(bf16_to_f32(0x3f80) == 1.0f);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = bf16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        assert_int_equal(f32_to_bf16(f), h);
    }
    /* Relative error at most half an ulp: 2^-8 of the value for normal values. */
    uint64_t s = 7;
    for (int i = 0; i < 10000; i++) {
        float f = ((float)(rng_next(&s) >> 40) * 0x1p-24f - 0.5f) * 1000.0f;
        float r = bf16_to_f32(f32_to_bf16(f));
        assert_true(fabsf(r - f) <= fabsf(f) * 0x1p-8f);
    }
    assert_int_equal(bits(bf16_to_f32(0x8000)), 0x80000000u);
}

static void test_geometry(void **state) {
    (void)state;
    assert_int_equal(sizeof(block_q8_0), 34);
    assert_int_equal(sizeof(block_q4_0), 18);
    assert_true(dtype_supported(WEFT_F32) && dtype_supported(WEFT_Q4_0) && dtype_supported(30));
    assert_false(dtype_supported(3));
    assert_false(dtype_supported(1000));
    assert_string_equal(dtype_name(WEFT_Q8_0), "Q8_0");
    assert_string_equal(dtype_name(WEFT_BF16), "BF16");
    assert_string_equal(dtype_name(77), "?");
    assert_int_equal(dtype_block_elems(WEFT_F16), 1);
    assert_int_equal(dtype_block_elems(WEFT_Q4_0), 32);
    assert_int_equal(dtype_block_bytes(WEFT_Q8_0), 34);
    assert_int_equal(dtype_block_bytes((weft_dtype)3), 0);
    assert_int_equal(dtype_row_bytes(WEFT_F32, 3), 12);
    assert_int_equal(dtype_row_bytes(WEFT_F16, 3), 6);
    assert_int_equal(dtype_row_bytes(WEFT_BF16, 4096), 8192);
    assert_int_equal(dtype_row_bytes(WEFT_Q8_0, 64), 68);
    assert_int_equal(dtype_row_bytes(WEFT_Q4_0, 4096), 128 * 18);
    assert_int_equal(dtype_row_bytes(WEFT_Q8_0, 33), 0);
    assert_int_equal(dtype_row_bytes((weft_dtype)3, 32), 0);
}

static void random_row(float *x, size_t n, uint64_t seed, float scale) {
    for (size_t i = 0; i < n; i++)
        x[i] = ((float)(rng_next(&seed) >> 40) * 0x1p-24f * 2.0f - 1.0f) * scale;
}

static void test_q8_0(void **state) {
    (void)state;
    enum { N = 256 };
    float x[N], y[N];
    block_q8_0 q[N / 32];
    for (int trial = 0; trial < 50; trial++) {
        random_row(x, N, (uint64_t)trial, trial % 2 ? 0.01f : 30.0f);
        dtype_quantize_row(WEFT_Q8_0, x, q, N);
        dtype_dequantize_row(WEFT_Q8_0, q, y, N);
        for (int b = 0; b < N / 32; b++) {
            float amax = 0;
            for (int i = 0; i < 32; i++)
                amax = fmaxf(amax, fabsf(x[b * 32 + i]));
            float d = amax / 127.0f;
            /* Rounding to the grid costs d/2; the fp16 scale adds at most 127 * d * 2^-11. */
            for (int i = 0; i < 32; i++)
                assert_true(fabsf(x[b * 32 + i] - y[b * 32 + i]) <= d * (0.5f + 0.07f) + 1e-12f);
            assert_true(fabsf(fp16_to_f32(q[b].d) - d) <= d * 0x1p-10f);
        }
    }
    /* Zero block: scale 0, all zeros back. */
    memset(x, 0, sizeof x);
    dtype_quantize_row(WEFT_Q8_0, x, q, 32);
    dtype_dequantize_row(WEFT_Q8_0, q, y, 32);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == 0.0f);
    /* Exact grid values come back exactly. */
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 16) * 0.5f;
    x[0] = -63.5f; /* amax = 63.5 -> d = 0.5 */
    dtype_quantize_row(WEFT_Q8_0, x, q, 32);
    assert_int_equal(q[0].qs[0], -127);
    assert_int_equal(q[0].qs[20], 4);
    dtype_dequantize_row(WEFT_Q8_0, q, y, 32);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == x[i]);
}

static void test_q4_0(void **state) {
    (void)state;
    enum { N = 256 };
    float x[N], y[N];
    block_q4_0 q[N / 32];
    for (int trial = 0; trial < 50; trial++) {
        random_row(x, N, 1000u + (uint64_t)trial, trial % 2 ? 0.02f : 5.0f);
        dtype_quantize_row(WEFT_Q4_0, x, q, N);
        dtype_dequantize_row(WEFT_Q4_0, q, y, N);
        double sq = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0, max = 0;
            for (int i = 0; i < 32; i++)
                if (fabsf(x[b * 32 + i]) > amax) amax = fabsf(x[b * 32 + i]), max = x[b * 32 + i];
            float d = amax / 8.0f;
            assert_true(fabsf(fp16_to_f32(q[b].d) - (-max / 8.0f)) <= d * 0x1p-10f);
            /* Half a step, except that +8 clamps to 7 (a full step) on the side opposite max. */
            for (int i = 0; i < 32; i++) {
                float e = fabsf(x[b * 32 + i] - y[b * 32 + i]);
                assert_true(e <= d * 1.01f + 1e-12f);
                sq += (double)e * e / ((double)d * d);
            }
        }
        assert_true(sq / N < 0.15); /* uniform rounding error: about 1/12 of a step squared */
    }
    /* Layout: element j in the low nibble of byte j, element j+16 in the high nibble. The
     * max-magnitude element (-8 here, sign kept) maps to nibble 0 with d = +1. */
    for (int i = 0; i < 32; i++)
        x[i] = 0;
    x[0] = -8.0f;
    x[1] = 3.0f;
    x[17] = -2.0f;
    x[31] = 7.0f;
    dtype_quantize_row(WEFT_Q4_0, x, q, 32);
    assert_true(fp16_to_f32(q[0].d) == 1.0f);
    assert_int_equal(q[0].qs[0] & 0x0f, 0);
    assert_int_equal(q[0].qs[1] & 0x0f, 11);
    assert_int_equal(q[0].qs[1] >> 4, 6);
    assert_int_equal(q[0].qs[15] >> 4, 15);
    assert_int_equal(q[0].qs[2], 0x88);
    dtype_dequantize_row(WEFT_Q4_0, q, y, 32);
    for (int i = 0; i < 32; i++)
        assert_true(y[i] == x[i]);
}

/* Non-finite input must not crash or hit undefined casts; finite blocks stay exact. */
static void test_quantize_nonfinite(void **state) {
    (void)state;
    float x[64], y[64];
    uint8_t q[128];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(i % 7) - 3.0f;
    x[3] = NAN;
    x[40] = INFINITY;
    dtype_quantize_row(WEFT_Q8_0, x, q, 64);
    dtype_dequantize_row(WEFT_Q8_0, q, y, 64);
    dtype_quantize_row(WEFT_Q4_0, x, q, 64);
    dtype_dequantize_row(WEFT_Q4_0, q, y, 64);
    x[3] = 1.0f;
    dtype_quantize_row(WEFT_Q8_0, x, q, 32);
    dtype_dequantize_row(WEFT_Q8_0, q, y, 32);
    for (int i = 0; i < 32; i++)
        assert_true(fabsf(y[i] - x[i]) <= 3.0f / 127.0f);
}

static void test_float_rows(void **state) {
    (void)state;
    float x[64], y[64];
    uint16_t h[64];
    random_row(x, 64, 3, 4.0f);
    dtype_quantize_row(WEFT_F32, x, y, 64);
    assert_memory_equal(x, y, sizeof x);
    dtype_quantize_row(WEFT_F16, x, h, 64);
    dtype_dequantize_row(WEFT_F16, h, y, 64);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(h[i], f32_to_fp16(x[i]));
        assert_true(fabsf(x[i] - y[i]) <= fabsf(x[i]) * 0x1p-11f + 0x1p-25f);
    }
    dtype_quantize_row(WEFT_BF16, x, h, 64);
    dtype_dequantize_row(WEFT_BF16, h, y, 64);
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(x[i] - y[i]) <= fabsf(x[i]) * 0x1p-8f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_edges),
        cmocka_unit_test(test_fp16_exhaustive_roundtrip),
        cmocka_unit_test(test_fp16_nearest_property),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_geometry),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_q4_0),
        cmocka_unit_test(test_quantize_nonfinite),
        cmocka_unit_test(test_float_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
