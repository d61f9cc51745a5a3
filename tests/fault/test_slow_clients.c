/* Slow clients: a request must be received within --read-timeout-ms of
 * its first byte, however steadily it trickles; and at --max-connections
 * a new client is answered or closed at once, never left hanging. The old
 * server only closed connections after --connection-timeout seconds of
 * complete silence, and stopped accepting at the limit. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "trickler.h"

#define LIVEZ "GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

/* Server arguments: the new --read-timeout-ms unless FAULT_OLD_FLAGS=1. */
static int start_with(struct test_server *srv, const char *read_timeout, const char *max_conn)
{
    const char *args[8];
    int n = 0;
    if (fault_new_flags()) {
        args[n++] = "--read-timeout-ms";
        args[n++] = read_timeout;
    }
    args[n++] = "--connection-timeout";
    args[n++] = "30";
    if (max_conn) {
        args[n++] = "--max-connections";
        args[n++] = max_conn;
    }
    args[n] = NULL;
    return fault_server_start(srv, args);
}

/* Rows in the tables a trickled POST /reservations could touch. */
static long long untouched(const struct test_server *srv)
{
    PGconn *db = test_db_connect(srv);
    long long n = test_db_scalar(db, "SELECT (SELECT count(*) FROM reservations) + "
                                     "(SELECT coalesce(sum(reserved_tickets), 0) FROM events)");
    PQfinish(db);
    return n;
}

/* (a) 2,000 tricklers, one byte a second: all closed within 5 s of their
 * first byte, while /livez answers in under a second. */
static void trickling_headers_are_cut_off(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(start_with(&srv, "2000", NULL), 0);
    struct trickler *t;
    assert_int_equal(trickler_start(&t, srv.port, 2000, 1000, 8000), 0);
    for (int i = 0; i < 200 && trickler_open(t) < 2000; i++)
        fault_sleep_ms(10); /* probe while all of them trickle */
    double livez_max = 0;
    int livez_ok = 0, livez_n = 0;
    for (double t0 = fault_now_ms(); fault_now_ms() - t0 < 5000; fault_sleep_ms(200)) {
        struct raw_reply r;
        int rc = raw_exchange(srv.port, LIVEZ, strlen(LIVEZ), 3000, 0, &r);
        livez_n++;
        livez_ok += rc == 0 && r.status == 200 && r.ms < 1000;
        if (r.ms > livez_max)
            livez_max = r.ms;
        raw_reply_free(&r);
    }
    struct trickler_result res;
    trickler_join(t, &res);
    fprintf(stderr,
            "tricklers (%s): %d opened, %d failed, %d closed by the server "
            "(%d after an answer), %d still open after 8 s; close after first byte: "
            "p50 %.0f ms, max %.0f ms; /livez meanwhile: %d of %d under 1 s, max %.0f ms\n",
            fault_new_flags() ? "--read-timeout-ms 2000" : "old flags: no --read-timeout-ms",
            res.opened, res.failed, res.closed, res.answered, res.still_open, res.p50_close_ms,
            res.max_close_ms, livez_ok, livez_n, livez_max);
    long long rows = untouched(&srv);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_int_equal(rows, 0); /* no trickle ever became a request */

    assert_int_equal(res.opened, 2000);
    assert_int_equal(res.closed, 2000);
    assert_int_equal(res.still_open, 0);
    assert_true(res.max_close_ms <= 5000);
    assert_int_equal(livez_ok, livez_n);
}

struct newcomer {
    pthread_t thread;
    int port, delay_ms;
    struct raw_reply r;
    int rc;
};

static void *newcomer_main(void *arg)
{
    struct newcomer *c = arg;
    fault_sleep_ms(c->delay_ms);
    c->rc = raw_exchange(c->port, LIVEZ, strlen(LIVEZ), 1000, 0, &c->r);
    return NULL;
}

/* (b) 400 tricklers at --max-connections 300: 20 newcomers are answered
 * or closed within 1 s; once the tricklers are gone, clients are served. */
static void full_server_refuses_at_once(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(start_with(&srv, "2000", "300"), 0);
    struct trickler *t;
    assert_int_equal(trickler_start(&t, srv.port, 400, 1000, 8000), 0);
    for (int i = 0; i < 100 && trickler_open(t) < 300; i++)
        fault_sleep_ms(10);
    int open_at_start = trickler_open(t);

    struct newcomer c[20];
    for (int i = 0; i < 20; i++) {
        c[i] = (struct newcomer){ .port = srv.port, .delay_ms = 25 * i };
        assert_int_equal(pthread_create(&c[i].thread, NULL, newcomer_main, &c[i]), 0);
    }
    int answered = 0, closed = 0, hung = 0, failed = 0;
    double slowest = 0;
    for (int i = 0; i < 20; i++) {
        pthread_join(c[i].thread, NULL);
        if (c[i].rc != 0)
            failed++;
        else if (c[i].r.complete)
            answered++;
        else if (c[i].r.closed)
            closed++;
        else
            hung++;
        if (c[i].rc == 0 && c[i].r.ms > slowest)
            slowest = c[i].r.ms;
        raw_reply_free(&c[i].r);
    }
    struct trickler_result res;
    trickler_join(t, &res);
    struct raw_reply after;
    int after_rc = raw_exchange(srv.port, LIVEZ, strlen(LIVEZ), 1000, 0, &after);
    int after_status = after_rc == 0 ? after.status : -1;
    double after_ms = after.ms;
    raw_reply_free(&after);
    fprintf(stderr,
            "max-connections 300, 400 tricklers (%d open when the newcomers came): "
            "newcomers answered %d, closed %d, hung %d, connect failed %d, slowest %.0f ms; "
            "tricklers closed by the server %d, still open after 8 s %d (max close %.0f ms); "
            "afterwards /livez %d in %.0f ms\n",
            open_at_start, answered, closed, hung, failed, slowest, res.closed, res.still_open,
            res.max_close_ms, after_status, after_ms);
    long long rows = untouched(&srv);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_int_equal(rows, 0);

    assert_true(open_at_start >= 300);
    assert_int_equal(hung, 0);
    assert_int_equal(failed, 0);
    assert_int_equal(answered + closed, 20);
    assert_int_equal(res.still_open, 0); /* reaped by the read timeout */
    assert_true(res.max_close_ms <= 5000);
    assert_int_equal(after_status, 200);
}

int main(void)
{
    fault_raise_fd_limit();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(trickling_headers_are_cut_off, fault_teardown),
        cmocka_unit_test_teardown(full_server_refuses_at_once, fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
