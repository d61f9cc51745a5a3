/* reservd-load: request templates and an incremental HTTP/1.x response parser. */
#include "lt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- request rendering ---- */

long long lt_event_of(const struct lt_config *c, long long k)
{
    return c->event + k % c->events;
}

bool lt_template_is_static(const struct lt_config *c)
{
    return !strchr(c->path, '{') && (!c->body || !strchr(c->body, '{')) &&
           (!c->idem_key || !strchr(c->idem_key, '{')) && !strchr(c->auth, '{');
}

/* Copies tpl into out expanding {i} and {event}; -1 if out is too small. */
static long expand(const char *tpl, long long i, long long ev, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        char num[24];
        const char *src = p;
        size_t len = 1;
        if (strncmp(p, "{i}", 3) == 0 || strncmp(p, "{event}", 7) == 0) {
            bool is_i = p[1] == 'i';
            len = (size_t)snprintf(num, sizeof num, "%lld", is_i ? i : ev);
            src = num;
            p += is_i ? 3 : 7;
        } else {
            p++;
        }
        if (n + len >= cap)
            return -1;
        memcpy(out + n, src, len);
        n += len;
    }
    out[n] = '\0';
    return (long)n;
}

static bool method_has_body(const char *m)
{
    return !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");
}

/* Renders request number k (0-based) into out; -1 if it does not fit. */
int lt_render_request(const struct lt_config *c, long long k, bool close_conn, char *out,
                      size_t cap, size_t *len)
{
    char path[2048], body[8192];
    long long i = c->user_start + k, ev = lt_event_of(c, k);
    long pl = expand(c->path, i, ev, path, sizeof path);
    long bl = c->body ? expand(c->body, i, ev, body, sizeof body) : 0;
    char key[320] = "", kv[300], auth[700];
    /* a token with {i} is one per user (e.g. a benchmark's seeded user tokens) */
    if (strchr(c->auth, '{')) {
        if (expand(c->auth, i, ev, auth, sizeof auth) < 0)
            return -1;
    } else {
        snprintf(auth, sizeof auth, "%s", c->auth);
    }
    if (c->idem_key) {
        if (expand(c->idem_key, i, ev, kv, sizeof kv) < 0)
            return -1;
        snprintf(key, sizeof key, "Idempotency-Key: %s\r\n", kv);
    }
    if (pl < 0 || bl < 0)
        return -1;
    int n =
        snprintf(out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: reservd-load\r\n%s%s%s",
                 c->method, path, c->host, auth, key, close_conn ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return -1;
    int m;
    if (c->body)
        m = snprintf(out + n, cap - (size_t)n,
                     "Content-Type: application/json\r\nContent-Length: %ld\r\n\r\n", bl);
    else
        m = snprintf(out + n, cap - (size_t)n, "%s\r\n",
                     method_has_body(c->method) ? "Content-Length: 0\r\n" : "");
    if (m < 0 || (size_t)n + (size_t)m + (size_t)bl >= cap)
        return -1;
    memcpy(out + n + m, body, (size_t)bl);
    *len = (size_t)n + (size_t)m + (size_t)bl;
    return 0;
}

/* ---- response parser ---- */

enum {
    HP_HEAD,
    HP_LEN,
    HP_CHUNK_SIZE,
    HP_CHUNK_DATA,
    HP_CHUNK_END,
    HP_TRAILER,
    HP_UNTIL_EOF,
    HP_DONE
};

void lt_resp_reset(struct lt_resp *r, bool store_all, size_t body_max)
{
    r->state = HP_HEAD;
    r->status = 0;
    r->keep_alive = true;
    r->chunked = false;
    r->store_all = store_all;
    r->storing = false;
    r->remaining = 0;
    r->body_len = 0;
    r->body_max = body_max;
}

void lt_resp_free(struct lt_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->body_cap = r->body_len = 0;
}

/* Keeps up to body_max bytes of the body when it is wanted (failures, verify). */
static void store_body(struct lt_resp *r, const char *d, size_t n)
{
    if (!r->storing || r->body_len >= r->body_max)
        return;
    if (n > r->body_max - r->body_len)
        n = r->body_max - r->body_len;
    if (r->body_len + n > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + n)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            r->storing = false; /* a truncated body only loses the error code */
            return;
        }
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, d, n);
    r->body_len += n;
}

/* Matches "Name: value" case-insensitively and returns the trimmed value. */
static bool header_is(const char *l, size_t len, const char *name, const char **v, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || l[nl] != ':' || strncasecmp(l, name, nl) != 0)
        return false;
    const char *b = l + nl + 1, *e = l + len;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    *v = b;
    *vlen = (size_t)(e - b);
    return true;
}

static bool contains_ci(const char *v, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(v + i, word, wl) == 0)
            return true;
    return false;
}

static int parse_status_line(struct lt_resp *r, const char *l, size_t len)
{
    if (len < 12 || memcmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ')
        return -1;
    for (int i = 9; i < 12; i++)
        if (l[i] < '0' || l[i] > '9')
            return -1;
    if (len > 12 && l[12] != ' ')
        return -1;
    r->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    r->keep_alive = l[7] != '0';
    return r->status >= 100 ? 0 : -1;
}

static int parse_length(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 15)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return 0;
}

