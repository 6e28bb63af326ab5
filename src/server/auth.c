/* auth.c — bearer-token check. The comparison takes the same time whatever the first
 * differing byte is (it always walks the whole configured key), so the key cannot be
 * recovered byte by byte from response times. */
#include <string.h>
#include <strings.h>

#include "server/srv_internal.h"

static bool equal_ct(const char *given, size_t n_given, const char *key, size_t n_key) {
    unsigned char diff = (unsigned char)(n_given != n_key);
    for (size_t i = 0; i < n_key; i++) {
        unsigned char g = i < n_given ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)key[i]);
    }
    return diff == 0;
}

bool auth_ok(const srv *s, struct MHD_Connection *c) {
    const char *key = s->cfg->api_key;
    if (!key[0]) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    return equal_ct(h, n, key, strlen(key));
}
