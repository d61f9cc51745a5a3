/* The statements' result columns and the decoders that read them. Their
 * text is sql/statements/NAME.sql, embedded by the build
 * (scripts/embed_statements.cmake); every statement is prepared once per
 * pooled connection and executed with parameters, and no SQL is ever built
 * from request text. Timestamps leave the database as epoch milliseconds
 * and are formatted in C (timefmt.c). */

#include "statements.h"

#include <stdlib.h>
#include <string.h>

#define DB_COLUMN_ROW(id, name, type) [id] = { name, type },
#define COLS(table)                                    \
    {                                                  \
        table, (int)(sizeof(table) / sizeof(table[0])) \
    }

static const struct db_column ping_columns[] = { PING_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column user_columns[] = { USER_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column event_columns[] = { EVENT_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column reservation_columns[] = { RESERVATION_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column precheck_columns[] = { PRECHECK_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column for_update_columns[] = { FOR_UPDATE_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column atomic_columns[] = { ATOMIC_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column batch_columns[] = { BATCH_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column resolve_columns[] = { RESOLVE_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column unsafe_check_columns[] = { UNSAFE_CHECK_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column unsafe_insert_columns[] = { UNSAFE_INSERT_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column cancel_columns[] = { CANCEL_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column next_id_columns[] = { NEXT_ID_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column token_set_columns[] = { TOKEN_SET_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column token_columns[] = { TOKEN_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column owner_columns[] = { OWNER_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column idempotency_columns[] = { IDEMPOTENCY_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column idempotency_put_columns[] = { IDEMPOTENCY_PUT_COLUMNS(
    DB_COLUMN_ROW) };
static const struct db_column sweep_columns[] = { SWEEP_COLUMNS(DB_COLUMN_ROW) };

static const struct {
    const struct db_column *columns;
    int n;
} shapes[STMT_COUNT] = {
    [STMT_PING] = COLS(ping_columns),
    [STMT_USER_INSERT] = COLS(user_columns),
    [STMT_USER_GET] = COLS(user_columns),
    [STMT_USER_LIST] = COLS(user_columns),
    [STMT_EVENT_INSERT] = COLS(event_columns),
    [STMT_EVENT_GET] = COLS(event_columns),
    [STMT_EVENT_LIST] = COLS(event_columns),
    [STMT_RESERVE_PRECHECK] = COLS(precheck_columns),
    [STMT_RESERVE_FOR_UPDATE] = COLS(for_update_columns),
    [STMT_RESERVE_FOR_UPDATE_NOWAIT] = COLS(for_update_columns),
    [STMT_RESERVE_ATOMIC] = COLS(atomic_columns),
    [STMT_RESERVE_BATCH] = COLS(batch_columns),
    [STMT_UNSAFE_CHECK] = COLS(unsafe_check_columns),
    [STMT_UNSAFE_INSERT] = COLS(unsafe_insert_columns),
    [STMT_CANCEL] = COLS(cancel_columns),
    [STMT_RESERVE_RESOLVE] = COLS(resolve_columns),
    [STMT_RESERVATION_GET] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST_BY_EVENT] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST_BY_USER] = COLS(reservation_columns),
    [STMT_USER_NEXT_ID] = COLS(next_id_columns),
    [STMT_USER_INSERT_WITH_TOKEN] = COLS(user_columns),
    [STMT_USER_TOKEN_SET] = COLS(token_set_columns),
    [STMT_USER_TOKEN_GET] = COLS(token_columns),
    [STMT_RESERVATION_OWNER] = COLS(owner_columns),
    [STMT_IDEMPOTENCY_GET] = COLS(idempotency_columns),
    [STMT_IDEMPOTENCY_PUT] = COLS(idempotency_put_columns),
    [STMT_IDEMPOTENCY_SWEEP] = COLS(sweep_columns),
};

const char *db_statement_sql(enum db_statement stmt)
{
    return (unsigned)stmt < STMT_COUNT ? db_statement_text[stmt] : NULL;
}

const struct db_column *db_statement_columns(enum db_statement stmt, int *n)
{
    *n = (unsigned)stmt < STMT_COUNT ? shapes[stmt].n : 0;
    return *n ? shapes[stmt].columns : NULL;
}

/* The result has ncols columns and a row row. */
static int fits(const PGresult *res, int row, int ncols)
{
    return res && PQnfields(res) == ncols && row >= 0 && row < PQntuples(res) ? 0 : -1;
}

static int64_t col_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static const char *col_text(const PGresult *res, int row, int col)
{
    return PQgetvalue(res, row, col);
}

/* libpq's text format writes booleans as "t" and "f". */
static bool col_bool(const PGresult *res, int row, int col)
{
    return strcmp(PQgetvalue(res, row, col), "t") == 0;
}

static bool col_null(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col);
}

int user_row_decode(const PGresult *res, int row, struct user_row *out)
{
    if (fits(res, row, USER_NCOLS) != 0)
        return -1;
    out->id = col_int(res, row, USER_COL_ID);
    out->name = col_text(res, row, USER_COL_NAME);
    out->email = col_text(res, row, USER_COL_EMAIL);
    out->created_at_ms = col_int(res, row, USER_COL_CREATED_AT_MS);
    return 0;
}

int event_row_decode(const PGresult *res, int row, struct event_row *out)
{
    if (fits(res, row, EVENT_NCOLS) != 0)
        return -1;
    out->id = col_int(res, row, EVENT_COL_ID);
    out->name = col_text(res, row, EVENT_COL_NAME);
    out->date_ms = col_int(res, row, EVENT_COL_DATE_MS);
    out->location = col_text(res, row, EVENT_COL_LOCATION);
    out->max_tickets = col_int(res, row, EVENT_COL_MAX_TICKETS);
    out->reserved_tickets = col_int(res, row, EVENT_COL_RESERVED_TICKETS);
    out->created_at_ms = col_int(res, row, EVENT_COL_CREATED_AT_MS);
    return 0;
}

int reservation_row_decode(const PGresult *res, int row, struct reservation_row *out)
{
    if (fits(res, row, RESERVATION_NCOLS) != 0)
        return -1;
    out->id = col_int(res, row, RESERVATION_COL_ID);
    out->event_id = col_int(res, row, RESERVATION_COL_EVENT_ID);
    out->user_id = col_int(res, row, RESERVATION_COL_USER_ID);
    out->status = col_text(res, row, RESERVATION_COL_STATUS);
    out->reserved_at_ms = col_int(res, row, RESERVATION_COL_RESERVED_AT_MS);
    out->cancelled = !col_null(res, row, RESERVATION_COL_CANCELLED_AT_MS);
    out->cancelled_at_ms = out->cancelled ? col_int(res, row, RESERVATION_COL_CANCELLED_AT_MS) : 0;
    return 0;
}

/* Where each granting statement keeps what struct grant_row holds (-1:
 * it does not return it). */
struct grant_layout {
    int ncols, ord, outcome, reservation_id, reserved_at_ms, tickets_left;
};

static const struct grant_layout *grant_layout(enum db_statement stmt)
{
    static const struct grant_layout precheck = {
        PRECHECK_NCOLS, PRECHECK_COL_ORD, PRECHECK_COL_OUTCOME, -1, -1, PRECHECK_COL_TICKETS_LEFT
    };
    static const struct grant_layout for_update = { FOR_UPDATE_NCOLS,
                                                    -1,
                                                    FOR_UPDATE_COL_OUTCOME,
                                                    FOR_UPDATE_COL_RESERVATION_ID,
                                                    FOR_UPDATE_COL_RESERVED_AT_MS,
                                                    FOR_UPDATE_COL_TICKETS_LEFT };
    static const struct grant_layout atomic = { ATOMIC_NCOLS,
                                                -1,
                                                ATOMIC_COL_OUTCOME,
                                                ATOMIC_COL_RESERVATION_ID,
                                                ATOMIC_COL_RESERVED_AT_MS,
                                                -1 };
    static const struct grant_layout batch = { BATCH_NCOLS,
                                               BATCH_COL_ORD,
                                               BATCH_COL_OUTCOME,
                                               BATCH_COL_RESERVATION_ID,
                                               BATCH_COL_RESERVED_AT_MS,
                                               BATCH_COL_TICKETS_LEFT };
    static const struct grant_layout resolve = { RESOLVE_NCOLS,
                                                 RESOLVE_COL_ORD,
                                                 -1,
                                                 RESOLVE_COL_RESERVATION_ID,
                                                 RESOLVE_COL_RESERVED_AT_MS,
                                                 -1 };
    static const struct grant_layout unsafe_insert = { UNSAFE_INSERT_NCOLS,
                                                       -1,
                                                       -1,
                                                       UNSAFE_INSERT_COL_RESERVATION_ID,
                                                       UNSAFE_INSERT_COL_RESERVED_AT_MS,
                                                       -1 };
    switch (stmt) {
    case STMT_RESERVE_PRECHECK: return &precheck;
    case STMT_RESERVE_FOR_UPDATE:
    case STMT_RESERVE_FOR_UPDATE_NOWAIT: return &for_update;
    case STMT_RESERVE_ATOMIC: return &atomic;
    case STMT_RESERVE_BATCH: return &batch;
    case STMT_RESERVE_RESOLVE: return &resolve;
    case STMT_UNSAFE_INSERT: return &unsafe_insert;
    default: return NULL;
    }
}

int grant_row_decode(enum db_statement stmt, const PGresult *res, int row, struct grant_row *out)
{
    const struct grant_layout *l = grant_layout(stmt);
    if (!l || fits(res, row, l->ncols) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    if (l->ord >= 0)
        out->ord = (int)col_int(res, row, l->ord);
    if (l->outcome >= 0)
        out->outcome = col_text(res, row, l->outcome);
    out->granted = l->reservation_id >= 0 && !col_null(res, row, l->reservation_id);
    if (out->granted) {
        out->reservation_id = col_int(res, row, l->reservation_id);
        out->reserved_at_ms = col_int(res, row, l->reserved_at_ms);
    }
    if (l->tickets_left >= 0 && !col_null(res, row, l->tickets_left)) {
        out->has_tickets_left = true;
        out->tickets_left = (int)col_int(res, row, l->tickets_left);
    }
    return 0;
}

int unsafe_check_row_decode(const PGresult *res, int row, struct unsafe_check_row *out)
{
    if (fits(res, row, UNSAFE_CHECK_NCOLS) != 0)
        return -1;
    out->event_found = !col_null(res, row, UNSAFE_CHECK_COL_MAX_TICKETS);
    out->max_tickets = out->event_found ? col_int(res, row, UNSAFE_CHECK_COL_MAX_TICKETS) : 0;
    out->active = col_int(res, row, UNSAFE_CHECK_COL_ACTIVE);
    out->user_found = col_bool(res, row, UNSAFE_CHECK_COL_USER_FOUND);
    out->already_held = col_bool(res, row, UNSAFE_CHECK_COL_ALREADY_HELD);
    return 0;
}

int cancel_row_decode(const PGresult *res, int row, struct cancel_row *out)
{
    if (fits(res, row, CANCEL_NCOLS) != 0)
        return -1;
    out->outcome = col_text(res, row, CANCEL_COL_OUTCOME);
    out->cancelled_now = col_bool(res, row, CANCEL_COL_CANCELLED_NOW);
    return 0;
}

int token_set_row_decode(const PGresult *res, int row, int64_t *user_id)
{
    if (fits(res, row, TOKEN_SET_NCOLS) != 0)
        return -1;
    *user_id = col_int(res, row, TOKEN_SET_COL_USER_ID);
    return 0;
}

int token_row_decode(const PGresult *res, int row, const char **sha256_hex)
{
    if (fits(res, row, TOKEN_NCOLS) != 0)
        return -1;
    *sha256_hex = col_text(res, row, TOKEN_COL_SHA256);
    return 0;
}

int owner_row_decode(const PGresult *res, int row, int64_t *owner_id)
{
    if (fits(res, row, OWNER_NCOLS) != 0)
        return -1;
    *owner_id = col_int(res, row, OWNER_COL_OWNER_ID);
    return 0;
}

int idempotency_row_decode(const PGresult *res, int row, struct idempotency_row *out)
{
    if (fits(res, row, IDEMPOTENCY_NCOLS) != 0)
        return -1;
    out->fingerprint = col_text(res, row, IDEMPOTENCY_COL_FINGERPRINT);
    out->status = (int)col_int(res, row, IDEMPOTENCY_COL_STATUS);
    out->body = col_text(res, row, IDEMPOTENCY_COL_BODY);
    out->location = col_null(res, row, IDEMPOTENCY_COL_LOCATION)
                        ? NULL
                        : col_text(res, row, IDEMPOTENCY_COL_LOCATION);
    return 0;
}

int sweep_row_decode(const PGresult *res, int row, int *deleted)
{
    if (fits(res, row, SWEEP_NCOLS) != 0)
        return -1;
    *deleted = (int)col_int(res, row, SWEEP_COL_DELETED);
    return 0;
}

int next_id_row_decode(const PGresult *res, int row, int64_t *id)
{
    if (fits(res, row, NEXT_ID_NCOLS) != 0)
        return -1;
    *id = col_int(res, row, NEXT_ID_COL_ID);
    return 0;
}
