/* All SQL the server runs, in one place. Every statement is prepared once
 * per pooled connection and executed with parameters; no SQL is ever built
 * from request text. Timestamps leave the database as epoch milliseconds
 * and are formatted in C (timefmt.c). */

#include "db.h"

#define MS(col) "floor(extract(epoch FROM " col ") * 1000)::int8"
#define USER_COLS "id, name, email, " MS("created_at")
#define EVENT_COLS "id, name, " MS("date") ", location, max_tickets, reserved_tickets, " MS("created_at")
#define RESERVATION_COLS \
    "id, event_id, user_id, status, " MS("reserved_at") ", " MS("cancelled_at")

/* $3 is the lock wait this request can afford (ms, as text): the request's
 * deadline caps its wait for the event's row lock. The row is locked above
 * the join with cfg, so set_config has run before the lock is waited for. */
#define LOCK_BUDGET_CTE "cfg AS MATERIALIZED (SELECT set_config('lock_timeout', $3, true) AS v) "

#define RESERVE_FOR_UPDATE(lock)                                                            \
    "WITH " LOCK_BUDGET_CTE ", "                                                             \
    "ev AS (SELECT e.reserved_tickets < e.max_tickets AS has_room, "                        \
    "            e.max_tickets - e.reserved_tickets AS left_before "                          \
    "            FROM events e, cfg WHERE e.id = $1 " lock "), "                              \
    "usr AS (SELECT EXISTS (SELECT 1 FROM users u WHERE u.id = $2) AS found), "              \
    "held AS (SELECT EXISTS (SELECT 1 FROM reservations r WHERE r.event_id = $1 "            \
    "         AND r.user_id = $2 AND r.status = 'RESERVED') AS yes), "                       \
    "ins AS (INSERT INTO reservations (event_id, user_id) SELECT $1, $2 FROM ev, usr, held " \
    "        WHERE ev.has_room AND usr.found AND NOT held.yes RETURNING id, reserved_at), "  \
    "upd AS (UPDATE events SET reserved_tickets = reserved_tickets + 1 "                     \
    "        WHERE id = $1 AND EXISTS (SELECT 1 FROM ins)) "                                 \
    "SELECT CASE WHEN ev.has_room IS NULL THEN 'event_not_found' "                           \
    "WHEN NOT usr.found THEN 'user_not_found' WHEN held.yes THEN 'already_reserved' "        \
    "WHEN ins.id IS NULL THEN 'sold_out' ELSE 'reserved' END, ins.id, " MS("ins.reserved_at") \
    ", ev.left_before - (ins.id IS NOT NULL)::int "                                          \
    "FROM usr CROSS JOIN held LEFT JOIN ev ON true LEFT JOIN ins ON true"

