/* ops_avx512.c — AVX-512 vector primitives and layer operations, plus the AVX-512 read loop
 * of the bandwidth probe. Tails use masked loads/stores, so short vectors (attention heads of
 * 8..128 floats) run without a scalar remainder loop. exp is a local vector approximation
 * (range reduction by ln 2, degree-6 polynomial, vscalefps), accurate to ~2 ulp. */
#include <immintrin.h>
#include <math.h>

#include "kernels/kn_internal.h"

static inline __mmask16 tail_mask(int left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

float kn_dot_f32_avx512(const float *a, const float *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

void kn_axpy_f32_avx512(float *y, float a, const float *x, int n) {
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 r =
            _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

void kn_scale_f32_avx512(float *x, float a, int n) {
    __m512 av = _mm512_set1_ps(a);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

void kn_add_avx512(float *y, const float *x, int n) {
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 r = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i));
        _mm512_mask_storeu_ps(y + i, m, r);
    }
}

/* Per lane: the first index holding the lane's largest value (a strict > update, which is
 * false for NaN), lanes starting at (-inf, their first index); then the largest value over
 * the lanes and the lowest index holding it, which is the first maximum of the whole row. */
int kn_argmax_avx512(const float *x, int n) {
    if (n <= 0) return 0;
    const __m512i step = _mm512_set1_epi32(16);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i bi = idx;
    __m512 bv = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16) {
        __m512 v = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i);
        __mmask16 gt = _mm512_cmp_ps_mask(v, bv, _CMP_GT_OQ);
        bv = _mm512_mask_mov_ps(bv, gt, v);
        bi = _mm512_mask_mov_epi32(bi, gt, idx);
        idx = _mm512_add_epi32(idx, step);
    }
    const float m = _mm512_reduce_max_ps(bv);
    __mmask16 at = _mm512_cmp_ps_mask(bv, _mm512_set1_ps(m), _CMP_EQ_OQ);
    int best = _mm512_mask_reduce_min_epi32(at, bi);
    return best < n ? best : 0; /* a lane that never updated past the end: all -inf */
}

void kn_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps) {
    __m512 ss = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        ss = _mm512_fmadd_ps(v, v, ss);
    }
    float inv = 1.0f / sqrtf(_mm512_reduce_add_ps(ss) / (float)n + eps);
    __m512 iv = _mm512_set1_ps(inv);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), iv),
                                 _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(out + i, m, r);
    }
}

/* e^x for a vector; saturates to 0 / +inf outside the float range, NaN in → NaN out. */
static inline __m512 exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f);
    const __m512 ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    /* minps/maxps return their second operand when either is NaN: keep x second. */
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), _mm512_min_ps(_mm512_set1_ps(88.8f), x));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, x);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    /* exp(r) on |r| <= ln2/2: Taylor-like minimax coefficients (Cephes expf). */
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 r2 = _mm512_mul_ps(r, r);
    p = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, k);
}

void kn_softmax_avx512(float *x, int n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16)
        mx = _mm512_max_ps(
            mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i));
    __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
        e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(x + i, m, e);
        sum = _mm512_add_ps(sum, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

void kn_swiglu_avx512(float *a, const float *b, int n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 av = _mm512_maskz_loadu_ps(m, a + i);
        __m512 den = _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), av)));
        __m512 r = _mm512_mul_ps(_mm512_div_ps(av, den), _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(a + i, m, r);
    }
}

uint64_t kn_read_sum_avx512(const void *p, size_t n) {
    const uint8_t *b = p;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        /* Software prefetch well ahead: the hardware prefetchers stop at 4 KiB pages. */
        _mm_prefetch((const char *)b + i + 8192 + 0, _MM_HINT_T0);
        _mm_prefetch((const char *)b + i + 8192 + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)b + i + 8192 + 128, _MM_HINT_T0);
        _mm_prefetch((const char *)b + i + 8192 + 192, _MM_HINT_T0);
        s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(b + i));
        s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(b + i + 64));
        s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(b + i + 128));
        s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(b + i + 192));
    }
    /* Reduce through memory: the intrinsic's signed lane adds would be (wrapping) UB here. */
    uint64_t lanes[8], s = 0;
    _mm512_storeu_si512(lanes,
                        _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
    for (int k = 0; k < 8; k++)
        s += lanes[k];
    for (; i < n; i++)
        s += b[i];
    return s;
}
