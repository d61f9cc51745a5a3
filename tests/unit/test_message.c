/* Responses and the error format; metrics rendering. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "db.h"
#include "http.h"
#include "metrics.h"

static void error_format(void **state)
{
    (void)state;
    struct http_response resp;
    http_response_init(&resp);
    http_respond_error(&resp, 409, "sold_out", "event %d is sold out", 3);
    size_t len;
    char *body = http_response_body(&resp, &len);
    assert_string_equal(body,
                        "{\"error\":{\"code\":\"sold_out\",\"message\":\"event 3 is sold out\"}}");
    assert_int_equal(len, strlen(body));
    assert_int_equal(resp.status, 409);
    free(body);
    /* Invalid UTF-8 in a message must still give a valid error body. */
    http_respond_error(&resp, 404, "not_found", "no route for %s", "/\xff\xfe");
    body = http_response_body(&resp, &len);
    assert_non_null(strstr(body, "\"code\":\"not_found\""));
    free(body);
    http_response_clear(&resp);
    assert_null(resp.json);
}

static void headers(void **state)
{
    (void)state;
    struct http_response resp;
    http_response_init(&resp);
    assert_int_equal(http_response_add_header(&resp, "Location", "/users/%d", 12), 0);
    assert_string_equal(http_response_header(&resp, "location"), "/users/12");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++)
        assert_int_equal(http_response_add_header(&resp, "X-A", "%d", i), 0);
    assert_int_equal(http_response_add_header(&resp, "X-Over", "1"), -1);
    assert_null(http_response_header(&resp, "X-Over"));
}

static void query_lookup(void **state)
{
    (void)state;
    struct http_request req = { .nquery = 2, .query = { { "limit", "5" }, { "flag", NULL } } };
    assert_string_equal(http_request_query(&req, "limit"), "5");
    assert_string_equal(http_request_query(&req, "flag"), "");
    assert_null(http_request_query(&req, "after"));
}

static void request_id_filter(void **state)
{
    (void)state;
    assert_true(http_request_id_acceptable("abc-123_x.y:z", 40));
    assert_false(http_request_id_acceptable("", 40));
    assert_false(http_request_id_acceptable("has space", 40));
    assert_false(http_request_id_acceptable("quote\"", 40));
    assert_false(http_request_id_acceptable("nl\n", 40));
    assert_true(http_request_id_acceptable("123456789", 10));
    assert_false(http_request_id_acceptable("1234567890", 10)); /* no room for the NUL */
}

static void metrics_count_and_render(void **state)
{
    (void)state;
    struct metrics *m = NULL;
    assert_int_equal(metrics_create(app_routes, app_nroutes, &m), 0);
    assert_non_null(m);
    metrics_observe_request(m, &app_routes[0], 200, 0.2);
    metrics_observe_request(m, &app_routes[0], 200, 30);
    metrics_observe_request(m, NULL, 404, 0.1);
    metrics_count_reservation(m, RESERVATION_RESERVED);
    metrics_count_reservation(m, RESERVATION_SOLD_OUT);
    metrics_count_reservation(m, RESERVATION_SOLD_OUT);
    metrics_count_cancellation(m);
    struct db_pool_stats pool = { .size = 8, .in_use = 2, .waiting = 1 };
    size_t len;
    char *text = metrics_render(m, &pool, &len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    char line[256];
    snprintf(line, sizeof(line), "reservd_http_requests_total{route=\"%s\",status=\"200\"} 2\n",
             app_routes[0].name);
    assert_non_null(strstr(text, line));
    assert_non_null(strstr(text, "route=\"unmatched\",status=\"404\"} 1\n"));
    snprintf(line, sizeof(line),
             "reservd_http_request_duration_seconds_bucket{route=\"%s\",le=\"0.0005\"} 1\n",
             app_routes[0].name);
    assert_non_null(strstr(text, line));
    snprintf(line, sizeof(line),
             "reservd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} 2\n",
             app_routes[0].name);
    assert_non_null(strstr(text, line));
    assert_non_null(strstr(text, "reservd_reservations_granted_total 1\n"));
    assert_non_null(strstr(text, "reservd_reservations_rejected_total{reason=\"sold_out\"} 2\n"));
    assert_non_null(strstr(text, "reservd_reservations_cancelled_total 1\n"));
    assert_non_null(strstr(text, "reservd_db_pool_in_use 2\n"));
    assert_non_null(strstr(text, "reservd_db_pool_waiting 1\n"));
    assert_non_null(strstr(text, "process_start_time_seconds "));
    free(text);
    metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(error_format),
        cmocka_unit_test(headers),
        cmocka_unit_test(query_lookup),
        cmocka_unit_test(request_id_filter),
        cmocka_unit_test(metrics_count_and_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
