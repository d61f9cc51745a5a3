/* reservd-load: a bounded native HTTP/1.1 load generator for reservd.
 *
 * Modes: spike (N requests on N connections opened at once) and steady
 * (C keep-alive connections for D seconds or N requests). Loopback targets
 * only. Exit status: 0 ok, 1 transport errors / failed --expect-status /
 * internal error, 2 usage or refused target, 3 --verify failed. */
#include "lt.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define EXIT_USAGE  2
#define EXIT_VERIFY 3

static const char usage_text[] =
    "usage: reservd-load [spike|steady] [options] [URL]\n"
    "\n"
    "  spike                 N requests on N connections opened at once (Connection: close)\n"
    "  steady                C keep-alive connections for D seconds or N requests (default mode)\n"
    "  URL, --url URL        target, loopback only (default http://127.0.0.1:3001); a path in\n"
    "                        the URL is used as GET path when no --scenario/--path is given\n"
    "  -n, --requests N      spike: requests = connections (default 10000);\n"
    "                        steady: request cap (default 10000000)\n"
    "  -c, --connections C   steady: keep-alive connections (default 64)\n"
    "  -d, --duration D      steady: seconds of load (default 10)\n"
    "  -t, --threads T       worker threads, each with its own epoll set (default 1)\n"
    "  --timeout S           overall time limit in seconds (default 60)\n"
    "  --request-timeout S   per-request limit incl. connect, seconds (default 30)\n"
    "  --scenario NAME       reserve   POST /reservations {\"eventId\":{event},\"userId\":{i}}\n"
    "                        compat    POST /reservation/{event}/{i} (no body, like the k6 "
    "script)\n"
    "                        get-event GET /events/{event}\n"
    "                        livez     GET /livez (default)\n"
    "  --method M --path P [--body B]  custom template; {i} = request number from\n"
    "                        --user-start, {event} = --event + (request index % --events)\n"
    "  --event ID            first event id (default 1)\n"
    "  --events K            cycle {event} over K event ids (default 1)\n"
    "  --user-start N        value of {i} for the first request (default 1)\n"
    "  --expect-status LIST  e.g. 201=100,409=9900: exact counts, else exit 1\n"
    "  --verify              read back every event and its reservations, check invariants (exit "
    "3)\n"
    "  --allow-prior         events had reservations before the run: skip 201s == active check\n"
    "  --token TOKEN         send Authorization: Bearer TOKEN (default: $RESERVD_TOKEN;\n"
    "                        {i} and {event} expanded)\n"
    "  --idempotency-key T   send Idempotency-Key: T ({i} and {event} expanded)\n"
    "  --expect-granted N    with --verify: active reservations over all events must equal N\n"
    "  --json                print exactly one JSON object on stdout\n"
    "  --answers FILE        write one line per finished request: \"<i> <status> <id>\"\n"
    "                        ({i} value, HTTP status or 0 without a response, body's \"id\" or "
    "-1)\n"
    "  -h, --help            this text\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "reservd-load: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n\n%s", usage_text);
    return -1;
}

static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_dbl(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Accepts 127.0.0.0/8, ::1 and "localhost" (as 127.0.0.1) only. */
static int set_loopback_addr(struct lt_config *c, const char *host, long port)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->addr;
    memset(&c->addr, 0, sizeof c->addr);
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 && (ntohl(v4->sin_addr.s_addr) >> 24) == 127) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        c->addrlen = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 && IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        c->addrlen = sizeof *v6;
        return 0;
    }
    return -1;
}

