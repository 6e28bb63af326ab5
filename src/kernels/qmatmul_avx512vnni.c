/* qmatmul_avx512vnni.c — Q8_0 / Q4_0 weight matmul with AVX-512 VNNI integer dot products
 * (vpdpbusd: unsigned bytes × signed bytes → int32), against activations that kn_matmul has
 * quantized to int8 blocks (kn_qact, natural element order).
 *
 * vpdpbusd wants one unsigned operand, so weights enter as w+128 (Q8_0, a sign-bit flip) or as
 * the raw nibble 0..15 (Q4_0); offset·Σa (kn_qact.asum) is subtracted in integer, so every
 * block yields its exact signed int32 dot s_b. Both paths then keep a register lane per
 * weight row and add the blocks in order with one FMA each, acc = fma(s_b, dw_b·da_b, acc):
 * the canonical order of kn_internal.h, bit-equal to the scalar kernel, so an output does not
 * depend on the batch size or on which path ran.
 *
 *  - row-lane tile (n < packed_min_n, and < 16 leftover rows): 16 weight rows × up to 4 X
 *    rows. Each row's block pair is one dpbusd per X row; a transpose-and-add tree turns the
 *    16 registers of 8-dword partial sums into two registers of 16 exact block sums.
 *  - packed panels (n >= packed_min_n): weights repacked per call so that 8 dpbusd give one
 *    block's sums for 16 rows directly; see below. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kn_internal.h"

#define GRP 16 /* blocks per scale group */
#define RL 16  /* weight rows per row-lane tile (one lane each) */
#define RNX 4  /* X rows per row-lane tile pass */
/* Software prefetch distance per row, ahead of the tile's read position. The 16 rows of a
 * tile are 16 streams; the hardware prefetchers do not keep up with that many (and stop at
 * every 4 KiB page), so each row is prefetched this far ahead; past a row's end the same row
 * of the next tile (16 rows on) is fetched. */
#define QPF_ROW 1024

/* Loads `bytes` (<= 128) bytes from p as 64 words (the rest zero, nothing read past p+bytes)
 * and picks the words idx selects: the fp16 scale fields of consecutive blocks. */
static inline __attribute__((always_inline)) __m512i pick_words(const uint8_t *p, int bytes,
                                                                __m512i idx) {
    int words = bytes / 2;
    __mmask32 ma = words >= 32 ? 0xffffffffu : (words > 0 ? (1u << words) - 1 : 0);
    __mmask32 mb = words >= 64 ? 0xffffffffu : (words > 32 ? (1u << (words - 32)) - 1 : 0);
    __m512i a = _mm512_maskz_loadu_epi16(ma, p), b = _mm512_maskz_loadu_epi16(mb, p + 64);
    return _mm512_permutex2var_epi16(a, idx, b);
}

/* fp16 scales of the ng (<= 16) blocks at base as 16 floats, zero past ng. Two or four
 * 128-byte windows and word permutes instead of a gather (slow on AMD, and it stalls the
 * streaming loads behind it) or 16 scalar loads. */
