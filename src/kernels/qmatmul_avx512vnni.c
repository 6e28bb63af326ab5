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
 *    block's sums for 16 rows directly; see below.
 *  - packed at load (W->packed, Q8_0; qpack.c): the same micro-tile over the copy made once,
 *    for n >= 2 and for n = 1 on rows of more than 64 blocks. */
#include <immintrin.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kn_internal.h"

#define RL 16  /* weight rows per row-lane tile (one lane each) */
#define RNX 4  /* X rows per row-lane tile pass */

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

/* Row-lane reduction. A merge of two registers halves the partial sums per output: lanes in
 * mask m come from b's pair sums, the others from a's, with one shuffle (swap) and blends
 * (ALU ports, not the shuffle port): out = blend(a, b) + swap(blend(b, a)). */
#define MERGE(a, b, m, swap)                                                                      \
    _mm512_add_epi32(_mm512_mask_blend_epi32((m), (a), (b)),                                      \
                     swap(_mm512_mask_blend_epi32((m), (b), (a))))
#define SWAP32(v) _mm512_shuffle_epi32((v), _MM_PERM_CDAB)
#define SWAP64(v) _mm512_shuffle_epi32((v), _MM_PERM_BADC)
#define SWAP128(v) _mm512_shuffle_i64x2((v), (v), 0xb1) /* 128-bit lanes 1 0 3 2 */
#define SWAP256(v) _mm512_shuffle_i64x2((v), (v), 0x4e) /* 128-bit lanes 2 3 0 1 */

/* Step 1: the dpbusd results of 4 rows (each 16 dwords: 8 partial sums per block of the pair)
 * → one register whose 128-bit lane k holds, in dword j, row j's sum of lane k's 4 dwords. */
static inline __attribute__((always_inline)) __m512i reduce4(__m512i d0, __m512i d1, __m512i d2,
                                                             __m512i d3) {
    __m512i e01 = MERGE(d0, d1, 0xaaaa, SWAP32); /* dword 2j: d0, 2j+1: d1 (pair sums) */
    __m512i e23 = MERGE(d2, d3, 0xaaaa, SWAP32);
    return MERGE(e01, e23, 0xcccc, SWAP64);
}

/* Step 2: two reduce4 results (rows 0-3, 4-7) → 128-bit lanes [b 0-3 | b 4-7 | b+1 0-3 |
 * b+1 4-7] for Q8_0 (block b is lanes 0+1, see load_pair), [b 0-3 | b+1 0-3 | b 4-7 |
 * b+1 4-7] for Q4_0 (block b is lanes 0+2). */
static inline __attribute__((always_inline)) __m512i reduce8(weft_dtype t, __m512i f0, __m512i f1) {
    if (t == WEFT_Q8_0) return MERGE(f0, f1, 0xf0f0, SWAP128);
    return MERGE(f0, f1, 0xff00, SWAP256);
}

