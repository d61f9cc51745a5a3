#ifndef RESERVD_LANE_H
#define RESERVD_LANE_H

/* Per-event request queues (private to src/reservation/): no database
 * here, only queueing. Requests for one event queue in arrival order, and
 * one worker at a time takes the queue's head as a group and hands it to
 * the run function. */

#include <stdbool.h>

#include "reservation.h"

struct lanes;

/* Decide one group of requests for one event, in arrival order. Each
 * arrives PENDING; run sets its outcome, or leaves it PENDING to put it
 * back at the head of the event's queue for the next group (in the same
 * order). It must decide at least one request. Requests past their
 * deadline never reach it: they are answered busy. */
typedef void (*lane_run_fn)(void *ctx, int64_t event_id, struct reservation_request **group, int n);

/* group_max: most requests per group; wait_us: how long a group on an idle
 * event waits to fill (0: not at all). 0, or -1 out of memory. */
int lanes_create(struct workers *workers, int group_max, int wait_us, lane_run_fn run, void *ctx,
                 struct lanes **out);
/* NULL-safe; every submitted request must have been answered. */
void lanes_destroy(struct lanes *l);
/* Queue r behind its event's earlier requests. Never blocks on the run
 * function; r->done() runs on a worker (or at once, here, when out of
 * memory, answered unavailable). */
void lanes_submit(struct lanes *l, struct reservation_request *r);

/* Whether r's deadline has passed. */
bool lane_request_expired(const struct reservation_request *r);

#endif
