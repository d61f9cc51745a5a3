/* Users: in one transaction, COPY generated rows into a temporary staging
 * table, then move them into users with ON CONFLICT DO NOTHING; running the
 * seeder twice therefore leaves N users, not 2N. When users is empty the
 * rows are copied straight into it instead (about twice as fast: ON
 * CONFLICT's speculative insertion costs as much as the insert itself). */
#include "seed.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK        ((size_t)1 << 20) /* bytes handed to PQputCopyData at once */
#define ROW_MAX           256               /* prefix <= 64 bytes, so a row fits easily */
#define PROGRESS_MIN_ROWS 100000            /* smaller runs finish before anyone looks */

/* Generated text needs no COPY escaping: the prefix is [A-Za-z0-9._-]. */
struct row_gen {
    char name[80]; /* capitalised prefix */
    size_t name_len;
    char email[80]; /* prefix as given */
    size_t email_len;
};

struct copy_state {
    PGconn *conn;
    char *buf;
    size_t len;
    int64_t done, total;
    bool progress;
    double started; /* seed_now() when the rows started to flow */
};

static const char EMPTY_SQL[] = "SELECT NOT EXISTS (SELECT 1 FROM users)";
static const char DIRECT_COPY_SQL[] = "COPY users (name, email) FROM STDIN";
static const char STAGE_SQL[] =
    "CREATE TEMP TABLE reservd_seed_users (name text NOT NULL, email text NOT NULL) ON COMMIT DROP";
static const char STAGE_COPY_SQL[] = "COPY reservd_seed_users (name, email) FROM STDIN";
/* The conflict target names the expression of users_email_lower_key. */
static const char MOVE_SQL[] =
    "INSERT INTO users (name, email) SELECT name, email FROM reservd_seed_users "
    "ON CONFLICT ((lower(email))) DO NOTHING";

static const char EMAIL_DOMAIN[] = "@example.com";
static const char UNIQUE_VIOLATION[] = "23505";

/* copy_rows outcomes */
enum { COPY_DONE = 0, COPY_FAILED = -1, COPY_CONFLICT = 1 };

/* Decimal digits of v at p; returns the end. Cheaper than snprintf per row. */
static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static void row_gen_init(struct row_gen *g, const char *prefix)
{
    g->email_len = strlen(prefix);
    memcpy(g->email, prefix, g->email_len);
    memcpy(g->name, prefix, g->email_len);
    g->name[0] = (char)toupper((unsigned char)g->name[0]);
    g->name_len = g->email_len;
}

/* "User42\tuser42@example.com\n" */
static char *put_row(char *p, const struct row_gen *g, uint64_t i)
{
    char digits[20];
    size_t nd = (size_t)(put_u64(digits, i) - digits);
    memcpy(p, g->name, g->name_len);
    p += g->name_len;
    memcpy(p, digits, nd);
    p += nd;
    *p++ = '\t';
    memcpy(p, g->email, g->email_len);
    p += g->email_len;
    memcpy(p, digits, nd);
    p += nd;
    memcpy(p, EMAIL_DOMAIN, sizeof EMAIL_DOMAIN - 1);
    p += sizeof EMAIL_DOMAIN - 1;
    *p++ = '\n';
    return p;
}

/* One terminal line, rewritten in place: rows, rate and time left. */
static void progress_line(const struct copy_state *st, const char *phase)
{
    if (!st->progress)
        return;
    double secs = seed_now() - st->started;
    double rate = secs > 0 ? (double)st->done / secs : 0;
    fprintf(stderr, "\rreservd-seed: %s %" PRId64 "/%" PRId64 " rows (%d%%), %.0f rows/s", phase,
            st->done, st->total, (int)(st->done * 100 / st->total), rate);
    if (st->done < st->total && rate > 0)
        fprintf(stderr, ", ETA %.0f s   ", (double)(st->total - st->done) / rate);
    else
        fputs("            ", stderr);
    fflush(stderr);
}

/* Hand the buffer to libpq. A failure here usually means the server has
 * already rejected the COPY; the caller fetches its verdict. */
static int flush_chunk(struct copy_state *st)
{
    if (st->len == 0)
        return 0;
    if (PQputCopyData(st->conn, st->buf, (int)st->len) != 1)
        return -1;
    st->len = 0;
    progress_line(st, "copying");
    return 0;
}

