"""The dashboard's `GET /api/servers` at N servers while it polls (1 s
interval, 200 polls in flight): CONNECTIONS keep-alive connections (one
process each, so the client is not one Python thread) request back to back
for SECONDS per case; the whole list plain, with `Accept-Encoding: gzip`
and `br`, and filtered answers (a page of 100 servers, a page of 100
summaries, the fleet's summary).
Prints one JSON line per (N, case): requests/s, p50/p99 latency, bytes on
the wire per answer, and the dashboard's CPU (cores busy) meanwhile.

python3 bench/dashboard_list.py DASHBOARD SIM "N ..." WORKDIR SECONDS [CONNECTIONS]

BENCH_SIM_ARGS (e.g. "--channels 16 --cores 32") is passed to the simulator.
"""
import json
import multiprocessing as mp
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

CASES = [
    ("whole list", "/api/servers", None),
    ("whole list", "/api/servers", "gzip"),
    ("whole list", "/api/servers", "br"),
    ("limit=100", "/api/servers?limit=100", "br"),
    ("limit=100&fields=summary", "/api/servers?limit=100&fields=summary", "br"),
    ("fields=summary", "/api/servers?fields=summary", None),
]
tick = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def sweeps(url):
    text = urllib.request.urlopen(f"http://{url}/metrics", timeout=30).read().decode()
    m = re.search(r"^ipvtl_sweeps_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def worker(addr, path, accept, start, deadline, out):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = f"GET {path} HTTP/1.1\r\nHost: {addr}\r\n"
    if accept:
        req += f"Accept-Encoding: {accept}\r\n"
    req = (req + "\r\n").encode()
    buf = memoryview(bytearray(1 << 20))
    latencies, size, encoding, bad = [], 0, None, 0
    while time.time() < start:
        time.sleep(0.001)
    while time.time() < deadline:
        t = time.perf_counter()
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("connection closed")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        length = int(headers.get("content-length", "0"))
        remaining = length - len(rest)
        while remaining > 0:
            n = s.recv_into(buf[: min(remaining, len(buf))])
            if not n:
                raise SystemExit("connection closed")
            remaining -= n
        latencies.append(time.perf_counter() - t)
        if not lines[0].split()[1] == "200":
            bad += 1
        size, encoding = length, headers.get("content-encoding")
    out.put((latencies, size, encoding, bad))


def load(addr, path, accept, seconds, connections):
    out = mp.Queue()
    start = time.time() + 0.5
    procs = [mp.Process(target=worker, args=(addr, path, accept, start, start + seconds, out))
             for _ in range(connections)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    lat = sorted(l for r in results for l in r[0])
    pct = lambda q: lat[min(int(len(lat) * q), len(lat) - 1)] * 1000
    return {"requests": len(lat), "rps": len(lat) / seconds, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "wire_bytes": results[0][1], "encoding": results[0][2], "non_200": sum(r[3] for r in results)}


def main():
    dashboard, sim, sizes, work, seconds = sys.argv[1:6]
    seconds = float(seconds)
    connections = int(sys.argv[6]) if len(sys.argv) > 6 else 32
    for n in map(int, sizes.split()):
        servers = os.path.join(work, f"list-{n}.json")
        extra = os.environ.get("BENCH_SIM_ARGS", "").split()
        simp = subprocess.Popen([sim, "--count", str(n), "--write", servers, "--threads", "1", *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dash = None
        try:
            for _ in range(300):
                if os.path.exists(servers) and os.path.getsize(servers) > 0:
                    break
                time.sleep(0.1)
            env = dict(os.environ, IPVTL_POLL_MAX_CONCURRENT="200")
            dash = subprocess.Popen(
                [dashboard, "--servers", servers, "--listen", "127.0.0.1:0", "--poll-interval", "1",
                 "--store", f"sqlite:{work}/list-{n}.db", "--audit-log", f"{work}/list-{n}.jsonl"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            addr = None
            for line in dash.stdout:
                m = re.match(r"serving on http://([^/]+)/", line)
                if m:
                    addr = m.group(1)
                    break
            for _ in range(600):
                if sweeps(addr) >= 2:
                    break
                time.sleep(0.1)
            for name, path, accept in CASES:
                c0, s0 = cpu_s(dash.pid), sweeps(addr)
                r = load(addr, path, accept, seconds, connections)
                c1, s1 = cpu_s(dash.pid), sweeps(addr)
                r.update({"servers": n, "case": name, "path": path, "accept": accept, "connections": connections,
                          "dashboard_cpu": (c1 - c0) / (seconds + 0.5), "sweeps": int(s1 - s0)})
                print(json.dumps(r), flush=True)
        finally:
            for p in (dash, simp):
                if p:
                    p.kill()
                    p.wait()


if __name__ == "__main__":
    main()
