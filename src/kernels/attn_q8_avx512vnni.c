/* attn_q8_avx512vnni.c — attention scores over a Q8_0 KV cache in integer arithmetic (see
 * kn_attn_scores_q8q8 in attn.c): the query heads are int8 too, and each q·k is an exact int32
 * dot from vpdpbusd. vpdpbusd multiplies unsigned by signed bytes, so the query goes in as |q|
 * and its signs move onto the key bytes (k negated where q < 0, one masked subtract per 64
 * bytes; keys are never -128, so the negation cannot overflow). One 64-byte row chunk costs a
 * load, a subtract and a vpdpbusd, against four widen-convert-FMA rounds for dequantized keys.
 * 16 key rows at a time, then one transpose-and-add tree turns their 16 accumulators into 16
 * dots. Every dot is exact, so the result is bit-equal to the scalar kernel on any row split. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kn_internal.h"

/* r[i] = sum of the 16 int32 lanes of v[i], i = 0..15 (exact). */
static inline __attribute__((always_inline)) __m512i isum16(const __m512i v[16]) {
    __m512i w[8], x[4];
    for (int j = 0; j < 8; j++)
        w[j] = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                                _mm512_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
    for (int j = 0; j < 4; j++)
        x[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(w[2 * j], w[2 * j + 1]),
                                _mm512_unpackhi_epi64(w[2 * j], w[2 * j + 1]));
    __m512i z0 = _mm512_add_epi32(_mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_i32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512i z1 = _mm512_add_epi32(_mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_shuffle_i32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(z0, z1, _MM_SHUFFLE(2, 0, 2, 0)),
                            _mm512_shuffle_i32x4(z0, z1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* C = hd / 64 chunks of 64 bytes per row. */
static inline __attribute__((always_inline)) void scores(const int C, const int8_t *q,
                                                         const float *qscale, int g, const int8_t *k,
                                                         size_t kstride, const float *kscale, int n,
                                                         float scale, float *s, size_t sstride) {
    const __m512i zero = _mm512_setzero_si512();
    for (int h = 0; h < g; h++) {
        __m512i qa[4];
        __mmask64 neg[4];
        for (int c = 0; c < C; c++) {
            __m512i qv = _mm512_loadu_si512((const void *)(q + (size_t)h * C * 64 + c * 64));
            neg[c] = _mm512_movepi8_mask(qv);
            qa[c] = _mm512_abs_epi8(qv);
        }
        const float f = scale * qscale[h];
        const __m512 vf = _mm512_set1_ps(f);
        float *sh = s + (size_t)h * sstride;
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512i a[16];
            for (int r = 0; r < 16; r++) {
                const int8_t *kr = k + (size_t)(i + r) * kstride;
                a[r] = zero;
                for (int c = 0; c < C; c++) {
                    __m512i kv = _mm512_loadu_si512((const void *)(kr + c * 64));
                    kv = _mm512_mask_sub_epi8(kv, neg[c], zero, kv);
                    a[r] = _mm512_dpbusd_epi32(a[r], qa[c], kv);
                }
            }
            __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(isum16(a)), vf);
            _mm512_storeu_ps(sh + i, _mm512_mul_ps(d, _mm512_loadu_ps(kscale + i)));
        }
        for (; i < n; i++) {
            const int8_t *kr = k + (size_t)i * kstride;
            __m512i a = zero;
            for (int c = 0; c < C; c++) {
                __m512i kv = _mm512_loadu_si512((const void *)(kr + c * 64));
                kv = _mm512_mask_sub_epi8(kv, neg[c], zero, kv);
                a = _mm512_dpbusd_epi32(a, qa[c], kv);
            }
            sh[i] = ((float)_mm512_reduce_add_epi32(a) * f) * kscale[i];
        }
    }
}

bool kn_attn_scores_q8q8_avx512vnni(const int8_t *q, const float *qscale, int g, int hd,
                                    const int8_t *k, size_t kstride, const float *kscale, int n,
                                    float scale, float *s, size_t sstride) {
    switch (hd) {
    case 64: scores(1, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 128: scores(2, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 192: scores(3, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 256: scores(4, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    default: return false;
    }
}

/* ---- 16-bit query magnitudes and 16-bit value weights (the Q8_0 cache's default path) ----
 * A 16-bit operand is two unsigned bytes, hi and lo: one vpdpbusd each, then 256·hi + lo in
 * int32 (exact: |dot| <= 65535·127·256 < 2^31). See kn_attn_scores_q8q16 / kn_attn_values_q8w16
 * in attn.c for the maths the scalar reference shares bit for bit. */

/* The AVX-512 kn_quantize_q16 for n % 16 == 0: the scalar loop's operations lane-wise. */
void kn_quantize_q16_avx512(uint8_t *dst, float *qscale, const float *src, int n) {
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + i)), m);
    const float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0.0f) || !(amax <= 3.402823466e38f)) {
        *qscale = 0.0f;
        memset(dst, 0, 3 * (size_t)n);
        return;
    }
    const __m512 inv = _mm512_set1_ps(65535.0f / amax), half = _mm512_set1_ps(0.5f);
    *qscale = amax / 65535.0f;
    for (int i = 0; i < n; i += 16) {
        __m512 x = _mm512_loadu_ps(src + i);
        __m512i w = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(_mm512_abs_ps(x), inv), half));
        w = _mm512_min_epi32(_mm512_max_epi32(w, _mm512_setzero_si512()), _mm512_set1_epi32(65535));
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        _mm_storeu_si128((__m128i *)(dst + i), _mm512_cvtepi32_epi8(_mm512_srli_epi32(w, 8)));
        _mm_storeu_si128((__m128i *)(dst + n + i),
                         _mm512_cvtepi32_epi8(_mm512_and_si512(w, _mm512_set1_epi32(255))));
        _mm_storeu_si128((__m128i *)(dst + 2 * n + i),
                         _mm_maskz_mov_epi8(neg, _mm_set1_epi8((char)0x80)));
    }
}

