/* Group commit: requests for the same event that arrive while that event's
 * previous transaction is running are granted together in the next one
 * (one row lock, one INSERT, one counter update, one WAL flush).
 *
 * Each event has a lane: a FIFO of batches, at most one running. A request
 * joins the newest batch of its lane if that has not started and has room;
 * otherwise it opens a new batch and leads it. A leader waits until its
 * batch is at the head of the lane, runs it, wakes everyone in it and the
 * next leader. A lone request finds an idle lane and runs at once, so it
 * is not delayed; under load, batches grow to whatever arrived during one
 * transaction. */

#include "batch.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"

#define LANE_BUCKETS 1024

struct batch_entry {
    int64_t user_id;
    enum reservation_outcome outcome;
    struct reservation_grant grant;
};

struct batch {
    struct batch *next;
    bool started;
    bool done;
    int refs;                        /* leader and followers still inside */
    pthread_cond_t finished;         /* wakes this batch's followers only */
    int n, cap;
    struct batch_entry *entries[];   /* owned by the waiting requests */
};

struct lane {
    int64_t event_id;
    struct lane *next;               /* hash chain */
    struct batch *head, *tail;
    int users;                       /* requests inside this lane */
    pthread_cond_t turn;             /* the head batch changed: wakes leaders */
};

struct batcher {
    pthread_mutex_t lock;
    struct db_pool *pool;
    int batch_max;
    int batch_wait_us;
    struct lane *buckets[LANE_BUCKETS];
};

int batcher_create(struct db_pool *pool, int batch_max, int batch_wait_us, struct batcher **out)
{
    struct batcher *b = calloc(1, sizeof(*b));
    if (!b)
        return -1;
    pthread_mutex_init(&b->lock, NULL);
    b->pool = pool;
    b->batch_max = batch_max;
    b->batch_wait_us = batch_wait_us;
    *out = b;
    return 0;
}

void batcher_destroy(struct batcher *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b);   /* lanes are freed when they empty */
}

static struct lane **lane_slot(struct batcher *b, int64_t event_id)
{
    struct lane **p = &b->buckets[(uint64_t)event_id % LANE_BUCKETS];
    while (*p && (*p)->event_id != event_id)
        p = &(*p)->next;
    return p;
}

/* Run the batch's transaction and fill every entry. No lock held. */
static void run_batch(struct batcher *b, int64_t event_id, struct batch *batch,
                      const struct timespec *deadline)
{
    enum reservation_outcome fail = RESERVATION_UNAVAILABLE;
    /* "{1,2,3}": 20 digits and a comma per user at most. */
    size_t cap = (size_t)batch->n * 21 + 3, len = 0;
    char *users = malloc(cap), ev[24];
    struct db_conn *conn = NULL;
    PGresult *res = NULL;
    if (!users)
        goto out;
    users[len++] = '{';
    for (int i = 0; i < batch->n; i++)
        len += (size_t)snprintf(users + len, cap - len, "%s%lld", i ? "," : "",
                                (long long)batch->entries[i]->user_id);
    users[len++] = '}';
    users[len] = '\0';
    snprintf(ev, sizeof(ev), "%lld", (long long)event_id);

    int rc = db_pool_acquire(b->pool, deadline, &conn);
    if (rc != DB_OK) {
        fail = rc == DB_BUSY ? RESERVATION_BUSY : RESERVATION_UNAVAILABLE;
        goto out;
    }
    const char *params[] = {ev, users};
    res = db_exec(conn, STMT_RESERVE_BATCH, 2, params);
    if (!res || db_result_classify(res) != DB_RESULT_OK || PQntuples(res) != batch->n) {
        if (res && db_result_classify(res) == DB_RESULT_LOCK_TIMEOUT)
            fail = RESERVATION_BUSY;
        else
            log_error("batch reservation failed: %s",
                      res ? PQresultErrorMessage(res) : "connection lost");
        goto out;
    }
    for (int row = 0; row < batch->n; row++) {
        int ord = atoi(PQgetvalue(res, row, 0));
        if (ord < 1 || ord > batch->n)
            continue;
        struct batch_entry *e = batch->entries[ord - 1];
        if (reservation_outcome_parse(PQgetvalue(res, row, 1), &e->outcome) != 0)
            e->outcome = RESERVATION_UNAVAILABLE;
        if (e->outcome == RESERVATION_RESERVED) {
            e->grant.id = strtoll(PQgetvalue(res, row, 2), NULL, 10);
            e->grant.reserved_at_ms = strtoll(PQgetvalue(res, row, 3), NULL, 10);
        }
    }
    fail = RESERVATION_RESERVED;   /* every entry has its own answer */
    log_debug("batch: event %lld, %d requests", (long long)event_id, batch->n);
out:
    if (fail != RESERVATION_RESERVED)
        for (int i = 0; i < batch->n; i++)
            batch->entries[i]->outcome = fail;
    PQclear(res);
    if (conn)
        db_pool_release(b->pool, conn);
    free(users);
}

