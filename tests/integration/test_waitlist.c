/* The waiting list (issue 13): joining, leaving, offers made in position
 * order whenever tickets return (cancel, expiry, a capacity raise), for
 * every safe strategy and across two instances; each run checked against
 * the database while it runs and after. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "strategies.h"

static int start(void **state, const char *strategy, const char *sweep_ms)
{
    const char *args[] = { "--reservation-strategy", strategy, "--sweep-interval-ms", sweep_ms,
                           NULL };
    return fixture_start(state, args);
}
/* *state holds the strategy's name (strategies.h: one test per row of
 * the server's strategy table). */
static int setup_strategy(void **state)
{
    return start(state, *state, "250");
}
/* Sweeps every 100 ms, as the second instance of the two-instance test. */
static int setup_strategy_sweep_100(void **state)
{
    return start(state, *state, "100");
}
/* No sweeper: offers move on without it (every locked path expires first). */
static int setup_for_update_unswept(void **state)
{
    return start(state, "for-update", "0");
}
static void background_stop(void);
static int teardown(void **state)
{
    background_stop(); /* a failed test leaves its threads running */
    return fixture_stop(state);
}

/* The harness's helpers on a fixture (tests/support/harness.h). */
#define scalar(f, ...) test_scalar((f)->db, __VA_ARGS__)
#define call(f, ...)   test_callf((f)->srv.port, __VA_ARGS__)

/* One reservation for each of n users from first, through the API; their
 * ids into ids (may be NULL). */
static void reserve_all(struct fixture *f, long long ev, long long first, int n, long long *ids)
{
    for (int i = 0; i < n; i++) {
        struct http_result r = call(f, "POST", "/reservations", 201,
                                    "{\"eventId\":%lld,\"userId\":%lld}", ev, first + i);
        if (ids)
            ids[i] = http_json_int(&r, "id");
        http_result_free(&r);
    }
}

static void cancel(int port, long long reservation)
{
    char path[64];
    snprintf(path, sizeof(path), "/reservations/%lld", reservation);
    struct http_result r = test_callf(port, "DELETE", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "CANCELLED");
    http_result_free(&r);
}

/* An entry's status by the database (as stored). */
static void entry_status(struct fixture *f, long long ev, int position, char *out, size_t len)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT status FROM waitlist WHERE event_id = %lld AND position = %d", ev, position);
    PGresult *res = PQexec(f->db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

static void assert_entry(struct fixture *f, long long ev, int position, const char *status)
{
    char got[32];
    entry_status(f, ev, position, got, sizeof(got));
    if (strcmp(got, status) != 0)
        fprintf(stderr, "event %lld position %d: %s, expected %s\n", ev, position, got, status);
    assert_string_equal(got, status);
}

/* Everything the database says that must hold for the events in evs (a
 * SQL list), as one query: violations counted (0 is right). Capacity by
 * the rows, the counters against the rows, waiting_count exact, every
 * offer's state matching its hold's, each offer's hold the entry's user's,
 * offers made in position order (all entries here want one ticket). */
static const char invariants_sql[] =
    "SELECT (SELECT count(*) FROM events e WHERE e.id IN (%s) AND NOT ("
    "  (SELECT coalesce(sum(quantity), 0) FROM reservations r WHERE r.event_id = e.id"
    "     AND r.status IN ('HELD', 'RESERVED')) <= e.max_tickets"
    "  AND e.reserved_tickets = (SELECT coalesce(sum(quantity), 0) FROM reservations r"
    "     WHERE r.event_id = e.id AND r.status = 'RESERVED')"
    "  AND e.held_tickets = (SELECT coalesce(sum(quantity), 0) FROM reservations r"
    "     WHERE r.event_id = e.id AND r.status = 'HELD')"
    "  AND e.waiting_count = (SELECT count(*) FROM waitlist w WHERE w.event_id = e.id"
    "     AND w.status = 'WAITING')"
    "  AND coalesce((SELECT max(position) FROM waitlist w WHERE w.event_id = e.id"
    "     AND w.offered_at IS NOT NULL), 0) = (SELECT count(*) FROM waitlist w"
    "     WHERE w.event_id = e.id AND w.offered_at IS NOT NULL)))"
    " + (SELECT count(*) FROM waitlist w JOIN reservations r ON r.id = w.reservation_id"
    "     WHERE w.event_id IN (%s) AND (r.user_id <> w.user_id OR r.event_id <> w.event_id"
    "     OR (w.status = 'OFFERED') <> (r.status = 'HELD')"
    "     OR (w.status = 'FULFILLED') <> (r.status = 'RESERVED')))";

static long long violations(PGconn *db, const char *evs)
{
    char sql[4096];
    snprintf(sql, sizeof(sql), invariants_sql, evs, evs);
    return test_db_scalar(db, sql);
}

/* A thread polling the invariants while a test runs, on its own
 * connection. */
struct checker {
    PGconn *db;
    char evs[128];
    pthread_t thread;
    bool running;
    atomic_bool stop;
    long long polls, bad;
};
/* One at a time, static so that teardown can stop them after a failure. */
static struct checker checker;

static void *check_loop(void *arg)
{
    struct checker *c = arg;
    while (!atomic_load(&c->stop)) {
        long long v = violations(c->db, c->evs);
        c->polls++;
        if (v != 0) {
            c->bad++;
            fprintf(stderr, "checker: %lld violations (poll %lld)\n", v, c->polls);
        }
        test_sleep_s(0.005);
    }
    return NULL;
}

static void checker_start(struct checker *c, struct fixture *f, const char *evs)
{
    memset(c, 0, sizeof(*c));
    c->db = test_db_connect(&f->srv);
    assert_non_null(c->db);
    snprintf(c->evs, sizeof(c->evs), "%s", evs);
    assert_int_equal(pthread_create(&c->thread, NULL, check_loop, c), 0);
    c->running = true;
}

static void checker_stop(struct checker *c)
{
    if (!c->running)
        return;
    atomic_store(&c->stop, true);
    pthread_join(c->thread, NULL);
    PQfinish(c->db);
    c->running = false;
}

static void checker_finish(struct checker *c)
{
    checker_stop(c);
    fprintf(stderr, "checker: %lld polls, %lld with violations\n", c->polls, c->bad);
    assert_true(c->polls >= 3); /* it ran during the load (a short one on a busy machine: 7 seen) */
    assert_int_equal(c->bad, 0);
}

/* New buyers (users nobody has seen) firing POST /reservations one after
 * another while the test runs: none may get a ticket while anyone waits. */
struct buyers {
    int port;
    long long event, first;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    int sent, granted, sold_out, other;
};
static struct buyers buyers;

static void buyers_stop(struct buyers *b)
{
    if (!b->running)
        return;
    atomic_store(&b->stop, true);
    pthread_join(b->thread, NULL);
    b->running = false;
}

static void background_stop(void)
{
    checker_stop(&checker);
    buyers_stop(&buyers);
}

static void *buy_loop(void *arg)
{
    struct buyers *b = arg;
    while (!atomic_load(&b->stop) && b->sent < 2000) {
        char body[96];
        snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", b->event,
                 b->first + b->sent);
        struct http_result r;
        int rc = http_call(b->port, "POST", "/reservations", NULL, body, &r);
        b->sent++;
        if (rc == 0 && r.status == 201)
            b->granted++;
        else if (rc == 0 && r.status == 409 && strcmp(http_error_code(&r), "sold_out") == 0)
            b->sold_out++;
        else
            b->other++;
        if (rc == 0)
            http_result_free(&r);
    }
    return NULL;
}

