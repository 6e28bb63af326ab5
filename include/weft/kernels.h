/* kernels.h — the CPU compute kernels: a worker thread pool, matrix multiply against weights
 * of any supported type, and the small element-wise operations of a LLaMA layer.
 * Kernels are pure functions over caller-owned buffers: they never allocate in the hot path
 * and know nothing about requests or sequences. SIMD paths (AVX-512, AVX2+FMA) are chosen at
 * run time from the CPU's features, with a portable scalar path always present. */
#ifndef WEFT_KERNELS_H
#define WEFT_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "weft/dtype.h"

/* ---- CPU feature level ---- */
typedef enum kn_isa { KN_ISA_SCALAR = 0, KN_ISA_AVX2 = 1, KN_ISA_AVX512 = 2 } kn_isa;
kn_isa kn_isa_detected(void);           /* what the CPU supports */
kn_isa kn_isa_active(void);             /* what the kernels use now */
/* Forces a level (clamped to what the CPU supports); used by tests to compare paths and by
 * WEFT_ISA=scalar|avx2|avx512 in the environment. Not thread-safe: call before compute. */
void kn_isa_set(kn_isa isa);
const char *kn_isa_name(kn_isa isa);

/* Smallest batch n for which F32 matmuls use OpenBLAS sgemm rather than weft's own kernel:
 * 128, or 4096 when weft runs AVX-512 but the installed OpenBLAS only has AVX2 kernels for
 * this CPU (measured slower; see cpu.c); WEFT_SGEMM_MIN_N overrides. _set is for tests and
 * benchmarks (not thread-safe with running matmuls). */
int kn_sgemm_min_n(void);
void kn_sgemm_min_n_set(int n);

/* ---- thread pool ----
 * n workers (the caller's thread counts as worker 0). tp_run runs fn(ctx, ith, nth) on every
 * worker and returns when all are done. Spinning briefly, then sleeping on a condition var. */
typedef struct tp_pool tp_pool;
typedef void (*tp_fn)(void *ctx, int ith, int nth);
tp_pool *tp_new(int n_threads);        /* NULL on failure; n_threads <= 0 means all cores */
void tp_free(tp_pool *p);
int tp_size(const tp_pool *p);
void tp_run(tp_pool *p, tp_fn fn, void *ctx);

/* ---- weights ----
 * A 2-D weight matrix in row-major order: `rows` output features, each a row of `cols`
 * elements of type `type` (quantized rows are consecutive blocks). Typically mmap'd. */
typedef struct kn_packed kn_packed;
typedef struct kn_matrix {
    weft_dtype type;
    int rows, cols;
    const void *data;
    size_t row_bytes;
    /* NULL, or the same weights packed once for the AVX-512 VNNI kernel (kn_pack_new); used
     * only while it still matches data and shape, so a view made by changing those falls
     * back to the per-call path by itself. Results are the same bits either way. */
    const kn_packed *packed;
} kn_matrix;

/* Q8_0 packing at load (src/kernels/qpack.c): kn_pack_supported is true for a Q8_0 matrix on
 * a CPU with AVX-512 VNNI; kn_pack_new returns a packed copy (NULL: not supported or out of
 * memory; the caller then simply leaves W->packed NULL), which must outlive every kn_matrix
 * pointing at it. kn_pack_bytes: its size (about the matrix's own). kn_pack_size: the bytes
 * kn_pack_new would allocate (0 when not supported). */
size_t kn_pack_size(const kn_matrix *W);
bool kn_pack_supported(const kn_matrix *W);
kn_packed *kn_pack_new(const kn_matrix *W);
/* n matrices packed into one allocation (out[0..n)): 0, or -1 when one is not supported or
 * out of memory. Freeing out[0] frees them all; kn_pack_free of the others does nothing. */
int kn_pack_many(const kn_matrix *const *Ws, int n, kn_packed **out);
void kn_pack_free(kn_packed *p);
size_t kn_pack_bytes(const kn_packed *p);

