/* Access control: who sent a request and what each route allows. The
 * permission table below is the one place that says it; the server's gate
 * (auth_gate, run by src/http/server.c around every handler) enforces it
 * before any handler runs, and the tests and the OpenAPI document are
 * checked against it. It lives in src/api, not src/http, because deciding
 * needs the API's own knowledge: the routes' names, which body field names
 * the user, and statements that find a row's owner.
 *
 * Admin tokens are kept as SHA-256 digests and compared in constant time;
 * a user's token names its user ("rsv_<id>_<secret>"), so checking it is one
 * primary-key read and a constant-time compare of digests. Tokens are
 * never logged (the request log holds method, path and status only). */

#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "api.h"
#include "idempotency.h"
#include "log.h"
#include "statements.h"

#define RULE(r, k)                \
    {                             \
        r, k, 0, STMT_COUNT, NULL \
    }
#define SELF_PARAM(r, i)                        \
    {                                           \
        r, AUTH_SELF_PARAM, i, STMT_COUNT, NULL \
    }
#define OWNER(r, stmt, what)         \
    {                                \
        r, AUTH_OWNER, 0, stmt, what \
    }

const struct auth_rule auth_rules[] = {
    RULE("GET /livez", AUTH_PUBLIC),
    RULE("GET /readyz", AUTH_PUBLIC),
    RULE("GET /metrics", AUTH_METRICS),
    RULE("GET /api", AUTH_PUBLIC),
    RULE("GET /api/openapi.json", AUTH_PUBLIC),
    RULE("GET /api/swagger-initializer.js", AUTH_PUBLIC),
    RULE("GET /api/swagger-ui.css", AUTH_PUBLIC),
    RULE("GET /api/swagger-ui-bundle.js", AUTH_PUBLIC),

    RULE("POST /users", AUTH_PUBLIC), /* anyone may sign up */
    RULE("GET /users", AUTH_ADMIN),   /* every user's e-mail address */
    SELF_PARAM("GET /users/{id}", 0),
    SELF_PARAM("POST /users/{id}/token", 0),

    RULE("POST /events", AUTH_ADMIN),
    RULE("GET /events", AUTH_PUBLIC),
    RULE("GET /events/{id}", AUTH_PUBLIC),
    RULE("PATCH /events/{id}", AUTH_ADMIN),

    RULE("POST /reservations", AUTH_SELF_BODY),
    RULE("GET /reservations", AUTH_SELF_QUERY),
    OWNER("GET /reservations/{id}", STMT_RESERVATION_OWNER, "reservation"),
    OWNER("DELETE /reservations/{id}", STMT_RESERVATION_OWNER, "reservation"),
    OWNER("POST /reservations/{id}/confirm", STMT_RESERVATION_OWNER, "reservation"),

    RULE("POST /events/{id}/waitlist", AUTH_SELF_BODY),
    RULE("GET /events/{id}/waitlist", AUTH_PUBLIC), /* positions, no user data */
    OWNER("GET /waitlist/{id}", STMT_WAITLIST_OWNER, "waitlist_entry"),
    OWNER("DELETE /waitlist/{id}", STMT_WAITLIST_OWNER, "waitlist_entry"),

    RULE("POST /user", AUTH_PUBLIC),
    SELF_PARAM("GET /user/{id}", 0),
    RULE("POST /event", AUTH_ADMIN),
    RULE("GET /event/{id}", AUTH_PUBLIC),
    SELF_PARAM("POST /reservation/{eventId}/{userId}", 1),
    OWNER("GET /reservation/{id}", STMT_RESERVATION_OWNER, "reservation"),
};
const size_t auth_nrules = sizeof(auth_rules) / sizeof(auth_rules[0]);

enum auth_mode { MODE_TOKEN, MODE_JWT, MODE_OFF };

#define MAX_ADMIN_TOKENS 16

struct auth {
    enum auth_mode mode;
    bool metrics_open;
    char admin_sha256[MAX_ADMIN_TOKENS][AUTH_SHA256_SIZE];
    int nadmins;
    /* per route (by its index in the route table): its rule */
    const struct auth_rule **rule_of;
    const struct route *routes;
    size_t nroutes;
    /* --auth jwt */
    unsigned char *jwt_key;
    size_t jwt_key_len;
    jwt_alg_t jwt_alg;
    char jwt_issuer[256], jwt_audience[256], jwt_admin_claim[64], jwt_admin_role[64];
};

