/* The database's own referential integrity (sql/migrations/0002_*, 0009):
 * the statement-level check on reservations and the guards on users and
 * events refuse, by direct SQL, everything the foreign keys they replace
 * refused, also when the two writes race, without a row lock per
 * reservation. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int setup(void **state)
{
    return fixture_start(state, NULL);
}

static int teardown(void **state)
{
    return fixture_stop(state);
}

/* Run sql; return its SQLSTATE ("00000" on success) in a static buffer. */
static const char *sqlstate(PGconn *db, const char *sql)
{
    static char state[6];
    PGresult *res = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(res);
    const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(state, sizeof(state), "%s",
             st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? "00000"
             : s                                             ? s
                                                             : "?????");
    PQclear(res);
    return state;
}

static void exec_ok(PGconn *db, const char *sql)
{
    assert_string_equal(sqlstate(db, sql), "00000");
}

static void seed(struct fixture *f)
{
    exec_ok(f->db, "INSERT INTO users (id, name, email) VALUES (1, 'A', 'a@x'), (2, 'B', 'b@x'), "
                   "(3, 'C', 'c@x')");
    exec_ok(f->db, "INSERT INTO events (id, name, date, location, max_tickets) VALUES "
                   "(1, 'E1', now(), 'L', 10), (2, 'E2', now(), 'L', 10)");
    exec_ok(f->db, "INSERT INTO reservations (event_id, user_id) VALUES (1, 1)");
}

static void refuses_dangling_references(void **state)
{
    struct fixture *f = *state;
    seed(f);
    assert_string_equal(
        sqlstate(f->db, "INSERT INTO reservations (event_id, user_id) VALUES (1, 99)"), "23503");
    assert_string_equal(
        sqlstate(f->db, "INSERT INTO reservations (event_id, user_id) VALUES (99, 2)"), "23503");
    /* one bad row among good ones refuses the whole statement */
    assert_string_equal(sqlstate(f->db, "INSERT INTO reservations (event_id, user_id) "
                                        "VALUES (2, 2), (2, 3), (2, 98)"),
                        "23503");
    assert_string_equal(sqlstate(f->db, "UPDATE reservations SET user_id = 97"), "23503");
    assert_string_equal(sqlstate(f->db, "UPDATE reservations SET event_id = 96"), "23503");
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM reservations"), 1);
    exec_ok(f->db, "INSERT INTO reservations (event_id, user_id) VALUES (2, 2), (2, 3)");
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM reservations"), 3);
}

static void refuses_removing_referenced_rows(void **state)
{
    struct fixture *f = *state;
    seed(f);
    assert_string_equal(sqlstate(f->db, "DELETE FROM users WHERE id = 1"), "23503");
    assert_string_equal(sqlstate(f->db, "DELETE FROM events WHERE id = 1"), "23503");
    assert_string_equal(sqlstate(f->db, "UPDATE users SET id = 50 WHERE id = 1"), "23503");
    assert_string_equal(sqlstate(f->db, "UPDATE events SET id = 50 WHERE id = 1"), "23503");
    /* (a foreign key refused these with 0A000, the guard with 23503) */
    assert_string_not_equal(sqlstate(f->db, "TRUNCATE users"), "00000");
    assert_string_not_equal(sqlstate(f->db, "TRUNCATE events"), "00000");
    /* a cancelled reservation still refers to its user and event */
    exec_ok(f->db, "UPDATE reservations SET status = 'CANCELLED', cancelled_at = now()");
    assert_string_equal(sqlstate(f->db, "DELETE FROM users WHERE id = 1"), "23503");
    /* what nothing refers to goes, and other updates pass */
    exec_ok(f->db, "DELETE FROM users WHERE id = 3");
    exec_ok(f->db, "DELETE FROM events WHERE id = 2");
    exec_ok(f->db, "UPDATE users SET name = 'Ada' WHERE id = 1");
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM users"), 2);
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM events"), 1);
}

/* Wait until conn's query is blocked on a lock (pg_stat_activity). */
static void wait_until_blocked(PGconn *observer, PGconn *conn)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND wait_event_type = 'Lock'",
             PQbackendPID(conn));
    for (int i = 0; i < 200; i++) {
        if (test_db_scalar(observer, sql) == 1)
            return;
        usleep(10 * 1000);
    }
    fail_msg("the second writer never waited for the first");
}

