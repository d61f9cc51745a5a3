/* What the API accepts beyond the letter of docs/API.md ("Leniency"), pinned
 * so that a change to it is a decision: unknown JSON fields and query
 * parameters are ignored, and a body without Content-Type is read as JSON;
 * a body with another type is refused. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static int setup(void **state)
{
    return fixture_start(state, NULL);
}

static int teardown(void **state)
{
    return fixture_stop(state);
}

static int port(void **state)
{
    return ((struct fixture *)*state)->srv.port;
}

static void unknown_fields_are_ignored(void **state)
{
    struct http_result r = test_call(
        port(state), "POST", "/users",
        "{\"name\":\"Ada\",\"email\":\"ada@example.com\",\"role\":\"admin\",\"id\":99}", 201);
    assert_null(json_object_get(r.json, "role")); /* not stored, not echoed */
    long long user = http_json_int(&r, "id");
    assert_int_not_equal(user, 99); /* the server picks the id */
    http_result_free(&r);
    r = test_call(port(state), "POST", "/events",
                  "{\"name\":\"Gig\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"Hall\","
                  "\"maxTickets\":3,\"reservedTickets\":3,\"price\":10}",
                  201);
    assert_int_equal(http_json_int(&r, "reservedTickets"), 0); /* read-only fields too */
    assert_null(json_object_get(r.json, "price"));
    long long event = http_json_int(&r, "id");
    http_result_free(&r);
    char body[128];
    /* Ada's own id: the other tests' users may come first */
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"seat\":\"A1\"}", event, user);
    r = test_call(port(state), "POST", "/reservations", body, 201);
    http_result_free(&r);
}

static void unknown_query_parameters_are_ignored(void **state)
{
    struct http_result r;
    r = test_call(port(state), "GET", "/users?limit=1&sort=desc&x", NULL, 200);
    assert_true(json_is_array(json_object_get(r.json, "items")));
    http_result_free(&r);
    r = test_call(port(state), "GET", "/livez?verbose=1", NULL, 200);
    http_result_free(&r);
    /* known parameters are still checked */
    r = test_call(port(state), "GET", "/users?limit=0&sort=desc", NULL, 400);
    assert_string_equal(http_error_code(&r), "validation_failed");
    http_result_free(&r);
}

/* POST body with no Content-Type header at all (the harness always sends
 * one); returns the status. */
static int post_untyped(int port, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    assert_int_equal(write(fd, req, (size_t)n), n);
    char resp[64] = "";
    ssize_t got = read(fd, resp, sizeof(resp) - 1);
    close(fd);
    int status = 0;
    assert_true(got > 12 && sscanf(resp, "HTTP/1.1 %d", &status) == 1);
    return status;
}

static void content_type(void **state)
{
    struct http_result r;
    const char *body;
    /* none: read as JSON */
    assert_int_equal(
        post_untyped(port(state), "/users", "{\"name\":\"Bo\",\"email\":\"bo@example.com\"}"), 201);
    assert_int_equal(post_untyped(port(state), "/users", "{\"name\":"),
                     400); /* and parsed as JSON */
    /* JSON with parameters, and +json types */
    body = "{\"name\":\"Cy\",\"email\":\"cy@example.com\"}";
    assert_int_equal(
        http_call(port(state), "POST", "/users", "application/json; charset=utf-8", body, &r), 0);
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    body = "{\"name\":\"Di\",\"email\":\"di@example.com\"}";
    assert_int_equal(
        http_call(port(state), "POST", "/users", "application/merge-patch+json", body, &r), 0);
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    /* anything else: 415, and nothing is created */
    body = "{\"name\":\"Ed\",\"email\":\"ed@example.com\"}";
    assert_int_equal(http_call(port(state), "POST", "/users", "text/plain", body, &r), 0);
    assert_int_equal(r.status, 415);
    assert_string_equal(http_error_code(&r), "unsupported_media_type");
    http_result_free(&r);
    PGconn *db = ((struct fixture *)*state)->db;
    assert_int_equal(
        test_db_scalar(db, "SELECT count(*) FROM users WHERE email = 'ed@example.com'"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_fields_are_ignored),
        cmocka_unit_test(unknown_query_parameters_are_ignored),
        cmocka_unit_test(content_type),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
