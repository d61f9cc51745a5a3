/* The waiting list: join a sold-out event's list, look at the line, look
 * up an entry, leave. Offers are made by the database whenever tickets
 * return (sql/migrations/0005), whichever path returns them; this file
 * only speaks HTTP. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "metrics.h"
#include "reservation.h"
#include "statements.h"
#include "validate.h"

/* An entry as the API shows it to anyone who has its id. */
static json_t *entry_object(const struct waitlist_row *w)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:I, s:o, s:o, s:o}", "id", (json_int_t)w->id,
                     "eventId", (json_int_t)w->event_id, "userId", (json_int_t)w->user_id,
                     "quantity", (json_int_t)w->quantity, "status", w->status, "position",
                     (json_int_t)w->position, "reservationId",
                     w->offered ? json_integer((json_int_t)w->reservation_id) : json_null(),
                     "joinedAt", api_time_json(w->joined_at_ms), "offerExpiresAt",
                     w->has_offer_expiry ? api_time_json(w->offer_expires_at_ms) : json_null());
}

static json_t *entry_json(const PGresult *res, int row, int64_t *id)
{
    struct waitlist_row w;
    if (waitlist_row_decode(res, row, &w) != 0)
        return NULL;
    *id = w.id;
    return entry_object(&w);
}

/* A place in an event's line: no user data (nor the entry's id, which
 * leads to it); the page's nextAfter is a position. */
static json_t *place_json(const PGresult *res, int row, int64_t *position)
{
    struct waitlist_row w;
    if (waitlist_row_decode(res, row, &w) != 0)
        return NULL;
    *position = w.position;
    return json_pack("{s:I, s:I, s:s, s:o}", "position", (json_int_t)w.position, "quantity",
                     (json_int_t)w.quantity, "status", w.status, "joinedAt",
                     api_time_json(w.joined_at_ms));
}

/* Run a locked statement ($last: the lock budget); its single row, or
 * NULL after writing the failure into resp. */
static PGresult *run_locked(struct app *app, const struct http_request *req,
                            struct http_response *resp, struct db_conn *conn,
                            enum db_statement stmt, int nparams, const char **params)
{
    char budget[DB_LOCK_BUDGET_SIZE];
    db_lock_budget(app->pool, &req->deadline, budget);
    params[nparams - 1] = budget;
    PGresult *res = db_exec(conn, stmt, nparams, params);
    enum db_result r = res ? db_result_classify(res) : DB_RESULT_FAILED;
    if (r == DB_RESULT_OK && PQntuples(res) == 1)
        return res;
    if (r == DB_RESULT_UNIQUE_VIOLATION) /* another writer's entry: the check's answer */
        http_respond_error(resp, 409, "already_waiting",
                           "the user is already on this waiting list");
    else
        api_db_failure(app, resp, res);
    PQclear(res);
    return NULL;
}

static void respond_join(struct http_response *resp, const struct waitlist_join_row *j,
                         const char *event, int64_t user_id, int64_t quantity)
{
    if (strcmp(j->outcome, "joined") == 0 && j->has_entry)
        api_created(resp, entry_object(&j->entry), "/waitlist", j->entry.id);
    else if (strcmp(j->outcome, "event_not_found") == 0)
        http_respond_error(resp, 404, "event_not_found", "no event with id %s", event);
    else if (strcmp(j->outcome, "user_not_found") == 0)
        http_respond_error(resp, 404, "user_not_found", "no user with id %lld", (long long)user_id);
    else if (strcmp(j->outcome, "over_limit") == 0)
        http_respond_error(resp, 400, "validation_failed",
                           "quantity must be from 1 to %d (event %s's maxPerUser), not %lld",
                           j->max_per_user, event, (long long)quantity);
    else if (strcmp(j->outcome, "already_reserved") == 0)
        http_respond_error(resp, 409, "already_reserved",
                           "user %lld already holds a reservation for event %s", (long long)user_id,
                           event);
    else if (strcmp(j->outcome, "already_waiting") == 0)
        http_respond_error(resp, 409, "already_waiting",
                           "user %lld is already on event %s's waiting list", (long long)user_id,
                           event);
    else if (strcmp(j->outcome, "tickets_available") == 0)
        http_respond_error(resp, 409, "tickets_available",
                           "event %s has %d ticket%s left, %lld requested: reserve instead", event,
                           j->tickets_left, j->tickets_left == 1 ? "" : "s", (long long)quantity);
    else
        http_respond_error(resp, 503, "unavailable", "the database is unavailable");
}

static void join(struct app *app, const struct http_request *req, struct http_response *resp,
                 int64_t user_id, int64_t quantity)
{
    char event[24], user[24], qty[24];
    snprintf(event, sizeof(event), "%lld", (long long)req->params[0]);
    snprintf(user, sizeof(user), "%lld", (long long)user_id);
    snprintf(qty, sizeof(qty), "%lld", (long long)quantity);
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    const char *params[] = { event, user, qty, NULL };
    PGresult *res = run_locked(app, req, resp, conn, STMT_WAITLIST_JOIN, 4, params);
    struct waitlist_join_row j;
    if (!res) {
        /* answered */
    } else if (waitlist_join_row_decode(res, 0, &j) != 0) {
        api_db_failure(app, resp, NULL);
    } else {
        metrics_count_holds_expired(app->metrics, j.holds_expired);
        respond_join(resp, &j, event, user_id, quantity);
    }
    PQclear(res);
    api_release_effect(app, req, resp, conn);
}

void waitlist_join(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE];
    int64_t user_id, quantity = 1;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_int_field(body, "userId", 1, INT64_MAX, &user_id, msg) != 0 ||
        (json_object_get(body, "quantity") &&
         validate_int_field(body, "quantity", 1, RESERVATION_MAX_QUANTITY, &quantity, msg) != 0))
        validate_fail(resp, msg);
    else
        join(app, req, resp, user_id, quantity);
    json_decref(body);
}

void waitlist_list(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char event[24];
    struct api_page page;
    if (api_page_params(req, resp, &page) != 0)
        return;
    snprintf(event, sizeof(event), "%lld", (long long)req->params[0]);
    const char *params[] = { event, page.after, page.fetch };
    api_list(app, req, resp, STMT_WAITLIST_LIST, 3, params, page.limit, place_json);
}

void waitlist_get(struct app *app, const struct http_request *req, struct http_response *resp)
{
    api_get_by_id(app, req, resp, STMT_WAITLIST_GET, entry_json, "waitlist_entry");
}

void waitlist_leave(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    const char *params[] = { id, NULL };
    PGresult *res = run_locked(app, req, resp, conn, STMT_WAITLIST_LEAVE, 2, params);
    struct waitlist_leave_row l;
    if (!res) {
        /* answered */
    } else if (waitlist_leave_row_decode(res, 0, &l) != 0) {
        api_db_failure(app, resp, NULL);
    } else if (strcmp(l.outcome, "waitlist_entry_not_found") == 0 || !l.has_entry) {
        http_respond_error(resp, 404, "waitlist_entry_not_found",
                           "no waiting-list entry with id %s", id);
    } else {
        metrics_count_holds_expired(app->metrics, l.holds_expired);
        /* left now, or had already ended: 200 with the entry as it is */
        http_respond_json(resp, 200, entry_object(&l.entry));
    }
    PQclear(res);
    api_release_effect(app, req, resp, conn);
}
