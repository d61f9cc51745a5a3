/* The purchase flow (issue 13): quantities, confirm, cancel, limits, the
 * database's own rules and capacity changes, for every safe strategy; each
 * run checked against the database. (Expiry under load: test_expiry.c.) */

#include "holds.h"

/* The API contract, on a server without a sweeper: quantities, limits,
 * holds, confirm, cancel, expiry seen at once, PATCH, the status filter. */
static void purchase_flow_contract(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "flow", 6);
    struct http_result r =
        call(f, "POST", "/events", 201,
             "{\"name\":\"Flow\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":5,\"maxPerUser\":3,\"holdSeconds\":1}");
    long long ev = http_json_int(&r, "id");
    assert_int_equal(http_json_int(&r, "maxPerUser"), 3);
    assert_int_equal(http_json_int(&r, "holdSeconds"), 1);
    assert_int_equal(http_json_int(&r, "offerSeconds"), 86400);
    assert_int_equal(http_json_int(&r, "heldTickets"), 0);
    assert_int_equal(http_json_int(&r, "waitlistLength"), 0);
    http_result_free(&r);
    char before[2048], after[2048], path[96];
    event_snapshot(f, ev, before, sizeof(before));

    /* refused before anything runs, or by the event's limit: nothing changes */
    static const char *const bad[] = { "\"quantity\":0",   "\"quantity\":101", "\"quantity\":\"2\"",
                                       "\"quantity\":1.5", "\"hold\":\"yes\"", "\"hold\":1" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char body[160];
        snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,%s}", ev, u, bad[i]);
        test_expect_error(f->srv.port, "POST", "/reservations", body, 400, "validation_failed");
    }
    r = call(f, "POST", "/reservations", 400, "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":4}",
             ev, u);
    assert_string_equal(http_error_code(&r), "validation_failed");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
               "quantity"));
    http_result_free(&r);
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);

    /* a hold of 3, final tickets of 2: sold out for one more, saying 0 remain */
    r = call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":3,\"hold\":true}", ev, u);
    long long hold = http_json_int(&r, "id");
    assert_string_equal(json_str(&r, "status"), "HELD");
    assert_int_equal(http_json_int(&r, "quantity"), 3);
    assert_non_null(json_str(&r, "expiresAt"));
    http_result_free(&r);
    r = call(f, "POST", "/reservations", 409, "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":3}",
             ev, u + 1);
    assert_string_equal(http_error_code(&r), "sold_out");
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(r.json, "error"), "message")),
               "2 tickets remain"));
    http_result_free(&r);
    r = call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2}",
             ev, u + 1);
    long long final = http_json_int(&r, "id");
    assert_string_equal(json_str(&r, "status"), "RESERVED");
    assert_true(json_is_null(json_object_get(r.json, "expiresAt")));
    http_result_free(&r);
    test_expect_error(f->srv.port, "POST", "/reservations",
                      "{\"eventId\":1,\"userId\":999999,\"quantity\":1,\"hold\":true}", 404,
                      "user_not_found");
    assert_int_equal(event_field(f, ev, "heldTickets"), 3);
    assert_int_equal(event_field(f, ev, "reservedTickets"), 2);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 0);
    char body[128];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    test_expect_error(f->srv.port, "POST", "/reservations", body, 409, "already_reserved");
    /* listing by status */
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&status=HELD", ev);
    r = call(f, "GET", path, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    http_result_free(&r);
    test_expect_error(f->srv.port, "GET", "/reservations?status=WAITING", NULL, 400,
                      "validation_failed");

    /* the hold expires: at once for clients, with no sweeper running */
    sleep_s(1.2);
    snprintf(path, sizeof(path), "/reservations/%lld", hold);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(json_str(&r, "status"), "EXPIRED");
    assert_string_equal(json_str(&r, "expiredAt"), json_str(&r, "expiresAt"));
    http_result_free(&r);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE id = %lld "
                            "AND status = 'HELD'",
                            hold),
                     1); /* nothing wrote it down yet */
    assert_int_equal(event_field(f, ev, "heldTickets"), 0);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 3);
    snprintf(path, sizeof(path), "/reservations?eventId=%lld&status=EXPIRED", ev);
    r = call(f, "GET", path, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", hold);
    test_expect_error(f->srv.port, "POST", path, NULL, 409, "hold_expired");
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE id = %lld "
                            "AND status = 'EXPIRED' AND expired_at >= expires_at",
                            hold),
                     1); /* the locked path wrote it */
    check_counters(f, ev);
    /* the same user may hold again now; their tickets are back */
    r = call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":3,\"hold\":true}", ev, u);
    long long hold2 = http_json_int(&r, "id");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", hold2);
    for (int i = 0; i < 2; i++) { /* idempotent */
        r = call(f, "POST", path, 200, NULL);
        assert_string_equal(json_str(&r, "status"), "RESERVED");
        assert_true(json_is_null(json_object_get(r.json, "expiresAt")));
        http_result_free(&r);
    }
    assert_int_equal(event_field(f, ev, "reservedTickets"), 5);
    check_counters(f, ev);

    /* capacity: below what is out changes nothing; a raise frees tickets */
    snprintf(path, sizeof(path), "/events/%lld", ev);
    event_snapshot(f, ev, before, sizeof(before));
    test_expect_error(f->srv.port, "PATCH", path, "{\"maxTickets\":4,\"name\":\"Other\"}", 409,
                      "capacity_below_reserved");
    test_expect_error(f->srv.port, "PATCH", path, "{\"maxPerUser\":0}", 400, "validation_failed");
    test_expect_error(f->srv.port, "PATCH", path, "{\"date\":\"tomorrow\"}", 400,
                      "validation_failed");
    test_expect_error(f->srv.port, "PATCH", path, "[1]", 400, "invalid_json");
    test_expect_error(f->srv.port, "PATCH", "/events/999999", "{\"maxTickets\":4}", 404,
                      "event_not_found");
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    r = call(f, "PATCH", path, 200, "{\"maxTickets\":6,\"holdSeconds\":60,\"location\":\"Yard\"}");
    assert_int_equal(http_json_int(&r, "maxTickets"), 6);
    assert_int_equal(http_json_int(&r, "remainingTickets"), 1);
    assert_int_equal(http_json_int(&r, "holdSeconds"), 60);
    assert_string_equal(json_str(&r, "location"), "Yard");
    assert_string_equal(json_str(&r, "name"), "Flow");
    http_result_free(&r);
    r = call(f, "POST", "/events", 201,
             "{\"name\":\"Taken\",\"date\":\"2026-12-31T20:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":1}");
    http_result_free(&r);
    test_expect_error(f->srv.port, "PATCH", path, "{\"name\":\"Taken\"}", 409, "event_name_taken");

    /* cancel gives a hold's tickets back; cancelling again or confirming
     * a cancelled one changes nothing */
    r = call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":1,\"hold\":true}", ev, u + 2);
    long long hold3 = http_json_int(&r, "id");
    http_result_free(&r);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 0);
    snprintf(path, sizeof(path), "/reservations/%lld", hold3);
    for (int i = 0; i < 2; i++) {
        r = call(f, "DELETE", path, 200, NULL);
        assert_string_equal(json_str(&r, "status"), "CANCELLED");
        http_result_free(&r);
    }
    assert_int_equal(event_field(f, ev, "remainingTickets"), 1);
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", hold3);
    test_expect_error(f->srv.port, "POST", path, NULL, 409, "reservation_cancelled");
    test_expect_error(f->srv.port, "POST", "/reservations/999999/confirm", NULL, 404,
                      "reservation_not_found");
    /* cancelling an expired hold answers it as it is */
    snprintf(path, sizeof(path), "/reservations/%lld", hold);
    r = call(f, "DELETE", path, 200, NULL);
    assert_string_equal(json_str(&r, "status"), "EXPIRED");
    http_result_free(&r);
    /* cancelling final tickets gives them back too */
    snprintf(path, sizeof(path), "/reservations/%lld", final);
    r = call(f, "DELETE", path, 200, NULL);
    http_result_free(&r);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 3);
    check_counters(f, ev);

    /* the original app's route: one final ticket, whatever maxPerUser */
    snprintf(path, sizeof(path), "/reservation/%lld/%lld", ev, u + 3);
    r = call(f, "POST", path, 201, NULL);
    assert_string_equal(json_str(&r, "status"), "RESERVED");
    assert_int_equal(http_json_int(&r, "quantity"), 1);
    http_result_free(&r);
    check_counters(f, ev);
}

