/* Users, events, health, docs and the error contract, over real HTTP
 * against the real server and a fresh database. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct test_server srv;
static PGconn *db;

static int setup(void **state)
{
    (void)state;
    if (test_server_start(&srv, NULL) != 0)
        return -1;
    db = test_db_connect(&srv);
    return PQstatus(db) == CONNECTION_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(db);
    return test_server_stop(&srv) == 0 ? 0 : -1;
}

static long long count(const char *table)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return test_db_scalar(db, sql);
}

static void health(void **state)
{
    (void)state;
    struct http_result r = test_call(srv.port, "GET", "/livez", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/readyz", NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ready");
    http_result_free(&r);
}

static void users_create_get_list(void **state)
{
    (void)state;
    struct http_result r =
        test_call(srv.port, "POST", "/users",
                  "{\"name\":\"Ada Lovelace\",\"email\":\"Ada@Example.com\"}", 201);
    long long id = http_json_int(&r, "id");
    assert_true(id > 0);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "Ada Lovelace");
    assert_string_equal(json_string_value(json_object_get(r.json, "email")), "Ada@Example.com");
    char created[32];
    assert_non_null(json_string_value(json_object_get(r.json, "createdAt")));
    snprintf(created, sizeof(created), "%s",
             json_string_value(json_object_get(r.json, "createdAt")));
    assert_int_equal(strlen(created), 24); /* 2026-11-24T21:09:54.123Z */
    assert_int_equal(created[23], 'Z');
    char loc[64], expect[64];
    snprintf(expect, sizeof(expect), "/users/%lld", id);
    assert_string_equal(http_result_header(&r, "Location", loc, sizeof(loc)), expect);
    http_result_free(&r);

    r = test_call(srv.port, "GET", expect, NULL, 200);
    assert_int_equal(http_json_int(&r, "id"), id);
    assert_string_equal(json_string_value(json_object_get(r.json, "createdAt")), created);
    http_result_free(&r);

    /* the original app's singular routes */
    r = test_call(srv.port, "POST", "/user", "{\"name\":\"Grace\",\"email\":\"grace@example.com\"}",
                  201);
    long long id2 = http_json_int(&r, "id");
    http_result_free(&r);
    snprintf(expect, sizeof(expect), "/user/%lld", id2);
    r = test_call(srv.port, "GET", expect, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "email")), "grace@example.com");
    http_result_free(&r);
}

static void users_errors_change_nothing(void **state)
{
    (void)state;
    {
        struct http_result created =
            test_call(srv.port, "POST", "/users",
                      "{\"name\":\"Taken\",\"email\":\"taken@example.com\"}", 201);
        http_result_free(&created);
    }
    long long before = count("users");
    test_expect_error(srv.port, "POST", "/users",
                      "{\"name\":\"Other\",\"email\":\"TAKEN@example.COM\"}", 409, "email_taken");
    test_expect_error(srv.port, "POST", "/users", "{\"name\":\"\",\"email\":\"e1@example.com\"}",
                      400, "validation_failed");
    test_expect_error(srv.port, "POST", "/users", "{\"email\":\"e2@example.com\"}", 400,
                      "validation_failed");
    test_expect_error(srv.port, "POST", "/users", "{\"name\":\"x\",\"email\":\"not-an-email\"}",
                      400, "validation_failed");
    test_expect_error(srv.port, "POST", "/users", "{\"name\":\"x\",\"email\":42}", 400,
                      "validation_failed");
    char body[512];
    char name[260];
    memset(name, 'n', 201);
    name[201] = '\0';
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"email\":\"long@example.com\"}", name);
    test_expect_error(srv.port, "POST", "/users", body, 400, "validation_failed");
    test_expect_error(srv.port, "POST", "/users", "{\"name\":\"x\",", 400, "invalid_json");
    test_expect_error(srv.port, "POST", "/users", "[]", 400, "invalid_json");
    test_expect_error(srv.port, "POST", "/users", NULL, 400, "invalid_json");
    test_expect_error(srv.port, "GET", "/users/999999", NULL, 404, "user_not_found");
    test_expect_error(srv.port, "GET", "/users/0", NULL, 400, "invalid_id");
    test_expect_error(srv.port, "GET", "/users/abc", NULL, 400, "invalid_id");
    test_expect_error(srv.port, "GET", "/users/99999999999999999999", NULL, 400, "invalid_id");
    assert_int_equal(count("users"), before);
    /* the field is named in the message */
    struct http_result r = test_call(srv.port, "POST", "/users", "{\"name\":\"x\"}", 400);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "message")), "email"));
    http_result_free(&r);
}

