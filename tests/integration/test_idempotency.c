/* Idempotency-Key against the real server: validation, replay with
 * Idempotent-Replayed, 422 on reuse, scope (principal, method, path
 * template), 4xx kept and 5xx not, records written with the effect
 * (reservations, holds, confirmations, cancellations; a hold's replayed
 * 201 equals the live one), the token never kept, expiry and the
 * sweeper, and 50 identical keyed requests at once for each safe strategy:
 * one reservation, every answer its 201 or 409 idempotency_in_progress. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "strategies.h"

static struct test_server srv;
static PGconn *db;
static int seq;

static int setup(void **state)
{
    (void)state;
    if (test_server_start(&srv, NULL) != 0)
        return -1;
    db = test_db_connect(&srv);
    return PQstatus(db) == CONNECTION_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(db);
    return test_server_stop(&srv) == 0 ? 0 : -1;
}

struct user {
    long long id;
    char token[128];
};

static struct user sign_up(int port)
{
    char body[160];
    seq++;
    snprintf(body, sizeof(body), "{\"name\":\"I%d\",\"email\":\"i%d.%d@example.com\"}", seq, seq,
             (int)getpid());
    struct http_result r = test_call(port, "POST", "/users", body, 201);
    struct user u = { .id = http_json_int(&r, "id") };
    snprintf(u.token, sizeof(u.token), "%s", json_string_value(json_object_get(r.json, "token")));
    http_result_free(&r);
    return u;
}

static long long new_event(int port, int tickets)
{
    char body[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"K%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":%d}",
             ++seq, (int)getpid(), tickets);
    struct http_result r = test_call(port, "POST", "/events", body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    return id;
}

/* One keyed call as token (NULL: the harness's admin). */
static struct http_result keyed(int port, const char *method, const char *path, const char *token,
                                const char *key, const char *body)
{
    char extra[400];
    snprintf(extra, sizeof(extra), "Idempotency-Key: %s\r\n", key);
    struct http_result r;
    int rc = token ? http_call_as(port, method, path, token, extra, body, &r)
                   : http_call_headers(port, method, path, extra, NULL, body,
                                       body ? strlen(body) : 0, &r);
    assert_int_equal(rc, 0);
    return r;
}

static bool replayed(const struct http_result *r)
{
    char v[16];
    return http_result_header(r, "Idempotent-Replayed", v, sizeof(v)) && strcmp(v, "true") == 0;
}

static long long active_rows(long long event, long long user)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM reservations WHERE event_id = %lld AND user_id = %lld "
             "AND status = 'RESERVED'",
             event, user);
    return test_db_scalar(db, sql);
}

static void bad_keys_are_refused(void **state)
{
    (void)state;
    char long_key[300];
    memset(long_key, 'k', 256);
    long_key[256] = '\0';
    const char *bad[] = { long_key, "caf\xc3\xa9", "tab\there", "" };
    long long before = test_db_scalar(db, "SELECT count(*) FROM events");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_result r = keyed(srv.port, "POST", "/events", NULL, bad[i],
                                     "{\"name\":\"Bad key\",\"date\":\"2027-01-01T10:00:00Z\","
                                     "\"location\":\"X\",\"maxTickets\":1}");
        if (r.status != 400)
            fprintf(stderr, "key %zu: %d %s\n", i, r.status, r.body);
        assert_int_equal(r.status, 400);
        assert_string_equal(http_error_code(&r), "validation_failed");
        http_result_free(&r);
    }
    long_key[255] = '\0'; /* 255 is the most */
    struct http_result r = keyed(srv.port, "POST", "/events", NULL, long_key,
                                 "{\"name\":\"Long key\",\"date\":\"2027-01-01T10:00:00Z\","
                                 "\"location\":\"X\",\"maxTickets\":1}");
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    assert_int_equal(test_db_scalar(db, "SELECT count(*) FROM events"), before + 1);
}

