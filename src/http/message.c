/* Request and response helpers shared by the server and the handlers. */

#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {
    [HTTP_GET] = "GET",         [HTTP_POST] = "POST",          [HTTP_PUT] = "PUT",
    [HTTP_PATCH] = "PATCH",     [HTTP_DELETE] = "DELETE",      [HTTP_HEAD] = "HEAD",
    [HTTP_OPTIONS] = "OPTIONS", [HTTP_METHOD_OTHER] = "OTHER",
};

enum http_method http_method_parse(const char *name)
{
    for (int m = 0; m < HTTP_METHOD_OTHER; m++)
        if (strcmp(name, method_names[m]) == 0)
            return (enum http_method)m;
    return HTTP_METHOD_OTHER;
}

const char *http_method_name(enum http_method method)
{
    if ((unsigned)method > HTTP_METHOD_OTHER)
        method = HTTP_METHOD_OTHER;
    return method_names[method];
}

bool http_request_id_acceptable(const char *id, size_t cap)
{
    size_t n = strnlen(id, cap);
    if (n == 0 || n >= cap)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

const char *http_request_query(const struct http_request *req, const char *key)
{
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value ? req->query[i].value : "";
    return NULL;
}

void http_response_init(struct http_response *resp)
{
    memset(resp, 0, sizeof(*resp));
}

void http_response_clear(struct http_response *resp)
{
    json_decref(resp->json);
    free(resp->owned_raw);
    http_response_init(resp);
}

void http_respond_json(struct http_response *resp, int status, json_t *body)
{
    json_decref(resp->json);
    resp->status = status;
    resp->json = body;
}

void http_respond_error(struct http_response *resp, int status, const char *code, const char *fmt,
                        ...)
{
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    /* jansson rejects invalid UTF-8; a message quoting bad input must
     * still produce an error body, so fall back to a generic text. */
    json_t *msg = json_string(message);
    if (!msg)
        msg = json_string("invalid input");
    http_respond_json(resp, status,
                      json_pack("{s:{s:s, s:o}}", "error", "code", code, "message", msg));
}

int http_response_add_header(struct http_response *resp, const char *name, const char *fmt, ...)
{
    if (resp->nheaders >= HTTP_MAX_HEADERS)
        return -1;
    struct http_header *h = &resp->headers[resp->nheaders++];
    h->name = name;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->value, sizeof(h->value), fmt, ap);
    va_end(ap);
    return 0;
}

const char *http_response_header(const struct http_response *resp, const char *name)
{
    for (int i = 0; i < resp->nheaders; i++)
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    return NULL;
}

char *http_response_body(const struct http_response *resp, size_t *len)
{
    char *out;
    if (resp->json) {
        out = json_dumps(resp->json, JSON_COMPACT);
        *len = out ? strlen(out) : 0;
        return out;
    }
    const char *raw = resp->owned_raw ? resp->owned_raw : resp->raw;
    *len = raw ? resp->raw_len : 0;
    out = malloc(*len + 1);
    if (out) {
        if (*len)
            memcpy(out, raw, *len);
        out[*len] = '\0';
    }
    return out;
}
