/* Integration-test support; see harness.h. */

#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *test_admin_token(void)
{
    static char token[64];
    if (!token[0]) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snprintf(token, sizeof(token), "rsv_admin_test_%d_%lx", (int)getpid(),
                 (unsigned long)now.tv_nsec);
        /* inherited by every reservd and reservd-load a test starts, the
         * harness's or its own */
        setenv("RESERVD_ADMIN_TOKENS", token, 1);
        setenv("RESERVD_TOKEN", token, 1);
    }
    return token;
}

static const char *admin_url(void)
{
    const char *url = getenv("RESERVD_TEST_ADMIN_URL");
    if (!url || !*url) {
        fprintf(stderr, "RESERVD_TEST_ADMIN_URL is not set: run the suite with scripts/test.sh\n");
        return NULL;
    }
    return url;
}

const char *test_binary(const char *env_name)
{
    const char *p = getenv(env_name);
    if (!p || !*p) {
        fprintf(stderr, "%s is not set (ctest sets it)\n", env_name);
        exit(1);
    }
    return p;
}

FILE *test_load_start(int port, const char *args)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof(cmd), "'%s' %s --json --url http://127.0.0.1:%d",
                     test_binary("RESERVD_LOAD_BIN"), args, port);
    assert_true(n > 0 && (size_t)n < sizeof(cmd));
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    return p;
}

/* The counts first, on one line, then the whole report: a CI log that
 * keeps only part of the output still says what went wrong. */
static void report_failure(json_t *rep, int rc, const char *text)
{
    const char *parts[] = { "status", "transport_error_kinds", "errors", "expect_status" };
    fprintf(stderr, "reservd-load exit %d:", rc);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        char *s = json_dumps(json_object_get(rep, parts[i]), JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, " %s %s", parts[i], s ? s : "-");
        free(s);
    }
    fprintf(stderr, "\n%s\n", text);
}

json_t *test_load_finish(FILE *p, int *rc)
{
    char *text = NULL, buf[4096];
    size_t len = 0, n;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(mem);
    int status = pclose(p);
    *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    json_error_t err;
    json_t *rep = json_loads(text, 0, &err);
    if (!rep)
        fprintf(stderr, "reservd-load printed no JSON (exit %d): %s\n%s\n", *rc, err.text, text);
    else if (*rc != 0)
        report_failure(rep, *rc, text);
    free(text);
    assert_non_null(rep);
    return rep;
}

static int admin_exec(const char *sql)
{
    const char *url = admin_url();
    if (!url)
        return -1;
    PGconn *db = PQconnectdb(url);
    int ok = PQstatus(db) == CONNECTION_OK;
    if (ok) {
        PGresult *res = PQexec(db, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "admin: %s", PQresultErrorMessage(res));
        PQclear(res);
    } else {
        fprintf(stderr, "admin connect: %s", PQerrorMessage(db));
    }
    PQfinish(db);
    return ok ? 0 : -1;
}

/* The fresh database's URL: the admin URL with its path replaced. */
static int database_url(const char *dbname, char *out, size_t len)
{
    const char *url = admin_url();
    if (!url)
        return -1;
    const char *scheme = strstr(url, "://");
    const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
    size_t base = slash ? (size_t)(slash - url) : strlen(url);
    snprintf(out, len, "%.*s/%s", (int)base, url, dbname);
    return 0;
}