const struct auth_rule *auth_rule_find(const char *route_name)
{
    for (size_t i = 0; i < auth_nrules; i++)
        if (strcmp(auth_rules[i].route, route_name) == 0)
            return &auth_rules[i];
    return NULL;
}

void auth_sha256_hex(const void *data, size_t len, char out[static AUTH_SHA256_SIZE])
{
    unsigned char md[32];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(md, 0, sizeof(md)); /* cannot happen; an all-zero digest matches no token */
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

bool auth_sha256_equal(const char *a, const char *b)
{
    return strlen(a) == 64 && strlen(b) == 64 && CRYPTO_memcmp(a, b, 64) == 0;
}

static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
}

int auth_token_new(int64_t user_id, char token[static AUTH_TOKEN_SIZE],
                   char sha256_hex[static AUTH_SHA256_SIZE])
{
    unsigned char secret[32];
    size_t got = 0;
    while (got < sizeof(secret)) {
        ssize_t n = getrandom(secret + got, sizeof(secret) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    char text[48];
    base64url(secret, sizeof(secret), text);
    OPENSSL_cleanse(secret, sizeof(secret));
    snprintf(token, AUTH_TOKEN_SIZE, "rsv_%lld_%s", (long long)user_id, text);
    auth_sha256_hex(token, strlen(token), sha256_hex);
    return 0;
}

void auth_unauthorized(struct http_response *resp, const char *why)
{
    http_respond_error(resp, 401, "unauthorized", "%s", why);
    http_response_add_header(resp, "WWW-Authenticate", "Bearer realm=\"reservd\"");
}

void auth_forbidden(struct http_response *resp, const char *why)
{
    http_respond_error(resp, 403, "forbidden", "%s", why);
}

/* ---- set-up ---- */

static int add_admin(struct auth *a, const char *token, size_t len, char *err, size_t errlen)
{
    if (len == 0)
        return 0;
    if (len < 16) {
        snprintf(err, errlen, "an admin token must be at least 16 characters");
        return -1;
    }
    if (a->nadmins == MAX_ADMIN_TOKENS) {
        snprintf(err, errlen, "at most %d admin tokens", MAX_ADMIN_TOKENS);
        return -1;
    }
    auth_sha256_hex(token, len, a->admin_sha256[a->nadmins++]);
    return 0;
}

/* Tokens separated by commas, white space or new lines. */
static int add_admins(struct auth *a, const char *list, char *err, size_t errlen)
{
    const char *sep = ", \t\r\n";
    for (const char *p = list; *p;) {
        p += strspn(p, sep);
        size_t n = strcspn(p, sep);
        if (add_admin(a, p, n, err, errlen) != 0)
            return -1;
        p += n;
    }
    return 0;
}

/* The whole file (at most 64 KiB), NUL-terminated; caller frees. */
static unsigned char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = f ? malloc(65537) : NULL;
    *len = buf ? fread(buf, 1, 65536, f) : 0;
    if (!buf || ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, f ? "read error" : strerror(errno));
        free(buf);
        buf = NULL;
    } else {
        buf[*len] = '\0';
    }
    if (f)
        fclose(f);
    return buf;
}

static int load_jwt(struct auth *a, const struct config *cfg, char *err, size_t errlen)
{
    a->jwt_key = read_file(cfg->jwt_key_file, &a->jwt_key_len, err, errlen);
    if (!a->jwt_key)
        return -1;
    a->jwt_alg = jwt_str_alg(cfg->jwt_alg);
    if (a->jwt_alg == JWT_ALG_HS256) /* a secret in a file: its last new line is not part of it */
        while (a->jwt_key_len > 0 &&
               (a->jwt_key[a->jwt_key_len - 1] == '\n' || a->jwt_key[a->jwt_key_len - 1] == '\r'))
            a->jwt_key[--a->jwt_key_len] = '\0';
    if (a->jwt_key_len == 0) {
        snprintf(err, errlen, "--jwt-key-file %s is empty", cfg->jwt_key_file);
        return -1;
    }
    snprintf(a->jwt_issuer, sizeof(a->jwt_issuer), "%s", cfg->jwt_issuer);
    snprintf(a->jwt_audience, sizeof(a->jwt_audience), "%s", cfg->jwt_audience);
    snprintf(a->jwt_admin_claim, sizeof(a->jwt_admin_claim), "%s", cfg->jwt_admin_claim);
    snprintf(a->jwt_admin_role, sizeof(a->jwt_admin_role), "%s", cfg->jwt_admin_role);
    return 0;
}