static void users_pagination(void **state)
{
    (void)state;
    for (int i = 0; i < 25; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"Page %d\",\"email\":\"page%d@example.com\"}", i,
                 i);
        struct http_result r = test_call(srv.port, "POST", "/users", body, 201);
        http_result_free(&r);
    }
    long long total = count("users");
    long long seen = 0, after = 0, last_id = 0;
    for (int pages = 0; pages < 100; pages++) {
        char path[64];
        snprintf(path, sizeof(path), "/users?limit=7&after=%lld", after);
        struct http_result r = test_call(srv.port, "GET", path, NULL, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_array_size(items) <= 7);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item)
        {
            long long id = (long long)json_integer_value(json_object_get(item, "id"));
            assert_true(id > last_id); /* ascending, no repeats */
            last_id = id;
            seen++;
        }
        json_t *next = json_object_get(r.json, "nextAfter");
        int done = json_is_null(next);
        if (!done) {
            assert_int_equal(json_integer_value(next), last_id);
            after = last_id;
        }
        http_result_free(&r);
        if (done)
            break;
    }
    assert_int_equal(seen, total);
    test_expect_error(srv.port, "GET", "/users?limit=0", NULL, 400, "validation_failed");
    test_expect_error(srv.port, "GET", "/users?limit=1001", NULL, 400, "validation_failed");
    test_expect_error(srv.port, "GET", "/users?limit=abc", NULL, 400, "validation_failed");
    test_expect_error(srv.port, "GET", "/users?after=-5", NULL, 400, "validation_failed");
    struct http_result r = test_call(srv.port, "GET", "/users", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), total < 100 ? total : 100);
    http_result_free(&r);
}

static void events_create_get_list(void **state)
{
    (void)state;
    struct http_result r =
        test_call(srv.port, "POST", "/events",
                  "{\"name\":\"Launch\",\"date\":\"2026-12-31T21:30:00.5+01:00\","
                  "\"location\":\"Hall A\",\"maxTickets\":100}",
                  201);
    long long id = http_json_int(&r, "id");
    assert_true(id > 0);
    assert_string_equal(json_string_value(json_object_get(r.json, "date")),
                        "2026-12-31T20:30:00.500Z");
    assert_int_equal(http_json_int(&r, "maxTickets"), 100);
    assert_int_equal(http_json_int(&r, "reservedTickets"), 0);
    assert_int_equal(http_json_int(&r, "remainingTickets"), 100);
    char loc[64], path[64];
    snprintf(path, sizeof(path), "/events/%lld", id);
    assert_string_equal(http_result_header(&r, "Location", loc, sizeof(loc)), path);
    http_result_free(&r);
    r = test_call(srv.port, "GET", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "location")), "Hall A");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/event/%lld", id);
    r = test_call(srv.port, "GET", path, NULL, 200);
    assert_int_equal(http_json_int(&r, "id"), id);
    http_result_free(&r);
    r = test_call(srv.port, "POST", "/event",
                  "{\"name\":\"Compat\",\"date\":\"2027-01-01T00:00:00Z\","
                  "\"location\":\"B\",\"maxTickets\":0}",
                  201);
    assert_int_equal(http_json_int(&r, "remainingTickets"), 0);
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/events?limit=1", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_true(json_is_integer(json_object_get(r.json, "nextAfter")));
    http_result_free(&r);
}

