/* chat_template.c — see chat_template.h. The renderer appends text segments (each encoded on
 * its own, so each gets SentencePiece's dummy-prefix space, as llama.cpp does for text between
 * special tokens) and control-token ids to one growing token list. */
#include "server/chat_template.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "weft/gguf.h"

const char *chat_kind_name(chat_kind k) {
    switch (k) {
    case CHAT_LLAMA2: return "llama2";
    case CHAT_CHATML: return "chatml";
    case CHAT_ZEPHYR: return "zephyr";
    case CHAT_RAW: return "raw";
    }
    return "raw";
}

static int find_piece(const weft_tokenizer *tok, const char *s) {
    int n = tok_vocab_size(tok);
    for (int i = 0; i < n; i++) {
        const char *p = tok_piece(tok, i);
        if (p && !strcmp(p, s)) return i;
    }
    return -1;
}

static bool contains_ci(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && (hay[i] | 32) == (needle[i] | 32))
            i++;
        if (i == n) return true;
    }
    return false;
}

static chat_kind detect(const weft_model *m) {
    if (!m->gguf) return CHAT_RAW;
    const char *tmpl = gguf_get_str(m->gguf, "tokenizer.chat_template");
    if (tmpl) {
        if (strstr(tmpl, "<|im_start|>")) return CHAT_CHATML;
        if (strstr(tmpl, "<|user|>")) return CHAT_ZEPHYR;
        if (strstr(tmpl, "[INST]")) return CHAT_LLAMA2;
    }
    const char *name = gguf_get_str(m->gguf, "general.name");
    if (name) {
        if (contains_ci(name, "zephyr")) return CHAT_ZEPHYR;
        if (contains_ci(name, "chatml") || contains_ci(name, "hermes") ||
            contains_ci(name, "qwen"))
            return CHAT_CHATML;
        if ((contains_ci(name, "llama-2") || contains_ci(name, "llama2")) &&
            contains_ci(name, "chat"))
            return CHAT_LLAMA2;
    }
    return CHAT_RAW;
}

int chat_template_init(chat_template *t, const weft_model *m, const char *name) {
    memset(t, 0, sizeof *t);
    if (!name || !*name) t->kind = detect(m);
    else if (!strcmp(name, "llama2")) t->kind = CHAT_LLAMA2;
    else if (!strcmp(name, "chatml")) t->kind = CHAT_CHATML;
    else if (!strcmp(name, "zephyr")) t->kind = CHAT_ZEPHYR;
    else if (!strcmp(name, "raw")) t->kind = CHAT_RAW;
    else return -1;
    t->bos = tok_bos(m->tok);
    t->eos = tok_eos(m->tok);
    t->im_start = find_piece(m->tok, "<|im_start|>");
    t->im_end = find_piece(m->tok, "<|im_end|>");
    return 0;
}

int chat_end_token(const chat_template *t) {
    return t->kind == CHAT_CHATML ? t->im_end : -1;
}

/* ---- the token list ---- */

typedef struct toks {
    int32_t *v;
    int n, cap;
    bool oom;
} toks;

static void add_id(toks *t, int id) {
    if (t->oom || id < 0) return;
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 256;
        int32_t *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v) {
            t->oom = true;
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = id;
}

static void add_text(toks *t, const weft_model *m, const char *s, size_t len) {
    if (t->oom || len == 0) return;
    int need = tok_encode(m->tok, s, len, false, NULL, 0);
    if (need < 0) {
        t->oom = true;
        return;
    }
    while (t->cap - t->n < need && !t->oom) {
        int cap = t->cap ? t->cap * 2 : 256;
        int32_t *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v) t->oom = true;
        else {
            t->v = v;
            t->cap = cap;
        }
    }
    if (t->oom) return;
    if (tok_encode(m->tok, s, len, false, t->v + t->n, need) != need) {
        t->oom = true;
        return;
    }
    t->n += need;
}

/* Text built from parts, then encoded as one segment. */
typedef struct seg {
    char *s;
    size_t n, cap;
    bool oom;
} seg;

static void seg_add(seg *g, const char *s, size_t n) {
    if (g->oom) return;
    if (g->n + n + 1 > g->cap) {
        size_t cap = g->cap ? g->cap : 256;
        while (cap < g->n + n + 1)
            cap *= 2;
        char *p = realloc(g->s, cap);
        if (!p) {
            g->oom = true;
            return;
        }
        g->s = p;
        g->cap = cap;
    }
    memcpy(g->s + g->n, s, n);
    g->n += n;
    g->s[g->n] = 0;
}

static void seg_str(seg *g, const char *s) { seg_add(g, s, strlen(s)); }

/* Encodes the pending segment text and clears it. */
static void seg_flush(seg *g, toks *t, const weft_model *m) {
    if (g->oom) t->oom = true;
    add_text(t, m, g->s ? g->s : "", g->n);
    g->n = 0;
}

