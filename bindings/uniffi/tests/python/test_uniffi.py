"""Runs the uniffi-generated Python module `ipvtl_ffi` (not the pyo3 module
`ipvtl`) against the simulator: sync and asyncio calls, errors, events.

Usage: python3 test_uniffi.py GENERATED_DIR
(GENERATED_DIR holds ipvtl_ffi.py and libipvtl_ffi.so, side by side.)
Exits non-zero if any check fails; ends with "N passed, N failed".
"""

import asyncio
import queue
import sys
import tempfile
import os
import time
import traceback

sys.path.insert(0, sys.argv[1])
from ipvtl_ffi import (  # noqa: E402
    ActionKind,
    BatchFilter,
    BatchSpec,
    BatchTarget,
    BatchTargets,
    Cluster,
    ClusterEvent,
    ClusterObserver,
    Health,
    IpvtlError,
    ServerConfig,
    SimFleet,
    SimOptions,
    default_settings,
    parse_servers,
)

SIM = SimFleet.with_options(4, SimOptions(stopping_time_ms=300, start_delay_ms=100, seed=7))


def settings():
    s = default_settings()
    s.background = False
    s.timeout_ms = 1500
    s.offline_after = 1
    s.stop_timeout_ms = 10_000
    s.start_timeout_ms = 10_000
    s.watch_interval_ms = 50
    return s


def cluster():
    return Cluster(SIM.servers(), settings())


def running_channel(server_id):
    for ch in range(1, SIM.channels() + 1):
        if SIM.channel_state(server_id, ch) == "running":
            return ch
    raise AssertionError(f"no running channel on {server_id}")


def expect(error_class, fn, *args):
    try:
        fn(*args)
    except error_class as e:
        assert str(e), "the error has a message"
        return e
    except IpvtlError as e:
        raise AssertionError(f"expected {error_class.__name__}, got {e!r}")
    raise AssertionError(f"expected {error_class.__name__}, nothing was raised")


def test_poll_blocking_sees_the_whole_fleet():
    c = cluster()
    assert c.len() == 4
    before = c.snapshot()
    assert all(s.state.health == Health.UNKNOWN for s in before.servers)
    snap = c.poll_blocking()
    assert [s.config.id for s in snap.servers] == SIM.ids()
    for s in snap.servers:
        assert s.state.health == Health.ONLINE, s
        assert s.state.error is None and not s.state.stale
        assert len(s.state.status.channels) == SIM.channels()
        assert [ch.id for ch in s.state.status.channels] == list(range(1, SIM.channels() + 1))
        assert s.state.status.cpu_avg is not None
    one = c.server(SIM.ids()[0])
    assert one.config.host == SIM.servers()[0].host


def test_restart_blocking_stops_then_starts_and_ends_running():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[1]
    ch = running_channel(sid)
    SIM.reset_records()
    report = c.restart_blocking(sid, ch)
    assert report.ok and report.error is None, report
    assert report.kind == ActionKind.RESTART and report.server_id == sid and report.channel == ch
    assert [p.phase for p in report.phases] == ["stop", "wait_idle", "start", "wait_running"], report.phases
    wait_idle = next(p for p in report.phases if p.phase == "wait_idle")
    assert wait_idle.duration_ms >= 250, "watched the channel go idle rather than sleeping"
    assert report.final_state == "running"
    assert SIM.channel_state(sid, ch) == "running"
    assert [(cmd.channel, cmd.action) for cmd in SIM.commands(sid)] == [(ch, "stop"), (ch, "start")]
    state = c.refresh_blocking(sid).state
    assert state.status.channels[ch - 1].state == "running"


