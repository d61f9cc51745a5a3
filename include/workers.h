#ifndef RESERVD_WORKERS_H
#define RESERVD_WORKERS_H

/* A fixed set of threads running queued jobs in FIFO order. Jobs are
 * intrusive (embedded in the caller's struct), so submitting never
 * allocates and never fails once the pool runs. */

struct work {
    void (*run)(struct work *work);
    struct work *next;
};

struct workers;

/* Start n threads. 0, or -1 (errno set). */
int workers_start(int nthreads, struct workers **out);
void workers_submit(struct workers *w, struct work *work);
/* Run every queued job, then join the threads and free. */
void workers_stop(struct workers *w);

#endif
