/* What a newcomer sees when starting reservd: flags that are not flags,
 * --version, bad settings (exit 2, before anything is opened), a database
 * that does not answer (said at once, and where, without the password),
 * and log lines that carry the database and the error codes. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Run reservd with args (a shell word list) to completion; exit status,
 * stdout and stderr together in out. */
static int run_reservd(char *out, size_t outlen, const char *env, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s '%s' %s 2>&1", env ? env : "", test_binary("RESERVD_BIN"), args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void unknown_flags_say_unknown(void **state)
{
    (void)state;
    char out[4096];
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--bogus"), 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    assert_non_null(strstr(out, "reservd --help"));
    assert_null(strstr(out, "needs a value"));
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--bogus=1"), 2);
    assert_non_null(strstr(out, "unknown option '--bogus'"));
    /* a known flag without its value still says so */
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--port"), 2);
    assert_non_null(strstr(out, "--port needs a value"));
}

static void version(void **state)
{
    (void)state;
    char out[16384]; /* all of --help: a shorter read would end it with SIGPIPE */
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--version"), 0);
    assert_true(strncmp(out, "reservd ", 8) == 0);
    assert_true(out[8] >= '0' && out[8] <= '9');
    assert_non_null(strchr(out + 8, '.'));
    const char *nl = strchr(out, '\n');
    assert_non_null(nl);
    assert_int_equal(nl + 1 - out, (long)strlen(out)); /* one line */
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--help"), 0);
    assert_non_null(strstr(out, "--version"));
}

/* Exit 2, naming the setting, before any database is tried (the URL given
 * would make it wait, then exit 1). */
static void every_bad_setting_exits_2(void **state)
{
    (void)state;
    char out[4096];
    const char *unreachable =
        "--db-wait-ms 60000 --database-url postgresql://nobody@127.0.0.1:1/none";
    char args[512];
    snprintf(args, sizeof(args), "--bind 999.1.1.1 %s", unreachable);
    assert_int_equal(run_reservd(out, sizeof(out), NULL, args), 2);
    assert_non_null(strstr(out, "--bind '999.1.1.1'"));
    assert_int_equal(run_reservd(out, sizeof(out), "RESERVD_BIND=localhost6", unreachable), 2);
    assert_non_null(strstr(out, "RESERVD_BIND"));
    assert_int_equal(run_reservd(out, sizeof(out), NULL, "--bind ::1 --port 0"), 2);
    /* a URL libpq cannot parse: named, but not echoed (it holds a password) */
    assert_int_equal(
        run_reservd(out, sizeof(out), NULL, "--database-url 'postgresql://bob:s3cret@[::1/db'"), 2);
    assert_non_null(strstr(out, "--database-url"));
    assert_null(strstr(out, "s3cret"));
    assert_int_equal(run_reservd(out, sizeof(out), "DATABASE_URL='host=x nonsense=1'", ""), 2);
    assert_non_null(strstr(out, "DATABASE_URL"));
}

/* Milliseconds since start. */
static long ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)((now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000);
}

static void slurp(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void waiting_for_the_database_is_said_at_once(void **state)
{
    (void)state;
    char log_path[] = "/tmp/reservd-startup-XXXXXX";
    int fd = mkstemp(log_path);
    assert_true(fd >= 0);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        const char *bin = test_binary("RESERVD_BIN");
        execl(bin, bin, "--db-wait-ms", "3000", "--database-url",
              "postgresql://bob:s3cret@127.0.0.1:1/tickets", (char *)NULL);
        _exit(127);
    }
    close(fd);
    char out[8192];
    /* well before db-wait-ms runs out, the wait is in the log */
    while (ms_since(&start) < 1500) {
        slurp(log_path, out, sizeof(out));
        if (strstr(out, "waiting for PostgreSQL"))
            break;
        usleep(20 * 1000);
    }
    assert_non_null(strstr(out, "waiting for PostgreSQL at 127.0.0.1:1 (db-wait-ms 3000)"));
    assert_true(ms_since(&start) < 1500);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    slurp(log_path, out, sizeof(out));
    unlink(log_path);
    assert_non_null(
        strstr(out, "cannot connect to PostgreSQL at postgresql://bob@127.0.0.1:1/tickets"));
    assert_non_null(strstr(out, "scripts/run.sh"));
    assert_null(strstr(out, "s3cret"));
    /* libpq's two-line message stays readable, on the line it belongs to */
    assert_null(strstr(out, "??"));
    const char *hint = strstr(out, "Is the server running");
    assert_non_null(hint);
    const char *line = hint;
    while (line > out && line[-1] != '\n')
        line--;
    assert_true(strstr(line, "Connection refused") < hint);
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2); /* the wait, the failure */
}

