/* Schema migration at start-up. sql/schema.sql is idempotent; the advisory
 * lock makes several instances starting at once apply it one at a time. */

#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

extern const char schema_sql[];          /* generated from sql/schema.sql */

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
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const values[] = {"5", "reservd", conninfo, NULL};
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
    struct db_target t = {"?", "?", "?", "?"};
    if (db_target_of(conninfo, &t) != 0)
        log_debug("cannot parse the database URL; messages show '?' for it");
    struct timespec pause = {0, 250 * 1000000L};
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

int db_schema_apply(const char *conninfo, int wait_ms, char *err, size_t errlen)
{
    PGconn *pg = connect_waiting(conninfo, wait_ms, err, errlen);
    if (!pg)
        return -1;
    int rc = exec_ok(pg, "SELECT pg_advisory_lock(" SCHEMA_LOCK_KEY ")", err, errlen);
    if (rc == 0) {
        rc = exec_ok(pg, schema_sql, err, errlen);
        char unlock_err[256];
        if (exec_ok(pg, "SELECT pg_advisory_unlock(" SCHEMA_LOCK_KEY ")", unlock_err,
                    sizeof(unlock_err)) != 0)
            log_warn("%s", unlock_err);   /* released at disconnect anyway */
    }
    PQfinish(pg);
    return rc;
}
