/* dataset.h — a "pairs" data set (one JSON object a line with text fields `prompt` and
 * `response`, as in the files under ../shared/data/pairs/) held in memory, and seeded sampling of
 * its records, so a benchmark can draw realistic prompts and output lengths. */
#ifndef WEFT_WORKLOAD_DATASET_H
#define WEFT_WORKLOAD_DATASET_H

#include <stdint.h>

#include "weft/error.h"

typedef struct wl_pair {
    char *prompt;
    char *response;
} wl_pair;

typedef struct wl_dataset {
    wl_pair *pairs;
    int n;
} wl_dataset;

/* Loads every record; a line that is not an object with string `prompt` and `response` fails the
 * load with "path:line: ...". Blank lines are skipped. */
int wl_dataset_load(const char *path, wl_dataset *out, weft_err *err);
void wl_dataset_free(wl_dataset *d);

/* Picks n record indices, deterministic in seed: without replacement while records last (a
 * random permutation), then a fresh permutation for each further pass. Returns 0 or -1. */
int wl_dataset_pick(const wl_dataset *d, int n, uint64_t seed, int *idx, weft_err *err);

#endif
