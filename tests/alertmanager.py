"""ipvtl's own alerts against a real Alertmanager, sent by a running
`ipvtl-dashboard --demo 12` whose alerts file names it as a receiver
(scripts/test.d/48-alertmanager.sh starts both; this script only talks HTTP,
standard library only).

The demo's faults: sim-0002 hangs, sim-0003 is down, sim-0004 flaps (20 s
down, 20 s up), sim-0005 answers malformed JSON, sim-0006's channels are
stalled, sim-0007 rejects commands; sim-0001 and sim-0008.. are healthy.

Checks, over Alertmanager's API (GET /api/v2/alerts):
- IpvtlServerDown for sim-0003 arrives, with the labels ipvtl gives
  (alertname, server, severity critical), a summary annotation, a
  startsAt, and the generatorURL of the dashboard;
- IpvtlChannelStalled for sim-0006 (with its channel label);
- no alert ever names a healthy server;
- a fault that ends resolves its alert there: sim-0004's IpvtlServerDown
  arrives while it is down and leaves the active alerts once it is back up
  (ipvtl sends endsAt);
- the dashboard re-sends firing alerts (its metric counts them), its outbox
  drains, /health says no receiver fails;
- maintenance on sim-0003 silences it on the dashboard's side;
- POST /api/alerts/test is accepted by Alertmanager, and the test alert is
  there.

Usage: python3 alertmanager.py ALERTMANAGER_URL DASHBOARD_URL
Exits non-zero on the first failed check.
"""

import json
import os
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checking  # noqa: E402
from checking import check  # noqa: E402

AM, DASH = sys.argv[1].rstrip("/"), sys.argv[2].rstrip("/")
HEALTHY = ["sim-0001"] + [f"sim-{i:04d}" for i in range(8, 13)]
WAIT_S = 90



def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def am_alerts():
    code, alerts = call("GET", AM + "/api/v2/alerts")
    check(code == 200, f"GET /api/v2/alerts answers {code}")
    return alerts


def find(alerts, alertname, server):
    return [a for a in alerts if a["labels"].get("alertname") == alertname and a["labels"].get("server") == server]


def no_healthy(alerts):
    for a in alerts:
        check(a["labels"].get("server") not in HEALTHY, f"an alert names a healthy server: {a['labels']}")


def wait_for(what, pred, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        alerts = am_alerts()
        no_healthy(alerts)
        got = pred(alerts)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; Alertmanager has: "
                                 + json.dumps([a["labels"] for a in alerts]))
        time.sleep(0.5)


def main():
    # The dashboard answers.
    deadline = time.monotonic() + 30
    while True:
        try:
            code, _ = call("GET", DASH + "/health")
            if code == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the dashboard does not answer")
        time.sleep(0.2)

    down = wait_for("IpvtlServerDown for sim-0003", lambda a: find(a, "IpvtlServerDown", "sim-0003"))[0]
    check(down["labels"].get("severity") == "critical", f"severity: {down['labels']}")
    check(down["annotations"].get("summary"), f"a summary: {down['annotations']}")
    check(down["status"]["state"] == "active", f"active: {down['status']}")
    check(down["startsAt"].startswith("20"), f"startsAt: {down['startsAt']}")
    check(down.get("generatorURL", "").startswith(DASH), f"generatorURL: {down.get('generatorURL')}")

    stalled = wait_for("IpvtlChannelStalled for sim-0006", lambda a: find(a, "IpvtlChannelStalled", "sim-0006"))
    check(all(s["labels"].get("channel") for s in stalled), f"a channel label: {[s['labels'] for s in stalled]}")

    # A fault that ends: sim-0004 flaps; its alert arrives, then resolves.
    wait_for("IpvtlServerDown for sim-0004 (flapping, down)", lambda a: find(a, "IpvtlServerDown", "sim-0004"))
    wait_for("IpvtlServerDown for sim-0004 resolved (it is back up)",
             lambda a: not find(a, "IpvtlServerDown", "sim-0004"), timeout=60)
    # The one still down stays.
    check(find(am_alerts(), "IpvtlServerDown", "sim-0003"), "sim-0003's alert is still active")

    # Re-sent while firing; the outbox drained; no receiver failing.
    deadline = time.monotonic() + 20
    while True:
        req = urllib.request.Request(DASH + "/metrics")
        with urllib.request.urlopen(req, timeout=10) as r:
            metrics = r.read().decode()
        resent = [l for l in metrics.splitlines()
                  if l.startswith('ipvtl_alert_notifications_total{receiver="am",outcome="resent"}')]
        if resent and float(resent[0].split()[-1]) >= 1:
            break
        if time.monotonic() > deadline:
            raise AssertionError("the dashboard did not re-send firing alerts:\n" + metrics[-2000:])
        time.sleep(0.5)
    check('ipvtl_alert_notifications_total{receiver="am",outcome="delivered"}' in metrics, "deliveries counted")
    code, health = call("GET", DASH + "/health")
    check(health["alerts"]["failing_receivers"] == [], f"/health: {health['alerts']}")

    # ipvtl's own view agrees.
    code, overview = call("GET", DASH + "/api/alerts")
    check(code == 200, f"/api/alerts answers {code}")
    firing = [a for a in overview["active"] if a["state"] == "firing"]
    check(any(a["labels"].get("server") == "sim-0003" for a in firing), "sim-0003 firing in /api/alerts")
    check(any(h["labels"].get("server") == "sim-0004" for h in overview["history"]), "sim-0004 in the history")

    # Maintenance silences on the dashboard's side.
    code, body = call("POST", DASH + "/api/servers/sim-0003/maintenance", {"enabled": True})
    check(code == 200, f"maintenance: {code} {body}")
    deadline = time.monotonic() + 20
    while True:
        _, overview = call("GET", DASH + "/api/alerts")
        mine = [a for a in overview["active"] if a["labels"].get("server") == "sim-0003"
                and a["labels"].get("alertname") == "IpvtlServerDown"]
        if mine and mine[0]["state"] == "silenced" and mine[0]["silenced_by"] == "maintenance":
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"sim-0003 not silenced by maintenance: {mine}")
        time.sleep(0.3)

    # The test alert reaches Alertmanager.
    code, test = call("POST", DASH + "/api/alerts/test")
    check(code == 200 and test["ok"] and test["receivers"][0]["accepted"], f"test alert: {code} {test}")
    wait_for("the test alert", lambda a: [x for x in a if x["labels"].get("alertname") == "IpvtlTest"], timeout=20)

    print(f"alertmanager.py: {checking.passed} checks passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print(f"alertmanager.py: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
