/* errors.c — every error the server sends is OpenAI's error object:
 * {"error": {"message": ..., "type": ..., "param": ... | null, "code": ... | null}}. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/srv_internal.h"

static json_t *error_object(const char *type, const char *code, const char *param,
                            const char *message) {
    json_t *inner = json_object();
    json_t *o = json_object();
    if (!inner || !o) {
        json_decref(inner);
        json_decref(o);
        return NULL;
    }
    json_object_set_new(inner, "message", oai_string(message, strlen(message)));
    json_object_set_new(inner, "type", json_string(type));
    json_object_set_new(inner, "param", param && *param ? json_string(param) : json_null());
    json_object_set_new(inner, "code", code ? json_string(code) : json_null());
    json_object_set_new(o, "error", inner);
    return o;
}

char *oai_error_json(const char *type, const char *code, const char *message) {
    json_t *o = error_object(type, code, NULL, message);
    if (!o) return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static const char *type_for(unsigned status) {
    if (status == 429) return "rate_limit_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
}

int oai_errf(oai_err *e, unsigned status, const char *code, const char *param, const char *fmt,
             ...) {
    e->status = status;
    e->type = type_for(status);
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

enum MHD_Result oai_error_send(struct MHD_Connection *c, const oai_err *e) {
    json_t *o = error_object(e->type ? e->type : type_for(e->status), e->code, e->param, e->msg);
    if (!o) return MHD_NO;
    const char *hname = NULL, *hval = NULL;
    if (e->status == 429 || e->status == 503) {
        hname = MHD_HTTP_HEADER_RETRY_AFTER;
        hval = "1";
    }
    char *body = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!body) return MHD_NO;
    enum MHD_Result r = http_send(c, e->status, "application/json", body, strlen(body), hname, hval);
    free(body);
    return r;
}

enum MHD_Result oai_error(struct MHD_Connection *c, unsigned status, const char *type,
                          const char *code, const char *param, const char *fmt, ...) {
    oai_err e = {.status = status, .type = type, .code = code};
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return oai_error_send(c, &e);
}
