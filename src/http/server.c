/* libmicrohttpd glue: accumulate the request, route it, run its handler
 * (here, or on a worker while the connection is suspended), send the
 * response, log it. Handlers never see libmicrohttpd.
 *
 * A handler may also defer its answer (http_defer): the connection is
 * suspended and resumed by whoever completes it. An exchange counts its
 * holds: one while the handler runs, one per deferral; the last to let go
 * marks the answer ready and, if the connection is suspended, resumes it. */

#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "workers.h"

#define JSON_CONTENT_TYPE "application/json; charset=utf-8"

/* The request's headers live in the connection's buffer
 * (opts.connection_memory) until its answer is built
 * there too: a request must leave room for the largest answer's header
 * (~400 bytes: status, Content-Type, Content-Length, Date, Location,
 * X-Request-Id, Retry-After, Connection) and each header's record in the
 * buffer (~56 bytes). A 201 with 3.7 KiB of request headers found no room
 * and was dropped after its ticket was taken; now such a request gets 431
 * before anything runs. */
#define HEADER_RECORD_BYTES 64
#define ANSWER_ROOM         640

#define PARTIAL_MAX 64

/* One libmicrohttpd daemon and the thread that runs it (see loop_main). */
struct http_loop {
    struct http_server *srv;
    struct MHD_Daemon *daemon;
    int epoll_fd;            /* the daemon's */
    int listen_fd;           /* shared by every loop; -1 once this one quiesced */
    int64_t accept_pause_ms; /* out of descriptors: no accept burst before this */
    unsigned conn_limit;     /* the daemon's share of libmicrohttpd's limit */
    pthread_t thread;
    int wake_fd;              /* eventfd: written after a resume */
    atomic_bool wake_pending; /* written and not yet seen by the loop */
    bool started;
    bool quiesced; /* by its own thread */
    /* Connections whose request line is in but not yet all their headers
     * (on_uri until on_request or their end). When libmicrohttpd refuses
     * headers too large for the buffer, the one it refuses is among them
     * (refuse_oversized). Only the loop's own thread touches these. */
    struct MHD_Connection *partial[PARTIAL_MAX];
    int npartial;
    int64_t partial_blind_until_ms; /* after an overflow: the list may miss some */
};

/* The server's one state, moved forward only by the thread that stops it
 * (http_server_leave, then http_server_stop). LOOP_LEAVING serves exactly
 * as LOOP_RUN does, except that requests see req->server_leaving (/readyz
 * answers 503): a load balancer takes the instance out while its listener
 * is still open (--drain-delay-ms). */
enum loop_phase { LOOP_RUN, LOOP_LEAVING, LOOP_QUIESCE, LOOP_EXIT };

struct http_server {
    struct http_loop *loops;
    int nloops;
    atomic_int phase;    /* enum loop_phase */
    atomic_int quiesced; /* loops that no longer accept */
    struct guard *guard;
    struct http_server_options opts;
    atomic_int live;              /* exchanges not yet completed */
    atomic_uint_fast64_t next_id; /* request id counter */
    unsigned id_prefix;
};

/* One request from its first byte to its completion callback. */
struct exchange {
    struct work work; /* run on a worker (ROUTE_NEEDS_DB) */
    struct http_server *srv;
    struct http_loop *loop; /* the thread that runs the connection */
    struct MHD_Connection *conn;
    struct timespec started;
    const char *method_name;
    const struct route *route;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    bool suspended;        /* by us: resumed when answered */
    bool close_after;      /* the answer ends the connection */
    struct guard_conn *gc; /* the connection's guard record (may be NULL) */
    bool answered;         /* resp is ready to send */
    bool after_done;       /* the gate's after step has been scheduled */
    atomic_int holds;      /* the running handler + open deferrals */
    struct http_request req;
    struct http_response resp;
    char request_id[40];
};

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int append_body(struct exchange *ex, const char *data, size_t len)
{
    if (ex->body_len + len > HTTP_MAX_BODY)
        return -1;
    if (ex->body_len + len + 1 > ex->body_cap) {
        size_t cap = ex->body_cap ? ex->body_cap * 2 : 1024;
        while (cap < ex->body_len + len + 1)
            cap *= 2;
        char *p = realloc(ex->body, cap);
        if (!p)
            return -1;
        ex->body = p;
        ex->body_cap = cap;
    }
    memcpy(ex->body + ex->body_len, data, len);
    ex->body_len += len;
    ex->body[ex->body_len] = '\0';
    return 0;
}

static enum MHD_Result collect_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct http_request *req = cls;
    if (req->nquery < HTTP_MAX_QUERY) {
        req->query[req->nquery].key = key;
        req->query[req->nquery].value = value;
        req->nquery++;
    }
    return MHD_YES;
}

