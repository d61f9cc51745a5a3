/* RFC 3339 timestamps (src/core/timefmt.c): any text through the parser,
 * and the input's first 8 bytes as an instant through the formatter. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "timefmt.h"

/* Instants of years 0001 and 9999, the formatter's whole range. */
#define MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00.000Z */
#define MAX_MS (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The shape timefmt_format_ms promises: YYYY-MM-DDTHH:MM:SS.mmmZ. */
static void check_shape(const char *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    FUZZ_CHECK(strlen(t) == sizeof(shape) - 1);
    for (size_t i = 0; shape[i]; i++)
        FUZZ_CHECK(shape[i] == 'd' ? digit(t[i]) : t[i] == shape[i]);
}

/* A formatted instant parses back to itself. */
static void check_format(int64_t ms)
{
    char text[TIMEFMT_BUFSIZE];
    int64_t back;
    int rc = timefmt_format_ms(ms, text);
    FUZZ_CHECK((rc == 0) == (ms >= MIN_MS && ms <= MAX_MS));
    if (rc != 0)
        return;
    check_shape(text);
    FUZZ_CHECK(timefmt_parse(text, &back) == 0 && back == ms);
}

/* Parsed text starts with a date and a time of day in range, and the
 * instant it names survives formatting (when its UTC year is printable). */
static void check_parse(const char *text)
{
    int64_t ms = 0;
    if (timefmt_parse(text, &ms) != 0)
        return;
    FUZZ_CHECK(strlen(text) >= 20);
    for (int i = 0; i < 4; i++)
        FUZZ_CHECK(digit(text[i]));
    FUZZ_CHECK(text[4] == '-' && text[7] == '-' && text[13] == ':' && text[16] == ':');
    /* One day of offset either side of the local years 0001..9999. */
    FUZZ_CHECK(ms >= MIN_MS - 86400000LL && ms <= MAX_MS + 86400000LL);
    check_format(ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    check_parse(text);
    free(text);
    if (size >= sizeof(int64_t)) {
        int64_t ms;
        memcpy(&ms, data, sizeof(ms));
        check_format(ms);
        check_format(ms % (MAX_MS + 1)); /* mostly inside the printable range */
    }
    return 0;
}