int test_database_create(struct test_server *srv)
{
    static int seq;
    char sql[128];
    test_admin_token(); /* in the environment before any server starts */
    memset(srv, 0, sizeof(*srv));
    snprintf(srv->dbname, sizeof(srv->dbname), "reservd_test_%d_%d", (int)getpid(), ++seq);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", srv->dbname);
    admin_exec(sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", srv->dbname);
    if (admin_exec(sql) != 0 || database_url(srv->dbname, srv->url, sizeof(srv->url)) != 0)
        return -1;
    return 0;
}

int test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

static void dump_log(const struct test_server *srv)
{
    FILE *f = fopen(srv->log_path, "r");
    char line[1024];
    if (!f)
        return;
    fprintf(stderr, "--- reservd log (%s) ---\n", srv->log_path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

static int start_once(struct test_server *srv, const char *const *extra_args);

int test_server_restart(struct test_server *srv, const char *const *extra_args)
{
    /* A free port can be taken between our check and reservd's bind: on a
     * failed start, try again on another port. */
    int keep_port = srv->port;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (start_once(srv, extra_args) == 0)
            return 0;
        if (keep_port)
            break; /* the caller asked for this port */
        srv->port = 0;
    }
    return -1;
}

static int start_once(struct test_server *srv, const char *const *extra_args)
{
    const char *bin = test_binary("RESERVD_BIN");
    char port[16];
    if (!srv->port)
        srv->port = test_free_port();
    snprintf(port, sizeof(port), "%d", srv->port);
    if (!srv->log_path[0]) /* test_server_start_url names its own */
        snprintf(srv->log_path, sizeof(srv->log_path), "%s.log", srv->dbname);

    const char *argv[40] = { bin,      "--bind",      "127.0.0.1", "--port", port, "--database-url",
                             srv->url, "--log-level", "warn" };
    int argc = 9;
    for (int i = 0; extra_args && extra_args[i] && argc < 39; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;

    test_admin_token(); /* RESERVD_ADMIN_TOKENS, inherited */
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(srv->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
        }
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    srv->pid = pid;
    /* Ready when /livez answers; fail fast if the process died. */
    for (int i = 0; i < 300; i++) {
        struct http_result r;
        if (http_call(srv->port, "GET", "/livez", NULL, NULL, &r) == 0) {
            int ok = r.status == 200;
            http_result_free(&r);
            if (ok)
                return 0;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "reservd exited during start-up\n");
            dump_log(srv);
            srv->pid = 0;
            return -1;
        }
        struct timespec pause = { 0, 20 * 1000000L };
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "reservd did not become live\n");
    dump_log(srv);
    return -1;
}

int test_server_start(struct test_server *srv, const char *const *extra_args)
{
    if (test_database_create(srv) != 0)
        return -1;
    return test_server_restart(srv, extra_args);
}

int test_server_start_url(struct test_server *srv, const char *url, const char *tag,
                          const char *const *extra_args)
{
    memset(srv, 0, sizeof(*srv));
    snprintf(srv->dbname, sizeof(srv->dbname), "%s", tag);
    snprintf(srv->url, sizeof(srv->url), "%s", url);
    snprintf(srv->log_path, sizeof(srv->log_path), "%s.%d.log", tag, (int)getpid());
    return test_server_restart(srv, extra_args);
}

int test_server_wait(struct test_server *srv, int timeout_ms, int *status)
{
    struct timespec pause = { 0, 10 * 1000000L };
    for (int waited = 0; srv->pid > 0; waited += 10) {
        pid_t r = waitpid(srv->pid, status, WNOHANG);
        if (r == srv->pid || r < 0) {
            if (r < 0)
                *status = -1;
            srv->pid = 0;
            if (*status != 0)
                dump_log(srv);
            return 0;
        }
        if (waited >= timeout_ms)
            return -1;
        nanosleep(&pause, NULL);
    }
    *status = 0; /* no process: already reaped and checked */
    return 0;
}

int test_server_kill(struct test_server *srv, int sig)
{
    int status = 0; /* no process left: already reaped and checked */
    if (srv->pid > 0) {
        kill(srv->pid, sig);
        if (waitpid(srv->pid, &status, 0) != srv->pid)
            status = -1;
        srv->pid = 0;
    }
    if (status != 0)
        dump_log(srv);
    return status;
}

int test_server_stop(struct test_server *srv)
{
    int status = test_server_kill(srv, SIGTERM);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", srv->dbname);
    admin_exec(sql);
    if (status == 0)
        unlink(srv->log_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

PGconn *test_db_connect(const struct test_server *srv)
{
    PGconn *db = PQconnectdb(srv->url);
    if (PQstatus(db) != CONNECTION_OK)
        fprintf(stderr, "test db: %s", PQerrorMessage(db));
    return db;
}

long long test_db_scalar(PGconn *db, const char *sql)
{
    PGresult *res = PQexec(db, sql);
    long long v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    else if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fprintf(stderr, "test db: %s", PQresultErrorMessage(res));
    PQclear(res);
    return v;
}

/* fmt formatted into new memory (caller frees); NULL if out of memory. */
static char *vformat(const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    char *out = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (out)
        vsnprintf(out, (size_t)n + 1, fmt, again);
    va_end(again);
    return out;
}

long long test_scalar(PGconn *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = vformat(fmt, ap);
    va_end(ap);
    assert_non_null(sql);
    long long v = test_db_scalar(db, sql);
    free(sql);
    return v;
}

long long test_seed_users(PGconn *db, const char *prefix, long long n)
{
    long long first = test_scalar(db, "SELECT coalesce(max(id), 0) + 1 FROM users");
    assert_int_equal(test_scalar(db,
                                 "WITH ins AS (INSERT INTO users (id, name, email) "
                                 "SELECT %lld + g - 1, '%s' || g, '%s' || g || '@example.com' "
                                 "FROM generate_series(1, %lld) g RETURNING 1) "
                                 "SELECT count(*) FROM ins",
                                 first, prefix, prefix, n),
                     n);
    test_scalar(
        db, "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))");
    return first;
}

long long test_seed_event(PGconn *db, const char *name, long long tickets, int max_per_user,
                          int hold_seconds, int offer_seconds)
{
    char cols[96] = "", vals[96] = "";
    const char *names[] = { "max_per_user", "hold_seconds", "offer_seconds" };
    const int values[] = { max_per_user, hold_seconds, offer_seconds };
    for (int i = 0; i < 3; i++) {
        if (values[i] <= 0)
            continue;
        snprintf(cols + strlen(cols), sizeof(cols) - strlen(cols), ", %s", names[i]);
        snprintf(vals + strlen(vals), sizeof(vals) - strlen(vals), ", %d", values[i]);
    }
    long long id = test_scalar(db,
                               "INSERT INTO events (name, date, location, max_tickets%s) "
                               "VALUES ('%s', now() + interval '30 days', 'Hall', %lld%s) "
                               "RETURNING id",
                               cols, name, tickets, vals);
    assert_true(id > 0);
    return id;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int call(int port, const char *method, const char *path, const char *auth,
                const char *extra_headers, const char *content_type, const char *body,
                size_t body_len, struct http_result *out);

int http_call_headers(int port, const char *method, const char *path, const char *extra_headers,
                      const char *content_type, const char *body, size_t body_len,
                      struct http_result *out)
{
    char auth[128] = "";
    if (!extra_headers || !strcasestr(extra_headers, "Authorization:"))
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", test_admin_token());
    return call(port, method, path, auth, extra_headers, content_type, body, body_len, out);
}

int http_call_as(int port, const char *method, const char *path, const char *token,
                 const char *extra_headers, const char *body, struct http_result *out)
{
    char auth[1100] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    return call(port, method, path, auth, extra_headers, NULL, body, body ? strlen(body) : 0, out);
}

static int call(int port, const char *method, const char *path, const char *auth,
                const char *extra_headers, const char *content_type, const char *body,
                size_t body_len, struct http_result *out)
{
    memset(out, 0, sizeof(*out));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct timeval tv = { 30, 0 };
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    char head[4096];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s", method, path,
                     auth, extra_headers ? extra_headers : "");
    if (body)
        n += snprintf(head + n, sizeof(head) - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %zu\r\n",
                      content_type ? content_type : "application/json", body_len);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (write_all(fd, head, (size_t)n) != 0 || (body && write_all(fd, body, body_len) != 0)) {
        /* The server may answer (413) and close before reading all. */
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        return -1;
    }
    size_t hlen = (size_t)(end - buf);
    snprintf(out->headers, sizeof(out->headers), "%.*s", (int)hlen, buf);
    out->body = strdup(end + 4);
    free(buf);
    out->json = json_loads(out->body, 0, NULL);
    return 0;
}

int http_call(int port, const char *method, const char *path, const char *content_type,
              const char *body, struct http_result *out)
{
    return http_call_headers(port, method, path, NULL, content_type, body, body ? strlen(body) : 0,
                             out);
}

void http_result_free(struct http_result *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

const char *http_result_header(const struct http_result *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = strstr(r->headers, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t vlen = strcspn(h, "\r\n");
            snprintf(buf, len, "%.*s", (int)vlen, h);
            return buf;
        }
    }
    return NULL;
}

const char *http_error_code(const struct http_result *r)
{
    const char *code =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return code ? code : "";
}

long long test_metric(int port, const char *name)
{
    struct http_result r;
    if (http_call(port, "GET", "/metrics", NULL, NULL, &r) != 0)
        return -1;
    char pattern[160];
    snprintf(pattern, sizeof(pattern), "\n%s ", name);
    const char *at = r.status == 200 && r.body ? strstr(r.body, pattern) : NULL;
    long long v = at ? atoll(at + strlen(pattern)) : -1;
    http_result_free(&r);
    return v;
}

long long http_json_int(const struct http_result *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

int fixture_start(void **state, const char *const *args)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f || test_server_start(&f->srv, args) != 0) {
        free(f);
        return -1;
    }
    f->db = test_db_connect(&f->srv);
    *state = f;
    return PQstatus(f->db) == CONNECTION_OK ? 0 : -1;
}

int fixture_stop(void **state)
{
    struct fixture *f = *state;
    PQfinish(f->db);
    int rc = test_server_stop(&f->srv);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void *background_main(void *arg)
{
    struct background_call *c = arg;
    struct http_result r;
    if (c->start)
        pthread_barrier_wait(c->start);
    c->status = -1;
    if (http_call(c->port, c->method, c->path, NULL, c->body[0] ? c->body : NULL, &r) == 0) {
        c->status = r.status;
        snprintf(c->code, sizeof(c->code), "%s", http_error_code(&r));
        c->id = http_json_int(&r, "id");
    }
    http_result_free(&r);
    return NULL;
}

int background_call_start(struct background_call *c)
{
    return pthread_create(&c->thread, NULL, background_main, c) == 0 ? 0 : -1;
}

void background_call_join(struct background_call *c)
{
    pthread_join(c->thread, NULL);
}

struct http_result test_call(int port, const char *method, const char *path, const char *body,
                             int status)
{
    struct http_result r;
    assert_int_equal(http_call(port, method, path, NULL, body, &r), 0);
    if (r.status != status)
        fprintf(stderr, "%s %s %s -> %d %s\n", method, path, body ? body : "", r.status, r.body);
    assert_int_equal(r.status, status);
    char type[128];
    assert_non_null(http_result_header(&r, "Content-Type", type, sizeof(type)));
    if (strcmp(path, "/metrics") != 0 && strcmp(path, "/api") != 0)
        assert_string_equal(type, "application/json; charset=utf-8");
    return r;
}

struct http_result test_callf(int port, const char *method, const char *path, int status,
                              const char *fmt, ...)
{
    char *body = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        body = vformat(fmt, ap);
        va_end(ap);
        assert_non_null(body);
    }
    struct http_result r = test_call(port, method, path, body, status);
    free(body);
    return r;
}

const char *test_json_str(const struct http_result *r, const char *key)
{
    return json_string_value(json_object_get(r->json, key));
}

double test_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void test_sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&t, NULL);
}

void test_expect_error(int port, const char *method, const char *path, const char *body, int status,
                       const char *code)
{
    struct http_result r = test_call(port, method, path, body, status);
    assert_string_equal(http_error_code(&r), code);
    json_t *msg = json_object_get(json_object_get(r.json, "error"), "message");
    assert_true(json_is_string(msg) && json_string_length(msg) > 0);
    http_result_free(&r);
}
