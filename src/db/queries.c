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
static const struct db_column confirm_columns[] = { CONFIRM_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column event_update_columns[] = { EVENT_UPDATE_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column sweep_columns[] = { SWEEP_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column waitlist_columns[] = { WAITLIST_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column waitlist_join_columns[] = { WAITLIST_JOIN_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column waitlist_leave_columns[] = { WAITLIST_LEAVE_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column waitlist_totals_columns[] = { WAITLIST_TOTALS_COLUMNS(
    DB_COLUMN_ROW) };
static const struct db_column next_id_columns[] = { NEXT_ID_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column token_set_columns[] = { TOKEN_SET_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column token_columns[] = { TOKEN_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column owner_columns[] = { OWNER_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column idempotency_columns[] = { IDEMPOTENCY_COLUMNS(DB_COLUMN_ROW) };
static const struct db_column idempotency_put_columns[] = { IDEMPOTENCY_PUT_COLUMNS(
    DB_COLUMN_ROW) };
static const struct db_column idempotency_sweep_columns[] = { IDEMPOTENCY_SWEEP_COLUMNS(
    DB_COLUMN_ROW) };

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
    [STMT_EVENT_UPDATE] = COLS(event_update_columns),
    [STMT_RESERVE_PRECHECK] = COLS(precheck_columns),
    [STMT_RESERVE_FOR_UPDATE] = COLS(for_update_columns),
    [STMT_RESERVE_ATOMIC] = COLS(atomic_columns),
    [STMT_RESERVE_BATCH] = COLS(batch_columns),
    [STMT_UNSAFE_CHECK] = COLS(unsafe_check_columns),
    [STMT_UNSAFE_INSERT] = COLS(unsafe_insert_columns),
    [STMT_CANCEL] = COLS(cancel_columns),
    [STMT_CONFIRM] = COLS(confirm_columns),
    [STMT_SWEEP] = COLS(sweep_columns),
    [STMT_RESERVE_RESOLVE] = COLS(resolve_columns),
    [STMT_RESERVATION_GET] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST_BY_EVENT] = COLS(reservation_columns),
    [STMT_RESERVATION_LIST_BY_USER] = COLS(reservation_columns),
    [STMT_WAITLIST_JOIN] = COLS(waitlist_join_columns),
    [STMT_WAITLIST_LEAVE] = COLS(waitlist_leave_columns),
    [STMT_WAITLIST_GET] = COLS(waitlist_columns),
    [STMT_WAITLIST_LIST] = COLS(waitlist_columns),
    [STMT_WAITLIST_TOTALS] = COLS(waitlist_totals_columns),
    [STMT_USER_NEXT_ID] = COLS(next_id_columns),
    [STMT_USER_INSERT_WITH_TOKEN] = COLS(user_columns),
    [STMT_USER_TOKEN_SET] = COLS(token_set_columns),
    [STMT_USER_TOKEN_GET] = COLS(token_columns),
    [STMT_RESERVATION_OWNER] = COLS(owner_columns),
    [STMT_WAITLIST_OWNER] = COLS(owner_columns),
    [STMT_IDEMPOTENCY_GET] = COLS(idempotency_columns),
    [STMT_IDEMPOTENCY_PUT] = COLS(idempotency_put_columns),
    [STMT_IDEMPOTENCY_SWEEP] = COLS(idempotency_sweep_columns),
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

static int64_t opt_int64(const PGresult *res, int row, int col)
{
    return col >= 0 && !col_null(res, row, col) ? col_int(res, row, col) : 0;
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
    out->held_tickets = col_int(res, row, EVENT_COL_HELD_TICKETS);
    out->max_per_user = col_int(res, row, EVENT_COL_MAX_PER_USER);
    out->hold_seconds = col_int(res, row, EVENT_COL_HOLD_SECONDS);
    out->offer_seconds = col_int(res, row, EVENT_COL_OFFER_SECONDS);
    out->waitlist_length = col_int(res, row, EVENT_COL_WAITLIST_LENGTH);
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
    out->quantity = col_int(res, row, RESERVATION_COL_QUANTITY);
    out->status = col_text(res, row, RESERVATION_COL_STATUS);
    out->reserved_at_ms = col_int(res, row, RESERVATION_COL_RESERVED_AT_MS);
    out->has_expiry = !col_null(res, row, RESERVATION_COL_EXPIRES_AT_MS);
    out->expires_at_ms = out->has_expiry ? col_int(res, row, RESERVATION_COL_EXPIRES_AT_MS) : 0;
    out->cancelled = !col_null(res, row, RESERVATION_COL_CANCELLED_AT_MS);
    out->cancelled_at_ms = out->cancelled ? col_int(res, row, RESERVATION_COL_CANCELLED_AT_MS) : 0;
    return 0;
}

/* Where each granting statement keeps what struct grant_row holds (-1:
 * it does not return it). */
struct grant_layout {
    int ncols, ord, outcome, reservation_id, reserved_at_ms, expires_at_ms, quantity;
    int tickets_left, max_per_user, holds_expired;
};

/* The granted reservation's columns, and the locked statements' decision
 * details, by the statement's column prefix. */
#define GRANTED(P)                                                                      \
    .reservation_id = P##_COL_RESERVATION_ID, .reserved_at_ms = P##_COL_RESERVED_AT_MS, \
    .expires_at_ms = P##_COL_EXPIRES_AT_MS
#define DECIDED(P)                                                              \
    .tickets_left = P##_COL_TICKETS_LEFT, .max_per_user = P##_COL_MAX_PER_USER, \
    .holds_expired = P##_COL_HOLDS_EXPIRED

static const struct grant_layout *grant_layout(enum db_statement stmt)
{
    static const struct grant_layout precheck = {
        .ncols = PRECHECK_NCOLS,
        .ord = PRECHECK_COL_ORD,
        .outcome = PRECHECK_COL_OUTCOME,
        .reservation_id = -1,
        .reserved_at_ms = -1,
        .expires_at_ms = -1,
        .quantity = -1,
        .tickets_left = PRECHECK_COL_TICKETS_LEFT,
        .max_per_user = PRECHECK_COL_MAX_PER_USER,
        .holds_expired = -1,
    };
    static const struct grant_layout for_update = {
        .ncols = FOR_UPDATE_NCOLS,
        .ord = -1,
        .outcome = FOR_UPDATE_COL_OUTCOME,
        .quantity = -1,
        GRANTED(FOR_UPDATE),
        DECIDED(FOR_UPDATE),
    };
    static const struct grant_layout atomic = {
        .ncols = ATOMIC_NCOLS,
        .ord = -1,
        .outcome = ATOMIC_COL_OUTCOME,
        .quantity = -1,
        GRANTED(ATOMIC),
        DECIDED(ATOMIC),
    };
    static const struct grant_layout batch = {
        .ncols = BATCH_NCOLS,
        .ord = BATCH_COL_ORD,
        .outcome = BATCH_COL_OUTCOME,
        .quantity = -1,
        GRANTED(BATCH),
        DECIDED(BATCH),
    };
    static const struct grant_layout resolve = {
        .ncols = RESOLVE_NCOLS,
        .ord = RESOLVE_COL_ORD,
        .outcome = -1,
        .quantity = RESOLVE_COL_QUANTITY,
        GRANTED(RESOLVE),
        .tickets_left = -1,
        .max_per_user = -1,
        .holds_expired = -1,
    };
    static const struct grant_layout unsafe_insert = {
        .ncols = UNSAFE_INSERT_NCOLS,
        .ord = -1,
        .outcome = -1,
        .quantity = -1,
        GRANTED(UNSAFE_INSERT),
        .tickets_left = -1,
        .max_per_user = -1,
        .holds_expired = -1,
    };
    switch (stmt) {
    case STMT_RESERVE_PRECHECK: return &precheck;
    case STMT_RESERVE_FOR_UPDATE: return &for_update;
    case STMT_RESERVE_ATOMIC: return &atomic;
    case STMT_RESERVE_BATCH: return &batch;
    case STMT_RESERVE_RESOLVE: return &resolve;
    case STMT_UNSAFE_INSERT: return &unsafe_insert;
    default: return NULL;
    }
}

static int opt_int(const PGresult *res, int row, int col)
{
    return col >= 0 && !col_null(res, row, col) ? (int)col_int(res, row, col) : 0;
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
        out->held = !col_null(res, row, l->expires_at_ms);
        out->expires_at_ms = opt_int64(res, row, l->expires_at_ms);
    }
    if (l->tickets_left >= 0 && !col_null(res, row, l->tickets_left)) {
        out->has_tickets_left = true;
        out->tickets_left = (int)col_int(res, row, l->tickets_left);
    }
    out->quantity = opt_int(res, row, l->quantity);
    out->max_per_user = opt_int(res, row, l->max_per_user);
    out->holds_expired = opt_int(res, row, l->holds_expired);
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
    out->was_held = col_bool(res, row, CANCEL_COL_WAS_HELD);
    out->holds_expired = (int)col_int(res, row, CANCEL_COL_HOLDS_EXPIRED);
    return 0;
}

int confirm_row_decode(const PGresult *res, int row, struct confirm_row *out)
{
    if (fits(res, row, CONFIRM_NCOLS) != 0)
        return -1;
    out->outcome = col_text(res, row, CONFIRM_COL_OUTCOME);
    out->confirmed_now = col_bool(res, row, CONFIRM_COL_CONFIRMED_NOW);
    out->holds_expired = (int)col_int(res, row, CONFIRM_COL_HOLDS_EXPIRED);
    return 0;
}

int event_update_row_decode(const PGresult *res, int row, struct event_update_row *out)
{
    if (fits(res, row, EVENT_UPDATE_NCOLS) != 0)
        return -1;
    out->outcome = col_text(res, row, EVENT_UPDATE_COL_OUTCOME);
    out->tickets_out = (int)opt_int64(res, row, EVENT_UPDATE_COL_TICKETS_OUT);
    out->holds_expired = (int)col_int(res, row, EVENT_UPDATE_COL_HOLDS_EXPIRED);
    return 0;
}

int sweep_row_decode(const PGresult *res, int row, struct sweep_row *out)
{
    if (fits(res, row, SWEEP_NCOLS) != 0)
        return -1;
    out->expired = (int)col_int(res, row, SWEEP_COL_EXPIRED);
    out->more = col_bool(res, row, SWEEP_COL_MORE);
    return 0;
}

/* The entry columns starting at column base (statements.h). */
static void waitlist_entry_at(const PGresult *res, int row, int base, struct waitlist_row *out)
{
    out->id = col_int(res, row, base + WAITLIST_COL_ID);
    out->event_id = col_int(res, row, base + WAITLIST_COL_EVENT_ID);
    out->user_id = col_int(res, row, base + WAITLIST_COL_USER_ID);
    out->quantity = col_int(res, row, base + WAITLIST_COL_QUANTITY);
    out->status = col_text(res, row, base + WAITLIST_COL_STATUS);
    out->position = col_int(res, row, base + WAITLIST_COL_POSITION);
    out->offered = !col_null(res, row, base + WAITLIST_COL_RESERVATION_ID);
    out->reservation_id = opt_int64(res, row, base + WAITLIST_COL_RESERVATION_ID);
    out->joined_at_ms = col_int(res, row, base + WAITLIST_COL_JOINED_AT_MS);
    out->has_offer_expiry = !col_null(res, row, base + WAITLIST_COL_OFFER_EXPIRES_AT_MS);
    out->offer_expires_at_ms = opt_int64(res, row, base + WAITLIST_COL_OFFER_EXPIRES_AT_MS);
}

int waitlist_row_decode(const PGresult *res, int row, struct waitlist_row *out)
{
    if (fits(res, row, WAITLIST_NCOLS) != 0)
        return -1;
    waitlist_entry_at(res, row, 0, out);
    return 0;
}

int waitlist_join_row_decode(const PGresult *res, int row, struct waitlist_join_row *out)
{
    if (fits(res, row, WAITLIST_JOIN_NCOLS) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->outcome = col_text(res, row, WAITLIST_JOIN_COL_OUTCOME);
    out->tickets_left = opt_int(res, row, WAITLIST_JOIN_COL_TICKETS_LEFT);
    out->max_per_user = opt_int(res, row, WAITLIST_JOIN_COL_MAX_PER_USER);
    out->holds_expired = opt_int(res, row, WAITLIST_JOIN_COL_HOLDS_EXPIRED);
    out->has_entry = !col_null(res, row, WAITLIST_JOIN_COL_ID);
    if (out->has_entry)
        waitlist_entry_at(res, row, WAITLIST_JOIN_COL_ID, &out->entry);
    return 0;
}

int waitlist_leave_row_decode(const PGresult *res, int row, struct waitlist_leave_row *out)
{
    if (fits(res, row, WAITLIST_LEAVE_NCOLS) != 0)
        return -1;
    memset(out, 0, sizeof(*out));
    out->outcome = col_text(res, row, WAITLIST_LEAVE_COL_OUTCOME);
    out->left_now = col_bool(res, row, WAITLIST_LEAVE_COL_LEFT_NOW);
    out->offer_cancelled = col_bool(res, row, WAITLIST_LEAVE_COL_OFFER_CANCELLED);
    out->holds_expired = opt_int(res, row, WAITLIST_LEAVE_COL_HOLDS_EXPIRED);
    out->has_entry = !col_null(res, row, WAITLIST_LEAVE_COL_ID);
    if (out->has_entry)
        waitlist_entry_at(res, row, WAITLIST_LEAVE_COL_ID, &out->entry);
    return 0;
}

int waitlist_totals_row_decode(const PGresult *res, int row, struct waitlist_totals_row *out)
{
    if (fits(res, row, WAITLIST_TOTALS_NCOLS) != 0)
        return -1;
    out->offered = col_int(res, row, WAITLIST_TOTALS_COL_OFFERED);
    out->fulfilled = col_int(res, row, WAITLIST_TOTALS_COL_FULFILLED);
    out->expired = col_int(res, row, WAITLIST_TOTALS_COL_EXPIRED);
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

int idempotency_sweep_row_decode(const PGresult *res, int row, int *deleted)
{
    if (fits(res, row, IDEMPOTENCY_SWEEP_NCOLS) != 0)
        return -1;
    *deleted = (int)col_int(res, row, IDEMPOTENCY_SWEEP_COL_DELETED);
    return 0;
}

int next_id_row_decode(const PGresult *res, int row, int64_t *id)
{
    if (fits(res, row, NEXT_ID_NCOLS) != 0)
        return -1;
    *id = col_int(res, row, NEXT_ID_COL_ID);
    return 0;
}
