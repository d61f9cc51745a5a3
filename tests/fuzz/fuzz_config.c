/* Configuration (src/core/config.c): flags, environment, dotenv files and
 * full start-up parses, each leaving a configuration that every setting's
 * own flag accepts back.
 *
 * Input: byte 0 picks the entry point, the rest is its input:
 *   0  config_set:            byte 1 = core count, then name\0value\0 pairs
 *   1  config_apply_env:      KEY=VALUE\0 entries, read through a lookup
 *   2  config_apply_env_file: the file's bytes (in a memfd)
 *   3  config_load:           argv entries \0-separated, then \0\0, then the
 *                             dotenv file any --env-file is pointed at */

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

#define ERR_SIZE 512 /* src/main.c */
#define MAX_ARGS 32

enum kind { KIND_INT, KIND_STR, KIND_BOOL };

/* Each setting's flag, variable and field (README "Configuration"); the
 * ranges are config.c's own, learnt by asking config_set. A setting added
 * later is simply not checked here. */
struct knob {
    const char *flag;
    const char *env;
    enum kind kind;
    size_t offset;
};

#define KNOB(f, e, k, field)                    \
    {                                           \
        f, e, k, offsetof(struct config, field) \
    }
static const struct knob knobs[] = {
    KNOB("bind", "RESERVD_BIND", KIND_STR, bind),
    KNOB("port", "SERVICE_PORT", KIND_INT, port),
    KNOB("database-url", "DATABASE_URL", KIND_STR, database_url),
    KNOB("db-wait-ms", "RESERVD_DB_WAIT_MS", KIND_INT, db_wait_ms),
    KNOB("pool-size", "RESERVD_POOL_SIZE", KIND_INT, pool_size),
    KNOB("http-threads", "RESERVD_HTTP_THREADS", KIND_INT, http_threads),
    KNOB("workers", "RESERVD_WORKERS", KIND_INT, workers),
    KNOB("max-connections", "RESERVD_MAX_CONNECTIONS", KIND_INT, max_connections),
    KNOB("connection-timeout", "RESERVD_CONNECTION_TIMEOUT", KIND_INT, connection_timeout_s),
    KNOB("read-timeout-ms", "RESERVD_READ_TIMEOUT_MS", KIND_INT, read_timeout_ms),
    KNOB("shutdown-grace-ms", "RESERVD_SHUTDOWN_GRACE_MS", KIND_INT, shutdown_grace_ms),
    KNOB("drain-delay-ms", "RESERVD_DRAIN_DELAY_MS", KIND_INT, drain_delay_ms),
    KNOB("acquire-timeout-ms", "RESERVD_ACQUIRE_TIMEOUT_MS", KIND_INT, acquire_timeout_ms),
    KNOB("lock-timeout-ms", "RESERVD_LOCK_TIMEOUT_MS", KIND_INT, lock_timeout_ms),
    KNOB("reservation-strategy", "RESERVD_RESERVATION_STRATEGY", KIND_STR, strategy),
    KNOB("i-understand-unsafe-oversells", "RESERVD_ALLOW_OVERSELL", KIND_BOOL, allow_oversell),
    KNOB("batch-max", "RESERVD_BATCH_MAX", KIND_INT, batch_max),
    KNOB("batch-wait-us", "RESERVD_BATCH_WAIT_US", KIND_INT, batch_wait_us),
    KNOB("sweep-interval-ms", "RESERVD_SWEEP_INTERVAL_MS", KIND_INT, sweep_interval_ms),
    KNOB("log-level", "RESERVD_LOG_LEVEL", KIND_STR, log_level),
    KNOB("log-format", "RESERVD_LOG_FORMAT", KIND_STR, log_format),
    /* every setting of src/core/config.c: an input naming one this table
     * lacks (RESERVD_AUTH) failed the "the message names it" check */
    KNOB("db-prepared", "RESERVD_DB_PREPARED", KIND_STR, db_prepared),
    KNOB("connection-memory", "RESERVD_CONNECTION_MEMORY", KIND_INT, connection_memory),
    KNOB("auth", "RESERVD_AUTH", KIND_STR, auth),
    KNOB("admin-token-file", "RESERVD_ADMIN_TOKEN_FILE", KIND_STR, admin_token_file),
    KNOB("admin-tokens", "RESERVD_ADMIN_TOKENS", KIND_STR, admin_tokens),
    KNOB("metrics-open", "RESERVD_METRICS_OPEN", KIND_BOOL, metrics_open),
    KNOB("jwt-key-file", "RESERVD_JWT_KEY_FILE", KIND_STR, jwt_key_file),
    KNOB("jwt-alg", "RESERVD_JWT_ALG", KIND_STR, jwt_alg),
    KNOB("jwt-issuer", "RESERVD_JWT_ISSUER", KIND_STR, jwt_issuer),
    KNOB("jwt-audience", "RESERVD_JWT_AUDIENCE", KIND_STR, jwt_audience),
    KNOB("jwt-admin-claim", "RESERVD_JWT_ADMIN_CLAIM", KIND_STR, jwt_admin_claim),
    KNOB("jwt-admin-role", "RESERVD_JWT_ADMIN_ROLE", KIND_STR, jwt_admin_role),
    KNOB("idempotency-ttl", "RESERVD_IDEMPOTENCY_TTL", KIND_INT, idempotency_ttl_s),
};
#define NKNOBS (sizeof(knobs) / sizeof(knobs[0]))

