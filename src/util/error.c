/* error.c — formatting of weft_err messages (see include/weft/error.h). */
#include "weft/error.h"

#include <stdarg.h>
#include <stdio.h>

int weft_errf(weft_err *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}
