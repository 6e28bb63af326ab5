/* attn.c — the two inner loops of attention over cached K/V rows, as kernels: scores of a group
 * of query heads against n key rows, and the probability-weighted sum of n value rows. They
 * exist because calling kn_dot_f32 / kn_axpy_f32 once per (row, head) spends more time in call
 * and load/store overhead than in arithmetic at head sizes of 64-128; the AVX-512 versions keep
 * the queries (or the output accumulators) in registers across rows. Each comes for F32, F16
 * and Q8_0 cache rows (int8 with a per-row scale, plus the Q8_0 cache write). */
#include <math.h>

#include "kernels/kn_internal.h"
#include "weft/dtype.h"

static void attn_scores_generic(const float *q, int g, int hd, const float *k, size_t kstride,
                                int n, float scale, float *s, size_t sstride) {
    for (int h = 0; h < g; h++)
        for (int i = 0; i < n; i++)
            s[(size_t)h * sstride + i] = kn_dot_f32(q + (size_t)h * hd, k + (size_t)i * kstride, hd) * scale;
}

static void attn_values_generic(const float *p, size_t pstride, int g, int hd, const float *v,
                                size_t vstride, int n, float *out) {
    for (int i = 0; i < n; i++)
        for (int h = 0; h < g; h++)
            kn_axpy_f32(out + (size_t)h * hd, p[(size_t)h * pstride + i], v + (size_t)i * vstride, hd);
}

void kn_attn_scores(const float *q, int g, int hd, const float *k, size_t kstride, int n,
                    float scale, float *s, size_t sstride) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_scores_avx512(q, g, hd, k, kstride, n, scale, s, sstride))
        return;
    attn_scores_generic(q, g, hd, k, kstride, n, scale, s, sstride);
}

void kn_attn_values(const float *p, size_t pstride, int g, int hd, const float *v, size_t vstride,
                    int n, float *out) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_values_avx512(p, pstride, g, hd, v, vstride, n, out))
        return;
    attn_values_generic(p, pstride, g, hd, v, vstride, n, out);
}

static void attn_scores_f16_generic(const float *q, int g, int hd, const uint16_t *k,
                                    size_t kstride, int n, float scale, float *s, size_t sstride) {
    for (int i = 0; i < n; i++) {
        const uint16_t *kr = k + (size_t)i * kstride;
        for (int h = 0; h < g; h++) {
            const float *qh = q + (size_t)h * hd;
            float acc = 0.0f;
            for (int d = 0; d < hd; d++) acc += qh[d] * kn_fp16_to_f32(kr[d]);
            s[(size_t)h * sstride + i] = acc * scale;
        }
    }
}

static void attn_values_f16_generic(const float *p, size_t pstride, int g, int hd,
                                    const uint16_t *v, size_t vstride, int n, float *out) {
    for (int i = 0; i < n; i++) {
        const uint16_t *vr = v + (size_t)i * vstride;
        for (int h = 0; h < g; h++) {
            float w = p[(size_t)h * pstride + i];
            float *oh = out + (size_t)h * hd;
            for (int d = 0; d < hd; d++) oh[d] += w * kn_fp16_to_f32(vr[d]);
        }
    }
}

void kn_attn_scores_f16(const float *q, int g, int hd, const uint16_t *k, size_t kstride, int n,
                        float scale, float *s, size_t sstride) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_scores_f16_avx512(q, g, hd, k, kstride, n, scale, s, sstride))
        return;
    attn_scores_f16_generic(q, g, hd, k, kstride, n, scale, s, sstride);
}

void kn_attn_values_f16(const float *p, size_t pstride, int g, int hd, const uint16_t *v,
                        size_t vstride, int n, float *out) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_values_f16_avx512(p, pstride, g, hd, v, vstride, n, out))
        return;
    attn_values_f16_generic(p, pstride, g, hd, v, vstride, n, out);
}

