/* reservd-load: counters, latency histogram and error-code tally. */
#include "lt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const lt_terr_names[TE_COUNT] = {
    "connect_refused", "connect_eagain", "connect_error", "reset", "eof",
    "timeout",         "bad_response",   "socket",
};

uint64_t lt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail with a valid clock id */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lt_stats_init(struct lt_stats *st, long events)
{
    memset(st, 0, sizeof *st);
    st->events = events;
    st->timeline.slot_ns = 1000000;
    st->created = calloc((size_t)events, sizeof *st->created);
    return st->created ? 0 : -1;
}

void lt_stats_free(struct lt_stats *st)
{
    free(st->created);
    st->created = NULL;
}

/* Bucket index: exact below 128 us, then 64 linear sub-buckets per octave. */
static unsigned hist_index(uint64_t us)
{
    if (us < 128)
        return (unsigned)us;
    if (us >= (1ull << 40))
        us = (1ull << 40) - 1;
    unsigned shift = (unsigned)(63 - __builtin_clzll(us)) - 6;
    return 64 * shift + (unsigned)(us >> shift);
}

/* Midpoint of a bucket's value range, in microseconds. */
static double hist_value(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned shift = idx / 64 - 1;
    uint64_t mant = idx - 64 * shift;
    uint64_t lo = mant << shift, hi = ((mant + 1) << shift) - 1;
    return ((double)lo + (double)hi) / 2.0;
}

void lt_hist_add(struct lt_hist *h, uint64_t us)
{
    h->b[hist_index(us)]++;
    h->count++;
    h->sum_us += us;
    if (us > h->max_us)
        h->max_us = us;
}

double lt_hist_percentile_ms(const struct lt_hist *h, double p)
{
    if (h->count == 0)
        return 0.0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return (v > (double)h->max_us ? (double)h->max_us : v) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* Enough points for a smooth percentile curve up to p99.99. */
static const double pct_points[] = { 0,    10, 20, 30, 40, 50, 60,   70,   75,    80,    85, 90,
                                     92.5, 95, 96, 97, 98, 99, 99.5, 99.9, 99.95, 99.99, 100 };

json_t *lt_hist_percentiles_json(const struct lt_hist *h)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < sizeof pct_points / sizeof pct_points[0]; i++) {
        /* p0 reads as rank 1: the fastest response */
        double ms = lt_hist_percentile_ms(h, pct_points[i]);
        json_t *pair =
            json_pack("[f,f]", pct_points[i], (double)(long long)(ms * 1000 + 0.5) / 1000);
        if (json_array_append_new(arr, pair) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* Halves the resolution: slots 2i and 2i+1 become slot i. */
static void timeline_fold(struct lt_timeline *t)
{
    for (int o = 0; o < LT_OUTCOMES; o++) {
        for (int i = 0; i < LT_TL_SLOTS / 2; i++)
            t->n[o][i] = t->n[o][2 * i] + t->n[o][2 * i + 1];
        memset(&t->n[o][LT_TL_SLOTS / 2], 0, sizeof t->n[o][0] * (LT_TL_SLOTS / 2));
    }
    t->slot_ns *= 2;
}

void lt_timeline_add(struct lt_timeline *t, uint64_t now_ns, enum lt_outcome out)
{
    uint64_t since = now_ns > t->origin_ns ? now_ns - t->origin_ns : 0;
    while (since / t->slot_ns >= LT_TL_SLOTS)
        timeline_fold(t);
    t->n[out][since / t->slot_ns]++;
}

/* Both timelines start at lt_run()'s start; the coarser width wins. */
static void timeline_merge(struct lt_timeline *dst, const struct lt_timeline *src)
{
    if (!dst->origin_ns)
        dst->origin_ns = src->origin_ns;
    while (dst->slot_ns < src->slot_ns)
        timeline_fold(dst);
    uint64_t f = dst->slot_ns / src->slot_ns;
    for (int o = 0; o < LT_OUTCOMES; o++)
        for (uint64_t i = 0; i < LT_TL_SLOTS; i++)
            dst->n[o][i / f] += src->n[o][i];
}

json_t *lt_timeline_json(const struct lt_timeline *t)
{
    static const char *const names[LT_OUTCOMES] = { "ok", "4xx", "5xx", "transport" };
    int used = 0; /* slots up to the last non-empty one */
    for (int o = 0; o < LT_OUTCOMES; o++)
        for (int i = used; i < LT_TL_SLOTS; i++)
            if (t->n[o][i])
                used = i + 1;
    json_t *obj = json_pack("{s:f}", "slot_ms", (double)t->slot_ns / 1e6);
    for (int o = 0; obj && o < LT_OUTCOMES; o++) {
        json_t *arr = json_array();
        for (int i = 0; arr && i < used; i++)
            if (json_array_append_new(arr, json_integer((json_int_t)t->n[o][i])) < 0) {
                json_decref(arr);
                arr = NULL;
            }
        if (json_object_set_new(obj, names[o], arr) < 0) { /* NULL arr fails too */
            json_decref(obj);
            obj = NULL;
        }
    }
    return obj;
}

/* Finds or adds an error code slot; the last slot collects overflow. */
static struct lt_code *code_slot(struct lt_stats *st, const char *name)
{
    for (int i = 0; i < st->n_codes; i++)
        if (strcmp(st->codes[i].name, name) == 0)
            return &st->codes[i];
    if (st->n_codes == LT_MAX_CODES - 1) {
        name = "_other";
        for (int i = 0; i < st->n_codes; i++)
            if (strcmp(st->codes[i].name, name) == 0)
                return &st->codes[i];
    }
    struct lt_code *c = &st->codes[st->n_codes++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->n = 0;
    return c;
}

/* Tallies {"error":{"code":...}} from a failure body; "_unparsed" if absent. */
void lt_stats_error_body(struct lt_stats *st, const char *body, size_t len)
{
    json_t *root = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(json_object_get(root, "error"), "code"));
    code_slot(st, code && *code ? code : "_unparsed")->n++;
    json_decref(root);
}

uint64_t lt_stats_transport_total(const struct lt_stats *st)
{
    uint64_t n = 0;
    for (int i = 0; i < TE_COUNT; i++)
        n += st->terr[i];
    return n;
}

void lt_stats_merge(struct lt_stats *dst, const struct lt_stats *src)
{
    dst->responses += src->responses;
    for (int i = 0; i < LT_MAX_STATUS; i++)
        dst->status[i] += src->status[i];
    for (int i = 0; i < TE_COUNT; i++)
        dst->terr[i] += src->terr[i];
    for (int i = 0; i < src->n_codes; i++)
        code_slot(dst, src->codes[i].name)->n += src->codes[i].n;
    for (long e = 0; e < dst->events && e < src->events; e++)
        dst->created[e] += src->created[e];
    for (unsigned i = 0; i < LT_HIST_BUCKETS; i++)
        dst->hist.b[i] += src->hist.b[i];
    dst->hist.count += src->hist.count;
    dst->hist.sum_us += src->hist.sum_us;
    if (src->hist.max_us > dst->hist.max_us)
        dst->hist.max_us = src->hist.max_us;
    timeline_merge(&dst->timeline, &src->timeline);
    if (!dst->start_ns || (src->start_ns && src->start_ns < dst->start_ns))
        dst->start_ns = src->start_ns;
    if (src->end_ns > dst->end_ns)
        dst->end_ns = src->end_ns;
}
