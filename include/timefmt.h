#ifndef RESERVD_TIMEFMT_H
#define RESERVD_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

/* Length of "YYYY-MM-DDTHH:MM:SS.mmmZ" plus the terminator. */
#define TIMEFMT_BUFSIZE 25

/* Format milliseconds since the Unix epoch as RFC 3339 UTC with
 * milliseconds. Returns 0, or -1 if the year is outside 0001..9999. */
int timefmt_format_ms(int64_t epoch_ms, char out[TIMEFMT_BUFSIZE]);

/* Parse an RFC 3339 date-time ("2026-11-24T21:09:54.123+01:00").
 * Fractions beyond milliseconds are truncated. Returns 0 or -1. */
int timefmt_parse(const char *text, int64_t *epoch_ms);

#endif
