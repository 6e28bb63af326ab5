/* proto.c — encoding and validation of split-protocol frames (see proto.h and
 * docs/split-protocol.md). Byte order is fixed (little-endian) whatever the host; every decoder
 * checks lengths before reading and range-checks every field, because the peer may be hostile. */
#include "split/proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "weft/dtype.h"

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void putf(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put32(p, u);
}
static float getf(const uint8_t *p) {
    uint32_t u = get32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int fail(int code, char *msg, size_t size, const char *fmt, ...) {
    if (msg && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, size, fmt, ap);
        va_end(ap);
    }
    return code;
}

int split_hdr_parse(const uint8_t *b, uint32_t max_payload, split_hdr *h, char *msg,
                    size_t msg_size) {
    h->magic = get32(b);
    h->version = (uint16_t)(b[4] | b[5] << 8);
    h->type = (uint16_t)(b[6] | b[7] << 8);
    h->length = get32(b + 8);
    h->reserved = get32(b + 12);
    if (h->magic != SPLIT_MAGIC)
        return fail(SPLIT_E_FRAME, msg, msg_size, "bad magic 0x%08x (expected 0x%08x)", h->magic,
                    SPLIT_MAGIC);
    if (h->version != SPLIT_VERSION)
        return fail(SPLIT_E_VERSION, msg, msg_size, "protocol version %u not supported (this is %d)",
                    h->version, SPLIT_VERSION);
    if (h->type < SPLIT_T_HELLO || h->type > SPLIT_T_IDS)
        return fail(SPLIT_E_FRAME, msg, msg_size, "unknown frame type %u", h->type);
    if (h->reserved != 0)
        return fail(SPLIT_E_FRAME, msg, msg_size, "reserved header field is %u, must be 0",
                    h->reserved);
    if (h->length > max_payload)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "frame type %u payload of %u bytes exceeds the "
                    "limit of %u", h->type, h->length, max_payload);
    return 0;
}

void split_hdr_write(uint8_t *b, split_type type, uint32_t length) {
    put32(b, SPLIT_MAGIC);
    b[4] = SPLIT_VERSION & 0xff;
    b[5] = SPLIT_VERSION >> 8;
    b[6] = (uint8_t)type;
    b[7] = (uint8_t)((unsigned)type >> 8);
    put32(b + 8, length);
    put32(b + 12, 0);
}

size_t split_hello_encode(const split_hello *h, uint8_t *out, size_t cap) {
    uint32_t kl = h->key_len > SPLIT_MAX_KEY ? SPLIT_MAX_KEY : h->key_len;
    size_t len = SPLIT_HELLO_FIXED + kl;
    if (cap < SPLIT_HDR_BYTES + len) return 0;
    split_hdr_write(out, SPLIT_T_HELLO, (uint32_t)len);
    uint8_t *p = out + SPLIT_HDR_BYTES;
    put32(p + 0, h->flags);
    put32(p + 4, (uint32_t)h->split);
    put32(p + 8, (uint32_t)h->n_prompt);
    put32(p + 12, (uint32_t)h->max_tokens);
    put32(p + 16, (uint32_t)h->chunk);
    putf(p + 20, h->temperature);
    putf(p + 24, h->top_p);
    putf(p + 28, h->min_p);
    put32(p + 32, (uint32_t)h->top_k);
    put32(p + 36, (uint32_t)h->seed);
    put32(p + 40, (uint32_t)(h->seed >> 32));
    putf(p + 44, h->sla_s);
    putf(p + 48, h->layer_prefill_s);
    putf(p + 52, h->layer_decode_s);
    putf(p + 56, h->head_prefill_s);
    putf(p + 60, h->head_decode_s);
    put32(p + 64, (uint32_t)h->client_max_layers);
    putf(p + 68, h->link_bw_Bps);
    putf(p + 72, h->link_rtt_s);
    put32(p + 76, kl);
    memcpy(p + SPLIT_HELLO_FIXED, h->key, kl);
    return SPLIT_HDR_BYTES + len;
}

