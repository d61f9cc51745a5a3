/* Settings: one table drives flags, environment variables, dotenv files
 * and --help, so the four can never disagree. */

#include "config.h"

#include "reservation.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#ifndef RESERVD_VERSION
#define RESERVD_VERSION "unknown"
#endif

/* SET_ADDR and SET_CONNINFO are strings checked at parse time, so that a
 * bad one stops the start like every other bad setting (exit 2), before
 * anything is opened. */
enum setting_type { SET_INT, SET_STR, SET_BOOL, SET_CHOICE, SET_ADDR, SET_CONNINFO };

struct setting {
    const char *flag; /* without "--" */
    const char *env;  /* NULL: flag only */
    enum setting_type type;
    size_t offset;
    size_t size;         /* for strings */
    long min, max;       /* for ints */
    const char *choices; /* for SET_CHOICE: "a|b|c" */
    const char *help;
};

#define INT_SETTING(f, e, field, lo, hi, h)                               \
    {                                                                     \
        f, e, SET_INT, offsetof(struct config, field), 0, lo, hi, NULL, h \
    }
#define STR_SETTING(f, e, field, h)                                                               \
    {                                                                                             \
        f, e, SET_STR, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, \
            NULL, h                                                                               \
    }
#define CHOICE_SETTING(f, e, field, c, h)                                                         \
    {                                                                                             \
        f, e, SET_CHOICE, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, \
            0, c, h                                                                               \
    }
#define CHECKED_SETTING(f, e, type, field, h)                                                  \
    {                                                                                          \
        f, e, type, offsetof(struct config, field), sizeof(((struct config *)0)->field), 0, 0, \
            NULL, h                                                                            \
    }

/* "for-update|batch|..." from the strategy table (include/reservation.h). */
#define STRATEGY_CHOICE(id, name, ack, fill, per_event, flow, help) "|" name
#define STRATEGY_CHOICES                                            (&(RESERVATION_STRATEGIES(STRATEGY_CHOICE))[1]) /* past the first "|" */

