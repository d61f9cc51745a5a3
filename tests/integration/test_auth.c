/* Access control against the real server: the permission matrix, every
 * route by every kind of caller, generated from the permission table the
 * server enforces (auth_rules, src/api/auth.c) and checked against the
 * OpenAPI document's security; the same matrix under --auth jwt with the
 * test's own signed tokens (and expired, wrongly signed, alg none and
 * wrong-audience ones); e-mail privacy; a cross-user DELETE that changes
 * nothing; tokens stored only as SHA-256 and never logged; rotation;
 * --metrics-open; --auth off. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jwt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"
#include "harness.h"

#define HS_SECRET "a shared secret of at least 32 bytes, for HS256 tests"

static struct test_server srv;
static PGconn *db;

static int setup(void **state)
{
    (void)state;
    if (test_server_start(&srv, (const char *const[]){ "--log-level", "info", NULL }) != 0)
        return -1;
    db = test_db_connect(&srv);
    return PQstatus(db) == CONNECTION_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(db);
    return test_server_stop(&srv) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

struct user {
    long long id;
    char token[1024]; /* a reservd token, or a JWT */
};

static int seq;

static struct user sign_up(int port)
{
    char body[160];
    struct user u = { 0 };
    seq++;
    snprintf(body, sizeof(body), "{\"name\":\"U%d\",\"email\":\"u%d.%d@example.com\"}", seq, seq,
             (int)getpid());
    struct http_result r;
    assert_int_equal(http_call_as(port, "POST", "/users", NULL, NULL, body, &r), 0);
    assert_int_equal(r.status, 201);
    u.id = http_json_int(&r, "id");
    const char *t = json_string_value(json_object_get(r.json, "token"));
    if (t) /* only --auth token hands them out */
        snprintf(u.token, sizeof(u.token), "%s", t);
    http_result_free(&r);
    return u;
}

static long long new_event(int port)
{
    char body[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"E%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":50}",
             ++seq, (int)getpid());
    struct http_result r = test_call(port, "POST", "/events", body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    return id;
}

/* An event whose only ticket another user (not `user`) holds: its waiting
 * list takes `user`. */
static long long sold_out_event(int port, long long holder)
{
    char body[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"S%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":1}",
             ++seq, (int)getpid());
    struct http_result r = test_call(port, "POST", "/events", body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", id, holder);
    r = test_call(port, "POST", "/reservations", body, 201);
    http_result_free(&r);
    return id;
}