static void replay_reuse_and_scope(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port), b = sign_up(srv.port);
    long long ev = new_event(srv.port, 10), ev2 = new_event(srv.port, 10);
    char body[100], body2[100], bbody[100];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, a.id);
    snprintf(body2, sizeof(body2), "{\"eventId\":%lld,\"userId\":%lld}", ev2, a.id);
    snprintf(bbody, sizeof(bbody), "{\"eventId\":%lld,\"userId\":%lld}", ev, b.id);
    struct http_result first = keyed(srv.port, "POST", "/reservations", a.token, "r-1", body);
    assert_int_equal(first.status, 201);
    assert_false(replayed(&first));
    char loc1[64], loc2[64];
    assert_non_null(http_result_header(&first, "Location", loc1, sizeof(loc1)));
    for (int i = 0; i < 3; i++) {
        struct http_result again = keyed(srv.port, "POST", "/reservations", a.token, "r-1", body);
        assert_int_equal(again.status, 201);
        assert_true(replayed(&again));
        assert_true(json_equal(again.json, first.json)); /* the same answer, field by field */
        assert_non_null(http_result_header(&again, "Location", loc2, sizeof(loc2)));
        assert_string_equal(loc1, loc2);
        http_result_free(&again);
    }
    assert_int_equal(active_rows(ev, a.id), 1);
    /* the same key on another request: 422, nothing happens */
    struct http_result reuse = keyed(srv.port, "POST", "/reservations", a.token, "r-1", body2);
    assert_int_equal(reuse.status, 422);
    assert_string_equal(http_error_code(&reuse), "idempotency_key_reused");
    http_result_free(&reuse);
    assert_int_equal(active_rows(ev2, a.id), 0);
    /* another principal's key space: b's "r-1" is b's own */
    struct http_result other = keyed(srv.port, "POST", "/reservations", b.token, "r-1", bbody);
    assert_int_equal(other.status, 201);
    assert_false(replayed(&other));
    assert_int_not_equal(http_json_int(&other, "id"), http_json_int(&first, "id"));
    http_result_free(&other);
    /* another route's: "r-1" on POST /events is a new key */
    struct http_result evr = keyed(srv.port, "POST", "/events", NULL, "r-1",
                                   "{\"name\":\"Scope\",\"date\":\"2027-01-01T10:00:00Z\","
                                   "\"location\":\"X\",\"maxTickets\":1}");
    assert_int_equal(evr.status, 201);
    assert_false(replayed(&evr));
    http_result_free(&evr);
    /* the grant's record was written by the granting statement: status 201 */
    assert_int_equal(test_db_scalar(db, "SELECT count(*) FROM idempotency_keys WHERE status = 201 "
                                        "AND body LIKE '%\"RESERVED\"%'"),
                     2);
    http_result_free(&first);
}

static void refusals_kept_failures_not(void **state)
{
    (void)state;
    struct user a = sign_up(srv.port), b = sign_up(srv.port);
    long long ev = new_event(srv.port, 1);
    char body[100], path[64];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, b.id);
    struct http_result r = keyed(srv.port, "POST", "/reservations", b.token, "b-1", body);
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    /* a 409 is final: kept and replayed, even after a ticket comes back */
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, a.id);
    r = keyed(srv.port, "POST", "/reservations", a.token, "a-1", body);
    assert_int_equal(r.status, 409);
    assert_string_equal(http_error_code(&r), "sold_out");
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations?eventId=%lld", ev);
    r = test_call(srv.port, "GET", path, NULL, 200);
    long long bid = json_integer_value(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    http_result_free(&r);
    snprintf(path, sizeof(path), "/reservations/%lld", bid);
    r = keyed(srv.port, "DELETE", path, b.token, "b-cancel", NULL);
    assert_int_equal(r.status, 200);
    http_result_free(&r);
    r = keyed(srv.port, "POST", "/reservations", a.token, "a-1", body);
    assert_int_equal(r.status, 409);
    assert_true(replayed(&r));
    http_result_free(&r);
    assert_int_equal(active_rows(ev, a.id), 0);
    /* a 403 is not kept: the key is still free for the real request (were
     * it kept, another body under the same key would be 422) */
    char bbody[100];
    snprintf(bbody, sizeof(bbody), "{\"eventId\":%lld,\"userId\":%lld}", ev, b.id);
    r = keyed(srv.port, "POST", "/reservations", a.token, "a-2", bbody); /* a for b: 403 */
    assert_int_equal(r.status, 403);
    http_result_free(&r);
    r = keyed(srv.port, "POST", "/reservations", a.token, "a-2", body);
    assert_int_equal(r.status, 201);
    assert_false(replayed(&r));
    http_result_free(&r);
    /* the cancellation's record was written in its own transaction */
    assert_int_equal(test_db_scalar(db, "SELECT count(*) FROM idempotency_keys WHERE status = 200 "
                                        "AND body LIKE '%\"CANCELLED\"%'"),
                     1);
}

