/* Schema migrations at start-up: sql/migrations/NNNN_name.sql, each applied
 * once, in order, in a transaction of its own, and recorded in
 * schema_migrations. The advisory lock makes several instances starting at
 * once migrate one at a time; for all but the first it is a no-op that
 * takes no lock on any other table. */

#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Arbitrary constant naming reservd's migration lock. */
#define SCHEMA_LOCK_KEY "7346017263"

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    /* libpq's notices end in a newline; the log adds its own */
    log_debug("postgres: %.*s", (int)strcspn(message, "\n"), message);
}

PGconn *db_connect(const char *conninfo)
{
    /* Our defaults first: the user's conninfo (expanded from dbname)
     * comes last and overrides them. */
    const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
    const char *const values[] = { "5", "reservd", conninfo, NULL };
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg)
        PQsetNoticeProcessor(pg, quiet_notice, NULL);
    return pg;
}

static int exec_ok(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "schema: %s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

/* Value of keyword in opts, or NULL when unset or empty. */
static const char *option(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

/* conninfo's value of keyword, else libpq's default, else fallback. */
static void pick(char *out, size_t len, const PQconninfoOption *given,
                 const PQconninfoOption *defaults, const char *keyword, const char *fallback)
{
    const char *v = option(given, keyword);
    if (!v)
        v = option(defaults, keyword);
    snprintf(out, len, "%s", v ? v : fallback);
}

int db_target_of(const char *conninfo, struct db_target *t)
{
    PQconninfoOption *given = PQconninfoParse(conninfo, NULL);
    PQconninfoOption *defaults = PQconndefaults();
    int rc = given && defaults ? 0 : -1;
    if (rc == 0) {
        char host[sizeof(t->host) - 2];
        pick(t->user, sizeof(t->user), given, defaults, "user", "?");
        pick(host, sizeof(host), given, defaults, "host", "");
        if (!*host)
            pick(host, sizeof(host), given, defaults, "hostaddr", "local socket");
        /* an IPv6 address needs brackets before ":port" */
        snprintf(t->host, sizeof(t->host), strchr(host, ':') ? "[%s]" : "%s", host);
        pick(t->port, sizeof(t->port), given, defaults, "port", "5432");
        pick(t->dbname, sizeof(t->dbname), given, defaults, "dbname", t->user);
    }
    PQconninfoFree(given);
    PQconninfoFree(defaults);
    return rc;
}

/* libpq's message; multi-line, which the log folds onto one line. */
static const char *pg_error(PGconn *pg)
{
    return pg ? PQerrorMessage(pg) : "out of memory";
}

/* Connect, retrying for up to wait_ms; says at once that it waits, and
 * where. NULL with a message in err when the time runs out. */
static PGconn *connect_waiting(const char *conninfo, int wait_ms, char *err, size_t errlen)
{
    struct db_target t = { "?", "?", "?", "?" };
    if (db_target_of(conninfo, &t) != 0)
        log_debug("cannot parse the database URL; messages show '?' for it");
    struct timespec pause = { 0, 250 * 1000000L };
    for (int waited = 0;; waited += 250) {
        PGconn *pg = db_connect(conninfo);
        if (pg && PQstatus(pg) == CONNECTION_OK)
            return pg;
        if (waited >= wait_ms) {
            snprintf(err, errlen,
                     "cannot connect to PostgreSQL at postgresql://%s@%s:%s/%s (DATABASE_URL or "
                     "--database-url; password not shown) within db-wait-ms %d: %s "
                     "For a private local database, run scripts/run.sh from the repository.",
                     t.user, t.host, t.port, t.dbname, wait_ms, pg_error(pg));
            PQfinish(pg);
            return NULL;
        }
        if (waited == 0)
            log_warn("waiting for PostgreSQL at %s:%s (db-wait-ms %d): %s", t.host, t.port, wait_ms,
                     pg_error(pg));
        PQfinish(pg);
        nanosleep(&pause, NULL);
    }
}

enum migration_state {
    MIGRATION_TO_APPLY, /* not recorded in schema_migrations */
    MIGRATION_APPLIED,  /* recorded: applied before (maybe by another instance) */
    MIGRATION_UNKNOWN,  /* the lookup failed: message in err */
};

/* Whether migration m is recorded in schema_migrations. */
static enum migration_state applied(PGconn *pg, const struct db_migration *m, char *err,
                                    size_t errlen)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = { version };
    PGresult *res = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL,
                                 params, NULL, NULL, 0);
    enum migration_state state = MIGRATION_UNKNOWN;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        state = PQntuples(res) == 1 ? MIGRATION_APPLIED : MIGRATION_TO_APPLY;
    else
        snprintf(err, errlen, "schema_migrations: %s", PQresultErrorMessage(res));
    PQclear(res);
    return state;
}

static int record(PGconn *pg, const struct db_migration *m, char *err, size_t errlen)
{
    char version[16];
    snprintf(version, sizeof(version), "%d", m->version);
    const char *params[] = { version, m->name };
    PGresult *res =
        PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL,
                     params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0)
        snprintf(err, errlen, "schema_migrations: %s", PQresultErrorMessage(res));
    PQclear(res);
    return rc;
}

/* Migration m, once: in a transaction that first takes the migration lock
 * (transaction-scoped, so it also works through a transaction pooler),
 * then looks whether another instance applied it meanwhile. */
static int migrate_one(PGconn *pg, const struct db_migration *m, char *err, size_t errlen)
{
    enum migration_state state = MIGRATION_UNKNOWN;
    if (exec_ok(pg, "BEGIN", err, errlen) != 0)
        return -1;
    if (exec_ok(pg, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", err, errlen) == 0 &&
        exec_ok(pg,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                err, errlen) == 0)
        state = applied(pg, m, err, errlen);
    int rc = state == MIGRATION_UNKNOWN ? -1 : 0;
    if (state == MIGRATION_TO_APPLY)
        rc = exec_ok(pg, m->sql, err, errlen) == 0 ? record(pg, m, err, errlen) : -1;
    if (rc == 0 && exec_ok(pg, "COMMIT", err, errlen) == 0) {
        if (state == MIGRATION_TO_APPLY)
            log_info("applied migration %s", m->name);
        return 0;
    }
    char prefix[160];
    snprintf(prefix, sizeof(prefix), "migration %s failed: ", m->name);
    size_t plen = strlen(prefix), elen = strlen(err);
    if (plen + elen < errlen) { /* name the migration in front of the error */
        memmove(err + plen, err, elen + 1);
        memcpy(err, prefix, plen);
    }
    PGresult *res = PQexec(pg, "ROLLBACK");
    PQclear(res);
    return -1;
}

int db_schema_apply(const char *conninfo, int wait_ms, char *err, size_t errlen)
{
    PGconn *pg = connect_waiting(conninfo, wait_ms, err, errlen);
    if (!pg)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < db_nmigrations; i++)
        rc = migrate_one(pg, &db_migrations[i], err, errlen);
    PQfinish(pg);
    return rc;
}
