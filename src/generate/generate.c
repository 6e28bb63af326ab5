/* generate.c — one sequence from prompt to stop (see include/weft/generate.h). The whole
 * context is one KV block, the dense layout for a batch of one. */
#include "weft/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/forward.h"
#include "weft/kv.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *gen_stop_name(gen_stop r) {
    switch (r) {
    case GEN_STOP_LENGTH: return "length";
    case GEN_STOP_EOS: return "eos";
    case GEN_STOP_STRING: return "stop_string";
    case GEN_STOP_CONTEXT: return "context";
    }
    return "?";
}

static bool is_end_token(const weft_config *c, int id) {
    /* A document boundary (BOS) ends generation too: small story models mark the end of a
     * story by starting the next one. */
    if (id == c->bos_id) return true;
    for (int i = 0; i < c->n_stop_ids; i++)
        if (c->stop_ids[i] == id) return true;
    return false;
}

typedef struct gen_state {
    const weft_model *m;
    weft_forward *fwd;
    kv_store *kv;
    weft_sampler *smp;
    int32_t *tokens;  /* prompt + generated */
    float *logits;
    int32_t *pos, *seq;
    uint8_t *want;
} gen_state;

static void gen_state_free(gen_state *s) {
    fwd_free(s->fwd);
    kv_store_free(s->kv);
    sampler_free(s->smp);
    free(s->tokens);
    free(s->logits);
    free(s->pos);
    free(s->seq);
    free(s->want);
}

int generate(const weft_model *m, tp_pool *pool, const gen_params *p, gen_emit_fn emit,
             void *emit_ctx, int *out_ids, int max_ids, gen_stats *stats, weft_err *err) {
    const weft_config *c = &m->cfg;
    int ctx = p->ctx_len > 0 ? p->ctx_len : c->ctx_len;
    int chunk = p->prefill_chunk > 0 ? p->prefill_chunk : 256;
    if (p->n_predict < 0) return weft_errf(err, "generate: n_predict must be >= 0");
    memset(stats, 0, sizeof *stats);

    gen_state s = {.m = m};
    int rc = -1;
    const char *prompt = p->prompt ? p->prompt : "";
    size_t plen = strlen(prompt);
    int n_prompt = tok_encode(m->tok, prompt, plen, true, NULL, 0);
    if (n_prompt < 0) return weft_errf(err, "generate: the prompt could not be tokenized");
    if (n_prompt >= ctx)
        return weft_errf(err, "generate: the prompt is %d tokens, the context holds %d", n_prompt, ctx);
    if (chunk > ctx) chunk = ctx;

    stop_matcher stop;
    if (stop_init(&stop, p->stop_strs, p->n_stop_strs) != 0)
        return weft_errf(err, "generate: at most %d stop strings of at most %d bytes",
                         STOP_MAX_STRINGS, STOP_MAX_LEN);

    s.tokens = malloc(sizeof(int32_t) * (size_t)ctx);
    s.logits = malloc(sizeof(float) * (size_t)c->vocab_size);
    s.pos = malloc(sizeof(int32_t) * (size_t)chunk);
    s.seq = calloc((size_t)chunk, sizeof(int32_t));
    s.want = calloc((size_t)chunk, 1);
    s.smp = sampler_new(&p->sampling, c->vocab_size);
    if (!s.tokens || !s.logits || !s.pos || !s.seq || !s.want || !s.smp) {
        weft_errf(err, "out of memory");
        goto done;
    }
    s.kv = kv_store_new_typed(c->n_layers, c->n_kv_heads, c->head_dim, ctx, 1, p->kv_type, err);
    if (!s.kv) goto done;
    s.fwd = fwd_new(m, pool, chunk, ctx, err);
    if (!s.fwd) goto done;
    if (tok_encode(m->tok, prompt, plen, true, s.tokens, ctx) != n_prompt) {
        weft_errf(err, "generate: tokenizer returned an inconsistent count");
        goto done;
    }
    stats->n_prompt = n_prompt;

    int32_t block0 = 0;
    kv_seq seqv = {.blocks = &block0, .n_blocks = 1};
    double t0 = now_s();
    /* prefill: chunks of the prompt; logits only for the very last prompt token */
    for (int at = 0; at < n_prompt; at += chunk) {
        int n = n_prompt - at < chunk ? n_prompt - at : chunk;
        for (int i = 0; i < n; i++) {
            s.pos[i] = at + i;
            s.want[i] = (at + i == n_prompt - 1);
        }
        weft_batch b = {.n_tokens = n, .token = s.tokens + at, .pos = s.pos, .seq = s.seq,
                        .want_logits = s.want, .n_seqs = 1, .seqs = &seqv};
        if (fwd_run(s.fwd, s.kv, &b, s.logits, err) != 0) goto done;
    }
    double t1 = now_s();
    stats->prefill_s = t1 - t0;

    tok_decoder dec;
    tok_decoder_init(&dec, m->tok);
    /* The last prompt token is context for spacing only: a prompt ending in an incomplete
     * UTF-8 sequence must not leave bytes pending that would corrupt the first generated text. */
    tok_decoder_feed(&dec, s.tokens[n_prompt - 1], (char[64]){0}, 64);
    dec.n_pend = 0;
    char piece[64];
    char out[sizeof piece + sizeof stop.held];
    int n_tok = n_prompt;
    stats->reason = GEN_STOP_LENGTH;
    s.want[0] = 1;
    for (int g = 0; g < p->n_predict; g++) {
        int next = sampler_sample(s.smp, s.logits, s.tokens, n_tok);
        if (!p->ignore_eos && is_end_token(c, next)) {
            stats->reason = GEN_STOP_EOS;
            break;
        }
        s.tokens[n_tok++] = next;
        if (out_ids && stats->n_generated < max_ids) out_ids[stats->n_generated] = next;
        stats->n_generated++;
        int np = tok_decoder_feed(&dec, next, piece, sizeof piece);
        if (np > 0) {
            size_t no = stop_feed(&stop, piece, (size_t)np, out, sizeof out);
            if (no > 0 && emit) emit(emit_ctx, out, no);
            if (stop.stopped) {
                stats->reason = GEN_STOP_STRING;
                break;
            }
        }
        if (g + 1 == p->n_predict) break; /* the last token needs no forward pass */
        if (n_tok >= ctx) {
            stats->reason = GEN_STOP_CONTEXT;
            break;
        }
        s.pos[0] = n_tok - 1;
        weft_batch b = {.n_tokens = 1, .token = &s.tokens[n_tok - 1], .pos = s.pos, .seq = s.seq,
                        .want_logits = s.want, .n_seqs = 1, .seqs = &seqv};
        if (fwd_run(s.fwd, s.kv, &b, s.logits, err) != 0) goto done;
    }
    if (!stop.stopped) {
        int np = tok_decoder_flush(&dec, piece, sizeof piece);
        size_t no = np > 0 ? stop_feed(&stop, piece, (size_t)np, out, sizeof out) : 0;
        if (no > 0 && emit) emit(emit_ctx, out, no);
        no = stop_flush(&stop, out, sizeof out);
        if (no > 0 && emit) emit(emit_ctx, out, no);
    }
    stats->decode_s = now_s() - t1;
    rc = 0;
done:
    gen_state_free(&s);
    return rc;
}
