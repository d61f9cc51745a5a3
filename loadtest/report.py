#!/usr/bin/env python3
"""The RESULTS.md report of a loadtest/bench run, on stdout.

    loadtest/report.py RESULTS_DIR
    loadtest/report.py --scale RESULTS_DIR   (only its "Several instances" section)
    loadtest/report.py --machine      (this machine, as the report describes it)

It reads only RESULTS_DIR: what the bench wrote there (reservd-load's JSON, pgbench's
output, peak RSS, active reservations after each spike, the failed checks in `fails`) and
the run's settings in meta.env. Every figure is the median of the runs. Tested on a small
recorded run by loadtest/report_test.sh.
"""
import json, os, platform, re, statistics, subprocess, sys


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

def mem_total():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1048576:.1f} GiB"
    except OSError:
        pass
    return "unknown"

def debian():
    try:
        return open("/etc/debian_version").read().strip()
    except OSError:
        return "unknown"

def this_machine():
    return (f"{os.cpu_count()} × {cpu_model()}, {mem_total()} RAM, kernel {platform.release()}, "
            f"Debian {debian()}")

def load_meta(path):
    """meta.env's settings. bash wrote them (printf %q), so bash reads them."""
    names = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", open(path).read(), re.M)
    script = '. "$1" || exit 1; shift; for v; do printf "%s=%s\\0" "$v" "${!v}"; done'
    out = subprocess.run(["bash", "-c", script, "meta", path] + names,
                         check=True, capture_output=True).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def scale_section(RES, E, RUNS):
    """The "Several instances" section (lines), from RES/sc_*, scspike_*, scpgb_*
    and their .cpu and .wal files; None when the scale scenario did not run.
    Its own helpers: its number formats are not the main report's (f2 has no
    thousands separator here)."""
    CONFIGS = E.get("SCALE_CONFIGS_LIST", "").split()
    STRATS = E.get("SCALE_STRATEGIES_LIST", "").split()
    def jload(name):
        try:
            return json.load(open(f"{RES}/{name}.json"))
        except (OSError, ValueError):
            return None
    if not CONFIGS or not STRATS or jload(f"sc_{CONFIGS[0]}_{STRATS[0]}_r1") is None:
        return None
    def med(xs):
        xs = [x for x in xs if x is not None]
        return statistics.median(xs) if xs else None
    def get(d, *path):
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        return d
    def series(prefix, *path):
        return [get(jload(f"{prefix}_r{r}"), *path) for r in range(1, RUNS + 1)]
    def ratios(a, b):
        return [x / y if x is not None and y else None for x, y in zip(a, b)]
    def cpu(name):
        try:
            return {k: int(v) for k, v in (l.split() for l in open(f"{RES}/{name}.cpu") if l.strip())}
        except (OSError, ValueError):
            return {}
    f0 = lambda x: "n/a" if x is None else f"{x:,.0f}"
    f2 = lambda x: "n/a" if x is None else f"{x:.2f}"
    ms = lambda x: "n/a" if x is None else (f"{x:.2f} ms" if x < 10 else f"{x:,.0f} ms")
    label = {"direct": "1 instance, direct (`--db-prepared on`)", "direct-off": "1 instance, direct, `--db-prepared off`",
             "bouncer": "1 instance through PgBouncer (`off`)", "haproxy3": "3 instances behind HAProxy, through PgBouncer (`off`)"}
    n, steady = int(E["SCALE_SPIKE_N"]), E["STEADY_S"]
    # the cores of the machine that ran the bench (a run kept before CPUS was saved:
    # this one's)
    cpus = int(E.get("CPUS") or os.cpu_count())
    out = []
    p = out.append
    p("## Several instances\n")
    p(f"`loadtest/bench --only scale` (or a full run): every run measures each configuration in turn, in the same "
      f"run, with PgBouncer {E.get('BOUNCER_POOL_SIZE') or '?'} server connections (`default_pool_size`, transaction "
      f"pooling) and HAProxy from `deploy/` (the files `tests/scale` runs). Hot event: {E['CONNS']} keep-alive "
      f"connections for {steady} s on one event; spike: {n:,} requests on fresh connections at once, 100 tickets, "
      f"for-update (HAProxy holds two descriptors a connection, and this machine's hard limit is 20,000 a process). "
      f"Ratios are per run, against the first row of the same run, then the median; reservd's pool is "
      f"{E.get('POOL_SIZE') or '?'} connections per instance.\n")
    hdr = "| configuration |"
    sep = "|---|"
    for s in STRATS:
        hdr += f" hot `{s}` req/s | p99 | ratio |"
        sep += "---:|---:|---:|"
    hdr += f" spike wall | spike p99 | ratio | spike 201 / 409 |"
    sep += "---:|---:|---:|---|"
    p(hdr); p(sep)
    base = CONFIGS[0]
    for c in CONFIGS:
        row = f"| {label.get(c, c)} |"
        for s in STRATS:
            rps = series(f"sc_{c}_{s}", "rps")
            row += (f" {f0(med(rps))} | {ms(med(series(f'sc_{c}_{s}', 'latency_ms', 'p99')))} |"
                    f" {f2(med(ratios(rps, series(f'sc_{base}_{s}', 'rps'))))} |")
        wall = series(f"scspike_{c}", "wall_seconds")
        st = [get(jload(f"scspike_{c}_r{r}"), "status") or {} for r in range(1, RUNS + 1)]
        exact = all(x.get("201") == 100 and x.get("409") == n - 100 for x in st)
        row += (f" {f2(med(wall))} s | {ms(med(series(f'scspike_{c}', 'latency_ms', 'p99')))} |"
                f" {f2(med(ratios(wall, series(f'scspike_{base}', 'wall_seconds'))))} |"
                f" {'100 / ' + format(n - 100, ',') + ' in every run' if exact else 'MISMATCH: ' + str(st)} |")
        p(row)
    p("")
    if "direct-off" in CONFIGS:
        parts = []
        for s in STRATS:
            rr = ratios(series(f"sc_direct-off_{s}", "rps"), series(f"sc_direct_{s}", "rps"))
            parts.append(f"`{s}` {f2(med(rr))} (runs: {' / '.join(f2(x) for x in rr)})")
        p("The cost of `--db-prepared off` on the hot path (1 instance, direct; req/s off ÷ on, same run): "
          + "; ".join(parts) + ".\n")
    def tps(name):
        try:
            txt = open(f"{RES}/{name}.txt").read()
            if int(open(f"{RES}/{name}.rc").read()) != 0:
                return None
        except (OSError, ValueError):
            return None
        m = __import__("re").search(r"^tps = ([0-9.]+)", txt, __import__("re").M)
        return float(m.group(1)) if m else None
    def tps_series(name):
        return [tps(f"{name}_r{r}") for r in range(1, RUNS + 1)]
    fu_p, fu_x = tps_series("scpgb_fu_prepared"), tps_series("scpgb_fu_extended")
    b_p, b_x, b1 = tps_series("scpgb_b100_prepared"), tps_series("scpgb_b100_extended"), tps_series("scpgb_b1_prepared")
    us = lambda t: None if not t else 1e6 / t
    per_row = [(us(a) - us(b)) / 99 if a and b else None for a, b in zip(b_p, b1)]
    if med(fu_p) is not None:
        p("The statements alone (pgbench, 1 client, no HTTP; prepared with reservd's generic plans, and unnamed as "
          "`--db-prepared off` sends them; microseconds a call, median of the runs):\n")
        p("| statement | prepared | unnamed | unnamed ÷ prepared (time) | per run, prepared / unnamed |")
        p("|---|---:|---:|---:|---|")
        for lab, a, b in (("`reserve_for_update` (one user)", fu_p, fu_x), ("`reserve_batch`, 100 users", b_p, b_x)):
            rr = [us(y) / us(x) if x and y else None for x, y in zip(a, b)]
            p(f"| {lab} | {f0(med([us(x) for x in a]))} | {f0(med([us(x) for x in b]))} | {f2(med(rr))} | "
              + " ; ".join(f"{f0(us(x))} / {f0(us(y))}" for x, y in zip(a, b)) + " |")
        p(f"| `reserve_batch`, 1 user | {f0(med([us(x) for x in b1]))} | | | {' ; '.join(f0(us(x)) for x in b1)} |")
        p(f"\nEach user more in a batch costs {f0(med(per_row))} µs at the database "
          f"((100 users − 1 user) ÷ 99; runs: {' / '.join(f0(x) for x in per_row)}).\n")
    def wal(name):
        try:
            b = float(open(f"{RES}/{name}.wal").read())
            g = (jload(name) or {}).get("status", {}).get("201")
            return b / g if g else None
        except (OSError, ValueError):
            return None
    wl = {s: [wal(f"sc_direct_{s}_r{r}") for r in range(1, RUNS + 1)] for s in STRATS}
    if any(x is not None for v in wl.values() for x in v):
        p("WAL written per granted reservation during the hot runs (1 instance, direct): "
          + "; ".join(f"`{s}` {f0(med(v))} bytes (runs: {' / '.join(f0(x) for x in v)})" for s, v in wl.items()) + ".\n")
    p(f"Where the 2 cores went during the hot runs: CPU seconds of each component over the {steady} s run "
      f"(user + system, from /proc; median of the runs; {cpus} cores × {steady} s = "
      f"{cpus * int(steady)} s available):\n")
    comps = ["reservd", "postgres", "pgbouncer", "haproxy", "reservd-load"]
    p("| configuration, strategy | " + " | ".join(comps) + " | total |")
    p("|---|" + "---:|" * (len(comps) + 1))
    tck = os.sysconf("SC_CLK_TCK")
    for c in CONFIGS:
        for s in STRATS:
            per = [cpu(f"sc_{c}_{s}_r{r}") for r in range(1, RUNS + 1)]
            vals = [med([d.get(k) for d in per]) for k in comps]
            cells = ["–" if v is None or v == 0 else f"{v / tck:.1f}" for v in vals]
            tot = sum(v for v in vals if v)
            p(f"| {label.get(c, c)}, `{s}` | " + " | ".join(cells) + f" | {tot / tck:.1f} |")
    p("")
    p("Per run (req/s, run 1 / run 2 / …):\n")
    p("| measurement | per run |")
    p("|---|---|")
    for c in CONFIGS:
        for s in STRATS:
            p(f"| {c} `{s}` | {' / '.join(f0(x) for x in series(f'sc_{c}_{s}', 'rps'))} |")
        p(f"| {c} spike wall s | {' / '.join(f2(x) for x in series(f'scspike_{c}', 'wall_seconds'))} |")
    return out


