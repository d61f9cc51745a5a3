/* reservd-seed: command line, then users mode or events mode. */
#include "seed.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_USERS      100000000 /* 100 M: a few GiB of staging table */
#define MAX_EVENTS     100000
#define MAX_TICKETS    10000000 /* events.max_tickets CHECK */
#define MAX_PREFIX     64
#define MAX_NAME_CHARS 200 /* events.name CHECK, in characters */

struct seed_opts {
    const char *database_url;
    const char *schema_path;
    const char *prefix;
    const char *event_name;
    int64_t count;
    int64_t tickets;
    bool events;
    bool export_env;
    bool count_set;
    bool tickets_set;
};

static const char USAGE[] =
    "usage: reservd-seed --count N [--prefix P] [common options]\n"
    "       reservd-seed --events --tickets T [--count K] [--event-name NAME] [common options]\n"
    "\n"
    "Users mode inserts users P1..PN (name: P capitalised + i, email: P + i + \"@example.com\")\n"
    "with COPY into a temporary table and INSERT ... ON CONFLICT DO NOTHING, in one\n"
    "transaction: re-running it adds nothing. Prints one summary line.\n"
    "  --count N            number of users, 1..100000000 (required)\n"
    "  --prefix P           1..64 characters of [A-Za-z0-9._-] (default: user)\n"
    "\n"
    "Events mode creates K events (date: now + 30 days, location \"Loadtest hall\") and prints\n"
    "their ids on stdout, one per line, nothing else.\n"
    "  --events             select events mode\n"
    "  --tickets T          max_tickets of each event, 0..10000000 (required)\n"
    "  --count K            number of events, 1..100000 (default: 1)\n"
    "  --event-name NAME    event name; with K > 1 the names are \"NAME 1\"..\"NAME K\"\n"
    "                       (default: \"Load test event <unix time>-<pid>\")\n"
    "\n"
    "Common options:\n"
    "  --export             print shell lines instead, for eval \"$(reservd-seed ...)\":\n"
    "                       users: export USER_START=<first id> USER_COUNT=N, naming N users\n"
    "                       with consecutive ids (the seeded ones when they are; the summary\n"
    "                       goes to stderr); events: export EVENT_ID=<first id> [EVENT_COUNT=K]\n"
    "  --database-url URL   libpq URL or conninfo (default: $DATABASE_URL)\n"
    "  --schema PATH        apply this SQL file first (e.g. sql/migrations/0001_initial.sql); "
    "without it the\n"
    "                       tables must exist already (reservd creates them when it starts)\n"
    "  -h, --help           show this help\n"
    "\n"
    "The users session runs with synchronous_commit = off (seed data is reproducible).\n"
    "On a terminal, runs of 100000 users or more show a progress line (rows, rate, ETA) on\n"
    "stderr; piped or redirected, stderr stays quiet.\n"
    "Exit status: 0 success, 1 database or I/O error, 2 bad arguments.\n";

/* Say what is wrong (fmt may be NULL: getopt already did), then the usage. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        fputs("reservd-seed: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fputs(USAGE, stderr);
    return SEED_USAGE;
}

/* Plain decimal digits only: no sign, no spaces, no hex, no overflow. */
static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    int64_t v = 0;
    if (*s == '\0' || strlen(s) > 18)
        return -1;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* The prefix ends up in COPY text and email addresses unescaped. */
