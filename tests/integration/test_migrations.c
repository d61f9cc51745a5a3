/* Numbered migrations (sql/migrations/, src/db/schema.c): an empty
 * database gets them all, once; a restart applies nothing; a database made
 * by the old sql/schema.sql (before migrations) is brought up to date
 * without losing a row. (Instances starting at once on an empty database:
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
     * (0010), also one that a later migration replaced */
    assert_true(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = "
                           "p.prolang WHERE l.lanname = 'plpgsql' AND p.proname LIKE "
                           "'reservd\\_%'") >= 10);
    assert_int_equal(scalar(db, "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = "
                                "p.prolang WHERE l.lanname = 'plpgsql' AND p.proname LIKE "
                                "'reservd\\_%' AND NOT coalesce('enable_seqscan=off' = "
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
    /* 0001 is the old sql/schema.sql word for word, bar its opening
     * comment: run it as the old server did, without recording it */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_database_then_restart),
        cmocka_unit_test(database_from_old_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
