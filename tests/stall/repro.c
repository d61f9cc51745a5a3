/* stall-repro: drives libmicrohttpd the way reservd does and counts requests
 * that are never answered.
 *
 * Server: a libmicrohttpd daemon whose access handler suspends every request
 * and queues it; worker threads take everything queued as one group (like
 * reservd's batch strategy), "commit" it, and resume each connection. As in
 * reservd (src/http/server.c), an exchange has two holds, the running handler
 * and the deferral; whoever lets go last resumes, so the resume comes either
 * from a worker (after the handler returned) or from the HTTP thread inside
 * the handler (when the worker was first; the handler sometimes waits a
 * little for that on purpose).
 *
 * Client: keep-alive connections, each sending a small POST, waiting for its
 * answer, and sending the next. A request with no answer within --timeout
 * seconds is lost: counted, and its connection replaced.
 *
 * Modes (--mode):
 *   epoll  MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, a thread pool:
 *          the configuration that stalls (docs/libmicrohttpd-epoll-stall.md)
 *   poll   the same with MHD_USE_POLL
 *   loop   one external-polling MHD_USE_EPOLL daemon per thread, each thread
 *          waiting on its daemon's epoll fd and calling MHD_run(): what
 *          reservd runs
 *
 * Exit status: 0 when every run answered every request, 1 when a request was
 * lost or a transport error seen, 2 on a usage or set-up error.
 *
 *   stall-repro --mode epoll --threads 1 --connections 128 --runs 6
 * loses requests in most runs (128 per stall): see
 * docs/libmicrohttpd-epoll-stall.md. --hold S keeps a stalled process as it
 * is for S seconds after the first loss, for gdb. */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_WORKERS 16

enum mode { MODE_EPOLL, MODE_POLL, MODE_LOOP };

struct options {
    enum mode mode;
    int threads; /* HTTP threads */
    int workers; /* threads answering queued requests */
    int connections;
    int seconds;   /* each run's length */
    int timeout_s; /* a request unanswered this long is lost */
    int runs;
    int hold_s;        /* on the first loss, wait this long (for gdb) */
    bool stop_on_loss; /* end with the first failed run */
};

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void pause_us(long us)
{
    struct timespec t = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&t, NULL);
}

/* ------------------------------------------------------------------ server */

struct loop;

struct job {
    struct job *next;
    struct MHD_Connection *conn;
    struct loop *loop; /* the thread that runs the connection */
    atomic_int holds;  /* the running handler + the deferral */
    atomic_bool answered;
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct job *head, *tail;
    bool stopping;
};

/* A daemon and, in MODE_LOOP, the thread that runs it. */
struct loop {
    struct server *srv;
    struct MHD_Daemon *daemon;
    pthread_t thread;
    int wake_fd; /* MODE_LOOP: eventfd, written after each resume */
    atomic_bool stopping;
};

struct server {
    struct queue q;
    pthread_t workers[MAX_WORKERS];
    int nworkers;
    atomic_int live; /* requests not yet completed */
    atomic_uint seed;
    int listen_fd;
    uint16_t port;
    struct loop loops[MAX_THREADS]; /* MODE_EPOLL, MODE_POLL: loops[0] */
    int nloops;
};

static const char answer_body[] = "{\"ok\":true}";

static void wake(struct loop *l)
{
    uint64_t one = 1;
    if (l->wake_fd >= 0 && write(l->wake_fd, &one, sizeof(one)) != sizeof(one))
        perror("eventfd write");
}

/* Drop one hold; the last one marks the answer ready and resumes. In
 * MODE_LOOP the loop is woken too: MHD_run() looks for resumed connections
 * before it clears its own wake-up, so a resume between the two would
 * otherwise wait for the next event (up to its timeout). */
static void release(struct job *job)
{
    if (atomic_fetch_sub(&job->holds, 1) != 1)
        return;
    struct loop *l = job->loop; /* once resumed, the job may be freed */
    atomic_store(&job->answered, true);
    MHD_resume_connection(job->conn);
    wake(l);
}

static void enqueue(struct queue *q, struct job *job)
{
    pthread_mutex_lock(&q->lock);
    job->next = NULL;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

/* A worker takes everything queued at once, as one group. */
static void *worker_main(void *arg)
{
    struct server *srv = arg;
    struct queue *q = &srv->q;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (!q->head && !q->stopping)
            pthread_cond_wait(&q->ready, &q->lock);
        struct job *group = q->head;
        q->head = q->tail = NULL;
        bool stopping = q->stopping;
        pthread_mutex_unlock(&q->lock);
        if (!group && stopping)
            return NULL;
        pause_us(200); /* the group's transaction */
        while (group) {
            struct job *next = group->next;
            release(group);
            group = next;
        }
    }
}