if len(sys.argv) == 2 and sys.argv[1] == "--machine":
    print(this_machine())  # for the bench to save with its results
    sys.exit(0)
if len(sys.argv) == 3 and sys.argv[1] == "--scale":
    # `bench --only scale`: that section alone (nothing when there is none)
    E = load_meta(f"{sys.argv[2]}/meta.env")
    scale = scale_section(sys.argv[2], E, int(E["RUNS"]))
    if scale:
        print("\n".join(scale))
    sys.exit(0)
if len(sys.argv) != 2:
    sys.exit("usage: report.py RESULTS_DIR  (or --scale RESULTS_DIR, or --machine)")
RES = sys.argv[1]
E = load_meta(f"{RES}/meta.env")
RUNS = int(E["RUNS"])
# runs kept before these were saved: the machine this report is written on
MACHINE = E.get("MACHINE") or this_machine()
CPUS = E.get("CPUS") or str(os.cpu_count())
CLIENTS = [int(c) for c in E["CLIENTS_LIST"].split()]
STRATS = E["STRATEGIES_LIST"].split()
# a run kept before the list was saved had one unsafe strategy, "unsafe"
UNSAFE = E["UNSAFE_LIST"].split() if "UNSAFE_LIST" in E else ["unsafe"]

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def jload(name):
    try:
        with open(f"{RES}/{name}.json") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def runs(prefix):
    return [jload(f"{prefix}_r{r}") for r in range(1, RUNS + 1)]