static void buyers_start(struct buyers *b, int port, long long event, long long first)
{
    memset(b, 0, sizeof(*b));
    b->port = port;
    b->event = event;
    b->first = first;
    assert_int_equal(pthread_create(&b->thread, NULL, buy_loop, b), 0);
    b->running = true;
}

static void buyers_finish(struct buyers *b)
{
    buyers_stop(b);
    fprintf(stderr, "buyers: %d sent, %d granted, %d sold out, %d other\n", b->sent, b->granted,
            b->sold_out, b->other);
    assert_true(b->sent > 0);
    assert_int_equal(b->granted, 0);
    assert_int_equal(b->other, 0);
}

/* reservd-load with args against port; its JSON report (caller frees). */
static json_t *load_on(int port, const char *fmt, ...)
{
    char args[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    int rc;
    json_t *rep = test_load_finish(test_load_start(port, args), &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(json_integer_value(json_object_get(rep, "transport_errors")), 0);
    return rep;
}

static long long count_of(json_t *report, const char *group, const char *key)
{
    json_t *v = json_object_get(json_object_get(report, group), key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

/* n users from first join ev's list at once through port: all 201. */
static void join_at_once(int port, long long ev, long long first, int n)
{
    json_t *rep = load_on(port,
                          "spike -n %d --method POST --path /events/%lld/waitlist "
                          "--body '{\"userId\":{i}}' --user-start %lld --expect-status 201=%d",
                          n, ev, first, n);
    assert_int_equal(count_of(rep, "status", "201"), n);
    json_decref(rep);
}

/* Wait up to timeout_s for a query to return want. */
static bool wait_for(struct fixture *f, double timeout_s, long long want, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    for (double waited = 0; waited < timeout_s; waited += 0.05) {
        if (test_db_scalar(f->db, sql) == want)
            return true;
        test_sleep_s(0.05);
    }
    fprintf(stderr, "waited %.1f s for %lld: %s gives %lld\n", timeout_s, want, sql,
            test_db_scalar(f->db, sql));
    return false;
}

/* Everything a client sees of one event, its reservations and its list,
 * as one string (to show that a refused request changed nothing). */
static void snapshot(struct fixture *f, long long ev, char *out, size_t len)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT row_to_json(e)::text || (SELECT count(*) FROM reservations r "
             "WHERE r.event_id = e.id)::text || coalesce((SELECT string_agg(row_to_json(w)::text, "
             "',' ORDER BY w.id) FROM waitlist w WHERE w.event_id = e.id), '') "
             "FROM events e WHERE id = %lld",
             ev);
    PGresult *res = PQexec(f->db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
}

/* The API contract on a server without a sweeper: every refusal (and that
 * it changes nothing), the shapes, the line, leaving (waiting, offered,
 * ended), offers on cancel and on expiry, a smaller entry served behind a
 * larger one, confirming an offer. */
static void waitlist_contract(void **state)
{
    struct fixture *f = *state;
    int port = f->srv.port;
    long long u = test_seed_users(f->db, "flow", 6);
    struct http_result r =
        call(f, "POST", "/events", 201,
             "{\"name\":\"Line\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":2,\"maxPerUser\":2,\"offerSeconds\":1}");
    long long ev = http_json_int(&r, "id");
    assert_int_equal(http_json_int(&r, "waitlistLength"), 0);
    http_result_free(&r);
    char path[96], list[96], before[8192], after[8192], evs[24];
    snprintf(path, sizeof(path), "/events/%lld/waitlist", ev);
    snprintf(evs, sizeof(evs), "%lld", ev);

    /* tickets left: reserve them instead */
    snapshot(f, ev, before, sizeof(before));
    char body[128];
    snprintf(body, sizeof(body), "{\"userId\":%lld,\"quantity\":2}", u);
    test_expect_error(port, "POST", path, body, 409, "tickets_available");
    static const char *const bad[] = { "{}",
                                       "{\"userId\":0}",
                                       "{\"userId\":\"1\"}",
                                       "{\"userId\":1,\"quantity\":0}",
                                       "{\"userId\":1,\"quantity\":101}",
                                       "{\"userId\":1,\"quantity\":1.5}" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        test_expect_error(port, "POST", path, bad[i], 400, "validation_failed");
    test_expect_error(port, "POST", "/events/999999/waitlist", "{\"userId\":1}", 404,
                      "event_not_found");
    test_expect_error(port, "POST", path, "{\"userId\":999999}", 404, "user_not_found");
    snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);

    /* sold out: u holds 2; u itself may not join */
    r = call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2}",
             ev, u);
    long long sold = http_json_int(&r, "id");
    http_result_free(&r);
    snprintf(body, sizeof(body), "{\"userId\":%lld}", u);
    test_expect_error(port, "POST", path, body, 409, "already_reserved");
    r = call(f, "POST", path, 400, "{\"userId\":%lld,\"quantity\":3}", u + 1);
    assert_string_equal(http_error_code(&r), "validation_failed");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
               "quantity"));
    http_result_free(&r);

    /* the line: u+1 wants 2, u+2 wants 1, u+3 wants 1 */
    r = call(f, "POST", path, 201, "{\"userId\":%lld,\"quantity\":2}", u + 1);
    long long big = http_json_int(&r, "id");
    assert_string_equal(test_json_str(&r, "status"), "WAITING");
    assert_int_equal(http_json_int(&r, "eventId"), ev);
    assert_int_equal(http_json_int(&r, "userId"), u + 1);
    assert_int_equal(http_json_int(&r, "quantity"), 2);
    assert_int_equal(http_json_int(&r, "position"), 1);
    assert_true(json_is_null(json_object_get(r.json, "reservationId")));
    char location[64], want[64];
    snprintf(want, sizeof(want), "/waitlist/%lld", big);
    assert_non_null(http_result_header(&r, "Location", location, sizeof(location)));
    assert_string_equal(location, want);
    http_result_free(&r);
    r = call(f, "POST", path, 201, "{\"userId\":%lld}", u + 2);
    long long small = http_json_int(&r, "id");
    assert_int_equal(http_json_int(&r, "position"), 2);
    http_result_free(&r);
    r = call(f, "POST", path, 201, "{\"userId\":%lld}", u + 3);
    long long third = http_json_int(&r, "id");
    http_result_free(&r);
    snapshot(f, ev, before, sizeof(before));
    snprintf(body, sizeof(body), "{\"userId\":%lld}", u + 2);
    test_expect_error(port, "POST", path, body, 409, "already_waiting");
    snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    snprintf(list, sizeof(list), "/events/%lld", ev);
    r = call(f, "GET", list, 200, NULL);
    assert_int_equal(http_json_int(&r, "waitlistLength"), 3);
    http_result_free(&r);
    /* anyone waiting: sold out for a newcomer */
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u + 4);
    test_expect_error(port, "POST", "/reservations", body, 409, "sold_out");

    /* the line's pages: positions, no user data */
    snprintf(list, sizeof(list), "/events/%lld/waitlist?limit=2", ev);
    r = call(f, "GET", list, 200, NULL);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "position")), 1);
    assert_null(json_object_get(json_array_get(items, 0), "userId"));
    assert_int_equal(http_json_int(&r, "nextAfter"), 2);
    http_result_free(&r);
    snprintf(list, sizeof(list), "/events/%lld/waitlist?after=2", ev);
    r = call(f, "GET", list, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    http_result_free(&r);
    test_expect_error(port, "GET", "/events/1/waitlist?limit=0", NULL, 400, "validation_failed");

    /* both tickets back: the entry for 2 is first and fits */
    cancel(port, sold);
    snprintf(path, sizeof(path), "/waitlist/%lld", big);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "OFFERED");
    long long offer = http_json_int(&r, "reservationId");
    assert_true(offer > 0);
    assert_non_null(test_json_str(&r, "offerExpiresAt"));
    http_result_free(&r);
    char rpath[64];
    snprintf(rpath, sizeof(rpath), "/reservations/%lld", offer);
    r = call(f, "GET", rpath, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "HELD");
    assert_int_equal(http_json_int(&r, "userId"), u + 1);
    assert_int_equal(http_json_int(&r, "quantity"), 2);
    http_result_free(&r);
    assert_int_equal(violations(f->db, evs), 0);

    /* the offer expires (no sweeper): GET says so at once; the next
     * locked path moves the tickets on, to small and third */
    test_sleep_s(1.1);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "EXPIRED");
    http_result_free(&r);
    char confirm[96];
    snprintf(confirm, sizeof(confirm), "/reservations/%lld/confirm", offer);
    test_expect_error(port, "POST", confirm, NULL, 409, "hold_expired");
    assert_entry(f, ev, 1, "EXPIRED");
    assert_entry(f, ev, 2, "OFFERED");
    assert_entry(f, ev, 3, "OFFERED");

    /* small confirms; third leaves while offered: its hold is cancelled,
     * and with nobody waiting the ticket goes on sale */
    long long small_offer = scalar(f, "SELECT reservation_id FROM waitlist WHERE id = %lld", small);
    snprintf(confirm, sizeof(confirm), "/reservations/%lld/confirm", small_offer);
    r = call(f, "POST", confirm, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "RESERVED");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/waitlist/%lld", small);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "FULFILLED");
    http_result_free(&r);
    long long third_offer = scalar(f, "SELECT reservation_id FROM waitlist WHERE id = %lld", third);
    snprintf(path, sizeof(path), "/waitlist/%lld", third);
    for (int i = 0; i < 2; i++) { /* idempotent */
        r = call(f, "DELETE", path, 200, NULL);
        assert_string_equal(test_json_str(&r, "status"), "LEFT");
        assert_int_equal(http_json_int(&r, "reservationId"), third_offer);
        http_result_free(&r);
    }
    assert_int_equal(
        scalar(f, "SELECT count(*) FROM reservations WHERE id = %lld AND status = 'CANCELLED'",
               third_offer),
        1);
    /* an ended entry is left as it is */
    snprintf(path, sizeof(path), "/waitlist/%lld", small);
    r = call(f, "DELETE", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "FULFILLED");
    http_result_free(&r);
    test_expect_error(port, "DELETE", "/waitlist/999999", NULL, 404, "waitlist_entry_not_found");
    test_expect_error(port, "GET", "/waitlist/999999", NULL, 404, "waitlist_entry_not_found");
    r = call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld}", ev, u + 4);
    http_result_free(&r);

    /* a waiting entry leaves: the count follows */
    char join[64];
    snprintf(join, sizeof(join), "/events/%lld/waitlist", ev);
    r = call(f, "POST", join, 201, "{\"userId\":%lld}", u + 5);
    long long last = http_json_int(&r, "id");
    assert_int_equal(http_json_int(&r, "position"), 4);
    http_result_free(&r);
    snprintf(path, sizeof(path), "/waitlist/%lld", last);
    r = call(f, "DELETE", path, 200, NULL);
    assert_string_equal(test_json_str(&r, "status"), "LEFT");
    assert_true(json_is_null(json_object_get(r.json, "reservationId")));
    http_result_free(&r);
    assert_int_equal(scalar(f, "SELECT waiting_count FROM events WHERE id = %lld", ev), 0);
    assert_int_equal(violations(f->db, evs), 0);
}

