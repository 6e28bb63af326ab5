/* error.h — the one error type every weft module reports through.
 * A function that can fail returns 0 on success or -1 on failure and, when given a non-NULL
 * weft_err, writes a precise human-readable message into it. No errno-style globals. */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <stddef.h>

typedef struct weft_err {
    char msg[512];
} weft_err;

/* Formats a message into e (if e is non-NULL) and returns -1, so callers can write
 * `return weft_errf(err, "bad thing %d", x);`. */
int weft_errf(weft_err *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