/* Parses a complete header block (ending with the blank line) and picks the body framing. */
static int parse_head(struct lt_resp *r, const char *d, size_t hlen)
{
    const char *p = d, *end = d + hlen, *v;
    size_t vl;
    bool have_len = false;
    uint64_t clen = 0;
    r->chunked = false;
    for (bool first = true; p < end; first = false) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (first) {
            if (parse_status_line(r, p, len) < 0)
                return -1;
        } else if (len == 0) {
            break;
        } else if (header_is(p, len, "content-length", &v, &vl)) {
            if (parse_length(v, vl, &clen) < 0)
                return -1;
            have_len = true;
        } else if (header_is(p, len, "transfer-encoding", &v, &vl)) {
            r->chunked = contains_ci(v, vl, "chunked");
        } else if (header_is(p, len, "connection", &v, &vl)) {
            if (contains_ci(v, vl, "close"))
                r->keep_alive = false;
            else if (contains_ci(v, vl, "keep-alive"))
                r->keep_alive = true;
        }
        p = eol + 1;
    }
    r->storing = r->store_all || r->status >= 400;
    if (r->status < 200)
        r->state = HP_HEAD; /* interim response: another head follows */
    else if (r->status == 204 || r->status == 304)
        r->state = HP_DONE;
    else if (r->chunked)
        r->state = HP_CHUNK_SIZE;
    else if (have_len)
        r->state = clen ? HP_LEN : HP_DONE, r->remaining = clen;
    else
        r->state = HP_UNTIL_EOF, r->keep_alive = false;
    return 0;
}

/* Handles one CRLF-terminated line of chunked framing. */
static int chunk_line(struct lt_resp *r, const char *l, size_t len)
{
    if (r->state == HP_CHUNK_END) {
        r->state = HP_CHUNK_SIZE;
        return len == 0 ? 0 : -1;
    }
    if (r->state == HP_TRAILER) {
        if (len == 0)
            r->state = HP_DONE;
        return 0;
    }
    uint64_t size = 0;
    size_t i = 0;
    for (; i < len && l[i] != ';' && l[i] != ' '; i++) {
        int d = l[i] >= '0' && l[i] <= '9'   ? l[i] - '0'
                : l[i] >= 'a' && l[i] <= 'f' ? l[i] - 'a' + 10
                : l[i] >= 'A' && l[i] <= 'F' ? l[i] - 'A' + 10
                                             : -1;
        if (d < 0 || size > (1ull << 40))
            return -1;
        size = size * 16 + (uint64_t)d;
    }
    if (i == 0)
        return -1;
    r->remaining = size;
    r->state = size ? HP_CHUNK_DATA : HP_TRAILER;
    return 0;
}

/* Consumes bytes of d; *used tells how many (the rest must be fed again with more). */
int lt_resp_feed(struct lt_resp *r, const char *d, size_t n, size_t *used)
{
    size_t off = 0;
    int rc = LT_NEED_MORE;
    while (off < n && r->state != HP_DONE) {
        const char *p = d + off;
        size_t avail = n - off;
        if (r->state == HP_HEAD) {
            const char *e = memmem(p, avail, "\r\n\r\n", 4);
            if (!e) {
                rc = avail > 65536 ? LT_BAD : LT_NEED_MORE;
                break;
            }
            size_t hl = (size_t)(e + 4 - p);
            if (parse_head(r, p, hl) < 0) {
                rc = LT_BAD;
                break;
            }
            off += hl;
        } else if (r->state == HP_LEN || r->state == HP_CHUNK_DATA) {
            size_t take = avail < r->remaining ? avail : (size_t)r->remaining;
            store_body(r, p, take);
            off += take;
            r->remaining -= take;
            if (r->remaining == 0)
                r->state = r->state == HP_LEN ? HP_DONE : HP_CHUNK_END;
        } else if (r->state == HP_UNTIL_EOF) {
            store_body(r, p, avail);
            off += avail;
        } else {
            const char *e = memchr(p, '\n', avail);
            if (!e) {
                rc = avail > 4096 ? LT_BAD : LT_NEED_MORE;
                break;
            }
            size_t ll = (size_t)(e - p);
            if (chunk_line(r, p, ll && p[ll - 1] == '\r' ? ll - 1 : ll) < 0) {
                rc = LT_BAD;
                break;
            }
            off += ll + 1;
        }
    }
    *used = off;
    if (rc == LT_BAD)
        return LT_BAD;
    return r->state == HP_DONE ? LT_DONE : LT_NEED_MORE;
}

/* The peer closed: that ends a body without framing, anything else is truncated. */
int lt_resp_eof(struct lt_resp *r)
{
    if (r->state != HP_UNTIL_EOF)
        return r->state == HP_DONE ? LT_DONE : LT_BAD;
    r->state = HP_DONE;
    return LT_DONE;
}
