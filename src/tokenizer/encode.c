/* encode.c — text -> token ids, SentencePiece BPE as llama.cpp applies it to "llama" (spm)
 * vocabularies. The text gets a dummy-prefix space, every space becomes U+2581, the result is
 * split into UTF-8 characters, and adjacent symbols are merged greedily: always the pair whose
 * concatenation is the highest-scoring vocabulary piece (leftmost on ties). A max-heap of
 * candidate pairs keeps this O(n log n); stale candidates are dropped when popped. Symbols left
 * that are not pieces fall back to <0xXX> byte tokens (or <unk> without them).
 * Unlike llama.cpp, and like SentencePiece, merges only ever produce normal or user-defined
 * pieces, so literal text such as "<s>" or "<0x41>" never becomes a control or byte token. */
#include "tokenizer/tok_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct tok_sym {
    size_t start; /* byte offset in the normalised text */
    size_t len;   /* 0 once merged into its left neighbour */
    int prev, next;
} tok_sym;

typedef struct tok_bigram {
    float score;
    int left, right;
    size_t len; /* combined length when proposed; a mismatch later means it is stale */
} tok_bigram;

typedef struct tok_heap {
    tok_bigram *v;
    size_t n;
} tok_heap;

size_t tok_utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0; /* no overlong forms */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 1;
    }
    if (n < need || s[1] < lo || s[1] > hi) return 1;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    return need;
}

/* a ranks before b: higher score, then further left. */
static int bigram_before(const tok_bigram *a, const tok_bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(tok_heap *h, tok_bigram b) {
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[parent])) break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = b;
}

static tok_bigram heap_pop(tok_heap *h) {
    tok_bigram top = h->v[0];
    tok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* Proposes merging symbols left and right if their concatenation is a mergeable piece. */
static void propose(const weft_tokenizer *t, const char *text, const tok_sym *sym, tok_heap *h,
                    int left, int right) {
    if (left < 0 || right < 0) return;
    size_t len = sym[left].len + sym[right].len;
    int id = tok_find(t, text + sym[left].start, len);
    if (!tok_is_mergeable(t, id)) return;
    tok_bigram b = {t->scores[id], left, right, len};
    heap_push(h, b);
}

/* Appends id to out if there is room; *n counts every id either way. */
static void emit(int32_t *out, int max_out, int *n, int id) {
    if (*n < max_out) out[*n] = id;
    (*n)++;
}

static void emit_symbol(const weft_tokenizer *t, const char *text, const tok_sym *s,
                        int32_t *out, int max_out, int *n) {
    int id = tok_find(t, text + s->start, s->len);
    if (tok_is_mergeable(t, id)) {
        emit(out, max_out, n, id);
        return;
    }
    const unsigned char *b = (const unsigned char *)text + s->start;
    for (size_t i = 0; i < s->len; i++) {
        if (t->byte_id[b[i]] < 0) { /* no byte fallback for this character */
            emit(out, max_out, n, t->unk);
            return;
        }
    }
    for (size_t i = 0; i < s->len; i++) emit(out, max_out, n, t->byte_id[b[i]]);
}

int tok_encode(const weft_tokenizer *t, const char *text, size_t len, bool add_bos, int32_t *out,
               int max_out) {
    if (!t || (!text && len > 0) || (!out && max_out > 0)) return -1;
    if (len > (size_t)INT_MAX / 8) return -1; /* keeps every count below INT_MAX */
    if (max_out < 0) max_out = 0;
    int n_out = 0;
    if (add_bos) emit(out, max_out, &n_out, t->bos);
    if (len == 0) return n_out;

    /* Normalise: dummy prefix, spaces to U+2581. */
    size_t cap = (len + 1) * TOK_SPACE_LEN;
    char *norm = malloc(cap);
    tok_sym *sym = NULL;
    tok_heap heap = {NULL, 0};
    int result = -1;
    if (!norm) goto out;
    size_t nlen = 0;
    memcpy(norm, TOK_SPACE_UTF8, TOK_SPACE_LEN);
    nlen = TOK_SPACE_LEN;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(norm + nlen, TOK_SPACE_UTF8, TOK_SPACE_LEN);
            nlen += TOK_SPACE_LEN;
        } else {
            norm[nlen++] = text[i];
        }
    }

    /* One symbol per character. */
    sym = malloc(nlen * sizeof *sym);
    if (!sym) goto out;
    int n_sym = 0;
    for (size_t off = 0; off < nlen;) {
        size_t cl = tok_utf8_len((const unsigned char *)norm + off, nlen - off);
        sym[n_sym] = (tok_sym){off, cl, n_sym - 1, n_sym + 1};
        n_sym++;
        off += cl;
    }
    sym[n_sym - 1].next = -1;

    /* Each merge retires one pair and proposes at most two: 3n bounds the heap. */
    heap.v = malloc((size_t)n_sym * 3 * sizeof *heap.v);
    if (!heap.v) goto out;
    for (int i = 0; i + 1 < n_sym; i++) propose(t, norm, sym, &heap, i, i + 1);
    while (heap.n) {
        tok_bigram b = heap_pop(&heap);
        tok_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->len == 0 || r->len == 0 || l->next != b.right || l->len + r->len != b.len)
            continue; /* stale: one side has merged since */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        propose(t, norm, sym, &heap, l->prev, b.left);
        propose(t, norm, sym, &heap, b.left, l->next);
    }

    for (int i = 0; i >= 0; i = sym[i].next) emit_symbol(t, norm, &sym[i], out, max_out, &n_out);
    result = n_out;
out:
    free(heap.v);
    free(sym);
    free(norm);
    return result;
}
