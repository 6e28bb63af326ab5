/* decode.c — the streaming decoder: token ids -> printable UTF-8, one id at a time.
 * Normal pieces print with U+2581 turned back into ' '; byte tokens contribute raw bytes;
 * control and unused tokens print nothing; <unk> prints U+2047 ("⁇") as SentencePiece does.
 * All bytes pass through one UTF-8 assembler, so a character spread over several byte tokens is
 * emitted only once complete, and malformed sequences become U+FFFD (one per maximal invalid
 * subpart). The dummy-prefix space is dropped from the first piece of the stream and from the
 * first piece after a control token (BOS), mirroring the encoder. */
#include "tokenizer/tok_internal.h"

#include <string.h>

#define REPLACEMENT_UTF8 "\xef\xbf\xbd"
#define UNK_UTF8 "\xe2\x81\x87"

typedef struct dec_out {
    char *p;
    size_t size, n;
    bool overflow;
} dec_out;

static void put(dec_out *o, const void *s, size_t n) {
    if (o->overflow || o->n + n + 1 > o->size) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* Bytes a lead byte announces (0 when it cannot start a character), and the allowed range of
 * the byte after it. */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0) *lo = 0xA0;
        if (c == 0xED) *hi = 0x9F;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0) *lo = 0x90;
        if (c == 0xF4) *hi = 0x8F;
        return 4;
    }
    return 0;
}

static void put_byte(tok_decoder *d, dec_out *o, unsigned char c) {
    for (;;) {
        if (d->n_pend == 0) {
            unsigned char lo, hi;
            if (c < 0x80) {
                put(o, &c, 1);
            } else if (utf8_lead(c, &lo, &hi)) {
                d->pend[d->n_pend++] = c;
            } else {
                put(o, REPLACEMENT_UTF8, 3);
            }
            return;
        }
        unsigned char lo, hi;
        int need = utf8_lead(d->pend[0], &lo, &hi);
        if (d->n_pend > 1) {
            lo = 0x80;
            hi = 0xBF;
        }
        if (c >= lo && c <= hi) {
            d->pend[d->n_pend++] = c;
            if (d->n_pend == need) {
                put(o, d->pend, (size_t)need);
                d->n_pend = 0;
            }
            return;
        }
        /* The pending prefix can never complete: replace it, then reconsider c afresh. */
        put(o, REPLACEMENT_UTF8, 3);
        d->n_pend = 0;
    }
}

static void put_text(tok_decoder *d, dec_out *o, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) put_byte(d, o, (unsigned char)s[i]);
}

void tok_decoder_init(tok_decoder *d, const weft_tokenizer *t) {
    memset(d, 0, sizeof *d);
    d->tok = t;
    d->prev = -1;
}

static int finish(dec_out *o, tok_decoder *d, const tok_decoder *saved) {
    if (o->overflow) {
        *d = *saved; /* nothing consumed: the caller may retry with a larger buffer */
        if (o->size) o->p[0] = 0;
        return -1;
    }
    o->p[o->n] = 0;
    return (int)o->n;
}

int tok_decoder_feed(tok_decoder *d, int id, char *out, size_t out_size) {
    const weft_tokenizer *t = d->tok;
    const tok_decoder saved = *d;
    dec_out o = {out, out_size, 0, out_size == 0 || !out};
    if (o.overflow) return -1;
    bool at_start = d->prev < 0 || (d->prev < t->n_vocab && t->types[d->prev] == TOK_CONTROL);
    if (id < 0 || id >= t->n_vocab) return finish(&o, d, &saved); /* invalid ids print nothing */
    d->prev = id;
    switch (t->types[id]) {
    case TOK_CONTROL:
    case TOK_UNUSED:
        break;
    case TOK_UNKNOWN:
        put_text(d, &o, UNK_UTF8, 3);
        break;
    case TOK_BYTE: {
        const char *s = tok_piece_ptr(t, id);
        int v = tok_byte_value(s, t->piece_len[id]);
        if (v >= 0) {
            unsigned char c = (unsigned char)v;
            put_byte(d, &o, c);
        } else {
            put_text(d, &o, s, t->piece_len[id]); /* typed BYTE but not <0xXX>: print as text */
        }
        break;
    }
    default: {
        const char *s = tok_piece_ptr(t, id);
        size_t n = t->piece_len[id];
        if (at_start && n >= TOK_SPACE_LEN && memcmp(s, TOK_SPACE_UTF8, TOK_SPACE_LEN) == 0) {
            s += TOK_SPACE_LEN;
            n -= TOK_SPACE_LEN;
        }
        size_t i = 0, run = 0; /* copy runs between U+2581s in one go */
        while (i < n) {
            if (n - i >= TOK_SPACE_LEN && memcmp(s + i, TOK_SPACE_UTF8, TOK_SPACE_LEN) == 0) {
                put_text(d, &o, s + run, i - run);
                put_byte(d, &o, ' ');
                i += TOK_SPACE_LEN;
                run = i;
            } else {
                i++;
            }
        }
        put_text(d, &o, s + run, n - run);
        break;
    }
    }
    return finish(&o, d, &saved);
}

int tok_decoder_flush(tok_decoder *d, char *out, size_t out_size) {
    const tok_decoder saved = *d;
    dec_out o = {out, out_size, 0, out_size == 0 || !out};
    if (o.overflow) return -1;
    if (d->n_pend) put(&o, REPLACEMENT_UTF8, 3);
    d->n_pend = 0;
    return finish(&o, d, &saved);
}
