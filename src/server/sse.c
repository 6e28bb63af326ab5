/* sse.c — the streaming response: a libmicrohttpd content reader that runs in the
 * connection's own thread, waits for the next engine event, and hands out Server-Sent Events
 * (`data: {...}\n\n`, closed by `data: [DONE]\n\n`). A client that disconnects ends the
 * reader with an error; the request-completed hook then cancels the engine request. */
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

static int sse_put(gen_job *j, json_t *obj) {
    if (!obj) return -1;
    char *s = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!s) return -1;
    int rc = strbuf_add(&j->out, "data: ", 6) || strbuf_add(&j->out, s, strlen(s)) ||
             strbuf_add(&j->out, "\n\n", 2);
    free(s);
    return rc ? -1 : 0;
}

static int sse_done(gen_job *j) { return strbuf_add(&j->out, "data: [DONE]\n\n", 14); }

static json_t *chunk(gen_job *j, const char *finish) {
    return j->chat ? chat_chunk(j, false, finish) : cmpl_chunk(j, finish);
}

static bool has_delta(const gen_job *j) {
    if (j->text.n > 0) return true;
    if (!j->lp) return false;
    return json_array_size(j->chat ? j->lp : json_object_get(j->lp, "tokens")) > 0;
}

/* Appends the next events' SSE bytes to j->out. -1 ends the stream with an error. */
static int produce(gen_job *j) {
    if (!j->sent_head) {
        j->sent_head = true;
        if (j->chat && sse_put(j, chat_chunk(j, true, NULL)) != 0) return -1;
        if (has_delta(j) && sse_put(j, chunk(j, NULL)) != 0) return -1;
        return 0;
    }
    if (j->status == GEN_RUNNING) {
        gen_pump(j);
        if (has_delta(j) && sse_put(j, chunk(j, NULL)) != 0) return -1;
        return 0;
    }
    if (j->status == GEN_DISCONNECTED) return -1;
    if (j->status == GEN_DONE) {
        if (has_delta(j) && sse_put(j, chunk(j, NULL)) != 0) return -1;
        if (sse_put(j, chunk(j, j->finish_reason)) != 0) return -1;
        if (j->include_usage) {
            json_t *u = oai_envelope(j, j->chat ? "chat.completion.chunk" : "text_completion");
            if (!u) return -1;
            json_object_set_new(u, "choices", json_array());
            json_object_set_new(u, "usage", gen_usage(j));
            if (sse_put(j, u) != 0) return -1;
        }
    } else {
        gen_status_error(j);
        json_t *err = json_pack("{s:{s:s, s:s, s:n, s:s}}", "error", "message", j->err.msg,
                                "type", j->err.type, "param", "code", j->err.code);
        if (sse_put(j, err) != 0) return -1;
    }
    if (sse_done(j) != 0) return -1;
    j->sent_tail = true;
    /* the engine is done with this client: idle timeouts apply again */
    MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)j->s->cfg->connection_timeout_s);
    return 0;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    gen_job *j = cls;
    for (;;) {
        if (j->out_off < j->out.n) {
            size_t n = j->out.n - j->out_off;
            if (n > max) n = max;
            memcpy(buf, j->out.s + j->out_off, n);
            j->out_off += n;
            return (ssize_t)n;
        }
        j->out.n = j->out_off = 0;
        if (j->sent_tail) return MHD_CONTENT_READER_END_OF_STREAM;
        if (produce(j) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

enum MHD_Result sse_respond(gen_job *j) {
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, j, NULL);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* the engine works between chunks again: no idle timeout until the tail is out */
    MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    enum MHD_Result q = MHD_queue_response(j->conn, 200, r);
    MHD_destroy_response(r);
    return q;
}