/* Y[x][i] for x < nx, i < nr (<= 16 rows from w, lanes = rows) over all blocks. */
static inline __attribute__((always_inline)) void rtile(weft_dtype t, int nx, const uint8_t *w,
                                                        size_t row_bytes, int nr, const kn_qact *A,
                                                        int x0, float *Y, int ldy, bool pf) {
    const int nb = A->nb;
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const int off = t == WEFT_Q8_0 ? 128 : 8;
    const uint8_t *rp[RL];
    int32_t ridx[RL] __attribute__((aligned(64)));
    for (int i = 0; i < RL; i++) {
        ridx[i] = (int32_t)((size_t)(i < nr ? i : nr - 1) * row_bytes);
        rp[i] = w + ridx[i];
    }
    const __m512i gidx = _mm512_load_si512(ridx);
    __m512 acc[RNX];
    for (int x = 0; x < nx; x++)
        acc[x] = _mm512_setzero_ps();

    for (int b = 0; b < nb; b += 2) {
        const bool has_b1 = b + 1 < nb;
        if (pf) {
            /* The next tile's 16 rows (one contiguous region) into L2, linearly, at the pace
             * this tile is consumed. */
            const char *nt = (const char *)w + (size_t)RL * row_bytes;
            size_t lo = (size_t)b * RL * bsz, hi = (size_t)(b + 2) * RL * bsz;
            if (b + 2 >= nb) hi = (size_t)RL * row_bytes;
            for (size_t k = lo & ~(size_t)63; k < hi; k += 64)
                _mm_prefetch(nt + k, _MM_HINT_T1);
        }
        /* The 16 rows' fp16 scales of blocks b, b+1: one gather each (the dword at the block
         * start; its low half is d). */
        __m512 dw0 = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(
            _mm512_i32gather_epi32(gidx, (const void *)(w + (size_t)b * bsz), 1)));
        __m512 dw1 = has_b1 ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_i32gather_epi32(
                                  gidx, (const void *)(w + (size_t)(b + 1) * bsz), 1)))
                            : _mm512_setzero_ps();
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
                if (half == 0) {
                    h[x] = r8;
                    continue;
                }
                /* [b rows 0-15] and [b+1 rows 0-15], then the exact signed dots. */
                __m512i s0, s1; /* from reduce8's arrangement (immediates must be literals) */
                if (t == WEFT_Q8_0) {
                    s0 = _mm512_shuffle_i64x2(h[x], r8, 0x44);
                    s1 = _mm512_shuffle_i64x2(h[x], r8, 0xee);
                } else {
                    s0 = _mm512_shuffle_i64x2(h[x], r8, 0x88);
                    s1 = _mm512_shuffle_i64x2(h[x], r8, 0xdd);
                }
                size_t k = (size_t)(x0 + x) * nb + b;
                s0 = _mm512_sub_epi32(s0, _mm512_set1_epi32(off * A->asum[k]));
                acc[x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s0),
                                         _mm512_mul_ps(dw0, _mm512_set1_ps(A->d[k])), acc[x]);
                if (has_b1) {
                    s1 = _mm512_sub_epi32(s1, _mm512_set1_epi32(off * A->asum[k + 1]));
                    acc[x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s1),
                                             _mm512_mul_ps(dw1, _mm512_set1_ps(A->d[k + 1])),
                                             acc[x]);
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
/* The micro-tile for NG lane groups (PRG or 1) and NX X rows (1..PNX), with constant shapes so
 * the compiler unrolls each; the caller defines PT(NG, NX) as the tile call of its kernel. */
#define PT_DISPATCH(NG, NX)                                                                        \
    do {                                                                                           \
        if ((NG) == PRG) {                                                                         \
            switch (NX) {                                                                          \
            case 1: PT(PRG, 1); break;                                                             \
            case 2: PT(PRG, 2); break;                                                             \
            case 3: PT(PRG, 3); break;                                                             \
            default: PT(PRG, 4); break;                                                            \
            }                                                                                      \
        } else {                                                                                   \
            switch (NX) {                                                                          \
            case 1: PT(1, 1); break;                                                               \
            case 2: PT(1, 2); break;                                                               \
            case 3: PT(1, 3); break;                                                               \
            default: PT(1, 4); break;                                                              \
            }                                                                                      \
        }                                                                                          \
    } while (0)

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
                PT_DISPATCH(ng, nx);
#undef PT
            }
        }
    }
}

/* What a pass over a packed chunk prefetches: bytes [off, off + kc·step) of nreg regions of
 * la bytes each, stride bytes apart (the next K chunk of each lane group, or the next groups'
 * first chunk). Prefetches never fault, so running past the last region's end is harmless. */
typedef struct {
    const uint8_t *base;
    size_t la, stride, off, step;
} kn_pfr;

/* ---- weights packed at load (qpack.c): Q8_0, every n ----
 * The same kind of micro-tile as ptile, reading a group's dwords and fp16 scales straight from
 * the packed copy: no per-call repacking, and no reduction tree at small n either, so batch 1
 * runs it too. QRG lane groups × QNX X rows (QRG <= 3, QNX <= 8; 2 × 4 by default: 3 × 4,
 * 2 × 6 were no faster and 2 × 8, 3 × 6 spill, docs/kernels.md — per block and output the
 * 8 vpdpbusd share the two multiply pipes with the canonical order's mul and FMA, which
 * bounds it, not the chains' latency). gq[g]: group g's dwords from block b0; gs[g]: its
 * scales from block b0. lm: the lanes of the last group that are real rows. */