/* A 503 is not kept: a held row lock makes the first attempt busy, the
 * retry with the same key reserves. */
static void busy_is_not_kept(void **state)
{
    (void)state;
    struct test_server s;
    assert_int_equal(
        test_server_start(&s, (const char *const[]){ "--acquire-timeout-ms", "400", NULL }), 0);
    struct user a = sign_up(s.port);
    long long ev = new_event(s.port, 5);
    PGconn *locker = test_db_connect(&s);
    char sql[128], body[100];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM events WHERE id = %lld FOR UPDATE", ev);
    PQclear(PQexec(locker, "BEGIN"));
    PQclear(PQexec(locker, sql));
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, a.id);
    struct http_result r = keyed(s.port, "POST", "/reservations", a.token, "busy-1", body);
    assert_int_equal(r.status, 503);
    assert_string_equal(http_error_code(&r), "busy");
    http_result_free(&r);
    PQclear(PQexec(locker, "ROLLBACK"));
    PQfinish(locker);
    r = keyed(s.port, "POST", "/reservations", a.token, "busy-1", body);
    assert_int_equal(r.status, 201);
    assert_false(replayed(&r));
    http_result_free(&r);
    assert_int_equal(test_server_stop(&s), 0);
}

/* A sign-up's token is shown once: its replay carries the user, no token,
 * and the record holds none. */
static void signup_replay_has_no_token(void **state)
{
    (void)state;
    const char *body = "{\"name\":\"Once\",\"email\":\"once@example.com\"}";
    struct http_result r = keyed(srv.port, "POST", "/users", NULL, "signup-1", body);
    assert_int_equal(r.status, 201);
    assert_non_null(json_string_value(json_object_get(r.json, "token")));
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    r = keyed(srv.port, "POST", "/users", NULL, "signup-1", body);
    assert_int_equal(r.status, 201);
    assert_true(replayed(&r));
    assert_int_equal(http_json_int(&r, "id"), id);
    assert_null(json_object_get(r.json, "token"));
    http_result_free(&r);
    assert_int_equal(test_db_scalar(db, "SELECT count(*) FROM idempotency_keys WHERE body LIKE "
                                        "'%rsv\\_%'"),
                     0);
}

/* --idempotency-ttl 1: the record expires (the key is free again) and the
 * sweeper deletes it. */
static void records_expire_and_are_swept(void **state)
{
    (void)state;
    struct test_server s;
    assert_int_equal(test_server_start(&s, (const char *const[]){ "--idempotency-ttl", "1", NULL }),
                     0);
    PGconn *sdb = test_db_connect(&s);
    struct http_result r = keyed(s.port, "POST", "/events", NULL, "ttl-1",
                                 "{\"name\":\"T1\",\"date\":\"2027-01-01T10:00:00Z\","
                                 "\"location\":\"X\",\"maxTickets\":1}");
    assert_int_equal(r.status, 201);
    http_result_free(&r);
    assert_int_equal(test_db_scalar(sdb, "SELECT count(*) FROM idempotency_keys"), 1);
    long long left = 1;
    for (int i = 0; i < 60 && left != 0; i++) { /* the sweeper runs every second here */
        struct timespec pause = { 0, 100 * 1000000L };
        nanosleep(&pause, NULL);
        left = test_db_scalar(sdb, "SELECT count(*) FROM idempotency_keys");
    }
    assert_int_equal(left, 0);
    r = keyed(s.port, "POST", "/events", NULL, "ttl-1",
              "{\"name\":\"T2\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"X\","
              "\"maxTickets\":1}");
    assert_int_equal(r.status, 201); /* a new request, not 422: the old record is gone */
    assert_false(replayed(&r));
    http_result_free(&r);
    PQfinish(sdb);
    assert_int_equal(test_server_stop(&s), 0);
}

