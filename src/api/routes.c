/* The route table: every path the server answers. Each route also has a
 * row in the permission table (src/api/auth.c): who may call it. */

#include "api.h"
#include "app.h"

#define DB ROUTE_NEEDS_DB
/* Reservations are handed to the strategy from the HTTP thread. */
#define DEFERS ROUTE_DEFERS

const struct route app_routes[] = {
    { HTTP_GET, "/livez", health_livez, 0, "GET /livez" },
    { HTTP_GET, "/readyz", health_readyz, DB, "GET /readyz" },
    { HTTP_GET, "/metrics", ops_metrics, DB, "GET /metrics" },
    /* The documentation: Swagger UI and the files it loads (src/api/ops.c). */
    { HTTP_GET, "/api", ops_docs, 0, "GET /api" },
    { HTTP_GET, "/api/openapi.json", ops_openapi, 0, "GET /api/openapi.json" },
    { HTTP_GET, "/api/swagger-initializer.js", ops_docs, 0, "GET /api/swagger-initializer.js" },
    { HTTP_GET, "/api/swagger-ui.css", ops_docs, 0, "GET /api/swagger-ui.css" },
    { HTTP_GET, "/api/swagger-ui-bundle.js", ops_docs, 0, "GET /api/swagger-ui-bundle.js" },

    { HTTP_POST, "/users", users_create, DB, "POST /users" },
    { HTTP_GET, "/users", users_list, DB, "GET /users" },
    { HTTP_GET, "/users/{id}", users_get, DB, "GET /users/{id}" },
    { HTTP_POST, "/users/{id}/token", users_token, DB | ROUTE_NO_BODY, "POST /users/{id}/token" },

    { HTTP_POST, "/events", events_create, DB, "POST /events" },
    { HTTP_GET, "/events", events_list, DB, "GET /events" },
    { HTTP_GET, "/events/{id}", events_get, DB, "GET /events/{id}" },
    { HTTP_PATCH, "/events/{id}", events_update, DB, "PATCH /events/{id}" },

    { HTTP_POST, "/reservations", reservations_create, DEFERS, "POST /reservations" },
    { HTTP_GET, "/reservations", reservations_list, DB, "GET /reservations" },
    { HTTP_GET, "/reservations/{id}", reservations_get, DB, "GET /reservations/{id}" },
    { HTTP_DELETE, "/reservations/{id}", reservations_cancel, DB | ROUTE_NO_BODY,
      "DELETE /reservations/{id}" },
    { HTTP_POST, "/reservations/{id}/confirm", reservations_confirm, DB | ROUTE_NO_BODY,
      "POST /reservations/{id}/confirm" },

    { HTTP_POST, "/events/{id}/waitlist", waitlist_join, DB, "POST /events/{id}/waitlist" },
    { HTTP_GET, "/events/{id}/waitlist", waitlist_list, DB, "GET /events/{id}/waitlist" },
    { HTTP_GET, "/waitlist/{id}", waitlist_get, DB, "GET /waitlist/{id}" },
    { HTTP_DELETE, "/waitlist/{id}", waitlist_leave, DB | ROUTE_NO_BODY, "DELETE /waitlist/{id}" },

    /* Compatibility with the original NestJS app's singular routes. */
    { HTTP_POST, "/user", users_create, DB, "POST /user" },
    { HTTP_GET, "/user/{id}", users_get, DB, "GET /user/{id}" },
    { HTTP_POST, "/event", events_create, DB, "POST /event" },
    { HTTP_GET, "/event/{id}", events_get, DB, "GET /event/{id}" },
    { HTTP_POST, "/reservation/{eventId}/{userId}", reservations_create_compat,
      DEFERS | ROUTE_NO_BODY, "POST /reservation/{eventId}/{userId}" },
    { HTTP_GET, "/reservation/{id}", reservations_get, DB, "GET /reservation/{id}" },
};

const size_t app_nroutes = sizeof(app_routes) / sizeof(app_routes[0]);
