#ifndef RESERVD_IDEMPOTENCY_H
#define RESERVD_IDEMPOTENCY_H

/* Idempotency-Key on POST, PATCH and DELETE (src/api/idempotency.c). A key
 * is 1-255 printable ASCII characters; its scope is the principal, the
 * method and the path template; its record holds the SHA-256 fingerprint of
 * the request (method, path, body) and the final answer (2xx or 4xx; 5xx
 * answers are not kept, so they may be retried). A repeat replays the
 * answer with Idempotent-Replayed: true; another request under the same key
 * gets 422 idempotency_key_reused; a repeat while the first still runs gets
 * 409 idempotency_in_progress with Retry-After: 1. Records are kept
 * --idempotency-ttl seconds; a sweeper deletes expired ones in bounded
 * batches. */

#include <stdbool.h>

#include "db.h"
#include "http.h"
#include "router.h"

struct idempotency;

int idempotency_create(int ttl_s, struct idempotency **out);
/* Stops the sweeper first. NULL-safe. */
void idempotency_destroy(struct idempotency *idem);
/* Sweep expired records every min(ttl, 60) seconds on a thread of its own. 0 or -1. */
int idempotency_sweeper_start(struct idempotency *idem, struct db_pool *pool);

enum idempotency_claim {
    IDEMPOTENCY_CLAIMED, /* claimed in this process: req->gate_state and req->gate_after
                            are set, and the answer passes idempotency_finish */
    IDEMPOTENCY_NO_KEY,  /* no key, or not a POST, PATCH or DELETE: nothing to do */
    IDEMPOTENCY_REFUSED, /* resp is filled (400 bad key, 409 in progress, 503) */
};
/* HTTP thread, after access control: if req carries a key on a POST, PATCH
 * or DELETE, check it and claim it in this process. */
enum idempotency_claim idempotency_begin(struct idempotency *idem, const struct route *route,
                                         struct http_request *req, struct http_response *resp);
/* Worker, before the handler: 0 to run the handler, or -1 with resp filled
 * (the stored answer's replay, 422 for a reused key, or 503). */
struct app;
int idempotency_lookup(struct app *app, struct db_conn *conn, const struct http_request *req,
                       struct http_response *resp);
/* Worker, once the answer is complete: store it (unless it is a 5xx, an
 * access refusal, or the handler wrote it with its effect), then release
 * the claim. If another request stored the key first, resp becomes its
 * replay (or 422). */
void idempotency_finish(struct app *app, struct http_request *req, struct http_response *resp);

/* A handler whose effect is one transaction on conn, begun by the caller
 * when the request carries a key (api_acquire_effect): store the answer
 * in resp as the key's record in that transaction and commit both. A 5xx
 * is not kept, and the transaction is rolled back. If the effect's
 * statement failed (a 4xx such as a conflict), the transaction is rolled
 * back and the answer recorded alone. If another request recorded the key
 * first (another instance, at the same moment), the effect is rolled back
 * too and the answer becomes that record's (idempotency_taken). If the
 * commit fails, resp becomes the 503. 0 when the effect stands (committed,
 * or no key: nothing to do), -1 when it was rolled back. */
int idempotency_commit(struct app *app, struct db_conn *conn, const struct http_request *req,
                       struct http_response *resp);
/* The request changed nothing because another request recorded its key
 * first: finish answers from that record (its replay, or 422) instead of
 * storing anything. Until then resp is a 409 idempotency_in_progress,
 * which stays the answer if the record is gone by then. */
void idempotency_taken(const struct http_request *req, struct http_response *resp);

/* For handlers that write the record in their effect's own transaction. */
struct idempotency_ref {
    const char *key_hash;    /* SHA-256 hex of scope and key */
    const char *fingerprint; /* SHA-256 hex of the request */
    const char *ttl;         /* seconds to keep it, as text */
};
/* 0 and the request's record in *out (valid until its answer is sent), or
 * -1 when it carries no key (*out is all NULL). */
int idempotency_ref(const struct http_request *req, struct idempotency_ref *out);
/* The handler wrote the record with its effect: finish stores nothing. */
void idempotency_recorded(const struct http_request *req);
enum idempotency_put {
    IDEMPOTENCY_STORED,
    IDEMPOTENCY_KEY_EXISTS, /* an unexpired record of the key exists already */
    IDEMPOTENCY_PUT_FAILED, /* the statement failed (logged) */
};
/* Write the record on conn (in the caller's transaction). */
enum idempotency_put idempotency_write(struct db_conn *conn, const struct idempotency_ref *ref,
                                       int status, const char *body, const char *location);

#endif
