#ifndef RESERVD_LANE_H
#define RESERVD_LANE_H

/* Per-event request queues (private to src/reservation/). */

#include "reservation.h"

struct db_conn;
struct lanes;

/* Handle one group of requests for one event, in arrival order, on conn.
 * Each request comes with again = false; the function sets its outcome,
 * or leaves again = true to put it back at the head of the event's queue
 * for the next group. It must answer at least one request. */
typedef void (*lane_run_fn)(void *ctx, struct db_conn *conn, int64_t event_id,
                            struct reservation_request **group, int n);

/* group_max: most requests per group; wait_us: how long a group on an idle
 * event waits to fill (0: not at all). 0, or -1 out of memory. */
int lanes_create(struct db_pool *pool, struct workers *workers, int group_max, int wait_us,
                 lane_run_fn run, void *ctx, struct lanes **out);
/* NULL-safe; every submitted request must have been answered. */
void lanes_destroy(struct lanes *l);
/* Queue r behind its event's earlier requests. Never blocks on the
 * database; r->done() runs on a worker (or at once, here, when out of
 * memory). */
void lanes_submit(struct lanes *l, struct reservation_request *r);

/* Whether r's deadline has passed. */
bool lane_request_expired(const struct reservation_request *r);

/* The group's user ids as a PostgreSQL array literal ("{1,2,3}"), malloc'd;
 * NULL when out of memory. */
char *lane_group_users(struct reservation_request *const *group, int n);

#endif
