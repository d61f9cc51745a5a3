/* A battery of hostile requests, each on its own connection with a 3 s
 * read limit. Every row: exactly one HTTP response (interim 1xx aside) or
 * a clean close, no hang, no 2xx for what RFC 9112 says to reject, the
 * server alive afterwards; errors reservd itself makes are JSON in its
 * format. Rows that libmicrohttpd 0.9.75 rejects before reservd sees them
 * are marked mhd: only "4xx/5xx or a close, never 2xx" is asserted for
 * them, and a summary line counts how many are not JSON or send their
 * header block twice. The database changes only by the rows meant to. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fault.h"

enum expect {
    WANT_OK,     /* a valid request: 2xx */
    WANT_ERROR,  /* reservd answers with its JSON error, 4xx/5xx (.status if set) */
    WANT_REJECT, /* RFC 9112 (or the contract) says reject: 4xx/5xx or a close, never 2xx */
    WANT_CLOSES, /* CL and TE together: an error, or the connection closed after the answer
                 * (RFC 9112 6.1 allows framing by TE alone, then MUST close) */
    WANT_ANY,    /* the server's choice: one answer (JSON if an error of reservd's) or a close */
    WANT_HIDDEN, /* RFC 9110 says reject, but libmicrohttpd 0.9.75 hides the fault from
                    * reservd (it cuts the line at a NUL byte): only the database and
                    * the server's life are checked; counted and printed as known */
};
static const char *const expect_names[] = { "ok", "error", "reject", "closes", "any", "hidden" };

struct row {
    const char *name;
    enum expect expect;
    int status;          /* exact status wanted (0: any in the class) */
    bool mhd;            /* libmicrohttpd 0.9.75 answers it itself */
    const char *creates; /* table a 201 adds a row to, or NULL */
    char *req;
    size_t len;
};

#define MAX_ROWS 160
static struct row rows[MAX_ROWS];
static int nrows;

static void add_bytes(const char *name, enum expect x, int status, bool mhd, const char *creates,
                      const char *bytes, size_t len)
{
    if (nrows == MAX_ROWS)
        fail_msg("too many rows");
    char *copy = malloc(len + 1);
    if (!copy)
        fail_msg("out of memory");
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    rows[nrows++] = (struct row){ name, x, status, mhd, creates, copy, len };
}

/* A literal that may hold NUL bytes. */
#define ADD_LIT(name, x, status, mhd, creates, lit) \
    add_bytes(name, x, status, mhd, creates, lit, sizeof(lit) - 1)

