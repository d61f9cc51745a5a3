#ifndef RESERVD_LOG_H
#define RESERVD_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Configure before threads start; read-only afterwards. */
int log_set_level(const char *name);  /* 0 or -1 for an unknown name */
int log_set_format(const char *name); /* "text" or "json" */
int log_enabled(enum log_level level);

/* One line on stderr; writes are atomic per line. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The per-request access line: "POST /users 409 email_taken 1.2ms id=...".
 * error_code is the answer's error.code, or NULL for none. */
void log_request(const char *method, const char *path, int status, double duration_ms,
                 const char *request_id, const char *error_code);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