/* Y[n][W.rows] = X[n][W.cols] · Wᵀ. X and Y are dense F32 row-major.
 * F32 weights with large n (>= 128, measured crossover) go through BLAS sgemm; everything
 * else uses weft's own kernels parallelised over output rows on the pool. Q8_0/Q4_0 need
 * W.cols % 32 == 0. scratch (any alignment) must hold kn_matmul_scratch_bytes(W, n) bytes
 * (activation quantization buffers) or be NULL when that is 0. Y must not overlap X. Not
 * callable from inside a tp_run job of the same pool. See docs/kernels.md. */
size_t kn_matmul_scratch_bytes(const kn_matrix *W, int n);
void kn_matmul(tp_pool *pool, const kn_matrix *W, const float *X, int n, float *Y, void *scratch);

/* The same for n_w matrices that all read X (same cols): Ys[w] = X · Ws[w]ᵀ. Matrices of one
 * type share one activation quantization and one pool dispatch (Q/K/V, gate/up); mixed types
 * fall back to one kn_matmul each. scratch as for the largest kn_matmul among them. */
void kn_matmul_multi(tp_pool *pool, const kn_matrix *const *Ws, int n_w, const float *X, int n,
                     float *const *Ys, void *scratch);

/* kn_matmul_multi with the element-wise work around it done inside the matmul's pool
 * dispatch (Q8_0/Q4_0: one dispatch instead of a serial loop before and after). The result
 * is bit-for-bit that of this unfused sequence:
 *   norm_w:   norm_out[x] = rmsnorm(X[x], norm_w, norm_eps) for x < n (cols floats each),
 *             and the matmul reads norm_out instead of X;
 *   Ys[w] = X · Ws[w]ᵀ;
 *   residual: residual += Ys[0] (n × Ws[0].rows floats), i.e. kn_add;
 *   swiglu:   kn_swiglu(Ys[0], Ys[1]) over n × rows (n_w == 2, equal row counts);
 *   post:     post(post_ctx, ith, nth) on every pool thread once all of the above is done
 *             (the caller splits its work by ith/nth; nth may be 1).
 * Zero/NULL fields are off (fz NULL: kn_matmul_multi). post must not call into the same pool. */
typedef struct kn_mm_fuse {
    const float *norm_w;
    float norm_eps;
    float *norm_out;
    float *residual;
    bool swiglu;
    tp_fn post;
    void *post_ctx;
} kn_mm_fuse;
void kn_matmul_fused(tp_pool *pool, const kn_matrix *const *Ws, int n_w, const float *X, int n,
                     float *const *Ys, void *scratch, const kn_mm_fuse *fz);

/* Row i of W converted to F32 (used for embedding lookups). */
void kn_matrix_row_f32(const kn_matrix *W, int i, float *out);

/* ---- vector primitives (single thread) ---- */
float kn_dot_f32(const float *a, const float *b, int n);
void kn_axpy_f32(float *y, float a, const float *x, int n); /* y += a*x */
void kn_scale_f32(float *x, float a, int n);

/* ---- attention inner loops ----
 * scores: s[h*sstride + i] = scale * q_h · k_i for g query heads (q: g rows of hd floats) and
 * n key rows kstride floats apart. values: out_h += Σ_i p[h*pstride + i] * v_i. */
void kn_attn_scores(const float *q, int g, int hd, const float *k, size_t kstride, int n,
                    float scale, float *s, size_t sstride);
void kn_attn_values(const float *p, size_t pstride, int g, int hd, const float *v, size_t vstride,
                    int n, float *out);
/* The same over an F16 cache (rows of IEEE half floats, strides in elements): keys and values
 * are widened to F32 in registers, all arithmetic stays F32. */
void kn_attn_scores_f16(const float *q, int g, int hd, const uint16_t *k, size_t kstride, int n,
                        float scale, float *s, size_t sstride);
void kn_attn_values_f16(const float *p, size_t pstride, int g, int hd, const uint16_t *v,
                        size_t vstride, int n, float *out);
/* dst[i] = half(src[i]), round to nearest even (the F16 cache write). */
void kn_f32_to_f16_row(uint16_t *dst, const float *src, int n);
/* The same over a Q8_0 cache: int8 rows (strides in elements) with one F32 scale per row
 * (kscale[i], vscale[i]): key i is kscale[i] * k_i, value i is vscale[i] * v_i. The int8
 * elements are widened to F32 in registers; s = (scale * (q_h · k_i)) * kscale[i] and
 * out_h += (p[h][i] * vscale[i]) * v_i, all in F32. */
