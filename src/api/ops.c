/* Operational routes: Prometheus metrics and the API documentation. */

#include <string.h>

#include "api.h"
#include "db.h"
#include "metrics.h"

extern const char openapi_json[];        /* generated from docs/openapi.json */
extern const size_t openapi_json_len;
extern const char api_html[];            /* generated from docs/api.html */
extern const size_t api_html_len;

void ops_metrics(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)req;
    struct db_pool_stats pool;
    size_t len;
    db_pool_stats(app->pool, &pool);
    char *text = metrics_render(app->metrics, &pool, &len);
    if (!text) {
        http_respond_error(resp, 500, "internal_error", "out of memory");
        return;
    }
    resp->status = 200;
    resp->owned_raw = text;
    resp->raw_len = len;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void ops_openapi(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)app;
    (void)req;
    resp->status = 200;
    resp->raw = openapi_json;
    resp->raw_len = openapi_json_len;
}

void ops_docs(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)app;
    (void)req;
    resp->status = 200;
    resp->raw = api_html;
    resp->raw_len = api_html_len;
    resp->content_type = "text/html; charset=utf-8";
}
