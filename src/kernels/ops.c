/* ops.c — the vector primitives and element-wise layer operations (dot, axpy, rmsnorm,
 * softmax, swiglu, ...): run-time dispatch to the AVX-512 / AVX2 variants and the portable
 * scalar versions, which are also the reference the SIMD variants are tested against.
 * Attention calls kn_dot_f32 / kn_axpy_f32 on head_dim-long vectors (8..128), so the SIMD
 * variants handle short lengths without a scalar tail loop. */
#include <math.h>

#include "kernels/kn_internal.h"

static float dot_scalar(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

float kn_dot_f32(const float *a, const float *b, int n) {
    switch (kn_isa_active()) {
    case KN_ISA_AVX512:
        return kn_dot_f32_avx512(a, b, n);
    case KN_ISA_AVX2:
        return kn_dot_f32_avx2(a, b, n);
    default:
        return dot_scalar(a, b, n);
    }
}

void kn_axpy_f32(float *y, float a, const float *x, int n) {
    switch (kn_isa_active()) {
    case KN_ISA_AVX512:
        kn_axpy_f32_avx512(y, a, x, n);
        return;
    case KN_ISA_AVX2:
        kn_axpy_f32_avx2(y, a, x, n);
        return;
    default:
        for (int i = 0; i < n; i++)
            y[i] += a * x[i];
    }
}

void kn_scale_f32(float *x, float a, int n) {
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_scale_f32_avx512(x, a, n);
        return;
    }
    for (int i = 0; i < n; i++)
        x[i] *= a;
}

void kn_add(float *y, const float *x, int n) {
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_add_avx512(y, x, n);
        return;
    }
    for (int i = 0; i < n; i++)
        y[i] += x[i];
}

int kn_argmax(const float *x, int n) {
    if (kn_isa_active() == KN_ISA_AVX512) return kn_argmax_avx512(x, n);
    int best = 0;
    float bv = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] > bv) { /* false for NaN */
            bv = x[i];
            best = i;
        }
    }
    return best;
}

void kn_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_rmsnorm_avx512(out, x, w, n, eps);
        return;
    }
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

void kn_softmax(float *x, int n) {
    if (n <= 0) return;
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_softmax_avx512(x, n);
        return;
    }
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = fmaxf(mx, x[i]);
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

void kn_swiglu(float *a, const float *b, int n) {
    if (kn_isa_active() == KN_ISA_AVX512) {
        kn_swiglu_avx512(a, b, n);
        return;
    }
    for (int i = 0; i < n; i++)
        a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}