#ifndef QRG
#define QRG 2
#endif
#ifndef QNX
#define QNX 4
#endif
static inline __attribute__((always_inline)) void ptile_pre(int ng, int nx, const uint8_t *const *gq,
                                                            const uint16_t *const *gs, int kc,
                                                            const kn_qact *A, int x0, int b0,
                                                            float *Y, int ldy, bool add,
                                                            __mmask16 lm, const kn_pfr *pf) {
    const int nb = A->nb;
    __m512 acc[QRG][QNX];
    __mmask16 mk[QRG];
    for (int g = 0; g < ng; g++) mk[g] = g == ng - 1 ? lm : 0xffff;
    for (int g = 0; g < ng; g++)
        for (int x = 0; x < nx; x++)
            acc[g][x] = add ? _mm512_maskz_loadu_ps(mk[g], Y + (size_t)(x0 + x) * ldy + g * PR)
                            : _mm512_setzero_ps();
    for (int b = 0; b < kc; b++) {
        int bb = b0 + b;
        if (pf) /* this pass's share of the next chunk: pf->step bytes a block */
            for (size_t o = pf->off + (size_t)b * pf->step, e = o + pf->step; o < e; o += 64)
                _mm_prefetch((const char *)(pf->base + o / pf->la * pf->stride + o % pf->la),
                             _MM_HINT_T1);
        const int8_t *ab[QNX];
        __m512i id[QRG][QNX];
        for (int x = 0; x < nx; x++) {
            ab[x] = A->qs + (size_t)(x0 + x) * A->qstride + (size_t)bb * WEFT_QK;
            __m512i init = _mm512_set1_epi32(-128 * A->asum[(size_t)(x0 + x) * nb + bb]);
            for (int g = 0; g < ng; g++) id[g][x] = init;
        }
        for (int s = 0; s < 8; s++) {
            __m512i wv[QRG];
            for (int g = 0; g < ng; g++)
                wv[g] = _mm512_load_si512((const void *)(gq[g] + ((size_t)b * 8 + s) * 64));
            for (int x = 0; x < nx; x++) {
                int32_t a32;
                memcpy(&a32, ab[x] + 4 * s, sizeof a32);
                __m512i av = _mm512_set1_epi32(a32);
                for (int g = 0; g < ng; g++) id[g][x] = _mm512_dpbusd_epi32(id[g][x], wv[g], av);
            }
        }
        __m512 dwv[QRG];
        for (int g = 0; g < ng; g++)
            dwv[g] = _mm512_cvtph_ps(_mm256_load_si256((const __m256i *)(gs[g] + (size_t)b * PR)));
        for (int x = 0; x < nx; x++) {
            __m512 da = _mm512_set1_ps(A->d[(size_t)(x0 + x) * nb + bb]);
            for (int g = 0; g < ng; g++)
                acc[g][x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(id[g][x]),
                                            _mm512_mul_ps(dwv[g], da), acc[g][x]);
        }
    }
    for (int x = 0; x < nx; x++)
        for (int g = 0; g < ng; g++)
            _mm512_mask_storeu_ps(Y + (size_t)(x0 + x) * ldy + g * PR, mk[g], acc[g][x]);
}

/* ptile_pre with constant shapes (ng 1..QRG, nx 1..QNX; QRG <= 3, QNX <= 8), so the
 * compiler unrolls each; the caller defines PQ(NG, NX). */
#define PQ_NX(NG, NX)                                                                              \
    do {                                                                                           \
        switch (NX) {                                                                              \
        case 1: PQ(NG, 1); break;                                                                  \
        case 2: if (QNX >= 2) PQ(NG, 2 <= QNX ? 2 : 1); break;                                    \
        case 3: if (QNX >= 3) PQ(NG, 3 <= QNX ? 3 : 1); break;                                    \
        case 4: if (QNX >= 4) PQ(NG, 4 <= QNX ? 4 : 1); break;                                    \
        case 5: if (QNX >= 5) PQ(NG, 5 <= QNX ? 5 : 1); break;                                    \
        case 6: if (QNX >= 6) PQ(NG, 6 <= QNX ? 6 : 1); break;                                    \
        case 7: if (QNX >= 7) PQ(NG, 7 <= QNX ? 7 : 1); break;                                    \
        default: if (QNX >= 8) PQ(NG, 8 <= QNX ? 8 : 1); break;                                   \
        }                                                                                          \
    } while (0)
#define PQ_DISPATCH(NG, NX)                                                                        \
    do {                                                                                           \
        if ((NG) >= 3 && QRG >= 3) PQ_NX(3 <= QRG ? 3 : 1, NX);                                    \
        else if ((NG) == 2 && QRG >= 2) PQ_NX(2 <= QRG ? 2 : 1, NX);                               \
        else PQ_NX(1, NX);                                                                         \
    } while (0)