static const struct setting settings[] = {
    CHECKED_SETTING("bind", "RESERVD_BIND", SET_ADDR, bind, "address to listen on (IPv4 or IPv6)"),
    INT_SETTING("port", "SERVICE_PORT", port, 1, 65535, "HTTP port"),
    CHECKED_SETTING("database-url", "DATABASE_URL", SET_CONNINFO, database_url,
                    "libpq URI or keyword string"),
    INT_SETTING("db-wait-ms", "RESERVD_DB_WAIT_MS", db_wait_ms, 0, 600000,
                "how long start-up waits for PostgreSQL to accept connections"),
    INT_SETTING("pool-size", "RESERVD_POOL_SIZE", pool_size, 1, 512,
                "PostgreSQL connections in the pool"),
    CHOICE_SETTING("db-prepared", "RESERVD_DB_PREPARED", db_prepared, "on|off",
                   "prepare statements per connection (off: unnamed statements, for "
                   "PgBouncer's transaction pooling)"),
    INT_SETTING("http-threads", "RESERVD_HTTP_THREADS", http_threads, 1, 256,
                "libmicrohttpd threads"),
    INT_SETTING("workers", "RESERVD_WORKERS", workers, 1, 4096,
                "threads that run database requests"),
    INT_SETTING("max-connections", "RESERVD_MAX_CONNECTIONS", max_connections, 1, 1000000,
                "concurrent HTTP connections"),
    INT_SETTING("connection-timeout", "RESERVD_CONNECTION_TIMEOUT", connection_timeout_s, 1, 3600,
                "seconds an idle HTTP connection (no byte of a new request) may live"),
    INT_SETTING("read-timeout-ms", "RESERVD_READ_TIMEOUT_MS", read_timeout_ms, 0, 3600000,
                "a request must arrive whole within this of its first byte (0: no limit)"),
    INT_SETTING("connection-memory", "RESERVD_CONNECTION_MEMORY", connection_memory, 4096, 65536,
                "bytes of buffer per HTTP connection, for a request's headers and its answer's"),
    INT_SETTING("shutdown-grace-ms", "RESERVD_SHUTDOWN_GRACE_MS", shutdown_grace_ms, 0, 600000,
                "on SIGTERM, longest wait for in-flight requests"),
    INT_SETTING("drain-delay-ms", "RESERVD_DRAIN_DELAY_MS", drain_delay_ms, 0, 60000,
                "on SIGTERM, /readyz answers 503 for this long while everything else is still "
                "served, then the shutdown begins (longer than the load balancer takes to see "
                "it; 0: at once; a second SIGTERM cuts it short)"),
    INT_SETTING("acquire-timeout-ms", "RESERVD_ACQUIRE_TIMEOUT_MS", acquire_timeout_ms, 1, 600000,
                "wait for a pooled connection before 503 busy"),
    INT_SETTING("lock-timeout-ms", "RESERVD_LOCK_TIMEOUT_MS", lock_timeout_ms, 1, 600000,
                "wait for an event's row lock before 503 busy"),
    CHOICE_SETTING("reservation-strategy", "RESERVD_RESERVATION_STRATEGY", strategy,
                   STRATEGY_CHOICES, "how reservations are granted"),
    { "i-understand-unsafe-oversells", "RESERVD_ALLOW_OVERSELL", SET_BOOL,
      offsetof(struct config, allow_oversell), 0, 0, 0, NULL,
      "allow the unsafe strategy (it oversells; teaching only)" },
    INT_SETTING("batch-max", "RESERVD_BATCH_MAX", batch_max, 1, 10000,
                "most requests granted in one batch transaction"),
    INT_SETTING("batch-wait-us", "RESERVD_BATCH_WAIT_US", batch_wait_us, 0, 1000000,
                "longest a batch waits to fill, microseconds"),
    INT_SETTING("sweep-interval-ms", "RESERVD_SWEEP_INTERVAL_MS", sweep_interval_ms, 0, 60000,
                "pause between sweeps writing overdue holds' expiry (0: no sweeper)"),
    CHOICE_SETTING("log-level", "RESERVD_LOG_LEVEL", log_level, "debug|info|warn|error",
                   "least severe level logged"),
    CHOICE_SETTING("log-format", "RESERVD_LOG_FORMAT", log_format, "text|json", "log line format"),
    CHOICE_SETTING("auth", "RESERVD_AUTH", auth, "token|jwt|off",
                   "access control: reservd's tokens, JWTs, or off (open: teaching and "
                   "benchmarks; logs a warning at every start)"),
    STR_SETTING("admin-token-file", "RESERVD_ADMIN_TOKEN_FILE", admin_token_file,
                "file of admin tokens, one a line (scripts/run.sh makes one under .data/)"),
    STR_SETTING("admin-tokens", "RESERVD_ADMIN_TOKENS", admin_tokens,
                "admin tokens, separated by commas or spaces (prefer the environment or the "
                "file: a flag is visible to ps)"),
    { "metrics-open", "RESERVD_METRICS_OPEN", SET_BOOL, offsetof(struct config, metrics_open), 0, 0,
      0, NULL, "serve /metrics without a token (for a port only the scraper reaches)" },
    STR_SETTING("jwt-key-file", "RESERVD_JWT_KEY_FILE", jwt_key_file,
                "--auth jwt: the HS256 secret, or the RS256/ES256 public key (PEM)"),
    CHOICE_SETTING("jwt-alg", "RESERVD_JWT_ALG", jwt_alg, "HS256|RS256|ES256",
                   "--auth jwt: the one algorithm accepted"),
    STR_SETTING("jwt-issuer", "RESERVD_JWT_ISSUER", jwt_issuer,
                "--auth jwt: required iss (unset: not checked)"),
    STR_SETTING("jwt-audience", "RESERVD_JWT_AUDIENCE", jwt_audience,
                "--auth jwt: required aud (unset: not checked)"),
    STR_SETTING("jwt-admin-claim", "RESERVD_JWT_ADMIN_CLAIM", jwt_admin_claim,
                "--auth jwt: the claim (a string or an array) that makes an admin"),
    STR_SETTING("jwt-admin-role", "RESERVD_JWT_ADMIN_ROLE", jwt_admin_role,
                "--auth jwt: the value of that claim that makes an admin"),
    INT_SETTING("idempotency-ttl", "RESERVD_IDEMPOTENCY_TTL", idempotency_ttl_s, 1, 31 * 86400,
                "seconds an Idempotency-Key's answer is kept"),
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

void config_defaults(struct config *cfg, int ncpu)
{
    if (ncpu < 1)
        ncpu = 1;
    memset(cfg, 0, sizeof(*cfg));
    strcpy(cfg->bind, "0.0.0.0");
    cfg->port = 3001;
    strcpy(cfg->database_url, "postgresql://postgres@127.0.0.1:5432/postgres");
    /* PostgreSQL does its best work with a few connections per core; more
     * only queue on locks and WAL flushes (measured in loadtest/RESULTS.md). */
    cfg->db_wait_ms = 10000;
    cfg->pool_size = ncpu * 4 < 8 ? 8 : ncpu * 4;
    cfg->http_threads = ncpu;
    /* Prepared: generic plans save each call its planning (an unnamed
     * reserve_for_update took 1.64 times as long at the database; README,
     * Scaling). off is for PgBouncer's transaction pooling. */
    strcpy(cfg->db_prepared, "on");
    /* Workers wait on PostgreSQL, not on a core: each busy event's queue
     * takes one, other database requests one each. On 1,000 events 8, 16
     * and 64 measured alike (4.6k, 3.9k, 4.4-4.7k req/s); 64 leaves room
     * for requests stuck behind a lock. */
    cfg->workers = 64;
    cfg->max_connections = 16000;
    cfg->connection_timeout_s = 30;
    /* A request has 10 s to arrive whole: a phone on a bad network sends a
     * 1 KiB request in far less, and a slot held longer is a slot lost. */
    cfg->read_timeout_ms = 10000;
    /* Room for about 3 KiB of request headers. libmicrohttpd zeroes the
     * whole buffer between requests, so each kept-alive connection costs
     * all of it: with 10,000 idle connections and 256 busy ones peak RSS is
     * 59 MiB at 4 KiB, 100 MiB at 8 KiB (issue 11: at most 64). Raise it
     * for clients with big cookies (nginx's default line limit is 8 KiB). */
    cfg->connection_memory = 4096;
    /* Longer than any request's deadline (acquire-timeout-ms caps its pool
     * and lock waits), so every request already read is answered. */
    cfg->shutdown_grace_ms = 15000;
    /* 0: the listener closes at once, as before the setting existed; behind
     * a load balancer that checks /readyz, set it above the time it takes to
     * take an instance out (docker-compose.scale.yml). */
    cfg->drain_delay_ms = 0;
    cfg->acquire_timeout_ms = 5000;
    cfg->lock_timeout_ms = 5000;
    strcpy(cfg->strategy, "for-update");
    cfg->batch_max = 512;
    cfg->batch_wait_us = 500;
    /* Expiries are written within about this; clients never wait for it
     * (every locked path and every read already leaves overdue holds out),
     * and a sweep with nothing due is one index probe. */
    cfg->sweep_interval_ms = 250;
    strcpy(cfg->log_level, "info");
    strcpy(cfg->log_format, "text");
    strcpy(cfg->auth, "token");
    strcpy(cfg->jwt_alg, "HS256");
    strcpy(cfg->jwt_admin_claim, "roles");
    strcpy(cfg->jwt_admin_role, "reservd-admin");
    /* A day, as pretix keeps its idempotency answers: longer than any
     * client's retries, short enough that the table stays small. */
    cfg->idempotency_ttl_s = 86400;
}

static const struct setting *find_by_flag(const char *flag)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].flag, flag) == 0)
            return &settings[i];
    return NULL;
}

