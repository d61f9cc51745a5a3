/* reservd-load: edge-triggered epoll engine for the spike and steady modes.
 *
 * Each worker thread owns an epoll set and a slice of the connections. A
 * connection slot runs one request at a time: connect (spike: a fresh socket
 * per request), send, parse the response, then either stop (spike) or send the
 * next request on the same keep-alive socket (steady). Request numbers come
 * from one atomic counter so {i} is unique across threads. Nothing is retried:
 * a failed request is counted by kind and the slot moves on. */
#include "lt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SCAN_NS      20000000ull /* timeout scan period: 20 ms */
#define ERR_BODY_MAX 16384       /* failure bodies kept for the error code */

enum { C_IDLE, C_CONNECTING, C_SENDING, C_RECEIVING };

struct conn {
    int fd, state;
    bool rd_pending; /* EPOLLIN seen before the request was fully sent */
    long long k;     /* request number, 0-based */
    uint64_t t0, deadline;
    const char *out;
    size_t out_len, out_off;
    char *obuf; /* rendered request when the template has placeholders */
    size_t obuf_cap;
    char *pend; /* unparsed bytes carried to the next read */
    size_t pend_len, pend_cap;
    struct lt_resp resp;
};

struct worker {
    const struct lt_config *cfg;
    int ep;
    struct conn *conns;
    long nconns, active;
    bool issuing;
    uint64_t stop_issue_ns, hard_stop_ns, req_timeout_ns;
    struct lt_stats st;
    pthread_t tid;
    char tmp[LT_REQ_MAX];
    char rbuf[65536];
};

static atomic_llong next_request;
static char static_req[LT_REQ_MAX];
static size_t static_len;

static void start_next(struct worker *w, struct conn *c);

/* Claims the next request number, unless the run stops issuing. */
static bool take_request(struct worker *w, long long *k)
{
    if (!w->issuing)
        return false;
    if (lt_now_ns() >= w->stop_issue_ns) {
        w->issuing = false;
        return false;
    }
    *k = atomic_fetch_add(&next_request, 1);
    if (*k >= w->cfg->requests) {
        w->issuing = false;
        return false;
    }
    return true;
}

static enum lt_terr connect_kind(int err)
{
    if (err == ECONNREFUSED)
        return TE_CONNECT_REFUSED;
    if (err == EAGAIN || err == EADDRNOTAVAIL)
        return TE_CONNECT_EAGAIN;
    if (err == ETIMEDOUT)
        return TE_TIMEOUT;
    return TE_CONNECT;
}

static void conn_close(struct worker *w, struct conn *c)
{
    if (c->fd < 0)
        return;
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
    c->state = C_IDLE;
    c->rd_pending = false;
    c->pend_len = 0;
    w->active--;
}

/* The "id" member of a JSON body, or -1. */
static long long body_id(const struct lt_resp *r)
{
    json_t *root = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    json_t *id = json_object_get(root, "id");
    long long v = json_is_integer(id) ? (long long)json_integer_value(id) : -1;
    json_decref(root);
    return v;
}

/* --answers: how request k ended (status 0: no response). One fprintf
 * per line: stdio locks the stream, so threads do not interleave. */
static void record_answer(const struct worker *w, long long k, int status, long long id)
{
    if (w->cfg->answers)
        fprintf(w->cfg->answers, "%lld %d %lld\n", w->cfg->user_start + k, status, id);
}

/* Ends the current request without a response. */
static void fail(struct worker *w, struct conn *c, enum lt_terr kind)
{
    record_answer(w, c->k, 0, -1);
    w->st.terr[kind]++;
    w->st.end_ns = lt_now_ns();
    lt_timeline_add(&w->st.timeline, w->st.end_ns, LT_OUT_TRANSPORT);
    conn_close(w, c);
    if (w->cfg->mode == LT_STEADY)
        start_next(w, c);
}

