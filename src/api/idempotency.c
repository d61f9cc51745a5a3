/* Idempotency-Key records (see idempotency.h). A request with a key is
 * claimed in this process first (a repeat while it runs: 409), then its
 * record is looked up (a repeat: the stored answer; the same key on another
 * request: 422), and once answered its final answer is stored, unless the
 * handler wrote the record in its effect's own transaction (reservations,
 * cancellations) so that a crash can never leave one without the other.
 * Another instance may store the same key meanwhile: the unique key_hash
 * decides, the loser's effect is rolled back with its record's insert
 * (idempotency_commit; the granting statements through 0008), and it
 * answers with the winner's record. */

#include "idempotency.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "log.h"
#include "statements.h"

#define KEY_MAX       255
#define CLAIM_BUCKETS 256
#define SWEEP_BATCH   "1000"
#define SWEEP_BATCH_N 1000
#define SWEEP_ROUNDS  100 /* batches per wake-up at most */
#define SWEEP_EVERY_S 60

/* One keyed request in flight (req->gate_state). */
struct claim {
    char key_hash[AUTH_SHA256_SIZE];
    char fingerprint[AUTH_SHA256_SIZE];
    char ttl[16];
    bool recorded; /* written with the effect, or the answer is a record's */
    bool taken;    /* another request recorded the key first: answer from it */
    struct claim *next;
};

struct idempotency {
    int ttl_s;
    pthread_mutex_t lock;
    struct claim *claims[CLAIM_BUCKETS];
    /* the sweeper */
    struct db_pool *pool;
    pthread_t sweeper;
    bool sweeping, stopping;
    pthread_cond_t wake;
};

int idempotency_create(int ttl_s, struct idempotency **out)
{
    struct idempotency *idem = calloc(1, sizeof(*idem));
    if (!idem)
        return -1;
    idem->ttl_s = ttl_s;
    pthread_mutex_init(&idem->lock, NULL);
    pthread_cond_init(&idem->wake, NULL);
    *out = idem;
    return 0;
}

void idempotency_destroy(struct idempotency *idem)
{
    if (!idem)
        return;
    if (idem->sweeping) {
        pthread_mutex_lock(&idem->lock);
        idem->stopping = true;
        pthread_cond_signal(&idem->wake);
        pthread_mutex_unlock(&idem->lock);
        pthread_join(idem->sweeper, NULL);
    }
    pthread_cond_destroy(&idem->wake);
    pthread_mutex_destroy(&idem->lock);
    free(idem);
}

/* ---- the claims in flight ---- */

static struct claim **bucket(struct idempotency *idem, const char *key_hash)
{
    return &idem->claims[strtoul((char[3]){ key_hash[0], key_hash[1], 0 }, NULL, 16)];
}

/* false when the key is claimed already */
static bool claim_take(struct idempotency *idem, struct claim *c)
{
    pthread_mutex_lock(&idem->lock);
    struct claim **b = bucket(idem, c->key_hash);
    bool taken = false;
    for (struct claim *p = *b; p && !taken; p = p->next)
        taken = strcmp(p->key_hash, c->key_hash) == 0;
    if (!taken) {
        c->next = *b;
        *b = c;
    }
    pthread_mutex_unlock(&idem->lock);
    return !taken;
}

