/* Router: the real route table (src/api/routes.c) against any method and
 * path, and router_parse_id against any bytes.
 *
 * Input: byte 0 picks the method, the rest is the path. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "fuzz.h"
#include "router.h"

/* Every method a route may name; HEAD is answered by GET routes. */
static const enum http_method methods[] = { HTTP_GET,   HTTP_POST,   HTTP_PUT,
                                            HTTP_PATCH, HTTP_DELETE, HTTP_OPTIONS };
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static int count_params(const char *pattern)
{
    int n = 0;
    for (; *pattern; pattern++)
        n += *pattern == '{';
    return n;
}

/* The path pattern describes when its parameters take these values. */
static void expand(const char *pattern, const int64_t *params, char *out, size_t cap)
{
    size_t len = 0;
    int next = 0;
    for (const char *p = pattern; *p && len + 21 < cap;) {
        if (*p == '{') {
            len += (size_t)snprintf(out + len, cap - len, "%lld", (long long)params[next++]);
            p = strchr(p, '}') + 1;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
}

/* Does the path have the shape of some route for method m? */
static int shape_matches(enum http_method m, const char *path)
{
    struct route_match r;
    enum route_status s = router_match(app_routes, app_nroutes, m, path, &r);
    return s == ROUTE_MATCH || s == ROUTE_INVALID_ID;
}

static int allow_lists(const char *allow, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = allow; (p = strstr(p, name)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

static void check_match(enum http_method method, const char *path, const struct route_match *m)
{
    const struct route *r = m->route;
    FUZZ_CHECK(r >= app_routes && r < app_routes + app_nroutes);
    FUZZ_CHECK(r->method == method || (method == HTTP_HEAD && r->method == HTTP_GET));
    FUZZ_CHECK(m->nparams == count_params(r->pattern));
    for (int i = 0; i < m->nparams; i++)
        FUZZ_CHECK(m->params[i] > 0);
    /* IDs are canonical, so the path is exactly the pattern filled in. */
    char again[512];
    expand(r->pattern, m->params, again, sizeof(again));
    FUZZ_CHECK(strcmp(again, path) == 0);
}

/* Allow names exactly the methods whose routes have this path's shape. */
static void check_not_allowed(enum http_method method, const char *path,
                              const struct route_match *m)
{
    FUZZ_CHECK(m->route == NULL && m->allow[0] != '\0');
    FUZZ_CHECK(!allow_lists(m->allow, http_method_name(method)));
    if (method == HTTP_HEAD)
        FUZZ_CHECK(!allow_lists(m->allow, "GET"));
    for (size_t i = 0; i < NMETHODS; i++)
        FUZZ_CHECK(allow_lists(m->allow, http_method_name(methods[i])) ==
                   shape_matches(methods[i], path));
}

/* 400 names the route whose pattern the path fits and one of its
 * parameters that is not an ID. */
static void check_invalid_id(enum http_method method, const struct route_match *m)
{
    const struct route *r = m->route;
    char braced[sizeof(m->bad_param) + 2];
    FUZZ_CHECK(r >= app_routes && r < app_routes + app_nroutes);
    FUZZ_CHECK(r->method == method || (method == HTTP_HEAD && r->method == HTTP_GET));
    FUZZ_CHECK(m->bad_param[0] != '\0' && m->allow[0] == '\0');
    snprintf(braced, sizeof(braced), "{%s}", m->bad_param);
    FUZZ_CHECK(strstr(r->pattern, braced) != NULL);
}

static void check_route(enum http_method method, const char *path)
{
    struct route_match m;
    switch (router_match(app_routes, app_nroutes, method, path, &m)) {
    case ROUTE_MATCH: check_match(method, path, &m); break;
    case ROUTE_METHOD_NOT_ALLOWED: check_not_allowed(method, path, &m); break;
    case ROUTE_INVALID_ID: check_invalid_id(method, &m); break;
    case ROUTE_NOT_FOUND:
        FUZZ_CHECK(m.route == NULL);
        for (size_t i = 0; i < NMETHODS; i++)
            FUZZ_CHECK(!shape_matches(methods[i], path));
        break;
    default: FUZZ_CHECK(!"router_match returned an unknown status");
    }
}

static int plain_decimal(const uint8_t *s, size_t len)
{
    if (len == 0 || len > 19 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Accepted IDs print back as the same bytes; refused ones are not plain
 * decimals, or are above INT64_MAX. */
static void check_parse_id(const uint8_t *s, size_t len)
{
    int64_t v = -7;
    if (router_parse_id((const char *)s, len, &v) == 0) {
        char buf[24];
        int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
        FUZZ_CHECK(v > 0);
        FUZZ_CHECK((size_t)n == len && memcmp(buf, s, len) == 0);
    } else {
        FUZZ_CHECK(v == -7);
        if (plain_decimal(s, len))
            FUZZ_CHECK(len == 19 && memcmp(s, "9223372036854775807", 19) > 0);
    }
}

/* Every positive int64, printed, parses back to itself. */
static void check_id_round_trip(const uint8_t *data, size_t size)
{
    int64_t v, back = 0;
    char buf[24];
    if (size < sizeof(v))
        return;
    memcpy(&v, data, sizeof(v));
    if (v <= 0)
        return;
    int n = snprintf(buf, sizeof(buf), "%lld", (long long)v);
    FUZZ_CHECK(router_parse_id(buf, (size_t)n, &back) == 0 && back == v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    enum http_method method = (enum http_method)(data[0] % (HTTP_METHOD_OTHER + 1));
    char *path = fuzz_cstring(data + 1, size - 1);
    check_route(method, path);
    check_parse_id(data + 1, size - 1);
    check_id_round_trip(data + 1, size - 1);
    free(path);
    return 0;
}
