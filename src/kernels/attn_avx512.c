/* attn_avx512.c — AVX-512 attention inner loops (see attn.c). Head sizes that are multiples of
 * 16 up to 256 (every chunk count 1..16, e.g. 48 for TinyStories-15M) are specialised on the number of 16-float chunks so the per-head query or
 * output vectors live in registers while the K/V rows stream past. */
#include <immintrin.h>

#include "kernels/kn_internal.h"

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
                a0 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + c * 16), a0);
                a1 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + kstride + c * 16), a1);
                a2 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 2 * kstride + c * 16), a2);
                a3 = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(k0 + 3 * kstride + c * 16), a3);
            }
            sh[i] = _mm512_reduce_add_ps(a0) * scale;
            sh[i + 1] = _mm512_reduce_add_ps(a1) * scale;
            sh[i + 2] = _mm512_reduce_add_ps(a2) * scale;
            sh[i + 3] = _mm512_reduce_add_ps(a3) * scale;
        }
        for (; i < n; i++) {
            __m512 a = _mm512_setzero_ps();
            const float *kr = k + (size_t)i * kstride;
            for (int c = 0; c < C; c++) a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + c * 16), a);
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
            for (int c = 0; c < C; c++) o[c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vr + c * 16), o[c]);
        }
        for (int c = 0; c < C; c++) _mm512_storeu_ps(oh + c * 16, o[c]);
    }
}

bool kn_attn_scores_avx512(const float *q, int g, int hd, const float *k, size_t kstride, int n,
                           float scale, float *s, size_t sstride) {
    switch (hd / 16) {
    case 1: scores_c(1, q, g, k, kstride, n, scale, s, sstride); return true;
    case 2: scores_c(2, q, g, k, kstride, n, scale, s, sstride); return true;
    case 3: scores_c(3, q, g, k, kstride, n, scale, s, sstride); return true;
    case 4: scores_c(4, q, g, k, kstride, n, scale, s, sstride); return true;
    case 5: scores_c(5, q, g, k, kstride, n, scale, s, sstride); return true;
    case 6: scores_c(6, q, g, k, kstride, n, scale, s, sstride); return true;
    case 7: scores_c(7, q, g, k, kstride, n, scale, s, sstride); return true;
    case 8: scores_c(8, q, g, k, kstride, n, scale, s, sstride); return true;
    case 9: scores_c(9, q, g, k, kstride, n, scale, s, sstride); return true;
    case 10: scores_c(10, q, g, k, kstride, n, scale, s, sstride); return true;
    case 11: scores_c(11, q, g, k, kstride, n, scale, s, sstride); return true;
    case 12: scores_c(12, q, g, k, kstride, n, scale, s, sstride); return true;
    case 13: scores_c(13, q, g, k, kstride, n, scale, s, sstride); return true;
    case 14: scores_c(14, q, g, k, kstride, n, scale, s, sstride); return true;
    case 15: scores_c(15, q, g, k, kstride, n, scale, s, sstride); return true;
    case 16: scores_c(16, q, g, k, kstride, n, scale, s, sstride); return true;
    default: return false;
    }
}

bool kn_attn_values_avx512(const float *p, size_t pstride, int g, int hd, const float *v,
                           size_t vstride, int n, float *out) {
    switch (hd / 16) {
    case 1: values_c(1, p, pstride, g, v, vstride, n, out); return true;
    case 2: values_c(2, p, pstride, g, v, vstride, n, out); return true;
    case 3: values_c(3, p, pstride, g, v, vstride, n, out); return true;
    case 4: values_c(4, p, pstride, g, v, vstride, n, out); return true;
    case 5: values_c(5, p, pstride, g, v, vstride, n, out); return true;
    case 6: values_c(6, p, pstride, g, v, vstride, n, out); return true;
    case 7: values_c(7, p, pstride, g, v, vstride, n, out); return true;
    case 8: values_c(8, p, pstride, g, v, vstride, n, out); return true;
    case 9: values_c(9, p, pstride, g, v, vstride, n, out); return true;
    case 10: values_c(10, p, pstride, g, v, vstride, n, out); return true;
    case 11: values_c(11, p, pstride, g, v, vstride, n, out); return true;
    case 12: values_c(12, p, pstride, g, v, vstride, n, out); return true;
    case 13: values_c(13, p, pstride, g, v, vstride, n, out); return true;
    case 14: values_c(14, p, pstride, g, v, vstride, n, out); return true;
    case 15: values_c(15, p, pstride, g, v, vstride, n, out); return true;
    case 16: values_c(16, p, pstride, g, v, vstride, n, out); return true;
    default: return false;
    }
}
