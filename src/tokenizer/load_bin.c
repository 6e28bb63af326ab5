/* load_bin.c — reads llama2.c's tokenizer.bin: int32 max_token_length, then per token a
 * float32 score, an int32 byte length and the piece bytes (little-endian). Every length is
 * checked against what the file still holds. llama2.c's exporter wrote pieces with ' ' in place
 * of U+2581 and the control tokens as "\n<s>\n" / "\n</s>\n"; both are converted back to
 * SentencePiece's convention here, so the rest of the tokenizer sees one convention. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t rd_i32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

static float rd_f32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float r;
    memcpy(&r, &v, sizeof r);
    return r;
}

/* Reads the whole file; NULL with err filled on failure. */
static unsigned char *read_all(const char *path, size_t *size, weft_err *err) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        weft_errf(err, "%s: cannot open", path);
        return NULL;
    }
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0) n = ftell(fp);
    if (n < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        weft_errf(err, "%s: cannot determine the file size", path);
        goto out;
    }
    buf = malloc((size_t)n + 1);
    if (!buf) {
        weft_errf(err, "%s: out of memory for %ld bytes", path, n);
        goto out;
    }
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        weft_errf(err, "%s: read error", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    *size = (size_t)n;
out:
    fclose(fp);
    return buf;
}

/* Converts one llama2.c piece to SentencePiece convention into dst (room for 3*len bytes). */
static size_t convert_piece(const unsigned char *src, size_t len, char *dst) {
    if (len == 5 && memcmp(src, "\n<s>\n", 5) == 0) {
        memcpy(dst, "<s>", 3);
        return 3;
    }
    if (len == 6 && memcmp(src, "\n</s>\n", 6) == 0) {
        memcpy(dst, "</s>", 4);
        return 4;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == ' ') {
            memcpy(dst + n, TOK_SPACE_UTF8, TOK_SPACE_LEN);
            n += TOK_SPACE_LEN;
        } else {
            dst[n++] = (char)src[i];
        }
    }
    return n;
}

weft_tokenizer *tok_load_bin(const char *path, int vocab_size, weft_err *err) {
    size_t size = 0;
    unsigned char *buf = NULL;
    char *piece = NULL;
    weft_tokenizer *t = tok_alloc(vocab_size, err);
    if (!t) return NULL;
    buf = read_all(path, &size, err);
    if (!buf) goto fail;
    if (size < 4) {
        weft_errf(err, "%s: truncated: %zu bytes, too short for the max_token_length header",
                  path, size);
        goto fail;
    }
    int32_t max_len = rd_i32(buf);
    if (max_len < 0 || max_len > TOK_MAX_PIECE_BYTES) {
        weft_errf(err, "%s: max_token_length %d out of range (0..%d)", path, (int)max_len,
                  TOK_MAX_PIECE_BYTES);
        goto fail;
    }
    piece = malloc((size_t)TOK_MAX_PIECE_BYTES * TOK_SPACE_LEN);
    if (!piece) {
        weft_errf(err, "%s: out of memory", path);
        goto fail;
    }
    size_t off = 4;
    for (int id = 0; id < vocab_size; id++) {
        if (size - off < 8) {
            weft_errf(err,
                      "%s: truncated at token %d of %d: offset %zu needs 8 header bytes, "
                      "%zu left",
                      path, id, vocab_size, off, size - off);
            goto fail;
        }
        float score = rd_f32(buf + off);
        int32_t len = rd_i32(buf + off + 4);
        off += 8;
        if (len < 0) {
            weft_errf(err, "%s: token %d at offset %zu has negative length %d", path, id, off - 4,
                      (int)len);
            goto fail;
        }
        if ((size_t)len > size - off) {
            weft_errf(err, "%s: truncated: token %d at offset %zu has length %d but only %zu "
                           "bytes are left",
                      path, id, off - 4, (int)len, size - off);
            goto fail;
        }
        if (len > TOK_MAX_PIECE_BYTES) {
            weft_errf(err, "%s: token %d length %d exceeds the %d-byte limit", path, id, (int)len,
                      TOK_MAX_PIECE_BYTES);
            goto fail;
        }
        size_t n = convert_piece(buf + off, (size_t)len, piece);
        off += (size_t)len;
        if (tok_add_piece(t, piece, n, score, 0, err) != 0) goto fail;
    }
    /* llama2.c vocabularies use SentencePiece's fixed ids. */
    if (tok_finish(t, 1 < vocab_size ? 1 : 0, 2 < vocab_size ? 2 : 0, 0, err) != 0) goto fail;
    free(piece);
    free(buf);
    return t;
fail:
    free(piece);
    free(buf);
    tok_free(t);
    return NULL;
}
