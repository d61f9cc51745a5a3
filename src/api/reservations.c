/* /reservations: reserve, look up, list, cancel. The granting itself is
 * the strategy's business (src/reservation/); this file only speaks HTTP. */

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "idempotency.h"
#include "metrics.h"
#include "reservation.h"
#include "statements.h"
#include "timefmt.h"
#include "validate.h"

/* The API's reservation. expiresAt: when a hold expires (or expired);
 * expiredAt: when an expired one stopped counting (its expiresAt). */
static json_t *reservation_object(int64_t id, int64_t event_id, int64_t user_id, int64_t quantity,
                                  const char *status, int64_t reserved_at_ms, json_t *expires_at,
                                  json_t *cancelled_at)
{
    bool expired = strcmp(status, "EXPIRED") == 0;
    json_t *expired_at = expired ? json_deep_copy(expires_at) : json_null();
    if (!expired && strcmp(status, "HELD") != 0) {
        json_decref(expires_at);
        expires_at = json_null();
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:o}", "id", (json_int_t)id,
                     "eventId", (json_int_t)event_id, "userId", (json_int_t)user_id, "quantity",
                     (json_int_t)quantity, "status", status, "reservedAt",
                     api_time_json(reserved_at_ms), "expiresAt", expires_at, "cancelledAt",
                     cancelled_at, "expiredAt", expired_at);
}

/* A reservation row (statements.h) as the API's reservation. */
static json_t *reservation_json(const PGresult *res, int row, int64_t *id)
{
    struct reservation_row r;
    if (reservation_row_decode(res, row, &r) != 0)
        return NULL;
    *id = r.id;
    return reservation_object(r.id, r.event_id, r.user_id, r.quantity, r.status, r.reserved_at_ms,
                              r.has_expiry ? api_time_json(r.expires_at_ms) : json_null(),
                              r.cancelled ? api_time_json(r.cancelled_at_ms) : json_null());
}

/* A reservation in flight: answered when the strategy calls back. */
struct pending_reservation {
    struct reservation_request r;
    struct app *app;
    struct http_response *resp;
    struct http_deferred *deferred;
    const struct http_request *req;
};

static void respond_granted(struct app *app, struct http_response *resp,
                            const struct reservation_request *r)
{
    const struct reservation_grant *g = &r->grant;
    if (g->held)
        metrics_count_hold_granted(app->metrics);
    api_created(resp,
                reservation_object(
                    g->id, r->event_id, r->user_id, g->quantity > 0 ? g->quantity : r->quantity,
                    g->held ? "HELD" : "RESERVED", g->reserved_at_ms,
                    g->held ? api_time_json(g->expires_at_ms) : json_null(), json_null()),
                "/reservations", g->id);
}