static int bad_float(float v, float lo, float hi) {
    return !isfinite(v) || v < lo || v > hi;
}

int split_hello_decode(const uint8_t *p, uint32_t len, split_hello *h, char *msg,
                       size_t msg_size) {
    memset(h, 0, sizeof *h);
    if (len < SPLIT_HELLO_FIXED)
        return fail(SPLIT_E_FRAME, msg, msg_size, "HELLO of %u bytes is shorter than %d", len,
                    SPLIT_HELLO_FIXED);
    h->flags = get32(p);
    h->split = (int32_t)get32(p + 4);
    h->n_prompt = (int32_t)get32(p + 8);
    h->max_tokens = (int32_t)get32(p + 12);
    h->chunk = (int32_t)get32(p + 16);
    h->temperature = getf(p + 20);
    h->top_p = getf(p + 24);
    h->min_p = getf(p + 28);
    h->top_k = (int32_t)get32(p + 32);
    h->seed = (uint64_t)get32(p + 36) | (uint64_t)get32(p + 40) << 32;
    h->sla_s = getf(p + 44);
    h->layer_prefill_s = getf(p + 48);
    h->layer_decode_s = getf(p + 52);
    h->head_prefill_s = getf(p + 56);
    h->head_decode_s = getf(p + 60);
    h->client_max_layers = (int32_t)get32(p + 64);
    h->link_bw_Bps = getf(p + 68);
    h->link_rtt_s = getf(p + 72);
    h->key_len = get32(p + 76);
    if (h->key_len > SPLIT_MAX_KEY)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "API key of %u bytes exceeds %d", h->key_len,
                    SPLIT_MAX_KEY);
    if (len != SPLIT_HELLO_FIXED + h->key_len)
        return fail(SPLIT_E_FRAME, msg, msg_size, "HELLO is %u bytes, its key length says %u",
                    len, SPLIT_HELLO_FIXED + h->key_len);
    memcpy(h->key, p + SPLIT_HELLO_FIXED, h->key_len);
    h->key[h->key_len] = 0;
    if (h->flags & ~SPLIT_HELLO_F16)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "unknown HELLO flags 0x%x", h->flags);
    if (h->split < -1)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "split %d (want -1 for auto or 0..L)", h->split);
    if (h->n_prompt < 1 || h->max_tokens < 1)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "n_prompt %d and max_tokens %d must be >= 1",
                    h->n_prompt, h->max_tokens);
    if (h->chunk < 1 || h->chunk > SPLIT_MAX_ROWS)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "chunk %d outside [1, %d]", h->chunk,
                    SPLIT_MAX_ROWS);
    if (bad_float(h->temperature, 0, 100) || bad_float(h->top_p, 0, 1) ||
        bad_float(h->min_p, 0, 1) || h->top_k < 0)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "sampling parameters out of range (temperature "
                    "[0,100], top_p and min_p [0,1], top_k >= 0)");
    if (bad_float(h->sla_s, 0, 1e6f) || bad_float(h->layer_prefill_s, 0, 1e3f) ||
        bad_float(h->layer_decode_s, 0, 1e3f) || bad_float(h->head_prefill_s, 0, 1e3f) ||
        bad_float(h->head_decode_s, 0, 1e3f) || bad_float(h->link_bw_Bps, 0, 1e15f) ||
        bad_float(h->link_rtt_s, 0, 1e3f) || h->client_max_layers < 0)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "client profile or SLA not finite or out of "
                    "range");
    return 0;
}

size_t split_hidden_bytes(int n, int dim, split_dtype dt) {
    return SPLIT_HDR_BYTES + SPLIT_HIDDEN_HDR + (size_t)n * dim * (dt == SPLIT_DT_F16 ? 2 : 4);
}

