/* tokenizer.h — SentencePiece-style BPE tokenizer (LLaMA "spm" vocabularies) with byte fallback.
 * Loaded from GGUF metadata (tokenizer.ggml.*) or from a llama2.c tokenizer.bin.
 * Encoding follows SentencePiece as llama.cpp applies it: a dummy-prefix space is added,
 * spaces become U+2581, pieces are merged by highest score, unknown characters fall back to
 * <0xXX> byte tokens. Decoding is streaming-safe: bytes of an incomplete UTF-8 character are
 * held back until the character is complete. */
#ifndef WEFT_TOKENIZER_H
#define WEFT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "weft/error.h"

struct gguf_file;

typedef enum tok_type {
    TOK_NORMAL = 1,
    TOK_UNKNOWN = 2,
    TOK_CONTROL = 3,
    TOK_USER_DEFINED = 4,
    TOK_UNUSED = 5,
    TOK_BYTE = 6,
} tok_type;

typedef struct weft_tokenizer weft_tokenizer;

/* From GGUF metadata: tokenizer.ggml.model must be "llama"; uses tokens, scores, token_type,
 * bos/eos/unknown ids. */
weft_tokenizer *tok_load_gguf(const struct gguf_file *f, weft_err *err);
/* From a llama2.c tokenizer.bin holding vocab_size entries. Token types are inferred:
 * <0xXX> pieces are BYTE, <unk> UNKNOWN, <s> and </s> CONTROL. */
weft_tokenizer *tok_load_bin(const char *path, int vocab_size, weft_err *err);
void tok_free(weft_tokenizer *t);
/* Builds a tokenizer in memory from n pieces written in SentencePiece convention (U+2581 for
 * space, "<0x0A>" for byte tokens). scores and types may be NULL (all 0 / inferred from the
 * text as for tok_load_bin); a type outside TOK_NORMAL..TOK_BYTE is inferred too. bos, eos and
 * unk must be ids in range. Used by tests and fuzzers that need a vocabulary without a file. */
weft_tokenizer *tok_new_from_pieces(const char *const *pieces, const float *scores,
                                    const int32_t *types, int n, int bos, int eos, int unk,
                                    weft_err *err);

int tok_vocab_size(const weft_tokenizer *t);
int tok_bos(const weft_tokenizer *t);
int tok_eos(const weft_tokenizer *t);
/* Raw piece text (with U+2581 for space, "<0x0A>" for byte tokens), or NULL when out of range. */
const char *tok_piece(const weft_tokenizer *t, int id);
float tok_score(const weft_tokenizer *t, int id);
tok_type tok_type_of(const weft_tokenizer *t, int id);

/* Encodes text[0..len). Writes at most max_out ids to out and returns the total number of ids
 * the encoding has (which may exceed max_out: call again with a larger buffer), or -1 on error.
 * add_bos prepends BOS. The dummy-prefix space is always applied to non-empty text. */
int tok_encode(const weft_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t *out,
               int max_out);

/* Streaming decoder: feed ids one by one, get the bytes that are ready to print. */
typedef struct tok_decoder {
    const weft_tokenizer *tok;
    int prev;             /* previous id fed, -1 at start */
    unsigned char pend[8]; /* bytes of an unfinished UTF-8 character */
    int n_pend;
} tok_decoder;

void tok_decoder_init(tok_decoder *d, const weft_tokenizer *t);
/* Appends the text completed by token id to out (NUL-terminated; returns bytes written, or -1 if
 * out_size is too small — 64 bytes always suffices). Control tokens produce no text; the leading
 * space of the first piece after BOS is dropped, as SentencePiece does. */
int tok_decoder_feed(tok_decoder *d, int id, char *out, size_t out_size);
/* Emits what is still pending (invalid partial sequences become U+FFFD). */
int tok_decoder_flush(tok_decoder *d, char *out, size_t out_size);

#endif
