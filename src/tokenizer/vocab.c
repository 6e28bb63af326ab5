/* vocab.c — the tokenizer's vocabulary: piece storage, token types, the piece -> id hash map
 * and the byte-token table. Every loader (tokenizer.bin, GGUF, in-memory pieces) builds through
 * tok_alloc / tok_add_piece / tok_finish here, so validation and type inference live in one
 * place. */
#include "tokenizer/tok_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: short keys, no adversarial concern beyond probe length (the table is half empty). */
static uint32_t tok_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

weft_tokenizer *tok_alloc(int n_vocab, weft_err *err) {
    if (n_vocab <= 0 || n_vocab > TOK_MAX_VOCAB) {
        weft_errf(err, "tokenizer: vocabulary size %d out of range (1..%d)", n_vocab,
                  TOK_MAX_VOCAB);
        return NULL;
    }
    weft_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        weft_errf(err, "tokenizer: out of memory");
        return NULL;
    }
    t->n_vocab = n_vocab;
    t->arena_cap = (size_t)n_vocab * 8 + 64;
    t->arena = malloc(t->arena_cap);
    t->piece_off = malloc((size_t)n_vocab * sizeof *t->piece_off);
    t->piece_len = malloc((size_t)n_vocab * sizeof *t->piece_len);
    t->scores = malloc((size_t)n_vocab * sizeof *t->scores);
    t->types = malloc((size_t)n_vocab);
    if (!t->arena || !t->piece_off || !t->piece_len || !t->scores || !t->types) {
        tok_free(t);
        weft_errf(err, "tokenizer: out of memory for %d tokens", n_vocab);
        return NULL;
    }
    return t;
}

int tok_add_piece(weft_tokenizer *t, const char *s, size_t len, float score, int type,
                  weft_err *err) {
    if (t->n_set >= t->n_vocab) {
        return weft_errf(err, "tokenizer: more than %d pieces added", t->n_vocab);
    }
    if (len > TOK_MAX_PIECE_BYTES) {
        return weft_errf(err, "tokenizer: token %d is %zu bytes long (limit %d)", t->n_set, len,
                         TOK_MAX_PIECE_BYTES);
    }
    if (isnan(score)) {
        return weft_errf(err, "tokenizer: token %d has a NaN score", t->n_set);
    }
    if (t->arena_len + len + 1 > t->arena_cap) {
        size_t cap = t->arena_cap * 2;
        while (cap < t->arena_len + len + 1) cap *= 2;
        char *a = realloc(t->arena, cap);
        if (!a) return weft_errf(err, "tokenizer: out of memory for pieces");
        t->arena = a;
        t->arena_cap = cap;
    }
    int id = t->n_set++;
    t->piece_off[id] = t->arena_len;
    t->piece_len[id] = (uint32_t)len;
    if (len) memcpy(t->arena + t->arena_len, s, len);
    t->arena[t->arena_len + len] = 0;
    t->arena_len += len + 1;
    t->scores[id] = score;
    t->types[id] = (type >= TOK_NORMAL && type <= TOK_BYTE) ? (uint8_t)type : 0;
    return 0;
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int tok_byte_value(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_val(s[3]), lo = hex_val(s[4]);
    return (hi < 0 || lo < 0) ? -1 : hi * 16 + lo;
}

static uint8_t infer_type(const char *s, size_t len) {
    if (len == 5 && memcmp(s, "<unk>", 5) == 0) return TOK_UNKNOWN;
    if ((len == 3 && memcmp(s, "<s>", 3) == 0) || (len == 4 && memcmp(s, "</s>", 4) == 0))
        return TOK_CONTROL;
    if (tok_byte_value(s, len) >= 0) return TOK_BYTE;
    return TOK_NORMAL;
}

int tok_finish(weft_tokenizer *t, int bos, int eos, int unk, weft_err *err) {
    if (t->n_set != t->n_vocab) {
        return weft_errf(err, "tokenizer: %d of %d pieces given", t->n_set, t->n_vocab);
    }
    int ids[3] = {bos, eos, unk};
    const char *names[3] = {"BOS", "EOS", "unknown"};
    for (int i = 0; i < 3; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            return weft_errf(err, "tokenizer: %s token id %d outside the vocabulary (%d tokens)",
                             names[i], ids[i], t->n_vocab);
        }
    }
    t->bos = bos;
    t->eos = eos;
    t->unk = unk;

    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = tok_piece_ptr(t, id);
        if (!t->types[id]) t->types[id] = infer_type(s, t->piece_len[id]);
        if (t->types[id] == TOK_BYTE) {
            int b = tok_byte_value(s, t->piece_len[id]);
            if (b >= 0 && t->byte_id[b] < 0) t->byte_id[b] = id;
        }
    }

    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_vocab * 2u) cap *= 2;
    t->slots = malloc((size_t)cap * sizeof *t->slots);
    if (!t->slots) return weft_errf(err, "tokenizer: out of memory for the piece index");
    for (uint32_t i = 0; i < cap; i++) t->slots[i] = -1;
    t->slot_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len = t->piece_len[id];
        if (len == 0) continue;
        const char *s = tok_piece_ptr(t, id);
        if (tok_find(t, s, len) >= 0) continue; /* duplicate piece: the first id wins */
        uint32_t h = tok_hash(s, len) & t->slot_mask;
        while (t->slots[h] >= 0) h = (h + 1) & t->slot_mask;
        t->slots[h] = id;
    }
    return 0;
}

