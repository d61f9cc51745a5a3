/* Request bodies: the input is a body, decoded by validate_json_body and
 * then checked field by field as the POST /users, /events and
 * /reservations handlers check it. */

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "timefmt.h"
#include "validate.h"

#define MAX_TICKETS 10000000 /* src/api/events.c */

static const char untouched[] = "untouched";

/* A refusal names the field in a terminated message. */
static void check_refusal(const char *msg, const char *field)
{
    FUZZ_CHECK(memchr(msg, '\0', VALIDATE_MSG_SIZE) != NULL);
    FUZZ_CHECK(msg[0] != '\0' && strstr(msg, field) != NULL);
}

static const char *string_field(json_t *obj, const char *field, size_t min, size_t max)
{
    char msg[VALIDATE_MSG_SIZE] = "";
    const char *out = untouched;
    int rc = validate_string_field(obj, field, min, max, &out, msg);
    json_t *v = json_object_get(obj, field);
    size_t n = json_is_string(v) ? fuzz_utf8_count(json_string_value(v)) : 0;
    /* jansson hands over only well-formed UTF-8 without NULs inside, so
     * the C string the handler stores is the whole value. */
    if (json_is_string(v)) {
        FUZZ_CHECK(n != (size_t)-1);
        FUZZ_CHECK(strlen(json_string_value(v)) == json_string_length(v));
        FUZZ_CHECK(validate_utf8_length(json_string_value(v)) == n);
    }
    int fits = json_is_string(v) && n >= min && n <= max;
    FUZZ_CHECK((rc == 0) == fits);
    if (rc != 0) {
        FUZZ_CHECK(out == untouched);
        check_refusal(msg, field);
        return NULL;
    }
    FUZZ_CHECK(out == json_string_value(v));
    return out;
}

static int int_field(json_t *obj, const char *field, int64_t min, int64_t max, int64_t *out)
{
    char msg[VALIDATE_MSG_SIZE] = "";
    int64_t got = -7;
    int rc = validate_int_field(obj, field, min, max, &got, msg);
    json_t *v = json_object_get(obj, field);
    int fits = json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
    FUZZ_CHECK((rc == 0) == fits);
    if (rc != 0) {
        FUZZ_CHECK(got == -7);
        check_refusal(msg, field);
        return -1;
    }
    FUZZ_CHECK(got == json_integer_value(v) && got >= min && got <= max);
    *out = got;
    return 0;
}

/* Properties every accepted address has, whatever the exact rules. */
static void check_email(const char *email)
{
    if (validate_email(email) != 0)
        return;
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    FUZZ_CHECK(len >= 3 && len <= 254);
    FUZZ_CHECK(at && at > email && !strchr(at + 1, '@'));
    FUZZ_CHECK(at - email <= 64 && strchr(at + 1, '.') != NULL);
    FUZZ_CHECK(!strstr(email, "..") && email[0] != '.' && email[len - 1] != '.');
    for (const char *p = email; *p; p++)
        FUZZ_CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
}

static void check_user(json_t *body)
{
    const char *name = string_field(body, "name", 1, 200);
    const char *email = string_field(body, "email", 3, 254);
    (void)name;
    if (email)
        check_email(email);
}

/* A date the handler accepts is stored as the formatted form, which must
 * parse back to the same instant. */
static void check_date(const char *date)
{
    int64_t ms, again;
    char text[TIMEFMT_BUFSIZE];
    if (timefmt_parse(date, &ms) != 0 || timefmt_format_ms(ms, text) != 0)
        return;
    FUZZ_CHECK(strlen(text) == TIMEFMT_BUFSIZE - 1 && text[TIMEFMT_BUFSIZE - 2] == 'Z');
    FUZZ_CHECK(timefmt_parse(text, &again) == 0 && again == ms);
}

static void check_event(json_t *body)
{
    int64_t max;
    string_field(body, "name", 1, 200);
    string_field(body, "location", 1, 200);
    int_field(body, "maxTickets", 0, MAX_TICKETS, &max);
    const char *date = string_field(body, "date", 1, 64);
    if (date)
        check_date(date);
}

static void check_reservation(json_t *body)
{
    int64_t id;
    int_field(body, "eventId", 1, INT64_MAX, &id);
    int_field(body, "userId", 1, INT64_MAX, &id);
}

/* Refused bodies get the one error format, and it serialises. */
static void check_invalid_json(const struct http_response *resp)
{
    FUZZ_CHECK(resp->status == 400 && resp->json != NULL);
    json_t *error = json_object_get(resp->json, "error");
    FUZZ_CHECK(json_is_string(json_object_get(error, "message")));
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(error, "code")), "invalid_json") == 0);
    size_t len;
    char *text = http_response_body(resp, &len);
    FUZZ_CHECK(text != NULL && len > 0);
    free(text);
}

/* What jansson itself says the body is: the reference for acceptance. */
static int is_json_object(const char *body, size_t len)
{
    json_error_t jerr;
    json_t *root = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int ok = json_is_object(root);
    json_decref(root);
    return ok;
}

static void check_round_trip(json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    json_error_t jerr;
    json_t *again = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    FUZZ_CHECK(again != NULL && json_equal(again, body));
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = fuzz_cstring(data, size);
    struct http_request req;
    struct http_response resp;
    memset(&req, 0, sizeof(req));
    http_response_init(&resp);
    req.body = size ? copy : NULL;
    req.body_len = size;

    json_t *body = validate_json_body(&req, &resp);
    FUZZ_CHECK((body != NULL) == is_json_object(copy, size));
    if (!body) {
        check_invalid_json(&resp);
    } else {
        FUZZ_CHECK(resp.status == 0 && resp.json == NULL && json_is_object(body));
        check_round_trip(body);
        check_user(body);
        check_event(body);
        check_reservation(body);
    }
    json_decref(body);
    http_response_clear(&resp);
    free(copy);
    return 0;
}
