/* What for-update and batch share: the committed read that answers a group
 * without the lock, the tickets-left hint, and the locked step around
 * their grant functions; plus the group statement helpers every strategy
 * uses. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy.h"

/* "{1,2,3}" from each request's field: 20 digits and a comma each at
 * most, braces, NUL. Caller frees; NULL when out of memory. */
enum group_field { FIELD_USER, FIELD_QUANTITY, FIELD_HOLD };
static char *group_array(struct reservation_request *const *group, int n, enum group_field field)
{
    size_t cap = (size_t)n * 21 + 3, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[len++] = '{';
    for (int i = 0; i < n; i++) {
        long long v = field == FIELD_USER       ? (long long)group[i]->user_id
                      : field == FIELD_QUANTITY ? (long long)group[i]->quantity
                                                : (long long)group[i]->hold;
        if (field == FIELD_HOLD)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", v ? "t" : "f");
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? "," : "", v);
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}

/* "{h1,NULL,h2}": each request's Idempotency-Key hash, or its request
 * fingerprint when fingerprint is true (SHA-256 hex or NULL, so nothing to
 * quote). Caller frees; NULL when out of memory. */
static char *group_idem_array(struct reservation_request *const *group, int n, bool fingerprint)
{
    size_t cap = (size_t)n * 66 + 3, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[len++] = '{';
    for (int i = 0; i < n; i++) {
        const char *v = fingerprint ? group[i]->idem_fingerprint : group[i]->idem_key;
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? "," : "", v ? v : "NULL");
    }
    snprintf(out + len, cap - len, "}");
    return out;
}

/* The seconds to keep the group's records: the same for every key. */
static const char *group_idem_ttl(struct reservation_request *const *group, int n)
{
    for (int i = 0; i < n; i++)
        if (group[i]->idem_ttl)
            return group[i]->idem_ttl;
    return NULL;
}

PGresult *group_exec(struct db_conn *conn, enum db_statement stmt, int64_t event_id,
                     struct reservation_request *const *group, int n, enum group_params which,
                     const char *budget)
{
    char ev[24];
    char *users = group_array(group, n, FIELD_USER);
    char *quantities = which != GROUP_USERS ? group_array(group, n, FIELD_QUANTITY) : NULL;
    char *holds = which == GROUP_ALL ? group_array(group, n, FIELD_HOLD) : NULL;
    char *keys = which == GROUP_ALL ? group_idem_array(group, n, false) : NULL;
    char *prints = which == GROUP_ALL ? group_idem_array(group, n, true) : NULL;
    PGresult *res = NULL;
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);
    if (!users || (which != GROUP_USERS && !quantities) ||
        (which == GROUP_ALL && (!holds || !keys || !prints)))
        goto out;
    if (which == GROUP_ALL) {
        const char *params[] = { ev,    users, budget, quantities,
                                 holds, keys,  prints, group_idem_ttl(group, n) };
        res = db_exec(conn, stmt, 8, params);
    } else {
        const char *params[] = { ev, users, quantities };
        res = db_exec(conn, stmt, which == GROUP_QUANTITIES ? 3 : 2, params);
    }
out:
    free(users);
    free(quantities);
    free(holds);
    free(keys);
    free(prints);
    return res;
}

struct reservation_request *group_row(int ord, struct reservation_request *const *group, int n)
{
    return ord >= 1 && ord <= n ? group[ord - 1] : NULL;
}

enum reservation_outcome failure_outcome(const PGresult *res)
{
    if (res && db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT)
        return RESERVATION_BUSY;
    if (res && db_result_classify(res) == DB_RESULT_UNIQUE_VIOLATION)
        return RESERVATION_ALREADY_RESERVED; /* the index backs the check */
    if (res && db_result_classify(res) == DB_RESULT_KEY_TAKEN)
        return RESERVATION_KEY_TAKEN; /* rolled back: another request's record answers */
    log_error("reservation failed: %s", res ? PQresultErrorMessage(res) : "connection lost");
    return RESERVATION_UNAVAILABLE;
}

enum reservation_outcome decide_granted(const struct grant_row *g, struct reservation_request *r)
{
    enum reservation_outcome out;
    enum grant_word word;
    r->holds_expired += g->holds_expired;
    if (!g->outcome || grant_word_parse(g->outcome, &word, &out) != 0 || word == GRANT_AVAILABLE)
        return RESERVATION_UNAVAILABLE;
    if (word == GRANT_CONFLICT)
        return out; /* already_reserved: another writer's, committed */
    r->tickets_left = g->has_tickets_left ? g->tickets_left : 0;
    r->max_per_user = g->max_per_user;
    if (out == RESERVATION_RESERVED) {
        r->grant.id = g->reservation_id;
        r->grant.reserved_at_ms = g->reserved_at_ms;
        r->grant.quantity = r->quantity;
        r->grant.held = g->held;
        r->grant.expires_at_ms = g->expires_at_ms;
    }
    return out;
}