static inline __attribute__((always_inline)) __m512 load_scales(weft_dtype t, const uint8_t *base,
                                                                int ng) {
    __m128i lo, hi;
    if (t == WEFT_Q4_0) { /* 18-byte blocks: the scales of 8 blocks are words 0, 9, ..., 63 */
        static const uint16_t k_idx[32] = {0, 9, 18, 27, 36, 45, 54, 63};
        const __m512i idx = _mm512_loadu_si512(k_idx);
        int bytes = ng * 18;
        lo = _mm512_castsi512_si128(pick_words(base, bytes < 128 ? bytes : 128, idx));
        hi = bytes > 144 ? _mm512_castsi512_si128(
                               pick_words(base + 144, bytes - 144 < 128 ? bytes - 144 : 128, idx))
                         : _mm_setzero_si128();
        lo = _mm_maskz_mov_epi16(ng >= 8 ? 0xff : (__mmask8)((1u << ng) - 1), lo);
        hi = _mm_maskz_mov_epi16(ng >= 16 ? 0xff
                                 : ng > 8 ? (__mmask8)((1u << (ng - 8)) - 1)
                                          : 0,
                                 hi);
    } else { /* 34-byte blocks: the scales of 4 blocks are words 0, 17, 34, 51 */
        static const uint16_t k_idx[32] = {0, 17, 34, 51};
        const __m512i idx = _mm512_loadu_si512(k_idx);
        __m128i q[4];
        for (int c = 0; c < 4; c++) {
            int bytes = (ng - 4 * c) * 34;
            q[c] = bytes > 0 ? _mm512_castsi512_si128(
                                   pick_words(base + 136 * c, bytes < 128 ? bytes : 128, idx))
                             : _mm_setzero_si128();
        }
        lo = _mm_unpacklo_epi64(q[0], q[1]);
        hi = _mm_unpacklo_epi64(q[2], q[3]);
        __mmask16 m = (__mmask16)((1u << ng) - 1);
        lo = _mm_maskz_mov_epi16((__mmask8)m, lo);
        hi = _mm_maskz_mov_epi16((__mmask8)(m >> 8), hi);
    }
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}


/* 64 bytes of unsigned weights for blocks b, b+1 of one row (has_b1 false: b is the row's
 * last block; the upper half is then don't-care). Q8_0: [b | b+1] in natural order; Q4_0:
 * 128-bit lanes [b elements 0..15 | b+1 0..15 | b 16..31 | b+1 16..31]. */
static inline __attribute__((always_inline)) __m512i load_pair(weft_dtype t, const uint8_t *row,
                                                               int b, bool has_b1) {
    if (t == WEFT_Q8_0) {
        const uint8_t *p = row + (size_t)b * sizeof(block_q8_0) + 2;
        __m256i a = _mm256_loadu_si256((const __m256i *)p);
        __m256i c = has_b1 ? _mm256_loadu_si256((const __m256i *)(p + sizeof(block_q8_0)))
                           : _mm256_setzero_si256();
        __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), c, 1);
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    }
    const uint8_t *p = row + (size_t)b * sizeof(block_q4_0) + 2;
    __m128i a = _mm_loadu_si128((const __m128i *)p);
    __m128i c = has_b1 ? _mm_loadu_si128((const __m128i *)(p + sizeof(block_q4_0)))
                       : _mm_setzero_si128();
    __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(a), c, 1);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(y), _mm256_srli_epi16(y, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
}

/* The activations of blocks b, b+1 of one X row in the same arrangement as load_pair. */
static inline __attribute__((always_inline)) __m512i load_act_pair(weft_dtype t, const int8_t *q,
                                                                   bool has_b1) {
    __m512i v = has_b1 ? _mm512_loadu_si512(q) : _mm512_maskz_loadu_epi8(0xffffffffull, q);
    if (t == WEFT_Q8_0) return v;
    return _mm512_shuffle_i64x2(v, v, 0xd8); /* 128-bit lanes 0, 2, 1, 3 */
}

/* Row-lane reduction, step 1: the dpbusd results of 4 rows (each 16 dwords: 8 partial sums
 * per block of the pair) → one register whose 128-bit lane k holds, for the 4 rows, the sum
 * of lane k's 4 dwords. */
static inline __attribute__((always_inline)) __m512i reduce4(__m512i d0, __m512i d1, __m512i d2,
                                                             __m512i d3) {
    __m512i e01 = _mm512_add_epi32(_mm512_unpacklo_epi32(d0, d1), _mm512_unpackhi_epi32(d0, d1));
    __m512i e23 = _mm512_add_epi32(_mm512_unpacklo_epi32(d2, d3), _mm512_unpackhi_epi32(d2, d3));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(e01, e23), _mm512_unpackhi_epi64(e01, e23));
}

/* Step 2: two reduce4 results (rows 0-3, 4-7 of 8) → [b rows 0-3 | b+1 0-3 | b 4-7 | b+1 4-7].
 * Block b is 128-bit lanes 0+1 for Q8_0 and 0+2 for Q4_0 (see load_pair). */
