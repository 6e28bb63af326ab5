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

size_t kn_pack_size(const kn_matrix *W) {
    if (!kn_pack_supported(W)) return 0;
    const size_t nb = (size_t)W->cols / WEFT_QK, ng = ((size_t)W->rows + PACK_ROWS - 1) / PACK_ROWS;
    const size_t gbytes = (nb * 8 * PACK_ROWS * 4 + nb * PACK_ROWS * 2 + 63) & ~(size_t)63;
    return gbytes * ng;
}

/* Fills mem (64-byte aligned, kn_pack_size(W) bytes) and describes it in p. */
static void pack_into(kn_packed *p, const kn_matrix *W, uint8_t *d) {
    const size_t nb = (size_t)W->cols / WEFT_QK, ng = ((size_t)W->rows + PACK_ROWS - 1) / PACK_ROWS;
    const size_t qbytes = nb * 8 * PACK_ROWS * 4;
    const size_t gbytes = (qbytes + nb * PACK_ROWS * 2 + 63) & ~(size_t)63;
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
    p->bytes = gbytes * ng;
}

/* One allocation for several matrices, on 2 MB pages when large (advice only): the kernels
 * stream the copies, and 4 KB pages cost batch-1 decode a TLB miss every 4 KB. */
static void *alloc_packed(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *mem = NULL;
    if (posix_memalign(&mem, bytes >= huge ? huge : 64, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= huge) (void)madvise(mem, bytes, MADV_HUGEPAGE);
#endif
    return mem;
}

kn_packed *kn_pack_new(const kn_matrix *W) {
    kn_packed *p = NULL;
    if (kn_pack_many(&W, 1, &p) != 0) return NULL;
    return p;
}

int kn_pack_many(const kn_matrix *const *Ws, int n, kn_packed **out) {
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t b = kn_pack_size(Ws[i]);
        if (b == 0) return -1;
        total += b;
    }
    uint8_t *mem = alloc_packed(total);
    kn_packed *ps = calloc((size_t)n, sizeof *ps);
    if (!mem || !ps) {
        free(mem);
        free(ps);
        return -1;
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        pack_into(&ps[i], Ws[i], mem + off);
        ps[i].owner = i == 0;
        out[i] = &ps[i];
        off += ps[i].bytes;
    }
    return 0;
}

void kn_pack_free(kn_packed *p) {
    if (!p || !p->owner) return;
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
