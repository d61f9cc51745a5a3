/* reservd-seed: bulk test data for reservd (users via COPY, test events). */
#ifndef RESERVD_SEED_H
#define RESERVD_SEED_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

/* Exit codes: 0 success, 1 database or I/O failure, 2 bad arguments. */
enum { SEED_OK = 0, SEED_FAIL = 1, SEED_USAGE = 2 };

/* seed_db.c: connection and statement helpers. Every failure is reported
 * on stderr (with the server's message) before the helper returns. */
PGconn *seed_connect(const char *url);
int seed_exec(PGconn *conn, const char *sql, const char *what);
int seed_apply_schema(PGconn *conn, const char *path);
int seed_require_table(PGconn *conn, const char *table);
void seed_report(const char *what, const char *message);
double seed_now(void);

/* seed_users.c: users prefix1..prefixN, idempotent; prints a summary, and
 * with export_env "export USER_START=id USER_COUNT=N" for N users with
 * consecutive ids (the summary then goes to stderr). progress: a line on
 * stderr, rewritten in place, for long runs. */
int seed_users(PGconn *conn, const char *prefix, int64_t count, bool progress, bool export_env);

/* seed_events.c: count events; prints one id per line on stdout, or with
 * export_env "export EVENT_ID=first [EVENT_COUNT=count]". */
int seed_events(PGconn *conn, const char *name, int64_t tickets, int64_t count, bool export_env);

#endif
