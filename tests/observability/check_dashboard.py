#!/usr/bin/env python3
"""Check the Grafana dashboard against a live reservd's /metrics.

    check_dashboard.py DASHBOARD.json METRICS.txt DATASOURCES.yml [--rules-out FILE]

Every PromQL query of the dashboard (panel targets and template variables) is
read, Grafana's variables are replaced by plain values, and every metric name
it uses must be a sample name in METRICS.txt (the text of GET /metrics), so a
renamed metric shows up here and not as an empty panel. Every data source the
dashboard names must be the one provisioned in DATASOURCES.yml. With
--rules-out, the queries are also written as a Prometheus rule file, so that
`promtool check rules` parses each one. Prints one line per problem and a
summary; exits 1 on any problem.
"""
import json
import re
import sys

# Grafana's variables, as Prometheus would see them once Grafana fills them in.
GRAFANA_VARS = [("$__rate_interval", "1m"), ("$__interval", "1m"), ("$__range", "1h"),
                ("$job", "reservd"), ("$instance", ".*")]
# PromQL words that look like names but are not metrics.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan"}
NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"


def queries(node, where="dashboard"):
    """(where, PromQL) for every target expr and template query, recursively."""
    if isinstance(node, dict):
        if "targets" in node and node.get("title"):
            where = f"panel '{node['title']}'"
        if isinstance(node.get("expr"), str) and node["expr"].strip():
            yield where, node["expr"]
        if node.get("type") == "query":   # a template variable
            q = node.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            if isinstance(q, str) and q.strip():
                yield f"variable {node.get('name')}", q
        for v in node.values():
            yield from queries(v, where)
    elif isinstance(node, list):
        for v in node:
            yield from queries(v, where)


def promql(q):
    """Grafana's query text as plain PromQL: variables filled in, and
    label_values(selector, label) reduced to its selector."""
    for var, value in GRAFANA_VARS:
        q = q.replace(var, value)
    m = re.fullmatch(r"\s*label_values\((.*),\s*" + NAME + r"\s*\)\s*", q, re.S)
    return m.group(1) if m else q


def metric_names(q):
    """Metric names used by a PromQL expression."""
    q = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', q)     # string literals
    q = re.sub(r"\{[^}]*\}", " ", q)                                   # label matchers
    q = re.sub(r"\[[^\]]*\]", " ", q)                                  # ranges
    q = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", q)
    names = set()
    for m in re.finditer(NAME, q):
        word = m.group(0)
        before = q[m.start() - 1] if m.start() > 0 else " "
        after = q[m.end():].lstrip()[:1]
        if after == "(" or word.lower() in KEYWORDS or before.isdigit() or before == ".":
            continue   # a function or aggregation, a keyword, or part of a number
        names.add(word)
    return names


def exposed(metrics_text):
    """Sample names in Prometheus text format."""
    names = set()
    for line in metrics_text.splitlines():
        if line and not line.startswith("#"):
            m = re.match(NAME, line)
            if m:
                names.add(m.group(0))
    return names


def datasource_uids(node):
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            yield ds["uid"]
        for v in node.values():
            yield from datasource_uids(v)
    elif isinstance(node, list):
        for v in node:
            yield from datasource_uids(v)


def main(argv):
    rules_out = None
    if "--rules-out" in argv:
        i = argv.index("--rules-out")
        rules_out = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 3:
        sys.exit(__doc__)
    dash_file, metrics_file, ds_file = argv
    with open(dash_file) as f:
        dash = json.load(f)
    with open(metrics_file) as f:
        have = exposed(f.read())
    with open(ds_file) as f:
        provisioned = set(re.findall(r"^\s*uid:\s*[\"']?([^\"'\s#]+)", f.read(), re.M))

    problems, used = [], set()
    qs = list(queries(dash))
    for where, q in qs:
        for name in sorted(metric_names(promql(q))):
            used.add(name)
            if name not in have:
                problems.append(f"{where}: metric {name} is not in {metrics_file}")
    for uid in sorted(set(datasource_uids(dash))):
        if uid not in provisioned:
            problems.append(f"data source uid {uid!r} is not provisioned in {ds_file}")
    if len(qs) < 5 or len(used) < 5:
        problems.append(f"only {len(qs)} queries and {len(used)} metrics found: is this the dashboard?")

    if rules_out:
        with open(rules_out, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, (where, q) in enumerate(qs):
                f.write(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(promql(q))}\n")

    for p in problems:
        print(f"dashboard: FAIL: {p}")
    print(f"dashboard: {len(qs)} queries use {len(used)} metrics: "
          f"{'all in /metrics' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
