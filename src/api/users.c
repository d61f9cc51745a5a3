/* /users: sign-up, lookup, listing. */

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "auth.h"
#include "db.h"
#include "statements.h"
#include "validate.h"

/* A user row (statements.h) as the API's user. */
static json_t *user_json(const PGresult *res, int row, int64_t *id)
{
    struct user_row u;
    if (user_row_decode(res, row, &u) != 0)
        return NULL;
    *id = u.id;
    return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)u.id, "name", u.name, "email",
                     u.email, "createdAt", api_time_json(u.created_at_ms));
}

/* The id the user will have in *id: the token names it. 0, or -1 with
 * resp filled. */
static int next_user_id(struct app *app, struct db_conn *conn, struct http_response *resp,
                        int64_t *id)
{
    int rc = 0;
    PGresult *res = db_exec(conn, STMT_USER_NEXT_ID, 0, NULL);
    if (!res || db_result_classify(res) != DB_RESULT_OK || next_id_row_decode(res, 0, id) != 0) {
        api_db_failure(app, resp, res);
        rc = -1;
    }
    PQclear(res);
    return rc;
}

/* --auth token: the user and the SHA-256 of their new token in one
 * statement; the 201 carries the token, the only time it is shown. */
static void create_with_token(struct app *app, const struct http_request *req,
                              struct http_response *resp, const char *name, const char *email)
{
    char token[AUTH_TOKEN_SIZE], digest[AUTH_SHA256_SIZE], id_s[24];
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    int64_t id = 0;
    int rc = next_user_id(app, conn, resp, &id);
    if (rc == 0 && auth_token_new(id, token, digest) != 0) {
        http_respond_error(resp, 503, "unavailable", "no randomness for a token");
        rc = -1;
    }
    if (rc == 0) {
        snprintf(id_s, sizeof(id_s), "%lld", (long long)id);
        const char *params[] = { id_s, name, email, digest };
        PGresult *res = db_exec(conn, STMT_USER_INSERT_WITH_TOKEN, 4, params);
        enum db_result r = res ? db_result_classify(res) : DB_RESULT_FAILED;
        int64_t got;
        json_t *user = r == DB_RESULT_OK ? user_json(res, 0, &got) : NULL;
        if (user && json_object_set_new(user, "token", json_string(token)) == 0)
            api_created(resp, user, "/users", got);
        else if (r == DB_RESULT_UNIQUE_VIOLATION)
            http_respond_error(resp, 409, "email_taken", "a user with this email already exists");
        else
            api_db_failure(app, resp, r == DB_RESULT_OK ? NULL : res);
        if (!user || resp->status != 201)
            json_decref(user);
        PQclear(res);
    }
    api_release_effect(app, req, resp, conn);
}

void users_create(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char msg[VALIDATE_MSG_SIZE];
    const char *name, *email;
    json_t *body = validate_json_body(req, resp);
    if (!body)
        return;
    if (validate_string_field(body, "name", 1, 200, &name, msg) != 0 ||
        validate_string_field(body, "email", 3, 254, &email, msg) != 0) {
        validate_fail(resp, msg);
    } else if (validate_email(email) != 0) {
        validate_fail(resp, "email must be a valid e-mail address of at most 254 characters");
    } else if (auth_issues_tokens(app->auth)) {
        create_with_token(app, req, resp, name, email);
    } else {
        const char *params[] = { name, email };
        api_insert(app, req, resp, STMT_USER_INSERT, 2, params, user_json, "/users", "email_taken",
                   "a user with this email already exists");
    }
    json_decref(body);
}

void users_get(struct app *app, const struct http_request *req, struct http_response *resp)
{
    api_get_by_id(app, req, resp, STMT_USER_GET, user_json, "user");
}

void users_list(struct app *app, const struct http_request *req, struct http_response *resp)
{
    struct api_page page;
    if (api_page_params(req, resp, &page) != 0)
        return;
    const char *params[] = { page.after, page.fetch };
    api_list(app, req, resp, STMT_USER_LIST, 2, params, page.limit, user_json);
}

/* A new token for the user (their own request or an admin's); the old one
 * stops working at once. */
void users_token(struct app *app, const struct http_request *req, struct http_response *resp)
{
    char token[AUTH_TOKEN_SIZE], digest[AUTH_SHA256_SIZE], id[24];
    if (auth_token_new(req->params[0], token, digest) != 0) {
        http_respond_error(resp, 503, "unavailable", "no randomness for a token");
        return;
    }
    snprintf(id, sizeof(id), "%lld", (long long)req->params[0]);
    struct db_conn *conn = api_acquire_effect(app, req, resp);
    if (!conn)
        return;
    const char *params[] = { id, digest };
    PGresult *res = db_exec(conn, STMT_USER_TOKEN_SET, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK)
        api_db_failure(app, resp, res);
    else if (PQntuples(res) == 0)
        http_respond_error(resp, 404, "user_not_found", "no user with id %s", id);
    else
        http_respond_json(
            resp, 200,
            json_pack("{s:I, s:s}", "userId", (json_int_t)req->params[0], "token", token));
    PQclear(res);
    api_release_effect(app, req, resp, conn);
}
