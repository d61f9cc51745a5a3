#ifndef RESERVD_TRICKLER_H
#define RESERVD_TRICKLER_H

/* Slow clients for the fault suite: n loopback connections, each sending
 * a request header one byte every interval_ms and never finishing it,
 * on one epoll thread. Bounded: it stops after run_ms, or once the server
 * has closed every connection. */

struct trickler;

struct trickler_result {
    int opened;          /* connections that connected */
    int failed;          /* connect failures */
    int closed;          /* closed by the server (EOF or reset) */
    int answered;        /* of those, sent some bytes first (an error answer) */
    int still_open;      /* open when the run ended (never closed by the server) */
    double max_close_ms; /* slowest close, from that connection's first byte */
    double p50_close_ms;
};

/* Starts the thread; 0, or -1. */
int trickler_start(struct trickler **out, int port, int n, int interval_ms, int run_ms);
/* Connections open and trickling right now. */
int trickler_open(struct trickler *t);
/* Waits for the run to end, fills out and frees t. */
void trickler_join(struct trickler *t, struct trickler_result *out);

#endif