const struct timespec *earliest_deadline(struct reservation_request *const *group, int n)
{
    const struct timespec *t = &group[0]->deadline;
    for (int i = 1; i < n; i++) {
        const struct timespec *d = &group[i]->deadline;
        if (d->tv_sec < t->tv_sec || (d->tv_sec == t->tv_sec && d->tv_nsec < t->tv_nsec))
            t = d;
    }
    return t;
}

/* Committed read for the whole group: answers what cannot succeed (sold
 * out, unknown, over the limit, duplicate) and leaves the rest PENDING
 * ('available'). */
static void precheck_group(struct db_conn *conn, int64_t event_id,
                           struct reservation_request **group, int n, int *left)
{
    *left = 0;
    PGresult *res =
        group_exec(conn, STMT_RESERVE_PRECHECK, event_id, group, n, GROUP_QUANTITIES, NULL);
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != n) {
        enum reservation_outcome fail = failure_outcome(res);
        for (int i = 0; i < n; i++)
            group[i]->outcome = fail;
        PQclear(res);
        return;
    }
    for (int i = 0; i < n; i++)
        group[i]->outcome = RESERVATION_UNAVAILABLE; /* until its row says */
    for (int row = 0; row < n; row++) {
        struct grant_row g;
        struct reservation_request *r = NULL;
        if (grant_row_decode(STMT_RESERVE_PRECHECK, res, row, &g) == 0)
            r = group_row(g.ord, group, n);
        if (!r)
            continue; /* cannot happen: ord is the array position */
        if (g.has_tickets_left)
            *left = g.tickets_left;
        enum grant_word word;
        enum reservation_outcome out;
        if (g.outcome && grant_word_parse(g.outcome, &word, &out) == 0 && word == GRANT_AVAILABLE)
            r->outcome = RESERVATION_PENDING; /* the locked step decides */
        else
            r->outcome = decide_granted(&g, r);
    }
    PQclear(res);
}

static int hint_get(struct reservation_strategy *s, int64_t event_id)
{
    size_t i = (uint64_t)event_id % HINT_STRIPES;
    pthread_mutex_lock(&s->hint_lock);
    int left = s->hints[i].event_id == event_id ? s->hints[i].left : 0;
    pthread_mutex_unlock(&s->hint_lock);
    return left;
}

static void hint_set(struct reservation_strategy *s, int64_t event_id, int left)
{
    size_t i = (uint64_t)event_id % HINT_STRIPES;
    pthread_mutex_lock(&s->hint_lock);
    if (left > 0) {
        s->hints[i].event_id = event_id;
        s->hints[i].left = left;
    } else if (s->hints[i].event_id == event_id) {
        s->hints[i].event_id = 0;
    }
    pthread_mutex_unlock(&s->hint_lock);
}

/* Whatever is still undecided after the grant goes back to the queue and
 * meets the committed read again. If a lock wait runs out, the others are
 * answered busy rather than each waiting its turn at the same lock, so a
 * group ends within about one lock timeout. */
void locked_group(struct reservation_strategy *s, struct db_conn *conn, int64_t event_id,
                  struct reservation_request **group, int n, grant_fn grant, int max, bool max_left)
{
    int left = hint_get(s, event_id);
    if (left <= 0)
        precheck_group(conn, event_id, group, n, &left);

    struct reservation_request **undecided = malloc((size_t)n * sizeof(*undecided));
    int m = 0;
    for (int i = 0; i < n && m < max && (!max_left || m < left); i++) {
        struct reservation_request *r = group[i];
        if (r->outcome != RESERVATION_PENDING)
            continue;
        if (!undecided || lane_request_expired(r)) {
            r->outcome = undecided ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
            continue;
        }
        undecided[m++] = r;
    }
    if (m > 0 && grant(s, conn, undecided, m, &left) == DB_RESULT_LOCK_TIMEOUT)
        /* the others would wait at the same lock: answer them now */
        for (int i = 0; i < n; i++)
            if (group[i]->outcome == RESERVATION_PENDING)
                group[i]->outcome = RESERVATION_BUSY;
    hint_set(s, event_id, left);
    free(undecided);
}
