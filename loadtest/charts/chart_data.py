#!/usr/bin/env python3
"""Turn a bench results directory into the small tables charts.gp draws.

    chart_data.py RESULTS_DIR OUT_DIR

Reads the reservd-load JSON (rps, latency_percentiles_ms, timeline), the
pgbench outputs and the oversell counts that loadtest/bench keeps in
RESULTS_DIR, and the settings in RESULTS_DIR/meta.env. Writes vars.gp
(gnuplot variables), throughput.dat, latency.dat, spike.dat,
spike_strategies.dat and oversell.dat into OUT_DIR. Exits 1 if a table would
be empty: a chart without data must not be committed.
"""
import json
import math
import os
import re
import shlex
import statistics
import sys

COLOURS = {"for-update": 0x1f77b4, "batch": 0x2ca02c, "atomic": 0xff7f0e, "unsafe": 0xd62728}
GREY = 0x777777


def meta(res):
    env = {}
    with open(os.path.join(res, "meta.env")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            words = shlex.split(value)
            env[key] = words[0] if words else ""
    return env


def jload(res, name):
    try:
        with open(os.path.join(res, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def runs(res, n, prefix):
    return [jload(res, f"{prefix}_r{r}") for r in range(1, n + 1)]


def tps(res, name):
    try:
        with open(os.path.join(res, name + ".txt")) as f:
            m = re.search(r"^tps = ([0-9.]+)", f.read(), re.M)
        with open(os.path.join(res, name + ".rc")) as f:
            rc = int(f.read())
    except (OSError, ValueError):
        return None
    return float(m.group(1)) if m and rc == 0 else None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_run(ds):
    """The run whose wall time is the median one (so its timeline is typical)."""
    ok = [d for d in ds if d and d.get("timeline")]
    if not ok:
        return None
    ok.sort(key=lambda d: d["wall_seconds"])
    return ok[(len(ok) - 1) // 2]


def nice_bin(span_ms, slot_ms, most=80):
    for b in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if b >= slot_ms and span_ms / b <= most:
            return b
    return 1000


def rebin(timeline, key, bin_ms):
    """Counts per bin_ms from a timeline of slot_ms slots."""
    slot = timeline["slot_ms"]
    out = {}
    for i, n in enumerate(timeline.get(key, [])):
        b = int(i * slot // bin_ms)
        out[b] = out.get(b, 0) + n
    return out


def write(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(row + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: chart_data.py RESULTS_DIR OUT_DIR")
    res, out = sys.argv[1], sys.argv[2]
    env = meta(res)
    n = int(env["RUNS"])
    strategies = env["STRATEGIES_LIST"].split()
    clients = [int(c) for c in env["CLIENTS_LIST"].split()]
    missing = []

    # Throughput of each strategy on the hot event: median, min and max of the runs.
    rows = ["# strategy median min max colour label"]
    for s in strategies:
        rps = [d["rps"] for d in runs(res, n, f"st_{s}") if d]
        if rps:
            rows.append(f'"{s}" {median(rps):.1f} {min(rps):.1f} {max(rps):.1f} {COLOURS.get(s, GREY)} "{median(rps):,.0f}"')
        else:
            missing.append(f"throughput of {s}")
    write(os.path.join(out, "throughput.dat"), rows)
    pgb = [median([tps(res, f"pgb_hot_c{c}_r{r}") for r in range(1, n + 1)]) for c in clients]
    pgb_best = max([t for t in pgb if t is not None], default=0)

    # Latency curves: x = -log10(1 - p), so 90 %, 99 %, 99.9 % are evenly spaced;
    # p100 (the maximum) has no place on that axis and is left out.
    rows = []
    for s in strategies:
        curves = [d.get("latency_percentiles_ms") for d in runs(res, n, f"st_{s}") if d]
        curves = [c for c in curves if c]
        if not curves:
            missing.append(f"latency curve of {s}")
            continue
        rows.append(f'# {s}')
        for i, (p, _) in enumerate(curves[0]):
            if p >= 100:
                continue
            ms = median([c[i][1] for c in curves])
            rows.append(f"{-math.log10(1 - p / 100):.4f} {max(ms, 0.001):.3f} {p}")
        rows += ["", ""]
    write(os.path.join(out, "latency.dat"), rows)

    # The (a) spike over time (its median run), beside the /livez spike of the same run.
    spikes = runs(res, n, "spike")
    sp = median_run(spikes)
    spike_run = spikes.index(sp) + 1 if sp else 0
    lz = None
    if sp:
        lz = jload(res, f"spikelivez_r{spike_run}")
        lz = lz if lz and lz.get("timeline") else None
    if sp:
        tl = sp["timeline"]
        span = max(sp["wall_seconds"], lz["wall_seconds"] if lz else 0) * 1000
        bin_ms = nice_bin(span, max(tl["slot_ms"], lz["timeline"]["slot_ms"] if lz else 0))
        ok, rej = rebin(tl, "ok", bin_ms), rebin(tl, "4xx", bin_ms)
        other = {k: v for k, v in rebin(tl, "5xx", bin_ms).items()}
        for k, v in rebin(tl, "transport", bin_ms).items():
            other[k] = other.get(k, 0) + v
        live = rebin(lz["timeline"], "ok", bin_ms) if lz else {}
        last = max([*ok, *rej, *other, *live, 0])
        live_end = max([b for b, v in live.items() if v], default=-1) + 1
        rows = ["# t_ms(bin centre) granted rejected other livez cumulative_granted"]
        cum = 0
        for b in range(last + 1):
            cum += ok.get(b, 0)
            lv = live.get(b, 0) if b <= live_end else "NaN"   # the line ends with its spike
            rows.append(f"{(b + 0.5) * bin_ms:g} {ok.get(b, 0)} {rej.get(b, 0)} {other.get(b, 0)} {lv} {cum}")
        write(os.path.join(out, "spike.dat"), rows)
    else:
        missing.append("the (a) spike's timeline")
        bin_ms = 1

    # Each strategy's spike: share of the requests answered, over time.
    rows = []
    spike_n = int(env["OVERSELL_N"])
    for s in strategies:
        d = median_run(runs(res, n, f"ov_{s}"))
        if not d:
            missing.append(f"spike timeline of {s}")
            continue
        tl, done = d["timeline"], 0
        rows.append(f"# {s}")
        rows.append("0 0")
        for i in range(len(tl["ok"])):
            done += sum(tl[k][i] for k in ("ok", "4xx", "5xx", "transport"))
            rows.append(f"{(i + 1) * tl['slot_ms']:g} {100.0 * done / spike_n:.3f}")
        rows += ["", ""]
    write(os.path.join(out, "spike_strategies.dat"), rows)

    # Oversold tickets per strategy and run (active reservations - tickets).
    tickets = int(env["OVERSELL_TICKETS"])
    rows = ["# strategy oversold_run1 ... colour"]
    worst = 0
    for s in strategies:
        per = []
        for r in range(1, n + 1):
            try:
                with open(os.path.join(res, f"ov_{s}_r{r}.active")) as f:
                    per.append(max(0, int(f.read()) - tickets))
            except (OSError, ValueError):
                per.append(0)
                missing.append(f"oversell count of {s} run {r}")
        worst = max(worst, *per)
        rows.append(f'"{s}" ' + " ".join(str(x) for x in per) + f" {COLOURS.get(s, GREY)}")
    write(os.path.join(out, "oversell.dat"), rows)

    write(os.path.join(out, "vars.gp"), [
        f"runs = {n}",
        f"nstrat = {len(strategies)}",
        f"pgb_best = {pgb_best:.1f}",
        f"bin_ms = {bin_ms}",
        f"spike_n = \"{int(env['SPIKE_N']):,}\"",
        f"tickets = {tickets}",
        f"worst = {worst}",
        f"conns = {int(env['CONNS'])}",
        f"steady_s = \"{env['STEADY_S']}\"",
        f"spike_wall = {sp['wall_seconds'] if sp else 0}",
        f"strategies = \"{' '.join(strategies)}\"",
        f"colours = \"{' '.join(f'#{COLOURS.get(s, GREY):06x}' for s in strategies)}\"",
        f"spike_run = {spike_run}",
        f"source = \"loadtest/bench{' --quick' if env.get('QUICK') == '1' else ''} on {env['BENCH_DATE']}, "
        f"commit {env['COMMIT']}\"",
    ])
    if missing:
        print("chart_data: missing: " + "; ".join(missing), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