/* One statement as the admin that the database must refuse: its SQLSTATE
 * and the constraint (a unique index or a CHECK) that refused it. */
static void expect_refused(struct fixture *f, const char *sqlstate, const char *constraint,
                           const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    PGresult *res = PQexec(f->db, sql);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *name = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
    if (PQresultStatus(res) != PGRES_FATAL_ERROR || !state || strcmp(state, sqlstate) != 0 ||
        !name || strcmp(name, constraint) != 0)
        fail_msg("%s\n  gave %s %s %s, expected %s %s", sql, PQresStatus(PQresultStatus(res)),
                 state ? state : "-", name ? name : "-", sqlstate, constraint);
    PQclear(res);
}

/* The waiting list's rules are the database's own (sql/migrations/0005):
 * written directly, as another writer could, a second active entry for a
 * user and event, a reused position, an unknown status, a quantity or
 * position out of range and every state whose timestamps or offer do not
 * match it are refused (23505 by the unique indexes, 23514 by the CHECKs),
 * and nothing stored changes; the same rows made consistent are taken. */
static void waitlist_database_rules(void **state)
{
    struct fixture *f = *state;
    long long u = test_seed_users(f->db, "rules", 4);
    long long ev = test_seed_event(f->db, "Rules", 1, 1, 0, 0);
    struct http_result r =
        call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    long long sold = http_json_int(&r, "id");
    http_result_free(&r);
    /* u+1 waits at position 1 (through the API: the counters agree) */
    char path[64];
    snprintf(path, sizeof(path), "/events/%lld/waitlist", ev);
    r = call(f, "POST", path, 201, "{\"userId\":%lld}", u + 1);
    long long entry = http_json_int(&r, "id");
    http_result_free(&r);
    char before[8192], after[8192];
    snapshot(f, ev, before, sizeof(before));

    static const char insert[] =
        "INSERT INTO waitlist (event_id, user_id, quantity, status, position, reservation_id, "
        "offered_at, fulfilled_at, expired_at, left_at) VALUES (%lld, %lld, %s, '%s', %s, %s, "
        "%s, %s, %s, %s)";
    /* one active entry per user and event: waiting or offered */
    expect_refused(f, "23505", "waitlist_one_active", insert, ev, u + 1, "1", "WAITING", "2",
                   "NULL", "NULL", "NULL", "NULL", "NULL");
    char res_id[24];
    snprintf(res_id, sizeof(res_id), "%lld", sold);
    expect_refused(f, "23505", "waitlist_one_active", insert, ev, u + 1, "1", "OFFERED", "2",
                   res_id, "now()", "NULL", "NULL", "NULL");
    /* positions are never reused, whoever holds them */
    expect_refused(f, "23505", "waitlist_event_position", insert, ev, u + 2, "1", "WAITING", "1",
                   "NULL", "NULL", "NULL", "NULL", "NULL");
    /* the status, the quantity, the position */
    expect_refused(f, "23514", "waitlist_status_known", insert, ev, u + 2, "1", "PENDING", "2",
                   res_id, "now()", "NULL", "NULL", "NULL");
    expect_refused(f, "23514", "waitlist_status_known", insert, ev, u + 2, "1", "waiting", "2",
                   res_id, "now()", "NULL", "NULL", "NULL");
    expect_refused(f, "23514", "waitlist_quantity_in_range", insert, ev, u + 2, "0", "WAITING", "2",
                   "NULL", "NULL", "NULL", "NULL", "NULL");
    expect_refused(f, "23514", "waitlist_quantity_in_range", insert, ev, u + 2, "101", "WAITING",
                   "2", "NULL", "NULL", "NULL", "NULL", "NULL");
    expect_refused(f, "23514", "waitlist_position_positive", insert, ev, u + 2, "1", "WAITING", "0",
                   "NULL", "NULL", "NULL", "NULL", "NULL");
    /* an offer is a reservation and its moment, both or neither */
    static const struct {
        const char *status, *reservation, *offered, *fulfilled, *expired, *left, *constraint;
    } bad[] = {
        { "OFFERED", "NULL", "NULL", "NULL", "NULL", "NULL", "waitlist_offer_matches_status" },
        { "OFFERED", "R", "NULL", "NULL", "NULL", "NULL", "waitlist_offer_matches_status" },
        { "OFFERED", "NULL", "now()", "NULL", "NULL", "NULL", "waitlist_offer_matches_status" },
        { "WAITING", "R", "now()", "NULL", "NULL", "NULL", "waitlist_offer_matches_status" },
        { "FULFILLED", "NULL", "NULL", "now()", "NULL", "NULL", "waitlist_offer_matches_status" },
        { "EXPIRED", "NULL", "NULL", "NULL", "now()", "NULL", "waitlist_offer_matches_status" },
        { "LEFT", "R", "NULL", "NULL", "NULL", "now()", "waitlist_offer_matches_status" },
        /* each ending's timestamp, exactly when it is that ending */
        { "FULFILLED", "R", "now()", "NULL", "NULL", "NULL",
          "waitlist_fulfilled_at_matches_status" },
        { "OFFERED", "R", "now()", "now()", "NULL", "NULL",
          "waitlist_fulfilled_at_matches_status" },
        { "EXPIRED", "R", "now()", "NULL", "NULL", "NULL", "waitlist_expired_at_matches_status" },
        { "FULFILLED", "R", "now()", "now()", "now()", "NULL",
          "waitlist_expired_at_matches_status" },
        { "LEFT", "NULL", "NULL", "NULL", "NULL", "NULL", "waitlist_left_at_matches_status" },
        { "WAITING", "NULL", "NULL", "NULL", "NULL", "now()", "waitlist_left_at_matches_status" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *res = strcmp(bad[i].reservation, "R") == 0 ? res_id : bad[i].reservation;
        expect_refused(f, "23514", bad[i].constraint, insert, ev, u + 2, "1", bad[i].status, "2",
                       res, bad[i].offered, bad[i].fulfilled, bad[i].expired, bad[i].left);
    }
    /* the stored entry moved to an inconsistent state */
    expect_refused(f, "23514", "waitlist_offer_matches_status",
                   "UPDATE waitlist SET status = 'OFFERED' WHERE id = %lld", entry);
    expect_refused(f, "23514", "waitlist_left_at_matches_status",
                   "UPDATE waitlist SET status = 'LEFT' WHERE id = %lld", entry);
    expect_refused(f, "23514", "waitlist_status_known",
                   "UPDATE waitlist SET status = 'GONE', reservation_id = %lld, offered_at = now() "
                   "WHERE id = %lld",
                   sold, entry);
    snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    /* the controls: the same rows, consistent, are taken (in a transaction
     * rolled back, so that the list stays as the server keeps it) */
    PGresult *res = PQexec(f->db, "BEGIN");
    PQclear(res);
    char sql[1024];
    snprintf(sql, sizeof(sql), insert, ev, u + 2, "1", "LEFT", "2", res_id, "now()", "NULL", "NULL",
             "now()");
    res = PQexec(f->db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    snprintf(sql, sizeof(sql), insert, ev, u + 3, "1", "FULFILLED", "3", res_id, "now()", "now()",
             "NULL", "NULL");
    res = PQexec(f->db, sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    res = PQexec(f->db, "ROLLBACK");
    PQclear(res);
    snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
}

/* The issue's run: a 10-ticket event sold out, 50 users join at once,
 * cancel 5: the first 5 positions get offers; they expire: the next 5;
 * 3 of those confirm, one cancels (the eleventh gets its ticket). A checker polls the invariants throughout, and new
 * buyers never get a ticket while anyone waits. */
static void waitlist_under_concurrency(void **state)
{
    struct fixture *f = *state;
    enum { TICKETS = 10, WAITERS = 50, CANCELS = 5 };
    long long holders = test_seed_users(f->db, "holder", TICKETS);
    long long waiters = test_seed_users(f->db, "waiter", WAITERS);
    long long newcomers = test_seed_users(f->db, "buyer", 2000);
    long long ev = test_seed_event(f->db, "Queue", TICKETS, 1, 0, 2);
    long long sold[TICKETS];
    reserve_all(f, ev, holders, TICKETS, sold);
    char evs[24];
    snprintf(evs, sizeof(evs), "%lld", ev);
    checker_start(&checker, f, evs);

    join_at_once(f->srv.port, ev, waiters, WAITERS);
    assert_int_equal(scalar(f,
                            "SELECT count(DISTINCT position) FILTER (WHERE position BETWEEN 1 "
                            "AND %d) FROM waitlist WHERE event_id = %lld AND status = 'WAITING'",
                            WAITERS, ev),
                     WAITERS);
    buyers_start(&buyers, f->srv.port, ev, newcomers);

    /* cancel 5 at once */
    struct background_call calls[CANCELS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, CANCELS);
    for (int i = 0; i < CANCELS; i++) {
        calls[i] =
            (struct background_call){ .port = f->srv.port, .method = "DELETE", .start = &go };
        static char paths[CANCELS][64];
        snprintf(paths[i], sizeof(paths[i]), "/reservations/%lld", sold[i]);
        calls[i].path = paths[i];
        assert_int_equal(background_call_start(&calls[i]), 0);
    }
    for (int i = 0; i < CANCELS; i++) {
        background_call_join(&calls[i]);
        assert_int_equal(calls[i].status, 200);
    }
    pthread_barrier_destroy(&go);
    for (int p = 1; p <= WAITERS; p++)
        assert_entry(f, ev, p, p <= CANCELS ? "OFFERED" : "WAITING");
    assert_int_equal(scalar(f, "SELECT held_tickets FROM events WHERE id = %lld", ev), CANCELS);

    /* the offers expire (2 s): the next five */
    assert_true(wait_for(f, 10, CANCELS,
                         "SELECT count(*) FROM waitlist WHERE event_id = %lld AND status = "
                         "'OFFERED' AND position BETWEEN %d AND %d",
                         ev, CANCELS + 1, 2 * CANCELS));
    for (int p = 1; p <= WAITERS; p++)
        assert_entry(f, ev, p, p <= CANCELS ? "EXPIRED" : p <= 2 * CANCELS ? "OFFERED" : "WAITING");
    /* three of them confirm */
    for (int p = CANCELS + 1; p <= CANCELS + 3; p++) {
        char confirm[96];
        snprintf(confirm, sizeof(confirm), "/reservations/%lld/confirm",
                 scalar(f,
                        "SELECT reservation_id FROM waitlist WHERE event_id = %lld AND "
                        "position = %d",
                        ev, p));
        struct http_result r = call(f, "POST", confirm, 200, NULL);
        assert_string_equal(test_json_str(&r, "status"), "RESERVED");
        http_result_free(&r);
        assert_entry(f, ev, p, "FULFILLED");
    }
    /* the ninth cancels its offer: EXPIRED, and the ticket goes to the eleventh */
    cancel(f->srv.port,
           scalar(f, "SELECT reservation_id FROM waitlist WHERE event_id = %lld AND position = %d",
                  ev, 2 * CANCELS - 1));
    assert_entry(f, ev, 2 * CANCELS - 1, "EXPIRED");
    assert_entry(f, ev, 2 * CANCELS + 1, "OFFERED");
    assert_entry(f, ev, 2 * CANCELS + 2, "WAITING");
    buyers_finish(&buyers);
    checker_finish(&checker);
    assert_int_equal(violations(f->db, evs), 0);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE event_id = %lld AND "
                            "user_id >= %lld",
                            ev, newcomers),
                     0);
    /* the figures: rows, the event, /metrics (after a sweep) */
    long long offered = scalar(
        f, "SELECT count(*) FROM waitlist WHERE event_id = %lld AND offered_at IS NOT NULL", ev);
    assert_true(offered >= 2 * CANCELS);
    /* a sweep reads the totals (every 250 ms; later on a loaded machine) */
    for (int i = 0;
         i < 100 && test_metric(f->srv.port, "reservd_waitlist_offers_made_total") < offered; i++)
        test_sleep_s(0.05);
    long long made = test_metric(f->srv.port, "reservd_waitlist_offers_made_total");
    long long fulfilled = test_metric(f->srv.port, "reservd_waitlist_offers_fulfilled_total");
    long long expired = test_metric(f->srv.port, "reservd_waitlist_offers_expired_total");
    fprintf(stderr, "waitlist: %lld offers made, %lld fulfilled, %lld expired (metrics)\n", made,
            fulfilled, expired);
    assert_true(made >= offered);
    assert_int_equal(fulfilled, 3);
    assert_true(expired >= CANCELS);
}

struct patcher {
    int port;
    long long event;
    int max, status;
};

/* Raise maxTickets once the load is under way (500 buyers refused). */
static void *raise_capacity(void *arg)
{
    struct patcher *p = arg;
    char path[64], body[64];
    for (int i = 0; i < 2000 && test_metric(p->port, "reservd_reservations_rejected_total"
                                                     "{reason=\"sold_out\"}") < 500;
         i++)
        test_sleep_s(0.005);
    snprintf(path, sizeof(path), "/events/%lld", p->event);
    snprintf(body, sizeof(body), "{\"maxTickets\":%d}", p->max);
    struct http_result r;
    p->status = http_call(p->port, "PATCH", path, NULL, body, &r) == 0 ? r.status : -1;
    http_result_free(&r);
    return NULL;
}

/* Raising maxTickets (by 30, for 20 waiting) while 2,000 new buyers race:
 * the waiting list is served first (every entry offered, every buyer's
 * ticket granted after the offers), and the other 10 go on sale. */
static void capacity_raise_feeds_the_list_first(void **state)
{
    struct fixture *f = *state;
    enum { TICKETS = 10, WAITERS = 20, RAISED = 40, BUYERS = 2100 };
    long long holders = test_seed_users(f->db, "cap", TICKETS);
    long long waiters = test_seed_users(f->db, "capwait", WAITERS);
    long long buyer0 = test_seed_users(f->db, "capbuy", BUYERS);
    long long ev = test_seed_event(f->db, "Raise", TICKETS, 1, 0, 600);
    reserve_all(f, ev, holders, TICKETS, NULL);
    join_at_once(f->srv.port, ev, waiters, WAITERS);
    char evs[24];
    snprintf(evs, sizeof(evs), "%lld", ev);
    checker_start(&checker, f, evs);
    struct patcher p = { f->srv.port, ev, RAISED, 0 };
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, raise_capacity, &p), 0);
    json_t *rep = load_on(f->srv.port,
                          "steady -c 16 -d 50 -n %d --scenario reserve --event %lld "
                          "--user-start %lld",
                          BUYERS - 100, ev, buyer0);
    long long granted = count_of(rep, "status", "201");
    long long raced = granted;
    assert_int_equal(granted + count_of(rep, "errors", "sold_out"), BUYERS - 100);
    json_decref(rep);
    pthread_join(thread, NULL);
    assert_int_equal(p.status, 200);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM waitlist WHERE event_id = %lld AND status = "
                            "'OFFERED'",
                            ev),
                     WAITERS);
    /* no buyer's ticket was granted before the last offer */
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE event_id = %lld AND "
                            "user_id >= %lld AND id < (SELECT max(reservation_id) FROM waitlist "
                            "WHERE event_id = %lld)",
                            ev, buyer0, ev),
                     0);
    /* whatever the raise met, the rest of the demand takes the remainder */
    rep = load_on(f->srv.port, "spike -n 100 --scenario reserve --event %lld --user-start %lld", ev,
                  buyer0 + BUYERS - 100);
    granted += count_of(rep, "status", "201");
    json_decref(rep);
    checker_finish(&checker);
    fprintf(stderr, "capacity: %lld granted to buyers (%lld while the raise raced), %d offered\n",
            granted, raced, WAITERS);
    assert_true(raced > 0); /* the raise landed while the first wave ran */
    assert_int_equal(granted, RAISED - TICKETS - WAITERS);
    assert_int_equal(
        scalar(f, "SELECT held_tickets + reserved_tickets FROM events WHERE id = %lld", ev),
        RAISED);
    assert_int_equal(violations(f->db, evs), 0);
}

