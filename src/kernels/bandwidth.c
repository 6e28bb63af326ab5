/* bandwidth.c — the memory read-bandwidth probe that benchmarks compare the decode matvec
 * against: every pool thread streams its own contiguous slice of one buffer with the widest
 * SIMD loads available, folding the data into a sum so the reads cannot be optimised away. */
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
    for (; i < n / 8; i++) s += w[i];
    for (i *= 8; i < n; i++) s += ((const uint8_t *)p)[i];
    return s;
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    size_t per = (j->bytes / (size_t)nth) & ~(size_t)63;
    size_t lo = per * (size_t)ith, hi = ith == nth - 1 ? j->bytes : lo + per;
    uint64_t s;
    switch (j->isa) {
    case KN_ISA_AVX512: s = kn_read_sum_avx512(j->buf + lo, hi - lo); break;
    case KN_ISA_AVX2: s = kn_read_sum_avx2(j->buf + lo, hi - lo); break;
    default: s = kn_read_sum_scalar(j->buf + lo, hi - lo); break;
    }
    j->sink[ith & 63] += s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double kn_read_bandwidth_gbs(tp_pool *pool, const void *buf, size_t bytes, int reps) {
    bw_job job = {.buf = buf, .bytes = bytes, .isa = kn_isa_active()};
    double best = 0.0;
    for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
        double t0 = now_s();
        tp_run(pool, bw_worker, &job);
        double dt = now_s() - t0;
        if (dt > 0 && (double)bytes / dt > best) best = (double)bytes / dt;
    }
    /* Publish the sink through a volatile so the reads stay observable. */
    volatile uint64_t keep = 0;
    for (int i = 0; i < 64; i++) keep += job.sink[i];
    (void)keep;
    return best / 1e9;
}
