#ifndef RESERVD_ROUTER_H
#define RESERVD_ROUTER_H

/* Method + path-pattern routing. Patterns are literal segments and
 * integer parameters written "{name}" ("/reservation/{eventId}/{userId}");
 * a parameter matches only a positive 64-bit integer. */

#include "http.h"

struct app;

typedef void (*route_handler)(struct app *app, const struct http_request *req,
                              struct http_response *resp);

enum route_flags {
    ROUTE_NEEDS_DB = 1 << 0, /* run on a database worker, never an HTTP thread */
    ROUTE_NO_BODY = 1 << 1,  /* the request body is ignored */
    ROUTE_DEFERS = 1 << 2,   /* runs on the HTTP thread, never blocks, answers
                                * later through http_defer() */
};

struct route {
    enum http_method method;
    const char *pattern;
    route_handler handler;
    unsigned flags;
    const char *name; /* for logs and metrics, e.g. "POST /users" */
};

enum route_status {
    ROUTE_MATCH,
    ROUTE_NOT_FOUND,          /* no pattern matches the path */
    ROUTE_METHOD_NOT_ALLOWED, /* path matches, method does not; see allow */
    ROUTE_INVALID_ID,         /* path matches except a parameter is not an ID */
};

struct route_match {
    const struct route *route; /* ROUTE_MATCH, ROUTE_INVALID_ID: the route */
    int64_t params[HTTP_MAX_PATH_PARAMS];
    int nparams;
    char allow[64];     /* "GET, POST" for ROUTE_METHOD_NOT_ALLOWED */
    char bad_param[32]; /* parameter name for ROUTE_INVALID_ID */
};

/* routes is an array of nroutes entries that outlives every call. */
enum route_status router_match(const struct route *routes, size_t nroutes, enum http_method method,
                               const char *path, struct route_match *out);

/* Parse a positive 64-bit decimal ID ("0", "-1", "1x", "01"? see .c). */
int router_parse_id(const char *text, size_t len, int64_t *out);

#endif
