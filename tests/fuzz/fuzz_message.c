/* Request and response helpers (src/http/message.c): the X-Request-Id
 * filter, method names, and the error body built from arbitrary text.
 *
 * Input: byte 0 picks the buffer size the id must fit (the server's is 40),
 * the rest is the header value or method name. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"

/* An accepted id can be echoed in a header and a log line as it is. */
static void check_request_id(const char *id, size_t cap)
{
    size_t n = strlen(id);
    int want = n >= 1 && n < cap && strspn(id, ID_CHARS) == n;
    FUZZ_CHECK(http_request_id_acceptable(id, cap) == want);
}

/* The filter reads at most cap bytes, so an unterminated buffer of cap
 * bytes is safe (ASan reports any read past it). */
static void check_unterminated(const uint8_t *bytes, size_t len, size_t cap)
{
    if (len < cap)
        return;
    char *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, bytes, cap);
    FUZZ_CHECK(!http_request_id_acceptable(buf, cap) || memchr(buf, '\0', cap) != NULL);
    free(buf);
}

static void check_method(const char *name, const uint8_t *raw)
{
    enum http_method m = http_method_parse(name);
    FUZZ_CHECK(m >= HTTP_GET && m <= HTTP_METHOD_OTHER);
    if (m != HTTP_METHOD_OTHER)
        FUZZ_CHECK(strcmp(http_method_name(m), name) == 0);
    for (int i = HTTP_GET; i < HTTP_METHOD_OTHER; i++) {
        enum http_method k = (enum http_method)i;
        FUZZ_CHECK(http_method_parse(http_method_name(k)) == k);
        if (strcmp(http_method_name(k), name) == 0)
            FUZZ_CHECK(m == k);
    }
    /* Any enum value, even out of range, has a printable name. */
    int any;
    memcpy(&any, raw, sizeof(any));
    const char *printed = http_method_name((enum http_method)any);
    FUZZ_CHECK(printed != NULL && printed[0] != '\0');
}

/* Whatever the message quotes (invalid UTF-8 included), the answer is the
 * one error format and serialises. */
static void check_error_body(const char *text)
{
    struct http_response resp;
    http_response_init(&resp);
    http_respond_error(&resp, 400, "validation_failed", "bad value: %s", text);
    json_t *error = json_object_get(resp.json, "error");
    FUZZ_CHECK(resp.status == 400 && json_is_object(error));
    FUZZ_CHECK(json_is_string(json_object_get(error, "message")));
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(error, "code")), "validation_failed") == 0);
    size_t len;
    char *body = http_response_body(&resp, &len);
    json_error_t jerr;
    json_t *again = body ? json_loadb(body, len, 0, &jerr) : NULL;
    FUZZ_CHECK(again != NULL && json_equal(again, resp.json));
    json_decref(again);
    free(body);
    http_response_clear(&resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t raw[sizeof(int)] = { 0 };
    if (size == 0)
        return 0;
    size_t cap = (size_t)data[0] % 64 + 1;
    char *text = fuzz_cstring(data + 1, size - 1);
    memcpy(raw, data + 1, size - 1 < sizeof(raw) ? size - 1 : sizeof(raw));
    check_request_id(text, cap);
    check_request_id(text, 40);
    check_unterminated(data + 1, size - 1, cap);
    check_method(text, raw);
    check_error_body(text);
    free(text);
    return 0;
}
