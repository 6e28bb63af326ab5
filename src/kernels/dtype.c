/* dtype.c — the element types weft stores weights in (see include/weft/dtype.h): their names
 * and block geometry, the scalar half/bfloat conversions, and whole-row quantization to and
 * from F32. Scalar C on purpose: this is the reference every SIMD kernel is checked against,
 * and it also runs at load/synthesis time where clarity beats speed. */
#include "weft/dtype.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- type table ---- */

bool dtype_supported(uint32_t type) {
    return type == WEFT_F32 || type == WEFT_F16 || type == WEFT_BF16 || type == WEFT_Q8_0 ||
           type == WEFT_Q4_0;
}

const char *dtype_name(uint32_t type) {
    switch (type) {
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
    default:
        return "?";
    }
}

int dtype_from_name(const char *s, weft_dtype *out) {
    static const weft_dtype all[] = {WEFT_F32, WEFT_F16, WEFT_BF16, WEFT_Q8_0, WEFT_Q4_0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcasecmp(s, dtype_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

size_t dtype_block_elems(weft_dtype t) {
    switch (t) {
    case WEFT_F32:
    case WEFT_F16:
    case WEFT_BF16:
        return 1;
    case WEFT_Q8_0:
    case WEFT_Q4_0:
        return WEFT_QK;
    default:
        return 0;
    }
}

size_t dtype_block_bytes(weft_dtype t) {
    switch (t) {
    case WEFT_F32:
        return 4;
    case WEFT_F16:
    case WEFT_BF16:
        return 2;
    case WEFT_Q8_0:
        return sizeof(block_q8_0);
    case WEFT_Q4_0:
        return sizeof(block_q4_0);
    default:
        return 0;
    }
}

size_t dtype_row_bytes(weft_dtype t, size_t n) {
    size_t be = dtype_block_elems(t);
    if (be == 0 || n % be != 0) return 0;
    return n / be * dtype_block_bytes(t);
}

/* ---- half precision ---- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf / NaN: keep the payload, quietness and all */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* Subnormal: value = mant * 2^-24, exact in f32. */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Shifts m right by s bits rounding to nearest, ties to even. */
static uint32_t shift_rne(uint32_t m, uint32_t s) {
    if (s == 0) return m;
    if (s > 31) return 0;
    uint32_t q = m >> s;
    uint32_t rem = m & ((1u << s) - 1u);
    uint32_t half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return q;
}

uint16_t f32_to_fp16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xffu;
    uint32_t mant = x & 0x7fffffu;
    if (exp == 0xff) {
        if (mant == 0) return sign | 0x7c00u;
        uint32_t payload = mant >> 13;
        return (uint16_t)(sign | 0x7c00u | 0x200u | payload); /* quiet NaN, never turns inf */
    }
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00u;
    if (e <= 0) {
        /* Subnormal half (or zero): units of 2^-24. Implicit bit added back; an f32 subnormal
         * is far below half's range and rounds to zero through the same path. */
        if (e < -11) return sign;
        uint32_t m = exp ? (mant | 0x800000u) : mant;
        /* A carry out of the subnormal range yields 0x400, the smallest normal: correct. */
        return (uint16_t)(sign | shift_rne(m, (uint32_t)(14 - e)));
    }
    /* Normal: a mantissa carry ripples into the exponent, and at the top into inf. */
    uint32_t h = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

float bf16_to_f32(uint16_t h) {
    return bits_f32((uint32_t)h << 16);
}

uint16_t f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- rows ---- */

/* Float to int with the range clamped first: a NaN or inf in the input (which makes the block
 * scale useless anyway) must not become undefined behaviour in the cast. */
static int clamp_to_int(float v, int lo, int hi, int if_nan) {
    if (v != v) return if_nan;
    if (v < (float)lo) return lo;
    if (v > (float)hi) return hi;
    return (int)v;
}

static void quantize_q8_0(const float *src, block_q8_0 *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const float *x = src + b * WEFT_QK;
        float amax = 0.0f;
        for (int i = 0; i < WEFT_QK; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = f32_to_fp16(d);
        for (int i = 0; i < WEFT_QK; i++)
            dst[b].qs[i] = (int8_t)clamp_to_int(roundf(x[i] * id), -127, 127, 0);
    }
}

static void quantize_q4_0(const float *src, block_q4_0 *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const float *x = src + b * WEFT_QK;
        /* The element of largest magnitude, sign kept, maps to -8 exactly. */
        float amax = 0.0f, max = 0.0f;
        for (int i = 0; i < WEFT_QK; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        float d = max / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        dst[b].d = f32_to_fp16(d);
        for (int j = 0; j < WEFT_QK / 2; j++) {
            int lo = clamp_to_int(x[j] * id + 8.5f, 0, 15, 8);
            int hi = clamp_to_int(x[j + WEFT_QK / 2] * id + 8.5f, 0, 15, 8);
            dst[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void dtype_quantize_row(weft_dtype t, const float *src, void *dst, size_t n) {
    switch (t) {
    case WEFT_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case WEFT_F16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = f32_to_fp16(src[i]);
        break;
    }
    case WEFT_BF16: {
        uint16_t *d = dst;
        for (size_t i = 0; i < n; i++)
            d[i] = f32_to_bf16(src[i]);
        break;
    }
    case WEFT_Q8_0:
        quantize_q8_0(src, dst, n / WEFT_QK);
        break;
    case WEFT_Q4_0:
        quantize_q4_0(src, dst, n / WEFT_QK);
        break;
    default:
        break;
    }
}

void dtype_dequantize_row(weft_dtype t, const void *src, float *dst, size_t n) {
    switch (t) {
    case WEFT_F32:
        memcpy(dst, src, n * sizeof(float));
        break;
    case WEFT_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = fp16_to_f32(s[i]);
        break;
    }
    case WEFT_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++)
            dst[i] = bf16_to_f32(s[i]);
        break;
    }
    case WEFT_Q8_0: {
        const block_q8_0 *b = src;
        for (size_t k = 0; k < n / WEFT_QK; k++) {
            float d = fp16_to_f32(b[k].d);
            for (int i = 0; i < WEFT_QK; i++)
                dst[k * WEFT_QK + i] = d * (float)b[k].qs[i];
        }
        break;
    }
    case WEFT_Q4_0: {
        const block_q4_0 *b = src;
        for (size_t k = 0; k < n / WEFT_QK; k++) {
            float d = fp16_to_f32(b[k].d);
            float *y = dst + k * WEFT_QK;
            for (int j = 0; j < WEFT_QK / 2; j++) {
                y[j] = d * (float)((b[k].qs[j] & 0x0f) - 8);
                y[j + WEFT_QK / 2] = d * (float)((b[k].qs[j] >> 4) - 8);
            }
        }
        break;
    }
    default:
        break;
    }
}
