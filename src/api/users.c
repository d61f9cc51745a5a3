/* /users: sign-up, lookup, listing. */

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
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
