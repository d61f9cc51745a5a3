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

/* The most tickets one reservation may take (the events' maxPerUser is
 * 1..this). */
#define RESERVATION_MAX_QUANTITY 100

/* The strategies, one row each: X(id, name, needs_ack, waits_to_fill,
 * per_event, purchase_flow, help). id names the run function (id_run, in
 * src/reservation/strategies/id.c); needs_ack: refuses to start without
 * --i-understand-unsafe-oversells; waits_to_fill: a group on an idle event
 * waits --batch-wait-us to fill; per_event: an event's requests queue in
 * the server and run one group at a time (else each request runs on its
 * own, up to the pool's share); purchase_flow: grants quantities and holds,
 * and writes a request's Idempotency-Key record in its granting statement
 * (else one final ticket per request, as the original app, and the record
 * is stored after the answer).
 * Adding a strategy is one file and one row here: `reservd --list-strategies`
 * prints the rows (safe unless needs_ack), and the tests and loadtest/bench
 * cover whatever it lists. */
#define RESERVATION_STRATEGIES(X)                                                       \
    X(for_update, "for-update", false, false, true, true,                               \
      "one transaction per request, event row locked; pipelined per event (default)")   \
    X(batch, "batch", false, true, true, true,                                          \
      "an event's queued requests granted together: one lock, one insert, one commit")  \
    X(atomic, "atomic", false, false, false, true,                                      \
      "one conditional UPDATE takes the ticket, then the insert (comparison point)")    \
    X(unsafe, "unsafe", true, false, false, false,                                      \
      "the original app's count-then-insert without a lock: OVERSELLS (teaching only; " \
      "single final tickets only, as the original app: no quantities, no holds)")

struct reservation_strategy_info {
    const char *name;
    bool needs_ack;
    bool waits_to_fill;
    bool per_event;
    bool purchase_flow;
    const char *help;
};

/* The table above, in order. */
extern const struct reservation_strategy_info reservation_strategies[];
extern const size_t reservation_nstrategies;
/* The row named name, or NULL. */
const struct reservation_strategy_info *reservation_strategy_find(const char *name);

/* A request's state. PENDING (zero, as calloc leaves it) means undecided:
 * a request is never answered in that state, nor UNKNOWN (the database
 * connection died before the outcome was known: resolved first). */
enum reservation_outcome {
    RESERVATION_PENDING = 0,
    RESERVATION_RESERVED,
    RESERVATION_EVENT_NOT_FOUND,
    RESERVATION_USER_NOT_FOUND,
    RESERVATION_ALREADY_RESERVED,
    RESERVATION_SOLD_OUT,
    RESERVATION_OVER_LIMIT,  /* quantity above the event's max_per_user: 400 */
    RESERVATION_BUSY,        /* no connection or lock in time: 503 busy */
    RESERVATION_KEY_TAKEN,   /* its Idempotency-Key was recorded by another
                                request meanwhile: nothing changed, and the
                                answer is that record's (replay or 422) */
    RESERVATION_UNAVAILABLE, /* the database failed: 503 unavailable */
    RESERVATION_UNKNOWN,     /* private to src/reservation/ */
};

/* Whether an outcome is an answer (not PENDING or UNKNOWN). */
bool reservation_outcome_decided(enum reservation_outcome outcome);
/* The outcome's text, as the SQL statements write it ("reserved",
 * "sold_out", ...). */
const char *reservation_outcome_name(enum reservation_outcome outcome);
/* Map the outcome text the SQL returns (the decisions, RESERVED to
 * OVER_LIMIT). 0, or -1 if unknown. */
int reservation_outcome_parse(const char *text, enum reservation_outcome *out);

struct reservation_grant {
    int64_t id;
    int64_t reserved_at_ms;
    int quantity;
    bool held; /* status HELD, expiring at expires_at_ms; else RESERVED */
    int64_t expires_at_ms;
};

struct metrics;

struct reservation_options {
    const char *strategy;    /* a name from RESERVATION_STRATEGIES */
    int batch_max;           /* most requests for one event handled at once */
    int batch_wait_us;       /* waits_to_fill: longest an idle event waits to fill */
    int sweep_interval_ms;   /* the sweeper's pause between sweeps; 0: no sweeper */
    struct metrics *metrics; /* the sweeper counts expiries there (may be NULL) */
};

struct reservation_strategy;

/* One request. The submitter owns the memory and keeps it alive until
 * done() has been called. */
struct reservation_request {
    int64_t event_id;
    int64_t user_id;
    int quantity;             /* 1..RESERVATION_MAX_QUANTITY */
    bool hold;                /* grant a HELD reservation that expires */
    struct timespec deadline; /* CLOCK_MONOTONIC: answer busy after it */
    /* The Idempotency-Key record a grant writes in its own transaction
     * (SHA-256 hex of the key's scope and of the request, seconds to keep
     * it, as text); all NULL without a key. Owned by the submitter. */
    const char *idem_key, *idem_fingerprint, *idem_ttl;
    /* Called exactly once, on any thread, possibly before
     * reservation_submit() returns; outcome is decided (and grant is set
     * for RESERVATION_RESERVED). */
    void (*done)(struct reservation_request *r);
    enum reservation_outcome outcome;
    struct reservation_grant grant;
    int tickets_left;  /* SOLD_OUT: what was left at its turn (0 while anyone waits) */
    int max_per_user;  /* OVER_LIMIT: the event's limit */
    int holds_expired; /* overdue holds its transaction expired (to count) */

    /* Private to src/reservation/. */
    struct work work;
    struct reservation_strategy *strategy;
    struct reservation_request *next;
};

/* 0, or -1 with a message in err (unknown name, out of memory, no
 * sweeper thread). The strategy runs its database work on workers; both
 * must outlive it. It also runs the sweeper (sweeper.c), a thread that
 * writes the expiry of overdue holds; destroy stops it. */
int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct workers *workers, struct reservation_strategy **out,
                                char *err, size_t errlen);
/* NULL-safe. Every submitted request must have been answered. */
void reservation_strategy_destroy(struct reservation_strategy *s);

/* s's row of the table. */
const struct reservation_strategy_info *reservation_info(const struct reservation_strategy *s);
/* Whether s grants quantities and holds (its row's purchase_flow). */
bool reservation_supports_holds(const struct reservation_strategy *s);

/* Grant (or refuse) r->quantity tickets of r->event_id to r->user_id, held
 * or final. Never blocks. */
void reservation_submit(struct reservation_strategy *s, struct reservation_request *r);

#endif
