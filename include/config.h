#ifndef RESERVD_CONFIG_H
#define RESERVD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Every setting has a flag, an environment variable and a default.
 * Precedence: defaults < --env-file < environment < flags. */
struct config {
    char bind[64];            /* --bind / RESERVD_BIND */
    int port;                 /* --port / SERVICE_PORT */
    char database_url[1024];  /* --database-url / DATABASE_URL */
    int db_wait_ms;           /* --db-wait-ms / RESERVD_DB_WAIT_MS */
    int pool_size;            /* --pool-size / RESERVD_POOL_SIZE */
    char db_prepared[4];      /* --db-prepared / RESERVD_DB_PREPARED: "on" or "off" */
    int http_threads;         /* --http-threads / RESERVD_HTTP_THREADS */
    int workers;              /* --workers / RESERVD_WORKERS */
    int max_connections;      /* --max-connections / RESERVD_MAX_CONNECTIONS */
    int connection_timeout_s; /* --connection-timeout / RESERVD_CONNECTION_TIMEOUT */
    int read_timeout_ms;      /* --read-timeout-ms / RESERVD_READ_TIMEOUT_MS */
    int connection_memory;    /* --connection-memory / RESERVD_CONNECTION_MEMORY */
    int shutdown_grace_ms;    /* --shutdown-grace-ms / RESERVD_SHUTDOWN_GRACE_MS */
    int drain_delay_ms;       /* --drain-delay-ms / RESERVD_DRAIN_DELAY_MS */
    int acquire_timeout_ms;   /* --acquire-timeout-ms / RESERVD_ACQUIRE_TIMEOUT_MS */
    int lock_timeout_ms;      /* --lock-timeout-ms / RESERVD_LOCK_TIMEOUT_MS */
    char strategy[32];        /* --reservation-strategy / RESERVD_RESERVATION_STRATEGY */
    bool allow_oversell;      /* --i-understand-unsafe-oversells */
    int batch_max;            /* --batch-max / RESERVD_BATCH_MAX */
    int batch_wait_us;        /* --batch-wait-us / RESERVD_BATCH_WAIT_US */
    int sweep_interval_ms;    /* --sweep-interval-ms / RESERVD_SWEEP_INTERVAL_MS */
    char log_level[16];       /* --log-level / RESERVD_LOG_LEVEL */
    char log_format[16];      /* --log-format / RESERVD_LOG_FORMAT */
    /* Access control and idempotency keys (src/api/auth.c, idempotency.c). */
    char auth[8];               /* --auth / RESERVD_AUTH: token, jwt, off */
    char admin_token_file[512]; /* --admin-token-file / RESERVD_ADMIN_TOKEN_FILE */
    char admin_tokens[1024];    /* --admin-tokens / RESERVD_ADMIN_TOKENS */
    bool metrics_open;          /* --metrics-open / RESERVD_METRICS_OPEN */
    char jwt_key_file[512];     /* --jwt-key-file / RESERVD_JWT_KEY_FILE */
    char jwt_alg[8];            /* --jwt-alg / RESERVD_JWT_ALG */
    char jwt_issuer[256];       /* --jwt-issuer / RESERVD_JWT_ISSUER */
    char jwt_audience[256];     /* --jwt-audience / RESERVD_JWT_AUDIENCE */
    char jwt_admin_claim[64];   /* --jwt-admin-claim / RESERVD_JWT_ADMIN_CLAIM */
    char jwt_admin_role[64];    /* --jwt-admin-role / RESERVD_JWT_ADMIN_ROLE */
    int idempotency_ttl_s;      /* --idempotency-ttl / RESERVD_IDEMPOTENCY_TTL */
};

enum config_result {
    CONFIG_OK = 0,
    CONFIG_EXIT_HELP,       /* --help given: print config_usage(), exit 0 */
    CONFIG_EXIT_VERSION,    /* --version given: print config_version(), exit 0 */
    CONFIG_EXIT_STRATEGIES, /* --list-strategies: print config_list_strategies(), exit 0 */
    CONFIG_ERROR,           /* message in err (unknown flag, bad value); exit 2 */
};

/* Fill cfg with defaults derived from the core count. */
void config_defaults(struct config *cfg, int ncpu);

/* Apply one setting by its flag name without dashes ("pool-size").
 * Returns 0, or -1 with a message naming the setting in err. */
int config_set(struct config *cfg, const char *name, const char *value, char *err, size_t errlen);

/* Apply variables from a lookup function (getenv in production). */
int config_apply_env(struct config *cfg, const char *(*lookup)(const char *), char *err,
                     size_t errlen);

/* Read a dotenv file: KEY=VALUE lines, '#' comments, optional quotes,
 * optional 'export '. Known keys are applied; unknown ones ignored. */
int config_apply_env_file(struct config *cfg, const char *path, char *err, size_t errlen);

/* Full start-up parse: defaults, --env-file, environment, argv. */
enum config_result config_load(struct config *cfg, int argc, char **argv,
                               const char *(*lookup)(const char *), char *err, size_t errlen);

/* Cross-field checks (e.g. an unsafe strategy needs its acknowledgement). */
int config_validate(const struct config *cfg, char *err, size_t errlen);

void config_usage(FILE *out, const char *prog, int ncpu);

/* The reservation strategies, one "name<TAB>safe|unsafe" line each. */
void config_list_strategies(FILE *out);

/* The release, from CMake's project(VERSION). */
const char *config_version(void);

#endif