static bool valid_prefix(const char *p)
{
    size_t len = strlen(p);
    return len >= 1 && len <= MAX_PREFIX &&
           strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* Characters as PostgreSQL's char_length counts them (UTF-8 lead bytes). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static size_t decimal_digits(int64_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static int parse_option(int opt, const char *arg, struct seed_opts *o)
{
    switch (opt) {
    case 'c':
        o->count_set = true;
        if (parse_int(arg, 1, MAX_USERS, &o->count) != 0)
            return usage_error("bad --count (1..100000000): %s", arg);
        return 0;
    case 't':
        o->tickets_set = true;
        if (parse_int(arg, 0, MAX_TICKETS, &o->tickets) != 0)
            return usage_error("bad --tickets (0..10000000): %s", arg);
        return 0;
    case 'd': o->database_url = arg; return 0;
    case 's': o->schema_path = arg; return 0;
    case 'p': o->prefix = arg; return 0;
    case 'n': o->event_name = arg; return 0;
    case 'e': o->events = true; return 0;
    case 'x': o->export_env = true; return 0;
    default: return usage_error(NULL);
    }
}

static int check_users_mode(struct seed_opts *o)
{
    if (o->tickets_set || o->event_name != NULL)
        return usage_error("--tickets and --event-name need --events");
    if (!o->count_set)
        return usage_error("--count is required");
    if (o->prefix == NULL)
        o->prefix = "user";
    if (!valid_prefix(o->prefix))
        return usage_error("bad --prefix (1..64 of [A-Za-z0-9._-]): %s", o->prefix);
    return 0;
}

static int check_events_mode(struct seed_opts *o)
{
    if (o->prefix != NULL)
        return usage_error("--prefix is for users, not --events");
    if (!o->tickets_set)
        return usage_error("--events needs --tickets");
    if (!o->count_set)
        o->count = 1;
    else if (o->count > MAX_EVENTS)
        return usage_error("bad --count for --events (1..100000): %" PRId64, o->count);
    if (o->event_name == NULL)
        return 0; /* the default is short; built later */
    size_t chars = utf8_chars(o->event_name);
    if (o->count > 1)
        chars += 1 + decimal_digits(o->count);
    if (o->event_name[0] == '\0' || chars > MAX_NAME_CHARS)
        return usage_error("bad --event-name (1..200 characters including the number suffix): %s",
                           o->event_name);
    return 0;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct seed_opts *o)
{
    static const struct option longopts[] = {
        { "count", required_argument, NULL, 'c' },
        { "database-url", required_argument, NULL, 'd' },
        { "prefix", required_argument, NULL, 'p' },
        { "schema", required_argument, NULL, 's' },
        { "events", no_argument, NULL, 'e' },
        { "event-name", required_argument, NULL, 'n' },
        { "tickets", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { "export", no_argument, NULL, 'x' },
        { NULL, 0, NULL, 0 },
    };
    int opt, rc;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(USAGE, stdout);
            return SEED_OK;
        }
        if ((rc = parse_option(opt, optarg, o)) != 0)
            return rc;
    }
    if (optind < argc)
        return usage_error("unexpected argument: %s", argv[optind]);
    rc = o->events ? check_events_mode(o) : check_users_mode(o);
    if (rc != 0)
        return rc;
    if (o->database_url == NULL)
        o->database_url = getenv("DATABASE_URL");
    if (o->database_url == NULL || o->database_url[0] == '\0')
        return usage_error("no database: pass --database-url or set DATABASE_URL (for the database "
                           "scripts/run.sh serves: export DATABASE_URL=$(scripts/pg.sh db-url))");
    return -1;
}

static int run(PGconn *conn, const struct seed_opts *o)
{
    if (o->schema_path != NULL && seed_apply_schema(conn, o->schema_path) != 0)
        return SEED_FAIL;
    if (seed_require_table(conn, o->events ? "events" : "users") != 0)
        return SEED_FAIL;
    if (!o->events)
        return seed_users(conn, o->prefix, o->count, isatty(STDERR_FILENO) == 1, o->export_env);
    char default_name[64];
    const char *name = o->event_name;
    if (name == NULL) {
        snprintf(default_name, sizeof default_name, "Load test event %lld-%ld",
                 (long long)time(NULL), (long)getpid());
        name = default_name;
    }
    return seed_events(conn, name, o->tickets, o->count, o->export_env);
}

int main(int argc, char **argv)
{
    struct seed_opts o = { 0 };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    PGconn *conn = seed_connect(o.database_url);
    if (conn == NULL)
        return SEED_FAIL;
    rc = run(conn, &o);
    PQfinish(conn);
    return rc;
}
