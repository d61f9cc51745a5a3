/* Schema migration at start-up. sql/schema.sql is idempotent; the advisory
 * lock makes several instances starting at once apply it one at a time. */

#include "db.h"

#include <stdio.h>
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

int db_schema_apply(const char *conninfo, int wait_ms, char *err, size_t errlen)
{
    PGconn *pg = NULL;
    struct timespec pause = {0, 250 * 1000000L};
    for (int waited = 0;; waited += 250) {
        pg = db_connect(conninfo);
        if (pg && PQstatus(pg) == CONNECTION_OK)
            break;
        if (waited >= wait_ms) {
            snprintf(err, errlen, "cannot connect to DATABASE_URL: %s",
                     pg ? PQerrorMessage(pg) : "out of memory");
            PQfinish(pg);
            return -1;
        }
        PQfinish(pg);
        nanosleep(&pause, NULL);
    }
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
