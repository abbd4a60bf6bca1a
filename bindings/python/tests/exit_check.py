"""One short asyncio session that leaves work in flight at exit.

Run many times by scripts/test.d/20-python.sh: the process must exit 0,
never crash, whatever the executor thread was doing when Python stopped.
Not collected by pytest (no test_ prefix); `test_exit.py` runs it a few times.
"""

from __future__ import annotations

import asyncio
import sys

import ipvtl
from ipvtl.testing import SimFleet


async def main(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    ids = fleet.ids
    await asyncio.gather(*(cluster.poll_async() for _ in range(3)))
    await asyncio.gather(cluster.restart_async(ids[0], 1), cluster.restart_async(ids[1], 2))
    # Left in flight at exit: a poll of a hung server and an event read.
    global pending
    pending = [cluster.refresh_async(ids[2]), cluster.events().__anext__(), cluster.restart_async(ids[3], 1)]
    await asyncio.sleep(0.01)


pending: list[object] = []

if __name__ == "__main__":
    fleet = SimFleet(4, stopping_time=0.05, start_delay=0.01, initial_running=1.0)
    fleet.set_fault(fleet.ids[2], "hang")
    # A poll waits for its sweep's hung server: keep the timeout short so the
    # 100 runs stay quick; the refresh of the hung server is still under
    # way at exit.
    cluster = ipvtl.Cluster(fleet.servers, timeout=1.0, background=True, interval=0.05, watch_interval=0.01)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(main(fleet, cluster))
    if len(sys.argv) > 1 and sys.argv[1] == "close-loop":
        loop.close()  # completions that arrive now find a closed loop
    # No cleanup on purpose: module globals, a live loop or a closed one,
    # tasks in flight; atexit must cope.