static const char *const statements[STMT_COUNT] = {
    [STMT_PING] = "SELECT 1",
    [STMT_USER_INSERT] =
        "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING " USER_COLS,
    [STMT_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = $1",
    [STMT_USER_LIST] =
        "SELECT " USER_COLS " FROM users WHERE id > $1 ORDER BY id LIMIT $2",
    [STMT_EVENT_INSERT] =
        "INSERT INTO events (name, date, location, max_tickets) "
        "VALUES ($1, $2::timestamptz, $3, $4) RETURNING " EVENT_COLS,
    [STMT_EVENT_GET] = "SELECT " EVENT_COLS " FROM events WHERE id = $1",
    [STMT_EVENT_LIST] =
        "SELECT " EVENT_COLS " FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    /* for-update's committed read for a group of users ($2, in order):
     * answers what cannot succeed without any lock, 'available' for the
     * rest, and the tickets left. LATERAL ... LIMIT 1 keeps each check an index lookup per user
     * (see reservd_reserve_batch). */
    [STMT_RESERVE_PRECHECK] =
        "SELECT u.ord::int, CASE WHEN e.id IS NULL THEN 'event_not_found' "
        "WHEN k.one IS NULL THEN 'user_not_found' "
        "WHEN h.one IS NOT NULL THEN 'already_reserved' "
        "WHEN e.reserved_tickets >= e.max_tickets THEN 'sold_out' ELSE 'available' END, "
        "e.max_tickets - e.reserved_tickets "
        "FROM unnest($2::int8[]) WITH ORDINALITY AS u (user_id, ord) "
        "LEFT JOIN events e ON e.id = $1 "
        "LEFT JOIN LATERAL (SELECT 1 AS one FROM users x WHERE x.id = u.user_id LIMIT 1) k ON true "
        "LEFT JOIN LATERAL (SELECT 1 AS one FROM reservations r WHERE r.event_id = $1 "
        "AND r.user_id = u.user_id AND r.status = 'RESERVED' LIMIT 1) h ON true",
    /* for-update as one statement: lock the event row, check, insert,
     * count; returns the outcome, the reservation, and the tickets left.
     * Measured with pgbench, one client, medians of 3: this statement
     * 4,588 tps, the same logic as a PL/pgSQL function 4,231, the five
     * plain statements pipelined 4,744. The duplicate check reads the
     * statement's snapshot; a duplicate that slips past it is stopped by
     * the unique index and reported as already_reserved. The NOWAIT twin
     * runs behind another in a pipeline (src/reservation/strategy.c). */
    [STMT_RESERVE_FOR_UPDATE] = RESERVE_FOR_UPDATE("FOR UPDATE OF e"),
    [STMT_RESERVE_FOR_UPDATE_NOWAIT] = RESERVE_FOR_UPDATE("FOR UPDATE OF e NOWAIT"),
    [STMT_RESERVE_ATOMIC] =
        "SELECT outcome, reservation_id, " MS("reserved_at")
        " FROM reservd_reserve_atomic($1, $2, $3)",
    /* batch: one lock, one INSERT and one counter update for a group of
     * users ($2, in arrival order). Each gets the outcome the per-request
     * statement would have given it at its turn: a user's later request in
     * the same group meets what their first got (already_reserved after a
     * grant, sold_out after a refusal). Also returns the tickets left.
     * A plain statement rather than a PL/pgSQL function: pgbench, one
     * client, 100 users per call: 205-399 vs 191-326 tps; 1 user: 2,798-3,307
     * vs 821-892 tps. The LATERAL ... LIMIT 1 lookups stay index probes per
     * user: as joins, the planner (with no statistics yet for a new event)
     * hashed every active reservation of the event, a cost that grew with
     * each batch.
     * The duplicate probes read the statement's snapshot, taken before the
     * lock wait: a reservation that another writer (another instance)
     * committed meanwhile is caught by ON CONFLICT, which reads the latest
     * committed rows. Such a row answers 'conflict' (already_reserved) and
     * its ticket is not spent; the caller requeues the group's sold_out
     * answers, so nobody is refused a ticket that is still there. */
    [STMT_RESERVE_BATCH] =
        "WITH " LOCK_BUDGET_CTE ", "
        "req AS (SELECT u.user_id, u.ord::int AS ord "
        "             FROM unnest($2::int8[]) WITH ORDINALITY AS u (user_id, ord)), "
        "ev AS (SELECT e.max_tickets - e.reserved_tickets AS left_before "
        "       FROM events e, cfg WHERE e.id = $1 FOR UPDATE OF e), "
        "classified AS ("
        " SELECT req.ord, req.user_id, CASE WHEN ev.left_before IS NULL THEN 'event_not_found' "
        "  WHEN k.one IS NULL THEN 'user_not_found' WHEN h.one IS NOT NULL THEN 'already_reserved' "
        "  WHEN row_number() OVER (PARTITION BY req.user_id ORDER BY req.ord) > 1 THEN 'repeat' "
        "  ELSE 'candidate' END AS outcome "
        " FROM req LEFT JOIN ev ON true "
        " LEFT JOIN LATERAL (SELECT 1 AS one FROM users x WHERE x.id = req.user_id LIMIT 1) k ON true "
        " LEFT JOIN LATERAL (SELECT 1 AS one FROM reservations r WHERE r.event_id = $1 "
        "  AND r.user_id = req.user_id AND r.status = 'RESERVED' LIMIT 1) h ON true), "
        "ranked AS ("
        " SELECT c.ord, c.user_id, CASE WHEN c.outcome <> 'candidate' THEN c.outcome "
        "  WHEN row_number() OVER (PARTITION BY c.outcome = 'candidate' ORDER BY c.ord) "
        "       <= (SELECT ev.left_before FROM ev) THEN 'reserved' ELSE 'sold_out' END AS outcome "
        " FROM classified c), "
        "ins AS (INSERT INTO reservations AS r (event_id, user_id) "
        "        SELECT $1, ranked.user_id FROM ranked WHERE ranked.outcome = 'reserved' "
        "        ORDER BY ranked.ord "
        "        ON CONFLICT (event_id, user_id) WHERE status = 'RESERVED' DO NOTHING "
        "        RETURNING r.id, r.user_id, r.reserved_at), "
        "upd AS (UPDATE events e SET reserved_tickets = e.reserved_tickets + (SELECT count(*) FROM ins) "
        "        WHERE e.id = $1 AND EXISTS (SELECT 1 FROM ins)) "
        "SELECT a.ord, CASE WHEN a.outcome = 'reserved' AND ins.id IS NULL THEN 'conflict' "
        " WHEN a.outcome <> 'repeat' THEN a.outcome "
        " WHEN EXISTS (SELECT 1 FROM ranked f WHERE f.user_id = a.user_id AND f.outcome = 'reserved') "
        " THEN 'already_reserved' ELSE 'sold_out' END, ins.id, " MS("ins.reserved_at") ", "
        " (SELECT ev.left_before FROM ev) - (SELECT count(*) FROM ins)::int "
        "FROM ranked a LEFT JOIN ins ON a.outcome = 'reserved' AND ins.user_id = a.user_id "
        "ORDER BY a.ord",
    /* unsafe: the original app's count-then-insert, kept for teaching. */
    [STMT_UNSAFE_CHECK] =
        "SELECT (SELECT max_tickets FROM events WHERE id = $1), "
        "(SELECT count(*) FROM reservations WHERE event_id = $1 AND status = 'RESERVED'), "
        "EXISTS (SELECT 1 FROM users WHERE id = $2), "
        "EXISTS (SELECT 1 FROM reservations WHERE event_id = $1 AND user_id = $2 "
        "AND status = 'RESERVED')",
    [STMT_UNSAFE_INSERT] =
        "INSERT INTO reservations (event_id, user_id) VALUES ($1, $2) "
        "RETURNING id, " MS("reserved_at"),
    [STMT_CANCEL] = "SELECT outcome, cancelled_now FROM reservd_cancel($1, $2)",
    /* After a connection died mid-commit: which of a group's users ($2)
     * hold an active reservation for the event now. */
    [STMT_RESERVE_RESOLVE] =
        "SELECT u.ord::int, r.id, " MS("r.reserved_at") " "
        "FROM unnest($2::int8[]) WITH ORDINALITY AS u (user_id, ord) "
        "JOIN LATERAL (SELECT x.id, x.reserved_at FROM reservations x WHERE x.event_id = $1 "
        "AND x.user_id = u.user_id AND x.status = 'RESERVED' LIMIT 1) r ON true",
    [STMT_RESERVATION_GET] =
        "SELECT " RESERVATION_COLS " FROM reservations WHERE id = $1",
    /* The listing, one statement per index it should use: connections run
     * generic plans (pool.c), and one statement with optional filters
     * planned generically walks the primary key past every other event's
     * rows. All take ($1 after id, $2 event or NULL, $3 user or NULL,
     * $4 status or NULL, $5 limit). */
    [STMT_RESERVATION_LIST] =
        "SELECT " RESERVATION_COLS " FROM reservations WHERE id > $1 "
        "AND ($2::int8 IS NULL OR event_id = $2) AND ($3::int8 IS NULL OR user_id = $3) "
        "AND ($4::text IS NULL OR status = $4) ORDER BY id LIMIT $5",
    [STMT_RESERVATION_LIST_BY_EVENT] =
        "SELECT " RESERVATION_COLS " FROM reservations WHERE event_id = $2 AND id > $1 "
        "AND ($3::int8 IS NULL OR user_id = $3) AND ($4::text IS NULL OR status = $4) "
        "ORDER BY id LIMIT $5",
    [STMT_RESERVATION_LIST_BY_USER] =
        "SELECT " RESERVATION_COLS " FROM reservations WHERE user_id = $3 AND id > $1 "
        "AND ($2::int8 IS NULL OR event_id = $2) AND ($4::text IS NULL OR status = $4) "
        "ORDER BY id LIMIT $5",
};

const char *db_statement_sql(enum db_statement stmt)
{
    return (unsigned)stmt < STMT_COUNT ? statements[stmt] : NULL;
}