/* Accept a client's X-Request-Id if it is short and plain; else make one. */
static void assign_request_id(struct exchange *ex)
{
    const char *given = MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given && http_request_id_acceptable(given, sizeof(ex->request_id)))
        memcpy(ex->request_id, given, strlen(given) + 1);
    else
        snprintf(ex->request_id, sizeof(ex->request_id), "%08x-%llx", ex->srv->id_prefix,
                 (unsigned long long)atomic_fetch_add(&ex->srv->next_id, 1));
    ex->req.request_id = ex->request_id;
}

static bool is_json_type(const char *type)
{
    if (!type)
        return true; /* a body without a type is taken as JSON */
    size_t n = strcspn(type, ";");
    while (n > 0 && type[n - 1] == ' ')
        n--;
    return (n == 16 && strncasecmp(type, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0);
}

static enum MHD_Result send_response(struct exchange *ex)
{
    struct http_response *r = &ex->resp;
    struct MHD_Response *mr;
    if (r->raw && !r->owned_raw && !r->json) {
        mr = MHD_create_response_from_buffer(r->raw_len, (void *)r->raw, MHD_RESPMEM_PERSISTENT);
    } else {
        size_t len;
        char *body = http_response_body(r, &len);
        if (!body)
            return MHD_NO;
        mr = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (!mr)
            free(body);
    }
    if (!mr)
        return MHD_NO;
    /* A header libmicrohttpd could not add (out of memory) is logged, and
     * the answer still goes: it may report a commit. */
    int missing =
        MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : JSON_CONTENT_TYPE) != MHD_YES;
    missing += MHD_add_response_header(mr, "X-Request-Id", ex->request_id) != MHD_YES;
    for (int i = 0; i < r->nheaders; i++)
        missing += MHD_add_response_header(mr, r->headers[i].name, r->headers[i].value) != MHD_YES;
    /* While draining, every answer ends its connection. */
    if (ex->close_after || guard_draining(ex->srv->guard))
        missing += MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close") != MHD_YES;
    if (missing)
        log_error("http: %d headers missing from the answer to %s", missing, ex->request_id);
    enum MHD_Result ret = MHD_queue_response(ex->conn, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

/* MHD_run() looks for resumed connections before it clears its own
 * wake-up, so a resume in between would wait for the next event; this
 * eventfd, cleared before MHD_run(), closes that gap. */
static void loop_wake(struct http_loop *loop)
{
    /* One write until the loop wakes: a worker answering a group resumes
     * hundreds of connections in a row, and each write was a system call
     * on the event's serial path (and a wake-up of the HTTP thread). */
    if (atomic_exchange(&loop->wake_pending, true))
        return;
    uint64_t one = 1;
    if (write(loop->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_warn("http: cannot wake an HTTP thread: %s", strerror(errno));
}

struct http_deferred *http_defer(const struct http_request *req)
{
    struct exchange *ex = req->exchange;
    if (!ex->suspended) { /* a handler on the HTTP thread */
        MHD_suspend_connection(ex->conn);
        ex->suspended = true;
    }
    atomic_fetch_add_explicit(&ex->holds, 1, memory_order_relaxed);
    return (struct http_deferred *)ex;
}

static void run_after(struct work *work);

/* Drop one hold. True when the answer is ready to send from this very
 * call (the handler ran inline and did not defer). */
static bool release_hold(struct exchange *ex)
{
    if (atomic_fetch_sub_explicit(&ex->holds, 1, memory_order_acq_rel) != 1)
        return false;
    if (ex->req.gate_after && !ex->after_done) {
        /* the gate's after step may wait on the database: on a worker */
        ex->after_done = true;
        if (!ex->suspended) { /* only ever on the HTTP thread */
            MHD_suspend_connection(ex->conn);
            ex->suspended = true;
        }
        ex->work.run = run_after;
        workers_submit(ex->srv->opts.workers, &ex->work);
        return false;
    }
    ex->answered = true;
    if (!ex->suspended)
        return true;
    struct http_loop *loop = ex->loop; /* once resumed, ex may be freed */
    MHD_resume_connection(ex->conn);   /* MHD calls on_request again to send */
    loop_wake(loop);
    return false;
}

void http_complete(struct http_deferred *deferred)
{
    /* the connection is suspended (http_defer): the resume sends the answer */
    (void)release_hold((struct exchange *)deferred);
}

/* The gate's after step is done: the answer goes out. */
static void run_after(struct work *work)
{
    struct exchange *ex = container_of(work, struct exchange, work);
    ex->srv->opts.gate->after(ex->srv->opts.app, ex->route, &ex->req, &ex->resp);
    atomic_store_explicit(&ex->holds, 1, memory_order_relaxed);
    (void)release_hold(ex); /* suspended: resumes the connection */
}

/* Run the handler holding the exchange (on a worker, after the gate's
 * database checks); true when resp is ready now. */
static bool run_handler(struct exchange *ex, bool on_worker)
{
    const struct http_gate *gate = ex->srv->opts.gate;
    atomic_store_explicit(&ex->holds, 1, memory_order_relaxed);
    if (!on_worker || !gate ||
        gate->check_db(ex->srv->opts.app, ex->route, &ex->req, &ex->resp) == 0)
        ex->route->handler(ex->srv->opts.app, &ex->req, &ex->resp);
    return release_hold(ex);
}

static void run_on_worker(struct work *work)
{
    /* suspended before it was queued: the resume sends the answer */
    (void)run_handler(container_of(work, struct exchange, work), true);
}

/* Route the complete request; either fill ex->resp or hand it off.
 * Returns true when the response is ready now. */
static bool start_request(struct exchange *ex)
{
    struct http_server *srv = ex->srv;
    struct http_request *req = &ex->req;
    struct route_match m;

    guard_stage(srv->guard, ex->gc, GUARD_SERVING);
    req->method = http_method_parse(ex->method_name);
    MHD_get_connection_values(ex->conn, MHD_GET_ARGUMENT_KIND, collect_query, req);
    assign_request_id(ex);
    req->server_leaving = atomic_load(&srv->phase) != LOOP_RUN;
    switch (router_match(srv->opts.routes, srv->opts.nroutes, req->method, req->path, &m)) {
    case ROUTE_NOT_FOUND:
        http_respond_error(&ex->resp, 404, "not_found", "no route for %s", req->path);
        return true;
    case ROUTE_METHOD_NOT_ALLOWED:
        http_respond_error(&ex->resp, 405, "method_not_allowed", "%s is not allowed here; use %s",
                           ex->method_name, m.allow);
        if (http_response_add_header(&ex->resp, "Allow", "%s", m.allow) != 0)
            log_error("http: no room for the Allow header of %s", ex->request_id);
        return true;
    case ROUTE_INVALID_ID:
        ex->route = m.route; /* counted under its route, not as unmatched */
        http_respond_error(&ex->resp, 400, "invalid_id", "%s must be a positive 64-bit integer",
                           m.bad_param);
        return true;
    case ROUTE_MATCH: break;
    }
    ex->route = m.route;
    memcpy(req->params, m.params, sizeof(req->params));
    req->nparams = m.nparams;
    if (ex->too_large) {
        http_respond_error(&ex->resp, 413, "payload_too_large", "request body exceeds %d bytes",
                           HTTP_MAX_BODY);
        return true;
    }
    if (ex->body_len > 0 && !(m.route->flags & ROUTE_NO_BODY)) {
        const char *type =
            MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!is_json_type(type)) {
            http_respond_error(&ex->resp, 415, "unsupported_media_type",
                               "request body must be application/json");
            return true;
        }
        req->body = ex->body;
        req->body_len = ex->body_len;
    }
    clock_gettime(CLOCK_MONOTONIC, &req->deadline);
    req->deadline.tv_sec += srv->opts.request_timeout_ms / 1000;
    req->deadline.tv_nsec += (long)(srv->opts.request_timeout_ms % 1000) * 1000000L;
    if (req->deadline.tv_nsec >= 1000000000L) {
        req->deadline.tv_sec++;
        req->deadline.tv_nsec -= 1000000000L;
    }
    enum http_gate_step step = HTTP_GATE_CONTINUE;
    if (srv->opts.gate) {
        req->authorization =
            MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        req->idempotency_key =
            MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, "Idempotency-Key");
        step = srv->opts.gate->check(srv->opts.app, m.route, req, &ex->resp);
    }
    if (step == HTTP_GATE_ANSWERED)
        return true;
    if (step == HTTP_GATE_ON_WORKER || (m.route->flags & ROUTE_NEEDS_DB)) {
        MHD_suspend_connection(ex->conn);
        ex->suspended = true;
        ex->work.run = run_on_worker;
        workers_submit(srv->opts.workers, &ex->work);
        return false;
    }
    return run_handler(ex, false);
}

/* What the header block says about framing, for the checks below. */
struct header_scan {
    bool bad_value; /* a NUL, CR or LF inside a name or value */
    bool bad_name;  /* white space in a name (before the colon) */
    bool bad_host;  /* a Host that is no host[:port] */
    int content_lengths;
    int hosts;
    int entries;
};

/* RFC 9112 3.2: a Host value is uri-host [":" port]: no white space,
 * no userinfo, path, query or fragment. */
static bool host_ok(const char *value)
{
    return value && !strpbrk(value, " \t/?#@\\");
}

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    struct header_scan *hs = cls;
    hs->entries++;
    if (kind != MHD_HEADER_KIND)
        return MHD_YES;
    if (strlen(key) != key_size || (value && strlen(value) != value_size) ||
        (value && (memchr(value, '\r', value_size) || memchr(value, '\n', value_size))))
        hs->bad_value = true;
    if (strpbrk(key, " \t"))
        hs->bad_name = true; /* RFC 9112 5.1: MUST reject */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        hs->content_lengths++;
    if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        hs->hosts++;
        hs->bad_host = hs->bad_host || !host_ok(value);
    }
    return MHD_YES;
}

