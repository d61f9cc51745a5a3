#ifndef RESERVD_SERVER_H
#define RESERVD_SERVER_H

/* The HTTP server: one libmicrohttpd epoll daemon per HTTP thread (server.c).
 * Requests for routes that need the database are handed to the workers
 * and their connections suspended, so HTTP threads never wait on
 * PostgreSQL; routes that defer (reservations) hand their work on from
 * the HTTP thread and are resumed when answered; other routes are answered
 * on the HTTP thread. */

#include <stddef.h>

#include "app.h"
#include "router.h"

struct workers;
struct http_server;

/* What runs around every routed request's handler: access control and
 * Idempotency-Key records (src/api/auth.c). */
enum http_gate_step {
    HTTP_GATE_ANSWERED,  /* resp is filled: send it, run nothing */
    HTTP_GATE_CONTINUE,  /* run the route as its flags say */
    HTTP_GATE_ON_WORKER, /* run check_db on a worker first, then the handler there */
};
struct http_gate {
    /* On the HTTP thread, never blocking. */
    enum http_gate_step (*check)(struct app *app, const struct route *route,
                                 struct http_request *req, struct http_response *resp);
    /* On a worker, for every request of a ROUTE_NEEDS_DB route and after
     * HTTP_GATE_ON_WORKER: the checks that need the database. 0 to run
     * the handler; -1 when resp is filled. */
    int (*check_db)(struct app *app, const struct route *route, struct http_request *req,
                    struct http_response *resp);
    /* On a worker, when req->gate_after is set and the answer is complete
     * (deferred ones too), before it is sent: may replace it. */
    void (*after)(struct app *app, const struct route *route, struct http_request *req,
                  struct http_response *resp);
};

struct http_server_options {
    const char *bind; /* IPv4 or IPv6 literal */
    int port;
    int threads;
    int max_connections;
    int connection_timeout_s; /* idle: no byte of a new request */
    int read_timeout_ms;      /* a request must arrive whole this soon; 0: no limit */
    int connection_memory;    /* bytes per connection: request headers and the answer's */
    int request_timeout_ms;   /* deadline for a request's database work */
    const struct route *routes;
    size_t nroutes;
    struct app *app;
    struct workers *workers;
    const struct http_gate *gate; /* NULL: none */
};

/* 0, or -1 with a message in err. */
int http_server_start(const struct http_server_options *opts, struct http_server **out, char *err,
                      size_t errlen);
/* Announce the stop: from now on requests carry req->server_leaving, and
 * /readyz answers 503 draining, while everything else is accepted and
 * served as before; for a load balancer to take the instance out before
 * http_server_stop closes the listener. NULL-safe. */
void http_server_leave(struct http_server *srv);
/* Stop accepting, answer what was already received (with Connection:
 * close), refuse new requests on open connections (503 shutting_down),
 * close idle connections, and stop once nothing is in flight. 0, or -1
 * when requests were still unfinished after grace_ms (the server is then
 * left running: the caller must exit). NULL-safe. */
int http_server_stop(struct http_server *srv, int grace_ms);
/* libmicrohttpd's connection limit for ours (it must stay above it), so
 * the caller can leave room for it in the open-file limit. */
int http_mhd_connection_limit(int max_connections);

#endif