def test_errors_map_to_the_flat_enum():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[0]
    SIM.reset_records()
    expect(IpvtlError.ServerNotFound, c.server, "no-such-server")
    expect(IpvtlError.ServerNotFound, c.restart_blocking, "no-such-server", 1)
    expect(IpvtlError.ServerNotFound, c.refresh_blocking, "no-such-server")
    expect(IpvtlError.ChannelNotFound, c.restart_blocking, sid, 0)
    e = expect(IpvtlError.ChannelNotFound, c.stop_blocking, sid, 99)
    assert "99" in str(e)
    assert SIM.total_requests(sid) == 0, "refusals send nothing"
    c.set_maintenance(sid, True)
    expect(IpvtlError.Maintenance, c.start_blocking, sid, 1)
    c.set_maintenance(sid, False)
    dup = SIM.servers()[:1] * 2
    expect(IpvtlError.Config, Cluster, dup, None)
    expect(IpvtlError.Config, parse_servers, '[{"id": "a"}]')
    expect(IpvtlError.Io, Cluster.from_file, "/nonexistent/servers.json", None)
    expect(IpvtlError.Simulator, SIM.set_fault, sid, "on-fire")
    bad = settings()
    bad.concurrency = 0
    expect(IpvtlError.Settings, Cluster, SIM.servers(), bad)


def test_a_failed_stop_is_action_failed_and_nothing_starts():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[2]
    SIM.set_fault(sid, "reject_commands")
    try:
        SIM.reset_records()
        e = expect(IpvtlError.ActionFailed, c.restart_blocking, sid, 1)
        assert "stop" in str(e)
        assert [cmd.action for cmd in SIM.commands(sid)] == ["stop"]
    finally:
        SIM.set_fault(sid, None)


def test_from_file_and_reload():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "servers.json")
        SIM.write_servers_json(path)
        c = Cluster.from_file(path, settings())
        assert c.len() == 4
        summary = c.reload(SIM.servers()[:2])
        assert sorted(summary.removed) == sorted(SIM.ids()[2:]) and summary.kept == 2
        assert c.len() == 2


def test_asyncio_poll_restart_and_busy():
    async def main():
        c = cluster()
        snap = await c.poll()
        assert all(s.state.health == Health.ONLINE for s in snap.servers)
        sid = SIM.ids()[3]
        ch = running_channel(sid)
        report = await c.restart(sid, ch)
        assert report.ok and SIM.channel_state(sid, ch) == "running"
        try:
            await c.restart("no-such-server", 1)
            raise AssertionError("no error")
        except IpvtlError.ServerNotFound:
            pass
        # Two restarts of one channel at once: one runs, the other is Busy.
        SIM.reset_records()
        results = await asyncio.gather(c.restart(sid, ch), c.restart(sid, ch), return_exceptions=True)
        oks = [r for r in results if not isinstance(r, Exception)]
        busy = [r for r in results if isinstance(r, IpvtlError.Busy)]
        assert len(oks) == 1 and len(busy) == 1, results
        assert [cmd.action for cmd in SIM.commands(sid)] == ["stop", "start"]
        # A pulled stream, awaited.
        stream = c.subscribe()
        await c.refresh(sid)
        # The restart's ActionFinished may still be on its way to subscribers.
        ev = await asyncio.wait_for(stream.next(), 5)
        while isinstance(ev, ClusterEvent.ACTION_FINISHED):
            ev = await asyncio.wait_for(stream.next(), 5)
        assert isinstance(ev, ClusterEvent.REFRESHED) and ev.server_id == sid and ev.error is None, ev
        stream.unsubscribe()

    asyncio.run(main())


class Recorder(ClusterObserver):
    def __init__(self, fail=False):
        self.events = queue.Queue()
        self.fail = fail

    def on_event(self, event):
        self.events.put(event)
        if self.fail:
            raise RuntimeError("observer blew up")


