"""ipvtl's Prometheus rules and Grafana dashboard against a real Prometheus
scraping a running `ipvtl-dashboard --demo 12` (scripts/test.d/47-prometheus.sh
starts both; this script only talks HTTP, standard library only).

The demo's faults: sim-0002 hangs, sim-0003 is down, sim-0004 flaps,
sim-0005 answers malformed JSON, sim-0006's channels are stalled, sim-0007
rejects commands; sim-0001 and sim-0008.. are healthy. The script adds, over
the dashboard's API: channel 1 of sim-0007 desired running with a short
healing policy (so it drifts, its heals fail and it ends degraded), then the
storm guard tightened so it holds. Prometheus scrapes a second target of
job `ipvtl` on a closed port (the dashboard "down").

Checks:
- every rule loaded, healthy, evaluated without error;
- the shipped alerts fire for the faulted servers (IpvtlServerDown for
  sim-0002, -0003, -0005; IpvtlChannelStalled for sim-0006; IpvtlChannelDrift,
  IpvtlHealDegraded for sim-0007 channel 1; IpvtlActionsFailing for start;
  IpvtlHealingStormPaused; IpvtlDashboardDown for the closed port), within a
  bounded wait, and none (pending or firing) ever names a healthy server, or
  sim-0006 / sim-0007 as down; IpvtlCpuHigh only for a server whose CPU
  reached 90%; no store or sweep alert;
- maintenance silences: sim-0003 put in maintenance, its IpvtlServerDown
  goes; the storm guard relaxed, IpvtlHealingStormPaused goes;
- recording rules give the values the fleet implies;
- the Grafana dashboard's structure (panels with targets and expr, grid,
  variables), and every PromQL expression in it (Grafana variables replaced
  by concrete values) answers without error and with data; the variables'
  label queries answer;
- every ipvtl_* metric the rules and the dashboard name is exported.

Usage: python3 prometheus_rules.py PROMETHEUS_URL DASHBOARD_URL DEAD_TARGET GRAFANA_JSON
Exits non-zero on the first failed check.
"""

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checking  # noqa: E402
from checking import check  # noqa: E402

PROM, DASH, DEAD, GRAFANA = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/"), sys.argv[3], sys.argv[4]
DASH_TARGET = urllib.parse.urlparse(DASH).netloc

HEALTHY = ["sim-0001"] + [f"sim-{i:04d}" for i in range(8, 13)]
DOWN = ["sim-0002", "sim-0003", "sim-0005"]  # hang, down, malformed
UP_BUT_FAULTY = ["sim-0006", "sim-0007"]  # stalled channels, rejects commands
WAIT_S = 90
OBSERVE_MIN_S = 20



def say(msg):
    print(f"prometheus_rules: {msg}", flush=True)


