/* tok_internal.h — the tokenizer's private representation, shared by the files of
 * src/tokenizer/ (vocabulary, loaders, encoder, decoder) and by nothing else.
 * Pieces are stored in one convention only: SentencePiece's, with U+2581 ("▁") for a space and
 * "<s>"/"</s>" for the control tokens, whatever the file they came from used. */
#ifndef WEFT_TOK_INTERNAL_H
#define WEFT_TOK_INTERNAL_H

#include "weft/tokenizer.h"

#include <stddef.h>
#include <stdint.h>

/* Upper bound on vocabulary size accepted from any file (largest real vocabularies are ~256k). */
#define TOK_MAX_VOCAB (1 << 22)
/* Upper bound on one piece's length in bytes; real pieces are a few dozen bytes. */
#define TOK_MAX_PIECE_BYTES 4096

#define TOK_SPACE_UTF8 "\xe2\x96\x81" /* U+2581, SentencePiece's visible space */
#define TOK_SPACE_LEN 3

struct weft_tokenizer {
    int n_vocab;
    int n_set;          /* pieces added so far while building */
    char *arena;        /* all pieces, each NUL-terminated */
    size_t arena_len, arena_cap;
    size_t *piece_off;  /* offset of piece i in arena */
    uint32_t *piece_len;
    float *scores;
    uint8_t *types;     /* tok_type values */
    int bos, eos, unk;
    int byte_id[256];   /* id of <0xXX>, or -1 when the vocabulary has no such token */
    /* piece -> id: open addressing with linear probing, capacity a power of two */
    int32_t *slots;
    uint32_t slot_mask;
};

/* Building a vocabulary: tok_alloc, then tok_add_piece for ids 0..n-1 in order, then
 * tok_finish. type 0 means "infer from the piece text". On failure each returns NULL/-1 with
 * err filled; the caller then frees with tok_free. */
weft_tokenizer *tok_alloc(int n_vocab, weft_err *err);
int tok_add_piece(weft_tokenizer *t, const char *s, size_t len, float score, int type,
                  weft_err *err);
int tok_finish(weft_tokenizer *t, int bos, int eos, int unk, weft_err *err);

/* Id of the piece s[0..len) (SentencePiece convention), or -1. */
int tok_find(const weft_tokenizer *t, const char *s, size_t len);

/* Whether a BPE merge may produce this token: SentencePiece only merges into normal and
 * user-defined pieces (never control, unknown, byte or unused ones). */
static inline int tok_is_mergeable(const weft_tokenizer *t, int id) {
    return id >= 0 && (t->types[id] == TOK_NORMAL || t->types[id] == TOK_USER_DEFINED);
}

/* Byte value of a "<0xXX>" piece, or -1. */
int tok_byte_value(const char *s, size_t len);

/* Length of the well-formed UTF-8 character at s[0..n) (n >= 1), or 1 when the bytes there
 * are not one (a stray or truncated byte is a character of its own). */
size_t tok_utf8_len(const unsigned char *s, size_t n);

static inline const char *tok_piece_ptr(const weft_tokenizer *t, int id) {
    return t->arena + t->piece_off[id];
}

#endif
