#ifndef RESERVD_TEST_HOLDS_H
#define RESERVD_TEST_HOLDS_H

/* What the purchase-flow tests share (test_holds.c, test_expiry.c): the
 * fixtures per strategy, seeding, reservd-load runs and their answers, and
 * the checks against the database. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "strategies.h"

/* Long deadlines: these tests are about exactness, on a shared machine
 * where a spike can take seconds; a 503 busy would only blur the counts. */
static inline int start(void **state, const char *strategy, const char *sweep_ms)
{
    const char *args[] = { "--reservation-strategy",
                           strategy,
                           "--sweep-interval-ms",
                           sweep_ms,
                           "--acquire-timeout-ms",
                           "30000",
                           "--lock-timeout-ms",
                           "30000",
                           NULL };
    return fixture_start(state, args);
}
/* *state holds the strategy's name (strategies.h: one test per row of
 * the server's strategy table). */
static inline int setup_strategy(void **state)
{
    return start(state, *state, "250");
}
/* No sweeper: what clients see must not depend on it. */
static inline int setup_strategy_unswept(void **state)
{
    return start(state, *state, "0");
}
static inline int setup_for_update(void **state)
{
    return start(state, "for-update", "250");
}
static inline int setup_unsafe(void **state)
{
    const char *args[] = { "--reservation-strategy", *state, "--i-understand-unsafe-oversells",
                           NULL };
    return fixture_start(state, args);
}
static inline int teardown(void **state)
{
    return fixture_stop(state);
}

/* The harness's helpers on a fixture (tests/support/harness.h). */
#define scalar(f, ...)           test_scalar((f)->db, __VA_ARGS__)
#define seed_users(f, prefix, n) test_seed_users((f)->db, prefix, n)
#define seed_event(f, name, tickets, max_per_user, hold_seconds) \
    test_seed_event((f)->db, name, tickets, max_per_user, hold_seconds, 0)
#define call(f, ...) test_callf((f)->srv.port, __VA_ARGS__)
#define json_str     test_json_str
#define now_s        test_now_s
#define sleep_s      test_sleep_s

/* Tickets out, by the rows: confirmed and held quantities. */
static inline long long rows_quantity(struct fixture *f, long long ev, const char *status)
{
    return scalar(f,
                  "SELECT coalesce(sum(quantity), 0) FROM reservations WHERE event_id = %lld "
                  "AND status = '%s'",
                  ev, status);
}

/* The counters agree with the rows, and never exceed the capacity. */
static inline void check_counters(struct fixture *f, long long ev)
{
    long long reserved = scalar(f, "SELECT reserved_tickets FROM events WHERE id = %lld", ev);
    long long held = scalar(f, "SELECT held_tickets FROM events WHERE id = %lld", ev);
    long long max = scalar(f, "SELECT max_tickets FROM events WHERE id = %lld", ev);
    assert_int_equal(reserved, rows_quantity(f, ev, "RESERVED"));
    assert_int_equal(held, rows_quantity(f, ev, "HELD"));
    assert_true(reserved + held <= max);
    assert_int_equal(scalar(f,
                            "SELECT count(*) - count(DISTINCT user_id) FROM reservations "
                            "WHERE event_id = %lld AND status IN ('HELD', 'RESERVED')",
                            ev),
                     0);
}

/* reservd-load with args, started (not waited for). */
static inline FILE *load_start(struct fixture *f, const char *args)
{
    return test_load_start(f->srv.port, args);
}

/* Its report; its exit status in *rc. */
static inline json_t *load_finish(FILE *p, int *rc)
{
    return test_load_finish(p, rc);
}

static inline json_t *load(struct fixture *f, const char *fmt, ...)
{
    char args[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    int rc;
    json_t *rep = load_finish(load_start(f, args), &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "transport_errors")), 0);
    return rep;
}

static inline long long count_of(json_t *report, const char *group, const char *key)
{
    json_t *v = json_object_get(json_object_get(report, group), key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* An answers file of reservd-load: "<i> <status> <id>" lines. */
struct answer {
    long long i;
    int status;
    long long id;
};
static inline int read_answers(const char *path, struct answer *out, int max)
{
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    int n = 0;
    while (n < max && fscanf(in, "%lld %d %lld", &out[n].i, &out[n].status, &out[n].id) == 3)
        n++;
    fclose(in);
    return n;
}

static inline void answers_path(struct fixture *f, const char *tag, char *out, size_t len)
{
    snprintf(out, len, "/tmp/reservd_holds_%d_%s.txt", f->srv.port, tag);
}

static inline long long event_field(struct fixture *f, long long ev, const char *key)
{
    char path[64];
    snprintf(path, sizeof(path), "/events/%lld", ev);
    struct http_result r = call(f, "GET", path, 200, NULL);
    long long v = http_json_int(&r, key);
    http_result_free(&r);
    return v;
}

/* Everything a client sees of one event, as one string (to show that a
 * refused request changed nothing). */
static inline void event_snapshot(struct fixture *f, long long ev, char *out, size_t len)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT row_to_json(e)::text || (SELECT count(*) FROM reservations r "
             "WHERE r.event_id = e.id)::text FROM events e WHERE id = %lld",
             ev);
    PGresult *res = PQexec(f->db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

#endif