/* A hold past its expiresAt no longer counts for its own user either, with
 * no sweeper and nothing else having written its expiry: the same user
 * gets a new reservation (atomic's quick path took the tickets, then its
 * insert met the overdue row, still HELD, in the unique index of active
 * reservations: 409 already_reserved). */
static void expired_hold_is_not_active(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "again", 1);
    long long ev = seed_event(f, "Again", 5, 2, 1);
    struct http_result r =
        call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2,\"hold\":true}", ev, u);
    long long hold = http_json_int(&r, "id");
    http_result_free(&r);
    sleep_s(1.2);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE id = %lld AND status = "
                            "'HELD' AND expires_at <= now()",
                            hold),
                     1); /* overdue, nothing wrote it down yet */
    r = call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2,\"hold\":true}", ev, u);
    assert_string_equal(json_str(&r, "status"), "HELD");
    long long again = http_json_int(&r, "id");
    assert_true(again != hold);
    http_result_free(&r);
    char path[64];
    snprintf(path, sizeof(path), "/reservations/%lld", hold);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(json_str(&r, "status"), "EXPIRED");
    http_result_free(&r);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE id = %lld AND status = "
                            "'EXPIRED' AND expired_at >= expires_at",
                            hold),
                     1); /* written by the path that granted the new one */
    assert_int_equal(event_field(f, ev, "heldTickets"), 2);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 3);
    check_counters(f, ev);
    /* the hold counters: two granted, the first expired (by this instance,
     * with no sweeper), the second confirmed */
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", again);
    r = call(f, "POST", path, 200, NULL);
    http_result_free(&r);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_granted_total"), 2);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_expired_total"), 1);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_confirmed_total"), 1);
}