static void events_errors_change_nothing(void **state)
{
    (void)state;
    {
        struct http_result created = test_call(srv.port, "POST", "/events",
                                               "{\"name\":\"Dup\",\"date\":\"2026-12-31T20:00:"
                                               "00Z\",\"location\":\"L\",\"maxTickets\":5}",
                                               201);
        http_result_free(&created);
    }
    long long before = count("events");
    test_expect_error(
        srv.port, "POST", "/events",
        "{\"name\":\"Dup\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"L\",\"maxTickets\":5}",
        409, "event_name_taken");
    test_expect_error(
        srv.port, "POST", "/events",
        "{\"name\":\"E\",\"date\":\"31/12/2026\",\"location\":\"L\",\"maxTickets\":5}", 400,
        "validation_failed");
    test_expect_error(
        srv.port, "POST", "/events",
        "{\"name\":\"E\",\"date\":\"2026-02-30T00:00:00Z\",\"location\":\"L\",\"maxTickets\":5}",
        400, "validation_failed");
    test_expect_error(
        srv.port, "POST", "/events",
        "{\"name\":\"E\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"L\",\"maxTickets\":-1}",
        400, "validation_failed");
    test_expect_error(srv.port, "POST", "/events",
                      "{\"name\":\"E\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"L\","
                      "\"maxTickets\":10000001}",
                      400, "validation_failed");
    test_expect_error(
        srv.port, "POST", "/events",
        "{\"name\":\"E\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"L\",\"maxTickets\":2.5}",
        400, "validation_failed");
    test_expect_error(srv.port, "POST", "/events",
                      "{\"name\":\"E\",\"date\":\"2026-12-31T20:00:00Z\",\"maxTickets\":1}", 400,
                      "validation_failed");
    test_expect_error(srv.port, "GET", "/events/424242", NULL, 404, "event_not_found");
    test_expect_error(srv.port, "GET", "/events/-3", NULL, 400, "invalid_id");
    assert_int_equal(count("events"), before);
}

static void protocol_errors(void **state)
{
    (void)state;
    test_expect_error(srv.port, "GET", "/nope", NULL, 404, "not_found");
    test_expect_error(srv.port, "GET", "/", NULL, 404, "not_found");
    struct http_result r = test_call(srv.port, "PUT", "/users", "{}", 405);
    assert_string_equal(http_error_code(&r), "method_not_allowed");
    char allow[64];
    assert_string_equal(http_result_header(&r, "Allow", allow, sizeof(allow)), "POST, GET");
    http_result_free(&r);
    r = test_call(srv.port, "DELETE", "/events/1", NULL, 405);
    assert_string_equal(http_result_header(&r, "Allow", allow, sizeof(allow)), "GET, PATCH");
    http_result_free(&r);

    long long before = count("users");
    /* 415: a body with a non-JSON type */
    assert_int_equal(http_call(srv.port, "POST", "/users", "application/x-www-form-urlencoded",
                               "name=a&email=b@c.de", &r),
                     0);
    assert_int_equal(r.status, 415);
    assert_string_equal(http_error_code(&r), "unsupported_media_type");
    http_result_free(&r);
    assert_int_equal(http_call(srv.port, "POST", "/users", "application/json; charset=utf-8",
                               "{\"name\":\"Typed\",\"email\":\"typed@example.com\"}", &r),
                     0);
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    /* 413: over 64 KiB, whether or not the content would be valid */
    size_t big = 64 * 1024 + 10;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    const char *head = "{\"name\":\"x\",\"email\":\"big@example.com\",\"pad\":\"";
    memcpy(body, head, strlen(head));
    body[big - 2] = '"';
    body[big - 1] = '}';
    body[big] = '\0';
    test_expect_error(srv.port, "POST", "/users", body, 413, "payload_too_large");
    free(body);
    assert_int_equal(count("users"), before + 1);
}

