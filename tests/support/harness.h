#ifndef RESERVD_TEST_HARNESS_H
#define RESERVD_TEST_HARNESS_H

/* Integration-test support: a fresh database on the private cluster
 * (RESERVD_TEST_ADMIN_URL), the real reservd binary started on a free
 * port against it, and a small blocking HTTP/1.1 client. */

#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

struct test_server {
    pid_t pid;
    int port;
    char dbname[64];
    char url[512]; /* DATABASE_URL of the fresh database */
    char log_path[256];
};

/* Every server the harness starts has this admin token (RESERVD_ADMIN_TOKENS),
 * and every call below sends it (Authorization: Bearer) unless it says
 * otherwise; it is also RESERVD_TOKEN for the reservd-load runs a test
 * starts. Tests about access control use http_call_as. */
const char *test_admin_token(void);

/* Create a fresh database and start reservd with extra_args (NULL-ended,
 * may be NULL). Returns 0, or -1 after printing why. */
int test_server_start(struct test_server *srv, const char *const *extra_args);
/* Start only the database (no server). */
int test_database_create(struct test_server *srv);
/* SIGTERM, wait; returns reservd's exit status (0 expected). Drops the DB. */
int test_server_stop(struct test_server *srv);
/* Stop the server but keep the database (for restarts). */
int test_server_kill(struct test_server *srv, int sig);
/* Start reservd on the existing database (after a kill). */
int test_server_restart(struct test_server *srv, const char *const *extra_args);
/* Start reservd on any database URL (a second instance on another test's
 * database, or another cluster), logging to <tag>.<pid>.log. Stop it with
 * test_server_kill: it owns no database for test_server_stop to drop. */
int test_server_start_url(struct test_server *srv, const char *url, const char *tag,
                          const char *const *extra_args);
/* Wait up to timeout_ms for the server to exit by itself: 0 with its wait
 * status in *status (log dumped unless it is 0), or -1 if still running. */
int test_server_wait(struct test_server *srv, int timeout_ms, int *status);

/* A server and a direct connection to its database, as cmocka state. */
struct fixture {
    struct test_server srv;
    PGconn *db;
};

/* cmocka setup/teardown bodies: start with args (NULL-ended), stop and
 * check the exit status. */
int fixture_start(void **state, const char *const *args);
int fixture_stop(void **state);

/* One request on its own thread, released together with others by a
 * barrier (optional), for races. */
struct background_call {
    pthread_t thread;
    int port;
    const char *method, *path;
    char body[256];
    pthread_barrier_t *start; /* NULL: go at once */
    int status;               /* -1: transport error */
    char code[32];            /* error code, "" on success */
    long long id;             /* "id" of the body, or -1 */
};
int background_call_start(struct background_call *c);
void background_call_join(struct background_call *c);

/* Seeding and reading the database directly, for the tests' own checks.
 * test_scalar: test_db_scalar of a printf-formatted query (any length;
 * values formatted in are the test's own, never a request's). */
long long test_scalar(PGconn *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* n users with consecutive ids (asserted: all inserted), the users' id
 * sequence moved past them; returns the first id. */
long long test_seed_users(PGconn *db, const char *prefix, long long n);
/* An event 30 days ahead with `tickets` tickets; max_per_user,
 * hold_seconds and offer_seconds as given, each 0 for the column's
 * default. Returns its id (asserted > 0). */
long long test_seed_event(PGconn *db, const char *name, long long tickets, int max_per_user,
                          int hold_seconds, int offer_seconds);

/* A libpq connection to the server's database (caller PQfinish()es). */
PGconn *test_db_connect(const struct test_server *srv);
/* First column of the first row of a query as an integer; -1 on error. */
long long test_db_scalar(PGconn *db, const char *sql);

struct http_result {
    int status;
    char headers[8192]; /* raw header block */
    char *body;         /* NUL-terminated */
    json_t *json;       /* parsed body, or NULL */
};

/* One request on a fresh connection. body may be NULL. content_type NULL
 * with a body means application/json. Returns 0 or -1 (transport). */
int http_call(int port, const char *method, const char *path, const char *content_type,
              const char *body, struct http_result *out);
/* Same, with extra raw header lines ("X-Request-Id: abc\r\n"); an
 * Authorization line among them replaces the admin token's. */
int http_call_headers(int port, const char *method, const char *path, const char *extra_headers,
                      const char *content_type, const char *body, size_t body_len,
                      struct http_result *out);
/* One request as token (NULL: no Authorization header at all), with extra
 * raw header lines (may be NULL) and a JSON body (may be NULL). */
int http_call_as(int port, const char *method, const char *path, const char *token,
                 const char *extra_headers, const char *body, struct http_result *out);
void http_result_free(struct http_result *r);
/* Header value (copied into buf) or NULL. */
const char *http_result_header(const struct http_result *r, const char *name, char *buf,
                               size_t len);
/* "error.code" of an error body, or "" */
const char *http_error_code(const struct http_result *r);
/* Integer member of the JSON body, or -1. */
long long http_json_int(const struct http_result *r, const char *key);
/* The value of one sample of the server's /metrics (name with its labels,
 * as the exposition writes it), or -1 if the call or the sample failed. */
long long test_metric(int port, const char *name);

/* The integration tests' call: one request (a JSON body, or NULL), the
 * transport and the status asserted (the answer is printed when the
 * status differs), and the answer's Content-Type present, and
 * application/json; charset=utf-8 except for /metrics and /api. Returns
 * the result for more checks (caller frees). Tests of the request's own
 * framing or Content-Type use http_call/http_call_headers. */
struct http_result test_call(int port, const char *method, const char *path, const char *body,
                             int status);
/* test_call, then the error contract: error.code is code and
 * error.message a non-empty string. */
void test_expect_error(int port, const char *method, const char *path, const char *body, int status,
                       const char *code);

/* test_call with a printf-formatted JSON body (fmt NULL: no body). */
struct http_result test_callf(int port, const char *method, const char *path, int status,
                              const char *fmt, ...);
/* A string member of the JSON body, or NULL. */
const char *test_json_str(const struct http_result *r, const char *key);

/* The wall clock (CLOCK_REALTIME, the clock PostgreSQL's now() reads on
 * this machine) in seconds, and a sleep of s seconds. */
double test_now_s(void);
void test_sleep_s(double s);

/* A loopback port that was free a moment ago. */
int test_free_port(void);

/* Path of a built binary from the test environment (e.g. RESERVD_LOAD_BIN). */
const char *test_binary(const char *env_name);

/* reservd-load (RESERVD_LOAD_BIN) with args against the loopback port,
 * its --json report on stdout: started, not waited for. */
FILE *test_load_start(int port, const char *args);
/* That run's report, parsed (asserted; its output is printed when it is
 * not JSON or the exit status is not 0); the exit status in *rc (-1: it
 * did not exit). The caller frees the report. */
json_t *test_load_finish(FILE *p, int *rc);

#endif
