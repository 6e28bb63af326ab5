/* tp_bandwidth.c — the memory read bandwidth one core and both cores get (bench/tp.sh): batch-1
 * decode streams the weights once per token, so the 2-core / 1-core bandwidth ratio bounds what
 * two tensor-parallel ranks (each streaming half) can gain over one rank with one thread.
 * usage: tp_bandwidth [MiB]   (buffer size, default 512). Prints one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft/kernels.h"

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 512;
    if (mib < 64 || mib > 65536) {
        fprintf(stderr, "tp_bandwidth: buffer size %zu MiB out of range [64, 65536]\n", mib);
        return 2;
    }
    size_t bytes = mib << 20;
    void *buf = NULL;
    if (posix_memalign(&buf, 64, bytes) != 0) {
        fprintf(stderr, "tp_bandwidth: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    memset(buf, 1, bytes);
    double gbs[2];
    for (int n = 1; n <= 2; n++) {
        tp_pool *pool = tp_new(n);
        if (!pool) {
            fprintf(stderr, "tp_bandwidth: cannot start %d threads\n", n);
            free(buf);
            return 1;
        }
        gbs[n - 1] = kn_read_bandwidth_gbs(pool, buf, bytes, 3);
        tp_free(pool);
    }
    printf("read bandwidth: 1 thread %.1f GB/s, 2 threads %.1f GB/s, ratio %.2f\n", gbs[0], gbs[1],
           gbs[1] / gbs[0]);
    free(buf);
    return 0;
}