/* Parses http://host[:port][/path]; *path gets the path part ("" if none). */
static int parse_url(struct lt_config *c, const char *url, const char **path)
{
    if (strncmp(url, "http://", 7) != 0)
        return usage_error("only http:// URLs are supported: %s", url);
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    char host[256];
    if (hl == 0 || hl >= sizeof host)
        return usage_error("bad URL: %s", url);
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *name = host, *colon = strrchr(host, ':');
    if (host[0] == '[') {
        char *rb = strchr(host, ']');
        if (!rb)
            return usage_error("bad URL: %s", url);
        *rb = '\0';
        name = host + 1;
        colon = rb[1] == ':' ? rb + 1 : NULL;
        if (!colon && rb[1])
            return usage_error("bad URL: %s", url);
    }
    long long port = 80;
    if (colon) {
        *colon = '\0';
        if (parse_ll(colon + 1, 1, 65535, &port) < 0)
            return usage_error("bad port in URL: %s", url);
    }
    if (set_loopback_addr(c, name, (long)port) < 0)
        return usage_error("refusing non-loopback target %s (only 127.0.0.0/8, ::1, localhost)",
                           url);
    snprintf(c->host, sizeof c->host, "%.*s", (int)hl, h);
    snprintf(c->url, sizeof c->url, "http://%s", c->host);
    *path = slash ? slash : "";
    return 0;
}

/* Parses "201=100,409=9900". */
static int parse_expect(struct lt_config *c, const char *arg)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", arg);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        long long code, n;
        if (!eq || c->n_expect == LT_MAX_EXPECT)
            return -1;
        *eq = '\0';
        if (parse_ll(tok, 100, LT_MAX_STATUS - 1, &code) < 0 ||
            parse_ll(eq + 1, 0, 1000000000000LL, &n) < 0)
            return -1;
        c->expect_code[c->n_expect] = (int)code;
        c->expect_count[c->n_expect++] = (uint64_t)n;
    }
    return c->n_expect ? 0 : -1;
}

/* Fills method/path/body from --scenario, or checks a custom template. */
static int apply_scenario(struct lt_config *c, const char *url_path)
{
    const char *s = c->scenario;
    if (s && c->path)
        return usage_error("%s", "--scenario and --path are exclusive");
    if (!s && !c->path && url_path[0] && strcmp(url_path, "/") != 0)
        c->path = url_path;
    if (!s && !c->path)
        s = c->scenario = "livez";
    if (s && c->body)
        return usage_error("%s", "--body needs --path");
    if (s && strcmp(s, "reserve") == 0)
        c->method = "POST", c->path = "/reservations",
        c->body = "{\"eventId\":{event},\"userId\":{i}}";
    else if (s && strcmp(s, "compat") == 0)
        c->method = "POST", c->path = "/reservation/{event}/{i}";
    else if (s && strcmp(s, "get-event") == 0)
        c->method = "GET", c->path = "/events/{event}";
    else if (s && strcmp(s, "livez") == 0)
        c->method = "GET", c->path = "/livez";
    else if (s)
        return usage_error("unknown scenario: %s", s);
    if (!c->method)
        c->method = c->body ? "POST" : "GET";
    if (c->path[0] != '/')
        return usage_error("path must start with '/': %s", c->path);
    if (strspn(c->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(c->method) || !c->method[0] ||
        !strcmp(c->method, "HEAD") || !strcmp(c->method, "CONNECT"))
        return usage_error("unsupported method: %s", c->method);
    c->reservation_run = !strcmp(c->method, "POST") && !strncmp(c->path, "/reservation", 12);
    return 0;
}

static int parse_option(struct lt_config *c, int opt, const char *a, const char **url)
{
    long long v = 0;
    int bad = 0;
    switch (opt) {
    case 'n': bad = parse_ll(a, 1, 1000000000LL, &c->requests); break;
    case 'c': bad = parse_ll(a, 1, 100000, &v), c->connections = (long)v; break;
    case 'd': bad = parse_dbl(a, 0.001, 86400, &c->duration); break;
    case 't': bad = parse_ll(a, 1, 64, &v), c->threads = (long)v; break;
    case 'T': bad = parse_dbl(a, 0.001, 86400, &c->timeout); break;
    case 'R': bad = parse_dbl(a, 0.001, 86400, &c->req_timeout); break;
    case 'e': bad = parse_ll(a, 1, 1000000000000000LL, &c->event); break;
    case 'E': bad = parse_ll(a, 1, 100000, &v), c->events = (long)v; break;
    case 'U': bad = parse_ll(a, 0, 1000000000000000LL, &c->user_start); break;
    case 'g': bad = parse_ll(a, 0, 1000000000000LL, &c->expect_granted); break;
    case 'x': bad = parse_expect(c, a); break;
    case 's': c->scenario = a; break;
    case 'm': c->method = a; break;
    case 'p': c->path = a; break;
    case 'b': c->body = a; break;
    case 'u': *url = a; break;
    case 'a': c->answers_path = a; break;
    case 'j': c->json = true; break;
    case 'v': c->verify = true; break;
    case 'A': c->allow_prior = true; break;
    case 'I': c->idem_key = a; break;
    case 'K':
        bad = strlen(a) > 600;
        if (!bad)
            snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s\r\n", a);
        break;
    default: return usage_error("%s", "invalid option");
    }
    return bad ? usage_error("bad value: %s", a) : 0;
}

/* Checks limits that depend on several options. */
static int check_config(struct lt_config *c)
{
    char tmp[LT_REQ_MAX];
    size_t len;
    if (c->mode == LT_STEADY && c->duration >= c->timeout)
        return usage_error("%s", "--duration must be below --timeout");
    if (lt_render_request(c, 0, true, tmp, sizeof tmp, &len) < 0 ||
        lt_render_request(c, c->requests - 1, true, tmp, sizeof tmp, &len) < 0)
        return usage_error("%s", "request template too large");
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            perror("reservd-load: setrlimit");
    }
    long long need = (c->mode == LT_SPIKE ? c->requests : c->connections) + 32;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        (rlim_t)need > rl.rlim_cur) {
        char msg[64];
        snprintf(msg, sizeof msg, "%lld", need);
        return usage_error("needs %s file descriptors, above RLIMIT_NOFILE", msg);
    }
    return 0;
}

