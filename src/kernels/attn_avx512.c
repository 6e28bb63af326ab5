/* attn_avx512.c — AVX-512 attention inner loops (see attn.c), for F32, F16 and Q8_0 cache rows.
 * Head sizes that are multiples of 16 up to 256 (chunk counts C = 1..16, e.g. 48 for
 * TinyStories-15M) are specialised on C so per-head query or output vectors live in registers
 * while the K/V rows stream past. Decode attention is latency-bound, not bandwidth-bound, at
 * these head sizes, so both loops keep many independent FMA chains in flight:
 *  - scores: 16 key rows at a time, one accumulator per row, then one transpose-and-add tree
 *    turns the 16 accumulators into the 16 scores (instead of 16 horizontal reductions);
 *  - values: 4 (C <= 4) or 2 (C <= 8) independent sets of output accumulators over
 *    consecutive rows, summed at the end.
 * F16 rows are widened with vcvtph2ps as they are loaded, Q8_0 rows (int8) with vpmovsxbd +
 * vcvtdq2ps, their per-row scale applied once per score / per value weight; all arithmetic is
 * F32. */
#include <immintrin.h>

#include "kernels/kn_internal.h"
#include "weft/dtype.h"

/* 16 cache elements at p widened to F32. */
static inline __m512 ld_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 ld_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
static inline __m512 ld_q8(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/* r[i] = horizontal sum of v[i], i = 0..15. */
static inline __attribute__((always_inline)) __m512 sum16(const __m512 v[16]) {
    __m512 w[8], x[4];
    for (int j = 0; j < 8; j++)
        w[j] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * j], v[2 * j + 1]),
                             _mm512_unpackhi_ps(v[2 * j], v[2 * j + 1]));
    for (int j = 0; j < 4; j++) {
        __m512d a = _mm512_castps_pd(w[2 * j]), b = _mm512_castps_pd(w[2 * j + 1]);
        x[j] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    /* x[j]'s 128-bit lane l holds lane-l partial sums of v[4j..4j+3] */
    __m512 z0 = _mm512_add_ps(_mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(x[0], x[1], _MM_SHUFFLE(3, 1, 3, 1)));
    __m512 z1 = _mm512_add_ps(_mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(2, 0, 2, 0)),
                              _mm512_shuffle_f32x4(x[2], x[3], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(z0, z1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(z0, z1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Defines scores_<SUF>(C, ...) and values_<SUF>(C, ...) for cache element type T loaded by LD.
 * Q (0 or 1): rows carry a scale (rsc[i], Q8_0); a score is then (dot * scale) * rsc[i] and a
 * value weight p[i] * rsc[i]. With Q = 0 rsc is unused and the code is what it was. */
#define WEFT_ATTN_KERNELS(SUF, T, LD, Q)                                                           \
    static inline __attribute__((always_inline)) void scores_##SUF(                              \
        const int C, const float *q, int g, const T *k, size_t kstride, const float *rsc, int n, \
        float scale, float *s, size_t sstride) {                                                 \
        const __m512 vscale = _mm512_set1_ps(scale);                                             \
        for (int h = 0; h < g; h++) {                                                            \
            __m512 qv[16];                                                                       \
            for (int c = 0; c < C; c++) qv[c] = _mm512_loadu_ps(q + (size_t)h * C * 16 + c * 16); \
            float *sh = s + (size_t)h * sstride;                                                 \
            int i = 0;                                                                           \
            if (C <= 8)                                                                          \
                for (; i + 16 <= n; i += 16) {                                                   \
                    __m512 a[16];                                                                \
                    for (int r = 0; r < 16; r++) {                                               \
                        const T *kr = k + (size_t)(i + r) * kstride;                             \
                        a[r] = _mm512_mul_ps(qv[0], LD(kr));                                     \
                        for (int c = 1; c < C; c++) a[r] = _mm512_fmadd_ps(qv[c], LD(kr + c * 16), a[r]); \
                    }                                                                            \
                    __m512 r16 = _mm512_mul_ps(sum16(a), vscale);                                \
                    if (Q) r16 = _mm512_mul_ps(r16, _mm512_loadu_ps(rsc + i));                   \
                    _mm512_storeu_ps(sh + i, r16);                                               \
                }                                                                                \
            for (; i + 4 <= n; i += 4) {                                                         \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                      \
                const T *k0 = k + (size_t)i * kstride;                                           \
                for (int c = 0; c < C; c++) {                                                    \
                    a0 = _mm512_fmadd_ps(qv[c], LD(k0 + c * 16), a0);                            \
                    a1 = _mm512_fmadd_ps(qv[c], LD(k0 + kstride + c * 16), a1);                  \
                    a2 = _mm512_fmadd_ps(qv[c], LD(k0 + 2 * kstride + c * 16), a2);              \
                    a3 = _mm512_fmadd_ps(qv[c], LD(k0 + 3 * kstride + c * 16), a3);              \
                }                                                                                \
                sh[i] = _mm512_reduce_add_ps(a0) * scale;                                        \
                sh[i + 1] = _mm512_reduce_add_ps(a1) * scale;                                    \
                sh[i + 2] = _mm512_reduce_add_ps(a2) * scale;                                    \
                sh[i + 3] = _mm512_reduce_add_ps(a3) * scale;                                    \
                if (Q)                                                                           \
                    for (int r = 0; r < 4; r++) sh[i + r] *= rsc[i + r];                         \
            }                                                                                    \
            for (; i < n; i++) {                                                                 \
                __m512 a = _mm512_setzero_ps();                                                  \
                const T *kr = k + (size_t)i * kstride;                                           \
                for (int c = 0; c < C; c++) a = _mm512_fmadd_ps(qv[c], LD(kr + c * 16), a);     \
                sh[i] = _mm512_reduce_add_ps(a) * scale;                                         \
                if (Q) sh[i] *= rsc[i];                                                          \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    static inline __attribute__((always_inline)) void values_##SUF(                              \
        const int C, const float *p, size_t pstride, int g, const T *v, size_t vstride,          \
        const float *rsc, int n, float *out) {                                                   \
        enum { MAXS = 4 };                                                                       \
        const int S = C <= 4 ? 4 : C <= 8 ? 2 : 1; /* independent accumulator sets */            \
        for (int h = 0; h < g; h++) {                                                            \
            __m512 o[MAXS][16];                                                                  \
            float *oh = out + (size_t)h * C * 16;                                                \
            for (int c = 0; c < C; c++) o[0][c] = _mm512_loadu_ps(oh + c * 16);                  \
            for (int t = 1; t < S; t++)                                                          \
                for (int c = 0; c < C; c++) o[t][c] = _mm512_setzero_ps();                       \
            const float *ph = p + (size_t)h * pstride;                                           \
            int i = 0;                                                                           \
            for (; i + S <= n; i += S)                                                           \
                for (int t = 0; t < S; t++) {                                                    \
                    __m512 w = _mm512_set1_ps(Q ? ph[i + t] * rsc[i + t] : ph[i + t]);           \
                    const T *vr = v + (size_t)(i + t) * vstride;                                 \
                    for (int c = 0; c < C; c++) o[t][c] = _mm512_fmadd_ps(w, LD(vr + c * 16), o[t][c]); \
                }                                                                                \
            for (; i < n; i++) {                                                                 \
                __m512 w = _mm512_set1_ps(Q ? ph[i] * rsc[i] : ph[i]);                           \
                const T *vr = v + (size_t)i * vstride;                                           \
                for (int c = 0; c < C; c++) o[0][c] = _mm512_fmadd_ps(w, LD(vr + c * 16), o[0][c]); \
            }                                                                                    \
            for (int t = 1; t < S; t++)                                                          \
                for (int c = 0; c < C; c++) o[0][c] = _mm512_add_ps(o[0][c], o[t][c]);           \
            for (int c = 0; c < C; c++) _mm512_storeu_ps(oh + c * 16, o[0][c]);                  \
        }                                                                                        \
    }

WEFT_ATTN_KERNELS(f32, float, ld_f32, 0)
WEFT_ATTN_KERNELS(f16, uint16_t, ld_f16, 0)
WEFT_ATTN_KERNELS(q8, int8_t, ld_q8, 1)

/* Dispatch on the number of 16-float chunks; false when hd/16 is outside 1..16. */
#define WEFT_CHUNK_CASES(F, ...)                                                                  \
    case 1: F(1, __VA_ARGS__); return true;                                                       \
    case 2: F(2, __VA_ARGS__); return true;                                                       \
    case 3: F(3, __VA_ARGS__); return true;                                                       \
    case 4: F(4, __VA_ARGS__); return true;                                                       \
    case 5: F(5, __VA_ARGS__); return true;                                                       \
    case 6: F(6, __VA_ARGS__); return true;                                                       \
    case 7: F(7, __VA_ARGS__); return true;                                                       \
    case 8: F(8, __VA_ARGS__); return true;                                                       \
    case 9: F(9, __VA_ARGS__); return true;                                                       \
    case 10: F(10, __VA_ARGS__); return true;                                                     \
    case 11: F(11, __VA_ARGS__); return true;                                                     \
    case 12: F(12, __VA_ARGS__); return true;                                                     \
    case 13: F(13, __VA_ARGS__); return true;                                                     \
    case 14: F(14, __VA_ARGS__); return true;                                                     \
    case 15: F(15, __VA_ARGS__); return true;                                                     \
    case 16: F(16, __VA_ARGS__); return true;

bool kn_attn_scores_avx512(const float *q, int g, int hd, const float *k, size_t kstride, int n,
                           float scale, float *s, size_t sstride) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(scores_f32, q, g, k, kstride, NULL, n, scale, s, sstride)
    default: return false;
    }
}

bool kn_attn_values_avx512(const float *p, size_t pstride, int g, int hd, const float *v,
                           size_t vstride, int n, float *out) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(values_f32, p, pstride, g, v, vstride, NULL, n, out)
    default: return false;
    }
}

bool kn_attn_scores_f16_avx512(const float *q, int g, int hd, const uint16_t *k, size_t kstride,
                               int n, float scale, float *s, size_t sstride) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(scores_f16, q, g, k, kstride, NULL, n, scale, s, sstride)
    default: return false;
    }
}

