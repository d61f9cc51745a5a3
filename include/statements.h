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

/* The columns stmt returns, in order, and their count in *n. */
const struct db_column *db_statement_columns(enum db_statement stmt, int *n);

/* STMT_USER_INSERT, STMT_USER_GET, STMT_USER_LIST */
enum user_col { USER_COL_ID, USER_COL_NAME, USER_COL_EMAIL, USER_COL_CREATED_AT_MS, USER_NCOLS };
struct user_row {
    int64_t id;
    const char *name, *email;
    int64_t created_at_ms;
};
int user_row_decode(const PGresult *res, int row, struct user_row *out);

/* STMT_EVENT_INSERT, STMT_EVENT_GET, STMT_EVENT_LIST */
enum event_col {
    EVENT_COL_ID,
    EVENT_COL_NAME,
    EVENT_COL_DATE_MS,
    EVENT_COL_LOCATION,
    EVENT_COL_MAX_TICKETS,
    EVENT_COL_RESERVED_TICKETS,
    EVENT_COL_CREATED_AT_MS,
    EVENT_NCOLS
};
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
enum reservation_col {
    RESERVATION_COL_ID,
    RESERVATION_COL_EVENT_ID,
    RESERVATION_COL_USER_ID,
    RESERVATION_COL_STATUS,
    RESERVATION_COL_RESERVED_AT_MS,
    RESERVATION_COL_CANCELLED_AT_MS,   /* NULL while active */
    RESERVATION_NCOLS
};
struct reservation_row {
    int64_t id, event_id, user_id;
    const char *status;
    int64_t reserved_at_ms;
    bool cancelled;   /* cancelled_at_ms is set */
    int64_t cancelled_at_ms;
};
int reservation_row_decode(const PGresult *res, int row, struct reservation_row *out);

/* The granting statements, each its own columns. */
enum precheck_col { PRECHECK_COL_ORD, PRECHECK_COL_OUTCOME, PRECHECK_COL_TICKETS_LEFT, PRECHECK_NCOLS };
/* STMT_RESERVE_FOR_UPDATE and STMT_RESERVE_FOR_UPDATE_NOWAIT */
enum for_update_col {
    FOR_UPDATE_COL_OUTCOME,
    FOR_UPDATE_COL_RESERVATION_ID,
    FOR_UPDATE_COL_RESERVED_AT_MS,
    FOR_UPDATE_COL_TICKETS_LEFT,
    FOR_UPDATE_NCOLS
};
enum atomic_col {
    ATOMIC_COL_OUTCOME,
    ATOMIC_COL_RESERVATION_ID,
    ATOMIC_COL_RESERVED_AT_MS,
    ATOMIC_NCOLS
};
enum batch_col {
    BATCH_COL_ORD,
    BATCH_COL_OUTCOME,
    BATCH_COL_RESERVATION_ID,
    BATCH_COL_RESERVED_AT_MS,
    BATCH_COL_TICKETS_LEFT,
    BATCH_NCOLS
};
enum resolve_col { RESOLVE_COL_ORD, RESOLVE_COL_RESERVATION_ID, RESOLVE_COL_RESERVED_AT_MS, RESOLVE_NCOLS };
enum unsafe_insert_col { UNSAFE_INSERT_COL_RESERVATION_ID, UNSAFE_INSERT_COL_RESERVED_AT_MS, UNSAFE_INSERT_NCOLS };

/* A row of STMT_RESERVE_PRECHECK, _FOR_UPDATE(_NOWAIT), _ATOMIC, _BATCH,
 * _RESOLVE or STMT_UNSAFE_INSERT; what a statement does not return stays
 * 0, NULL or false. */
struct grant_row {
    int ord;                  /* 1-based position in the group */
    const char *outcome;      /* "reserved", "sold_out"..., or a statement's own word */
    bool granted;             /* reservation_id and reserved_at_ms are set */
    int64_t reservation_id, reserved_at_ms;
    bool has_tickets_left;    /* tickets_left is set (NULL: no such event) */
    int tickets_left;
};
int grant_row_decode(enum db_statement stmt, const PGresult *res, int row, struct grant_row *out);

/* STMT_UNSAFE_CHECK */
enum unsafe_check_col {
    UNSAFE_CHECK_COL_MAX_TICKETS,   /* NULL: no such event */
    UNSAFE_CHECK_COL_ACTIVE,
    UNSAFE_CHECK_COL_USER_FOUND,
    UNSAFE_CHECK_COL_ALREADY_HELD,
    UNSAFE_CHECK_NCOLS
};
struct unsafe_check_row {
    bool event_found;
    int64_t max_tickets, active;
    bool user_found, already_held;
};
int unsafe_check_row_decode(const PGresult *res, int row, struct unsafe_check_row *out);

/* STMT_CANCEL */
enum cancel_col { CANCEL_COL_OUTCOME, CANCEL_COL_CANCELLED_NOW, CANCEL_NCOLS };
struct cancel_row {
    const char *outcome;   /* "cancelled" or "reservation_not_found" */
    bool cancelled_now;
};
int cancel_row_decode(const PGresult *res, int row, struct cancel_row *out);

/* STMT_PING */
enum ping_col { PING_COL_ONE, PING_NCOLS };

#endif