/* ---- holds: the replayed 201 and the confirmation ---- */

/* Did the transaction that granted reservation id write its record? A
 * transaction's now() is one instant: the record's created_at is the
 * row's reserved_at. (Not xmin: atomic inserts in a subtransaction.) */
static long long granted_with_record(PGconn *sdb, long long id)
{
    char sql[240];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM idempotency_keys k, reservations r WHERE r.id = %lld "
             "AND k.location = '/reservations/' || r.id AND k.status = 201 "
             "AND k.created_at = r.reserved_at",
             id);
    return test_db_scalar(sdb, sql);
}

/* How many 200 records the transaction that last changed reservation id
 * wrote (xmin: the writing transaction). */
static long long changed_with_record(PGconn *sdb, long long id)
{
    char sql[240];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM idempotency_keys k, reservations r "
             "WHERE r.id = %lld AND k.xmin = r.xmin AND k.status = 200",
             id);
    return test_db_scalar(sdb, sql);
}

/* A keyed hold of 3 tickets replays exactly its live 201 (quantity, status
 * HELD, expiresAt), and its record was written by the grant's transaction;
 * a keyed confirmation is one transaction with its record and replays its
 * 200, and so is a keyed cancellation. For one strategy. */
static void keyed_hold_then_confirm(const char *strategy)
{
    struct test_server s;
    assert_int_equal(
        test_server_start(&s, (const char *const[]){ "--reservation-strategy", strategy, NULL }),
        0);
    PGconn *sdb = test_db_connect(&s);
    struct user u = sign_up(s.port);
    char body[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"H%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"Hall\","
             "\"maxTickets\":10,\"maxPerUser\":4}",
             ++seq, (int)getpid());
    struct http_result r = test_call(s.port, "POST", "/events", body, 201);
    long long ev = http_json_int(&r, "id");
    http_result_free(&r);

    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld,\"quantity\":3,\"hold\":true}",
             ev, u.id);
    struct http_result live = keyed(s.port, "POST", "/reservations", u.token, "hold-1", body);
    assert_int_equal(live.status, 201);
    assert_false(replayed(&live));
    assert_int_equal(http_json_int(&live, "quantity"), 3);
    assert_string_equal(json_string_value(json_object_get(live.json, "status")), "HELD");
    assert_true(json_is_string(json_object_get(live.json, "expiresAt")));
    long long id = http_json_int(&live, "id");
    assert_int_equal(granted_with_record(sdb, id), 1);
    for (int i = 0; i < 2; i++) {
        struct http_result again = keyed(s.port, "POST", "/reservations", u.token, "hold-1", body);
        assert_int_equal(again.status, 201);
        assert_true(replayed(&again));
        if (!json_equal(again.json, live.json))
            fprintf(stderr, "%s: live %s\n%s: replay %s\n", strategy, live.body, strategy,
                    again.body);
        assert_true(json_equal(again.json, live.json)); /* field by field */
        http_result_free(&again);
    }

    char path[64];
    snprintf(path, sizeof(path), "/reservations/%lld/confirm", id);
    struct http_result confirmed = keyed(s.port, "POST", path, u.token, "confirm-1", NULL);
    assert_int_equal(confirmed.status, 200);
    assert_false(replayed(&confirmed));
    assert_string_equal(json_string_value(json_object_get(confirmed.json, "status")), "RESERVED");
    assert_true(json_is_null(json_object_get(confirmed.json, "expiresAt")));
    assert_int_equal(changed_with_record(sdb, id), 1);
    struct http_result again = keyed(s.port, "POST", path, u.token, "confirm-1", NULL);
    assert_int_equal(again.status, 200);
    assert_true(replayed(&again));
    assert_true(json_equal(again.json, confirmed.json));
    http_result_free(&again);
    snprintf(body, sizeof(body),
             "SELECT reserved_tickets * 100 + held_tickets FROM events "
             "WHERE id = %lld",
             ev);
    assert_int_equal(test_db_scalar(sdb, body), 300); /* confirmed once, nothing held */
    snprintf(path, sizeof(path), "/reservations/%lld", id);
    struct http_result cancelled = keyed(s.port, "DELETE", path, u.token, "cancel-1", NULL);
    assert_int_equal(cancelled.status, 200);
    assert_int_equal(changed_with_record(sdb, id), 1); /* the cancellation's transaction */
    assert_int_equal(test_db_scalar(sdb, body), 0);
    http_result_free(&cancelled);
    http_result_free(&confirmed);
    http_result_free(&live);
    PQfinish(sdb);
    assert_int_equal(test_server_stop(&s), 0);
}

