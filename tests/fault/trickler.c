/* Slow clients; see trickler.h. */

#include "trickler.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The header never ends: after the prefix, 'a' for ever. */
static const char prefix[] = "POST /reservations HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ";

enum { T_CONNECTING, T_OPEN, T_DONE };

struct slow {
    int fd, state;
    size_t sent;     /* bytes of the endless header sent */
    double first_ms; /* when the first byte went out */
    double close_ms; /* when the server closed, from first_ms */
    bool answered;
};

struct trickler {
    pthread_t thread;
    int port, n, interval_ms, run_ms;
    int ep;
    struct slow *conns;
    atomic_int open;
    struct trickler_result result;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void finish(struct trickler *t, struct slow *c, bool by_server)
{
    if (c->state == T_OPEN)
        atomic_fetch_sub(&t->open, 1);
    if (by_server && c->state == T_OPEN) {
        c->close_ms = now_ms() - c->first_ms;
        t->result.closed++;
        t->result.answered += c->answered;
    }
    if (c->state == T_CONNECTING && by_server)
        t->result.failed++;
    close(c->fd);
    c->fd = -1;
    c->state = T_DONE;
}

/* One more byte; false when the server has gone. */
static bool send_byte(struct slow *c)
{
    char b = c->sent < sizeof(prefix) - 1 ? prefix[c->sent] : 'a';
    ssize_t w = send(c->fd, &b, 1, MSG_NOSIGNAL);
    if (w == 1) {
        c->sent++;
        return true;
    }
    return w < 0 && (errno == EAGAIN || errno == EINTR);
}

static void on_event(struct trickler *t, struct slow *c, uint32_t ev)
{
    if (c->state == T_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err || (ev & (EPOLLERR | EPOLLHUP))) {
            finish(t, c, true);
            return;
        }
        c->state = T_OPEN;
        t->result.opened++;
        atomic_fetch_add(&t->open, 1);
        c->first_ms = now_ms();
        if (!send_byte(c)) {
            finish(t, c, true);
            return;
        }
    }
    if (c->state != T_OPEN || !(ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    char buf[4096];
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r > 0) {
            c->answered = true;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            finish(t, c, true);
        return;
    }
}

static int open_all(struct trickler *t)
{
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)t->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    for (int i = 0; i < t->n; i++) {
        struct slow *c = &t->conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            perror("trickler: socket");
            c->state = T_DONE;
            t->result.failed++;
            continue;
        }
        c->state = T_CONNECTING;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                  .data.ptr = c };
        if ((connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) ||
            epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
            finish(t, c, true);
    }
    return 0;
}

static void *run(void *arg)
{
    struct trickler *t = arg;
    double start = now_ms(), next_tick = start + t->interval_ms;
    open_all(t);
    struct epoll_event evs[256];
    for (;;) {
        double now = now_ms();
        if (now - start >= t->run_ms)
            break;
        if (t->result.closed + t->result.failed >= t->n)
            break;
        if (now >= next_tick) {
            for (int i = 0; i < t->n; i++)
                if (t->conns[i].state == T_OPEN && !send_byte(&t->conns[i]))
                    finish(t, &t->conns[i], true);
            next_tick += t->interval_ms;
        }
        int wait = (int)(next_tick - now_ms());
        int n = epoll_wait(t->ep, evs, 256, wait < 0 ? 0 : wait > 50 ? 50 : wait);
        for (int i = 0; i < n; i++)
            on_event(t, evs[i].data.ptr, evs[i].events);
    }
    for (int i = 0; i < t->n; i++) {
        if (t->conns[i].state != T_DONE) /* open, or never even accepted */
            t->result.still_open++;
        if (t->conns[i].state != T_DONE)
            finish(t, &t->conns[i], false);
    }
    return NULL;
}

int trickler_start(struct trickler **out, int port, int n, int interval_ms, int run_ms)
{
    struct trickler *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->port = port;
    t->n = n;
    t->interval_ms = interval_ms;
    t->run_ms = run_ms;
    t->conns = calloc((size_t)n, sizeof(*t->conns));
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!t->conns || t->ep < 0 || pthread_create(&t->thread, NULL, run, t) != 0) {
        if (t->ep >= 0)
            close(t->ep);
        free(t->conns);
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int trickler_open(struct trickler *t)
{
    return atomic_load(&t->open);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void trickler_join(struct trickler *t, struct trickler_result *out)
{
    pthread_join(t->thread, NULL);
    double *times = calloc((size_t)t->n + 1, sizeof(*times));
    int k = 0;
    for (int i = 0; i < t->n && times; i++)
        if (t->conns[i].close_ms > 0)
            times[k++] = t->conns[i].close_ms;
    if (times && k > 0) {
        qsort(times, (size_t)k, sizeof(*times), cmp_double);
        t->result.max_close_ms = times[k - 1];
        t->result.p50_close_ms = times[k / 2];
    }
    free(times);
    *out = t->result;
    close(t->ep);
    free(t->conns);
    free(t);
}
