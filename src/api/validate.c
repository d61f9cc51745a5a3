/* Request validation: pure functions, unit tested without a server. */

#include "validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *validate_json_body(const struct http_request *req, struct http_response *resp)
{
    json_error_t jerr;
    if (!req->body || req->body_len == 0) {
        http_respond_error(resp, 400, "invalid_json", "request body must be a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        http_respond_error(resp, 400, "invalid_json", "body is not valid JSON: %s at line %d",
                           jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        http_respond_error(resp, 400, "invalid_json", "request body must be a JSON object");
        return NULL;
    }
    return root;
}

size_t validate_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int validate_string_field(json_t *obj, const char *field, size_t min, size_t max, const char **out,
                          char *msg)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s is required", field);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s must be a string", field);
        return -1;
    }
    const char *s = json_string_value(v);
    size_t len = validate_utf8_length(s);
    if (len < min || len > max) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s must be %zu to %zu characters long", field, min, max);
        return -1;
    }
    *out = s;
    return 0;
}

int validate_int_field(json_t *obj, const char *field, int64_t min, int64_t max, int64_t *out,
                       char *msg)
{
    json_t *v = json_object_get(obj, field);
    if (!v) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s is required", field);
        return -1;
    }
    if (!json_is_integer(v)) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s must be an integer", field);
        return -1;
    }
    json_int_t n = json_integer_value(v);
    if (n < min || n > max) {
        snprintf(msg, VALIDATE_MSG_SIZE, "%s must be from %lld to %lld", field, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

static int domain_ok(const char *d)
{
    /* Labels of letters, digits, '-' (or any non-ASCII), separated by dots;
     * at least two labels; no empty label; no leading/trailing '-'. */
    int labels = 0;
    const char *label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t len = (size_t)(p - label);
            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-')
                return 0;
            labels++;
            if (*p == '\0')
                break;
            label = p + 1;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (!(c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return labels >= 2;
}

int validate_email(const char *email)
{
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len < 3 || len > 254 || !at || strchr(at + 1, '@'))
        return -1;
    size_t local = (size_t)(at - email);
    if (local == 0 || local > 64 || email[0] == '.' || at[-1] == '.' || strstr(email, ".."))
        return -1;
    for (const char *p = email; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == 0x7f || strchr("()<>,;:\\\"[]", c))
            return -1;
    }
    return domain_ok(at + 1) ? 0 : -1;
}

int validate_query_int(const struct http_request *req, const char *key, int64_t min, int64_t max,
                       int64_t dflt, int64_t *out, char *msg)
{
    const char *v = http_request_query(req, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    /* strtoll skips any leading white space (not just ' ') and takes '+'. */
    int plain = v[0] == '-' || (v[0] >= '0' && v[0] <= '9');
    if (!plain || *end || errno || n < min || n > max) {
        snprintf(msg, VALIDATE_MSG_SIZE, "query parameter %s must be an integer from %lld to %lld",
                 key, (long long)min, (long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

void validate_fail(struct http_response *resp, const char *msg)
{
    http_respond_error(resp, 400, "validation_failed", "%s", msg);
}
