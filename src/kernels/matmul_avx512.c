/* matmul_avx512.c — AVX-512 float-weight matmul (F32/F16/BF16 widened to f32 in registers)
 * and the AVX-512 activation quantizer. The quantized integer kernels need VNNI and live in
 * qmatmul_avx512vnni.c.
 *
 * n == 1 is the decode matvec, bound by memory bandwidth: tiles of 4 weight rows give 4
 * independent load streams and accumulators, and a software prefetch a few cache lines ahead
 * keeps the hardware prefetchers' queues full.
 *
 * n >= 2: register tiles of 4 weight rows x up to 6 X rows (24 accumulators + 4 weight
 * vectors + 1 X vector), X rows split into tiles of balanced sizes. Each tile's 24 dot
 * products end in a transpose-and-add tree (hsum4) that turns 4 accumulators into 4 sums,
 * stored 4 at a time. For n <= 12 (two X tiles at most; still memory-bound) the weights
 * pass once, 4-row group by group, with the matvec's in-row prefetch. For larger n the rows
 * go in panels of ~128 KiB (kept in L2) and columns in blocks of 1024 (an X tile's block,
 * <= 24 KiB, stays in L1 while the panel's rows pass under it; later blocks add into Y);
 * a linear software prefetch stream pulls the next panel into L2 while the current one is
 * computed, so each weight byte still comes from DRAM once per call. */
#include <immintrin.h>

#include "kernels/kn_internal.h"

#define RB 4 /* weight rows per tile */
#define XB 6 /* X rows per batched tile: 4x6 accumulators + 4 weight vectors + 1 X vector */
/* Software prefetch distance along each row (measured: 512-1024 best for F32, 1024 for F16). */
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 1024
#endif
/* Batched path (n >= 2), all overridable at build time for tuning. Up to STREAM_NTX X tiles
 * the weights are streamed once (memory-bound); beyond that weight rows are processed in
 * panels of about PANEL_BYTES (kept in L2 while every X tile passes over them) and columns
 * in blocks of KC (an X tile's block, 6 x KC floats, stays in L1 while the panel's rows pass
 * under it), with PF_LINES cache lines of the prefetch stream per column step. Tuned with
 * bench_kernels on the 2-core Zen 5 VM (KC 512/1024/2048, panels 32-256 KiB). */
#ifndef PANEL_BYTES
#define PANEL_BYTES (128 * 1024)
#endif
#ifndef KC
#define KC 1024
#endif
#ifndef STREAM_NTX
#define STREAM_NTX 2
#endif
#ifndef PF_LINES
#define PF_LINES 2
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

/* ---- n == 1: the decode matvec (memory-bound) ---- */

