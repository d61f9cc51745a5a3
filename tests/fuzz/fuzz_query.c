/* Query arguments: the input is a query string ("limit=5&after=9"), split
 * into arguments as libmicrohttpd hands them over, then read with
 * validate_query_int as the list handlers read it. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "validate.h"

/* "-"? digits, and the value they spell if it fits in int64. */
static int plain_integer(const char *s, int64_t *out)
{
    int neg = *s == '-';
    const char *p = s + neg;
    uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (*p == '\0')
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* The first argument named key, as the handler sees it. */
static const char *first_value(const struct http_request *req, const char *key)
{
    for (int i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value ? req->query[i].value : "";
    return NULL;
}

/* Accepted exactly when present as a plain integer in range, or absent. */
static void check_int(const struct http_request *req, const char *key, int64_t min, int64_t max,
                      int64_t dflt)
{
    char msg[VALIDATE_MSG_SIZE] = "";
    int64_t got = -7, want;
    int rc = validate_query_int(req, key, min, max, dflt, &got, msg);
    const char *text = first_value(req, key);
    const char *found = http_request_query(req, key);
    FUZZ_CHECK(text ? found && strcmp(found, text) == 0 : found == NULL);
    if (!text) {
        FUZZ_CHECK(rc == 0 && got == dflt);
        return;
    }
    int fits = plain_integer(text, &want) == 0 && want >= min && want <= max;
    FUZZ_CHECK((rc == 0) == fits);
    if (rc == 0) {
        FUZZ_CHECK(got == want);
    } else {
        FUZZ_CHECK(got == -7);
        FUZZ_CHECK(memchr(msg, '\0', sizeof(msg)) && strstr(msg, key) != NULL);
    }
}

/* Split "k=v&k2&..." in place; "k" alone has a NULL value. */
static void split_query(char *s, struct http_request *req)
{
    for (char *arg = s; arg && req->nquery < HTTP_MAX_QUERY;) {
        char *amp = strchr(arg, '&');
        if (amp)
            *amp++ = '\0';
        char *eq = strchr(arg, '=');
        if (eq)
            *eq++ = '\0';
        req->query[req->nquery].key = arg;
        req->query[req->nquery].value = eq;
        req->nquery++;
        arg = amp;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = fuzz_cstring(data, size);
    struct http_request req;
    memset(&req, 0, sizeof(req));
    split_query(copy, &req);
    /* Pages (src/api/api.c) and reservation filters (src/api/reservations.c). */
    check_int(&req, "limit", 1, 1000, 100);
    check_int(&req, "after", 0, INT64_MAX, 0);
    check_int(&req, "eventId", 1, INT64_MAX, 0);
    check_int(&req, "userId", 1, INT64_MAX, 0);
    free(copy);
    return 0;
}