static bool choice_ok(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *end = strchr(p, '|');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

static int check_addr(const char *value, const char *source, char *err, size_t errlen)
{
    struct in6_addr addr;
    if (inet_pton(AF_INET, value, &addr) == 1 || inet_pton(AF_INET6, value, &addr) == 1)
        return 0;
    snprintf(err, errlen,
             "invalid %s '%s': expected an IPv4 or IPv6 address "
             "(e.g. 0.0.0.0, 127.0.0.1 or ::1)",
             source, value);
    return -1;
}

/* libpq's own parser, so that what passes here is what it will accept. The
 * value is not echoed: it may hold a password. */
static int check_conninfo(const char *value, const char *source, char *err, size_t errlen)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &why);
    if (opts) {
        PQconninfoFree(opts);
        return 0;
    }
    size_t n = why ? strcspn(why, "\n") : 0;
    /* libpq ends most of these with ': "<the URI>"'; drop that part */
    const char *quoted = why ? strstr(why, ": \"") : NULL;
    while (quoted && strstr(quoted + 1, ": \""))
        quoted = strstr(quoted + 1, ": \"");
    if (quoted && n > 0 && why[n - 1] == '"')
        n = (size_t)(quoted - why);
    snprintf(err, errlen, "invalid %s: %.*s (value not shown: it may hold a password)", source,
             (int)n, why ? why : "out of memory");
    PQfreemem(why);
    return -1;
}

