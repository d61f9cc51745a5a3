/* The thread pool that runs database work off the HTTP threads. */

#include "workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct work *head, *tail;
    bool stopping;
    int nthreads;
    pthread_t threads[];
};

static void *worker_main(void *arg)
{
    struct workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (!w->head && !w->stopping)
            pthread_cond_wait(&w->ready, &w->lock);
        struct work *job = w->head;
        if (!job) { /* stopping and drained */
            pthread_mutex_unlock(&w->lock);
            return NULL;
        }
        w->head = job->next;
        if (!w->head)
            w->tail = NULL;
        pthread_mutex_unlock(&w->lock);
        job->run(job);
    }
}

int workers_start(int nthreads, struct workers **out)
{
    struct workers *w = calloc(1, sizeof(*w) + (size_t)nthreads * sizeof(pthread_t));
    if (!w)
        return -1;
    if (pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w);
        return -1;
    }
    if (pthread_cond_init(&w->ready, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w);
        return -1;
    }
    /* Workers mostly wait on PostgreSQL; small stacks keep many cheap. */
    pthread_attr_t attr;
    bool small = pthread_attr_init(&attr) == 0;
    if (small && pthread_attr_setstacksize(&attr, 256 * 1024) != 0)
        log_warn("workers: cannot shrink thread stacks; using the default size");
    for (; w->nthreads < nthreads; w->nthreads++)
        if (pthread_create(&w->threads[w->nthreads], small ? &attr : NULL, worker_main, w) != 0)
            break;
    if (small)
        pthread_attr_destroy(&attr);
    if (w->nthreads < nthreads) {
        workers_stop(w);
        return -1;
    }
    *out = w;
    return 0;
}

void workers_submit(struct workers *w, struct work *work)
{
    work->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = work;
    else
        w->head = work;
    w->tail = work;
    pthread_cond_signal(&w->ready);
    pthread_mutex_unlock(&w->lock);
}

void workers_stop(struct workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->ready);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->nthreads; i++)
        pthread_join(w->threads[i], NULL);
    pthread_cond_destroy(&w->ready);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
