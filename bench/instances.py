"""Several dashboard instances sharing one fleet through PostgreSQL (issue
16), against one instance alone, on one simulated fleet of N servers of 16
channels and 32 cores answering after 20 ms (`--threads 1 --fault
slow=20:1`, as bench/dashboard_fleet.py), polled every second with 200
polls in flight at most per instance:

- `solo`: one `ipvtl-dashboard --store postgres://.../DB --instance-id solo`
  on a fresh database; `three`: instances `a`, `b`, `c` on another fresh
  database. Once balanced (every instance's `/api/cluster` shows no
  unowned shard, all shards held by the instances running, and the shard
  counts unchanged for STABLE seconds), over SECONDS: each instance's CPU
  (user + system from /proc) per second and per poll interval, its ratio to
  the single instance's, and the polls it made (the simulator's
  `/records`, per `User-Agent`: `ipvtl-dashboard/<version> (<id>)`), with
  the servers polled by two instances or by none in that window, and the
  PostgreSQL server's CPU (its processes', when IPVTL_PG_DIR names the
  cluster's directory, as scripts/lib/pg.sh exports);
- `GET /api/servers` (the whole list, no compression) from the single
  instance and from instance `a` of the three: CLIENTS keep-alive clients
  (one process each, bench/dashboard_list.py's load) for LIST_SECONDS;
- failover, RUNS times (victim a, b, c, a, ...): the records reset, the
  servers the victim polls noted (once that set stops growing: a sweep
  may take longer than an interval), `kill -9`, then the records read
  until every one of them has been polled by another instance since the
  kill (and when the first was); the victim is started again under the
  same id and the shards rebalance (timed from the restart) before the
  next run. The lease TTL is TTL.

The simulator's CPU and the machine's load average are printed beside the
totals: every process here shares the machine.

Prints one JSON line per measurement; progress on stderr.

python3 bench/instances.py DASHBOARD SIM PSQL PG_URL WORKDIR

PG_URL is the URL of a database on a server whose user may create
databases (postgres://ipvtl@127.0.0.1:PORT/postgres from pg.sh); PSQL the
`psql` that creates them. BENCH_INSTANCES_N (10000), _SECONDS (20),
_LIST_SECONDS (10), _CLIENTS (4), _RUNS (5), _TTL (10) change the figures.
"""
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dashboard_list import load  # noqa: E402  (CLIENTS keep-alive clients, one process each)

env = lambda k, d: type(d)(os.environ.get(f"BENCH_INSTANCES_{k}", d))
N = env("N", 10000)
SECONDS = env("SECONDS", 20.0)
LIST_SECONDS = env("LIST_SECONDS", 10.0)
CLIENTS = env("CLIENTS", 4)
RUNS = env("RUNS", 5)
TTL = env("TTL", 10)
CONCURRENCY = 200
INTERVAL = 1.0
SHARDS = 256
# The shard counts unchanged this long: a rebalance moves shards every
# round (TTL / 4), so a pause longer than a round means it is over.
STABLE = max(3.0, TTL / 4 + 0.5)
IDS = ("a", "b", "c")
HZ = os.sysconf("SC_CLK_TCK")
AGENT = re.compile(r"^ipvtl-dashboard/\S+ \((.*)\)$")


def log(*args):
    print("instances:", *args, file=sys.stderr, flush=True)


def get_json(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def post(url):
    urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=60).read()


def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_s(pid):
    fields = stat(pid)
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def pg_cpu_s():
    """The PostgreSQL server's CPU time: the postmaster's, its children's
    reaped, and its live children's (None without IPVTL_PG_DIR)."""
    d = os.environ.get("IPVTL_PG_DIR")
    if not d:
        return None
    try:
        with open(os.path.join(d, "data", "postmaster.pid")) as f:
            pm = int(f.readline())
        fields = stat(pm)
        total = sum(int(x) for x in fields[11:15])
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    s = stat(p)
                    if int(s[1]) == pm:
                        total += int(s[11]) + int(s[12])
                except (OSError, IndexError):
                    pass
        return total / HZ
    except (OSError, ValueError):
        return None


def records(control):
    """{server: {agent: status requests}}, and when it was read (the
    middle of the request). Retried: a busy simulator may miss one."""
    for attempt in range(5):
        try:
            t0 = time.time()
            r = get_json(f"{control}/records", timeout=60)
            t1 = time.time()
            return {s: rec.get("status_by_client", {}) for s, rec in r["servers"].items()}, (t0 + t1) / 2, t1 - t0
        except (OSError, ValueError):
            if attempt == 4:
                raise
            time.sleep(1)


