"""Blocking calls release the interpreter: threads overlap."""

from __future__ import annotations

import functools
import threading
import time
from typing import Callable

import ipvtl
from ipvtl.testing import SimFleet

from conftest import overlap


def run_with_heartbeat(workers: list[Callable[[], None]]) -> list[float]:
    """Runs each worker on a thread of its own beside a pure-Python
    heartbeat, and returns the heartbeat's ticks: the heartbeat can only
    tick while no thread holds the interpreter."""
    ticks: list[float] = []
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)

    beat = threading.Thread(target=heartbeat)
    beat.start()
    threads = [threading.Thread(target=w) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    beat.join()
    return ticks


def test_four_threads_polling_overlap(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    slow = fleet.ids[:4]
    for sid in slow:
        fleet.set_fault(sid, ("slow", 0.4))
    fleet.reset_records()
    intervals: list[tuple[float, float]] = []
    barrier = threading.Barrier(4)

    def work(sid: str) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        s = cluster.refresh(sid)
        intervals.append((t0, time.perf_counter()))
        assert s.health == "online"

    ticks = run_with_heartbeat([functools.partial(work, sid) for sid in slow])
    assert len(intervals) == 4 and overlap(intervals)
    assert fleet.max_concurrent_total() == 4, "all four requests were in flight at once"
    inside = [t for t in ticks if max(s for s, _ in intervals) < t < min(e for _, e in intervals)]
    assert len(inside) >= 5, "Python kept running while the four calls waited"


def test_four_threads_full_polls(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    # A poll() that starts while another sweep is under way waits for the
    # polls still under way from it, so all four wait for the slow server;
    # what must hold is that Python runs while they wait.
    fleet.set_fault(fleet.ids[0], ("slow", 0.4))
    intervals: list[tuple[float, float]] = []
    snaps: list[ipvtl.ClusterSnapshot] = []

    def work() -> None:
        t0 = time.perf_counter()
        snaps.append(cluster.poll())
        intervals.append((t0, time.perf_counter()))

    ticks = run_with_heartbeat([work] * 4)
    assert len(snaps) == 4
    assert all(snap.counts()["online"] == len(fleet) for snap in snaps)
    longest = max(intervals, key=lambda iv: iv[1] - iv[0])
    assert len([t for t in ticks if longest[0] < t < longest[1]]) >= 5, "Python ran during the slow poll"
    assert cluster.snapshot().counts()["online"] == len(fleet)