static enum MHD_Result send_answer(struct MHD_Connection *conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        sizeof(answer_body) - 1, (void *)answer_body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    struct loop *l = cls;
    struct server *srv = l->srv;
    struct job *job = *con_cls;
    if (!job) {
        job = calloc(1, sizeof(*job));
        if (!job)
            return MHD_NO;
        job->conn = conn;
        job->loop = l;
        atomic_fetch_add(&srv->live, 1);
        *con_cls = job;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (atomic_load(&job->answered))
        return send_answer(conn);
    /* Defer, as reservd's http_defer does from a handler on the HTTP thread. */
    atomic_store(&job->holds, 2);
    MHD_suspend_connection(conn);
    enqueue(&srv->q, job);
    /* One request in eight gives the worker a moment to answer first, so
     * that the resume happens here, inside the access handler. */
    if (atomic_fetch_add(&srv->seed, 1) % 8 == 0) {
        for (int i = 0; i < 100 && atomic_load(&job->holds) == 2; i++)
            sched_yield();
    }
    release(job);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct server *srv = cls;
    if (!*con_cls)
        return;
    free(*con_cls);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->live, 1);
}

static int listen_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static struct MHD_Daemon *start_daemon(struct loop *l, unsigned flags, unsigned pool)
{
    struct server *srv = l->srv;
    return MHD_start_daemon(flags | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, l,
                            MHD_OPTION_LISTEN_SOCKET, srv->listen_fd, MHD_OPTION_THREAD_POOL_SIZE,
                            pool, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)4096,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
}

/* MODE_LOOP: wait on the daemon's epoll fd ourselves, then let MHD_run()
 * process what is ready without waiting (its epoll_wait calls get 0). */
static void *loop_main(void *arg)
{
    struct loop *l = arg;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    struct pollfd p[2] = { { .fd = info->epoll_fd, .events = POLLIN },
                           { .fd = l->wake_fd, .events = POLLIN } };
    while (!atomic_load(&l->stopping)) {
        MHD_UNSIGNED_LONG_LONG to;
        int ms = MHD_get_timeout(l->daemon, &to) == MHD_YES ? (to > 1000 ? 1000 : (int)to) : 1000;
        if (poll(p, 2, ms) < 0 && errno != EINTR)
            break;
        uint64_t n;
        if ((p[1].revents & POLLIN) && read(l->wake_fd, &n, sizeof(n)) != sizeof(n))
            perror("eventfd read");
        MHD_run(l->daemon);
    }
    return NULL;
}

static int start_loops(struct server *srv, int n)
{
    for (int i = 0; i < n; i++) {
        struct loop *l = &srv->loops[i];
        l->srv = srv;
        l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        l->daemon = start_daemon(l, MHD_USE_EPOLL, 0);
        if (l->wake_fd < 0 || !l->daemon || pthread_create(&l->thread, NULL, loop_main, l) != 0) {
            if (l->daemon) {
                MHD_quiesce_daemon(l->daemon);
                MHD_stop_daemon(l->daemon);
            }
            if (l->wake_fd >= 0)
                close(l->wake_fd);
            return -1;
        }
        srv->nloops = i + 1;
    }
    return 0;
}

static void stop_loops(struct server *srv)
{
    for (int i = 0; i < srv->nloops; i++) {
        struct loop *l = &srv->loops[i];
        if (l->wake_fd >= 0) {
            atomic_store(&l->stopping, true);
            wake(l);
            pthread_join(l->thread, NULL);
            close(l->wake_fd);
        }
        MHD_quiesce_daemon(l->daemon); /* the listen socket is shared */
        /* libmicrohttpd aborts the process when stopped with a connection
         * still on its suspended list. Under its own polling thread (the
         * faulty modes) one can be left there although every request
         * completed (seen now and then on a loaded machine), so those
         * daemons are left idle, not stopped: the process ends soon. */
        if (l->wake_fd >= 0)
            MHD_stop_daemon(l->daemon);
    }
    srv->nloops = 0;
}

static int server_start(struct server *srv, const struct options *o)
{
    memset(srv, 0, sizeof(*srv));
    pthread_mutex_init(&srv->q.lock, NULL);
    pthread_cond_init(&srv->q.ready, NULL);
    srv->listen_fd = listen_socket(&srv->port);
    if (srv->listen_fd < 0)
        return -1;
    for (int i = 0; i < o->workers; i++) {
        if (pthread_create(&srv->workers[i], NULL, worker_main, srv) != 0)
            return -1;
        srv->nworkers++;
    }
    if (o->mode == MODE_LOOP)
        return start_loops(srv, o->threads);
    struct loop *l = &srv->loops[0];
    l->srv = srv;
    l->wake_fd = -1;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | (o->mode == MODE_EPOLL ? MHD_USE_EPOLL : MHD_USE_POLL);
    l->daemon = start_daemon(l, flags, (unsigned)o->threads);
    if (!l->daemon)
        return -1;
    srv->nloops = 1;
    return 0;
}