def field(ds, *path):
    out = []
    for d in ds:
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        out.append(d)
    return out

def tps(name):
    try:
        txt = open(f"{RES}/{name}.txt").read()
        rc = int(open(f"{RES}/{name}.rc").read())
    except OSError:
        return None
    m = re.search(r"^tps = ([0-9.]+)", txt, re.M)
    return float(m.group(1)) if m and rc == 0 else None

def pgb(scen):
    """median tps per client count, and the best (clients, tps)"""
    per = {c: med([tps(f"pgb_{scen}_c{c}_r{r}") for r in range(1, RUNS + 1)]) for c in CLIENTS}
    ok = [(c, t) for c, t in per.items() if t is not None]
    best = max(ok, key=lambda ct: ct[1]) if ok else (None, None)
    return per, best

def f0(x): return "n/a" if x is None else f"{x:,.0f}"
def f1(x): return "n/a" if x is None else f"{x:,.1f}"
def f2(x): return "n/a" if x is None else f"{x:,.2f}"
def ms(x): return "n/a" if x is None else (f"{x:.2f} ms" if x < 10 else f"{x:,.0f} ms")
def ratio(a, b): return "n/a" if a is None or not b else f"{a / b:.2f}"
def per_run(xs): return " / ".join(f0(x) for x in xs)