/* An error answer written straight to the connection's socket, for when
 * the connection's buffer has no room left to build one through
 * libmicrohttpd. The socket's send queue is empty at this point (the
 * previous answer went out before this request was read), so the bytes go
 * out whole and in order. 0, or -1 if they did not. */
static int write_raw_error(struct MHD_Connection *conn, const char *status, const char *code,
                           const char *message)
{
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!fd)
        return -1;
    char body[256], msg[640];
    int len = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code,
                       message);
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 %s\r\nContent-Type: " JSON_CONTENT_TYPE
                     "\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                     status, len, body);
    return n > 0 && (size_t)n < sizeof(msg) &&
                   send(fd->connect_fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) == n
               ? 0
               : -1;
}

/* A 431 when the request's headers fill the connection's buffer: there
 * is no room left there to build any answer, and libmicrohttpd would drop
 * the connection silently. */
static void write_header_too_large(struct exchange *ex)
{
    char message[128];
    snprintf(message, sizeof(message),
             "request headers must leave room for the answer: keep them under %d bytes",
             ex->srv->opts.connection_memory - ANSWER_ROOM);
    if (write_raw_error(ex->conn, "431 Request Header Fields Too Large", "header_too_large",
                        message) != 0)
        log_debug("431 answer to %s not sent whole", ex->request_id);
    ex->resp.status = 431;
    ex->answered = true;
}

