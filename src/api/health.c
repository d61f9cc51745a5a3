/* Liveness and readiness probes. */

#include "api.h"
#include "auth.h"
#include "db.h"

void health_livez(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)app;
    (void)req;
    http_respond_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

void health_readyz(struct app *app, const struct http_request *req, struct http_response *resp)
{
    /* Asked nothing of the database: a load balancer must see this at once. */
    if (req->server_leaving) {
        http_respond_error(resp, 503, "draining",
                           "the server is shutting down; send new requests elsewhere");
        return;
    }
    struct db_conn *conn = api_acquire(app, req, resp);
    if (!conn) {
        resp->status = 503;
        return;
    }
    PGresult *res = db_exec(conn, STMT_PING, 0, NULL);
    if (res && db_result_classify(res) == DB_RESULT_OK && auth_is_off(app->auth))
        http_respond_json(resp, 200,
                          json_pack("{s:s, s:s, s:s}", "status", "ready", "auth", "off", "warning",
                                    "access control is off (--auth off): anyone may do anything"));
    else if (res && db_result_classify(res) == DB_RESULT_OK)
        http_respond_json(resp, 200, json_pack("{s:s, s:s}", "status", "ready", "auth", "on"));
    else
        http_respond_error(resp, 503, "unavailable", "the database does not answer");
    PQclear(res);
    api_release(app, conn);
}
