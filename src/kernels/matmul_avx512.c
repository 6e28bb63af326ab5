/* matmul_avx512.c — AVX-512 float-weight matmul (F32/F16/BF16 widened to f32 in registers)
 * and the AVX-512 activation quantizer. The quantized integer kernels need VNNI and live in
 * qmatmul_avx512.c.
 *
 * The float kernel computes a tile of 4 weight rows × up to 4 X rows per pass over the
 * columns, so each weight vector loaded from memory feeds up to 4 FMAs and each weight row is
 * streamed from DRAM once per call for any n. For n == 1 this is the decode matvec, which is
 * bound by memory bandwidth: 4 rows give 4 independent load streams and accumulators, and a
 * software prefetch a few cache lines ahead keeps the hardware prefetchers' queues full. */
#include <immintrin.h>

#include "kernels/kn_internal.h"

#define RB 4 /* weight rows per tile */
#define XB 6 /* X rows per tile: 4x6 accumulators + 6 X vectors + 1 weight vector = 31 zmm */
/* Software prefetch distance along each row (measured: 512-1024 best for F32, 1024 for F16). */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 1024
#endif

static inline __attribute__((always_inline)) __m512 ld16(weft_dtype t, const uint8_t *row, int j) {
    switch (t) {
    case WEFT_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)j)));
    case WEFT_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(row + 2 * (size_t)j))), 16));
    default:
        return _mm512_loadu_ps((const float *)(row + 4 * (size_t)j));
    }
}

static inline __attribute__((always_inline)) __m512 ld16_mask(weft_dtype t, const uint8_t *row,
                                                              int j, __mmask16 m) {
    switch (t) {
    case WEFT_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)j));
    case WEFT_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, row + 2 * (size_t)j)), 16));
    default:
        return _mm512_maskz_loadu_ps(m, row + 4 * (size_t)j);
    }
}

static inline __attribute__((always_inline)) size_t elem_bytes(weft_dtype t) {
    return t == WEFT_F32 ? 4 : 2;
}

/* Y[x][r0+i] for i < nr, x < nx: nr weight rows starting at w (row_bytes apart), nx X rows. */
static inline __attribute__((always_inline)) void tile(weft_dtype t, int nr, int nx,
                                                       const uint8_t *w, size_t row_bytes,
                                                       const float *X, int cols, float *Y,
                                                       int ldy) {
    __m512 acc[RB][XB];
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            acc[i][x] = _mm512_setzero_ps();
    const size_t eb = elem_bytes(t);
    int j = 0;
    for (; j + 16 <= cols; j += 16) {
        __m512 xv[XB];
        for (int x = 0; x < nx; x++)
            xv[x] = _mm512_loadu_ps(X + (size_t)x * cols + j);
        if (((j * eb) & 63) == 0)
            for (int i = 0; i < nr; i++)
                _mm_prefetch((const char *)w + (size_t)i * row_bytes + j * eb + PREFETCH_BYTES,
                             _MM_HINT_T0);
        for (int i = 0; i < nr; i++) {
            const uint8_t *row = w + (size_t)i * row_bytes;
            __m512 wv = ld16(t, row, j);
            for (int x = 0; x < nx; x++)
                acc[i][x] = _mm512_fmadd_ps(wv, xv[x], acc[i][x]);
        }
    }
    if (j < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - j)) - 1);
        __m512 xv[XB];
        for (int x = 0; x < nx; x++)
            xv[x] = _mm512_maskz_loadu_ps(m, X + (size_t)x * cols + j);
        for (int i = 0; i < nr; i++) {
            __m512 wv = ld16_mask(t, w + (size_t)i * row_bytes, j, m);
            for (int x = 0; x < nx; x++)
                acc[i][x] = _mm512_fmadd_ps(wv, xv[x], acc[i][x]);
        }
    }
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            Y[(size_t)x * ldy + i] = _mm512_reduce_add_ps(acc[i][x]);
}