/* Y[r0+i] for i < nr: nr weight rows starting at w (row_bytes apart) against one X row. */
static inline __attribute__((always_inline)) void mv_tile(weft_dtype t, int nr, const uint8_t *w,
                                                          size_t row_bytes, const float *x,
                                                          int cols, float *y) {
    __m512 acc[RB];
    for (int i = 0; i < nr; i++)
        acc[i] = _mm512_setzero_ps();
    const size_t eb = elem_bytes(t);
    int j = 0;
    for (; j + 16 <= cols; j += 16) {
        __m512 xv = _mm512_loadu_ps(x + j);
        if (((j * eb) & 63) == 0)
            for (int i = 0; i < nr; i++)
                _mm_prefetch((const char *)w + (size_t)i * row_bytes + j * eb + PREFETCH_BYTES,
                             _MM_HINT_T0);
        for (int i = 0; i < nr; i++)
            acc[i] = _mm512_fmadd_ps(ld16(t, w + (size_t)i * row_bytes, j), xv, acc[i]);
    }
    if (j < cols) {
        __mmask16 m = (__mmask16)((1u << (cols - j)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + j);
        for (int i = 0; i < nr; i++)
            acc[i] = _mm512_fmadd_ps(ld16_mask(t, w + (size_t)i * row_bytes, j, m), xv, acc[i]);
    }
    for (int i = 0; i < nr; i++)
        y[i] = _mm512_reduce_add_ps(acc[i]);
}

static inline __attribute__((always_inline)) void
matvec_type(weft_dtype t, const kn_matrix *W, const float *x, float *y, int r0, int r1) {
    const uint8_t *base = W->data;
    int r = r0;
    for (; r + RB <= r1; r += RB)
        mv_tile(t, RB, base + (size_t)r * W->row_bytes, W->row_bytes, x, W->cols, y + r);
    for (; r < r1; r++)
        mv_tile(t, 1, base + (size_t)r * W->row_bytes, W->row_bytes, x, W->cols, y + r);
}

/* ---- n >= 2: register tiles of 4 weight rows x up to 6 X rows ---- */

/* Lanes 0..3 = the sums of all 16 lanes of a0..a3: a transpose-and-add tree (13 shuffles and
 * adds for 4 sums instead of 4 full horizontal reductions). */
static inline __attribute__((always_inline)) __m128 hsum4(__m512 a0, __m512 a1, __m512 a2,
                                                         __m512 a3) {
    /* per 128-bit lane: t01 = {a0[0]+a0[2], a1[0]+a1[2], a0[1]+a0[3], a1[1]+a1[3]} */
    __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    /* per 128-bit lane: {a0, a1, a2, a3} partial sums */
    __m512 u = _mm512_add_ps(
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23))));
    __m256 v = _mm256_add_ps(_mm512_castps512_ps256(u), _mm512_extractf32x8_ps(u, 1));
    return _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
}

/* Y[x][i] (+)= Σ_{k0 <= j < k1} w[i][j]·X[x][j] for i < nr (1 or RB), x < nx; add = whether Y
 * already holds the sums of earlier column blocks. Prefetch: with rowpf (a single X tile, so
 * the weights pass once and the tile is memory-bound) PREFETCH_BYTES ahead along each weight
 * row, as the matvec; otherwise two cache lines of a linear stream per column step into L2,
 * advancing while pf < pf_end. Returns the new pf. */
static inline __attribute__((always_inline)) const char *
tile(weft_dtype t, int nr, int nx, bool rowpf, const uint8_t *w, size_t row_bytes,
     const float *X, int ldx, int k0, int k1, float *Y, int ldy, bool add, const char *pf,
     const char *pf_end) {
    __m512 acc[RB][XB];
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            acc[i][x] = _mm512_setzero_ps();
    /* Few address registers: X row x at xa + x*ldx (x < 3) or xb + (x-3)*ldx, weight row i at
     * wa + i*row_bytes (i < 2) or wb + (i-2)*row_bytes, all four pointers advancing along j. */
    const size_t eb = elem_bytes(t), sx = (size_t)ldx;
    const float *xa = X + k0, *xb = nx > 3 ? xa + 3 * sx : xa;
    const uint8_t *wa = w + (size_t)k0 * eb, *wb = nr > 2 ? wa + 2 * row_bytes : wa;
    int j = k0;
    for (; j + 16 <= k1; j += 16) {
        if (rowpf) {
            if (((j * eb) & 63) == 0)
                for (int i = 0; i < nr; i++)
                    _mm_prefetch((const char *)(i < 2 ? wa : wb) + (size_t)(i & 1) * row_bytes +
                                     PREFETCH_BYTES,
                                 _MM_HINT_T0);
        } else {
            for (int q = 0; q < PF_LINES; q++)
                _mm_prefetch(pf + 64 * q, _MM_HINT_T1);
            pf += pf < pf_end ? 64 * PF_LINES : 0;
        }
        __m512 wv[RB];
        for (int i = 0; i < nr; i++)
            wv[i] = ld16(t, (i < 2 ? wa : wb) + (size_t)(i & 1) * row_bytes, 0);
        for (int x = 0; x < nx; x++) {
            __m512 xv = _mm512_loadu_ps((x < 3 ? xa : xb) + (size_t)(x % 3) * sx);
            for (int i = 0; i < nr; i++)
                acc[i][x] = _mm512_fmadd_ps(wv[i], xv, acc[i][x]);
        }
        xa += 16;
        xb += 16;
        wa += 16 * eb;
        wb += 16 * eb;
    }
    if (j < k1) {
        __mmask16 m = (__mmask16)((1u << (k1 - j)) - 1);
        __m512 wv[RB];
        for (int i = 0; i < nr; i++)
            wv[i] = ld16_mask(t, w + (size_t)i * row_bytes, j, m);
        for (int x = 0; x < nx; x++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, X + (size_t)x * ldx + j);
            for (int i = 0; i < nr; i++)
                acc[i][x] = _mm512_fmadd_ps(wv[i], xv, acc[i][x]);
        }
    }
    for (int x = 0; x < nx; x++) {
        float *y = Y + (size_t)x * ldy;
        if (nr == RB) {
            __m128 s = hsum4(acc[0][x], acc[1][x], acc[2][x], acc[3][x]);
            if (add) s = _mm_add_ps(s, _mm_loadu_ps(y));
            _mm_storeu_ps(y, s);
        } else {
            float s = _mm512_reduce_add_ps(acc[0][x]);
            y[0] = add ? y[0] + s : s;
        }
    }
    return pf;
}

