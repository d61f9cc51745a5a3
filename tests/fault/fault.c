/* Fault-suite support; see fault.h. */

#include "fault.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double fault_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

void fault_sleep_ms(int ms)
{
    struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

void fault_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            perror("setrlimit");
    }
}

bool fault_new_flags(void)
{
    const char *old = getenv("FAULT_OLD_FLAGS");
    return !(old && strcmp(old, "1") == 0);
}

/* ---- the registry of children to clean up after a failed assertion ---- */

#define MAX_TRACKED 32

struct tracked {
    const void *owner; /* the test_server or fault_load, to forget it */
    pid_t pid;
    char dbname[64]; /* database to drop, "" if none */
};
static struct tracked tracked[MAX_TRACKED];

static void track(const void *owner, pid_t pid, const char *dbname)
{
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!tracked[i].owner) {
            tracked[i].owner = owner;
            tracked[i].pid = pid;
            snprintf(tracked[i].dbname, sizeof(tracked[i].dbname), "%s", dbname ? dbname : "");
            return;
        }
    }
    fprintf(stderr, "fault: more than %d children; the extra one is not tracked\n", MAX_TRACKED);
}

static void forget(const void *owner)
{
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].owner == owner)
            memset(&tracked[i], 0, sizeof(tracked[i]));
}

/* Kill pid if it is still our running child (a reaped pid is not). */
static void kill_child(pid_t pid)
{
    int status;
    if (pid > 0 && waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
}

int fault_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_TRACKED; i++) {
        if (!tracked[i].owner)
            continue;
        kill_child(tracked[i].pid);
        if (tracked[i].dbname[0]) {
            struct test_server gone = { .pid = 0 };
            snprintf(gone.dbname, sizeof(gone.dbname), "%s", tracked[i].dbname);
            test_server_stop(&gone); /* drops the database */
        }
        memset(&tracked[i], 0, sizeof(tracked[i]));
    }
    return 0;
}

int fault_server_start(struct test_server *srv, const char *const *args)
{
    int rc = test_server_start(srv, args);
    /* tracked even when the start failed: the database exists */
    track(srv, srv->pid, srv->dbname);
    return rc;
}

int fault_server_start_on(struct test_server *srv, const struct test_server *db, const char *tag,
                          const char *const *args)
{
    int rc = test_server_start_url(srv, db->url, tag, args);
    track(srv, srv->pid, NULL);
    return rc;
}

