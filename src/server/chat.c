/* chat.c — POST /v1/chat/completions: messages rendered through the chat template, the reply
 * shaped as OpenAI's chat.completion / chat.completion.chunk objects. */
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

json_t *chat_final(gen_job *j) {
    json_t *o = oai_envelope(j, "chat.completion");
    if (!o) return NULL;
    json_object_set_new(
        o, "choices",
        json_pack("[{s:i, s:{s:s, s:o}, s:o, s:s}]", "index", 0, "message", "role", "assistant",
                  "content", gen_take_text(j), "logprobs", gen_take_lp(j), "finish_reason",
                  j->finish_reason));
    json_object_set_new(o, "usage", gen_usage(j));
    return o;
}

json_t *chat_chunk(gen_job *j, bool role, const char *finish) {
    json_t *o = oai_envelope(j, "chat.completion.chunk");
    if (!o) return NULL;
    json_t *delta = json_object();
    if (role) {
        json_object_set_new(delta, "role", json_string("assistant"));
        json_object_set_new(delta, "content", json_string(""));
    } else if (!finish) {
        json_object_set_new(delta, "content", gen_take_text(j));
    }
    json_object_set_new(o, "choices",
                        json_pack("[{s:i, s:o, s:o, s:o}]", "index", 0, "delta", delta,
                                  "logprobs", role || finish ? json_null() : gen_take_lp(j),
                                  "finish_reason", finish ? json_string(finish) : json_null()));
    if (j->include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

/* Content: a string, null (assistant turns), or an array of {"type":"text","text":...}
 * parts, concatenated into *buf. */
static int content_of(json_t *m, size_t i, strbuf *buf, const char **s, size_t *len,
                      oai_err *e) {
    json_t *c = json_object_get(m, "content");
    char param[48];
    snprintf(param, sizeof param, "messages[%zu].content", i);
    if (!c || json_is_null(c)) {
        *s = "";
        *len = 0;
        return 0;
    }
    if (json_is_string(c)) {
        *s = json_string_value(c);
        *len = json_string_length(c);
    } else if (json_is_array(c)) {
        size_t k;
        json_t *part;
        size_t start = buf->n;
        json_array_foreach(c, k, part) {
            json_t *type = json_object_get(part, "type"), *text = json_object_get(part, "text");
            if (!json_is_object(part) || !json_is_string(type) ||
                strcmp(json_string_value(type), "text") != 0 || !json_is_string(text))
                return oai_errf(e, 400, "invalid_value", param,
                                "only text content parts ({\"type\":\"text\",\"text\":...}) are "
                                "supported");
            if (strbuf_add(buf, json_string_value(text), json_string_length(text)) != 0)
                return oai_errf(e, 500, "out_of_memory", NULL, "out of memory");
        }
        /* parts are copied into buf; the pointer is fixed up once all messages are read */
        *s = NULL;
        *len = buf->n - start;
    } else {
        return oai_errf(e, 400, "invalid_type", param,
                        "'content' must be a string, an array of text parts or null");
    }
    if (*s && memchr(*s, 0, *len))
        return oai_errf(e, 400, "invalid_value", param, "'content' may not contain NUL");
    return 0;
}

static int messages_of(json_t *body, chat_msg **out, int *n_out, strbuf *parts, oai_err *e) {
    json_t *msgs = json_object_get(body, "messages");
    if (!msgs) return oai_errf(e, 400, "missing_field", "messages", "'messages' is required");
    if (!json_is_array(msgs))
        return oai_errf(e, 400, "invalid_type", "messages", "'messages' must be an array");
    size_t n = json_array_size(msgs);
    if (n == 0)
        return oai_errf(e, 400, "invalid_value", "messages", "'messages' must not be empty");
    chat_msg *v = calloc(n, sizeof *v);
    size_t *part_at = calloc(n, sizeof *part_at);
    if (!v || !part_at) {
        free(v);
        free(part_at);
        return oai_errf(e, 500, "out_of_memory", NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(msgs, i);
        char param[48];
        snprintf(param, sizeof param, "messages[%zu].role", i);
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role)) {
            oai_errf(e, 400, "invalid_type", param, "each message needs a string 'role'");
            goto fail;
        }
        const char *r = json_string_value(role);
        if (!strcmp(r, "system") || !strcmp(r, "developer")) v[i].role = CHAT_SYSTEM;
        else if (!strcmp(r, "user")) v[i].role = CHAT_USER;
        else if (!strcmp(r, "assistant")) v[i].role = CHAT_ASSISTANT;
        else {
            oai_errf(e, 400, "invalid_value", param,
                     "role '%.40s' is not supported (system, user, assistant)", r);
            goto fail;
        }
        part_at[i] = parts->n;
        if (content_of(m, i, parts, &v[i].content, &v[i].len, e) != 0) goto fail;
    }
    for (size_t i = 0; i < n; i++)
        if (!v[i].content) v[i].content = parts->s + part_at[i];
    free(part_at);
    *out = v;
    *n_out = (int)n;
    return 0;
fail:
    free(v);
    free(part_at);
    return -1;
}

enum MHD_Result oai_chat(srv *s, struct MHD_Connection *c, const char *body, size_t n,
                         gen_job **job_out) {
    gen_job *j = gen_new(s, c, true);
    if (!j) return MHD_NO;
    json_t *root = oai_parse_body(body, n, &j->err);
    oai_params p;
    chat_msg *msgs = NULL;
    int n_msgs = 0;
    strbuf parts = {0};
    int32_t *ids = NULL;
    if (!root || oai_parse_common(s, root, true, &p, &j->err) != 0 ||
        messages_of(root, &msgs, &n_msgs, &parts, &j->err) != 0)
        goto refuse;
    int np = chat_render(&s->tmpl, s->model, msgs, n_msgs, &ids);
    /* the length of the answer depends on the last message (the question being asked) */
    if (np > 0 && n_msgs > 0)
        gen_prompt_features(s, msgs[n_msgs - 1].content, msgs[n_msgs - 1].len, np, &p);
    free(msgs);
    msgs = NULL;
    free(parts.s);
    parts.s = NULL;
    if (np < 0) {
        oai_errf(&j->err, 500, "out_of_memory", NULL, "out of memory");
        goto refuse;
    }
    j->end_token = chat_end_token(&s->tmpl);
    if (gen_submit(j, ids, np, &p) != 0) goto refuse;
    json_decref(root);
    return oai_respond(j, job_out);
refuse:
    free(msgs);
    free(parts.s);
    json_decref(root);
    {
        enum MHD_Result q = oai_error_send(c, &j->err);
        gen_free(j);
        return q;
    }
}
