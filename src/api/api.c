/* Helpers shared by the handlers: pooled connections, failures, JSON. */

#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "idempotency.h"
#include "log.h"
#include "metrics.h"
#include "timefmt.h"
#include "validate.h"

void api_busy(struct http_response *resp)
{
    http_respond_error(resp, 503, "busy", "the server is busy; retry shortly");
    if (http_response_add_header(resp, "Retry-After", "1") != 0)
        log_error("no room for the Retry-After header");
}

struct db_conn *api_acquire(struct app *app, const struct http_request *req,
                            struct http_response *resp)
{
    struct db_conn *conn;
    switch (db_pool_acquire(app->pool, &req->deadline, DB_USE_ANY, &conn)) {
    case DB_OK: return conn;
    case DB_BUSY: api_busy(resp); return NULL;
    default:
        http_respond_error(resp, 503, "unavailable", "the database is unavailable");
        return NULL;
    }
}

void api_release(struct app *app, struct db_conn *conn)
{
    db_pool_release(app->pool, conn);
}

struct db_conn *api_acquire_effect(struct app *app, const struct http_request *req,
                                   struct http_response *resp)
{
    struct idempotency_ref key;
    struct db_conn *conn = api_acquire(app, req, resp);
    if (conn && idempotency_ref(req, &key) == 0 && db_command(conn, "BEGIN") != 0) {
        api_db_failure(app, resp, NULL);
        api_release(app, conn);
        return NULL;
    }
    return conn;
}

int api_release_effect(struct app *app, const struct http_request *req, struct http_response *resp,
                       struct db_conn *conn)
{
    int rc = idempotency_commit(app, conn, req, resp); /* nothing without a key */
    api_release(app, conn);
    return rc;
}

void api_db_failure(struct app *app, struct http_response *resp, const PGresult *res)
{
    if (res && db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT) {
        api_busy(resp);
        return;
    }
    /* The details go to the log, never to the client. */
    metrics_count_db_error(app->metrics);
    log_error("database error: %s", res ? PQresultErrorMessage(res) : "connection lost");
    http_respond_error(resp, 503, "unavailable", "the database is unavailable");
}

json_t *api_time_json(int64_t ms)
{
    char buf[TIMEFMT_BUFSIZE];
    if (timefmt_format_ms(ms, buf) != 0)
        return json_null();
    return json_string(buf);
}

/* A row that does not decode: the statement and its declared columns
 * disagree (the statements test would have said so). */
static void bad_row(struct app *app, struct http_response *resp)
{
    metrics_count_db_error(app->metrics);
    log_error("database error: a result row does not have its statement's columns");
    http_respond_error(resp, 503, "unavailable", "the database is unavailable");
}

int api_page_params(const struct http_request *req, struct http_response *resp,
                    struct api_page *page)
{
    char msg[VALIDATE_MSG_SIZE];
    int64_t after;
    if (validate_query_int(req, "limit", 1, 1000, 100, &page->limit, msg) != 0 ||
        validate_query_int(req, "after", 0, INT64_MAX, 0, &after, msg) != 0) {
        validate_fail(resp, msg);
        return -1;
    }
    snprintf(page->after, sizeof(page->after), "%lld", (long long)after);
    snprintf(page->fetch, sizeof(page->fetch), "%lld", (long long)page->limit + 1);
    return 0;
}

static void respond_row(struct app *app, struct http_response *resp, int status, json_t *body)
{
    if (body)
        http_respond_json(resp, status, body);
    else
        bad_row(app, resp);
}

void api_get_by_id(struct app *app, const struct http_request *req, struct http_response *resp,
                   enum db_statement stmt, api_row_fn row, const char *what)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire(app, req, resp);
    if (!conn)
        return;
    const char *params[] = { id };
    PGresult *res = db_exec(conn, stmt, 1, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK)
        api_db_failure(app, resp, res);
    else if (PQntuples(res) == 0) {
        char code[48];
        snprintf(code, sizeof(code), "%s_not_found", what);
        http_respond_error(resp, 404, code, "no %s with id %s", what, id);
    } else
        respond_row(app, resp, 200, row(res, 0, &(int64_t){ 0 }));
    PQclear(res);
    api_release(app, conn);
}

void api_list(struct app *app, const struct http_request *req, struct http_response *resp,
              enum db_statement stmt, int nparams, const char *const *params, int64_t limit,
              api_row_fn row)
{
    struct db_conn *conn = api_acquire(app, req, resp);
    if (!conn)
        return;
    PGresult *res = db_exec(conn, stmt, nparams, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK) {
        api_db_failure(app, resp, res);
    } else {
        /* The extra row beyond limit only says another page exists. */
        int n = PQntuples(res), shown = n > limit ? (int)limit : n;
        int64_t last = 0;
        json_t *items = json_array(), *item = NULL;
        for (int i = 0; items && i < shown; i++)
            if (!(item = row(res, i, &last)) || json_array_append_new(items, item) != 0) {
                json_decref(items);
                items = NULL;
            }
        json_t *body = NULL;
        if (items)
            body = json_pack("{s:o, s:o}", "items", items, "nextAfter",
                             n > limit ? json_integer(last) : json_null());
        respond_row(app, resp, 200, body);
    }
    PQclear(res);
    api_release(app, conn);
}

void api_created(struct http_response *resp, json_t *body, const char *prefix, int64_t id)
{
    http_respond_json(resp, 201, body);
    if (http_response_add_header(resp, "Location", "%s/%lld", prefix, (long long)id) != 0)
        log_error("no room for the Location header");
}

void api_insert(struct app *app, const struct http_request *req, struct http_response *resp,
                enum db_statement stmt, int nparams, const char *const *params, api_row_fn row,
                const char *prefix, const char *conflict_code, const char *conflict_message)
{
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    PGresult *res = db_exec(conn, stmt, nparams, params);
    enum db_result r = res ? db_result_classify(res) : DB_RESULT_FAILED;
    int64_t id = 0;
    json_t *body = r == DB_RESULT_OK ? row(res, 0, &id) : NULL;
    if (body)
        api_created(resp, body, prefix, id);
    else if (r == DB_RESULT_OK)
        bad_row(app, resp);
    else if (r == DB_RESULT_UNIQUE_VIOLATION)
        http_respond_error(resp, 409, conflict_code, "%s", conflict_message);
    else
        api_db_failure(app, resp, res);
    PQclear(res);
    api_release_effect(app, req, resp, conn);
}