/* The partial list (struct http_loop). A full list makes the loop blind
 * until every connection it missed has had its read deadline. */
static void partial_add(struct http_loop *l, struct MHD_Connection *conn)
{
    if (l->npartial < PARTIAL_MAX) {
        l->partial[l->npartial++] = conn;
        return;
    }
    int read_timeout_ms = l->srv->opts.read_timeout_ms;
    l->partial_blind_until_ms = read_timeout_ms > 0 ? now_ms() + read_timeout_ms + 1000 : INT64_MAX;
}

static void partial_remove(struct http_loop *l, struct MHD_Connection *conn)
{
    for (int i = 0; i < l->npartial; i++)
        if (l->partial[i] == conn) {
            l->partial[i] = l->partial[--l->npartial];
            return;
        }
}

/* libmicrohttpd 0.9.75 refuses headers that do not fit the connection's
 * buffer with a 431 of its own, an HTML page, and tells only its logger,
 * which does not say which connection (mhd_log calls this). The refused
 * connection's request line is in and its headers are not, so it is on the
 * partial list: when it is the only one there (and the list missed
 * nobody), the JSON answer goes to its socket first and the socket is
 * shut, so that libmicrohttpd's page never leaves. With several there,
 * the page stays: a guess could refuse another client's request. */
static void refuse_oversized(struct http_loop *l)
{
    if (l->npartial != 1 || now_ms() < l->partial_blind_until_ms)
        return;
    struct MHD_Connection *conn = l->partial[0];
    l->npartial = 0;
    char message[128];
    snprintf(message, sizeof(message), "request headers must fit in %d bytes",
             l->srv->opts.connection_memory - ANSWER_ROOM);
    if (write_raw_error(conn, "431 Request Header Fields Too Large", "header_too_large", message) !=
        0)
        log_debug("431 answer not sent whole");
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fd && shutdown(fd->connect_fd, SHUT_RDWR) != 0)
        log_debug("shutdown after a 431 failed: %s", strerror(errno));
}

