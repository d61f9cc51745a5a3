/* Two instances on one database, the same 2,000 users sent to both at
 * once: each user gets exactly one 201 and one 409 already_reserved. The
 * old batch statement failed a whole group with 503 on the unique
 * violation the other instance caused. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#define USERS 2000

static void same_users_on_two_instances(const char *strategy)
{
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server a, b;
    assert_int_equal(fault_server_start(&a, args), 0);
    assert_int_equal(fault_server_start_on(&b, &a, "second", args), 0);
    PGconn *db = test_db_connect(&a);
    long long first = fault_seed_users(db, "twin", USERS);
    long long ev = fault_seed_event(db, "Twins", 1000000);
    assert_true(first > 0 && ev > 0);

    struct fault_load la, lb;
    const char *shape = "steady -c 64 -d 30 --timeout 40 --scenario reserve --event %lld";
    assert_int_equal(fault_load_spawn(&la, a.port, first, USERS, shape, ev), 0);
    assert_int_equal(fault_load_spawn(&lb, b.port, first, USERS, shape, ev), 0);
    assert_int_equal(fault_load_wait(&la), 0);
    assert_int_equal(fault_load_wait(&lb), 0);

    char label[64];
    snprintf(label, sizeof(label), "two instances %s", strategy);
    fault_report_print("  instance 1", &la);
    fault_report_print("  instance 2", &lb);
    struct fault_ledger led;
    struct fault_load *loads[] = { &la, &lb };
    assert_int_equal(fault_ledger_check(db, ev, first, USERS, loads, 2, label, &led), 0);
    /* per user: one 201 and one 409 */
    long long one_each = 0;
    for (long long k = 0; k < USERS; k++) {
        int sa = la.status[k], sb = lb.status[k];
        one_each += (sa == 201 && sb == 409) || (sa == 409 && sb == 201);
    }
    long long already = fault_report_count(&la, "errors", "already_reserved") +
                        fault_report_count(&lb, "errors", "already_reserved");
    long long server_errors = 0;
    for (int s = 500; s < 600; s++)
        server_errors += led.answered[s];
    fprintf(stderr,
            "%s: users with one 201 and one 409: %lld of %d; already_reserved x %lld; "
            "5xx x %lld\n",
            label, one_each, USERS, already, server_errors);
    fault_load_free(&la);
    fault_load_free(&lb);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&b), 0);
    assert_int_equal(fault_server_stop(&a), 0);

    assert_int_equal(server_errors, 0);
    assert_int_equal(led.no_answer, 0);
    assert_int_equal(one_each, USERS);
    assert_int_equal(already, USERS);
    assert_int_equal(led.rows, USERS);
    assert_true(fault_ledger_clean(&led));
}

static void two_instances_batch(void **state)
{
    (void)state;
    same_users_on_two_instances("batch");
}

static void two_instances_for_update(void **state)
{
    (void)state;
    same_users_on_two_instances("for-update");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(two_instances_batch, fault_teardown),
        cmocka_unit_test_teardown(two_instances_for_update, fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