bool kn_attn_values_f16_avx512(const float *p, size_t pstride, int g, int hd, const uint16_t *v,
                               size_t vstride, int n, float *out) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(values_f16, p, pstride, g, v, vstride, NULL, n, out)
    default: return false;
    }
}

bool kn_attn_scores_q8_avx512(const float *q, int g, int hd, const int8_t *k, size_t kstride,
                              const float *kscale, int n, float scale, float *s, size_t sstride) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(scores_q8, q, g, k, kstride, kscale, n, scale, s, sstride)
    default: return false;
    }
}

bool kn_attn_values_q8_avx512(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                              size_t vstride, const float *vscale, int n, float *out) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(values_q8, p, pstride, g, v, vstride, vscale, n, out)
    default: return false;
    }
}

void kn_f32_to_f16_row_avx512(uint16_t *dst, const float *src, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = f32_to_fp16(src[i]);
}

/* The Q8_0 cache write (kn_quantize_row_q8kv) for n % 16 == 0: the same maths as the scalar
 * loop — amax, inv = 127/amax, round-to-nearest-even of x*inv (vcvtps2dq under the default
 * MXCSR rounding), so both give the same bytes; NaN lanes become 0 as in the scalar loop. The
 * scalar loop called nearbyintf per element on the forward pass's serial path, ~2-3 ms per
 * batch-32 step on tiny110m, which ate the attention saving. */
void kn_quantize_row_q8kv_avx512(int8_t *dst, float *scale, const float *src, int n) {
    __m512 m = _mm512_setzero_ps();
    /* max(x, m) returns m where x is NaN: NaN is skipped, as fmaxf does in the scalar loop */
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + i)), m);
    const float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0.0f) || !(amax <= 3.402823466e38f)) { /* zero, NaN or infinite: zeros */
        *scale = 0.0f;
        for (int i = 0; i < n; i++) dst[i] = 0;
        return;
    }
    const float inv = 127.0f / amax;
    *scale = amax / 127.0f;
    const __m512 vinv = _mm512_set1_ps(inv);
    for (int i = 0; i < n; i += 16) {
        __m512 x = _mm512_loadu_ps(src + i);
        __mmask16 ok = _mm512_cmp_ps_mask(x, x, _CMP_ORD_Q);
        __m512i q = _mm512_maskz_cvtps_epi32(ok, _mm512_mul_ps(x, vinv));
        q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
        _mm_storeu_si128((__m128i *)(dst + i), _mm512_cvtepi32_epi8(q));
    }
}