static void *field_of(struct config *cfg, const struct knob *k)
{
    return (char *)cfg + k->offset;
}

/* The field's value as its flag would spell it. */
static void render(struct config *cfg, const struct knob *k, char *out, size_t cap)
{
    void *f = field_of(cfg, k);
    switch (k->kind) {
    case KIND_INT: snprintf(out, cap, "%d", *(int *)f); break;
    case KIND_BOOL: snprintf(out, cap, "%s", *(bool *)f ? "true" : "false"); break;
    case KIND_STR: snprintf(out, cap, "%s", (char *)f); break;
    }
}

/* Every field holds a value its own flag accepts, and setting it again
 * changes nothing. An empty optional string (no admin token file, no JWT
 * issuer, ...) is "not set", which no flag value spells. */
static void check_valid(const struct config *cfg)
{
    for (size_t i = 0; i < NKNOBS; i++) {
        struct config again = *cfg;
        char value[1100], err[ERR_SIZE];
        render(&again, &knobs[i], value, sizeof(value));
        if (knobs[i].kind == KIND_STR && value[0] == '\0')
            continue;
        FUZZ_CHECK(config_set(&again, knobs[i].flag, value, err, sizeof(err)) == 0);
        FUZZ_CHECK(memcmp(&again, cfg, sizeof(again)) == 0);
    }
}

static const struct knob *knob_by_flag(const char *flag)
{
    for (size_t i = 0; i < NKNOBS; i++)
        if (strcmp(knobs[i].flag, flag) == 0)
            return &knobs[i];
    return NULL;
}

