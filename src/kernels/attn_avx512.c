/* attn_avx512.c — AVX-512 attention inner loops (see attn.c). Head sizes that are multiples of
 * 16 up to 256 (every chunk count 1..16, e.g. 48 for TinyStories-15M) are specialised on the number of 16-float chunks so the per-head query or
 * output vectors live in registers while the K/V rows stream past. */
#include <immintrin.h>

#include "kernels/kn_internal.h"
#include "weft/dtype.h"

/* 16 cache elements at p widened to F32: F32 rows load directly, F16 rows go through vcvtph2ps. */
static inline __m512 ld_f32(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 ld_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __attribute__((always_inline)) void
scores_c(const int C, const float *q, int g, const float *k, size_t kstride, int n, float scale,
         float *s, size_t sstride) {
    for (int h = 0; h < g; h++) {
        __m512 qv[16];
        for (int c = 0; c < C; c++) qv[c] = _mm512_loadu_ps(q + (size_t)h * C * 16 + c * 16);
        float *sh = s + (size_t)h * sstride;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            const float *k0 = k + (size_t)i * kstride;
            for (int c = 0; c < C; c++) {
                a0 = _mm512_fmadd_ps(qv[c], ld_f32(k0 + c * 16), a0);
                a1 = _mm512_fmadd_ps(qv[c], ld_f32(k0 + kstride + c * 16), a1);
                a2 = _mm512_fmadd_ps(qv[c], ld_f32(k0 + 2 * kstride + c * 16), a2);
                a3 = _mm512_fmadd_ps(qv[c], ld_f32(k0 + 3 * kstride + c * 16), a3);
            }
            sh[i] = _mm512_reduce_add_ps(a0) * scale;
            sh[i + 1] = _mm512_reduce_add_ps(a1) * scale;
            sh[i + 2] = _mm512_reduce_add_ps(a2) * scale;
            sh[i + 3] = _mm512_reduce_add_ps(a3) * scale;
        }
        for (; i < n; i++) {
            __m512 a = _mm512_setzero_ps();
            const float *kr = k + (size_t)i * kstride;
            for (int c = 0; c < C; c++) a = _mm512_fmadd_ps(qv[c], ld_f32(kr + c * 16), a);
            sh[i] = _mm512_reduce_add_ps(a) * scale;
        }
    }
}

static inline __attribute__((always_inline)) void
scores_h(const int C, const float *q, int g, const uint16_t *k, size_t kstride, int n, float scale,
         float *s, size_t sstride) {
    for (int h = 0; h < g; h++) {
        __m512 qv[16];
        for (int c = 0; c < C; c++) qv[c] = _mm512_loadu_ps(q + (size_t)h * C * 16 + c * 16);
        float *sh = s + (size_t)h * sstride;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            const uint16_t *k0 = k + (size_t)i * kstride;
            for (int c = 0; c < C; c++) {
                a0 = _mm512_fmadd_ps(qv[c], ld_f16(k0 + c * 16), a0);
                a1 = _mm512_fmadd_ps(qv[c], ld_f16(k0 + kstride + c * 16), a1);
                a2 = _mm512_fmadd_ps(qv[c], ld_f16(k0 + 2 * kstride + c * 16), a2);
                a3 = _mm512_fmadd_ps(qv[c], ld_f16(k0 + 3 * kstride + c * 16), a3);
            }
            sh[i] = _mm512_reduce_add_ps(a0) * scale;
            sh[i + 1] = _mm512_reduce_add_ps(a1) * scale;
            sh[i + 2] = _mm512_reduce_add_ps(a2) * scale;
            sh[i + 3] = _mm512_reduce_add_ps(a3) * scale;
        }
        for (; i < n; i++) {
            __m512 a = _mm512_setzero_ps();
            const uint16_t *kr = k + (size_t)i * kstride;
            for (int c = 0; c < C; c++) a = _mm512_fmadd_ps(qv[c], ld_f16(kr + c * 16), a);
            sh[i] = _mm512_reduce_add_ps(a) * scale;
        }
    }
}

static inline __attribute__((always_inline)) void
values_c(const int C, const float *p, size_t pstride, int g, const float *v, size_t vstride,
         int n, float *out) {
    for (int h = 0; h < g; h++) {
        __m512 o[16];
        float *oh = out + (size_t)h * C * 16;
        for (int c = 0; c < C; c++) o[c] = _mm512_loadu_ps(oh + c * 16);
        const float *ph = p + (size_t)h * pstride;
        for (int i = 0; i < n; i++) {
            __m512 w = _mm512_set1_ps(ph[i]);
            const float *vr = v + (size_t)i * vstride;
            for (int c = 0; c < C; c++) o[c] = _mm512_fmadd_ps(w, ld_f32(vr + c * 16), o[c]);
        }
        for (int c = 0; c < C; c++) _mm512_storeu_ps(oh + c * 16, o[c]);
    }
}

static inline __attribute__((always_inline)) void
values_h(const int C, const float *p, size_t pstride, int g, const uint16_t *v, size_t vstride,
         int n, float *out) {
    for (int h = 0; h < g; h++) {
        __m512 o[16];
        float *oh = out + (size_t)h * C * 16;
        for (int c = 0; c < C; c++) o[c] = _mm512_loadu_ps(oh + c * 16);
        const float *ph = p + (size_t)h * pstride;
        for (int i = 0; i < n; i++) {
            __m512 w = _mm512_set1_ps(ph[i]);
            const uint16_t *vr = v + (size_t)i * vstride;
            for (int c = 0; c < C; c++) o[c] = _mm512_fmadd_ps(w, ld_f16(vr + c * 16), o[c]);
        }
        for (int c = 0; c < C; c++) _mm512_storeu_ps(oh + c * 16, o[c]);
    }
}

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
        WEFT_CHUNK_CASES(scores_c, q, g, k, kstride, n, scale, s, sstride)
    default: return false;
    }
}

bool kn_attn_values_avx512(const float *p, size_t pstride, int g, int hd, const float *v,
                           size_t vstride, int n, float *out) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(values_c, p, pstride, g, v, vstride, n, out)
    default: return false;
    }
}

bool kn_attn_scores_f16_avx512(const float *q, int g, int hd, const uint16_t *k, size_t kstride,
                               int n, float scale, float *s, size_t sstride) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(scores_h, q, g, k, kstride, n, scale, s, sstride)
    default: return false;
    }
}

bool kn_attn_values_f16_avx512(const float *p, size_t pstride, int g, int hd, const uint16_t *v,
                               size_t vstride, int n, float *out) {
    switch (hd / 16) {
        WEFT_CHUNK_CASES(values_h, p, pstride, g, v, vstride, n, out)
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