def statuses(ds):
    tot = {}
    for d in ds:
        for k, v in ((d or {}).get("status") or {}).items():
            tot[k] = tot.get(k, 0) + v
    return ", ".join(f"{k}×{v:,}" for k, v in sorted(tot.items()))

def terr(ds):
    return sum((d or {}).get("transport_errors", 0) or 0 for d in ds)

def capped(ds):
    return any((d or {}).get("requests") == int(E["USERS"]) for d in ds)

fails = [l.strip() for l in open(f"{RES}/fails") if l.strip()]
out = []
p = out.append
el = int(E["ELAPSED"])
p("# reservd benchmark results\n")
p(f"Written by `loadtest/bench{' --quick' if E['QUICK'] == '1' else ''}` on "
  f"{E['BENCH_DATE']}; the whole run (build included) took "
  f"{el // 60} min {el % 60:02d} s. Every figure is the **median of {RUNS} run{'s' if RUNS > 1 else ''}** "
  f"(per-run figures at the end).\n")
dirty = E.get("DIRTY", "")
commit = E["COMMIT"] + (f"+dirty ({dirty})" if dirty else "")
p("| | |\n|---|---|")
p(f"| reservd commit | `{commit}` |")
p(f"| machine | {MACHINE} |")
p(f"| PostgreSQL | {E['PG_VERSION']}, fsync = **{E['FSYNC']}**, synchronous_commit = **{E['SYNC_COMMIT']}**; {E['PG_SETTINGS']} |")
p(f"| load average (1/5/15 min) | before {E['LOAD_BEFORE']}, after {E['LOAD_AFTER']} — a shared machine: other builds and tests add noise |")
p(f"| correctness checks | {'**all passed**' if not fails else '**FAILED**: ' + '; '.join(fails)} |")
p("")
p("Charts of this run, drawn by the bench with gnuplot: [throughput by strategy](charts/throughput.svg), "
  "[latency by percentile](charts/latency.svg), [the spike over time](charts/spike.svg), "
  "[the spike on each strategy](charts/spike_strategies.svg), [oversold tickets](charts/oversell.svg).\n")
p("## Settings\n")
p(f"- reservd: Release build, `--bind 127.0.0.1 --log-level warn`, otherwise defaults (HTTP threads = cores, "
  f"64 workers, pool size {E.get('POOL_SIZE') or '?'} here); one server for (b)–(d), a fresh one "
  f"for each spike run (so its peak RSS is the spike's), one per strategy run; stopped with SIGTERM, exit 0 checked.")
p(f"- Database `reservd_bench`, dropped and recreated; {int(E['USERS']):,} users seeded with `reservd-seed`, then "
  f"`VACUUM ANALYZE`. Every run gets fresh events (`reservd-seed --events`) and users 1..N, so no run meets "
  f"another's reservations and nobody is `already_reserved`; steady runs are capped at {int(E['USERS']):,} "
  f"requests so every user exists.")
p(f"- Load: `reservd-load` (one thread) on the same {CPUS} cores as reservd and PostgreSQL. Steady runs: "
  f"{E['CONNS']} keep-alive connections for {E['STEADY_S']} s. p50/p99 are per request (spike: from `connect()`).")
p(f"- pgbench: `-n -M prepared -j min(2,c) -T {E['PGB_S']}` at 1, 4 and 16 clients, persistent connections, "
  f"scripts in `loadtest/bench.d/`: `reserve.sql` (BEGIN; SELECT … FOR UPDATE; INSERT; UPDATE; COMMIT — one round "
  f"trip per statement; unique users per client from a counter, fresh events for each invocation) and "
  f"`get_event.sql`. The column shows the best client count; ratio = reservd req/s ÷ that tps.")
p("")

