"""Blocking calls release the interpreter: threads overlap."""

from __future__ import annotations

import functools
import threading
import time
from typing import Callable

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import overlap


class WorkerFailed(AssertionError):
    """A worker thread raised: pytest only warns about exceptions in other
    threads, so they are collected and raised again in the test's thread."""


def run_with_heartbeat(workers: list[Callable[[], None]]) -> list[float]:
    """Runs each worker on a thread of its own beside a pure-Python
    heartbeat, and returns the heartbeat's ticks: the heartbeat can only
    tick while no thread holds the interpreter. Whatever a worker raises
    (a failed assert included) fails the caller, in the caller's thread."""
    ticks: list[float] = []
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.01)

    def guarded(i: int, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except BaseException as e:  # every failure goes back to the test
                with lock:
                    failures.append((i, e))

        return run

    beat = threading.Thread(target=heartbeat)
    beat.start()
    threads = [threading.Thread(target=guarded(i, w)) for i, w in enumerate(workers)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        beat.join()
    if failures:
        failures.sort(key=lambda f: f[0])
        listed = "; ".join(f"worker {i}: {type(e).__name__}: {e}" for i, e in failures)
        raise WorkerFailed(f"{len(failures)} of {len(workers)} workers failed: {listed}") from failures[0][1]
    return ticks


def test_a_failure_inside_a_worker_fails_the_test() -> None:
    def good() -> None:
        pass

    def wrong_value() -> None:
        assert 1 + 1 == 3, "a wrong value"

    def raises() -> None:
        raise ValueError("boom")

    with pytest.raises(WorkerFailed, match="2 of 3 workers failed") as caught:
        run_with_heartbeat([good, wrong_value, raises])
    message = str(caught.value)
    assert "worker 1: AssertionError: a wrong value" in message
    assert "worker 2: ValueError: boom" in message
    assert isinstance(caught.value.__cause__, AssertionError)
    assert run_with_heartbeat([good, good]) is not None


def test_four_threads_polling_overlap(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    slow = fleet.ids[:4]
    for sid in slow:
        fleet.set_fault(sid, ("slow", 0.4))
    fleet.reset_records()
    intervals: list[tuple[float, float]] = []
    healths: dict[str, str] = {}
    barrier = threading.Barrier(4)

    def work(sid: str) -> None:
        barrier.wait(timeout=30)
        t0 = time.perf_counter()
        s = cluster.refresh(sid)
        intervals.append((t0, time.perf_counter()))
        healths[sid] = s.health

    ticks = run_with_heartbeat([functools.partial(work, sid) for sid in slow])
    assert healths == {sid: "online" for sid in slow}
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