static int apply(struct config *cfg, const struct setting *s, const char *value, const char *source,
                 char *err, size_t errlen)
{
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case SET_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < s->min || v > s->max) {
            snprintf(err, errlen, "invalid %s '%s': expected an integer from %ld to %ld", source,
                     value, s->min, s->max);
            return -1;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case SET_BOOL:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(bool *)field = true;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") || !*value)
            *(bool *)field = false;
        else {
            snprintf(err, errlen, "invalid %s '%s': expected true or false", source, value);
            return -1;
        }
        return 0;
    case SET_CHOICE:
        if (!choice_ok(s->choices, value)) {
            snprintf(err, errlen, "invalid %s '%s': expected one of %s", source, value, s->choices);
            return -1;
        }
        __attribute__((fallthrough)); /* stored as a string */
    case SET_ADDR:
    case SET_CONNINFO:
    case SET_STR:
        if (strlen(value) >= s->size || (s->type == SET_STR && !*value)) {
            snprintf(err, errlen, "invalid %s: %s", source,
                     *value ? "value too long" : "value is empty");
            return -1;
        }
        if (s->type == SET_ADDR && check_addr(value, source, err, errlen) != 0)
            return -1;
        if (s->type == SET_CONNINFO && check_conninfo(value, source, err, errlen) != 0)
            return -1;
        strcpy(field, value);
        return 0;
    }
    return -1;
}

int config_set(struct config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    const struct setting *s = find_by_flag(name);
    if (!s) {
        snprintf(err, errlen, "unknown option --%s", name);
        return -1;
    }
    char source[80];
    snprintf(source, sizeof(source), "--%s", s->flag);
    return apply(cfg, s, value, source, err, errlen);
}

static int apply_env_var(struct config *cfg, const char *key, const char *value, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].env && strcmp(settings[i].env, key) == 0)
            return apply(cfg, &settings[i], value, key, err, errlen);
    return 0; /* unknown keys belong to someone else */
}

int config_apply_env(struct config *cfg, const char *(*lookup)(const char *), char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = settings[i].env ? lookup(settings[i].env) : NULL;
        if (v && apply(cfg, &settings[i], v, settings[i].env, err, errlen) != 0)
            return -1;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

int config_apply_env_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "--env-file %s: %s", path, strerror(errno));
        return -1;
    }
    /* getline, not a fixed buffer: a long line read in pieces had its tail
     * parsed as a line of its own (found by fuzz_config) */
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "--env-file %s:%d: expected KEY=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t n = strlen(value);
        if (n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
            value[n - 1] = '\0';
            value++;
        }
        rc = apply_env_var(cfg, key, value, err, errlen);
    }
    free(line);
    fclose(f);
    return rc;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
#define NEEDS_ACK(id, name, ack, fill, per_event, flow, help) \
    (ack && strcmp(cfg->strategy, name) == 0) ||
    if ((RESERVATION_STRATEGIES(NEEDS_ACK) false) && !cfg->allow_oversell) {
#undef NEEDS_ACK
        snprintf(err, errlen,
                 "--reservation-strategy %s oversells tickets by design; "
                 "add --i-understand-unsafe-oversells to run it anyway",
                 cfg->strategy);
        return -1;
    }
    if (strcmp(cfg->auth, "jwt") == 0 && !cfg->jwt_key_file[0]) {
        snprintf(err, errlen, "--auth jwt needs --jwt-key-file (the secret or the public key)");
        return -1;
    }
    return 0;
}

/* Split "--name=value" / "--name value"; returns the index consumed. */
static int next_option(int argc, char **argv, int i, char *name, size_t namelen, const char **value,
                       char *err, size_t errlen)
{
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0) {
        snprintf(err, errlen, "unexpected argument '%s'", arg);
        return -1;
    }
    arg += 2;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n >= namelen) {
        snprintf(err, errlen, "unknown option '%.*s'", (int)(namelen + 2), argv[i]);
        return -1;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    const struct setting *s = find_by_flag(name);
    if (!s && strcmp(name, "env-file") != 0) {
        snprintf(err, errlen, "unknown option '--%s'", name);
        return -1;
    }
    if (eq) {
        *value = eq + 1;
        return i;
    }
    if (s && s->type == SET_BOOL) {
        *value = "true";
        return i;
    }
    if (i + 1 >= argc) {
        snprintf(err, errlen, "option --%s needs a value", name);
        return -1;
    }
    *value = argv[i + 1];
    return i + 1;
}