void kn_attn_scores_q8(const float *q, int g, int hd, const int8_t *k, size_t kstride,
                       const float *kscale, int n, float scale, float *s, size_t sstride);
void kn_attn_values_q8(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                       size_t vstride, const float *vscale, int n, float *out);
/* Scores over a Q8_0 cache with int8 queries (each query head quantized like a cache row:
 * q_h ≈ qscale[h] * qi_h, see kn_quantize_row_q8kv): every q·k is an exact int32 dot, and
 * s[h*sstride + i] = ((float)dot * (scale * qscale[h])) * kscale[i]. Exact dots make the
 * result independent of the ISA and of how rows are split (AVX-512 VNNI = scalar, bit for bit). */
void kn_attn_scores_q8q8(const int8_t *q, const float *qscale, int g, int hd, const int8_t *k,
                         size_t kstride, const float *kscale, int n, float scale, float *s,
                         size_t sstride);
/* The Q8_0 cache's default attention (docs/kernels.md): integer arithmetic with 16-bit
 * operands, as accurate as F32 queries to ~1/65535 of the largest query element or weight.
 * kn_quantize_q16: a query head of n floats as magnitudes Q_d = (int)(|q_d| * (65535/amax) +
 * 0.5f) in [0, 65535] (amax = max|q|, *qscale = amax/65535; zeros when amax is 0 or not
 * finite) into dst = [hi bytes n][lo bytes n][sign bytes n, 0x80 where q_d < 0].
 * kn_attn_scores_q8q16: q is g such heads (3*hd bytes each); dot = Σ_d ±Q_d·k_i[d] is exact, and
 * s[h*sstride + i] = ((float)dot * (scale * qscale[h])) * kscale[i] (AVX-512 VNNI = scalar).
 * kn_attn_values_q8w16: for each run of 16 rows (from row 0 of the call), w_i = p[h][i] *
 * vscale[i], wmax = max|w_i|, W_i = (int)(|w_i| * (65535/wmax) + 0.5f) with w_i's sign; D_d =
 * Σ_i ±W_i·v_i[d] exact, out_h[d] = fmaf((float)D_d, wmax/65535, out_h[d]) (AVX-512 VNNI =
 * scalar). Keys/values must not hold -128 (the cache quantizer never writes it). */
void kn_quantize_q16(uint8_t *dst, float *qscale, const float *src, int n);
void kn_attn_scores_q8q16(const uint8_t *q, const float *qscale, int g, int hd, const int8_t *k,
                          size_t kstride, const float *kscale, int n, float scale, float *s,
                          size_t sstride);
void kn_attn_values_q8w16(const float *p, size_t pstride, int g, int hd, const int8_t *v,
                          size_t vstride, const float *vscale, int n, float *out);
/* The Q8_0 cache write: *scale = max|src|/127 (0 for an all-zero row), dst[i] =
 * round-to-nearest-even(src[i] / *scale) in [-127, 127]. Deterministic per row, so a token's
 * cached K/V never depend on its batch. */
void kn_quantize_row_q8kv(int8_t *dst, float *scale, const float *src, int n);

/* ---- layer operations ---- */
/* out = x / rms(x) * w; out may alias x. */
void kn_rmsnorm(float *out, const float *x, const float *w, int n, float eps);
/* In-place softmax over x[0..n). */
void kn_softmax(float *x, int n);
/* a[i] = silu(a[i]) * b[i]. */
void kn_swiglu(float *a, const float *b, int n);
/* y += x. */
void kn_add(float *y, const float *x, int n);
/* Index of the first largest of x[0..n) (the lowest index among equal maxima); NaN never
 * wins (it counts as -inf), and 0 when nothing exceeds -inf or n <= 0. */
int kn_argmax(const float *x, int n);

/* ---- memory bandwidth probe (for benchmarks) ----
 * Reads `bytes` of buffer `reps` times with all pool threads; returns the best rate seen over
 * 8 MiB windows in GB/s (1e9 bytes/s). */
double kn_read_bandwidth_gbs(tp_pool *pool, const void *buf, size_t bytes, int reps);

#endif
