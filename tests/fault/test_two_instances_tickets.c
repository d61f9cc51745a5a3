/* Two instances on one database, 1,000 distinct users each, one
 * 100-ticket event: exactly 100 tickets are sold in total, whichever
 * instance sold them, and the database agrees with every answer. */

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

#define PER_INSTANCE 1000
#define TICKETS      100

static void two_instances_100_tickets(const char *strategy)
{
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server a, b;
    assert_int_equal(fault_server_start(&a, args), 0);
    assert_int_equal(fault_server_start_on(&b, &a, "second", args), 0);
    PGconn *db = test_db_connect(&a);
    long long first = fault_seed_users(db, "pair", 2 * PER_INSTANCE);
    long long ev = fault_seed_event(db, "Pair", TICKETS);
    assert_true(first > 0 && ev > 0);

    struct fault_load la, lb;
    const char *shape = "spike --timeout 60 --scenario reserve --event %lld";
    assert_int_equal(fault_load_spawn(&la, a.port, first, PER_INSTANCE, shape, ev), 0);
    assert_int_equal(fault_load_spawn(&lb, b.port, first + PER_INSTANCE, PER_INSTANCE, shape, ev),
                     0);
    assert_int_equal(fault_load_wait(&la), 0);
    assert_int_equal(fault_load_wait(&lb), 0);

    char label[64];
    snprintf(label, sizeof(label), "two instances, %d tickets, %s", TICKETS, strategy);
    fault_report_print("  instance 1", &la);
    fault_report_print("  instance 2", &lb);
    struct fault_ledger led;
    struct fault_load *loads[] = { &la, &lb };
    assert_int_equal(fault_ledger_check(db, ev, first, 2 * PER_INSTANCE, loads, 2, label, &led), 0);
    long long sold_out = fault_report_count(&la, "errors", "sold_out") +
                         fault_report_count(&lb, "errors", "sold_out");
    fault_load_free(&la);
    fault_load_free(&lb);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&b), 0);
    assert_int_equal(fault_server_stop(&a), 0);

    assert_int_equal(led.rows, TICKETS);
    assert_int_equal(led.answered[201], TICKETS);
    assert_int_equal(led.counter, TICKETS);
    assert_true(fault_ledger_clean(&led));
    assert_int_equal(led.no_answer, 0);
    assert_int_equal(led.answered[409], 2 * PER_INSTANCE - TICKETS);
    assert_int_equal(sold_out, 2 * PER_INSTANCE - TICKETS);
}

/* *state holds the strategy's name (strategies.h). */
static void on_strategy(void **state)
{
    two_instances_100_tickets(*state);
}

int main(void)
{
    fault_raise_fd_limit();
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "two_instances_100_tickets", on_strategy, NULL, fault_teardown,
                       STRATEGIES_SAFE);
    return strategy_tests_run(&t, "two_instances_tickets");
}
