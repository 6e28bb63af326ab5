/* matmul_avx2.c — AVX2+FMA+F16C matmul kernels: float weights (F32/F16/BF16 widened to f32 in
 * registers) and Q8_0/Q4_0 weights against int8-quantized activations (natural layout).
 * Used on CPUs without AVX-512, and for the quantized types on AVX-512 CPUs without VNNI.
 *
 * Integer dots use the classic sign trick: maddubs needs one unsigned operand, so it gets
 * |w| and the activations take w's sign (psignb), which keeps every pair sum below the int16
 * saturation limit (128·127·2 < 32768). Q4_0 nibbles are recentred to -8..7 first. */
#include <immintrin.h>

#include "kernels/kn_internal.h"

#define RB 4  /* weight rows per float tile */
#define XB 2  /* X rows per float tile */
#define QXB 4 /* X rows per quantized tile */
#define QPF_BYTES 4096

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __attribute__((always_inline)) __m256 ld8(weft_dtype t, const uint8_t *row, int j) {
    switch (t) {
    case WEFT_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)j)));
    case WEFT_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * (size_t)j))), 16));
    default:
        return _mm256_loadu_ps((const float *)(row + 4 * (size_t)j));
    }
}

static inline __attribute__((always_inline)) float ld1(weft_dtype t, const uint8_t *row, int j) {
    switch (t) {
    case WEFT_F16:
        return kn_fp16_to_f32(kn_load_u16(row + 2 * (size_t)j));
    case WEFT_BF16:
        return kn_bf16_to_f32(kn_load_u16(row + 2 * (size_t)j));
    default: {
        float f;
        memcpy(&f, row + 4 * (size_t)j, sizeof f);
        return f;
    }
    }
}

static inline __attribute__((always_inline)) void tile(weft_dtype t, int nr, int nx,
                                                       const uint8_t *w, size_t row_bytes,
                                                       const float *X, int cols, float *Y,
                                                       int ldy) {
    __m256 acc[RB][XB];
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            acc[i][x] = _mm256_setzero_ps();
    int j = 0;
    for (; j + 8 <= cols; j += 8) {
        __m256 xv[XB];
        for (int x = 0; x < nx; x++)
            xv[x] = _mm256_loadu_ps(X + (size_t)x * cols + j);
        for (int i = 0; i < nr; i++) {
            __m256 wv = ld8(t, w + (size_t)i * row_bytes, j);
            for (int x = 0; x < nx; x++)
                acc[i][x] = _mm256_fmadd_ps(wv, xv[x], acc[i][x]);
        }
    }
    for (int i = 0; i < nr; i++) {
        for (int x = 0; x < nx; x++) {
            float s = hsum256(acc[i][x]);
            for (int k = j; k < cols; k++)
                s += ld1(t, w + (size_t)i * row_bytes, k) * X[(size_t)x * cols + k];
            Y[(size_t)x * ldy + i] = s;
        }
    }
}

static inline __attribute__((always_inline)) void
rows_type(weft_dtype t, const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    const uint8_t *base = W->data;
    for (int r = r0; r < r1; r += RB) {
        int nr = r1 - r < RB ? r1 - r : RB;
        const uint8_t *w = base + (size_t)r * W->row_bytes;
        for (int x0 = 0; x0 < n; x0 += XB) {
            int nx = n - x0 < XB ? n - x0 : XB;
            const float *xt = X + (size_t)x0 * W->cols;
            float *yt = Y + (size_t)x0 * W->rows + r;
            if (nr == RB) {
                if (nx == 2)
                    tile(t, RB, 2, w, W->row_bytes, xt, W->cols, yt, W->rows);
                else
                    tile(t, RB, 1, w, W->row_bytes, xt, W->cols, yt, W->rows);
            } else {
                for (int i = 0; i < nr; i++) {
                    const uint8_t *w1 = w + (size_t)i * W->row_bytes;
                    if (nx == 2)
                        tile(t, 1, 2, w1, W->row_bytes, xt, W->cols, yt + i, W->rows);
                    else
                        tile(t, 1, 1, w1, W->row_bytes, xt, W->cols, yt + i, W->rows);
                }
            }
        }
    }
}

void kn_mm_float_avx2(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
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

/* Signed weights of block b as 32 int8 in natural element order. */
static inline __attribute__((always_inline)) __m256i load_block(weft_dtype t, const uint8_t *row,
                                                                int b, float *dw) {
    if (t == WEFT_Q8_0) {
        const uint8_t *p = row + (size_t)b * sizeof(block_q8_0);
        *dw = _cvtsh_ss(kn_load_u16(p));
        return _mm256_loadu_si256((const __m256i *)(p + 2));
    }
    const uint8_t *p = row + (size_t)b * sizeof(block_q4_0);
    *dw = _cvtsh_ss(kn_load_u16(p));
    __m128i q = _mm_loadu_si128((const __m128i *)(p + 2));
    __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    y = _mm256_and_si256(y, _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(y, _mm256_set1_epi8(8));
}

static inline __attribute__((always_inline)) void
qtile(weft_dtype t, int nx, const uint8_t *row, const kn_qact *A, int x0, float *Y, int ldy) {
    __m256 acc[QXB];
    const __m256i ones = _mm256_set1_epi16(1);
    for (int x = 0; x < nx; x++)
        acc[x] = _mm256_setzero_ps();
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    for (int b = 0; b < A->nb; b++) {
        /* Rows are consumed front to back (and run into the next row): prefetch far ahead,
         * the hardware prefetchers stop at each 4 KiB page (see qmatmul_avx512vnni.c). */
        _mm_prefetch((const char *)row + (size_t)b * bsz + QPF_BYTES, _MM_HINT_T0);
        float dw;
        __m256i wv = load_block(t, row, b, &dw);
        __m256i wabs = _mm256_sign_epi8(wv, wv);
        for (int x = 0; x < nx; x++) {
            size_t xr = (size_t)(x0 + x);
            __m256i av = _mm256_loadu_si256(
                (const __m256i *)(A->qs + xr * A->qstride + (size_t)b * WEFT_QK));
            __m256i p16 = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(av, wv));
            __m256i p32 = _mm256_madd_epi16(p16, ones);
            __m256 sc = _mm256_set1_ps(dw * A->d[xr * A->nb + b]);
            acc[x] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p32), sc, acc[x]);
        }
    }
    for (int x = 0; x < nx; x++)
        Y[(size_t)x * ldy] = hsum256(acc[x]);
}

static inline __attribute__((always_inline)) void
qrows_type(weft_dtype t, const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
        for (int x0 = 0; x0 < n; x0 += QXB) {
            float *yt = Y + (size_t)x0 * W->rows + r;
            switch (n - x0 < QXB ? n - x0 : QXB) {
            case 1:
                qtile(t, 1, row, A, x0, yt, W->rows);
                break;
            case 2:
                qtile(t, 2, row, A, x0, yt, W->rows);
                break;
            case 3:
                qtile(t, 3, row, A, x0, yt, W->rows);
                break;
            default:
                qtile(t, 4, row, A, x0, yt, W->rows);
                break;
            }
        }
    }
}

void kn_mm_quant_avx2(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    if (W->type == WEFT_Q8_0)
        qrows_type(WEFT_Q8_0, W, A, n, Y, r0, r1);
    else
        qrows_type(WEFT_Q4_0, W, A, n, Y, r0, r1);
}
