/* kill -9 of the PostgreSQL postmaster under reservation load, on a
 * throwaway cluster of this test's own: no acknowledged reservation is
 * lost, nothing is reserved that was not answered 201, the outage is
 * answered 503 unavailable/busy in JSON, and reservd serves again soon
 * after PostgreSQL is back, without being restarted. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"

#define USERS          150000
#define KILL_AFTER_MS  1500
#define DOWN_MS        1000
#define SERVE_AGAIN_MS 2000
/* keyed: every key is sent twice, so fewer of them */
#define KEYED_REQUESTS 20000

struct cluster {
    char dir[64]; /* temp dir: data/, log, socket */
    char bindir[256];
    int port;
    bool running;
};
static struct cluster pg;

/* Runs a PostgreSQL tool as the user that owns the cluster ('postgres'
 * when we are root: PostgreSQL refuses to run as root). */
static int pg_tool(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int pg_tool(const char *fmt, ...)
{
    char args[1024], cmd[1400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "%s%s/%s", geteuid() == 0 ? "runuser -u postgres -- " : "",
             pg.bindir, args);
    return system(cmd);
}

static int find_bindir(void)
{
    FILE *p = popen("pg_config --bindir 2>/dev/null || "
                    "ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1",
                    "r");
    if (!p)
        return -1;
    bool ok = fgets(pg.bindir, sizeof(pg.bindir), p) != NULL;
    pclose(p);
    pg.bindir[strcspn(pg.bindir, "\n")] = '\0';
    char initdb[300];
    snprintf(initdb, sizeof(initdb), "%s/initdb", pg.bindir);
    return ok && access(initdb, X_OK) == 0 ? 0 : -1;
}

/* A free port below the ephemeral range, so that no client socket can
 * take it while the postmaster is down. */
static int pick_port(void)
{
    for (int port = 26000 + getpid() % 5000, tries = 0; tries < 200; tries++, port++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    return -1;
}

static int cluster_start(void)
{
    return pg_tool("pg_ctl -D %s/data -l %s/log -w -t 60 start >>%s/pg_ctl.out 2>&1", pg.dir,
                   pg.dir, pg.dir);
}

static int cluster_setup(void **state)
{
    (void)state;
    snprintf(pg.dir, sizeof(pg.dir), "/tmp/reservd-fault-pg-XXXXXX");
    if (find_bindir() != 0 || !mkdtemp(pg.dir) || (pg.port = pick_port()) < 0) {
        fprintf(stderr, "postmaster_kill: no PostgreSQL binaries, temp dir or port\n");
        return -1;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw || chown(pg.dir, pw->pw_uid, pw->pw_gid) != 0)
            return -1;
    }
    if (pg_tool("initdb -D %s/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >/dev/null",
                pg.dir) != 0)
        return -1;
    char conf[128];
    snprintf(conf, sizeof(conf), "%s/data/postgresql.conf", pg.dir);
    FILE *f = fopen(conf, "a");
    if (!f)
        return -1;
    /* syncfs: crash recovery's first step, syncing the data directory
     * file by file, took ~3 s here */
    fprintf(f,
            "listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\n"
            "max_connections = 100\nrecovery_init_sync_method = syncfs\n",
            pg.port, pg.dir);
    fclose(f);
    if (cluster_start() != 0)
        return -1;
    pg.running = true;
    fprintf(stderr, "throwaway cluster on 127.0.0.1:%d in %s\n", pg.port, pg.dir);
    return 0;
}

static int cluster_teardown(void **state)
{
    (void)state;
    if (pg.running)
        pg_tool("pg_ctl -D %s/data -m immediate -w stop >/dev/null 2>&1", pg.dir);
    if (getenv("FAULT_KEEP_FILES")) {
        fprintf(stderr, "kept %s\n", pg.dir);
        return 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pg.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static pid_t postmaster_pid(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/data/postmaster.pid", pg.dir);
    FILE *f = fopen(path, "r");
    long pid = -1;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = -1;
        fclose(f);
    }
    return (pid_t)pid;
}

/* Processes still working in the data directory (backends orphaned by
 * the postmaster's death hold its shared memory until they notice). */
static int cluster_processes(void)
{
    char data[128], real_data[PATH_MAX];
    snprintf(data, sizeof(data), "%s/data", pg.dir);
    if (!realpath(data, real_data))
        return 0;
    DIR *proc = opendir("/proc");
    int n = 0;
    for (struct dirent *e; proc && (e = readdir(proc));) {
        char link[300], cwd[PATH_MAX];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(link, sizeof(link), "/proc/%s/cwd", e->d_name);
        ssize_t len = readlink(link, cwd, sizeof(cwd) - 1);
        if (len > 0) {
            cwd[len] = '\0';
            n += strcmp(cwd, real_data) == 0;
        }
    }
    if (proc)
        closedir(proc);
    return n;
}

static int admin_exec(const char *sql)
{
    char url[128];
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/postgres", pg.port);
    PGconn *c = PQconnectdb(url);
    PGresult *res = PQexec(c, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "throwaway cluster: %s", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return ok ? 0 : -1;
}

/* Wait until a reservation (user on probe_event) is granted again; ms
 * waited, or -1 after limit_ms. */
static double wait_serving(int port, long long probe_event, long long user, int limit_ms)
{
    char req[512], body[96];
    int bl = snprintf(body, sizeof(body), "{\"eventId\":%lld,\"userId\":%lld}", probe_event, user);
    int len = snprintf(req, sizeof(req),
                       "POST /reservations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Authorization: Bearer %s\r\n"
                       "Connection: close\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n%s",
                       test_admin_token(), bl, body);
    double t0 = fault_now_ms();
    while (fault_now_ms() - t0 < limit_ms) {
        struct raw_reply r;
        bool ok = raw_exchange(port, req, (size_t)len, 2000, 0, &r) == 0 && r.status == 201;
        raw_reply_free(&r);
        if (ok)
            return fault_now_ms() - t0;
        fault_sleep_ms(20);
    }
    return -1;
}

static void kill_postmaster_under_load(const char *strategy)
{
    char sql[128], url[160], dbname[32];
    snprintf(dbname, sizeof(dbname), "pm_%s", strategy[0] == 'f' ? "for_update" : strategy);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    assert_int_equal(admin_exec(sql), 0);
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/%s", pg.port, dbname);
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server srv, dbref = { .pid = 0 };
    snprintf(dbref.url, sizeof(dbref.url), "%s", url);
    assert_int_equal(fault_server_start_on(&srv, &dbref, "postmaster", args), 0);
    PGconn *db = PQconnectdb(url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    long long first = fault_seed_users(db, "pm", USERS + 1); /* the last one probes */
    long long ev = fault_seed_event(db, "Postmaster", 10000000);
    long long probe_ev = fault_seed_event(db, "Probe", 10);
    assert_true(first > 0 && ev > 0 && probe_ev > 0);
    /* crash recovery then replays only the load, not the seeding */
    assert_int_equal(admin_exec("CHECKPOINT"), 0);

    struct fault_load load;
    assert_int_equal(fault_load_spawn(&load, srv.port, first, USERS,
                                      "steady -c 64 -d 8 --timeout 30 --scenario reserve "
                                      "--event %lld",
                                      ev),
                     0);
    double t0 = fault_now_ms();
    fault_sleep_ms(KILL_AFTER_MS);
    pid_t pm = postmaster_pid();
    assert_true(pm > 0);
    assert_int_equal(kill(pm, SIGKILL), 0);
    pg.running = false;
    fault_sleep_ms(DOWN_MS);
    /* PostgreSQL will not start while its lock file names a live pid (a
     * zombie counts until init reaps it), nor while the old backends hold
     * its memory */
    for (int waited = 0; waited < 5000 && kill(pm, 0) == 0; waited += 10)
        fault_sleep_ms(10);
    for (int waited = 0; waited < 5000 && cluster_processes() > 0; waited += 10)
        fault_sleep_ms(10);
    int started = -1, attempts = 0;
    while (attempts < 10 && started != 0) {
        attempts++;
        started = cluster_start();
        if (started != 0)
            fault_sleep_ms(300);
    }
    assert_int_equal(started, 0);
    pg.running = true;
    double back_at = fault_now_ms() - t0;
    double ready_ms = wait_serving(srv.port, probe_ev, first + USERS, 10000);
    pid_t before = srv.pid;
    assert_int_equal(fault_load_wait(&load), 0);

    PQfinish(db);
    db = PQconnectdb(url); /* the old connection died with the postmaster */
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    char label[64];
    snprintf(label, sizeof(label), "postmaster kill %s", strategy);
    fault_report_print(label, &load);
    fprintf(stderr,
            "%s: postmaster killed at %d ms, back at %.0f ms (pg_ctl start attempts: %d); "
            "a reservation was granted again %.0f ms after that\n",
            label, KILL_AFTER_MS, back_at, attempts, ready_ms);
    struct fault_ledger led;
    struct fault_load *loads[] = { &load };
    assert_int_equal(fault_ledger_check(db, ev, first, USERS, loads, 1, label, &led), 0);
    long long s503 = fault_report_count(&load, "status", "503");
    long long unavailable = fault_report_count(&load, "errors", "unavailable");
    long long busy = fault_report_count(&load, "errors", "busy");
    fault_load_free(&load);
    PQfinish(db);
    bool same_process = srv.pid == before && srv.pid > 0;
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_true(same_process);
    assert_true(ready_ms >= 0 && ready_ms <= SERVE_AGAIN_MS);
    assert_true(fault_ledger_clean(&led));      /* every 201 in the database, nothing else */
    assert_true(s503 > 0);                      /* the outage was seen */
    assert_int_equal(s503, unavailable + busy); /* and answered in JSON, unavailable or busy */
    assert_int_equal(led.no_answer, 0);
    for (int s = 100; s < 600; s++)
        if (s != 201 && s != 503)
            assert_int_equal(led.answered[s], 0);
}

/* The same kill under a load whose every request carries an Idempotency-Key
 * (pm-<user>), then every key sent again: each key that got a 201 replays
 * exactly that reservation, each other key now gets one (its record, if its
 * grant committed unseen, or a fresh grant), and the database holds one
 * reservation per key, each with its record: none without, none twice. */
static void kill_postmaster_keyed(const char *strategy)
{
    char sql[128], url[160], dbname[32];
    snprintf(dbname, sizeof(dbname), "pmk_%s", strategy[0] == 'f' ? "for_update" : strategy);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    assert_int_equal(admin_exec(sql), 0);
    snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/%s", pg.port, dbname);
    const char *args[] = { "--reservation-strategy", strategy, NULL };
    struct test_server srv, dbref = { .pid = 0 };
    snprintf(dbref.url, sizeof(dbref.url), "%s", url);
    assert_int_equal(fault_server_start_on(&srv, &dbref, "postmaster-keyed", args), 0);
    PGconn *db = PQconnectdb(url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    long long first = fault_seed_users(db, "pmk", USERS + 1);
    long long ev = fault_seed_event(db, "Keyed", 10000000);
    long long probe_ev = fault_seed_event(db, "Probe", 10);
    assert_true(first > 0 && ev > 0 && probe_ev > 0);
    assert_int_equal(admin_exec("CHECKPOINT"), 0);

    struct fault_load load, again;
    assert_int_equal(fault_load_spawn(&load, srv.port, first, KEYED_REQUESTS,
                                      "steady -c 64 -d 5 --timeout 30 --scenario reserve "
                                      "--event %lld --idempotency-key pm-{i}",
                                      ev),
                     0);
    fault_sleep_ms(KILL_AFTER_MS);
    pid_t pm = postmaster_pid();
    assert_true(pm > 0);
    assert_int_equal(kill(pm, SIGKILL), 0);
    pg.running = false;
    fault_sleep_ms(DOWN_MS);
    for (int waited = 0; waited < 5000 && kill(pm, 0) == 0; waited += 10)
        fault_sleep_ms(10);
    for (int waited = 0; waited < 5000 && cluster_processes() > 0; waited += 10)
        fault_sleep_ms(10);
    int started = -1;
    for (int attempts = 0; attempts < 10 && started != 0; attempts++)
        if ((started = cluster_start()) != 0)
            fault_sleep_ms(300);
    assert_int_equal(started, 0);
    pg.running = true;
    assert_true(wait_serving(srv.port, probe_ev, first + USERS, 10000) >= 0);
    assert_int_equal(fault_load_wait(&load), 0);
    long long sent = 0;
    for (long long i = 0; i < KEYED_REQUESTS; i++)
        if (load.status[i] != -1)
            sent = i + 1;
    assert_true(sent > 0);
    /* every key again, the same requests */
    assert_int_equal(fault_load_spawn(&again, srv.port, first, sent,
                                      "steady -c 64 -d 60 --timeout 90 --scenario reserve "
                                      "--event %lld --idempotency-key pm-{i}",
                                      ev),
                     0);
    assert_int_equal(fault_load_wait(&again), 0);
    long long told = 0, replayed_same = 0, granted_now = 0, not_201 = 0;
    for (long long i = 0; i < sent; i++) {
        if (load.status[i] == 201) {
            told++;
            replayed_same += again.status[i] == 201 && again.id[i] == load.id[i];
        } else {
            granted_now += again.status[i] == 201;
        }
        not_201 += again.status[i] != 201;
    }
    PQfinish(db);
    db = PQconnectdb(url);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    char label[64];
    snprintf(label, sizeof(label), "postmaster kill keyed %s", strategy);
    fault_report_print(label, &load);
    fault_report_print("  the same keys again", &again);
    struct fault_ledger led;
    struct fault_load *loads[] = { &again };
    assert_int_equal(fault_ledger_check(db, ev, first, USERS, loads, 1, label, &led), 0);
    long long rows = fault_scalar(db,
                                  "SELECT count(*) FROM reservations WHERE event_id = %lld "
                                  "AND status = 'RESERVED'",
                                  ev);
    /* each reservation's record names it: id and user as the record's body says */
    long long with_record = fault_scalar(
        db,
        "WITH k AS MATERIALIZED (SELECT (body::json ->> 'id')::int8 AS id, "
        "(body::json ->> 'userId')::int8 AS user_id FROM idempotency_keys WHERE status = 201) "
        "SELECT count(*) FROM reservations r JOIN k ON k.id = r.id AND k.user_id = r.user_id "
        "WHERE r.event_id = %lld AND r.status = 'RESERVED'",
        ev);
    long long records =
        fault_scalar(db, "SELECT count(*) FROM idempotency_keys WHERE status = 201");
    long long s503 = fault_report_count(&load, "status", "503");
    fprintf(stderr,
            "%s: %lld keys sent, %lld told 201 (%lld replayed the same id), %lld others "
            "granted on the second pass, %lld not 201; %lld reservations, %lld with their "
            "record, %lld records\n",
            label, sent, told, replayed_same, granted_now, not_201, rows, with_record, records);
    fault_load_free(&load);
    fault_load_free(&again);
    PQfinish(db);
    assert_int_equal(fault_server_stop(&srv), 0);

    assert_true(s503 > 0);                 /* the outage was seen */
    assert_int_equal(replayed_same, told); /* every 201 replays exactly its reservation */
    assert_int_equal(not_201, 0);          /* and every key now owns one */
    assert_true(fault_ledger_clean(&led)); /* nothing in the database that was not answered */
    assert_int_equal(rows, sent);
    assert_int_equal(with_record, rows); /* no reservation without its record */
    assert_int_equal(records, rows);     /* no record without its reservation */
}

static void postmaster_kill_keyed_batch(void **state)
{
    (void)state;
    kill_postmaster_keyed("batch");
}

static void postmaster_kill_keyed_for_update(void **state)
{
    (void)state;
    kill_postmaster_keyed("for-update");
}

static void postmaster_kill_for_update(void **state)
{
    (void)state;
    kill_postmaster_under_load("for-update");
}

static void postmaster_kill_batch(void **state)
{
    (void)state;
    kill_postmaster_under_load("batch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(postmaster_kill_for_update, fault_teardown),
        cmocka_unit_test_teardown(postmaster_kill_batch, fault_teardown),
        cmocka_unit_test_teardown(postmaster_kill_keyed_for_update, fault_teardown),
        cmocka_unit_test_teardown(postmaster_kill_keyed_batch, fault_teardown),
    };
    return cmocka_run_group_tests(tests, cluster_setup, cluster_teardown);
}
