#ifndef RESERVD_STATEMENTS_H
#define RESERVD_STATEMENTS_H

/* What each statement returns. The text of STMT_NAME is sql/statements/
 * NAME.sql (compiled in); here, next to it, are its result columns: an
 * enum of positions, the names and types the statement must return (the
 * statements test checks them with PQdescribePrepared against a migrated
 * database), and the decoder that turns a row into a struct. Callers read
 * rows only through the decoders, never by column number. A decoder
 * returns 0, or -1 when the result does not have the declared columns or
 * has no such row; strings point into the PGresult and live as long as it. */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

/* PostgreSQL's type OIDs (pg_type.oid, fixed since 7.x; catalog/pg_type_d.h
 * ships only with the server headers). */
#define DB_TYPE_BOOL 16
#define DB_TYPE_INT8 20
#define DB_TYPE_INT4 23
#define DB_TYPE_TEXT 25

struct db_column {
    const char *name;
    Oid type;
};

/* The text the build embedded (generated from sql/statements/), and each
 * statement's file name without .sql ("reserve_for_update"), for
 * messages. */
extern const char *const db_statement_text[STMT_COUNT];
extern const char *const db_statement_names[STMT_COUNT];

/* Each statement's columns are one list, X(enum name, column name, type),
 * that makes both its enum of positions and its declared columns. */
#define DB_COLUMN_ENUM(id, name, type) id,

/* The columns stmt returns, in order, and their count in *n. */
const struct db_column *db_statement_columns(enum db_statement stmt, int *n);

/* STMT_USER_INSERT, STMT_USER_GET, STMT_USER_LIST */
#define USER_COLUMNS(X)                      \
    X(USER_COL_ID, "id", DB_TYPE_INT8)       \
    X(USER_COL_NAME, "name", DB_TYPE_TEXT)   \
    X(USER_COL_EMAIL, "email", DB_TYPE_TEXT) \
    X(USER_COL_CREATED_AT_MS, "created_at_ms", DB_TYPE_INT8)
enum user_col { USER_COLUMNS(DB_COLUMN_ENUM) USER_NCOLS };
struct user_row {
    int64_t id;
    const char *name, *email;
    int64_t created_at_ms;
};
int user_row_decode(const PGresult *res, int row, struct user_row *out);

/* STMT_EVENT_INSERT, STMT_EVENT_GET, STMT_EVENT_LIST; held_tickets leaves
 * out overdue holds (sql/statements/event_get.sql). */
#define EVENT_COLUMNS(X)                                            \
    X(EVENT_COL_ID, "id", DB_TYPE_INT8)                             \
    X(EVENT_COL_NAME, "name", DB_TYPE_TEXT)                         \
    X(EVENT_COL_DATE_MS, "date_ms", DB_TYPE_INT8)                   \
    X(EVENT_COL_LOCATION, "location", DB_TYPE_TEXT)                 \
    X(EVENT_COL_MAX_TICKETS, "max_tickets", DB_TYPE_INT4)           \
    X(EVENT_COL_RESERVED_TICKETS, "reserved_tickets", DB_TYPE_INT4) \
    X(EVENT_COL_HELD_TICKETS, "held_tickets", DB_TYPE_INT4)         \
    X(EVENT_COL_MAX_PER_USER, "max_per_user", DB_TYPE_INT4)         \
    X(EVENT_COL_HOLD_SECONDS, "hold_seconds", DB_TYPE_INT4)         \
    X(EVENT_COL_OFFER_SECONDS, "offer_seconds", DB_TYPE_INT4)       \
    X(EVENT_COL_WAITLIST_LENGTH, "waitlist_length", DB_TYPE_INT4)   \
    X(EVENT_COL_CREATED_AT_MS, "created_at_ms", DB_TYPE_INT8)
enum event_col { EVENT_COLUMNS(DB_COLUMN_ENUM) EVENT_NCOLS };
struct event_row {
    int64_t id;
    const char *name;
    int64_t date_ms;
    const char *location;
    int64_t max_tickets, reserved_tickets, held_tickets;
    int64_t max_per_user, hold_seconds, offer_seconds, waitlist_length;
    int64_t created_at_ms;
};
int event_row_decode(const PGresult *res, int row, struct event_row *out);

/* STMT_RESERVATION_GET, STMT_RESERVATION_LIST, _BY_EVENT, _BY_USER; status
 * is as clients see it (an overdue hold is EXPIRED). */
