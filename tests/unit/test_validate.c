/* Request validation: JSON bodies, fields, e-mail, query integers. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "validate.h"

static const char *error_code(const struct http_response *resp)
{
    return json_string_value(json_object_get(json_object_get(resp->json, "error"), "code"));
}

static void body_must_be_a_json_object(void **state)
{
    (void)state;
    const char *bad[] = { "",
                          "{",
                          "[1,2]",
                          "\"text\"",
                          "42",
                          "{\"a\":1,\"a\":2}",
                          "{\"a\":\"\\u0000\"}",
                          "{\"a\":1} trailing" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_request req = { .body = bad[i], .body_len = strlen(bad[i]) };
        struct http_response resp;
        http_response_init(&resp);
        assert_null(validate_json_body(&req, &resp));
        assert_int_equal(resp.status, 400);
        assert_string_equal(error_code(&resp), "invalid_json");
        http_response_clear(&resp);
    }
    struct http_request req = { .body = "{\"a\":1}", .body_len = 7 };
    struct http_response resp;
    http_response_init(&resp);
    json_t *obj = validate_json_body(&req, &resp);
    assert_non_null(obj);
    assert_int_equal(resp.status, 0);
    json_decref(obj);
}

static void string_fields(void **state)
{
    (void)state;
    char msg[VALIDATE_MSG_SIZE];
    const char *out = NULL;
    json_t *o = json_pack("{s:s, s:i, s:s, s:s}", "name", "Ada", "num", 5, "empty", "", "accents",
                          "\xc3\xa9\xc3\xa9"); /* 2 chars, 4 bytes */
    assert_int_equal(validate_string_field(o, "name", 1, 200, &out, msg), 0);
    assert_string_equal(out, "Ada");
    assert_int_equal(validate_string_field(o, "missing", 1, 200, &out, msg), -1);
    assert_string_equal(msg, "missing is required");
    assert_int_equal(validate_string_field(o, "num", 1, 200, &out, msg), -1);
    assert_string_equal(msg, "num must be a string");
    assert_int_equal(validate_string_field(o, "empty", 1, 200, &out, msg), -1);
    assert_non_null(strstr(msg, "empty must be 1 to 200"));
    assert_int_equal(validate_string_field(o, "accents", 1, 2, &out, msg), 0);
    assert_int_equal(validate_string_field(o, "accents", 3, 9, &out, msg), -1);
    json_decref(o);
}

static void int_fields(void **state)
{
    (void)state;
    char msg[VALIDATE_MSG_SIZE];
    int64_t v = 0;
    json_t *o = json_loads("{\"a\":7,\"big\":10000001,\"real\":1.0,\"str\":\"1\",\"neg\":-1,"
                           "\"null\":null,\"huge\":9223372036854775807}",
                           0, NULL);
    assert_non_null(o);
    assert_int_equal(validate_int_field(o, "a", 0, 10, &v, msg), 0);
    assert_int_equal(v, 7);
    assert_int_equal(validate_int_field(o, "big", 0, 10000000, &v, msg), -1);
    assert_non_null(strstr(msg, "big must be from 0 to 10000000"));
    assert_int_equal(validate_int_field(o, "real", 0, 10, &v, msg), -1);
    assert_string_equal(msg, "real must be an integer");
    assert_int_equal(validate_int_field(o, "str", 0, 10, &v, msg), -1);
    assert_int_equal(validate_int_field(o, "neg", 1, 10, &v, msg), -1);
    assert_int_equal(validate_int_field(o, "null", 1, 10, &v, msg), -1);
    assert_int_equal(validate_int_field(o, "nope", 1, 10, &v, msg), -1);
    assert_string_equal(msg, "nope is required");
    assert_int_equal(validate_int_field(o, "huge", 1, INT64_MAX, &v, msg), 0);
    assert_true(v == INT64_MAX);
    json_decref(o);
}

static void emails(void **state)
{
    (void)state;
    const char *good[] = { "a@b.co", "user1@example.com", "first.last+tag@sub.example.org",
                           "x_y-z@a-b.example", "UPPER@EXAMPLE.COM" };
    const char *bad[] = { "",
                          "plain",
                          "@example.com",
                          "a@",
                          "a@b",
                          "a@@b.com",
                          "a@b..com",
                          "a b@example.com",
                          ".a@example.com",
                          "a.@example.com",
                          "a..b@example.com",
                          "a@-b.com",
                          "a@b-.com",
                          "a@.com",
                          "a@b.com.",
                          "a\"b@example.com",
                          "a@exa_mple.com" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(validate_email(good[i]), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(validate_email(bad[i]), -1);
    char longest[512];
    memset(longest, 'a', 64);
    strcpy(longest + 64, "@");
    for (int i = 0; i < 3; i++)
        strcat(longest, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.");
    strcat(longest, "cccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    assert_true(strlen(longest) > 254);
    assert_int_equal(validate_email(longest), -1);
}

static void query_integers(void **state)
{
    (void)state;
    char msg[VALIDATE_MSG_SIZE];
    int64_t v;
    struct http_request req = {
        .nquery = 4,
        .query = { { "limit", "50" }, { "after", "-1" }, { "x", "1e3" }, { "empty", "" } }
    };
    assert_int_equal(validate_query_int(&req, "limit", 1, 1000, 100, &v, msg), 0);
    assert_int_equal(v, 50);
    assert_int_equal(validate_query_int(&req, "missing", 1, 1000, 100, &v, msg), 0);
    assert_int_equal(v, 100);
    assert_int_equal(validate_query_int(&req, "after", 0, INT64_MAX, 0, &v, msg), -1);
    assert_non_null(strstr(msg, "after"));
    assert_int_equal(validate_query_int(&req, "x", 0, 10000, 0, &v, msg), -1);
    assert_int_equal(validate_query_int(&req, "empty", 0, 10, 0, &v, msg), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(body_must_be_a_json_object),
        cmocka_unit_test(string_fields),
        cmocka_unit_test(int_fields),
        cmocka_unit_test(emails),
        cmocka_unit_test(query_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
