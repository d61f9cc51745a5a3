#ifndef RESERVD_BATCH_H
#define RESERVD_BATCH_H

/* Group commit for reservations (private to src/reservation/). */

#include "reservation.h"

struct batcher;

int batcher_create(struct db_pool *pool, int batch_max, int batch_wait_us, struct batcher **out);
void batcher_destroy(struct batcher *b);   /* NULL-safe; no request may be in flight */
enum reservation_outcome batcher_reserve(struct batcher *b, int64_t event_id, int64_t user_id,
                                         const struct timespec *deadline,
                                         struct reservation_grant *grant);

#endif
