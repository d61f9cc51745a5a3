/* Configuration: defaults, environment, dotenv, flags, precedence, errors. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "reservation.h"

static const char *const *fake_env;

static const char *lookup(const char *name)
{
    for (int i = 0; fake_env && fake_env[i]; i += 2)
        if (strcmp(fake_env[i], name) == 0)
            return fake_env[i + 1];
    return NULL;
}

static enum config_result load(struct config *cfg, const char *const *env, int argc,
                               const char **argv, char *err)
{
    fake_env = env;
    return config_load(cfg, argc, (char **)argv, lookup, err, 256);
}

static void defaults(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd" };
    assert_int_equal(load(&cfg, NULL, 1, argv, err), CONFIG_OK);
    assert_int_equal(cfg.port, 3001);
    assert_string_equal(cfg.strategy, "for-update");
    assert_string_equal(cfg.log_level, "info");
    assert_true(cfg.pool_size >= 8);
    assert_true(cfg.max_connections >= 10000);
    assert_false(cfg.allow_oversell);
}

static void environment_and_flags(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *env[] = {
        "SERVICE_PORT", "4000", "DATABASE_URL", "host=/tmp dbname=x", "RESERVD_POOL_SIZE", "3", NULL
    };
    const char *argv[] = { "reservd", "--pool-size", "5", "--log-level=debug" };
    assert_int_equal(load(&cfg, env, 4, argv, err), CONFIG_OK);
    assert_int_equal(cfg.port, 4000);
    assert_string_equal(cfg.database_url, "host=/tmp dbname=x");
    assert_int_equal(cfg.pool_size, 5); /* flag beats environment */
    assert_string_equal(cfg.log_level, "debug");
}