static inline __attribute__((always_inline)) __m512i reduce8(weft_dtype t, __m512i f0, __m512i f1) {
    if (t == WEFT_Q8_0)
        return _mm512_add_epi32(_mm512_shuffle_i32x4(f0, f1, 0x88), _mm512_shuffle_i32x4(f0, f1, 0xdd));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(f0, f1, 0x44), _mm512_shuffle_i32x4(f0, f1, 0xee));
}

/* 16×16 float transpose in registers. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4)
        for (int k = 0; k < 2; k++) {
            __m512d a = _mm512_castps_pd(t[i + k]), c = _mm512_castps_pd(t[i + k + 2]);
            r[i + 2 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            r[i + 2 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        }
    /* r[4j + c], 128-bit lane L: column 4L + c of rows 4j..4j+3. */
    for (int i = 0; i < 16; i += 8)
        for (int k = 0; k < 4; k++) {
            t[i + k] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0x88);
            t[i + k + 4] = _mm512_shuffle_f32x4(r[i + k], r[i + k + 4], 0xdd);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
}

/* Y[x][i] for x < nx, i < nr (<= 16 rows from w, lanes = rows) over all blocks. */
static inline __attribute__((always_inline)) void rtile(weft_dtype t, int nx, const uint8_t *w,
                                                        size_t row_bytes, int nr, const kn_qact *A,
                                                        int x0, float *Y, int ldy, bool pf) {
    const int nb = A->nb;
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const int off = t == WEFT_Q8_0 ? 128 : 8;
    const uint8_t *rp[RL];
    for (int i = 0; i < RL; i++)
        rp[i] = w + (size_t)(i < nr ? i : nr - 1) * row_bytes;
    float sc[GRP][RL] __attribute__((aligned(64))); /* [block in group][row] */
    __m512 acc[RNX];
    for (int x = 0; x < nx; x++)
        acc[x] = _mm512_setzero_ps();

    for (int g = 0; g < nb; g += GRP) {
        int ng = nb - g < GRP ? nb - g : GRP;
        {
            __m512 s[RL];
            for (int i = 0; i < RL; i++)
                s[i] = load_scales(t, rp[i] + (size_t)g * bsz, ng);
            transpose16(s);
            for (int k = 0; k < GRP; k++)
                _mm512_store_ps(sc[k], s[k]);
        }
        for (int p = 0; p < ng; p += 2) {
            const int b = g + p;
            const bool has_b1 = p + 1 < ng;
            if (pf) {
                size_t pos = (size_t)b * bsz + QPF_ROW;
                size_t wrap = pos >= row_bytes ? (size_t)(RL - 1) * row_bytes : 0;
                for (int i = 0; i < RL; i++)
                    _mm_prefetch((const char *)(rp[i] + pos + wrap), _MM_HINT_T0);
            }
            __m512i av[RNX], h[RNX];
            for (int x = 0; x < nx; x++) h[x] = _mm512_setzero_si512();
            for (int x = 0; x < nx; x++)
                av[x] = load_act_pair(t, A->qs + (size_t)(x0 + x) * A->qstride + (size_t)b * WEFT_QK,
                                      has_b1);
            for (int half = 0; half < 2; half++) {
                __m512i f[2][RNX];
                for (int q = 0; q < 2; q++) {
                    const int i0 = half * 8 + q * 4;
                    __m512i wq[4];
                    for (int k = 0; k < 4; k++)
                        wq[k] = load_pair(t, rp[i0 + k], b, has_b1);
                    for (int x = 0; x < nx; x++) {
                        __m512i d[4];
                        for (int k = 0; k < 4; k++)
                            d[k] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq[k], av[x]);
                        f[q][x] = reduce4(d[0], d[1], d[2], d[3]);
                    }
                }
                for (int x = 0; x < nx; x++) {
                    __m512i r8 = reduce8(t, f[0][x], f[1][x]);
                    if (half == 0)
                        h[x] = r8;
                    else {
                        /* [b rows 0-15] and [b+1 rows 0-15], then the exact signed dots. */
                        __m512i s0 = _mm512_shuffle_i32x4(h[x], r8, 0x88);
                        __m512i s1 = _mm512_shuffle_i32x4(h[x], r8, 0xdd);
                        size_t k = (size_t)(x0 + x) * nb + b;
                        s0 = _mm512_sub_epi32(s0, _mm512_set1_epi32(off * A->asum[k]));
                        __m512 sc0 = _mm512_mul_ps(_mm512_load_ps(sc[p]), _mm512_set1_ps(A->d[k]));
                        acc[x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0), sc0, acc[x]);
                        if (has_b1) {
                            s1 = _mm512_sub_epi32(s1, _mm512_set1_epi32(off * A->asum[k + 1]));
                            __m512 sc1 =
                                _mm512_mul_ps(_mm512_load_ps(sc[p + 1]), _mm512_set1_ps(A->d[k + 1]));
                            acc[x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1), sc1, acc[x]);
                        }
                    }
                }
            }
        }
    }
    __mmask16 m = (__mmask16)(nr >= RL ? 0xffffu : (1u << nr) - 1);
    for (int x = 0; x < nx; x++)
        _mm512_mask_storeu_ps(Y + (size_t)x * ldy, m, acc[x]);
}

