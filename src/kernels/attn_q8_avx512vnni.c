/* attn_q8_avx512vnni.c — attention scores over a Q8_0 KV cache in integer arithmetic (see
 * kn_attn_scores_q8q8 in attn.c): the query heads are int8 too, and each q·k is an exact int32
 * dot from vpdpbusd. vpdpbusd multiplies unsigned by signed bytes, so the query goes in as |q|
 * and its signs move onto the key bytes (k negated where q < 0, one masked subtract per 64
 * bytes; keys are never -128, so the negation cannot overflow). One 64-byte row chunk costs a
 * load, a subtract and a vpdpbusd, against four widen-convert-FMA rounds for dequantized keys.
 * 16 key rows at a time, then one transpose-and-add tree turns their 16 accumulators into 16
 * dots. Every dot is exact, so the result is bit-equal to the scalar kernel on any row split. */
#include <immintrin.h>

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
