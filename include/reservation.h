#ifndef RESERVD_RESERVATION_H
#define RESERVD_RESERVATION_H

/* The strategy seam: how a reservation is granted. Handlers submit a
 * request with reservation_submit() and are called back with the outcome;
 * they never know which strategy runs, and never wait for it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "workers.h"

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
    int batch_max;             /* most requests for one event handled at once */
    int batch_wait_us;         /* batch: longest an idle event waits to fill */
};

struct reservation_strategy;

/* One request. The submitter owns the memory and keeps it alive until
 * done() has been called. */
struct reservation_request {
    int64_t event_id;
    int64_t user_id;
    struct timespec deadline;  /* CLOCK_MONOTONIC: answer busy after it */
    /* Called exactly once, on any thread, possibly before
     * reservation_submit() returns; outcome (and grant, for
     * RESERVATION_RESERVED) are set. */
    void (*done)(struct reservation_request *r);
    enum reservation_outcome outcome;
    struct reservation_grant grant;

    /* Private to src/reservation/. */
    struct work work;
    struct reservation_strategy *strategy;
    struct reservation_request *next;
    bool again;                /* back to the event's queue, not answered */
    bool unknown;              /* the connection died mid-commit: resolve
                                * before answering (strategy.c) */
};

/* 0, or -1 with a message in err (unknown name, out of memory). The
 * strategy runs its database work on workers; both must outlive it. */
int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct workers *workers, struct reservation_strategy **out,
                                char *err, size_t errlen);
/* NULL-safe. Every submitted request must have been answered. */
void reservation_strategy_destroy(struct reservation_strategy *s);

/* Grant (or refuse) one ticket of r->event_id to r->user_id. Never blocks. */
void reservation_submit(struct reservation_strategy *s, struct reservation_request *r);

/* Map the outcome text the SQL returns. -1 if unknown. */
int reservation_outcome_parse(const char *text, enum reservation_outcome *out);

#endif
