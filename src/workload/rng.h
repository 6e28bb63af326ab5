/* rng.h — the workload generator's seeded random numbers. Every random choice a benchmark makes
 * (arrival gaps, lengths, synthetic prompt ids, record sampling) draws from one of these, so a
 * workload is a pure function of its seed. SplitMix64: tiny state, good enough statistics for
 * workload generation, and no global state (each caller owns its generator). */
#ifndef WEFT_WORKLOAD_RNG_H
#define WEFT_WORKLOAD_RNG_H

#include <stdint.h>

typedef struct wl_rng {
    uint64_t state;
} wl_rng;

void wl_rng_seed(wl_rng *r, uint64_t seed);
uint64_t wl_rng_next(wl_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double wl_rng_uniform(wl_rng *r);
/* Uniform integer in [lo, hi] (inclusive); lo <= hi. */
int64_t wl_rng_range(wl_rng *r, int64_t lo, int64_t hi);
/* Exponentially distributed with the given mean (>= 0; 0 gives 0). */
double wl_rng_exponential(wl_rng *r, double mean);

#endif