static int pf_mode(void) {
    const char *e = getenv("WEFT_Q8_PF");
    if (!e) return 2;
    return strcmp(e, "off") == 0 ? 0 : strcmp(e, "first") == 0 ? 1 : 2;
}

void kn_mm_q8_packed_avx512(const kn_matrix *W, const kn_packed *P, const kn_qact *A, int n,
                            float *Y, int r0, int r1) {
    const int nb = A->nb;
    const size_t qbytes = (size_t)nb * 8 * PR * 4, gbytes = P->group_bytes;
    const int mode = pf_mode();
    const int passes = (n + QNX - 1) / QNX;
    for (int r = r0; r < r1; r += PR * QRG) {
        const int left = r1 - r;
        const int ng = (left + PR - 1) / PR < QRG ? (left + PR - 1) / PR : QRG;
        const int last = left - (ng - 1) * PR;
        const __mmask16 lm = (__mmask16)(last >= PR ? 0xffffu : (1u << last) - 1);
        const uint8_t *g0 = P->data + (size_t)(r / PR) * gbytes;
        float *yr = Y + r;
        for (int b0 = 0; b0 < nb; b0 += PKC) {
            const int kc = nb - b0 < PKC ? nb - b0 : PKC;
            const uint8_t *gq[QRG];
            const uint16_t *gs[QRG];
            for (int g = 0; g < ng; g++) {
                const uint8_t *gb = g0 + (size_t)g * gbytes;
                gq[g] = gb + (size_t)b0 * 8 * PR * 4;
                gs[g] = (const uint16_t *)(gb + qbytes) + (size_t)b0 * PR;
            }
            bool add = b0 > 0;
            /* The next chunk this thread reads (the same groups' next K chunk, or the next
             * groups of its rows) is prefetched into L2 while this one is multiplied, spread
             * evenly over all passes of this chunk (mode 2; mode 1: during the first pass
             * only, for n >= 2 and rows of <= 64 blocks, the earlier behaviour). Issuing a
             * whole chunk's prefetches in one pass stalled it on the miss buffers. */
            kn_pfr pfr = {.stride = gbytes};
            int nreg = 0;
            if (mode == 2 ? n >= 2 : mode == 1 && n >= 2 && nb <= 64) {
                if (b0 + kc < nb) {
                    const int kn = nb - (b0 + kc) < PKC ? nb - (b0 + kc) : PKC;
                    pfr.base = gq[0] + (size_t)kc * 8 * PR * 4;
                    pfr.la = (size_t)kn * 8 * PR * 4;
                    nreg = ng;
                } else if (r + PR * QRG < r1) {
                    const int nl = (r1 - (r + PR * QRG) + PR - 1) / PR;
                    pfr.base = g0 + (size_t)QRG * gbytes;
                    pfr.la = nb <= PKC ? gbytes : (size_t)PKC * 8 * PR * 4;
                    nreg = nl < QRG ? nl : QRG;
                }
            }
            if (nreg > 0) {
                const size_t want = (size_t)nreg * pfr.la;
                pfr.step = mode == 1 ? (want / (size_t)kc + 63) & ~(size_t)63
                                     : (want / ((size_t)kc * (size_t)passes) + 64) & ~(size_t)63;
            }
            for (int x0 = 0; x0 < n; x0 += QNX) {
                int nx = n - x0 < QNX ? n - x0 : QNX;
                const kn_pfr *pfx = NULL;
                if (nreg > 0 && (mode == 2 || x0 == 0)) {
                    pfr.off = (size_t)(x0 / QNX) * (size_t)kc * pfr.step;
                    pfx = &pfr;
                }
#define PQ(NG, NX) ptile_pre(NG, NX, gq, gs, kc, A, x0, b0, yr, W->rows, add, lm, pfx)
                PQ_DISPATCH(ng, nx);
#undef PQ
            }
        }
    }
}

void kn_mm_quant_avx512(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    /* Packed-at-load weights for n >= 2, and for n = 1 on long rows; batch 1 on rows of <= 64
     * blocks (tiny110m's 768 and 2048 columns) keeps the row-lane tile on the original rows,
     * which bench_kernels measured as fast or faster there (docs/kernels.md), so the
     * sequential baseline runs the code it ran before packing existed. */
    if (W->packed && (n >= 2 || A->nb > 64) && r0 % PR == 0 && A->packed_min_n != INT_MAX &&
        kn_pack_matches(W->packed, W)) {
        kn_mm_q8_packed_avx512(W, W->packed, A, n, Y, r0, r1);
        return;
    }
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