int auth_create(const struct config *cfg, const struct route *routes, size_t nroutes,
                struct auth **out, char *err, size_t errlen)
{
    struct auth *a = calloc(1, sizeof(*a));
    if (!a || !(a->rule_of = calloc(nroutes, sizeof(*a->rule_of)))) {
        free(a);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->mode = strcmp(cfg->auth, "off") == 0   ? MODE_OFF
              : strcmp(cfg->auth, "jwt") == 0 ? MODE_JWT
                                              : MODE_TOKEN;
    a->metrics_open = cfg->metrics_open;
    a->routes = routes;
    a->nroutes = nroutes;
    for (size_t i = 0; i < nroutes; i++)
        if (!(a->rule_of[i] = auth_rule_find(routes[i].name))) {
            snprintf(err, errlen, "route %s has no row in the permission table (src/api/auth.c)",
                     routes[i].name);
            goto fail;
        }
    size_t len;
    unsigned char *file = NULL;
    if (cfg->admin_token_file[0] && !(file = read_file(cfg->admin_token_file, &len, err, errlen)))
        goto fail;
    int rc = file ? add_admins(a, (const char *)file, err, errlen) : 0;
    if (file)
        OPENSSL_cleanse(file, len);
    free(file);
    if (rc != 0 || add_admins(a, cfg->admin_tokens, err, errlen) != 0)
        goto fail;
    if (a->mode == MODE_JWT && load_jwt(a, cfg, err, errlen) != 0)
        goto fail;
    *out = a;
    return 0;
fail:
    auth_destroy(a);
    return -1;
}

void auth_destroy(struct auth *a)
{
    if (!a)
        return;
    if (a->jwt_key)
        OPENSSL_cleanse(a->jwt_key, a->jwt_key_len);
    free(a->jwt_key);
    free(a->rule_of);
    free(a);
}

bool auth_is_off(const struct auth *a)
{
    return a->mode == MODE_OFF;
}

bool auth_issues_tokens(const struct auth *a)
{
    return a->mode == MODE_TOKEN;
}

/* ---- who sent it ---- */

/* The credentials of "Bearer <token68>" (RFC 6750 2.1), or NULL. */
static const char *bearer_token(const char *header)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    const char *t = header + 7;
    while (*t == ' ')
        t++;
    size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
    size_t pad = strspn(t + n, "=");
    if (n == 0 || t[n + pad] != '\0' || n + pad > 4096)
        return NULL;
    return t;
}

static bool is_admin_token(const struct auth *a, const char *token)
{
    char digest[AUTH_SHA256_SIZE];
    auth_sha256_hex(token, strlen(token), digest);
    bool found = false;
    for (int i = 0; i < a->nadmins; i++) /* no early exit: the time says nothing */
        found |= auth_sha256_equal(digest, a->admin_sha256[i]);
    return found;
}

/* The user a reservd token names ("rsv_<id>_..."), or 0. */
static int64_t token_user(const char *token)
{
    int64_t id;
    if (strncmp(token, "rsv_", 4) != 0)
        return 0;
    const char *p = token + 4;
    size_t n = strspn(p, "0123456789");
    if (p[n] != '_' || strlen(p + n + 1) != 43 || router_parse_id(p, n, &id) != 0)
        return 0;
    return id;
}

/* Whether a JSON claim is value, or an array holding it. */
static bool claim_has(jwt_t *jwt, const char *claim, const char *value)
{
    char *text = jwt_get_grants_json(jwt, claim);
    json_t *v = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
    bool found = json_is_string(v) && strcmp(json_string_value(v), value) == 0;
    size_t i;
    json_t *item;
    if (json_is_array(v))
        json_array_foreach(v, i, item) found |=
            json_is_string(item) && strcmp(json_string_value(item), value) == 0;
    json_decref(v);
    free(text);
    return found;
}

/* Verify a JWT: signature by the one configured algorithm and key, exp
 * required and in the future, nbf (if any) past, iss and aud as configured;
 * sub is the user, the admin claim makes an admin. */
