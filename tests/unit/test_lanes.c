/* The per-event lanes (src/reservation/lane.c) on their own: no database,
 * a run function of the test's. Grouping, arrival order, requeueing of
 * undecided requests, deadline expiry, the fill wait, and many submitters
 * and runners at once. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lane.h"
#include "workers.h"

struct rig;

struct item {
    struct rig *rig;
    struct reservation_request r; /* not first: reached with container_of */
    int seq;                      /* arrival order within its event */
    atomic_int answered;          /* done() calls */
    atomic_int runs;              /* times it reached the run function */
};

struct rig {
    struct workers *workers;
    struct lanes *lanes;
    pthread_mutex_t lock; /* guards what the run function records */
    int groups, largest;
    int last_seq[64]; /* per event: the last seq run */
    atomic_int order_broken, done_total;
    int pending_first; /* leave every other request PENDING on its first run */
    int requeue_head_broken;
    int requeued[4096], nrequeued;
    int bad_group; /* a request of another event, or not PENDING */
};

static void item_done(struct reservation_request *r)
{
    struct item *it = container_of(r, struct item, r);
    struct rig *g = it->rig;
    atomic_fetch_add(&it->answered, 1);
    atomic_fetch_add(&g->done_total, 1);
}

static void run(void *ctx, int64_t event_id, struct reservation_request **group, int n)
{
    struct rig *g = ctx;
    pthread_mutex_lock(&g->lock);
    g->groups++;
    if (n > g->largest)
        g->largest = n;
    /* requeued requests come back first, in their order */
    for (int i = 0; i < g->nrequeued; i++)
        if (i >= n || container_of(group[i], struct item, r)->seq != g->requeued[i])
            g->requeue_head_broken++;
    g->nrequeued = 0;
    for (int i = 0; i < n; i++) {
        struct item *it = container_of(group[i], struct item, r);
        if (group[i]->event_id != event_id || group[i]->outcome != RESERVATION_PENDING)
            g->bad_group++; /* (cmocka's asserts belong to the main thread) */
        /* An event's requests reach the run function in arrival order (the
         * answers of consecutive groups may interleave: the lane is handed
         * on before a group is answered). */
        if (!g->pending_first) {
            if (it->seq <= g->last_seq[event_id])
                atomic_fetch_add(&g->order_broken, 1);
            g->last_seq[event_id] = it->seq;
        }
        int first = atomic_fetch_add(&it->runs, 1) == 0;
        if (g->pending_first && first && i % 2 == 1) {
            g->requeued[g->nrequeued++] = it->seq; /* left PENDING: back to the queue */
            continue;
        }
        group[i]->outcome = RESERVATION_RESERVED;
    }
    pthread_mutex_unlock(&g->lock);
}

static void rig_start(struct rig *g, int workers, int group_max, int wait_us)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->lock, NULL);
    for (int i = 0; i < 64; i++)
        g->last_seq[i] = -1;
    assert_int_equal(workers_start(workers, &g->workers), 0);
    assert_int_equal(lanes_create(g->workers, group_max, wait_us, run, g, &g->lanes), 0);
}

static void rig_stop(struct rig *g)
{
    assert_int_equal(g->bad_group, 0);
    workers_stop(g->workers); /* runs everything still queued */
    lanes_destroy(g->lanes);
    pthread_mutex_destroy(&g->lock);
}

static void item_init(struct rig *g, struct item *it, int64_t event, int seq, int deadline_ms)
{
    memset(it, 0, sizeof(*it));
    it->rig = g;
    it->r.event_id = event;
    it->r.user_id = seq + 1;
    it->r.done = item_done;
    clock_gettime(CLOCK_MONOTONIC, &it->r.deadline);
    it->r.deadline.tv_sec += deadline_ms / 1000;
    it->r.deadline.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
    if (it->r.deadline.tv_nsec >= 1000000000L) {
        it->r.deadline.tv_sec++;
        it->r.deadline.tv_nsec -= 1000000000L;
    }
    it->seq = seq;
}

static void wait_done(struct rig *g, int n)
{
    for (int i = 0; i < 5000 && atomic_load(&g->done_total) < n; i++) {
        struct timespec t = { 0, 1000000L };
        nanosleep(&t, NULL);
    }
    assert_int_equal(atomic_load(&g->done_total), n);
}

#define N 2000