def http(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, decode(r.read())
    except urllib.error.HTTPError as e:
        return e.code, decode(e.read())
    except (urllib.error.URLError, ConnectionError) as e:
        return 0, str(e)


def decode(raw):
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def prom(path, **params):
    status, body = http("GET", f"{PROM}{path}?{urllib.parse.urlencode(params)}")
    return status, body


def query(expr):
    """An instant query; fails the test on any error."""
    status, body = prom("/api/v1/query", query=expr)
    check(
        status == 200 and isinstance(body, dict) and body.get("status") == "success",
        f"query failed ({status}): {expr}\n  {body}",
    )
    return body["data"]["result"]


def dash(method, path, body=None, ok=(200,)):
    status, answer = http(method, f"{DASH}{path}", body)
    check(status in ok, f"{method} {path}: {status} {answer}")
    return answer


def wait(what, cond, timeout):
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


# --- Prometheus up, the dashboard scraped -----------------------------------

wait("Prometheus ready", lambda: http("GET", f"{PROM}/-/ready")[0] == 200, 30)
wait(
    f"Prometheus scraping the dashboard at {DASH_TARGET}",
    lambda: query(f'up{{job="ipvtl",instance="{DASH_TARGET}"}} == 1')
    and query(f'count(ipvtl_server_up{{instance="{DASH_TARGET}"}}) == 12'),
    30,
)
say(f"Prometheus scrapes the dashboard at {DASH_TARGET} (12 servers)")

# --- Faults over the API ---------------------------------------------------

dash(
    "PUT",
    "/api/servers/sim-0007/channels/1/healing",
    {"enabled": True, "grace_ms": 1000, "limit": 2, "window_ms": 600000, "backoff_ms": 500, "backoff_max_ms": 1000},
)
dash("PUT", "/api/servers/sim-0007/channels/1/desired", {"desired": "running"})
wait(
    "sim-0007 channel 1 degraded (its heals failing)",
    lambda: any(d["server_id"] == "sim-0007" and d["degraded"] for d in dash("GET", "/api/drift")["drifts"]),
    60,
)
storm_before = dash("GET", "/api/reconciler")
dash("PUT", "/api/reconciler", {"storm_min": 1, "storm_percent": 1})
wait("the storm guard holding", lambda: dash("GET", "/api/reconciler")["storm"], 30)
say("sim-0007 channel 1 drifts and is degraded (heals failed); the storm guard holds")

# --- Rules loaded and healthy -----------------------------------------------

status, body = prom("/api/v1/rules")
check(status == 200 and body["status"] == "success", f"/api/v1/rules: {status} {body}")
rules = [r for g in body["data"]["groups"] for r in g["rules"]]
alert_rules = {r["name"]: r for r in rules if r["type"] == "alerting"}
record_rules = {r["name"]: r for r in rules if r["type"] == "recording"}
check(len(alert_rules) >= 10 and len(record_rules) >= 5, f"rules loaded: {sorted(alert_rules)} {sorted(record_rules)}")
for name in (
    "IpvtlServerDown IpvtlChannelStalled IpvtlChannelDrift IpvtlHealDegraded IpvtlHealingStormPaused "
    "IpvtlCpuHigh IpvtlActionsFailing IpvtlStoreDown IpvtlSweepSlow"
).split():
    check(name in alert_rules, f"alerting rule {name} not loaded")


def unhealthy_rules():
    _, b = prom("/api/v1/rules")
    rs = [r for g in b["data"]["groups"] for r in g["rules"]]
    return [(r["name"], r.get("health"), r.get("lastError")) for r in rs if r.get("health") != "ok"]


try:
    wait("every rule evaluated without error", lambda: not unhealthy_rules(), 30)
except AssertionError as e:
    raise AssertionError(f"{e}: {unhealthy_rules()}") from None
say(f"{len(alert_rules)} alerting and {len(record_rules)} recording rules loaded, all healthy")

# --- Alerts: fire for the faulted, never for the healthy ----------------------

EXPECTED = {
    ("IpvtlServerDown", "sim-0002", None),
    ("IpvtlServerDown", "sim-0003", None),
    ("IpvtlServerDown", "sim-0005", None),
    ("IpvtlChannelStalled", "sim-0006", None),
    ("IpvtlChannelDrift", "sim-0007", "1"),
    ("IpvtlHealDegraded", "sim-0007", "1"),
    ("IpvtlHealingStormPaused", None, None),
    ("IpvtlActionsFailing", None, None),
    ("IpvtlDashboardDown", None, None),
}
NEVER = {"IpvtlStoreDown", "IpvtlSweepSlow", "IpvtlSweepsStopped", "IpvtlHealingPaused"}

seen = {}  # (alertname, server, channel, instance) -> set of states
cpu_alerted = set()


def active_alerts():
    status, b = prom("/api/v1/alerts")
    check(status == 200 and b["status"] == "success", f"/api/v1/alerts: {status} {b}")
    return b["data"]["alerts"]


def observe():
    alerts = active_alerts()
    for a in alerts:
        lab = a["labels"]
        key = (lab["alertname"], lab.get("server"), lab.get("channel"), lab.get("instance"))
        seen.setdefault(key, set()).add(a["state"])
        name, server = lab["alertname"], lab.get("server")
        check(name not in NEVER, f"{name} is {a['state']}: {lab}")
        check("severity" in lab and a["annotations"].get("summary") and a["annotations"].get("description"),
              f"{name} lacks severity, summary or description: {a}")
        if name == "IpvtlCpuHigh":
            cpu_alerted.add(server)
            continue
        check(server not in HEALTHY, f"{name} is {a['state']} for healthy {server}: {lab}")
        if name == "IpvtlServerDown":
            check(server not in UP_BUT_FAULTY, f"IpvtlServerDown for {server}, which answers: {lab}")
        if name == "IpvtlChannelStalled":
            check(server == "sim-0006", f"IpvtlChannelStalled for {server}, whose channels make frames: {lab}")
        if name == "IpvtlDashboardDown":
            check(lab.get("instance") == DEAD, f"IpvtlDashboardDown for {lab.get('instance')}, which answers")
    return alerts


def firing(alerts, name, server, channel):
    for a in alerts:
        lab = a["labels"]
        if a["state"] != "firing" or lab["alertname"] != name:
            continue
        if server is not None and lab.get("server") != server:
            continue
        if channel is not None and lab.get("channel") != channel:
            continue
        return True
    return False


# Keep watching at least OBSERVE_MIN_S (a healthy server would show up as
# pending within 5 s), at most WAIT_S for every expected alert to fire.
start = time.monotonic()
all_firing_after = None
while True:
    alerts = observe()
    missing = {e for e in EXPECTED if not firing(alerts, *e)}
    elapsed = time.monotonic() - start
    if not missing and all_firing_after is None:
        all_firing_after = elapsed
    if not missing and elapsed >= OBSERVE_MIN_S:
        break
    if elapsed > WAIT_S:
        raise AssertionError(f"after {WAIT_S} s, not firing: {sorted(missing, key=str)}")
    time.sleep(1)


def show(name, server, channel):
    where = "/".join(x for x in (server, channel) if x)
    return f"{name}({where})" if where else name


say(f"all firing after {all_firing_after:.0f} s (watched {elapsed:.0f} s): " + ", ".join(sorted(show(*e) for e in EXPECTED)))
for (name, server, channel, instance), states in sorted(seen.items(), key=str):
    if not any(n == name and s in (None, server) and c in (None, channel) for n, s, c in EXPECTED):
        say(f"  also seen: {show(name, server, channel)} {'/'.join(sorted(states))}")

# IpvtlCpuHigh: only where the CPU really reached 90% (sim-0001 runs all
# its channels: its load hovers around 90%).
hot = {
    r["metric"]["server"]
    for r in query(f'max_over_time(ipvtl_cpu_avg_percent{{instance="{DASH_TARGET}"}}[10m]) >= 90')
}
check(cpu_alerted <= hot, f"IpvtlCpuHigh for {sorted(cpu_alerted - hot)}, whose CPU never reached 90%")
say(f"no alert for the healthy servers {HEALTHY[0]}, {HEALTHY[1]}..{HEALTHY[-1]}; IpvtlCpuHigh only where the CPU reached 90% ({sorted(cpu_alerted) or 'none'}; >= 90% at some point: {sorted(hot) or 'none'})")

# --- Recording rules ---------------------------------------------------------

for name in record_rules:
    check(query(name), f"recording rule {name} has no value")
inst = f'instance="{DASH_TARGET}"'
online = float(query(f"instance:ipvtl_servers_online:sum{{{inst}}}")[0]["value"][1])
check(8 <= online <= 9, f"servers online {online}, expected 8 (or 9 while sim-0004 answers)")
ratio = float(query(f"instance:ipvtl_servers_online:ratio{{{inst}}}")[0]["value"][1])
check(abs(ratio - online / 12) < 0.1, f"online ratio {ratio} for {online} of 12")
stalled_running = query(f'server:ipvtl_channels_running:sum{{{inst},server="sim-0006"}}')
check(stalled_running and float(stalled_running[0]["value"][1]) == 4, f"sim-0006 running channels: {stalled_running}")
p99 = query(f"instance:ipvtl_poll_latency_seconds:p99_5m{{{inst}}}")
check(p99 and 0 < float(p99[0]["value"][1]) <= 10, f"poll latency p99: {p99}")
say(f"{len(record_rules)} recording rules have values (online {online:g}/12, ratio {ratio:.2f}, sim-0006 running 4, poll p99 {float(p99[0]['value'][1]):.3f} s)")

# --- Maintenance silences; relaxing the storm guard resolves ----------------

dash("POST", "/api/servers/sim-0003/maintenance", {"enabled": True})
dash("PUT", "/api/reconciler", {"storm_min": storm_before["storm_min"], "storm_percent": storm_before["storm_percent"]})
wait(
    "IpvtlServerDown for sim-0003 to go (maintenance) and IpvtlHealingStormPaused to resolve",
    lambda: (lambda a: not any(x["labels"].get("server") == "sim-0003" for x in a)
             and not any(x["labels"]["alertname"] == "IpvtlHealingStormPaused" for x in a)
             and firing(a, "IpvtlServerDown", "sim-0002", None))(observe()),
    30,
)
say("sim-0003 in maintenance: its IpvtlServerDown is gone (sim-0002's stays); storm guard relaxed: IpvtlHealingStormPaused resolved")

# --- The Grafana dashboard ---------------------------------------------------

with open(GRAFANA, encoding="utf-8") as f:
    board = json.load(f)
check(isinstance(board.get("schemaVersion"), int) and board["schemaVersion"] >= 36, "schemaVersion >= 36")
check(board.get("title") and board.get("uid"), "title and uid")
variables = {v["name"]: v for v in board.get("templating", {}).get("list", [])}
check("datasource" in variables and variables["datasource"]["type"] == "datasource"
      and variables["datasource"]["query"] == "prometheus", "a Prometheus datasource variable")
BUILTIN = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__interval_ms": "15000",
           "__range_s": "3600"}