size_t split_hidden_encode(uint8_t *out, size_t cap, int pos0, int n, int dim, split_dtype dt,
                           const float *rows) {
    size_t total = split_hidden_bytes(n, dim, dt);
    if (cap < total) return 0;
    split_hdr_write(out, SPLIT_T_HIDDEN, (uint32_t)(total - SPLIT_HDR_BYTES));
    uint8_t *p = out + SPLIT_HDR_BYTES;
    put32(p, (uint32_t)pos0);
    put32(p + 4, (uint32_t)n);
    put32(p + 8, (uint32_t)dim);
    put32(p + 12, (uint32_t)dt);
    p += SPLIT_HIDDEN_HDR;
    size_t nv = (size_t)n * dim;
    for (size_t i = 0; i < nv; i++) {
        if (dt == SPLIT_DT_F16) {
            uint16_t h = f32_to_fp16(rows[i]);
            p[2 * i] = (uint8_t)h;
            p[2 * i + 1] = (uint8_t)(h >> 8);
        } else {
            putf(p + 4 * i, rows[i]);
        }
    }
    return total;
}

int split_hidden_decode(const uint8_t *p, uint32_t len, int dim, split_dtype dt, int max_rows,
                        int *pos0, int *n, float *rows, char *msg, size_t msg_size) {
    if (len < SPLIT_HIDDEN_HDR)
        return fail(SPLIT_E_FRAME, msg, msg_size, "HIDDEN of %u bytes is shorter than %d", len,
                    SPLIT_HIDDEN_HDR);
    int32_t p0 = (int32_t)get32(p), nr = (int32_t)get32(p + 4), d = (int32_t)get32(p + 8);
    uint32_t t = get32(p + 12);
    if (d != dim)
        return fail(SPLIT_E_FRAME, msg, msg_size, "hidden width %d, the model's is %d", d, dim);
    if (t != (uint32_t)dt)
        return fail(SPLIT_E_FRAME, msg, msg_size, "hidden dtype %u, negotiated %d", t, (int)dt);
    if (nr < 1 || nr > max_rows)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "%d rows outside [1, %d]", nr, max_rows);
    if (p0 < 0) return fail(SPLIT_E_FRAME, msg, msg_size, "negative position %d", p0);
    size_t want = SPLIT_HIDDEN_HDR + (size_t)nr * dim * (dt == SPLIT_DT_F16 ? 2 : 4);
    if (len != want)
        return fail(SPLIT_E_FRAME, msg, msg_size, "HIDDEN of %u bytes, %d rows of %d need %zu",
                    len, nr, dim, want);
    p += SPLIT_HIDDEN_HDR;
    size_t nv = (size_t)nr * dim;
    for (size_t i = 0; i < nv; i++) {
        float v = dt == SPLIT_DT_F16 ? fp16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8))
                                     : getf(p + 4 * i);
        if (!isfinite(v))
            return fail(SPLIT_E_VALUE, msg, msg_size, "hidden value %zu of row %zu is not finite",
                        i % (size_t)dim, i / (size_t)dim);
        rows[i] = v;
    }
    *pos0 = p0;
    *n = nr;
    return 0;
}

size_t split_ids_bytes(int n) {
    return SPLIT_HDR_BYTES + SPLIT_IDS_HDR + 4 * (size_t)n;
}

size_t split_ids_encode(uint8_t *out, size_t cap, int pos0, int n, const int32_t *ids) {
    size_t total = split_ids_bytes(n);
    if (n < 0 || cap < total) return 0;
    split_hdr_write(out, SPLIT_T_IDS, (uint32_t)(total - SPLIT_HDR_BYTES));
    uint8_t *p = out + SPLIT_HDR_BYTES;
    put32(p, (uint32_t)pos0);
    put32(p + 4, (uint32_t)n);
    for (int i = 0; i < n; i++) put32(p + SPLIT_IDS_HDR + 4 * (size_t)i, (uint32_t)ids[i]);
    return total;
}