# ---- scenario table
p("## Scenarios\n")
p("| scenario | reservd req/s | p50 | p99 | pgbench tps (best clients) | ratio | notes |")
p("|---|---:|---:|---:|---:|---:|---|")
pg_rows = {}

sp, spl = runs("spike"), runs("spikelivez")
rss = []
for r in range(1, RUNS + 1):
    try:
        rss.append(int(open(f"{RES}/spike_r{r}.rss").read()) / 1024)
    except (OSError, ValueError):
        rss.append(None)
per, best = pgb("spike"); pg_rows["(a) spike"] = per
w, wl = med(field(sp, "wall_seconds")), med(field(spl, "wall_seconds"))
rps = med(field(sp, "rps"))
ok_counts = all((d or {}).get("expect_status", {}).get("ok") for d in sp)
ver = all(((d or {}).get("verify") or {}).get("ok") for d in sp)
p(f"| (a) spike: {int(E['SPIKE_N']):,} requests on fresh connections at once, {E['SPIKE_TICKETS']} tickets "
  f"(`POST /reservation/{{e}}/{{u}}`) | {f0(rps)} | {ms(med(field(sp, 'latency_ms', 'p50')))} | "
  f"{ms(med(field(sp, 'latency_ms', 'p99')))} | {f0(best[1])} ({best[0]}) | {ratio(rps, best[1])} | "
  f"wall {f2(w)} s; {statuses(sp[:1])} per run ({'exact in every run' if ok_counts else 'MISMATCH'}), "
  f"verify {'ok' if ver else 'FAILED'}, transport errors {terr(sp)}; same spike on `GET /livez`: wall {f2(wl)} s "
  f"(p99 {ms(med(field(spl, 'latency_ms', 'p99')))}), wall ratio reserve/livez = {ratio(w, wl)}; reservd peak RSS "
  f"(VmHWM) after the spike {f1(med(rss))} MiB; pgbench: {int(E['SPIKE_N']):,} transactions in total |")

hot, probe = runs("hot"), runs("hotprobe")
per, best = pgb("hot"); pg_rows["(b) hot event"] = per
hot_best = best[1]
rps = med(field(hot, "rps"))
p(f"| (b) hot event: one event, {E['CONNS']} connections, `POST /reservations` | {f0(rps)} | "
  f"{ms(med(field(hot, 'latency_ms', 'p50')))} | {ms(med(field(hot, 'latency_ms', 'p99')))} | "
  f"{f0(best[1])} ({best[0]}) | {ratio(rps, best[1])} | `GET /livez` during it (paced probe, ~50/s): "
  f"p99 {ms(med(field(probe, 'latency_ms', 'p99')))}, {f0(med(field(probe, 'rps')))} req/s; {statuses(hot)}; "
  f"transport errors {terr(hot) + terr(probe)}{'; hit the user cap' if capped(hot) else ''} |")

many = runs("many")
per, best = pgb("many"); pg_rows["(c) many events"] = per
rps = med(field(many, "rps"))
p(f"| (c) many events: {int(E['EVENTS_MANY']):,} events, {E['CONNS']} connections, `POST /reservations` | {f0(rps)} | "
  f"{ms(med(field(many, 'latency_ms', 'p50')))} | {ms(med(field(many, 'latency_ms', 'p99')))} | "
  f"{f0(best[1])} ({best[0]}) | {ratio(rps, best[1])} | {statuses(many)}; transport errors {terr(many)}"
  f"{'; hit the user cap' if capped(many) else ''} |")

reads = runs("reads")
per, best = pgb("reads"); pg_rows["(d) reads"] = per
rps = med(field(reads, "rps"))
p(f"| (d) reads: `GET /events/{{id}}` over {int(E['EVENTS_MANY']):,} events, {E['CONNS']} connections | {f0(rps)} | "
  f"{ms(med(field(reads, 'latency_ms', 'p50')))} | {ms(med(field(reads, 'latency_ms', 'p99')))} | "
  f"{f0(best[1])} ({best[0]}) | {ratio(rps, best[1])} | {statuses(reads)}; transport errors {terr(reads)} |")
p("")

