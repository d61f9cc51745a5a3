/* The purchase flow (issue 13): quantities, holds that expire, confirm,
 * cancel, capacity changes, for every safe strategy; each run checked
 * against the database. The spikes go through reservd-load. */

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

static int start(void **state, const char *strategy, const char *sweep_ms)
{
    const char *args[] = { "--reservation-strategy", strategy, "--sweep-interval-ms", sweep_ms,
                           NULL };
    return fixture_start(state, args);
}
static int setup_for_update(void **state)
{
    return start(state, "for-update", "250");
}
static int setup_batch(void **state)
{
    return start(state, "batch", "250");
}
static int setup_atomic(void **state)
{
    return start(state, "atomic", "250");
}
/* No sweeper: what clients see must not depend on it. */
static int setup_for_update_unswept(void **state)
{
    return start(state, "for-update", "0");
}
static int setup_batch_unswept(void **state)
{
    return start(state, "batch", "0");
}
static int setup_atomic_unswept(void **state)
{
    return start(state, "atomic", "0");
}
static int setup_unsafe(void **state)
{
    const char *args[] = { "--reservation-strategy", "unsafe", "--i-understand-unsafe-oversells",
                           NULL };
    return fixture_start(state, args);
}
static int teardown(void **state)
{
    return fixture_stop(state);
}

static long long scalar(struct fixture *f, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return test_db_scalar(f->db, sql);
}

static long long seed_users(struct fixture *f, const char *prefix, int n)
{
    long long first = scalar(f, "SELECT coalesce(max(id), 0) + 1 FROM users");
    assert_int_equal(scalar(f,
                            "WITH ins AS (INSERT INTO users (id, name, email) "
                            "SELECT %lld + g - 1, '%s' || g, '%s' || g || '@example.com' "
                            "FROM generate_series(1, %d) g RETURNING 1) SELECT count(*) FROM ins",
                            first, prefix, prefix, n),
                     n);
    scalar(f, "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))");
    return first;
}

static long long seed_event(struct fixture *f, const char *name, int tickets, int max_per_user,
                            int hold_seconds)
{
    return scalar(f,
                  "INSERT INTO events (name, date, location, max_tickets, max_per_user, "
                  "hold_seconds) VALUES ('%s', now() + interval '30 days', 'Hall', %d, %d, %d) "
                  "RETURNING id",
                  name, tickets, max_per_user, hold_seconds);
}

/* Tickets out, by the rows: confirmed and held quantities. */
static long long rows_quantity(struct fixture *f, long long ev, const char *status)
{
    return scalar(f,
                  "SELECT coalesce(sum(quantity), 0) FROM reservations WHERE event_id = %lld "
                  "AND status = '%s'",
                  ev, status);
}

/* The counters agree with the rows, and never exceed the capacity. */
static void check_counters(struct fixture *f, long long ev)
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
static FILE *load_start(struct fixture *f, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s' %s --json --url http://127.0.0.1:%d",
             test_binary("RESERVD_LOAD_BIN"), args, f->srv.port);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    return p;
}

/* Its report; its exit status in *rc. */
static json_t *load_finish(FILE *p, int *rc)
{
    char *text = NULL, buf[4096];
    size_t len = 0, n;
    FILE *mem = open_memstream(&text, &len);
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(mem);
    int status = pclose(p);
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    json_error_t err;
    json_t *rep = json_loads(text, 0, &err);
    if (!rep)
        fprintf(stderr, "reservd-load printed no JSON: %s\n%s\n", err.text, text);
    assert_non_null(rep);
    free(text);
    return rep;
}

static json_t *load(struct fixture *f, const char *fmt, ...)
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

static long long count_of(json_t *report, const char *group, const char *key)
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
static int read_answers(const char *path, struct answer *out, int max)
{
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    int n = 0;
    while (n < max && fscanf(in, "%lld %d %lld", &out[n].i, &out[n].status, &out[n].id) == 3)
        n++;
    fclose(in);
    return n;
}

static void answers_path(struct fixture *f, const char *tag, char *out, size_t len)
{
    snprintf(out, len, "/tmp/reservd_holds_%d_%s.txt", f->srv.port, tag);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&t, NULL);
}

