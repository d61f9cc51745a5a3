#ifndef RESERVD_BATCH_H
#define RESERVD_BATCH_H

/* Group commit for reservations (private to src/reservation/). */

#include "lane.h"

/* Grant undecided[0..m), all for one event, in one locked transaction
 * whose lock wait the earliest deadline caps; sets each outcome and *left
 * (tickets left after it). Requests whose outcome the connection's death
 * hid are marked unknown; sold_out answers that another writer's conflict
 * may have made wrong go back to the queue (again). True when the row
 * lock wait ran out (then all are answered busy). */
bool batch_grant(struct db_pool *pool, struct db_conn *conn,
                 struct reservation_request **undecided, int m, int *left);

#endif
