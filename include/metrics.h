#ifndef RESERVD_METRICS_H
#define RESERVD_METRICS_H

/* Prometheus metrics. Recording is a few relaxed atomic increments, safe
 * from any thread and free of locks; rendering reads them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reservation.h"
#include "router.h"

struct metrics;
struct db_pool_stats;

/* routes must outlive the metrics. 0, or -1 out of memory. */
int metrics_create(const struct route *routes, size_t nroutes, struct metrics **out);
void metrics_destroy(struct metrics *m);

/* route NULL: the request matched no route. All functions accept m NULL. */
void metrics_observe_request(struct metrics *m, const struct route *route, int status,
                             double duration_ms);
void metrics_count_reservation(struct metrics *m, enum reservation_outcome outcome);
void metrics_count_cancellation(struct metrics *m);
/* Holds. granted: holds this instance granted on POST /reservations (a
 * 201 with status HELD); the waiting list's offers are holds too, but the
 * database makes them (sql/migrations/0005) and they are counted only as
 * waiting-list offers made. confirmed: holds this instance made final,
 * offers included. expired: expiries this instance wrote (sweeper or
 * inline), offers included. So, over all instances, holds granted plus
 * offers made is at least holds confirmed plus holds expired (the rest
 * are still held, or were cancelled). */
void metrics_count_hold_granted(struct metrics *m);
void metrics_count_hold_confirmed(struct metrics *m);
void metrics_count_holds_expired(struct metrics *m, int n);
void metrics_count_db_error(struct metrics *m);
/* Waiting-list offers made, fulfilled (confirmed) and expired (expired
 * or cancelled), over the whole database: the database keeps them
 * (sql/migrations/0005), so every instance reports the same figures.
 * GET /metrics reads them (src/api/ops.c), one read at a time: begin
 * says whether this render reads (false while another one is reading: it
 * shows the last figures), end lets the next one read. */
bool metrics_waitlist_read_begin(struct metrics *m);
void metrics_waitlist_read_end(struct metrics *m);
void metrics_set_waitlist_totals(struct metrics *m, uint64_t offered, uint64_t fulfilled,
                                 uint64_t expired);

/* Text exposition format 0.0.4; malloc'd, caller frees. */
char *metrics_render(struct metrics *m, const struct db_pool_stats *pool, size_t *len);

#endif