# ---- strategy table
p("## Reservation strategies\n")
p(f"Hot event ({E['CONNS']} keep-alive connections, {E['STEADY_S']} s, one event with {int(E['HOT_TICKETS']):,} tickets); "
  f"ratio to the (b) pgbench best ({f0(hot_best)} tps). Spike: the (a) spike ({int(E['OVERSELL_N']):,} requests on "
  f"fresh connections, a separate {E['OVERSELL_TICKETS']}-ticket event) on the same server, its wall time, and that "
  f"divided by a `GET /livez` spike run right after it; oversold = active reservations − {E['OVERSELL_TICKETS']} "
  f"after it (clamped at 0, counted with psql), the worst of the runs.\n")
p("| strategy | req/s | p50 | p99 | ratio to pgbench | spike wall | spike ÷ livez spike | oversold |")
p("|---|---:|---:|---:|---:|---:|---:|---:|")
st_detail = {}
for s in STRATS:
    ds = runs(f"st_{s}")
    ov = []
    for r in range(1, RUNS + 1):
        try:
            a = int(open(f"{RES}/ov_{s}_r{r}.active").read())
            ov.append(max(0, a - int(E["OVERSELL_TICKETS"])))
        except (OSError, ValueError):
            ov.append(None)
    st_detail[s] = (ds, ov)
    rps = med(field(ds, "rps"))
    ovs = [o for o in ov if o is not None]
    ovtxt = "n/a" if not ovs else (f"**{max(ovs)}**" if max(ovs) > 0 else "0")
    if len(ovs) > 1:
        ovtxt += f" (runs: {' / '.join(str(o) for o in ov)})"
    extra = " (oversells on purpose)" if s in UNSAFE else ""
    sw = field(runs(f"ov_{s}"), "wall_seconds")
    lw = field(runs(f"ovlivez_{s}"), "wall_seconds")
    sr = med([a / b if a and b else None for a, b in zip(sw, lw)])
    p(f"| `{s}`{extra} | {f0(rps)} | {ms(med(field(ds, 'latency_ms', 'p50')))} | "
      f"{ms(med(field(ds, 'latency_ms', 'p99')))} | {ratio(rps, hot_best)} | {f2(med(sw))} s | {f2(sr)} | {ovtxt} |")
p("")

# ---- idle crowd
if jload("idle0_hot_r1") is not None:
    n_idle = int(E.get("IDLE_N", "10000"))
    p("## The idle crowd\n")
    p(f"`batch` on one server: the hot event ({E['CONNS']} keep-alive connections, {E['STEADY_S']} s) and "
      f"`GET /livez` ({E['CONNS']} connections), alone and then with {n_idle:,} idle keep-alive connections "
      f"held open (`loadtest/idle_holder.py`: each sent one `GET /livez`, then silent), in the same run; "
      f"ratio = with ÷ alone, per run, then the median. Peak RSS is the server's VmHWM at the end of the run.\n")
    p(f"| scenario | alone req/s | with {n_idle:,} idle req/s | ratio | p99 alone | p99 with | per-run ratios |")
    p("|---|---:|---:|---:|---:|---:|---|")
    for label, key in (("hot event, `POST /reservations`", "hot"), ("`GET /livez`", "livez")):
        a, b = runs(f"idle0_{key}"), runs(f"idle1_{key}")
        ra, rb = field(a, "rps"), field(b, "rps")
        rr = [y / x if x and y else None for x, y in zip(ra, rb)]
        p(f"| {label} | {f0(med(ra))} | {f0(med(rb))} | {f2(med(rr))} | "
          f"{ms(med(field(a, 'latency_ms', 'p99')))} | {ms(med(field(b, 'latency_ms', 'p99')))} | "
          f"{' / '.join(f2(x) for x in rr)} |")
    idle_rss = []
    for r in range(1, RUNS + 1):
        try:
            idle_rss.append(int(open(f"{RES}/idle_r{r}.rss").read()) / 1024)
        except (OSError, ValueError):
            idle_rss.append(None)
    p(f"\nPeak RSS with the crowd and the load: {f1(med(idle_rss))} MiB (runs: {' / '.join(f1(x) for x in idle_rss)}); "
      f"transport errors: {terr(runs('idle0_hot') + runs('idle1_hot') + runs('idle0_livez') + runs('idle1_livez'))}.\n")