static inline __attribute__((always_inline)) void
rows_type(weft_dtype t, const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    const uint8_t *base = W->data;
    int r = r0;
    for (; r < r1; r += RB) {
        int nr = r1 - r < RB ? r1 - r : RB;
        const uint8_t *w = base + (size_t)r * W->row_bytes;
        for (int x0 = 0; x0 < n; x0 += XB) {
            int nx = n - x0 < XB ? n - x0 : XB;
            const float *xt = X + (size_t)x0 * W->cols;
            float *yt = Y + (size_t)x0 * W->rows + r;
            /* Constant (nr, nx) pairs let the compiler keep the accumulators in registers. */
#define TILE_CASE(NR)                                                                              \
    switch (nx) {                                                                                  \
    case 1:                                                                                        \
        tile(t, NR, 1, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    case 2:                                                                                        \
        tile(t, NR, 2, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    case 3:                                                                                        \
        tile(t, NR, 3, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    case 4:                                                                                        \
        tile(t, NR, 4, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    case 5:                                                                                        \
        tile(t, NR, 5, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    default:                                                                                       \
        tile(t, NR, 6, w, W->row_bytes, xt, W->cols, yt, W->rows);                                 \
        break;                                                                                     \
    }
            if (nr == RB) {
                TILE_CASE(4)
            } else {
                for (int i = 0; i < nr; i++) {
                    const uint8_t *w1 = w + (size_t)i * W->row_bytes;
                    float *y1 = yt + i;
                    switch (nx) {
                    case 1:
                        tile(t, 1, 1, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    case 2:
                        tile(t, 1, 2, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    case 3:
                        tile(t, 1, 3, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    case 4:
                        tile(t, 1, 4, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    case 5:
                        tile(t, 1, 5, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    default:
                        tile(t, 1, 6, w1, W->row_bytes, xt, W->cols, y1, W->rows);
                        break;
                    }
                }
            }
#undef TILE_CASE
        }
    }
}

void kn_mm_float_avx512(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    switch (W->type) {
    case WEFT_F16:
        rows_type(WEFT_F16, W, X, n, Y, r0, r1);
        break;
    case WEFT_BF16:
        rows_type(WEFT_BF16, W, X, n, Y, r0, r1);
        break;
    default:
        rows_type(WEFT_F32, W, X, n, Y, r0, r1);
        break;
    }
}

/* Same values as kn_quantize_act_row (max|x| is exact, x*id is one rounding, cvtps2dq rounds
 * to nearest even like nearbyintf), but in the pair-interleaved layout of the VNNI kernel:
 * blocks 2p and 2p+1 share 64 bytes whose dword k is dword k/2 of block 2p + (k & 1); an odd
 * last block is paired with zeros. The row therefore occupies cols rounded up to 64 bytes. */
void kn_quantize_act_row_avx512(const float *x, int cols, int8_t *qs, float *d, float *dsum) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    int nb = cols / WEFT_QK;
    for (int b0 = 0; b0 < nb; b0 += 2) {
        __m256i q[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        for (int k = 0; k < 2 && b0 + k < nb; k++) {
            int b = b0 + k;
            __m512 v0 = _mm512_loadu_ps(x + b * WEFT_QK);
            __m512 v1 = _mm512_loadu_ps(x + b * WEFT_QK + 16);
            __m512 a = _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask));
            float amax = _mm512_reduce_max_ps(a);
            float db = amax / 127.0f;
            float id = db != 0.0f ? 1.0f / db : 0.0f;
            __m512 idv = _mm512_set1_ps(id);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
            __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
            q[k] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)),
                                           _mm512_cvtepi32_epi8(q1), 1);
            int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            d[b] = db;
            dsum[b] = db * (float)sum;
        }
        __m256i lo = _mm256_unpacklo_epi32(q[0], q[1]); /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        __m256i hi = _mm256_unpackhi_epi32(q[0], q[1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
        int8_t *dst = qs + (size_t)b0 * WEFT_QK;
        _mm256_storeu_si256((__m256i *)dst, _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256((__m256i *)(dst + 32), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
}