/* ±Q·k_row over C chunks of 64 bytes: Σ hi·(±k) and Σ lo·(±k), combined 256·hi + lo. */
static inline __attribute__((always_inline)) __m512i dot16(const int C, const __m512i *qhi,
                                                           const __m512i *qlo, const __mmask64 *neg,
                                                           const int8_t *kr) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i ah = zero, al = zero;
    for (int c = 0; c < C; c++) {
        __m512i kv = _mm512_loadu_si512((const void *)(kr + c * 64));
        kv = _mm512_mask_sub_epi8(kv, neg[c], zero, kv);
        ah = _mm512_dpbusd_epi32(ah, qhi[c], kv);
        al = _mm512_dpbusd_epi32(al, qlo[c], kv);
    }
    return _mm512_add_epi32(_mm512_slli_epi32(ah, 8), al);
}

static inline __attribute__((always_inline)) void scores16(const int C, const uint8_t *q,
                                                           const float *qscale, int g,
                                                           const int8_t *k, size_t kstride,
                                                           const float *kscale, int n, float scale,
                                                           float *s, size_t sstride) {
    const int hd = 64 * C;
    for (int h = 0; h < g; h++) {
        const uint8_t *qh = q + (size_t)h * 3 * hd;
        __m512i qhi[4], qlo[4];
        __mmask64 neg[4];
        for (int c = 0; c < C; c++) {
            qhi[c] = _mm512_loadu_si512((const void *)(qh + c * 64));
            qlo[c] = _mm512_loadu_si512((const void *)(qh + hd + c * 64));
            neg[c] = _mm512_movepi8_mask(_mm512_loadu_si512((const void *)(qh + 2 * hd + c * 64)));
        }
        const __m512 vf = _mm512_set1_ps(scale * qscale[h]);
        float *sh = s + (size_t)h * sstride;
        int i = 0;
        for (; i + 16 <= n; i += 16) {
            __m512i a[16];
            for (int r = 0; r < 16; r++) a[r] = dot16(C, qhi, qlo, neg, k + (size_t)(i + r) * kstride);
            __m512 d = _mm512_mul_ps(_mm512_cvtepi32_ps(isum16(a)), vf);
            _mm512_storeu_ps(sh + i, _mm512_mul_ps(d, _mm512_loadu_ps(kscale + i)));
        }
        const float f = scale * qscale[h];
        for (; i < n; i++)
            sh[i] = ((float)_mm512_reduce_add_epi32(dot16(C, qhi, qlo, neg, k + (size_t)i * kstride)) *
                     f) * kscale[i];
    }
}

