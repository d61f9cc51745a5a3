/* /events: creation, lookup, listing, changes (PATCH). */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "metrics.h"
#include "statements.h"
#include "timefmt.h"
#include "validate.h"

#define MAX_TICKETS 10000000

/* The purchase settings: their ranges (the migrations' CHECKs) and
 * defaults (the API's). */
static const struct setting {
    const char *field;
    int64_t min, max, dflt;
} settings[] = {
    { "maxPerUser", 1, 100, 1 },
    { "holdSeconds", 1, 86400, 900 },
    { "offerSeconds", 1, 604800, 86400 },
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* An event row (statements.h) as the API's event. */
static json_t *event_json(const PGresult *res, int row, int64_t *id)
{
    struct event_row e;
    if (event_row_decode(res, row, &e) != 0)
        return NULL;
    *id = e.id;
    json_t *o =
        json_pack("{s:I, s:s, s:o, s:s, s:I, s:I, s:I, s:I}", "id", (json_int_t)e.id, "name",
                  e.name, "date", api_time_json(e.date_ms), "location", e.location, "maxTickets",
                  (json_int_t)e.max_tickets, "reservedTickets", (json_int_t)e.reserved_tickets,
                  "heldTickets", (json_int_t)e.held_tickets, "remainingTickets",
                  (json_int_t)(e.max_tickets - e.reserved_tickets - e.held_tickets));
    json_t *more = json_pack(
        "{s:I, s:I, s:I, s:I, s:o}", "maxPerUser", (json_int_t)e.max_per_user, "holdSeconds",
        (json_int_t)e.hold_seconds, "offerSeconds", (json_int_t)e.offer_seconds, "waitlistLength",
        (json_int_t)e.waitlist_length, "createdAt", api_time_json(e.created_at_ms));
    if (!o || !more || json_object_update(o, more) != 0) {
        json_decref(o);
        o = NULL;
    }
    json_decref(more);
    return o;
}

/* The purchase settings present in body, as text parameters (absent:
 * NULL, or the default when dflt). */
static int parse_settings(json_t *body, bool dflt, char text[NSETTINGS][24],
                          const char *params[NSETTINGS], char *msg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        int64_t v = settings[i].dflt;
        params[i] = NULL;
        if (json_object_get(body, settings[i].field) &&
            validate_int_field(body, settings[i].field, settings[i].min, settings[i].max, &v,
                               msg) != 0)
            return -1;
        if (json_object_get(body, settings[i].field) || dflt) {
            snprintf(text[i], sizeof(text[i]), "%lld", (long long)v);
            params[i] = text[i];
        }
    }
    return 0;
}

