/* The for-update fast path (sql/statements/reserve_for_update.sql) and
 * what it must leave to reservd_reserve, for every safe strategy: a hold
 * that falls due while a request waits for the event's row lock, a hold
 * the request's snapshot cannot see, quantities and max_per_user, and a
 * waiting list that nobody may sell around. */

#include "holds.h"

/* A request on its own thread (it will wait for a row lock), with an
 * optional Idempotency-Key. */
struct waiting_call {
    pthread_t thread;
    int port;
    char body[256];
    char headers[128];
    int status; /* -1: transport error */
    char code[32];
    long long id;
};

static void *waiting_call_run(void *arg)
{
    struct waiting_call *c = arg;
    struct http_result r;
    c->status = -1;
    if (http_call_headers(c->port, "POST", "/reservations", c->headers, NULL, c->body,
                          strlen(c->body), &r) != 0)
        return NULL;
    c->status = r.status;
    snprintf(c->code, sizeof(c->code), "%s", http_error_code(&r));
    c->id = http_json_int(&r, "id");
    http_result_free(&r);
    return NULL;
}

/* A second connection that holds the event's row lock until unlock(). */
static PGconn *lock_event(struct fixture *f, long long ev)
{
    PGconn *c = test_db_connect(&f->srv);
    assert_non_null(c);
    char sql[128];
    snprintf(sql, sizeof(sql), "BEGIN; SELECT 1 FROM events WHERE id = %lld FOR UPDATE", ev);
    PGresult *res = PQexec(c, sql);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);
    return c;
}

static void unlock_event(PGconn *c)
{
    PGresult *res = PQexec(c, "COMMIT");
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQfinish(c);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    assert_true(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
    PQclear(res);
}

/* Start the call and wait until the server's statement waits for a lock
 * (pg_stat_activity), so that it took its snapshot while the lock was
 * held. */
static void start_waiting(struct fixture *f, struct waiting_call *c)
{
    c->port = f->srv.port;
    assert_int_equal(pthread_create(&c->thread, NULL, waiting_call_run, c), 0);
    long long waiting = 0;
    for (int i = 0; i < 200 && waiting < 1; i++) {
        sleep_s(0.05);
        waiting = scalar(f, "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock'");
    }
    assert_int_equal(waiting, 1);
}

/* A hold falls due while another transaction holds the event's row lock;
 * a request arrives after it fell due and waits for the lock: granted, the
 * hold expired, the keyed request's record written in the grant's
 * transaction. A fast path that answered from the locked row's counters
 * (held_tickets still counts the hold) would say sold_out. */
static void hold_due_during_lock_wait(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "due", 2);
    long long ev = seed_event(f, "Due", 1, 1, 1);
    struct http_result r = call(f, "POST", "/reservations", 201,
                                "{\"eventId\":%lld,\"userId\":%lld,\"hold\":true}", ev, u);
    long long hold = http_json_int(&r, "id");
    http_result_free(&r);
    PGconn *locker = lock_event(f, ev);
    while (scalar(f,
                  "SELECT count(*) FROM reservations WHERE id = %lld "
                  "AND expires_at <= now() - interval '200 ms'",
                  hold) != 1)
        sleep_s(0.05);
    static struct waiting_call c;
    memset(&c, 0, sizeof(c));
    snprintf(c.body, sizeof(c.body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u + 1);
    snprintf(c.headers, sizeof(c.headers), "Idempotency-Key: due-%lld\r\n", ev);
    start_waiting(f, &c);
    unlock_event(locker);
    pthread_join(c.thread, NULL);
    if (c.status != 201)
        fprintf(stderr, "hold_due_during_lock_wait: %d %s\n", c.status, c.code);
    assert_int_equal(c.status, 201);
    assert_true(c.id > 0);
    assert_int_equal(
        scalar(f, "SELECT count(*) FROM reservations WHERE id = %lld AND status = 'EXPIRED'", hold),
        1);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM idempotency_keys WHERE status = 201 "
                            "AND location = '/reservations/%lld'",
                            c.id),
                     1);
    check_counters(f, ev);
}

/* The trap: the hold is written by the transaction that holds the lock, so
 * the waiting request's snapshot does not contain it, yet it is overdue by
 * the time the request runs, and the locked row counts it in held_tickets.
 * A fast path that checked for overdue holds in its snapshot and, finding
 * none, answered sold_out from the locked row would refuse a free ticket. */
static void hold_unseen_by_snapshot(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "unseen", 2);
    long long ev = seed_event(f, "Unseen", 1, 1, 1);
    PGconn *locker = lock_event(f, ev);
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO reservations (event_id, user_id, quantity, status, expires_at) "
             "VALUES (%lld, %lld, 1, 'HELD', clock_timestamp() + interval '300 ms'); "
             "UPDATE events SET held_tickets = held_tickets + 1 WHERE id = %lld",
             ev, u, ev);
    exec_ok(locker, sql);
    sleep_s(0.6); /* the hold is due before the request starts */
    static struct waiting_call c;
    memset(&c, 0, sizeof(c));
    snprintf(c.body, sizeof(c.body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u + 1);
    start_waiting(f, &c);
    unlock_event(locker);
    pthread_join(c.thread, NULL);
    if (c.status != 201)
        fprintf(stderr, "hold_unseen_by_snapshot: %d %s\n", c.status, c.code);
    assert_int_equal(c.status, 201);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE event_id = %lld "
                            "AND user_id = %lld AND status = 'EXPIRED'",
                            ev, u),
                     1);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 1);
    check_counters(f, ev);
}

