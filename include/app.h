#ifndef RESERVD_APP_H
#define RESERVD_APP_H

/* What every handler can reach. Owned by main(); immutable while serving
 * except through the modules' own locks. */

#include "config.h"
#include "router.h"

struct db_pool;
struct reservation_strategy;
struct metrics;
struct auth;
struct idempotency;

struct app {
    struct config cfg;
    struct db_pool *pool;
    struct reservation_strategy *reservations;
    struct metrics *metrics;
    struct auth *auth;               /* access control (auth.h) */
    struct idempotency *idempotency; /* Idempotency-Key records (idempotency.h) */
};

/* The route table (src/api/routes.c). */
extern const struct route app_routes[];
extern const size_t app_nroutes;

#endif
