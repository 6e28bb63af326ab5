/* fuzz_tokenizer.c — libFuzzer target for the tokenizer. Loads a vocabulary once (the
 * tokenizer.bin named by WEFT_FUZZ_TOKENIZER, else ../shared/models/tokenizers/
 * tokenizer_llama2_32000.bin from the working directory, else a small built-in vocabulary),
 * then for every input: encodes it (with and without BOS, checking the size-query protocol),
 * decodes the ids back and requires the original text for valid UTF-8 without U+2581 (which
 * SentencePiece maps to a space by design), requires the decoder's output to be valid UTF-8
 * always, and finally feeds the input reinterpreted as arbitrary token ids to the decoder. */
#include "weft/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PATH "../shared/models/tokenizers/tokenizer_llama2_32000.bin"

/* The vocabulary is loaded once per process: a fuzz harness's one piece of process state. */
static weft_tokenizer *fz_tok;

/* Number of entries a tokenizer.bin holds (walking its length fields), or 0. */
static int fz_count_bin_entries(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    int n = 0;
    int32_t max_len;
    if (fread(&max_len, 4, 1, fp) == 1) {
        unsigned char hdr[8];
        while (fread(hdr, 1, 8, fp) == 8) {
            int32_t len;
            memcpy(&len, hdr + 4, 4);
            if (len < 0 || fseek(fp, len, SEEK_CUR) != 0) break;
            n++;
        }
    }
    fclose(fp);
    return n;
}

/* A little SentencePiece-like vocabulary: specials, all 256 byte tokens, letters, some merges. */
static weft_tokenizer *fz_builtin_vocab(void) {
    static const char *const words[] = {
        "\u2581", "e", "t", "a", "o", "i", "n", "s", "h", "r", "d", "l", "u",
        "\u2581t", "he", "\u2581a", "in", "er", "\u2581the", "an", "on",
        "\u2581s", "re", "\u2581\u2581", "at", "en", "\u2581w", "nd",
        "\u2581th", "ou", "it", "is", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\xa6\x99",
    };
    enum { N_WORDS = sizeof words / sizeof *words, N = 3 + 256 + N_WORDS };
    static char bytes[256][7];
    const char *pieces[N];
    float scores[N];
    pieces[0] = "<unk>";
    pieces[1] = "<s>";
    pieces[2] = "</s>";
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        pieces[3 + b] = bytes[b];
    }
    for (int i = 0; i < N_WORDS; i++) pieces[3 + 256 + i] = words[i];
    for (int i = 0; i < N; i++) scores[i] = i < 259 ? 0.0f : -(float)(i - 259);
    weft_err err;
    weft_tokenizer *t = tok_new_from_pieces(pieces, scores, NULL, N, 1, 2, 0, &err);
    if (!t) fprintf(stderr, "fuzz_tokenizer: built-in vocabulary: %s\n", err.msg);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *path = getenv("WEFT_FUZZ_TOKENIZER");
    if (!path) path = DEFAULT_PATH;
    int n = fz_count_bin_entries(path);
    if (n > 0) {
        weft_err err;
        fz_tok = tok_load_bin(path, n, &err);
        if (!fz_tok) fprintf(stderr, "fuzz_tokenizer: %s\n", err.msg);
    }
    if (fz_tok) {
        fprintf(stderr, "fuzz_tokenizer: %d-token vocabulary from %s\n", n, path);
    } else {
        fz_tok = fz_builtin_vocab();
        fprintf(stderr, "fuzz_tokenizer: %s not usable, built-in vocabulary\n", path);
    }
    if (!fz_tok) abort();
    return 0;
}

static int fz_valid_utf8(const unsigned char *s, size_t n, int *has_sp) {
    *has_sp = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) need = 2;
        else if (c >= 0xE0 && c <= 0xEF) { need = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        else return 0;
        if (n - i < need || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t k = 2; k < need; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (need == 3 && c == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) *has_sp = 1;
        i += need;
    }
    return 1;
}

/* Decodes ids into a malloc'd buffer (length in *len), checking the decoder's contract. */
static char *fz_decode(const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 256, used = 0;
    char *s = malloc(cap);
    if (!s) abort();
    tok_decoder d;
    tok_decoder_init(&d, fz_tok);
    for (size_t i = 0; i <= n; i++) {
        if (cap - used < 4096 + 1) {
            cap = cap * 2 + 8192;
            s = realloc(s, cap);
            if (!s) abort();
        }
        char small[8];
        /* A tiny buffer must either fit the text or fail without consuming the token. */
        int k = i < n ? tok_decoder_feed(&d, ids[i], small, sizeof small)
                      : tok_decoder_flush(&d, small, sizeof small);
        if (k >= 0) {
            memcpy(s + used, small, (size_t)k);
        } else {
            k = i < n ? tok_decoder_feed(&d, ids[i], s + used, cap - used)
                      : tok_decoder_flush(&d, s + used, cap - used);
            if (k < 0) abort();
        }
        used += (size_t)k;
    }
    *len = used;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    int n = tok_encode(fz_tok, text, size, false, NULL, 0);
    if (n < 0) abort();
    int32_t *ids = malloc(((size_t)n + 2) * sizeof *ids);
    if (!ids) abort();
    if (tok_encode(fz_tok, text, size, false, ids, n) != n) abort();
    if (tok_encode(fz_tok, text, size, true, ids, n + 1) != n + 1) abort();
    if (ids[0] != tok_bos(fz_tok)) abort();
    for (int i = 0; i <= n; i++)
        if (ids[i] < 0 || ids[i] >= tok_vocab_size(fz_tok)) abort();

    size_t dlen;
    char *back = fz_decode(ids, (size_t)n + 1, &dlen);
    int has_sp, back_sp;
    if (!fz_valid_utf8((const unsigned char *)back, dlen, &back_sp)) abort();
    if (fz_valid_utf8(data, size, &has_sp) && !has_sp) {
        if (dlen != size || memcmp(back, data, size) != 0) abort();
    }
    free(back);
    free(ids);

    /* The input as raw ids, some out of range. */
    size_t n_raw = size / 2;
    int32_t *raw = malloc((n_raw + 1) * sizeof *raw);
    if (!raw) abort();
    int v = tok_vocab_size(fz_tok);
    for (size_t i = 0; i < n_raw; i++) {
        uint16_t x = (uint16_t)(data[2 * i] | data[2 * i + 1] << 8);
        raw[i] = (int32_t)(x % (uint32_t)(v + 16)) - 8;
    }
    back = fz_decode(raw, n_raw, &dlen);
    if (!fz_valid_utf8((const unsigned char *)back, dlen, &back_sp)) abort();
    free(back);
    free(raw);
    return 0;
}
