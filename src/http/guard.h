#ifndef RESERVD_HTTP_GUARD_H
#define RESERVD_HTTP_GUARD_H

/* The connection guard (private to src/http/): what libmicrohttpd 0.9.75
 * does not do for us.
 *
 *   - the connection limit: at the limit a new client is closed at once
 *     (libmicrohttpd itself stops accepting and leaves it in the backlog);
 *   - the read deadline: a request must arrive whole within read_timeout_ms
 *     of its first byte (libmicrohttpd only times out silence, so a client
 *     trickling a byte every few seconds held its slot forever);
 *   - the drain at shutdown: idle keep-alive connections are closed.
 *
 * A reaper thread looks at every connection a few times a second and ends
 * the ones that overstay with shutdown(2): libmicrohttpd then sees the end
 * of the stream on its own thread and closes the connection as usual. */

#include <stdbool.h>
#include <sys/socket.h>

struct guard;
struct guard_conn;

/* The stage of a connection's current request; one writer at a time: the
 * connection's own HTTP thread. */
enum guard_stage {
    GUARD_IDLE,      /* between requests (or none yet) */
    GUARD_RECEIVING, /* headers in, body still arriving */
    GUARD_SERVING,   /* request complete: the server's own time */
};

/* max_connections: clients served at once; read_timeout_ms: 0 = none.
 * 0, or -1 (out of memory, no thread). */
int guard_create(int max_connections, int read_timeout_ms, struct guard **out);
/* Stops the reaper; every connection must have been closed. NULL-safe. */
void guard_destroy(struct guard *g);

/* libmicrohttpd's accept policy: false at the limit (it closes the socket). */
bool guard_admit(struct guard *g);
/* A connection opened or closed (MHD_OPTION_NOTIFY_CONNECTION). opened
 * returns the connection's record, or NULL (then the guard ignores it). */
struct guard_conn *guard_opened(struct guard *g, int fd);
void guard_closed(struct guard *g, struct guard_conn *c);

/* The connection's request moved on (called from its HTTP thread). */
void guard_stage(struct guard *g, struct guard_conn *c, enum guard_stage stage);

/* From now on idle connections are closed (shutdown). */
void guard_drain(struct guard *g);
bool guard_draining(const struct guard *g);
/* Connections open now. */
int guard_connections(struct guard *g);

#endif
