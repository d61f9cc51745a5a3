/* The connection guard: connection limit, read deadlines, drain (guard.h).
 *
 * Connections are in one list under one mutex; each records its stage and
 * when it began (atomics, written by its HTTP thread). The reaper thread
 * alone keeps the rest of the record. It shuts a socket down only under
 * the list lock, and a connection leaves the list (guard_closed) under the
 * same lock before libmicrohttpd closes its descriptor, so the reaper can
 * never shut down a descriptor number that another connection has reused.
 *
 * "First byte" of a request that arrives on an idle connection is seen
 * through TCP_INFO's byte count (libmicrohttpd reads everything at once,
 * so the socket's queue says nothing): the deadline starts when the count
 * first moves, give or take one scan. */

#include "guard.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

struct guard_conn {
    struct guard_conn *prev, *next; /* the list; under guard.lock */
    int fd;
    _Atomic int stage;        /* enum guard_stage */
    _Atomic int64_t stage_ms; /* when it began (monotonic ms) */
    /* The reaper's own view. */
    int seen_stage;
    int64_t seen_ms;
    bool rx_marked; /* rx_mark is the count at this idle stage's start */
    uint64_t rx_mark;
    int64_t first_byte_ms; /* of the current request; 0: not yet */
    bool shut;
};

struct guard {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t reaper;
    struct guard_conn *head;
    int max_connections;
    int read_timeout_ms;
    atomic_int connections;
    atomic_bool draining;
    bool stopping;             /* under lock */
    int64_t refused_logged_ms; /* under lock */
    atomic_uint_fast64_t refused;
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Bytes the kernel has received on fd: 0, or -1 if it cannot say. */
static int bytes_received(int fd, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return -1;
    *out = ti.tcpi_bytes_received;
    return 0;
}

static void shut(struct guard_conn *c, const char *why)
{
    c->shut = true;
    if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_debug("shutdown of connection %d (%s) failed", c->fd, why);
}

/* Whether the connection's request has overstayed the read deadline; the
 * reaper's view of the connection is brought up to date on the way. */
static bool overstayed(struct guard *g, struct guard_conn *c, int64_t now)
{
    int stage = atomic_load_explicit(&c->stage, memory_order_acquire);
    int64_t since = atomic_load_explicit(&c->stage_ms, memory_order_relaxed);
    if (stage != c->seen_stage || since != c->seen_ms) {
        /* A new stage. A request's first byte carries over from idle to
         * receiving; anything else starts afresh. */
        if (!(stage == GUARD_RECEIVING && c->seen_stage == GUARD_IDLE && c->first_byte_ms))
            c->first_byte_ms = stage == GUARD_RECEIVING ? since : 0;
        c->rx_marked = false;
        c->seen_stage = stage;
        c->seen_ms = since;
    }
    if (g->read_timeout_ms <= 0 || stage == GUARD_SERVING)
        return false;
    if (stage == GUARD_IDLE && !c->first_byte_ms) {
        uint64_t rx;
        if (bytes_received(c->fd, &rx) != 0)
            return false;
        if (!c->rx_marked) {
            c->rx_marked = true;
            c->rx_mark = rx;
        } else if (rx != c->rx_mark) {
            c->first_byte_ms = now;
        }
    }
    return c->first_byte_ms && now - c->first_byte_ms > g->read_timeout_ms;
}

static void scan(struct guard *g)
{
    int64_t now = now_ms();
    bool draining = atomic_load(&g->draining);
    int late = 0;
    for (struct guard_conn *c = g->head; c; c = c->next) {
        if (c->shut)
            continue;
        if (overstayed(g, c, now)) {
            shut(c, "read deadline");
            late++;
        } else if (draining && c->seen_stage == GUARD_IDLE) {
            shut(c, "shutting down");
        }
    }
    if (late)
        log_info("closed %d connections whose request did not arrive within %d ms", late,
                 g->read_timeout_ms);
}

static void *reaper_main(void *arg)
{
    struct guard *g = arg;
    int interval_ms = g->read_timeout_ms / 8;
    if (interval_ms < 100)
        interval_ms = 100;
    if (interval_ms > 500)
        interval_ms = 500;
    pthread_mutex_lock(&g->lock);
    while (!g->stopping) {
        scan(g);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        long wait_ms = atomic_load(&g->draining) ? 50 : interval_ms;
        until.tv_nsec += wait_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&g->wake, &g->lock, &until);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int guard_create(int max_connections, int read_timeout_ms, struct guard **out)
{
    struct guard *g = calloc(1, sizeof(*g));
    if (!g)
        return -1;
    g->max_connections = max_connections;
    g->read_timeout_ms = read_timeout_ms;
    /* the reaper's waits are timed on the monotonic clock */
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(g);
        return -1;
    }
    bool cond = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
                pthread_cond_init(&g->wake, &attr) == 0;
    pthread_condattr_destroy(&attr);
    bool mutex = cond && pthread_mutex_init(&g->lock, NULL) == 0;
    if (!mutex || pthread_create(&g->reaper, NULL, reaper_main, g) != 0) {
        if (cond)
            pthread_cond_destroy(&g->wake);
        if (mutex)
            pthread_mutex_destroy(&g->lock);
        free(g);
        return -1;
    }
    *out = g;
    return 0;
}

void guard_destroy(struct guard *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->lock);
    g->stopping = true;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    pthread_join(g->reaper, NULL);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

bool guard_admit(struct guard *g)
{
    if (atomic_load_explicit(&g->connections, memory_order_relaxed) < g->max_connections)
        return true;
    /* Say so, at most once a second: a full server is worth knowing about. */
    atomic_fetch_add_explicit(&g->refused, 1, memory_order_relaxed);
    int64_t now = now_ms();
    pthread_mutex_lock(&g->lock);
    if (now - g->refused_logged_ms >= 1000) {
        g->refused_logged_ms = now;
        log_warn("at the connection limit (%d): closing new connections (%llu so far)",
                 g->max_connections, (unsigned long long)atomic_load(&g->refused));
    }
    pthread_mutex_unlock(&g->lock);
    return false;
}

struct guard_conn *guard_opened(struct guard *g, int fd)
{
    struct guard_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    int64_t now = now_ms();
    atomic_init(&c->stage, GUARD_IDLE);
    atomic_init(&c->stage_ms, now);
    c->seen_stage = GUARD_IDLE;
    c->seen_ms = now;
    c->rx_marked = true; /* a new connection had received nothing */
    pthread_mutex_lock(&g->lock);
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    pthread_mutex_unlock(&g->lock);
    atomic_fetch_add(&g->connections, 1);
    return c;
}

void guard_closed(struct guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->lock);
    atomic_fetch_sub(&g->connections, 1);
    free(c);
}

void guard_stage(struct guard *g, struct guard_conn *c, enum guard_stage stage)
{
    (void)g;
    if (!c)
        return;
    atomic_store_explicit(&c->stage_ms, now_ms(), memory_order_relaxed);
    atomic_store_explicit(&c->stage, (int)stage, memory_order_release);
}

void guard_drain(struct guard *g)
{
    atomic_store(&g->draining, true);
    pthread_mutex_lock(&g->lock);
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
}

bool guard_draining(const struct guard *g)
{
    return atomic_load(&g->draining);
}

int guard_connections(struct guard *g)
{
    return atomic_load(&g->connections);
}
