"""Blocking actions, batches and the blocking event iterator."""

from __future__ import annotations

import json
import time

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import running_channel


def test_restart_reports_phases_and_the_server_sees_stop_then_start(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[0]
    ch = running_channel(fleet, sid)
    fleet.reset_records()
    t0 = time.time()
    r = cluster.restart(sid, ch)
    assert isinstance(r, ipvtl.ActionReport)
    assert r.ok and r.action == "restart" and r.server_id == sid and r.channel_id == ch
    assert r.error is None and r.error_kind is None and r.final_state == "running" and r.batch_id is None
    assert r.action_id is not None and r.action_id >= 1
    # Never polled: the action probed the channel count first.
    assert [p.phase for p in r.phases] == ["probe", "stop", "wait_idle", "start", "wait_running"]
    assert all(isinstance(p, ipvtl.PhaseReport) and isinstance(p.duration_ms, int) for p in r.phases)
    wait_idle = r.phase_duration_ms("wait_idle")
    assert wait_idle is not None and wait_idle >= 250 and wait_idle == r.phases[2].duration_ms
    assert r.phase_duration_ms("nope") is None
    assert r.duration_ms >= max(p.duration_ms for p in r.phases)
    assert t0 - 1 <= r.started_at <= r.finished_at <= time.time() + 1
    assert "restart" in r.summary and repr(r) and json.dumps(r.to_dict())
    assert r.to_dict()["phases"][1] == r.phases[1].to_dict() and repr(r.phases[0])
    commands = fleet.record(sid)["commands"]
    assert [(c["channel"], c["action"]) for c in commands] == [(ch, "stop"), (ch, "start")]
    assert commands[1]["at_ms"] - commands[0]["at_ms"] >= 300, "start waited for idle"


def test_stop_then_start(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[1]
    ch = running_channel(fleet, sid)
    r = cluster.stop(sid, ch)
    assert r.ok and r.action == "stop" and r.final_state == "idle"
    assert fleet.channel_state(sid, ch) == "idle"
    r = cluster.start(sid, ch)
    assert r.ok and r.action == "start" and r.final_state == "running"
    assert fleet.channel_state(sid, ch) == "running"


def test_batch_and_plan(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    cluster.poll()
    targets = [(fleet.ids[0], 1), (fleet.ids[1], 2), (fleet.ids[2], 3)]
    assert cluster.plan("restart", targets=targets) == targets
    planned = cluster.plan("restart", servers=fleet.ids[:2], channels=[1], states=["running"])
    assert planned == [(fleet.ids[0], 1), (fleet.ids[1], 1)]
    assert cluster.plan("stop", tags=["no-such-tag"]) == []
    report = cluster.batch("restart", targets=targets, max_parallel=3)
    assert isinstance(report, ipvtl.BatchReport)
    assert report.ok and report.action == "restart" and report.succeeded == 3
    assert report.failed == 0 and report.skipped == 0
    assert report.stopped_early is None and report.stopped_reason is None
    assert [(r.server_id, r.channel_id) for r in report.reports] == targets
    assert all(r.batch_id == report.batch_id for r in report.reports)
    assert report.started_at <= report.finished_at and report.duration_ms >= 0
    assert json.dumps(report.to_dict()) and repr(report)


def test_batch_reports_failures_instead_of_raising(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    cluster.poll()
    fleet.set_fault(fleet.ids[0], "reject_commands")
    report = cluster.batch("restart", targets=[(fleet.ids[0], 1), (fleet.ids[1], 1)], max_parallel=1,
                           stop_on_failure=True)
    assert not report.ok and report.failed == 1 and report.skipped == 1
    assert report.stopped_early == "first_failure" and report.stopped_reason
    assert report.to_dict()["stopped_early"] == "first_failure"
    assert report.reports[0].error_kind == "stop_failed" and report.reports[1].error_kind == "skipped"


def test_blocking_event_iterator(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[2]
    cluster.poll()
    ch = running_channel(fleet, sid)
    with cluster.events() as events:
        assert isinstance(events, ipvtl.EventStream)
        assert events.try_next() is None
        assert events.next(timeout=0.05) is None
        cluster.restart(sid, ch)
        seen: list[ipvtl.Event] = []
        for ev in events:
            seen.append(ev)
            if ev.kind == "action_finished":
                break
        assert events.dropped == 0
    kinds = [e.kind for e in seen]
    assert kinds[0] == "action_started" and kinds[-1] == "action_finished"
    started, finished = seen[0], seen[-1]
    assert (started.server_id, started.channel_id, started.action) == (sid, ch, "restart")
    assert started.action_id == finished.action_id
    assert isinstance(finished.report, ipvtl.ActionReport) and finished.report.ok and finished.ok is True
    changes = [(e.from_, e.to) for e in seen if e.kind == "channel_state_changed"]
    assert ("running", "stopping") in changes or ("running", "idle") in changes or ("stopping", "idle") in changes
    assert changes[-1][1] == "running"
    for e in seen:
        d = e.to_dict()
        assert d["kind"] == e.kind and d["message"] == e.message and json.dumps(d) and repr(e)
    # Closed: iteration ends at once.
    assert list(events) == [] and events.next(timeout=1.0) is None


def test_events_of_sweeps_health_and_batches(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    events = cluster.events()
    fleet.set_fault(fleet.ids[5], "down")
    cluster.poll()
    cluster.batch("restart", targets=[(fleet.ids[0], 1)])
    got: dict[str, ipvtl.Event] = {}
    while (ev := events.next(timeout=1.0)) is not None:
        got.setdefault(ev.kind, ev)
    events.close()
    sweep = got["sweep_finished"]
    assert sweep.sweep == 1 and sweep.ok == len(fleet) - 1 and sweep.failed == 1 and sweep.skipped == 0
    assert sweep.duration_ms is not None and sweep.duration_ms >= 0
    health = [e for e in [got.get("health_changed")] if e]
    assert health and health[0].server_id in fleet.ids
    bp = got["batch_progress"]
    assert (bp.done, bp.total, bp.failed, bp.running) == (1, 1, 0, 0) and bp.batch_id is not None
    bf = got["batch_finished"]
    assert isinstance(bf.report, ipvtl.BatchReport) and bf.report.ok and bf.batch_id == bf.report.batch_id
    for absent in ("error", "error_kind", "reason", "from_", "to", "channel_id"):
        assert getattr(sweep, absent) is None
    assert sweep.report is None


def test_an_unread_event_stream_drops_beyond_its_buffer_and_never_slows_polls(
    fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    small = cluster.events(buffer=2)
    ample = cluster.events()
    for _ in range(3):
        assert cluster.poll().counts()["online"] == len(fleet)
    everything = []
    while (ev := ample.try_next()) is not None:
        everything.append(ev.kind)
    kept = []
    while (ev := small.try_next()) is not None:
        kept.append(ev.kind)
    assert everything.count("sweep_finished") == 3 and ample.dropped == 0
    assert kept == everything[:2], "the small stream kept the oldest two"
    assert small.dropped == len(everything) - 2, "and counted every other one"
    with pytest.raises(ipvtl.ConfigError, match="at least 1"):
        cluster.events(buffer=0)


def test_a_stalled_server_raises_channel_stalled_and_a_restart_cures_it(
    fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    sid = fleet.ids[0]
    cluster.poll()
    running = [c.id for c in cluster.server(sid).channels if c.state == "running"]
    with cluster.events() as events:
        fleet.set_fault(sid, "stalled")
        cluster.poll()
        alarms = []
        while (ev := events.try_next()) is not None:
            if ev.kind == "channel_stalled" and ev.server_id == sid:
                alarms.append((ev.channel_id, ev.reason))
    assert alarms == [(ch, "zero_fps") for ch in running]
    assert all(c.fps == 0 and c.stall == "zero_fps" for c in cluster.server(sid).channels if c.state == "running")
    assert cluster.restart(sid, running[0]).ok
    cured = cluster.refresh(sid).channels[running[0] - 1]
    assert cured.state == "running" and cured.fps is not None and cured.fps > 0 and cured.stall is None