static inline __attribute__((always_inline)) void
batched_type(weft_dtype t, const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    const uint8_t *base = W->data;
    const size_t rb = W->row_bytes;
    const int cols = W->cols, ldy = W->rows;
    const int ntx = (n + XB - 1) / XB; /* X tiles of balanced sizes, each <= XB rows */
    int pr = (int)(PANEL_BYTES / rb) & ~(RB - 1), kc = KC;
    if (pr < RB) pr = RB;
    if (ntx <= STREAM_NTX) {
        /* Memory-bound (n <= 12 for F32): one pass over the weights, streamed as in the matvec;
         * each 4-row group stays in L1 while the (at most two) X tiles pass over it. */
        int r = r0;
        for (; r + RB <= r1; r += RB) {
            const uint8_t *w = base + (size_t)r * rb;
            for (int tx = 0; tx < ntx; tx++) {
                int x0 = tx * n / ntx, nx = (tx + 1) * n / ntx - x0;
                const float *xt = X + (size_t)x0 * cols;
                float *yt = Y + (size_t)x0 * ldy + r;
#define TILE(NR, NX) tile(t, NR, NX, true, w, rb, xt, cols, 0, cols, yt, ldy, false, NULL, NULL)
                switch (nx) {
                case 1: TILE(RB, 1); break;
                case 2: TILE(RB, 2); break;
                case 3: TILE(RB, 3); break;
                case 4: TILE(RB, 4); break;
                case 5: TILE(RB, 5); break;
                default: TILE(RB, 6); break;
                }
            }
        }
        for (; r < r1; r++) {
            const uint8_t *w = base + (size_t)r * rb;
            for (int tx = 0; tx < ntx; tx++) {
                int x0 = tx * n / ntx, nx = (tx + 1) * n / ntx - x0;
                const float *xt = X + (size_t)x0 * cols;
                float *yt = Y + (size_t)x0 * ldy + r;
                switch (nx) {
                case 1: TILE(1, 1); break;
                case 2: TILE(1, 2); break;
                case 3: TILE(1, 3); break;
                case 4: TILE(1, 4); break;
                case 5: TILE(1, 5); break;
                default: TILE(1, 6); break;
                }
#undef TILE
            }
        }
        return;
    }
    /* The prefetch stream runs from the first panel to the end of the panel after the current
     * one: 2 lines per column step cover the next panel during the current one when each
     * weight line is used by >= 2 X tiles (F32; F16/BF16 have half as many lines). */
    const char *pf = (const char *)base + (size_t)r0 * rb;
    for (int p = r0; p < r1; p += pr) {
        int p1 = r1 - p < pr ? r1 : p + pr;
        int p2 = r1 - p1 < pr ? r1 : p1 + pr;
        const char *pf_end = (const char *)base + (size_t)p2 * rb;
        for (int k0 = 0; k0 < cols; k0 += kc) {
            int k1 = cols - k0 < kc ? cols : k0 + kc;
            bool add = k0 > 0;
            for (int tx = 0; tx < ntx; tx++) {
                int x0 = tx * n / ntx, nx = (tx + 1) * n / ntx - x0;
                const float *xt = X + (size_t)x0 * cols;
                float *yt = Y + (size_t)x0 * ldy;
                int r = p;
                for (; r + RB <= p1; r += RB) {
                    const uint8_t *w = base + (size_t)r * rb;
#define TILE(NR, NX)                                                                               \
    pf = tile(t, NR, NX, false, w, rb, xt, cols, k0, k1, yt + r, ldy, add, pf, pf_end)
                    switch (nx) {
                    case 1: TILE(RB, 1); break;
                    case 2: TILE(RB, 2); break;
                    case 3: TILE(RB, 3); break;
                    case 4: TILE(RB, 4); break;
                    case 5: TILE(RB, 5); break;
                    default: TILE(RB, 6); break;
                    }
                }
                for (; r < p1; r++) {
                    const uint8_t *w = base + (size_t)r * rb;
                    switch (nx) {
                    case 1: TILE(1, 1); break;
                    case 2: TILE(1, 2); break;
                    case 3: TILE(1, 3); break;
                    case 4: TILE(1, 4); break;
                    case 5: TILE(1, 5); break;
                    default: TILE(1, 6); break;
                    }
#undef TILE
                }
            }
        }
    }
}