static void add(const char *name, enum expect x, int status, bool mhd, const char *creates,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void add(const char *name, enum expect x, int status, bool mhd, const char *creates,
                const char *fmt, ...)
{
    char *text = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail_msg("out of memory");
    add_bytes(name, x, status, mhd, creates, text, (size_t)n);
    free(text);
}

/* POST path with a JSON body (body_len bytes), Connection: close. */
static void add_post(const char *name, enum expect x, int status, const char *creates,
                     const char *path, const char *body, size_t body_len)
{
    char *head = NULL;
    int n = asprintf(&head,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Authorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     path, test_admin_token(), body_len);
    char *req = n < 0 ? NULL : malloc((size_t)n + body_len);
    if (!req)
        fail_msg("out of memory");
    memcpy(req, head, (size_t)n);
    memcpy(req + n, body, body_len);
    add_bytes(name, x, status, false, creates, req, (size_t)n + body_len);
    free(head);
    free(req);
}

static void add_json(const char *name, enum expect x, int status, const char *creates,
                     const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void add_json(const char *name, enum expect x, int status, const char *creates,
                     const char *path, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (n < 0)
        fail_msg("out of memory");
    add_post(name, x, status, creates, path, body, (size_t)n);
    free(body);
}

static void add_get(const char *name, enum expect x, int status, bool mhd, const char *target)
{
    add(name, x, status, mhd, NULL,
        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer "
        "%s\r\n\r\n",
        target, test_admin_token());
}

static char *repeat(const char *unit, int times, const char *tail)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(ul * (size_t)times + tl + 1);
    if (!s)
        fail_msg("out of memory");
    for (int i = 0; i < times; i++)
        memcpy(s + ul * (size_t)i, unit, ul);
    memcpy(s + ul * (size_t)times, tail, tl + 1);
    return s;
}

#define H     "Host: 127.0.0.1\r\n"
#define CLOSE "Connection: close\r\n"

static void framing_rows(void)
{
    ADD_LIT("HTTP/1.0 request", WANT_OK, 200, false, NULL, "GET /livez HTTP/1.0\r\n\r\n");
    ADD_LIT("HTTP/1.0 keep-alive", WANT_OK, 200, false, NULL,
            "GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ADD_LIT("HTTP/1.1 without Host", WANT_ERROR, 400, false, NULL, "GET /livez HTTP/1.1\r\n\r\n");
    ADD_LIT("two Host headers", WANT_REJECT, 400, false, NULL,
            "GET /livez HTTP/1.1\r\n" H H CLOSE "\r\n");
    ADD_LIT("Host with a space", WANT_REJECT, 400, false, NULL,
            "GET /livez HTTP/1.1\r\nHost: a b\r\n" CLOSE "\r\n");
    ADD_LIT("method in lower case", WANT_ERROR, 0, false, NULL,
            "get /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("unknown method", WANT_ERROR, 0, false, NULL,
            "BREW /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("method not a token", WANT_REJECT, 0, false, NULL,
            "G@T /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("no HTTP version", WANT_REJECT, 0, true, NULL, "GET /livez\r\n" H CLOSE "\r\n");
    ADD_LIT("version in lower case", WANT_REJECT, 0, true, NULL,
            "GET /livez http/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("HTTP/2 in a request line", WANT_REJECT, 0, true, NULL,
            "GET /livez HTTP/2\r\n" H CLOSE "\r\n");
    ADD_LIT("HTTP/0.9", WANT_REJECT, 0, true, NULL, "GET /livez HTTP/0.9\r\n" H CLOSE "\r\n");
    ADD_LIT("HTTP/1.2", WANT_ANY, 0, false, NULL, "GET /livez HTTP/1.2\r\n" H CLOSE "\r\n");
    ADD_LIT("HTTP/2 preface", WANT_REJECT, 0, true, NULL, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    ADD_LIT("absolute-form target", WANT_ANY, 0, false, NULL,
            "GET http://127.0.0.1/livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("asterisk-form OPTIONS", WANT_ANY, 0, false, NULL,
            "OPTIONS * HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("CONNECT authority-form", WANT_REJECT, 0, false, NULL,
            "CONNECT 127.0.0.1:80 HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("space before the request line", WANT_REJECT, 0, true, NULL,
            " GET /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("empty line before the request", WANT_ANY, 0, false, NULL,
            "\r\nGET /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("two spaces in the request line", WANT_ANY, 0, false, NULL,
            "GET  /livez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("tabs in the request line", WANT_ANY, 0, true, NULL,
            "GET\t/livez\tHTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("space inside the target", WANT_REJECT, 0, false, NULL,
            "GET /li vez HTTP/1.1\r\n" H CLOSE "\r\n");
    ADD_LIT("bare LF line ends", WANT_ANY, 0, false, NULL, "GET /livez HTTP/1.1\n" H CLOSE "\n");
    ADD_LIT("bare CR in the request line", WANT_REJECT, 0, true, NULL,
            "GET /livez HTTP/1.1\r" H CLOSE "\r\n");
    ADD_LIT("Expect: 100-continue on a GET", WANT_OK, 200, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "Expect: 100-continue\r\n" CLOSE "\r\n");
    ADD_LIT("Upgrade: h2c", WANT_OK, 200, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n"
            "Connection: Upgrade, HTTP2-Settings, close\r\n\r\n");
}

static void header_rows(void)
{
    ADD_LIT("header line without a colon", WANT_REJECT, 0, true, NULL,
            "GET /livez HTTP/1.1\r\n" H "BadHeader\r\n" CLOSE "\r\n");
    ADD_LIT("space before a colon", WANT_REJECT, 400, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-Test : 1\r\n" CLOSE "\r\n");
    ADD_LIT("obs-fold header", WANT_ANY, 0, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-Fold: a\r\n b\r\n" CLOSE "\r\n");
    ADD_LIT("NUL in a header value", WANT_HIDDEN, 0, true, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-A: a\0b\r\n" CLOSE "\r\n");
    ADD_LIT("bare CR in a header value", WANT_REJECT, 0, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-A: a\rb\r\n" CLOSE "\r\n");
    ADD_LIT("NUL in a header name", WANT_HIDDEN, 0, true, NULL,
            "GET /livez HTTP/1.1\r\n" H "\0X: y\r\n" CLOSE "\r\n");
    ADD_LIT("control bytes in a header value", WANT_ANY, 0, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-Bin: \x01\x7f\r\n" CLOSE "\r\n");
    ADD_LIT("invalid UTF-8 in a header value", WANT_ANY, 0, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-Utf: \xc3\xa9\xff\r\n" CLOSE "\r\n");
    ADD_LIT("hostile X-Request-Id", WANT_OK, 200, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "X-Request-Id: <script>\"%0d%0a\r\n" CLOSE "\r\n");
    char *many = repeat("X-Many: v\r\n", 400, "");
    add("400 header lines", WANT_ERROR, 431, false, NULL,
        "GET /livez HTTP/1.1\r\n" H "%s" CLOSE "\r\n", many);
    free(many);
    /* the connection's buffer is 8 KiB here (--connection-memory, hostile_battery) */
    char *big = repeat("b", 6000, "");
    add("one 6,000-byte header", WANT_OK, 200, false, NULL,
        "GET /livez HTTP/1.1\r\n" H "X-Big: %s\r\n" CLOSE "\r\n", big);
    free(big);
    big = repeat("b", 12000, "");
    add("one 12,000-byte header", WANT_ERROR, 431, false, NULL,
        "GET /livez HTTP/1.1\r\n" H "X-Big: %s\r\n" CLOSE "\r\n", big);
    free(big);
    add("body as text/plain", WANT_ERROR, 415, false, NULL,
        "POST /users HTTP/1.1\r\n" H CLOSE
        "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}");
    ADD_LIT("Accept-Encoding: gzip", WANT_OK, 200, false, NULL,
            "GET /livez HTTP/1.1\r\n" H "Accept-Encoding: gzip\r\n" CLOSE "\r\n");
}

static void body_framing_rows(void)
{
    const char *user = "{\"name\":\"Chunk\",\"email\":\"chunked@example.com\"}";
    add("chunked body", WANT_OK, 201, false, "users",
        "POST /users HTTP/1.1\r\n" H CLOSE "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
        strlen(user), user);
    ADD_LIT("chunk size overflow", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Transfer-Encoding: chunked\r\n\r\n"
            "FFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n");
    ADD_LIT("chunk size not hex", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE
            "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
    ADD_LIT("Transfer-Encoding: xchunked", WANT_REJECT, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE
            "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    ADD_LIT("Transfer-Encoding: chunked, identity", WANT_REJECT, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE
            "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n");
    ADD_LIT("Transfer-Encoding: gzip, chunked", WANT_REJECT, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n");
    const char *fold = "{\"name\":\"Fold\",\"email\":\"fold@example.com\"}";
    add("Transfer-Encoding by obs-fold", WANT_ANY, 0, false, "users",
        "POST /users HTTP/1.1\r\n" H CLOSE "Content-Type: application/json\r\n"
        "Transfer-Encoding:\r\n chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
        strlen(fold), fold);
    ADD_LIT("Transfer-Encoding: Chunked", WANT_ANY, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
    /* CL.TE: a server that frames by TE and keeps the connection would
     * answer the smuggled GET too (two responses) */
    ADD_LIT("Content-Length and Transfer-Encoding, smuggled GET", WANT_CLOSES, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
            "0\r\n\r\nGET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    const char *te = "{\"name\":\"Both\",\"email\":\"both@example.com\"}";
    add("Content-Length and Transfer-Encoding, valid chunked body", WANT_CLOSES, 0, false, "users",
        "POST /users HTTP/1.1\r\n" H "Content-Type: application/json\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
        strlen(te), te);
    const char *two = "{\"name\":\"Two\",\"email\":\"two@example.com\"}";
    add("two different Content-Lengths", WANT_REJECT, 400, false, "users",
        "POST /users HTTP/1.1\r\n" H CLOSE
        "Content-Type: application/json\r\nContent-Length: %zu\r\n"
        "Content-Length: 5\r\n\r\n%s",
        strlen(two), two);
    ADD_LIT("two equal Content-Lengths", WANT_ANY, 0, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}");
    ADD_LIT("Content-Length: 2, 2", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: 2, 2\r\n\r\n{}");
    ADD_LIT("Content-Length: abc", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: abc\r\n\r\n");
    ADD_LIT("Content-Length: -1", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: -1\r\n\r\n");
    ADD_LIT("Content-Length: +2", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: +2\r\n\r\n{}");
    ADD_LIT("Content-Length of 20 digits", WANT_REJECT, 0, true, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE "Content-Length: 99999999999999999999\r\n\r\n");
    char *huge = repeat("x", 70000, "");
    add_post("body of 70,000 bytes", WANT_ERROR, 413, NULL, "/users", huge, strlen(huge));
    free(huge);
    ADD_LIT("bytes after the body", WANT_ERROR, 400, false, NULL,
            "POST /users HTTP/1.1\r\n" H CLOSE
            "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n"
            "{}GARBAGE\r\n\r\n");
    ADD_LIT("GET with a body", WANT_ANY, 0, false, NULL,
            "GET /livez HTTP/1.1\r\n" H CLOSE "Content-Length: 5\r\n\r\nhello");
}

static void number_rows(long long ev, long long user)
{
    add_json("valid reservation", WANT_OK, 201, "reservations", "/reservations",
             "{\"eventId\":%lld,\"userId\":%lld}", ev, user);
    add_json("eventId with a leading zero", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":0%lld,\"userId\":%lld}", ev, user + 1);
    add_json("eventId as a float", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":%lld.0,\"userId\":%lld}", ev, user + 1);
    add_json("eventId with an exponent", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":%llde0,\"userId\":%lld}", ev, user + 1);
    add_json("eventId negative", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":-%lld,\"userId\":%lld}", ev, user + 1);
    add_json("eventId zero", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":0,\"userId\":%lld}", user + 1);
    add_json("eventId 2^63", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":9223372036854775808,\"userId\":%lld}", user + 1);
    add_json("eventId of 40 digits", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":1234567890123456789012345678901234567890,\"userId\":%lld}", user + 1);
    add_json("userId as a string", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":%lld,\"userId\":\"%lld\"}", ev, user + 1);
    const char *event = "{\"name\":\"Hostile %s\",\"date\":\"2030-01-01T00:00:00Z\","
                        "\"location\":\"X\",\"maxTickets\":%s}";
    char body[256];
    const char *tickets[][2] = { { "negative", "-1" },     { "float", "1.5" },
                                 { "exponent", "1e3" },    { "over the limit", "10000001" },
                                 { "1e400", "1e400" },     { "leading zeros", "007" },
                                 { "a string", "\"100\"" } };
    static char names[sizeof(tickets) / sizeof(tickets[0])][40];
    for (size_t i = 0; i < sizeof(tickets) / sizeof(tickets[0]); i++) {
        snprintf(body, sizeof(body), event, tickets[i][0], tickets[i][1]);
        snprintf(names[i], sizeof(names[i]), "maxTickets %s", tickets[i][0]);
        add_post(names[i], WANT_ERROR, 400, NULL, "/events", body, strlen(body));
    }
    add_get("path id with leading zeros", WANT_ERROR, 0, false, "/users/0001");
    add_get("path id negative", WANT_ERROR, 0, false, "/users/-1");
    add_get("path id 2^63", WANT_ERROR, 0, false, "/users/9223372036854775808");
    add_get("path id with an exponent", WANT_ERROR, 0, false, "/users/1e3");
    add_get("path id as a float", WANT_ERROR, 0, false, "/users/1.5");
    add_get("limit negative", WANT_ERROR, 400, false, "/users?limit=-1");
    add_get("limit of 20 digits", WANT_ERROR, 400, false, "/users?limit=99999999999999999999");
    add_get("eventId filter not a number", WANT_ERROR, 400, false, "/reservations?eventId=abc");
}

static void add_get_query(const char *name, enum expect x, int status, const char *query)
{
    add(name, x, status, false, NULL, "GET /livez?%s HTTP/1.1\r\n" H CLOSE "\r\n", query);
}

static void path_rows(void)
{
    add_get("dot-dot segment", WANT_ANY, 0, false, "/users/../events/1");
    add_get("encoded dot-dot", WANT_ANY, 0, false, "/users/%2e%2e/events/1");
    add_get("double slash", WANT_ANY, 0, false, "//users/1");
    add_get("encoded NUL at the end", WANT_ANY, 0, false, "/users/1%00");
    add_get("encoded NUL inside", WANT_ANY, 0, false, "/us%00ers/1");
    add_get("encoded slash", WANT_ANY, 0, false, "/users%2F1");
    add_get("bad percent escape", WANT_ANY, 0, false, "/users/%zz");
    ADD_LIT("raw NUL in the target", WANT_ANY, 0, false, NULL,
            "GET /users/1\0/x HTTP/1.1\r\n" H CLOSE "\r\n");
    char *p = repeat("a", 2500, "");
    char *target = NULL;
    if (asprintf(&target, "/%s", p) < 0)
        fail_msg("out of memory");
    add_get("path of 2,500 bytes", WANT_ERROR, 404, false, target);
    free(target);
    free(p);
    p = repeat("a", 9000, "");
    add("path of 9,000 bytes", WANT_REJECT, 0, true, NULL, "GET /%s HTTP/1.1\r\n" H CLOSE "\r\n",
        p);
    free(p);
    /* libmicrohttpd keeps a record per query parameter in the connection's
     * buffer and, when they do not fit, never answers (on_uri answers) */
    p = repeat("a=1&", 80, "a=1");
    add_get_query("query of 81 parameters", WANT_OK, 200, p);
    free(p);
    p = repeat("a=1&", 150, "a=1");
    add_get_query("query of 151 parameters in 600 bytes", WANT_ERROR, 414, p);
    free(p);
    p = repeat("a=1&", 1200, "a=1");
    add_get_query("query of 4,800 bytes", WANT_ERROR, 414, p);
    free(p);
}

static void json_rows(long long ev, long long user)
{
    char *deep = repeat("[", 5000, "");
    char *deeper = repeat("]", 5000, "");
    char *both = NULL;
    if (asprintf(&both, "%s%s", deep, deeper) < 0)
        fail_msg("out of memory");
    add_post("arrays nested 5,000 deep", WANT_ERROR, 400, NULL, "/reservations", both,
             strlen(both));
    free(both);
    free(deep);
    free(deeper);
    deep = repeat("{\"a\":", 3000, "1");
    deeper = repeat("}", 3000, "");
    if (asprintf(&both, "%s%s", deep, deeper) < 0)
        fail_msg("out of memory");
    add_post("objects nested 3,000 deep", WANT_ERROR, 400, NULL, "/reservations", both,
             strlen(both));
    free(both);
    free(deep);
    free(deeper);
    add_json("duplicate keys", WANT_ANY, 0, "reservations", "/reservations",
             "{\"eventId\":%lld,\"userId\":%lld,\"userId\":%lld}", ev, user + 2, user + 3);
    add_json("byte-order mark", WANT_ANY, 0, "reservations", "/reservations",
             "\xef\xbb\xbf{\"eventId\":%lld,\"userId\":%lld}", ev, user + 4);
    add_json("invalid UTF-8 in a string", WANT_ERROR, 400, NULL, "/users",
             "{\"name\":\"\xff\xfe\",\"email\":\"utf@example.com\"}");
    add_json("overlong UTF-8", WANT_ERROR, 400, NULL, "/users",
             "{\"name\":\"\xc0\xaf\",\"email\":\"overlong@example.com\"}");
    add_json("lone surrogate escape", WANT_ERROR, 400, NULL, "/users",
             "{\"name\":\"\\ud800\",\"email\":\"surrogate@example.com\"}");
    add_json("escaped NUL in a string", WANT_ERROR, 400, NULL, "/users",
             "{\"name\":\"a\\u0000b\",\"email\":\"nul@example.com\"}");
    static const char raw_nul[] = "{\"name\":\"a\0b\",\"email\":\"rawnul@example.com\"}";
    add_post("raw NUL in the body", WANT_ERROR, 400, NULL, "/users", raw_nul, sizeof(raw_nul) - 1);
    add_json("number 1e999999", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":1e999999,\"userId\":%lld}", user + 1);
    add_json("top-level array", WANT_ERROR, 400, NULL, "/reservations", "[%lld,%lld]", ev,
             user + 1);
    add_json("top-level null", WANT_ERROR, 400, NULL, "/reservations", "null");
    add_json("empty body", WANT_ERROR, 400, NULL, "/reservations", "%s", "");
    add_json("trailing garbage", WANT_ERROR, 400, NULL, "/reservations",
             "{\"eventId\":%lld,\"userId\":%lld}xyz", ev, user + 1);
    char *email = repeat("e", 10000, "@example.com");
    add_json("email of 10,000 bytes", WANT_ERROR, 400, NULL, "/users",
             "{\"name\":\"Long\",\"email\":\"%s\"}", email);
    free(email);
}

/* ---- running a row ---- */

struct tally {
    int failures, mhd_rows, mhd_non_json, mhd_double, hidden_accepted;
};

static bool is_2xx(int s)
{
    return s >= 200 && s < 300;
}

/* Why the reply breaks the row's rule, or NULL. */
static const char *verdict(const struct row *w, const struct raw_reply *r, char *why, size_t len)
{
    bool answered = r->complete && r->status;
    bool status_ok = !w->status || (answered && r->status == w->status);
    if (r->hung)
        return "no answer and no close within 3 s";
    if (w->expect == WANT_HIDDEN)
        return NULL;
    if (r->finals > 1 && !w->mhd) {
        snprintf(why, len, "%d responses to one request", r->finals);
        return why;
    }
    switch (w->expect) {
    case WANT_OK:
        if (!answered || !is_2xx(r->status) || !status_ok)
            return "a valid request was not answered as expected";
        break;
    case WANT_ERROR:
        if (!answered || r->status < 400 || !status_ok)
            return "expected reservd's error answer";
        break;
    case WANT_REJECT:
        if (answered && (r->status < 400 || !status_ok))
            return "accepted (or wrong status for) what must be rejected";
        break;
    case WANT_CLOSES:
        if (!(answered && r->status >= 400) && !r->closed)
            return "neither refused nor closed after the answer";
        break;
    case WANT_ANY:
    case WANT_HIDDEN: break;
    }
    if (w->mhd && answered && r->status < 400)
        return "accepted what libmicrohttpd should refuse";
    if (!w->mhd && answered && r->status >= 400 && !raw_reply_is_json_error(r)) {
        snprintf(why, len, "error answer is not reservd's JSON (Content-Type '%.60s')",
                 r->content_type);
        return why;
    }
    return NULL;
}

/* Checks one reply against its row; prints it and counts what is wrong. */
static void judge(const struct row *w, const struct raw_reply *r, struct tally *t)
{
    char buf[160];
    const char *why = verdict(w, r, buf, sizeof(buf));
    bool answered = r->complete && r->status;
    if (w->mhd) {
        t->mhd_rows++;
        t->mhd_non_json += answered && !raw_reply_is_json_error(r);
        t->mhd_double += r->finals > 1;
        t->hidden_accepted += w->expect == WANT_HIDDEN && answered && r->status < 400;
    }
    const char *how = answered    ? (r->closed ? " +close" : "")
                      : r->reset  ? " reset"
                      : r->closed ? " closed"
                                  : " nothing";
    fprintf(stderr, "  %-3s %-6s %-56s -> %3d%s%s (%.0f ms)%s\n", why ? "BAD" : "ok",
            expect_names[w->expect], w->name, answered ? r->status : 0, how,
            r->finals > 1 ? ", 2+ header blocks" : "", r->ms, w->mhd ? " [mhd]" : "");
    if (why) {
        fprintf(stderr, "      ^ %s\n", why);
        t->failures++;
    }
}

static long long count_rows(PGconn *db, const char *table)
{
    return fault_scalar(db, "SELECT count(*) FROM %s", table);
}

static bool alive(const struct test_server *srv)
{
    int status;
    if (waitpid(srv->pid, &status, WNOHANG) != 0)
        return false;
    struct raw_reply r;
    static const char livez[] = "GET /livez HTTP/1.1\r\n" H CLOSE "\r\n";
    bool ok =
        raw_exchange(srv->port, livez, sizeof(livez) - 1, 3000, 0, &r) == 0 && r.status == 200;
    raw_reply_free(&r);
    return ok;
}

static void hostile_battery(void **state)
{
    (void)state;
    struct test_server srv;
    /* the rows' sizes are for an 8 KiB buffer (the 4 KiB default and both
     * ends of each size: test_header_sizes.c) */
    const char *args[] = { "--connection-memory", "8192", NULL };
    assert_int_equal(fault_server_start(&srv, args), 0);
    PGconn *db = test_db_connect(&srv);
    long long user = fault_seed_users(db, "hostile", 20);
    long long ev = fault_seed_event(db, "Hostile", 100);
    assert_true(user > 0 && ev > 0);
    long long users0 = count_rows(db, "users"), events0 = count_rows(db, "events"),
              reservations0 = count_rows(db, "reservations");

    nrows = 0;
    framing_rows();
    header_rows();
    body_framing_rows();
    number_rows(ev, user);
    path_rows();
    json_rows(ev, user);

    struct tally t = { 0 };
    long long created_users = 0, created_reservations = 0, missing = 0;
    int dead_after = -1;
    for (int i = 0; i < nrows; i++) {
        struct raw_reply r;
        assert_int_equal(raw_exchange(srv.port, rows[i].req, rows[i].len, 3000, 300, &r), 0);
        judge(&rows[i], &r, &t);
        if (rows[i].creates && r.complete && r.status == 201) {
            long long id = json_integer_value(json_object_get(r.json, "id"));
            bool users = strcmp(rows[i].creates, "users") == 0;
            created_users += users;
            created_reservations += !users;
            missing += fault_scalar(db, "SELECT count(*) FROM %s WHERE id = %lld", rows[i].creates,
                                    id) != 1;
        }
        raw_reply_free(&r);
        if (dead_after < 0 && !alive(&srv))
            dead_after = i;
    }
    long long users1 = count_rows(db, "users"), events1 = count_rows(db, "events"),
              reservations1 = count_rows(db, "reservations");
    long long counter = fault_scalar(db, "SELECT reserved_tickets FROM events WHERE id = %lld", ev);
    long long active = fault_scalar(db,
                                    "SELECT count(*) FROM reservations WHERE event_id = %lld "
                                    "AND status = 'RESERVED'",
                                    ev);
    fprintf(stderr, "hostile input: %d rows, %d failed\n", nrows, t.failures);
    fprintf(stderr,
            "mhd-owned rows: %d, of which non-JSON: %d, double header block: %d, "
            "NUL rows accepted (hidden by libmicrohttpd): %d\n",
            t.mhd_rows, t.mhd_non_json, t.mhd_double, t.hidden_accepted);
    fprintf(stderr,
            "database: users %+lld (201s %lld), events %+lld, reservations %+lld (201s %lld), "
            "201s not found %lld; counter %lld, active %lld; server %s\n",
            users1 - users0, created_users, events1 - events0, reservations1 - reservations0,
            created_reservations, missing, counter, active,
            dead_after < 0 ? "alive throughout" : "DIED");
    if (dead_after >= 0)
        fprintf(stderr, "server not alive after row '%s'\n", rows[dead_after].name);
    for (int i = 0; i < nrows; i++)
        free(rows[i].req);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_true(nrows >= 60);
    assert_int_equal(dead_after, -1);
    assert_int_equal(users1 - users0, created_users);
    assert_int_equal(reservations1 - reservations0, created_reservations);
    assert_int_equal(events1, events0);
    assert_int_equal(missing, 0);
    assert_int_equal(counter, active);
    assert_int_equal(t.failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(hostile_battery, fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