int tok_find(const weft_tokenizer *t, const char *s, size_t len) {
    uint32_t h = tok_hash(s, len) & t->slot_mask;
    for (;;) {
        int32_t id = t->slots[h];
        if (id < 0) return -1;
        if (t->piece_len[id] == len && memcmp(tok_piece_ptr(t, id), s, len) == 0) return id;
        h = (h + 1) & t->slot_mask;
    }
}

weft_tokenizer *tok_new_from_pieces(const char *const *pieces, const float *scores,
                                    const int32_t *types, int n, int bos, int eos, int unk,
                                    weft_err *err) {
    if (!pieces) {
        weft_errf(err, "tokenizer: no pieces given");
        return NULL;
    }
    weft_tokenizer *t = tok_alloc(n, err);
    if (!t) return NULL;
    for (int i = 0; i < n; i++) {
        if (!pieces[i]) {
            weft_errf(err, "tokenizer: piece %d is NULL", i);
            goto fail;
        }
        if (tok_add_piece(t, pieces[i], strlen(pieces[i]), scores ? scores[i] : 0.0f,
                          types ? types[i] : 0, err) != 0)
            goto fail;
    }
    if (tok_finish(t, bos, eos, unk, err) != 0) goto fail;
    return t;
fail:
    tok_free(t);
    return NULL;
}

void tok_free(weft_tokenizer *t) {
    if (!t) return;
    free(t->arena);
    free(t->piece_off);
    free(t->piece_len);
    free(t->scores);
    free(t->types);
    free(t->slots);
    free(t);
}

int tok_vocab_size(const weft_tokenizer *t) { return t->n_vocab; }
int tok_bos(const weft_tokenizer *t) { return t->bos; }
int tok_eos(const weft_tokenizer *t) { return t->eos; }

const char *tok_piece(const weft_tokenizer *t, int id) {
    return (id >= 0 && id < t->n_vocab) ? tok_piece_ptr(t, id) : NULL;
}

float tok_score(const weft_tokenizer *t, int id) {
    return (id >= 0 && id < t->n_vocab) ? t->scores[id] : 0.0f;
}

tok_type tok_type_of(const weft_tokenizer *t, int id) {
    return (id >= 0 && id < t->n_vocab) ? (tok_type)t->types[id] : TOK_UNUSED;
}