static void claim_drop(struct idempotency *idem, struct claim *c)
{
    pthread_mutex_lock(&idem->lock);
    for (struct claim **p = bucket(idem, c->key_hash); *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    pthread_mutex_unlock(&idem->lock);
}

/* ---- the steps ---- */

static bool key_ok(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return true;
}

/* The principal part of a key's scope. */
static void principal(const struct http_request *req, char *out, size_t len)
{
    switch (req->who) {
    case HTTP_USER:
    case HTTP_CLAIMED: snprintf(out, len, "user %lld", (long long)req->who_user); break;
    case HTTP_ADMIN: snprintf(out, len, "admin"); break;
    case HTTP_OPEN: snprintf(out, len, "open"); break;
    case HTTP_ANONYMOUS: snprintf(out, len, "anonymous"); break;
    }
}

/* SHA-256 hex of the parts, each followed by a new line. */
static void digest(char out[static AUTH_SHA256_SIZE], const char *const *parts, int n,
                   const char *tail, size_t tail_len)
{
    size_t len = tail_len;
    for (int i = 0; i < n; i++)
        len += strlen(parts[i]) + 1;
    char *buf = malloc(len + 1), *p = buf;
    if (!buf) {
        memset(out, '0', 64); /* matches no real record's */
        out[64] = '\0';
        return;
    }
    for (int i = 0; i < n; i++) {
        size_t k = strlen(parts[i]);
        memcpy(p, parts[i], k);
        p[k] = '\n';
        p += k + 1;
    }
    if (tail_len)
        memcpy(p, tail, tail_len);
    auth_sha256_hex(buf, len, out);
    free(buf);
}

static void respond_in_progress(struct http_response *resp)
{
    http_response_clear(resp);
    http_respond_error(resp, 409, "idempotency_in_progress",
                       "a request with this Idempotency-Key is still running; retry");
    if (http_response_add_header(resp, "Retry-After", "1") != 0)
        log_error("no room for the Retry-After header");
}

enum idempotency_claim idempotency_begin(struct idempotency *idem, const struct route *route,
                                         struct http_request *req, struct http_response *resp)
{
    if (!req->idempotency_key ||
        (req->method != HTTP_POST && req->method != HTTP_PATCH && req->method != HTTP_DELETE))
        return IDEMPOTENCY_NO_KEY;
    if (!key_ok(req->idempotency_key)) {
        http_respond_error(resp, 400, "validation_failed",
                           "Idempotency-Key must be 1 to 255 printable ASCII characters");
        return IDEMPOTENCY_REFUSED;
    }
    struct claim *c = calloc(1, sizeof(*c));
    if (!c) {
        http_respond_error(resp, 503, "unavailable", "out of memory");
        return IDEMPOTENCY_REFUSED;
    }
    char who[48];
    principal(req, who, sizeof(who));
    /* scope: principal, method and path template (the route's name) */
    const char *scope[] = { who, route->name, req->idempotency_key };
    digest(c->key_hash, scope, 3, NULL, 0);
    /* the request: method and path (ids included), then the body */
    const char *request[] = { http_method_name(req->method), req->path };
    digest(c->fingerprint, request, 2, req->body ? req->body : "", req->body ? req->body_len : 0);
    snprintf(c->ttl, sizeof(c->ttl), "%d", idem->ttl_s);
    if (!claim_take(idem, c)) {
        free(c);
        respond_in_progress(resp);
        return IDEMPOTENCY_REFUSED;
    }
    req->gate_state = c;
    req->gate_after = true;
    return IDEMPOTENCY_CLAIMED;
}

/* resp becomes the stored answer, marked as a replay. */
static void replay(struct http_response *resp, const struct idempotency_row *row)
{
    http_response_clear(resp);
    json_t *body = json_loads(row->body, JSON_DECODE_ANY, NULL);
    if (body) {
        http_respond_json(resp, row->status, body);
    } else { /* stored as sent */
        resp->status = row->status;
        resp->owned_raw = strdup(row->body);
        resp->raw_len = resp->owned_raw ? strlen(resp->owned_raw) : 0;
    }
    http_response_add_header(resp, "Idempotent-Replayed", "true");
    if (row->location)
        http_response_add_header(resp, "Location", "%s", row->location);
}

enum record_answer {
    RECORD_NONE,     /* no record of the key: resp untouched */
    RECORD_ANSWERED, /* resp is its replay, or 422 for another request */
    RECORD_FAILED,   /* resp is the 503 */
};

/* Answer from key_hash's record. */
static enum record_answer answer_from_record(struct app *app, struct db_conn *conn,
                                             const struct claim *c, struct http_response *resp)
{
    const char *params[] = { c->key_hash };
    PGresult *res = db_exec(conn, STMT_IDEMPOTENCY_GET, 1, params);
    struct idempotency_row row;
    enum record_answer rc = RECORD_NONE;
    if (!res || db_result_classify(res) != DB_RESULT_OK) {
        api_db_failure(app, resp, res);
        rc = RECORD_FAILED;
    } else if (PQntuples(res) == 1 && idempotency_row_decode(res, 0, &row) == 0) {
        rc = RECORD_ANSWERED;
        if (auth_sha256_equal(row.fingerprint, c->fingerprint))
            replay(resp, &row);
        else {
            http_response_clear(resp);
            http_respond_error(resp, 422, "idempotency_key_reused",
                               "this Idempotency-Key was used for a different request");
        }
    }
    PQclear(res);
    return rc;
}

int idempotency_lookup(struct app *app, struct db_conn *conn, const struct http_request *req,
                       struct http_response *resp)
{
    struct claim *c = req->gate_state;
    if (answer_from_record(app, conn, c, resp) == RECORD_NONE)
        return 0;
    c->recorded = true; /* the answer is the record's (or a 503): nothing to store */
    return -1;
}

int idempotency_ref(const struct http_request *req, struct idempotency_ref *out)
{
    const struct claim *c = req->gate_state;
    *out = (struct idempotency_ref){ NULL, NULL, NULL };
    if (!c)
        return -1;
    *out = (struct idempotency_ref){ c->key_hash, c->fingerprint, c->ttl };
    return 0;
}

void idempotency_recorded(const struct http_request *req)
{
    struct claim *c = req->gate_state;
    if (c)
        c->recorded = true;
}

enum idempotency_put idempotency_write(struct db_conn *conn, const struct idempotency_ref *ref,
                                       int status, const char *body, const char *location)
{
    char st[8];
    snprintf(st, sizeof(st), "%d", status);
    const char *params[] = { ref->key_hash, ref->fingerprint, st, body, location, ref->ttl };
    PGresult *res = db_exec(conn, STMT_IDEMPOTENCY_PUT, 6, params);
    enum idempotency_put rc = IDEMPOTENCY_PUT_FAILED;
    if (res && db_result_classify(res) == DB_RESULT_OK)
        rc = PQntuples(res) == 1 ? IDEMPOTENCY_STORED : IDEMPOTENCY_KEY_EXISTS;
    else
        log_error("idempotency record not stored: %s",
                  res ? PQresultErrorMessage(res) : "connection lost");
    PQclear(res);
    return rc;
}

/* The body to keep: the answer's, never a token (shown once, in the
 * answer itself). Caller frees. */
static char *kept_body(const struct http_response *resp)
{
    size_t len;
    if (resp->json && json_object_get(resp->json, "token")) {
        json_t *copy = json_copy(resp->json);
        json_object_del(copy, "token");
        char *text = copy ? json_dumps(copy, JSON_COMPACT) : NULL;
        json_decref(copy);
        return text;
    }
    return http_response_body(resp, &len);
}

/* Only final answers: a 5xx may be retried, and a 401/403 came before the
 * key's request was even looked at. */
static bool worth_keeping(int status)
{
    return status >= 200 && status < 500 && status != 401 && status != 403;
}

/* resp as the key's record, on conn: as idempotency_write. */
static enum idempotency_put write_answer(struct db_conn *conn, const struct claim *c,
                                         const struct http_response *resp)
{
    char *body = kept_body(resp);
    struct idempotency_ref ref = { c->key_hash, c->fingerprint, c->ttl };
    enum idempotency_put rc = body ? idempotency_write(conn, &ref, resp->status, body,
                                                       http_response_header(resp, "Location"))
                                   : IDEMPOTENCY_PUT_FAILED;
    free(body);
    return rc;
}

/* resp becomes the answer of the record another request stored, if it
 * is still there. */
static void answer_theirs(struct app *app, struct db_conn *conn, const struct claim *c,
                          struct http_response *resp)
{
    struct http_response theirs;
    http_response_init(&theirs);
    if (answer_from_record(app, conn, c, &theirs) == RECORD_ANSWERED) {
        http_response_clear(resp);
        *resp = theirs;
    } else {
        http_response_clear(&theirs);
    }
}

/* After the answer: store it (taken: answer from the stored one). */
static void store(struct app *app, const struct claim *c, struct http_response *resp)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += app->cfg.acquire_timeout_ms / 1000 + 1;
    struct db_conn *conn;
    if (db_pool_acquire(app->pool, &deadline, DB_USE_ANY, &conn) != DB_OK) {
        log_warn("idempotency record not %s: no database connection", c->taken ? "read" : "stored");
        return;
    }
    if (c->taken || write_answer(conn, c, resp) == IDEMPOTENCY_KEY_EXISTS)
        answer_theirs(app, conn, c, resp); /* another request stored this key first */
    db_pool_release(app->pool, conn);
}