/* Records a complete response and moves the slot on. */
static void complete(struct worker *w, struct conn *c)
{
    uint64_t now = lt_now_ns();
    struct lt_stats *st = &w->st;
    int s = c->resp.status;
    st->responses++;
    st->status[s < LT_MAX_STATUS ? s : 0]++;
    lt_hist_add(&st->hist, (now - c->t0) / 1000);
    lt_timeline_add(&st->timeline, now, s >= 500 ? LT_OUT_5XX : s >= 400 ? LT_OUT_4XX : LT_OUT_OK);
    if (s == 201)
        st->created[c->k % w->cfg->events]++;
    if (s >= 400)
        lt_stats_error_body(st, c->resp.body, c->resp.body_len);
    record_answer(w, c->k, s, w->cfg->answers ? body_id(&c->resp) : -1);
    st->end_ns = now;
    if (!c->resp.keep_alive || w->cfg->mode == LT_SPIKE)
        conn_close(w, c);
    if (w->cfg->mode == LT_STEADY)
        start_next(w, c);
}

static int append_pend(struct conn *c, const char *d, size_t n)
{
    if (c->pend_len + n > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 4096;
        while (cap < c->pend_len + n)
            cap *= 2;
        char *p = realloc(c->pend, cap);
        if (!p)
            return -1;
        c->pend = p;
        c->pend_cap = cap;
    }
    memcpy(c->pend + c->pend_len, d, n);
    c->pend_len += n;
    return 0;
}

/* Feeds newly read bytes to the parser, keeping an unparsed tail (split head). */
static int consume(struct conn *c, const char *d, size_t n)
{
    size_t used = 0;
    if (c->pend_len) {
        if (append_pend(c, d, n) < 0)
            return LT_BAD;
        d = c->pend;
        n = c->pend_len;
    }
    int rc = lt_resp_feed(&c->resp, d, n, &used);
    if (rc == LT_NEED_MORE && used < n) {
        if (d == c->pend) {
            memmove(c->pend, c->pend + used, n - used);
            c->pend_len = n - used;
        } else if (append_pend(c, d + used, n - used) < 0) {
            return LT_BAD;
        }
    } else {
        c->pend_len = 0;
        if (rc == LT_DONE && used < n)
            c->resp.keep_alive = false; /* unsolicited bytes: do not reuse */
    }
    return rc;
}

/* Reads until the response is complete or the socket is drained. A short read
 * means drained: with EPOLLET any later arrival raises a new event. */
static void receive(struct worker *w, struct conn *c, uint32_t ev)
{
    bool drain = ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    for (;;) {
        ssize_t n = read(c->fd, w->rbuf, sizeof w->rbuf);
        if (n > 0) {
            int rc = consume(c, w->rbuf, (size_t)n);
            if (rc == LT_DONE)
                complete(w, c);
            else if (rc == LT_BAD)
                fail(w, c, TE_BAD_RESPONSE);
            else if ((size_t)n < sizeof w->rbuf && !drain && c->resp.keep_alive)
                return;
            else
                continue;
            return;
        }
        if (n == 0) {
            if (lt_resp_eof(&c->resp) == LT_DONE)
                complete(w, c);
            else
                fail(w, c, TE_EOF);
            return;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            fail(w, c, TE_RESET);
        return;
    }
}

/* Writes the rest of the request; waits for EPOLLOUT if the socket is full. */
static void flush(struct worker *w, struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            c->state = C_SENDING;
            return;
        } else if (!(n < 0 && errno == EINTR)) {
            fail(w, c, TE_RESET);
            return;
        }
    }
    c->state = C_RECEIVING;
    if (c->rd_pending) {
        c->rd_pending = false;
        receive(w, c, EPOLLRDHUP); /* data came early: read until drained */
    }
}