static int parse_args(struct lt_config *c, int argc, char **argv)
{
    static const struct option opts[] = { { "requests", 1, 0, 'n' },
                                          { "connections", 1, 0, 'c' },
                                          { "duration", 1, 0, 'd' },
                                          { "threads", 1, 0, 't' },
                                          { "timeout", 1, 0, 'T' },
                                          { "request-timeout", 1, 0, 'R' },
                                          { "scenario", 1, 0, 's' },
                                          { "method", 1, 0, 'm' },
                                          { "path", 1, 0, 'p' },
                                          { "body", 1, 0, 'b' },
                                          { "event", 1, 0, 'e' },
                                          { "events", 1, 0, 'E' },
                                          { "user-start", 1, 0, 'U' },
                                          { "expect-status", 1, 0, 'x' },
                                          { "expect-granted", 1, 0, 'g' },
                                          { "verify", 0, 0, 'v' },
                                          { "allow-prior", 0, 0, 'A' },
                                          { "json", 0, 0, 'j' },
                                          { "url", 1, 0, 'u' },
                                          { "help", 0, 0, 'h' },
                                          { "answers", 1, 0, 'a' },
                                          { "token", 1, 0, 'K' },
                                          { "idempotency-key", 1, 0, 'I' },
                                          { 0, 0, 0, 0 } };
    const char *url = NULL, *url_path = "";
    *c = (struct lt_config){ .mode = LT_STEADY,
                             .connections = 64,
                             .duration = 10,
                             .threads = 1,
                             .timeout = 60,
                             .req_timeout = 30,
                             .event = 1,
                             .events = 1,
                             .user_start = 1,
                             .expect_granted = -1 };
    const char *token = getenv("RESERVD_TOKEN");
    if (token && *token && parse_option(c, 'K', token, &url) < 0)
        return -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "n:c:d:t:h", opts, NULL)) != -1) {
        if (opt == 'h') {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (parse_option(c, opt, optarg, &url) < 0)
            return -1;
    }
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "spike") || !strcmp(argv[i], "steady"))
            c->mode = argv[i][1] == 'p' ? LT_SPIKE : LT_STEADY;
        else if (!url)
            url = argv[i];
        else
            return usage_error("unexpected argument: %s", argv[i]);
    }
    if (!c->requests)
        c->requests = c->mode == LT_SPIKE ? 10000 : 10000000;
    if (parse_url(c, url ? url : "http://127.0.0.1:3001", &url_path) < 0 ||
        apply_scenario(c, url_path) < 0)
        return -1;
    return check_config(c);
}