static void bad_values_name_the_setting(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *env[] = { "SERVICE_PORT", "70000", NULL };
    const char *argv[] = { "reservd" };
    assert_int_equal(load(&cfg, env, 1, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "SERVICE_PORT"));

    const char *argv2[] = { "reservd", "--pool-size", "zero" };
    assert_int_equal(load(&cfg, NULL, 3, argv2, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--pool-size"));

    const char *argv3[] = { "reservd", "--reservation-strategy", "yolo" };
    assert_int_equal(load(&cfg, NULL, 3, argv3, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--reservation-strategy"));

    const char *argv4[] = { "reservd", "--no-such-thing", "1" };
    assert_int_equal(load(&cfg, NULL, 3, argv4, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "no-such-thing"));

    const char *argv5[] = { "reservd", "--port" };
    assert_int_equal(load(&cfg, NULL, 2, argv5, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--port needs a value"));

    const char *argv6[] = { "reservd", "--log-format", "xml" };
    assert_int_equal(load(&cfg, NULL, 3, argv6, err), CONFIG_ERROR);
}

static void unknown_flags_and_version(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd", "--bogus" };
    assert_int_equal(load(&cfg, NULL, 2, argv, err), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--bogus'");
    const char *argv2[] = { "reservd", "--bogus=3", "--port", "1" };
    assert_int_equal(load(&cfg, NULL, 4, argv2, err), CONFIG_ERROR);
    assert_string_equal(err, "unknown option '--bogus'");
    const char *argv3[] = { "reservd", "--port", "1", "--version" };
    assert_int_equal(load(&cfg, NULL, 4, argv3, err), CONFIG_EXIT_VERSION);
    assert_true(strlen(config_version()) >= 5 && strchr(config_version(), '.'));
    assert_string_not_equal(config_version(), "unknown");
}

static void addresses_and_urls_are_checked(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *good[] = { "0.0.0.0", "127.0.0.1", "::", "::1", "fe80::1" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        const char *argv[] = { "reservd", "--bind", good[i] };
        assert_int_equal(load(&cfg, NULL, 3, argv, err), CONFIG_OK);
        assert_string_equal(cfg.bind, good[i]);
    }
    const char *bad[] = { "999.1.1.1", "localhost", "1.2.3", "::g" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = { "reservd", "--bind", bad[i] };
        assert_int_equal(load(&cfg, NULL, 3, argv, err), CONFIG_ERROR);
        assert_non_null(strstr(err, "--bind"));
    }
    const char *env[] = { "RESERVD_BIND", "example.com", NULL };
    const char *argv[] = { "reservd" };
    assert_int_equal(load(&cfg, env, 1, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "RESERVD_BIND"));

    const char *argv2[] = { "reservd", "--database-url", "postgresql://bob:s3cret@[::1/db" };
    assert_int_equal(load(&cfg, NULL, 3, argv2, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--database-url"));
    assert_null(strstr(err, "s3cret"));
    const char *env2[] = { "DATABASE_URL", "host=/tmp dbname=x bogus=1", NULL };
    assert_int_equal(load(&cfg, env2, 1, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "DATABASE_URL"));
    const char *argv3[] = { "reservd", "--database-url",
                            "postgresql://bob:pw@db.internal:6432/app?sslmode=require" };
    assert_int_equal(load(&cfg, NULL, 3, argv3, err), CONFIG_OK);
}

static void unsafe_needs_acknowledgement(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd", "--reservation-strategy", "unsafe" };
    assert_int_equal(load(&cfg, NULL, 3, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "oversell"));
    const char *argv2[] = { "reservd", "--reservation-strategy", "unsafe",
                            "--i-understand-unsafe-oversells" };
    assert_int_equal(load(&cfg, NULL, 4, argv2, err), CONFIG_OK);
    assert_true(cfg.allow_oversell);
}

static void env_file(void **state)
{
    (void)state;
    char path[] = "/tmp/reservd-config-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("# like environments/.env.local\nSERVICE_PORT=3555\nENVIRONMENT=local\n"
          "export DATABASE_URL=\"postgresql://postgres:daphne@localhost:5432/postgres\"\n"
          "RESERVD_LOG_LEVEL='warn'\n\n",
          f);
    fclose(f);
    struct config cfg;
    char err[256];
    const char *env[] = { "RESERVD_LOG_LEVEL", "error", NULL };
    const char *argv[] = { "reservd", "--env-file", path };
    assert_int_equal(load(&cfg, env, 3, argv, err), CONFIG_OK);
    assert_int_equal(cfg.port, 3555);
    assert_string_equal(cfg.database_url, "postgresql://postgres:daphne@localhost:5432/postgres");
    assert_string_equal(cfg.log_level, "error"); /* environment beats the file */

    f = fopen(path, "w");
    fputs("SERVICE_PORT=abc\n", f);
    fclose(f);
    assert_int_equal(load(&cfg, NULL, 3, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "SERVICE_PORT"));
    f = fopen(path, "w");
    fputs("JUST A LINE\n", f);
    fclose(f);
    assert_int_equal(load(&cfg, NULL, 3, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, ":1"));
    unlink(path);
    const char *argv2[] = { "reservd", "--env-file", "/nonexistent/.env" };
    assert_int_equal(load(&cfg, NULL, 3, argv2, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "/nonexistent/.env"));
}

/* --db-prepared: on by default; off from the environment or a flag; nothing else. */
static void db_prepared(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd" };
    assert_int_equal(load(&cfg, NULL, 1, argv, err), CONFIG_OK);
    assert_string_equal(cfg.db_prepared, "on");
    const char *env[] = { "RESERVD_DB_PREPARED", "off", NULL };
    assert_int_equal(load(&cfg, env, 1, argv, err), CONFIG_OK);
    assert_string_equal(cfg.db_prepared, "off");
    const char *flag[] = { "reservd", "--db-prepared", "on" };
    assert_int_equal(load(&cfg, env, 3, flag, err), CONFIG_OK);
    assert_string_equal(cfg.db_prepared, "on"); /* flag beats environment */
    const char *bad[] = { "reservd", "--db-prepared=no" };
    assert_int_equal(load(&cfg, NULL, 2, bad, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "db-prepared"));
}

/* --drain-delay-ms: 0 (the shutdown starts at once) by default; 0 to 60000
 * from the environment or a flag; nothing else. */
static void drain_delay(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd" };
    assert_int_equal(load(&cfg, NULL, 1, argv, err), CONFIG_OK);
    assert_int_equal(cfg.drain_delay_ms, 0);
    const char *env[] = { "RESERVD_DRAIN_DELAY_MS", "2500", NULL };
    assert_int_equal(load(&cfg, env, 1, argv, err), CONFIG_OK);
    assert_int_equal(cfg.drain_delay_ms, 2500);
    const char *flag[] = { "reservd", "--drain-delay-ms", "60000" };
    assert_int_equal(load(&cfg, env, 3, flag, err), CONFIG_OK);
    assert_int_equal(cfg.drain_delay_ms, 60000); /* flag beats environment */
    const char *too_long[] = { "reservd", "--drain-delay-ms=60001" };
    assert_int_equal(load(&cfg, NULL, 2, too_long, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "--drain-delay-ms"));
    const char *bad_env[] = { "RESERVD_DRAIN_DELAY_MS", "-1", NULL };
    assert_int_equal(load(&cfg, bad_env, 1, argv, err), CONFIG_ERROR);
    assert_non_null(strstr(err, "RESERVD_DRAIN_DELAY_MS"));
}

static void help(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd", "--port", "1", "--help" };
    assert_int_equal(load(&cfg, NULL, 4, argv, err), CONFIG_EXIT_HELP);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    config_usage(out, "reservd", 2);
    fclose(out);
    assert_non_null(strstr(text, "--port N"));
    assert_non_null(strstr(text, "SERVICE_PORT, default 3001"));
    assert_non_null(strstr(text, "DATABASE_URL"));
    assert_non_null(strstr(text, "--reservation-strategy"));
    assert_non_null(strstr(text, "--drain-delay-ms N"));
    assert_non_null(strstr(text, "RESERVD_DRAIN_DELAY_MS, default 0"));
    free(text);
}

/* --list-strategies prints the strategy table, one "name<TAB>safety" line
 * per row in order: the tests and the bench iterate over it. */
static void list_strategies(void **state)
{
    (void)state;
    struct config cfg;
    char err[256];
    const char *argv[] = { "reservd", "--port", "1", "--list-strategies" };
    assert_int_equal(load(&cfg, NULL, 4, argv, err), CONFIG_EXIT_STRATEGIES);
    char *text = NULL, *expect = NULL;
    size_t len = 0, elen = 0;
    FILE *out = open_memstream(&text, &len);
    config_list_strategies(out);
    fclose(out);
    out = open_memstream(&expect, &elen);
    for (size_t i = 0; i < reservation_nstrategies; i++)
        fprintf(out, "%s\t%s\n", reservation_strategies[i].name,
                reservation_strategies[i].needs_ack ? "unsafe" : "safe");
    fclose(out);
    assert_true(reservation_nstrategies >= 4);
    assert_string_equal(text, expect);
    assert_non_null(strstr(text, "for-update\tsafe\n"));
    assert_non_null(strstr(text, "unsafe\tunsafe\n"));
    free(text);
    free(expect);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(environment_and_flags),
        cmocka_unit_test(bad_values_name_the_setting),
        cmocka_unit_test(unknown_flags_and_version),
        cmocka_unit_test(addresses_and_urls_are_checked),
        cmocka_unit_test(unsafe_needs_acknowledgement),
        cmocka_unit_test(env_file),
        cmocka_unit_test(db_prepared),
        cmocka_unit_test(drain_delay),
        cmocka_unit_test(help),
        cmocka_unit_test(list_strategies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
