/* Every reservation route and error code, for each safe strategy, with
 * the database checked after each step. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "harness.h"
#include "strategies.h"
#include "statements.h"

static int start(void **state, const char *strategy, const char *extra)
{
    const char *args[] = { "--reservation-strategy", strategy, extra, extra ? "300" : NULL, NULL };
    return fixture_start(state, args);
}

/* *state holds the strategy's name (strategies.h). */
static int setup_strategy(void **state)
{
    return start(state, *state, NULL);
}
static int setup_batch(void **state)
{
    return start(state, "batch", NULL);
}
static int setup_for_update_short_lock(void **state)
{
    return start(state, "for-update", "--lock-timeout-ms");
}
static int setup_batch_short_lock(void **state)
{
    return start(state, "batch", "--lock-timeout-ms");
}

static int teardown(void **state)
{
    return fixture_stop(state);
}

static long long create(struct fixture *f, const char *path, const char *body)
{
    struct http_result r = test_call(f->srv.port, "POST", path, body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    assert_true(id > 0);
    return id;
}

static long long new_user(struct fixture *f, int n)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"name\":\"U%d\",\"email\":\"u%d@example.com\"}", n, n);
    return create(f, "/users", body);
}

static long long new_event(struct fixture *f, const char *name, int tickets)
{
    char body[256];
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"date\":\"2027-05-01T19:00:00Z\",\"location\":\"Arena\","
             "\"maxTickets\":%d}",
             name, tickets);
    return create(f, "/events", body);
}

/* The API's event counters must agree with the reservations table. */
static void check_event(struct fixture *f, long long event, long long reserved, long long max)
{
    char path[64], sql[160];
    snprintf(path, sizeof(path), "/events/%lld", event);
    struct http_result r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(http_json_int(&r, "reservedTickets"), reserved);
    assert_int_equal(http_json_int(&r, "remainingTickets"), max - reserved);
    http_result_free(&r);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM reservations WHERE event_id = %lld AND status = 'RESERVED'",
             event);
    assert_int_equal(test_db_scalar(f->db, sql), reserved);
}

static long long reserve(struct fixture *f, long long event, long long user, int status,
                         const char *code)
{
    char body[128];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", event, user);
    struct http_result r = test_call(f->srv.port, "POST", "/reservations", body, status);
    long long id = -1;
    if (status == 201) {
        id = http_json_int(&r, "id");
        assert_int_equal(http_json_int(&r, "eventId"), event);
        assert_int_equal(http_json_int(&r, "userId"), user);
        assert_string_equal(json_string_value(json_object_get(r.json, "status")), "RESERVED");
        assert_non_null(json_string_value(json_object_get(r.json, "reservedAt")));
        assert_true(json_is_null(json_object_get(r.json, "cancelledAt")));
        char loc[64], expect[64];
        snprintf(expect, sizeof(expect), "/reservations/%lld", id);
        assert_string_equal(http_result_header(&r, "Location", loc, sizeof(loc)), expect);
    } else {
        assert_string_equal(http_error_code(&r), code);
    }
    http_result_free(&r);
    return id;
}

