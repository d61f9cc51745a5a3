/* reservd-load: shared types of the load generator (config, stats, HTTP). */
#ifndef RESERVD_LOAD_LT_H
#define RESERVD_LOAD_LT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <jansson.h>

enum lt_mode { LT_STEADY, LT_SPIKE };

/* Transport error kinds: anything that ended a request without a response. */
enum lt_terr {
    TE_CONNECT_REFUSED, /* ECONNREFUSED (e.g. full backlog with tcp_abort_on_overflow) */
    TE_CONNECT_EAGAIN,  /* EAGAIN / EADDRNOTAVAIL from connect: no port or backlog */
    TE_CONNECT,         /* any other connect failure */
    TE_RESET,           /* ECONNRESET / EPIPE while sending or reading */
    TE_EOF,             /* peer closed before a complete response */
    TE_TIMEOUT,         /* per-request or overall time limit */
    TE_BAD_RESPONSE,    /* not parseable as HTTP/1.x */
    TE_SOCKET,          /* socket()/epoll failure on our side (e.g. EMFILE) */
    TE_COUNT
};
extern const char *const lt_terr_names[TE_COUNT];

#define LT_MAX_EXPECT 16
#define LT_MAX_CODES  32
#define LT_MAX_STATUS 1000
#define LT_REQ_MAX    16384 /* largest rendered request */

struct lt_config {
    enum lt_mode mode;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char url[320];        /* normalised http://host:port for display */
    char host[300];       /* Host header */
    char auth[640];       /* "Authorization: Bearer ...\r\n" (--token / RESERVD_TOKEN) or "" */
    const char *idem_key; /* --idempotency-key template ({i}, {event}), or NULL */
    const char *scenario;
    const char *method, *path, *body; /* templates with {i} and {event} */
    bool reservation_run;             /* every request is a reservation attempt */
    long long requests;
    long connections, threads;
    double duration, timeout, req_timeout;
    long long user_start, event;
    long events;
    bool json, verify, allow_prior;
    const char *answers_path; /* --answers FILE */
    FILE *answers;            /* one "<i> <status> <id>" line per finished request */
    long long expect_granted; /* -1: not asserted */
    int n_expect;
    int expect_code[LT_MAX_EXPECT];
    uint64_t expect_count[LT_MAX_EXPECT];
};

/* Log-linear latency histogram in microseconds (64 sub-buckets per power of 2). */
#define LT_HIST_BUCKETS (64 * 36)
struct lt_hist {
    uint64_t count, sum_us, max_us;
    uint64_t b[LT_HIST_BUCKETS];
};

/* Responses over time, by outcome, in slots since the run's start. The slot
 * width starts at 1 ms and doubles whenever the run outlasts LT_TL_SLOTS
 * slots, so a half-second spike keeps 1 ms resolution and any run stays
 * bounded (for the bench's charts). */
#define LT_TL_SLOTS 1024
enum lt_outcome { LT_OUT_OK, LT_OUT_4XX, LT_OUT_5XX, LT_OUT_TRANSPORT, LT_OUTCOMES };
struct lt_timeline {
    uint64_t origin_ns, slot_ns;
    uint64_t n[LT_OUTCOMES][LT_TL_SLOTS];
};

struct lt_code {
    char name[48];
    uint64_t n;
};

struct lt_stats {
    uint64_t responses;
    uint64_t status[LT_MAX_STATUS];
    uint64_t terr[TE_COUNT];
    struct lt_code codes[LT_MAX_CODES];
    int n_codes;
    uint64_t *created; /* 201s per event index, cfg->events entries */
    long events;
    struct lt_hist hist;
    struct lt_timeline timeline;
    uint64_t start_ns, end_ns;
};

/* stats.c */
uint64_t lt_now_ns(void);
int lt_stats_init(struct lt_stats *st, long events);
void lt_stats_free(struct lt_stats *st);
void lt_stats_merge(struct lt_stats *dst, const struct lt_stats *src);
void lt_hist_add(struct lt_hist *h, uint64_t us);
double lt_hist_percentile_ms(const struct lt_hist *h, double p);
/* Latency at a fixed list of percentiles: [[percent, ms], ...], or NULL. */
json_t *lt_hist_percentiles_json(const struct lt_hist *h);
void lt_timeline_add(struct lt_timeline *t, uint64_t now_ns, enum lt_outcome out);
/* {"slot_ms":..,"ok":[..],"4xx":[..],"5xx":[..],"transport":[..]}, or NULL. */
json_t *lt_timeline_json(const struct lt_timeline *t);
void lt_stats_error_body(struct lt_stats *st, const char *body, size_t len);
uint64_t lt_stats_transport_total(const struct lt_stats *st);

/* http.c: request rendering */
int lt_render_request(const struct lt_config *c, long long k, bool close_conn, char *out,
                      size_t cap, size_t *len);
bool lt_template_is_static(const struct lt_config *c);
long long lt_event_of(const struct lt_config *c, long long k);

/* http.c: incremental HTTP/1.x response parser */
enum { LT_NEED_MORE = 0, LT_DONE = 1, LT_BAD = -1 };
struct lt_resp {
    int state, status;
    bool keep_alive, chunked, store_all, storing;
    uint64_t remaining;
    char *body;
    size_t body_len, body_cap, body_max;
};
void lt_resp_reset(struct lt_resp *r, bool store_all, size_t body_max);
void lt_resp_free(struct lt_resp *r);
int lt_resp_feed(struct lt_resp *r, const char *d, size_t n, size_t *used);
int lt_resp_eof(struct lt_resp *r);

/* engine.c */
int lt_run(const struct lt_config *c, struct lt_stats *out);

/* verify.c: returns 0 when every check passes, 1 otherwise; adds "verify" to json */
int lt_verify(const struct lt_config *c, const struct lt_stats *st, json_t *report);

#endif