CONCRETE = {"job": "ipvtl"}


def var_value(name):
    if name in BUILTIN:
        return BUILTIN[name]
    check(name in variables, f"variable ${name} is used but not defined")
    v = variables[name]
    if v.get("includeAll") and v.get("allValue"):
        return v["allValue"]
    return CONCRETE[name]


VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr):
    out = VAR.sub(lambda m: var_value(m.group(1) or m.group(2) or m.group(3)), expr)
    check("$" not in out, f"unreplaced variable in {out}")
    return out


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


panels = list(walk(board["panels"]))
ids = [p["id"] for p in panels]
check(len(ids) == len(set(ids)), f"panel ids not unique: {ids}")
cells = {}
overlaps = []
targets = []
for p in panels:
    g = p["gridPos"]
    check(g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24, f"panel {p['title']}: gridPos {g}")
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                overlaps.append((p["title"], cells[(x, y)]))
            cells[(x, y)] = p["title"]
    if p["type"] == "row":
        continue
    check(p.get("title"), f"panel {p['id']} has no title")
    check(p.get("datasource", {}).get("uid") == "${datasource}", f"panel {p['title']}: datasource {p.get('datasource')}")
    check(p.get("targets"), f"panel {p['title']} has no targets")
    refs = [t["refId"] for t in p["targets"]]
    check(len(refs) == len(set(refs)), f"panel {p['title']}: refIds {refs}")
    for t in p["targets"]:
        check(t.get("expr"), f"panel {p['title']} target {t.get('refId')} has no expr")
        targets.append((p["title"], t["refId"], t["expr"]))