static struct http_result call(struct fixture *f, const char *method, const char *path, int status,
                               const char *fmt, ...)
{
    char body[512];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(body, sizeof(body), fmt, ap);
        va_end(ap);
    }
    return test_call(f->srv.port, method, path, fmt ? body : NULL, status);
}

static const char *json_str(const struct http_result *r, const char *key)
{
    return json_string_value(json_object_get(r->json, key));
}

static long long event_field(struct fixture *f, long long ev, const char *key)
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
static void event_snapshot(struct fixture *f, long long ev, char *out, size_t len)
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

/* 1,000 holds at once (holdSeconds 2) on 1,000 tickets, half confirmed:
 * after expiry exactly the unconfirmed tickets remain, and a second wave
 * of 1,000 gets exactly those. The confirms go to the 500 newest holds;
 * on a loaded machine a strategy that grants one hold per transaction may
 * take over 2 s for the spike, so a confirm can meet an expired hold
 * (409 hold_expired): the figures are checked against the answers. */
static void holds_expire_and_tickets_return(void **state)
{
    struct fixture *f = *state;
    long long first = seed_users(f, "hold", 2000);
    long long ev = seed_event(f, "Holds", 1000, 1, 2);
    double t0 = now_s();
    json_t *rep = load(f,
                       "spike -n 1000 --timeout 120 --method POST --path /reservations "
                       "--body '{\"eventId\":%lld,\"userId\":{i},\"hold\":true}' "
                       "--user-start %lld --expect-status 201=1000",
                       ev, first);
    json_decref(rep);
    double t_held = now_s();
    long long high = scalar(f, "SELECT max(id) FROM reservations WHERE event_id = %lld", ev);
    assert_int_equal(scalar(f,
                            "SELECT count(*) FROM reservations WHERE event_id = %lld "
                            "AND id BETWEEN %lld AND %lld",
                            ev, high - 499, high),
                     500); /* all ours: the database is fresh */
    rep = load(f,
               "steady -c 16 -n 500 --method POST --path /reservations/{i}/confirm "
               "--user-start %lld",
               high - 499);
    long long confirmed = count_of(rep, "status", "200");
    assert_int_equal(count_of(rep, "errors", "hold_expired"), 500 - confirmed);
    json_decref(rep);
    double t_confirmed = now_s();
    fprintf(stderr, "holds: 1000 held in %.2f s, %lld of 500 confirmed in %.2f s\n", t_held - t0,
            confirmed, t_confirmed - t_held);
    assert_true(confirmed > 0);
    assert_int_equal(event_field(f, ev, "reservedTickets"), confirmed);
    /* after expiry: exactly the rest remain, at once and once written down */
    while (now_s() < t_held + 2.1)
        sleep_s(0.05);
    assert_int_equal(event_field(f, ev, "remainingTickets"), 1000 - confirmed);
    assert_int_equal(event_field(f, ev, "heldTickets"), 0);
    for (int i = 0; i < 40 && rows_quantity(f, ev, "HELD") > 0; i++)
        sleep_s(0.1); /* the sweeper writes them within about a second */
    assert_int_equal(rows_quantity(f, ev, "HELD"), 0);
    assert_int_equal(rows_quantity(f, ev, "EXPIRED"), 1000 - confirmed);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), confirmed);
    check_counters(f, ev);
    /* a second wave of 1,000 users */
    rep = load(f, "spike -n 1000 --timeout 120 --scenario reserve --event %lld --user-start %lld",
               ev, first + 1000);
    assert_int_equal(count_of(rep, "status", "201"), 1000 - confirmed);
    assert_int_equal(count_of(rep, "errors", "sold_out"), confirmed);
    json_decref(rep);
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), 1000);
    check_counters(f, ev);
}

/* Confirms fired around expiresAt: each of N holds is confirmed at its own
 * expiresAt plus an offset from -30 to +30 ms. */
enum { RACE_N = 300, RACE_THREADS = 8 };
static const int race_offsets_ms[] = { -30, -5, -2, 0, 2, 5, 30 };
struct race {
    int port;
    long long ids[RACE_N];
    double expires[RACE_N];
    int status[RACE_N];
    int code_ok[RACE_N]; /* a 409 said hold_expired */
    int next;
    pthread_mutex_t lock;
};

