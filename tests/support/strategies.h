#ifndef RESERVD_TEST_STRATEGIES_H
#define RESERVD_TEST_STRATEGIES_H

/* Tests that loop over reservation strategies take them from the server
 * itself (`reservd --list-strategies`, the RESERVATION_STRATEGIES table),
 * so a new row in the table is covered without editing the tests.
 *
 *     struct strategy_tests t = { 0 };
 *     strategy_tests_add(&t, "proof", proof, setup, teardown, STRATEGIES_SAFE);
 *     strategy_tests_add_one(&t, cmocka_unit_test(other));
 *     return strategy_tests_run(&t, "concurrency");
 *
 * Each added test runs with *state set to its strategy's name (a setup
 * sees it first and may replace it with its fixture). */

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

enum strategy_kind {
    STRATEGIES_SAFE,   /* never oversell: every correctness proof runs on each */
    STRATEGIES_UNSAFE, /* need --i-understand-unsafe-oversells */
};

struct strategy_tests {
    struct CMUnitTest *tests;
    size_t n, cap;
    bool failed; /* an add failed: run reports it and fails */
};

/* One test per strategy of that kind, named "name [strategy]". */
void strategy_tests_add(struct strategy_tests *t, const char *name, CMUnitTestFunction test,
                        CMFixtureFunction setup, CMFixtureFunction teardown,
                        enum strategy_kind kind);
/* One test as it is. */
void strategy_tests_add_one(struct strategy_tests *t, struct CMUnitTest test);
/* Run every test added as one group, free them; cmocka's exit status (a
 * failure to list the strategies or to allocate counts as one failure). */
int strategy_tests_run(struct strategy_tests *t, const char *group);

/* How many strategies of that kind the server lists, and the i-th one's
 * name; -1 / NULL (after printing why) if reservd could not list them. */
int strategy_count(enum strategy_kind kind);
const char *strategy_name(enum strategy_kind kind, int i);

#endif