/* *state: the strategy (strategies.h) */
static void keyed_holds(void **state)
{
    keyed_hold_then_confirm(*state);
}

/* ---- 50 at once ---- */

#define RACERS 50

/* One keyed call on its own thread, released with the others by a
 * barrier (go). */
struct keyed_call {
    pthread_t thread;
    pthread_barrier_t *go;
    int port;
    const char *method, *token;
    char path[64], key[32], body[100];
    int status;
    char code[48];
    long long id;
    bool replayed;
};

static void *keyed_call_run(void *arg)
{
    struct keyed_call *c = arg;
    char extra[64];
    snprintf(extra, sizeof(extra), "Idempotency-Key: %s\r\n", c->key);
    pthread_barrier_wait(c->go);
    struct http_result r;
    c->status = -1;
    if (http_call_as(c->port, c->method, c->path, c->token, extra, c->body[0] ? c->body : NULL,
                     &r) == 0) {
        c->status = r.status;
        snprintf(c->code, sizeof(c->code), "%s", http_error_code(&r));
        c->id = http_json_int(&r, "id");
        c->replayed = replayed(&r);
    }
    http_result_free(&r);
    return NULL;
}

static void fifty_identical_requests(const char *strategy)
{
    struct test_server s;
    assert_int_equal(
        test_server_start(&s, (const char *const[]){ "--reservation-strategy", strategy, NULL }),
        0);
    PGconn *sdb = test_db_connect(&s);
    struct user u = sign_up(s.port);
    long long ev = new_event(s.port, 100);
    char body[100];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, u.id);
    struct keyed_call racers[RACERS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        racers[i] =
            (struct keyed_call){ .go = &go, .port = s.port, .method = "POST", .token = u.token };
        snprintf(racers[i].path, sizeof(racers[i].path), "/reservations");
        snprintf(racers[i].key, sizeof(racers[i].key), "same-key");
        snprintf(racers[i].body, sizeof(racers[i].body), "%s", body);
        assert_int_equal(pthread_create(&racers[i].thread, NULL, keyed_call_run, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(racers[i].thread, NULL);
    pthread_barrier_destroy(&go);
    long long id = -1;
    int created = 0, replays = 0, in_progress = 0;
    for (int i = 0; i < RACERS; i++) {
        struct keyed_call *r = &racers[i];
        if (r->status == 201) {
            if (id < 0)
                id = r->id;
            assert_int_equal(r->id, id); /* every 201 is the one reservation */
            created += !r->replayed;
            replays += r->replayed;
        } else {
            if (r->status != 409 || strcmp(r->code, "idempotency_in_progress") != 0)
                fprintf(stderr, "%s racer %d: %d %s\n", strategy, i, r->status, r->code);
            assert_int_equal(r->status, 409);
            assert_string_equal(r->code, "idempotency_in_progress");
            in_progress++;
        }
    }
    assert_int_equal(created, 1);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM reservations WHERE event_id = %lld AND user_id = %lld", ev,
             u.id);
    assert_int_equal(test_db_scalar(sdb, sql), 1);
    snprintf(sql, sizeof(sql), "SELECT reserved_tickets FROM events WHERE id = %lld", ev);
    assert_int_equal(test_db_scalar(sdb, sql), 1);
    /* after the first completed, every repeat replays it */
    for (int i = 0; i < 5; i++) {
        struct http_result r = keyed(s.port, "POST", "/reservations", u.token, "same-key", body);
        assert_int_equal(r.status, 201);
        assert_true(replayed(&r));
        assert_int_equal(http_json_int(&r, "id"), id);
        http_result_free(&r);
    }
    fprintf(stderr, "%s: 50 identical keyed requests: 1 created, %d replayed, %d in progress\n",
            strategy, replays, in_progress);
    PQfinish(sdb);
    assert_int_equal(test_server_stop(&s), 0);
}

static void fifty(void **state)
{
    fifty_identical_requests(*state);
}

/* ---- two instances, one key ---- */

/* Each instance claims keys in its own memory only, so the same key sent
 * to two instances at once with two different requests reaches the
 * database twice. One effect may happen, never both: the other request is
 * answered from the first one's record (422 here) and changes nothing. */

#define PAIRS 60

/* Fire a and b at once; the number of 2xx answers (0 or 1 asserted), and
 * the loser must be a refusal that says why. */
static int fire_pair(struct keyed_call *a, struct keyed_call *b)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    a->go = b->go = &go;
    assert_int_equal(pthread_create(&a->thread, NULL, keyed_call_run, a), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, keyed_call_run, b), 0);
    pthread_join(a->thread, NULL);
    pthread_join(b->thread, NULL);
    pthread_barrier_destroy(&go);
    int ok = 0;
    struct keyed_call *both[] = { a, b };
    for (int i = 0; i < 2; i++) {
        struct keyed_call *c = both[i];
        if (c->status >= 200 && c->status < 300) {
            ok++;
            continue;
        }
        if (!(c->status == 422 && strcmp(c->code, "idempotency_key_reused") == 0) &&
            !(c->status == 409 && strcmp(c->code, "idempotency_in_progress") == 0))
            fprintf(stderr, "pair %s %s: %d %s\n", c->method, c->path, c->status, c->code);
        assert_true((c->status == 422 && strcmp(c->code, "idempotency_key_reused") == 0) ||
                    (c->status == 409 && strcmp(c->code, "idempotency_in_progress") == 0));
    }
    if (ok > 1)
        fprintf(stderr, "key %s: both %s %s and %s %s succeeded\n", a->key, a->method, a->path,
                b->method, b->path);
    return ok;
}