/* Points c->out at request c->k: the shared static request or a rendered copy. */
static int prepare(struct worker *w, struct conn *c)
{
    if (static_len) {
        c->out = static_req;
        c->out_len = static_len;
        return 0;
    }
    size_t len;
    if (lt_render_request(w->cfg, c->k, w->cfg->mode == LT_SPIKE, w->tmp, sizeof w->tmp, &len) < 0)
        return -1;
    if (len > c->obuf_cap) {
        char *b = realloc(c->obuf, len);
        if (!b)
            return -1;
        c->obuf = b;
        c->obuf_cap = len;
    }
    memcpy(c->obuf, w->tmp, len);
    c->out = c->obuf;
    c->out_len = len;
    return 0;
}

static void send_request(struct worker *w, struct conn *c)
{
    if (prepare(w, c) < 0) {
        fail(w, c, TE_SOCKET);
        return;
    }
    lt_resp_reset(&c->resp, w->cfg->answers != NULL, ERR_BODY_MAX); /* --answers reads "id" */
    c->out_off = 0;
    c->pend_len = 0;
    flush(w, c);
}

/* Opens a non-blocking socket and starts connecting; the first EPOLLOUT
 * (edge-triggered, registered once for the socket's life) means connected. */
static int open_conn(struct worker *w, struct conn *c, enum lt_terr *kind)
{
    const struct lt_config *cfg = w->cfg;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *kind = TE_SOCKET;
        return -1;
    }
    int one = 1; /* best effort: requests go out in one write anyway */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&cfg->addr, cfg->addrlen) < 0 &&
        errno != EINPROGRESS) {
        *kind = connect_kind(errno);
        close(fd);
        return -1;
    }
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c };
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        *kind = TE_SOCKET;
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = C_CONNECTING;
    w->active++;
    return 0;
}

/* Starts the next request on slot c: on its open keep-alive socket, or on a
 * new connection. Immediate connect failures count and (steady) move on. */
static void start_next(struct worker *w, struct conn *c)
{
    long long k;
    while (take_request(w, &k)) {
        c->k = k;
        c->t0 = lt_now_ns();
        c->deadline = c->t0 + w->req_timeout_ns;
        if (c->fd >= 0) {
            send_request(w, c);
            return;
        }
        enum lt_terr kind;
        if (open_conn(w, c, &kind) == 0)
            return;
        record_answer(w, k, 0, -1);
        w->st.terr[kind]++;
        if (w->cfg->mode == LT_SPIKE)
            return;
    }
    conn_close(w, c);
}

static void on_connected(struct worker *w, struct conn *c, uint32_t ev)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (!err && (ev & (EPOLLERR | EPOLLHUP)))
        err = ECONNREFUSED;
    if (err) {
        fail(w, c, connect_kind(err));
        return;
    }
    if (w->cfg->mode == LT_STEADY) { /* steady latency excludes the connect */
        c->t0 = lt_now_ns();
        c->deadline = c->t0 + w->req_timeout_ns;
    }
    send_request(w, c);
}

static void on_event(struct worker *w, struct conn *c, uint32_t ev)
{
    if (c->fd < 0)
        return;
    if (c->state == C_CONNECTING) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connected(w, c, ev);
    } else if (c->state == C_SENDING) {
        if (ev & (EPOLLIN | EPOLLRDHUP))
            c->rd_pending = true;
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            flush(w, c);
    } else if (c->state == C_RECEIVING && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        receive(w, c, ev);
    }
}

/* Fails requests past their deadline (or all of them at the overall limit). */
static void expire(struct worker *w, uint64_t now, bool all)
{
    for (long i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        if (c->fd >= 0 && (all || now >= c->deadline))
            fail(w, c, TE_TIMEOUT);
    }
}

