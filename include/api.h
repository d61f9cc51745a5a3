#ifndef RESERVD_API_H
#define RESERVD_API_H

/* The API handlers: plain functions from a parsed request to a response.
 * They never see libmicrohttpd, so they can run on any thread. */

#include <jansson.h>
#include <libpq-fe.h>

#include "app.h"
#include "db.h"
#include "http.h"

struct db_conn;

/* health.c */
void health_livez(struct app *app, const struct http_request *req, struct http_response *resp);
void health_readyz(struct app *app, const struct http_request *req, struct http_response *resp);

/* ops.c */
void ops_metrics(struct app *app, const struct http_request *req, struct http_response *resp);
void ops_openapi(struct app *app, const struct http_request *req, struct http_response *resp);
void ops_docs(struct app *app, const struct http_request *req, struct http_response *resp);

/* users.c */
void users_create(struct app *app, const struct http_request *req, struct http_response *resp);
void users_get(struct app *app, const struct http_request *req, struct http_response *resp);
void users_list(struct app *app, const struct http_request *req, struct http_response *resp);
void users_token(struct app *app, const struct http_request *req, struct http_response *resp);

/* events.c */
void events_create(struct app *app, const struct http_request *req, struct http_response *resp);
void events_get(struct app *app, const struct http_request *req, struct http_response *resp);
void events_list(struct app *app, const struct http_request *req, struct http_response *resp);
void events_update(struct app *app, const struct http_request *req, struct http_response *resp);

/* reservations.c */
void reservations_create(struct app *app, const struct http_request *req,
                         struct http_response *resp);
void reservations_create_compat(struct app *app, const struct http_request *req,
                                struct http_response *resp);
void reservations_get(struct app *app, const struct http_request *req, struct http_response *resp);
void reservations_list(struct app *app, const struct http_request *req, struct http_response *resp);
void reservations_cancel(struct app *app, const struct http_request *req,
                         struct http_response *resp);
void reservations_confirm(struct app *app, const struct http_request *req,
                          struct http_response *resp);

/* waitlist.c */
void waitlist_join(struct app *app, const struct http_request *req, struct http_response *resp);
void waitlist_list(struct app *app, const struct http_request *req, struct http_response *resp);
void waitlist_get(struct app *app, const struct http_request *req, struct http_response *resp);
void waitlist_leave(struct app *app, const struct http_request *req, struct http_response *resp);

/* api.c: helpers shared by the handlers. */

/* Acquire a pooled connection by the request's deadline, or write
 * 503 busy / 503 unavailable into resp and return NULL. */
struct db_conn *api_acquire(struct app *app, const struct http_request *req,
                            struct http_response *resp);
void api_release(struct app *app, struct db_conn *conn);
/* The same for a handler that changes something (a POST, PATCH or
 * DELETE). With an Idempotency-Key the change and the key's record are
 * one transaction, begun here and ended by api_release_effect
 * (idempotency_commit): a crash never leaves one without the other, and
 * of two requests under one key on two instances only one takes effect. */
struct db_conn *api_acquire_effect(struct app *app, const struct http_request *req,
                                   struct http_response *resp);
/* 0 when the change stands (or there was no key: the handler's own
 * statements decided), -1 when it was rolled back. */
int api_release_effect(struct app *app, const struct http_request *req, struct http_response *resp,
                       struct db_conn *conn);

/* Write the 503 for a failed query (busy for lock timeouts). */
void api_db_failure(struct app *app, struct http_response *resp, const PGresult *res);
void api_busy(struct http_response *resp);

/* Epoch milliseconds as an RFC 3339 string (null if out of range). */
json_t *api_time_json(int64_t ms);

/* A list's keyset page: limit and after from the query, as numbers and as
 * statement parameters (fetch = limit + 1: the extra row says "more"). */
struct api_page {
    int64_t limit;
    char after[24];
    char fetch[24];
};

/* Parse limit/after for a list; writes 400 and returns -1 on bad input. */
int api_page_params(const struct http_request *req, struct http_response *resp,
                    struct api_page *page);

/* Turns one result row into the API's JSON object (caller owns it) and
 * its id into *id, through the statement's decoder (statements.h); NULL
 * when the row does not decode. */
typedef json_t *(*api_row_fn)(const PGresult *res, int row, int64_t *id);

/* Run a lookup by the path's first ID: 200 with the row, or 404
 * "<what>_not_found". */
void api_get_by_id(struct app *app, const struct http_request *req, struct http_response *resp,
                   enum db_statement stmt, api_row_fn row, const char *what);

/* Run a list statement that returns up to limit + 1 rows, and answer
 * with one page (nextAfter: the last shown row's id). */
void api_list(struct app *app, const struct http_request *req, struct http_response *resp,
              enum db_statement stmt, int nparams, const char *const *params, int64_t limit,
              api_row_fn row);

/* Run an INSERT ... RETURNING: 201 with the row and Location prefix/id,
 * or 409 conflict_code when a unique index refuses it. */
void api_insert(struct app *app, const struct http_request *req, struct http_response *resp,
                enum db_statement stmt, int nparams, const char *const *params, api_row_fn row,
                const char *prefix, const char *conflict_code, const char *conflict_message);

/* 201 with Location: prefix/id. */
void api_created(struct http_response *resp, json_t *body, const char *prefix, int64_t id);

#endif
