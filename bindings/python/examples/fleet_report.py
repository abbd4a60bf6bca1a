"""Fleet report as a table: one line per server, totals at the end.

    python fleet_report.py --servers servers/servers.json
    python fleet_report.py            # against a simulated fleet (ipvtl.testing)
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any, Iterator, Optional

import ipvtl
from ipvtl.testing import SimFleet


def fmt_age(age_ms: Optional[int]) -> str:
    return "-" if age_ms is None else f"{age_ms / 1000:.1f}s"


def report(cluster: ipvtl.Cluster) -> str:
    snap = cluster.poll()
    rows = [("SERVER", "HEALTH", "CPU%", "RUNNING", "STATES", "AGE", "ERROR")]
    for s in snap.servers:
        states = "".join(c.state[0].upper() for c in s.channels) or "-"
        running = sum(c.state == "running" for c in s.channels)
        cpu = "-" if s.cpu_avg is None else f"{s.cpu_avg:.0f}"
        health = s.health + (" (stale)" if s.stale else "")
        rows.append((s.id, health, cpu, f"{running}/{len(s.channels)}", states, fmt_age(s.status_age_ms), s.error or ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    counts = snap.counts()
    lines.append("")
    lines.append(", ".join(f"{n} {h}" for h, n in sorted(counts.items()) if n) + f" of {len(snap)} servers")
    return "\n".join(line.rstrip() for line in lines)


@contextlib.contextmanager
def demo_fleet() -> Iterator[list[dict[str, object]]]:
    with SimFleet(8, seed=5) as fleet:
        fleet.set_fault(fleet.ids[2], "down")
        fleet.set_fault(fleet.ids[5], "malformed")
        yield fleet.servers


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", help="servers.json (default: a simulated fleet)")
    p.add_argument("--timeout", type=float, default=2.0)
    args = p.parse_args(argv)
    settings: dict[str, Any] = dict(timeout=args.timeout, background=False, offline_after=1)
    if args.servers:
        with ipvtl.Cluster.from_file(args.servers, **settings) as cluster:
            print(report(cluster))
    else:
        with demo_fleet() as servers, ipvtl.Cluster(servers, **settings) as cluster:
            print(report(cluster))


if __name__ == "__main__":
    main()