static int stream_rows(struct copy_state *st, const struct row_gen *g)
{
    st->len = 0;
    st->started = seed_now();
    for (int64_t i = 1; i <= st->total; i++) {
        if (COPY_CHUNK - st->len < ROW_MAX && flush_chunk(st) != 0)
            return -1;
        st->len = (size_t)(put_row(st->buf + st->len, g, (uint64_t)i) - st->buf);
        st->done = i;
    }
    return flush_chunk(st);
}

/* Collect the results after COPY: the first error wins. With
 * conflict_ok, a unique violation is returned quietly as COPY_CONFLICT. */
static int copy_verdict(PGconn *conn, bool conflict_ok)
{
    int rc = COPY_DONE;
    PGresult *res;
    while ((res = PQgetResult(conn)) != NULL) {
        if (rc == COPY_DONE && PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            if (conflict_ok && state != NULL && strcmp(state, UNIQUE_VIOLATION) == 0)
                rc = COPY_CONFLICT;
            else {
                seed_report("COPY failed", PQresultErrorMessage(res));
                rc = COPY_FAILED;
            }
        }
        PQclear(res);
    }
    return rc;
}

/* Run copy_sql and stream all rows into it. */
static int copy_rows(struct copy_state *st, const struct row_gen *g, const char *copy_sql,
                     bool conflict_ok)
{
    PGresult *res = PQexec(st->conn, copy_sql);
    int ok = res != NULL && PQresultStatus(res) == PGRES_COPY_IN;
    if (!ok)
        seed_report("COPY failed", res ? PQresultErrorMessage(res) : PQerrorMessage(st->conn));
    PQclear(res);
    if (!ok)
        return COPY_FAILED;
    int streamed = stream_rows(st, g);
    /* PQputCopyEnd fails only when the connection is gone; the verdict
     * below then carries libpq's message. */
    PQputCopyEnd(st->conn, streamed == 0 ? NULL : "reservd-seed stopped sending");
    int rc = copy_verdict(st->conn, conflict_ok);
    if (rc == COPY_DONE && streamed != 0) {
        seed_report("COPY failed", PQerrorMessage(st->conn));
        rc = COPY_FAILED;
    }
    return rc;
}

