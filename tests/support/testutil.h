/* testutil.h — helpers shared by the unit tests: locating ../shared (skipping loudly when it is
 * absent), scratch files under the build directory, and synthetic test models. */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>

#include "weft/dtype.h"
#include "weft/model.h"

/* Full path of a file under ../shared, or NULL (after printing a loud SKIP line) when the
 * shared folder is not present. Returned string is static per call site's buffer. */
const char *tu_shared(const char *rel, char *buf, size_t size);
/* Path of a scratch file in the build directory. */
const char *tu_scratch(const char *name, char *buf, size_t size);
/* Reads a whole file; returns malloc'd buffer (NUL-terminated) or NULL. */
char *tu_read_file(const char *path, size_t *size);
/* Writes a synthetic model (random weights: preset, 2-D weight type, seed) to the scratch file
 * `name` and loads it; NULL, after printing why, when either step fails. */
weft_model *tu_synth_model(const char *name, const char *preset, weft_dtype type, uint64_t seed);

/* In a cmocka test: resolve a shared file or skip the test loudly. */
#define TU_SHARED_OR_SKIP(var, rel)                                                            \
    char var##_buf[4096];                                                                      \
    const char *var = tu_shared(rel, var##_buf, sizeof var##_buf);                             \
    if (!var) {                                                                                \
        skip();                                                                                \
    }

#endif
