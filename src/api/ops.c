/* Operational routes: Prometheus metrics and the API documentation. */

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "statements.h"

/* Generated at build time from docs/ and third_party/swagger-ui/ (CMakeLists.txt). */
extern const char openapi_json[], api_html[], swagger_initializer_js[], swagger_ui_css[],
    swagger_ui_bundle_js[];
extern const size_t openapi_json_len, api_html_len, swagger_initializer_js_len, swagger_ui_css_len,
    swagger_ui_bundle_js_len;

/* The page may load only what this server serves: scripts and styles from
 * files (no inline script or style), images from this origin and CSS data:
 * URIs, fetches (Swagger UI's "Try it out") to this origin. Swagger UI needs
 * no more: the browser test (tests/browser) fails on any violation. */
#define DOCS_CSP                                                                     \
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " \
    "frame-ancestors 'none'"
_Static_assert(sizeof(DOCS_CSP) <= sizeof(((struct http_header *)0)->value),
               "DOCS_CSP does not fit a response header");

/* Swagger UI's files change only with its version, which the page's URLs
 * carry (?v=); the page and its start-up script are revalidated. */
#define CACHE_VENDORED "public, max-age=86400"
#define CACHE_OURS     "no-cache"

struct docs_file {
    const char *path; /* as in the route table */
    const char *data;
    const size_t *len;
    const char *type;
    const char *cache;
    bool page; /* an HTML document: send the CSP */
};

static const struct docs_file docs_files[] = {
    { "/api", api_html, &api_html_len, "text/html; charset=utf-8", CACHE_OURS, true },
    { "/api/swagger-initializer.js", swagger_initializer_js, &swagger_initializer_js_len,
      "text/javascript; charset=utf-8", CACHE_OURS, false },
    { "/api/swagger-ui.css", swagger_ui_css, &swagger_ui_css_len, "text/css; charset=utf-8",
      CACHE_VENDORED, false },
    { "/api/swagger-ui-bundle.js", swagger_ui_bundle_js, &swagger_ui_bundle_js_len,
      "text/javascript; charset=utf-8", CACHE_VENDORED, false },
};

/* The waiting lists' totals (sql/migrations/0005), over every event: true
 * whether or not a sweeper runs, and one small aggregate per scrape, one
 * at a time (a scrape while another reads shows the last figures).
 * /metrics answers whatever the database does: a connection not free
 * within METRICS_DB_WAIT_MS, or a failed read, leaves the last figures. */
#define METRICS_DB_WAIT_MS 100
static void read_waitlist_totals(struct app *app, const struct http_request *req)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += METRICS_DB_WAIT_MS * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    if (req->deadline.tv_sec < deadline.tv_sec ||
        (req->deadline.tv_sec == deadline.tv_sec && req->deadline.tv_nsec < deadline.tv_nsec))
        deadline = req->deadline;
    struct db_conn *conn;
    if (db_pool_acquire(app->pool, &deadline, DB_USE_ANY, &conn) != DB_OK)
        return;
    PGresult *res = db_exec(conn, STMT_WAITLIST_TOTALS, 0, NULL);
    struct waitlist_totals_row t;
    if (res && db_result_classify(res) == DB_RESULT_OK &&
        waitlist_totals_row_decode(res, 0, &t) == 0)
        metrics_set_waitlist_totals(app->metrics, (uint64_t)t.offered, (uint64_t)t.fulfilled,
                                    (uint64_t)t.expired);
    else
        log_warn("metrics: waiting-list totals: %s",
                 res ? PQresultErrorMessage(res) : "connection lost");
    PQclear(res);
    db_pool_release(app->pool, conn);
}

void ops_metrics(struct app *app, const struct http_request *req, struct http_response *resp)
{
    if (metrics_waitlist_read_begin(app->metrics)) {
        read_waitlist_totals(app, req);
        metrics_waitlist_read_end(app->metrics);
    }
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

/* Every documentation route: the file whose path was asked for. */
void ops_docs(struct app *app, const struct http_request *req, struct http_response *resp)
{
    (void)app;
    const struct docs_file *f = NULL;
    for (size_t i = 0; i < sizeof docs_files / sizeof docs_files[0]; i++)
        if (strcmp(req->path, docs_files[i].path) == 0)
            f = &docs_files[i];
    if (!f) { /* a route in routes.c without its file here */
        http_respond_error(resp, 404, "not_found", "no such document: %s", req->path);
        return;
    }
    if (http_response_add_header(resp, "Cache-Control", "%s", f->cache) < 0 ||
        http_response_add_header(resp, "X-Content-Type-Options", "nosniff") < 0 ||
        (f->page &&
         http_response_add_header(resp, "Content-Security-Policy", "%s", DOCS_CSP) < 0)) {
        http_respond_error(resp, 500, "internal_error", "too many response headers");
        return;
    }
    resp->status = 200;
    resp->raw = f->data;
    resp->raw_len = *f->len;
    resp->content_type = f->type;
}
