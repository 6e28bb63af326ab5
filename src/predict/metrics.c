/* metrics.c — rank correlations for judging the length predictor: Spearman's rho with average
 * ranks for ties, and Kendall's tau-b (tie-corrected) by Knight's O(n log n) merge-sort count,
 * because held-out sets reach tens of thousands of answers. */
#include "predict/pred_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ipair {
    double x, y;
} ipair;

static int cmp_idx_by(const double *v, int a, int b) {
    return (v[a] > v[b]) - (v[a] < v[b]);
}

/* average ranks of v (1-based) */
static int average_ranks(const double *v, int n, double *rank) {
    int *idx = malloc(sizeof *idx * (size_t)n);
    if (!idx) return -1;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    /* insertion-merge sort by value: a simple bottom-up merge sort keeps this O(n log n) */
    int *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!tmp) {
        free(idx);
        return -1;
    }
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = cmp_idx_by(v, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, sizeof *idx * (size_t)n);
    }
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]])
            j++;
        double r = (i + j) / 2.0 + 1.0;
        for (int k = i; k <= j; k++)
            rank[idx[k]] = r;
        i = j + 1;
    }
    free(idx);
    free(tmp);
    return 0;
}

static double pearson(const double *a, const double *b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (saa <= 0 || sbb <= 0) return 0;
    return sab / sqrt(saa * sbb);
}

double pred_spearman(const double *x, const double *y, int n) {
    if (n < 2) return 0;
    double *rx = malloc(sizeof *rx * (size_t)n), *ry = malloc(sizeof *ry * (size_t)n);
    double r = 0;
    if (rx && ry && !average_ranks(x, n, rx) && !average_ranks(y, n, ry)) r = pearson(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

static int cmp_xy(const void *a, const void *b) {
    const ipair *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->y > q->y) - (p->y < q->y);
}

/* Sorts a[lo, hi) by y, returning the number of swaps (discordant inversions). */
static double merge_count(ipair *a, ipair *tmp, int n) {
    double swaps = 0;
    for (int w = 1; w < n; w *= 2) {
        for (int lo = 0; lo < n; lo += 2 * w) {
            int mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (a[j].y < a[i].y) {
                    swaps += mid - i;
                    tmp[k++] = a[j++];
                } else {
                    tmp[k++] = a[i++];
                }
            }
            while (i < mid)
                tmp[k++] = a[i++];
            while (j < hi)
                tmp[k++] = a[j++];
        }
        memcpy(a, tmp, sizeof *a * (size_t)n);
    }
    return swaps;
}

double pred_kendall(const double *x, const double *y, int n) {
    if (n < 2) return 0;
    ipair *a = malloc(sizeof *a * (size_t)n), *tmp = malloc(sizeof *tmp * (size_t)n);
    if (!a || !tmp) {
        free(a);
        free(tmp);
        return 0;
    }
    for (int i = 0; i < n; i++)
        a[i] = (ipair){x[i], y[i]};
    qsort(a, (size_t)n, sizeof *a, cmp_xy);
    double n0 = (double)n * (n - 1) / 2, n1 = 0, n3 = 0, n2 = 0;
    for (int i = 0; i < n;) { /* ties in x, and joint ties */
        int j = i;
        while (j < n && a[j].x == a[i].x)
            j++;
        n1 += (double)(j - i) * (j - i - 1) / 2;
        for (int k = i; k < j;) {
            int l = k;
            while (l < j && a[l].y == a[k].y)
                l++;
            n3 += (double)(l - k) * (l - k - 1) / 2;
            k = l;
        }
        i = j;
    }
    double swaps = merge_count(a, tmp, n);
    for (int i = 0; i < n;) { /* ties in y (now sorted by y) */
        int j = i;
        while (j < n && a[j].y == a[i].y)
            j++;
        n2 += (double)(j - i) * (j - i - 1) / 2;
        i = j;
    }
    free(a);
    free(tmp);
    double den = sqrt((n0 - n1) * (n0 - n2));
    if (!(den > 0)) return 0;
    return (n0 - n1 - n2 + n3 - 2 * swaps) / den;
}