/* Run a one-row boolean query. */
static int query_bool(PGconn *conn, const char *sql, bool *out)
{
    PGresult *res = PQexec(conn, sql);
    int ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok)
        *out = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    else
        seed_report("query failed", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

/* Fast path: with no users at all nothing can conflict, so COPY goes
 * straight into users (as fast as psql \copy). A user inserted meanwhile
 * by someone else shows up as a unique violation: undo to the savepoint
 * and report COPY_CONFLICT so that the caller takes the staged path. */
static int copy_direct(PGconn *conn, struct copy_state *st, const struct row_gen *g)
{
    if (seed_exec(conn, "SAVEPOINT reservd_seed_direct", "SAVEPOINT failed") != 0)
        return COPY_FAILED;
    int rc = copy_rows(st, g, DIRECT_COPY_SQL, true);
    if (rc == COPY_CONFLICT && seed_exec(conn, "ROLLBACK TO SAVEPOINT reservd_seed_direct",
                                         "ROLLBACK TO SAVEPOINT failed") != 0)
        return COPY_FAILED;
    return rc;
}

/* Move staged rows into users; *added gets the number actually inserted. */
static int move_rows(PGconn *conn, int64_t *added)
{
    PGresult *res = PQexec(conn, MOVE_SQL);
    int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (ok) {
        char *end;
        *added = strtoll(PQcmdTuples(res), &end, 10);
        ok = *end == '\0' && end != PQcmdTuples(res);
        if (!ok)
            seed_report("inserting users failed", "unexpected command status");
    } else {
        seed_report("inserting users failed",
                    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    }
    PQclear(res);
    return ok ? 0 : -1;
}

/* General path: COPY into a temporary table, then INSERT ... ON CONFLICT. */
static int copy_staged(PGconn *conn, struct copy_state *st, const struct row_gen *g, int64_t *added)
{
    if (seed_exec(conn, STAGE_SQL, "creating the staging table failed") != 0 ||
        copy_rows(st, g, STAGE_COPY_SQL, false) != COPY_DONE)
        return -1;
    progress_line(st, "inserting");
    return move_rows(conn, added);
}

static int seed_in_transaction(PGconn *conn, struct copy_state *st, const struct row_gen *g,
                               int64_t *added)
{
    bool empty;
    if (seed_exec(conn, "BEGIN", "BEGIN failed") != 0 || query_bool(conn, EMPTY_SQL, &empty) != 0)
        return -1;
    int rc = empty ? copy_direct(conn, st, g) : COPY_CONFLICT;
    if (rc == COPY_FAILED)
        return -1;
    if (rc == COPY_DONE)
        *added = st->total;
    else if (copy_staged(conn, st, g, added) != 0)
        return -1;
    return seed_exec(conn, "COMMIT", "COMMIT failed");
}

static void clear_progress(const struct copy_state *st)
{
    if (st->progress)
        fprintf(stderr, "\r%100s\r", "");
}

/* With every seeded user found, their ids: one block when *last - *first
 * + 1 == *found. */
static const char RANGE_SQL[] =
    "SELECT coalesce(min(u.id), 0), coalesce(max(u.id), 0), count(*) "
    "  FROM generate_series(1, $2::bigint) AS g "
    "  JOIN users u ON lower(u.email) = lower($1::text || g || '@example.com')";
/* The first of $1 consecutive existing user ids (gaps and islands). */
static const char ISLAND_SQL[] =
    "SELECT min(id) FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS island FROM users) s "
    " GROUP BY island HAVING count(*) >= $1::bigint ORDER BY min(id) LIMIT 1";

/* Run a query whose one row holds integers; out gets n of them. */
static int query_ints(PGconn *conn, const char *sql, const char *const *params, int nparams,
                      int64_t *out, int n, bool *found)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    int ok = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == n;
    if (!ok)
        seed_report("reading the users' ids failed",
                    res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    *found = ok && PQntuples(res) == 1;
    for (int i = 0; *found && i < n; i++)
        out[i] = strtoll(PQgetvalue(res, 0, i), NULL, 10);
    PQclear(res);
    return ok ? 0 : -1;
}

/* The first id of count consecutive users for a load test: the seeded
 * ones when they are one block, else any such block. */
static int consecutive_users(PGconn *conn, const char *prefix, int64_t count, int64_t *first)
{
    char count_txt[24];
    snprintf(count_txt, sizeof count_txt, "%" PRId64, count);
    const char *params[] = { prefix, count_txt };
    int64_t v[3];
    bool found;
    if (query_ints(conn, RANGE_SQL, params, 2, v, 3, &found) != 0)
        return -1;
    if (found && v[2] == count && v[1] - v[0] + 1 == count) {
        *first = v[0];
        return 0;
    }
    if (query_ints(conn, ISLAND_SQL, params + 1, 1, v, 1, &found) != 0)
        return -1;
    if (!found) {
        fprintf(stderr,
                "reservd-seed: no %" PRId64 " users have consecutive ids in this database; "
                "reset it (scripts/pg.sh reset) or seed a new --prefix\n",
                count);
        return -1;
    }
    fprintf(stderr,
            "reservd-seed: the seeded users' ids are not one block; USER_START names %" PRId64
            " other users with consecutive ids\n",
            count);
    *first = v[0];
    return 0;
}

int seed_users(PGconn *conn, const char *prefix, int64_t count, bool progress, bool export_env)
{
    struct row_gen g;
    row_gen_init(&g, prefix);
    struct copy_state st = {
        .conn = conn,
        .buf = malloc(COPY_CHUNK),
        .total = count,
        .progress = progress && count >= PROGRESS_MIN_ROWS,
    };
    if (st.buf == NULL) {
        seed_report("cannot allocate the COPY buffer", "out of memory");
        return SEED_FAIL;
    }
    /* Seed data is reproducible, so a crash right after COMMIT may lose it:
     * skip waiting for the WAL flush (this session only). */
    int64_t added = 0;
    double t0 = seed_now();
    int rc = seed_exec(conn, "SET synchronous_commit = off", "session setup");
    if (rc == 0)
        rc = seed_in_transaction(conn, &st, &g, &added);
    double secs = seed_now() - t0;
    clear_progress(&st);
    free(st.buf);
    if (rc != 0)
        return SEED_FAIL;
    /* with --export, stdout is for the shell: the summary goes to stderr */
    fprintf(export_env ? stderr : stdout,
            "seeded %" PRId64 " users (%" PRId64 " new, %" PRId64
            " existing) in %.2f s, %.0f rows/s\n",
            count, added, count - added, secs, secs > 0 ? (double)count / secs : 0.0);
    int64_t first;
    if (export_env) {
        if (consecutive_users(conn, prefix, count, &first) != 0)
            return SEED_FAIL;
        printf("export USER_START=%" PRId64 " USER_COUNT=%" PRId64 "\n", first, count);
    }
    return fflush(stdout) == 0 ? SEED_OK : SEED_FAIL;
}
