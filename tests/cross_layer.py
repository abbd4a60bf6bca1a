"""One simulated fleet seen through every layer that speaks the wire
vocabulary (SPEC §12): the pyo3 module's `to_dict()` and event dicts, the
dashboard binary's JSON (`/api/fleet`, SSE, action answers) and the uniffi
records (the generated Python module). Asserts the same names everywhere,
and the same values wherever the fleet holds still between the layers'
polls (ids, config, health, channel states, a stalled server's frozen
channels, a down server's error kind, the stall events, action reports).

Usage: python cross_layer.py DASHBOARD_BINARY UNIFFI_GENERATED_DIR
(run with a Python that has the `ipvtl` wheel installed: .venv-py).
Exits non-zero on the first failed check.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import ipvtl
import ipvtl.testing

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checking  # noqa: E402
from checking import check  # noqa: E402

DASHBOARD, UNIFFI_DIR = sys.argv[1], sys.argv[2]
sys.path.insert(0, UNIFFI_DIR)
import ipvtl_ffi  # noqa: E402



def plain(obj):
    """A uniffi record (or list of them) as plain dicts, recursively."""
    if isinstance(obj, list):
        return [plain(x) for x in obj]
    if hasattr(obj, "__dict__"):
        return {k: plain(v) for k, v in vars(obj).items()}
    return obj


def snake(name):
    return name.lower()


def uniffi_server(rec):
    d = plain(rec.config)
    d.update(plain(rec.state))
    return d


def uniffi_event(ev):
    d = plain(ev)
    d["kind"] = snake(type(ev).__name__)
    return d


class Dashboard:
    def __init__(self, servers_file, workdir):
        self.proc = subprocess.Popen(
            [DASHBOARD, "--servers", servers_file, "--listen", "127.0.0.1:0", "--poll-interval", "1",
             "--audit-log", os.path.join(workdir, "audit.jsonl")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("IPVTL_")},
        )
        for line in self.proc.stdout:
            if line.startswith("serving on http://"):
                host, port = line.strip()[len("serving on http://"):].rstrip("/").rsplit(":", 1)
                self.addr = (host, int(port))
                break
        else:
            raise AssertionError("the dashboard did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def request(self, method, path, headers=None):
        c = http.client.HTTPConnection(*self.addr, timeout=30)
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, json.loads(body)

    def sse_replay(self, seconds=2.0):
        """Every fleet event the dashboard holds, from the start (read for a
        while: the stream itself never ends). The dashboard's own kinds
        (`reconciler`, `action_interrupted`, `overview`) carry other data,
        without a `kind`: they are left out."""
        sock = socket.create_connection(self.addr, timeout=0.5)
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n")
        text = b""
        deadline = time.time() + seconds
        while time.time() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            text += chunk
        sock.close()
        # Chunked framing lines are not "data: " lines; events never span chunks.
        data = [json.loads(l[6:]) for l in text.decode().splitlines() if l.startswith("data: ")]
        return [e for e in data if isinstance(e, dict) and "kind" in e]

    def close(self):
        self.proc.kill()
        self.proc.wait()


def wait_for(what, fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def main():
    work = tempfile.mkdtemp(prefix="ipvtl-cross-")
    with ipvtl.testing.SimFleet(3, channels=4, initial_running=1.0, stopping_time=0.3, start_delay=0.1) as fleet:
        ok_id, stalled_id, down_id = fleet.ids
        fleet.set_fault(stalled_id, "stalled")
        fleet.set_fault(down_id, "down")
        servers_file = os.path.join(work, "servers.json")
        fleet.write_servers_json(servers_file)

        # The pyo3 module: subscribe, then two sweeps (down is offline after two).
        py = ipvtl.Cluster(fleet.servers, background=False)
        py_events = py.events()
        py.poll()
        py_snap = py.poll()
        py_servers = {s["id"]: s for s in py_snap.to_dict()["servers"]}
        py_evs = []
        while (e := py_events.try_next()) is not None:
            py_evs.append(e.to_dict())

        # The uniffi module, the same way.
        ff = ipvtl_ffi.Cluster(ipvtl_ffi.parse_servers(fleet.servers_json()),
                               ipvtl_ffi.ClusterSettings(background=False))
        ff_stream = ff.subscribe()
        ff.poll_blocking()
        ff_snap = ff.poll_blocking()
        ff_servers = {s.config.id: uniffi_server(s) for s in ff_snap.servers}
        ff_evs = []
        while (e := ff_stream.try_next()) is not None:
            ff_evs.append(uniffi_event(e))

        # The dashboard binary, until it has seen the same.
        dash = Dashboard(servers_file, work)
        try:
            def settled():
                _, fleet_view = dash.request("GET", "/api/fleet")
                by = {s["id"]: s for s in fleet_view["servers"]}
                return by if by[down_id]["health"] == "offline" and by[stalled_id]["channels"][0]["stall"] else None
            dash_servers = wait_for("the dashboard's second sweep", settled)
            dash_evs = dash.sse_replay()

            # Names: one vocabulary.
            for sid in fleet.ids:
                p, d, u = py_servers[sid], dash_servers[sid], ff_servers[sid]
                check(set(p) == set(d) == set(u), f"server keys differ: py {sorted(p)} dash {sorted(d)} ffi {sorted(u)}")
                for name in ["id", "name", "host", "port", "description", "tags", "health", "error_kind",
                             "maintenance", "stale"]:
                    check(p[name] == d[name] == u[name], f"{sid}.{name}: py {p[name]!r} dash {d[name]!r} ffi {u[name]!r}")
                check(len(p["cpu"]) == len(d["cpu"]) == len(u["cpu"]), f"{sid}: cpu core counts differ")
                for pc, dc, uc in zip(p["channels"], d["channels"], u["channels"]):
                    check(set(pc) == set(dc) == set(uc), f"channel keys differ: {sorted(pc)} {sorted(dc)} {sorted(uc)}")
                    check(pc["id"] == dc["id"] == uc["id"] and pc["state"] == dc["state"] == uc["state"],
                          f"{sid} channel {pc['id']}: states differ")
            # A stalled server holds still: every channel field agrees.
            ps, ds, us = (x[stalled_id]["channels"] for x in (py_servers, dash_servers, ff_servers))
            check(ps == ds == us, f"stalled channels differ:\n{ps}\n{ds}\n{us}")
            check(all(c["stall"] == "zero_fps" and c["fps"] == 0.0 for c in ps), f"stalled: {ps}")
            check(py_servers[down_id]["health"] == "offline" and py_servers[down_id]["error_kind"] in ("connect", "io"),
                  f"down: {py_servers[down_id]}")

            # Events: the same channel_stalled in all three.
            def stalls(evs):
                return sorted((e for e in evs if e["kind"] == "channel_stalled"), key=lambda e: e["channel_id"])
            pe, de, ue = stalls(py_evs), stalls(dash_evs), stalls(ff_evs)
            check(len(pe) == 4, f"python saw {len(pe)} channel_stalled")
            for a, b, c in zip(pe, de, ue):
                for k in ["kind", "server_id", "channel_id", "reason"]:
                    check(a[k] == b[k] == c[k], f"channel_stalled.{k}: {a[k]!r} {b[k]!r} {c[k]!r}")
                check(set(a) == set(b), f"event keys differ: {sorted(a)} {sorted(b)}")
                check(set(c) <= set(a), f"uniffi event has keys the views lack: {sorted(set(c) - set(a))}")
            health = [e for e in dash_evs if e["kind"] == "health_changed" and e["server_id"] == down_id]
            py_health = [e for e in py_evs if e["kind"] == "health_changed" and e["server_id"] == down_id]
            check(health and py_health and set(health[-1]) == set(py_health[-1]), "health_changed keys differ")
            check(health[-1]["to"] == py_health[-1]["to"] == "offline", "health_changed to offline")

            # Action reports: a stop through each layer, on its own channel.
            p_rep = py.stop(ok_id, 1).to_dict()
            u_rep = plain(ff.stop_blocking(ok_id, 2))
            status, d_ans = dash.request("POST", f"/api/servers/{ok_id}/channels/3/stop",
                                         {"Content-Type": "application/json"})
            check(status == 200, f"dashboard stop: {status} {d_ans}")
            legacy = {"success", "message"}
            check(d_ans["success"] == d_ans["ok"] and d_ans["message"] == d_ans["summary"], "legacy action fields map")
            d_rep = {k: v for k, v in d_ans.items() if k not in legacy}
            check(set(p_rep) == set(d_rep) == set(u_rep),
                  f"report keys differ: {sorted(p_rep)} {sorted(d_rep)} {sorted(u_rep)}")
            for r, ch in ((p_rep, 1), (u_rep, 2), (d_rep, 3)):
                check((r["server_id"], r["channel_id"], r["action"], r["ok"], r["final_state"]) ==
                      (ok_id, ch, "stop", True, "idle"), f"report: {r}")
                check([ph["phase"] for ph in r["phases"]] == ["stop", "wait_idle"], f"phases: {r['phases']}")
                check(all(isinstance(ph["duration_ms"], int) for ph in r["phases"]), "duration_ms is an integer")
                check(isinstance(r["started_at"], float) and r["started_at"] > 1.7e9, "started_at is Unix seconds")
        finally:
            dash.close()
            py.close()
    print(f"cross-layer: {checking.passed} checks passed")


if __name__ == "__main__":
    main()