int idempotency_commit(struct app *app, struct db_conn *conn, const struct http_request *req,
                       struct http_response *resp)
{
    struct claim *c = req->gate_state;
    if (!c)
        return 0;
    if (!worth_keeping(resp->status)) {
        (void)db_command(conn, "ROLLBACK"); /* nothing changed; else release rolls back */
        return -1;
    }
    /* a failed effect changed nothing: its answer is recorded alone */
    bool alone = db_transaction_failed(conn);
    enum idempotency_put put = alone && db_command(conn, "ROLLBACK") != 0
                                   ? IDEMPOTENCY_PUT_FAILED
                                   : write_answer(conn, c, resp);
    if (put == IDEMPOTENCY_STORED && !alone && db_command(conn, "COMMIT") != 0)
        put = IDEMPOTENCY_PUT_FAILED; /* the outcome is unknown: a 503, as for any lost commit */
    if (put == IDEMPOTENCY_STORED) {
        c->recorded = true;
        return 0;
    }
    if (!alone)
        (void)db_command(conn, "ROLLBACK");
    if (put == IDEMPOTENCY_KEY_EXISTS) {
        idempotency_taken(req, resp);
    } else {
        http_response_clear(resp);
        api_db_failure(app, resp, NULL);
    }
    return -1;
}

