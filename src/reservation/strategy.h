#ifndef RESERVD_STRATEGY_H
#define RESERVD_STRATEGY_H

/* What the strategies share (private to src/reservation/). Each strategy
 * is one file with one run function; strategy.c runs them: per event
 * through the lanes, or per request through a bounded shared queue. */

#include <libpq-fe.h>
#include <pthread.h>

#include "db.h"
#include "lane.h"
#include "reservation.h"
#include "statements.h"

#define HINT_STRIPES 1024

struct reservation_strategy {
    const struct reservation_strategy_info *info;
    struct db_pool *pool;
    struct workers *workers;
    struct lanes *lanes;     /* per_event strategies */
    struct sweeper *sweeper; /* NULL: none */
    /* Other strategies: requests waiting for one of at most single_max
     * runners (as many as reservations may hold connections), so that
     * requests stuck behind a lock park no more workers than that. */
    pthread_mutex_t single_lock;
    struct reservation_request *single_head, *single_tail;
    int single_running, single_max;
    /* Per stripe: the event whose last locked statement saw tickets left,
     * and how many. Only a hint, to skip the committed read while an event
     * is selling and to size the next pipeline; the locked statement
     * decides every request. */
    pthread_mutex_t hint_lock;
    struct {
        int64_t event_id;
        int left;
    } hints[HINT_STRIPES];
};

/* A strategy's run: decide group[0..n) (all for event_id, in arrival
 * order; n is 1 unless per_event) on conn. A request left PENDING goes
 * back to the event's queue (per_event only); one left UNKNOWN is resolved
 * before it is answered. */
typedef void (*strategy_run_fn)(struct reservation_strategy *s, struct db_conn *conn,
                                int64_t event_id, struct reservation_request **group, int n);

#define DECLARE_RUN(id, name, ack, fill, per_event, flow, help)                           \
    void id##_run(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id, \
                  struct reservation_request **group, int n);
RESERVATION_STRATEGIES(DECLARE_RUN)
#undef DECLARE_RUN

/* Shared pieces (locked.c). */

/* What a group statement takes besides $1 = the event and $2 = the
 * group's user ids as an array, in order. */
enum group_params {
    GROUP_USERS,      /* nothing else */
    GROUP_QUANTITIES, /* $3 = their quantities */
    GROUP_ALL,        /* $3 = budget, $4 = their quantities, $5 = their holds, $6 and $7
                         their Idempotency-Key hashes and fingerprints (NULL: none), $8
                         the seconds to keep those records */
};
/* Run stmt with those parameters. The result (caller PQclear()s it) or
 * NULL when out of memory or the connection failed. Its rows carry ord,
 * the 1-based position (struct grant_row). */
PGresult *group_exec(struct db_conn *conn, enum db_statement stmt, int64_t event_id,
                     struct reservation_request *const *group, int n, enum group_params which,
                     const char *budget);
/* The request a row of that result answers (its grant_row's ord), or
 * NULL if ord is off. */
struct reservation_request *group_row(int ord, struct reservation_request *const *group, int n);

/* What a reserving statement's outcome column says: a decision (the words
 * of reservation_outcome_name, RESERVED to OVER_LIMIT), or one of the words
 * only the statements and this folder use. All are in strategy.c's one
 * text table; test_statements checks that the statements and functions
 * answer no other word. */
enum grant_word {
    GRANT_DECIDED,   /* the decision is the outcome */
    GRANT_AVAILABLE, /* "available": the committed read refuses nothing; the
                        locked step decides (the outcome is PENDING) */
    GRANT_CONFLICT,  /* "conflict": another writer's reservation, committed
                        meanwhile (already_reserved; its ticket was not spent) */
};
/* 0 with the word's kind and outcome, or -1 if text is none of them. */
int grant_word_parse(const char *text, enum grant_word *word, enum reservation_outcome *out);

/* Outcome of a failed query: busy when a configured wait ran out,
 * already_reserved for the unique index, key_taken when an Idempotency-Key
 * was recorded by another request (0008), else unavailable (logged). */
enum reservation_outcome failure_outcome(const PGresult *res);
/* The outcome a granting statement's row gives r (and r's grant when it
 * is reserved, its figures otherwise); 'conflict' (another writer's
 * reservation) is already_reserved; unavailable when the outcome is not
 * a decision. */
enum reservation_outcome decide_granted(const struct grant_row *g, struct reservation_request *r);

/* The locked step of a per-event group: grants (or refuses) undecided[0..m)
 * and updates *left (tickets left). How its statements went: DB_RESULT_OK,
 * DB_RESULT_LOCK_TIMEOUT when a lock wait ran out, or DB_RESULT_FAILED
 * (each request has its own outcome either way). */
typedef enum db_result (*grant_fn)(struct reservation_strategy *s, struct db_conn *conn,
                                   struct reservation_request **undecided, int m, int *left);
/* for-update and batch: a committed read answers what cannot succeed
 * without the lock (skipped while the event is known to be selling); the
 * rest, up to max (and up to the tickets left, if max_left), go through
 * grant. If a lock wait runs out, the rest are answered busy. */
void locked_group(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                  struct reservation_request **group, int n, grant_fn grant, int max,
                  bool max_left);

/* The sweeper (sweeper.c): a thread that writes the expiry of overdue
 * holds every interval_ms, counting them in metrics. 0, or -1 (no thread). */
struct sweeper;
int sweeper_start(struct db_pool *pool, struct metrics *metrics, int interval_ms,
                  struct sweeper **out);
/* NULL-safe: stops the thread (after the sweep in progress) and frees. */
void sweeper_stop(struct sweeper *sw);

/* The earliest deadline among group[0..n). */
const struct timespec *earliest_deadline(struct reservation_request *const *group, int n);

#endif
