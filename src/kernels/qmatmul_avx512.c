/* qmatmul_avx512.c — Q8_0 / Q4_0 weight matmul with AVX-512 VNNI integer dot products
 * (vpdpbusd: unsigned bytes × signed bytes → int32), against activations that kn_matmul has
 * quantized to int8 blocks in the pair-interleaved layout (see kn_quantize_act_row_avx512).
 *
 * vpdpbusd wants one unsigned operand, so weights enter as w+128 (Q8_0, a sign-bit flip) or as
 * the raw nibble 0..15 (Q4_0); the offset times Σa is subtracted per block with dsum. Two
 * blocks fill a 512-bit register with their dwords interleaved, so the per-block scale
 * dw·da for a lane pattern (s0, s1, s0, s1, ...) is a single 64-bit broadcast. Scales for 16
 * blocks at a time come from one gather of the fp16 d fields. A tile is 2 weight rows × up to
 * 4 X rows; every weight row is read from memory once per call. */
#pragma GCC target("avx512vnni")
#include <immintrin.h>

#include "kernels/kn_internal.h"

#define NRB 2  /* weight rows per tile */
#define NXB 4  /* X rows per tile */
#define GRP 16 /* blocks per scale group */

/* 64 bytes of unsigned weights for blocks b, b+1 (has_b1 false: b is the row's last block). */
static inline __attribute__((always_inline)) __m512i load_pair(weft_dtype t, const uint8_t *row,
                                                               int b, bool has_b1) {
    if (t == WEFT_Q8_0) {
        const __m512i idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        const uint8_t *p = row + (size_t)b * sizeof(block_q8_0) + 2;
        __m256i a = _mm256_loadu_si256((const __m256i *)p);
        __m256i c = has_b1 ? _mm256_loadu_si256((const __m256i *)(p + sizeof(block_q8_0)))
                           : _mm256_setzero_si256();
        __m512i v = _mm512_permutex2var_epi32(_mm512_castsi256_si512(a), idx,
                                              _mm512_castsi256_si512(c));
        return _mm512_xor_si512(v, _mm512_set1_epi8((char)0x80));
    } else {
        /* y = [b.qs | b1.qs]; lo nibbles hold elements 0..15, hi nibbles 16..31. */
        const uint8_t *p = row + (size_t)b * sizeof(block_q4_0) + 2;
        __m128i a = _mm_loadu_si128((const __m128i *)p);
        __m128i c = has_b1 ? _mm_loadu_si128((const __m128i *)(p + sizeof(block_q4_0)))
                           : _mm_setzero_si128();
        __m256i y = _mm256_inserti128_si256(_mm256_castsi128_si256(a), c, 1);
        const __m256i m4 = _mm256_set1_epi8(0x0f);
        __m256i lo = _mm256_and_si256(y, m4);                      /* b: d0-3, b1: d4-7 */
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4); /* same, elements 16.. */
        /* b natural = lo d0-3, hi d0-3; b1 natural = lo d4-7, hi d4-7. */
        const __m512i idx4 =
            _mm512_set_epi32(23, 19, 22, 18, 21, 17, 20, 16, 7, 3, 6, 2, 5, 1, 4, 0);
        return _mm512_permutex2var_epi32(_mm512_castsi256_si512(lo), idx4,
                                         _mm512_castsi256_si512(hi));
    }
}

static inline __attribute__((always_inline)) void
qtile(weft_dtype t, int nr, int nx, const uint8_t *w, size_t row_bytes, const kn_qact *A,
      int x0, float *Y, int ldy) {
    const int nb = A->nb;
    const size_t bsz = t == WEFT_Q8_0 ? sizeof(block_q8_0) : sizeof(block_q4_0);
    const float offset = t == WEFT_Q8_0 ? 128.0f : 8.0f;
    const size_t qstride = A->qstride;
    const __m512i gidx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6,
                                                             5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)bsz));
    __m512 acc[NRB][NXB];
    float sbuf[NRB][NXB][GRP] __attribute__((aligned(64)));
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++) acc[i][x] = _mm512_setzero_ps();

    for (int g = 0; g < nb; g += GRP) {
        int ng = nb - g < GRP ? nb - g : GRP;
        __mmask16 m = (__mmask16)((1u << ng) - 1);
        __m512 dw[NRB];
        for (int i = 0; i < nr; i++) {
            const uint8_t *base = w + (size_t)i * row_bytes + (size_t)g * bsz;
            __m512i raw = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), m, gidx, base, 1);
            dw[i] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(raw));
        }
        for (int x = 0; x < nx; x++) {
            const float *da = A->d + (size_t)(x0 + x) * nb + g;
            const float *ds = A->dsum + (size_t)(x0 + x) * nb + g;
            __m512 dav = _mm512_maskz_loadu_ps(m, da), dsv = _mm512_maskz_loadu_ps(m, ds);
            for (int i = 0; i < nr; i++) {
                _mm512_store_ps(sbuf[i][x], _mm512_mul_ps(dw[i], dav));
                /* acc lanes are summed at the end, so the offset term can go in any lane. */
                acc[i][x] = _mm512_fnmadd_ps(_mm512_mul_ps(dw[i], _mm512_set1_ps(offset)), dsv,
                                             acc[i][x]);
            }
        }
        for (int p = 0; p < ng; p += 2) {
            bool has_b1 = p + 1 < ng;
            __m512i wv[NRB];
            for (int i = 0; i < nr; i++)
                wv[i] = load_pair(t, w + (size_t)i * row_bytes, g + p, has_b1);
            for (int x = 0; x < nx; x++) {
                __m512i av = _mm512_loadu_si512(A->qs + (size_t)(x0 + x) * qstride +
                                                (size_t)(g + p) * WEFT_QK);
                for (int i = 0; i < nr; i++) {
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv[i], av);
                    __m512 sc = _mm512_castsi512_ps(_mm512_broadcastq_epi64(
                        _mm_loadl_epi64((const __m128i *)&sbuf[i][x][p])));
                    acc[i][x] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sc, acc[i][x]);
                }
            }
        }
    }
    for (int i = 0; i < nr; i++)
        for (int x = 0; x < nx; x++) Y[(size_t)x * ldy + i] = _mm512_reduce_add_ps(acc[i][x]);
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
            if (nr == 2) {
                switch (nx) {
                case 1: QT(2, 1); break;
                case 2: QT(2, 2); break;
                case 3: QT(2, 3); break;
                default: QT(2, 4); break;
                }
            } else {
                switch (nx) {
                case 1: QT(1, 1); break;
                case 2: QT(1, 2); break;
                case 3: QT(1, 3); break;
                default: QT(1, 4); break;
                }
            }
#undef QT
        }
    }
}

void kn_mm_quant_avx512(const kn_matrix *W, const kn_qact *A, int n, float *Y, int r0, int r1) {
    if (W->type == WEFT_Q8_0) qrows_type(WEFT_Q8_0, W, A, n, Y, r0, r1);
    else qrows_type(WEFT_Q4_0, W, A, n, Y, r0, r1);
}