/* libmicrohttpd 0.9.75 keeps each query parameter in a record in the
 * connection's buffer; when they do not fit, it queues a 431 and then
 * carries on reading headers as if nothing happened, so the client waits
 * for an answer that never comes (60 parameters did it at 4 KiB). Its URI
 * log callback runs just before it parses them: a query that would not fit
 * is answered here, and the socket shut so that libmicrohttpd closes it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_loop *loop = cls;
    struct http_server *srv = loop->srv;
    partial_add(loop, conn);
    const char *query = strchr(uri, '?');
    if (!query)
        return NULL;
    size_t params = 1;
    for (const char *p = query; *p; p++)
        params += *p == '&';
    size_t need = strlen(uri) + params * HEADER_RECORD_BYTES + ANSWER_ROOM;
    if (need <= (size_t)srv->opts.connection_memory)
        return NULL;
    char message[128];
    snprintf(message, sizeof(message),
             "the query string has %zu parameters in %zu bytes: too many for the connection's "
             "buffer",
             params, strlen(query + 1));
    if (write_raw_error(conn, "414 URI Too Long", "uri_too_long", message) != 0)
        log_debug("414 answer not sent whole");
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (fd && shutdown(fd->connect_fd, SHUT_RDWR) != 0)
        log_debug("shutdown after a 414 failed: %s", strerror(errno));
    log_warn("http: refused a query of %zu parameters with 414", params);
    return NULL;
}

/* What the checks made as soon as the headers are in decided. */
enum early_verdict {
    EARLY_ACCEPT,  /* read the body, run the request */
    EARLY_REFUSE,  /* ex->resp is filled: send it now, then close the connection */
    EARLY_ABANDON, /* a raw 431 was written (write_header_too_large): close now */
};

/* Checks made as soon as the headers are in, before any body is read or
 * anything runs. */
static enum early_verdict refuse_early(struct exchange *ex, const char *version)
{
    struct http_response *resp = &ex->resp;
    struct header_scan hs = { 0 };
    MHD_get_connection_values_n(ex->conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND | MHD_COOKIE_KIND,
                                scan_header, &hs);
    const union MHD_ConnectionInfo *size =
        MHD_get_connection_info(ex->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    size_t used = (size ? size->header_size : 0) + (size_t)hs.entries * HEADER_RECORD_BYTES;
    if (used + ANSWER_ROOM > (size_t)ex->srv->opts.connection_memory) {
        write_header_too_large(ex);
        return EARLY_ABANDON;
    }
    bool http11 = strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    const char *te =
        MHD_lookup_connection_value(ex->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (hs.bad_value) {
        http_respond_error(resp, 400, "bad_request", "a header contains a NUL, CR or LF byte");
    } else if (hs.bad_name) {
        http_respond_error(resp, 400, "bad_request", "white space in a header name");
    } else if (http11 && hs.hosts != 1) {
        http_respond_error(resp, 400, "bad_request",
                           "a version 1.1 request needs exactly one Host header");
    } else if (hs.bad_host) {
        http_respond_error(resp, 400, "bad_request", "the Host header is not a host[:port]");
    } else if (hs.content_lengths > 1) {
        http_respond_error(resp, 400, "bad_request", "more than one Content-Length");
    } else if (te && (hs.content_lengths || !http11)) {
        /* RFC 9112 6.1: ambiguous framing, or Transfer-Encoding in 1.0 */
        http_respond_error(resp, 400, "bad_request",
                           "Transfer-Encoding with Content-Length, or in HTTP/1.0");
    } else if (te && strcasecmp(te, "chunked") != 0) {
        http_respond_error(resp, 501, "not_implemented",
                           "Transfer-Encoding '%.40s' is not supported; use chunked", te);
    } else if (guard_draining(ex->srv->guard)) {
        http_respond_error(resp, 503, "shutting_down", "the server is shutting down; retry");
        if (http_response_add_header(resp, "Retry-After", "1") != 0)
            log_error("http: no room for a Retry-After header");
    } else {
        return EARLY_ACCEPT;
    }
    return EARLY_REFUSE;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct http_loop *loop = cls;
    struct http_server *srv = loop->srv;
    struct exchange *ex = *con_cls;
    if (!ex) {
        partial_remove(loop, conn); /* its headers are all in */
        ex = calloc(1, sizeof(*ex));
        if (!ex)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &ex->started);
        ex->srv = srv;
        ex->loop = loop;
        ex->conn = conn;
        ex->method_name = method;
        ex->req.path = url; /* lives as long as the request */
        ex->req.exchange = ex;
        const union MHD_ConnectionInfo *sc =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        ex->gc = sc ? sc->socket_context : NULL;
        guard_stage(srv->guard, ex->gc, GUARD_RECEIVING);
        http_response_init(&ex->resp);
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > HTTP_MAX_BODY)
            ex->too_large = true; /* answered once the body is drained */
        atomic_fetch_add(&srv->live, 1);
        *con_cls = ex;
        enum early_verdict verdict = refuse_early(ex, version);
        if (verdict == EARLY_ABANDON)
            return MHD_NO;
        if (verdict == EARLY_REFUSE) {
            assign_request_id(ex);
            ex->answered = true;
            ex->close_after = true;
            return send_response(ex); /* before the body: nothing else is read */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!ex->too_large && append_body(ex, upload_data, *upload_data_size) != 0)
            ex->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ex->answered || start_request(ex)) {
        ex->answered = true;
        return send_response(ex);
    }
    return MHD_YES; /* suspended; resumed once answered */
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_loop *loop = cls;
    struct http_server *srv = loop->srv;
    partial_remove(loop, conn); /* a request that ended before its headers did */
    struct exchange *ex = *con_cls;
    if (!ex)
        return;
    guard_stage(srv->guard, ex->gc, GUARD_IDLE);
    double ms = ms_since(&ex->started);
    int status = ex->answered ? ex->resp.status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && status)
        log_debug("request %s ended early (%d)", ex->request_id, (int)toe);
    metrics_observe_request(srv->opts.app->metrics, ex->route, status, ms);
    log_request(
        ex->method_name, ex->req.path, status, ms, ex->request_id,
        json_string_value(json_object_get(json_object_get(ex->resp.json, "error"), "code")));
    http_response_clear(&ex->resp);
    free(ex->body);
    free(ex);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->live, 1);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct http_loop *loop = cls;
    struct http_server *srv = loop->srv;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = fd ? guard_opened(srv->guard, fd->connect_fd) : NULL;
    } else {
        partial_remove(loop, conn);
        guard_closed(srv->guard, *socket_context);
        *socket_context = NULL;
    }
}

