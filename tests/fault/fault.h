#ifndef RESERVD_FAULT_H
#define RESERVD_FAULT_H

/* Shared support for the fault suite (tests/fault/): servers that are
 * always cleaned up, reservd-load runs with per-request answers, the
 * ledger check of answers against the database, and a raw HTTP exchange
 * that reports exactly what came back. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

/* ---- time ---- */
double fault_now_ms(void); /* CLOCK_MONOTONIC */
void fault_sleep_ms(int ms);
/* Raise RLIMIT_NOFILE to its hard limit (each client is a descriptor). */
void fault_raise_fd_limit(void);

/* ---- servers: registered so that fault_teardown() never leaves one running ---- */
/* test_server_start with args (NULL-ended, may be NULL); 0 or -1. */
int fault_server_start(struct test_server *srv, const char *const *args);
/* A second instance on the database of `db` (test_server_start_url). */
int fault_server_start_on(struct test_server *srv, const struct test_server *db, const char *tag,
                          const char *const *args);
/* SIGTERM, wait, drop the database if it owns one; reservd's exit code
 * (0 expected) or -1 if it died by a signal. */
int fault_server_stop(struct test_server *srv);
/* cmocka teardown: SIGKILL every server and load still running, drop
 * their databases. Always returns 0 (the test has already failed). */
int fault_teardown(void **state);

/* The new settings of issue 10 (--read-timeout-ms, --shutdown-grace-ms):
 * false when FAULT_OLD_FLAGS=1 asks to run a scenario on a server that
 * does not know them, to measure the old behaviour. */
bool fault_new_flags(void);

/* ---- database ---- */
/* test_scalar (harness.h), by its old name. */
#define fault_scalar test_scalar
/* test_seed_users and test_seed_event (harness.h): n users with consecutive
 * ids (asserted), returning the first id; an event with `tickets` tickets
 * and the columns' defaults, returning its id. */
long long fault_seed_users(PGconn *db, const char *prefix, long long n);
long long fault_seed_event(PGconn *db, const char *name, long long tickets);

/* ---- reservd-load with --answers ---- */
struct fault_load {
    pid_t pid;
    char answers_path[128], report_path[128];
    long long first, count; /* {i} from first, at most count requests */
    json_t *report;         /* its --json report (NULL if none) */
    int exit_code;          /* -1: killed by a signal */
    int *status;            /* by i - first: HTTP status, 0 no answer, -1 not sent */
    long long *id;          /* by i - first: the body's "id", or -1 */
};
/* Start reservd-load in the background: `args` (mode, connections,
 * scenario...) plus --user-start first -n count --json --answers --url. */
int fault_load_spawn(struct fault_load *l, int port, long long first, long long count,
                     const char *args_fmt, ...) __attribute__((format(printf, 5, 6)));
/* True while it runs (does not reap it). */
bool fault_load_running(const struct fault_load *l);
/* Wait for it and read its report and answers; 0, or -1 if unreadable. */
int fault_load_wait(struct fault_load *l);
void fault_load_free(struct fault_load *l);
/* report.group.key as an integer (0 if absent), e.g. ("status", "201"). */
long long fault_report_count(const struct fault_load *l, const char *group, const char *key);
double fault_report_latency(const struct fault_load *l, const char *which); /* "p99", "max" */
/* Print status and error-code counts of a load, prefixed by label. */
void fault_report_print(const char *label, const struct fault_load *l);

/* ---- the ledger: every answer against the database ---- */
struct fault_ledger {
    long long answered[600]; /* answers by HTTP status, over all loads */
    long long no_answer;     /* requests that ended without a response */
    long long rows;          /* active reservations on the event */
    long long counter;       /* events.reserved_tickets */
    long long ghosts;        /* active row, but no 201 for that user */
    long long lost;          /* a 201, but no active row for that user */
    long long wrong_id;      /* the 201's id is not the active row's */
    long long double_grant;  /* more than one 201 for one user */
    long long foreign;       /* active rows of users outside the range */
};
/* Compare the answers of loads[0..n) (all over users first..first+count)
 * with the event's active reservations. Prints a summary line. */
int fault_ledger_check(PGconn *db, long long event, long long first, long long count,
                       struct fault_load *const *loads, int n, const char *label,
                       struct fault_ledger *out);
/* The rule: every 201 is in the database with its id, nothing else is,
 * nobody twice, the counter matches the rows. */
bool fault_ledger_clean(const struct fault_ledger *l);

/* ---- raw HTTP ---- */
struct raw_reply {
    int status;    /* first final (non-1xx) status, 0 if none */
    int finals;    /* final status lines received (1 expected) */
    int interim;   /* 1xx status lines */
    bool complete; /* the first final response arrived whole */
    bool closed;   /* the server closed (EOF) */
    bool reset;    /* ... or reset the connection */
    bool hung;     /* no complete response and no close within the limit */
    double ms;     /* until the response was complete or the close */
    char content_type[128];
    char *data; /* everything received, NUL-terminated */
    size_t len;
    size_t body_off, body_len; /* the first final response's body in data */
    json_t *json;              /* that body parsed, or NULL */
};
/* Connect to 127.0.0.1:port, send req, read until the server closes, or
 * a complete response was followed by linger_ms of silence, or limit_ms
 * passed. 0, or -1 if the connection could not be made. */
int raw_exchange(int port, const void *req, size_t len, int limit_ms, int linger_ms,
                 struct raw_reply *out);
void raw_reply_free(struct raw_reply *r);
/* The reply is a JSON error in reservd's format with a JSON content type. */
bool raw_reply_is_json_error(const struct raw_reply *r);

#endif