#define RESERVATION_COLUMNS(X)                                        \
    X(RESERVATION_COL_ID, "id", DB_TYPE_INT8)                         \
    X(RESERVATION_COL_EVENT_ID, "event_id", DB_TYPE_INT8)             \
    X(RESERVATION_COL_USER_ID, "user_id", DB_TYPE_INT8)               \
    X(RESERVATION_COL_QUANTITY, "quantity", DB_TYPE_INT4)             \
    X(RESERVATION_COL_STATUS, "status", DB_TYPE_TEXT)                 \
    X(RESERVATION_COL_RESERVED_AT_MS, "reserved_at_ms", DB_TYPE_INT8) \
    X(RESERVATION_COL_EXPIRES_AT_MS, "expires_at_ms", DB_TYPE_INT8)   \
    X(RESERVATION_COL_CANCELLED_AT_MS, "cancelled_at_ms", DB_TYPE_INT8) /* NULL while active */
enum reservation_col { RESERVATION_COLUMNS(DB_COLUMN_ENUM) RESERVATION_NCOLS };
struct reservation_row {
    int64_t id, event_id, user_id, quantity;
    const char *status;
    int64_t reserved_at_ms;
    bool has_expiry; /* expires_at_ms is set: a hold (or a cancelled one) */
    int64_t expires_at_ms;
    bool cancelled; /* cancelled_at_ms is set */
    int64_t cancelled_at_ms;
};
int reservation_row_decode(const PGresult *res, int row, struct reservation_row *out);

/* The granting statements, each its own columns; the reservation a
 * statement granted (NULL when it did not) is three of them. */