static void expect_reserve(struct fixture *f, long long ev, long long user, int quantity,
                           int status, const char *code)
{
    char path[] = "/reservations", body[128];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":%d}", ev, user,
             quantity);
    if (code) {
        test_expect_error(f->srv.port, "POST", path, body, status, code);
    } else {
        struct http_result r = test_call(f->srv.port, "POST", path, body, status);
        assert_int_equal(http_json_int(&r, "quantity"), quantity);
        http_result_free(&r);
    }
}

/* Quantities all or nothing, max_per_user, one active reservation per
 * user, an Idempotency-Key replayed, and a refusal that changes nothing. */
static void quantities_and_limits(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "qty", 5);
    long long ev = seed_event(f, "Qty", 10, 4, 60);
    char before[2048], after[2048];
    expect_reserve(f, ev, u, 4, 201, NULL);
    event_snapshot(f, ev, before, sizeof(before));
    expect_reserve(f, ev, u + 1, 5, 400, "validation_failed"); /* above max_per_user */
    expect_reserve(f, ev, u, 1, 409, "already_reserved");
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    expect_reserve(f, ev, u + 1, 4, 201, NULL); /* 2 left */
    event_snapshot(f, ev, before, sizeof(before));
    expect_reserve(f, ev, u + 2, 3, 409, "sold_out");
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    /* the last two, keyed: the replay is the first answer */
    char body[128], extra[64];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2}", ev, u + 2);
    snprintf(extra, sizeof(extra), "Idempotency-Key: qty-%lld\r\n", ev);
    struct http_result a, b;
    assert_int_equal(http_call_headers(f->srv.port, "POST", "/reservations", extra, NULL, body,
                                       strlen(body), &a),
                     0);
    assert_int_equal(a.status, 201);
    assert_int_equal(http_call_headers(f->srv.port, "POST", "/reservations", extra, NULL, body,
                                       strlen(body), &b),
                     0);
    assert_int_equal(b.status, 201);
    char v[16];
    assert_non_null(http_result_header(&b, "Idempotent-Replayed", v, sizeof(v)));
    assert_string_equal(v, "true");
    assert_int_equal(http_json_int(&a, "id"), http_json_int(&b, "id"));
    http_result_free(&a);
    http_result_free(&b);
    expect_reserve(f, ev, u + 3, 1, 409, "sold_out");
    assert_int_equal(event_field(f, ev, "reservedTickets"), 10);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 10);
    check_counters(f, ev);
}

/* Two tickets are free but someone waits for three: a new request for one
 * is sold_out. The hint (tickets left, from the last grant) is positive,
 * so the committed read is skipped and the locked step decides. Then a
 * smaller entry is offered the two (a HELD offer outstanding), the large
 * one leaves, and a cancelled ticket is sold beside the offer, once. */
static void not_sold_around_the_waiting_list(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "wait", 6);
    long long ev = seed_event(f, "Wait", 3, 3, 60);
    char path[64], before[2048], after[2048];
    struct http_result r =
        call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    long long first = http_json_int(&r, "id");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/events/%lld/waitlist", ev);
    r = call(f, "POST", path, 201, "{\"userId\":%lld,\"quantity\":3}", u + 1);
    long long big = http_json_int(&r, "id");
    http_result_free(&r);
    event_snapshot(f, ev, before, sizeof(before));
    expect_reserve(f, ev, u + 2, 1, 409, "sold_out");
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    /* a smaller entry fits the two free tickets: offered at once, as a hold */
    r = call(f, "POST", path, 201, "{\"userId\":%lld,\"quantity\":2}", u + 3);
    long long small = http_json_int(&r, "id");
    http_result_free(&r);
    assert_int_equal(
        scalar(f, "SELECT count(*) FROM waitlist WHERE id = %lld AND status = 'OFFERED'", small),
        1);
    expect_reserve(f, ev, u + 2, 1, 409, "sold_out");
    snprintf(path, sizeof(path), "/waitlist/%lld", big);
    r = call(f, "DELETE", path, 200, NULL);
    http_result_free(&r);
    expect_reserve(f, ev, u + 2, 1, 409, "sold_out"); /* nobody waits; the offer holds two */
    snprintf(path, sizeof(path), "/reservations/%lld", first);
    r = call(f, "DELETE", path, 200, NULL);
    http_result_free(&r);
    expect_reserve(f, ev, u + 2, 1, 201, NULL); /* the one beside the offer */
    expect_reserve(f, ev, u + 4, 1, 409, "sold_out");
    assert_int_equal(event_field(f, ev, "heldTickets"), 2);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 1);
    check_counters(f, ev);
}

int main(void)
{
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "hold_due_during_lock_wait", hold_due_during_lock_wait,
                       setup_strategy_unswept, teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "hold_unseen_by_snapshot", hold_unseen_by_snapshot,
                       setup_strategy_unswept, teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "quantities_and_limits", quantities_and_limits, setup_strategy, teardown,
                       STRATEGIES_SAFE);
    strategy_tests_add(&t, "not_sold_around_the_waiting_list", not_sold_around_the_waiting_list,
                       setup_strategy, teardown, STRATEGIES_SAFE);
    return strategy_tests_run(&t, "fast_path");
}
