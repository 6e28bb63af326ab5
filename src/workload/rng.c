/* rng.c — SplitMix64 (see rng.h). */
#include "workload/rng.h"

#include <math.h>

void wl_rng_seed(wl_rng *r, uint64_t seed) {
    /* Mix the seed once so that small neighbouring seeds start far apart. */
    r->state = seed ^ 0x6a09e667f3bcc909ULL;
    (void)wl_rng_next(r);
}

uint64_t wl_rng_next(wl_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double wl_rng_uniform(wl_rng *r) {
    return (double)(wl_rng_next(r) >> 11) * 0x1.0p-53;
}

int64_t wl_rng_range(wl_rng *r, int64_t lo, int64_t hi) {
    uint64_t span = (uint64_t)(hi - lo) + 1;
    if (span == 0) return (int64_t)wl_rng_next(r); /* the whole 64-bit range */
    /* Rejection sampling keeps every value equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t x;
    do
        x = wl_rng_next(r);
    while (x >= limit);
    return lo + (int64_t)(x % span);
}

double wl_rng_exponential(wl_rng *r, double mean) {
    if (mean <= 0) return 0;
    /* 1 - u is in (0, 1], so the log is finite. */
    return -mean * log(1.0 - wl_rng_uniform(r));
}