int split_ids_decode(const uint8_t *p, uint32_t len, int vocab, int max_n, int *pos0, int *n,
                     int32_t *ids, char *msg, size_t msg_size) {
    if (len < SPLIT_IDS_HDR)
        return fail(SPLIT_E_FRAME, msg, msg_size, "IDS of %u bytes is shorter than %d", len,
                    SPLIT_IDS_HDR);
    int32_t p0 = (int32_t)get32(p), nr = (int32_t)get32(p + 4);
    if (nr < 1 || nr > max_n)
        return fail(SPLIT_E_LIMIT, msg, msg_size, "%d token ids outside [1, %d]", nr, max_n);
    if (p0 < 0) return fail(SPLIT_E_FRAME, msg, msg_size, "negative position %d", p0);
    if (len != SPLIT_IDS_HDR + 4 * (size_t)nr)
        return fail(SPLIT_E_FRAME, msg, msg_size, "IDS of %u bytes, %d ids need %zu", len, nr,
                    SPLIT_IDS_HDR + 4 * (size_t)nr);
    for (int32_t i = 0; i < nr; i++) {
        int32_t v = (int32_t)get32(p + SPLIT_IDS_HDR + 4 * (size_t)i);
        if (v < 0 || v >= vocab)
            return fail(SPLIT_E_VALUE, msg, msg_size, "token id %d at %d outside [0, %d)", v, i,
                        vocab);
        ids[i] = v;
    }
    *pos0 = p0;
    *n = nr;
    return 0;
}

size_t split_ints_encode(uint8_t *out, size_t cap, split_type type, const int32_t *v, int n) {
    size_t total = SPLIT_HDR_BYTES + 4 * (size_t)n;
    if (cap < total) return 0;
    split_hdr_write(out, type, (uint32_t)(4 * n));
    for (int i = 0; i < n; i++)
        put32(out + SPLIT_HDR_BYTES + 4 * i, (uint32_t)v[i]);
    return total;
}

int split_ints_decode(const uint8_t *p, uint32_t len, int32_t *v, int n, char *msg,
                      size_t msg_size) {
    if (len != 4u * (uint32_t)n)
        return fail(SPLIT_E_FRAME, msg, msg_size, "payload of %u bytes, expected %d", len, 4 * n);
    for (int i = 0; i < n; i++)
        v[i] = (int32_t)get32(p + 4 * i);
    return 0;
}

size_t split_error_encode(uint8_t *out, size_t cap, split_errcode code, const char *msg) {
    size_t ml = strlen(msg);
    if (ml > SPLIT_MAX_MSG) ml = SPLIT_MAX_MSG;
    size_t total = SPLIT_HDR_BYTES + 4 + ml;
    if (cap < total) return 0;
    split_hdr_write(out, SPLIT_T_ERROR, (uint32_t)(4 + ml));
    put32(out + SPLIT_HDR_BYTES, (uint32_t)code);
    memcpy(out + SPLIT_HDR_BYTES + 4, msg, ml);
    return total;
}

int split_error_decode(const uint8_t *p, uint32_t len, uint32_t *code, char *msg,
                       size_t msg_size) {
    if (len < 4 || len > 4 + SPLIT_MAX_MSG)
        return fail(SPLIT_E_FRAME, msg, msg_size, "ERROR frame of %u bytes", len);
    *code = get32(p);
    size_t ml = len - 4;
    if (ml >= msg_size) ml = msg_size ? msg_size - 1 : 0;
    if (msg_size) {
        memcpy(msg, p + 4, ml);
        msg[ml] = 0;
    }
    return 0;
}

int split_key_equal(const char *given, size_t n_given, const char *key) {
    size_t n_key = strlen(key);
    unsigned char diff = (unsigned char)(n_given != n_key);
    for (size_t i = 0; i < n_key; i++) {
        unsigned char g = i < n_given ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)key[i]);
    }
    return diff == 0;
}
