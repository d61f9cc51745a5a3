/* Operational routes: Prometheus metrics and the API documentation. */

#include <stdbool.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "metrics.h"

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
