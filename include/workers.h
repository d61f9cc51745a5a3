#ifndef RESERVD_WORKERS_H
#define RESERVD_WORKERS_H

/* A fixed set of threads running queued jobs in FIFO order. Jobs are
 * intrusive (embedded in the caller's struct), so submitting never
 * allocates and never fails once the pool runs. */

#include <stddef.h>

/* The struct that embeds member, from a pointer to that member (a job's
 * struct work is found inside its owner this way). */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct work {
    void (*run)(struct work *work);
    struct work *next;
};

struct workers;

/* Start n threads. 0, or -1 (out of memory, or a thread could not start). */
int workers_start(int nthreads, struct workers **out);
void workers_submit(struct workers *w, struct work *work);
/* Run every queued job, then join the threads and free. */
void workers_stop(struct workers *w);

#endif