/* The log of a server that answered a few requests, after it stopped. */
static void serve_and_log(const char *const *args, char *out, size_t len, struct test_server *srv)
{
    assert_int_equal(test_server_start(srv, args), 0);
    const char *ada = "{\"name\":\"Ada\",\"email\":\"ada@example.com\"}";
    struct http_result r;
    r = test_call(srv->port, "POST", "/users", ada, 201);
    http_result_free(&r);
    r = test_call(srv->port, "POST", "/users", ada, 409);
    http_result_free(&r);
    r = test_call(srv->port, "GET", "/users/987654", NULL, 404);
    http_result_free(&r);
    char log_path[sizeof(srv->log_path)];
    memcpy(log_path, srv->log_path, sizeof(log_path));
    assert_int_equal(test_server_kill(srv, SIGTERM), 0);
    slurp(log_path, out, len);
}

static void request_lines_carry_the_error_code(void **state)
{
    (void)state;
    struct test_server srv;
    char out[16384];
    const char *args[] = { "--log-level", "info", NULL };
    serve_and_log(args, out, sizeof(out), &srv);
    assert_non_null(strstr(out, " POST /users 409 email_taken "));
    assert_non_null(strstr(out, " GET /users/987654 404 user_not_found "));
    const char *ok = strstr(out, " POST /users 201 ");
    assert_non_null(ok);
    ok += strlen(" POST /users 201 ");
    assert_true(*ok >= '0' && *ok <= '9'); /* the duration: no code on a success */
    /* the start-up line names the database, not its password */
    const char *listening = strstr(out, "reservd listening on 127.0.0.1:");
    assert_non_null(listening);
    const char *db = strstr(listening, "(database 127.0.0.1:");
    assert_non_null(db);
    char tail[96];
    snprintf(tail, sizeof(tail), "/%s, http threads", srv.dbname);
    assert_non_null(strstr(db, tail));
    assert_true(strstr(db, tail) < strchr(listening, '\n'));
    test_server_stop(&srv);
}

static void json_request_lines_carry_the_error_code(void **state)
{
    (void)state;
    struct test_server srv;
    char out[16384];
    const char *args[] = { "--log-level", "info", "--log-format", "json", NULL };
    serve_and_log(args, out, sizeof(out), &srv);
    int with_code = 0, without = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *obj = json_loads(line, 0, NULL);
        assert_non_null(obj);
        const char *path = json_string_value(json_object_get(obj, "path"));
        if (path && strcmp(path, "/users") == 0) {
            json_int_t status = json_integer_value(json_object_get(obj, "status"));
            const char *code = json_string_value(json_object_get(obj, "error"));
            if (status == 409) {
                assert_string_equal(code, "email_taken");
                with_code++;
            } else {
                assert_int_equal(status, 201);
                assert_null(json_object_get(obj, "error"));
                without++;
            }
        }
        json_decref(obj);
    }
    assert_int_equal(with_code, 1);
    assert_int_equal(without, 1);
    test_server_stop(&srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unknown_flags_say_unknown),
        cmocka_unit_test(version),
        cmocka_unit_test(every_bad_setting_exits_2),
        cmocka_unit_test(waiting_for_the_database_is_said_at_once),
        cmocka_unit_test(request_lines_carry_the_error_code),
        cmocka_unit_test(json_request_lines_carry_the_error_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