def instance_of(agent):
    m = AGENT.match(agent)
    return m.group(1) if m else agent


def by_instance(counts):
    out = {}
    for agent, n in counts.items():
        i = instance_of(agent)
        out[i] = out.get(i, 0) + n
    return out


def drain(proc, path):
    """Copies what is left of a process's output to a file (its pipe must
    not fill)."""
    def run():
        with open(path, "a") as f:
            for line in proc.stdout:
                f.write(line)
    threading.Thread(target=run, daemon=True).start()


def wait_line(proc, pattern, what, log_path, timeout=180):
    deadline = time.time() + timeout
    seen = []
    for line in proc.stdout:
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            with open(log_path, "a") as f:
                f.writelines(seen)
            drain(proc, log_path)
            return m.group(1)
        if time.time() > deadline:
            break
    sys.stderr.writelines(seen[-20:])
    raise SystemExit(f"instances: {what} did not start")


class Dashboard:
    def __init__(self, dashboard, servers, store, work, case, ident):
        self.id = ident
        self.log = os.path.join(work, f"dash-{case}-{ident}.log")
        self.proc = subprocess.Popen(
            [dashboard, "--servers", servers, "--listen", "127.0.0.1:0", "--poll-interval", str(INTERVAL),
             "--poll-max-concurrent", str(CONCURRENCY), "--store", store,
             "--audit-log", os.path.join(work, f"audit-{case}-{ident}.jsonl"),
             "--instance-id", ident, "--lease-ttl", str(TTL), "--shards", str(SHARDS)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.started = time.time()
        self.url = None
        self.serving_s = None

    def wait_serving(self):
        self.url = wait_line(self.proc, r"serving on (http://[^/]+)/", f"dashboard {self.id}", self.log)
        self.serving_s = time.time() - self.started
        return self

    @property
    def pid(self):
        return self.proc.pid

    def cluster(self):
        return get_json(f"{self.url}/api/cluster", timeout=30)

    def health(self):
        return get_json(f"{self.url}/health", timeout=30)

    def kill(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def create_db(psql, admin_url, name):
    subprocess.run([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", admin_url, "-c", f'CREATE DATABASE "{name}"'],
                   check=True, stdout=subprocess.DEVNULL)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def wait_balanced(dashes, since_t=None, timeout=240):
    """Until every instance sees every shard owned, by the instances
    running, each holding some, and no count changed for STABLE seconds.
    Returns the seconds from `since_t` (default: now) until the counts
    first read as they stayed, and the shards each holds."""
    start = time.time()
    since_t = since_t or start
    ids = {d.id for d in dashes}
    last, since = None, time.time()
    while True:
        now = time.time()
        try:
            views = [d.cluster() for d in dashes]
        except (OSError, ValueError):
            views = None
        if views:
            owned = tuple(v["owned_shards"] for v in views)
            key = (owned, tuple(v["unowned_shards"] for v in views))
            ok = (all(v["unowned_shards"] == 0 for v in views) and sum(owned) == SHARDS and all(owned)
                  and all({i["instance_id"] for i in v["instances"]} == ids for v in views))
            if key != last:
                last, since = key, now
            elif ok and now - since >= STABLE:
                return since - since_t, {d.id: n for d, n in zip(dashes, owned)}
        if now - start > timeout:
            raise SystemExit(f"instances: not balanced after {timeout} s: {last}")
        time.sleep(0.25)


def leases_moved(dashes):
    total = 0
    for d in dashes:
        v = d.cluster()["leases"]
        total += v["acquired"] + v["lost"]
    return total


def measure_cpu(case, dashes, control, solo_cpu, sim_pid):
    """Over SECONDS: CPU and polls of each instance. Returns {id: CPU s/s}."""
    moved0 = leases_moved(dashes)
    h0 = {d.id: d.health()["sweeps"] for d in dashes}
    r0, t0, _ = records(control)
    c0, pg0, s0, w0 = {d.id: cpu_s(d.pid) for d in dashes}, pg_cpu_s(), cpu_s(sim_pid), time.time()
    time.sleep(SECONDS)
    c1, pg1, s1, w1 = {d.id: cpu_s(d.pid) for d in dashes}, pg_cpu_s(), cpu_s(sim_pid), time.time()
    r1, t1, _ = records(control)
    h1 = {d.id: d.health()["sweeps"] for d in dashes}
    moved = leases_moved(dashes) - moved0
    wall, span = w1 - w0, t1 - t0
    polls, servers_by = {}, {}
    two = none = 0
    for s in r1:
        before, after = by_instance(r0.get(s, {})), by_instance(r1[s])
        who = [i for i in after if after[i] - before.get(i, 0) > 0]
        for i in who:
            polls[i] = polls.get(i, 0) + after[i] - before.get(i, 0)
            servers_by[i] = servers_by.get(i, 0) + 1
        two += len(who) > 1
        none += not who
    cpu = {}
    for d in dashes:
        per_s = (c1[d.id] - c0[d.id]) / wall
        cpu[d.id] = per_s
        sweeps = h1[d.id]["finished"] - h0[d.id]["finished"]
        dur = h1[d.id]["duration_total_s"] - h0[d.id]["duration_total_s"]
        print(json.dumps({
            "measure": "cpu", "case": case, "instance": d.id, "instances": len(dashes), "servers": N,
            "seconds": round(wall, 2), "cpu_s_per_s": per_s, "cpu_per_interval_s": per_s * INTERVAL,
            "ratio_to_solo": per_s / solo_cpu if solo_cpu else 1.0,
            "polls": polls.get(d.id, 0), "polls_per_s": polls.get(d.id, 0) / span,
            "cpu_per_poll_us": per_s * wall / polls[d.id] * 1e6 if polls.get(d.id) else None,
            "servers_polled": servers_by.get(d.id, 0),
            "shards": d.cluster()["owned_shards"], "sweeps": sweeps, "sweep_s": dur / sweeps if sweeps else None,
            "rss_mib": rss_mib(d.pid),
        }), flush=True)
    others = {i: n for i, n in polls.items() if i not in {d.id for d in dashes}}
    print(json.dumps({
        "measure": "cpu_total", "case": case, "instances": len(dashes), "servers": N, "seconds": round(wall, 2),
        "cpu_s_per_s": sum(cpu.values()), "ratio_to_solo": sum(cpu.values()) / solo_cpu if solo_cpu else 1.0,
        "polls_per_s": sum(polls.values()) / span, "servers_polled_by_two": two, "servers_unpolled": none,
        "other_agents_polls": others, "leases_moved": moved,
        "postgres_cpu_s_per_s": (pg1 - pg0) / wall if pg0 is not None and pg1 is not None else None,
        "sim_cpu_s_per_s": (s1 - s0) / wall, "cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0],
    }), flush=True)
    return cpu


def measure_list(case, dash):
    addr = dash.url.removeprefix("http://")
    with urllib.request.urlopen(f"{dash.url}/api/servers", timeout=60) as r:
        body = json.load(r)
    listed = len(body["servers"] if isinstance(body, dict) else body)
    c0 = cpu_s(dash.pid)
    r = load(addr, "/api/servers", None, LIST_SECONDS, CLIENTS)
    c1 = cpu_s(dash.pid)
    r.update({"measure": "list", "case": case, "instance": dash.id, "servers": N, "servers_listed": listed,
              "clients": CLIENTS, "seconds": LIST_SECONDS, "dashboard_cpu": (c1 - c0) / (LIST_SECONDS + 0.5)})
    print(json.dumps(r), flush=True)


def failover(run, dashes, victim, control, start_again):
    """Kills `victim`, waits until each server it polled has been polled
    by another instance, starts it again and waits for balance."""
    # The victim's servers: those it polled since the reset, once that set
    # stops growing (at least 3 intervals; a sweep may take longer than one).
    post(f"{control}/reset")
    t_reset, before = time.time(), -1
    while True:
        time.sleep(INTERVAL)
        snap, _, _ = records(control)
        theirs = {}
        for s, counts in snap.items():
            b = by_instance(counts)
            if b.get(victim.id, 0) > 0:
                theirs[s] = sum(n for i, n in b.items() if i != victim.id)
        if (len(theirs) == before and time.time() - t_reset >= 3 * INTERVAL) or time.time() - t_reset > 30:
            break
        before = len(theirs)
    t_kill = time.time()
    victim.kill()
    log(f"failover {run}: killed {victim.id}, which polled {len(theirs)} servers")
    first = done = None
    resolution = []
    covered = 0
    while time.time() - t_kill < 6 * TTL + 60:
        r, _, took = records(control)
        t = time.time()
        resolution.append(took)
        covered = sum(1 for s, base in theirs.items()
                      if sum(n for i, n in by_instance(r.get(s, {})).items() if i != victim.id) > base)
        if covered and first is None:
            first = t - t_kill
        if covered == len(theirs):
            done = t - t_kill
            break
        time.sleep(0.2)
    survivors = [d for d in dashes if d is not victim]
    owners = {d.id: d.cluster()["owned_shards"] for d in survivors}
    t_restart = time.time()
    again = start_again(victim.id)
    dashes[dashes.index(victim)] = again
    rebalance, shards = wait_balanced(dashes, since_t=t_restart)
    r = {"measure": "failover", "run": run, "victim": victim.id, "servers": N, "victim_servers": len(theirs),
         "ttl_s": TTL, "failover_s": done, "first_takeover_s": first, "covered": covered,
         "records_read_s": max(resolution) if resolution else None, "survivor_shards": owners,
         "restart_serving_s": again.serving_s, "rebalance_s": rebalance, "shards": shards}
    print(json.dumps(r), flush=True)
    log(f"failover {run}: {done if done is None else round(done, 2)} s; rebalanced in {rebalance:.1f} s")
    return r


def main():
    dashboard, sim, psql, admin_url, work = sys.argv[1:6]
    servers = os.path.join(work, f"instances-{N}.json")
    if os.path.exists(servers):
        os.remove(servers)
    log(f"simulator: {N} servers")
    simp = subprocess.Popen(
        [sim, "--count", str(N), "--write", servers, "--threads", "1", "--channels", "16", "--cores", "32",
         "--fault", "slow=20:1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    running = []
    try:
        control = wait_line(simp, r"^control (http://\S+)$", "the simulator", os.path.join(work, "sim.log"))
        for _ in range(600):
            if os.path.exists(servers) and os.path.getsize(servers) > 0:
                break
            time.sleep(0.1)
        stamp = f"{os.getpid()}_{int(time.time())}"

        # One instance alone.
        store = create_db(psql, admin_url, f"bench_solo_{stamp}")
        log("solo: starting")
        solo = Dashboard(dashboard, servers, store, work, "solo", "solo").wait_serving()
        running.append(solo)
        took, _ = wait_balanced([solo], since_t=solo.started)
        log(f"solo: all shards held after {took:.1f} s; measuring {SECONDS:.0f} s")
        solo_cpu = measure_cpu("solo", [solo], control, None, simp.pid)["solo"]
        log(f"solo: GET /api/servers, {CLIENTS} clients, {LIST_SECONDS:.0f} s")
        measure_list("solo", solo)
        solo.kill()
        running.remove(solo)

        # Three sharing the fleet.
        store = create_db(psql, admin_url, f"bench_three_{stamp}")
        log("three: starting a, b, c")
        t_start = time.time()
        dashes = [Dashboard(dashboard, servers, store, work, "three", i) for i in IDS]
        running.extend(dashes)
        for d in dashes:
            d.wait_serving()
        took, shards = wait_balanced(dashes, since_t=t_start)
        print(json.dumps({"measure": "balance", "case": "three", "servers": N, "ttl_s": TTL,
                          "balance_s": took, "shards": shards}), flush=True)
        log(f"three: balanced after {took:.1f} s {shards}; measuring {SECONDS:.0f} s")
        measure_cpu("three", dashes, control, solo_cpu, simp.pid)
        log(f"three: GET /api/servers from a, {CLIENTS} clients, {LIST_SECONDS:.0f} s")
        measure_list("three", dashes[0])

        restarts = {}

        def start_again(ident):
            restarts[ident] = restarts.get(ident, 0) + 1
            d = Dashboard(dashboard, servers, store, work, f"three-r{restarts[ident]}", ident)
            running.append(d)
            return d.wait_serving()

        runs = [failover(k + 1, dashes, dashes[k % len(dashes)], control, start_again) for k in range(RUNS)]
        if not runs:
            return
        times = [r["failover_s"] for r in runs if r["failover_s"] is not None]
        print(json.dumps({
            "measure": "failover_median", "servers": N, "runs": len(runs), "completed": len(times), "ttl_s": TTL,
            "median_s": statistics.median(times) if times else None, "min_s": min(times, default=None),
            "max_s": max(times, default=None),
            "rebalance_median_s": statistics.median(r["rebalance_s"] for r in runs),
        }), flush=True)
    finally:
        for d in running:
            d.kill()
        simp.kill()
        simp.wait()


if __name__ == "__main__":
    main()