static void wait_briefly(struct batcher *b, struct lane *lane)
{
    /* Optional: give a batch at the head of an idle lane time to fill. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)b->batch_wait_us * 1000;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&lane->turn, &b->lock, &until);
}

/* The lane of event_id, created on first use; counts us as a user. */
static struct lane *lane_enter(struct batcher *b, int64_t event_id)
{
    struct lane **slot = lane_slot(b, event_id), *lane = *slot;
    if (!lane) {
        lane = calloc(1, sizeof(*lane));
        if (!lane)
            return NULL;
        lane->event_id = event_id;
        pthread_cond_init(&lane->turn, NULL);
        *slot = lane;
    }
    lane->users++;
    return lane;
}

/* The last request to leave an idle lane frees it. */
static void lane_leave(struct batcher *b, struct lane *lane)
{
    if (--lane->users > 0)
        return;
    struct lane **slot = lane_slot(b, lane->event_id);
    *slot = lane->next;
    pthread_cond_destroy(&lane->turn);
    free(lane);
}

/* Drop one reference to a finished batch. */
static void batch_unref(struct batch *batch)
{
    if (--batch->refs == 0) {
        pthread_cond_destroy(&batch->finished);
        free(batch);
    }
}

enum reservation_outcome batcher_reserve(struct batcher *b, int64_t event_id, int64_t user_id,
                                         const struct timespec *deadline,
                                         struct reservation_grant *grant)
{
    struct batch_entry entry = {.user_id = user_id, .outcome = RESERVATION_UNAVAILABLE};
    pthread_mutex_lock(&b->lock);
    struct lane *lane = lane_enter(b, event_id);
    if (!lane) {
        pthread_mutex_unlock(&b->lock);
        return RESERVATION_UNAVAILABLE;
    }
    struct batch *batch = lane->tail;
    if (batch && !batch->started && batch->n < batch->cap) {
        /* Follower: the batch's leader answers for us. */
        batch->entries[batch->n++] = &entry;
        batch->refs++;
        while (!batch->done)
            pthread_cond_wait(&batch->finished, &b->lock);
        batch_unref(batch);
    } else if ((batch = calloc(1, sizeof(*batch) + (size_t)b->batch_max *
                                                       sizeof(batch->entries[0])))) {
        batch->cap = b->batch_max;
        batch->refs = 1;
        pthread_cond_init(&batch->finished, NULL);
        batch->entries[batch->n++] = &entry;
        if (lane->tail)
            lane->tail->next = batch;
        else
            lane->head = batch;
        lane->tail = batch;

        /* Leader: wait for our turn (the previous batch holds the row lock). */
        if (lane->head == batch && b->batch_wait_us > 0)
            wait_briefly(b, lane);
        while (lane->head != batch)
            pthread_cond_wait(&lane->turn, &b->lock);
        batch->started = true;
        pthread_mutex_unlock(&b->lock);

        run_batch(b, event_id, batch, deadline);

        pthread_mutex_lock(&b->lock);
        batch->done = true;
        lane->head = batch->next;
        if (!lane->head)
            lane->tail = NULL;
        pthread_cond_broadcast(&batch->finished);
        pthread_cond_broadcast(&lane->turn);   /* leaders queued behind us */
        batch_unref(batch);
    }
    lane_leave(b, lane);
    pthread_mutex_unlock(&b->lock);
    *grant = entry.grant;
    return entry.outcome;
}