/* Waits up to timeout_ms for events and dispatches them; -1 if epoll failed. */
static int poll_once(struct worker *w, int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(w->ep, evs, 512, timeout_ms);
    if (n < 0 && errno != EINTR) {
        perror("reservd-load: epoll_wait");
        return -1;
    }
    for (int i = 0; i < n; i++)
        on_event(w, evs[i].data.ptr, evs[i].events);
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->st.start_ns = lt_now_ns();
    /* Open every connection at once, but serve early responses between
     * batches so the client's own opening loop does not add latency. */
    for (long i = 0; i < w->nconns; i++) {
        start_next(w, &w->conns[i]);
        if (i % 64 == 63 && poll_once(w, 0) < 0)
            break;
    }
    uint64_t last_scan = lt_now_ns();
    while (w->active > 0) {
        uint64_t now = lt_now_ns();
        if (now >= w->hard_stop_ns)
            break;
        if (now - last_scan >= SCAN_NS) {
            expire(w, now, false);
            last_scan = now;
        }
        if (poll_once(w, (int)(SCAN_NS / 1000000)) < 0)
            break;
    }
    w->issuing = false; /* overall limit or epoll failure: fail what is left */
    expire(w, 0, true);
    if (!w->st.end_ns)
        w->st.end_ns = lt_now_ns();
    return NULL;
}

static int worker_init(struct worker *w, const struct lt_config *cfg, long nconns, uint64_t start)
{
    w->cfg = cfg;
    w->nconns = nconns;
    w->issuing = true;
    w->req_timeout_ns = (uint64_t)(cfg->req_timeout * 1e9);
    w->hard_stop_ns = start + (uint64_t)(cfg->timeout * 1e9);
    w->stop_issue_ns =
        cfg->mode == LT_STEADY ? start + (uint64_t)(cfg->duration * 1e9) : UINT64_MAX;
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->conns = calloc((size_t)(nconns ? nconns : 1), sizeof *w->conns);
    if (w->ep < 0 || !w->conns || lt_stats_init(&w->st, cfg->events) < 0)
        return -1;
    w->st.timeline.origin_ns = start; /* one origin, so the timelines merge */
    for (long i = 0; i < nconns; i++)
        w->conns[i].fd = -1;
    return 0;
}

static void worker_free(struct worker *w)
{
    for (long i = 0; w->conns && i < w->nconns; i++) {
        free(w->conns[i].obuf);
        free(w->conns[i].pend);
        lt_resp_free(&w->conns[i].resp);
    }
    free(w->conns);
    if (w->ep >= 0)
        close(w->ep);
    lt_stats_free(&w->st);
}

/* Runs the whole load (spike or steady) and merges every worker's stats into out. */
int lt_run(const struct lt_config *c, struct lt_stats *out)
{
    static_len = 0;
    if (lt_template_is_static(c) && lt_render_request(c, 0, c->mode == LT_SPIKE, static_req,
                                                      sizeof static_req, &static_len) < 0)
        return -1;
    atomic_store(&next_request, 0);
    long long slots = c->mode == LT_SPIKE ? c->requests : c->connections;
    long nt = c->threads < slots ? c->threads : (long)(slots ? slots : 1);
    struct worker *ws = calloc((size_t)nt, sizeof *ws);
    if (!ws)
        return -1;
    int rc = 0;
    uint64_t start = lt_now_ns();
    for (long t = 0; t < nt; t++) {
        ws[t].ep = -1;
        long share = (long)(slots / nt + (t < slots % nt));
        if (worker_init(&ws[t], c, share, start) < 0)
            rc = -1;
    }
    long started = 0;
    for (long t = 1; rc == 0 && t < nt; t++) {
        if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0)
            rc = -1;
        else
            started++;
    }
    if (rc == 0)
        worker_main(&ws[0]);
    for (long t = 1; t <= started; t++)
        pthread_join(ws[t].tid, NULL);
    for (long t = 0; t < nt; t++) {
        if (rc == 0)
            lt_stats_merge(out, &ws[t].st);
        worker_free(&ws[t]);
    }
    free(ws);
    return rc;
}
