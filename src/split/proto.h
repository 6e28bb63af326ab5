/* proto.h — the split-inference wire protocol (docs/split-protocol.md), shared by the server
 * (src/server/split_*.c) and the client library (src/split/client*.c). Every frame is a 16-byte
 * header (magic "WSPL", version, type, payload length, reserved 0) and a payload; all integers
 * little-endian, floats IEEE-754 binary32 (hidden states F32 or binary16). Encoders write into a
 * caller buffer; decoders validate everything (sizes against explicit limits, shapes, finite
 * values) and say precisely what is wrong. Pure functions, no I/O. */
#ifndef WEFT_SPLIT_PROTO_H
#define WEFT_SPLIT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define SPLIT_MAGIC 0x4C505357u /* "WSPL" as bytes on the wire */
#define SPLIT_VERSION 2 /* 2: IDS frames at split 0 (token ids up, tokens streamed down) */
#define SPLIT_HDR_BYTES 16
#define SPLIT_MAX_KEY 512       /* API key bytes in HELLO */
#define SPLIT_MAX_MSG 1024      /* ERROR message bytes */
#define SPLIT_MAX_ROWS 256      /* hidden-state rows in one HIDDEN frame (absolute cap) */
#define SPLIT_MAX_DIM 16384     /* hidden width */
#define SPLIT_HELLO_FIXED 80    /* HELLO payload bytes before the key */
#define SPLIT_HIDDEN_HDR 16     /* HIDDEN payload bytes before the rows */
#define SPLIT_IDS_HDR 8         /* IDS payload bytes before the ids */

typedef enum split_type {
    SPLIT_T_HELLO = 1,    /* client -> server: auth, request, client profile */
    SPLIT_T_ACCEPT = 2,   /* server -> client: split layer and limits */
    SPLIT_T_HIDDEN = 3,   /* client -> server: hidden states of the next positions */
    SPLIT_T_CONSUMED = 4, /* server -> client: a prefill chunk was computed */
    SPLIT_T_TOKEN = 5,    /* server -> client: a generated token */
    SPLIT_T_DONE = 6,     /* server -> client: the request finished */
    SPLIT_T_ERROR = 7,    /* server -> client: refused; the server closes the connection */
    SPLIT_T_IDS = 8,      /* client -> server, split 0 only: the prompt's token ids (v2) */
} split_type;

typedef enum split_dtype { SPLIT_DT_F32 = 0, SPLIT_DT_F16 = 1 } split_dtype;

typedef enum split_errcode {
    SPLIT_E_FRAME = 1,   /* malformed frame (magic, type, length, shape, truncated) */
    SPLIT_E_VERSION = 2, /* unsupported protocol version */
    SPLIT_E_AUTH = 3,    /* wrong or missing API key */
    SPLIT_E_LIMIT = 4,   /* a size or value outside the documented limits */
    SPLIT_E_VALUE = 5,   /* NaN or infinite hidden state */
    SPLIT_E_STATE = 6,   /* a frame the protocol does not allow now */
    SPLIT_E_BUSY = 7,    /* too many connections, or the server is stopping */
    SPLIT_E_TIMEOUT = 8, /* the client was idle too long */
    SPLIT_E_SERVER = 9,  /* the request failed inside the server */
} split_errcode;

typedef struct split_hdr {
    uint32_t magic;
    uint16_t version, type;
    uint32_t length;
    uint32_t reserved;
} split_hdr;

/* Checks magic, version, type and reserved, and length <= max_payload. Returns 0, or the
 * split_errcode with msg filled. */
int split_hdr_parse(const uint8_t *buf, uint32_t max_payload, split_hdr *h, char *msg,
                    size_t msg_size);
void split_hdr_write(uint8_t *buf, split_type type, uint32_t length);

typedef struct split_hello {
    uint32_t flags;      /* bit 0: hidden states as F16 */
    int32_t split;       /* layers the client runs, 0..L, or -1: let the server plan (auto) */
    int32_t n_prompt;    /* prompt tokens */
    int32_t max_tokens;  /* tokens to generate at most */
    int32_t chunk;       /* largest prefill chunk (rows per HIDDEN) the client will send */
    float temperature, top_p, min_p;
    int32_t top_k;
    uint64_t seed;
    /* for auto: the SLA and the client's measured costs and link (weft split profile) */
    float sla_s; /* end-to-end latency bound; 0 = none */
    float layer_prefill_s, layer_decode_s, head_prefill_s, head_decode_s;
    int32_t client_max_layers; /* most layers the client holds; 0 = all */
    float link_bw_Bps, link_rtt_s;
    uint32_t key_len;
    char key[SPLIT_MAX_KEY + 1];
} split_hello;
#define SPLIT_HELLO_F16 1u

/* Encoders return the bytes written (header included), or 0 if cap is too small. */
size_t split_hello_encode(const split_hello *h, uint8_t *out, size_t cap);
/* Decodes and range-checks a HELLO payload (values finite and sane; key_len <= SPLIT_MAX_KEY). */
int split_hello_decode(const uint8_t *p, uint32_t len, split_hello *h, char *msg, size_t msg_size);

/* HIDDEN: pos0 (first position), n rows of dim values. */
size_t split_hidden_bytes(int n, int dim, split_dtype dt); /* whole frame */
size_t split_hidden_encode(uint8_t *out, size_t cap, int pos0, int n, int dim, split_dtype dt,
                           const float *rows);
/* Decodes a HIDDEN payload into rows ([max_rows][dim] floats): the dim and dtype must be the
 * negotiated ones, 1 <= n <= max_rows, the length exact, every value finite. */
int split_hidden_decode(const uint8_t *p, uint32_t len, int dim, split_dtype dt, int max_rows,
                        int *pos0, int *n, float *rows, char *msg, size_t msg_size);

/* IDS (split 0): pos0 (0), n, then n token ids. The whole prompt in one frame; the server then
 * runs the request as an ordinary one and streams TOKEN frames without waiting for the client. */
size_t split_ids_bytes(int n); /* whole frame */
size_t split_ids_encode(uint8_t *out, size_t cap, int pos0, int n, const int32_t *ids);
/* Decodes an IDS payload into ids[max_n]: 1 <= n <= max_n, the length exact, every id in
 * [0, vocab). */
int split_ids_decode(const uint8_t *p, uint32_t len, int vocab, int max_n, int *pos0, int *n,
                     int32_t *ids, char *msg, size_t msg_size);

/* Frames whose payload is a few int32 (ACCEPT 6, CONSUMED 1, TOKEN 2, DONE 2). */
size_t split_ints_encode(uint8_t *out, size_t cap, split_type type, const int32_t *v, int n);
int split_ints_decode(const uint8_t *p, uint32_t len, int32_t *v, int n, char *msg,
                      size_t msg_size);
/* ERROR: code, then the message bytes (truncated to SPLIT_MAX_MSG). */
size_t split_error_encode(uint8_t *out, size_t cap, split_errcode code, const char *msg);
int split_error_decode(const uint8_t *p, uint32_t len, uint32_t *code, char *msg,
                       size_t msg_size);

/* Compares an API key in time independent of where it differs. */
int split_key_equal(const char *given, size_t n_given, const char *key);

#endif