enum config_result config_load(struct config *cfg, int argc, char **argv,
                               const char *(*lookup)(const char *), char *err, size_t errlen)
{
    char name[64];
    const char *value;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    config_defaults(cfg, (int)ncpu);

    /* Pass 1: --help, --version and --env-file, which sit below the
     * environment. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return CONFIG_EXIT_HELP;
        if (strcmp(argv[i], "--version") == 0)
            return CONFIG_EXIT_VERSION;
        if (strcmp(argv[i], "--list-strategies") == 0)
            return CONFIG_EXIT_STRATEGIES;
        if (strncmp(argv[i], "--env-file", 10) == 0) {
            int j = next_option(argc, argv, i, name, sizeof(name), &value, err, errlen);
            if (j < 0 || config_apply_env_file(cfg, value, err, errlen) != 0)
                return CONFIG_ERROR;
            i = j;
        }
    }
    if (config_apply_env(cfg, lookup, err, errlen) != 0)
        return CONFIG_ERROR;
    for (int i = 1; i < argc; i++) {
        int j = next_option(argc, argv, i, name, sizeof(name), &value, err, errlen);
        if (j < 0)
            return CONFIG_ERROR;
        if (strcmp(name, "env-file") != 0 && config_set(cfg, name, value, err, errlen) != 0)
            return CONFIG_ERROR;
        i = j;
    }
    return config_validate(cfg, err, errlen) == 0 ? CONFIG_OK : CONFIG_ERROR;
}

void config_usage(FILE *out, const char *prog, int ncpu)
{
    struct config def;
    config_defaults(&def, ncpu);
    fprintf(out,
            "usage: %s [options]\n\nA ticket reservation server over PostgreSQL.\n"
            "Every option can also be set by the environment variable shown.\n\n"
            "  --env-file PATH  read KEY=VALUE settings from a dotenv file\n"
            "  --help           show this help\n"
            "  --version        print the version\n"
            "  --list-strategies  print each reservation strategy's name and whether it is\n"
            "                   safe, one a line (for tests and the bench)\n",
            prog);
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *field = (const char *)&def + s->offset;
        char flag[64], dflt[1100];
        snprintf(flag, sizeof(flag), "--%s%s", s->flag,
                 s->type == SET_BOOL  ? ""
                 : s->type == SET_INT ? " N"
                                      : " VALUE");
        switch (s->type) {
        case SET_INT: snprintf(dflt, sizeof(dflt), "%d", *(const int *)field); break;
        case SET_BOOL:
            snprintf(dflt, sizeof(dflt), "%s", *(const bool *)field ? "on" : "off");
            break;
        default: snprintf(dflt, sizeof(dflt), "%s", field); break;
        }
        fprintf(out, "  %-36s %s", flag, s->help);
        if (s->choices)
            fprintf(out, " (%s)", s->choices);
        fprintf(out, "\n  %-36s env %s, default %s\n", "", s->env ? s->env : "-", dflt);
    }
    fprintf(out, "\nReservation strategies:\n");
#define STRATEGY_LINE(id, name, ack, fill, per_event, flow, help) \
    fprintf(out, "  %-12s %s%s\n", name, help,                    \
            ack ? "; needs --i-understand-unsafe-oversells" : "");
    RESERVATION_STRATEGIES(STRATEGY_LINE)
#undef STRATEGY_LINE
}

/* "name<TAB>safe" or "name<TAB>unsafe" (it needs the acknowledgement), in
 * table order: the tests and loadtest/bench cover whatever this lists. */
void config_list_strategies(FILE *out)
{
#define STRATEGY_ROW(id, name, ack, fill, per_event, flow, help) \
    fprintf(out, "%s\t%s\n", name, ack ? "unsafe" : "safe");
    RESERVATION_STRATEGIES(STRATEGY_ROW)
#undef STRATEGY_ROW
}

const char *config_version(void)
{
    return RESERVD_VERSION;
}