static void respond(struct app *app, struct http_response *resp,
                    const struct reservation_request *r)
{
    metrics_count_reservation(app->metrics, r->outcome);
    metrics_count_holds_expired(app->metrics, r->holds_expired);
    switch (r->outcome) {
    case RESERVATION_RESERVED: respond_granted(app, resp, r); break;
    case RESERVATION_EVENT_NOT_FOUND:
        http_respond_error(resp, 404, "event_not_found", "no event with id %lld",
                           (long long)r->event_id);
        break;
    case RESERVATION_USER_NOT_FOUND:
        http_respond_error(resp, 404, "user_not_found", "no user with id %lld",
                           (long long)r->user_id);
        break;
    case RESERVATION_OVER_LIMIT:
        http_respond_error(resp, 400, "validation_failed",
                           "quantity must be from 1 to %d (event %lld's maxPerUser), not %d",
                           r->max_per_user, (long long)r->event_id, r->quantity);
        break;
    case RESERVATION_ALREADY_RESERVED:
        http_respond_error(resp, 409, "already_reserved",
                           "user %lld already holds a reservation for event %lld",
                           (long long)r->user_id, (long long)r->event_id);
        break;
    case RESERVATION_SOLD_OUT:
        http_respond_error(resp, 409, "sold_out",
                           "event %lld is sold out: %d ticket%s remain%s, %d requested",
                           (long long)r->event_id, r->tickets_left, r->tickets_left == 1 ? "" : "s",
                           r->tickets_left == 1 ? "s" : "", r->quantity);
        break;
    case RESERVATION_BUSY: api_busy(resp); break;
    case RESERVATION_KEY_TAKEN: break; /* reservation_done: the key's record answers */
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
    if (r->outcome == RESERVATION_RESERVED && r->idem_key)
        idempotency_recorded(p->req); /* the grant's transaction wrote the key's record */
    respond(p->app, p->resp, r);
    if (r->outcome == RESERVATION_KEY_TAKEN)
        idempotency_taken(p->req, p->resp); /* the record answers (finish) */
    http_complete(p->deferred);
    free(p);
}

/* Hand the reservation to the strategy and answer when it calls back; this
 * runs on an HTTP thread and never waits for the database. */
static void reserve(struct app *app, const struct http_request *req, struct http_response *resp,
                    int64_t event_id, int64_t user_id, int quantity, bool hold)
{
    struct pending_reservation *p = calloc(1, sizeof(*p));
    if (!p) {
        http_respond_error(resp, 503, "unavailable", "out of memory");
        return;
    }
    p->r.event_id = event_id;
    p->r.user_id = user_id;
    p->r.quantity = quantity;
    p->r.hold = hold;
    p->r.deadline = req->deadline;
    p->r.done = reservation_done;
    struct idempotency_ref key;
    if (idempotency_ref(req, &key) == 0 && reservation_info(app->reservations)->purchase_flow) {
        /* else the original app's statements: its record is stored after */
        p->r.idem_key = key.key_hash;
        p->r.idem_fingerprint = key.fingerprint;
        p->r.idem_ttl = key.ttl;
    }
    p->req = req;
    p->app = app;
    p->resp = resp;
    p->deferred = http_defer(req);
    reservation_submit(app->reservations, &p->r);
}

/* The optional quantity (default 1) and hold (default false). */
static int parse_purchase(json_t *body, int64_t *quantity, bool *hold, char *msg)
{
    json_t *h = json_object_get(body, "hold");
    *quantity = 1;
    *hold = false;
    if (json_object_get(body, "quantity") &&
        validate_int_field(body, "quantity", 1, RESERVATION_MAX_QUANTITY, quantity, msg) != 0)
        return -1;
    if (h && !json_is_boolean(h)) {
        snprintf(msg, VALIDATE_MSG_SIZE, "hold must be true or false");
        return -1;
    }
    *hold = h && json_is_true(h);
    return 0;
}

void reservations_create(struct app *app, const struct http_request *req,
                         struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE];
    int64_t event_id, user_id, quantity;
    bool hold;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_int_field(body, "eventId", 1, INT64_MAX, &event_id, msg) != 0 ||
        validate_int_field(body, "userId", 1, INT64_MAX, &user_id, msg) != 0 ||
        parse_purchase(body, &quantity, &hold, msg) != 0)
        validate_fail(resp, msg);
    else if ((quantity != 1 || hold) && !reservation_supports_holds(app->reservations))
        http_respond_error(resp, 501, "not_implemented",
                           "the unsafe strategy grants one final ticket per request only");
    else
        reserve(app, req, resp, event_id, user_id, (int)quantity, hold);
    json_decref(body);
}