static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    struct http_server *srv = cls;
    return guard_admit(srv->guard) ? MHD_YES : MHD_NO;
}

/* libmicrohttpd's messages, one line each. Its refusals of malformed
 * requests come as "Error processing request (HTTP response code is 431
 * ('<html>...'))", after a line saying why: keep the status, not the page,
 * and leave the reason to the debug level. A 431 comes from the loop's
 * own thread, in the middle of the refused connection's processing: it
 * may still be answered in JSON (refuse_oversized). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_loop *loop = cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    static const char refused[] = "Error processing request (HTTP response code is ";
    if (strncmp(msg, refused, sizeof(refused) - 1) == 0) {
        const char *status = msg + sizeof(refused) - 1;
        if (strncmp(status, "431", 3) == 0)
            refuse_oversized(loop);
        log_warn("http: libmicrohttpd refused a malformed request with %.3s", status);
    } else if (strncmp(msg, "Connection socket is closed", 27) == 0 || /* the guard's doing */
               strncmp(msg, "Not enough memory in pool", 25) == 0 ||
               strstr(msg, "Closing connection") || strstr(msg, "closing connection"))
        log_debug("http: %s", msg);
    else
        log_warn("http: %s", msg);
}

/* Take waiting connections off the listener in bulk and hand them to this
 * loop's daemon. libmicrohttpd 0.9.75 accepts at most 11 per MHD_run(), and
 * a round that also answers a group's hundreds of resumed requests takes
 * milliseconds: under a 10,000-connection spike the kernel's accept queue
 * (somaxconn, 4096 here) filled, and the handshakes it dropped were retried
 * 1 and 3 s later (spike walls of 2.4-3.3 s against 0.5-1 s; the queue
 * sampled at 4,097). 15 spikes each of for-update and batch on a fresh
 * server, alternating: queue overflows in 5 of 30 runs before, 1 of 30
 * with this; requests over 1 s in 4 runs, then none. MHD_add_connection()
 * is safe here: it runs on the daemon's own thread, and applies the same
 * limits, accept policy (admit) and callbacks as libmicrohttpd's accept. */
#define ACCEPT_BURST    1024
#define ACCEPT_PAUSE_MS 100

static void accept_burst(struct http_loop *l)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        /* A daemon at its share refuses: leave the rest to the other loops. */
        const union MHD_DaemonInfo *n =
            MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!n || n->num_connections >= l->conn_limit)
            return;
        struct sockaddr_storage addr;
        socklen_t len = sizeof(addr);
        int fd =
            accept4(l->listen_fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* libmicrohttpd's own accept says so too (mhd_log) */
                l->accept_pause_ms = now_ms() + ACCEPT_PAUSE_MS;
            }
            return; /* EAGAIN: the queue is empty (or another loop took it) */
        }
        /* On refusal (a limit, out of memory) it closes fd itself. */
        (void)MHD_add_connection(l->daemon, fd, (struct sockaddr *)&addr, len);
    }
}

/* An HTTP thread: wait for its daemon's sockets (its epoll fd), a resume
 * (wake_fd) or new connections (the listener, also in the epoll set), then
 * take new connections in bulk and let MHD_run() handle what is ready. */