static void one_event_in_order(void **state)
{
    (void)state;
    static struct item items[N];
    struct rig g;
    rig_start(&g, 4, 64, 0);
    for (int i = 0; i < N; i++) {
        item_init(&g, &items[i], 1, i, 10000);
        lanes_submit(g.lanes, &items[i].r);
    }
    wait_done(&g, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&items[i].answered), 1);
    assert_int_equal(atomic_load(&g.order_broken), 0);
    assert_true(g.largest <= 64);
    rig_stop(&g);
}

static void undecided_go_back_first(void **state)
{
    (void)state;
    static struct item items[N];
    struct rig g;
    rig_start(&g, 1, 16, 0);
    g.pending_first = 1;
    for (int i = 0; i < N; i++) {
        item_init(&g, &items[i], 2, i, 10000);
        lanes_submit(g.lanes, &items[i].r);
    }
    wait_done(&g, N);
    int twice = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&items[i].answered), 1);
        twice += atomic_load(&items[i].runs) == 2;
    }
    assert_true(twice > 0); /* some really went round again */
    assert_int_equal(g.requeue_head_broken, 0);
    rig_stop(&g);
}

static void expired_are_busy_without_running(void **state)
{
    (void)state;
    static struct item items[10];
    struct rig g;
    rig_start(&g, 2, 16, 0);
    for (int i = 0; i < 10; i++) {
        item_init(&g, &items[i], 3, i, i % 2 ? -1000 : 10000); /* odd ones already late */
        lanes_submit(g.lanes, &items[i].r);
    }
    wait_done(&g, 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(atomic_load(&items[i].answered), 1);
        assert_int_equal(items[i].r.outcome, i % 2 ? RESERVATION_BUSY : RESERVATION_RESERVED);
        assert_int_equal(atomic_load(&items[i].runs), i % 2 ? 0 : 1);
    }
    rig_stop(&g);
}

static void fresh_event_waits_to_fill(void **state)
{
    (void)state;
    static struct item items[8];
    struct rig g;
    rig_start(&g, 2, 8, 300 * 1000); /* up to 300 ms to gather 8 */
    for (int i = 0; i < 8; i++) {
        item_init(&g, &items[i], 4, i, 10000);
        lanes_submit(g.lanes, &items[i].r);
    }
    wait_done(&g, 8);
    assert_int_equal(g.groups, 1); /* one full group, not eight singles */
    assert_int_equal(g.largest, 8);
    rig_stop(&g);
}

/* Many submitters on many events, many runners: nothing lost, nothing
 * answered twice, each event's answers in its arrival order. */
#define THREADS    8
#define EVENTS     16
#define PER_THREAD 1500

struct submitter {
    struct rig *g;
    struct item *items;
    pthread_mutex_t *event_locks;
    int *event_seq;
    int id;
};

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct item *it = &s->items[i];
        int ev = (i * 7 + s->id) % EVENTS;
        /* the seq and the submission under one lock: seq order is arrival order */
        pthread_mutex_lock(&s->event_locks[ev]);
        item_init(s->g, it, ev, s->event_seq[ev]++, 60000);
        lanes_submit(s->g->lanes, &it->r);
        pthread_mutex_unlock(&s->event_locks[ev]);
    }
    return NULL;
}

static void many_submitters_and_runners(void **state)
{
    (void)state;
    static struct item items[THREADS][PER_THREAD];
    static pthread_mutex_t event_locks[EVENTS];
    static int event_seq[EVENTS];
    struct rig g;
    rig_start(&g, 6, 32, 0);
    struct submitter subs[THREADS];
    pthread_t threads[THREADS];
    for (int e = 0; e < EVENTS; e++) {
        pthread_mutex_init(&event_locks[e], NULL);
        event_seq[e] = 0;
    }
    for (int t = 0; t < THREADS; t++) {
        subs[t] = (struct submitter){ &g, items[t], event_locks, event_seq, t };
        assert_int_equal(pthread_create(&threads[t], NULL, submitter_main, &subs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    wait_done(&g, THREADS * PER_THREAD);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++)
            assert_int_equal(atomic_load(&items[t][i].answered), 1);
    assert_int_equal(atomic_load(&g.order_broken), 0);
    rig_stop(&g);
    for (int e = 0; e < EVENTS; e++)
        pthread_mutex_destroy(&event_locks[e]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_event_in_order),
        cmocka_unit_test(undecided_go_back_first),
        cmocka_unit_test(expired_are_busy_without_running),
        cmocka_unit_test(fresh_event_waits_to_fill),
        cmocka_unit_test(many_submitters_and_runners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