static void reserve_cancel_and_errors(void **state)
{
    struct fixture *f = *state;
    long long a = new_user(f, 1), b = new_user(f, 2), c = new_user(f, 3);
    long long ev = new_event(f, "Small", 2);

    long long ra = reserve(f, ev, a, 201, NULL);
    check_event(f, ev, 1, 2);
    reserve(f, ev, a, 409, "already_reserved");
    check_event(f, ev, 1, 2);
    reserve(f, ev, 999999, 404, "user_not_found");
    reserve(f, 999999, a, 404, "event_not_found");
    long long rb = reserve(f, ev, b, 201, NULL);
    check_event(f, ev, 2, 2);
    reserve(f, ev, c, 409, "sold_out");
    reserve(f, ev, a, 409, "already_reserved"); /* sold out, but the user's own */
    check_event(f, ev, 2, 2);

    /* lookups */
    char path[64];
    snprintf(path, sizeof(path), "/reservations/%lld", ra);
    struct http_result r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(http_json_int(&r, "userId"), a);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "RESERVED");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservation/%lld", rb);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(http_json_int(&r, "userId"), b);
    http_result_free(&r);
    test_expect_error(f->srv.port, "GET", "/reservations/987654", NULL, 404,
                      "reservation_not_found");
    test_expect_error(f->srv.port, "GET", "/reservations/x1", NULL, 400, "invalid_id");

    /* cancel: ticket returns, idempotent, then the user may reserve again */
    snprintf(path, sizeof(path), "/reservations/%lld", ra);
    r = test_call(f->srv.port, "DELETE", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "CANCELLED");
    char cancelled_at[32];
    snprintf(cancelled_at, sizeof(cancelled_at), "%s",
             json_string_value(json_object_get(r.json, "cancelledAt")));
    assert_int_equal(strlen(cancelled_at), 24);
    http_result_free(&r);
    check_event(f, ev, 1, 2);
    r = test_call(f->srv.port, "DELETE", path, NULL, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "cancelledAt")), cancelled_at);
    http_result_free(&r);
    check_event(f, ev, 1, 2);
    test_expect_error(f->srv.port, "DELETE", "/reservations/987654", NULL, 404,
                      "reservation_not_found");
    long long ra2 = reserve(f, ev, a, 201, NULL);
    assert_true(ra2 != ra);
    check_event(f, ev, 2, 2);
    reserve(f, ev, c, 409, "sold_out");

    /* the outcomes are counted in /metrics */
    r = test_call(f->srv.port, "GET", "/metrics", NULL, 200);
    assert_non_null(strstr(r.body, "reservd_reservations_granted_total 3\n"));
    assert_non_null(strstr(r.body, "reservd_reservations_rejected_total{reason=\"sold_out\"} 2\n"));
    assert_non_null(
        strstr(r.body, "reservd_reservations_rejected_total{reason=\"already_reserved\"} 2\n"));
    assert_non_null(strstr(r.body, "reservd_reservations_cancelled_total 1\n"));
    http_result_free(&r);

    /* zero-ticket events are sold out from the start */
    long long none = new_event(f, "Nothing", 0);
    reserve(f, none, c, 409, "sold_out");
    check_event(f, none, 0, 0);
}