/* The waiting list's counters with no sweeper (they were read only after
 * a sweep: 0 for good), and what the hold counters count: an offer is a
 * hold, counted as an offer made, not as a hold granted; its confirm and
 * the expiry that made it count as holds. */
static void offers_counted_without_a_sweeper(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "first", 2);
    long long ev = seed_event(f, "Line", 2, 2, 1);
    struct http_result r =
        call(f, "POST", "/reservations", 201,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2,\"hold\":true}", ev, u);
    long long hold = http_json_int(&r, "id");
    http_result_free(&r);
    char path[64];
    snprintf(path, sizeof(path), "/events/%lld/waitlist", ev);
    r = call(f, "POST", path, 201, "{\"userId\":%lld,\"quantity\":2}", u + 1);
    long long entry = http_json_int(&r, "id");
    assert_string_equal(json_str(&r, "status"), "WAITING");
    http_result_free(&r);
    sleep_s(1.2);
    /* someone waits: sold out, even for the overdue hold's own user */
    r = call(f, "POST", "/reservations", 409,
             "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2,\"hold\":true}", ev, u);
    assert_string_equal(http_error_code(&r), "sold_out");
    http_result_free(&r);
    /* a locked path writes the expiry (if the refusal did not): the offer */
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", hold);
    test_expect_error(f->srv.port, "POST", path, NULL, 409, "hold_expired");
    snprintf(path, sizeof(path), "/waitlist/%lld", entry);
    r = call(f, "GET", path, 200, NULL);
    assert_string_equal(json_str(&r, "status"), "OFFERED");
    long long offer = http_json_int(&r, "reservationId");
    http_result_free(&r);
    check_counters(f, ev);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_granted_total"), 1);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_expired_total"), 1);
    assert_int_equal(test_metric(f->srv.port, "reservd_waitlist_offers_made_total"), 1);
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", offer);
    r = call(f, "POST", path, 200, NULL);
    http_result_free(&r);
    assert_int_equal(test_metric(f->srv.port, "reservd_holds_confirmed_total"), 1);
    assert_int_equal(test_metric(f->srv.port, "reservd_waitlist_offers_fulfilled_total"), 1);
    assert_int_equal(test_metric(f->srv.port, "reservd_waitlist_offers_expired_total"), 0);
}