/* -1 when requests are still open: libmicrohttpd aborts when stopped with
 * suspended connections, so the server is left running then. */
static int server_stop(struct server *srv)
{
    /* The client has closed its connections: every request ends, once its
     * thread notices (a stalled one wakes on those closes). */
    for (int i = 0; i < 1000 && atomic_load(&srv->live) > 0; i++)
        pause_us(10000);
    if (atomic_load(&srv->live) > 0) {
        fprintf(stderr, "%d requests still open 10 s after the run; not stopping the server\n",
                atomic_load(&srv->live));
        return -1;
    }
    stop_loops(srv);
    close(srv->listen_fd);
    pthread_mutex_lock(&srv->q.lock);
    srv->q.stopping = true;
    pthread_cond_broadcast(&srv->q.ready);
    pthread_mutex_unlock(&srv->q.lock);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    pthread_cond_destroy(&srv->q.ready);
    pthread_mutex_destroy(&srv->q.lock);
    return 0;
}

/* ------------------------------------------------------------------ client */

struct cconn {
    int fd;
    bool waiting; /* a request is out */
    int64_t sent_ms;
    size_t len;
    char buf[1024];
};

struct tally {
    long sent, answered, lost, errors;
};

static const char request[] =
    "POST /reservations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: 24\r\n\r\n{\"eventId\":1,\"userId\":1}";

static int client_open(int ep, uint16_t port, struct cconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->waiting = false;
    c->len = 0;
    return 0;
}

static void client_send(struct cconn *c, struct tally *t)
{
    /* a blocking socket: the request is far smaller than its send buffer */
    if (send(c->fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(request) - 1) {
        t->errors++;
        return;
    }
    c->waiting = true;
    c->sent_ms = now_ms();
    t->sent++;
}

/* Whether buf holds a whole answer; -1 when it is not a 200. */
static int whole_answer(struct cconn *c)
{
    c->buf[c->len] = '\0';
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end)
        return 0;
    if (strncmp(c->buf, "HTTP/1.1 200 ", 13) != 0)
        return -1;
    char *cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (!cl || cl > end)
        return -1;
    size_t need = (size_t)(end + 4 - c->buf) + strtoul(cl + 17, NULL, 10);
    return c->len >= need ? 1 : 0;
}

static void client_read(int ep, uint16_t port, struct cconn *c, struct tally *t, bool sending)
{
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    int whole = n > 0 ? (c->len += (size_t)n, whole_answer(c)) : -1;
    if (whole == 0)
        return;
    if (whole < 0) { /* closed, reset or a wrong answer */
        t->errors++;
        close(c->fd);
        if (client_open(ep, port, c) != 0)
            return;
    } else {
        t->answered++;
        c->waiting = false;
        c->len = 0;
    }
    if (sending)
        client_send(c, t);
}

static void hold_for_gdb(const struct options *o, int fd)
{
    if (o->hold_s <= 0)
        return;
    printf("  first loss on a socket %d; pid %d: holding %d s for a debugger\n", fd, (int)getpid(),
           o->hold_s);
    fflush(stdout);
    sleep((unsigned)o->hold_s);
}

/* Requests past their deadline are lost; their connections are replaced. */
static void reap_lost(int ep, uint16_t port, struct cconn *cs, int n, struct tally *t,
                      const struct options *o, bool sending)
{
    int64_t now = now_ms();
    for (int i = 0; i < n; i++) {
        struct cconn *c = &cs[i];
        if (c->fd < 0 || !c->waiting || now - c->sent_ms < (int64_t)o->timeout_s * 1000)
            continue;
        if (t->lost++ == 0)
            hold_for_gdb(o, c->fd);
        close(c->fd);
        if (client_open(ep, port, c) == 0 && sending)
            client_send(c, t);
    }
}

static int outstanding(const struct cconn *cs, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += cs[i].fd >= 0 && cs[i].waiting;
    return k;
}