static void bad_bodies_change_nothing(void **state)
{
    struct fixture *f = *state;
    long long u = new_user(f, 10);
    long long ev = new_event(f, "Guarded", 5);
    char body[128];
    const char *bad[] = { "{}",
                          "{\"eventId\":1}",
                          "{\"userId\":1}",
                          "{\"eventId\":\"1\",\"userId\":1}",
                          "{\"eventId\":0,\"userId\":1}",
                          "{\"eventId\":1,\"userId\":-4}",
                          "{\"eventId\":1.5,\"userId\":1}",
                          "{\"eventId\":null,\"userId\":1}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        test_expect_error(f->srv.port, "POST", "/reservations", bad[i], 400, "validation_failed");
    test_expect_error(f->srv.port, "POST", "/reservations", "{\"eventId\":", 400, "invalid_json");
    test_expect_error(f->srv.port, "POST", "/reservations", NULL, 400, "invalid_json");
    test_expect_error(f->srv.port, "POST", "/reservation/abc/1", NULL, 400, "invalid_id");
    test_expect_error(f->srv.port, "POST", "/reservation/1/0", NULL, 400, "invalid_id");
    test_expect_error(f->srv.port, "PUT", "/reservations", "{}", 405, "method_not_allowed");
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    struct http_result r;
    assert_int_equal(http_call(f->srv.port, "POST", "/reservations", "text/plain", body, &r), 0);
    assert_int_equal(r.status, 415);
    http_result_free(&r);
    assert_int_equal(test_db_scalar(f->db, "SELECT count(*) FROM reservations"), 0);
    check_event(f, ev, 0, 5);
}

static void compat_route(void **state)
{
    struct fixture *f = *state;
    long long ev = new_event(f, "Compat", 1);
    long long u1 = new_user(f, 20), u2 = new_user(f, 21);
    char path[64];
    snprintf(path, sizeof(path), "/reservation/%lld/%lld", ev, u1);
    struct http_result r = test_call(f->srv.port, "POST", path, NULL, 201);
    assert_int_equal(http_json_int(&r, "eventId"), ev);
    assert_int_equal(http_json_int(&r, "userId"), u1);
    http_result_free(&r);
    test_expect_error(f->srv.port, "POST", path, NULL, 409, "already_reserved");
    snprintf(path, sizeof(path), "/reservation/%lld/%lld", ev, u2);
    test_expect_error(f->srv.port, "POST", path, NULL, 409, "sold_out");
    snprintf(path, sizeof(path), "/reservation/%lld/%lld", ev + 1000, u2);
    test_expect_error(f->srv.port, "POST", path, NULL, 404, "event_not_found");
    check_event(f, ev, 1, 1);
}

static void listing_and_filters(void **state)
{
    struct fixture *f = *state;
    long long e1 = new_event(f, "List A", 10), e2 = new_event(f, "List B", 10);
    long long users[4];
    for (int i = 0; i < 4; i++)
        users[i] = new_user(f, 30 + i);
    long long r0 = 0;
    for (int i = 0; i < 4; i++) {
        long long id = reserve(f, e1, users[i], 201, NULL);
        if (i == 0)
            r0 = id;
    }
    reserve(f, e2, users[0], 201, NULL);
    char path[128];
    snprintf(path, sizeof(path), "/reservations/%lld", r0);
    struct http_result r = test_call(f->srv.port, "DELETE", path, NULL, 200);
    http_result_free(&r);

    snprintf(path, sizeof(path), "/reservations?eventId=%lld", e1);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 4);
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&status=RESERVED", e1);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 3);
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?userId=%lld", users[0]);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    http_result_free(&r);
    /* both filters, and user with status: each listing statement answers */
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&userId=%lld", e2, users[0]);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(r.json, "items"), 0), "eventId")),
                     e2);
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?userId=%lld&status=CANCELLED", users[0]);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    http_result_free(&r);
    r = test_call(f->srv.port, "GET", "/reservations?status=RESERVED", NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 4); /* 3 on e1, 1 on e2 */
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&status=CANCELLED&limit=1", e1);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_true(json_is_null(json_object_get(r.json, "nextAfter")));
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&limit=2", e1);
    r = test_call(f->srv.port, "GET", path, NULL, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 2);
    assert_true(json_is_integer(json_object_get(r.json, "nextAfter")));
    http_result_free(&r);
    test_expect_error(f->srv.port, "GET", "/reservations?status=MAYBE", NULL, 400,
                      "validation_failed");
    test_expect_error(f->srv.port, "GET", "/reservations?eventId=0", NULL, 400,
                      "validation_failed");
    test_expect_error(f->srv.port, "GET", "/reservations?userId=x", NULL, 400, "validation_failed");
}