static inline __attribute__((always_inline)) void
qrows_type(weft_dtype t, const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    const uint8_t *base = W->data;
    for (int r = r0; r < r1; r += RL) {
        int nr = r1 - r < RL ? r1 - r : RL;
        const uint8_t *w = base + (size_t)r * W->row_bytes;
        for (int x0 = 0; x0 < n; x0 += RNX) {
            int nx = n - x0 < RNX ? n - x0 : RNX;
            float *yt = Y + (size_t)x0 * W->rows + r;
            bool pf = x0 == 0; /* later passes find the tile's rows in L2 */
#define RT(NX) rtile(t, NX, w, W->row_bytes, nr, A, x0, yt, W->rows, pf)
            switch (nx) {
            case 1: RT(1); break;
            case 2: RT(2); break;
            case 3: RT(3); break;
            default: RT(4); break;
            }
#undef RT
        }
    }
}

/* ---- batched path (n >= packed_min_n): packed weight panels, lanes = 16 weight rows ----
 * The row-lane tile spends a transpose-and-add tree on every 16 rows × block pair × X row to
 * turn dpbusd's 8 partial dwords per block into one sum. Here the weights are repacked once
 * per call instead: a chunk of PKC blocks of 16 rows (w+128 or the raw nibble, dword s of
 * block b for the 16 rows in one register) goes into an L1-sized buffer, and every X row's
 * dword s of block b is broadcast against it, so eight chained vpdpbusd (started from
 * −offset·Σa) give one block's exact signed dots for 16 rows with no reduction. The float
 * part is the canonical one: cvt, dw·da, one FMA per block in block order; K chunks after
 * the first continue the same accumulator through Y. */

#define PR 16   /* weight rows per lane group (one zmm of int32) */
#define PKC 32  /* blocks per packed K chunk: 2 groups × 32 blocks × 576 B = 36 KiB */
#define PRG 2   /* lane groups (16 rows each) per micro-tile */
#define PNX 4   /* X rows per micro-tile */

typedef struct {
    int32_t q[PRG][PKC * 8 * PR] __attribute__((aligned(64))); /* [block][dword s][row] */
    float dw[PRG][PKC * PR] __attribute__((aligned(64)));      /* [block][row] */
} qpanel;

/* The 32 weight bytes of block b of one row in natural element order: Q4_0 as unsigned
 * nibbles, Q8_0 still signed. */
