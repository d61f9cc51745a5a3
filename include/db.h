#ifndef RESERVD_DB_H
#define RESERVD_DB_H

/* The database layer: a fixed-size libpq connection pool whose connections
 * have every statement prepared (or, for a transaction pooler such as
 * PgBouncer, run them unnamed), and the schema migration. */

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum db_status {
    DB_OK = 0,
    DB_BUSY = -1,        /* no connection before the deadline */
    DB_UNAVAILABLE = -2, /* cannot connect, or the query failed */
};

/* Every SQL statement the server runs; prepared once per connection. */
enum db_statement {
    STMT_PING,
    STMT_USER_INSERT,
    STMT_USER_GET,
    STMT_USER_LIST,
    STMT_EVENT_INSERT,
    STMT_EVENT_GET,
    STMT_EVENT_LIST,
    STMT_EVENT_UPDATE,
    STMT_RESERVE_PRECHECK,
    STMT_RESERVE_FOR_UPDATE,
    STMT_RESERVE_ATOMIC,
    STMT_RESERVE_BATCH,
    STMT_UNSAFE_CHECK,
    STMT_UNSAFE_INSERT,
    STMT_CANCEL,
    STMT_CONFIRM,
    STMT_SWEEP,
    STMT_RESERVE_RESOLVE,
    STMT_RESERVATION_GET,
    STMT_RESERVATION_LIST,
    STMT_RESERVATION_LIST_BY_EVENT,
    STMT_RESERVATION_LIST_BY_USER,
    /* the waiting list (src/api/waitlist.c) */
    STMT_WAITLIST_JOIN,
    STMT_WAITLIST_LEAVE,
    STMT_WAITLIST_GET,
    STMT_WAITLIST_LIST,
    STMT_WAITLIST_TOTALS,
    /* access control and idempotency keys */
    STMT_USER_NEXT_ID,
    STMT_USER_INSERT_WITH_TOKEN,
    STMT_USER_TOKEN_SET,
    STMT_USER_TOKEN_GET,
    STMT_RESERVATION_OWNER,
    STMT_WAITLIST_OWNER,
    STMT_IDEMPOTENCY_GET,
    STMT_IDEMPOTENCY_PUT,
    STMT_IDEMPOTENCY_SWEEP,
    STMT_COUNT
};

/* SQL text of a statement (for tests and logs). */
const char *db_statement_sql(enum db_statement stmt);

struct db_pool;
struct db_conn;

struct db_pool_options {
    const char *conninfo;
    int size;
    int lock_timeout_ms;
    /* true: every statement is prepared once per connection, and the
     * connection's session gets lock_timeout and generic plans. false:
     * statements run unnamed (parsed and planned on each call) and nothing
     * is set on the session, so that any server connection a transaction
     * pooler hands each transaction serves it alike; the locking
     * statements set their own lock_timeout, transaction-local. */
    bool prepared;
};

struct db_pool_stats {
    int size;
    int in_use;
    int waiting;
    uint64_t reconnects; /* connections (re)opened after the first */
};

/* Creates the pool and opens one connection to check the settings.
 * Returns 0, or -1 with a message in err. */
int db_pool_create(const struct db_pool_options *opts, struct db_pool **out, char *err,
                   size_t errlen);
/* All connections must be released. */
void db_pool_destroy(struct db_pool *pool);

/* What a connection is for: reservations may hold only part of the pool
 * (three quarters), so that one locked event cannot starve other routes. */
enum db_use {
    DB_USE_ANY,
    DB_USE_RESERVATION,
};

/* Wait until deadline (CLOCK_MONOTONIC) for a connection; (re)connects
 * a slot whose connection is missing or broken. DB_OK, DB_BUSY (also at
 * once when the deadline has passed) or DB_UNAVAILABLE. */
enum db_status db_pool_acquire(struct db_pool *pool, const struct timespec *deadline,
                               enum db_use use, struct db_conn **out);
/* Return a connection. One left broken or inside a transaction is
 * rolled back or closed, so the next user always gets a clean one. */
