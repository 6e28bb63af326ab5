/* qmatmul_avx512vnni.c — Q8_0 / Q4_0 weight matmul with AVX-512 VNNI integer dot products
 * (vpdpbusd: unsigned bytes × signed bytes → int32), against activations that kn_matmul has
 * quantized to int8 blocks in the pair-interleaved layout (see kn_quantize_act_row_avx512).
 *
 * vpdpbusd wants one unsigned operand, so weights enter as w+128 (Q8_0, a sign-bit flip) or as
 * the raw nibble 0..15 (Q4_0); the offset times Σa is subtracted per block with dsum. Two
 * blocks fill a 512-bit register with their dwords interleaved, so the per-block scale
 * dw·da for a lane pattern (s0, s1, s0, s1, ...) is a single 64-bit broadcast. Scales for 16
 * blocks at a time are picked out of 128-byte windows with word permutes (load_scales). A tile is 2
 * weight rows × up to 4 X rows; every weight row is read from memory once per call. */
#include <immintrin.h>
#include <string.h>

#include "kernels/kn_internal.h"

#define NRB 2  /* weight rows per tile (4 measured slower) */
#define NXB 4  /* X rows per tile */
#define GRP 16 /* blocks per scale group */
/* Software prefetch distance ahead of the linear read position. Measured on Zen 5 with
 * weights streamed from DRAM, one thread: 1 KiB reached 50% of read bandwidth for Q8_0,
 * 4 KiB 80%, 8 KiB ~100% (then the kernel is compute-bound). The hardware prefetchers alone
 * do not keep up: each 2-row tile is only a few KiB and they stop at every 4 KiB page. */
#define QPF_BYTES 8192

/* 64 bytes of unsigned weights for blocks b, b+1 (has_b1 false: b is the row's last block). */
static inline __attribute__((always_inline)) __m512i load_pair(weft_dtype t, const uint8_t *row,
                                                               int b, bool has_b1) {
    if (t == WEFT_Q8_0) {
        const __m512i idx =
            _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        const uint8_t *p = row + (size_t)b * sizeof(block_q8_0) + 2;
        __m256i a = _mm256_loadu_si256((const __m256i *)p);
        __m256i c = has_b1 ? _mm256_loadu_si256((const __m256i *)(p + sizeof(block_q8_0)))
                           : _mm256_setzero_si256();
        __m512i v =
            _mm512_permutex2var_epi32(_mm512_castsi256_si512(a), idx, _mm512_castsi256_si512(c));
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    } else {
        /* y = [b.qs | b1.qs]; lo nibbles hold elements 0..15, hi nibbles 16..31. */
        const uint8_t *p = row + (size_t)b * sizeof(block_q4_0) + 2;
        __m128i a = _mm_loadu_si128((const __m128i *)p);
        __m128i c = has_b1 ? _mm_loadu_si128((const __m128i *)(p + sizeof(block_q4_0)))
                           : _mm_setzero_si128();
        __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(a), c, 1);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256i lo = _mm256_and_si256(y, m4);                       /* b: d0-3, b1: d4-7 */
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4); /* same, elements 16.. */
        /* b natural = lo d0-3, hi d0-3; b1 natural = lo d4-7, hi d4-7. */
        const __m512i idx4 =
            _mm512_set_epi32(23, 19, 22, 18, 21, 17, 20, 16, 7, 3, 6, 2, 5, 1, 4, 0);
        return _mm512_permutex2var_epi32(_mm512_castsi256_si512(lo), idx4,
                                         _mm512_castsi256_si512(hi));
    }
}

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

