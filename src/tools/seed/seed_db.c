/* Connection, statement and schema helpers for reservd-seed. */
#include "seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Largest schema file we agree to read (a migration is ~10 KiB). */
#define SCHEMA_MAX_BYTES ((size_t)16 * 1024 * 1024)

/* Print "reservd-seed: what: message" without libpq's trailing newline. */
void seed_report(const char *what, const char *message)
{
    size_t len = message ? strlen(message) : 0;
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        len--;
    if (len == 0)
        fprintf(stderr, "reservd-seed: %s\n", what);
    else
        fprintf(stderr, "reservd-seed: %s: %.*s\n", what, (int)len, message);
}

double seed_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The URL goes through libpq's own parser (expand_dbname), so both URIs
 * and "key=value" strings work. The URL is never echoed: it may hold a
 * password. */
PGconn *seed_connect(const char *url)
{
    const char *const keys[] = { "dbname", "fallback_application_name", NULL };
    const char *const vals[] = { url, "reservd-seed", NULL };
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        seed_report("cannot connect", "out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        seed_report("cannot connect to the database", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    /* IF NOT EXISTS notices from --schema are noise, not news. */
    if (seed_exec(conn, "SET client_min_messages = warning", "session setup") != 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* Run a statement that returns no rows. */
int seed_exec(PGconn *conn, const char *sql, const char *what)
{
    PGresult *res = PQexec(conn, sql);
    int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        seed_report(what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

/* Read a whole (text) file into a NUL-terminated heap buffer; works for
 * pipes too (--schema /dev/stdin). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "reservd-seed: cannot open schema %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = (size_t)64 * 1024, len = 0;
    char *buf = malloc(cap);
    const char *problem = buf ? NULL : "out of memory";
    while (problem == NULL) {
        len += fread(buf + len, 1, cap - 1 - len, f);
        if (ferror(f))
            problem = "read error";
        else if (feof(f))
            break;
        else if (cap >= SCHEMA_MAX_BYTES)
            problem = "file too large";
        else {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL)
                problem = "out of memory";
            else {
                buf = bigger;
                cap *= 2;
            }
        }
    }
    fclose(f);
    if (problem == NULL && memchr(buf, '\0', len) != NULL)
        problem = "contains a NUL byte";
    if (problem != NULL) {
        fprintf(stderr, "reservd-seed: cannot read schema %s: %s\n", path, problem);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

/* A multi-statement simple query runs as one implicit transaction, so a
 * broken schema file changes nothing. */
int seed_apply_schema(PGconn *conn, const char *path)
{
    char *sql = read_file(path);
    if (sql == NULL)
        return -1;
    PGresult *res = PQexec(conn, sql);
    free(sql);
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
    if (!ok)
        seed_report("applying the schema failed",
                    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

/* Fail with a hint when the server has not migrated this database yet. */
int seed_require_table(PGconn *conn, const char *table)
{
    const char *params[] = { table };
    PGresult *res =
        PQexecParams(conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, params, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        seed_report("schema check failed", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists) {
        fprintf(stderr,
                "reservd-seed: table \"%s\" does not exist in this database; start reservd once "
                "(it applies sql/migrations/) or pass --schema sql/migrations/0001_initial.sql\n",
                table);
        return -1;
    }
    return 0;
}