check(not overlaps, f"panels overlap: {sorted(set(overlaps))}")
kinds = {p["type"] for p in panels}
for title_part in ("CPU", "Channel states", "Frames per second", "bitrate", "Poll latency", "Actions", "Store"):
    check(any(title_part.lower() in p["title"].lower() for p in panels), f"no panel about {title_part}")

empty = []
for title, ref, expr in targets:
    if not query(substitute(expr)):
        empty.append(f"{title}/{ref}")
check(not empty, f"dashboard queries with no data over the faulted demo: {empty}")
# The variables' own queries (Grafana's label_values(metric, label)).
for name, v in variables.items():
    if v["type"] != "query":
        continue
    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
    check(m, f"variable {name}: unexpected query {q}")
    status, b = prom(f"/api/v1/label/{m.group(2)}/values", **{"match[]": substitute(m.group(1))})
    check(status == 200 and b["status"] == "success" and b["data"], f"variable {name}: {q} -> {status} {b}")
say(f"Grafana dashboard: {len(panels)} panels ({', '.join(sorted(kinds))}), {len(targets)} queries, all answer with data; variables {', '.join(variables)} resolve")

# --- Every metric named is exported -------------------------------------------

_, b = prom("/api/v1/label/__name__/values")
exported = {n for n in b["data"] if n.startswith("ipvtl_")}
NAME = re.compile(r"(?<![\w:])ipvtl_\w+(?![\w:])")
named = set()
for r in rules:
    named |= set(NAME.findall(r["query"]))
for _, _, expr in targets:
    named |= set(NAME.findall(expr))
check(named <= exported, f"named but not exported: {sorted(named - exported)}")


def base(n):
    return re.sub(r"_(bucket|sum|count)$", "", n)


named_bases = {base(n) for n in named}
unused = sorted(n for n in exported if n not in named and base(n) not in named_bases)
say(f"{len(named)} ipvtl metrics named by the rules and the dashboard, all exported" +
    (f"; exported, not used: {', '.join(unused)}" if unused else ""))

print(f"prometheus_rules: {checking.passed} checks passed")