static inline __attribute__((always_inline)) __m256i load_block_u8(weft_dtype t, const uint8_t *row,
                                                                   int b) {
    if (t == WEFT_Q8_0) /* the caller adds 128 (a sign flip) on the combined register */
        return _mm256_loadu_si256((const __m256i *)(row + (size_t)b * sizeof(block_q8_0) + 2));
    __m128i y = _mm_loadu_si128((const __m128i *)(row + (size_t)b * sizeof(block_q4_0) + 2));
    const __m128i m4 = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(y, m4), hi = _mm_and_si128(_mm_srli_epi16(y, 4), m4);
    return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

/* Packs blocks [b0, b0+kc) of 16 rows starting at w into q ([kc][8][16] dwords) and dw. */
static inline __attribute__((always_inline)) void pack_group(weft_dtype t, const uint8_t *w,
                                                             size_t row_bytes, int b0, int kc,
                                                             int32_t *q, float *dw) {
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const __m512i ilo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i ihi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int b = 0; b < kc; b++) {
        __m512i z[8], tt[8], u[8];
        uint16_t h[PR] __attribute__((aligned(32)));
        for (int i = 0; i < 8; i++) {
            const uint8_t *ra = w + (size_t)i * row_bytes, *rb = w + (size_t)(i + 8) * row_bytes;
            /* The same rows' next chunk (or, past the row end, the following rows). */
            if (!(b & 1) || t == WEFT_Q8_0) { /* about one per 64-byte line of each row */
                _mm_prefetch((const char *)((uintptr_t)ra + (size_t)(b0 + b + PKC) * bsz),
                             _MM_HINT_T0);
                _mm_prefetch((const char *)((uintptr_t)rb + (size_t)(b0 + b + PKC) * bsz),
                             _MM_HINT_T0);
            }
            z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(load_block_u8(t, ra, b0 + b)),
                                      load_block_u8(t, rb, b0 + b), 1);
            if (t == WEFT_Q8_0) z[i] = _mm512_xor_si512(z[i], _mm512_set1_epi8((char)0x80));
            h[i] = kn_load_u16(ra + (size_t)(b0 + b) * bsz);
            h[i + 8] = kn_load_u16(rb + (size_t)(b0 + b) * bsz);
        }
        /* 16 rows × 8 dwords → 8 registers of one dword index for all 16 rows. z[i] holds
         * rows i (low half) and i+8 (high half). */
        for (int k = 0; k < 8; k += 4) {
            tt[k + 0] = _mm512_unpacklo_epi32(z[k + 0], z[k + 1]);
            tt[k + 1] = _mm512_unpackhi_epi32(z[k + 0], z[k + 1]);
            tt[k + 2] = _mm512_unpacklo_epi32(z[k + 2], z[k + 3]);
            tt[k + 3] = _mm512_unpackhi_epi32(z[k + 2], z[k + 3]);
            u[k + 0] = _mm512_unpacklo_epi64(tt[k + 0], tt[k + 2]); /* dwords 0 | 4 */
            u[k + 1] = _mm512_unpackhi_epi64(tt[k + 0], tt[k + 2]); /* dwords 1 | 5 */
            u[k + 2] = _mm512_unpacklo_epi64(tt[k + 1], tt[k + 3]); /* dwords 2 | 6 */
            u[k + 3] = _mm512_unpackhi_epi64(tt[k + 1], tt[k + 3]); /* dwords 3 | 7 */
        }
        int32_t *qb = q + (size_t)b * 8 * PR;
        for (int s = 0; s < 4; s++) {
            _mm512_store_si512(qb + s * PR, _mm512_permutex2var_epi64(u[s], ilo, u[s + 4]));
            _mm512_store_si512(qb + (s + 4) * PR, _mm512_permutex2var_epi64(u[s], ihi, u[s + 4]));
        }
        _mm512_store_ps(dw + (size_t)b * PR, _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)h)));
    }
}