static void *loop_main(void *arg)
{
    struct http_loop *l = arg;
    struct http_server *srv = l->srv;
    struct pollfd p[3] = { { .fd = l->epoll_fd, .events = POLLIN },
                           { .fd = l->wake_fd, .events = POLLIN },
                           { .fd = -1, .events = POLLIN } };
    int phase;
    while ((phase = atomic_load(&srv->phase)) != LOOP_EXIT) {
        if (phase == LOOP_QUIESCE && !l->quiesced) {
            MHD_quiesce_daemon(l->daemon); /* the listener is closed once, by the stopper */
            l->listen_fd = -1;
            l->quiesced = true;
            atomic_fetch_add(&srv->quiesced, 1);
        }
        if (l->listen_fd >= 0 && (p[2].revents & POLLIN))
            accept_burst(l);
        /* its failures (a failed epoll_wait) it logs itself, through
         * mhd_log; the next round tries again */
        (void)MHD_run(l->daemon);
        MHD_UNSIGNED_LONG_LONG to;
        int ms = MHD_get_timeout(l->daemon, &to) != MHD_YES ? -1 : to > INT_MAX ? INT_MAX : (int)to;
        p[2].fd = l->listen_fd >= 0 && now_ms() >= l->accept_pause_ms ? l->listen_fd : -1;
        p[2].revents = 0;
        /* a failed poll() (EINTR) just goes round again */
        int ready = poll(p, 3, ms);
        /* before the next MHD_run() looks for resumed connections: a resume
         * after this point writes again */
        atomic_store(&l->wake_pending, false);
        uint64_t n;
        if (ready > 0 && (p[1].revents & POLLIN) &&
            read(l->wake_fd, &n, sizeof(n)) != (ssize_t)sizeof(n))
            log_warn("http: cannot clear an HTTP thread's wake-up: %s", strerror(errno));
    }
    return NULL;
}

/* Loop i's daemon; loop 0 binds addr, the others share its listener. */
static int start_loop(struct http_server *srv, int i, unsigned flags, const struct sockaddr *addr)
{
    const struct http_server_options *opts = &srv->opts;
    struct http_loop *l = &srv->loops[i];
    l->srv = srv;
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0)
        return -1;
    struct MHD_OptionItem listen[2] = { { MHD_OPTION_SOCK_ADDR, 0, (void *)addr },
                                        { MHD_OPTION_END, 0, NULL } };
    if (i > 0) {
        const union MHD_DaemonInfo *fd =
            MHD_get_daemon_info(srv->loops[0].daemon, MHD_DAEMON_INFO_LISTEN_FD);
        if (!fd)
            return -1;
        listen[0] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd->listen_fd, NULL };
    }
    /* libmicrohttpd's own limit is above ours (the guard's): at its limit
     * it stops accepting and new clients hang in the backlog. */
    unsigned limit = (unsigned)http_mhd_connection_limit(opts->max_connections);
    l->conn_limit = (limit + (unsigned)srv->nloops - 1) / (unsigned)srv->nloops;
    l->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, admit, srv, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        l, MHD_OPTION_ARRAY, listen, MHD_OPTION_CONNECTION_LIMIT, l->conn_limit,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, l, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)opts->connection_timeout_s, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)16384,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)opts->connection_memory,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
        MHD_OPTION_END);
    if (!l->daemon)
        return -1;
    const union MHD_DaemonInfo *ep = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!ep)
        return -1;
    l->epoll_fd = ep->epoll_fd;
    const union MHD_DaemonInfo *lf = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (!lf)
        return -1;
    l->listen_fd = lf->listen_fd;
    l->started = pthread_create(&l->thread, NULL, loop_main, l) == 0;
    return l->started ? 0 : -1;
}

static int start_loops(struct http_server *srv, unsigned flags, const struct sockaddr *addr)
{
    srv->nloops = srv->opts.threads > 0 ? srv->opts.threads : 1;
    srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
    if (!srv->loops)
        return -1;
    for (int i = 0; i < srv->nloops; i++)
        srv->loops[i].wake_fd = srv->loops[i].listen_fd = -1;
    for (int i = 0; i < srv->nloops; i++)
        if (start_loop(srv, i, flags, addr) != 0)
            return -1;
    return 0;
}

static void wake_all(struct http_server *srv)
{
    for (int i = 0; i < srv->nloops; i++)
        if (srv->loops[i].wake_fd >= 0)
            loop_wake(&srv->loops[i]);
}

/* Every loop stops accepting (each quiesces its own daemon); the shared
 * listener is returned, for the caller to close. */
