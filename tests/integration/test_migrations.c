/* Numbered migrations (sql/migrations/, src/db/schema.c): an empty
 * database gets them all, once; a restart applies nothing; a database made
 * by the old sql/schema.sql (before migrations) is brought up to date
 * without losing a row: the last sql/schema.sql there was
 * (tests/fixtures/schema_before_migrations.sql, from git), and the older one
 * that 0001 reproduces. (Instances starting at once on an empty database:
 * test_lifecycle.c, concurrent_migrations.) */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "harness.h"

static long long scalar(PGconn *db, const char *sql)
{
    return test_db_scalar(db, sql);
}

static void stop_keep_db(struct test_server *srv)
{
    assert_int_equal(test_server_kill(srv, SIGTERM), 0);
}

static void empty_database_then_restart(void **state)
{
    (void)state;
    struct test_server srv = { 0 };
    assert_int_equal(test_server_start(&srv, NULL), 0);
    PGconn *db = test_db_connect(&srv);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"),
                     (long long)db_nmigrations);
    assert_int_equal(scalar(db, "SELECT max(version) FROM schema_migrations"),
                     db_migrations[db_nmigrations - 1].version);
    char first[1024]; /* one timestamp per migration */
    PGresult *res = PQexec(db, "SELECT string_agg(applied_at::text, ',' ORDER BY version) "
                               "FROM schema_migrations");
    snprintf(first, sizeof(first), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    /* every function in PL/pgSQL plans its lookups with sequential scans off
     * (0010) and never JIT-compiles them (0012), also one that a later
     * migration replaced */
    assert_true(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = "
                           "p.prolang WHERE l.lanname = 'plpgsql' AND p.proname LIKE "
                           "'reservd\\_%'") >= 10);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = "
                                "p.prolang WHERE l.lanname = 'plpgsql' AND p.proname LIKE "
                                "'reservd\\_%' AND NOT coalesce('enable_seqscan=off' = "
                                "ANY (p.proconfig), false)"),
                     0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = "
                                "p.prolang WHERE l.lanname = 'plpgsql' AND p.proname LIKE "
                                "'reservd\\_%' AND NOT coalesce('jit=off' = "
                                "ANY (p.proconfig), false)"),
                     0);
    stop_keep_db(&srv);

    /* a restart is a no-op: nothing applied again */
    assert_int_equal(test_server_restart(&srv, NULL), 0);
    res = PQexec(
        db, "SELECT string_agg(applied_at::text, ',' ORDER BY version) FROM schema_migrations");
    assert_string_equal(PQgetvalue(res, 0, 0), first);
    PQclear(res);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"),
                     (long long)db_nmigrations);
    PQfinish(db);
    assert_int_equal(test_server_stop(&srv), 0);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void exec_ok(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
}

