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
 * statement's file name without .sql ("reserve_for_update_nowait" for the
 * twin), for messages. */
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

/* STMT_EVENT_INSERT, STMT_EVENT_GET, STMT_EVENT_LIST */
#define EVENT_COLUMNS(X)                                            \
    X(EVENT_COL_ID, "id", DB_TYPE_INT8)                             \
    X(EVENT_COL_NAME, "name", DB_TYPE_TEXT)                         \
    X(EVENT_COL_DATE_MS, "date_ms", DB_TYPE_INT8)                   \
    X(EVENT_COL_LOCATION, "location", DB_TYPE_TEXT)                 \
    X(EVENT_COL_MAX_TICKETS, "max_tickets", DB_TYPE_INT4)           \
    X(EVENT_COL_RESERVED_TICKETS, "reserved_tickets", DB_TYPE_INT4) \
    X(EVENT_COL_CREATED_AT_MS, "created_at_ms", DB_TYPE_INT8)
enum event_col { EVENT_COLUMNS(DB_COLUMN_ENUM) EVENT_NCOLS };
struct event_row {
    int64_t id;
    const char *name;
    int64_t date_ms;
    const char *location;
    int64_t max_tickets, reserved_tickets;
    int64_t created_at_ms;
};
int event_row_decode(const PGresult *res, int row, struct event_row *out);

/* STMT_RESERVATION_GET, STMT_RESERVATION_LIST, _BY_EVENT, _BY_USER */
#define RESERVATION_COLUMNS(X)                                        \
    X(RESERVATION_COL_ID, "id", DB_TYPE_INT8)                         \
    X(RESERVATION_COL_EVENT_ID, "event_id", DB_TYPE_INT8)             \
    X(RESERVATION_COL_USER_ID, "user_id", DB_TYPE_INT8)               \
    X(RESERVATION_COL_STATUS, "status", DB_TYPE_TEXT)                 \
    X(RESERVATION_COL_RESERVED_AT_MS, "reserved_at_ms", DB_TYPE_INT8) \
    X(RESERVATION_COL_CANCELLED_AT_MS, "cancelled_at_ms", DB_TYPE_INT8) /* NULL while active */
enum reservation_col { RESERVATION_COLUMNS(DB_COLUMN_ENUM) RESERVATION_NCOLS };
struct reservation_row {
    int64_t id, event_id, user_id;
    const char *status;
    int64_t reserved_at_ms;
    bool cancelled; /* cancelled_at_ms is set */
    int64_t cancelled_at_ms;
};
int reservation_row_decode(const PGresult *res, int row, struct reservation_row *out);

/* The granting statements, each its own columns; the reservation a
 * statement granted (NULL when it did not) is two of them. */
#define GRANTED_COLUMNS(X, P)                                 \
    X(P##_COL_RESERVATION_ID, "reservation_id", DB_TYPE_INT8) \
    X(P##_COL_RESERVED_AT_MS, "reserved_at_ms", DB_TYPE_INT8)
#define PRECHECK_COLUMNS(X)                          \
    X(PRECHECK_COL_ORD, "ord", DB_TYPE_INT4)         \
    X(PRECHECK_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    X(PRECHECK_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4)
enum precheck_col { PRECHECK_COLUMNS(DB_COLUMN_ENUM) PRECHECK_NCOLS };
/* STMT_RESERVE_FOR_UPDATE and STMT_RESERVE_FOR_UPDATE_NOWAIT */
#define FOR_UPDATE_COLUMNS(X)                          \
    X(FOR_UPDATE_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, FOR_UPDATE)                     \
    X(FOR_UPDATE_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4)
enum for_update_col { FOR_UPDATE_COLUMNS(DB_COLUMN_ENUM) FOR_UPDATE_NCOLS };
#define ATOMIC_COLUMNS(X)                          \
    X(ATOMIC_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, ATOMIC)
enum atomic_col { ATOMIC_COLUMNS(DB_COLUMN_ENUM) ATOMIC_NCOLS };
#define BATCH_COLUMNS(X)                          \
    X(BATCH_COL_ORD, "ord", DB_TYPE_INT4)         \
    X(BATCH_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    GRANTED_COLUMNS(X, BATCH)                     \
    X(BATCH_COL_TICKETS_LEFT, "tickets_left", DB_TYPE_INT4)
enum batch_col { BATCH_COLUMNS(DB_COLUMN_ENUM) BATCH_NCOLS };
#define RESOLVE_COLUMNS(X)                  \
    X(RESOLVE_COL_ORD, "ord", DB_TYPE_INT4) \
    GRANTED_COLUMNS(X, RESOLVE)
enum resolve_col { RESOLVE_COLUMNS(DB_COLUMN_ENUM) RESOLVE_NCOLS };
#define UNSAFE_INSERT_COLUMNS(X) GRANTED_COLUMNS(X, UNSAFE_INSERT)
enum unsafe_insert_col { UNSAFE_INSERT_COLUMNS(DB_COLUMN_ENUM) UNSAFE_INSERT_NCOLS };

/* A row of STMT_RESERVE_PRECHECK, _FOR_UPDATE(_NOWAIT), _ATOMIC, _BATCH,
 * _RESOLVE or STMT_UNSAFE_INSERT; what a statement does not return stays
 * 0, NULL or false. */
struct grant_row {
    int ord;             /* 1-based position in the group */
    const char *outcome; /* "reserved", "sold_out"..., or a statement's own word */
    bool granted;        /* reservation_id and reserved_at_ms are set */
    int64_t reservation_id, reserved_at_ms;
    bool has_tickets_left; /* tickets_left is set (NULL: no such event) */
    int tickets_left;
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
#define CANCEL_COLUMNS(X)                          \
    X(CANCEL_COL_OUTCOME, "outcome", DB_TYPE_TEXT) \
    X(CANCEL_COL_CANCELLED_NOW, "cancelled_now", DB_TYPE_BOOL)
enum cancel_col { CANCEL_COLUMNS(DB_COLUMN_ENUM) CANCEL_NCOLS };
struct cancel_row {
    const char *outcome; /* "cancelled" or "reservation_not_found" */
    bool cancelled_now;
};
int cancel_row_decode(const PGresult *res, int row, struct cancel_row *out);

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

/* STMT_RESERVATION_OWNER */
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
#define SWEEP_COLUMNS(X) X(SWEEP_COL_DELETED, "deleted", DB_TYPE_INT4)
enum sweep_col { SWEEP_COLUMNS(DB_COLUMN_ENUM) SWEEP_NCOLS };
int sweep_row_decode(const PGresult *res, int row, int *deleted);

/* STMT_PING */
#define PING_COLUMNS(X) X(PING_COL_ONE, "one", DB_TYPE_INT4)
enum ping_col { PING_COLUMNS(DB_COLUMN_ENUM) PING_NCOLS };

#endif