static MHD_socket quiesce_loops(struct http_server *srv)
{
    const union MHD_DaemonInfo *fd =
        MHD_get_daemon_info(srv->loops[0].daemon, MHD_DAEMON_INFO_LISTEN_FD);
    MHD_socket listener = fd ? fd->listen_fd : MHD_INVALID_SOCKET;
    atomic_store(&srv->phase, LOOP_QUIESCE);
    wake_all(srv);
    struct timespec pause = { 0, 1000000L };
    while (atomic_load(&srv->quiesced) < srv->nloops)
        nanosleep(&pause, NULL);
    return listener;
}

/* Join the threads and stop the daemons (also after a failed start, where
 * nothing has been quiesced yet and loop 0's daemon owns the listener). */
static void stop_loops(struct http_server *srv)
{
    atomic_store(&srv->phase, LOOP_EXIT);
    wake_all(srv);
    for (int i = 0; i < srv->nloops; i++)
        if (srv->loops[i].started)
            pthread_join(srv->loops[i].thread, NULL);
    for (int i = srv->nloops - 1; i >= 0; i--) {
        struct http_loop *l = &srv->loops[i];
        if (l->daemon && i > 0 && !l->quiesced)
            MHD_quiesce_daemon(l->daemon); /* the listener is loop 0's to close */
        if (l->daemon)
            MHD_stop_daemon(l->daemon);
        if (l->wake_fd >= 0)
            close(l->wake_fd);
    }
    free(srv->loops);
    srv->loops = NULL;
}

int http_server_start(const struct http_server_options *opts, struct http_server **out, char *err,
                      size_t errlen)
{
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srv->opts = *opts;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    srv->id_prefix = (unsigned)(now.tv_nsec ^ (now.tv_sec << 8) ^ getpid());

    struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)opts->port) };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)opts->port) };
    struct sockaddr *addr;
    /* No MHD_USE_INTERNAL_POLLING_THREAD: libmicrohttpd 0.9.75's internal
     * epoll loop (1.0.1's too) can sleep with requests in hand. When one
     * epoll_wait() returns exactly 128 events (its MAX_EVENTS) it calls
     * epoll_wait() again with the same timeout, up to the connection
     * timeout, before handling the 128 it has; with edge-triggered sockets
     * nothing wakes it. 256 keep-alive clients on 2 threads hit that in 2
     * of 18 8-second runs, 128 on one thread in 9 of 12 (tests/stall/,
     * docs/libmicrohttpd-epoll-stall.md). So each HTTP thread runs its own
     * daemon here: it waits on the daemon's epoll fd itself and MHD_run()
     * only takes what is ready (timeout 0). epoll, not poll(): poll() scans
     * every connection at each wake-up, and 10,000 idle keep-alive
     * connections cut throughput to 0.41-0.51 of what it was without. */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, opts->bind, &in4.sin_addr) == 1) {
        addr = (struct sockaddr *)&in4;
    } else if (inet_pton(AF_INET6, opts->bind, &in6.sin6_addr) == 1) {
        addr = (struct sockaddr *)&in6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "invalid --bind '%s': expected an IPv4 or IPv6 address", opts->bind);
        free(srv);
        return -1;
    }
    if (guard_create(opts->max_connections, opts->read_timeout_ms, &srv->guard) != 0) {
        snprintf(err, errlen, "cannot start the connection guard thread");
        free(srv);
        return -1;
    }
    if (start_loops(srv, flags, addr) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not permitted?)", opts->bind,
                 opts->port);
        stop_loops(srv);
        guard_destroy(srv->guard);
        free(srv);
        return -1;
    }
    *out = srv;
    return 0;
}

int http_mhd_connection_limit(int max_connections)
{
    return max_connections + max_connections / 16 + 64;
}

void http_server_leave(struct http_server *srv)
{
    if (srv)
        atomic_store(&srv->phase, LOOP_LEAVING);
}

int http_server_stop(struct http_server *srv, int grace_ms)
{
    if (!srv)
        return 0;
    MHD_socket listener = quiesce_loops(srv);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    /* Requests already received get their answers, with Connection: close;
     * later ones get 503 shutting_down; idle connections are closed. */
    guard_drain(srv->guard);
    struct timespec t0, pause = { 0, 10 * 1000000L };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((atomic_load(&srv->live) > 0 || guard_connections(srv->guard) > 0) &&
           ms_since(&t0) < grace_ms)
        nanosleep(&pause, NULL);
    int live = atomic_load(&srv->live);
    if (live > 0) {
        /* libmicrohttpd aborts when stopped with suspended connections:
         * leave it running; the process is about to exit anyway. */
        log_error("stopping with %d requests unfinished after %d ms", live, grace_ms);
        return -1;
    }
    stop_loops(srv);
    guard_destroy(srv->guard);
    free(srv);
    return 0;
}
