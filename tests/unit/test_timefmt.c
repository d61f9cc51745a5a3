/* RFC 3339 formatting and parsing. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "timefmt.h"

static void formats_with_milliseconds(void **state)
{
    (void)state;
    char buf[TIMEFMT_BUFSIZE];
    assert_int_equal(timefmt_format_ms(0, buf), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(timefmt_format_ms(1795554594123LL, buf), 0);
    assert_string_equal(buf, "2026-11-24T21:09:54.123Z");
    assert_int_equal(timefmt_format_ms(951782400000LL, buf), 0); /* leap day */
    assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
    assert_int_equal(timefmt_format_ms(-1, buf), 0);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    assert_int_equal(timefmt_format_ms(253402300799999LL, buf), 0);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    assert_int_equal(timefmt_format_ms(253402300800000LL, buf), -1);
}

static void parses_offsets_and_fractions(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(timefmt_parse("2026-11-24T21:09:54.123Z", &ms), 0);
    assert_true(ms == 1795554594123LL);
    assert_int_equal(timefmt_parse("2026-11-24T22:09:54.123+01:00", &ms), 0);
    assert_true(ms == 1795554594123LL);
    assert_int_equal(timefmt_parse("2026-11-24t20:39:54.1234567-00:30", &ms), 0);
    assert_true(ms == 1795554594123LL);
    assert_int_equal(timefmt_parse("2026-11-24T21:09:54z", &ms), 0);
    assert_true(ms == 1795554594000LL);
    assert_int_equal(timefmt_parse("2026-11-24 21:09:54.1Z", &ms), 0);
    assert_true(ms == 1795554594100LL);
}

static void rejects_malformed(void **state)
{
    (void)state;
    int64_t ms = 7;
    const char *bad[] = {
        "",
        "2026-11-24",
        "2026-11-24T21:09:54",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T21:60:00Z",
        "2026-11-24T21:09:60Z",
        "2026-11-24T21:09:54.Z",
        "2026-11-24T21:09:54+0100",
        "2026-11-24T21:09:54Z ",
        "0000-01-01T00:00:00Z",
        "26-11-24T21:09:54Z",
        "2026/11/24T21:09:54Z",
        "2026-11-24T21:09:54+24:00",
        "tomorrow",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(timefmt_parse(bad[i], &ms), -1);
    assert_true(ms == 7); /* untouched on failure */
}

static void leap_years(void **state)
{
    (void)state;
    int64_t ms;
    assert_int_equal(timefmt_parse("2024-02-29T12:00:00Z", &ms), 0);
    assert_int_equal(timefmt_parse("2000-02-29T12:00:00Z", &ms), 0);
    assert_int_equal(timefmt_parse("1900-02-29T12:00:00Z", &ms), -1);
}

static void round_trip(void **state)
{
    (void)state;
    char buf[TIMEFMT_BUFSIZE];
    for (int64_t t = -86400000LL * 365 * 50; t < 86400000LL * 365 * 80;
         t += 86400000LL * 37 + 12345) {
        int64_t back;
        assert_int_equal(timefmt_format_ms(t, buf), 0);
        assert_int_equal(timefmt_parse(buf, &back), 0);
        assert_true(back == t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(formats_with_milliseconds),
        cmocka_unit_test(parses_offsets_and_fractions),
        cmocka_unit_test(rejects_malformed),
        cmocka_unit_test(leap_years),
        cmocka_unit_test(round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