/* The database refuses, by itself, what the server never writes. */
static void the_database_keeps_the_rules(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "rules", 2);
    long long ev = seed_event(f, "Rules", 3, 3, 60);
    static const char *const refused[] = {
        "UPDATE events SET held_tickets = 4 WHERE id = %lld",
        "UPDATE events SET reserved_tickets = 2, held_tickets = 2 WHERE id = %lld",
        "UPDATE events SET held_tickets = -1 WHERE id = %lld",
        "UPDATE events SET waiting_count = -1 WHERE id = %lld",
        "UPDATE events SET max_per_user = 101 WHERE id = %lld",
        "UPDATE events SET hold_seconds = 0 WHERE id = %lld",
        "UPDATE events SET offer_seconds = 604801 WHERE id = %lld",
        "INSERT INTO reservations (event_id, user_id, quantity) VALUES (%lld, %lld, 0)",
        "INSERT INTO reservations (event_id, user_id, quantity) VALUES (%lld, %lld, 101)",
        "INSERT INTO reservations (event_id, user_id, status) VALUES (%lld, %lld, 'HELD')",
        "INSERT INTO reservations (event_id, user_id, status) VALUES (%lld, %lld, 'WAITING')",
        "INSERT INTO reservations (event_id, user_id, expires_at) VALUES (%lld, %lld, now())",
        "INSERT INTO reservations (event_id, user_id, status, expires_at) "
        "VALUES (%lld, %lld, 'EXPIRED', now())",
        "INSERT INTO reservations (event_id, user_id, status, expires_at, expired_at) "
        "VALUES (%lld, %lld, 'EXPIRED', now(), now() - interval '1 s')",
        "INSERT INTO reservations (event_id, user_id, status, expires_at, expired_at) "
        "VALUES (%lld, %lld, 'HELD', now(), now())",
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), refused[i], ev, u);
        PGresult *res = PQexec(f->db, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            fail_msg("the database accepted: %s", sql);
        assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23514"); /* CHECK */
        PQclear(res);
    }
    /* one active reservation per user and event, held or confirmed */
    assert_int_equal(scalar(f,
                            "WITH ins AS (INSERT INTO reservations (event_id, user_id, status, "
                            "expires_at) VALUES (%lld, %lld, 'HELD', now() + interval '1 min') "
                            "RETURNING 1) SELECT count(*) FROM ins",
                            ev, u),
                     1);
    char sql[256];
    snprintf(sql, sizeof(sql), "INSERT INTO reservations (event_id, user_id) VALUES (%lld, %lld)",
             ev, u);
    PGresult *res = PQexec(f->db, sql);
    assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "23505"); /* unique */
    PQclear(res);
}

/* unsafe keeps the original app's logic: no quantities, no holds. */
static void unsafe_refuses_quantities_and_holds(void **state)
{
    struct fixture *f = *state;
    long long u = seed_users(f, "plain", 1);
    long long ev = seed_event(f, "Plain", 10, 4, 60);
    char body[160];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":2}", ev, u);
    test_expect_error(f->srv.port, "POST", "/reservations", body, 501, "not_implemented");
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"hold\":true}", ev, u);
    test_expect_error(f->srv.port, "POST", "/reservations", body, 501, "not_implemented");
    assert_int_equal(scalar(f, "SELECT count(*) FROM reservations"), 0);
    struct http_result r =
        call(f, "POST", "/reservations", 201, "{\"eventId\":%lld,\"userId\":%lld}", ev, u);
    assert_int_equal(http_json_int(&r, "quantity"), 1);
    http_result_free(&r);
}

/* 2,000 distinct users at once asking for 1 to 4 tickets of 300: exactly
 * 300 go, every 201 is in the database with its quantity, nobody twice. */
static void quantities_under_a_spike(void **state)
{
    struct fixture *f = *state;
    long long first = seed_users(f, "qty", 2000);
    long long ev = seed_event(f, "Quantities", 300, 4, 900);
    FILE *runs[4];
    char files[4][128];
    for (int q = 1; q <= 4; q++) {
        char args[768], tag[8];
        snprintf(tag, sizeof(tag), "q%d", q);
        answers_path(f, tag, files[q - 1], sizeof(files[q - 1]));
        snprintf(args, sizeof(args),
                 "spike -n 500 --timeout 120 --method POST --path /reservations "
                 "--body '{\"eventId\":%lld,\"userId\":{i},\"quantity\":%d}' "
                 "--user-start %lld --answers %s",
                 ev, q, first + 500LL * (q - 1), files[q - 1]);
        runs[q - 1] = load_start(f, args);
    }
    long long granted = 0, tickets = 0, refused = 0;
    static struct answer answers[500];
    for (int q = 1; q <= 4; q++) {
        int rc;
        json_t *rep = load_finish(runs[q - 1], &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(json_integer_value(json_object_get(rep, "transport_errors")), 0);
        assert_int_equal(count_of(rep, "status", "201") + count_of(rep, "status", "409"), 500);
        assert_int_equal(count_of(rep, "errors", "sold_out"), count_of(rep, "status", "409"));
        refused += count_of(rep, "status", "409");
        json_decref(rep);
        int n = read_answers(files[q - 1], answers, 500);
        assert_int_equal(n, 500);
        for (int i = 0; i < n; i++) {
            if (answers[i].status != 201)
                continue;
            granted++;
            tickets += q;
            assert_int_equal(scalar(f,
                                    "SELECT count(*) FROM reservations WHERE id = %lld "
                                    "AND user_id = %lld AND quantity = %d AND status = 'RESERVED'",
                                    answers[i].id, answers[i].i, q),
                             1);
        }
        unlink(files[q - 1]);
    }
    fprintf(stderr, "quantities: %lld granted (%lld tickets), %lld sold out\n", granted, tickets,
            refused);
    assert_int_equal(tickets, 300);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 300);
    assert_int_equal(scalar(f, "SELECT count(*) FROM reservations WHERE event_id = %lld", ev),
                     granted);
    check_counters(f, ev);
}