void kn_mm_float_avx512(const kn_matrix *W, const float *X, int n, float *Y, int r0, int r1) {
    if (n == 1) {
        switch (W->type) {
        case WEFT_F16: matvec_type(WEFT_F16, W, X, Y, r0, r1); break;
        case WEFT_BF16: matvec_type(WEFT_BF16, W, X, Y, r0, r1); break;
        default: matvec_type(WEFT_F32, W, X, Y, r0, r1); break;
        }
        return;
    }
    switch (W->type) {
    case WEFT_F16: batched_type(WEFT_F16, W, X, n, Y, r0, r1); break;
    case WEFT_BF16: batched_type(WEFT_BF16, W, X, n, Y, r0, r1); break;
    default: batched_type(WEFT_F32, W, X, n, Y, r0, r1); break;
    }
}

/* Same values and layout as kn_quantize_act_row (max|x| is exact, x*id is one rounding,
 * cvtps2dq rounds to nearest even like nearbyintf), 32 elements per step. */
void kn_quantize_act_row_avx512(const float *x, int cols, int8_t *qs, float *d, float *dsum,
                                int32_t *asum) {
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    int nb = cols / WEFT_QK;
    for (int b = 0; b < nb; b++) {
        __m512 v0 = _mm512_loadu_ps(x + b * WEFT_QK);
        __m512 v1 = _mm512_loadu_ps(x + b * WEFT_QK + 16);
        __m512 a = _mm512_max_ps(_mm512_and_ps(v0, absmask), _mm512_and_ps(v1, absmask));
        float amax = _mm512_reduce_max_ps(a);
        float db = amax / 127.0f;
        float id = db != 0.0f ? 1.0f / db : 0.0f;
        __m512 idv = _mm512_set1_ps(id);
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, idv));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, idv));
        _mm_storeu_si128((__m128i *)(qs + b * WEFT_QK), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(qs + b * WEFT_QK + 16), _mm512_cvtepi32_epi8(q1));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        d[b] = db;
        dsum[b] = db * (float)sum;
        asum[b] = sum;
    }
}