void events_create(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE], date_s[TIMEFMT_BUFSIZE], max_s[24], text[NSETTINGS][24];
    const char *name, *date, *location, *set[NSETTINGS];
    int64_t max, date_ms;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_string_field(body, "name", 1, 200, &name, msg) != 0 ||
        validate_string_field(body, "date", 1, 64, &date, msg) != 0 ||
        validate_string_field(body, "location", 1, 200, &location, msg) != 0 ||
        validate_int_field(body, "maxTickets", 0, MAX_TICKETS, &max, msg) != 0 ||
        parse_settings(body, true, text, set, msg) != 0) {
        validate_fail(resp, msg);
    } else if (timefmt_parse(date, &date_ms) != 0 || timefmt_format_ms(date_ms, date_s) != 0) {
        validate_fail(resp, "date must be an RFC 3339 date-time, e.g. 2026-12-31T20:00:00Z");
    } else {
        snprintf(max_s, sizeof(max_s), "%lld", (long long)max);
        const char *params[] = { name, date_s, location, max_s, set[0], set[1], set[2] };
        api_insert(app, req, resp, STMT_EVENT_INSERT, 7, params, event_json, "/events",
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

/* PATCH's fields, each optional (NULL: unchanged): $2 name, $3 date,
 * $4 location, $5 maxTickets, $6..$8 the purchase settings. */
struct event_change {
    char date[TIMEFMT_BUFSIZE], max[24], text[NSETTINGS][24];
    const char *params[7];
};

static int optional_string(json_t *body, const char *field, size_t max, const char **out, char *msg)
{
    *out = NULL;
    return json_object_get(body, field) ? validate_string_field(body, field, 1, max, out, msg) : 0;
}

static int parse_change(json_t *body, struct event_change *c, char *msg)
{
    const char *date;
    int64_t max, date_ms;
    memset(c->params, 0, sizeof(c->params));
    if (optional_string(body, "name", 200, &c->params[0], msg) != 0 ||
        optional_string(body, "date", 64, &date, msg) != 0 ||
        optional_string(body, "location", 200, &c->params[2], msg) != 0)
        return -1;
    if (date) {
        if (timefmt_parse(date, &date_ms) != 0 || timefmt_format_ms(date_ms, c->date) != 0) {
            snprintf(msg, VALIDATE_MSG_SIZE,
                     "date must be an RFC 3339 date-time, e.g. 2026-12-31T20:00:00Z");
            return -1;
        }
        c->params[1] = c->date;
    }
    if (json_object_get(body, "maxTickets")) {
        if (validate_int_field(body, "maxTickets", 0, MAX_TICKETS, &max, msg) != 0)
            return -1;
        snprintf(c->max, sizeof(c->max), "%lld", (long long)max);
        c->params[3] = c->max;
    }
    return parse_settings(body, false, c->text, &c->params[4], msg);
}

/* Run the locked update: 0 when it changed the event, or -1 with resp
 * filled (404, 409, 503). */
static int apply_change(struct app *app, const struct http_request *req, struct http_response *resp,
                        struct db_conn *conn, const char *id, const struct event_change *c)
{
    char budget[DB_LOCK_BUDGET_SIZE];
    db_lock_budget(app->pool, &req->deadline, budget);
    const char *params[] = { id,           c->params[0], c->params[1], c->params[2], c->params[3],
                             c->params[4], c->params[5], c->params[6], budget };
    PGresult *res = db_exec(conn, STMT_EVENT_UPDATE, 9, params);
    enum db_result r = res ? db_result_classify(res) : DB_RESULT_FAILED;
    struct event_update_row u;
    int rc = -1;
    if (r == DB_RESULT_UNIQUE_VIOLATION) {
        http_respond_error(resp, 409, "event_name_taken", "an event with this name already exists");
        PQclear(res);
        return -1;
    }
    if (r != DB_RESULT_OK || PQntuples(res) != 1 || event_update_row_decode(res, 0, &u) != 0) {
        api_db_failure(app, resp, res);
        PQclear(res);
        return -1;
    }
    metrics_count_holds_expired(app->metrics, u.holds_expired);
    if (strcmp(u.outcome, "event_not_found") == 0)
        http_respond_error(resp, 404, "event_not_found", "no event with id %s", id);
    else if (strcmp(u.outcome, "capacity_below_reserved") == 0)
        http_respond_error(resp, 409, "capacity_below_reserved",
                           "maxTickets %s is below the %d tickets reserved or held", c->params[3],
                           u.tickets_out);
    else
        rc = 0;
    PQclear(res);
    return rc;
}

void events_update(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE], id[24];
    struct event_change c;
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (parse_change(body, &c, msg) != 0) {
        validate_fail(resp, msg);
    } else {
        struct db_conn *conn = api_acquire_effect(app, req, resp);
        if (conn && apply_change(app, req, resp, conn, id, &c) == 0) {
            const char *params[] = { id };
            PGresult *res = db_exec(conn, STMT_EVENT_GET, 1, params);
            json_t *event = NULL;
            if (res && db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1 &&
                (event = event_json(res, 0, &(int64_t){ 0 })))
                http_respond_json(resp, 200, event);
            else
                api_db_failure(app, resp, res);
            PQclear(res);
        }
        if (conn)
            api_release_effect(app, req, resp, conn);
    }
    json_decref(body);
}
