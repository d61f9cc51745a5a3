#ifndef RESERVD_AUTH_H
#define RESERVD_AUTH_H

/* Access control (src/api/auth.c): who sent a request (an admin token, a
 * user's token, a JWT, or nobody), and the one permission table that says
 * what each route allows, enforced by the server's gate before any handler
 * runs. The gate also runs the Idempotency-Key steps (idempotency.h). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "server.h"

/* What a route allows. Admins (and everyone with --auth off) may do
 * everything; the others: */
enum auth_rule_kind {
    AUTH_PUBLIC,     /* anyone, no token needed */
    AUTH_METRICS,    /* admins only, unless --metrics-open */
    AUTH_ADMIN,      /* admins only */
    AUTH_SELF_PARAM, /* the user whose id is path parameter `param` */
    AUTH_SELF_BODY,  /* the user whose id is the body's "userId" (another's: 403) */
    AUTH_SELF_QUERY, /* any user; the query's userId forced to their own (another's: 403) */
    AUTH_OWNER,      /* the user who owns the row path parameter 0 names, by the `owner`
                      * statement (one owner_id column); anyone else gets 404 <what>_not_found,
                      * as if it did not exist, so ids reveal nothing across users */
};

struct auth_rule {
    const char *route; /* the route's name, as in src/api/routes.c */
    enum auth_rule_kind kind;
    int param;               /* AUTH_SELF_PARAM */
    enum db_statement owner; /* AUTH_OWNER */
    const char *what;        /* AUTH_OWNER: "reservation" (404 reservation_not_found) */
};

/* The permission table, one row per route (the server refuses to start if
 * a route has none). */
extern const struct auth_rule auth_rules[];
extern const size_t auth_nrules;
const struct auth_rule *auth_rule_find(const char *route_name);

struct auth;

/* From the settings: the mode, the admin tokens (the file's and the
 * environment's), the JWT key. 0, or -1 with a message in err (a missing
 * file, a route without a rule). */
int auth_create(const struct config *cfg, const struct route *routes, size_t nroutes,
                struct auth **out, char *err, size_t errlen);
void auth_destroy(struct auth *a); /* NULL-safe */
bool auth_is_off(const struct auth *a);
/* reservd's own tokens: true under --auth token (POST /users hands them out). */
bool auth_issues_tokens(const struct auth *a);

/* The gate the server runs around every handler (server.h). */
extern const struct http_gate auth_gate;

/* User tokens: "rsv_<user id>_<32 random bytes from getrandom, base64url>".
 * The database keeps only the SHA-256. */
#define AUTH_TOKEN_SIZE  96
#define AUTH_SHA256_SIZE 65 /* hex and NUL */
/* A new token for user_id and its SHA-256 (hex). 0, or -1 (no randomness). */
int auth_token_new(int64_t user_id, char token[static AUTH_TOKEN_SIZE],
                   char sha256_hex[static AUTH_SHA256_SIZE]);
void auth_sha256_hex(const void *data, size_t len, char out[static AUTH_SHA256_SIZE]);
/* Two SHA-256 hex strings compared in constant time. */
bool auth_sha256_equal(const char *a, const char *b);

/* Fill resp with 401 unauthorized (and WWW-Authenticate: Bearer) / 403 forbidden. */
struct http_response;
void auth_unauthorized(struct http_response *resp, const char *why);
void auth_forbidden(struct http_response *resp, const char *why);

#endif