/* The original app's route: one final ticket, as it always was. */
void reservations_create_compat(struct app *app, const struct http_request *req,
                                struct http_response *resp)
{
    reserve(app, req, resp, req->params[0], req->params[1], 1, false);
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
    if (status && strcmp(status, "HELD") != 0 && strcmp(status, "RESERVED") != 0 &&
        strcmp(status, "CANCELLED") != 0 && strcmp(status, "EXPIRED") != 0) {
        validate_fail(resp, "query parameter status must be HELD, RESERVED, CANCELLED or EXPIRED");
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

/* 200 with the reservation as it is now. */
static void respond_current(struct app *app, struct http_response *resp, struct db_conn *conn,
                            const char *id)
{
    const char *params[] = { id };
    int64_t ignored;
    json_t *body;
    PGresult *res = db_exec(conn, STMT_RESERVATION_GET, 1, params);
    if (res && db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1 &&
        (body = reservation_json(res, 0, &ignored)))
        http_respond_json(resp, 200, body);
    else
        api_db_failure(app, resp, res);
    PQclear(res);
}

/* Run a locked statement on a reservation ($1 the id, $2 the lock
 * budget): its result, or NULL after writing the failure into resp. */
static PGresult *run_locked(struct app *app, const struct http_request *req,
                            struct http_response *resp, struct db_conn *conn,
                            enum db_statement stmt, const char *id)
{
    char budget[DB_LOCK_BUDGET_SIZE];
    db_lock_budget(app->pool, &req->deadline, budget);
    const char *params[] = { id, budget };
    PGresult *res = db_exec(conn, stmt, 2, params);
    if (res && db_result_classify(res) == DB_RESULT_OK && PQntuples(res) == 1)
        return res;
    api_db_failure(app, resp, res);
    PQclear(res);
    return NULL;
}

void reservations_cancel(struct app *app, const struct http_request *req,
                         struct http_response *resp)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    PGresult *res = run_locked(app, req, resp, conn, STMT_CANCEL, id);
    struct cancel_row c;
    bool done = false;
    if (!res) {
        /* answered */
    } else if (cancel_row_decode(res, 0, &c) != 0) {
        api_db_failure(app, resp, NULL);
    } else if (strcmp(c.outcome, "reservation_not_found") == 0) {
        http_respond_error(resp, 404, "reservation_not_found", "no reservation with id %s", id);
    } else {
        /* already cancelled or expired: 200, unchanged */
        respond_current(app, resp, conn, id);
        done = true;
    }
    PQclear(res);
    /* with a key: the cancellation and its record commit together, or neither */
    if (api_release_effect(app, req, resp, conn) == 0 && done) {
        metrics_count_holds_expired(app->metrics, c.holds_expired);
        if (c.cancelled_now)
            metrics_count_cancellation(app->metrics);
    }
}

/* confirm's answer for an outcome other than confirmed. */
static void respond_unconfirmed(struct http_response *resp, const char *outcome, const char *id)
{
    if (strcmp(outcome, "reservation_not_found") == 0)
        http_respond_error(resp, 404, "reservation_not_found", "no reservation with id %s", id);
    else if (strcmp(outcome, "hold_expired") == 0)
        http_respond_error(resp, 409, "hold_expired",
                           "reservation %s was a hold that expired before it was confirmed", id);
    else
        http_respond_error(resp, 409, "reservation_cancelled", "reservation %s is cancelled", id);
}

/* With an Idempotency-Key the confirmation and its record are one
 * transaction, as a cancellation's. */
void reservations_confirm(struct app *app, const struct http_request *req,
                          struct http_response *resp)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    PGresult *res = run_locked(app, req, resp, conn, STMT_CONFIRM, id);
    struct confirm_row c;
    bool done = false;
    if (!res) {
        /* answered */
    } else if (confirm_row_decode(res, 0, &c) != 0) {
        api_db_failure(app, resp, NULL);
    } else {
        if (strcmp(c.outcome, "confirmed") == 0)
            respond_current(app, resp, conn, id); /* confirmed, now or before */
        else
            respond_unconfirmed(resp, c.outcome, id);
        done = true;
    }
    PQclear(res);
    if (api_release_effect(app, req, resp, conn) == 0 && done) {
        metrics_count_holds_expired(app->metrics, c.holds_expired);
        if (c.confirmed_now)
            metrics_count_hold_confirmed(app->metrics);
    }
}
