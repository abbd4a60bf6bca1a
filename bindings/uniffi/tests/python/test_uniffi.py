"""Runs the uniffi-generated Python module `ipvtl_ffi` (not the pyo3 module
`ipvtl`) against the simulator: sync and asyncio calls, errors, events, and
the wire names and values every record carries (SPEC §12).

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
    Cluster,
    ClusterEvent,
    ClusterObserver,
    ClusterSettings,
    HealingPolicy,
    IpvtlError,
    ReconcilerSettings,
    SettingScope,
    SilenceSpec,
    SimFleet,
    SimOptions,
    parse_servers,
)

SIM = SimFleet.with_options(4, SimOptions(stopping_time_ms=300, start_delay_ms=100, seed=7))


def settings():
    # Only what these tests need; the rest is left out (None) and takes the
    # client's defaults.
    return ClusterSettings(
        background=False,
        timeout_ms=1500,
        offline_after=1,
        stop_timeout_ms=10_000,
        start_timeout_ms=10_000,
        watch_interval_ms=50,
    )


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
    assert all(s.state.health == "unknown" and s.state.channels == [] for s in before.servers)
    assert (before.counts.unknown, before.counts.online) == (4, 0)
    snap = c.poll_blocking()
    assert [s.config.id for s in snap.servers] == SIM.ids()
    assert (snap.counts.online, snap.counts.offline, snap.counts.error, snap.counts.unknown) == (4, 0, 0, 0)
    for s in snap.servers:
        assert s.state.health == "online", s
        assert s.state.error is None and s.state.error_kind is None and not s.state.stale
        assert len(s.state.channels) == SIM.channels()
        assert [ch.id for ch in s.state.channels] == list(range(1, SIM.channels() + 1))
        assert s.state.cpu_avg is not None and len(s.state.cpu) > 0
        assert s.state.consecutive_failures == 0 and isinstance(s.state.latency_ms, int)
        for ch in s.state.channels:
            assert ch.stall is None, ch
            if ch.state == "running":
                assert ch.fps > 0 and ch.kbps > 0 and ch.uptime_s >= 0, ch
    one = c.server(SIM.ids()[0])
    assert one.config.host == SIM.servers()[0].host
    assert one.state.status_age_ms is not None


def test_times_are_unix_seconds():
    c = cluster()
    snap = c.poll_blocking()
    now = time.time()
    assert isinstance(snap.taken_at, float) and abs(snap.taken_at - now) < 5, (snap.taken_at, now)
    state = snap.servers[0].state
    assert abs(state.last_ok_at - now) < 5 and abs(state.last_poll_at - now) < 5, state
    assert abs(c.now() - now) < 5
    sid = SIM.ids()[1]
    report = c.restart_blocking(sid, running_channel(sid))
    assert isinstance(report.action_id, int)
    assert report.started_at <= report.finished_at and abs(report.finished_at - time.time()) < 5, report
    # Both times are to the millisecond; their difference is the duration.
    assert abs(report.duration_ms - (report.finished_at - report.started_at) * 1000) <= 1.5, report
    assert report.duration_ms >= 250, report


def test_settings_left_out_take_the_clients_defaults():
    plain = Cluster(SIM.servers(), None).settings()
    assert Cluster(SIM.servers(), ClusterSettings()).settings() == plain
    assert all(v is not None for v in vars(plain).values()), plain
    given = Cluster(SIM.servers(), ClusterSettings(timeout_ms=700, concurrency=9)).settings()
    assert (given.timeout_ms, given.concurrency) == (700, 9)
    assert given.interval_ms == plain.interval_ms and given.background == plain.background


def test_restart_blocking_stops_then_starts_and_ends_running():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[1]
    ch = running_channel(sid)
    SIM.reset_records()
    report = c.restart_blocking(sid, ch)
    assert report.ok and report.error is None, report
    assert report.action == "restart" and report.server_id == sid and report.channel_id == ch, report
    assert report.batch_id is None and report.error_kind is None and report.cause_kind is None
    assert [p.phase for p in report.phases] == ["stop", "wait_idle", "start", "wait_running"], report.phases
    wait_idle = next(p for p in report.phases if p.phase == "wait_idle")
    assert wait_idle.duration_ms >= 250, "watched the channel go idle rather than sleeping"
    assert report.final_state == "running"
    assert SIM.channel_state(sid, ch) == "running"
    assert [(cmd.channel, cmd.action) for cmd in SIM.commands(sid)] == [(ch, "stop"), (ch, "start")]
    state = c.refresh_blocking(sid).state
    assert state.channels[ch - 1].state == "running"


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
    expect(IpvtlError.Settings, Cluster, SIM.servers(), ClusterSettings(concurrency=0))


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
        assert all(s.state.health == "online" for s in snap.servers)
        sid = SIM.ids()[3]
        ch = running_channel(sid)
        report = await c.restart(sid, ch)
        assert report.ok and report.action == "restart" and SIM.channel_state(sid, ch) == "running"
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
        assert isinstance(ev, ClusterEvent.REFRESHED) and ev.server_id == sid, ev
        assert ev.error is None and ev.error_kind is None, ev
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
    assert seen[-1].report.ok and seen[-1].report.channel_id == ch
    started = [e for e in seen if isinstance(e, ClusterEvent.ACTION_STARTED) and e.server_id == sid]
    assert [(e.channel_id, e.action) for e in started] == [(ch, "restart")], seen
    assert started[0].action_id == seen[-1].report.action_id
    changes = [
        (e._from, e.to) for e in seen if isinstance(e, ClusterEvent.CHANNEL_STATE_CHANGED) and e.channel_id == ch
    ]
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
    spec = BatchSpec(action=ActionKind.RESTART, filter=BatchFilter(servers=ids, channels=[1]), max_parallel=2)
    plan = c.plan(spec)
    assert [(t.server_id, t.channel_id) for t in plan] == [(i, 1) for i in ids]
    report = c.batch_blocking(spec)
    assert report.ok is True and report.succeeded == 2 and report.failed == 0 and report.skipped == 0, report
    assert report.action == "restart" and report.stopped_early is None and len(report.reports) == 2, report
    assert all(r.batch_id == report.batch_id for r in report.reports)
    assert all(SIM.channel_state(i, 1) == "running" for i in ids)
    bad = BatchSpec(action=ActionKind.STOP, targets=[], max_parallel=0)
    expect(IpvtlError.Batch, c.plan, bad)


def test_a_batch_spec_is_checked_once_by_the_core():
    c = cluster()
    c.poll_blocking()
    sid = SIM.ids()[0]
    SIM.reset_records()
    e = expect(IpvtlError.Batch, c.plan, BatchSpec(action=ActionKind.STOP, filter=BatchFilter(states=["runing"])))
    assert "unknown channel state \"runing\"; valid states: idle, running, stopping" in str(e), str(e)
    e = expect(IpvtlError.Batch, c.batch_blocking, BatchSpec(action=ActionKind.STOP))
    assert "exactly one of" in str(e), str(e)
    zero = BatchSpec(action=ActionKind.RESTART, targets=[BatchTarget(server_id=sid, channel_id=0)])
    e = expect(IpvtlError.Batch, c.batch_blocking, zero)
    assert "start at 1" in str(e), str(e)
    e = expect(IpvtlError.Batch, c.plan, BatchSpec(action=ActionKind.STOP, filter=BatchFilter(), max_parallel=1000))
    assert "max_parallel" in str(e), str(e)
    assert SIM.total_requests(sid) == 0, "a refused batch sends nothing"
    # Left out, everything else takes the core's defaults: a plain filter
    # plans every channel of the fleet.
    plan = c.plan(BatchSpec(action=ActionKind.STOP, filter=BatchFilter()))
    assert len(plan) == 4 * SIM.channels(), plan


def test_a_stalled_channel_says_zero_fps():
    sim = SimFleet.with_options(1, SimOptions(initial_running=1.0))
    try:
        sid = sim.ids()[0]
        c = Cluster(sim.servers(), settings())
        c.poll_blocking()
        stream = c.subscribe()
        sim.set_fault(sid, "stalled")
        state = c.refresh_blocking(sid).state
        assert [ch.stall for ch in state.channels] == ["zero_fps"] * sim.channels(), state.channels
        assert all(ch.state == "running" and ch.fps == 0 for ch in state.channels), state.channels
        stalled = []
        while len(stalled) < sim.channels():
            ev = stream.next_blocking(5000)
            assert ev is not None, f"only {stalled} stalled"
            if isinstance(ev, ClusterEvent.CHANNEL_STALLED):
                assert ev.server_id == sid and ev.reason == "zero_fps", ev
                stalled.append(ev.channel_id)
        assert stalled == list(range(1, sim.channels() + 1))
        stream.unsubscribe()
    finally:
        sim.shutdown()


def test_a_failed_action_report_names_its_cause():
    c = cluster()
    c.poll_blocking()
    rejecting, down = SIM.ids()[2], SIM.ids()[3]
    SIM.set_fault(rejecting, "reject_commands")
    SIM.set_fault(down, "down")
    try:
        targets = [BatchTarget(server_id=rejecting, channel_id=1), BatchTarget(server_id=down, channel_id=1)]
        spec = BatchSpec(action=ActionKind.STOP, targets=targets, max_parallel=2)
        report = c.batch_blocking(spec)
        assert report.failed == 2 and report.ok is False, report
        by_id = {r.server_id: r for r in report.reports}
        assert by_id[rejecting].error_kind == "stop_failed"
        assert by_id[rejecting].cause_kind == "http", by_id[rejecting]
        assert by_id[down].error_kind == "stop_failed"
        assert by_id[down].cause_kind in ("connect", "io"), by_id[down]
    finally:
        SIM.set_fault(rejecting, None)
        SIM.set_fault(down, None)


def test_desired_state_and_healing_start_an_idle_channel():
    sim = SimFleet.with_options(2, SimOptions(channels=2, initial_running=0.0, seed=3))
    try:
        c = Cluster(sim.servers(), ClusterSettings(background=True, interval_ms=200, timeout_ms=1500,
                                                    offline_after=1, watch_interval_ms=50))
        c.poll_blocking()
        sid = sim.ids()[0]
        assert c.desired(sid, 1).desired == "unmanaged" and c.desired(sid, 1).scope is None
        e = expect(IpvtlError.Invalid, c.set_desired, SettingScope(server_id=sid), "Running")
        assert "running" in str(e) and "unmanaged" in str(e)
        expect(IpvtlError.Invalid, c.set_desired, SettingScope(), "running")
        expect(IpvtlError.ServerNotFound, c.set_desired, SettingScope(server_id="nope"), "running")
        expect(IpvtlError.Invalid, c.set_healing, SettingScope(server_id=sid), HealingPolicy(limit=0))
        expect(IpvtlError.Invalid, c.configure_reconciler, ReconcilerSettings(max_parallel=0))
        stream = c.subscribe()
        c.set_desired(SettingScope(server_id=sid, channel_id=1), "running")
        c.set_healing(SettingScope(server_id=sid), HealingPolicy(grace_ms=0, limit=2))
        d = c.desired(sid, 1)
        assert d.desired == "running" and d.scope == SettingScope(server_id=sid, channel_id=1, tag=None)
        assert [(s.desired, s.source) for s in c.desired_settings()] == [("running", "api")]
        (h,) = c.healing_settings()
        assert h.enabled and h.grace_ms == 0 and h.limit == 2 and h.scope.server_id == sid and h.source == "api"
        seen = []
        deadline = time.monotonic() + 10
        while not any(isinstance(e, ClusterEvent.DRIFT_ENDED) for e in seen):
            assert time.monotonic() < deadline, seen
            e = stream.next_blocking(500)
            if e is not None:
                seen.append(e)
        started = next(e for e in seen if isinstance(e, ClusterEvent.HEAL_STARTED))
        assert (started.heal.server_id, started.heal.channel_id, started.heal.action) == (sid, 1, "start")
        assert started.attempt == 1 and started.heal.since_at > 1.7e9
        assert any(isinstance(e, ClusterEvent.DRIFT_STARTED) and e.desired == "running" for e in seen)
        assert sim.channel_state(sid, 1) == "running"
        assert c.drifts() == [] and c.snapshot().drifts == []
        r = c.configure_reconciler(ReconcilerSettings(paused=True, max_parallel=3))
        assert r.paused and r.max_parallel == 3 and not r.storm and r.managed == 1
        c.set_healing_paused(False)
        c.set_dry_run(True)
        assert not c.reconciler().paused and c.reconciler().dry_run
        assert c.planned_heals() == [] and c.clear_degraded(sid, 1) is False
        assert c.clear_desired(SettingScope(server_id=sid, channel_id=1)) == "running"
        assert c.clear_healing(SettingScope(server_id=sid)) is True
    finally:
        sim.shutdown()


# server_down after 0.4 s; cpu_high off (the simulated servers run hot).
ALERT_RULES = '[rules.server_down]\nfor = "400ms"\n[rules.cpu_high]\nenabled = false\n'


def test_alerts_fire_resolve_and_a_silence_holds_one():
    sim = SimFleet.with_options(2, SimOptions(seed=5))
    try:
        c = Cluster(sim.servers(), settings())
        c.poll_blocking()
        e = expect(IpvtlError.Invalid, c.watch_alerts, "\n[rules.cpu_high]\npercent = 150\n")
        assert "line 2" in str(e) and "percent" in str(e), e
        watch = c.watch_alerts(ALERT_RULES)
        down, held = sim.ids()
        expect(IpvtlError.Invalid, watch.silence, SilenceSpec(matchers=["server!=x"], duration_ms=60_000))
        silence = watch.silence(SilenceSpec(matchers=[f"server={held}"], duration_ms=60_000, comment="held"))
        (s,) = watch.silences()
        assert (s.id, s.origin, s.comment, s.matchers) == (silence, "api", "held", [f'server="{held}"'])
        t0 = time.time()
        sim.set_fault(down, "down")
        sim.set_fault(held, "down")
        c.poll_blocking()
        firing = asyncio.run(asyncio.wait_for(watch.next(), 10))
        assert firing is not None and firing.kind == "firing" and firing.ends_at is None, firing
        assert firing.labels["alertname"] == "IpvtlServerDown" and firing.labels["server"] == down
        assert firing.starts_at >= t0 + 0.4 - 0.01, (firing.starts_at, t0)
        deadline = time.monotonic() + 10
        while not any(a.state == "silenced" for a in watch.alerts()):
            assert time.monotonic() < deadline, watch.alerts()
            time.sleep(0.02)
        (held_alert,) = [a for a in watch.alerts() if a.labels["server"] == held]
        assert (held_alert.silenced_by, held_alert.silence_id) == ("silence", silence)
        assert watch.try_next() is None, "a silenced alert is not notified"
        sim.set_fault(down, None)
        c.poll_blocking()
        resolved = watch.next_blocking(10_000)
        assert resolved is not None and resolved.kind == "resolved" and resolved.fingerprint == firing.fingerprint
        assert [h.fingerprint for h in watch.history()] == [firing.fingerprint]
        assert watch.expire_silence(silence) is True and watch.expire_silence(silence) is False
        fired = watch.next_blocking(10_000)
        assert fired is not None and fired.labels["server"] == held
        watch.cancel()
        assert watch.next_blocking(5_000) is None
    finally:
        sim.shutdown()


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