void idempotency_taken(const struct http_request *req, struct http_response *resp)
{
    struct claim *c = req->gate_state;
    respond_in_progress(resp);
    if (c)
        c->taken = true;
}

void idempotency_finish(struct app *app, struct http_request *req, struct http_response *resp)
{
    struct claim *c = req->gate_state;
    if (!c)
        return;
    if (c->taken || (!c->recorded && worth_keeping(resp->status)))
        store(app, c, resp);
    claim_drop(app->idempotency, c);
    req->gate_state = NULL;
    free(c);
}

/* ---- the sweeper ---- */

/* One wake-up: batches of SWEEP_BATCH_N until one is not full. */
static void sweep(struct idempotency *idem)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += 5;
    struct db_conn *conn;
    if (db_pool_acquire(idem->pool, &deadline, DB_USE_ANY, &conn) != DB_OK)
        return;
    const char *params[] = { SWEEP_BATCH };
    int deleted = SWEEP_BATCH_N, total = 0;
    for (int round = 0; round < SWEEP_ROUNDS && deleted == SWEEP_BATCH_N; round++) {
        PGresult *res = db_exec(conn, STMT_IDEMPOTENCY_SWEEP, 1, params);
        if (!res || db_result_classify(res) != DB_RESULT_OK ||
            idempotency_sweep_row_decode(res, 0, &deleted) != 0)
            deleted = 0;
        total += deleted;
        PQclear(res);
    }
    db_pool_release(idem->pool, conn);
    if (total)
        log_debug("idempotency: %d expired records deleted", total);
}

static void *sweeper_main(void *arg)
{
    struct idempotency *idem = arg;
    int every = idem->ttl_s < SWEEP_EVERY_S ? idem->ttl_s : SWEEP_EVERY_S;
    pthread_mutex_lock(&idem->lock);
    while (!idem->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += every;
        while (!idem->stopping &&
               pthread_cond_timedwait(&idem->wake, &idem->lock, &until) != ETIMEDOUT)
            ;
        if (idem->stopping)
            break;
        pthread_mutex_unlock(&idem->lock);
        sweep(idem);
        pthread_mutex_lock(&idem->lock);
    }
    pthread_mutex_unlock(&idem->lock);
    return NULL;
}

int idempotency_sweeper_start(struct idempotency *idem, struct db_pool *pool)
{
    idem->pool = pool;
    if (pthread_create(&idem->sweeper, NULL, sweeper_main, idem) != 0)
        return -1;
    idem->sweeping = true;
    return 0;
}