def wait_for(q, pred, timeout=10.0):
    seen = []
    while True:
        ev = q.get(timeout=timeout)
        seen.append(ev)
        if pred(ev):
            return seen


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_observer_receives_events_and_cancel_stops_it():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[0]
    ch = running_channel(sid)
    rec = Recorder()
    handle = c.watch(rec)
    assert handle.is_active()
    c.restart_blocking(sid, ch)
    seen = wait_for(rec.events, lambda e: isinstance(e, ClusterEvent.ACTION_FINISHED))
    assert seen[-1].report.ok and seen[-1].report.channel == ch
    assert any(isinstance(e, ClusterEvent.ACTION_STARTED) and e.server_id == sid for e in seen), seen
    changes = [(e._from, e.to) for e in seen if isinstance(e, ClusterEvent.CHANNEL_STATE_CHANGED) and e.channel == ch]
    assert any(to == "idle" for _, to in changes), changes
    # The count moves once on_event has returned, just after the queue saw it.
    wait_until(lambda: handle.delivered() >= len(seen))
    assert handle.failures() == 0
    handle.cancel()
    wait_until(lambda: not handle.is_active())
    while not rec.events.empty():
        rec.events.get_nowait()
    c.poll_blocking()
    c.refresh_blocking(sid)
    assert rec.events.empty(), "no event after cancel"


def test_an_observer_that_raises_keeps_receiving():
    c = cluster()
    rec = Recorder(fail=True)
    handle = c.watch(rec)
    c.refresh_blocking(SIM.ids()[0])
    c.refresh_blocking(SIM.ids()[1])
    wait_for(rec.events, lambda e: isinstance(e, ClusterEvent.REFRESHED) and e.server_id == SIM.ids()[1])
    wait_until(lambda: handle.failures() >= 2)
    assert handle.delivered() == 0
    del handle  # dropping the handle cancels the watch
    c.refresh_blocking(SIM.ids()[2])
    time.sleep(0.2)
    leftover = [rec.events.get_nowait() for _ in range(rec.events.qsize())]
    assert not any(isinstance(e, ClusterEvent.REFRESHED) and e.server_id == SIM.ids()[2] for e in leftover), leftover


def test_batch_and_plan():
    c = cluster()
    c.poll_blocking()
    ids = SIM.ids()[:2]
    spec = BatchSpec(
        kind=ActionKind.RESTART,
        targets=BatchTargets.FILTER(filter=BatchFilter(servers=ids, channels=[1])),
        max_parallel=2,
    )
    plan = c.plan(spec)
    assert [(t.server_id, t.channel) for t in plan] == [(i, 1) for i in ids]
    report = c.batch_blocking(spec)
    assert report.ok == 2 and report.failed == 0 and len(report.reports) == 2, report
    assert all(SIM.channel_state(i, 1) == "running" for i in ids)
    bad = BatchSpec(kind=ActionKind.STOP, targets=BatchTargets.CHANNELS(targets=[]), max_parallel=0)
    expect(IpvtlError.Batch, c.plan, bad)


def test_a_failed_action_report_names_its_cause():
    c = cluster()
    c.poll_blocking()
    rejecting, down = SIM.ids()[2], SIM.ids()[3]
    SIM.set_fault(rejecting, "reject_commands")
    SIM.set_fault(down, "down")
    try:
        targets = [BatchTarget(server_id=rejecting, channel=1), BatchTarget(server_id=down, channel=1)]
        spec = BatchSpec(kind=ActionKind.STOP, targets=BatchTargets.CHANNELS(targets=targets), max_parallel=2)
        report = c.batch_blocking(spec)
        assert report.failed == 2, report
        by_id = {r.server_id: r for r in report.reports}
        assert by_id[rejecting].error_kind == "stop_failed"
        assert (by_id[rejecting].cause.kind, by_id[rejecting].cause.unreachable) == ("http", False)
        assert by_id[down].error_kind == "stop_failed"
        assert by_id[down].cause.unreachable and by_id[down].cause.kind in ("connect", "io"), by_id[down].cause
    finally:
        SIM.set_fault(rejecting, None)
        SIM.set_fault(down, None)


def main():
    tests = [(name, fn) for name, fn in sorted(globals().items()) if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
            passed += 1
            print(f"ok   {name}")
        except Exception:
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
