/* The reservation strategies behind reservation_submit(): the table (the
 * RESERVATION_STRATEGIES rows of reservation.h, one file each in
 * strategies/), the outcome texts the SQL shares, and how a strategy's run
 * function is driven:
 *
 *   per_event  an event's requests queue in the server (lane.c) and one
 *              worker at a time runs them as a group on one connection;
 *   otherwise  each request runs on its own, on at most as many workers
 *              as reservations may hold pooled connections.
 *
 * Either way, a request left UNKNOWN (its connection died mid-commit) is
 * resolved before anyone is answered. */

#include "reservation.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy.h"

#define INFO_ROW(id, name, ack, fill, per_event, flow, help) \
    { name, ack, fill, per_event, flow, help },
const struct reservation_strategy_info reservation_strategies[] = { RESERVATION_STRATEGIES(
    INFO_ROW) };
#undef INFO_ROW
const size_t reservation_nstrategies =
    sizeof(reservation_strategies) / sizeof(reservation_strategies[0]);

#define RUN_ROW(id, name, ack, fill, per_event, flow, help) id##_run,
static const strategy_run_fn runs[] = { RESERVATION_STRATEGIES(RUN_ROW) };
#undef RUN_ROW

const struct reservation_strategy_info *reservation_strategy_find(const char *name)
{
    for (size_t i = 0; i < reservation_nstrategies; i++)
        if (strcmp(reservation_strategies[i].name, name) == 0)
            return &reservation_strategies[i];
    return NULL;
}

static strategy_run_fn run_of(const struct reservation_strategy *s)
{
    return runs[s->info - reservation_strategies];
}

/* The one text table C and SQL share (with grant_words below). */
static const char *const outcome_names[] = {
    [RESERVATION_PENDING] = "pending",
    [RESERVATION_RESERVED] = "reserved",
    [RESERVATION_EVENT_NOT_FOUND] = "event_not_found",
    [RESERVATION_USER_NOT_FOUND] = "user_not_found",
    [RESERVATION_ALREADY_RESERVED] = "already_reserved",
    [RESERVATION_SOLD_OUT] = "sold_out",
    [RESERVATION_OVER_LIMIT] = "over_limit",
    [RESERVATION_BUSY] = "busy",
    [RESERVATION_KEY_TAKEN] = "idempotency_key_taken",
    [RESERVATION_UNAVAILABLE] = "unavailable",
    [RESERVATION_UNKNOWN] = "unknown",
};
#define NOUTCOMES (sizeof(outcome_names) / sizeof(outcome_names[0]))

bool reservation_outcome_decided(enum reservation_outcome outcome)
{
    return outcome > RESERVATION_PENDING && outcome < RESERVATION_UNKNOWN;
}

const char *reservation_outcome_name(enum reservation_outcome outcome)
{
    return (unsigned)outcome < NOUTCOMES ? outcome_names[outcome] : "invalid";
}

int reservation_outcome_parse(const char *text, enum reservation_outcome *out)
{
    /* only what the statements may answer: the decisions */
    for (int o = RESERVATION_RESERVED; o <= RESERVATION_OVER_LIMIT; o++)
        if (strcmp(text, outcome_names[o]) == 0) {
            *out = (enum reservation_outcome)o;
            return 0;
        }
    return -1;
}

/* The statements' own words, beside the decisions' (the same table: C
 * and SQL share nothing else). */
static const struct {
    const char *text;
    enum grant_word word;
    enum reservation_outcome outcome;
} grant_words[] = {
    { "available", GRANT_AVAILABLE, RESERVATION_PENDING },
    { "conflict", GRANT_CONFLICT, RESERVATION_ALREADY_RESERVED },
};

int grant_word_parse(const char *text, enum grant_word *word, enum reservation_outcome *out)
{
    if (reservation_outcome_parse(text, out) == 0) {
        *word = GRANT_DECIDED;
        return 0;
    }
    for (size_t i = 0; i < sizeof(grant_words) / sizeof(grant_words[0]); i++)
        if (strcmp(text, grant_words[i].text) == 0) {
            *word = grant_words[i].word;
            *out = grant_words[i].outcome;
            return 0;
        }
    return -1;
}

/* Requests whose statement may have committed before its connection died:
 * ask a fresh connection whether each user now holds a reservation for
 * the event. Holding one is the truth for the client (201 with it); holding
 * none means nothing changed (503 unavailable). If the database cannot be
 * asked, 503 it is too, and the reservation, if any, is findable by user
 * and event. */