static void request_ids(void **state)
{
    (void)state;
    struct http_result r;
    char id[64];
    assert_int_equal(http_call_headers(srv.port, "GET", "/livez", "X-Request-Id: trace-42\r\n",
                                       NULL, NULL, 0, &r),
                     0);
    assert_string_equal(http_result_header(&r, "X-Request-Id", id, sizeof(id)), "trace-42");
    http_result_free(&r);
    assert_int_equal(http_call_headers(srv.port, "GET", "/livez", "X-Request-Id: bad id!\r\n", NULL,
                                       NULL, 0, &r),
                     0);
    assert_non_null(http_result_header(&r, "X-Request-Id", id, sizeof(id)));
    assert_string_not_equal(id, "bad id!");
    assert_true(strlen(id) > 0);
    http_result_free(&r);
}

static void docs_and_metrics(void **state)
{
    (void)state;
    struct http_result r = test_call(srv.port, "GET", "/api/openapi.json", NULL, 200);
    assert_non_null(r.json);
    assert_non_null(json_object_get(json_object_get(r.json, "paths"), "/reservations"));
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/api", NULL, 200);
    char type[64];
    assert_string_equal(http_result_header(&r, "Content-Type", type, sizeof(type)),
                        "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, "openapi.json"));
    http_result_free(&r);
}

/* Value of one sample line of /metrics ("name{labels}"), or -1. */
static double metric(const char *sample)
{
    struct http_result r;
    double v = -1;
    r = test_call(srv.port, "GET", "/metrics", NULL, 200);
    char type[96];
    assert_string_equal(http_result_header(&r, "Content-Type", type, sizeof(type)),
                        "text/plain; version=0.0.4; charset=utf-8");
    size_t n = strlen(sample);
    for (char *line = r.body; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line[0] == '#')
            continue;
        if (strncmp(line, sample, n) == 0 && line[n] == ' ')
            v = strtod(line + n + 1, NULL);
    }
    http_result_free(&r);
    return v;
}

static void metrics_move_with_traffic(void **state)
{
    (void)state;
    const char *created = "reservd_http_requests_total{route=\"POST /users\",status=\"201\"}";
    const char *hist = "reservd_http_request_duration_seconds_count{route=\"POST /users\"}";
    const char *unmatched = "reservd_http_requests_total{route=\"unmatched\",status=\"404\"}";
    double before = metric(created), hist_before = metric(hist);
    double nf_before = metric(unmatched);
    /* a bad id is counted under its route, not as unmatched */
    const char *bad_id = "reservd_http_requests_total{route=\"GET /users/{id}\",status=\"400\"}";
    double bad_before = metric(bad_id);
    test_expect_error(srv.port, "GET", "/users/abc", NULL, 400, "invalid_id");
    assert_true(metric(bad_id) == (bad_before < 0 ? 0 : bad_before) + 1);
    for (int i = 0; i < 3; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"name\":\"M\",\"email\":\"metrics%d@example.com\"}", i);
        struct http_result r = test_call(srv.port, "POST", "/users", body, 201);
        http_result_free(&r);
    }
    test_expect_error(srv.port, "GET", "/definitely/not/here", NULL, 404, "not_found");
    assert_true(metric(created) == (before < 0 ? 0 : before) + 3);
    assert_true(metric(hist) == (hist_before < 0 ? 0 : hist_before) + 3);
    assert_true(metric(unmatched) == (nf_before < 0 ? 0 : nf_before) + 1);
    assert_true(metric("reservd_db_pool_size") >= 1);
    assert_true(metric("reservd_db_pool_in_use") >= 0);
    assert_true(metric("process_start_time_seconds") > 1.7e9);
    assert_true(metric("reservd_reservations_granted_total") >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(health),
        cmocka_unit_test(users_create_get_list),
        cmocka_unit_test(users_errors_change_nothing),
        cmocka_unit_test(users_pagination),
        cmocka_unit_test(events_create_get_list),
        cmocka_unit_test(events_errors_change_nothing),
        cmocka_unit_test(protocol_errors),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(docs_and_metrics),
        cmocka_unit_test(metrics_move_with_traffic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
