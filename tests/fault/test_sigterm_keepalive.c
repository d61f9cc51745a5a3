/* SIGTERM under keep-alive load: the server stops accepting, answers what
 * it has received, refuses the rest without doing it, and exits 0 soon.
 * No ghost: nothing is committed that its client was not told about. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "fault.h"

#define USERS            150000 /* more than 64 connections can reserve in the run */
#define SIGTERM_AFTER_MS 2000
#define EXIT_WITHIN_MS   10000

static void sigterm_with_keepalive_clients(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(fault_server_start(&srv, NULL), 0);
    PGconn *db = test_db_connect(&srv);
    long long first = fault_seed_users(db, "term", USERS);
    long long ev = fault_seed_event(db, "Sigterm", 10000000);
    assert_true(first > 0 && ev > 0);

    /* the load outlives the grace period, so keep-alive clients keep
     * sending after SIGTERM */
    struct fault_load load;
    assert_int_equal(fault_load_spawn(&load, srv.port, first, USERS,
                                      "steady -c 64 -d 20 --timeout 30 --scenario reserve "
                                      "--event %lld",
                                      ev),
                     0);
    fault_sleep_ms(SIGTERM_AFTER_MS);
    double t0 = fault_now_ms();
    kill(srv.pid, SIGTERM);
    int status = 0;
    bool exited = test_server_wait(&srv, EXIT_WITHIN_MS, &status) == 0;
    double exit_ms = fault_now_ms() - t0;
    if (!exited) {
        kill(srv.pid, SIGKILL); /* stop it so the answers can be counted */
        test_server_wait(&srv, 5000, &status);
    }
    assert_int_equal(fault_load_wait(&load), 0);
    fprintf(stderr, "sigterm: reservd %s after %.0f ms (%s %d)\n",
            exited ? "exited" : "was still running and was killed", exit_ms,
            WIFSIGNALED(status) ? "signal" : "exit status",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    fault_report_print("sigterm load", &load);

    struct fault_ledger led;
    struct fault_load *loads[] = { &load };
    assert_int_equal(fault_ledger_check(db, ev, first, USERS, loads, 1, "sigterm", &led), 0);
    long long refused = fault_report_count(&load, "status", "503");
    long long shutting_down = fault_report_count(&load, "errors", "shutting_down");
    fault_load_free(&load);
    PQfinish(db);
    fault_server_stop(&srv); /* already gone: drops the database */

    assert_true(exited);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(led.answered[201] > 0); /* the load did run */
    /* every 201 is in the database, nothing else is */
    assert_true(fault_ledger_clean(&led));
    /* distinct users, plenty of tickets: the only refusal is shutting_down */
    assert_int_equal(refused, shutting_down);
    for (int s = 100; s < 600; s++)
        if (s != 201 && s != 503)
            assert_int_equal(led.answered[s], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(sigterm_with_keepalive_clients, fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