static void resolve_unknown(struct db_pool *pool, struct db_conn *conn, int64_t event_id,
                            struct reservation_request **group, int n)
{
    struct reservation_request *one[1], **unknown = one;
    int k = 0;
    for (int i = 0; i < n; i++)
        k += group[i]->outcome == RESERVATION_UNKNOWN;
    if (k == 0)
        return;
    if (k > 1 && !(unknown = malloc((size_t)k * sizeof(*unknown))))
        unknown = NULL;
    k = 0;
    for (int i = 0; i < n; i++)
        if (group[i]->outcome == RESERVATION_UNKNOWN) {
            group[i]->outcome = RESERVATION_UNAVAILABLE; /* unless the database says */
            if (unknown)
                unknown[k++] = group[i];
        }
    PGresult *res = NULL;
    if (k > 0 && db_pool_reconnect(pool, conn) == 0)
        res = group_exec(conn, STMT_RESERVE_RESOLVE, event_id, unknown, k, GROUP_USERS, NULL);
    int found = 0;
    if (res && db_result_classify(res) == DB_RESULT_OK) {
        for (int row = 0; row < PQntuples(res); row++) {
            struct grant_row g;
            struct reservation_request *r = NULL;
            if (grant_row_decode(STMT_RESERVE_RESOLVE, res, row, &g) == 0)
                r = group_row(g.ord, unknown, k);
            if (!r)
                continue;
            r->outcome = RESERVATION_RESERVED;
            r->grant.id = g.reservation_id;
            r->grant.reserved_at_ms = g.reserved_at_ms;
            r->grant.quantity = g.quantity;
            r->grant.held = g.held;
            r->grant.expires_at_ms = g.expires_at_ms;
            found++;
        }
    }
    log_warn("connection lost mid-commit: %d of %d requests had reserved (%s)", found, k,
             res ? "resolved" : "could not ask");
    PQclear(res);
    if (unknown != one)
        free(unknown);
}

/* Run group[0..n) on a pooled connection: the lanes' run function, and
 * each single request's. */
static void run_group(void *ctx, int64_t event_id, struct reservation_request **group, int n)
{
    struct reservation_strategy *s = ctx;
    struct db_conn *conn;
    enum db_status rc =
        db_pool_acquire(s->pool, earliest_deadline(group, n), DB_USE_RESERVATION, &conn);
    if (rc != DB_OK) {
        for (int i = 0; i < n; i++)
            group[i]->outcome = rc == DB_BUSY ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
        return;
    }
    run_of(s)(s, conn, event_id, group, n);
    resolve_unknown(s->pool, conn, event_id, group, n);
    db_pool_release(s->pool, conn);
}

/* A worker job for a strategy that is not per_event: run r, then whatever
 * queued meanwhile, until the queue is empty. */
static void run_single(struct work *work)
{
    struct reservation_request *r = container_of(work, struct reservation_request, work);
    struct reservation_strategy *s = r->strategy;
    while (r) {
        run_group(s, r->event_id, &r, 1);
        /* a single run decides: PENDING has no queue to go back to */
        assert(reservation_outcome_decided(r->outcome));
        r->done(r);
        pthread_mutex_lock(&s->single_lock);
        r = s->single_head;
        if (r) {
            s->single_head = r->next;
            if (!s->single_head)
                s->single_tail = NULL;
        } else {
            s->single_running--;
        }
        pthread_mutex_unlock(&s->single_lock);
    }
}

static void submit_single(struct reservation_strategy *s, struct reservation_request *r)
{
    r->next = NULL;
    pthread_mutex_lock(&s->single_lock);
    bool start = s->single_running < s->single_max;
    if (start) {
        s->single_running++;
    } else if (s->single_tail) {
        s->single_tail->next = r;
        s->single_tail = r;
    } else {
        s->single_head = s->single_tail = r;
    }
    pthread_mutex_unlock(&s->single_lock);
    if (start) {
        r->work.run = run_single;
        workers_submit(s->workers, &r->work);
    }
}

int reservation_strategy_create(const struct reservation_options *opts, struct db_pool *pool,
                                struct workers *workers, struct reservation_strategy **out,
                                char *err, size_t errlen)
{
    const struct reservation_strategy_info *info = reservation_strategy_find(opts->strategy);
    if (!info) {
        snprintf(err, errlen, "unknown reservation strategy '%s'", opts->strategy);
        return -1;
    }
    struct reservation_strategy *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->info = info;
    s->pool = pool;
    s->workers = workers;
    s->single_max = db_pool_reserving_max(pool);
    pthread_mutex_init(&s->hint_lock, NULL);
    pthread_mutex_init(&s->single_lock, NULL);
    if (info->per_event &&
        lanes_create(workers, opts->batch_max, info->waits_to_fill ? opts->batch_wait_us : 0,
                     run_group, s, &s->lanes) != 0) {
        reservation_strategy_destroy(s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (opts->sweep_interval_ms > 0 &&
        sweeper_start(pool, opts->metrics, opts->sweep_interval_ms, &s->sweeper) != 0) {
        reservation_strategy_destroy(s);
        snprintf(err, errlen, "cannot start the sweeper thread");
        return -1;
    }
    *out = s;
    return 0;
}

void reservation_strategy_destroy(struct reservation_strategy *s)
{
    if (!s)
        return;
    sweeper_stop(s->sweeper);
    lanes_destroy(s->lanes);
    pthread_mutex_destroy(&s->hint_lock);
    pthread_mutex_destroy(&s->single_lock);
    free(s);
}

const struct reservation_strategy_info *reservation_info(const struct reservation_strategy *s)
{
    return s->info;
}

bool reservation_supports_holds(const struct reservation_strategy *s)
{
    return s->info->purchase_flow;
}

void reservation_submit(struct reservation_strategy *s, struct reservation_request *r)
{
    r->strategy = s;
    r->outcome = RESERVATION_PENDING;
    if (r->quantity < 1)
        r->quantity = 1;
    if (s->lanes)
        lanes_submit(s->lanes, r);
    else
        submit_single(s, r);
}