/* Y[x][16g + lane] (+)= Σ over the packed chunk for ng groups × nx X rows from x0. */
static inline __attribute__((always_inline)) void ptile(int ng, int nx, const qpanel *P, int kc,
                                                        const kn_qact *A, int x0, int b0,
                                                        int off, float *Y, int ldy, bool add) {
    const int nb = A->nb;
    __m512 acc[PRG][PNX];
    for (int g = 0; g < ng; g++)
        for (int x = 0; x < nx; x++)
            acc[g][x] = add ? _mm512_loadu_ps(Y + (size_t)(x0 + x) * ldy + g * PR)
                            : _mm512_setzero_ps();
    for (int b = 0; b < kc; b++) {
        int bb = b0 + b;
        const int8_t *ab[PNX];
        __m512i id[PRG][PNX];
        for (int x = 0; x < nx; x++) {
            ab[x] = A->qs + (size_t)(x0 + x) * A->qstride + (size_t)bb * WEFT_QK;
            __m512i init = _mm512_set1_epi32(-off * A->asum[(size_t)(x0 + x) * nb + bb]);
            for (int g = 0; g < ng; g++)
                id[g][x] = init;
        }
        for (int s = 0; s < 8; s++) {
            __m512i wv[PRG];
            for (int g = 0; g < ng; g++)
                wv[g] = _mm512_load_si512(P->q[g] + ((size_t)b * 8 + s) * PR);
            for (int x = 0; x < nx; x++) {
                int32_t a32;
                memcpy(&a32, ab[x] + 4 * s, sizeof a32);
                __m512i av = _mm512_set1_epi32(a32);
                for (int g = 0; g < ng; g++)
                    id[g][x] = _mm512_dpbusd_epi32(id[g][x], wv[g], av);
            }
        }
        __m512 dwv[PRG];
        for (int g = 0; g < ng; g++)
            dwv[g] = _mm512_load_ps(P->dw[g] + (size_t)b * PR);
        for (int x = 0; x < nx; x++) {
            size_t k = (size_t)(x0 + x) * nb + bb;
            __m512 da = _mm512_set1_ps(A->d[k]);
            for (int g = 0; g < ng; g++)
                acc[g][x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id[g][x]),
                                            _mm512_mul_ps(dwv[g], da), acc[g][x]);
        }
    }
    for (int x = 0; x < nx; x++)
        for (int g = 0; g < ng; g++) {
            _mm512_storeu_ps(Y + (size_t)(x0 + x) * ldy + g * PR, acc[g][x]);
        }
}

/* Rows [r0, r1), r1 - r0 a multiple of PR, for all n X rows, through packed panels. */
static inline __attribute__((always_inline)) void
qpanel_type(weft_dtype t, const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    const int offset = t == WEFT_Q8_0 ? 128 : 8;
    const int nb = A->nb;
    qpanel P;
    for (int r = r0; r < r1; r += PR * PRG) {
        int ng = (r1 - r) / PR < PRG ? (r1 - r) / PR : PRG;
        const uint8_t *w = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
        float *yr = Y + r;
        for (int b0 = 0; b0 < nb; b0 += PKC) {
            int kc = nb - b0 < PKC ? nb - b0 : PKC;
            for (int g = 0; g < ng; g++)
                pack_group(t, w + (size_t)g * PR * W->row_bytes, W->row_bytes, b0, kc, P.q[g],
                           P.dw[g]);
            bool add = b0 > 0;
            for (int x0 = 0; x0 < n; x0 += PNX) {
                int nx = n - x0 < PNX ? n - x0 : PNX;
#define PT(NG, NX) ptile(NG, NX, &P, kc, A, x0, b0, offset, yr, W->rows, add)
                if (ng == PRG) {
                    switch (nx) {
                    case 1: PT(PRG, 1); break;
                    case 2: PT(PRG, 2); break;
                    case 3: PT(PRG, 3); break;
                    default: PT(PRG, 4); break;
                    }
                } else {
                    switch (nx) {
                    case 1: PT(1, 1); break;
                    case 2: PT(1, 2); break;
                    case 3: PT(1, 3); break;
                    default: PT(1, 4); break;
                    }
                }
#undef PT
            }
        }
    }
}

void kn_mm_quant_avx512(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    bool packed = n >= A->packed_min_n;
    int rp = packed ? r0 + (r1 - r0) / PR * PR : r0; /* [r0, rp) packed, rest tiles */
    if (W->type == WEFT_Q8_0) {
        if (rp > r0) qpanel_type(WEFT_Q8_0, W, A, n, Y, r0, rp);
        if (r1 > rp) qrows_type(WEFT_Q8_0, W, A, n, Y, rp, r1);
    } else {
        if (rp > r0) qpanel_type(WEFT_Q4_0, W, A, n, Y, r0, rp);
        if (r1 > rp) qrows_type(WEFT_Q4_0, W, A, n, Y, rp, r1);
    }
}