# ---- (e) hold then confirm
HSTRATS = E.get("HOLD_STRATEGIES_LIST", "").split()
if HSTRATS and jload(f"hold_{HSTRATS[0]}_r1") is not None:
    p("## (e) Hold then confirm\n")
    p(f"Per strategy, a fresh {int(E['HOLD_N']):,}-ticket event with `holdSeconds` {E['HOLD_SECONDS']}: "
      f"{int(E['HOLD_N']):,} users each hold one ticket (`POST /reservations` with `\"hold\": true`, "
      f"{E['CONNS']} keep-alive connections), then the newer half of the holds are confirmed "
      f"(`POST /reservations/{{id}}/confirm`, {E['CONNS']} connections), the rest left to expire. Exact = "
      f"every hold granted, every confirm 200 or 503 `busy` (which changes nothing), and after expiry (sweeper "
      f"included) `reservedTickets` = the 200s, `heldTickets` 0, `remainingTickets` = the rest, the rows "
      f"RESERVED / EXPIRED likewise and the "
      f"counters equal to the rows. Sweep lag: from the last hold's `expiresAt` (or the end of the confirms, "
      f"if later) until no HELD row is left.\n")
    p("| strategy | holds req/s | p50 | p99 | confirms req/s | p50 | p99 | confirmed / expired (busy) | exact | sweep lag |")
    p("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for s in HSTRATS:
        h, c = runs(f"hold_{s}"), runs(f"confirm_{s}")
        ex = []
        for r in range(1, RUNS + 1):
            try:
                ex.append(json.load(open(f"{RES}/holdcheck_{s}_r{r}.json")))
            except (OSError, ValueError):
                ex.append(None)
        exact = all(e and e.get("exact") for e in ex)
        lag = med([e.get("sweep_lag_s") for e in ex if e])
        p(f"| `{s}` | {f0(med(field(h, 'rps')))} | {ms(med(field(h, 'latency_ms', 'p50')))} | "
          f"{ms(med(field(h, 'latency_ms', 'p99')))} | {f0(med(field(c, 'rps')))} | "
          f"{ms(med(field(c, 'latency_ms', 'p50')))} | {ms(med(field(c, 'latency_ms', 'p99')))} | "
          f"{'; '.join(f0(e.get('confirmed')) + ' / ' + f0(e.get('expired')) for e in ex if e) or 'n/a'} "
          f"({sum(((d or {}).get('status') or {}).get('503', 0) for d in c):,}) | "
          f"{'yes, every run' if exact else '**NO**'} | {f2(lag)} s |")
    p("")

# ---- details
p("## Details\n")
p("pgbench tps by client count (median of the runs):\n")
p("| pgbench | " + " | ".join(f"{c} client{'s' if c > 1 else ''}" for c in CLIENTS) + " |")
p("|---|" + "---:|" * len(CLIENTS))
for k, per in pg_rows.items():
    p(f"| {k} | " + " | ".join(f0(per[c]) for c in CLIENTS) + " |")
p("")
p("reservd req/s per run (run 1 / run 2 / …):\n")
p("| measurement | per run |")
p("|---|---|")
p(f"| (a) spike | {per_run(field(sp, 'rps'))} (wall s: {' / '.join(f2(x) for x in field(sp, 'wall_seconds'))}; "
  f"livez wall s: {' / '.join(f2(x) for x in field(spl, 'wall_seconds'))}; peak RSS MiB: {' / '.join(f1(x) for x in rss)}) |")
p(f"| (b) hot event | {per_run(field(hot, 'rps'))} (livez probe p99 ms: {' / '.join(f2(x) for x in field(probe, 'latency_ms', 'p99'))}) |")
p(f"| (c) many events | {per_run(field(many, 'rps'))} |")
p(f"| (d) reads | {per_run(field(reads, 'rps'))} |")
for s in STRATS:
    ds, ov = st_detail[s]
    sw = field(runs(f"ov_{s}"), "wall_seconds")
    lw = field(runs(f"ovlivez_{s}"), "wall_seconds")
    p(f"| strategy `{s}` | {per_run(field(ds, 'rps'))} (spike: {statuses(runs(f'ov_{s}'))} over all runs; "
      f"wall s {' / '.join(f2(x) for x in sw)}; livez spike wall s {' / '.join(f2(x) for x in lw)}) |")
print("\n".join(out))
# ---- several instances (the scale scenario), when it ran
scale = scale_section(RES, E, RUNS)
if scale:
    print()
    print("\n".join(scale))
