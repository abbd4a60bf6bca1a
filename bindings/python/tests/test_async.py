"""asyncio: every *_async call, overlap, cancellation, async events."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable

import pytest

import ipvtl
from ipvtl import _ipvtl
from ipvtl.testing import SimFleet

from conftest import SETTINGS, overlap, running_channel, wait_until


async def timed(aw: Awaitable[Any]) -> tuple[float, float, Any]:
    t0 = time.perf_counter()
    result = await aw
    return t0, time.perf_counter(), result


async def settle_in_flight(timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while _ipvtl._async_in_flight() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return _ipvtl._async_in_flight()


def test_async_calls_need_a_running_loop(cluster: ipvtl.Cluster) -> None:
    with pytest.raises(RuntimeError):
        cluster.poll_async()


def test_poll_refresh_and_actions_async(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    async def main() -> None:
        snap = await cluster.poll_async()
        assert isinstance(snap, ipvtl.ClusterSnapshot) and snap.counts()["online"] == len(fleet)
        s = await cluster.refresh_async(fleet.ids[0])
        assert isinstance(s, ipvtl.Server) and s.health == "online"
        sid = fleet.ids[1]
        ch = running_channel(fleet, sid)
        r = await cluster.stop_async(sid, ch)
        assert r.ok and r.action == "stop" and fleet.channel_state(sid, ch) == "idle"
        r = await cluster.start_async(sid, ch)
        assert r.ok and r.action == "start" and fleet.channel_state(sid, ch) == "running"
        r = await cluster.restart_async(sid, ch)
        assert r.ok and [p.phase for p in r.phases][-1] == "wait_running"
        b = await cluster.batch_async("restart", targets=[(fleet.ids[2], 1), (fleet.ids[3], 1)])
        assert isinstance(b, ipvtl.BatchReport) and b.succeeded == 2

    asyncio.run(main())
    # Each task drops its guard on the executor thread just after handing
    # its result to the loop: allow that moment, then nothing is left.
    wait_until(lambda: _ipvtl._async_in_flight() == 0, timeout=5.0)


def test_async_errors(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    async def main() -> None:
        await cluster.poll_async()
        with pytest.raises(ipvtl.ServerNotFound):
            await cluster.restart_async("nope", 1)
        with pytest.raises(ipvtl.ChannelNotFound):
            await cluster.restart_async(fleet.ids[0], 9)
        with pytest.raises(ipvtl.ServerNotFound):
            await cluster.refresh_async("nope")
        fleet.set_fault(fleet.ids[0], "down")
        with pytest.raises(ipvtl.TransportError) as e:
            await cluster.refresh_async(fleet.ids[0], raise_on_error=True)
        assert e.value.kind == "connect"
        fleet.set_fault(fleet.ids[1], "reject_commands")
        with pytest.raises(ipvtl.ActionFailed) as e2:
            await cluster.restart_async(fleet.ids[1], 1)
        assert e2.value.report.error_kind == "stop_failed"
        pending = cluster.restart_async(fleet.ids[2], 1)
        with pytest.raises(ipvtl.Busy):
            await cluster.restart_async(fleet.ids[2], 1)
        assert (await pending).ok
        # Bad batch arguments arrive on await, as the core words them.
        bad = cluster.batch_async("restart", states=["runing"])
        with pytest.raises(ipvtl.ConfigError, match="valid states: idle, running, stopping"):
            await bad
        with pytest.raises(ipvtl.ConfigError, match="max_parallel"):
            await cluster.batch_async("restart", max_parallel=0)

    asyncio.run(main())


def test_gather_of_restarts_overlaps(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    targets = [(sid, running_channel(fleet, sid)) for sid in fleet.ids[:4]]

    async def main() -> list[tuple[float, float, Any]]:
        await cluster.poll_async()
        fleet.reset_records()
        return await asyncio.gather(*(timed(cluster.restart_async(s, c)) for s, c in targets))

    results = asyncio.run(main())
    assert all(r.ok for _, _, r in results)
    assert overlap([(a, b) for a, b, _ in results]), results
    # The server side agrees: every stop arrived before any start.
    stops = [c["at_ms"] for s, _ in targets for c in fleet.record(s)["commands"] if c["action"] == "stop"]
    starts = [c["at_ms"] for s, _ in targets for c in fleet.record(s)["commands"] if c["action"] == "start"]
    assert len(stops) == len(starts) == 4 and max(stops) < min(starts)
    # And the reports' own intervals overlap.
    assert overlap([(r.started_at, r.finished_at) for _, _, r in results])


def test_gather_of_refreshes_overlaps_on_slow_servers(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    slow = fleet.ids[:4]
    for sid in slow:
        fleet.set_fault(sid, ("slow", 0.4))

    async def main() -> list[tuple[float, float, Any]]:
        fleet.reset_records()
        return await asyncio.gather(*(timed(cluster.refresh_async(s)) for s in slow))

    results = asyncio.run(main())
    assert all(r.health == "online" for _, _, r in results)
    assert overlap([(a, b) for a, b, _ in results])
    assert fleet.max_concurrent_total() == 4, "the four polls were in flight together"


def test_gather_of_polls(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    fleet.set_fault(fleet.ids[0], ("slow", 0.3))

    async def main() -> list[tuple[float, float, Any]]:
        return await asyncio.gather(*(timed(cluster.poll_async()) for _ in range(4)))

    results = asyncio.run(main())
    assert overlap([(a, b) for a, b, _ in results])
    # A poll that starts while another sweep is under way waits for the
    # polls still under way from it, the slow one included, so every one of
    # the four snapshots has every server answered, and the slow server was
    # not asked again by each caller that joined.
    assert [snap.counts()["online"] for _, _, snap in results] == [len(fleet)] * 4
    assert fleet.record(fleet.ids[0])["status_requests"] < 4


def test_cancellation_drops_the_wait_but_not_the_action(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[0]
    ch = running_channel(fleet, sid)

    async def main() -> None:
        await cluster.poll_async()
        fleet.set_fault(sid, "stuck_stopping")
        task = asyncio.ensure_future(cluster.restart_async(sid, ch))
        await asyncio.sleep(0.3)
        assert _ipvtl._async_in_flight() == 1
        t0 = time.perf_counter()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.perf_counter() - t0 < 1.0, "cancelled promptly, not after stop_timeout"
        assert await settle_in_flight() == 0, "the Rust future was dropped"
        # The action itself goes on and still holds the channel.
        assert [a["channel_id"] for a in cluster.actions() if a["server_id"] == sid] == [ch]
        with pytest.raises(ipvtl.Busy):
            await cluster.restart_async(sid, ch)
        fleet.set_fault(sid, None)

    asyncio.run(main())
    deadline = time.time() + 10
    while cluster.actions() and time.time() < deadline:
        time.sleep(0.05)
    assert cluster.actions() == []
    assert cluster.restart(sid, ch).ok, "the channel is free again"


def test_wait_for_timeout_on_a_hung_server(fleet: SimFleet) -> None:
    with ipvtl.Cluster(fleet.servers, **{**SETTINGS, "timeout": 5.0}) as c:
        fleet.set_fault(fleet.ids[0], "hang")

        async def main() -> None:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.refresh_async(fleet.ids[0]), 0.2)
            assert await settle_in_flight() == 0

        asyncio.run(main())


def test_async_event_iteration(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[3]
    ch = running_channel(fleet, sid)

    async def main() -> list[ipvtl.Event]:
        await cluster.poll_async()
        seen: list[ipvtl.Event] = []
        with cluster.events() as events:
            restart = asyncio.ensure_future(cluster.restart_async(sid, ch))
            async for ev in events:
                seen.append(ev)
                if ev.kind == "action_finished":
                    break
            await restart
        # A closed stream ends async iteration too.
        assert [e async for e in events] == []
        return seen

    seen = asyncio.run(main())
    assert seen[0].kind == "action_started" and seen[-1].kind == "action_finished"
    assert seen[-1].report is not None and seen[-1].report.ok


def test_closing_a_stream_ends_a_waiting_async_reader(cluster: ipvtl.Cluster) -> None:
    async def main() -> None:
        events = cluster.events()

        async def read() -> list[ipvtl.Event]:
            return [e async for e in events]

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.1)
        events.close()
        assert await asyncio.wait_for(reader, 2.0) == []

    asyncio.run(main())