int fault_server_stop(struct test_server *srv)
{
    bool owns_db = false;
    for (int i = 0; i < MAX_TRACKED; i++)
        if (tracked[i].owner == srv)
            owns_db = tracked[i].dbname[0] != '\0';
    forget(srv);
    if (owns_db)
        return test_server_stop(srv);
    int status = test_server_kill(srv, SIGTERM);
    if (status == 0)
        unlink(srv->log_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- database ---- */

long long fault_seed_users(PGconn *db, const char *prefix, long long n)
{
    return test_seed_users(db, prefix, n);
}

long long fault_seed_event(PGconn *db, const char *name, long long tickets)
{
    return test_seed_event(db, name, tickets, 0, 0, 0);
}

/* ---- reservd-load ---- */

int fault_load_spawn(struct fault_load *l, int port, long long first, long long count,
                     const char *args_fmt, ...)
{
    static int seq;
    char args[1024], cmd[2048];
    va_list ap;
    va_start(ap, args_fmt);
    vsnprintf(args, sizeof(args), args_fmt, ap);
    va_end(ap);
    memset(l, 0, sizeof(*l));
    l->first = first;
    l->count = count;
    seq++;
    snprintf(l->answers_path, sizeof(l->answers_path), "fault-%d-%d.answers", (int)getpid(), seq);
    snprintf(l->report_path, sizeof(l->report_path), "fault-%d-%d.json", (int)getpid(), seq);
    snprintf(cmd, sizeof(cmd),
             "exec '%s' %s --user-start %lld -n %lld --json --answers %s "
             "--url http://127.0.0.1:%d > %s",
             test_binary("RESERVD_LOAD_BIN"), args, first, count, l->answers_path, port,
             l->report_path);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    l->pid = pid;
    track(l, pid, NULL);
    return 0;
}

bool fault_load_running(const struct fault_load *l)
{
    siginfo_t info = { 0 };
    if (waitid(P_PID, (id_t)l->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return false;
    return info.si_pid == 0; /* nothing to report yet: still running */
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[65536];
    size_t n;
    while (mem && (n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, mem);
    fclose(f);
    if (mem)
        fclose(mem);
    return text;
}

static int read_answers(struct fault_load *l)
{
    l->status = malloc((size_t)l->count * sizeof(*l->status));
    l->id = malloc((size_t)l->count * sizeof(*l->id));
    FILE *f = fopen(l->answers_path, "r");
    if (!l->status || !l->id || !f) {
        if (f)
            fclose(f);
        return -1;
    }
    for (long long k = 0; k < l->count; k++) {
        l->status[k] = -1;
        l->id[k] = -1;
    }
    long long i, id;
    int status;
    while (fscanf(f, "%lld %d %lld", &i, &status, &id) == 3) {
        if (i >= l->first && i < l->first + l->count) {
            l->status[i - l->first] = status;
            l->id[i - l->first] = id;
        }
    }
    fclose(f);
    return 0;
}

int fault_load_wait(struct fault_load *l)
{
    int status = 0;
    if (waitpid(l->pid, &status, 0) != l->pid)
        status = -1;
    forget(l);
    l->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    char *text = read_file(l->report_path);
    json_error_t err;
    l->report = text ? json_loads(text, 0, &err) : NULL;
    if (!l->report)
        fprintf(stderr, "reservd-load (exit %d) printed no JSON report: %s\n", l->exit_code,
                text ? text : "(nothing)");
    free(text);
    int rc = read_answers(l);
    if (!getenv("FAULT_KEEP_FILES")) { /* set it to look at a run's answers */
        unlink(l->report_path);
        unlink(l->answers_path);
    }
    return l->report && rc == 0 ? 0 : -1;
}

void fault_load_free(struct fault_load *l)
{
    json_decref(l->report);
    free(l->status);
    free(l->id);
    l->report = NULL;
    l->status = NULL;
    l->id = NULL;
}

long long fault_report_count(const struct fault_load *l, const char *group, const char *key)
{
    json_t *v = json_object_get(json_object_get(l->report, group), key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

double fault_report_latency(const struct fault_load *l, const char *which)
{
    return json_number_value(json_object_get(json_object_get(l->report, "latency_ms"), which));
}

static void print_counts(json_t *obj)
{
    const char *k;
    json_t *v;
    int first = 1;
    json_object_foreach(obj, k, v)
    {
        fprintf(stderr, "%s%s x %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = 0;
    }
    if (first)
        fprintf(stderr, "-");
}

void fault_report_print(const char *label, const struct fault_load *l)
{
    fprintf(stderr, "%s: status ", label);
    print_counts(json_object_get(l->report, "status"));
    fprintf(stderr, "; codes ");
    print_counts(json_object_get(l->report, "errors"));
    fprintf(stderr, "; transport ");
    print_counts(json_object_get(l->report, "transport_error_kinds"));
    fprintf(stderr, "; %.2f s, p50 %.1f ms, p99 %.1f ms, max %.1f ms (exit %d)\n",
            json_number_value(json_object_get(l->report, "wall_seconds")),
            fault_report_latency(l, "p50"), fault_report_latency(l, "p99"),
            fault_report_latency(l, "max"), l->exit_code);
}

/* ---- the ledger ---- */

/* Active reservation id by user - first (0: none); rows of other users
 * are counted in *foreign. */
static long long *active_rows(PGconn *db, long long event, long long first, long long count,
                              long long *rows, long long *foreign)
{
    char ev[24];
    snprintf(ev, sizeof(ev), "%lld", event);
    const char *params[] = { ev };
    PGresult *res = PQexecParams(db,
                                 "SELECT user_id, id FROM reservations "
                                 "WHERE event_id = $1 AND status = 'RESERVED'",
                                 1, NULL, params, NULL, NULL, 0);
    long long *by_user = calloc((size_t)count, sizeof(*by_user));
    if (PQresultStatus(res) != PGRES_TUPLES_OK || !by_user) {
        fprintf(stderr, "ledger: %s", PQresultErrorMessage(res));
        PQclear(res);
        free(by_user);
        return NULL;
    }
    *rows = PQntuples(res);
    *foreign = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        long long user = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        if (user >= first && user < first + count)
            by_user[user - first] = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        else
            (*foreign)++;
    }
    PQclear(res);
    return by_user;
}

int fault_ledger_check(PGconn *db, long long event, long long first, long long count,
                       struct fault_load *const *loads, int n, const char *label,
                       struct fault_ledger *out)
{
    memset(out, 0, sizeof(*out));
    long long *row = active_rows(db, event, first, count, &out->rows, &out->foreign);
    if (!row)
        return -1;
    out->counter = fault_scalar(db, "SELECT reserved_tickets FROM events WHERE id = %lld", event);
    for (long long k = 0; k < count; k++) {
        int granted = 0;
        long long granted_id = -1;
        for (int j = 0; j < n; j++) {
            const struct fault_load *l = loads[j];
            long long at = first + k - l->first;
            if (at < 0 || at >= l->count || l->status[at] < 0)
                continue;
            int s = l->status[at];
            if (s == 0)
                out->no_answer++;
            else if (s < 600)
                out->answered[s]++;
            if (s == 201) {
                granted++;
                granted_id = l->id[at];
            }
        }
        if (granted > 1)
            out->double_grant++;
        if (row[k] && !granted)
            out->ghosts++;
        if (!row[k] && granted)
            out->lost++;
        if (row[k] && granted == 1 && granted_id != row[k])
            out->wrong_id++;
    }
    free(row);
    fprintf(stderr, "%s: answers", label);
    for (int s = 100; s < 600; s++)
        if (out->answered[s])
            fprintf(stderr, " %d x %lld,", s, out->answered[s]);
    fprintf(stderr,
            " no answer x %lld | database: %lld active rows, counter %lld | "
            "ghosts %lld, lost %lld, wrong id %lld, double %lld, foreign %lld\n",
            out->no_answer, out->rows, out->counter, out->ghosts, out->lost, out->wrong_id,
            out->double_grant, out->foreign);
    return 0;
}

bool fault_ledger_clean(const struct fault_ledger *l)
{
    return l->ghosts == 0 && l->lost == 0 && l->wrong_id == 0 && l->double_grant == 0 &&
           l->foreign == 0 && l->counter == l->rows && l->answered[201] == l->rows;
}

/* ---- raw HTTP ---- */

static bool is_status_line(const char *p, size_t avail, int *code)
{
    if (avail < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return false;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    *code = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    return true;
}

/* Header value of name within [head, end), copied into buf; false if absent. */
static bool header_value(const char *head, const char *end, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);
    for (const char *line = head; line && line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        if ((size_t)(eol - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (v < eol && *v == ' ')
                v++;
            size_t vl = (size_t)(eol - v);
            if (vl && v[vl - 1] == '\r')
                vl--;
            snprintf(buf, len, "%.*s", (int)vl, v);
            return true;
        }
        line = eol + 1;
    }
    return false;
}

/* End of the header block starting at head: the blank line, or NULL. */
static const char *head_end(const char *head, size_t *sep)
{
    const char *crlf = strstr(head, "\r\n\r\n"), *lf = strstr(head, "\n\n");
    if (crlf && (!lf || crlf < lf)) {
        *sep = 4;
        return crlf;
    }
    *sep = 2;
    return lf;
}

/* Status lines at line starts, anywhere (a header block sent twice shows
 * up inside the first response's body). */
static int scan_finals(const struct raw_reply *r)
{
    int finals = 0, code;
    for (size_t p = 0; p < r->len; p++)
        if ((p == 0 || r->data[p - 1] == '\n') && is_status_line(r->data + p, r->len - p, &code))
            finals += code >= 200;
    return finals;
}

/* Walk the responses one after another (a smuggled second response
 * follows the first body directly); fill in the first final one. */
static void parse_reply(struct raw_reply *r)
{
    int finals = 0, code;
    r->interim = 0;
    r->status = 0;
    r->complete = false;
    size_t pos = 0;
    while (pos < r->len && is_status_line(r->data + pos, r->len - pos, &code)) {
        const char *head = r->data + pos;
        size_t sep;
        const char *end = head_end(head, &sep);
        bool first = code >= 200 && finals == 0;
        if (code < 200)
            r->interim++;
        else
            finals++;
        if (!end)
            break;
        size_t body_off = (size_t)(end + sep - r->data);
        char cl[32] = "";
        bool has_len = header_value(head, end + 2, "Content-Length", cl, sizeof(cl));
        size_t want = has_len ? strtoull(cl, NULL, 10) : r->len - body_off;
        bool whole = has_len ? body_off + want <= r->len : r->closed; /* else ends at the close */
        if (first) {
            r->status = code;
            r->content_type[0] = '\0';
            header_value(head, end + 2, "Content-Type", r->content_type, sizeof(r->content_type));
            r->body_off = body_off;
            r->body_len = whole ? want : r->len - body_off;
            r->complete = whole;
        }
        if (code < 200) {
            pos = body_off;
            continue;
        }
        if (!whole || !has_len)
            break;
        pos = body_off + want;
    }
    int scanned = scan_finals(r);
    r->finals = finals > scanned ? finals : scanned;
}

/* A non-blocking connection to 127.0.0.1:port, connected within limit_ms
 * (a full accept queue can stall a blocking connect for minutes). -1 if
 * refused, -2 if it did not connect in time. */
static int connect_loopback(int port, int limit_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    int err = 0;
    socklen_t len = sizeof(err);
    int n = poll(&p, 1, limit_ms);
    if (n == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
        return fd;
    close(fd);
    return n == 0 ? -2 : -1;
}

static int append(struct raw_reply *r, size_t *cap, const char *d, size_t n)
{
    if (r->len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 8192;
        while (c < r->len + n + 1)
            c *= 2;
        char *p = realloc(r->data, c);
        if (!p)
            return -1;
        r->data = p;
        *cap = c;
    }
    memcpy(r->data + r->len, d, n);
    r->len += n;
    r->data[r->len] = '\0';
    return 0;
}

int raw_exchange(int port, const void *req, size_t len, int limit_ms, int linger_ms,
                 struct raw_reply *out)
{
    memset(out, 0, sizeof(*out));
    double t0 = fault_now_ms(), done_at = -1;
    int fd = connect_loopback(port, limit_ms);
    if (fd == -2) { /* never even connected: a hang */
        out->hung = true;
        out->ms = fault_now_ms() - t0;
        size_t none = 0;
        return append(out, &none, "", 0);
    }
    if (fd < 0)
        return -1;
    size_t sent = 0, cap = 0;
    bool can_send = true;
    for (;;) {
        double now = fault_now_ms();
        if (now - t0 >= limit_ms || (done_at >= 0 && now - done_at >= linger_ms))
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN | (can_send && sent < len ? POLLOUT : 0) };
        int wait = (int)(limit_ms - (now - t0)) + 1;
        if (done_at >= 0 && linger_ms - (now - done_at) < wait)
            wait = (int)(linger_ms - (now - done_at)) + 1;
        if (poll(&p, 1, wait) < 0 && errno != EINTR)
            break;
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, (const char *)req + sent, len - sent, MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                can_send = false; /* the server stopped reading: see what it said */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[16384];
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n > 0) {
                if (append(out, &cap, buf, (size_t)n) != 0)
                    break;
            } else if (n == 0 || errno == ECONNRESET) {
                out->closed = true;
                out->reset = n < 0;
            } else if (errno != EAGAIN && errno != EINTR) {
                out->closed = out->reset = true;
            }
        }
        parse_reply(out);
        if ((out->complete || out->closed) && done_at < 0) {
            done_at = fault_now_ms();
            out->ms = done_at - t0;
        }
        if (out->closed)
            break;
    }
    close(fd);
    if (!out->data && append(out, &cap, "", 0) != 0)
        return -1;
    parse_reply(out);
    out->hung = !out->complete && !out->closed;
    if (done_at < 0)
        out->ms = fault_now_ms() - t0;
    if (out->complete)
        out->json = json_loadb(out->data + out->body_off, out->body_len, 0, NULL);
    return 0;
}

void raw_reply_free(struct raw_reply *r)
{
    free(r->data);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

bool raw_reply_is_json_error(const struct raw_reply *r)
{
    json_t *err = json_object_get(r->json, "error");
    return strncasecmp(r->content_type, "application/json", 16) == 0 &&
           json_is_string(json_object_get(err, "code")) &&
           json_is_string(json_object_get(err, "message"));
}
