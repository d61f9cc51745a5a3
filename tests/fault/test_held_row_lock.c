/* Another session holds an event's row lock while 2,000 reservations for
 * it arrive at once: each gets 503 busy by its deadline (acquire timeout
 * 2 s, well before the 5 s lock timeout), other routes keep answering
 * fast, and nothing changes. The old server answered after 10-15 s, and
 * under atomic the stuck requests starved every other route. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "strategies.h"

#define REQUESTS     2000
#define SLOWEST_MS   3500.0
#define PROBE_P99_MS 500.0
#define MIN_PROBES   50
#define MAX_PROBES   4096

struct prober {
    pthread_t thread;
    int port;
    long long user, other_event;
    atomic_int stop;
    int n, failed;
    double ms[MAX_PROBES];
};

/* GET /users/{id} and GET /events/{other} in turn, ~every 20 ms, until
 * told to stop and at least MIN_PROBES were made. */
static void *probe_main(void *arg)
{
    struct prober *p = arg;
    while (p->n < MAX_PROBES && (!atomic_load(&p->stop) || p->n < MIN_PROBES)) {
        char req[512];
        int len = snprintf(req, sizeof(req),
                           "GET /%s/%lld HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                           "Authorization: Bearer %s\r\n\r\n",
                           p->n % 2 ? "events" : "users", p->n % 2 ? p->other_event : p->user,
                           test_admin_token());
        struct raw_reply r;
        if (raw_exchange(p->port, req, (size_t)len, 10000, 0, &r) != 0 || r.status != 200)
            p->failed++;
        p->ms[p->n++] = r.ms;
        raw_reply_free(&r);
        fault_sleep_ms(20);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void held_lock(const char *strategy)
{
    const char *args[] = { "--reservation-strategy",
                           strategy,
                           "--lock-timeout-ms",
                           "5000",
                           "--acquire-timeout-ms",
                           "2000",
                           NULL };
    struct test_server srv;
    assert_int_equal(fault_server_start(&srv, args), 0);
    PGconn *db = test_db_connect(&srv), *holder = test_db_connect(&srv);
    long long first = fault_seed_users(db, "held", REQUESTS);
    long long ev = fault_seed_event(db, "Locked", 100000);
    long long other = fault_seed_event(db, "Open", 100);
    assert_true(first > 0 && ev > 0 && other > 0);
    long long users_before = fault_scalar(db, "SELECT count(*) FROM users");

    char ev_text[24];
    snprintf(ev_text, sizeof(ev_text), "%lld", ev);
    const char *params[] = { ev_text };
    PQclear(PQexec(holder, "BEGIN"));
    PGresult *res = PQexecParams(holder, "SELECT id FROM events WHERE id = $1 FOR UPDATE", 1, NULL,
                                 params, NULL, NULL, 0);
    assert_int_equal(PQntuples(res), 1);
    PQclear(res);

    struct prober *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->port = srv.port;
    p->user = first;
    p->other_event = other;
    struct fault_load load;
    assert_int_equal(fault_load_spawn(&load, srv.port, first, REQUESTS,
                                      "spike --timeout 60 --scenario reserve --event %lld", ev),
                     0);
    assert_int_equal(pthread_create(&p->thread, NULL, probe_main, p), 0);
    assert_int_equal(fault_load_wait(&load), 0);
    atomic_store(&p->stop, 1);
    pthread_join(p->thread, NULL);
    PQclear(PQexec(holder, "ROLLBACK")); /* release the lock */
    fault_sleep_ms(200);                 /* anything still queued would run now */

    qsort(p->ms, (size_t)p->n, sizeof(p->ms[0]), cmp_double);
    double probe_p99 = p->ms[(size_t)((p->n - 1) * 0.99)], probe_max = p->ms[p->n - 1];
    char label[64];
    snprintf(label, sizeof(label), "held lock %s", strategy);
    fault_report_print(label, &load);
    long long busy = fault_report_count(&load, "errors", "busy");
    long long s503 = fault_report_count(&load, "status", "503");
    double slowest = fault_report_latency(&load, "max");
    long long rows = fault_scalar(db, "SELECT count(*) FROM reservations");
    long long counter = fault_scalar(db, "SELECT reserved_tickets FROM events WHERE id = %lld", ev);
    long long users_after = fault_scalar(db, "SELECT count(*) FROM users");
    fprintf(stderr,
            "%s: %lld x 503 busy of %d, slowest answer %.0f ms; probes %d (%d failed), "
            "p99 %.1f ms, max %.1f ms; after release: %lld reservations, counter %lld\n",
            label, busy, REQUESTS, slowest, p->n, p->failed, probe_p99, probe_max, rows, counter);
    int probes = p->n, probe_failures = p->failed;
    free(p);
    fault_load_free(&load);
    PQfinish(holder);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_int_equal(s503, REQUESTS);
    assert_int_equal(busy, REQUESTS);
    assert_true(slowest <= SLOWEST_MS);
    assert_true(probes >= MIN_PROBES);
    assert_int_equal(probe_failures, 0);
    assert_true(probe_p99 <= PROBE_P99_MS);
    assert_int_equal(rows, 0); /* nothing changed */
    assert_int_equal(counter, 0);
    assert_int_equal(users_after, users_before);
}

/* *state holds the strategy's name (strategies.h). */
static void on_strategy(void **state)
{
    held_lock(*state);
}

int main(void)
{
    fault_raise_fd_limit(); /* 2,000 client connections at once */
    struct strategy_tests t = { 0 };
    strategy_tests_add(&t, "held_lock", on_strategy, NULL, fault_teardown, STRATEGIES_SAFE);
    return strategy_tests_run(&t, "held_row_lock");
}