/* ---- reporting ---- */

/* Rounds to 3 decimals so the JSON shows plain numbers. */
static double r3(double x)
{
    return (double)(long long)(x * 1000.0 + 0.5) / 1000.0;
}

static json_t *build_report(const struct lt_config *c, const struct lt_stats *st)
{
    double wall = (double)(st->end_ns - st->start_ns) / 1e9;
    json_t *status = json_object(), *errors = json_object(), *kinds = json_object();
    char key[16];
    int bad = !status || !errors || !kinds;
    for (int s = 0; !bad && s < LT_MAX_STATUS; s++)
        if (st->status[s] && snprintf(key, sizeof key, "%d", s) > 0)
            bad |= json_object_set_new(status, key, json_integer((json_int_t)st->status[s]));
    for (int i = 0; !bad && i < st->n_codes; i++)
        bad |= json_object_set_new(errors, st->codes[i].name,
                                   json_integer((json_int_t)st->codes[i].n));
    for (int k = 0; !bad && k < TE_COUNT; k++)
        if (st->terr[k])
            bad |=
                json_object_set_new(kinds, lt_terr_names[k], json_integer((json_int_t)st->terr[k]));
    if (bad) {
        json_decref(status);
        json_decref(errors);
        json_decref(kinds);
        return NULL;
    }
    const struct lt_hist *h = &st->hist;
    json_t *r = json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:I,s:o,s:f,s:f,s:{s:f,s:f,s:f,s:f,s:f,s:f}}", "mode",
        c->mode == LT_SPIKE ? "spike" : "steady", "url", c->url, "method", c->method, "path",
        c->path, "requests", (json_int_t)(st->responses + lt_stats_transport_total(st)),
        "responses", (json_int_t)st->responses, "status", status, "errors", errors,
        "transport_errors", (json_int_t)lt_stats_transport_total(st), "transport_error_kinds",
        kinds, "wall_seconds", r3(wall), "rps", r3(wall > 0 ? (double)st->responses / wall : 0.0),
        "latency_ms", "p50", r3(lt_hist_percentile_ms(h, 50)), "p90",
        r3(lt_hist_percentile_ms(h, 90)), "p99", r3(lt_hist_percentile_ms(h, 99)), "p999",
        r3(lt_hist_percentile_ms(h, 99.9)), "max", r3((double)h->max_us / 1000.0), "mean",
        r3(h->count ? (double)h->sum_us / (double)h->count / 1000.0 : 0.0));
    /* For charts: the whole latency curve and the responses over time. */
    if (r && (json_object_set_new(r, "latency_percentiles_ms", lt_hist_percentiles_json(h)) < 0 ||
              json_object_set_new(r, "timeline", lt_timeline_json(&st->timeline)) < 0)) {
        json_decref(r);
        r = NULL;
    }
    return r;
}

/* Prints "key: n, key: n" for one JSON object of counts. */
static void print_counts(const char *label, json_t *obj)
{
    const char *k;
    json_t *v;
    int first = 1;
    printf("%-14s", label);
    json_object_foreach(obj, k, v)
    {
        printf("%s%s: %lld", first ? "" : ", ", k, (long long)json_integer_value(v));
        first = 0;
    }
    printf("%s\n", first ? "-" : "");
}