static int verify_jwt(const struct auth *a, const char *token, struct http_request *req,
                      const char **why)
{
    jwt_t *jwt = NULL;
    int rc = -1;
    time_t now = time(NULL);
    *why = "the token is not a valid JWT for this server";
    if (jwt_decode(&jwt, token, a->jwt_key, (int)a->jwt_key_len) != 0 || !jwt)
        return -1;
    if (jwt_get_alg(jwt) != a->jwt_alg) /* never alg none, never HS256 keyed with a public key */
        goto out;
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= now) {
        *why = "the token has expired (or has no exp)";
        goto out;
    }
    errno = 0;
    long nbf = jwt_get_grant_int(jwt, "nbf");
    if (errno == 0 && nbf > now)
        goto out;
    const char *iss = jwt_get_grant(jwt, "iss");
    if (a->jwt_issuer[0] && (!iss || strcmp(iss, a->jwt_issuer) != 0))
        goto out;
    if (a->jwt_audience[0] && !claim_has(jwt, "aud", a->jwt_audience))
        goto out;
    const char *sub = jwt_get_grant(jwt, "sub");
    int64_t user = 0;
    if (sub && router_parse_id(sub, strlen(sub), &user) != 0)
        user = 0;
    if (claim_has(jwt, a->jwt_admin_claim, a->jwt_admin_role)) {
        req->who = HTTP_ADMIN;
        req->who_user = user;
        rc = 0;
    } else if (user > 0) {
        req->who = HTTP_USER;
        req->who_user = user;
        rc = 0;
    }
out:
    jwt_free(jwt);
    return rc;
}

/* Who sent req: sets req->who (HTTP_CLAIMED for a reservd user token, to be
 * checked on a worker). -1 with a 401 in resp for a bad token. */
static int identify(const struct auth *a, struct http_request *req, struct http_response *resp)
{
    req->who = HTTP_ANONYMOUS;
    if (a->mode == MODE_OFF) {
        req->who = HTTP_OPEN;
        return 0;
    }
    if (!req->authorization)
        return 0;
    const char *token = bearer_token(req->authorization), *why = "malformed Authorization header";
    if (token && is_admin_token(a, token)) { /* in every mode: operators, Prometheus */
        req->who = HTTP_ADMIN;
        return 0;
    } else if (token && a->mode == MODE_JWT) {
        if (verify_jwt(a, token, req, &why) == 0)
            return 0;
    } else if (token && (req->who_user = token_user(token)) > 0) {
        req->who = HTTP_CLAIMED;
        return 0;
    } else if (token) {
        why = "unknown token";
    }
    auth_unauthorized(resp, why);
    return -1;
}

/* A claimed user token against the digest the database holds: 0 (req->who
 * is HTTP_USER), or -1 with resp filled (401, 503). */