static void *race_confirms(void *arg)
{
    struct race *race = arg;
    for (;;) {
        pthread_mutex_lock(&race->lock);
        int i = race->next < RACE_N ? race->next++ : -1;
        pthread_mutex_unlock(&race->lock);
        if (i < 0)
            return NULL;
        int offset = race_offsets_ms[i % (sizeof(race_offsets_ms) / sizeof(race_offsets_ms[0]))];
        double at = race->expires[i] + offset / 1000.0;
        while (now_s() < at)
            sleep_s(0.001);
        char path[64];
        snprintf(path, sizeof(path), "/reservations/%lld/confirm", race->ids[i]);
        struct http_result r;
        race->status[i] = http_call(race->port, "POST", path, NULL, NULL, &r) == 0 ? r.status : -1;
        race->code_ok[i] = strcmp(http_error_code(&r), "hold_expired") == 0;
        http_result_free(&r);
    }
}

/* Every hold ends RESERVED with a 200 or EXPIRED with a 409 hold_expired,
 * never both; the counters agree. */
static void confirm_racing_expiry(void **state)
{
    struct fixture *f = *state;
    long long first = seed_users(f, "race", RACE_N);
    long long ev = seed_event(f, "Race", RACE_N, 1, 1);
    json_t *rep = load(f,
                       "spike -n %d --method POST --path /reservations "
                       "--body '{\"eventId\":%lld,\"userId\":{i},\"hold\":true}' "
                       "--user-start %lld --expect-status 201=%d",
                       RACE_N, ev, first, RACE_N);
    json_decref(rep);
    static struct race race;
    memset(&race, 0, sizeof(race));
    race.port = f->srv.port;
    pthread_mutex_init(&race.lock, NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id, extract(epoch FROM expires_at) FROM reservations "
             "WHERE event_id = %lld ORDER BY expires_at",
             ev);
    PGresult *res = PQexec(f->db, sql);
    assert_int_equal(PQntuples(res), RACE_N);
    for (int i = 0; i < RACE_N; i++) {
        race.ids[i] = atoll(PQgetvalue(res, i, 0));
        race.expires[i] = atof(PQgetvalue(res, i, 1));
    }
    PQclear(res);
    pthread_t threads[RACE_THREADS];
    for (int t = 0; t < RACE_THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, race_confirms, &race), 0);
    for (int t = 0; t < RACE_THREADS; t++)
        pthread_join(threads[t], NULL);
    pthread_mutex_destroy(&race.lock);
    long long ok = 0, late = 0;
    for (int i = 0; i < RACE_N; i++) {
        assert_true(race.status[i] == 200 || (race.status[i] == 409 && race.code_ok[i]));
        ok += race.status[i] == 200;
        late += race.status[i] == 409;
    }
    fprintf(stderr, "confirm racing expiry: %lld confirmed, %lld hold_expired\n", ok, late);
    for (int k = 0; k < 30 && rows_quantity(f, ev, "HELD") > 0; k++)
        sleep_s(0.1); /* the sweeper writes the rest */
    for (int i = 0; i < RACE_N; i++) {
        const char *want = race.status[i] == 200 ? "RESERVED" : "EXPIRED";
        if (scalar(f, "SELECT count(*) FROM reservations WHERE id = %lld AND status = '%s'",
                   race.ids[i], want) != 1)
            fail_msg("reservation %lld answered %d is not %s", race.ids[i], race.status[i], want);
    }
    assert_int_equal(rows_quantity(f, ev, "RESERVED"), ok);
    assert_int_equal(rows_quantity(f, ev, "EXPIRED"), late);
    assert_true(ok > 0 && late > 0); /* the offsets straddle the expiry */
    check_counters(f, ev);
}

/* A counter from a server's /metrics. */
static long long metric(int port, const char *name)
{
    struct http_result r = test_call(port, "GET", "/metrics", NULL, 200);
    char pattern[128];
    snprintf(pattern, sizeof(pattern), "\n%s ", name);
    const char *at = strstr(r.body, pattern);
    long long v = at ? atoll(at + strlen(pattern)) : -1;
    http_result_free(&r);
    return v;
}

/* Two instances on one database, holds expiring on both: every expiry
 * written once (a trigger logs each HELD -> EXPIRED), each instance counts
 * only its own, and the figures agree. */