static void print_human(const struct lt_config *c, json_t *r)
{
    json_t *lat = json_object_get(r, "latency_ms");
    printf("reservd-load %s: %s %s on %s, %s %ld thread(s)\n",
           c->mode == LT_SPIKE ? "spike" : "steady", c->method, c->path, c->url,
           c->mode == LT_SPIKE ? "one connection per request," : "keep-alive,", c->threads);
    printf("%-14s%lld (%lld responses, %lld transport errors)\n", "requests",
           (long long)json_integer_value(json_object_get(r, "requests")),
           (long long)json_integer_value(json_object_get(r, "responses")),
           (long long)json_integer_value(json_object_get(r, "transport_errors")));
    printf("%-14s%.3f s\n", "wall", json_real_value(json_object_get(r, "wall_seconds")));
    printf("%-14s%.1f\n", "requests/s", json_real_value(json_object_get(r, "rps")));
    print_counts("status", json_object_get(r, "status"));
    print_counts("error codes", json_object_get(r, "errors"));
    print_counts("transport", json_object_get(r, "transport_error_kinds"));
    printf(
        "%-14sp50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (mean %.3f)\n", "latency ms",
        json_real_value(json_object_get(lat, "p50")), json_real_value(json_object_get(lat, "p90")),
        json_real_value(json_object_get(lat, "p99")), json_real_value(json_object_get(lat, "p999")),
        json_real_value(json_object_get(lat, "max")),
        json_real_value(json_object_get(lat, "mean")));
}

/* Compares --expect-status with the counts; returns the number of mismatches. */
static int check_expectations(const struct lt_config *c, const struct lt_stats *st, json_t *report)
{
    json_t *fails = json_array();
    int bad = 0;
    for (int i = 0; i < c->n_expect; i++) {
        uint64_t got = st->status[c->expect_code[i]];
        char msg[128];
        snprintf(msg, sizeof msg, "status %d: expected %llu, got %llu", c->expect_code[i],
                 (unsigned long long)c->expect_count[i], (unsigned long long)got);
        if (!c->json)
            printf("%-14s%s %s\n", "expect", got == c->expect_count[i] ? "PASS" : "FAIL", msg);
        if (got == c->expect_count[i])
            continue;
        bad++;
        if (json_array_append_new(fails, json_string(msg)) < 0)
            fprintf(stderr, "reservd-load: %s\n", msg); /* JSON out of memory: keep the message */
    }
    json_t *e = json_pack("{s:b,s:o}", "ok", bad == 0, "failures", fails);
    if (!e || json_object_set_new(report, "expect_status", e) < 0)
        bad++;
    return bad;
}

int main(int argc, char **argv)
{
    struct lt_config cfg;
    struct lt_stats st;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) /* sends use MSG_NOSIGNAL anyway */
        perror("reservd-load: signal");
    if (parse_args(&cfg, argc, argv) < 0)
        return EXIT_USAGE;
    if (cfg.answers_path && !(cfg.answers = fopen(cfg.answers_path, "w"))) {
        perror(cfg.answers_path);
        return 1;
    }
    if (lt_stats_init(&st, cfg.events) < 0 || lt_run(&cfg, &st) < 0) {
        fprintf(stderr, "reservd-load: could not set up the run (out of memory or descriptors)\n");
        return 1;
    }
    if (cfg.answers && fclose(cfg.answers) != 0) {
        perror(cfg.answers_path);
        return 1;
    }
    json_t *report = build_report(&cfg, &st);
    if (!report) {
        fprintf(stderr, "reservd-load: out of memory\n");
        return 1;
    }
    if (!cfg.json)
        print_human(&cfg, report);
    int failed = lt_stats_transport_total(&st) > 0;
    if (cfg.n_expect && check_expectations(&cfg, &st, report) > 0)
        failed = 1;
    int verify_failed = cfg.verify && lt_verify(&cfg, &st, report) != 0;
    if (cfg.json) {
        char *s = json_dumps(report, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
        if (!s || puts(s) < 0)
            failed = 1;
        free(s);
    }
    json_decref(report);
    lt_stats_free(&st);
    return verify_failed ? EXIT_VERIFY : failed;
}