static int verify_user_token(struct db_conn *conn, struct http_request *req,
                             struct http_response *resp)
{
    char id[24], digest[AUTH_SHA256_SIZE];
    snprintf(id, sizeof(id), "%lld", (long long)req->who_user);
    const char *params[] = { id };
    const char *token = bearer_token(req->authorization), *stored;
    PGresult *res = db_exec(conn, STMT_USER_TOKEN_GET, 1, params);
    bool ok = false;
    if (!res || db_result_classify(res) != DB_RESULT_OK) {
        http_respond_error(resp, 503, "unavailable", "the database is unavailable");
    } else {
        auth_sha256_hex(token, strlen(token), digest);
        ok = PQntuples(res) == 1 && token_row_decode(res, 0, &stored) == 0 &&
             auth_sha256_equal(digest, stored);
        if (ok)
            req->who = HTTP_USER;
        else
            auth_unauthorized(resp, "unknown token");
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/* ---- what it may do ---- */

enum verdict { ALLOW, DENY, NEED_DB };

/* The body's "userId" when it is an integer, else 0 (the handler answers a
 * bad body with 400). */
static int64_t body_user(const struct http_request *req)
{
    json_t *body = req->body ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    json_t *v = json_object_get(body, "userId");
    int64_t id = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    json_decref(body);
    return id;
}

static enum verdict force_own_user(struct http_request *req, struct http_response *resp)
{
    const char *given = http_request_query(req, "userId");
    snprintf(req->forced_user, sizeof(req->forced_user), "%lld", (long long)req->who_user);
    if (given)
        return strcmp(given, req->forced_user) == 0
                   ? ALLOW
                   : (auth_forbidden(resp, "you may list only your own reservations"), DENY);
    if (req->nquery == HTTP_MAX_QUERY) {
        auth_forbidden(resp, "too many query arguments to add userId");
        return DENY;
    }
    req->query[req->nquery].key = "userId";
    req->query[req->nquery++].value = req->forced_user;
    return ALLOW;
}

/* AUTH_OWNER: the row's owner, by the rule's statement. */
static enum verdict check_owner(struct app *app, const struct auth_rule *rule, struct db_conn *conn,
                                const struct http_request *req, struct http_response *resp)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    const char *params[] = { id };
    PGresult *res = db_exec(conn, rule->owner, 1, params);
    int64_t owner = 0;
    enum verdict v = DENY;
    if (!res || db_result_classify(res) != DB_RESULT_OK)
        api_db_failure(app, resp, res);
    else if (PQntuples(res) == 1 && owner_row_decode(res, 0, &owner) == 0 && owner == req->who_user)
        v = ALLOW;
    else { /* another user's row is answered as if it did not exist */
        char code[48];
        snprintf(code, sizeof(code), "%s_not_found", rule->what);
        http_respond_error(resp, 404, code, "no %s with id %s", rule->what, id);
    }
    PQclear(res);
    return v;
}

static enum verdict decide(struct app *app, const struct auth_rule *rule, struct db_conn *conn,
                           struct http_request *req, struct http_response *resp)
{
    const struct auth *a = app->auth;
    if (rule->kind == AUTH_PUBLIC || (rule->kind == AUTH_METRICS && a->metrics_open) ||
        req->who == HTTP_OPEN || req->who == HTTP_ADMIN)
        return ALLOW;
    if (req->who == HTTP_ANONYMOUS) {
        auth_unauthorized(resp, "this route needs a token (Authorization: Bearer ...)");
        return DENY;
    }
    switch (rule->kind) {
    case AUTH_SELF_PARAM:
        if (req->params[rule->param] == req->who_user)
            return ALLOW;
        auth_forbidden(resp, "this belongs to another user");
        return DENY;
    case AUTH_SELF_BODY: {
        int64_t user = body_user(req);
        if (user == 0 || user == req->who_user)
            return ALLOW;
        auth_forbidden(resp, "userId must be your own");
        return DENY;
    }
    case AUTH_SELF_QUERY: return force_own_user(req, resp);
    case AUTH_OWNER: return conn ? check_owner(app, rule, conn, req, resp) : NEED_DB;
    default: auth_forbidden(resp, "this route is for admins only"); return DENY;
    }
}

static const struct auth_rule *rule_of(const struct auth *a, const struct route *route)
{
    return a->rule_of[route - a->routes];
}

/* ---- the gate ---- */

static enum http_gate_step gate_check(struct app *app, const struct route *route,
                                      struct http_request *req, struct http_response *resp)
{
    const struct auth *a = app->auth;
    enum verdict v = NEED_DB;
    const struct auth_rule *rule = rule_of(a, route);
    if (identify(a, req, resp) != 0)
        return HTTP_GATE_ANSWERED;
    /* an open route never waits for the database to check a token (/livez) */
    if (req->who == HTTP_CLAIMED &&
        (rule->kind == AUTH_PUBLIC || (rule->kind == AUTH_METRICS && a->metrics_open)))
        req->who = HTTP_ANONYMOUS;
    if (req->who != HTTP_CLAIMED && (v = decide(app, rule, NULL, req, resp)) == DENY)
        return HTTP_GATE_ANSWERED;
    switch (idempotency_begin(app->idempotency, route, req, resp)) {
    case IDEMPOTENCY_REFUSED: return HTTP_GATE_ANSWERED;
    case IDEMPOTENCY_CLAIMED: return HTTP_GATE_ON_WORKER;
    case IDEMPOTENCY_NO_KEY: break;
    }
    return v == NEED_DB ? HTTP_GATE_ON_WORKER : HTTP_GATE_CONTINUE;
}

static int gate_check_db(struct app *app, const struct route *route, struct http_request *req,
                         struct http_response *resp)
{
    const struct auth_rule *rule = rule_of(app->auth, route);
    bool owner = rule->kind == AUTH_OWNER && (req->who == HTTP_USER || req->who == HTTP_CLAIMED);
    if (req->who != HTTP_CLAIMED && !owner && !req->gate_state)
        return 0;
    struct db_conn *conn = api_acquire(app, req, resp);
    if (!conn)
        return -1;
    int rc = 0;
    if (req->who == HTTP_CLAIMED)
        rc = verify_user_token(conn, req, resp) == 0 && decide(app, rule, conn, req, resp) == ALLOW
                 ? 0
                 : -1;
    else if (owner)
        rc = decide(app, rule, conn, req, resp) == ALLOW ? 0 : -1;
    if (rc == 0 && req->gate_state)
        rc = idempotency_lookup(app, conn, req, resp);
    api_release(app, conn);
    return rc;
}

static void gate_after(struct app *app, const struct route *route, struct http_request *req,
                       struct http_response *resp)
{
    (void)route;
    idempotency_finish(app, req, resp);
}

const struct http_gate auth_gate = { gate_check, gate_check_db, gate_after };
