#ifndef RESERVD_FUZZ_H
#define RESERVD_FUZZ_H

/* Shared by the libFuzzer targets: a failed property aborts, so that
 * libFuzzer keeps the input as a crash. */

#include <stddef.h>
#include <stdint.h>

/* The entry point libFuzzer calls once per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

/* Print the property that did not hold and abort. */
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

/* A NUL-terminated copy of size bytes (embedded NULs end the string early,
 * as they would in a header or a path). Never NULL; free() it. */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* Number of code points in s if it is well-formed UTF-8 (no overlongs, no
 * surrogates, at most U+10FFFF), else (size_t)-1. */
size_t fuzz_utf8_count(const char *s);

#endif
