#ifndef RESERVD_VALIDATE_H
#define RESERVD_VALIDATE_H

/* Input validation. Each function returns 0, or -1 with a message for the
 * client in msg (naming the field) and leaves its outputs untouched. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define VALIDATE_MSG_SIZE 160

/* Parse the request body as a JSON object. On failure writes the error
 * response (400 invalid_json) and returns NULL. Caller owns the result. */
json_t *validate_json_body(const struct http_request *req, struct http_response *resp);

/* A string of min..max Unicode characters (UTF-8 code points). */
int validate_string_field(json_t *obj, const char *field, size_t min, size_t max, const char **out,
                          char *msg);

/* An integer in min..max (JSON integers only: 1.0 and "1" are refused). */
int validate_int_field(json_t *obj, const char *field, int64_t min, int64_t max, int64_t *out,
                       char *msg);

/* A plausible e-mail address of at most 254 bytes. */
int validate_email(const char *email);

/* Number of code points in valid UTF-8 (jansson guarantees validity). */
size_t validate_utf8_length(const char *s);

/* Optional integer query argument: default when absent. */
int validate_query_int(const struct http_request *req, const char *key, int64_t min, int64_t max,
                       int64_t dflt, int64_t *out, char *msg);

/* Shorthand: respond 400 validation_failed with msg. */
void validate_fail(struct http_response *resp, const char *msg);

#endif
