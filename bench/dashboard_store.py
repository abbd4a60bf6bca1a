"""The dashboard with its store at N servers and a 1 s poll interval, with
and without history persistence (`--history-keep-10s 0 --history-keep-1m 0`
writes none): sweep wall time (the dashboard's own
`ipvtl_sweep_duration_seconds_total / ipvtl_sweeps_total`) and the process's
CPU time per sweep (/proc, user + system), over SECONDS after a warm-up.
Prints one JSON line per run.

python3 bench/dashboard_store.py DASHBOARD SERVERS_JSON WORKDIR SECONDS
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

dashboard, servers, work, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
tick = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def metrics(url):
    text = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
    get = lambda name: float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))
    return get("ipvtl_sweeps_total"), get("ipvtl_sweep_duration_seconds_total")


for mode in ("store", "no-history"):
    db = os.path.join(work, f"dash-{mode}.db")
    args = [dashboard, "--servers", servers, "--listen", "127.0.0.1:0", "--poll-interval", "1",
            "--store", f"sqlite:{db}", "--audit-log", os.path.join(work, f"audit-{mode}.jsonl")]
    if mode == "no-history":
        args += ["--history-keep-10s", "0", "--history-keep-1m", "0"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in p.stdout:
            m = re.match(r"serving on (http://[^/]+)/", line)
            if m:
                url = m.group(1)
                break
        time.sleep(10)  # warm-up: the first sweeps, the history tables' first pages
        s0, w0 = metrics(url)
        c0 = cpu_s(p.pid)
        time.sleep(seconds)
        s1, w1 = metrics(url)
        c1 = cpu_s(p.pid)
        sweeps = s1 - s0
        size = sum(os.path.getsize(f) for f in (db, db + "-wal") if os.path.exists(f))
        print(json.dumps({"mode": mode, "sweeps": int(sweeps),
                          "sweep_s": (w1 - w0) / sweeps if sweeps else None,
                          "cpu_per_sweep_s": (c1 - c0) / sweeps if sweeps else None,
                          "db_bytes": size}), flush=True)
    finally:
        p.kill()
        p.wait()