/* Holds the event row lock from outside the server. */
static PGconn *lock_event(struct fixture *f, long long event)
{
    PGconn *locker = test_db_connect(&f->srv);
    char sql[128];
    PQclear(PQexec(locker, "BEGIN"));
    snprintf(sql, sizeof(sql), "SELECT 1 FROM events WHERE id = %lld FOR UPDATE", event);
    PGresult *res = PQexec(locker, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    return locker;
}

#define QUEUED 16

/* Someone outside holds the event's row lock (lock timeout 300 ms): the
 * request waiting on it and every request queued behind it for the same
 * event get 503 busy promptly, not one lock timeout each in turn; nothing
 * changes, and reserving works once the lock is gone. */
static void busy_when_the_lock_is_held(void **state)
{
    struct fixture *f = *state;
    long long users[QUEUED];
    for (int i = 0; i < QUEUED; i++)
        users[i] = new_user(f, 40 + i);
    long long ev = new_event(f, "Locked", 3);
    PGconn *locker = lock_event(f, ev);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct background_call queued[QUEUED];
    for (int i = 1; i < QUEUED; i++) {
        queued[i] = (struct background_call){ .port = f->srv.port,
                                              .method = "POST",
                                              .path = "/reservations" };
        snprintf(queued[i].body, sizeof(queued[i].body), "{\"eventId\":%lld,\"userId\":%lld}", ev,
                 users[i]);
        assert_int_equal(background_call_start(&queued[i]), 0);
    }
    char body[128];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, users[0]);
    struct http_result r = test_call(f->srv.port, "POST", "/reservations", body, 503);
    assert_string_equal(http_error_code(&r), "busy");
    char retry[16];
    assert_non_null(http_result_header(&r, "Retry-After", retry, sizeof(retry)));
    assert_true(atoi(retry) >= 1);
    http_result_free(&r);
    for (int i = 1; i < QUEUED; i++) {
        background_call_join(&queued[i]);
        assert_int_equal(queued[i].status, 503);
        assert_string_equal(queued[i].code, "busy");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* one lock timeout per group, a few groups at most; 16 in turn would be 4.8 s */
    assert_true(waited < 2.5);

    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    check_event(f, ev, 0, 3);
    reserve(f, ev, users[0], 201, NULL); /* and it works once the lock is gone */
    check_event(f, ev, 1, 3);
}

static int setup_one_connection(void **state)
{
    const char *args[] = { "--pool-size", "1", "--acquire-timeout-ms", "1000", "--lock-timeout-ms",
                           "5000",        NULL };
    return fixture_start(state, args);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The only pooled connection is stuck behind a lock. The request's
 * deadline (1 s) caps its lock wait, although the lock timeout is 5 s:
 * it is answered busy at its deadline and changes nothing, and a request
 * waiting for the connection meanwhile gets it then, not after 5 s. */
static void busy_when_no_connection_is_free(void **state)
{
    struct fixture *f = *state;
    long long u = new_user(f, 50);
    long long ev = new_event(f, "Pool", 3);
    PGconn *locker = lock_event(f, ev);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct background_call p = { .port = f->srv.port, .method = "POST", .path = "/reservations" };
    snprintf(p.body, sizeof(p.body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    assert_int_equal(background_call_start(&p), 0);
    struct timespec pause = { 0, 300 * 1000000L };
    nanosleep(&pause, NULL); /* it now holds the connection, waiting */
    struct http_result r = test_call(f->srv.port, "GET", "/users/1", NULL, 200);
    double got_connection = seconds_since(&t0);
    http_result_free(&r);
    background_call_join(&p);
    double answered = seconds_since(&t0);
    assert_int_equal(p.status, 503);
    assert_string_equal(p.code, "busy");
    fprintf(stderr,
            "reservation answered busy after %.2f s, the other request served after %.2f s\n",
            answered, got_connection);
    assert_true(answered < 2.0);
    assert_true(got_connection < 2.0);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    check_event(f, ev, 0, 3);
}

/* The batch statement on its own: one group with duplicates, unknown
 * users, a holder and more candidates than tickets gets exactly the answers
 * the per-request path would give in arrival order. */
static PGresult *run_batch_statement(struct fixture *f, long long event, const char *users,
                                     const char *quantities, const char *holds)
{
    char ev[24];
    snprintf(ev, sizeof(ev), "%lld", event);
    /* $3: lock wait budget, ms; $4 quantities, $5 holds; $6-$8: no
     * Idempotency-Key records */
    const char *params[] = { ev, users, "5000", quantities, holds, NULL, NULL, NULL };
    PGresult *res =
        PQexecParams(f->db, db_statement_sql(STMT_RESERVE_BATCH), 8, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    return res;
}

static void batch_statement_answers_each_request(void **state)
{
    struct fixture *f = *state;
    long long u[6];
    for (int i = 0; i < 6; i++)
        u[i] = new_user(f, 60 + i);
    long long ev = new_event(f, "Batch rules", 4);
    reserve(f, ev, u[5], 201, NULL); /* u5 already holds one; 3 left */
    char users[256], got[512] = "";
    snprintf(users, sizeof(users), "{%lld,%lld,999999,%lld,%lld,%lld,%lld,%lld,%lld}", u[0], u[0],
             u[5], u[1], u[2], u[3], u[4], u[3]);
    PGresult *res = run_batch_statement(f, ev, users, "{1,1,1,1,1,1,1,1,1}", "{f,f,f,f,f,f,f,f,f}");
    /* tickets left after each row's turn */
    static const int left[9] = { 2, 2, 2, 2, 1, 0, 0, 0, 0 };
    assert_int_equal(PQntuples(res), 9);
    for (int row = 0; row < 9; row++) {
        assert_int_equal(atoi(PQgetvalue(res, row, BATCH_COL_ORD)), row + 1); /* in arrival order */
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", row ? "," : "",
                 PQgetvalue(res, row, BATCH_COL_OUTCOME));
        assert_int_equal(PQgetisnull(res, row, BATCH_COL_RESERVATION_ID),
                         strcmp(PQgetvalue(res, row, BATCH_COL_OUTCOME), "reserved") != 0);
        assert_int_equal(atoi(PQgetvalue(res, row, BATCH_COL_TICKETS_LEFT)), left[row]);
    }
    assert_string_equal(got, "reserved,already_reserved,user_not_found,already_reserved,"
                             "reserved,reserved,sold_out,sold_out,sold_out");
    PQclear(res);
    check_event(f, ev, 4, 4);

    snprintf(users, sizeof(users), "{%lld}", u[0]);
    res = run_batch_statement(f, ev + 1000, users, "{1}", "{f}");
    assert_string_equal(PQgetvalue(res, 0, BATCH_COL_OUTCOME), "event_not_found");
    PQclear(res);
}

/* The same mix sent at once over HTTP: however the requests fall into
 * batches, every individual answer agrees with the database. */
static void concurrent_mix_answers_agree(void **state)
{
    struct fixture *f = *state;
    long long u[6];
    for (int i = 0; i < 6; i++)
        u[i] = new_user(f, 70 + i);
    long long ev = new_event(f, "Batch race", 4);
    reserve(f, ev, u[5], 201, NULL);
    long long who[] = { u[0], u[0], u[0], u[1], u[1], 999998, 999999,
                        u[5], u[2], u[3], u[4], u[2], u[3],   u[4] };
    enum { N = sizeof(who) / sizeof(who[0]) };
    struct background_call racers[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        racers[i] = (struct background_call){
            .port = f->srv.port, .method = "POST", .path = "/reservations", .start = &start
        };
        snprintf(racers[i].body, sizeof(racers[i].body), "{\"eventId\":%lld,\"userId\":%lld}", ev,
                 who[i]);
        assert_int_equal(background_call_start(&racers[i]), 0);
    }
    for (int i = 0; i < N; i++)
        background_call_join(&racers[i]);
    pthread_barrier_destroy(&start);

    int granted = 0;
    for (int i = 0; i < N; i++) {
        struct background_call *r = &racers[i];
        long long user = who[i];
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM reservations WHERE event_id = %lld "
                 "AND user_id = %lld AND status = 'RESERVED'",
                 ev, user);
        long long holds = test_db_scalar(f->db, sql);
        if (r->status == 201) {
            granted++;
            snprintf(sql, sizeof(sql),
                     "SELECT user_id FROM reservations WHERE id = %lld "
                     "AND event_id = %lld AND status = 'RESERVED'",
                     r->id, ev);
            assert_int_equal(test_db_scalar(f->db, sql), user);
        } else if (strcmp(r->code, "user_not_found") == 0) {
            assert_int_equal(r->status, 404);
            assert_true(user >= 999998);
        } else if (strcmp(r->code, "already_reserved") == 0) {
            assert_int_equal(r->status, 409);
            assert_int_equal(holds, 1); /* somebody got this user a ticket */
        } else {
            assert_int_equal(r->status, 409);
            assert_string_equal(r->code, "sold_out");
            assert_int_equal(holds, 0); /* sold out and holding nothing */
        }
    }
    assert_int_equal(granted, 3); /* exactly the tickets that were left */
    check_event(f, ev, 4, 4);
}

/* The contract and the concurrent mix on every safe strategy the server
 * lists; the rest are about one strategy's own behaviour. */
int main(void)
{
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "reserve_cancel_and_errors", reserve_cancel_and_errors, setup_strategy,
                       teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "bad_bodies_change_nothing", bad_bodies_change_nothing, setup_strategy,
                       teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "compat_route", compat_route, setup_strategy, teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "listing_and_filters", listing_and_filters, setup_strategy, teardown,
                       STRATEGIES_SAFE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(busy_when_the_lock_is_held, setup_for_update_short_lock,
                                        teardown),
        cmocka_unit_test_setup_teardown(busy_when_the_lock_is_held, setup_batch_short_lock,
                                        teardown),
        cmocka_unit_test_setup_teardown(busy_when_no_connection_is_free, setup_one_connection,
                                        teardown),
        cmocka_unit_test_setup_teardown(batch_statement_answers_each_request, setup_batch,
                                        teardown),
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        strategy_tests_add_one(&t, tests[i]);
    strategy_tests_add(&t, "concurrent_mix_answers_agree", concurrent_mix_answers_agree,
                       setup_strategy, teardown, STRATEGIES_SAFE);
    return strategy_tests_run(&t, "reservations");
}