static int client_run(const struct options *o, uint16_t port, struct tally *t)
{
    struct cconn *cs = calloc((size_t)o->connections, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || ep < 0) {
        free(cs);
        return -1;
    }
    for (int i = 0; i < o->connections; i++) {
        if (client_open(ep, port, &cs[i]) != 0) {
            fprintf(stderr, "connect: %s\n", strerror(errno));
            t->errors++;
        }
    }
    for (int i = 0; i < o->connections; i++)
        if (cs[i].fd >= 0)
            client_send(&cs[i], t);
    int64_t start = now_ms(), stop_sending = start + (int64_t)o->seconds * 1000;
    int64_t give_up = stop_sending + (int64_t)o->timeout_s * 1000 + 500, last_reap = start;
    struct epoll_event evs[256];
    for (;;) {
        int64_t now = now_ms();
        bool sending = now < stop_sending;
        if ((!sending && outstanding(cs, o->connections) == 0) || now > give_up)
            break;
        int k = epoll_wait(ep, evs, 256, 50);
        for (int i = 0; i < k; i++)
            client_read(ep, port, evs[i].data.ptr, t, sending);
        if (now - last_reap >= 100) {
            reap_lost(ep, port, cs, o->connections, t, o, sending);
            last_reap = now;
        }
    }
    t->lost += outstanding(cs, o->connections);
    for (int i = 0; i < o->connections; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    close(ep);
    free(cs);
    return 0;
}

/* ------------------------------------------------------------------ main */

static const char *mode_name(enum mode m)
{
    return m == MODE_EPOLL ? "epoll" : m == MODE_POLL ? "poll" : "loop";
}

static int usage(const char *why)
{
    fprintf(stderr,
            "%s\nusage: stall-repro [--mode epoll|poll|loop] [--threads N] [--workers N]\n"
            "       [--connections N] [--seconds S] [--timeout S] [--runs N] [--hold S]\n"
            "       [--stop-on-loss]\n",
            why);
    return 2;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longs[] = {
        { "mode", 1, 0, 'm' },         { "threads", 1, 0, 't' },
        { "workers", 1, 0, 'w' },      { "connections", 1, 0, 'c' },
        { "seconds", 1, 0, 'd' },      { "timeout", 1, 0, 'T' },
        { "runs", 1, 0, 'r' },         { "hold", 1, 0, 'H' },
        { "stop-on-loss", 0, 0, 's' }, { 0, 0, 0, 0 }
    };
    *o = (struct options){ MODE_EPOLL, 2, 2, 256, 8, 4, 1, 0, false };
    int ch, bad = 0;
    while (!bad && (ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (ch) {
        case 'm':
            if (strcmp(optarg, "epoll") == 0)
                o->mode = MODE_EPOLL;
            else if (strcmp(optarg, "poll") == 0)
                o->mode = MODE_POLL;
            else if (strcmp(optarg, "loop") == 0)
                o->mode = MODE_LOOP;
            else
                bad = 1;
            break;
        case 't': bad = parse_int(optarg, 1, MAX_THREADS, &o->threads); break;
        case 'w': bad = parse_int(optarg, 1, MAX_WORKERS, &o->workers); break;
        case 'c': bad = parse_int(optarg, 1, 4000, &o->connections); break;
        case 'd': bad = parse_int(optarg, 1, 3600, &o->seconds); break;
        case 'T': bad = parse_int(optarg, 1, 600, &o->timeout_s); break;
        case 'r': bad = parse_int(optarg, 1, 100000, &o->runs); break;
        case 'H': bad = parse_int(optarg, 0, 86400, &o->hold_s); break;
        case 's': o->stop_on_loss = true; break;
        default: bad = 1;
        }
    }
    return bad || optind != argc ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse_options(argc, argv, &o) != 0)
        return usage("bad arguments");
    int failed_runs = 0;
    long lost = 0, errors = 0, answered = 0;
    for (int run = 1; run <= o.runs; run++) {
        struct server srv;
        struct tally t = { 0 };
        if (server_start(&srv, &o) != 0) {
            fprintf(stderr, "cannot start the server (%s mode)\n", mode_name(o.mode));
            return 2;
        }
        int64_t t0 = now_ms();
        if (client_run(&o, srv.port, &t) != 0)
            return 2;
        double secs = (double)(now_ms() - t0) / 1000.0;
        bool stuck = server_stop(&srv) != 0;
        bool bad = t.lost > 0 || t.errors > 0;
        failed_runs += bad;
        lost += t.lost;
        errors += t.errors;
        answered += t.answered;
        printf("run %d/%d mode=%s threads=%d connections=%d: %ld sent, %ld answered, %ld lost "
               "(no answer in %d s), %ld transport errors, %.0f req/s%s\n",
               run, o.runs, mode_name(o.mode), o.threads, o.connections, t.sent, t.answered, t.lost,
               o.timeout_s, t.errors, (double)t.answered / secs, bad ? "  FAILED" : "");
        fflush(stdout);
        if (stuck)
            return 1;
        if (bad && o.stop_on_loss) {
            o.runs = run;
            break;
        }
    }
    printf("total: %d runs, %d failed; %ld answered, %ld lost, %ld transport errors\n", o.runs,
           failed_runs, answered, lost, errors);
    return failed_runs ? 1 : 0;
}