static void database_from_old_schema(void **state)
{
    (void)state;
    struct test_server srv = { 0 };
    assert_int_equal(test_database_create(&srv), 0);
    PGconn *db = test_db_connect(&srv);
    /* 0001 is sql/schema.sql as it was from cbca8c3 until 3c11505 (which
     * added the lock budgets) word for word, bar its opening comment: a
     * database made by a server of then. Run it as that server did,
     * without recording it. (The last schema.sql: last_schema_before_migrations.) */
    char *old = read_file(RESERVD_MIGRATIONS "/0001_initial.sql");
    exec_ok(db, old);
    free(old);
    exec_ok(db, "INSERT INTO users (name, email) SELECT 'U' || g, 'u' || g || '@x' "
                "FROM generate_series(1, 50) g");
    exec_ok(db, "INSERT INTO events (name, date, location, max_tickets, reserved_tickets) "
                "VALUES ('Old', now(), 'Hall', 10, 3)");
    exec_ok(
        db,
        "INSERT INTO reservations (event_id, user_id) SELECT 1, g FROM generate_series(1, 3) g");
    exec_ok(db,
            "UPDATE reservations SET status = 'CANCELLED', cancelled_at = now() WHERE user_id = 3");
    exec_ok(db, "UPDATE events SET reserved_tickets = 2");

    assert_int_equal(test_server_restart(&srv, NULL), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM schema_migrations"),
                     (long long)db_nmigrations);
    assert_int_equal(scalar(db, "SELECT count(*) FROM users"), 50);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations"), 3);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations WHERE status = 'CANCELLED'"), 1);
    assert_int_equal(scalar(db, "SELECT reserved_tickets FROM events WHERE id = 1"), 2);
    /* 0003: every old reservation is one final ticket, every old event takes
     * the purchase defaults, nothing is held or waiting */
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations WHERE quantity = 1 "
                                "AND expires_at IS NULL AND expired_at IS NULL"),
                     3);
    assert_int_equal(scalar(db, "SELECT count(*) FROM events WHERE held_tickets = 0 "
                                "AND waiting_count = 0 AND max_per_user = 1 "
                                "AND hold_seconds = 900 AND offer_seconds = 86400"),
                     1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_indexes WHERE indexname IN "
                                "('reservations_one_active', 'reservations_held_expiry')"),
                     2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_indexes "
                                "WHERE indexname = 'reservations_one_active_per_user'"),
                     0);
    /* reservations' foreign keys gave way to the set-based check (0002);
     * the waiting list (0005, not on the hot path) keeps plain ones */
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' "
                                "AND conrelid = 'reservations'::regclass"),
                     0);
    assert_int_equal(
        scalar(db, "SELECT count(*) FROM pg_trigger WHERE tgname = 'reservations_refs_insert'"), 1);

    /* and the server works on it */
    struct http_result r;
    r = test_call(srv.port, "POST", "/reservations", "{\"eventId\":1,\"userId\":4}", 201);
    http_result_free(&r);
    assert_int_equal(scalar(db, "SELECT reserved_tickets FROM events WHERE id = 1"), 3);
    PQfinish(db);
    assert_int_equal(test_server_stop(&srv), 0);
}

/* The old server's start (sql/schema.sql before fae7646): the whole file as
 * one PQexec under a session advisory lock, at every start; no
 * schema_migrations. */
static void old_server_start(PGconn *db, const char *schema)
{
    exec_ok(db, "SELECT pg_advisory_lock(7346017263)");
    exec_ok(db, schema);
    exec_ok(db, "SELECT pg_advisory_unlock(7346017263)");
}

/* Every old column of every old row, in one digest per table. */
static const char *const old_rows[] = {
    "SELECT md5(string_agg(concat_ws('|', id, name, email, created_at), ';' ORDER BY id)) "
    "FROM users",
    "SELECT md5(string_agg(concat_ws('|', id, name, date, location, max_tickets, "
    "reserved_tickets, created_at), ';' ORDER BY id)) FROM events",
    "SELECT md5(string_agg(concat_ws('|', id, event_id, user_id, status, reserved_at, "
    "cancelled_at), ';' ORDER BY id)) FROM reservations",
};
#define NOLD (sizeof(old_rows) / sizeof(old_rows[0]))

static void text_of(PGconn *db, const char *sql, char *out, size_t len)
{
    PGresult *res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static void json_string_is(const struct http_result *r, const char *key, const char *want)
{
    json_t *v = json_object_get(r->json, key);
    if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0)
        fail_msg("%s: want \"%s\" in %s", key, want, r->body);
}

/* The schema as text: columns, constraints, indexes, triggers and functions,
 * one sorted line each (caller frees). */
static char *schema_text(PGconn *db)
{
    PGresult *res = PQexec(
        db, "SELECT string_agg(d, E'\\n' ORDER BY d) FROM ("
            "SELECT 'column ' || c.relname || ' ' || a.attnum || ' ' || a.attname || ' ' || "
            "format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || "
            "coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') AS d FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef ad ON ad.adrelid = "
            "a.attrelid AND ad.adnum = a.attnum WHERE c.relnamespace = 'public'::regnamespace "
            "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
            "UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || "
            "pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = "
            "'public'::regnamespace "
            "UNION ALL SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "UNION ALL SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE NOT tgisinternal "
            "UNION ALL SELECT 'function ' || pg_get_functiondef(oid) FROM pg_proc "
            "WHERE pronamespace = 'public'::regnamespace) s");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("schema: %s", PQresultErrorMessage(res));
    char *text = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    assert_non_null(text);
    return text;
}

