/* qpack.c — Q8_0 weights packed once (at model load) into the layout the AVX-512 VNNI kernel
 * multiplies directly, so no call repacks them (qmatmul_avx512vnni.c; docs/kernels.md).
 *
 * Layout: groups of 16 rows (the last one padded with zero rows); per group, nb blocks of
 * 8 × 16 dwords — dword s of block b of the 16 rows in one 64-byte line, each byte w + 128 —
 * then the group's nb × 16 fp16 scales, then padding to 64 bytes. A packed matrix remembers
 * the kn_matrix it was made from (data pointer and shape): a view that changes them (a
 * tensor-parallel row slice, say) no longer matches and the kernel repacks per call as before. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernels/kn_internal.h"

#define PACK_ROWS 16

bool kn_pack_supported(const kn_matrix *W) {
    return W->type == WEFT_Q8_0 && W->rows > 0 && W->cols > 0 && W->cols % WEFT_QK == 0 &&
           kn_isa_active() == KN_ISA_AVX512 && kn_cpu_has_avx512_vnni();
}

kn_packed *kn_pack_new(const kn_matrix *W) {
    if (!kn_pack_supported(W)) return NULL;
    const size_t nb = (size_t)W->cols / WEFT_QK, ng = ((size_t)W->rows + PACK_ROWS - 1) / PACK_ROWS;
    const size_t qbytes = nb * 8 * PACK_ROWS * 4;
    const size_t gbytes = (qbytes + nb * PACK_ROWS * 2 + 63) & ~(size_t)63;
    kn_packed *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    const size_t bytes = gbytes * ng;
    /* large matrices on 2 MB pages (advice only): the kernels stream them */
    const size_t huge = (size_t)2 << 20;
    void *mem = NULL;
    if (posix_memalign(&mem, bytes >= huge ? huge : 64, bytes) != 0) {
        free(p);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    if (bytes >= huge) (void)madvise(mem, bytes, MADV_HUGEPAGE);
#endif
    uint8_t *d = mem;
    for (size_t g = 0; g < ng; g++) {
        uint8_t *q = d + g * gbytes;
        uint16_t *sc = (uint16_t *)(q + qbytes);
        for (size_t b = 0; b < nb; b++)
            for (int i = 0; i < PACK_ROWS; i++) {
                const size_t r = g * PACK_ROWS + (size_t)i;
                uint8_t *lane = q + b * 8 * PACK_ROWS * 4 + (size_t)i * 4;
                if (r >= (size_t)W->rows) { /* padding: weight 0 (128 after the offset), scale 0 */
                    for (int s = 0; s < 8; s++) memset(lane + (size_t)s * PACK_ROWS * 4, 0x80, 4);
                    sc[b * PACK_ROWS + (size_t)i] = 0;
                    continue;
                }
                const block_q8_0 *blk =
                    (const block_q8_0 *)((const uint8_t *)W->data + r * W->row_bytes) + b;
                for (int s = 0; s < 8; s++)
                    for (int e = 0; e < 4; e++)
                        lane[(size_t)s * PACK_ROWS * 4 + (size_t)e] =
                            (uint8_t)((uint8_t)blk->qs[4 * s + e] ^ 0x80);
                sc[b * PACK_ROWS + (size_t)i] = kn_load_u16(&blk->d);
            }
        memset(q + qbytes + nb * PACK_ROWS * 2, 0, gbytes - qbytes - nb * PACK_ROWS * 2);
    }
    p->data = d;
    p->src = W->data;
    p->type = W->type;
    p->rows = W->rows;
    p->cols = W->cols;
    p->row_bytes = W->row_bytes;
    p->group_bytes = gbytes;
    p->bytes = bytes;
    return p;
}

void kn_pack_free(kn_packed *p) {
    if (!p) return;
    free(p->data);
    free(p);
}

size_t kn_pack_bytes(const kn_packed *p) {
    return p ? p->bytes : 0;
}

bool kn_pack_matches(const kn_packed *p, const kn_matrix *W) {
    return p && p->src == W->data && p->type == W->type && p->rows == W->rows &&
           p->cols == W->cols && p->row_bytes == W->row_bytes;
}