static long long count_where(PGconn *sdb, const char *fmt, long long v)
{
    char sql[256];
    snprintf(sql, sizeof(sql), fmt, v);
    return test_db_scalar(sdb, sql);
}

static void two_instances_one_key(const char *strategy)
{
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server a, b;
    assert_int_equal(test_server_start(&a, args), 0);
    assert_int_equal(test_server_start_url(&b, a.url, "second", args), 0);
    PGconn *sdb = test_db_connect(&a);
    struct user u = sign_up(a.port);
    long long ev[2 * PAIRS];
    for (int i = 0; i < 2 * PAIRS; i++)
        ev[i] = new_event(a.port, 10);
    int doubled = 0, granted = 0;
    for (int i = 0; i < PAIRS; i++) {
        struct keyed_call c[2];
        for (int k = 0; k < 2; k++) {
            c[k] = (struct keyed_call){ .port = k ? b.port : a.port,
                                        .method = "POST",
                                        .token = u.token };
            snprintf(c[k].path, sizeof(c[k].path), "/reservations");
            snprintf(c[k].key, sizeof(c[k].key), "pair-%d", i);
            snprintf(c[k].body, sizeof(c[k].body), "{\"eventId\":%lld,\"userId\":%lld}",
                     ev[2 * i + k], u.id);
        }
        int ok = fire_pair(&c[0], &c[1]);
        doubled += ok > 1;
        granted += ok;
    }
    /* the database holds exactly the tickets that were answered 201 */
    long long rows =
        count_where(sdb, "SELECT count(*) FROM reservations WHERE user_id = %lld", u.id);
    long long records =
        test_db_scalar(sdb, "SELECT count(*) FROM idempotency_keys WHERE status = 201");
    /* the losers that reached the database were rolled back there (0008),
     * the others found the winner's record first */
    const char *taken = "reservd_reservations_rejected_total{reason=\"idempotency_key_taken\"}";
    long long rolled_back = test_metric(a.port, taken) + test_metric(b.port, taken);
    fprintf(stderr,
            "%s: %d keyed pairs on two instances: %d granted, %d both, %lld rows, %lld "
            "rolled back by the record's insert\n",
            strategy, PAIRS, granted, doubled, rows, rolled_back);
    assert_int_equal(doubled, 0);
    assert_true(rolled_back > 0); /* the race reached the database */
    assert_int_equal(rows, granted);
    assert_int_equal(records, granted);
    PQfinish(sdb);
    assert_int_equal(test_server_kill(&b, SIGTERM), 0);
    assert_int_equal(test_server_stop(&a), 0);
}

