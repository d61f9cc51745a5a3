/* Router: literal and parameter segments, 404/405/400 decisions. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "app.h"
#include "router.h"

static void dummy(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)app;
    (void)req;
    (void)resp;
}

static const struct route routes[] = {
    { HTTP_GET, "/livez", dummy, 0, "GET /livez" },
    { HTTP_POST, "/users", dummy, 0, "POST /users" },
    { HTTP_GET, "/users", dummy, 0, "GET /users" },
    { HTTP_GET, "/users/{id}", dummy, 0, "GET /users/{id}" },
    { HTTP_DELETE, "/reservations/{id}", dummy, 0, "DELETE /reservations/{id}" },
    { HTTP_GET, "/reservations/{id}", dummy, 0, "GET /reservations/{id}" },
    { HTTP_POST, "/reservation/{eventId}/{userId}", dummy, 0, "POST /reservation" },
    { HTTP_GET, "/api/openapi.json", dummy, 0, "GET /api/openapi.json" },
};
#define N (sizeof(routes) / sizeof(routes[0]))

static void literal_routes_match(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(routes, N, HTTP_GET, "/livez", &m), ROUTE_MATCH);
    assert_ptr_equal(m.route, &routes[0]);
    assert_int_equal(router_match(routes, N, HTTP_POST, "/users", &m), ROUTE_MATCH);
    assert_ptr_equal(m.route, &routes[1]);
    assert_int_equal(router_match(routes, N, HTTP_GET, "/users", &m), ROUTE_MATCH);
    assert_ptr_equal(m.route, &routes[2]);
    assert_int_equal(router_match(routes, N, HTTP_GET, "/api/openapi.json", &m), ROUTE_MATCH);
}

static void parameters_are_parsed(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(routes, N, HTTP_GET, "/users/42", &m), ROUTE_MATCH);
    assert_int_equal(m.nparams, 1);
    assert_int_equal(m.params[0], 42);
    assert_int_equal(router_match(routes, N, HTTP_POST, "/reservation/7/9223372036854775807", &m),
                     ROUTE_MATCH);
    assert_int_equal(m.nparams, 2);
    assert_int_equal(m.params[0], 7);
    assert_true(m.params[1] == INT64_MAX);
}

static void unknown_paths_are_not_found(void **state)
{
    (void)state;
    struct route_match m;
    const char *paths[] = { "/",       "/nope", "/users/1/extra", "/users/", "/livez/",
                            "//users", "/user", "/reservation/1", "users",   "" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_int_equal(router_match(routes, N, HTTP_GET, paths[i], &m), ROUTE_NOT_FOUND);
}

static void wrong_method_lists_allowed(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(routes, N, HTTP_PUT, "/users", &m), ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "POST, GET");
    assert_int_equal(router_match(routes, N, HTTP_POST, "/reservations/5", &m),
                     ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "DELETE, GET");
    assert_int_equal(router_match(routes, N, HTTP_DELETE, "/livez", &m), ROUTE_METHOD_NOT_ALLOWED);
    assert_string_equal(m.allow, "GET");
}

static void head_is_served_by_get(void **state)
{
    (void)state;
    struct route_match m;
    assert_int_equal(router_match(routes, N, HTTP_HEAD, "/users/3", &m), ROUTE_MATCH);
    assert_ptr_equal(m.route, &routes[3]);
}

static void bad_ids_are_invalid(void **state)
{
    (void)state;
    struct route_match m;
    const char *paths[] = { "/users/0",
                            "/users/-1",
                            "/users/abc",
                            "/users/1.5",
                            "/users/01",
                            "/users/9223372036854775808",
                            "/users/99999999999999999999",
                            "/users/+1",
                            "/users/%20" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(router_match(routes, N, HTTP_GET, paths[i], &m), ROUTE_INVALID_ID);
        assert_string_equal(m.bad_param, "id");
    }
    assert_int_equal(router_match(routes, N, HTTP_POST, "/reservation/1/x", &m), ROUTE_INVALID_ID);
    assert_string_equal(m.bad_param, "userId");
}

static void parse_id_edges(void **state)
{
    (void)state;
    int64_t v = 0;
    assert_int_equal(router_parse_id("1", 1, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(router_parse_id("9223372036854775807", 19, &v), 0);
    assert_int_equal(router_parse_id("9223372036854775808", 19, &v), -1);
    assert_int_equal(router_parse_id("", 0, &v), -1);
    assert_int_equal(router_parse_id("0", 1, &v), -1);
    assert_int_equal(router_parse_id("12a", 3, &v), -1);
}

static void method_names_round_trip(void **state)
{
    (void)state;
    assert_int_equal(http_method_parse("DELETE"), HTTP_DELETE);
    assert_string_equal(http_method_name(HTTP_PATCH), "PATCH");
    assert_int_equal(http_method_parse("BREW"), HTTP_METHOD_OTHER);
    assert_int_equal(http_method_parse("get"), HTTP_METHOD_OTHER);
}

static void app_routes_are_unique_and_well_formed(void **state)
{
    (void)state;
    /* The real table: every pattern reachable, no duplicates. */
    for (size_t i = 0; i < app_nroutes; i++) {
        assert_non_null(app_routes[i].handler);
        assert_true(app_routes[i].pattern[0] == '/');
        for (size_t j = i + 1; j < app_nroutes; j++)
            assert_false(app_routes[i].method == app_routes[j].method &&
                         strcmp(app_routes[i].pattern, app_routes[j].pattern) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_routes_match),
        cmocka_unit_test(parameters_are_parsed),
        cmocka_unit_test(unknown_paths_are_not_found),
        cmocka_unit_test(wrong_method_lists_allowed),
        cmocka_unit_test(head_is_served_by_get),
        cmocka_unit_test(bad_ids_are_invalid),
        cmocka_unit_test(parse_id_edges),
        cmocka_unit_test(method_names_round_trip),
        cmocka_unit_test(app_routes_are_unique_and_well_formed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