void db_pool_release(struct db_pool *pool, struct db_conn *conn);
void db_pool_stats(struct db_pool *pool, struct db_pool_stats *out);
/* Replace a held connection that broke with a new one (same slot). 0 or -1. */
int db_pool_reconnect(struct db_pool *pool, struct db_conn *conn);
/* Most connections reservations may hold at once. */
int db_pool_reserving_max(const struct db_pool *pool);

/* The row-lock wait a request with this deadline can afford, as the text
 * parameter the locking statements take ($3, or p_lock_timeout): half the
 * time left (a lock can be waited for twice), at most --lock-timeout-ms,
 * at least 1 ms. */
#define DB_LOCK_BUDGET_SIZE 24
void db_lock_budget(const struct db_pool *pool, const struct timespec *deadline,
                    char out[static DB_LOCK_BUDGET_SIZE]);

/* Run a statement (prepared, or unnamed: see db_pool_options.prepared)
 * with text parameters (NULL = SQL NULL).
 * Returns the result (caller PQclear()s it) or NULL when the connection
 * failed; a failed connection is marked for replacement. */
PGresult *db_exec(struct db_conn *conn, enum db_statement stmt, int nparams,
                  const char *const *params);
/* Run n statements, each with nparams text parameters (params[i * nparams
 * ...]) and each as its own transaction, in one libpq pipeline: all are
 * sent before any result is read, so PostgreSQL runs them back to back.
 * Returns how many completed (their transactions ended: committed, or
 * failed with the error in the result); results[0..done) are theirs
 * (caller PQclear()s each), results[done..n) are NULL. done < n means the
 * connection failed: those statements' outcomes are unknown (the first
 * of them may have committed). */
int db_exec_pipelined(struct db_conn *conn, const enum db_statement *stmts, int n, int nparams,
                      const char *const *params, PGresult **results);
/* Run a fixed command (BEGIN, COMMIT, ROLLBACK). 0 or -1. */
int db_command(struct db_conn *conn, const char *sql);
/* Whether conn's open transaction has failed (a statement in it did): it
 * can only be rolled back. */
bool db_transaction_failed(const struct db_conn *conn);

/* How a finished query went. */
enum db_result {
    DB_RESULT_OK,
    DB_RESULT_UNIQUE_VIOLATION, /* 23505 */
    DB_RESULT_LOCK_TIMEOUT,     /* 55P03, 57014: the configured wait ran out
                                   * (or a NOWAIT lock was taken) */
    DB_RESULT_KEY_TAKEN,        /* RSK01: an Idempotency-Key another request
                                   recorded first (sql/migrations/0008) */
    DB_RESULT_FAILED,           /* anything else */
};
enum db_result db_result_classify(const PGresult *res);

/* The migrations compiled in from sql/migrations/, in version order. */
struct db_migration {
    int version;      /* NNNN of NNNN_name.sql */
    const char *name; /* "NNNN_name" */
    const char *sql;
};
extern const struct db_migration db_migrations[];
extern const size_t db_nmigrations;

/* Apply the migrations the database lacks, under an advisory lock,
 * retrying the connection for up to wait_ms. 0, or -1 with a message in err. */
int db_schema_apply(const char *conninfo, int wait_ms, char *err, size_t errlen);

/* Where conninfo points, for messages: never the password. What conninfo
 * leaves out comes from libpq's defaults (PGHOST, PGPORT, PGUSER..., then
 * built-in); no host at all means the local socket. */
struct db_target {
    char user[64];
    char host[256]; /* IPv6 addresses in brackets */
    char port[32];
    char dbname[64];
};
/* 0, or -1 when libpq cannot parse conninfo (or is out of memory). */
int db_target_of(const char *conninfo, struct db_target *target);

/* Open a connection with reservd's defaults (connect_timeout,
 * application_name) under the user's conninfo. NULL-safe PQfinish. */
PGconn *db_connect(const char *conninfo);

#endif