struct patcher {
    struct fixture *f;
    long long event;
    int status;
};

static void *raise_capacity(void *arg)
{
    struct patcher *p = arg;
    char path[64];
    sleep_s(0.05);
    snprintf(path, sizeof(path), "/events/%lld", p->event);
    struct http_result r;
    p->status = http_call(p->f->srv.port, "PATCH", path, NULL, "{\"maxTickets\":150}", &r) == 0
                    ? r.status
                    : -1;
    http_result_free(&r);
    return NULL;
}

/* Raising maxTickets while requests race frees exactly the new tickets;
 * lowering it below what is out is 409 and changes nothing. */
static void capacity_changes_under_load(void **state)
{
    struct fixture *f = *state;
    long long first = seed_users(f, "cap", 1000);
    long long ev = seed_event(f, "Capacity", 100, 1, 900);
    struct patcher p = { f, ev, 0 };
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, raise_capacity, &p), 0);
    json_t *rep =
        load(f, "steady -c 32 -n 600 --scenario reserve --event %lld --user-start %lld", ev, first);
    long long granted = count_of(rep, "status", "201");
    assert_int_equal(granted + count_of(rep, "errors", "sold_out"), 600);
    json_decref(rep);
    pthread_join(thread, NULL);
    assert_int_equal(p.status, 200);
    /* whatever the raise met, the rest of the demand takes the remainder */
    rep =
        load(f, "spike -n 400 --scenario reserve --event %lld --user-start %lld", ev, first + 600);
    granted += count_of(rep, "status", "201");
    json_decref(rep);
    fprintf(stderr, "capacity: %lld granted of 150\n", granted);
    assert_int_equal(granted, 150);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 150);
    check_counters(f, ev);

    char before[2048], after[2048], path[64];
    snprintf(path, sizeof(path), "/events/%lld", ev);
    event_snapshot(f, ev, before, sizeof(before));
    test_expect_error(f->srv.port, "PATCH", path, "{\"maxTickets\":149,\"location\":\"X\"}", 409,
                      "capacity_below_reserved");
    event_snapshot(f, ev, after, sizeof(after));
    assert_string_equal(before, after);
    struct http_result r = call(f, "PATCH", path, 200, "{\"maxTickets\":150}");
    http_result_free(&r);
}

int main(void)
{
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "purchase_flow_contract", purchase_flow_contract, setup_strategy_unswept,
                       teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "expired_hold_is_not_active", expired_hold_is_not_active,
                       setup_strategy_unswept, teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "offers_counted_without_a_sweeper", offers_counted_without_a_sweeper,
                       setup_strategy_unswept, teardown, STRATEGIES_SAFE);
    strategy_tests_add_one(&t, (struct CMUnitTest)cmocka_unit_test_setup_teardown(
                                   the_database_keeps_the_rules, setup_for_update, teardown));
    strategy_tests_add(&t, "unsafe_refuses_quantities_and_holds",
                       unsafe_refuses_quantities_and_holds, setup_unsafe, teardown,
                       STRATEGIES_UNSAFE);
    strategy_tests_add(&t, "quantities_under_a_spike", quantities_under_a_spike, setup_strategy,
                       teardown, STRATEGIES_SAFE);
    strategy_tests_add(&t, "capacity_changes_under_load", capacity_changes_under_load,
                       setup_strategy, teardown, STRATEGIES_SAFE);
    return strategy_tests_run(&t, "holds");
}
