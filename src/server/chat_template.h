/* chat_template.h — turning chat messages into prompt tokens. Three well-known formats are
 * built in (Llama-2 [INST]/<<SYS>>, ChatML <|im_start|>, Zephyr <|user|>) plus "raw" (the
 * message contents joined by blank lines). The format comes from the GGUF metadata
 * (tokenizer.chat_template, recognised by its markers, else general.name) unless forced.
 * Control tokens (BOS, EOS, <|im_start|>, <|im_end|>) are inserted as ids, never as text the
 * tokenizer would spell out; the text between them is encoded piece by piece. */
#ifndef WEFT_SERVER_CHAT_TEMPLATE_H
#define WEFT_SERVER_CHAT_TEMPLATE_H

#include <stdint.h>

#include "weft/model.h"

typedef enum chat_kind { CHAT_RAW = 0, CHAT_LLAMA2, CHAT_CHATML, CHAT_ZEPHYR } chat_kind;

typedef struct chat_template {
    chat_kind kind;
    int bos, eos;
    int im_start, im_end; /* ChatML control tokens, -1 when the vocabulary lacks them */
} chat_template;

typedef enum chat_role { CHAT_SYSTEM = 0, CHAT_USER, CHAT_ASSISTANT } chat_role;

typedef struct chat_msg {
    chat_role role;
    const char *content;
    size_t len;
} chat_msg;

const char *chat_kind_name(chat_kind k);
/* name: "llama2", "chatml", "zephyr", "raw", or NULL/"" to detect from the model. */
int chat_template_init(chat_template *t, const weft_model *m, const char *name);
/* Renders msgs (n >= 1) ending with the assistant's turn opened. *out is malloc'd.
 * Returns the token count, or -1 on allocation failure. */
int chat_render(const chat_template *t, const weft_model *m, const chat_msg *msgs, int n,
                int32_t **out);
/* The token that ends the assistant's turn besides the model's stop ids, or -1. */
int chat_end_token(const chat_template *t);

#endif
