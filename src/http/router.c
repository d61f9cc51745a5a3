/* Method + path routing over a static table. The table is small (about
 * twenty routes), so a linear scan over pre-split patterns is fast and
 * keeps the 404/405/400 decisions easy to reason about. */

#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int router_parse_id(const char *text, size_t len, int64_t *out)
{
    /* Plain decimal digits only: no sign, no spaces, no leading zero. */
    if (len == 0 || len > 19 || text[0] == '0')
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(text[i] - '0');
    }
    if (v > INT64_MAX)
        return -1;
    *out = (int64_t)v;
    return 0;
}

/* Next segment of a path starting at *p (after a '/'); whether there is
 * one. */
static bool next_segment(const char **p, const char **seg, size_t *len)
{
    if (**p != '/')
        return false;
    (*p)++;
    *seg = *p;
    while (**p && **p != '/')
        (*p)++;
    *len = (size_t)(*p - *seg);
    return true;
}

enum shape { SHAPE_NO, SHAPE_YES, SHAPE_BAD_ID };

/* Does path have the shape of pattern? Collects parameters. */
static enum shape match_pattern(const char *pattern, const char *path,
                                int64_t params[HTTP_MAX_PATH_PARAMS], int *nparams, char *bad,
                                size_t badlen)
{
    const char *pp = pattern, *sp = path;
    const char *pseg = NULL, *sseg = NULL;
    size_t plen = 0, slen = 0;
    enum shape result = SHAPE_YES;
    *nparams = 0;

    if (strcmp(path, "/") == 0 || path[0] != '/')
        return strcmp(pattern, path) == 0 ? SHAPE_YES : SHAPE_NO;
    for (;;) {
        bool more_p = next_segment(&pp, &pseg, &plen);
        bool more_s = next_segment(&sp, &sseg, &slen);
        if (!more_p || !more_s)
            return (more_p == more_s && *sp == '\0') ? result : SHAPE_NO;
        if (plen >= 2 && pseg[0] == '{') {
            if (slen == 0)
                return SHAPE_NO;
            int64_t id;
            if (router_parse_id(sseg, slen, &id) != 0) {
                if (result == SHAPE_YES)
                    snprintf(bad, badlen, "%.*s", (int)(plen - 2), pseg + 1);
                result = SHAPE_BAD_ID;
            } else if (*nparams < HTTP_MAX_PATH_PARAMS) {
                params[(*nparams)++] = id;
            }
        } else if (plen != slen || memcmp(pseg, sseg, plen) != 0) {
            return SHAPE_NO;
        }
    }
}

enum route_status router_match(const struct route *routes, size_t nroutes, enum http_method method,
                               const char *path, struct route_match *out)
{
    enum route_status status = ROUTE_NOT_FOUND;
    size_t allow_len = 0;
    memset(out, 0, sizeof(*out));

    for (size_t i = 0; i < nroutes; i++) {
        int64_t params[HTTP_MAX_PATH_PARAMS];
        int nparams;
        char bad[sizeof(out->bad_param)] = "";
        enum shape s = match_pattern(routes[i].pattern, path, params, &nparams, bad, sizeof(bad));
        if (s == SHAPE_NO)
            continue;
        int method_ok =
            routes[i].method == method || (method == HTTP_HEAD && routes[i].method == HTTP_GET);
        if (method_ok && s == SHAPE_BAD_ID) {
            /* The method fits but the path names its resource badly. */
            status = ROUTE_INVALID_ID;
            out->route = &routes[i];
            memcpy(out->bad_param, bad, sizeof(bad));
            break;
        }
        if (method_ok) {
            out->route = &routes[i];
            memcpy(out->params, params, sizeof(params));
            out->nparams = nparams;
            return ROUTE_MATCH;
        }
        const char *name = http_method_name(routes[i].method);
        size_t n = strlen(name);
        if (!strstr(out->allow, name) && allow_len + n + 3 < sizeof(out->allow)) {
            if (allow_len) {
                memcpy(out->allow + allow_len, ", ", 2);
                allow_len += 2;
            }
            memcpy(out->allow + allow_len, name, n + 1);
            allow_len += n;
        }
        status = ROUTE_METHOD_NOT_ALLOWED;
    }
    if (status == ROUTE_INVALID_ID)
        out->allow[0] = '\0';
    return status;
}
