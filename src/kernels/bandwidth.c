/* bandwidth.c — the memory read-bandwidth probe that benchmarks compare the decode matvec
 * against: every pool thread streams its own contiguous slice of the buffer with the widest
 * SIMD loads available (and software prefetch), folding the data into a sum so the reads
 * cannot be optimised away. */
#include <time.h>

#include "kernels/kn_internal.h"

typedef struct {
    const uint8_t *buf;
    size_t bytes;
    kn_isa isa;
    uint64_t sink[64]; /* one slot per thread (bounded), summed at the end */
} bw_job;

uint64_t kn_read_sum_scalar(const void *p, size_t n) {
    const uint64_t *w = p;
    uint64_t s = 0;
    size_t i = 0;
    for (; i < n / 8; i++)
        s += w[i];
    for (i *= 8; i < n; i++)
        s += ((const uint8_t *)p)[i];
    return s;
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    size_t per = (j->bytes / (size_t)nth) & ~(size_t)63;
    size_t lo = per * (size_t)ith, hi = ith == nth - 1 ? j->bytes : lo + per;
    uint64_t s;
    switch (j->isa) {
    case KN_ISA_AVX512:
        s = kn_read_sum_avx512(j->buf + lo, hi - lo);
        break;
    case KN_ISA_AVX2:
        s = kn_read_sum_avx2(j->buf + lo, hi - lo);
        break;
    default:
        s = kn_read_sum_scalar(j->buf + lo, hi - lo);
        break;
    }
    j->sink[ith & 63] += s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Windows of this size are timed separately and the best rate wins: on a shared machine a
 * whole-buffer pass rarely runs undisturbed, and the matmul benchmarks it is compared with
 * time single calls of similar size. Consecutive windows are never cache-resident as long as
 * the buffer is several times the L3. */
#define BW_WINDOW_BYTES ((size_t)8 << 20)

double kn_read_bandwidth_gbs(tp_pool *pool, const void *buf, size_t bytes, int reps) {
    bw_job job = {.isa = kn_isa_active()};
    size_t window = bytes < BW_WINDOW_BYTES ? bytes : BW_WINDOW_BYTES;
    double best = 0.0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        for (size_t off = 0; off + window <= bytes; off += window) {
            job.buf = (const uint8_t *)buf + off;
            job.bytes = window;
            double t0 = now_s();
            tp_run(pool, bw_worker, &job);
            double dt = now_s() - t0;
            if (dt > 0 && (double)window / dt > best) best = (double)window / dt;
        }
    }
    /* Publish the sink through a volatile so the reads stay observable. */
    volatile uint64_t keep = 0;
    for (int i = 0; i < 64; i++)
        keep += job.sink[i];
    (void)keep;
    return best / 1e9;
}
