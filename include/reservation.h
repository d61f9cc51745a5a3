#ifndef RESERVD_RESERVATION_H
#define RESERVD_RESERVATION_H

/* The strategy seam: how a reservation is granted. Handlers call
 * reservation_create() and never know which strategy runs. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct db_pool;

enum reservation_outcome {
    RESERVATION_RESERVED,
    RESERVATION_EVENT_NOT_FOUND,
    RESERVATION_USER_NOT_FOUND,
    RESERVATION_ALREADY_RESERVED,
    RESERVATION_SOLD_OUT,
    RESERVATION_BUSY,          /* no connection or lock in time: 503 busy */
    RESERVATION_UNAVAILABLE,   /* the database failed: 503 unavailable */
};

struct reservation_grant {
    int64_t id;
    int64_t reserved_at_ms;
};

struct reservation_options {
    const char *strategy;      /* "for-update", "batch", "atomic", "unsafe" */
    int batch_max;
    int batch_wait_us;
};

struct reservation_strategy;

/* 0, or -1 with a message in err (unknown name). */
int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct reservation_strategy **out, char *err, size_t errlen);
void reservation_strategy_destroy(struct reservation_strategy *s);

/* Grant (or refuse) one ticket of event to user, answering by deadline
 * (CLOCK_MONOTONIC). grant is filled for RESERVATION_RESERVED. */
enum reservation_outcome reservation_create(struct reservation_strategy *s, int64_t event_id,
                                            int64_t user_id, const struct timespec *deadline,
                                            struct reservation_grant *grant);

/* Map the outcome text the SQL functions return. -1 if unknown. */
int reservation_outcome_parse(const char *text, enum reservation_outcome *out);

#endif