/* Two instances on one database, offers flowing on both (holds expiring
 * on both sweepers, joins, confirms and cancels through either): no ticket
 * offered twice, each entry offered at most once, figures consistent on
 * both instances' /metrics. */
static void two_instances_offer_each_ticket_once(void **state)
{
    struct fixture *f = *state;
    struct test_server second = { 0 };
    const char *args[] = { "--reservation-strategy", "batch", "--sweep-interval-ms", "100", NULL };
    assert_int_equal(test_server_start_url(&second, f->srv.url, "waitlist_second", args), 0);
    int ports[2] = { f->srv.port, second.port };
    enum { EVENTS = 6, TICKETS = 10, WAITERS = 30 };
    long long holders = test_seed_users(f->db, "twohold", EVENTS * TICKETS);
    long long waiters = test_seed_users(f->db, "twowait", EVENTS * WAITERS);
    long long evs[EVENTS];
    char list[128] = "";
    /* an event every 150 ms: their holds and offers fall due at different
     * moments, through many sweeps of either instance (reservd_sweep takes
     * every due event it can lock), so both sweepers get work */
    double t0 = test_now_s();
    for (int e = 0; e < EVENTS; e++) {
        while (test_now_s() < t0 + 0.15 * e)
            test_sleep_s(0.01);
        char name[32];
        snprintf(name, sizeof(name), "Two %d", e);
        evs[e] = test_seed_event(f->db, name, TICKETS, 1, 1, 1);
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%lld", e ? "," : "", evs[e]);
        /* sold out with holds of one second, half through each instance */
        for (int i = 0; i < TICKETS; i++) {
            struct http_result r = test_callf(ports[i % 2], "POST", "/reservations", 201,
                                              "{\"eventId\":%lld,\"userId\":%lld,\"hold\":true}",
                                              evs[e], holders + e * TICKETS + i);
            http_result_free(&r);
        }
        join_at_once(ports[e % 2], evs[e], waiters + (long long)e * WAITERS, WAITERS);
    }
    checker_start(&checker, f, list);
    /* confirm every fifth position's offer as it appears, through alternating
     * instances, until nobody waits or holds an offer */
    int confirmed = 0;
    for (int round = 0; round < 400; round++) {
        PGresult *res = PQexec(f->db, "SELECT reservation_id FROM waitlist WHERE status = "
                                      "'OFFERED' AND position % 5 = 0 ORDER BY id");
        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        for (int i = 0; i < PQntuples(res); i++) {
            char confirm[96];
            snprintf(confirm, sizeof(confirm), "/reservations/%s/confirm", PQgetvalue(res, i, 0));
            struct http_result r;
            assert_int_equal(http_call(ports[(confirmed + i) % 2], "POST", confirm, NULL, NULL, &r),
                             0);
            /* 409 hold_expired when the second passed first */
            assert_true(r.status == 200 || strcmp(http_error_code(&r), "hold_expired") == 0);
            confirmed += r.status == 200;
            http_result_free(&r);
        }
        PQclear(res);
        if (scalar(f, "SELECT count(*) FROM waitlist WHERE status IN ('WAITING', 'OFFERED')") == 0)
            break;
        test_sleep_s(0.05);
    }
    checker_finish(&checker);
    assert_int_equal(scalar(f, "SELECT count(*) FROM waitlist WHERE status IN ('WAITING', "
                               "'OFFERED')"),
                     0);
    assert_int_equal(violations(f->db, list), 0);
    /* each entry offered at most once, each offer a reservation of its own */
    long long offered = scalar(f, "SELECT count(*) FROM waitlist WHERE offered_at IS NOT NULL");
    assert_int_equal(scalar(f, "SELECT count(DISTINCT reservation_id) FROM waitlist"), offered);
    assert_int_equal(scalar(f, "SELECT count(*) FROM reservations WHERE user_id >= %lld", waiters),
                     offered);
    long long fulfilled = scalar(f, "SELECT count(*) FROM waitlist WHERE status = 'FULFILLED'");
    long long expired = scalar(f, "SELECT count(*) FROM waitlist WHERE status = 'EXPIRED'");
    fprintf(stderr, "two instances: %lld offers, %lld fulfilled (%d confirms), %lld expired\n",
            offered, fulfilled, confirmed, expired);
    assert_int_equal(fulfilled, confirmed);
    assert_int_equal(offered, fulfilled + expired);
    assert_true(offered >= EVENTS * TICKETS);
    /* confirmed tickets never exceed the capacity */
    for (int e = 0; e < EVENTS; e++)
        assert_true(scalar(f, "SELECT reserved_tickets FROM events WHERE id = %lld", evs[e]) <=
                    TICKETS);
    /* both instances wrote expiries (sweeping, or inline on a confirm or a
     * join), and each hold's expiry once */
    long long holds_expired[2];
    for (int i = 0; i < 2; i++)
        holds_expired[i] = test_metric(ports[i], "reservd_holds_expired_total");
    long long rows_expired =
        scalar(f, "SELECT count(*) FROM reservations WHERE status = 'EXPIRED'");
    fprintf(stderr, "two instances: %lld and %lld expiries written, %lld holds expired\n",
            holds_expired[0], holds_expired[1], rows_expired);
    assert_true(holds_expired[0] > 0);
    assert_true(holds_expired[1] > 0);
    assert_int_equal(holds_expired[0] + holds_expired[1], rows_expired);
    assert_int_equal(rows_expired, EVENTS * TICKETS + expired);
    /* both instances report the database's figures (after a sweep) */
    test_sleep_s(0.6);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(test_metric(ports[i], "reservd_waitlist_offers_made_total"), offered);
        assert_int_equal(test_metric(ports[i], "reservd_waitlist_offers_fulfilled_total"),
                         fulfilled);
        assert_int_equal(test_metric(ports[i], "reservd_waitlist_offers_expired_total"), expired);
    }
    assert_int_equal(test_server_kill(&second, SIGTERM), 0);
}

int main(void)
{
    struct strategy_tests t = { 0 };
    strategy_tests_add_one(&t, (struct CMUnitTest)cmocka_unit_test_setup_teardown(
                                   waitlist_contract, setup_for_update_unswept, teardown));
    strategy_tests_add_one(&t, (struct CMUnitTest)cmocka_unit_test_setup_teardown(
                                   waitlist_database_rules, setup_for_update_unswept, teardown));
    strategy_tests_add(&t, "waitlist_under_concurrency", waitlist_under_concurrency, setup_strategy,
                       teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "capacity_raise_feeds_the_list_first",
                       capacity_raise_feeds_the_list_first, setup_strategy, teardown,
                       STRATEGIES_SAFE);
    /* the second instance runs batch: each pair mixes the strategy under test
     * with it */
    strategy_tests_add(&t, "two_instances_offer_each_ticket_once",
                       two_instances_offer_each_ticket_once, setup_strategy_sweep_100, teardown,
                       STRATEGIES_SAFE);
    return strategy_tests_run(&t, "waitlist");
}