static inline __attribute__((always_inline)) void qtile(weft_dtype t, int nr, int nx,
                                                        const uint8_t *w, size_t row_bytes,
                                                        const kn_qact *A, int x0, float *Y,
                                                        int ldy) {
    const int nb = A->nb;
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const float offset = t == WEFT_Q8_0 ? 128.0f : 8.0f;
    const size_t qstride = A->qstride;
    __m512 acc[NRB][NXB];
    float sbuf[NRB][NXB][GRP] __attribute__((aligned(64)));
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            acc[i][x] = _mm512_setzero_ps();

    for (int g = 0; g < nb; g += GRP) {
        int ng = nb - g < GRP ? nb - g : GRP;
        __mmask16 m = (__mmask16)((1u << ng) - 1);
        __m512 dw[NRB];
        for (int i = 0; i < nr; i++) {
            const uint8_t *base = w + (size_t)i * row_bytes + (size_t)g * bsz;
            dw[i] = load_scales(t, base, ng);
        }
        for (int x = 0; x < nx; x++) {
            const float *da = A->d + (size_t)(x0 + x) * nb + g;
            const float *ds = A->dsum + (size_t)(x0 + x) * nb + g;
            __m512 dav = _mm512_maskz_loadu_ps(m, da), dsv = _mm512_maskz_loadu_ps(m, ds);
            for (int i = 0; i < nr; i++) {
                _mm512_store_ps(sbuf[i][x], _mm512_mul_ps(dw[i], dav));
                /* acc lanes are summed at the end, so the offset term can go in any lane. */
                acc[i][x] =
                    _mm512_fnmadd_ps(_mm512_mul_ps(dw[i], _mm512_set1_ps(offset)), dsv, acc[i][x]);
            }
        }
        for (int p = 0; p < ng; p += 2) {
            bool has_b1 = p + 1 < ng;
            __m512i wv[NRB];
            /* The tile's rows are (normally) adjacent, so it is one region that we consume
             * front to back at nr*2*bsz bytes per step: prefetch QPF_BYTES ahead of that
             * linear position, which runs on into the next tile's rows without a gap. */
            const char *pf = (const char *)w + (size_t)(g + p) * bsz * (size_t)nr + QPF_BYTES;
            for (size_t k = 0; k < (size_t)nr * 2 * bsz; k += 64)
                _mm_prefetch(pf + k, _MM_HINT_T0);
            for (int i = 0; i < nr; i++)
                wv[i] = load_pair(t, w + (size_t)i * row_bytes, g + p, has_b1);
            for (int x = 0; x < nx; x++) {
                __m512i av = _mm512_loadu_si512(A->qs + (size_t)(x0 + x) * qstride +
                                                (size_t)(g + p) * WEFT_QK);
                for (int i = 0; i < nr; i++) {
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], av);
                    __m512 sc = _mm512_castsi512_ps(
                        _mm512_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)&sbuf[i][x][p])));
                    acc[i][x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i][x]);
                }
            }
        }
    }
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++)
            Y[(size_t)x * ldy + i] = _mm512_reduce_add_ps(acc[i][x]);
}

static inline __attribute__((always_inline)) void
qrows_type(weft_dtype t, const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    const uint8_t *base = W->data;
    for (int r = r0; r < r1; r += NRB) {
        int nr = r1 - r < NRB ? r1 - r : NRB;
        const uint8_t *w = base + (size_t)r * W->row_bytes;
        for (int x0 = 0; x0 < n; x0 += NXB) {
            int nx = n - x0 < NXB ? n - x0 : NXB;
            float *yt = Y + (size_t)x0 * W->rows + r;
#define QT(NR, NX) qtile(t, NR, NX, w, W->row_bytes, A, x0, yt, W->rows)
            if (nr == NRB) {
                switch (nx) {
                case 1:
                    QT(NRB, 1);
                    break;
                case 2:
                    QT(NRB, 2);
                    break;
                case 3:
                    QT(NRB, 3);
                    break;
                default:
                    QT(NRB, 4);
                    break;
                }
            } else {
                for (int i = 0; i < nr; i++) {
                    const uint8_t *w1 = w + (size_t)i * W->row_bytes;
                    float *y1 = yt + i;
#define QT1(NX) qtile(t, 1, NX, w1, W->row_bytes, A, x0, y1, W->rows)
                    switch (nx) {
                    case 1:
                        QT1(1);
                        break;
                    case 2:
                        QT1(2);
                        break;
                    case 3:
                        QT1(3);
                        break;
                    default:
                        QT1(4);
                        break;
                    }
#undef QT1
                }
            }
#undef QT
        }
    }
}

