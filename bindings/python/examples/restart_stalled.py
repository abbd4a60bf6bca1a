"""Restart every stalled channel, a few at a time, and report each outcome.

A channel is stalled when it should be transcoding but is not making
progress: running but flagged by the poller (`Channel.stall`: `zero_fps`, or
`uptime_frozen` once its uptime has not advanced for a while), or not
running at all (idle, or stuck stopping). Servers that are offline are left
alone (nothing to restart there).

    python restart_stalled.py --servers servers/servers.json [--dry-run]
    python restart_stalled.py           # against a simulated fleet
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Optional

import ipvtl
from ipvtl.testing import SimFleet


def stalled(cluster: ipvtl.Cluster, gap: float) -> list[tuple[str, int, str]]:
    # Two polls `gap` apart: the poller needs two looks to see a frozen uptime.
    cluster.poll()
    time.sleep(gap)
    found = []
    for s in cluster.poll().servers:
        if s.health != "online":
            continue
        for c in s.channels:
            if c.state != "running":
                found.append((s.id, c.id, c.state))
            elif c.stall is not None:
                found.append((s.id, c.id, c.stall))
    return found


def run(cluster: ipvtl.Cluster, dry_run: bool, max_parallel: int, gap: float) -> int:
    targets = stalled(cluster, gap)
    for sid, ch, why in targets:
        print(f"stalled: {sid} channel {ch} ({why})")
    if not targets:
        print("nothing to restart")
        return 0
    if dry_run:
        print(f"dry run: would restart {len(targets)} channels")
        return 0
    report = cluster.batch("restart", targets=[(s, c) for s, c, _ in targets], max_parallel=max_parallel)
    for r in report.reports:
        print(("ok    " if r.ok else "FAILED") + f" {r.server_id} channel {r.channel_id}: {r.summary}")
    print(f"{report.succeeded} restarted, {report.failed} failed, {report.skipped} skipped "
          f"in {report.duration_ms / 1000:.1f}s")
    return 0 if report.ok else 1


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", help="servers.json (default: a simulated fleet)")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--max-parallel", type=int, default=4)
    p.add_argument("--gap", type=float, default=1.5, help="seconds between the two polls")
    args = p.parse_args(argv)
    settings: dict[str, Any] = dict(timeout=2.0, background=False, offline_after=1, stop_timeout=10.0, start_timeout=10.0)
    if args.servers:
        with ipvtl.Cluster.from_file(args.servers, **settings) as cluster:
            return run(cluster, args.dry_run, args.max_parallel, args.gap)
    # Demo: a simulated fleet where one server's channels stalled (running
    # at 0 fps, uptime frozen), a few channels died (idle), and one server
    # refuses commands, so one restart fails visibly.
    with SimFleet(6, stopping_time=0.3, start_delay=0.1, initial_running=1.0, seed=11) as fleet:
        with ipvtl.Cluster(fleet.servers, **settings) as cluster:
            cluster.stop(fleet.ids[0], 2)
            cluster.stop(fleet.ids[3], 1)
            cluster.stop(fleet.ids[4], 4)
            fleet.set_fault(fleet.ids[4], "reject_commands")
            fleet.set_fault(fleet.ids[2], "stalled")
            code = run(cluster, args.dry_run, args.max_parallel, args.gap)
            if not args.dry_run:
                assert fleet.channel_state(fleet.ids[0], 2) == "running"
                stalled_server = cluster.refresh(fleet.ids[2])
                assert all(c.fps and c.fps > 0 for c in stalled_server.channels), "restarted: frames again"
            return 0 if code == 1 else 1  # the demo expects exactly the planted failure


if __name__ == "__main__":
    raise SystemExit(main())