static void last_schema_before_migrations(void **state)
{
    (void)state;
    struct test_server srv = { 0 };
    assert_int_equal(test_database_create(&srv), 0);
    PGconn *db = test_db_connect(&srv);
    exec_ok(db, "SET TimeZone = 'UTC'");
    char *old = read_file(RESERVD_FIXTURES "/schema_before_migrations.sql");
    old_server_start(db, old);
    /* what that server wrote: users, events, reservations through its own
     * functions (with their lock budgets) and as plain rows */
    exec_ok(db, "INSERT INTO users (name, email, created_at) VALUES "
                "('Ada Lovelace', 'Ada@Example.org', '2025-01-02 03:04:05.678+00')");
    exec_ok(db, "INSERT INTO users (name, email) SELECT 'U' || g, 'u' || g || '@x' "
                "FROM generate_series(2, 40) g");
    exec_ok(db, "INSERT INTO events (name, date, location, max_tickets, created_at) VALUES "
                "('Old Hall', '2026-06-01 19:30:00+00', 'Hall', 10, '2025-02-03 04:05:06.789+00'), "
                "('Tiny', '2026-07-01 20:00:00+00', 'Cellar', 1, now())");
    assert_int_equal(scalar(db, "SELECT count(*) FROM generate_series(1, 3) g, LATERAL "
                                "reservd_reserve_atomic(1, g, '1s') WHERE outcome = 'reserved'"),
                     3);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservd_reserve_atomic(2, 2, '1s') "
                                "WHERE outcome = 'reserved'"),
                     1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservd_cancel(3, '1s') "
                                "WHERE cancelled_now"),
                     1);
    exec_ok(db, "INSERT INTO reservations (event_id, user_id, status, reserved_at, cancelled_at) "
                "VALUES (1, 4, 'CANCELLED', '2025-03-04 05:06:07.891+00', "
                "'2025-03-05 06:07:08.912+00')");
    /* the old schema refuses what it should: a reference to nobody */
    PGresult *res = PQexec(db, "INSERT INTO reservations (event_id, user_id) VALUES (1, 999)");
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23503");
    PQclear(res);
    old_server_start(db, old); /* and it started again, as it did */
    free(old);
    assert_int_equal(
        scalar(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations'"), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE "
                                "'reservations\\_refs\\_%'"),
                     2);
    char before[NOLD][64];
    for (size_t i = 0; i < NOLD; i++)
        text_of(db, old_rows[i], before[i], sizeof(before[i]));

    /* today's server migrates it */
    assert_int_equal(test_server_restart(&srv, NULL), 0);
    char names[4096], want[4096] = "";
    for (size_t i = 0; i < db_nmigrations; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%d %s", i ? "," : "",
                 db_migrations[i].version, db_migrations[i].name);
    text_of(
        db,
        "SELECT string_agg(version || ' ' || name, ',' ORDER BY version) FROM schema_migrations",
        names, sizeof(names));
    assert_string_equal(names, want);

    /* the same schema as a database that had only migrations: nothing of
     * the old one left over (its functions' signatures, triggers) */
    struct test_server fresh = { 0 };
    assert_int_equal(test_server_start(&fresh, NULL), 0);
    PGconn *fresh_db = test_db_connect(&fresh);
    char *got = schema_text(db), *expected = schema_text(fresh_db);
    PQfinish(fresh_db);
    assert_int_equal(test_server_stop(&fresh), 0);
    if (strcmp(got, expected) != 0) {
        size_t at = 0; /* the first schema line that differs */
        for (size_t i = 0; got[i] == expected[i]; i++)
            if (got[i] == '\n')
                at = i + 1;
        fail_msg("the migrated old database's schema differs from a fresh one's:\n  "
                 "migrated: %.300s\n  fresh:    %.300s",
                 got + at, expected + at);
    }
    free(got);
    free(expected);

    /* every row, every old value */
    for (size_t i = 0; i < NOLD; i++) {
        char after[64];
        text_of(db, old_rows[i], after, sizeof(after));
        if (strcmp(before[i], after) != 0)
            fail_msg("rows changed by the migrations: %s", old_rows[i]);
    }
    assert_int_equal(scalar(db, "SELECT count(*) FROM users"), 40);
    assert_int_equal(scalar(db, "SELECT count(*) FROM events"), 2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations"), 5);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations WHERE status = 'CANCELLED' "
                                "AND cancelled_at IS NOT NULL AND quantity = 1"),
                     2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM reservations WHERE status = 'RESERVED' "
                                "AND cancelled_at IS NULL AND quantity = 1 AND expires_at IS NULL"),
                     3);

    /* the server serves them */
    struct http_result r = test_call(srv.port, "GET", "/users/1", NULL, 200);
    json_string_is(&r, "name", "Ada Lovelace");
    json_string_is(&r, "email", "Ada@Example.org");
    json_string_is(&r, "createdAt", "2025-01-02T03:04:05.678Z");
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/events/1", NULL, 200);
    json_string_is(&r, "name", "Old Hall");
    json_string_is(&r, "date", "2026-06-01T19:30:00.000Z");
    json_string_is(&r, "location", "Hall");
    json_string_is(&r, "createdAt", "2025-02-03T04:05:06.789Z");
    assert_int_equal(http_json_int(&r, "maxTickets"), 10);
    assert_int_equal(http_json_int(&r, "reservedTickets"), 2);
    assert_int_equal(http_json_int(&r, "remainingTickets"), 8);
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/events/2", NULL, 200);
    assert_int_equal(http_json_int(&r, "remainingTickets"), 0);
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/reservations/5", NULL, 200);
    assert_int_equal(http_json_int(&r, "eventId"), 1);
    assert_int_equal(http_json_int(&r, "userId"), 4);
    json_string_is(&r, "status", "CANCELLED");
    json_string_is(&r, "reservedAt", "2025-03-04T05:06:07.891Z");
    json_string_is(&r, "cancelledAt", "2025-03-05T06:07:08.912Z");
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/reservations/1", NULL, 200);
    json_string_is(&r, "status", "RESERVED");
    assert_int_equal(http_json_int(&r, "userId"), 1);
    http_result_free(&r);

    /* and works on them: a new reservation, a duplicate refused (an old
     * one and a new one), a cancelled user may take one again, the sold-out
     * event stays sold out, an old reservation cancels, a new user */
    r = test_call(srv.port, "POST", "/reservations", "{\"eventId\":1,\"userId\":5}", 201);
    long long new_id = http_json_int(&r, "id");
    http_result_free(&r);
    assert_true(new_id > 5);
    test_expect_error(srv.port, "POST", "/reservations", "{\"eventId\":1,\"userId\":5}", 409,
                      "already_reserved");
    test_expect_error(srv.port, "POST", "/reservations", "{\"eventId\":1,\"userId\":1}", 409,
                      "already_reserved");
    r = test_call(srv.port, "POST", "/reservations", "{\"eventId\":1,\"userId\":3}", 201);
    http_result_free(&r);
    test_expect_error(srv.port, "POST", "/reservations", "{\"eventId\":2,\"userId\":6}", 409,
                      "sold_out");
    r = test_call(srv.port, "DELETE", "/reservations/2", NULL, 200);
    json_string_is(&r, "status", "CANCELLED");
    http_result_free(&r);
    assert_int_equal(scalar(db, "SELECT reserved_tickets FROM events WHERE id = 1"), 3);
    r = test_call(srv.port, "POST", "/users", "{\"name\":\"New\",\"email\":\"new@example.org\"}",
                  201);
    assert_int_equal(http_json_int(&r, "id"), 41);
    http_result_free(&r);
    test_expect_error(srv.port, "POST", "/users",
                      "{\"name\":\"Ada\",\"email\":\"ada@example.org\"}", 409, "email_taken");
    PQfinish(db);
    assert_int_equal(test_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_database_then_restart),
        cmocka_unit_test(database_from_old_schema),
        cmocka_unit_test(last_schema_before_migrations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
