/* completions.c — POST /v1/completions: a prompt string in, text out, shaped as OpenAI's
 * text_completion objects (whole, or as SSE chunks). Also the pieces both endpoints share:
 * body parsing, the response envelope and the common non-streaming / streaming tail. */
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

json_t *oai_parse_body(const char *body, size_t n, oai_err *e) {
    json_error_t je;
    /* jansson refuses invalid UTF-8 and NUL escapes in strings */
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        oai_errf(e, 400, "invalid_json", NULL,
                 "The request body is not valid JSON (UTF-8): %s at line %d column %d", je.text,
                 je.line, je.column);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        oai_errf(e, 400, "invalid_json", NULL, "The request body must be a JSON object");
        return NULL;
    }
    return root;
}

json_t *oai_envelope(const gen_job *j, const char *object) {
    return json_pack("{s:s, s:s, s:I, s:s}", "id", j->resp_id, "object", object, "created",
                     (json_int_t)j->created, "model", j->s->model_id);
}

json_t *cmpl_final(gen_job *j) {
    json_t *o = oai_envelope(j, "text_completion");
    if (!o) return NULL;
    json_object_set_new(o, "choices",
                        json_pack("[{s:o, s:i, s:o, s:s}]", "text", gen_take_text(j), "index", 0,
                                  "logprobs", gen_take_lp(j), "finish_reason", j->finish_reason));
    json_object_set_new(o, "usage", gen_usage(j));
    return o;
}

json_t *cmpl_chunk(gen_job *j, const char *finish) {
    json_t *o = oai_envelope(j, "text_completion");
    if (!o) return NULL;
    json_object_set_new(o, "choices",
                        json_pack("[{s:o, s:i, s:o, s:o}]", "text", gen_take_text(j), "index", 0,
                                  "logprobs", finish ? json_null() : gen_take_lp(j), "finish_reason",
                                  finish ? json_string(finish) : json_null()));
    if (j->include_usage) json_object_set_new(o, "usage", json_null());
    return o;
}

/* Restores the idle timeout that was off while the engine worked (re-enabling it restarts
 * libmicrohttpd's inactivity timer). */
static void timeout_on(gen_job *j) {
    MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)j->s->cfg->connection_timeout_s);
}

enum MHD_Result oai_respond(gen_job *j, gen_job **job_out) {
    struct MHD_Connection *c = j->conn;
    /* No idle timeout while the request waits for the engine: the client is not idle. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    if (j->stream) {
        while (j->status == GEN_RUNNING && !j->first_seen)
            gen_pump(j);
    } else {
        while (j->status == GEN_RUNNING)
            gen_pump(j);
    }
    timeout_on(j);
    enum MHD_Result q;
    if (j->status == GEN_DISCONNECTED) {
        q = MHD_NO;
    } else if (j->status != GEN_RUNNING && j->status != GEN_DONE) {
        gen_status_error(j);
        q = oai_error_send(c, &j->err);
    } else if (j->stream) {
        q = sse_respond(j);
        if (q == MHD_YES) {
            *job_out = j; /* freed when the request completes */
            return q;
        }
    } else {
        q = http_send_json(c, 200, j->chat ? chat_final(j) : cmpl_final(j));
    }
    gen_free(j);
    return q;
}

/* The prompt: a string, or an array holding exactly one string. */
static const char *prompt_of(json_t *body, size_t *len, oai_err *e) {
    json_t *p = json_object_get(body, "prompt");
    if (json_is_array(p) && json_array_size(p) == 1 && json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);
    if (!p) {
        oai_errf(e, 400, "missing_field", "prompt", "'prompt' is required");
        return NULL;
    }
    if (!json_is_string(p)) {
        oai_errf(e, 400, "invalid_type", "prompt",
                 "'prompt' must be a string (or an array of one string)");
        return NULL;
    }
    *len = json_string_length(p);
    if (memchr(json_string_value(p), 0, *len)) {
        oai_errf(e, 400, "invalid_value", "prompt", "'prompt' may not contain NUL");
        return NULL;
    }
    return json_string_value(p);
}

enum MHD_Result oai_completions(srv *s, struct MHD_Connection *c, const char *body, size_t n,
                                gen_job **job_out) {
    gen_job *j = gen_new(s, c, false);
    if (!j) return MHD_NO;
    json_t *root = oai_parse_body(body, n, &j->err);
    oai_params p;
    size_t plen = 0;
    const char *prompt = NULL;
    int32_t *ids = NULL;
    if (!root || oai_parse_common(s, root, false, &p, &j->err) != 0 ||
        !(prompt = prompt_of(root, &plen, &j->err)))
        goto refuse;
    int np = tok_encode(s->model->tok, prompt, plen, true, NULL, 0);
    if (np <= 0) {
        oai_errf(&j->err, 400, "invalid_value", "prompt", "the prompt could not be tokenized");
        goto refuse;
    }
    ids = malloc((size_t)np * sizeof *ids);
    if (!ids || tok_encode(s->model->tok, prompt, plen, true, ids, np) != np) {
        free(ids);
        oai_errf(&j->err, 500, "out_of_memory", NULL, "out of memory");
        goto refuse;
    }
    gen_prompt_features(s, prompt, plen, np, &p);
    if (gen_submit(j, ids, np, &p) != 0) goto refuse; /* j owns ids now */
    json_decref(root); /* stop strings were copied by stop_init */
    return oai_respond(j, job_out);
refuse:
    json_decref(root);
    {
        enum MHD_Result q = oai_error_send(c, &j->err);
        gen_free(j);
        return q;
    }
}