/* After an accepted value, the field holds what the value says. */
static void check_holds(struct config *cfg, const struct knob *k, const char *value)
{
    void *f = field_of(cfg, k);
    switch (k->kind) {
    case KIND_INT: FUZZ_CHECK(*(int *)f == (int)strtol(value, NULL, 10)); break;
    case KIND_STR: FUZZ_CHECK(strcmp((char *)f, value) == 0); break;
    case KIND_BOOL:
        FUZZ_CHECK(*(bool *)f ==
                   (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")));
        break;
    }
}

static void check_error_text(const char *err, const char *names)
{
    FUZZ_CHECK(memchr(err, '\0', ERR_SIZE) != NULL && err[0] != '\0');
    FUZZ_CHECK(strstr(err, names) != NULL);
}

/* Next \0-terminated string in [*p, end), or NULL when none is left. */
static const char *next_string(const char **p, const char *end)
{
    if (*p >= end)
        return NULL;
    const char *s = *p;
    const char *nul = memchr(s, '\0', (size_t)(end - s));
    *p = nul ? nul + 1 : end;
    return s;
}

/* Mode 0: any sequence of config_set calls. A refusal changes nothing. */
static void fuzz_set(const char *text, const char *end)
{
    struct config cfg;
    char err[ERR_SIZE];
    /* 1..128 cores: beyond 128 the pool default (4 per core) is above
     * --pool-size's own limit of 512 (reported, not checked here). */
    int ncpu = text < end ? (unsigned char)*text++ % 128 + 1 : 2;
    config_defaults(&cfg, ncpu);
    check_valid(&cfg);
    for (int n = 0; n < 16; n++) {
        const char *name = next_string(&text, end), *value = next_string(&text, end);
        if (!name || !value)
            break;
        struct config before = cfg;
        err[0] = '\0';
        if (config_set(&cfg, name, value, err, sizeof(err)) != 0) {
            FUZZ_CHECK(memcmp(&before, &cfg, sizeof(cfg)) == 0);
            check_error_text(err, "--");
            continue;
        }
        const struct knob *k = knob_by_flag(name);
        if (k)
            check_holds(&cfg, k, value);
        check_valid(&cfg);
    }
}

/* Mode 1: the environment, as KEY=VALUE strings. */
static const char *env_text, *env_end;

static const char *env_lookup(const char *key)
{
    size_t n = strlen(key);
    const char *p = env_text, *s;
    while ((s = next_string(&p, env_end)) != NULL)
        if (strncmp(s, key, n) == 0 && s[n] == '=')
            return s + n + 1;
    return NULL;
}

static const char *no_env(const char *key)
{
    (void)key;
    return NULL;
}

static void fuzz_env(const char *text, const char *end)
{
    struct config cfg;
    char err[ERR_SIZE] = "";
    env_text = text;
    env_end = end;
    config_defaults(&cfg, 2);
    if (config_apply_env(&cfg, env_lookup, err, sizeof(err)) != 0) {
        /* The message names the variable at fault. */
        int named = 0;
        for (size_t i = 0; i < NKNOBS; i++)
            named |= env_lookup(knobs[i].env) && strstr(err, knobs[i].env);
        FUZZ_CHECK(named);
        return;
    }
    for (size_t i = 0; i < NKNOBS; i++) {
        const char *v = env_lookup(knobs[i].env);
        if (v)
            check_holds(&cfg, &knobs[i], v);
    }
    check_valid(&cfg);
}

/* A memfd holding the bytes; its /proc path goes where a file name goes. */
static int memfd_with(const char *bytes, size_t len, char *path, size_t cap)
{
    int fd = memfd_create("dotenv", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0);
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, bytes + done, len - done);
        FUZZ_CHECK(n > 0);
        done += (size_t)n;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

/* The same file with every line commented out. */
static char *commented(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(2 * len + 2);
    size_t n = 0;
    FUZZ_CHECK(out != NULL);
    out[n++] = '#';
    for (size_t i = 0; i < len; i++) {
        out[n++] = text[i];
        if (text[i] == '\n')
            out[n++] = '#';
    }
    *out_len = n;
    return out;
}

static int is_comment(const char *line, const char *end)
{
    while (line < end && isspace((unsigned char)*line))
        line++;
    return line < end && *line == '#';
}

/* The same file without its comment lines. */
static char *uncommented(const char *text, size_t len, size_t *out_len)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    FUZZ_CHECK(out != NULL);
    for (const char *line = text, *end = text + len; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *next = nl ? nl + 1 : end;
        if (!is_comment(line, next)) {
            memcpy(out + n, line, (size_t)(next - line));
            n += (size_t)(next - line);
        }
        line = next;
    }
    *out_len = n;
    return out;
}

/* Apply a file of these bytes to a default configuration. */
static int apply_bytes(const char *bytes, size_t len, struct config *cfg)
{
    char path[64], err[ERR_SIZE] = "";
    int fd = memfd_with(bytes, len, path, sizeof(path));
    config_defaults(cfg, 2);
    int rc = config_apply_env_file(cfg, path, err, sizeof(err));
    close(fd);
    return rc;
}

/* Mode 2: a dotenv file. Reading it twice is reading it once; comments
 * change nothing, however long. */
static void fuzz_env_file(const char *text, const char *end)
{
    struct config cfg, other, none;
    char path[64], err[ERR_SIZE] = "";
    size_t len = (size_t)(end - text), n;
    int fd = memfd_with(text, len, path, sizeof(path));
    config_defaults(&cfg, 2);
    int rc = config_apply_env_file(&cfg, path, err, sizeof(err));
    if (rc != 0) {
        /* Syntax errors name the file; bad values name only the variable. */
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
    } else {
        check_valid(&cfg);
        other = cfg;
        FUZZ_CHECK(config_apply_env_file(&other, path, err, sizeof(err)) == 0);
        FUZZ_CHECK(memcmp(&other, &cfg, sizeof(cfg)) == 0);
    }
    close(fd);

    char *bytes = uncommented(text, len, &n);
    FUZZ_CHECK(apply_bytes(bytes, n, &other) == rc);
    FUZZ_CHECK(rc != 0 || memcmp(&other, &cfg, sizeof(cfg)) == 0);
    free(bytes);

    bytes = commented(text, len, &n);
    config_defaults(&none, 2);
    FUZZ_CHECK(apply_bytes(bytes, n, &other) == 0);
    FUZZ_CHECK(memcmp(&none, &other, sizeof(other)) == 0);
    free(bytes);
}

struct args {
    int argc;
    char *argv[MAX_ARGS + 2];
    char *owned[MAX_ARGS + 2]; /* what argv points into, freed after */
};

static void args_add(struct args *a, char *s, int owned)
{
    a->owned[a->argc] = owned ? s : NULL;
    a->argv[a->argc++] = s;
}

static void args_free(struct args *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->owned[i]);
}

