/* Helpers shared by the fuzz targets. */

#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: property failed: %s\n", file, line, what);
    abort();
}

char *fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        fuzz_fail(__FILE__, __LINE__, "out of memory");
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Length of the sequence a lead byte starts, and the least code point it
 * may encode (anything below is an overlong form). */
static int sequence_length(unsigned char c, unsigned long *min)
{
    if (c < 0x80) {
        *min = 0;
        return 1;
    }
    if ((c & 0xE0) == 0xC0) {
        *min = 0x80;
        return 2;
    }
    if ((c & 0xF0) == 0xE0) {
        *min = 0x800;
        return 3;
    }
    if ((c & 0xF8) == 0xF0) {
        *min = 0x10000;
        return 4;
    }
    return 0;
}

size_t fuzz_utf8_count(const char *s)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned long min, cp;
        int len = sequence_length(*p, &min);
        if (len == 0)
            return (size_t)-1;
        cp = len == 1 ? *p : *p & (0x7F >> len);
        for (int i = 1; i < len; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return (size_t)-1;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (size_t)-1;
        p += len;
        n++;
    }
    return n;
}
