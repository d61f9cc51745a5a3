/* Start-up, configuration errors, shutdown, and surviving the database
 * going away: the server process as an operator sees it. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Run reservd with args to completion; returns exit status, output in out. */
static int run_reservd(char *out, size_t outlen, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", test_binary("RESERVD_BIN"), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void help_lists_every_setting(void **state)
{
    (void)state;
    char out[16384];
    assert_int_equal(run_reservd(out, sizeof(out), "--help"), 0);
    const char *expect[] = { "--port",       "SERVICE_PORT", "--database-url",
                             "DATABASE_URL", "--pool-size",  "--http-threads",
                             "--log-level",  "--env-file",   "--reservation-strategy",
                             "default 3001" };
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_non_null(strstr(out, expect[i]));
}

static void bad_settings_stop_the_start(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(run_reservd(out, sizeof(out), "--port 0"), 2);
    assert_non_null(strstr(out, "--port"));
    assert_int_equal(run_reservd(out, sizeof(out), "--pool-size many"), 2);
    assert_non_null(strstr(out, "--pool-size"));
    assert_int_equal(run_reservd(out, sizeof(out), "--reservation-strategy unsafe"), 2);
    assert_non_null(strstr(out, "oversell"));
    assert_int_equal(run_reservd(out, sizeof(out), "--bogus"), 2);
    assert_int_equal(run_reservd(out, sizeof(out), "--env-file /nonexistent.env"), 2);
    /* a database that is not there: exit 1 with the reason */
    assert_int_equal(run_reservd(out, sizeof(out),
                                 "--db-wait-ms 0 --database-url "
                                 "postgresql://nobody@127.0.0.1:1/none"),
                     1);
    assert_non_null(strstr(out, "DATABASE_URL"));
    assert_int_equal(run_reservd(out, sizeof(out),
                                 "--db-wait-ms 0 --bind 999.1.1.1 "
                                 "--database-url postgresql://nobody@127.0.0.1:1/none"),
                     2);
}

/* SIGTERM while a request waits on the database: it is answered, the
 * reservation is committed, the process exits 0. */
static void sigterm_finishes_in_flight_requests(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(test_server_start(&srv, NULL), 0);
    PGconn *db = test_db_connect(&srv);
    long long user = test_db_scalar(
        db, "INSERT INTO users (name, email) VALUES ('T', 't@example.com') RETURNING id");
    long long ev = test_db_scalar(db, "INSERT INTO events (name, date, location, max_tickets) "
                                      "VALUES ('Term', now(), 'X', 3) RETURNING id");
    PQclear(PQexec(db, "BEGIN"));
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT 1 FROM events WHERE id = %lld FOR UPDATE", ev);
    PQclear(PQexec(db, sql));

    struct background_call p = { .port = srv.port, .method = "POST", .path = "/reservations" };
    snprintf(p.body, sizeof(p.body), "{\"eventId\":%lld,\"userId\":%lld}", ev, user);
    assert_int_equal(background_call_start(&p), 0);
    struct timespec pause = { 0, 300 * 1000000L };
    nanosleep(&pause, NULL); /* the request now waits on our lock */
    kill(srv.pid, SIGTERM);
    nanosleep(&pause, NULL);
    PQclear(PQexec(db, "COMMIT")); /* let it through */
    background_call_join(&p);
    assert_int_equal(p.status, 201);
    snprintf(sql, sizeof(sql), "SELECT reserved_tickets FROM events WHERE id = %lld", ev);
    assert_int_equal(test_db_scalar(db, sql), 1);
    PQfinish(db);
    assert_int_equal(test_server_stop(&srv), 0); /* exit status of the SIGTERM */
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* GET /readyz on a new connection: its status (-1: no answer), its error
 * code in code ("" for none). */
static int readyz(int port, char *code, size_t len)
{
    struct http_result r;
    int status = http_call(port, "GET", "/readyz", NULL, NULL, &r) == 0 ? r.status : -1;
    snprintf(code, len, "%s", status > 0 ? http_error_code(&r) : "");
    http_result_free(&r);
    return status;
}

#define DRAIN_DELAY_MS 1500

/* --drain-delay-ms: on SIGTERM /readyz answers 503 draining at once, for a
 * load balancer to take the instance out, while new connections are still
 * accepted and every route served (a reservation is granted); then the
 * usual shutdown, and exit 0. */
static void drain_delay_keeps_serving_while_not_ready(void **state)
{
    (void)state;
    struct test_server srv;
    const char *args[] = { "--drain-delay-ms", "1500", NULL };
    assert_int_equal(test_server_start(&srv, args), 0);
    PGconn *db = test_db_connect(&srv);
    long long user = test_db_scalar(
        db, "INSERT INTO users (name, email) VALUES ('D', 'd@example.com') RETURNING id");
    long long ev = test_db_scalar(db, "INSERT INTO events (name, date, location, max_tickets) "
                                      "VALUES ('Drain', now(), 'X', 3) RETURNING id");
    char code[32];
    assert_int_equal(readyz(srv.port, code, sizeof(code)), 200);

    double t0 = now_ms();
    kill(srv.pid, SIGTERM);
    int status = 0;
    double first_503 = -1;
    while (now_ms() - t0 < 1000) {
        status = readyz(srv.port, code, sizeof(code));
        if (status == 503) {
            first_503 = now_ms() - t0;
            break;
        }
        assert_int_equal(status, 200); /* until the signal is seen */
        struct timespec pause = { 0, 5 * 1000000L };
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "drain delay: /readyz 503 %.0f ms after SIGTERM\n", first_503);
    assert_true(first_503 >= 0 && first_503 <= 100);
    assert_string_equal(code, "draining");
    struct http_result r = test_call(srv.port, "GET", "/readyz", NULL, 503); /* its content type */
    http_result_free(&r);

    /* meanwhile, new connections are served as before */
    r = test_call(srv.port, "GET", "/livez", NULL, 200);
    http_result_free(&r);
    char body[128];
    snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", ev, user);
    r = test_call(srv.port, "POST", "/reservations", body, 201);
    long long id = http_json_int(&r, "id");
    http_result_free(&r);
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM reservations WHERE id = %lld AND status = 'RESERVED'", id);
    assert_int_equal(test_db_scalar(db, sql), 1);
    assert_int_equal(readyz(srv.port, code, sizeof(code)), 503);
    double served = now_ms() - t0;
    fprintf(stderr, "drain delay: /livez 200, POST /reservations 201 by %.0f ms\n", served);
    assert_true(served < DRAIN_DELAY_MS - 200);               /* all within the delay */
    assert_int_equal(test_server_wait(&srv, 0, &status), -1); /* still running */

    assert_int_equal(test_server_wait(&srv, DRAIN_DELAY_MS + 10000, &status), 0);
    double exited = now_ms() - t0;
    fprintf(stderr, "drain delay: exited %.0f ms after SIGTERM\n", exited);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(exited >= DRAIN_DELAY_MS);
    PQfinish(db);
    assert_int_equal(test_server_stop(&srv), 0); /* gone already: drops the database */
}

/* A second SIGTERM during the delay starts the shutdown at once. */
static void second_sigterm_cuts_the_drain_delay(void **state)
{
    (void)state;
    struct test_server srv;
    const char *args[] = { "--drain-delay-ms", "60000", NULL };
    assert_int_equal(test_server_start(&srv, args), 0);
    double t0 = now_ms();
    kill(srv.pid, SIGTERM);
    char code[32];
    int status = 0;
    while (readyz(srv.port, code, sizeof(code)) != 503 && now_ms() - t0 < 1000) {
        struct timespec pause = { 0, 5 * 1000000L };
        nanosleep(&pause, NULL);
    }
    assert_string_equal(code, "draining");
    kill(srv.pid, SIGTERM);
    assert_int_equal(test_server_wait(&srv, 5000, &status), 0);
    fprintf(stderr, "drain delay 60 s: exited %.0f ms after the first SIGTERM\n", now_ms() - t0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(test_server_stop(&srv), 0);
}

/* Without --drain-delay-ms the shutdown begins at once, as before: the
 * listener closes and the process exits within moments, with no window of
 * 503 draining while it still accepts. A request the listener took just
 * before it closed may get 503 (draining before the drain, shutting_down
 * after it), never anything else but 200. */
static void no_drain_delay_by_default(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(test_server_start(&srv, NULL), 0);
    double t0 = now_ms();
    kill(srv.pid, SIGTERM);
    int status = 0, ok = 0, refused = 0, none = 0;
    while (test_server_wait(&srv, 0, &status) != 0) {
        char code[32];
        int s = readyz(srv.port, code, sizeof(code));
        if (!(s == 200 || s == -1 ||
              (s == 503 && (!strcmp(code, "shutting_down") || !strcmp(code, "draining")))))
            fail_msg("/readyz answered %d %s while shutting down", s, code);
        ok += s == 200;
        refused += s == 503;
        none += s == -1;
        struct timespec pause = { 0, 1000000L };
        nanosleep(&pause, NULL);
    }
    double exited = now_ms() - t0;
    fprintf(stderr,
            "no drain delay: exited %.0f ms after SIGTERM (/readyz: %d x 200, %d x 503, %d "
            "without an answer)\n",
            exited, ok, refused, none);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(exited < 1000);
    assert_int_equal(test_server_stop(&srv), 0);
}

/* Connections killed under the server are replaced; an unreachable
 * database gives 503 unavailable and /readyz 503, never a hang. */
static void survives_database_failures(void **state)
{
    (void)state;
    struct test_server srv;
    assert_int_equal(test_server_start(&srv, NULL), 0);
    PGconn *admin = PQconnectdb(getenv("RESERVD_TEST_ADMIN_URL"));
    assert_int_equal(PQstatus(admin), CONNECTION_OK);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = '%s' AND application_name = 'reservd'",
             srv.dbname);

    struct http_result r;
    int created = 0;
    for (int round = 0; round < 3; round++) {
        assert_true(test_db_scalar(admin, sql) >= 0);
        /* the first request on a dead connection may fail with 503; the
         * pool replaces it and the next ones succeed */
        for (int i = 0; i < 20; i++) {
            char body[128];
            snprintf(body, sizeof(body), "{\"name\":\"R\",\"email\":\"r%d-%d@example.com\"}", round,
                     i);
            assert_int_equal(http_call(srv.port, "POST", "/users", NULL, body, &r), 0);
            assert_true(r.status == 201 || r.status == 503);
            if (r.status == 503)
                assert_string_equal(http_error_code(&r), "unavailable");
            created += r.status == 201;
            http_result_free(&r);
        }
    }
    assert_true(created >= 3 * 20 - 3 * 8); /* at most one failure per pooled connection */
    r = test_call(srv.port, "GET", "/readyz", NULL, 200);
    http_result_free(&r);

    /* refuse new connections and kill the current ones */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS false", srv.dbname);
    PQclear(PQexec(admin, sql));
    snprintf(sql, sizeof(sql),
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = '%s'",
             srv.dbname);
    test_db_scalar(admin, sql);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(http_call(srv.port, "GET", "/readyz", NULL, NULL, &r), 0);
        int status = r.status;
        http_result_free(&r);
        if (i > 0)
            assert_int_equal(status, 503);
    }
    r = test_call(srv.port, "GET", "/users/1", NULL, 503);
    assert_string_equal(http_error_code(&r), "unavailable");
    http_result_free(&r);
    r = test_call(srv.port, "GET", "/livez", NULL, 200); /* alive, just not ready */
    http_result_free(&r);

    snprintf(sql, sizeof(sql), "ALTER DATABASE %s WITH ALLOW_CONNECTIONS true", srv.dbname);
    PQclear(PQexec(admin, sql));
    r = test_call(srv.port, "GET", "/readyz", NULL, 200);
    http_result_free(&r);
    PQfinish(admin);
    assert_int_equal(test_server_stop(&srv), 0);
}

/* Several instances migrating one empty database at once all start. */
static void concurrent_migrations(void **state)
{
    (void)state;
    struct test_server base;
    assert_int_equal(test_database_create(&base), 0);
    const char *bin = test_binary("RESERVD_BIN");
    pid_t pids[3];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        ports[i] = test_free_port();
        pids[i] = fork();
        if (pids[i] == 0) {
            char port[16];
            snprintf(port, sizeof(port), "%d", ports[i]);
            execl(bin, bin, "--bind", "127.0.0.1", "--port", port, "--database-url", base.url,
                  "--log-level", "error", (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < 3; i++) {
        int live = 0;
        for (int tries = 0; tries < 500 && !live; tries++) {
            struct http_result r;
            if (http_call(ports[i], "GET", "/readyz", NULL, NULL, &r) == 0)
                live = r.status == 200;
            http_result_free(&r);
            struct timespec pause = { 0, 20 * 1000000L };
            if (!live)
                nanosleep(&pause, NULL);
        }
        assert_true(live);
    }
    for (int i = 0; i < 3; i++) {
        int status;
        kill(pids[i], SIGTERM);
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    PGconn *db = test_db_connect(&base);
    assert_int_equal(test_db_scalar(db, "SELECT count(*) FROM information_schema.tables "
                                        "WHERE table_name IN ('users','events','reservations')"),
                     3);
    PQfinish(db);
    test_server_stop(&base);
}

/* --log-format json: one object per line; request lines carry the fields. */
static void json_logs(void **state)
{
    (void)state;
    struct test_server srv;
    const char *args[] = { "--log-format", "json", "--log-level", "info", NULL };
    assert_int_equal(test_server_start(&srv, args), 0);
    struct http_result r;
    assert_int_equal(http_call_headers(srv.port, "GET", "/users/12345",
                                       "X-Request-Id: log-check-1\r\n", NULL, NULL, 0, &r),
                     0);
    assert_int_equal(r.status, 404);
    http_result_free(&r);
    /* a path longer than a log line is cut, and the line stays JSON */
    char long_path[1600] = "/";
    memset(long_path + 1, 'p', sizeof(long_path) - 2);
    long_path[sizeof(long_path) - 1] = '\0';
    r = test_call(srv.port, "GET", long_path, NULL, 404);
    http_result_free(&r);
    char log_path[sizeof(srv.log_path)];
    memcpy(log_path, srv.log_path, sizeof(log_path));
    assert_int_equal(test_server_kill(&srv, SIGTERM), 0);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[4096];
    int lines = 0, request_lines = 0;
    while (fgets(line, sizeof(line), f)) {
        json_error_t err;
        json_t *obj = json_loads(line, 0, &err);
        assert_non_null(obj); /* every line is JSON */
        assert_true(json_is_string(json_object_get(obj, "time")));
        assert_true(json_is_string(json_object_get(obj, "level")));
        assert_true(json_is_string(json_object_get(obj, "msg")));
        const char *id = json_string_value(json_object_get(obj, "request_id"));
        if (id && strcmp(id, "log-check-1") == 0) {
            request_lines++;
            assert_string_equal(json_string_value(json_object_get(obj, "method")), "GET");
            assert_string_equal(json_string_value(json_object_get(obj, "path")), "/users/12345");
            assert_int_equal(json_integer_value(json_object_get(obj, "status")), 404);
            assert_true(json_is_number(json_object_get(obj, "duration_ms")));
        }
        json_decref(obj);
        lines++;
    }
    fclose(f);
    assert_int_equal(request_lines, 1);
    assert_true(lines >= 4); /* start-up, two requests, shutdown */
    test_server_stop(&srv);
}

/* A client that sends half a request and stalls loses its slot. */
static void trickling_clients_time_out(void **state)
{
    (void)state;
    struct test_server srv;
    const char *args[] = { "--connection-timeout", "1", NULL };
    assert_int_equal(test_server_start(&srv, args), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)srv.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    const char *partial = "POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na";
    assert_true(send(fd, partial, strlen(partial), 0) > 0);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), 0); /* closed by the server: 0 */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(fd);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(n <= 0);
    assert_true(waited >= 0.5 && waited < 4.5);
    assert_int_equal(test_server_stop(&srv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(help_lists_every_setting),
        cmocka_unit_test(bad_settings_stop_the_start),
        cmocka_unit_test(sigterm_finishes_in_flight_requests),
        cmocka_unit_test(drain_delay_keeps_serving_while_not_ready),
        cmocka_unit_test(second_sigterm_cuts_the_drain_delay),
        cmocka_unit_test(no_drain_delay_by_default),
        cmocka_unit_test(survives_database_failures),
        cmocka_unit_test(concurrent_migrations),
        cmocka_unit_test(json_logs),
        cmocka_unit_test(trickling_clients_time_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