/* A control token when the vocabulary has it, else its text. */
static void special(toks *t, seg *g, const weft_model *m, int id, const char *text) {
    if (id >= 0) {
        seg_flush(g, t, m);
        add_id(t, id);
    } else {
        seg_str(g, text);
    }
}

static const char *role_name(chat_role r) {
    return r == CHAT_SYSTEM ? "system" : r == CHAT_USER ? "user" : "assistant";
}

static void render_llama2(toks *t, seg *g, const weft_model *m, const chat_template *ct,
                          const chat_msg *msgs, int n) {
    /* System messages join the first user turn inside <<SYS>>. */
    seg sys = {0};
    for (int i = 0; i < n; i++)
        if (msgs[i].role == CHAT_SYSTEM) {
            if (sys.n) seg_str(&sys, "\n");
            seg_add(&sys, msgs[i].content, msgs[i].len);
        }
    bool first = true, open = false;
    for (int i = 0; i < n; i++) {
        if (msgs[i].role == CHAT_USER) {
            add_id(t, ct->bos);
            seg_str(g, "[INST] ");
            if (first && sys.n) {
                seg_str(g, "<<SYS>>\n");
                seg_add(g, sys.s, sys.n);
                seg_str(g, "\n<</SYS>>\n\n");
            }
            first = false;
            seg_add(g, msgs[i].content, msgs[i].len);
            seg_str(g, " [/INST]");
            seg_flush(g, t, m);
            open = true;
        } else if (msgs[i].role == CHAT_ASSISTANT) {
            if (!open) { /* an assistant turn without a user turn before it */
                add_id(t, ct->bos);
            }
            seg_add(g, msgs[i].content, msgs[i].len);
            seg_flush(g, t, m);
            add_id(t, ct->eos);
            open = false;
        }
    }
    if (!open) { /* the conversation must end with a user turn to answer: open an empty one */
        add_id(t, ct->bos);
        seg_str(g, "[INST] ");
        if (first && sys.n) {
            seg_str(g, "<<SYS>>\n");
            seg_add(g, sys.s, sys.n);
            seg_str(g, "\n<</SYS>>\n\n");
        }
        seg_str(g, " [/INST]");
        seg_flush(g, t, m);
    }
    if (sys.oom) t->oom = true;
    free(sys.s);
}

static void render_chatml(toks *t, seg *g, const weft_model *m, const chat_template *ct,
                          const chat_msg *msgs, int n) {
    add_id(t, ct->bos);
    for (int i = 0; i < n; i++) {
        special(t, g, m, ct->im_start, "<|im_start|>");
        seg_str(g, role_name(msgs[i].role));
        seg_str(g, "\n");
        seg_add(g, msgs[i].content, msgs[i].len);
        special(t, g, m, ct->im_end, "<|im_end|>");
        seg_str(g, "\n");
    }
    special(t, g, m, ct->im_start, "<|im_start|>");
    seg_str(g, "assistant\n");
    seg_flush(g, t, m);
}

static void render_zephyr(toks *t, seg *g, const weft_model *m, const chat_template *ct,
                          const chat_msg *msgs, int n) {
    add_id(t, ct->bos);
    for (int i = 0; i < n; i++) {
        if (i) seg_str(g, "\n");
        seg_str(g, "<|");
        seg_str(g, role_name(msgs[i].role));
        seg_str(g, "|>\n");
        seg_add(g, msgs[i].content, msgs[i].len);
        special(t, g, m, ct->eos, "</s>");
    }
    seg_str(g, "\n<|assistant|>\n");
    seg_flush(g, t, m);
}

static void render_raw(toks *t, seg *g, const weft_model *m, const chat_template *ct,
                       const chat_msg *msgs, int n) {
    add_id(t, ct->bos);
    for (int i = 0; i < n; i++) {
        if (i) seg_str(g, "\n\n");
        seg_add(g, msgs[i].content, msgs[i].len);
    }
    seg_flush(g, t, m);
}

int chat_render(const chat_template *ct, const weft_model *m, const chat_msg *msgs, int n,
                int32_t **out) {
    toks t = {0};
    seg g = {0};
    switch (ct->kind) {
    case CHAT_LLAMA2: render_llama2(&t, &g, m, ct, msgs, n); break;
    case CHAT_CHATML: render_chatml(&t, &g, m, ct, msgs, n); break;
    case CHAT_ZEPHYR: render_zephyr(&t, &g, m, ct, msgs, n); break;
    case CHAT_RAW: render_raw(&t, &g, m, ct, msgs, n); break;
    }
    if (g.oom) t.oom = true;
    free(g.s);
    if (t.oom) {
        free(t.v);
        return -1;
    }
    *out = t.v;
    return t.n;
}