/* first runs its statements (NULL-ended) in an open transaction; second's
 * statement must then wait for it, and fail with 23503 once first commits. */
static void waits_then_refused(struct fixture *f, PGconn *first, const char *const *sqls,
                               PGconn *second, const char *sql)
{
    exec_ok(first, "BEGIN");
    for (int i = 0; sqls[i]; i++)
        exec_ok(first, sqls[i]);
    assert_int_equal(PQsendQuery(second, sql), 1);
    wait_until_blocked(f->db, second);
    exec_ok(first, "COMMIT");
    PGresult *res = PQgetResult(second);
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23503");
    PQclear(res);
    while ((res = PQgetResult(second)))
        PQclear(res);
}

static void expect_no_dangling(struct fixture *f, long long reservations)
{
    assert_int_equal(test_db_scalar(f->db,
                                    "SELECT count(*) FROM reservations r WHERE NOT EXISTS "
                                    "(SELECT 1 FROM users u WHERE u.id = r.user_id) OR "
                                    "NOT EXISTS (SELECT 1 FROM events e WHERE e.id = r.event_id)"),
                     0);
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM reservations"), reservations);
}

/* The racing pairs: whichever commits first, the other fails, and no
 * reservation is left pointing at nothing. */
static void races_leave_no_dangling_reservation(void **state)
{
    struct fixture *f = *state;
    seed(f);
    PGconn *a = test_db_connect(&f->srv), *b = test_db_connect(&f->srv);
    /* a reserves for user 2; b's delete of user 2 waits, then fails */
    const char *reserve[] = { "INSERT INTO reservations (event_id, user_id) VALUES (2, 2)", NULL };
    waits_then_refused(f, a, reserve, b, "DELETE FROM users WHERE id = 2");
    /* b deletes user 3; a's reservation for user 3 waits, then fails */
    const char *delete_user[] = { "DELETE FROM users WHERE id = 3", NULL };
    waits_then_refused(f, b, delete_user, a,
                       "INSERT INTO reservations (event_id, user_id) VALUES (2, 3)");
    expect_no_dangling(f, 2);
    PQfinish(a);
    PQfinish(b);
}

/* The same races on events, the reservation written as reservd writes it
 * (under the event row's lock). */
static void races_on_events_leave_no_dangling_reservation(void **state)
{
    struct fixture *f = *state;
    seed(f);
    exec_ok(f->db, "INSERT INTO events (id, name, date, location, max_tickets) VALUES "
                   "(3, 'E3', now(), 'L', 10)");
    PGconn *a = test_db_connect(&f->srv), *b = test_db_connect(&f->srv);
    const char *reserve[] = { "SELECT 1 FROM events WHERE id = 2 FOR UPDATE",
                              "INSERT INTO reservations (event_id, user_id) VALUES (2, 2)", NULL };
    waits_then_refused(f, a, reserve, b, "DELETE FROM events WHERE id = 2");
    const char *delete_event[] = { "DELETE FROM events WHERE id = 3", NULL };
    waits_then_refused(f, b, delete_event, a,
                       "INSERT INTO reservations (event_id, user_id) VALUES (3, 1)");
    expect_no_dangling(f, 2);
    PQfinish(a);
    PQfinish(b);
}

/* A reservation locks no user row (0009: a lock, a WAL record and a
 * dirtied page per reservation were most of the check's cost on a hot
 * event): while one is being written, its user's row can be locked. */
static void reserving_locks_no_user_row(void **state)
{
    struct fixture *f = *state;
    seed(f);
    PGconn *a = test_db_connect(&f->srv);
    exec_ok(a, "BEGIN");
    exec_ok(a, "INSERT INTO reservations (event_id, user_id) VALUES (2, 2), (2, 3)");
    exec_ok(f->db, "SELECT 1 FROM users WHERE id IN (2, 3) FOR UPDATE NOWAIT");
    exec_ok(a, "COMMIT");
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM reservations"), 3);
    PQfinish(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(refuses_dangling_references, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_removing_referenced_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(races_leave_no_dangling_reservation, setup, teardown),
        cmocka_unit_test_setup_teardown(races_on_events_leave_no_dangling_reservation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reserving_locks_no_user_row, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
