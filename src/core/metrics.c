/* Counters and histograms for /metrics, kept as arrays of atomics indexed
 * by route and status so the hot path never takes a lock. */

#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"

static const int statuses[] = { 200, 201, 400, 404, 405, 409, 413, 415, 500, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]) + 1) /* + "other" */

static const double bucket_ms[] = { 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 };
#define NBUCKET (sizeof(bucket_ms) / sizeof(bucket_ms[0]) + 1) /* + Inf */

#define NOUTCOME (RESERVATION_UNAVAILABLE + 1)

struct route_metrics {
    atomic_uint_fast64_t by_status[NSTATUS];
    atomic_uint_fast64_t buckets[NBUCKET]; /* not cumulative */
    atomic_uint_fast64_t sum_us;
};

struct metrics {
    const struct route *routes;
    size_t nroutes;
    double start_time;
    atomic_uint_fast64_t outcomes[NOUTCOME];
    atomic_uint_fast64_t cancellations;
    atomic_uint_fast64_t holds_granted, holds_confirmed, holds_expired;
    atomic_uint_fast64_t db_errors;
    atomic_uint_fast64_t waitlist_offered, waitlist_fulfilled, waitlist_expired;
    atomic_bool waitlist_reading;
    struct route_metrics per_route[]; /* nroutes + 1 (unmatched) */
};

int metrics_create(const struct route *routes, size_t nroutes, struct metrics **out)
{
    struct metrics *m = calloc(1, sizeof(*m) + (nroutes + 1) * sizeof(struct route_metrics));
    if (!m)
        return -1;
    m->routes = routes;
    m->nroutes = nroutes;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    *out = m;
    return 0;
}

void metrics_destroy(struct metrics *m)
{
    free(m);
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < NSTATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return NSTATUS - 1;
}

void metrics_observe_request(struct metrics *m, const struct route *route, int status,
                             double duration_ms)
{
    if (!m)
        return;
    size_t r = route ? (size_t)(route - m->routes) : m->nroutes;
    if (r > m->nroutes)
        r = m->nroutes;
    struct route_metrics *rm = &m->per_route[r];
    atomic_fetch_add_explicit(&rm->by_status[status_index(status)], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKET - 1 && duration_ms > bucket_ms[b])
        b++;
    atomic_fetch_add_explicit(&rm->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rm->sum_us, (uint_fast64_t)(duration_ms * 1000.0),
                              memory_order_relaxed);
}

void metrics_count_reservation(struct metrics *m, enum reservation_outcome outcome)
{
    if (m && (unsigned)outcome < NOUTCOME)
        atomic_fetch_add_explicit(&m->outcomes[outcome], 1, memory_order_relaxed);
}

void metrics_count_cancellation(struct metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->cancellations, 1, memory_order_relaxed);
}

void metrics_count_hold_granted(struct metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->holds_granted, 1, memory_order_relaxed);
}

void metrics_count_hold_confirmed(struct metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->holds_confirmed, 1, memory_order_relaxed);
}

void metrics_count_holds_expired(struct metrics *m, int n)
{
    if (m && n > 0)
        atomic_fetch_add_explicit(&m->holds_expired, (uint_fast64_t)n, memory_order_relaxed);
}

void metrics_count_db_error(struct metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->db_errors, 1, memory_order_relaxed);
}

bool metrics_waitlist_read_begin(struct metrics *m)
{
    bool idle = false;
    return m && atomic_compare_exchange_strong(&m->waitlist_reading, &idle, true);
}

void metrics_waitlist_read_end(struct metrics *m)
{
    if (m)
        atomic_store(&m->waitlist_reading, false);
}

void metrics_set_waitlist_totals(struct metrics *m, uint64_t offered, uint64_t fulfilled,
                                 uint64_t expired)
{
    if (!m)
        return;
    atomic_store_explicit(&m->waitlist_offered, offered, memory_order_relaxed);
    atomic_store_explicit(&m->waitlist_fulfilled, fulfilled, memory_order_relaxed);
    atomic_store_explicit(&m->waitlist_expired, expired, memory_order_relaxed);
}

/* A growable text buffer; on allocation failure it stops growing and
 * render returns NULL. */
struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !b->failed; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap : 4096);
        while (cap <= b->len + (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static uint64_t load(atomic_uint_fast64_t *v)
{
    return (uint64_t)atomic_load_explicit(v, memory_order_relaxed);
}

static void render_requests(struct metrics *m, struct buf *b)
{
    put(b, "# HELP reservd_http_requests_total HTTP requests answered, by route and status.\n"
           "# TYPE reservd_http_requests_total counter\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const char *name = r < m->nroutes ? m->routes[r].name : "unmatched";
        for (size_t s = 0; s < NSTATUS; s++) {
            uint64_t n = load(&m->per_route[r].by_status[s]);
            if (!n)
                continue;
            if (s < NSTATUS - 1)
                put(b, "reservd_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n", name,
                    statuses[s], (unsigned long long)n);
            else
                put(b, "reservd_http_requests_total{route=\"%s\",status=\"other\"} %llu\n", name,
                    (unsigned long long)n);
        }
    }
    put(b, "# HELP reservd_http_request_duration_seconds Time from first byte to response.\n"
           "# TYPE reservd_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->nroutes; r++) {
        const char *name = r < m->nroutes ? m->routes[r].name : "unmatched";
        struct route_metrics *rm = &m->per_route[r];
        uint64_t cumulative = 0;
        for (size_t i = 0; i < NBUCKET; i++) {
            cumulative += load(&rm->buckets[i]);
            if (i < NBUCKET - 1)
                put(b,
                    "reservd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    name, bucket_ms[i] / 1000.0, (unsigned long long)cumulative);
            else
                put(b,
                    "reservd_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    name, (unsigned long long)cumulative);
        }
        put(b, "reservd_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
            (double)load(&rm->sum_us) / 1e6);
        put(b, "reservd_http_request_duration_seconds_count{route=\"%s\"} %llu\n", name,
            (unsigned long long)cumulative);
    }
}

char *metrics_render(struct metrics *m, const struct db_pool_stats *pool, size_t *len)
{
    static const char *const outcome_names[NOUTCOME] = {
        [RESERVATION_RESERVED] = "granted",
        [RESERVATION_EVENT_NOT_FOUND] = "event_not_found",
        [RESERVATION_USER_NOT_FOUND] = "user_not_found",
        [RESERVATION_ALREADY_RESERVED] = "already_reserved",
        [RESERVATION_SOLD_OUT] = "sold_out",
        [RESERVATION_OVER_LIMIT] = "over_limit",
        [RESERVATION_BUSY] = "busy",
        [RESERVATION_KEY_TAKEN] = "idempotency_key_taken",
        [RESERVATION_UNAVAILABLE] = "unavailable",
    };
    struct buf b = { 0 };
    render_requests(m, &b);
    put(&b,
        "# HELP reservd_reservations_granted_total Reservations granted.\n"
        "# TYPE reservd_reservations_granted_total counter\n"
        "reservd_reservations_granted_total %llu\n",
        (unsigned long long)load(&m->outcomes[RESERVATION_RESERVED]));
    put(&b, "# HELP reservd_reservations_rejected_total Reservation requests refused, by reason.\n"
            "# TYPE reservd_reservations_rejected_total counter\n");
    for (int o = RESERVATION_EVENT_NOT_FOUND; o < (int)NOUTCOME; o++)
        put(&b, "reservd_reservations_rejected_total{reason=\"%s\"} %llu\n", outcome_names[o],
            (unsigned long long)load(&m->outcomes[o]));
    put(&b,
        "# HELP reservd_reservations_cancelled_total Reservations cancelled.\n"
        "# TYPE reservd_reservations_cancelled_total counter\n"
        "reservd_reservations_cancelled_total %llu\n",
        (unsigned long long)load(&m->cancellations));
    put(&b,
        "# HELP reservd_holds_granted_total Holds granted on POST /reservations (status HELD); "
        "waiting-list offers are counted as reservd_waitlist_offers_made_total only.\n"
        "# TYPE reservd_holds_granted_total counter\n"
        "reservd_holds_granted_total %llu\n"
        "# HELP reservd_holds_confirmed_total Holds confirmed (made RESERVED), waiting-list "
        "offers included.\n"
        "# TYPE reservd_holds_confirmed_total counter\n"
        "reservd_holds_confirmed_total %llu\n"
        "# HELP reservd_holds_expired_total Holds whose expiry this instance wrote, waiting-list "
        "offers included.\n"
        "# TYPE reservd_holds_expired_total counter\n"
        "reservd_holds_expired_total %llu\n",
        (unsigned long long)load(&m->holds_granted), (unsigned long long)load(&m->holds_confirmed),
        (unsigned long long)load(&m->holds_expired));
    put(&b,
        "# HELP reservd_waitlist_offers_made_total Waiting-list offers made (holds the database "
        "gives waiting entries when tickets return; all instances).\n"
        "# TYPE reservd_waitlist_offers_made_total counter\n"
        "reservd_waitlist_offers_made_total %llu\n"
        "# HELP reservd_waitlist_offers_fulfilled_total Waiting-list offers confirmed (all "
        "instances).\n"
        "# TYPE reservd_waitlist_offers_fulfilled_total counter\n"
        "reservd_waitlist_offers_fulfilled_total %llu\n"
        "# HELP reservd_waitlist_offers_expired_total Waiting-list offers expired or cancelled "
        "(all instances).\n"
        "# TYPE reservd_waitlist_offers_expired_total counter\n"
        "reservd_waitlist_offers_expired_total %llu\n",
        (unsigned long long)load(&m->waitlist_offered),
        (unsigned long long)load(&m->waitlist_fulfilled),
        (unsigned long long)load(&m->waitlist_expired));
    put(&b,
        "# HELP reservd_db_errors_total Database failures answered with 503.\n"
        "# TYPE reservd_db_errors_total counter\n"
        "reservd_db_errors_total %llu\n",
        (unsigned long long)load(&m->db_errors));
    put(&b,
        "# HELP reservd_db_pool_size Connections in the pool.\n"
        "# TYPE reservd_db_pool_size gauge\nreservd_db_pool_size %d\n"
        "# HELP reservd_db_pool_in_use Connections handed out.\n"
        "# TYPE reservd_db_pool_in_use gauge\nreservd_db_pool_in_use %d\n"
        "# HELP reservd_db_pool_waiting Requests waiting for a connection.\n"
        "# TYPE reservd_db_pool_waiting gauge\nreservd_db_pool_waiting %d\n"
        "# HELP reservd_db_reconnects_total Connections re-opened after a failure.\n"
        "# TYPE reservd_db_reconnects_total counter\nreservd_db_reconnects_total %llu\n",
        pool->size, pool->in_use, pool->waiting, (unsigned long long)pool->reconnects);
    put(&b,
        "# HELP process_start_time_seconds Start time of the process since the Unix epoch.\n"
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.3f\n",
        m->start_time);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
