#ifndef RESERVD_BATCH_H
#define RESERVD_BATCH_H

/* Group commit for reservations (private to src/reservation/). */

#include "lane.h"

/* A lane_run_fn: grant the whole group in one transaction. ctx unused. */
void batch_run(void *ctx, struct db_conn *conn, int64_t event_id,
               struct reservation_request **group, int n);

#endif
