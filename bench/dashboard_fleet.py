"""The dashboard process at fleet size, beside the httpx baseline on the
same simulated fleet (issue 11): for each N, a simulator of N servers of 16
channels and 32 cores that answer after 20 ms (`--threads 1 --fault
slow=20:1`, as issue 11 measured with 20 +/- 10 ms), so that no sweep can
take less than N / CONCURRENCY x 20 ms; then

- `ipvtl-dashboard --poll-interval 1 --poll-max-concurrent C`, warmed up
  for WARMUP sweeps, then watched for SECONDS: sweeps finished and their
  mean wall time (from `/health`, a small answer: `/metrics` at fleet size
  is megabytes and would move the RSS it measures), the dashboard's CPU
  per poll (its CPU time from /proc over the /status requests the
  simulator answered meanwhile), RSS and peak RSS at the end;
- the asyncio + httpx poller (bench/httpx_poller.py) with the same
  concurrency cap, its connection pool the size of that cap (as the
  original tool's client is set up), and again with a pool of N, so that
  every server keeps its connection between sweeps as the dashboard's
  transport does: one sweep after a warm-up sweep (each takes seconds to
  minutes), and with a pool of N only up to POOL_N_MAX servers (1 000):
  httpx looks a connection up by scanning its pool, so a sweep with a
  pool of N costs about N squared (25 s at 1 000 servers here, against
  8 s with a pool of 200).

Prints one JSON line per (N, implementation).

python3 bench/dashboard_fleet.py DASHBOARD SIM HTTPX_PYTHON "N ..." WORKDIR SECONDS CONCURRENCY
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

WARMUP = 3
POOL_N_MAX = int(os.environ.get("BENCH_FLEET_POOL_N_MAX", "1000"))
HZ = os.sysconf("SC_CLK_TCK")


def get_json(url, timeout=600):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def polls(control):
    # Retried: a busy simulator of 10 000 servers may miss one.
    for attempt in range(5):
        try:
            records = get_json(f"{control}/records", timeout=60)
            return sum(s["status_requests"] for s in records["servers"].values())
        except (OSError, ValueError):
            if attempt == 4:
                raise
            time.sleep(1)


def wait_line(proc, pattern, what, timeout=120):
    deadline = time.time() + timeout
    for line in proc.stdout:
        m = re.search(pattern, line)
        if m:
            return m.group(1)
        if time.time() > deadline:
            break
    raise SystemExit(f"dashboard_fleet: {what} did not start")


def main():
    dashboard, sim, httpx_python, sizes, work, seconds, conc = sys.argv[1:8]
    seconds, conc = float(seconds), int(conc)
    for n in map(int, sizes.split()):
        servers = os.path.join(work, f"fleet-{n}.json")
        if os.path.exists(servers):
            os.remove(servers)
        simp = subprocess.Popen(
            [sim, "--count", str(n), "--write", servers, "--threads", "1", "--channels", "16", "--cores", "32",
             "--fault", "slow=20:1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            control = wait_line(simp, r"^control (http://\S+)$", "the simulator")
            for _ in range(600):
                if os.path.exists(servers) and os.path.getsize(servers) > 0:
                    break
                time.sleep(0.1)
            dash = subprocess.Popen(
                [dashboard, "--servers", servers, "--listen", "127.0.0.1:0", "--poll-interval", "1",
                 "--poll-max-concurrent", str(conc), "--store", f"sqlite:{work}/fleet-{n}.db",
                 "--audit-log", f"{work}/fleet-{n}-audit.jsonl"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            try:
                url = wait_line(dash, r"serving on (http://[^/]+)/", "the dashboard")
                deadline = time.time() + 600
                while get_json(f"{url}/health")["sweeps"]["finished"] < WARMUP:
                    if time.time() > deadline:
                        raise SystemExit("dashboard_fleet: no sweeps")
                    time.sleep(0.2)
                h0 = get_json(f"{url}/health")["sweeps"]
                p0, c0 = polls(control), cpu_s(dash.pid)
                time.sleep(seconds)
                c1 = cpu_s(dash.pid)
                rss, hwm = status_kib(dash.pid, "VmRSS"), status_kib(dash.pid, "VmHWM")
                p1 = polls(control)
                h1 = get_json(f"{url}/health")["sweeps"]
                sweeps = h1["finished"] - h0["finished"]
                print(json.dumps({
                    "servers": n, "impl": "ipvtl-dashboard", "concurrency": conc, "sweeps": sweeps,
                    "floor_s": n / conc * 0.020,
                    "sweep_s": (h1["duration_total_s"] - h0["duration_total_s"]) / sweeps if sweeps else None,
                    "cpu_per_poll_us": (c1 - c0) / (p1 - p0) * 1e6 if p1 > p0 else None,
                    "cpu_per_sweep_s": (c1 - c0) / ((p1 - p0) / n) if p1 > p0 else None,
                    "rss_mib": rss / 1024, "peak_rss_mib": hwm / 1024,
                }), flush=True)
            finally:
                dash.kill()
                dash.wait()
            pools = [(conc, "python-httpx")] + ([(max(n, conc), "python-httpx-pool-n")] if n <= POOL_N_MAX else [])
            for pool, name in pools:
                out = subprocess.run(
                    [httpx_python, "bench/httpx_poller.py", servers, "1", str(conc), str(pool)],
                    capture_output=True, text=True, check=True).stdout
                r = json.loads(out)
                r.update({"impl": name, "pool": pool, "concurrency": conc, "floor_s": n / conc * 0.020})
                print(json.dumps(r), flush=True)
        finally:
            simp.kill()
            simp.wait()


main()