void kn_f32_to_f16_row(uint16_t *dst, const float *src, int n) {
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_f32_to_f16_row_avx512(dst, src, n);
        return;
    }
    for (int i = 0; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

/* ---- Q8_0 cache: int8 rows with one F32 scale per row ---- */

static void attn_scores_q8_generic(const float *q, int g, int hd, const int8_t *k, size_t kstride,
                                   const float *kscale, int n, float scale, float *s,
                                   size_t sstride) {
    for (int i = 0; i < n; i++) {
        const int8_t *kr = k + (size_t)i * kstride;
        for (int h = 0; h < g; h++) {
            const float *qh = q + (size_t)h * hd;
            float acc = 0.0f;
            for (int d = 0; d < hd; d++) acc += qh[d] * (float)kr[d];
            s[(size_t)h * sstride + i] = acc * scale * kscale[i];
        }
    }
}

static void attn_values_q8_generic(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                                   size_t vstride, const float *vscale, int n, float *out) {
    for (int i = 0; i < n; i++) {
        const int8_t *vr = v + (size_t)i * vstride;
        for (int h = 0; h < g; h++) {
            float w = p[(size_t)h * pstride + i] * vscale[i];
            float *oh = out + (size_t)h * hd;
            for (int d = 0; d < hd; d++) oh[d] += w * (float)vr[d];
        }
    }
}

void kn_attn_scores_q8(const float *q, int g, int hd, const int8_t *k, size_t kstride,
                       const float *kscale, int n, float scale, float *s, size_t sstride) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_scores_q8_avx512(q, g, hd, k, kstride, kscale, n, scale, s, sstride))
        return;
    attn_scores_q8_generic(q, g, hd, k, kstride, kscale, n, scale, s, sstride);
}

void kn_attn_values_q8(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                       size_t vstride, const float *vscale, int n, float *out) {
    if (kn_isa_active() == KN_ISA_AVX512 && hd % 16 == 0 && hd <= 256 &&
        kn_attn_values_q8_avx512(p, pstride, g, hd, v, vstride, vscale, n, out))
        return;
    attn_values_q8_generic(p, pstride, g, hd, v, vstride, vscale, n, out);
}

void kn_attn_scores_q8q8(const int8_t *q, const float *qscale, int g, int hd, const int8_t *k,
                         size_t kstride, const float *kscale, int n, float scale, float *s,
                         size_t sstride) {
    if (kn_isa_active() == KN_ISA_AVX512 && kn_cpu_has_avx512_vnni() &&
        kn_attn_scores_q8q8_avx512vnni(q, qscale, g, hd, k, kstride, kscale, n, scale, s, sstride))
        return;
    for (int h = 0; h < g; h++) {
        const int8_t *qh = q + (size_t)h * hd;
        const float f = scale * qscale[h];
        for (int i = 0; i < n; i++) {
            const int8_t *kr = k + (size_t)i * kstride;
            int32_t dot = 0;
            for (int d = 0; d < hd; d++) dot += (int32_t)qh[d] * kr[d];
            s[(size_t)h * sstride + i] = ((float)dot * f) * kscale[i];
        }
    }
}

void kn_quantize_row_q8kv(int8_t *dst, float *scale, const float *src, int n) {
    if (kn_isa_active() == KN_ISA_AVX512 && n % 16 == 0) {
        kn_quantize_row_q8kv_avx512(dst, scale, src, n);
        return;
    }
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(src[i]));
    if (!(amax > 0.0f) || !isfinite(amax)) {
        /* all zero (or not finite: a broken activation must not poison the row with NaN
         * scales; the row reads back as zeros) */
        *scale = 0.0f;
        memset(dst, 0, (size_t)n);
        return;
    }
    const float inv = 127.0f / amax;
    *scale = amax / 127.0f;
    for (int i = 0; i < n; i++) {
        float r = nearbyintf(src[i] * inv);
        dst[i] = (int8_t)(r > 127.0f ? 127 : r < -127.0f ? -127 : r == r ? (int)r : 0);
    }
}

/* ---- Q8_0 cache, 16-bit query magnitudes and value weights (kernels.h) ---- */

