#ifndef RESERVD_HTTP_H
#define RESERVD_HTTP_H

/* The request and response that handlers see. They carry no
 * libmicrohttpd types, so handlers can run on any thread. */

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HTTP_MAX_BODY        (64 * 1024)
#define HTTP_MAX_PATH_PARAMS 2
#define HTTP_MAX_QUERY       16
#define HTTP_MAX_HEADERS     4

enum http_method {
    HTTP_GET,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_HEAD,
    HTTP_OPTIONS,
    HTTP_METHOD_OTHER,
};

enum http_method http_method_parse(const char *name);
const char *http_method_name(enum http_method method);

struct http_query_arg {
    const char *key;
    const char *value; /* may be NULL for "?flag" */
};

/* Who sent a request, as the access control (src/api/auth.c) decided. */
enum http_principal {
    HTTP_ANONYMOUS, /* no token */
    HTTP_USER,      /* a user's token: who_user */
    HTTP_ADMIN,     /* an admin token */
    HTTP_OPEN,      /* --auth off: everyone may do everything */
    HTTP_CLAIMED,   /* a user token not yet checked against the database (the gate's own) */
};

struct http_request {
    enum http_method method;
    const char *path; /* without the query string */
    int64_t params[HTTP_MAX_PATH_PARAMS];
    int nparams;
    struct http_query_arg query[HTTP_MAX_QUERY];
    int nquery;
    const char *body; /* NUL-terminated, may be NULL */
    size_t body_len;
    const char *request_id;
    struct timespec deadline; /* CLOCK_MONOTONIC: answer 503 busy after */
    bool server_leaving;      /* the server is about to stop (http_server_leave): not ready */
    void *exchange;           /* private to the server */
    /* Headers the gate (server.h) reads; NULL when absent. */
    const char *authorization;
    const char *idempotency_key;
    /* Set by the gate before the handler runs. */
    enum http_principal who;
    int64_t who_user;     /* HTTP_USER: the user */
    void *gate_state;     /* private to the gate, which frees it */
    bool gate_after;      /* the gate's after step runs before the answer is sent */
    char forced_user[24]; /* a query value the gate forces (GET /reservations?userId=) */
};

/* Whether a client's X-Request-Id may be echoed and logged as given: 1 to
 * cap - 1 characters of [A-Za-z0-9._:-]. */
bool http_request_id_acceptable(const char *id, size_t cap);

/* Value of query argument key, or NULL if absent. */
const char *http_request_query(const struct http_request *req, const char *key);

struct http_header {
    const char *name; /* static string */
    char value[128];
};

struct http_response {
    int status;
    json_t *json;    /* owned; NULL for a raw body */
    const char *raw; /* static raw body (not freed) */
    size_t raw_len;
    char *owned_raw;          /* malloc'd raw body, freed */
    const char *content_type; /* NULL means JSON */
    struct http_header headers[HTTP_MAX_HEADERS];
    int nheaders;
};

void http_response_init(struct http_response *resp);
/* Free what the response owns and reset it. */
void http_response_clear(struct http_response *resp);

/* Set status and take ownership of body (a JSON object). */
void http_respond_json(struct http_response *resp, int status, json_t *body);
/* The one error format: {"error":{"code":...,"message":...}}. */
void http_respond_error(struct http_response *resp, int status, const char *code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
/* Add a header (name must be a static string). Returns 0 or -1 if full. */
int http_response_add_header(struct http_response *resp, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *http_response_header(const struct http_response *resp, const char *name);

/* Deferred answers. A handler that cannot answer before it returns calls
 * http_defer() and hands the work on; whoever finishes it fills the
 * response and calls http_complete() exactly once, from any thread (even
 * before the handler has returned). Until then the request and response
 * stay valid, and only the finisher touches the response. */
struct http_deferred;
struct http_deferred *http_defer(const struct http_request *req);
void http_complete(struct http_deferred *deferred);

/* Serialise the body; returns malloc'd bytes (caller frees) or NULL. */
char *http_response_body(const struct http_response *resp, size_t *len);

#endif
