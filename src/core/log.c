/* Logging to stderr, text or JSON lines. Level and format are set once at
 * start-up before any thread exists, then only read. Each line is built in
 * a local buffer and written with one write(2), so lines never interleave. */

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "timefmt.h"

static enum log_level min_level = LOG_INFO;
static int json_format;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0) {
            min_level = (enum log_level)i;
            return 0;
        }
    return -1;
}

int log_set_format(const char *name)
{
    if (strcmp(name, "text") == 0)
        json_format = 0;
    else if (strcmp(name, "json") == 0)
        json_format = 1;
    else
        return -1;
    return 0;
}

int log_enabled(enum log_level level)
{
    return level >= min_level;
}

static void now_text(char out[TIMEFMT_BUFSIZE])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (timefmt_format_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out) != 0)
        strcpy(out, "1970-01-01T00:00:00.000Z");
}

/* Append formatted text; a line that does not fit is cut, never overrun. */
__attribute__((format(printf, 4, 5))) static size_t append(char *buf, size_t cap, size_t len,
                                                           const char *fmt, ...)
{
    if (len >= cap)
        return len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return len;
    return len + (size_t)n < cap ? len + (size_t)n : cap - 1;
}

/* Append s to buf as JSON string content. */
static size_t json_escape(char *buf, size_t cap, size_t len, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len = append(buf, cap, len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

/* Copy s for a text line, replacing control bytes so a path cannot
 * forge a log line. */
static const char *printable(const char *s, char *buf, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    buf[i] = '\0';
    return buf;
}

static int is_break(char c)
{
    return c == '\n' || c == '\r' || c == '\t';
}

/* Fold a multi-line message (libpq's end in a newline and put hints on
 * indented lines of their own) onto one line: each line break with the
 * blanks around it becomes "; ", or a space after punctuation; trailing
 * breaks go. What is left of control bytes printable() replaces. A fold
 * may be longer than its break ("\n" gives "; "): out is cut to fit. */
static const char *fold_lines(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 2 < cap;) {
        if (!is_break(*p)) {
            out[n++] = *p++;
            continue;
        }
        while (n > 0 && out[n - 1] == ' ')
            n--;
        while (is_break(*p) || *p == ' ')
            p++;
        if (!*p || n == 0)
            continue;
        if (strchr(":;,.?!", out[n - 1]) == NULL)
            out[n++] = ';';
        out[n++] = ' ';
    }
    out[n] = '\0';
    return out;
}

static void emit(char *line, size_t len, size_t cap)
{
    if (len >= cap - 1)
        len = cap - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere to report a failed log write */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char ts[TIMEFMT_BUFSIZE], raw[1024], msg[1024], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    fold_lines(raw, msg, sizeof(msg));
    now_text(ts);
    size_t len;
    if (json_format) {
        len = append(line, sizeof(line), 0, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                     level_names[level]);
        len = json_escape(line, sizeof(line), len, msg);
        len = append(line, sizeof(line), len, "\"}");
    } else {
        char safe[sizeof(msg)];
        len = append(line, sizeof(line), 0, "%s %-5s %s", ts, level_names[level],
                     printable(msg, safe, sizeof(safe)));
    }
    emit(line, len, sizeof(line));
}

void log_request(const char *method, const char *path, int status, double duration_ms,
                 const char *request_id, const char *error_code)
{
    if (!log_enabled(LOG_INFO))
        return;
    char ts[TIMEFMT_BUFSIZE], line[1024];
    size_t len;
    now_text(ts);
    if (json_format) {
        /* the path goes last but one: if a long one is cut, the fields
         * before it survive and the line stays one line */
        len = append(line, sizeof(line), 0,
                     "{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"request\",\"method\":\"", ts);
        len = json_escape(line, sizeof(line), len, method);
        len = append(line, sizeof(line), len, "\",\"status\":%d,", status);
        if (error_code) {
            len = append(line, sizeof(line), len, "\"error\":\"");
            len = json_escape(line, sizeof(line) - 40, len, error_code);
            len = append(line, sizeof(line), len, "\",");
        }
        len =
            append(line, sizeof(line), len, "\"duration_ms\":%.3f,\"request_id\":\"", duration_ms);
        len = json_escape(line, sizeof(line), len, request_id ? request_id : "");
        len = append(line, sizeof(line), len, "\",\"path\":\"");
        len = json_escape(line, sizeof(line) - 3, len, path);
        len = append(line, sizeof(line), len, "\"}");
    } else {
        char safe_path[512], safe_code[64];
        len = append(line, sizeof(line), 0, "%s info  %s %s %d%s%s %.3fms id=%s", ts, method,
                     printable(path, safe_path, sizeof(safe_path)), status, error_code ? " " : "",
                     error_code ? printable(error_code, safe_code, sizeof(safe_code)) : "",
                     duration_ms, request_id ? request_id : "-");
    }
    emit(line, len, sizeof(line));
}
