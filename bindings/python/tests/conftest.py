"""Shared fixtures: a simulated fleet on loopback and a cluster over it."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import pytest

import ipvtl
from ipvtl.testing import SimFleet

# Fast settings for tests: no background sweeps (tests drive them), short
# timeouts, one failure is enough to classify a server.
SETTINGS: dict[str, Any] = dict(
    background=False,
    timeout=1.0,
    offline_after=1,
    stop_timeout=5.0,
    start_timeout=5.0,
    watch_interval=0.05,
)


@pytest.fixture
def fleet() -> Iterator[SimFleet]:
    with SimFleet(6, channels=4, stopping_time=0.3, start_delay=0.1, initial_running=1.0, seed=7) as f:
        yield f


@pytest.fixture
def cluster(fleet: SimFleet) -> Iterator[ipvtl.Cluster]:
    with ipvtl.Cluster(fleet.servers, **SETTINGS) as c:
        yield c


def running_channel(fleet: SimFleet, server_id: str) -> int:
    for ch in range(1, fleet.channels + 1):
        if fleet.channel_state(server_id, ch) == "running":
            return ch
    raise AssertionError(f"no running channel on {server_id}")


def wait_until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def overlap(intervals: list[tuple[float, float]]) -> bool:
    """True when every interval overlaps every other: the latest start comes
    before the earliest end."""
    return max(s for s, _ in intervals) < min(e for _, e in intervals)
