/* pg_terminate_backend on reservd's busy connections, 10 times under load:
 * a reservation the client was told 201 is in the database with that id,
 * and one it was told anything else is not. The old for-update answered
 * 503 for statements of a broken pipeline that had already committed. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "strategies.h"

#define USERS         3000
#define KILLS         10
#define KILL_EVERY_MS 150

/* Terminate reservd's busy backends on dbname; how many, or -1. */
static long long terminate_busy(PGconn *admin, const char *dbname)
{
    const char *params[] = { dbname };
    PGresult *res =
        PQexecParams(admin,
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                     "WHERE datname = $1 AND application_name = 'reservd' AND state <> 'idle'",
                     1, NULL, params, NULL, NULL, 0);
    long long n =
        PQresultStatus(res) == PGRES_TUPLES_OK ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    if (n < 0)
        fprintf(stderr, "terminate: %s", PQresultErrorMessage(res));
    PQclear(res);
    return n;
}

static void terminate_under_load(const char *strategy)
{
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server srv;
    assert_int_equal(fault_server_start(&srv, args), 0);
    PGconn *db = test_db_connect(&srv);
    PGconn *admin = PQconnectdb(getenv("RESERVD_TEST_ADMIN_URL"));
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    long long first = fault_seed_users(db, "term", USERS);
    long long ev = fault_seed_event(db, "Terminate", 1000000);
    assert_true(first > 0 && ev > 0);

    struct fault_load load;
    assert_int_equal(fault_load_spawn(&load, srv.port, first, USERS,
                                      "steady -c 32 -d 30 --timeout 40 --scenario reserve "
                                      "--event %lld",
                                      ev),
                     0);
    long long terminated = 0;
    int rounds_under_load = 0;
    fault_sleep_ms(100);
    /* A round that finds no busy backend looks again 2 ms later: batch's
     * group statements are short, and its whole load took 0.47 s on CI,
     * where three looks 150 ms apart all found every backend idle. */
    while (rounds_under_load < KILLS && fault_load_running(&load)) {
        long long n = terminate_busy(admin, srv.dbname);
        if (n > 0) {
            rounds_under_load++;
            terminated += n;
        }
        fault_sleep_ms(n > 0 ? KILL_EVERY_MS : 2);
    }
    assert_int_equal(fault_load_wait(&load), 0);
    char label[64];
    snprintf(label, sizeof(label), "terminate %s", strategy);
    fprintf(stderr, "%s: %lld backends terminated in %d rounds during the load\n", label,
            terminated, rounds_under_load);
    fault_report_print(label, &load);
    struct fault_ledger led;
    struct fault_load *loads[] = { &load };
    assert_int_equal(fault_ledger_check(db, ev, first, USERS, loads, 1, label, &led), 0);
    long long unavailable = fault_report_count(&load, "errors", "unavailable");
    long long busy = fault_report_count(&load, "errors", "busy");
    fault_load_free(&load);
    PQfinish(admin);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_true(terminated > 0);           /* the fault did happen under load */
    assert_true(fault_ledger_clean(&led)); /* 201 <=> in the database, same id */
    assert_int_equal(led.no_answer, 0);    /* a broken backend is no reason to drop a client */
    assert_int_equal(led.answered[201] + led.answered[503], USERS);
    assert_int_equal(led.answered[503], unavailable + busy);
}

/* *state holds the strategy's name (strategies.h). */
static void on_strategy(void **state)
{
    terminate_under_load(*state);
}

int main(void)
{
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "terminate_under_load", on_strategy, NULL, fault_teardown,
                       STRATEGIES_SAFE);
    return strategy_tests_run(&t, "terminate_backends");
}
