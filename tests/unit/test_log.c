/* Log lines: one per message whatever it holds (libpq's multi-line
 * messages folded readably), and request lines with the error code. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Everything written to stderr while fn runs, in out. */
static void capture(void (*fn)(void), char *out, size_t len)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, len - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* What libpq says when nothing listens on the port. */
static const char LIBPQ_REFUSED[] =
    "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
    "\tIs the server running on that host and accepting TCP/IP connections?\n";

static void log_libpq(void)
{
    log_error("cannot connect: %s", LIBPQ_REFUSED);
    log_warn("ERROR:  duplicate key\nDETAIL:  Key (email)=(a) already exists.\n\n");
    log_info("a\r\n\r\n  b:\n c\x01");
}

static void multi_line_messages_stay_one_readable_line(void **state)
{
    (void)state;
    char out[4096];
    log_set_format("text");
    capture(log_libpq, out, sizeof(out));
    assert_int_equal(count_lines(out), 3);
    assert_non_null(
        strstr(out, "error cannot connect: connection to server at \"127.0.0.1\", port 1 failed: "
                    "Connection refused; Is the server running on that host and accepting "
                    "TCP/IP connections?\n"));
    assert_non_null(
        strstr(out, "warn  ERROR:  duplicate key; DETAIL:  Key (email)=(a) already exists.\n"));
    assert_non_null(strstr(out, "info  a; b: c?\n")); /* other control bytes still '?' */
    assert_null(strstr(out, "??"));
}

static void multi_line_messages_in_json(void **state)
{
    (void)state;
    char out[4096];
    log_set_format("json");
    capture(log_libpq, out, sizeof(out));
    log_set_format("text");
    assert_int_equal(count_lines(out), 3);
    assert_non_null(strstr(out, "Connection refused; Is the server running"));
}

static void log_requests(void)
{
    log_request("POST", "/users", 409, 1.5, "req-1", "email_taken");
    log_request("POST", "/users", 201, 2.25, "req-2", NULL);
    log_request("GET", "/x\ny", 404, 0.5, NULL, "not\nfound");
}

static void request_lines_carry_the_error_code(void **state)
{
    (void)state;
    char out[4096];
    log_set_level("info");
    log_set_format("text");
    capture(log_requests, out, sizeof(out));
    assert_int_equal(count_lines(out), 3);
    assert_non_null(strstr(out, " info  POST /users 409 email_taken 1.500ms id=req-1\n"));
    assert_non_null(strstr(out, " info  POST /users 201 2.250ms id=req-2\n"));
    assert_non_null(strstr(out, " info  GET /x?y 404 not?found 0.500ms id=-\n"));

    log_set_format("json");
    capture(log_requests, out, sizeof(out));
    log_set_format("text");
    assert_int_equal(count_lines(out), 3);
    assert_non_null(strstr(out, "\"status\":409,\"error\":\"email_taken\",\"duration_ms\":1.500"));
    assert_non_null(strstr(out, "\"status\":201,\"duration_ms\":2.250"));
    assert_non_null(strstr(out, "\"error\":\"not\\u000afound\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(multi_line_messages_stay_one_readable_line),
        cmocka_unit_test(multi_line_messages_in_json),
        cmocka_unit_test(request_lines_carry_the_error_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
