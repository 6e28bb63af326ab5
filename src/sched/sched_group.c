/* sched_group.c — length grouping for engine modes that run a batch until its longest member
 * ends (static/dynamic batching, docs/scheduling.md "Length grouping"). A batch costs as many
 * steps as its longest member; members that finish early sit in it as padding. Forming the batch
 * from requests predicted to finish together cuts that waste. The queue head (the policy's first,
 * the oldest under fcfs) is always in the batch, so grouping can reorder but never starve: a
 * request is admitted at the latest once everything ranked before it has been. */
#include <math.h>
#include <stdlib.h>

#include "weft/sched.h"

typedef struct cand {
    double dist;
    int idx;
} cand;

static int by_dist(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->dist != y->dist) return x->dist < y->dist ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx); /* ties: queue order */
}

static int by_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sched_group_by_length(const float *pred, int n, int size, int *chosen) {
    if (n <= 0 || size <= 0) return 0;
    if (size > n) size = n;
    /* without a prediction for the head, or room for everyone, there is nothing to choose */
    if (size == n || !(pred[0] > 0)) {
        for (int i = 0; i < size; i++)
            chosen[i] = i;
        return size;
    }
    cand *c = malloc(sizeof *c * (size_t)(n - 1));
    if (!c) { /* out of memory: queue order, which is always a valid batch */
        for (int i = 0; i < size; i++)
            chosen[i] = i;
        return size;
    }
    double h = log1p(pred[0]);
    for (int i = 1; i < n; i++)
        c[i - 1] = (cand){pred[i] > 0 ? fabs(log1p(pred[i]) - h) : INFINITY, i};
    qsort(c, (size_t)(n - 1), sizeof *c, by_dist);
    chosen[0] = 0;
    for (int k = 1; k < size; k++)
        chosen[k] = c[k - 1].idx;
    free(c);
    qsort(chosen, (size_t)size, sizeof *chosen, by_int);
    return size;
}