#define GRANTED_COLUMNS(X, P)                                 \
    X(P##_COL_RESERVATION_ID, "reservation_id", DB_TYPE_INT8) \
    X(P##_COL_RESERVED_AT_MS, "reserved_at_ms", DB_TYPE_INT8) \
    X(P##_COL_EXPIRES_AT_MS, "expires_at_ms", DB_TYPE_INT8) /* NULL unless a hold */
/* What the locked statements also say: the tickets left after the
 * request's turn (for sold_out's message and the hint), the event's
 * max_per_user (for over_limit's), and how many overdue holds the call
 * expired (on one row). */
#define DECIDED_COLUMNS(X, P)                             \
    X(P##_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4) \
    X(P##_COL_MAX_PER_USER, "max_per_user", DB_TYPE_INT4) \
    X(P##_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4)
#define PRECHECK_COLUMNS(X)                                    \
    X(PRECHECK_COL_ORD, "ord", DB_TYPE_INT4)                   \
    X(PRECHECK_COL_OUTCOME, "outcome", DB_TYPE_TEXT)           \
    X(PRECHECK_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4) \
    X(PRECHECK_COL_MAX_PER_USER, "max_per_user", DB_TYPE_INT4)
enum precheck_col { PRECHECK_COLUMNS(DB_COLUMN_ENUM) PRECHECK_NCOLS };
/* STMT_RESERVE_FOR_UPDATE */
#define FOR_UPDATE_COLUMNS(X)                          \
    X(FOR_UPDATE_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, FOR_UPDATE)                     \
    DECIDED_COLUMNS(X, FOR_UPDATE)
enum for_update_col { FOR_UPDATE_COLUMNS(DB_COLUMN_ENUM) FOR_UPDATE_NCOLS };
#define ATOMIC_COLUMNS(X)                          \
    X(ATOMIC_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, ATOMIC)                     \
    DECIDED_COLUMNS(X, ATOMIC)
enum atomic_col { ATOMIC_COLUMNS(DB_COLUMN_ENUM) ATOMIC_NCOLS };
#define BATCH_COLUMNS(X)                          \
    X(BATCH_COL_ORD, "ord", DB_TYPE_INT4)         \
    X(BATCH_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, BATCH)                     \
    DECIDED_COLUMNS(X, BATCH)
enum batch_col { BATCH_COLUMNS(DB_COLUMN_ENUM) BATCH_NCOLS };
#define RESOLVE_COLUMNS(X)                  \
    X(RESOLVE_COL_ORD, "ord", DB_TYPE_INT4) \
    GRANTED_COLUMNS(X, RESOLVE)             \
    X(RESOLVE_COL_QUANTITY, "quantity", DB_TYPE_INT4)
enum resolve_col { RESOLVE_COLUMNS(DB_COLUMN_ENUM) RESOLVE_NCOLS };
#define UNSAFE_INSERT_COLUMNS(X) GRANTED_COLUMNS(X, UNSAFE_INSERT)
enum unsafe_insert_col { UNSAFE_INSERT_COLUMNS(DB_COLUMN_ENUM) UNSAFE_INSERT_NCOLS };

/* A row of STMT_RESERVE_PRECHECK, _FOR_UPDATE, _ATOMIC, _BATCH, _RESOLVE
 * or STMT_UNSAFE_INSERT; what a statement does not return stays 0, NULL
 * or false. */
struct grant_row {
    int ord;             /* 1-based position in the group */
    const char *outcome; /* "reserved", "sold_out"..., or a statement's own word */
    bool granted;        /* reservation_id and reserved_at_ms are set */
    int64_t reservation_id, reserved_at_ms;
    bool held; /* expires_at_ms is set */
    int64_t expires_at_ms;
    int quantity;          /* 0 unless the statement returns it */
    bool has_tickets_left; /* tickets_left is set (NULL: no such event) */
    int tickets_left;
    int max_per_user, holds_expired;
};
int grant_row_decode(enum db_statement stmt, const PGresult *res, int row, struct grant_row *out);

/* STMT_UNSAFE_CHECK */
#define UNSAFE_CHECK_COLUMNS(X)                                                            \
    X(UNSAFE_CHECK_COL_MAX_TICKETS, "max_tickets", DB_TYPE_INT4) /* NULL: no such event */ \
    X(UNSAFE_CHECK_COL_ACTIVE, "active", DB_TYPE_INT8)                                     \
    X(UNSAFE_CHECK_COL_USER_FOUND, "user_found", DB_TYPE_BOOL)                             \
    X(UNSAFE_CHECK_COL_ALREADY_HELD, "already_held", DB_TYPE_BOOL)
enum unsafe_check_col { UNSAFE_CHECK_COLUMNS(DB_COLUMN_ENUM) UNSAFE_CHECK_NCOLS };
struct unsafe_check_row {
    bool event_found;
    int64_t max_tickets, active;
    bool user_found, already_held;
};
int unsafe_check_row_decode(const PGresult *res, int row, struct unsafe_check_row *out);

/* STMT_CANCEL */
#define CANCEL_COLUMNS(X)                                      \
    X(CANCEL_COL_OUTCOME, "outcome", DB_TYPE_TEXT)             \
    X(CANCEL_COL_CANCELLED_NOW, "cancelled_now", DB_TYPE_BOOL) \
    X(CANCEL_COL_WAS_HELD, "was_held", DB_TYPE_BOOL)           \
    X(CANCEL_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4)
enum cancel_col { CANCEL_COLUMNS(DB_COLUMN_ENUM) CANCEL_NCOLS };
struct cancel_row {
    const char *outcome; /* "cancelled" or "reservation_not_found" */
    bool cancelled_now, was_held;
    int holds_expired;
};
int cancel_row_decode(const PGresult *res, int row, struct cancel_row *out);

/* STMT_CONFIRM */
#define CONFIRM_COLUMNS(X)                                      \
    X(CONFIRM_COL_OUTCOME, "outcome", DB_TYPE_TEXT)             \
    X(CONFIRM_COL_CONFIRMED_NOW, "confirmed_now", DB_TYPE_BOOL) \
    X(CONFIRM_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4)
enum confirm_col { CONFIRM_COLUMNS(DB_COLUMN_ENUM) CONFIRM_NCOLS };
struct confirm_row {
    /* "confirmed", "hold_expired", "reservation_cancelled" or
     * "reservation_not_found" */
    const char *outcome;
    bool confirmed_now;
    int holds_expired;
};
int confirm_row_decode(const PGresult *res, int row, struct confirm_row *out);

/* STMT_EVENT_UPDATE */
#define EVENT_UPDATE_COLUMNS(X)                                  \
    X(EVENT_UPDATE_COL_OUTCOME, "outcome", DB_TYPE_TEXT)         \
    X(EVENT_UPDATE_COL_TICKETS_OUT, "tickets_out", DB_TYPE_INT4) \
    X(EVENT_UPDATE_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4)
enum event_update_col { EVENT_UPDATE_COLUMNS(DB_COLUMN_ENUM) EVENT_UPDATE_NCOLS };
struct event_update_row {
    /* "updated", "event_not_found" or "capacity_below_reserved" */
    const char *outcome;
    int tickets_out; /* reserved + held, as the update saw them */
    int holds_expired;
};
int event_update_row_decode(const PGresult *res, int row, struct event_update_row *out);

/* STMT_SWEEP */
#define SWEEP_COLUMNS(X)                          \
    X(SWEEP_COL_EXPIRED, "expired", DB_TYPE_INT4) \
    X(SWEEP_COL_MORE, "more", DB_TYPE_BOOL)
enum sweep_col { SWEEP_COLUMNS(DB_COLUMN_ENUM) SWEEP_NCOLS };
struct sweep_row {
    int expired; /* holds whose expiry this sweep wrote */
    bool more;   /* more may be due: sweep again at once */
};
int sweep_row_decode(const PGresult *res, int row, struct sweep_row *out);
/* STMT_USER_NEXT_ID */
#define NEXT_ID_COLUMNS(X) X(NEXT_ID_COL_ID, "id", DB_TYPE_INT8)
enum next_id_col { NEXT_ID_COLUMNS(DB_COLUMN_ENUM) NEXT_ID_NCOLS };
int next_id_row_decode(const PGresult *res, int row, int64_t *id);

/* STMT_USER_TOKEN_SET */
#define TOKEN_SET_COLUMNS(X) X(TOKEN_SET_COL_USER_ID, "user_id", DB_TYPE_INT8)
enum token_set_col { TOKEN_SET_COLUMNS(DB_COLUMN_ENUM) TOKEN_SET_NCOLS };
int token_set_row_decode(const PGresult *res, int row, int64_t *user_id);

/* STMT_USER_TOKEN_GET */
#define TOKEN_COLUMNS(X) X(TOKEN_COL_SHA256, "token_sha256", DB_TYPE_TEXT)
enum token_col { TOKEN_COLUMNS(DB_COLUMN_ENUM) TOKEN_NCOLS };
int token_row_decode(const PGresult *res, int row, const char **sha256_hex);

/* STMT_RESERVATION_OWNER, STMT_WAITLIST_OWNER */
#define OWNER_COLUMNS(X) X(OWNER_COL_OWNER_ID, "owner_id", DB_TYPE_INT8)
enum owner_col { OWNER_COLUMNS(DB_COLUMN_ENUM) OWNER_NCOLS };
int owner_row_decode(const PGresult *res, int row, int64_t *owner_id);

/* STMT_IDEMPOTENCY_GET */
#define IDEMPOTENCY_COLUMNS(X)                                  \
    X(IDEMPOTENCY_COL_FINGERPRINT, "fingerprint", DB_TYPE_TEXT) \
    X(IDEMPOTENCY_COL_STATUS, "status", DB_TYPE_INT4)           \
    X(IDEMPOTENCY_COL_BODY, "body", DB_TYPE_TEXT)               \
    X(IDEMPOTENCY_COL_LOCATION, "location", DB_TYPE_TEXT) /* NULL: none */
enum idempotency_col { IDEMPOTENCY_COLUMNS(DB_COLUMN_ENUM) IDEMPOTENCY_NCOLS };
struct idempotency_row {
    const char *fingerprint;
    int status;
    const char *body;
    const char *location; /* NULL when the answer had none */
};
int idempotency_row_decode(const PGresult *res, int row, struct idempotency_row *out);

/* STMT_IDEMPOTENCY_PUT: a row when the record was stored */
#define IDEMPOTENCY_PUT_COLUMNS(X) X(IDEMPOTENCY_PUT_COL_STORED, "stored", DB_TYPE_INT4)
enum idempotency_put_col { IDEMPOTENCY_PUT_COLUMNS(DB_COLUMN_ENUM) IDEMPOTENCY_PUT_NCOLS };

/* STMT_IDEMPOTENCY_SWEEP */
#define IDEMPOTENCY_SWEEP_COLUMNS(X) X(IDEMPOTENCY_SWEEP_COL_DELETED, "deleted", DB_TYPE_INT4)
enum idempotency_sweep_col { IDEMPOTENCY_SWEEP_COLUMNS(DB_COLUMN_ENUM) IDEMPOTENCY_SWEEP_NCOLS };
int idempotency_sweep_row_decode(const PGresult *res, int row, int *deleted);

/* STMT_PING */
#define PING_COLUMNS(X) X(PING_COL_ONE, "one", DB_TYPE_INT4)
enum ping_col { PING_COLUMNS(DB_COLUMN_ENUM) PING_NCOLS };

/* The waiting list (sql/migrations/0005). An entry as clients see it
 * (status: an offer past its expiry is EXPIRED), as STMT_WAITLIST_GET and
 * STMT_WAITLIST_LIST return it and at the end of STMT_WAITLIST_JOIN's and
 * _LEAVE's rows (NULL there when there is no entry). */
#define WAITLIST_ENTRY_COLUMNS(X, P)                          \
    X(P##_COL_ID, "id", DB_TYPE_INT8)                         \
    X(P##_COL_EVENT_ID, "event_id", DB_TYPE_INT8)             \
    X(P##_COL_USER_ID, "user_id", DB_TYPE_INT8)               \
    X(P##_COL_QUANTITY, "quantity", DB_TYPE_INT4)             \
    X(P##_COL_STATUS, "status", DB_TYPE_TEXT)                 \
    X(P##_COL_POSITION, "position", DB_TYPE_INT4)             \
    X(P##_COL_RESERVATION_ID, "reservation_id", DB_TYPE_INT8) \
    X(P##_COL_JOINED_AT_MS, "joined_at_ms", DB_TYPE_INT8)     \
    X(P##_COL_OFFER_EXPIRES_AT_MS, "offer_expires_at_ms", DB_TYPE_INT8) /* NULL unless OFFERED */
#define WAITLIST_COLUMNS(X) WAITLIST_ENTRY_COLUMNS(X, WAITLIST)
enum waitlist_col { WAITLIST_COLUMNS(DB_COLUMN_ENUM) WAITLIST_NCOLS };
struct waitlist_row {
    int64_t id, event_id, user_id, quantity;
    const char *status;
    int64_t position;
    bool offered; /* reservation_id is set: an offer was made */
    int64_t reservation_id;
    int64_t joined_at_ms;
    bool has_offer_expiry; /* offer_expires_at_ms is set */
    int64_t offer_expires_at_ms;
};
int waitlist_row_decode(const PGresult *res, int row, struct waitlist_row *out);

/* STMT_WAITLIST_JOIN */
#define WAITLIST_JOIN_COLUMNS(X)                                      \
    X(WAITLIST_JOIN_COL_OUTCOME, "outcome", DB_TYPE_TEXT)             \
    X(WAITLIST_JOIN_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4)   \
    X(WAITLIST_JOIN_COL_MAX_PER_USER, "max_per_user", DB_TYPE_INT4)   \
    X(WAITLIST_JOIN_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4) \
    WAITLIST_ENTRY_COLUMNS(X, WAITLIST_JOIN)
enum waitlist_join_col { WAITLIST_JOIN_COLUMNS(DB_COLUMN_ENUM) WAITLIST_JOIN_NCOLS };
struct waitlist_join_row {
    /* "joined", "event_not_found", "user_not_found", "over_limit",
     * "already_reserved", "already_waiting" or "tickets_available" */
    const char *outcome;
    int tickets_left; /* what a new reservation would find (0 while anyone waits) */
    int max_per_user, holds_expired;
    bool has_entry;
    struct waitlist_row entry; /* "joined": WAITING, or OFFERED when tickets fit at once */
};
int waitlist_join_row_decode(const PGresult *res, int row, struct waitlist_join_row *out);

/* STMT_WAITLIST_LEAVE */
#define WAITLIST_LEAVE_COLUMNS(X)                                          \
    X(WAITLIST_LEAVE_COL_OUTCOME, "outcome", DB_TYPE_TEXT)                 \
    X(WAITLIST_LEAVE_COL_LEFT_NOW, "left_now", DB_TYPE_BOOL)               \
    X(WAITLIST_LEAVE_COL_OFFER_CANCELLED, "offer_cancelled", DB_TYPE_BOOL) \
    X(WAITLIST_LEAVE_COL_HOLDS_EXPIRED, "holds_expired", DB_TYPE_INT4)     \
    WAITLIST_ENTRY_COLUMNS(X, WAITLIST_LEAVE)
enum waitlist_leave_col { WAITLIST_LEAVE_COLUMNS(DB_COLUMN_ENUM) WAITLIST_LEAVE_NCOLS };
struct waitlist_leave_row {
    const char *outcome; /* "left" or "waitlist_entry_not_found" */
    bool left_now, offer_cancelled;
    int holds_expired;
    bool has_entry;
    struct waitlist_row entry; /* as it is after the call */
};
int waitlist_leave_row_decode(const PGresult *res, int row, struct waitlist_leave_row *out);

/* STMT_WAITLIST_TOTALS: offers made, fulfilled and expired, all events. */
#define WAITLIST_TOTALS_COLUMNS(X)                              \
    X(WAITLIST_TOTALS_COL_OFFERED, "offered", DB_TYPE_INT8)     \
    X(WAITLIST_TOTALS_COL_FULFILLED, "fulfilled", DB_TYPE_INT8) \
    X(WAITLIST_TOTALS_COL_EXPIRED, "expired", DB_TYPE_INT8)
enum waitlist_totals_col { WAITLIST_TOTALS_COLUMNS(DB_COLUMN_ENUM) WAITLIST_TOTALS_NCOLS };
struct waitlist_totals_row {
    int64_t offered, fulfilled, expired;
};
int waitlist_totals_row_decode(const PGresult *res, int row, struct waitlist_totals_row *out);

#endif