/* ---- batched path (n >= PMIN_N): packed weight panels, lanes = 16 weight rows ----
 * The tile kernel above spends a convert and an FMA on every vpdpbusd (one dpbusd covers two
 * blocks of one (row, X row) pair, and every block needs its own scale), so for larger n it is
 * bound by float work, not by the integer dots. Here a register lane is a weight row instead:
 * a chunk of PKC blocks of 16 rows is repacked once per call (w+128 or the raw nibble, dword s
 * of block b for the 16 rows in one register) into an L1-sized buffer, and every X row's
 * dword s of block b is broadcast against it. Eight vpdpbusd give one block's int32 dots for
 * 16 rows; the per-block scaling (cvt, ×da − offset·dsum, ×dw per row lane) is then three
 * float ops per 16 rows instead of per row. Same numerics as the tile kernel: an exact int32
 * dot per 32-block, scaled in F32 by dw·da with the offset term dw·offset·dsum. */

#define PR 16   /* weight rows per lane group (one zmm of int32) */
#define PKC 32  /* blocks per packed K chunk: 2 groups × 32 blocks × 576 B = 36 KiB */
#define PRG 2   /* lane groups (16 rows each) per micro-tile */
#define PNX 4   /* X rows per micro-tile */
/* Smallest n worth the packed path (kn_qact.packed_min_n may ask for more, never less): packing
 * costs about as much as 8 X rows of tile-kernel work per weight byte (bench_kernels 2 Q8_0:
 * n = 4 186 vs 344 GFLOP/s, n = 8 330 vs 354, n = 16 526 vs 356). */
#define PMIN_N 12

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
                                                        float offset, float *Y, int ldy,
                                                        bool add) {
    const int nb = A->nb;
    const __m512 off = _mm512_set1_ps(offset);
    __m512 acc[PRG][PNX];
    for (int g = 0; g < ng; g++)
        for (int x = 0; x < nx; x++)
            acc[g][x] = _mm512_setzero_ps();
    for (int b = 0; b < kc; b++) {
        int bb = b0 + b;
        const int8_t *ab[PNX];
        /* Pair-interleaved activations: dword s of block bb sits at 4·(2s + (bb & 1)) in the
         * 64 bytes of its block pair. */
        for (int x = 0; x < nx; x++)
            ab[x] = A->qs + (size_t)(x0 + x) * A->qstride + (size_t)(bb & ~1) * WEFT_QK +
                    4 * (bb & 1);
        __m512i id[PRG][PNX];
        for (int g = 0; g < ng; g++)
            for (int x = 0; x < nx; x++)
                id[g][x] = _mm512_setzero_si512();
        for (int s = 0; s < 8; s++) {
            __m512i wv[PRG];
            for (int g = 0; g < ng; g++)
                wv[g] = _mm512_load_si512(P->q[g] + ((size_t)b * 8 + s) * PR);
            for (int x = 0; x < nx; x++) {
                int32_t a32;
                memcpy(&a32, ab[x] + 8 * s, sizeof a32);
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
            __m512 c = _mm512_mul_ps(_mm512_set1_ps(A->dsum[k]), off);
            for (int g = 0; g < ng; g++) {
                __m512 v = _mm512_fmsub_ps(_mm512_cvtepi32_ps(id[g][x]), da, c);
                acc[g][x] = _mm512_fmadd_ps(v, dwv[g], acc[g][x]);
            }
        }
    }
    for (int x = 0; x < nx; x++)
        for (int g = 0; g < ng; g++) {
            float *y = Y + (size_t)(x0 + x) * ldy + g * PR;
            __m512 v = add ? _mm512_add_ps(acc[g][x], _mm512_loadu_ps(y)) : acc[g][x];
            _mm512_storeu_ps(y, v);
        }
}

/* Rows [r0, r1), r1 - r0 a multiple of PR, for all n X rows, through packed panels. */
static inline __attribute__((always_inline)) void
qpanel_type(weft_dtype t, const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    const float offset = t == WEFT_Q8_0 ? 128.0f : 8.0f;
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
    bool packed = n >= PMIN_N && n >= A->packed_min_n;
    int rp = packed ? r0 + (r1 - r0) / PR * PR : r0; /* [r0, rp) packed, rest tiles */
    if (W->type == WEFT_Q8_0) {
        if (rp > r0) qpanel_type(WEFT_Q8_0, W, A, n, Y, r0, rp);
        if (r1 > rp) qrows_type(WEFT_Q8_0, W, A, n, Y, rp, r1);
    } else {
        if (rp > r0) qpanel_type(WEFT_Q4_0, W, A, n, Y, r0, rp);
        if (r1 > rp) qrows_type(WEFT_Q4_0, W, A, n, Y, rp, r1);
    }
}