/* user's entry on a sold-out event's waiting list */
static long long new_waitlist_entry(int port, long long user, long long holder)
{
    char path[64];
    snprintf(path, sizeof(path), "/events/%lld/waitlist", sold_out_event(port, holder));
    char body[64];
    snprintf(body, sizeof(body), "{\"userId\":%lld}", user);
    struct http_result r = test_call(port, "POST", path, body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    return id;
}

static long long new_reservation(int port, long long user)
{
    char body[100];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", new_event(port), user);
    struct http_result r = test_call(port, "POST", "/reservations", body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    return id;
}

/* ---- the matrix ---- */

enum caller { NOBODY, MALFORMED, OTHER_USER, OWN, ADMIN, NCALLERS };
static const char *const caller_names[] = { "no token", "malformed", "another user's", "own",
                                            "admin" };

/* What the table says a caller gets: 0 for "allowed" (a 2xx), else the
 * refusal's status. */
static int expected(const struct auth_rule *rule, enum caller c, bool metrics_open)
{
    if (c == MALFORMED)
        return 401; /* a bad Authorization header is refused everywhere */
    if (rule->kind == AUTH_PUBLIC || (rule->kind == AUTH_METRICS && metrics_open) || c == ADMIN)
        return 0;
    if (c == NOBODY)
        return 401;
    switch (rule->kind) {
    case AUTH_SELF_PARAM:
    case AUTH_SELF_BODY:
    case AUTH_SELF_QUERY: return c == OWN ? 0 : 403;
    case AUTH_OWNER: return c == OWN ? 0 : 404; /* another's row: as if it did not exist */
    default: return 403;
    }
}

/* The world a route's request is made in: the owner (whose rows the path
 * names) and another user. */
struct world {
    int port;
    struct user owner, other;
    char admin[1024];
    const char *malformed;
};

/* A request for route that succeeds when allowed: path and body. */
static void make_request(struct world *w, const struct route *route, char *path, size_t plen,
                         char *body, size_t blen)
{
    const char *p = route->pattern;
    body[0] = '\0';
    if (strcmp(p, "/reservations/{id}/confirm") == 0)
        snprintf(path, plen, "/reservations/%lld/confirm", new_reservation(w->port, w->owner.id));
    else if (strcmp(p, "/events/{id}/waitlist") == 0)
        snprintf(path, plen, "/events/%lld/waitlist", sold_out_event(w->port, w->other.id));
    else if (strcmp(p, "/waitlist/{id}") == 0)
        snprintf(path, plen, "/waitlist/%lld",
                 new_waitlist_entry(w->port, w->owner.id, w->other.id));
    else if (strstr(p, "/reservations/{id}") || strcmp(p, "/reservation/{id}") == 0)
        snprintf(path, plen, "%s/%lld",
                 strcmp(p, "/reservation/{id}") == 0 ? "/reservation" : "/reservations",
                 new_reservation(w->port, w->owner.id));
    else if (strcmp(p, "/users/{id}/token") == 0)
        snprintf(path, plen, "/users/%lld/token", w->owner.id);
    else if (strstr(p, "/users/{id}") || strstr(p, "/user/{id}"))
        snprintf(path, plen, "%s/%lld", strstr(p, "/users") ? "/users" : "/user", w->owner.id);
    else if (strstr(p, "/events/{id}") || strstr(p, "/event/{id}"))
        snprintf(path, plen, "%s/%lld", strstr(p, "/events") ? "/events" : "/event",
                 new_event(w->port));
    else if (strcmp(p, "/reservation/{eventId}/{userId}") == 0)
        snprintf(path, plen, "/reservation/%lld/%lld", new_event(w->port), w->owner.id);
    else if (strcmp(p, "/reservations") == 0 && route->method == HTTP_GET)
        snprintf(path, plen, "/reservations?userId=%lld", w->owner.id);
    else
        snprintf(path, plen, "%s", p);
    if (route->method == HTTP_PATCH)
        snprintf(body, blen, "{\"location\":\"Elsewhere\"}");
    if (route->method != HTTP_POST || (route->flags & ROUTE_NO_BODY))
        return;
    seq++;
    if (strcmp(p, "/users") == 0 || strcmp(p, "/user") == 0)
        snprintf(body, blen, "{\"name\":\"M%d\",\"email\":\"m%d.%d@example.com\"}", seq, seq,
                 (int)getpid());
    else if (strcmp(p, "/events") == 0 || strcmp(p, "/event") == 0)
        snprintf(body, blen,
                 "{\"name\":\"M%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"X\","
                 "\"maxTickets\":5}",
                 ++seq, (int)getpid());
    else if (strcmp(p, "/reservations") == 0)
        snprintf(body, blen, "{\"eventId\":%lld,\"userId\":%lld}", new_event(w->port), w->owner.id);
    else if (strcmp(p, "/events/{id}/waitlist") == 0)
        snprintf(body, blen, "{\"userId\":%lld}", w->owner.id);
}

static const char *token_of(struct world *w, enum caller c)
{
    switch (c) {
    case MALFORMED: return w->malformed;
    case OTHER_USER: return w->other.token;
    case OWN: return w->owner.token;
    case ADMIN: return w->admin;
    default: return NULL;
    }
}

/* Every route by every caller; returns the number of cells checked. */
static int run_matrix(struct world *w, bool metrics_open)
{
    int cells = 0;
    for (size_t i = 0; i < app_nroutes; i++) {
        const struct route *route = &app_routes[i];
        const struct auth_rule *rule = auth_rule_find(route->name);
        assert_non_null(rule); /* the server refuses to start without one, too */
        /* own last: a token rotation replaces the owner's token */
        static const enum caller order[] = { NOBODY, MALFORMED, OTHER_USER, ADMIN, OWN };
        for (int k = 0; k < NCALLERS; k++) {
            enum caller c = order[k];
            char path[160], body[256];
            make_request(w, route, path, sizeof(path), body, sizeof(body));
            const char *token = token_of(w, c);
            char raw[1100];
            /* malformed: not "Bearer <token68>" */
            snprintf(raw, sizeof(raw), "Authorization: %s\r\n", token ? token : "");
            struct http_result r;
            int rc = c == MALFORMED
                         ? http_call_headers(w->port, http_method_name(route->method), path, raw,
                                             NULL, body[0] ? body : NULL, strlen(body), &r)
                         : http_call_as(w->port, http_method_name(route->method), path, token, NULL,
                                        body[0] ? body : NULL, &r);
            assert_int_equal(rc, 0);
            int want = expected(rule, c, metrics_open);
            bool ok = want ? r.status == want : r.status >= 200 && r.status < 300;
            if (!ok)
                fprintf(stderr, "%s %s as %s: got %d, want %d (%s)\n", route->name, path,
                        caller_names[c], r.status, want, r.body);
            assert_true(ok);
            if (want == 401) {
                char h[64];
                assert_non_null(http_result_header(&r, "WWW-Authenticate", h, sizeof(h)));
                assert_string_equal(http_error_code(&r), "unauthorized");
            }
            if (want == 403)
                assert_string_equal(http_error_code(&r), "forbidden");
            if (want == 404) {
                char code[48];
                snprintf(code, sizeof(code), "%s_not_found", rule->what);
                assert_string_equal(http_error_code(&r), code);
            }
            const char *rotated = json_string_value(json_object_get(r.json, "token"));
            if (rotated && strncmp(w->owner.token, "rsv_", 4) == 0 &&
                strcmp(route->name, "POST /users/{id}/token") == 0)
                snprintf(w->owner.token, sizeof(w->owner.token), "%s", rotated);
            http_result_free(&r);
            cells++;
        }
    }
    return cells;
}

static struct world token_world(int port)
{
    struct world w = { .port = port, .malformed = "Basic dXNlcjpwYXNz" };
    w.owner = sign_up(port);
    w.other = sign_up(port);
    snprintf(w.admin, sizeof(w.admin), "%s", test_admin_token());
    return w;
}

static void permission_matrix(void **state)
{
    (void)state;
    struct world w = token_world(srv.port);
    int cells = run_matrix(&w, false);
    fprintf(stderr, "permission matrix: %zu routes x %d callers = %d cells\n", app_nroutes,
            NCALLERS, cells);
    assert_int_equal(cells, (int)app_nroutes * NCALLERS);
}

/* The spec's rows, so that a wrong table cannot pass the matrix. */
static void table_says_what_the_issue_says(void **state)
{
    (void)state;
    static const struct {
        const char *route;
        enum auth_rule_kind kind;
    } rows[] = {
        { "GET /events", AUTH_PUBLIC },
        { "GET /events/{id}", AUTH_PUBLIC },
        { "GET /livez", AUTH_PUBLIC },
        { "GET /readyz", AUTH_PUBLIC },
        { "GET /api", AUTH_PUBLIC },
        { "GET /api/openapi.json", AUTH_PUBLIC },
        { "POST /users", AUTH_PUBLIC },
        { "GET /users/{id}", AUTH_SELF_PARAM },
        { "POST /reservations", AUTH_SELF_BODY },
        { "GET /reservations", AUTH_SELF_QUERY },
        { "GET /reservations/{id}", AUTH_OWNER },
        { "DELETE /reservations/{id}", AUTH_OWNER },
        { "POST /events", AUTH_ADMIN },
        { "GET /users", AUTH_ADMIN },
        { "GET /metrics", AUTH_METRICS },
        { "POST /reservation/{eventId}/{userId}", AUTH_SELF_PARAM },
        { "PATCH /events/{id}", AUTH_ADMIN },
        { "POST /reservations/{id}/confirm", AUTH_OWNER },
        { "POST /events/{id}/waitlist", AUTH_SELF_BODY },
        { "GET /events/{id}/waitlist", AUTH_PUBLIC },
        { "GET /waitlist/{id}", AUTH_OWNER },
        { "DELETE /waitlist/{id}", AUTH_OWNER },
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct auth_rule *r = auth_rule_find(rows[i].route);
        assert_non_null(r);
        assert_int_equal(r->kind, rows[i].kind);
    }
    assert_int_equal(auth_rule_find("POST /reservation/{eventId}/{userId}")->param, 1);
    assert_string_equal(auth_rule_find("GET /waitlist/{id}")->what, "waitlist_entry");
}

/* docs/openapi.json: every operation's x-reservd-permission is its route's
 * rule, and its security is empty exactly when the rule is public. */
static void openapi_agrees_with_the_table(void **state)
{
    (void)state;
    static const char *const kinds[] = {
        [AUTH_PUBLIC] = "public",       [AUTH_METRICS] = "metrics",
        [AUTH_ADMIN] = "admin",         [AUTH_SELF_PARAM] = "self-path",
        [AUTH_SELF_BODY] = "self-body", [AUTH_SELF_QUERY] = "self-query",
        [AUTH_OWNER] = "owner",
    };
    json_error_t e;
    json_t *doc = json_load_file(RESERVD_OPENAPI, 0, &e);
    assert_non_null(doc);
    json_t *paths = json_object_get(doc, "paths");
    int ops = 0;
    for (size_t i = 0; i < app_nroutes; i++) {
        const struct route *route = &app_routes[i];
        char method[8];
        snprintf(method, sizeof(method), "%s", http_method_name(route->method));
        for (char *m = method; *m; m++)
            *m = (char)(*m - 'A' + 'a');
        json_t *op = json_object_get(json_object_get(paths, route->pattern), method);
        if (!op)
            fprintf(stderr, "no operation for %s in the OpenAPI document\n", route->name);
        assert_non_null(op);
        const struct auth_rule *rule = auth_rule_find(route->name);
        const char *perm = json_string_value(json_object_get(op, "x-reservd-permission"));
        if (!perm || strcmp(perm, kinds[rule->kind]) != 0)
            fprintf(stderr, "%s: document says %s, table %s\n", route->name, perm ? perm : "-",
                    kinds[rule->kind]);
        assert_non_null(perm);
        assert_string_equal(perm, kinds[rule->kind]);
        json_t *security = json_object_get(op, "security");
        assert_true(json_is_array(security));
        assert_int_equal(json_array_size(security) == 0, rule->kind == AUTH_PUBLIC);
        if (rule->kind != AUTH_PUBLIC)
            assert_non_null(json_object_get(json_object_get(op, "responses"), "401"));
        ops++;
    }
    size_t documented = 0;
    const char *key;
    json_t *item;
    json_object_foreach(paths, key, item) documented += json_object_size(item);
    assert_int_equal(ops, (int)documented); /* and no operation the server lacks */
    json_decref(doc);
}

/* ---- privacy and ownership ---- */

static void emails_only_for_the_user_and_admins(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port), b = sign_up(srv.port);
    char path[64];
    snprintf(path, sizeof(path), "/users/%lld", a.id);
    struct http_result r;
    assert_int_equal(http_call_as(srv.port, "GET", path, b.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    assert_null(strstr(r.body, "@example.com"));
    http_result_free(&r);
    assert_int_equal(http_call_as(srv.port, "GET", path, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    assert_null(strstr(r.body, "@example.com"));
    http_result_free(&r);
    for (int i = 0; i < 2; i++) { /* the listing: nobody and a user are refused */
        assert_int_equal(
            http_call_as(srv.port, "GET", "/users", i ? b.token : NULL, NULL, NULL, &r), 0);
        assert_int_equal(r.status, i ? 403 : 401);
        assert_null(strstr(r.body, "@example.com"));
        http_result_free(&r);
    }
    assert_int_equal(http_call_as(srv.port, "GET", path, a.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(json_string_value(json_object_get(r.json, "email")));
    http_result_free(&r);
    r = test_call(srv.port, "GET", path, NULL, 200); /* admin */
    assert_non_null(json_string_value(json_object_get(r.json, "email")));
    http_result_free(&r);
}

static void cross_user_delete_changes_nothing(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port), b = sign_up(srv.port);
    long long id = new_reservation(srv.port, a.id);
    char path[64], sql[200];
    snprintf(path, sizeof(path), "/reservations/%lld", id);
    snprintf(sql, sizeof(sql),
             "SELECT (r.status = 'RESERVED')::int + 10 * e.reserved_tickets FROM reservations r "
             "JOIN events e ON e.id = r.event_id WHERE r.id = %lld",
             id);
    assert_int_equal(test_db_scalar(db, sql), 11);
    struct http_result r;
    assert_int_equal(http_call_as(srv.port, "DELETE", path, b.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 404); /* as if it did not exist */
    assert_string_equal(http_error_code(&r), "reservation_not_found");
    http_result_free(&r);
    /* b's listing never shows a's reservation, even when asked by event */
    snprintf(path, sizeof(path), "/reservations?userId=%lld", a.id);
    assert_int_equal(http_call_as(srv.port, "GET", path, b.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 403);
    http_result_free(&r);
    assert_int_equal(http_call_as(srv.port, "GET", "/reservations", b.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    http_result_free(&r);
    assert_int_equal(test_db_scalar(db, sql), 11); /* still reserved, counter unchanged */
    snprintf(path, sizeof(path), "/reservations/%lld", id);
    assert_int_equal(http_call_as(srv.port, "DELETE", path, a.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    assert_int_equal(test_db_scalar(db, sql), 0);
}

/* GET /reservations with a user's token is forced to their own userId and
 * still filters by ?status=: a hold and a confirmed reservation of theirs,
 * another user's hold beside them. */
static void own_listing_keeps_the_status_filter(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port), b = sign_up(srv.port);
    long long ev = new_event(srv.port), held = 0, final = new_reservation(srv.port, a.id);
    char body[120];
    const struct user *holders[] = { &a, &b };
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"hold\":true}", ev,
                 holders[i]->id);
        struct http_result r = test_call(srv.port, "POST", "/reservations", body, 201);
        if (i == 0)
            held = http_json_int(&r, "id");
        http_result_free(&r);
    }
    static const char *const statuses[] = { "HELD", "RESERVED", "CANCELLED" };
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/reservations?status=%s", statuses[i]);
        struct http_result r;
        assert_int_equal(http_call_as(srv.port, "GET", path, a.token, NULL, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        json_t *items = json_object_get(r.json, "items");
        assert_int_equal(json_array_size(items), i == 2 ? 0 : 1);
        if (i < 2) {
            json_t *item = json_array_get(items, 0);
            assert_int_equal(json_integer_value(json_object_get(item, "id")),
                             i == 0 ? held : final);
            assert_int_equal(json_integer_value(json_object_get(item, "userId")), a.id);
            assert_string_equal(json_string_value(json_object_get(item, "status")), statuses[i]);
        }
        http_result_free(&r);
    }
}

/* The database keeps only SHA-256; the log never shows a token; a new
 * token ends the old one. */
static void tokens_hashed_rotated_never_logged(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port);
    assert_int_equal(strncmp(a.token, "rsv_", 4), 0);
    char digest[AUTH_SHA256_SIZE], sql[200], path[64];
    auth_sha256_hex(a.token, strlen(a.token), digest);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM user_tokens WHERE user_id = %lld AND "
             "token_sha256 = '%s'",
             a.id, digest);
    assert_int_equal(test_db_scalar(db, sql), 1);
    snprintf(path, sizeof(path), "/users/%lld/token", a.id);
    struct http_result r;
    assert_int_equal(http_call_as(srv.port, "POST", path, a.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    char fresh[AUTH_TOKEN_SIZE];
    snprintf(fresh, sizeof(fresh), "%s", json_string_value(json_object_get(r.json, "token")));
    http_result_free(&r);
    assert_string_not_equal(fresh, a.token);
    snprintf(path, sizeof(path), "/users/%lld", a.id);
    assert_int_equal(http_call_as(srv.port, "GET", path, a.token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401); /* the old one is gone */
    http_result_free(&r);
    assert_int_equal(http_call_as(srv.port, "GET", path, fresh, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    /* the info log has every request line, and no token */
    FILE *f = fopen(srv.log_path, "r");
    assert_non_null(f);
    char line[2048];
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        lines++;
        assert_null(strstr(line, "rsv_"));
        assert_null(strstr(line, test_admin_token()));
    }
    fclose(f);
    assert_true(lines > 10);
}

/* ---- other modes ---- */

static void metrics_open_and_auth_off(void **state)
{
    (void)state;
    struct test_server s;
    assert_int_equal(test_server_start(&s, (const char *const[]){ "--metrics-open", NULL }), 0);
    struct http_result r;
    assert_int_equal(http_call_as(s.port, "GET", "/metrics", NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    assert_int_equal(http_call_as(s.port, "GET", "/users", NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    http_result_free(&r);
    assert_int_equal(test_server_stop(&s), 0);

    assert_int_equal(test_server_start(&s, (const char *const[]){ "--auth", "off", NULL }), 0);
    assert_int_equal(http_call_as(s.port, "GET", "/readyz", NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "auth")), "off");
    assert_non_null(json_string_value(json_object_get(r.json, "warning")));
    http_result_free(&r);
    /* the original app's routes work as they did: no token anywhere */
    struct user u = sign_up(s.port);
    assert_int_equal(http_call_as(s.port, "POST", "/event", NULL, NULL,
                                  "{\"name\":\"Open\",\"date\":\"2027-01-01T10:00:00Z\","
                                  "\"location\":\"X\",\"maxTickets\":1}",
                                  &r),
                     0);
    assert_int_equal(r.status, 201);
    long long ev = http_json_int(&r, "id");
    http_result_free(&r);
    char path[80];
    snprintf(path, sizeof(path), "/reservation/%lld/%lld", ev, u.id);
    assert_int_equal(http_call_as(s.port, "POST", path, NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    FILE *f = fopen(s.log_path, "r");
    char line[1024];
    int warned = 0;
    while (f && fgets(line, sizeof(line), f))
        warned += strstr(line, "access control is OFF") != NULL;
    if (f)
        fclose(f);
    assert_int_equal(warned, 1);
    assert_int_equal(test_server_stop(&s), 0);
}

/* ---- --auth jwt ---- */

static char *sign(jwt_alg_t alg, const char *key, long long sub, bool admin, long exp_in,
                  const char *aud)
{
    jwt_t *jwt;
    assert_int_equal(jwt_new(&jwt), 0);
    char s[24];
    snprintf(s, sizeof(s), "%lld", sub);
    if (sub)
        jwt_add_grant(jwt, "sub", s);
    jwt_add_grant(jwt, "iss", "reservd-tests");
    if (aud)
        jwt_add_grant(jwt, "aud", aud);
    if (exp_in)
        jwt_add_grant_int(jwt, "exp", (long)time(NULL) + exp_in);
    if (admin)
        jwt_add_grants_json(jwt, "{\"roles\":[\"reader\",\"reservd-admin\"]}");
    assert_int_equal(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

/* "alg": "none", unsigned. */
static char *alg_none(long long sub)
{
    jwt_t *jwt;
    char s[24];
    snprintf(s, sizeof(s), "%lld", sub);
    assert_int_equal(jwt_new(&jwt), 0);
    jwt_add_grant(jwt, "sub", s);
    jwt_add_grant(jwt, "iss", "reservd-tests");
    jwt_add_grant(jwt, "aud", "reservd");
    jwt_add_grant_int(jwt, "exp", (long)time(NULL) + 600);
    char *t = jwt_encode_str(jwt); /* libjwt: no key, alg none */
    jwt_free(jwt);
    assert_non_null(t);
    return t;
}

static void jwt_matrix_and_bad_tokens(void **state)
{
    (void)state;
    char keyfile[] = "/tmp/reservd-jwt-XXXXXX";
    int fd = mkstemp(keyfile);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, HS_SECRET "\n", strlen(HS_SECRET) + 1),
                     (ssize_t)strlen(HS_SECRET) + 1);
    close(fd);
    struct test_server s;
    assert_int_equal(
        test_server_start(&s, (const char *const[]){ "--auth", "jwt", "--jwt-key-file", keyfile,
                                                     "--jwt-audience", "reservd", "--jwt-issuer",
                                                     "reservd-tests", NULL }),
        0);
    /* users signed up in jwt mode get no reservd token; their JWT names them */
    struct world w = { .port = s.port, .malformed = "Bearer not a jwt" };
    char *admin = sign(JWT_ALG_HS256, HS_SECRET, 0, true, 600, "reservd");
    snprintf(w.admin, sizeof(w.admin), "%s", admin);
    /* the harness's own calls (test_call) keep its admin token: admin
     * tokens are accepted in every mode */
    struct http_result r;
    w.owner = sign_up(s.port);
    w.other = sign_up(s.port);
    char *own = sign(JWT_ALG_HS256, HS_SECRET, w.owner.id, false, 600, "reservd");
    char *other = sign(JWT_ALG_HS256, HS_SECRET, w.other.id, false, 600, "reservd");
    snprintf(w.owner.token, sizeof(w.owner.token), "%s", own);
    snprintf(w.other.token, sizeof(w.other.token), "%s", other);
    char path[64];
    snprintf(path, sizeof(path), "/users/%lld", w.owner.id);
    const struct {
        const char *what;
        char *token;
    } bad[] = {
        { "expired", sign(JWT_ALG_HS256, HS_SECRET, w.owner.id, false, -60, "reservd") },
        { "wrong signature", sign(JWT_ALG_HS256, "another secret, 32 bytes long or more",
                                  w.owner.id, false, 600, "reservd") },
        { "alg none", alg_none(w.owner.id) },
        { "wrong audience", sign(JWT_ALG_HS256, HS_SECRET, w.owner.id, false, 600, "someone") },
        { "no exp", sign(JWT_ALG_HS256, HS_SECRET, w.owner.id, false, 0, "reservd") },
        { "HS512 instead", sign(JWT_ALG_HS512, HS_SECRET, w.owner.id, false, 600, "reservd") },
    };
    /* every route refuses each of them (a public one too: a token that
     * fails verification is 401 wherever it is sent) */
    int refusals = 0;
    for (size_t k = 0; k < app_nroutes; k++) {
        const struct route *route = &app_routes[k];
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char rpath[160], body[256];
            make_request(&w, route, rpath, sizeof(rpath), body, sizeof(body));
            assert_int_equal(http_call_as(s.port, http_method_name(route->method), rpath,
                                          bad[i].token, NULL, body[0] ? body : NULL, &r),
                             0);
            if (r.status != 401)
                fprintf(stderr, "jwt %s on %s: %d %s\n", bad[i].what, route->name, r.status,
                        r.body);
            assert_int_equal(r.status, 401);
            assert_string_equal(http_error_code(&r), "unauthorized");
            http_result_free(&r);
            refusals++;
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        free(bad[i].token);
    /* the same token, well made, is accepted: the refusals were the flaws */
    assert_int_equal(http_call_as(s.port, "GET", path, own, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    int cells = run_matrix(&w, false);
    fprintf(stderr, "jwt permission matrix: %d cells; %d refusals of %zu bad tokens\n", cells,
            refusals, sizeof(bad) / sizeof(bad[0]));
    free(admin);
    free(own);
    free(other);
    assert_int_equal(test_server_stop(&s), 0);
    unlink(keyfile);
}

/* Exit 2 and the setting named, before anything opens. */
static void bad_settings_stop_the_start(void **state)
{
    (void)state;
    static const struct {
        const char *args, *says;
    } cases[] = {
        { "--auth bogus", "--auth" },
        { "--auth jwt", "--jwt-key-file" },
        { "--auth jwt --jwt-key-file /nonexistent/key.pem", "/nonexistent/key.pem" },
        { "--admin-tokens short", "at least 16" },
        { "--admin-token-file /nonexistent/tokens", "/nonexistent/tokens" },
        { "--jwt-alg none", "--jwt-alg" },
        { "--idempotency-ttl 0", "--idempotency-ttl" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[512], out[2048] = "";
        snprintf(cmd, sizeof(cmd), "'%s' --database-url postgresql://127.0.0.1:1/x %s 2>&1",
                 test_binary("RESERVD_BIN"), cases[i].args);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = '\0';
        int status = pclose(p);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 2 || !strstr(out, cases[i].says))
            fprintf(stderr, "%s: status %d, said: %s\n", cases[i].args, status, out);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        assert_non_null(strstr(out, cases[i].says));
    }
}

/* ES256 with a PEM public key: a token signed by the private key is
 * accepted; an HS256 token keyed with the public key's text (the classic
 * algorithm confusion) and an RS256 one are not. */
static void jwt_es256_public_key(void **state)
{
    (void)state;
    char dir[] = "/tmp/reservd-es256-XXXXXX", cmd[512], priv[96], pub[96];
    assert_non_null(mkdtemp(dir));
    snprintf(priv, sizeof(priv), "%s/key.pem", dir);
    snprintf(pub, sizeof(pub), "%s/pub.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl ecparam -name prime256v1 -genkey -noout -out %s 2>/dev/null && "
             "openssl ec -in %s -pubout -out %s 2>/dev/null",
             priv, priv, pub);
    assert_int_equal(system(cmd), 0);
    char key[4096] = "", pubkey[4096] = "";
    FILE *f = fopen(priv, "r");
    assert_non_null(f);
    assert_true(fread(key, 1, sizeof(key) - 1, f) > 0);
    fclose(f);
    f = fopen(pub, "r");
    assert_non_null(f);
    assert_true(fread(pubkey, 1, sizeof(pubkey) - 1, f) > 0);
    fclose(f);
    struct test_server s;
    assert_int_equal(
        test_server_start(&s, (const char *const[]){ "--auth", "jwt", "--jwt-alg", "ES256",
                                                     "--jwt-key-file", pub, NULL }),
        0);
    struct user u = sign_up(s.port);
    char path[64];
    snprintf(path, sizeof(path), "/users/%lld", u.id);
    char *good = sign(JWT_ALG_ES256, key, u.id, false, 600, NULL);
    char *confused = sign(JWT_ALG_HS256, pubkey, u.id, false, 600, NULL);
    struct http_result r;
    assert_int_equal(http_call_as(s.port, "GET", path, good, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    assert_int_equal(http_call_as(s.port, "GET", path, confused, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 401);
    http_result_free(&r);
    free(good);
    free(confused);
    assert_int_equal(test_server_stop(&s), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_says_what_the_issue_says),
        cmocka_unit_test(openapi_agrees_with_the_table),
        cmocka_unit_test(permission_matrix),
        cmocka_unit_test(emails_only_for_the_user_and_admins),
        cmocka_unit_test(cross_user_delete_changes_nothing),
        cmocka_unit_test(own_listing_keeps_the_status_filter),
        cmocka_unit_test(tokens_hashed_rotated_never_logged),
        cmocka_unit_test(metrics_open_and_auth_off),
        cmocka_unit_test(jwt_matrix_and_bad_tokens),
        cmocka_unit_test(jwt_es256_public_key),
        cmocka_unit_test(bad_settings_stop_the_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
