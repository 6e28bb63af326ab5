/* bench_gittins.c — microbenchmark of rtlm's Gittins rank (src/sched/sched_gittins.c): the time
 * to build the index table (once per policy object) and the time of one index lookup, over a
 * spread of predictions (p50 20..219 tokens, sigma 0.1..1.6), attained lengths and a 256-token
 * cap, as the scheduler calls it for each waiting and running request every step.
 * Usage: ./build/bench_gittins [CALLS] (default 1000000) */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "weft/sched.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    if (n <= 0) {
        fprintf(stderr, "usage: bench_gittins [CALLS > 0]\n");
        return 2;
    }
    double t0 = now_s();
    sched_gittins *g = sched_gittins_new();
    double t1 = now_s();
    if (!g) {
        fprintf(stderr, "bench_gittins: out of memory\n");
        return 1;
    }
    double acc = 0;
    for (long i = 0; i < n; i++)
        acc += sched_gittins_index(g, 20 + (double)(i % 200), 0.1 + 0.01 * (double)(i % 150), 256,
                                   (int)(i % 180));
    double t2 = now_s();
    sched_gittins_free(g);
    printf("table build %.2f ms; index %.0f ns per call over %ld calls (checksum %.6g)\n",
           (t1 - t0) * 1e3, (t2 - t1) / (double)n * 1e9, n, acc);
    return 0;
}
