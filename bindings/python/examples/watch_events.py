"""Watch the fleet's events and log them, one line each (JSON with --json).

    python watch_events.py --servers servers/servers.json [--json] [--seconds N]
    python watch_events.py             # against a simulated fleet with faults

Uses asyncio: the event stream is read with `async for` while the cluster
polls in the background.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Optional

import ipvtl
from ipvtl.testing import SimFleet

log = logging.getLogger("ipvtl.events")


async def watch(cluster: ipvtl.Cluster, seconds: float, as_json: bool) -> int:
    count = 0

    async def read(events: ipvtl.EventStream) -> None:
        nonlocal count
        async for ev in events:
            count += 1
            level = logging.WARNING if ev.kind in ("health_changed", "channel_stalled") else logging.INFO
            log.log(level, json.dumps(ev.to_dict()) if as_json else ev.message)

    with cluster.events() as events:
        reader = asyncio.ensure_future(read(events))
        await asyncio.sleep(seconds)
        events.close()  # ends the async for
        await reader
    return count


async def demo(seconds: float, as_json: bool) -> int:
    with SimFleet(5, stopping_time=0.3, start_delay=0.1, initial_running=1.0, seed=2) as fleet:
        with ipvtl.Cluster(fleet.servers, interval=0.5, timeout=0.5, offline_after=1) as cluster:

            async def trouble() -> None:
                await asyncio.sleep(0.7)
                fleet.set_fault(fleet.ids[1], "down")
                await cluster.restart_async(fleet.ids[0], 2)
                fleet.set_fault(fleet.ids[1], None)

            task = asyncio.ensure_future(trouble())
            count = await watch(cluster, seconds, as_json)
            await task
            return count


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", help="servers.json (default: a simulated fleet)")
    p.add_argument("--seconds", type=float, default=3.0, help="how long to watch")
    p.add_argument("--json", action="store_true", help="log events as JSON objects")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.servers:
        with ipvtl.Cluster.from_file(args.servers) as cluster:
            count = asyncio.run(watch(cluster, args.seconds, args.json))
    else:
        count = asyncio.run(demo(args.seconds, args.json))
    print(f"{count} events")
    return 0 if count else 1


if __name__ == "__main__":
    raise SystemExit(main())
