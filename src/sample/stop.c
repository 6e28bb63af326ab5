/* stop.c — the stop-string matcher for streamed text. Generated text arrives in arbitrary
 * pieces; a stop string may straddle them. The matcher emits text as soon as it cannot be part
 * of a stop string, holds back the longest tail that is still a prefix of one, and on a
 * complete match emits only what precedes it (the first stop string to complete wins).
 * Invariant: the held tail never contains a whole stop string and is shorter than the longest
 * one, so it fits in m->held. */
#include "weft/sampler.h"

#include <string.h>

int stop_init(stop_matcher *m, const char *const *strs, int n) {
    memset(m, 0, sizeof *m);
    if (n < 0 || (n > 0 && !strs)) return -1;
    for (int i = 0; i < n; i++) {
        if (!strs[i] || !strs[i][0]) continue;
        size_t len = strlen(strs[i]);
        if (len > STOP_MAX_LEN || m->n >= STOP_MAX_STRINGS) {
            memset(m, 0, sizeof *m);
            return -1;
        }
        memcpy(m->strs[m->n++], strs[i], len + 1);
    }
    return 0;
}

/* Start of the stop string that completes first in s[0..n) (the longest one when several end
 * at the same byte), or -1. Deciding by end, not start, is what makes the result independent of
 * how the text was split into feeds: a match is acted on the moment it completes. */
static long stop_find_first(const stop_matcher *m, const char *s, size_t n) {
    long best_start = -1;
    size_t best_end = 0;
    for (int i = 0; i < m->n; i++) {
        size_t len = strlen(m->strs[i]);
        if (len > n) continue;
        const char *hit = memmem(s, n, m->strs[i], len);
        if (!hit) continue;
        size_t start = (size_t)(hit - s), end = start + len;
        if (best_start < 0 || end < best_end || (end == best_end && (long)start < best_start)) {
            best_start = (long)start;
            best_end = end;
        }
    }
    return best_start;
}

/* Whether s[0..n) is a proper prefix of some stop string. */
static bool stop_is_prefix(const stop_matcher *m, const char *s, size_t n) {
    for (int i = 0; i < m->n; i++) {
        size_t len = strlen(m->strs[i]);
        if (n < len && memcmp(m->strs[i], s, n) == 0) return true;
    }
    return false;
}

size_t stop_feed(stop_matcher *m, const char *text, size_t len, char *out, size_t out_size) {
    if (!out || out_size == 0) return 0;
    out[0] = 0;
    if (m->stopped || (!text && len > 0)) return 0;
    if (m->n == 0) { /* pass-through */
        if (len + 1 > out_size) return 0;
        memcpy(out, text, len);
        out[len] = 0;
        return len;
    }
    /* Work in out: held text, then the new text. */
    size_t total = m->n_held + len;
    if (total + 1 > out_size) return 0; /* contract violated: nothing consumed */
    memcpy(out, m->held, m->n_held);
    if (len) memcpy(out + m->n_held, text, len);

    long hit = stop_find_first(m, out, total);
    if (hit >= 0) {
        m->stopped = true;
        m->n_held = 0;
        out[hit] = 0;
        return (size_t)hit;
    }
    /* Hold back the longest tail that could still grow into a stop string. */
    size_t keep_from = total;
    size_t lookback = total < STOP_MAX_LEN ? total : STOP_MAX_LEN;
    for (size_t from = total - lookback; from < total; from++) {
        if (stop_is_prefix(m, out + from, total - from)) {
            keep_from = from;
            break;
        }
    }
    m->n_held = total - keep_from;
    memmove(m->held, out + keep_from, m->n_held);
    out[keep_from] = 0;
    return keep_from;
}

size_t stop_flush(stop_matcher *m, char *out, size_t out_size) {
    if (!out || out_size == 0) return 0;
    out[0] = 0;
    if (m->stopped || m->n_held + 1 > out_size) return 0;
    size_t n = m->n_held;
    memcpy(out, m->held, n);
    out[n] = 0;
    m->n_held = 0;
    return n;
}
