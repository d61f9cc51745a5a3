/* /reservations: reserve, look up, list, cancel. The granting itself is
 * the strategy's business (src/reservation/); this file only speaks HTTP. */

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "metrics.h"
#include "reservation.h"
#include "statements.h"
#include "timefmt.h"
#include "validate.h"

/* A reservation row (statements.h) as the API's reservation. */
static json_t *reservation_json(const PGresult *res, int row, int64_t *id)
{
    struct reservation_row r;
    if (reservation_row_decode(res, row, &r) != 0)
        return NULL;
    *id = r.id;
    return json_pack("{s:I, s:I, s:I, s:s, s:o, s:o}", "id", (json_int_t)r.id, "eventId",
                     (json_int_t)r.event_id, "userId", (json_int_t)r.user_id, "status", r.status,
                     "reservedAt", api_time_json(r.reserved_at_ms), "cancelledAt",
                     r.cancelled ? api_time_json(r.cancelled_at_ms) : json_null());
}

/* A reservation in flight: answered when the strategy calls back. */
struct pending_reservation {
    struct reservation_request r;
    struct app *app;
    struct http_response *resp;
    struct http_deferred *deferred;
};

static void respond(struct app *app, struct http_response *resp,
                    const struct reservation_request *r)
{
    char at[TIMEFMT_BUFSIZE];
    metrics_count_reservation(app->metrics, r->outcome);
    switch (r->outcome) {
    case RESERVATION_RESERVED:
        if (timefmt_format_ms(r->grant.reserved_at_ms, at) != 0)
            strcpy(at, "1970-01-01T00:00:00.000Z");
        api_created(resp,
                    json_pack("{s:I, s:I, s:I, s:s, s:s, s:n}", "id", (json_int_t)r->grant.id,
                              "eventId", (json_int_t)r->event_id, "userId", (json_int_t)r->user_id,
                              "status", "RESERVED", "reservedAt", at, "cancelledAt"),
                    "/reservations", r->grant.id);
        break;
    case RESERVATION_EVENT_NOT_FOUND:
        http_respond_error(resp, 404, "event_not_found", "no event with id %lld",
                           (long long)r->event_id);
        break;
    case RESERVATION_USER_NOT_FOUND:
        http_respond_error(resp, 404, "user_not_found", "no user with id %lld",
                           (long long)r->user_id);
        break;
    case RESERVATION_ALREADY_RESERVED:
        http_respond_error(resp, 409, "already_reserved",
                           "user %lld already holds a reservation for event %lld",
                           (long long)r->user_id, (long long)r->event_id);
        break;
    case RESERVATION_SOLD_OUT:
        http_respond_error(resp, 409, "sold_out", "event %lld is sold out", (long long)r->event_id);
        break;
    case RESERVATION_BUSY: api_busy(resp); break;
    case RESERVATION_PENDING:
    case RESERVATION_UNKNOWN:
        /* src/reservation/ answers only decided requests */
        assert(!"an undecided reservation was answered");
        /* fall through */
    case RESERVATION_UNAVAILABLE:
        metrics_count_db_error(app->metrics);
        http_respond_error(resp, 503, "unavailable", "the database is unavailable");
        break;
    }
}

static void reservation_done(struct reservation_request *r)
{
    struct pending_reservation *p = container_of(r, struct pending_reservation, r);
    respond(p->app, p->resp, r);
    http_complete(p->deferred);
    free(p);
}

/* Hand the reservation to the strategy and answer when it calls back; this
 * runs on an HTTP thread and never waits for the database. */
static void reserve(struct app *app, const struct http_request *req, struct http_response *resp,
                    int64_t event_id, int64_t user_id)
{
    struct pending_reservation *p = calloc(1, sizeof(*p));
    if (!p) {
        http_respond_error(resp, 503, "unavailable", "out of memory");
        return;
    }
    p->r.event_id = event_id;
    p->r.user_id = user_id;
    p->r.deadline = req->deadline;
    p->r.done = reservation_done;
    p->app = app;
    p->resp = resp;
    p->deferred = http_defer(req);
    reservation_submit(app->reservations, &p->r);
}

void reservations_create(struct app *app, const struct http_request *req,
                         struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE];
    int64_t event_id, user_id;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_int_field(body, "eventId", 1, INT64_MAX, &event_id, msg) != 0 ||
        validate_int_field(body, "userId", 1, INT64_MAX, &user_id, msg) != 0)
        validate_fail(resp, msg);
    else
        reserve(app, req, resp, event_id, user_id);
    json_decref(body);
}

void reservations_create_compat(struct app *app, const struct http_request *req,
                                struct http_response *resp)
{
    reserve(app, req, resp, req->params[0], req->params[1]);
}

void reservations_get(struct app *app, const struct http_request *req, struct http_response *resp)
{
    api_get_by_id(app, req, resp, STMT_RESERVATION_GET, reservation_json, "reservation");
}

void reservations_list(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE];
    int64_t event_id, user_id;
    struct api_page page;
    if (api_page_params(req, resp, &page) != 0)
        return;
    if (validate_query_int(req, "eventId", 1, INT64_MAX, 0, &event_id, msg) != 0 ||
        validate_query_int(req, "userId", 1, INT64_MAX, 0, &user_id, msg) != 0) {
        validate_fail(resp, msg);
        return;
    }
    const char *status = http_request_query(req, "status");
    if (status && strcmp(status, "RESERVED") != 0 && strcmp(status, "CANCELLED") != 0) {
        validate_fail(resp, "query parameter status must be RESERVED or CANCELLED");
        return;
    }
    char event_s[24], user_s[24];
    snprintf(event_s, sizeof(event_s), "%lld", (long long)event_id);
    snprintf(user_s, sizeof(user_s), "%lld", (long long)user_id);
    const char *params[] = { page.after, event_id ? event_s : NULL, user_id ? user_s : NULL, status,
                             page.fetch };
    /* a user holds few reservations, an event many: filter by the smaller */
    enum db_statement stmt = user_id    ? STMT_RESERVATION_LIST_BY_USER
                             : event_id ? STMT_RESERVATION_LIST_BY_EVENT
                                        : STMT_RESERVATION_LIST;
    api_list(app, req, resp, stmt, 5, params, page.limit, reservation_json);
}

void reservations_cancel(struct app *app, const struct http_request *req,
                         struct http_response *resp)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire(app, req, resp);
    if (!conn)
        return;
    char budget[DB_LOCK_BUDGET_SIZE];
    db_lock_budget(app->pool, &req->deadline, budget);
    const char *params[] = { id, budget };
    PGresult *res = db_exec(conn, STMT_CANCEL, 2, params);
    struct cancel_row c;
    json_t *body;
    int64_t ignored;
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != 1 ||
        cancel_row_decode(res, 0, &c) != 0) {
        api_db_failure(app, resp, res);
    } else if (strcmp(c.outcome, "reservation_not_found") == 0) {
        http_respond_error(resp, 404, "reservation_not_found", "no reservation with id %s", id);
    } else {
        if (c.cancelled_now)
            metrics_count_cancellation(app->metrics);
        PQclear(res);
        /* 200 with the row as it is now (already cancelled: unchanged). */
        res = db_exec(conn, STMT_RESERVATION_GET, 1, params);
        if (res && db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1 &&
            (body = reservation_json(res, 0, &ignored)))
            http_respond_json(resp, 200, body);
        else
            api_db_failure(app, resp, res);
    }
    PQclear(res);
    api_release(app, conn);
}