static void two_instances_expire_each_hold_once(void **state)
{
    struct fixture *f = *state;
    struct test_server second = { 0 };
    const char *args[] = { "--reservation-strategy", "for-update", NULL };
    assert_int_equal(test_server_start_url(&second, f->srv.url, "holds_second", args), 0);
    assert_int_equal(test_db_scalar(f->db, "CREATE TABLE expiry_log (id bigint); "
                                           "CREATE FUNCTION log_expiry() RETURNS trigger "
                                           "LANGUAGE plpgsql AS $$ BEGIN "
                                           "INSERT INTO expiry_log VALUES (NEW.id); RETURN NEW; "
                                           "END $$; "
                                           "CREATE TRIGGER log_expiry AFTER UPDATE ON reservations "
                                           "FOR EACH ROW WHEN (OLD.status = 'HELD' AND "
                                           "NEW.status = 'EXPIRED') EXECUTE FUNCTION log_expiry(); "
                                           "SELECT 0"),
                     0);
    enum { EVENTS = 6, PER = 100 };
    long long first = seed_users(f, "twice", EVENTS * PER);
    long long evs[EVENTS];
    for (int e = 0; e < EVENTS; e++) {
        char name[32];
        snprintf(name, sizeof(name), "Twice %d", e);
        evs[e] = seed_event(f, name, PER, 1, 1);
    }
    /* half the events' holds through each instance, all at once */
    FILE *runs[EVENTS];
    for (int e = 0; e < EVENTS; e++) {
        char args_s[512];
        snprintf(args_s, sizeof(args_s),
                 "spike -n %d --method POST --path /reservations "
                 "--body '{\"eventId\":%lld,\"userId\":{i},\"hold\":true}' --user-start %lld "
                 "--expect-status 201=%d --url http://127.0.0.1:%d",
                 PER, evs[e], first + (long long)e * PER, PER, e % 2 ? second.port : f->srv.port);
        runs[e] = load_start(f, args_s);
    }
    for (int e = 0; e < EVENTS; e++) {
        int rc;
        json_decref(load_finish(runs[e], &rc));
        assert_int_equal(rc, 0);
    }
    for (int i = 0; i < 50 && scalar(f, "SELECT count(*) FROM reservations WHERE status = 'HELD'");
         i++)
        sleep_s(0.1);
    long long total = EVENTS * PER;
    assert_int_equal(scalar(f, "SELECT count(*) FROM reservations WHERE status = 'EXPIRED'"),
                     total);
    assert_int_equal(scalar(f, "SELECT count(*) FROM expiry_log"), total);
    assert_int_equal(scalar(f, "SELECT count(DISTINCT id) FROM expiry_log"), total);
    long long mine = metric(f->srv.port, "reservd_holds_expired_total");
    long long theirs = metric(second.port, "reservd_holds_expired_total");
    fprintf(stderr, "two instances: %lld and %lld expiries written\n", mine, theirs);
    assert_int_equal(mine + theirs, total);
    for (int e = 0; e < EVENTS; e++) {
        check_counters(f, evs[e]);
        assert_int_equal(event_field(f, evs[e], "remainingTickets"), PER);
    }
    assert_int_equal(test_server_kill(&second, SIGTERM), 0);
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

#define PER_STRATEGY(test)                                             \
    cmocka_unit_test_setup_teardown(test, setup_for_update, teardown), \
        cmocka_unit_test_setup_teardown(test, setup_batch, teardown),  \
        cmocka_unit_test_setup_teardown(test, setup_atomic, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(purchase_flow_contract, setup_for_update_unswept, teardown),
        cmocka_unit_test_setup_teardown(purchase_flow_contract, setup_batch_unswept, teardown),
        cmocka_unit_test_setup_teardown(purchase_flow_contract, setup_atomic_unswept, teardown),
        cmocka_unit_test_setup_teardown(unsafe_refuses_quantities_and_holds, setup_unsafe,
                                        teardown),
        PER_STRATEGY(quantities_under_a_spike),
        PER_STRATEGY(holds_expire_and_tickets_return),
        PER_STRATEGY(confirm_racing_expiry),
        PER_STRATEGY(capacity_changes_under_load),
        cmocka_unit_test_setup_teardown(two_instances_expire_each_hold_once, setup_for_update,
                                        teardown),
        cmocka_unit_test_setup_teardown(two_instances_expire_each_hold_once, setup_batch, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