/* (int)(y) for y = |x| * inv + 0.5f, NaN as 0, clamped to [0, 65535] (what vcvttps2dq and the
 * clamps do in the AVX-512 code). */
static int32_t q16_of(float y) {
    int32_t w = y == y && y < 2147483648.0f ? (int32_t)y : 0;
    return w < 0 ? 0 : w > 65535 ? 65535 : w;
}

void kn_quantize_q16(uint8_t *dst, float *qscale, const float *src, int n) {
    if (kn_isa_active() == KN_ISA_AVX512 && n % 16 == 0) {
        kn_quantize_q16_avx512(dst, qscale, src, n);
        return;
    }
    float amax = 0.0f;
    for (int i = 0; i < n; i++) amax = fmaxf(amax, fabsf(src[i]));
    if (!(amax > 0.0f) || !isfinite(amax)) {
        *qscale = 0.0f;
        memset(dst, 0, 3 * (size_t)n);
        return;
    }
    const float inv = 65535.0f / amax;
    *qscale = amax / 65535.0f;
    for (int i = 0; i < n; i++) {
        int32_t w = q16_of(fabsf(src[i]) * inv + 0.5f);
        dst[i] = (uint8_t)(w >> 8);
        dst[n + i] = (uint8_t)(w & 255);
        dst[2 * n + i] = src[i] < 0.0f ? 0x80 : 0;
    }
}

void kn_attn_scores_q8q16(const uint8_t *q, const float *qscale, int g, int hd, const int8_t *k,
                          size_t kstride, const float *kscale, int n, float scale, float *s,
                          size_t sstride) {
    if (kn_isa_active() == KN_ISA_AVX512 && kn_cpu_has_avx512_vnni() &&
        kn_attn_scores_q8q16_avx512vnni(q, qscale, g, hd, k, kstride, kscale, n, scale, s,
                                        sstride))
        return;
    for (int h = 0; h < g; h++) {
        const uint8_t *qh = q + (size_t)h * 3 * hd;
        const float f = scale * qscale[h];
        for (int i = 0; i < n; i++) {
            const int8_t *kr = k + (size_t)i * kstride;
            int32_t dot = 0;
            for (int d = 0; d < hd; d++) {
                int32_t m = 256 * qh[d] + qh[hd + d];
                dot += (qh[2 * hd + d] ? -m : m) * kr[d];
            }
            s[(size_t)h * sstride + i] = ((float)dot * f) * kscale[i];
        }
    }
}

void kn_attn_values_q8w16(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                          size_t vstride, const float *vscale, int n, float *out) {
    if (kn_isa_active() == KN_ISA_AVX512 && kn_cpu_has_avx512_vnni() &&
        kn_attn_values_q8w16_avx512vnni(p, pstride, g, hd, v, vstride, vscale, n, out))
        return;
    for (int h = 0; h < g; h++) {
        const float *ph = p + (size_t)h * pstride;
        float *oh = out + (size_t)h * hd;
        for (int i0 = 0; i0 < n; i0 += KN_W16_ROWS) {
            const int m = n - i0 < KN_W16_ROWS ? n - i0 : KN_W16_ROWS;
            float w[KN_W16_ROWS], wmax = 0.0f;
            for (int i = 0; i < m; i++) {
                w[i] = ph[i0 + i] * vscale[i0 + i];
                wmax = fmaxf(wmax, fabsf(w[i]));
            }
            if (!(wmax > 0.0f) || !isfinite(wmax)) continue;
            const float inv = 65535.0f / wmax, fo = wmax / 65535.0f;
            int32_t W[KN_W16_ROWS];
            for (int i = 0; i < m; i++) {
                int32_t a = q16_of(fabsf(w[i]) * inv + 0.5f);
                W[i] = w[i] < 0.0f ? -a : a;
            }
            for (int d = 0; d < hd; d++) {
                int32_t D = 0;
                for (int i = 0; i < m; i++) D += W[i] * v[(size_t)(i0 + i) * vstride + d];
                oh[d] = fmaf((float)D, fo, oh[d]);
            }
        }
    }
}