bool kn_attn_scores_q8q16_avx512vnni(const uint8_t *q, const float *qscale, int g, int hd,
                                     const int8_t *k, size_t kstride, const float *kscale, int n,
                                     float scale, float *s, size_t sstride) {
    switch (hd) {
    case 64: scores16(1, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 128: scores16(2, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 192: scores16(3, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    case 256: scores16(4, q, qscale, g, k, kstride, kscale, n, scale, s, sstride); return true;
    default: return false;
    }
}

/* Values: per chunk of up to KN_W16_ROWS rows, the weights w_i = p_i·vscale_i become 16-bit
 * magnitudes (hi/lo bytes, the sign moved onto the row) and four rows at a time are
 * interleaved by bytes, so one vpdpbusd adds four rows' products for 16 output elements. */
static inline __attribute__((always_inline)) void values16(const int C, const float *p,
                                                           size_t pstride, int g, const int8_t *v,
                                                           size_t vstride, const float *vscale,
                                                           int n, float *out) {
    const int hd = 64 * C;
    const __m512i zero = _mm512_setzero_si512();
    for (int h = 0; h < g; h++) {
        const float *ph = p + (size_t)h * pstride;
        float *oh = out + (size_t)h * hd;
        for (int i0 = 0; i0 < n; i0 += KN_W16_ROWS) {
            const int m = n - i0 < KN_W16_ROWS ? n - i0 : KN_W16_ROWS;
            const __mmask16 lm = (__mmask16)((1u << m) - 1);
            __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(lm, ph + i0),
                                     _mm512_maskz_loadu_ps(lm, vscale + i0));
            const float wmax = _mm512_reduce_max_ps(_mm512_abs_ps(w));
            if (!(wmax > 0.0f) || !(wmax <= 3.402823466e38f)) continue;
            const __m512 inv = _mm512_set1_ps(65535.0f / wmax);
            const __m512 fo = _mm512_set1_ps(wmax / 65535.0f);
            __m512i wi = _mm512_cvttps_epi32(
                _mm512_add_ps(_mm512_mul_ps(_mm512_abs_ps(w), inv), _mm512_set1_ps(0.5f)));
            wi = _mm512_min_epi32(_mm512_max_epi32(wi, zero), _mm512_set1_epi32(65535));
            const __mmask16 wneg = _mm512_cmp_ps_mask(w, _mm512_setzero_ps(), _CMP_LT_OQ);
            uint8_t hb[16] __attribute__((aligned(16))), lb[16] __attribute__((aligned(16)));
            _mm_store_si128((__m128i *)hb, _mm512_cvtepi32_epi8(_mm512_srli_epi32(wi, 8)));
            _mm_store_si128((__m128i *)lb,
                            _mm512_cvtepi32_epi8(_mm512_and_si512(wi, _mm512_set1_epi32(255))));
            for (int c = 0; c < C; c++) {
                __m512i ah[4] = {zero, zero, zero, zero}, al[4] = {zero, zero, zero, zero};
                for (int r = 0; r < m; r += 4) {
                    __m512i x[4];
                    for (int t = 0; t < 4; t++) {
                        /* rows past m repeat the last row with weight 0 */
                        int ri = r + t < m ? r + t : m - 1;
                        x[t] = _mm512_loadu_si512(
                            (const void *)(v + (size_t)(i0 + ri) * vstride + c * 64));
                        __mmask64 nm = (wneg >> (r + t)) & 1 ? ~(__mmask64)0 : 0;
                        x[t] = _mm512_mask_sub_epi8(x[t], nm, zero, x[t]);
                    }
                    __m512i t0 = _mm512_unpacklo_epi8(x[0], x[1]), t1 = _mm512_unpackhi_epi8(x[0], x[1]);
                    __m512i t2 = _mm512_unpacklo_epi8(x[2], x[3]), t3 = _mm512_unpackhi_epi8(x[2], x[3]);
                    __m512i u[4] = {_mm512_unpacklo_epi16(t0, t2), _mm512_unpackhi_epi16(t0, t2),
                                    _mm512_unpacklo_epi16(t1, t3), _mm512_unpackhi_epi16(t1, t3)};
                    int32_t h32, l32;
                    memcpy(&h32, hb + r, 4);
                    memcpy(&l32, lb + r, 4);
                    const __m512i bh = _mm512_set1_epi32(h32), bl = _mm512_set1_epi32(l32);
                    for (int k = 0; k < 4; k++) {
                        ah[k] = _mm512_dpbusd_epi32(ah[k], bh, u[k]);
                        al[k] = _mm512_dpbusd_epi32(al[k], bl, u[k]);
                    }
                }
                /* a[k]'s 128-bit lane l, dword j is element 16l + 4k + j: a 4x4 transpose of
                 * 128-bit lanes gives elements in order. */
                __m512i a[4];
                for (int k = 0; k < 4; k++) a[k] = _mm512_add_epi32(_mm512_slli_epi32(ah[k], 8), al[k]);
                __m512i s0 = _mm512_shuffle_i32x4(a[0], a[1], 0x44), s1 = _mm512_shuffle_i32x4(a[2], a[3], 0x44);
                __m512i s2 = _mm512_shuffle_i32x4(a[0], a[1], 0xee), s3 = _mm512_shuffle_i32x4(a[2], a[3], 0xee);
                __m512i e[4] = {_mm512_shuffle_i32x4(s0, s1, 0x88), _mm512_shuffle_i32x4(s0, s1, 0xdd),
                                _mm512_shuffle_i32x4(s2, s3, 0x88), _mm512_shuffle_i32x4(s2, s3, 0xdd)};
                for (int k = 0; k < 4; k++) {
                    float *o = oh + c * 64 + k * 16;
                    _mm512_storeu_ps(o, _mm512_fmadd_ps(_mm512_cvtepi32_ps(e[k]), fo, _mm512_loadu_ps(o)));
                }
            }
        }
    }
}

bool kn_attn_values_q8w16_avx512vnni(const float *p, size_t pstride, int g, int hd,
                                     const int8_t *v, size_t vstride, const float *vscale, int n,
                                     float *out) {
    switch (hd) {
    case 64: values16(1, p, pstride, g, v, vstride, vscale, n, out); return true;
    case 128: values16(2, p, pstride, g, v, vstride, vscale, n, out); return true;
    case 192: values16(3, p, pstride, g, v, vstride, vscale, n, out); return true;
    case 256: values16(4, p, pstride, g, v, vstride, vscale, n, out); return true;
    default: return false;
    }
}