/* Point every --env-file (as config_load's first pass finds them) at the
 * memfd, so that fuzzed argv never opens a real file. */
static void sandbox_env_files(struct args *a, const char *path)
{
    for (int i = 1; i < a->argc; i++) {
        if (strncmp(a->argv[i], "--env-file", 10) != 0)
            continue;
        const char *eq = strchr(a->argv[i], '=');
        int at = eq ? i : i + 1;
        if (at >= a->argc)
            break;
        size_t keep = eq ? (size_t)(eq - a->argv[i]) + 1 : 0;
        char *s = malloc(keep + strlen(path) + 1);
        FUZZ_CHECK(s != NULL);
        memcpy(s, a->argv[i], keep);
        strcpy(s + keep, path);
        free(a->owned[at]);
        a->owned[at] = a->argv[at] = s;
        i = at;
    }
}

static int asks_help(const struct args *a)
{
    for (int i = 1; i < a->argc; i++)
        if (!strcmp(a->argv[i], "--help") || !strcmp(a->argv[i], "-h"))
            return 1;
    return 0;
}

static int asks_version(const struct args *a)
{
    for (int i = 1; i < a->argc; i++)
        if (!strcmp(a->argv[i], "--version"))
            return 1;
    return 0;
}

static int asks_strategies(const struct args *a)
{
    for (int i = 1; i < a->argc; i++)
        if (!strcmp(a->argv[i], "--list-strategies"))
            return 1;
    return 0;
}

/* Mode 3: a whole start-up. A loaded configuration is valid, loads the
 * same again, and a flag added at the end wins. */
static void fuzz_load(const char *text, const char *end)
{
    static char prog[] = "reservd";
    struct args a = { 0 };
    struct config cfg, again;
    char path[64], err[ERR_SIZE] = "";
    const char *file = text;
    while (file + 1 < end && !(file[0] == '\0' && file[1] == '\0'))
        file++;
    const char *args_end = file;
    file = file + 2 <= end ? file + 2 : end;

    args_add(&a, prog, 0);
    for (const char *s; a.argc < MAX_ARGS && (s = next_string(&text, args_end)) != NULL;) {
        size_t n = strnlen(s, (size_t)(args_end - s));
        char *copy = fuzz_cstring((const uint8_t *)s, n);
        args_add(&a, copy, 1);
    }
    int fd = memfd_with(file, (size_t)(end - file), path, sizeof(path));
    sandbox_env_files(&a, path);

    enum config_result r = config_load(&cfg, a.argc, a.argv, no_env, err, sizeof(err));
    FUZZ_CHECK(r == CONFIG_OK || r == CONFIG_EXIT_HELP || r == CONFIG_EXIT_VERSION ||
               r == CONFIG_EXIT_STRATEGIES || r == CONFIG_ERROR);
    FUZZ_CHECK(r != CONFIG_EXIT_HELP || asks_help(&a));
    FUZZ_CHECK(r != CONFIG_EXIT_VERSION || asks_version(&a));
    FUZZ_CHECK(r != CONFIG_EXIT_STRATEGIES || asks_strategies(&a));
    FUZZ_CHECK(r != CONFIG_OK || (!asks_help(&a) && !asks_version(&a) && !asks_strategies(&a)));
    if (r == CONFIG_ERROR)
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
    if (r == CONFIG_OK) {
        check_valid(&cfg);
        FUZZ_CHECK(config_validate(&cfg, err, sizeof(err)) == 0);
        FUZZ_CHECK(config_load(&again, a.argc, a.argv, no_env, err, sizeof(err)) == CONFIG_OK);
        FUZZ_CHECK(memcmp(&again, &cfg, sizeof(cfg)) == 0);
        static char last[] = "--port=1234";
        a.argv[a.argc] = last;
        FUZZ_CHECK(config_load(&again, a.argc + 1, a.argv, no_env, err, sizeof(err)) == CONFIG_OK);
        FUZZ_CHECK(again.port == 1234);
    }
    close(fd);
    args_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    /* A copy with a NUL after the end, so the last string is terminated. */
    char *copy = fuzz_cstring(data + 1, size - 1);
    const char *end = copy + size - 1;
    switch (data[0] % 4) {
    case 0: fuzz_set(copy, end); break;
    case 1: fuzz_env(copy, end); break;
    case 2: fuzz_env_file(copy, end); break;
    case 3: fuzz_load(copy, end); break;
    }
    free(copy);
    return 0;
}
