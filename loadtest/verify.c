/* reservd-load: --verify reads each event and its active reservations back
 * through the API (plain blocking HTTP) and checks the booking invariants. */
#include "lt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define VERIFY_BODY_MAX  (64u << 20)
#define VERIFY_MAX_PAGES 100000

struct checks {
    json_t *list;
    int passed, failed;
    bool human;
};

struct ids {
    long long *v;
    size_t n, cap;
};

/* Records one check: a JSON entry, plus a PASS/FAIL/SKIP line in human mode. */
static void check(struct checks *ck, long long event, int ok, const char *name, const char *fmt,
                  ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (ok > 0)
        ck->passed++;
    else if (ok == 0)
        ck->failed++;
    json_t *j = json_pack("{s:I,s:s,s:s,s:s}", "event", (json_int_t)event, "check", name, "result",
                          ok > 0    ? "pass"
                          : ok == 0 ? "fail"
                                    : "skip",
                          "detail", detail);
    if (json_array_append_new(ck->list, j) < 0)
        ck->failed++; /* out of memory: do not report success */
    if (ck->human)
        printf("  %-4s  %s (%s)\n", ok > 0 ? "PASS" : ok == 0 ? "FAIL" : "SKIP", name, detail);
}

static int send_all(int fd, const char *d, size_t n)
{
    while (n) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until the parser has a complete response; the unparsed tail stays in acc. */
static int read_response(int fd, struct lt_resp *r)
{
    char *acc = NULL;
    size_t len = 0, cap = 0, parsed = 0;
    int rc = LT_NEED_MORE;
    while (rc == LT_NEED_MORE) {
        if (cap - len < 65536) {
            char *b = cap + 65536 <= VERIFY_BODY_MAX ? realloc(acc, cap + 65536) : NULL;
            if (!b)
                break;
            acc = b;
            cap += 65536;
        }
        ssize_t n = recv(fd, acc + len, cap - len, 0);
        if (n <= 0) {
            rc = n == 0 ? lt_resp_eof(r) : LT_BAD;
            break;
        }
        len += (size_t)n;
        size_t used;
        rc = lt_resp_feed(r, acc + parsed, len - parsed, &used);
        parsed += used;
    }
    free(acc);
    return rc == LT_DONE ? 0 : -1;
}

/* GET path on a fresh connection; returns 0 with the status and the JSON body (or NULL). */
static int http_get(const struct lt_config *c, const char *path, int *status, json_t **body)
{
    int fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {
        .tv_sec = (time_t)c->req_timeout,
        .tv_usec = (suseconds_t)((c->req_timeout - (double)(time_t)c->req_timeout) * 1e6)
    };
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: reservd-load\r\n%s"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     path, c->host, strchr(c->auth, '{') ? "" : c->auth); /* per-user: none */
    struct lt_resp r = { 0 };
    lt_resp_reset(&r, true, VERIFY_BODY_MAX);
    int rc = -1;
    if (n > 0 && (size_t)n < sizeof req &&
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
        connect(fd, (const struct sockaddr *)&c->addr, c->addrlen) == 0 &&
        send_all(fd, req, (size_t)n) == 0 && read_response(fd, &r) == 0) {
        *status = r.status;
        *body = r.body ? json_loadb(r.body, r.body_len, 0, NULL) : NULL;
        rc = 0;
    }
    close(fd);
    lt_resp_free(&r);
    return rc;
}

static int ids_push(struct ids *s, long long v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        long long *p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return -1;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return 0;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Collects the userId of every RESERVED reservation of event id, page by page;
 * *stray counts listed items of another event or status. */
static int fetch_active(const struct lt_config *c, long long id, struct ids *users,
                        long long *stray, char *err, size_t errlen)
{
    long long after = 0;
    for (int page = 0; page < VERIFY_MAX_PAGES; page++) {
        char path[128];
        int status = 0, n = snprintf(path, sizeof path,
                                     "/reservations?eventId=%lld&status=RESERVED&limit=1000", id);
        if (page)
            snprintf(path + n, sizeof path - (size_t)n, "&after=%lld", after);
        json_t *body = NULL, *items, *item;
        size_t i;
        if (http_get(c, path, &status, &body) < 0 || status != 200 ||
            !json_is_array(items = json_object_get(body, "items"))) {
            snprintf(err, errlen, "GET %s failed (status %d)", path, status);
            json_decref(body);
            return -1;
        }
        json_array_foreach(items, i, item)
        {
            json_t *uid = json_object_get(item, "userId");
            const char *st = json_string_value(json_object_get(item, "status"));
            if (json_integer_value(json_object_get(item, "eventId")) != id || !st ||
                strcmp(st, "RESERVED") != 0)
                (*stray)++;
            else if (!json_is_integer(uid) || ids_push(users, json_integer_value(uid)) < 0)
                (*stray)++;
        }
        json_t *next = json_object_get(body, "nextAfter");
        long long prev = after;
        after = json_integer_value(next);
        bool last = !json_is_integer(next);
        json_decref(body);
        if (last)
            return 0;
        if (after <= prev) {
            snprintf(err, errlen, "nextAfter %lld does not advance", after);
            return -1;
        }
    }
    snprintf(err, errlen, "more than %d pages", VERIFY_MAX_PAGES);
    return -1;
}

/* Reads GET /events/{id} into max/reserved/remaining. */
static int fetch_event(const struct lt_config *c, long long id, long long v[3], char *err,
                       size_t errlen)
{
    static const char *const keys[3] = { "maxTickets", "reservedTickets", "remainingTickets" };
    char path[64];
    int status = 0;
    json_t *body = NULL;
    snprintf(path, sizeof path, "/events/%lld", id);
    int rc = http_get(c, path, &status, &body) == 0 && status == 200 ? 0 : -1;
    for (int k = 0; rc == 0 && k < 3; k++) {
        json_t *x = json_object_get(body, keys[k]);
        rc = json_is_integer(x) ? 0 : -1;
        v[k] = json_integer_value(x);
    }
    if (rc < 0)
        snprintf(err, errlen, "GET %s: status %d or fields missing", path, status);
    json_decref(body);
    return rc;
}

static long long count_duplicates(struct ids *users)
{
    long long dups = 0;
    qsort(users->v, users->n, sizeof *users->v, cmp_ll);
    for (size_t i = 1; i < users->n; i++)
        dups += users->v[i] == users->v[i - 1];
    return dups;
}

/* Runs every per-event check; adds the active count to *total_active. */
static void verify_event(const struct lt_config *c, const struct lt_stats *st, long e,
                         struct checks *ck, json_t *events, long long *total_active)
{
    long long id = c->event + e, v[3], stray = 0;
    char err[256];
    struct ids users = { 0 };
    if (ck->human)
        printf("event %lld\n", id);
    if (fetch_event(c, id, v, err, sizeof err) < 0 ||
        fetch_active(c, id, &users, &stray, err, sizeof err) < 0) {
        check(ck, id, 0, "event and reservations readable", "%s", err);
        free(users.v);
        return;
    }
    long long active = (long long)users.n, created = (long long)st->created[e];
    *total_active += active;
    check(ck, id, active <= v[0], "granted <= maxTickets", "%lld active, maxTickets %lld", active,
          v[0]);
    check(ck, id, v[1] == active, "reservedTickets == active reservations", "%lld vs %lld", v[1],
          active);
    check(ck, id, v[2] == v[0] - v[1], "remainingTickets == maxTickets - reservedTickets",
          "%lld vs %lld", v[2], v[0] - v[1]);
    long long dups = count_duplicates(&users);
    check(ck, id, dups == 0, "no user holds two active reservations", "%lld duplicate(s)", dups);
    check(ck, id, stray == 0, "listed items are RESERVED for this event", "%lld stray", stray);
    if (c->reservation_run && !c->allow_prior)
        check(ck, id, created == active, "201 responses == active reservations", "%lld vs %lld%s",
              created, active,
              created < active ? " (the event had reservations before the run: use a fresh event, "
                                 "or --allow-prior)"
                               : "");
    else
        check(ck, id, -1, "201 responses == active reservations", "%s",
              c->reservation_run ? "--allow-prior" : "not a reservation-only run");
    json_t *j =
        json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "id", (json_int_t)id, "maxTickets", (json_int_t)v[0],
                  "reservedTickets", (json_int_t)v[1], "remainingTickets", (json_int_t)v[2],
                  "active", (json_int_t)active, "created", (json_int_t)created);
    if (json_array_append_new(events, j) < 0)
        ck->failed++;
    free(users.v);
}

static uint64_t code_count(const struct lt_stats *st, const char *name)
{
    for (int i = 0; i < st->n_codes; i++)
        if (strcmp(st->codes[i].name, name) == 0)
            return st->codes[i].n;
    return 0;
}

/* A reservation run says little when its requests name users or events
 * that do not exist (ids assumed to be 1..N, gaps left by failed inserts). */
static void check_targets_exist(const struct lt_config *c, const struct lt_stats *st,
                                struct checks *ck)
{
    if (!c->reservation_run)
        return;
    uint64_t users = code_count(st, "user_not_found"), events = code_count(st, "event_not_found");
    check(ck, c->event, users == 0 && events == 0, "every request named an existing user and event",
          "%llu user_not_found, %llu event_not_found%s", (unsigned long long)users,
          (unsigned long long)events,
          users || events ? ": take the ids from reservd-seed --export (--user-start, --event)"
                          : "");
}

int lt_verify(const struct lt_config *c, const struct lt_stats *st, json_t *report)
{
    struct checks ck = { .list = json_array(), .human = !c->json };
    json_t *events = json_array();
    long long total = 0;
    if (!ck.list || !events) {
        json_decref(ck.list);
        json_decref(events);
        return 1;
    }
    if (ck.human)
        printf("\nverify\n");
    for (long e = 0; e < c->events; e++)
        verify_event(c, st, e, &ck, events, &total);
    check_targets_exist(c, st, &ck);
    if (c->expect_granted >= 0)
        check(&ck, c->event, total == c->expect_granted, "active reservations == --expect-granted",
              "%lld vs %lld over %ld event(s)", total, c->expect_granted, c->events);
    if (ck.human)
        printf("verify: %d passed, %d failed\n", ck.passed, ck.failed);
    json_t *v = json_pack("{s:b,s:i,s:i,s:o,s:o}", "ok", ck.failed == 0, "passed", ck.passed,
                          "failed", ck.failed, "events", events, "checks", ck.list);
    if (!v || json_object_set_new(report, "verify", v) < 0)
        return 1;
    return ck.failed ? 1 : 0;
}