static void two_instances(void **state)
{
    two_instances_one_key(*state);
}

/* The same for a cancellation and for routes without a strategy (new
 * events, which write their record after the effect today). */
static void two_instances_other_routes(void **state)
{
    (void)state;
    struct test_server b;
    assert_int_equal(test_server_start_url(&b, srv.url, "second", NULL), 0);
    struct user u = sign_up(srv.port);
    int cancelled = 0, created = 0, doubled = 0;
    for (int i = 0; i < PAIRS / 2; i++) {
        long long r[2];
        for (int k = 0; k < 2; k++) {
            char body[100];
            snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}",
                     new_event(srv.port, 5), u.id);
            struct http_result res;
            assert_int_equal(
                http_call_as(srv.port, "POST", "/reservations", u.token, NULL, body, &res), 0);
            assert_int_equal(res.status, 201);
            r[k] = http_json_int(&res, "id");
            http_result_free(&res);
        }
        struct keyed_call c[2], e[2];
        for (int k = 0; k < 2; k++) {
            c[k] = (struct keyed_call){ .port = k ? b.port : srv.port,
                                        .method = "DELETE",
                                        .token = u.token };
            snprintf(c[k].path, sizeof(c[k].path), "/reservations/%lld", r[k]);
            snprintf(c[k].key, sizeof(c[k].key), "cancel-%d", i);
            e[k] = (struct keyed_call){ .port = k ? b.port : srv.port,
                                        .method = "POST",
                                        .token = test_admin_token() };
            snprintf(e[k].path, sizeof(e[k].path), "/events");
            snprintf(e[k].key, sizeof(e[k].key), "event-%d", i);
            snprintf(e[k].body, sizeof(e[k].body),
                     "{\"name\":\"P%d.%d\",\"date\":\"2027-01-01T10:00:00Z\",\"location\":\"H\","
                     "\"maxTickets\":3}",
                     i, k);
        }
        int ok = fire_pair(&c[0], &c[1]);
        cancelled += ok;
        doubled += ok > 1;
        ok = fire_pair(&e[0], &e[1]);
        created += ok;
        doubled += ok > 1;
    }
    long long rows = count_where(
        db, "SELECT count(*) FROM reservations WHERE user_id = %lld AND status = 'CANCELLED'",
        u.id);
    long long events = test_db_scalar(db, "SELECT count(*) FROM events WHERE name LIKE 'P%.%'");
    fprintf(stderr,
            "other routes on two instances: %d cancelled (%lld rows), %d created (%lld "
            "rows), %d pairs both succeeded\n",
            cancelled, rows, created, events, doubled);
    assert_int_equal(doubled, 0);
    assert_int_equal(rows, cancelled);
    assert_int_equal(events, created);
    assert_int_equal(test_server_kill(&b, SIGTERM), 0);
}

int main(void)
{
    /* one server each; the per-strategy ones start their own */
    const struct CMUnitTest shared[] = {
        cmocka_unit_test_setup_teardown(bad_keys_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_reuse_and_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(refusals_kept_failures_not, setup, teardown),
        cmocka_unit_test_setup_teardown(busy_is_not_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(signup_replay_has_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(records_expire_and_are_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(two_instances_other_routes, setup, teardown),
    };
    struct strategy_tests t = { 0 };
    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
        strategy_tests_add_one(&t, shared[i]);
    strategy_tests_add(&t, "keyed_holds", keyed_holds, NULL, NULL, STRATEGIES_SAFE);
    strategy_tests_add(&t, "fifty_identical_requests", fifty, NULL, NULL, STRATEGIES_SAFE);
    strategy_tests_add(&t, "two_instances_one_key", two_instances, NULL, NULL, STRATEGIES_SAFE);
    return strategy_tests_run(&t, "idempotency");
}
