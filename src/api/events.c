/* /events: creation, lookup, listing. */

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "db.h"
#include "statements.h"
#include "timefmt.h"
#include "validate.h"

#define MAX_TICKETS 10000000

/* An event row (statements.h) as the API's event. */
static json_t *event_json(const PGresult *res, int row, int64_t *id)
{
    struct event_row e;
    if (event_row_decode(res, row, &e) != 0)
        return NULL;
    *id = e.id;
    return json_pack("{s:I, s:s, s:o, s:s, s:I, s:I, s:I, s:o}", "id", (json_int_t)e.id, "name",
                     e.name, "date", api_time_json(e.date_ms), "location", e.location, "maxTickets",
                     (json_int_t)e.max_tickets, "reservedTickets", (json_int_t)e.reserved_tickets,
                     "remainingTickets", (json_int_t)(e.max_tickets - e.reserved_tickets),
                     "createdAt", api_time_json(e.created_at_ms));
}

void events_create(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE], date_s[TIMEFMT_BUFSIZE], max_s[24];
    const char *name, *date, *location;
    int64_t max, date_ms;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_string_field(body, "name", 1, 200, &name, msg) != 0 ||
        validate_string_field(body, "date", 1, 64, &date, msg) != 0 ||
        validate_string_field(body, "location", 1, 200, &location, msg) != 0 ||
        validate_int_field(body, "maxTickets", 0, MAX_TICKETS, &max, msg) != 0) {
        validate_fail(resp, msg);
    } else if (timefmt_parse(date, &date_ms) != 0 || timefmt_format_ms(date_ms, date_s) != 0) {
        validate_fail(resp, "date must be an RFC 3339 date-time, e.g. 2026-12-31T20:00:00Z");
    } else {
        snprintf(max_s, sizeof(max_s), "%lld", (long long)max);
        const char *params[] = { name, date_s, location, max_s };
        api_insert(app, req, resp, STMT_EVENT_INSERT, 4, params, event_json, "/events",
                   "event_name_taken", "an event with this name already exists");
    }
    json_decref(body);
}

void events_get(struct app *app, const struct http_request *req, struct http_response *resp)
{
    api_get_by_id(app, req, resp, STMT_EVENT_GET, event_json, "event");
}

void events_list(struct app *app, const struct http_request *req, struct http_response *resp)
{
    struct api_page page;
    if (api_page_params(req, resp, &page) != 0)
        return;
    const char *params[] = { page.after, page.fetch };
    api_list(app, req, resp, STMT_EVENT_LIST, 2, params, page.limit, event_json);
}
