/* Per-event lanes: requests for one event queue in arrival order, and one
 * worker at a time takes the queue's head as a group, hands it to the run
 * function (the strategy: one pooled connection for the group), and
 * answers it. Requests that arrive while a group runs form
 * the next group, so under load groups grow to whatever arrived during one
 * round trip, and no thread ever waits per request: an HTTP thread queues
 * and returns, and a worker answers a whole group.
 *
 * As soon as a group's database work is done the lane is handed to the
 * next worker, so answering one group overlaps the next group's query. */

#include "lane.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LANE_BUCKETS 1024

struct lane {
    struct work work; /* the lane runs on a worker */
    struct lanes *owner;
    int64_t event_id;
    struct lane *next; /* hash chain */
    struct reservation_request *head, *tail;
    int queued;
    bool fresh;   /* no group has run yet */
    bool filling; /* the runner waits for a full group */
};

struct lanes {
    pthread_mutex_t lock;
    pthread_cond_t filled; /* a filling lane reached group_max */
    struct workers *workers;
    int group_max;
    int wait_us;
    lane_run_fn run;
    void *ctx;
    struct lane *buckets[LANE_BUCKETS];
};

int lanes_create(struct workers *workers, int group_max, int wait_us, lane_run_fn run, void *ctx,
                 struct lanes **out)
{
    struct lanes *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&l->filled, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&l->lock, NULL);
    l->workers = workers;
    l->group_max = group_max > 0 ? group_max : 1;
    l->wait_us = wait_us;
    l->run = run;
    l->ctx = ctx;
    *out = l;
    return 0;
}

void lanes_destroy(struct lanes *l)
{
    if (!l)
        return;
    /* Lanes free themselves when they empty; none is left by now. */
    pthread_cond_destroy(&l->filled);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

static struct lane **lane_slot(struct lanes *l, int64_t event_id)
{
    struct lane **p = &l->buckets[(uint64_t)event_id % LANE_BUCKETS];
    while (*p && (*p)->event_id != event_id)
        p = &(*p)->next;
    return p;
}

static bool expired(const struct timespec *deadline, const struct timespec *now)
{
    return now->tv_sec > deadline->tv_sec ||
           (now->tv_sec == deadline->tv_sec && now->tv_nsec >= deadline->tv_nsec);
}

bool lane_request_expired(const struct reservation_request *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return expired(&r->deadline, &now);
}

/* Called with the lock held: give a fresh lane up to wait_us to gather a
 * full group, so a burst on an idle event is not split into singles. */
static void wait_to_fill(struct lanes *l, struct lane *lane)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += (long)l->wait_us * 1000;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    lane->filling = true;
    while (lane->queued < l->group_max && pthread_cond_timedwait(&l->filled, &l->lock, &until) == 0)
        ;
    lane->filling = false;
}

static void run_lane(struct work *work)
{
    struct lane *lane = container_of(work, struct lane, work);
    struct lanes *l = lane->owner;
    int64_t event_id = lane->event_id;
    struct reservation_request *one[1];

    pthread_mutex_lock(&l->lock);
    if (lane->fresh && l->wait_us > 0 && lane->queued < l->group_max)
        wait_to_fill(l, lane);
    lane->fresh = false;
    int n = lane->queued < l->group_max ? lane->queued : l->group_max;
    struct reservation_request **group = malloc((size_t)n * sizeof(*group));
    if (!group) {
        group = one; /* out of memory: still make progress, one at a time */
        n = 1;
    }
    for (int i = 0; i < n; i++) {
        group[i] = lane->head;
        lane->head = group[i]->next;
        group[i]->outcome = RESERVATION_PENDING;
    }
    if (!lane->head)
        lane->tail = NULL;
    lane->queued -= n;
    pthread_mutex_unlock(&l->lock);

    /* Requests past their deadline are answered busy without running; the
     * rest keep their order at the front. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int live = 0;
    for (int i = 0; i < n; i++) {
        struct reservation_request *r = group[i];
        if (expired(&r->deadline, &now)) {
            r->outcome = RESERVATION_BUSY;
            continue;
        }
        group[i] = group[live];
        group[live++] = r;
    }
    if (live)
        l->run(l->ctx, event_id, group, live);

    /* Split off what must run again; group[0..answer) is ours to answer. */
    struct reservation_request *again = NULL, *again_last = NULL;
    int answer = 0, nagain = 0;
    for (int i = 0; i < n; i++) {
        struct reservation_request *r = group[i];
        if (r->outcome != RESERVATION_PENDING) {
            group[answer++] = r;
            continue;
        }
        r->next = NULL;
        if (again_last)
            again_last->next = r;
        else
            again = r;
        again_last = r;
        nagain++;
    }

    /* Hand the lane on (or retire it) before answering, so the next group
     * does not wait for this one's answers. */
    pthread_mutex_lock(&l->lock);
    if (again) {
        again_last->next = lane->head;
        if (!lane->head)
            lane->tail = again_last;
        lane->head = again;
        lane->queued += nagain;
    }
    if (lane->head) {
        workers_submit(l->workers, &lane->work);
    } else {
        *lane_slot(l, event_id) = lane->next;
        free(lane);
    }
    pthread_mutex_unlock(&l->lock);

    /* The run function must decide something, or the lane spins. */
    assert(answer > 0);
    for (int i = 0; i < answer; i++) {
        assert(reservation_outcome_decided(group[i]->outcome));
        group[i]->done(group[i]);
    }
    if (group != one)
        free(group);
}

void lanes_submit(struct lanes *l, struct reservation_request *r)
{
    r->next = NULL;
    pthread_mutex_lock(&l->lock);
    struct lane **slot = lane_slot(l, r->event_id), *lane = *slot;
    if (!lane) {
        lane = calloc(1, sizeof(*lane));
        if (!lane) {
            pthread_mutex_unlock(&l->lock);
            r->outcome = RESERVATION_UNAVAILABLE;
            r->done(r);
            return;
        }
        lane->work.run = run_lane;
        lane->owner = l;
        lane->event_id = r->event_id;
        lane->fresh = true;
        *slot = lane;
        /* A lane exists while a worker holds it (or is about to): start one. */
        workers_submit(l->workers, &lane->work);
    }
    if (lane->tail)
        lane->tail->next = r;
    else
        lane->head = r;
    lane->tail = r;
    lane->queued++;
    if (lane->filling && lane->queued >= l->group_max)
        pthread_cond_broadcast(&l->filled);
    pthread_mutex_unlock(&l->lock);
}
