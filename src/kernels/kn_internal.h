/* kn_internal.h — private glue between the kernel front ends (matmul.c, ops.c, bandwidth.c)
 * and the per-ISA implementations (*_avx2.c, *_avx512.c): the quantized-activation layout,
 * the per-ISA entry points, and small scalar helpers (fp16/bf16 decode) that the kernels need
 * without depending on dtype.c. Nothing here is public API. */
#ifndef WEFT_KN_INTERNAL_H
#define WEFT_KN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weft/kernels.h"

/* ---- CPU features beyond the three public levels ---- */
/* True when the CPU (and OS) support AVX-512 VNNI; the AVX-512 integer dot kernels need it
 * and the quantized matmul falls back to the AVX2 kernels when it is missing. */
bool kn_cpu_has_avx512_vnni(void);

/* ---- scalar element decoders ---- */
static inline float kn_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) { /* inf / nan */
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) { /* normal */
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) { /* zero */
        bits = sign;
    } else { /* subnormal: renormalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float kn_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Unaligned little-endian 16-bit load (block scales sit at 2-byte offsets). */
static inline uint16_t kn_load_u16(const void *p) {
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---- quantized activations ----
 * For Q8_0/Q4_0 weights each X row is quantized once per kn_matmul call to blocks of 32 int8
 * with a float scale: x ≈ d[b] * qs[32b + j], d = max|x|/127, q = round-to-nearest-even(x/d).
 * asum[b] = Σ_j qs[32b + j] lets the VNNI kernels work on unsigned weights (w + 128 for Q8_0,
 * the raw nibble for Q4_0) and remove the offset in integer arithmetic; dsum[b] = d[b]·asum[b]
 * does the same in float for the AVX2 kernel.
 * Row x of the activations starts at qs + x*qstride, d/dsum/asum + x*nb; qstride is cols
 * rounded up to 64. qs is in natural element order for every kernel.
 *
 * Summation order (batch invariance). The scalar and AVX-512 VNNI kernels compute every
 * output the same way, bit for bit:
 *     acc = +0.0f; for b = 0 .. nb-1: acc = fmaf((float)s_b, dw_b * da_b, acc)
 * with s_b the exact signed int32 dot of block b (|s_b| <= 32·128·127 < 2^24, so the
 * conversion is exact) and dw_b * da_b one float multiply. So an output depends only on its
 * weight row and its X row, never on n, the kernel path or the thread split: a sequence's
 * logits are the same whichever other sequences share its batch. (The AVX2 kernel keeps its
 * own order; it is batch-invariant too, but not bit-equal to the scalar one.) */
typedef struct kn_qact {
    const int8_t *qs;
    const float *d;
    const float *dsum;
    const int32_t *asum;
    int cols, nb;
    size_t qstride;
    /* The VNNI kernel's packed batched path runs for n >= packed_min_n, the row-lane tile
     * kernel below that (matmul.c: KN_Q_BATCHED_MIN_N, WEFT_Q_BATCHED_MIN_N). */
    int packed_min_n;
} kn_qact;

/* Q8_0 weights packed once (qpack.c): 16-row groups of group_bytes, see there. */
struct kn_packed {
    uint8_t *data;
    const void *src; /* the kn_matrix it was packed from: data, shape */
    weft_dtype type;
    int rows, cols;
    size_t row_bytes, group_bytes, bytes;
    bool owner; /* the first of a kn_pack_many set: owns the memory and the array */
};
bool kn_pack_matches(const kn_packed *p, const kn_matrix *W);
/* The VNNI kernel over packed weights (rows [r0, r1), r0 a multiple of 16). */
void kn_mm_q8_packed_avx512(const kn_matrix *W, const kn_packed *P, const kn_qact *A, int n,
                            float *Y, int r0, int r1);

/* Quantizes one row of `cols` floats (a multiple of 32). */
void kn_quantize_act_row(const float *x, int cols, int8_t *qs, float *d, float *dsum,
                         int32_t *asum);

/* A kernel computes Y[x][r] for all x < n and r in [r0, r1). Y has W->rows columns. */
typedef void (*kn_mm_float_fn)(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1);
typedef void (*kn_mm_quant_fn)(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0,
                               int r1);

/* Scalar reference kernels (matmul.c): F32/F16/BF16 and Q8_0/Q4_0. */
void kn_mm_float_scalar(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1);
void kn_mm_quant_scalar(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1);

/* AVX2+FMA+F16C kernels (matmul_avx2.c). */
void kn_mm_float_avx2(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1);
void kn_mm_quant_avx2(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1);

/* AVX-512 kernels (matmul_avx512.c; the quantized one, qmatmul_avx512vnni.c, needs VNNI). */
void kn_mm_float_avx512(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1);
void kn_mm_quant_avx512(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1);
void kn_quantize_act_row_avx512(const float *x, int cols, int8_t *qs, float *d, float *dsum,
                                int32_t *asum);

/* ---- vector primitives per ISA (ops_avx2.c, ops_avx512.c) ---- */
float kn_dot_f32_avx2(const float *a, const float *b, int n);
void kn_axpy_f32_avx2(float *y, float a, const float *x, int n);
float kn_dot_f32_avx512(const float *a, const float *b, int n);
void kn_axpy_f32_avx512(float *y, float a, const float *x, int n);
void kn_scale_f32_avx512(float *x, float a, int n);
void kn_add_avx512(float *y, const float *x, int n);
int kn_argmax_avx512(const float *x, int n);
void kn_rmsnorm_avx512(float *out, const float *x, const float *w, int n, float eps);
void kn_softmax_avx512(float *x, int n);
void kn_swiglu_avx512(float *a, const float *b, int n);

/* Reads bytes [0, n) of p and returns a value depending on all of it (bandwidth probe). */
uint64_t kn_read_sum_scalar(const void *p, size_t n);
uint64_t kn_read_sum_avx2(const void *p, size_t n);
uint64_t kn_read_sum_avx512(const void *p, size_t n);

/* ---- attention inner loops (attn_avx512.c); false = shape not specialised ---- */
void kn_quantize_row_q8kv_avx512(int8_t *dst, float *scale, const float *src, int n);
bool kn_attn_scores_q8q8_avx512vnni(const int8_t *q, const float *qscale, int g, int hd,
                                    const int8_t *k, size_t kstride, const float *kscale, int n,
                                    float scale, float *s, size_t sstride);
bool kn_attn_scores_q8_avx512(const float *q, int g, int hd, const int8_t *k, size_t kstride,
                              const float *kscale, int n, float scale, float *s, size_t sstride);
bool kn_attn_values_q8_avx512(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                              size_t vstride, const float *vscale, int n, float *out);
bool kn_attn_scores_avx512(const float *q, int g, int hd, const float *k, size_t kstride, int n,
                           float scale, float *s, size_t sstride);
bool kn_attn_values_avx512(const float *p, size_t pstride, int g, int hd, const float *v,
                           size_t vstride, int n, float *out);
bool kn_attn_scores_f16_avx512(const float *q, int g, int hd, const uint16_t *k, size_t kstride,
                               int n, float scale, float *s, size_t sstride);
bool kn_attn_values_f16_avx512(const float *p, size_t pstride, int g, int hd, const uint16_t *v,
                               size_t vstride, int n, float *out);
void kn_f32_to_f16_row_avx512(uint16_t *dst, const float *src, int n);
/* 16-bit-operand Q8_0 attention (attn_q8_avx512vnni.c; kn_attn_*_q8q16/q8w16 in attn.c). */
#define KN_W16_ROWS 16 /* value rows sharing one 16-bit weight scale */
void kn_quantize_q16_avx512(uint8_t *dst, float *qscale, const float *src, int n);
bool kn_attn_scores_q8q16_avx512vnni(const uint8_t *q, const float *qscale, int g, int hd,
                                     const int8_t *k, size_t kstride, const float *kscale, int n,
                                     float scale, float *s, size_t sstride);
bool kn_attn_values_q8w16_avx512vnni(const float *p, size_t pstride, int g, int hd,
                                     const int8_t *v, size_t vstride, const float *vscale, int n,
                                     float *out);

#endif
